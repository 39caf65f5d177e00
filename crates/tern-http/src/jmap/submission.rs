//! Sending (RFC 8621 §6–7): `Identity/get` and `EmailSubmission/set`
//! `create`, which sends a stored email through the mail layer's one
//! submission path (`Mail::submit`: sender policy, local recipients
//! delivered at once, remote ones queued for the outbound worker), then
//! applies `onSuccessUpdateEmail` / `onSuccessDestroyEmail`.

use super::email::email_id;
use super::{method_error, Call, MethodResult};
use mail_parser::{Address, MessageParser};
use serde_json::{json, Map, Value};
use tern_store::EmailId;

/// The one identity of an account: its own address.
fn identity_id(account: tern_store::AccountId) -> String {
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

/// The addresses of a header's address list.
fn emails_of(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|a| a.address.as_deref().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn set(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let store = cx.server.mail.store();
    let record = store
        .account(account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let mut created = Map::new();
    let mut not_created = Map::new();
    let mut sent_emails: Map<String, Value> = Map::new();
    if let Some(Value::Object(create)) = args.get("create") {
        for (creation_id, spec) in create {
            match submit_one(cx, &record, spec).await {
                Ok((submission, email)) => {
                    sent_emails.insert(format!("#{creation_id}"), json!(email_id(email)));
                    created.insert(creation_id.clone(), submission);
                }
                Err(e) => {
                    not_created.insert(creation_id.clone(), e);
                }
            }
        }
    }
    let mut out = json!({
        "accountId": super::account_id(account),
        "oldState": "0",
        "newState": "0",
        "created": if created.is_empty() { Value::Null } else { Value::Object(created) },
        "notCreated": if not_created.is_empty() { Value::Null } else { Value::Object(not_created) },
    });
    // RFC 8621 §7.5: the email of each successful submission, by the
    // submission's creation id, gets the update (or is destroyed) as an
    // implicit Email/set whose response follows this one.
    let mut implicit = Map::new();
    implicit.insert("accountId".into(), json!(super::account_id(account)));
    let mut any = false;
    if let Some(Value::Object(updates)) = args.get("onSuccessUpdateEmail") {
        let mut update = Map::new();
        for (key, patch) in updates {
            if let Some(id) = sent_emails.get(key).and_then(Value::as_str) {
                update.insert(id.to_string(), patch.clone());
            }
        }
        any |= !update.is_empty();
        implicit.insert("update".into(), Value::Object(update));
    }
    if let Some(Value::Array(destroy)) = args.get("onSuccessDestroyEmail") {
        let ids: Vec<Value> = destroy
            .iter()
            .filter_map(|k| k.as_str().and_then(|k| sent_emails.get(k)).cloned())
            .collect();
        any |= !ids.is_empty();
        implicit.insert("destroy".into(), Value::Array(ids));
    }
    if any {
        out["_implicitEmailSet"] = super::email::set(cx, implicit).await?;
    }
    Ok(out)
}

/// Sends one email; the submission object and the email's id.
async fn submit_one(
    cx: &Call<'_>,
    account: &tern_store::Account,
    spec: &Value,
) -> Result<(Value, EmailId), Value> {
    let invalid = |p: &str| json!({"type": "invalidProperties", "properties": [p]});
    let spec = spec.as_object().ok_or_else(|| invalid("emailId"))?;
    let email = spec
        .get("emailId")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix('e'))
        .and_then(|n| n.parse().ok())
        .map(EmailId)
        .ok_or_else(|| invalid("emailId"))?;
    if let Some(identity) = spec.get("identityId").and_then(Value::as_str) {
        if identity != identity_id(account.id) {
            return Err(invalid("identityId"));
        }
    }
    let store = cx.server.mail.store();
    let record = store
        .email_records(account.id, &[email])
        .await
        .map_err(|e| json!({"type": "serverFail", "description": e.to_string()}))?
        .pop()
        .flatten()
        .ok_or_else(|| invalid("emailId"))?;
    let raw = store
        .read_blob(account.id, &record.blob_id)
        .await
        .map_err(|e| json!({"type": "serverFail", "description": e.to_string()}))?;
    // The envelope: as given, or from the message (RFC 8621 §7).
    let (mail_from, rcpt_to) = match spec.get("envelope") {
        Some(Value::Object(envelope)) => {
            let from = envelope
                .get("mailFrom")
                .and_then(|m| m.get("email"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("envelope"))?
                .to_string();
            let to: Vec<String> = envelope
                .get("rcptTo")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("envelope"))?
                .iter()
                .filter_map(|r| r.get("email").and_then(Value::as_str).map(String::from))
                .collect();
            (from, to)
        }
        _ => {
            let message = MessageParser::default()
                .parse(&raw[..])
                .ok_or_else(|| json!({"type": "invalidEmail"}))?;
            let from = emails_of(message.sender())
                .into_iter()
                .chain(emails_of(message.from()))
                .next()
                .unwrap_or_else(|| account.address.clone());
            let mut to = emails_of(message.to());
            to.extend(emails_of(message.cc()));
            to.extend(emails_of(message.bcc()));
            (from, to)
        }
    };
    if rcpt_to.is_empty() {
        return Err(json!({"type": "noRecipients"}));
    }
    // The recipients must not see who else got it blind (§7.5).
    let body = tern_mail::fields::without_fields(&raw, |name, _| name.eq_ignore_ascii_case(b"Bcc"))
        .unwrap_or(raw);
    match cx
        .server
        .mail
        .submit(
            account,
            &mail_from,
            &rcpt_to,
            body,
            false,
            cx.server.limits.max_recipients,
        )
        .await
    {
        Ok(report) => Ok((
            json!({
                "id": format!("s{}", report.id),
                "undoStatus": "final",
                "sendAt": super::email::utc_date(tern_core::time::unix_now()),
            }),
            email,
        )),
        Err(tern_mail::SubmitError::SenderNotAllowed { .. }) => {
            Err(json!({"type": "forbiddenFrom"}))
        }
        Err(
            tern_mail::SubmitError::UnknownRecipient(a)
            | tern_mail::SubmitError::InvalidAddress(a, _),
        ) => Err(json!({"type": "invalidRecipients", "invalidRecipients": [a]})),
        Err(tern_mail::SubmitError::NoRecipients) => Err(json!({"type": "noRecipients"})),
        Err(tern_mail::SubmitError::TooManyRecipients(_)) => {
            Err(json!({"type": "tooManyRecipients"}))
        }
        Err(e) => Err(json!({"type": "serverFail", "description": e.to_string()})),
    }
}

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
    let or_null = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": old_state,
        "newState": super::state(cx).await?,
        "updated": or_null(updated),
        "notUpdated": or_null(not_updated),
        "notCreated": or_null(not_created),
    }))
}
