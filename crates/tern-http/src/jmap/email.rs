//! `Email/query`, `Email/get` and `Email/set` (RFC 8621 §4): the account's
//! emails by id, over the Store's account-wide operations (the same rows
//! IMAP serves by UID, so a change on either side is seen on the other).
//!
//! Keywords are JMAP's form of IMAP flags (RFC 8621 §4.1.1): `\Seen` is
//! `$seen`, `\Flagged` `$flagged`, `\Answered` `$answered`, `\Draft`
//! `$draft`; other keywords are the same on both sides, lower-cased here.

use super::mailbox::mailbox_id;
use super::{method_error, properties, Call, MethodResult};
use serde_json::{json, Map, Value};
use tern_store::{EmailId, EmailQuery, KeywordOp, MailboxId, StoreError};

pub(super) const PROPERTIES: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "hasAttachment",
    "preview",
    "bodyStructure",
    "textBody",
    "htmlBody",
    "attachments",
    "bodyValues",
];
/// What `Email/get` without `properties` returns (RFC 8621 §4.2): every
/// property but `bodyStructure`.
const NOT_BY_DEFAULT: &[&str] = &["bodyStructure"];
/// Properties that need the message parsed again.
const BODY_PROPERTIES: &[&str] = &[
    "bodyStructure",
    "textBody",
    "htmlBody",
    "attachments",
    "bodyValues",
];
use super::email_query::MAX_QUERY_LIMIT;

pub use super::ids::{email_id, parse_email_id};

use super::ids::{parse_mailbox_id, thread_id};

