//! `Identity/get`, `Identity/changes` and `Identity/set` (RFC 8621 §6):
//! the addresses an account sends as — its own, and every alias it may
//! send as by the same rule submission applies (`Mail::may_send_as`).
//!
//! Which identities exist is the administrator's (accounts and aliases),
//! so `Identity/set` neither creates nor destroys; the user updates what
//! is theirs — the name, `replyTo`, `bcc` and the signatures — kept as an
//! account setting per identity (`identity.<id>`).

use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The identity of an account's own address.
pub fn identity_id(account: tern_store::AccountId) -> String {
    format!("i{}", account.0)
}

/// The identity of an alias: stable for as long as the alias exists.
fn alias_identity_id(account: tern_store::AccountId, address: &str) -> String {
    let digest = Sha256::digest(address.to_ascii_lowercase().as_bytes());
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("i{}-{short}", account.0)
}

/// The account's identities, as (id, address), its own first.
pub async fn identities(cx: &Call<'_>) -> Result<Vec<(String, String)>, Value> {
    let fail = |e: tern_store::StoreError| method_error("serverFail", e.to_string());
    let store = cx.server.mail.store();
    let account = store.account(cx.account).await.map_err(fail)?;
    let mut out = vec![(identity_id(account.id), account.address.clone())];
    let mut aliases = store.list_aliases().await.map_err(fail)?;
    aliases.sort_by(|a, b| a.address.cmp(&b.address));
    for alias in aliases {
        // A catch-all (`@domain`) is not an address to send from.
        if alias.address.starts_with('@') {
            continue;
        }
        if cx
            .server
            .mail
            .may_send_as(&account, &alias.address)
            .await
            .map_err(fail)?
        {
            out.push((alias_identity_id(account.id, &alias.address), alias.address));
        }
    }
    Ok(out)
}

/// The properties of an identity its user may change.
const EDITABLE: [&str; 5] = ["name", "replyTo", "bcc", "textSignature", "htmlSignature"];
/// The most a signature (or name) may hold, in bytes.
const MAX_FIELD: usize = 16 * 1024;
const SETTING_PREFIX: &str = "identity.";

/// What the user set for each identity, by identity id.
async fn details(cx: &Call<'_>) -> Result<Map<String, Value>, Value> {
    let settings = cx
        .server
        .mail
        .store()
        .account_settings_with_prefix(cx.account, SETTING_PREFIX)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    Ok(settings
        .into_iter()
        .filter_map(|(name, value)| {
            let id = name.strip_prefix(SETTING_PREFIX)?.to_string();
            Some((id, serde_json::from_str(&value).ok()?))
        })
        .collect())
}

/// The identities' state: it moves when the list or what the user set does.
fn state(list: &[(String, String)], details: &Map<String, Value>) -> String {
    let joined: Vec<&str> = list.iter().map(|(_, a)| a.as_str()).collect();
    let mut hasher = Sha256::new();
    hasher.update(joined.join("\n").as_bytes());
    hasher.update(Value::Object(details.clone()).to_string().as_bytes());
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn identity_get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let all = identities(cx).await?;
    let details = details(cx).await?;
    let state = state(&all, &details);
    let (chosen, not_found) = super::pick(&args, all, |(id, _)| id.clone())?;
    let list: Vec<Value> = chosen
        .iter()
        .map(|(id, address)| identity(id, address, details.get(id)))
        .collect();
    Ok(json!({
        "accountId": super::account_id(account),
        "state": state,
        "list": list,
        "notFound": not_found,
    }))
}

fn identity(id: &str, address: &str, details: Option<&Value>) -> Value {
    // Neither the account's own address nor an alias (the administrator's)
    // is the user's to delete.
    let mut object = json!({
        "id": id, "name": "", "email": address, "replyTo": null, "bcc": null,
        "textSignature": "", "htmlSignature": "", "mayDelete": false,
    });
    if let Some(Value::Object(set)) = details {
        for key in EDITABLE {
            if let Some(v) = set.get(key) {
                object[key] = v.clone();
            }
        }
    }
    object
}

