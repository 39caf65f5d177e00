//! `EmailSubmission` (RFC 8621 §7): `set` sends a stored email through
//! the mail layer's one submission path (`Mail::submit`: sender policy,
//! local recipients delivered at once, remote ones queued for the
//! outbound worker), records the submission, then applies
//! `onSuccessUpdateEmail` / `onSuccessDestroyEmail`; `get`, `changes`,
//! `query` and `queryChanges` read the recorded submissions.
//!
//! A submission is sent at once (`final`), or later when its envelope
//! asks (FUTURERELEASE's `HOLDFOR`/`HOLDUNTIL`, up to `maxDelayedSend`):
//! then it waits in the queue, `pending`, and `undoStatus: canceled`
//! takes it out until the queue starts on it.

use super::email::email_id;
use super::identity::identity_id;
use super::{method_error, Call, MethodResult};
use mail_parser::{Address, MessageParser};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use tern_store::{ChangeKind, EmailId, SubmissionId, SubmissionRecord};

pub fn submission_id(id: SubmissionId) -> String {
    format!("s{}", id.0)
}

fn parse_submission_id(id: &str) -> Option<SubmissionId> {
    id.strip_prefix('s')?.parse().ok().map(SubmissionId)
}

fn fail(e: impl std::fmt::Display) -> Value {
    method_error("serverFail", e.to_string())
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
    let record = store.account(account).await.map_err(fail)?;
    let old_state = super::state(cx).await?;
    if let Some(expected) = args.get("ifInState").and_then(Value::as_str) {
        if expected != old_state {
            return Err(method_error("stateMismatch", "the state has moved on"));
        }
    }
    let mut created = Map::new();
    let mut not_created = Map::new();
    // Each successful submission's email, by `#creationId` and by id, for
    // the implicit Email/set.
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
    let known: Vec<SubmissionRecord> = store.submissions(account, None).await.map_err(fail)?;
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    if let Some(Value::Object(update)) = args.get("update") {
        for (id, patch) in update {
            let exists = parse_submission_id(id).is_some_and(|s| known.iter().any(|k| k.id == s));
            let error = if !exists {
                json!({"type": "notFound"})
            } else if patch.get("undoStatus") == Some(&json!("canceled")) {
                let id_n = parse_submission_id(id).unwrap_or(SubmissionId(0));
                if store.cancel_submission(account, id_n).await.map_err(fail)? {
                    updated.insert(id.clone(), Value::Null);
                    continue;
                }
                json!({"type": "cannotUnsend",
                       "description": "the message has been sent (or its sending has begun)"})
            } else if patch.as_object().is_some_and(Map::is_empty) {
                updated.insert(id.clone(), Value::Null);
                continue;
            } else {
                json!({"type": "invalidProperties", "description": "only undoStatus may change"})
            };
            not_updated.insert(id.clone(), error);
        }
    }
    let (destroyed, not_destroyed) =
        super::destroy_ids(&args, parse_submission_id, |ids| async move {
            store.destroy_submissions(account, &ids).await.map_err(fail)
        })
        .await?;
    for k in &known {
        sent_emails.insert(submission_id(k.id), json!(email_id(k.email_id)));
    }
    let new_state = super::state(cx).await?;
    let mut out = json!({
        "accountId": super::account_id(account),
        "oldState": old_state,
        "newState": new_state,
        "created": super::map_or_null(created),
        "updated": super::map_or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { Value::Array(destroyed) },
        "notCreated": super::map_or_null(not_created),
        "notUpdated": super::map_or_null(not_updated),
        "notDestroyed": super::map_or_null(not_destroyed),
    });
    // RFC 8621 §7.5: the email of each successful submission, by the
    // submission's creation id, gets the update (or is destroyed) as an
    // implicit Email/set whose response follows this one.
    let succeeded = |key: &str| -> Option<Value> {
        let created_ok = out["created"]
            .as_object()
            .is_some_and(|c| c.contains_key(key.trim_start_matches('#')));
        let updated_ok = out["updated"]
            .as_object()
            .is_some_and(|u| u.contains_key(key));
        (created_ok && key.starts_with('#') || updated_ok)
            .then(|| sent_emails.get(key).cloned())
            .flatten()
    };
    let mut implicit = Map::new();
    implicit.insert("accountId".into(), json!(super::account_id(account)));
    let mut any = false;
    if let Some(Value::Object(updates)) = args.get("onSuccessUpdateEmail") {
        let mut update = Map::new();
        for (key, patch) in updates {
            if let Some(id) = succeeded(key).as_ref().and_then(Value::as_str) {
                update.insert(id.to_string(), patch.clone());
            }
        }
        any |= !update.is_empty();
        implicit.insert("update".into(), Value::Object(update));
    }
    if let Some(Value::Array(destroy)) = args.get("onSuccessDestroyEmail") {
        let ids: Vec<Value> = destroy
            .iter()
            .filter_map(|k| k.as_str().and_then(succeeded))
            .collect();
        any |= !ids.is_empty();
        implicit.insert("destroy".into(), Value::Array(ids));
    }
    if any {
        // The mail has gone: a failure here is the implicit call's own
        // error, never the submission's (a client would send it again).
        match super::email::set(cx, implicit).await {
            Ok(set) => out["_implicitEmailSet"] = set,
            Err(e) => out["_implicitEmailSetError"] = e,
        }
    }
    Ok(out)
}