/// The JMAP keyword of an IMAP flag or keyword.
pub fn jmap_keyword(k: &str) -> String {
    match k {
        "\\Seen" => "$seen".into(),
        "\\Flagged" => "$flagged".into(),
        "\\Answered" => "$answered".into(),
        "\\Draft" => "$draft".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// The Store (IMAP) form of a JMAP keyword.
pub fn store_keyword(k: &str) -> String {
    match k.to_ascii_lowercase().as_str() {
        "$seen" => "\\Seen".into(),
        "$flagged" => "\\Flagged".into(),
        "$answered" => "\\Answered".into(),
        "$draft" => "\\Draft".into(),
        _ => k.to_string(),
    }
}

fn store_fail(e: StoreError) -> Value {
    method_error("serverFail", e.to_string())
}

pub use tern_mail::headers::utc_date;

/// The properties the Store's summary of a message answers.
pub fn summary_properties(s: &tern_store::message::Summary) -> Map<String, Value> {
    let object = json!({
        "messageId": s.message_id.as_ref().map(|m| vec![m.clone()]),
        "inReplyTo": (!s.in_reply_to.is_empty()).then(|| s.in_reply_to.clone()),
        "references": (!s.references.is_empty()).then(|| s.references.clone()),
        "from": addresses(&s.from),
        "to": addresses(&s.to),
        "cc": addresses(&s.cc),
        "subject": s.subject,
        "sentAt": s.sent_at.map(utc_date),
        "hasAttachment": s.has_attachment,
        "preview": s.preview,
    });
    match object {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn addresses(list: &[tern_store::message::Mailbox]) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    Value::Array(
        list.iter()
            .map(|a| json!({ "name": a.name, "email": a.address }))
            .collect(),
    )
}

fn ids_arg(args: &Map<String, Value>) -> Result<Vec<String>, Value> {
    match args.get("ids") {
        Some(Value::Array(list)) => {
            if list.len() > super::MAX_OBJECTS_IN_GET {
                return Err(method_error(
                    "requestTooLarge",
                    format!("at most {} ids per get", super::MAX_OBJECTS_IN_GET),
                ));
            }
            list.iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| method_error("invalidArguments", "ids must be strings"))
        }
        // All of an account's emails at once: too many for one answer.
        None | Some(Value::Null) => Err(method_error(
            "requestTooLarge",
            "give the ids to get (Email/query finds them)",
        )),
        Some(_) => Err(method_error("invalidArguments", "ids must be an array")),
    }
}

/// The arguments `Email/get` and `Email/parse` share (RFC 8621 §4.2).
pub struct ReadArgs {
    pub wanted: Vec<String>,
    pub part_wanted: Vec<String>,
    pub values: super::body::ValuesWanted,
    /// Whether the message itself must be read (not only its summary).
    pub bodies: bool,
}

impl ReadArgs {
    /// `properties` (the `all` but `not_by_default` when not given),
    /// `bodyProperties` and the body value switches.
    pub fn parse(
        args: &Map<String, Value>,
        all: &[&str],
        not_by_default: &[&str],
    ) -> Result<ReadArgs, Value> {
        let wanted = match args.get("properties") {
            None | Some(Value::Null) => all
                .iter()
                .filter(|p| !not_by_default.contains(p))
                .map(|p| p.to_string())
                .collect(),
            _ => properties(args, all, super::body::is_header_property)?,
        };
        let part_wanted: Vec<String> = match args.get("bodyProperties") {
            None | Some(Value::Null) => super::body::DEFAULT_PART_PROPERTIES
                .iter()
                .map(|p| p.to_string())
                .collect(),
            Some(_) => {
                let mut part_args = Map::new();
                part_args.insert("properties".into(), args["bodyProperties"].clone());
                let mut list = properties(
                    &part_args,
                    super::body::PART_PROPERTIES,
                    super::body::is_header_property,
                )?;
                // `properties` adds the id, which a part does not have.
                list.retain(|p| p != "id");
                list
            }
        };
        let flag = |name: &str| args.get(name).and_then(Value::as_bool).unwrap_or(false);
        let values = super::body::ValuesWanted {
            text: flag("fetchTextBodyValues"),
            html: flag("fetchHTMLBodyValues"),
            all: flag("fetchAllBodyValues"),
            max_bytes: args
                .get("maxBodyValueBytes")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize,
        };
        let bodies = wanted
            .iter()
            .any(|p| BODY_PROPERTIES.contains(&p.as_str()) || super::body::is_header_property(p));
        Ok(ReadArgs {
            wanted,
            part_wanted,
            values,
            bodies,
        })
    }
}

pub async fn get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let ids = ids_arg(&args)?;
    let ReadArgs {
        wanted,
        part_wanted,
        values,
        bodies,
    } = ReadArgs::parse(&args, PROPERTIES, NOT_BY_DEFAULT)?;
    let state = super::state(cx).await?;
    let store = cx.server.mail.store();
    let parsed: Vec<Option<EmailId>> = ids.iter().map(|id| parse_email_id(id)).collect();
    let known: Vec<EmailId> = parsed.iter().flatten().copied().collect();
    let records = store
        .email_records(account, &known)
        .await
        .map_err(store_fail)?;
    let emails = store.emails(account, &known).await.map_err(store_fail)?;
    let mut by_id = known.iter().zip(records.into_iter().zip(emails));
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let mut budget = super::ReadBudget::default();
    for (id, parsed) in ids.iter().zip(parsed) {
        let Some(_) = parsed else {
            not_found.push(json!(id));
            continue;
        };
        let Some((_, (Some(record), Some(email)))) = by_id.next() else {
            not_found.push(json!(id));
            continue;
        };
        let mut all = summary_properties(&email.summary);
        all.extend([
            ("id".to_string(), json!(email_id(record.id))),
            (
                "blobId".to_string(),
                json!(format!("b{}", record.blob_id.0)),
            ),
            ("threadId".to_string(), json!(thread_id(record.thread_id))),
            (
                "mailboxIds".to_string(),
                Value::Object(
                    record
                        .mailboxes
                        .iter()
                        .map(|(m, _)| (mailbox_id(*m), json!(true)))
                        .collect(),
                ),
            ),
            (
                "keywords".to_string(),
                Value::Object(
                    record
                        .keywords
                        .iter()
                        .map(|k| (jmap_keyword(k), json!(true)))
                        .collect(),
                ),
            ),
            ("size".to_string(), json!(record.size)),
            (
                "receivedAt".to_string(),
                json!(utc_date(record.received_at)),
            ),
        ]);
        let mut object: Map<String, Value> = wanted
            .iter()
            .filter_map(|p| all.get(p).map(|v| (p.clone(), v.clone())))
            .collect();
        if bodies {
            let raw = store
                .read_blob(account, &record.blob_id)
                .await
                .map_err(store_fail)?;
            budget.spend(raw.len())?;
            let blob = format!("b{}", record.blob_id.0);
            object.extend(super::body::properties(
                &raw,
                &blob,
                &wanted,
                &part_wanted,
                values,
            ));
        }
        list.push(Value::Object(object));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "state": state,
        "list": list,
        "notFound": not_found,
    }))
}

/// `Email/set` (RFC 8621 §4.6): `update` of `keywords` and `mailboxIds`
/// (whole, or by patch paths `keywords/$seen`, `mailboxIds/m3`),
/// `destroy`, and `create` (drafts, in `compose`).
pub async fn set(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let store = cx.server.mail.store();
    let old_state = super::state(cx).await?;
    if let Some(expected) = args.get("ifInState").and_then(Value::as_str) {
        if expected != old_state {
            return Err(method_error("stateMismatch", "the state has moved on"));
        }
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    let mut not_created = Map::new();
    let mut created = Map::new();
    if let Some(Value::Object(create)) = args.get("create") {
        (created, not_created) = super::compose::create(cx, account, create).await;
    }
    if let Some(Value::Object(update)) = args.get("update") {
        for (id, patch) in update {
            let outcome = match (parse_email_id(id), patch.as_object()) {
                (Some(email), Some(patch)) => update_one(cx, account, email, patch).await,
                (None, _) => Err(json!({"type": "notFound"})),
                (_, None) => Err(json!({"type": "invalidPatch"})),
            };
            match outcome {
                Ok(()) => {
                    updated.insert(id.clone(), Value::Null);
                }
                Err(e) => {
                    not_updated.insert(id.clone(), e);
                }
            }
        }
    }
    let (destroyed, not_destroyed) = super::destroy_ids(&args, parse_email_id, |ids| async move {
        store
            .destroy_emails(account, &ids)
            .await
            .map(|c| c.changed)
            .map_err(store_fail)
    })
    .await?;
    let new_state = super::state(cx).await?;
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": old_state,
        "newState": new_state,
        "created": super::map_or_null(created),
        "updated": super::map_or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { Value::Array(destroyed) },
        "notCreated": super::map_or_null(not_created),
        "notUpdated": super::map_or_null(not_updated),
        "notDestroyed": super::map_or_null(not_destroyed),
    }))
}

