//! An email's body as JMAP shows it (RFC 8621 §4.1.4): `bodyStructure`,
//! the `textBody`/`htmlBody`/`attachments` lists (mail-parser computes
//! them by the RFC's own algorithm) and `bodyValues`, from one parse of
//! the stored message.
//!
//! A part's `partId` is its index in the message's part list; its
//! `blobId` is the message's blob id with `.` and that index, which the
//! download endpoint decodes ([`part_of`]).

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde_json::{json, Map, Value};

/// Which body values `Email/get` asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValuesWanted {
    pub text: bool,
    pub html: bool,
    pub all: bool,
    /// `maxBodyValueBytes`; 0 for no limit.
    pub max_bytes: usize,
}

/// The body properties of the message `raw` (stored as `blob`), those in
/// `wanted` only.
pub fn properties(
    raw: &[u8],
    blob: &str,
    wanted: &[String],
    values: ValuesWanted,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(message) = MessageParser::default().parse(raw) else {
        return out;
    };
    let want = |p: &str| wanted.iter().any(|w| w == p);
    if want("bodyStructure") {
        out.insert("bodyStructure".into(), structure(&message, 0, blob, 0));
    }
    let list = |ids: &[u32]| -> Value {
        Value::Array(
            ids.iter()
                .map(|&i| part(&message, i as usize, blob))
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

/// One `EmailBodyPart` without sub-parts.
fn part(message: &Message<'_>, i: usize, blob: &str) -> Value {
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
    json!({
        "partId": if multipart { Value::Null } else { json!(i.to_string()) },
        "blobId": if multipart { Value::Null } else { json!(format!("{blob}.{i}")) },
        "size": p.len(),
        "name": p.attachment_name(),
        "type": ctype,
        "charset": charset,
        "disposition": p.content_disposition().map(|d| d.ctype().to_ascii_lowercase()),
        "cid": p.content_id(),
        "language": Value::Null,
        "location": p.content_location(),
    })
}

/// `bodyStructure`: the part tree from part `i` (multiparts carry
/// `subParts`), bounded in depth.
fn structure(message: &Message<'_>, i: usize, blob: &str, depth: usize) -> Value {
    let mut node = part(message, i, blob);
    if let (Some(p), true) = (message.parts.get(i), depth < 32) {
        if let PartType::Multipart(children) = &p.body {
            node["subParts"] = Value::Array(
                children
                    .iter()
                    .map(|&c| structure(message, c as usize, blob, depth + 1))
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
        let out = properties(RAW, "babc", &wanted, values);
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
