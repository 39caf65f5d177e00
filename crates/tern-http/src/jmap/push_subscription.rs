//! `PushSubscription/get` and `/set` (RFC 8620 §7.2): a client (a phone
//! app's push relay, a browser's push service) asks to be told of changes
//! at a URL. The server first POSTs a `PushVerification` there; once the
//! client echoes its code back, state changes follow (`push_sender`).
//!
//! Subscriptions belong to the user, not an account: there is no
//! `accountId`. They are kept as one of the account's settings. Payload
//! encryption (`keys`, RFC 8291) is not offered: a subscription with keys
//! is refused rather than sent in the clear.

use super::{method_error, Call, MethodResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tern_store::{AccountId, Store};

/// The account setting the subscriptions are kept in.
const SETTING: &str = "jmap.push-subscriptions";
/// Longest a subscription lives before the client must extend it.
const MAX_LIFETIME_SECS: i64 = 7 * 24 * 3600;
/// Most subscriptions per user.
const MAX_SUBSCRIPTIONS: usize = 32;

/// One subscription as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub device_client_id: String,
    pub url: String,
    /// Unix seconds.
    pub expires: i64,
    /// Data types to push (`None`: all).
    pub types: Option<Vec<String>>,
    pub verification_code: String,
    pub verified: bool,
}