/// `pending` while a message sent later waits for its release (it may
/// still be cancelled), `canceled` once cancelled, `final` otherwise.
fn undo_status(s: &SubmissionRecord) -> &'static str {
    if s.canceled {
        "canceled"
    } else if s.queue_id.is_some()
        && s.send_at > tern_core::time::unix_now()
        && s.delivery.values().all(|d| d.delivered == "queued")
    {
        "pending"
    } else {
        "final"
    }
}

/// FUTURERELEASE (RFC 4865) in a JMAP envelope's `mailFrom.parameters`:
/// `HOLDFOR` (seconds) or `HOLDUNTIL` (a date-time); when to release,
/// within [`MAX_DELAYED_SEND`].
fn release_time(envelope: &Map<String, Value>, now: i64) -> Result<Option<i64>, Value> {
    let Some(params) = envelope
        .get("mailFrom")
        .and_then(|m| m.get("parameters"))
        .and_then(Value::as_object)
    else {
        return Ok(None);
    };
    let bad = || {
        json!({"type": "invalidProperties", "properties": ["envelope"],
        "description": format!("HOLDFOR/HOLDUNTIL up to {MAX_DELAYED_SEND} seconds ahead")})
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let at = match (get("HOLDFOR"), get("HOLDUNTIL")) {
        (Some(secs), None) => secs
            .parse::<u32>()
            .ok()
            .and_then(|s| now.checked_add(i64::from(s)))
            .ok_or_else(bad)?,
        (None, Some(date)) => tern_mail::headers::parse_utc_date(date)
            .or_else(|| mail_parser::DateTime::parse_rfc3339(date).map(|d| d.to_timestamp()))
            .ok_or_else(bad)?,
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => return Err(bad()),
    };
    if at < now || at > now + MAX_DELAYED_SEND {
        return Err(bad());
    }
    Ok(Some(at))
}

/// The longest a message may wait to be sent (the session's
/// `maxDelayedSend`).
pub const MAX_DELAYED_SEND: i64 = 7 * 24 * 3600;

/// The submissions as JMAP objects; each recipient's delivery is what
/// the Store recorded: local ones delivered at submission, remote ones as
/// the queue settled them (RFC 8621 §7 `DeliveryStatus`).
fn objects(submissions: &[SubmissionRecord]) -> Vec<Value> {
    submissions
        .iter()
        .map(|s| {
            let status: Map<String, Value> = s
                .rcpt_to
                .iter()
                .map(|rcpt| {
                    let d = s.delivery.get(rcpt);
                    let delivered = d.map_or("unknown", |d| d.delivered.as_str());
                    let reply = d.and_then(|d| d.reply.clone()).unwrap_or_else(|| {
                        match delivered {
                            "yes" => "250 2.0.0 delivered",
                            "no" => "550 5.0.0 not delivered",
                            _ => "250 2.0.0 queued",
                        }
                        .to_string()
                    });
                    (
                        rcpt.clone(),
                        json!({"smtpReply": reply, "delivered": delivered, "displayed": "unknown"}),
                    )
                })
                .collect();
            json!({
                "id": submission_id(s.id),
                "identityId": s.identity_id,
                "emailId": email_id(s.email_id),
                "threadId": super::ids::thread_id(s.thread_id),
                "envelope": {
                    "mailFrom": {"email": s.mail_from, "parameters": null},
                    "rcptTo": s.rcpt_to.iter().map(|r| json!({"email": r, "parameters": null})).collect::<Vec<_>>(),
                },
                "sendAt": super::email::utc_date(s.send_at),
                "undoStatus": undo_status(s),
                "deliveryStatus": status,
                "dsnBlobIds": [],
                "mdnBlobIds": [],
            })
        })
        .collect()
}

const PROPERTIES: &[&str] = &[
    "id",
    "identityId",
    "emailId",
    "threadId",
    "envelope",
    "sendAt",
    "undoStatus",
    "deliveryStatus",
    "dsnBlobIds",
    "mdnBlobIds",
];

/// `EmailSubmission/get`.
pub async fn get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let wanted = super::properties(&args, PROPERTIES, |_| false)?;
    let state = super::state(cx).await?;
    let all = cx
        .server
        .mail
        .store()
        .submissions(account, None)
        .await
        .map_err(fail)?;
    let (chosen, not_found) = super::pick(&args, all, |s| submission_id(s.id))?;
    let list: Vec<Value> = objects(&chosen)
        .into_iter()
        .map(|o| {
            Value::Object(
                wanted
                    .iter()
                    .filter_map(|p| o.get(p).map(|v| (p.clone(), v.clone())))
                    .collect(),
            )
        })
        .collect();
    Ok(json!({
        "accountId": super::account_id(account),
        "state": state,
        "list": list,
        "notFound": not_found,
    }))
}

