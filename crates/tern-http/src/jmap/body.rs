//! An email's body as JMAP shows it (RFC 8621 §4.1.4): `bodyStructure`,
//! the `textBody`/`htmlBody`/`attachments` lists (mail-parser computes
//! them by the RFC's own algorithm) and `bodyValues`, from one parse of
//! the stored message.
//!
//! A part's `partId` is its index in the message's part list; its
//! `blobId` is the message's blob id with `.` and that index, which the
//! download endpoint decodes ([`part_of`]).

use super::header_forms::{Form, HeaderProperty};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde_json::{json, Map, Value};

/// An `EmailBodyPart`'s properties (RFC 8621 §4.1.4).
pub const PART_PROPERTIES: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "headers",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
    "subParts",
];

/// What `bodyProperties` is when not given (RFC 8621 §4.2).
pub const DEFAULT_PART_PROPERTIES: &[&str] = &[
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
];

/// Convenience properties read from the header when asked for (the
/// Store's summary does not keep them): each is a field's address form.
const ADDRESS_PROPERTIES: &[(&str, &str)] = &[
    ("sender", "Sender"),
    ("bcc", "Bcc"),
    ("replyTo", "Reply-To"),
];

/// Whether `p` is a property of the message's header: `headers`, a
/// `header:` form, or one of [`ADDRESS_PROPERTIES`].
pub fn is_header_property(p: &str) -> bool {
    p == "headers"
        || HeaderProperty::parse(p).is_some()
        || ADDRESS_PROPERTIES.iter().any(|(name, _)| *name == p)
}

/// Which body values `Email/get` asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValuesWanted {
    pub text: bool,
    pub html: bool,
    pub all: bool,
    /// `maxBodyValueBytes`; 0 for no limit.
    pub max_bytes: usize,
}

/// The raw fields of part `i`'s header, in order: name and value (after
/// the colon, without the line end).
fn raw_fields<'a>(message: &'a Message<'a>, i: usize) -> Vec<(&'a str, &'a [u8])> {
    let raw = message.raw_message();
    let Some(part) = message.parts.get(i) else {
        return Vec::new();
    };
    part.headers
        .iter()
        .filter_map(|h| {
            let value = raw.get(h.offset_start as usize..h.offset_end as usize)?;
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            let value = value.strip_suffix(b"\r").unwrap_or(value);
            Some((h.name.as_str(), value))
        })
        .collect()
}

/// `headers` and the `header:` properties among `wanted`, of part `i`.
fn header_properties(message: &Message<'_>, i: usize, wanted: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    if !wanted.iter().any(|p| is_header_property(p)) {
        return out;
    }
    let fields = raw_fields(message, i);
    for p in wanted {
        if p == "headers" {
            out.insert(
                p.clone(),
                Value::Array(
                    fields
                        .iter()
                        .map(|(name, value)| {
                            json!({ "name": name, "value": super::header_forms::parse_form(value, Form::Raw) })
                        })
                        .collect(),
                ),
            );
        } else if let Some((_, field)) = ADDRESS_PROPERTIES.iter().find(|(name, _)| name == p) {
            let h = HeaderProperty {
                name: field.to_string(),
                form: Form::Addresses,
                all: false,
            };
            let values: Vec<&[u8]> = fields
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(field))
                .map(|(_, v)| *v)
                .collect();
            out.insert(p.clone(), h.value(&values));
        } else if let Some(h) = HeaderProperty::parse(p) {
            let values: Vec<&[u8]> = fields
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(&h.name))
                .map(|(_, v)| *v)
                .collect();
            out.insert(p.clone(), h.value(&values));
        }
    }
    out
}

/// The body properties of the message `raw` (stored as `blob`), those in
/// `wanted` only.
pub fn properties(
    raw: &[u8],
    blob: &str,
    wanted: &[String],
    part_wanted: &[String],
    values: ValuesWanted,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(message) = MessageParser::default().parse(raw) else {
        return out;
    };
    out.extend(header_properties(&message, 0, wanted));
    let want = |p: &str| wanted.iter().any(|w| w == p);
    if want("bodyStructure") {
        out.insert(
            "bodyStructure".into(),
            structure(&message, 0, blob, part_wanted, 0),
        );
    }
    let list = |ids: &[u32]| -> Value {
        Value::Array(
            ids.iter()
                .map(|&i| part(&message, i as usize, blob, part_wanted))
                .collect(),
        )
    };
    if want("textBody") {
        out.insert("textBody".into(), list(&message.text_body));
    }
    if want("htmlBody") {
        out.insert("htmlBody".into(), list(&message.html_body));
    }
    if want("attachments") {
        out.insert("attachments".into(), list(&message.attachments));
    }
    if want("bodyValues") {
        let mut chosen: Vec<usize> = Vec::new();
        if values.text {
            chosen.extend(message.text_body.iter().map(|&i| i as usize));
        }
        if values.html {
            chosen.extend(message.html_body.iter().map(|&i| i as usize));
        }
        if values.all {
            chosen.extend((0..message.parts.len()).filter(|&i| message.parts[i].is_text()));
        }
        chosen.sort_unstable();
        chosen.dedup();
        let mut body_values = Map::new();
        for i in chosen {
            let Some(p) = message.parts.get(i) else {
                continue;
            };
            let Some(text) = p.text_contents() else {
                continue;
            };
            let (value, truncated) = truncate(text, values.max_bytes);
            body_values.insert(
                i.to_string(),
                json!({ "value": value, "isEncodingProblem": false, "isTruncated": truncated }),
            );
        }
        out.insert("bodyValues".into(), Value::Object(body_values));
    }
    out
}

