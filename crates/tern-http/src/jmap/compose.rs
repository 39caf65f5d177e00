//! `Email/set` create (RFC 8621 §4.6): an Email object a client wrote —
//! a draft, mostly — made into an RFC 5322 message with mail-builder,
//! then filed as `Email/import` files an upload.
//!
//! The body comes either as a whole `bodyStructure` or as `textBody`,
//! `htmlBody` and `attachments`, from which the usual tree is built:
//! `multipart/mixed` over `multipart/alternative` (text, then HTML with
//! its inline images in `multipart/related`) and the attachments. Text
//! comes from `bodyValues` by `partId`; anything else from a blob (an
//! upload, or a part of a stored message).

use super::header_forms::{self, HeaderProperty};
use super::{Call, MethodResult};
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::HeaderType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use tern_store::MailboxId;

/// Properties a client may give on create; the `header:` forms besides.
const SETTABLE: &[&str] = &[
    "mailboxIds",
    "keywords",
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
    "bodyStructure",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

/// Properties of a body part a client may give.
const PART_SETTABLE: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
    "subParts",
];

/// Deepest `bodyStructure` accepted.
const MAX_DEPTH: usize = 16;
/// Most body parts in one Email object.
const MAX_PARTS: usize = 1000;

/// Blobs the parts name, by stored blob and part index.
pub type Blobs = HashMap<(tern_store::BlobId, Option<usize>), Vec<u8>>;

/// A message made from an Email object, ready to file.
pub struct Composed {
    pub raw: Vec<u8>,
    pub mailboxes: Vec<MailboxId>,
    /// In Store (IMAP) form.
    pub keywords: Vec<String>,
    pub received_at: i64,
}

/// The usual spelling of the fields mail-builder recognises by name
/// (it adds its own `Date`, `Message-ID` and `MIME-Version` unless those
/// exact names are there), so a client's `header:date` is not doubled.
fn canonical_name(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "date" => "Date".into(),
        "message-id" => "Message-ID".into(),
        "mime-version" => "MIME-Version".into(),
        _ => name.to_string(),
    }
}

/// A SetError naming the properties at fault.
fn invalid(properties: &[&str], why: impl Into<String>) -> Value {
    json!({"type": "invalidProperties", "properties": properties, "description": why.into()})
}

/// The header fields a client's top-level properties name, lower-cased:
/// each may be given once, by its property or by a `header:` form.
fn field_of(property: &str) -> Option<String> {
    let field = match property {
        "messageId" => "message-id",
        "inReplyTo" => "in-reply-to",
        "references" => "references",
        "sender" => "sender",
        "from" => "from",
        "to" => "to",
        "cc" => "cc",
        "bcc" => "bcc",
        "replyTo" => "reply-to",
        "subject" => "subject",
        "sentAt" => "date",
        other => return HeaderProperty::parse(other).map(|h| h.name.to_ascii_lowercase()),
    };
    Some(field.to_string())
}

