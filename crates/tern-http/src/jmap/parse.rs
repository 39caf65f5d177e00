//! `Email/parse` (RFC 8621 §4.9): a blob read as an email without filing
//! it — an uploaded message, or a `message/rfc822` attachment of a stored
//! one (its part blob id) — so a client shows an attached message.

use super::email::{summary_properties, ReadArgs};
use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};

/// Always null for a parsed blob (RFC 8621 §4.9).
const NULL_PROPERTIES: &[&str] = &["id", "mailboxIds", "keywords", "receivedAt", "threadId"];

pub async fn parse(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let blob_ids: Vec<String> = match args.get("blobIds") {
        Some(Value::Array(ids)) if ids.len() <= super::MAX_OBJECTS_IN_GET => ids
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| method_error("invalidArguments", "blobIds are strings"))?,
        Some(Value::Array(_)) => {
            return Err(method_error(
                "requestTooLarge",
                format!("at most {} blobs", super::MAX_OBJECTS_IN_GET),
            ))
        }
        _ => return Err(method_error("invalidArguments", "blobIds is required")),
    };
    // Every Email property may be asked for; those a blob cannot have
    // (RFC 8621 §4.9) come back null.
    let read = ReadArgs::parse(&args, super::email::PROPERTIES, &["bodyStructure"])?;
    let store = cx.server.mail.store();
    let (mut parsed, mut not_parsable, mut not_found) = (Map::new(), Vec::new(), Vec::new());
    let mut budget = super::ReadBudget::default();
    for id in blob_ids {
        let Some((blob, part)) = super::blob::parse_blob_id(&id) else {
            not_found.push(json!(id));
            continue;
        };
        let raw = match store.read_blob(account, &blob).await {
            Ok(raw) => raw,
            Err(tern_store::StoreError::NotFound { .. }) => {
                not_found.push(json!(id));
                continue;
            }
            Err(e) => return Err(method_error("serverFail", e.to_string())),
        };
        budget.spend(raw.len())?;
        let raw = match part {
            None => raw,
            Some(i) => match super::body::part_of(&raw, i) {
                Some(bytes) => bytes,
                None => {
                    not_found.push(json!(id));
                    continue;
                }
            },
        };
        if mail_parser::MessageParser::default()
            .parse(&raw[..])
            .is_none()
        {
            not_parsable.push(json!(id));
            continue;
        }
        let summary = tern_store::message::parse_message(&raw).summary;
        let mut values = summary_properties(&summary);
        values.insert("blobId".into(), json!(id));
        values.insert("size".into(), json!(raw.len()));
        for p in NULL_PROPERTIES {
            values.insert(p.to_string(), Value::Null);
        }
        let mut object: Map<String, Value> = read
            .wanted
            .iter()
            .filter_map(|p| values.get(p).map(|v| (p.clone(), v.clone())))
            .collect();
        if read.bodies {
            object.extend(super::body::properties(
                &raw,
                &id,
                &read.wanted,
                &read.part_wanted,
                read.values,
            ));
        }
        parsed.insert(id, Value::Object(object));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "parsed": if parsed.is_empty() { Value::Null } else { Value::Object(parsed) },
        "notParsable": if not_parsable.is_empty() { Value::Null } else { Value::Array(not_parsable) },
        "notFound": if not_found.is_empty() { Value::Null } else { Value::Array(not_found) },
    }))
}

/// `Email/copy` and `Blob/copy` (RFC 8620 §5.4, §6.3) copy between two
/// accounts; every account here is its owner's only one, so the account
/// to copy from is never one the caller may read.
pub async fn copy(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    cx.account_arg(&args)?;
    let from = args
        .get("fromAccountId")
        .and_then(Value::as_str)
        .ok_or_else(|| method_error("invalidArguments", "fromAccountId is required"))?;
    if args.get("accountId").and_then(Value::as_str) == Some(from) {
        return Err(method_error(
            "invalidArguments",
            "fromAccountId must differ from accountId (within one account, use Email/set)",
        ));
    }
    Err(method_error(
        "fromAccountNotFound",
        format!("no account {from} is shared with you"),
    ))
}
