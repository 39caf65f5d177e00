//! Header fields as JMAP properties (RFC 8621 §4.1.2–4.1.3): the name
//! `header:{field}[:as{Form}][:all]`, a stored field's value in each form
//! for `Email/get`, and a client's value in each form written as a field
//! for `Email/set` create.
//!
//! Writing is where a client could smuggle a field of its own (a CR or LF
//! in a name, text or address), so names are checked against RFC 5322's
//! `ftext`, text loses its line breaks, and a raw value may fold but not
//! end a line.

use mail_builder::headers::{
    address::Address as BuildAddress, date::Date as BuildDate, message_id::MessageId, raw::Raw,
    text::Text, url::URL, HeaderType,
};
use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue};
use serde_json::{json, Value};

/// The parsed forms of RFC 8621 §4.1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Raw,
    Text,
    Addresses,
    GroupedAddresses,
    MessageIds,
    Date,
    Urls,
}

/// One `header:` property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProperty {
    /// The field name as the client wrote it.
    pub name: String,
    pub form: Form,
    /// Every instance (an array), not only the last.
    pub all: bool,
}

const ADDRESS_FIELDS: &[&str] = &[
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "resent-from",
    "resent-sender",
    "resent-reply-to",
    "resent-to",
    "resent-cc",
    "resent-bcc",
];
const ID_FIELDS: &[&str] = &[
    "message-id",
    "in-reply-to",
    "references",
    "resent-message-id",
];
const DATE_FIELDS: &[&str] = &["date", "resent-date"];
const URL_FIELDS: &[&str] = &[
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
];
const TEXT_FIELDS: &[&str] = &["subject", "comments", "keywords", "list-id"];
/// Fields RFC 5322 and RFC 2369 define with a form of their own (the
/// lists above) or none that JMAP parses.
const OTHER_KNOWN: &[&str] = &["received", "return-path"];

/// Whether `form` may be asked of the field `name` (RFC 8621 §4.1.2:
/// each parsed form for the fields it is defined on, and for any field
/// no RFC defines).
fn form_allowed(name: &str, form: Form) -> bool {
    let lower = name.to_ascii_lowercase();
    let l = lower.as_str();
    let known = [
        ADDRESS_FIELDS,
        ID_FIELDS,
        DATE_FIELDS,
        URL_FIELDS,
        TEXT_FIELDS,
        OTHER_KNOWN,
    ]
    .iter()
    .any(|list| list.contains(&l));
    match form {
        Form::Raw => true,
        _ if !known => true,
        Form::Text => TEXT_FIELDS.contains(&l),
        Form::Addresses | Form::GroupedAddresses => ADDRESS_FIELDS.contains(&l),
        Form::MessageIds => ID_FIELDS.contains(&l),
        Form::Date => DATE_FIELDS.contains(&l),
        Form::Urls => URL_FIELDS.contains(&l),
    }
}

/// A field name of RFC 5322 §3.6.8: printable ASCII but the colon.
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

impl HeaderProperty {
    /// `header:Subject:asText`, `header:X-Thing:all`; `None` for anything
    /// else, a form unknown or not allowed for the field.
    pub fn parse(property: &str) -> Option<HeaderProperty> {
        let rest = property.strip_prefix("header:")?;
        let mut pieces = rest.split(':');
        let name = pieces.next().filter(|n| valid_field_name(n))?;
        let mut form = Form::Raw;
        let mut all = false;
        let mut next = pieces.next();
        if let Some(f) = next.and_then(|f| f.strip_prefix("as")) {
            form = match f {
                "Raw" => Form::Raw,
                "Text" => Form::Text,
                "Addresses" => Form::Addresses,
                "GroupedAddresses" => Form::GroupedAddresses,
                "MessageIds" => Form::MessageIds,
                "Date" => Form::Date,
                "URLs" => Form::Urls,
                _ => return None,
            };
            next = pieces.next();
        }
        if next == Some("all") {
            all = true;
            next = pieces.next();
        }
        if next.is_some() || !form_allowed(name, form) {
            return None;
        }
        Some(HeaderProperty {
            name: name.to_string(),
            form,
            all,
        })
    }

    /// The property's value given the raw values (after the colon, up to
    /// the field's end) of every field of that name, in order.
    pub fn value(&self, raw_values: &[&[u8]]) -> Value {
        if self.all {
            Value::Array(
                raw_values
                    .iter()
                    .map(|r| parse_form(r, self.form))
                    .collect(),
            )
        } else {
            raw_values
                .last()
                .map_or(Value::Null, |r| parse_form(r, self.form))
        }
    }
}

