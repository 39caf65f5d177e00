//! `VacationResponse/get` and `/set` (RFC 8621 §8): the account's one
//! automatic reply, kept by the mail layer, which sends it at most once
//! per sender and period and never to lists or bounces.

use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};

/// `VacationResponse/get` (RFC 8621 §8.2): the account's one response,
/// id `singleton`.
pub async fn vacation_get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let vacation = cx
        .server
        .mail
        .vacation(account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let asked: Option<Vec<String>> = args.get("ids").and_then(Value::as_array).map(|ids| {
        ids.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    });
    let mut object = serde_json::to_value(&vacation).unwrap_or_else(|_| json!({}));
    object["id"] = json!("singleton");
    let (list, not_found) = match asked {
        None => (vec![object], vec![]),
        Some(ids) => {
            let found = ids.iter().any(|i| i == "singleton");
            let missing: Vec<Value> = ids
                .iter()
                .filter(|i| *i != "singleton")
                .map(|i| json!(i))
                .collect();
            (if found { vec![object] } else { vec![] }, missing)
        }
    };
    Ok(json!({
        "accountId": super::account_id(account),
        "state": super::state(cx).await?,
        "list": list,
        "notFound": not_found,
    }))
}

/// `VacationResponse/set`: only `update` of `singleton` (it cannot be
/// created or destroyed).
pub async fn vacation_set(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let old_state = super::state(cx).await?;
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    let mut not_created = Map::new();
    if let Some(Value::Object(create)) = args.get("create") {
        for key in create.keys() {
            not_created.insert(key.clone(), json!({"type": "singleton"}));
        }
    }
    if let Some(Value::Object(update)) = args.get("update") {
        for (id, patch) in update {
            if id != "singleton" {
                not_updated.insert(id.clone(), json!({"type": "notFound"}));
                continue;
            }
            let mut current = cx
                .server
                .mail
                .vacation(account)
                .await
                .map_err(|e| method_error("serverFail", e.to_string()))?;
            let mut object = serde_json::to_value(&current).unwrap_or_else(|_| json!({}));
            let Some(patch) = patch.as_object() else {
                not_updated.insert(id.clone(), json!({"type": "invalidPatch"}));
                continue;
            };
            for (k, v) in patch {
                object[k.as_str()] = v.clone();
            }
            match serde_json::from_value::<tern_mail::vacation::Vacation>(object) {
                Ok(v) => current = v,
                Err(e) => {
                    not_updated.insert(
                        id.clone(),
                        json!({"type": "invalidProperties", "description": e.to_string()}),
                    );
                    continue;
                }
            }
            let dates_ok = [&current.from_date, &current.to_date].iter().all(|d| {
                d.as_deref()
                    .is_none_or(|d| tern_mail::headers::parse_utc_date(d).is_some())
            });
            if !dates_ok {
                not_updated.insert(
                    id.clone(),
                    json!({"type": "invalidProperties", "properties": ["fromDate", "toDate"]}),
                );
                continue;
            }
            cx.server
                .mail
                .set_vacation(account, &current)
                .await
                .map_err(|e| method_error("serverFail", e.to_string()))?;
            updated.insert(id.clone(), Value::Null);
        }
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": old_state,
        "newState": super::state(cx).await?,
        "updated": super::map_or_null(updated),
        "notUpdated": super::map_or_null(not_updated),
        "notCreated": super::map_or_null(not_created),
    }))
}