/// Builds the message an Email object describes (reading the blobs its
/// parts name) and what to file it with.
pub async fn compose(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    object: &Map<String, Value>,
) -> Result<Composed, Value> {
    let mut fields_seen: Vec<String> = Vec::new();
    for key in object.keys() {
        let settable = SETTABLE.contains(&key.as_str());
        let header = HeaderProperty::parse(key);
        if !settable && header.is_none() {
            return Err(invalid(&[key], format!("{key} cannot be set on create")));
        }
        if header
            .as_ref()
            .is_some_and(|h| h.name.to_ascii_lowercase().starts_with("content-"))
        {
            return Err(invalid(&[key], "Content-* fields belong to body parts"));
        }
        if let Some(field) = field_of(key).filter(|_| !object[key].is_null()) {
            if fields_seen.contains(&field) {
                return Err(invalid(&[key], format!("the {field} field is given twice")));
            }
            fields_seen.push(field);
        }
    }
    let mailboxes = match object.get("mailboxIds") {
        Some(Value::Object(map)) if !map.is_empty() => map
            .iter()
            .map(|(id, v)| {
                (v == &json!(true))
                    .then(|| super::ids::parse_mailbox_id(id))
                    .flatten()
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(&["mailboxIds"], "mailbox ids map to true"))?,
        _ => return Err(invalid(&["mailboxIds"], "at least one mailbox is required")),
    };
    let keywords: Vec<String> = match object.get("keywords") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(k)) if k.values().all(|v| v == &json!(true)) => {
            k.keys().map(|k| super::email::store_keyword(k)).collect()
        }
        Some(_) => return Err(invalid(&["keywords"], "keywords map to true")),
    };
    if let Some(bad) = keywords
        .iter()
        .find(|k| tern_store::validate_keyword(k).is_err())
    {
        return Err(invalid(&["keywords"], format!("{bad:?} is not a keyword")));
    }
    let received_at = match object.get("receivedAt") {
        None | Some(Value::Null) => tern_core::time::unix_now(),
        Some(Value::String(d)) => tern_mail::headers::parse_utc_date(d)
            .ok_or_else(|| invalid(&["receivedAt"], "not a UTCDate"))?,
        Some(_) => return Err(invalid(&["receivedAt"], "not a UTCDate")),
    };
    let limit = cx.server.limits.max_message_size;
    let parts = all_parts(object);
    if parts.len() > MAX_PARTS {
        return Err(invalid(
            &["attachments"],
            format!("at most {MAX_PARTS} body parts"),
        ));
    }
    let blobs = fetch_blobs(cx, account, &parts).await?;
    // What the parts will copy into the message, repeats counted, before
    // anything is built: a part may name a blob any number of times.
    let text: usize = object
        .get("bodyValues")
        .and_then(Value::as_object)
        .map_or(0, |v| {
            v.values()
                .filter_map(|b| b.get("value")?.as_str())
                .map(str::len)
                .sum()
        });
    let copied: u64 = parts
        .iter()
        .filter_map(|p| p.get("blobId")?.as_str())
        .filter_map(|id| blobs.get(&super::blob::parse_blob_id(id)?))
        .map(|b| b.len() as u64)
        .sum::<u64>()
        + text as u64;
    if copied > limit {
        return Err(json!({"type": "tooLarge", "maxSize": limit}));
    }
    let raw = build(object, &blobs, cx.server.hostname())?;
    if raw.len() as u64 > cx.server.limits.max_message_size {
        return Err(json!({"type": "tooLarge", "maxSize": cx.server.limits.max_message_size}));
    }
    Ok(Composed {
        raw,
        mailboxes,
        keywords,
        received_at,
    })
}

