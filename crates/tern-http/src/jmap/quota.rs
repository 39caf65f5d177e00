//! JMAP for Quotas (RFC 9425): the account's storage quota as one
//! `Quota` object (`octets`, scope `account`), the same limit IMAP QUOTA
//! reports. An account without a limit has no quota object.

use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};

pub const QUOTA: &str = "urn:ietf:params:jmap:quota";
const QUOTA_ID: &str = "q0";

/// The account's quota objects (none or one).
async fn quotas(cx: &Call<'_>) -> Result<Vec<Value>, Value> {
    let store = cx.server.mail.store();
    let quota = store
        .quota(cx.account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let account = store
        .account(cx.account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    Ok(quota
        .limit_bytes
        .map(|limit| {
            json!({
                "id": QUOTA_ID,
                "resourceType": "octets",
                "used": quota.used_bytes,
                "hardLimit": limit,
                "scope": "account",
                "name": format!("{} storage", account.address),
                "types": ["Email"],
                "warnLimit": limit / 10 * 9,
                "softLimit": null,
                "description": null,
            })
        })
        .into_iter()
        .collect())
}

/// `Quota/get`.
pub async fn get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let state = super::state(cx).await?;
    let all = quotas(cx).await?;
    let (list, not_found) =
        super::pick(&args, all, |q| q["id"].as_str().unwrap_or("").to_string())?;
    Ok(json!({
        "accountId": super::account_id(account),
        "state": state,
        "list": list,
        "notFound": not_found,
    }))
}

/// `Quota/changes`: usage moves with every change to the account, so the
/// quota is updated whenever the state moved.
pub async fn changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = super::required_str(&args, "sinceState")?;
    let (_, current) = super::changes::rows_since(cx, account, since, 1).await?;
    let moved = since != current.0.to_string();
    let updated: Vec<Value> = if moved {
        quotas(cx).await?.iter().map(|q| q["id"].clone()).collect()
    } else {
        Vec::new()
    };
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": since,
        "newState": current.0.to_string(),
        "hasMoreChanges": false,
        "created": [],
        "updated": updated,
        "destroyed": [],
    }))
}

/// `Quota/query`: filters by `name`, `scope`, `resourceType` and `type`.
pub async fn query(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let state = super::state(cx).await?;
    let mut all = quotas(cx).await?;
    if let Some(Value::Object(filter)) = args.get("filter") {
        for (key, value) in filter {
            let keep = |q: &Value| match key.as_str() {
                "name" => value
                    .as_str()
                    .is_some_and(|n| q["name"].as_str().is_some_and(|x| x.contains(n))),
                "scope" | "resourceType" => q[key.as_str()] == *value,
                "type" => q["types"].as_array().is_some_and(|t| t.contains(value)),
                _ => false,
            };
            if !["name", "scope", "resourceType", "type"].contains(&key.as_str()) {
                return Err(method_error(
                    "unsupportedFilter",
                    format!("{key} is not a quota condition"),
                ));
            }
            all.retain(keep);
        }
    }
    let ids: Vec<Value> = all.iter().map(|q| q["id"].clone()).collect();
    Ok(json!({
        "accountId": super::account_id(account),
        "queryState": state,
        "canCalculateChanges": false,
        "position": 0,
        "total": ids.len(),
        "ids": ids,
    }))
}