pub async fn load(
    store: &Arc<dyn Store>,
    account: AccountId,
) -> tern_store::Result<Vec<Subscription>> {
    Ok(store
        .account_setting(account, SETTING)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

async fn save(
    store: &Arc<dyn Store>,
    account: AccountId,
    subs: &[Subscription],
) -> tern_store::Result<()> {
    let value = if subs.is_empty() {
        None
    } else {
        serde_json::to_string(subs).ok()
    };
    store
        .set_account_setting(account, SETTING, value.as_deref())
        .await
}

/// Forgets one subscription (the push service said it is gone).
pub async fn remove(
    store: &Arc<dyn Store>,
    account: AccountId,
    id: &str,
) -> tern_store::Result<()> {
    let mut subs = load(store, account).await?;
    subs.retain(|s| s.id != id);
    save(store, account, &subs).await
}

fn random_hex(bytes: usize) -> String {
    tern_core::password::random_bytes(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A client's `expires`, within our limit; ours when not given.
fn expiry(value: Option<&Value>, now: i64) -> Result<i64, Value> {
    let max = now + MAX_LIFETIME_SECS;
    match value {
        None | Some(Value::Null) => Ok(max),
        Some(Value::String(d)) => tern_mail::headers::parse_utc_date(d)
            .map(|t| t.min(max))
            .ok_or_else(|| json!({"type": "invalidProperties", "properties": ["expires"]})),
        Some(_) => Err(json!({"type": "invalidProperties", "properties": ["expires"]})),
    }
}

fn types_arg(value: Option<&Value>) -> Result<Option<Vec<String>>, Value> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|t| t.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| json!({"type": "invalidProperties", "properties": ["types"]})),
        Some(_) => Err(json!({"type": "invalidProperties", "properties": ["types"]})),
    }
}

fn object(s: &Subscription) -> Value {
    // The URL and keys are not given back (RFC 8620 §7.2.1).
    json!({
        "id": s.id,
        "deviceClientId": s.device_client_id,
        "url": null,
        "keys": null,
        "verificationCode": if s.verified { json!(s.verification_code) } else { Value::Null },
        "expires": super::email::utc_date(s.expires),
        "types": s.types,
    })
}

/// `PushSubscription/get`: no `accountId`, no state.
pub async fn get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let store = cx.server.mail.store();
    let subs = load(store, cx.account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let all = [
        "id",
        "deviceClientId",
        "url",
        "keys",
        "verificationCode",
        "expires",
        "types",
    ];
    let wanted = super::properties(&args, &all, |_| false)?;
    let pick = |s: &Subscription| {
        let o = object(s);
        Value::Object(
            wanted
                .iter()
                .filter_map(|p| o.get(p).map(|v| (p.clone(), v.clone())))
                .collect(),
        )
    };
    let (chosen, not_found) = super::pick(&args, subs, |s| s.id.clone())?;
    let list: Vec<Value> = chosen.iter().map(pick).collect();
    Ok(json!({ "list": list, "notFound": not_found }))
}

/// `PushSubscription/set`.
pub async fn set(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let store = cx.server.mail.store();
    let account = cx.account;
    let push = &cx.server.push;
    let _guard = push.edit.lock().await;
    let mut subs = load(store, account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let now = tern_core::time::unix_now();
    subs.retain(|s| s.expires > now);
    let (mut created, mut not_created) = (Map::new(), Map::new());
    let mut to_verify = Vec::new();
    if let Some(Value::Object(create)) = args.get("create") {
        for (creation_id, spec) in create {
            let result: Result<Subscription, Value> = (|| {
                let spec = spec
                    .as_object()
                    .ok_or_else(|| json!({"type": "invalidProperties"}))?;
                let invalid = |p: &str, why: &str| json!({"type": "invalidProperties", "properties": [p], "description": why});
                if spec.get("keys").is_some_and(|k| !k.is_null()) {
                    return Err(invalid("keys", "encrypted push (RFC 8291) is not offered"));
                }
                if spec.contains_key("verificationCode") || spec.contains_key("id") {
                    return Err(invalid("verificationCode", "set by the server"));
                }
                let device = spec
                    .get("deviceClientId")
                    .and_then(Value::as_str)
                    .filter(|d| !d.is_empty() && d.len() <= 255)
                    .ok_or_else(|| invalid("deviceClientId", "required"))?;
                let url = spec
                    .get("url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("url", "required"))?;
                push.url_allowed(url).map_err(|why| invalid("url", &why))?;
                if subs.len() >= MAX_SUBSCRIPTIONS {
                    return Err(json!({"type": "overQuota",
                        "description": format!("at most {MAX_SUBSCRIPTIONS} push subscriptions")}));
                }
                Ok(Subscription {
                    id: format!("p{}", random_hex(8)),
                    device_client_id: device.to_string(),
                    url: url.to_string(),
                    expires: expiry(spec.get("expires"), now)?,
                    types: types_arg(spec.get("types"))?,
                    verification_code: random_hex(16),
                    verified: false,
                })
            })();
            match result {
                Ok(sub) => {
                    created.insert(
                        creation_id.clone(),
                        json!({"id": sub.id, "keys": null, "expires": super::email::utc_date(sub.expires)}),
                    );
                    to_verify.push(sub.clone());
                    subs.push(sub);
                }
                Err(e) => {
                    not_created.insert(creation_id.clone(), e);
                }
            }
        }
    }
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    let mut verified_now = false;
    if let Some(Value::Object(update)) = args.get("update") {
        for (id, patch) in update {
            let Some(sub) = subs.iter_mut().find(|s| &s.id == id) else {
                not_updated.insert(id.clone(), json!({"type": "notFound"}));
                continue;
            };
            let result: Result<Value, Value> = (|| {
                let patch = patch
                    .as_object()
                    .ok_or_else(|| json!({"type": "invalidPatch"}))?;
                let mut changed = sub.clone();
                let mut out = Value::Null;
                for (key, value) in patch {
                    match key.as_str() {
                        "verificationCode" => {
                            if value.as_str() != Some(changed.verification_code.as_str()) {
                                return Err(json!({"type": "invalidProperties",
                                    "properties": ["verificationCode"], "description": "not the code sent"}));
                            }
                            changed.verified = true;
                        }
                        "expires" => {
                            changed.expires = expiry(Some(value), now)?;
                            out = json!({"expires": super::email::utc_date(changed.expires)});
                        }
                        "types" => changed.types = types_arg(Some(value))?,
                        other => {
                            return Err(json!({"type": "invalidProperties", "properties": [other],
                                "description": "only verificationCode, expires and types change"}))
                        }
                    }
                }
                verified_now |= changed.verified && !sub.verified;
                *sub = changed;
                Ok(out)
            })();
            match result {
                Ok(v) => {
                    updated.insert(id.clone(), v);
                }
                Err(e) => {
                    not_updated.insert(id.clone(), e);
                }
            }
        }
    }
    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    if let Some(Value::Array(destroy)) = args.get("destroy") {
        for id in destroy.iter().filter_map(Value::as_str) {
            let before = subs.len();
            subs.retain(|s| s.id != id);
            if subs.len() < before {
                destroyed.push(json!(id));
            } else {
                not_destroyed.insert(id.to_string(), json!({"type": "notFound"}));
            }
        }
    }
    save(store, account, &subs)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    if verified_now {
        push.watch(account);
    }
    // The verification goes out once the subscription is kept, so the
    // client's echo finds it.
    for sub in to_verify {
        let push = cx.server.push.clone();
        tokio::spawn(async move {
            let verification = json!({
                "@type": "PushVerification",
                "pushSubscriptionId": sub.id,
                "verificationCode": sub.verification_code,
            });
            if let Err(e) = push.post(&sub.url, &verification).await {
                tracing::info!("jmap push {}: verification not delivered: {e}", sub.id);
            }
        });
    }
    Ok(json!({
        "created": super::map_or_null(created),
        "updated": super::map_or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { Value::Array(destroyed) },
        "notCreated": super::map_or_null(not_created),
        "notUpdated": super::map_or_null(not_updated),
        "notDestroyed": super::map_or_null(not_destroyed),
    }))
}