/// Every part of the object's body, leaves and all.
fn all_parts(object: &Map<String, Value>) -> Vec<&Value> {
    fn walk<'a>(part: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
        out.push(part);
        if depth < MAX_DEPTH {
            if let Some(Value::Array(children)) = part.get("subParts") {
                for child in children {
                    walk(child, out, depth + 1);
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Some(structure) = object.get("bodyStructure") {
        walk(structure, &mut out, 0);
    }
    for list in ["textBody", "htmlBody", "attachments"] {
        if let Some(Value::Array(parts)) = object.get(list) {
            for part in parts {
                walk(part, &mut out, 0);
            }
        }
    }
    out
}

/// The contents of every blob the parts name, by (blob, part), each
/// read once however often it is named.
async fn fetch_blobs(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    parts: &[&Value],
) -> Result<Blobs, Value> {
    let store = cx.server.mail.store();
    let mut blobs = HashMap::new();
    let mut missing = Vec::new();
    for part in parts {
        let Some(id) = part.get("blobId").and_then(Value::as_str) else {
            continue;
        };
        let Some((blob, index)) = super::blob::parse_blob_id(id) else {
            missing.push(id.to_string());
            continue;
        };
        if blobs.contains_key(&(blob.clone(), index)) {
            continue;
        }
        match store.read_blob(account, &blob).await {
            Ok(raw) => {
                let bytes = match index {
                    None => Some(raw),
                    Some(i) => super::body::part_of(&raw, i),
                };
                match bytes {
                    Some(b) => {
                        blobs.insert((blob, index), b);
                    }
                    None => missing.push(id.to_string()),
                }
            }
            Err(tern_store::StoreError::NotFound { .. }) => missing.push(id.to_string()),
            Err(e) => return Err(json!({"type": "serverFail", "description": e.to_string()})),
        }
    }
    if missing.is_empty() {
        Ok(blobs)
    } else {
        Err(json!({"type": "blobNotFound", "notFound": missing}))
    }
}

/// The message, built from the object and the blobs it names.
pub fn build(object: &Map<String, Value>, blobs: &Blobs, hostname: &str) -> Result<Vec<u8>, Value> {
    let mut message = MessageBuilder::new();
    for (property, field) in [
        ("from", "From"),
        ("sender", "Sender"),
        ("replyTo", "Reply-To"),
        ("to", "To"),
        ("cc", "Cc"),
        ("bcc", "Bcc"),
    ] {
        match object.get(property) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let value = header_forms::build_addresses(v)
                    .ok_or_else(|| invalid(&[property], "a list of EmailAddress objects"))?;
                message = message.header(field, value);
            }
        }
    }
    match object.get("subject") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            message = message.header("Subject", Text::new(header_forms::one_line(s)));
        }
        Some(_) => return Err(invalid(&["subject"], "a string")),
    }
    match object.get("sentAt") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let at = v
                .as_str()
                .and_then(|d| {
                    let p = HeaderProperty::parse("header:Date:asDate")?;
                    header_forms::build(&p, &json!(d))
                })
                .ok_or_else(|| invalid(&["sentAt"], "a Date"))?;
            for h in at {
                message = message.header("Date", h);
            }
        }
    }
    for (property, field) in [
        ("messageId", "Message-ID"),
        ("inReplyTo", "In-Reply-To"),
        ("references", "References"),
    ] {
        match object.get(property) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let value = header_forms::build_message_ids(v)
                    .ok_or_else(|| invalid(&[property], "a list of message ids"))?;
                message = message.header(field, value);
            }
        }
    }
    for (key, value) in object {
        let Some(h) = HeaderProperty::parse(key) else {
            continue;
        };
        let values =
            header_forms::build(&h, value).ok_or_else(|| invalid(&[key], "not of that form"))?;
        for v in values {
            message = message.header(canonical_name(&h.name), v);
        }
    }
    // A field given as null is not given: ours is added.
    let fields: Vec<String> = object
        .iter()
        .filter(|(_, v)| !v.is_null())
        .filter_map(|(k, _)| field_of(k))
        .collect();
    if !fields.iter().any(|f| f == "message-id") {
        let random: String = tern_core::password::random_bytes(12)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        message = message.header("Message-ID", MessageId::new(format!("{random}@{hostname}")));
    }
    if !fields.iter().any(|f| f == "date") {
        message = message.header("Date", Date::new(tern_core::time::unix_now()));
    }
    let values = match object.get("bodyValues") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(v)) => v.clone(),
        Some(_) => return Err(invalid(&["bodyValues"], "an object")),
    };
    for (id, v) in &values {
        let ok = v.get("value").is_some_and(Value::is_string)
            && v.get("isEncodingProblem")
                .is_none_or(|b| b == &json!(false))
            && v.get("isTruncated").is_none_or(|b| b == &json!(false));
        if !ok {
            return Err(invalid(
                &[&format!("bodyValues/{id}")],
                "a body value has a string value and is neither truncated nor an encoding problem",
            ));
        }
    }
    let parts = Parts {
        values: &values,
        blobs,
    };
    let body = if let Some(structure) = object.get("bodyStructure") {
        if ["textBody", "htmlBody", "attachments"]
            .iter()
            .any(|p| object.get(*p).is_some_and(|v| !v.is_null()))
        {
            return Err(invalid(
                &["bodyStructure"],
                "bodyStructure or textBody/htmlBody/attachments, not both",
            ));
        }
        parts.part(structure, "bodyStructure", 0)?
    } else {
        parts.tree_of_lists(object)?
    };
    message = message.body(body);
    message
        .write_to_vec()
        .map_err(|e| json!({"type": "serverFail", "description": e.to_string()}))
}

struct Parts<'a> {
    values: &'a Map<String, Value>,
    blobs: &'a Blobs,
}