/// `EmailSubmission/changes`, from the journal's submission rows.
pub async fn changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = super::required_str(&args, "sinceState")?;
    let max = super::changes::max_changes(&args)?;
    let (rows, current) = super::changes::rows_since(cx, account, since, usize::MAX).await?;
    let (mut created, mut updated, mut destroyed) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let (mut new_state, mut has_more) = (current, false);
    let mut last = None;
    for row in rows {
        // At most maxChanges ids, and never half an operation's rows.
        let told = created.len() + updated.len() + destroyed.len();
        if told >= max && last.is_some_and(|m| m != row.modseq) {
            new_state = last.unwrap_or(current);
            has_more = true;
            break;
        }
        if matches!(
            row.kind,
            ChangeKind::SubmissionCreated { .. }
                | ChangeKind::SubmissionUpdated { .. }
                | ChangeKind::SubmissionDestroyed { .. }
        ) {
            last = Some(row.modseq);
        }
        match row.kind {
            ChangeKind::SubmissionCreated { submission_id } => {
                created.insert(submission_id);
            }
            // Made in the window: `created` says it all.
            ChangeKind::SubmissionUpdated { submission_id } if created.contains(&submission_id) => {
            }
            ChangeKind::SubmissionUpdated { submission_id } => {
                updated.insert(submission_id);
            }
            // Made and forgotten within the window: nothing to tell.
            ChangeKind::SubmissionDestroyed { submission_id } if created.remove(&submission_id) => {
            }
            ChangeKind::SubmissionDestroyed { submission_id } => {
                updated.remove(&submission_id);
                destroyed.insert(submission_id);
            }
            _ => {}
        }
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": since,
        "newState": new_state.0.to_string(),
        "hasMoreChanges": has_more,
        "created": created.into_iter().map(submission_id).collect::<Vec<_>>(),
        "updated": updated.into_iter().map(submission_id).collect::<Vec<_>>(),
        "destroyed": destroyed.into_iter().map(submission_id).collect::<Vec<_>>(),
    }))
}

/// The submissions a query's filter matches, in its order.
async fn matching(
    cx: &Call<'_>,
    args: &Map<String, Value>,
) -> Result<Vec<SubmissionRecord>, Value> {
    let account = cx.account_arg(args)?;
    let mut all = cx
        .server
        .mail
        .store()
        .submissions(account, None)
        .await
        .map_err(fail)?;
    let ids = |v: &Value| -> Result<Vec<String>, Value> {
        v.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .ok_or_else(|| method_error("invalidArguments", "a list of ids"))
    };
    if let Some(Value::Object(filter)) = args.get("filter") {
        for (key, value) in filter {
            match key.as_str() {
                "identityIds" => {
                    let l = ids(value)?;
                    all.retain(|s| l.contains(&s.identity_id));
                }
                "emailIds" => {
                    let l = ids(value)?;
                    all.retain(|s| l.contains(&email_id(s.email_id)));
                }
                "threadIds" => {
                    let l = ids(value)?;
                    all.retain(|s| l.contains(&super::ids::thread_id(s.thread_id)));
                }
                "undoStatus" => {
                    let wanted = value.as_str().unwrap_or("");
                    all.retain(|s| undo_status(s) == wanted);
                }
                "before" | "after" => {
                    let at = value
                        .as_str()
                        .and_then(tern_mail::headers::parse_utc_date)
                        .ok_or_else(|| method_error("invalidArguments", "a UTCDate"))?;
                    let before = key == "before";
                    all.retain(|s| {
                        if before {
                            s.send_at < at
                        } else {
                            s.send_at >= at
                        }
                    });
                }
                other => {
                    return Err(method_error(
                        "unsupportedFilter",
                        format!("{other} is not a condition this server knows"),
                    ))
                }
            }
        }
    }
    if let Some(first) = args
        .get("sort")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
    {
        match first.get("property").and_then(Value::as_str) {
            Some("emailId") => all.sort_by_key(|s| (s.email_id, s.id)),
            Some("threadId") => all.sort_by_key(|s| (s.thread_id, s.id)),
            Some("sentAt") => all.sort_by_key(|s| (s.send_at, s.id)),
            other => {
                return Err(method_error(
                    "unsupportedSort",
                    format!("cannot sort by {}", other.unwrap_or("that")),
                ))
            }
        }
        if first.get("isAscending") == Some(&json!(false)) {
            all.reverse();
        }
    }
    Ok(all)
}

