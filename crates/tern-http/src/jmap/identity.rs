//! `Identity/get` and `Identity/changes` (RFC 8621 §6): the addresses an
//! account sends as. Today that is one identity, the account's own
//! address, which never changes.

use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};

/// The one identity of an account: its own address.
pub fn identity_id(account: tern_store::AccountId) -> String {
    format!("i{}", account.0)
}

pub async fn identity_get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let record = cx
        .server
        .mail
        .store()
        .account(account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let id = identity_id(account);
    let wanted: Option<Vec<String>> = args.get("ids").and_then(Value::as_array).map(|ids| {
        ids.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    });
    let (list, not_found): (Vec<Value>, Vec<Value>) = match wanted {
        None => (vec![identity(&id, &record.address)], vec![]),
        Some(ids) => {
            let mut list = Vec::new();
            let mut missing = Vec::new();
            for i in ids {
                if i == id {
                    list.push(identity(&id, &record.address));
                } else {
                    missing.push(json!(i));
                }
            }
            (list, missing)
        }
    };
    Ok(json!({
        "accountId": super::account_id(account),
        "state": "0",
        "list": list,
        "notFound": not_found,
    }))
}

fn identity(id: &str, address: &str) -> Value {
    json!({
        "id": id, "name": "", "email": address, "replyTo": null, "bcc": null,
        "textSignature": "", "htmlSignature": "", "mayDelete": false,
    })
}

/// `Identity/changes`: the one identity never changes, so from state `0`
/// there is nothing new.
pub async fn identity_changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    match args.get("sinceState").and_then(Value::as_str) {
        Some("0") => Ok(json!({
            "accountId": super::account_id(account),
            "oldState": "0",
            "newState": "0",
            "hasMoreChanges": false,
            "created": [],
            "updated": [],
            "destroyed": [],
        })),
        Some(_) => Err(method_error(
            "cannotCalculateChanges",
            "that state is not one this server gave",
        )),
        None => Err(method_error("invalidArguments", "sinceState is required")),
    }
}