impl Parts<'_> {
    /// `textBody`, `htmlBody` and `attachments` as one tree.
    fn tree_of_lists(&self, object: &Map<String, Value>) -> Result<MimePart<'static>, Value> {
        let list = |name: &str| -> Result<Vec<Value>, Value> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(v)) => Ok(v.clone()),
                Some(_) => Err(invalid(&[name], "an array of body parts")),
            }
        };
        let (text, html, attachments) =
            (list("textBody")?, list("htmlBody")?, list("attachments")?);
        let only = |parts: &[Value],
                    name: &str,
                    ctype: &str|
         -> Result<Option<MimePart<'static>>, Value> {
            match parts {
                [] => Ok(None),
                [one] => {
                    let t = one.get("type").and_then(Value::as_str).unwrap_or(ctype);
                    if !t.eq_ignore_ascii_case(ctype) || one.get("subParts").is_some() {
                        return Err(invalid(&[name], format!("{name} is one {ctype} part")));
                    }
                    let mut one = one.clone();
                    one["type"] = json!(ctype);
                    self.part(&one, name, 0).map(Some)
                }
                _ => Err(invalid(&[name], format!("{name} has at most one part"))),
            }
        };
        let text = only(&text, "textBody", "text/plain")?;
        let mut html = only(&html, "htmlBody", "text/html")?;
        let mut inline = Vec::new();
        let mut attached = Vec::new();
        for (i, a) in attachments.iter().enumerate() {
            let part = self.part(a, &format!("attachments/{i}"), 0)?;
            let is_inline = a.get("cid").is_some_and(|c| !c.is_null())
                && a.get("disposition").and_then(Value::as_str) != Some("attachment");
            if is_inline && html.is_some() {
                inline.push(part);
            } else {
                attached.push(part);
            }
        }
        if let (Some(h), false) = (html.take(), inline.is_empty()) {
            let mut related = vec![h];
            related.append(&mut inline);
            html = Some(MimePart::new(
                "multipart/related",
                BodyPart::Multipart(related),
            ));
        } else if let Some(h) = html.take() {
            html = Some(h);
        }
        let body = match (text, html) {
            (Some(t), Some(h)) => Some(MimePart::new(
                "multipart/alternative",
                BodyPart::Multipart(vec![t, h]),
            )),
            (t, h) => t.or(h),
        };
        Ok(match (body, attached.is_empty()) {
            (Some(b), true) => b,
            (None, true) => MimePart::new("text/plain", BodyPart::Text("".into())),
            (b, false) => {
                let mut all: Vec<MimePart<'static>> = b.into_iter().collect();
                all.append(&mut attached);
                MimePart::new("multipart/mixed", BodyPart::Multipart(all))
            }
        })
    }

    /// One `EmailBodyPart` (and its sub-parts) as a MIME part.
    fn part(&self, spec: &Value, path: &str, depth: usize) -> Result<MimePart<'static>, Value> {
        let spec = spec
            .as_object()
            .ok_or_else(|| invalid(&[path], "a body part is an object"))?;
        let bad = |p: &str, why: &str| invalid(&[&format!("{path}/{p}")], why);
        // Each field once (RFC 8621 §4.6): Content-Type is always
        // written (from `type`), the others when their property is given.
        let mut fields: Vec<&str> = vec!["content-type"];
        for (property, field) in [
            ("disposition", "content-disposition"),
            ("name", "content-disposition"),
            ("cid", "content-id"),
            ("language", "content-language"),
            ("location", "content-location"),
        ] {
            if spec.get(property).is_some_and(|v| !v.is_null()) {
                fields.push(field);
            }
        }
        let mut headers_given: Vec<String> = Vec::new();
        for key in spec.keys() {
            if !PART_SETTABLE.contains(&key.as_str()) && HeaderProperty::parse(key).is_none() {
                return Err(bad(key, "cannot be set on a body part"));
            }
            if let Some(h) = HeaderProperty::parse(key) {
                let name = h.name.to_ascii_lowercase();
                if name == "content-transfer-encoding" {
                    return Err(bad(key, "the server chooses the transfer encoding"));
                }
                if fields.contains(&name.as_str()) || headers_given.contains(&name) {
                    return Err(bad(key, "that field is given twice (or by a property)"));
                }
                headers_given.push(name);
            }
        }
        let string = |p: &str| -> Result<Option<String>, Value> {
            match spec.get(p) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(p, "a string")),
            }
        };
        let part_id = string("partId")?;
        let blob_id = string("blobId")?;
        let charset = string("charset")?;
        let name = string("name")?;
        let disposition = string("disposition")?;
        let cid = string("cid")?;
        let location = string("location")?;
        let ctype = string("type")?;
        for (p, v) in [
            ("type", &ctype),
            ("disposition", &disposition),
            ("charset", &charset),
        ] {
            if v.as_ref().is_some_and(|v| {
                v.is_empty()
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b';' && b != b'"')
            }) {
                return Err(bad(p, "a token"));
            }
        }
        let mut part = if let Some(Value::Array(children)) = spec.get("subParts") {
            let ctype = ctype.unwrap_or_else(|| "multipart/mixed".into());
            if !ctype.to_ascii_lowercase().starts_with("multipart/") || depth >= MAX_DEPTH {
                return Err(bad(
                    "subParts",
                    "only a multipart has sub-parts, 16 deep at most",
                ));
            }
            if part_id.is_some() || blob_id.is_some() {
                return Err(bad("subParts", "a multipart has no partId or blobId"));
            }
            let children = children
                .iter()
                .enumerate()
                .map(|(i, c)| self.part(c, &format!("{path}/subParts/{i}"), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            MimePart::new(ContentType::new(ctype), BodyPart::Multipart(children))
        } else {
            match (part_id, blob_id) {
                (Some(id), None) => {
                    if charset
                        .as_ref()
                        .is_some_and(|c| !c.eq_ignore_ascii_case("utf-8"))
                    {
                        return Err(bad("charset", "text from bodyValues is UTF-8"));
                    }
                    let text = self
                        .values
                        .get(&id)
                        .and_then(|v| v.get("value"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("partId", "no bodyValues entry for it"))?;
                    let ctype = ctype.unwrap_or_else(|| "text/plain".into());
                    if !ctype.to_ascii_lowercase().starts_with("text/") {
                        return Err(bad("type", "a partId gives text"));
                    }
                    let mut ct = ContentType::new(ctype).attribute("charset", "utf-8");
                    if let Some(n) = &name {
                        ct = ct.attribute("name", n.clone());
                    }
                    MimePart::new(ct, BodyPart::Text(text.to_string().into()))
                }
                (None, Some(id)) => {
                    let bytes = super::blob::parse_blob_id(&id)
                        .and_then(|key| self.blobs.get(&key))
                        .ok_or_else(|| bad("blobId", "no such blob"))?;
                    let ctype = ctype.unwrap_or_else(|| "application/octet-stream".into());
                    let mut ct = ContentType::new(ctype.clone());
                    if let Some(c) = &charset {
                        ct = ct.attribute("charset", c.clone());
                    }
                    if let Some(n) = &name {
                        ct = ct.attribute("name", n.clone());
                    }
                    let mut part = MimePart::new(ct, BodyPart::Binary(bytes.clone().into()));
                    // A message is never base64 (RFC 2046 §5.2.1).
                    if ctype.to_ascii_lowercase().starts_with("message/") {
                        let cte = if bytes.is_ascii() { "7bit" } else { "8bit" };
                        part = part.header("Content-Transfer-Encoding", Raw::new(cte));
                    }
                    part
                }
                _ => return Err(bad("partId", "a part has a partId or a blobId, not both")),
            }
        };
        if let Some(d) = disposition {
            let mut ct = ContentType::new(d);
            if let Some(n) = &name {
                ct = ct.attribute("filename", n.clone());
            }
            part = part.header("Content-Disposition", ct);
        } else if let Some(n) = &name {
            part = part.header(
                "Content-Disposition",
                ContentType::new("attachment").attribute("filename", n.clone()),
            );
        }
        if let Some(c) = cid {
            let c = c.trim_start_matches('<').trim_end_matches('>').to_string();
            if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_graphic()) {
                return Err(bad("cid", "a content id"));
            }
            part = part.header("Content-ID", MessageId::new(c));
        }
        match spec.get("language") {
            None | Some(Value::Null) => {}
            Some(Value::Array(tags)) if tags.iter().all(Value::is_string) => {
                let tags: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
                part = part.header("Content-Language", Text::new(tags.join(", ")));
            }
            Some(_) => return Err(bad("language", "a list of language tags")),
        }
        if let Some(l) = location {
            if !l.chars().all(|c| c.is_ascii_graphic()) {
                return Err(bad("location", "a URI"));
            }
            part = part.header("Content-Location", Raw::new(l));
        }
        for (key, value) in spec {
            let Some(h) = HeaderProperty::parse(key) else {
                continue;
            };
            let values: Vec<HeaderType<'static>> =
                header_forms::build(&h, value).ok_or_else(|| bad(key, "not of that form"))?;
            for v in values {
                part = part.header(h.name.clone(), v);
            }
        }
        Ok(part)
    }
}