/// `EmailSubmission/query`.
pub async fn query(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let state = super::state(cx).await?;
    let all = matching(cx, &args).await?;
    let total = all.len();
    let (position, page) = super::page_of(&args, &all);
    let ids: Vec<String> = all[page].iter().map(|s| submission_id(s.id)).collect();
    let mut out = json!({
        "accountId": super::account_id(account),
        "queryState": state,
        "canCalculateChanges": true,
        "position": position,
        "ids": ids,
    });
    if args.get("calculateTotal") == Some(&json!(true)) {
        out["total"] = json!(total);
    }
    Ok(out)
}

/// `EmailSubmission/queryChanges`: submissions never change once made, so
/// those created or destroyed since the old state are the whole story.
pub async fn query_changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = super::required_str(&args, "sinceQueryState")?;
    let (rows, current) = super::changes::rows_since(cx, account, since, usize::MAX).await?;
    let changed: BTreeSet<SubmissionId> = rows
        .iter()
        .filter_map(|r| match r.kind {
            ChangeKind::SubmissionCreated { submission_id }
            | ChangeKind::SubmissionUpdated { submission_id }
            | ChangeKind::SubmissionDestroyed { submission_id } => Some(submission_id),
            _ => None,
        })
        .collect();
    super::within_max_changes(&args, changed.len())?;
    let all = matching(cx, &args).await?;
    let added: Vec<Value> = all
        .iter()
        .enumerate()
        .filter(|(_, s)| changed.contains(&s.id))
        .map(|(i, s)| json!({"id": submission_id(s.id), "index": i}))
        .collect();
    let mut out = json!({
        "accountId": super::account_id(account),
        "oldQueryState": since,
        "newQueryState": current.0.to_string(),
        "removed": changed.iter().map(|s| submission_id(*s)).collect::<Vec<_>>(),
        "added": added,
    });
    if args.get("calculateTotal") == Some(&json!(true)) {
        out["total"] = json!(all.len());
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
        .and_then(super::ids::parse_email_id)
        .ok_or_else(|| invalid("emailId"))?;
    let identity_id = match spec.get("identityId").and_then(Value::as_str) {
        None => identity_id(account.id),
        Some(given) => {
            let known = super::identity::identities(cx).await?;
            if !known.iter().any(|(id, _)| id == given) {
                return Err(invalid("identityId"));
            }
            given.to_string()
        }
    };
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
    let now = tern_core::time::unix_now();
    let release_at = match spec.get("envelope") {
        Some(Value::Object(envelope)) => release_time(envelope, now)?,
        _ => None,
    };
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
                .map(|r| r.get("email").and_then(Value::as_str).map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("envelope"))?;
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
        .submit_at(
            account,
            &mail_from,
            &rcpt_to,
            body,
            false,
            cx.server.limits.max_recipients,
            release_at,
        )
        .await
    {
        Ok(report) => {
            let send_at = release_at.unwrap_or(now);
            let submission = SubmissionRecord {
                id: SubmissionId(0),
                email_id: email,
                thread_id: record.thread_id,
                identity_id,
                mail_from: mail_from.clone(),
                rcpt_to: rcpt_to.clone(),
                send_at,
                queue_id: report.queue_id,
                delivery: Default::default(),
                canceled: false,
            };
            let id = store
                .record_submission(account.id, &submission)
                .await
                .map_err(|e| json!({"type": "serverFail", "description": e.to_string()}))?;
            tracing::info!(
                "jmap submission s{} of {}: message {} to {} recipient(s)",
                id.0,
                account.address,
                report.id,
                rcpt_to.len()
            );
            Ok((
                json!({
                    "id": submission_id(id),
                    "threadId": super::ids::thread_id(record.thread_id),
                    "undoStatus": if release_at.is_some() { "pending" } else { "final" },
                    "sendAt": super::email::utc_date(send_at),
                }),
                email,
            ))
        }
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