/// One raw field value in a form.
pub fn parse_form(raw: &[u8], form: Form) -> Value {
    if form == Form::Raw {
        return json!(String::from_utf8_lossy(raw));
    }
    // The parsers read up to the field's terminating CRLF.
    let mut field = raw.to_vec();
    field.extend_from_slice(b"\r\n");
    let mut stream = MessageStream::new(&field);
    match form {
        Form::Raw => unreachable!("handled above"),
        Form::Text => match stream.parse_unstructured() {
            HeaderValue::Text(t) => json!(t.trim()),
            _ => json!(""),
        },
        Form::Addresses => match stream.parse_address() {
            HeaderValue::Address(a) => addresses(&a),
            _ => json!([]),
        },
        Form::GroupedAddresses => match stream.parse_address() {
            HeaderValue::Address(Address::Group(groups)) => Value::Array(
                groups
                    .iter()
                    .map(|g| {
                        json!({
                            "name": g.name,
                            "addresses": g.addresses.iter().map(address).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
            HeaderValue::Address(Address::List(list)) => json!([{
                "name": null,
                "addresses": list.iter().map(address).collect::<Vec<_>>(),
            }]),
            _ => json!([]),
        },
        Form::MessageIds => match stream.parse_id() {
            HeaderValue::Text(id) => json!([id]),
            HeaderValue::TextList(ids) => json!(ids),
            _ => Value::Null,
        },
        Form::Date => match stream.parse_date() {
            HeaderValue::DateTime(d) => json!(d.to_rfc3339()),
            _ => Value::Null,
        },
        Form::Urls => urls(raw),
    }
}

fn address(a: &mail_parser::Addr<'_>) -> Value {
    json!({ "name": a.name, "email": a.address.as_deref().unwrap_or("") })
}

fn addresses(a: &Address<'_>) -> Value {
    match a {
        Address::List(list) => Value::Array(list.iter().map(address).collect()),
        Address::Group(groups) => Value::Array(
            groups
                .iter()
                .flat_map(|g| g.addresses.iter().map(address))
                .collect(),
        ),
    }
}

/// RFC 2369 URLs: each `<...>` of the value; null when there is none.
fn urls(raw: &[u8]) -> Value {
    let text = String::from_utf8_lossy(raw);
    let found: Vec<String> = text
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>').map(|(url, _)| url.trim().to_string()))
        .filter(|u| !u.is_empty())
        .collect();
    if found.is_empty() {
        Value::Null
    } else {
        json!(found)
    }
}

/// Text a client gave for a header, each line break (CRLF, CR or LF) a
/// space.
pub fn one_line(text: &str) -> String {
    text.replace("\r\n", " ").replace(['\r', '\n'], " ")
}

/// An address a client gave: the address part may not carry anything
/// that would end it (spaces, brackets, controls).
fn build_address(v: &Value) -> Option<BuildAddress<'static>> {
    let email = v.get("email")?.as_str()?;
    if email.is_empty()
        || email
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>,;\"()".contains(c))
    {
        return None;
    }
    let name = match v.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if n.is_empty() => None,
        Some(Value::String(n)) => Some(one_line(n)),
        Some(_) => return None,
    };
    Some(BuildAddress::new_address(name, email.to_string()))
}

/// A list of `EmailAddress` objects as one address field.
pub fn build_addresses(v: &Value) -> Option<HeaderType<'static>> {
    let list = v
        .as_array()?
        .iter()
        .map(build_address)
        .collect::<Option<Vec<_>>>()?;
    Some(HeaderType::Address(BuildAddress::new_list(list)))
}

/// Message ids as a client gives them, without angle brackets.
pub fn build_message_ids(v: &Value) -> Option<HeaderType<'static>> {
    let ids = v
        .as_array()?
        .iter()
        .map(|id| {
            let id = id.as_str()?;
            (!id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '<' && c != '>'))
            .then(|| id.to_string())
        })
        .collect::<Option<Vec<_>>>()?;
    Some(HeaderType::MessageId(MessageId::new_list(ids.into_iter())))
}

/// A raw value may fold (a line break followed by white space) but not
/// start a field of its own.
fn valid_raw(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        b'\n' => matches!(bytes.get(i + 1), Some(b' ' | b'\t')),
        0 => false,
        _ => true,
    })
}