/// Whether `value` is a valid value of the editable property `key`.
fn valid(key: &str, value: &Value) -> bool {
    match key {
        "name" | "textSignature" | "htmlSignature" => value
            .as_str()
            .is_some_and(|s| s.len() <= MAX_FIELD && (key != "name" || !s.contains(['\r', '\n']))),
        // EmailAddress[]|null (RFC 8621 §4.1.2.3).
        _ => match value {
            Value::Null => true,
            Value::Array(list) => {
                list.len() <= 20
                    && list.iter().all(|a| {
                        let email = a.get("email").and_then(Value::as_str);
                        let name = a.get("name");
                        email.is_some_and(|e| {
                            e.len() <= 254 && e.contains('@') && !e.contains(char::is_whitespace)
                        }) && name.is_none_or(|n| {
                            n.is_null()
                                || n.as_str()
                                    .is_some_and(|n| n.len() <= 256 && !n.contains(['\r', '\n']))
                        })
                    })
            }
            _ => false,
        },
    }
}

pub async fn identity_set(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let all = identities(cx).await?;
    let mut details = details(cx).await?;
    let old_state = state(&all, &details);
    if let Some(want) = args.get("ifInState").and_then(Value::as_str) {
        if want != old_state {
            return Err(method_error("stateMismatch", "the identities changed"));
        }
    }
    let mut not_created = Map::new();
    if let Some(Value::Object(create)) = args.get("create") {
        for key in create.keys() {
            not_created.insert(key.clone(), json!({"type": "forbidden",
                "description": "identities are the account's address and its aliases; ask the administrator for another"}));
        }
    }
    let mut not_destroyed = Map::new();
    if let Some(Value::Array(list)) = args.get("destroy") {
        for id in list.iter().filter_map(Value::as_str) {
            not_destroyed.insert(
                id.to_string(),
                json!({"type": "forbidden",
                "description": "this identity is the administrator's to remove"}),
            );
        }
    }
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    if let Some(Value::Object(update)) = args.get("update") {
        for (id, patch) in update {
            if !all.iter().any(|(i, _)| i == id) {
                not_updated.insert(id.clone(), json!({"type": "notFound"}));
                continue;
            }
            let Some(patch) = patch.as_object() else {
                not_updated.insert(id.clone(), json!({"type": "invalidPatch"}));
                continue;
            };
            let wrong: Vec<&String> = patch
                .iter()
                .filter(|(k, v)| !EDITABLE.contains(&k.as_str()) || !valid(k, v))
                .map(|(k, _)| k)
                .collect();
            if !wrong.is_empty() {
                not_updated.insert(
                    id.clone(),
                    json!({"type": "invalidProperties", "properties": wrong}),
                );
                continue;
            }
            let mut current = details
                .get(id)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in patch {
                current.insert(k.clone(), v.clone());
            }
            let value = Value::Object(current);
            cx.server
                .mail
                .store()
                .set_account_setting(
                    account,
                    &format!("{SETTING_PREFIX}{id}"),
                    Some(&value.to_string()),
                )
                .await
                .map_err(|e| method_error("serverFail", e.to_string()))?;
            details.insert(id.clone(), value);
            updated.insert(id.clone(), Value::Null);
        }
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": old_state,
        "newState": state(&all, &details),
        "created": null,
        "updated": super::map_or_null(updated),
        "destroyed": null,
        "notCreated": super::map_or_null(not_created),
        "notUpdated": super::map_or_null(not_updated),
        "notDestroyed": super::map_or_null(not_destroyed),
    }))
}

/// `Identity/changes`: from the current state nothing changed; from an
/// older one the client gets the whole list again (the server keeps no
/// history of aliases).
pub async fn identity_changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = super::required_str(&args, "sinceState")?;
    let current = state(&identities(cx).await?, &details(cx).await?);
    if since != current {
        return Err(method_error(
            "cannotCalculateChanges",
            "the identities changed; get them again",
        ));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": since,
        "newState": current,
        "hasMoreChanges": false,
        "created": [],
        "updated": [],
        "destroyed": [],
    }))
}