/// `Email/set` create of each object: composed, then filed.
pub async fn create(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    create: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (creation_id, object) in create {
        let outcome: MethodResult = async {
            let object = object
                .as_object()
                .ok_or_else(|| invalid(&[], "an Email object"))?;
            let c = compose(cx, account, object).await?;
            super::blob::file(cx, account, c.raw, &c.mailboxes, c.keywords, c.received_at).await
        }
        .await;
        match outcome {
            Ok(v) => {
                created.insert(creation_id.clone(), v);
            }
            Err(e) => {
                not_created.insert(creation_id.clone(), e);
            }
        }
    }
    (created, not_created)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test blob's id.
    const PDF: &str = "baaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn built(object: Value) -> String {
        let object = object.as_object().unwrap().clone();
        let mut blobs = Blobs::new();
        blobs.insert(
            (tern_store::BlobId("a".repeat(64)), None),
            b"%PDF-1.4".to_vec(),
        );
        String::from_utf8(build(&object, &blobs, "mail.example").unwrap()).unwrap()
    }

    #[test]
    fn a_draft_with_text_html_and_attachment() {
        let raw = built(json!({
            "from": [{"name": "Ann Example", "email": "ann@example.com"}],
            "to": [{"email": "bob@example.org"}],
            "subject": "Café\r\nBcc: evil@x",
            "inReplyTo": ["orig@example.org"],
            "header:X-Mailer:asText": "Tern tests",
            "bodyValues": {"t": {"value": "Hello"}, "h": {"value": "<p>Hello <img src=cid:logo></p>"}},
            "textBody": [{"partId": "t"}],
            "htmlBody": [{"partId": "h", "type": "text/html"}],
            "attachments": [
                {"blobId": PDF, "type": "application/pdf", "name": "a.pdf"},
                {"blobId": PDF, "type": "image/png", "cid": "logo", "disposition": "inline"},
            ],
        }));
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(message.subject(), Some("Café Bcc: evil@x"));
        assert!(message.bcc().is_none(), "no injected Bcc:\n{raw}");
        assert_eq!(message.in_reply_to().as_text(), Some("orig@example.org"));
        assert!(message.message_id().unwrap().ends_with("@mail.example"));
        assert!(message.date().is_some());
        assert_eq!(message.body_text(0).unwrap().trim(), "Hello");
        assert!(message.body_html(0).unwrap().contains("<img"));
        assert_eq!(message.attachments().count(), 2);
        assert!(raw.contains("multipart/mixed"));
        assert!(raw.contains("multipart/related"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("X-Mailer: Tern tests"));
    }

    #[test]
    fn one_date_and_one_message_id_however_spelled() {
        let raw = built(json!({
            "header:date:asDate": "2026-12-06T12:00:00Z",
            "header:message-id:asMessageIds": ["a@b"],
            "messageId": null,
            "bodyValues": {"1": {"value": "x"}},
            "textBody": [{"partId": "1"}],
        }));
        assert_eq!(raw.matches("Date:").count(), 1, "{raw}");
        assert_eq!(
            raw.to_ascii_lowercase().matches("message-id:").count(),
            1,
            "{raw}"
        );
        assert!(raw.contains("<a@b>"), "{raw}");
    }

    #[test]
    fn bad_objects_are_refused() {
        let blobs = Blobs::new();
        for bad in [
            json!({"bodyStructure": {"partId": "1"}, "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "x"}}}),
            json!({"textBody": [{"partId": "missing"}]}),
            json!({"textBody": [{"partId": "1", "type": "text/html"}], "bodyValues": {"1": {"value": "x"}}}),
            json!({"textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "x", "isTruncated": true}}}),
            json!({"to": [{"email": "a@b>\r\nBcc: c@d"}]}),
            json!({"header:X-A": " a\r\nBcc: x"}),
            json!({"bodyStructure": {"partId": "1", "header:Content-Transfer-Encoding": "base64"}, "bodyValues": {"1": {"value": "x"}}}),
            json!({"attachments": [{"blobId": "bnothere"}]}),
            json!({"bodyStructure": {"type": "text/plain", "subParts": []}}),
            json!({"bodyStructure": {"partId": "1", "header:Content-Type": " text/html"}, "bodyValues": {"1": {"value": "x"}}}),
            json!({"bodyStructure": {"partId": "1", "disposition": "inline", "header:content-disposition": " x"}, "bodyValues": {"1": {"value": "x"}}}),
            json!({"bodyStructure": {"partId": "1", "header:X-A": " a", "header:x-a:asText": "b"}, "bodyValues": {"1": {"value": "x"}}}),
        ] {
            let object = bad.as_object().unwrap().clone();
            assert!(build(&object, &blobs, "h").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_whole_body_structure() {
        let raw = built(json!({
            "bodyStructure": {"type": "multipart/alternative", "subParts": [
                {"partId": "a", "type": "text/plain"},
                {"partId": "b", "type": "text/html", "language": ["en"]},
            ]},
            "bodyValues": {"a": {"value": "plain"}, "b": {"value": "<b>html</b>"}},
        }));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Content-Language: en"));
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(message.body_text(0).unwrap().trim(), "plain");
    }
}