/// At most `max` bytes of `text` (0: all), cut at a character boundary.
fn truncate(text: &str, max: usize) -> (&str, bool) {
    if max == 0 || text.len() <= max {
        return (text, false);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (&text[..cut], true)
}

/// One `EmailBodyPart` without sub-parts: the properties in `wanted`.
fn part(message: &Message<'_>, i: usize, blob: &str, wanted: &[String]) -> Value {
    let Some(p) = message.parts.get(i) else {
        return Value::Null;
    };
    let (ctype, charset) = match p.content_type() {
        Some(ct) => (
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("plain")).to_ascii_lowercase(),
            ct.attribute("charset").map(str::to_string),
        ),
        None => match &p.body {
            PartType::Message(_) => ("message/rfc822".to_string(), None),
            PartType::Multipart(_) => ("multipart/mixed".to_string(), None),
            _ => ("text/plain".to_string(), Some("us-ascii".to_string())),
        },
    };
    let charset = charset.or_else(|| ctype.starts_with("text/").then(|| "us-ascii".to_string()));
    let multipart = matches!(p.body, PartType::Multipart(_));
    let all = json!({
        "partId": if multipart { Value::Null } else { json!(i.to_string()) },
        "blobId": if multipart { Value::Null } else { json!(format!("{blob}.{i}")) },
        "size": p.len(),
        "name": p.attachment_name(),
        "type": ctype,
        "charset": charset,
        "disposition": p.content_disposition().map(|d| d.ctype().to_ascii_lowercase()),
        "cid": p.content_id(),
        "language": match p.content_language() {
            mail_parser::HeaderValue::Text(t) => json!([t]),
            mail_parser::HeaderValue::TextList(l) => json!(l),
            _ => Value::Null,
        },
        "location": p.content_location(),
    });
    let mut out: Map<String, Value> = wanted
        .iter()
        .filter_map(|w| all.get(w).map(|v| (w.clone(), v.clone())))
        .collect();
    out.extend(header_properties(message, i, wanted));
    Value::Object(out)
}

/// `bodyStructure`: the part tree from part `i` (multiparts carry
/// `subParts`), bounded in depth.
fn structure(
    message: &Message<'_>,
    i: usize,
    blob: &str,
    wanted: &[String],
    depth: usize,
) -> Value {
    let mut node = part(message, i, blob, wanted);
    if let (Some(p), true) = (message.parts.get(i), depth < 32) {
        if let PartType::Multipart(children) = &p.body {
            node["subParts"] = Value::Array(
                children
                    .iter()
                    .map(|&c| structure(message, c as usize, blob, wanted, depth + 1))
                    .collect(),
            );
        }
    }
    node
}

/// The decoded content of part `index` of `raw` (a download of a part's
/// blob id).
pub fn part_of(raw: &[u8], index: usize) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    let p = message.parts.get(index)?;
    if matches!(p.body, PartType::Multipart(_)) {
        return None;
    }
    Some(p.contents().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
caf\xc3\xa9 au lait\r\n--x\r\nContent-Type: application/pdf; name=a.pdf\r\n\
Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--x--\r\n";

    #[test]
    fn parts_lists_and_values() {
        let wanted: Vec<String> = ["bodyStructure", "textBody", "attachments", "bodyValues"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let values = ValuesWanted {
            text: true,
            max_bytes: 4,
            ..ValuesWanted::default()
        };
        let part_wanted: Vec<String> = PART_PROPERTIES.iter().map(|s| s.to_string()).collect();
        let mut wanted = wanted;
        wanted.push("header:Subject:asText".into());
        wanted.push("headers".into());
        let out = properties(RAW, "babc", &wanted, &part_wanted, values);
        assert_eq!(out["header:Subject:asText"], "s");
        assert_eq!(out["headers"][0], json!({"name": "From", "value": " a@b"}));
        assert_eq!(
            out["attachments"][0]["headers"][1],
            json!({"name": "Content-Disposition", "value": " attachment; filename=a.pdf"})
        );
        assert_eq!(out["bodyStructure"]["type"], "multipart/mixed");
        assert_eq!(
            out["bodyStructure"]["subParts"].as_array().unwrap().len(),
            2
        );
        assert_eq!(out["textBody"][0]["type"], "text/plain");
        assert_eq!(out["textBody"][0]["charset"], "utf-8");
        let attachment = &out["attachments"][0];
        assert_eq!(attachment["name"], "a.pdf");
        assert_eq!(attachment["disposition"], "attachment");
        let part = attachment["partId"].as_str().unwrap();
        assert_eq!(attachment["blobId"], format!("babc.{part}"));
        let text_part = out["textBody"][0]["partId"].as_str().unwrap();
        let value = &out["bodyValues"][text_part];
        // "café" is 5 bytes: 4 would split the é, so 3 are kept.
        assert_eq!(value["value"], "caf");
        assert_eq!(value["isTruncated"], true);
        assert_eq!(part_of(RAW, part.parse().unwrap()).unwrap(), b"%PDF-");
    }
}