/// The fields to write for a client's value of this property (one per
/// instance with `:all`), or `None` if the value does not fit the form.
pub fn build(property: &HeaderProperty, value: &Value) -> Option<Vec<HeaderType<'static>>> {
    let one = |v: &Value| -> Option<HeaderType<'static>> {
        match property.form {
            Form::Raw => {
                let raw = v.as_str()?;
                // The raw value starts after the colon; ours adds a space.
                let raw = raw.strip_prefix(' ').unwrap_or(raw);
                valid_raw(raw).then(|| HeaderType::Raw(Raw::new(raw.to_string())))
            }
            Form::Text => Some(HeaderType::Text(Text::new(one_line(v.as_str()?)))),
            Form::Addresses => build_addresses(v),
            Form::GroupedAddresses => {
                let groups = v
                    .as_array()?
                    .iter()
                    .map(|g| {
                        let members = g
                            .get("addresses")?
                            .as_array()?
                            .iter()
                            .map(build_address)
                            .collect::<Option<Vec<_>>>()?;
                        match g.get("name") {
                            Some(Value::String(n)) => {
                                Some(BuildAddress::new_group(Some(one_line(n)), members))
                            }
                            _ => Some(BuildAddress::new_list(members)),
                        }
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(HeaderType::Address(BuildAddress::new_list(groups)))
            }
            Form::MessageIds => build_message_ids(v),
            Form::Date => {
                let at = tern_mail::headers::parse_utc_date(v.as_str()?)
                    .or_else(|| date_with_offset(v.as_str()?))?;
                Some(HeaderType::Date(BuildDate::new(at)))
            }
            Form::Urls => {
                let urls = v
                    .as_array()?
                    .iter()
                    .map(|u| {
                        let u = u.as_str()?;
                        (!u.is_empty() && u.chars().all(|c| c.is_ascii_graphic() && c != '>'))
                            .then(|| u.to_string())
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(HeaderType::URL(URL::new_list(urls.into_iter())))
            }
        }
    };
    if property.all {
        value.as_array()?.iter().map(one).collect()
    } else if value.is_null() {
        Some(Vec::new())
    } else {
        one(value).map(|h| vec![h])
    }
}

/// An RFC 3339 date with a zone offset (`Date` in JMAP), as unix seconds.
fn date_with_offset(text: &str) -> Option<i64> {
    let mut field = text.as_bytes().to_vec();
    field.extend_from_slice(b"\r\n");
    mail_parser::DateTime::parse_rfc3339(text)
        .map(|d| d.to_timestamp())
        .or_else(|| match MessageStream::new(&field).parse_date() {
            HeaderValue::DateTime(d) => Some(d.to_timestamp()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names() {
        let p = HeaderProperty::parse("header:List-Post:asURLs:all").unwrap();
        assert_eq!((p.form, p.all), (Form::Urls, true));
        assert_eq!(
            HeaderProperty::parse("header:X-Foo").unwrap().form,
            Form::Raw
        );
        assert!(HeaderProperty::parse("header:From:asDate").is_none());
        assert!(HeaderProperty::parse("header:Subject:asAddresses").is_none());
        assert!(HeaderProperty::parse("header:X-Foo:asDate").is_some());
        assert!(HeaderProperty::parse("header:Bad Name").is_none());
        assert!(HeaderProperty::parse("header:X:asText:all:more").is_none());
        assert!(HeaderProperty::parse("header:X:asWhat").is_none());
    }

    #[test]
    fn forms_of_a_value() {
        let raw = b" =?utf-8?q?caf=C3=A9?= <a@example.com>, \"B\" <b@example.com>";
        assert_eq!(
            parse_form(raw, Form::Addresses),
            json!([{"name": "café", "email": "a@example.com"}, {"name": "B", "email": "b@example.com"}])
        );
        assert_eq!(
            parse_form(b" =?utf-8?q?caf=C3=A9?=\r\n  x", Form::Text),
            json!("café x")
        );
        assert_eq!(
            parse_form(b" <a@x> <b@y>", Form::MessageIds),
            json!(["a@x", "b@y"])
        );
        assert_eq!(
            parse_form(b" <mailto:l@x>, <https://x/l>", Form::Urls),
            json!(["mailto:l@x", "https://x/l"])
        );
        assert_eq!(
            parse_form(b" Tue, 1 Jul 2003 10:52:37 +0200", Form::Date),
            json!("2003-07-01T10:52:37+02:00")
        );
        assert_eq!(parse_form(b" junk", Form::Date), Value::Null);
    }

    #[test]
    fn writing_refuses_injection() {
        let text = HeaderProperty::parse("header:X-A:asText").unwrap();
        let HeaderType::Text(t) = &build(&text, &json!("a\r\nBcc: x")).unwrap()[0] else {
            panic!()
        };
        assert!(!t.text.contains('\n'));
        let raw = HeaderProperty::parse("header:X-A").unwrap();
        assert!(build(&raw, &json!(" a\r\nBcc: x")).is_none());
        assert!(build(&raw, &json!(" a\r\n b")).is_some());
        let to = HeaderProperty::parse("header:To:asAddresses").unwrap();
        assert!(build(&to, &json!([{"email": "a@b>\r\nBcc: c@d"}])).is_none());
        assert!(build(&to, &json!([{"name": "A\r\nB", "email": "a@b"}])).is_some());
    }
}