/// One email's patch (RFC 8620 §5.3).
async fn update_one(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    email: EmailId,
    patch: &Map<String, Value>,
) -> Result<(), Value> {
    let store = cx.server.mail.store();
    let invalid = |p: &str| json!({"type": "invalidProperties", "properties": [p]});
    let record = store
        .email_records(account, &[email])
        .await
        .map_err(|e| json!({"type": "serverFail", "description": e.to_string()}))?
        .pop()
        .flatten()
        .ok_or_else(|| json!({"type": "notFound"}))?;
    let mut keywords: Vec<String> = record.keywords.iter().map(|k| jmap_keyword(k)).collect();
    let mut mailboxes: Vec<MailboxId> = record.mailboxes.iter().map(|(m, _)| *m).collect();
    let (mut keywords_changed, mut mailboxes_changed) = (false, false);
    for (path, value) in patch {
        if path == "keywords" {
            let map = value.as_object().ok_or_else(|| invalid("keywords"))?;
            if map.values().any(|v| v != &json!(true)) {
                return Err(invalid("keywords"));
            }
            keywords = map.keys().map(|k| k.to_ascii_lowercase()).collect();
            keywords_changed = true;
        } else if let Some(k) = path.strip_prefix("keywords/") {
            let k = k.to_ascii_lowercase();
            keywords.retain(|x| x != &k);
            match value {
                Value::Bool(true) => keywords.push(k),
                Value::Null => {}
                _ => return Err(invalid(path)),
            }
            keywords_changed = true;
        } else if path == "mailboxIds" {
            let map = value.as_object().ok_or_else(|| invalid("mailboxIds"))?;
            mailboxes = map
                .iter()
                .map(|(id, v)| (v == &json!(true)).then(|| parse_mailbox_id(id)).flatten())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("mailboxIds"))?;
            mailboxes_changed = true;
        } else if let Some(m) = path.strip_prefix("mailboxIds/") {
            let m = parse_mailbox_id(m).ok_or_else(|| invalid(path))?;
            mailboxes.retain(|x| *x != m);
            match value {
                Value::Bool(true) => mailboxes.push(m),
                Value::Null => {}
                _ => return Err(invalid(path)),
            }
            mailboxes_changed = true;
        } else {
            return Err(invalid(path));
        }
    }
    let fail = |e: StoreError| match e {
        StoreError::Invalid(why) => json!({"type": "invalidProperties", "description": why}),
        StoreError::NotFound { .. } => {
            json!({"type": "invalidProperties", "properties": ["mailboxIds"]})
        }
        other => json!({"type": "serverFail", "description": other.to_string()}),
    };
    if keywords_changed {
        let store_form: Vec<String> = keywords.iter().map(|k| store_keyword(k)).collect();
        store
            .set_email_keywords(account, &[email], KeywordOp::Replace, &store_form)
            .await
            .map_err(fail)?;
    }
    if mailboxes_changed {
        mailboxes.sort();
        mailboxes.dedup();
        store
            .set_email_mailboxes(account, email, &mailboxes)
            .await
            .map_err(fail)?;
    }
    Ok(())
}

/// `Thread/get` (RFC 8621 §3.1): each thread's emails, oldest first.
pub async fn thread_get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let ids = ids_arg(&args)?;
    let state = super::state(cx).await?;
    let store = cx.server.mail.store();
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        let Some(thread) = super::ids::parse_thread_id(&id) else {
            not_found.push(json!(id));
            continue;
        };
        let q = EmailQuery {
            in_thread: Some(thread),
            ascending: true,
            limit: MAX_QUERY_LIMIT,
            ..EmailQuery::default()
        };
        let found = store.query_emails(account, &q).await.map_err(store_fail)?;
        if found.ids.is_empty() {
            not_found.push(json!(id));
        } else {
            list.push(json!({
                "id": id,
                "emailIds": found.ids.iter().map(|e| email_id(*e)).collect::<Vec<_>>(),
            }));
        }
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "state": state,
        "list": list,
        "notFound": not_found,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_both_ways() {
        assert_eq!(jmap_keyword("\\Seen"), "$seen");
        assert_eq!(store_keyword("$SEEN"), "\\Seen");
        assert_eq!(jmap_keyword("$Junk"), "$junk");
        assert_eq!(store_keyword("$junk"), "$junk");
    }
}
