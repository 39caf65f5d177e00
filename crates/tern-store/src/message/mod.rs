//! Parsing a message once, at delivery, into everything readers need.
//!
//! [`parse_message`] runs mail-parser over the raw RFC 5322 message and
//! produces a [`ParsedMessage`]: the IMAP ENVELOPE (RFC 9051 §7.5.2), the
//! MIME structure with byte offsets for BODYSTRUCTURE and BODY[section]
//! (RFC 2045/2046), a decoded [`Summary`] for message lists and threading
//! (with the RFC 5256 §2.1 base subject), and the text to index for search.
//! It is stored next to the blob as JSON, so no read ever parses again.
//!
//! Two views of the same header, on purpose: [`Envelope`] and the
//! [`MimePart`] fields are raw (unfolded, not decoded), because IMAP sends
//! them verbatim; [`Summary`] is decoded for people (JMAP, webmail).
//!
//! Must never panic, whatever the bytes: the input is whatever a peer sent.
//! Input that is not a message at all still yields a [`ParsedMessage`]
//! (one text/plain part spanning the bytes).

pub mod date;
mod envelope;

/// A header value with its RFC 2047 encoded-words decoded (as
/// unstructured text).
pub fn decode_words(value: &str) -> String {
    let raw = format!("Subject: {}\r\n\r\n", value.trim());
    mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

/// The addresses of an address-list field value (RFC 5322 §3.4), as IMAP's
/// ENVELOPE gives them: group markers included.
pub fn addresses(value: &str) -> Vec<EnvelopeAddress> {
    envelope::parse_address_list(value)
}
mod header;
mod prepared;
mod structure;
mod subject;

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

pub use self::prepared::{crlf_size, PreparedMessage};

use self::header::{last_value, message_ids, raw_fields};
use self::structure::{plain_text_part, StructureBuilder, MAX_MIME_DEPTH};

/// Most bytes of [`ParsedMessage::body_text`]. The search index needs words,
/// not whole attachments' worth of text: 1 MiB holds a long book chapter,
/// far past any mail body people search, while bounding the index row and
/// the JSON stored per delivery whatever size the message is.
pub const MAX_INDEXED_TEXT: usize = 1024 * 1024;

/// Characters of body text kept in [`Summary::preview`]; JMAP's
/// `Email/preview` is "up to 256 characters" (RFC 8621 §4.1.4).
const PREVIEW_CHARS: usize = 256;

/// Everything a read needs about one message, computed at delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedMessage {
    pub envelope: Envelope,
    /// The root MIME part; its header is the message header.
    pub structure: MimePart,
    pub summary: Summary,
    /// Text for full-text search: text/* parts decoded to UTF-8, text/html
    /// with tags stripped and entities decoded, embedded messages' text,
    /// and attachment file names, one per line. At most
    /// [`MAX_INDEXED_TEXT`] bytes, cut at a char boundary.
    pub body_text: String,
}

/// RFC 9051 §7.5.2 ENVELOPE fields, kept as they appear in the header (raw,
/// unfolded, NOT decoded: encoded-words stay encoded) because IMAP returns
/// them verbatim.
///
/// As RFC 9051 requires, `sender` and `reply_to` are already filled from
/// `from` when their header fields are absent or empty, so readers send
/// the struct as it is. When a field occurs more than once the last one is
/// used (see `header.rs` for why).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<EnvelopeAddress>,
    pub sender: Vec<EnvelopeAddress>,
    pub reply_to: Vec<EnvelopeAddress>,
    pub to: Vec<EnvelopeAddress>,
    pub cc: Vec<EnvelopeAddress>,
    pub bcc: Vec<EnvelopeAddress>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// One IMAP address structure; a group is represented as in RFC 9051
/// (start: mailbox=Some(group name), host=None; end: mailbox=None,
/// host=None).
///
/// `name` is the raw display phrase (quotes removed, encoded-words kept),
/// or a trailing comment when there is no phrase (`a@b (Name)`). An
/// address is never mistaken for a group marker: a missing domain or local
/// part is filled with a placeholder rather than left NIL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeAddress {
    pub name: Option<String>,
    pub adl: Option<String>,
    pub mailbox: Option<String>,
    pub host: Option<String>,
}

/// One MIME part with byte offsets into the raw message, so BODY[1.2.HEADER],
/// BODY[1.MIME], BODY[2.TEXT] are served by slicing the blob.
///
/// Invariants readers may rely on:
/// - `header_start <= body_start <= body_end <= raw.len()`.
/// - `media_type == "multipart"` exactly when `children` is non-empty.
/// - `message` is `Some` exactly for message/rfc822 and message/global.
///   A message/rfc822 that cannot be described in place (it is base64 or
///   quoted-printable encoded, or empty) is reported as
///   application/octet-stream, as is a part nested deeper than our limit;
///   a multipart whose boundary never occurs is reported as text/plain.
///   Either way the bytes are all there and BODYSTRUCTURE stays valid.
/// - In an embedded message, `structure.header_start..structure.body_end`
///   is exactly the enclosing part's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimePart {
    /// Lowercase, e.g. "text" (default text/plain per RFC 2045 §5.2; inside
    /// multipart/digest default message/rfc822).
    pub media_type: String,
    /// Lowercase, e.g. "plain".
    pub media_subtype: String,
    /// Content-Type parameters, names lowercase, values as mail-parser
    /// gives them (unquoted; RFC 2231 continuations joined and decoded).
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    /// Content-Transfer-Encoding as given (IMAP shows "7BIT" when absent;
    /// that default is the reader's to apply).
    pub encoding: Option<String>,
    pub md5: Option<String>,
    pub disposition: Option<Disposition>,
    pub language: Vec<String>,
    pub location: Option<String>,
    /// Offsets into raw: `header_start..body_start` is the part's MIME
    /// header including its terminating blank line.
    pub header_start: usize,
    pub body_start: usize,
    /// RFC 2046 §5.1.1: the line break before a boundary delimiter belongs
    /// to the delimiter, so it is not part of the body.
    pub body_end: usize,
    /// `body_end - body_start`, in encoded form (IMAP body size).
    pub body_size: usize,
    /// Lines of the encoded body (IMAP body-fld-lines for text/* and
    /// message/rfc822); a last line without a line break counts.
    pub body_lines: usize,
    /// For multipart/*.
    pub children: Vec<MimePart>,
    /// For message/rfc822 (and message/global).
    pub message: Option<Box<EmbeddedMessage>>,
}

/// Content-Disposition (RFC 2183).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    /// Lowercase, e.g. "attachment".
    pub kind: String,
    pub params: Vec<(String, String)>,
}

/// The message inside a message/rfc822 part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedMessage {
    pub envelope: Envelope,
    pub structure: MimePart,
}

/// What a message list and threading need, decoded for people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Decoded (RFC 2047), "" when absent.
    pub subject: String,
    /// Decoded display names; group members are listed, group names not.
    pub from: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Date header as unix seconds, None if absent or unparseable.
    pub sent_at: Option<i64>,
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// Message ids, without brackets.
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// RFC 5256 §2.1 base subject of `subject` (Re:/Fwd:/[blob] prefixes
    /// and "(fwd)" trailers stripped, whitespace collapsed). Case is kept:
    /// the comparison is case-insensitive, so comparers lowercase.
    pub base_subject: String,
    /// The first 256 characters of the text body, whitespace collapsed.
    pub preview: String,
    /// JMAP's rule (RFC 8621 §4.1.4): some attachment is not
    /// Content-Disposition: inline.
    pub has_attachment: bool,
    /// Size of the top-level header block incl. the blank line (offset of
    /// the body).
    pub header_size: usize,
}

/// A person's address, decoded for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// Parses a raw message. Never panics, on any input (garbage, empty,
/// truncated, binary): a message mail-parser cannot parse still yields a
/// [`ParsedMessage`] with a single text/plain part spanning the raw bytes.
pub fn parse_message(raw: &[u8]) -> ParsedMessage {
    // mail-parser is written not to panic, but it has debug assertions and
    // index arithmetic on paths only hostile input reaches. Delivery must
    // not fail (or take the process down) because of one message, so a
    // panic in there degrades to the unparsed form. (This cannot catch
    // stack exhaustion; `drop_flat` and the depth limits prevent that.)
    panic::catch_unwind(AssertUnwindSafe(|| parse_with_mail_parser(raw)))
        .ok()
        .flatten()
        .unwrap_or_else(|| unparsed(raw))
}

/// The normal path; None when the bytes are not a message.
fn parse_with_mail_parser(raw: &[u8]) -> Option<ParsedMessage> {
    let message = MessageParser::default().parse(raw)?;
    let parsed = from_parsed(raw, &message);
    drop_flat(message);
    parsed
}

fn from_parsed(raw: &[u8], message: &Message<'_>) -> Option<ParsedMessage> {
    let root = message.parts.first()?;
    let header_end = (root.offset_body as usize).min(raw.len());
    let fields = raw_fields(&raw[..header_end]);
    // mail-parser treats any first line as a header (it even takes text
    // with no colon as a field name). If no line of the header block is a
    // real field, and the message does not open with the blank line of an
    // empty header, these bytes are not a message: index them as text.
    let starts_blank = raw.starts_with(b"\n") || raw.starts_with(b"\r\n");
    if fields.is_empty() && !starts_blank {
        return None;
    }

    let structure = StructureBuilder::new(raw).root(message);
    let summary = summarize(message, &fields, structure.body_start);
    let mut body_text = String::new();
    collect_text(message, 0, &mut body_text);
    Some(ParsedMessage {
        envelope: envelope::build_envelope(&fields),
        structure,
        summary,
        body_text,
    })
}

/// What bytes that are not a message become: no header, one text/plain
/// body spanning everything, indexed as (lossy) UTF-8.
fn unparsed(raw: &[u8]) -> ParsedMessage {
    let text = String::from_utf8_lossy(raw);
    let mut body_text = String::new();
    push_capped(&mut body_text, &text);
    ParsedMessage {
        envelope: Envelope::default(),
        structure: plain_text_part(raw, 0, 0, raw.len()),
        summary: Summary {
            preview: preview_of(&text),
            ..Summary::default()
        },
        body_text,
    }
}

fn summarize(
    message: &Message<'_>,
    fields: &[header::RawField<'_>],
    header_size: usize,
) -> Summary {
    let subject = message.subject().unwrap_or_default().to_string();
    let ids = |name: &str| {
        last_value(fields, name)
            .map(|v| message_ids(&v))
            .unwrap_or_default()
    };
    Summary {
        base_subject: subject::base_subject(&subject),
        subject,
        from: mailboxes(message.from()),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        sent_at: message
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp())
            .or_else(|| {
                // The obsolete forms mail-parser leaves (RFC 5322 §4.3).
                message
                    .header_raw("Date")
                    .and_then(date::parse_date)
                    .map(|d| d.timestamp())
            }),
        message_id: ids("message-id").into_iter().next(),
        in_reply_to: ids("in-reply-to"),
        references: ids("references"),
        preview: preview_of(&first_body_text(message)),
        has_attachment: message.attachments.iter().any(|&id| {
            message
                .parts
                .get(id as usize)
                .is_some_and(|p| !p.content_disposition().is_some_and(|d| d.is_inline()))
        }),
        header_size,
    }
}

/// mail-parser's decoded addresses, groups flattened to their members.
fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(address) = address else {
        return Vec::new();
    };
    address
        .iter()
        .filter_map(|a| {
            let email = a.address.as_deref()?.trim();
            if email.is_empty() {
                return None;
            }
            Some(Mailbox {
                name: a
                    .name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
                address: email.to_string(),
            })
        })
        .collect()
}

/// The text people see first: the first text body part (mail-parser's
/// JMAP-style choice), or the first HTML body converted to text.
fn first_body_text<'a>(message: &'a Message<'_>) -> Cow<'a, str> {
    let first = |ids: &[u32]| {
        ids.first()
            .and_then(|&id| message.parts.get(id as usize))
            .and_then(|p| part_text(&p.body))
    };
    first(&message.text_body)
        .or_else(|| first(&message.html_body))
        .unwrap_or_default()
}

/// A text or HTML part as plain text.
fn part_text<'a>(body: &'a PartType<'_>) -> Option<Cow<'a, str>> {
    match body {
        PartType::Text(text) => Some(Cow::Borrowed(text.as_ref())),
        PartType::Html(html) => Some(Cow::Owned(mail_parser::decoders::html::html_to_text(html))),
        _ => None,
    }
}

/// At most [`PREVIEW_CHARS`] characters of `text`, whitespace runs
/// collapsed to one space; lazy, so a huge body costs only its start.
fn preview_of(text: &str) -> String {
    let mut preview: String = text
        .split_whitespace()
        .flat_map(|word| std::iter::once(' ').chain(word.chars()))
        .skip(1) // the space before the first word
        .take(PREVIEW_CHARS)
        .collect();
    // The cut may have left a space at the end.
    preview.truncate(preview.trim_end().len());
    preview
}

/// Appends the searchable text of `message` (and of messages embedded in
/// it, to [`MAX_MIME_DEPTH`]) to `out`.
fn collect_text(message: &Message<'_>, depth: usize, out: &mut String) {
    for part in &message.parts {
        if out.len() >= MAX_INDEXED_TEXT {
            return;
        }
        if let Some(name) = part.attachment_name() {
            push_capped(out, name);
        }
        match &part.body {
            PartType::Message(inner) if depth < MAX_MIME_DEPTH => {
                collect_text(inner, depth + 1, out)
            }
            body => {
                if let Some(text) = part_text(body) {
                    push_capped(out, &text);
                }
            }
        }
    }
}

/// Appends `text` and a line break, never letting `out` pass
/// [`MAX_INDEXED_TEXT`] bytes; the cut falls on a char boundary.
fn push_capped(out: &mut String, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let room = MAX_INDEXED_TEXT.saturating_sub(out.len());
    let mut end = text.len().min(room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&text[..end]);
    if out.len() < MAX_INDEXED_TEXT {
        out.push('\n');
    }
}

/// Drops a parsed message without recursion. mail-parser parses nested
/// message/rfc822 parts iteratively but stores them as nested `Message`
/// values, so the compiler's drop would recurse once per level: a few
/// hundred kilobytes of "Content-Type: message/rfc822" headers could then
/// overflow the stack, which no catch_unwind survives.
fn drop_flat(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                pending.push(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::structure::tests::assert_well_formed;
    use super::*;

    fn addr(name: Option<&str>, mailbox: &str, host: &str) -> EnvelopeAddress {
        EnvelopeAddress {
            name: name.map(str::to_string),
            adl: None,
            mailbox: Some(mailbox.to_string()),
            host: Some(host.to_string()),
        }
    }

    fn mailbox(name: Option<&str>, address: &str) -> Mailbox {
        Mailbox {
            name: name.map(str::to_string),
            address: address.to_string(),
        }
    }

    /// Parses, checks the structure's invariants and the JSON round trip
    /// (the form the database stores).
    fn parse(raw: &[u8]) -> ParsedMessage {
        let parsed = parse_message(raw);
        assert_well_formed(raw, &parsed.structure);
        assert!(parsed.body_text.len() <= MAX_INDEXED_TEXT);
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(
            serde_json::from_str::<ParsedMessage>(&json).unwrap(),
            parsed
        );
        parsed
    }

    #[test]
    fn simple_message_without_content_type() {
        let raw = b"From: Alice <alice@example.com>\r
To: bob@example.org\r
Subject: Re: hello\r
Date: Tue, 1 Jul 2003 10:52:37 +0200\r
Message-ID: <1234@local.machine.example>\r
In-Reply-To: <parent@example.com>\r
References: <root@example.com> <parent@example.com>\r
\r
Hello Bob,\r
\r
  how   are you?\r
";
        let parsed = parse(raw);
        let s = &parsed.structure;
        assert_eq!(
            (s.media_type.as_str(), s.media_subtype.as_str()),
            ("text", "plain")
        );
        assert_eq!(s.encoding, None);
        assert!(s.params.is_empty());
        assert_eq!(
            &raw[s.body_start..s.body_end],
            b"Hello Bob,\r\n\r\n  how   are you?\r\n"
        );
        assert_eq!(s.body_lines, 3);

        let e = &parsed.envelope;
        assert_eq!(e.date.as_deref(), Some("Tue, 1 Jul 2003 10:52:37 +0200"));
        assert_eq!(e.subject.as_deref(), Some("Re: hello"));
        assert_eq!(e.from, vec![addr(Some("Alice"), "alice", "example.com")]);
        // RFC 9051 §7.5.2: absent Sender and Reply-To are filled from From.
        assert_eq!(e.sender, e.from);
        assert_eq!(e.reply_to, e.from);
        assert_eq!(e.to, vec![addr(None, "bob", "example.org")]);
        assert!(e.cc.is_empty() && e.bcc.is_empty());
        assert_eq!(
            e.message_id.as_deref(),
            Some("<1234@local.machine.example>")
        );
        assert_eq!(e.in_reply_to.as_deref(), Some("<parent@example.com>"));

        let sum = &parsed.summary;
        assert_eq!(sum.subject, "Re: hello");
        assert_eq!(sum.base_subject, "hello");
        assert_eq!(sum.from, vec![mailbox(Some("Alice"), "alice@example.com")]);
        assert_eq!(sum.to, vec![mailbox(None, "bob@example.org")]);
        assert_eq!(sum.sent_at, Some(1_057_049_557));
        assert_eq!(
            sum.message_id.as_deref(),
            Some("1234@local.machine.example")
        );
        assert_eq!(sum.in_reply_to, vec!["parent@example.com"]);
        assert_eq!(
            sum.references,
            vec!["root@example.com", "parent@example.com"]
        );
        assert_eq!(sum.preview, "Hello Bob, how are you?");
        assert!(!sum.has_attachment);
        assert_eq!(sum.header_size, s.body_start);
        assert_eq!(
            &raw[..sum.header_size][raw[..sum.header_size].len() - 4..],
            b"\r\n\r\n"
        );
        assert!(parsed.body_text.contains("how   are you?"));
    }

    #[test]
    fn group_addresses_in_to() {
        let raw = b"From: a@example.com\r
To: Friends: Carol <carol@example.com>, dave@example.com;, undisclosed-recipients:;, eve@example.com\r
Sender: \r
\r
body\r
";
        let parsed = parse(raw);
        let group_start = |name: &str| EnvelopeAddress {
            mailbox: Some(name.to_string()),
            ..EnvelopeAddress::default()
        };
        assert_eq!(
            parsed.envelope.to,
            vec![
                group_start("Friends"),
                addr(Some("Carol"), "carol", "example.com"),
                addr(None, "dave", "example.com"),
                EnvelopeAddress::default(),
                group_start("undisclosed-recipients"),
                EnvelopeAddress::default(),
                addr(None, "eve", "example.com"),
            ]
        );
        // Present but empty counts as absent (RFC 9051 §7.5.2).
        assert_eq!(parsed.envelope.sender, parsed.envelope.from);
        assert_eq!(
            parsed.summary.to,
            vec![
                mailbox(Some("Carol"), "carol@example.com"),
                mailbox(None, "dave@example.com"),
                mailbox(None, "eve@example.com"),
            ]
        );
    }

    #[test]
    fn encoded_words_are_raw_in_envelope_and_decoded_in_summary() {
        let raw = b"From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@example.dk>\r
Subject: =?utf-8?q?Caf=C3=A9?=\r
 =?utf-8?b?IGF1IGxhaXQ=?=\r
\r
x\r
";
        let parsed = parse(raw);
        assert_eq!(
            parsed.envelope.subject.as_deref(),
            Some("=?utf-8?q?Caf=C3=A9?= =?utf-8?b?IGF1IGxhaXQ=?=")
        );
        assert_eq!(
            parsed.envelope.from[0].name.as_deref(),
            Some("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=")
        );
        assert_eq!(parsed.summary.subject, "Café au lait");
        assert_eq!(parsed.summary.base_subject, "Café au lait");
        assert_eq!(
            parsed.summary.from,
            vec![mailbox(Some("Keld Jørn Simonsen"), "keld@example.dk")]
        );
    }

    #[test]
    fn eight_bit_utf8_headers() {
        let raw = "From: Jörg Müller <jörg@bücher.example>\r
Subject: Fwd: Grüße aus Köln\r
\r
Schöne Grüße\r
"
        .as_bytes();
        let parsed = parse(raw);
        assert_eq!(
            parsed.envelope.subject.as_deref(),
            Some("Fwd: Grüße aus Köln")
        );
        assert_eq!(
            parsed.envelope.from,
            vec![addr(Some("Jörg Müller"), "jörg", "bücher.example")]
        );
        assert_eq!(parsed.summary.subject, "Fwd: Grüße aus Köln");
        assert_eq!(parsed.summary.base_subject, "Grüße aus Köln");
        assert_eq!(parsed.summary.from[0].name.as_deref(), Some("Jörg Müller"));
        assert_eq!(parsed.summary.preview, "Schöne Grüße");
        // Latin-1 bytes are not UTF-8: they become U+FFFD, never a panic.
        let parsed = parse(b"Subject: Gr\xfc\xdfe\r\n\r\nx");
        assert_eq!(
            parsed.envelope.subject.as_deref(),
            Some("Gr\u{fffd}\u{fffd}e")
        );
    }

    #[test]
    fn base_subject_example_from_the_brief() {
        let parsed = parse(b"Subject: Re: [list] Fwd: hello (fwd)\r\n\r\n");
        assert_eq!(parsed.summary.subject, "Re: [list] Fwd: hello (fwd)");
        assert_eq!(parsed.summary.base_subject, "hello");
    }

    #[test]
    fn html_attachments_and_search_text() {
        let raw = b"From: a@example.com\r
Subject: report\r
Content-Type: multipart/mixed; boundary=x\r
\r
--x\r
Content-Type: text/html; charset=utf-8\r
Content-Transfer-Encoding: quoted-printable\r
\r
<html><head><style>p {}</style></head><body><p>Caf=C3=A9 &amp; <b>cr=\r
=C3=A8me</b></p></body></html>\r
--x\r
Content-Type: application/pdf\r
Content-Disposition: attachment; filename*=utf-8''Bericht%20M%C3%A4rz.pdf\r
Content-Transfer-Encoding: base64\r
\r
JVBERi0=\r
--x--\r
";
        let parsed = parse(raw);
        assert!(parsed.summary.has_attachment);
        assert_eq!(parsed.summary.preview, "Café & crème");
        let text = &parsed.body_text;
        assert!(text.contains("Café & crème"), "{text:?}");
        assert!(!text.contains("<b>") && !text.contains("p {}"), "{text:?}");
        assert!(text.contains("Bericht März.pdf"), "{text:?}");
        let pdf = &parsed.structure.children[1];
        // RFC 2231 value joined and decoded.
        assert_eq!(
            pdf.disposition.as_ref().unwrap().params,
            vec![("filename".to_string(), "Bericht März.pdf".to_string())]
        );
        // An inline image alone is not an attachment for JMAP.
        let raw = b"Content-Type: multipart/related; boundary=r\r
\r
--r\r
Content-Type: text/html\r
\r
<img src=\"cid:i\">\r
--r\r
Content-Type: image/png\r
Content-Disposition: inline\r
Content-ID: <i>\r
\r
iVBO\r
--r--\r
";
        assert!(!parse(raw).summary.has_attachment);
    }

    #[test]
    fn body_text_is_capped_at_a_char_boundary() {
        let mut raw = b"Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
        // Three-byte characters, so the cap falls inside one.
        while raw.len() < MAX_INDEXED_TEXT + 100_000 {
            raw.extend_from_slice("€uro ".as_bytes());
        }
        let parsed = parse(&raw);
        assert!(parsed.body_text.len() <= MAX_INDEXED_TEXT);
        assert!(parsed.body_text.len() > MAX_INDEXED_TEXT - 4);
        assert_eq!(parsed.summary.preview.chars().count(), 256);
    }

    #[test]
    fn bare_lf_line_endings() {
        let raw = b"From: a@example.com\nSubject: lf\n only\nTo: b@example.com\n\nline 1\nline 2\n";
        let parsed = parse(raw);
        assert_eq!(parsed.envelope.subject.as_deref(), Some("lf only"));
        assert_eq!(parsed.summary.subject, "lf only");
        let s = &parsed.structure;
        assert_eq!(
            &raw[..s.body_start],
            b"From: a@example.com\nSubject: lf\n only\nTo: b@example.com\n\n"
        );
        assert_eq!(&raw[s.body_start..s.body_end], b"line 1\nline 2\n");
        assert_eq!(s.body_lines, 2);
    }

    #[test]
    fn garbage_is_one_text_part() {
        for raw in [
            &b"\x00\x01\x02\xff\xfe binary \x80\x81 junk without any structure"[..],
            b"just a line of text\nand another: with a colon\n\nbody?",
            b"abcdef",
            b"\xff\xff\xff\xff",
        ] {
            let parsed = parse(raw);
            let s = &parsed.structure;
            assert_eq!(
                (s.header_start, s.body_start, s.body_end),
                (0, 0, raw.len()),
                "{raw:?}"
            );
            assert_eq!(
                (s.media_type.as_str(), s.media_subtype.as_str()),
                ("text", "plain")
            );
            assert_eq!(parsed.envelope, Envelope::default());
            assert_eq!(parsed.summary.header_size, 0);
        }
        let parsed = parse(b"just a line of text\n\nbody");
        assert!(parsed.body_text.contains("just a line of text"));
        assert_eq!(parsed.summary.preview, "just a line of text body");
    }

    #[test]
    fn empty_and_header_only_inputs() {
        let parsed = parse(b"");
        let s = &parsed.structure;
        assert_eq!(
            (s.header_start, s.body_start, s.body_end, s.body_lines),
            (0, 0, 0, 0)
        );
        assert_eq!(parsed.body_text, "");
        assert_eq!(parsed.summary, Summary::default());

        // A header with no blank line and no body: all header.
        let raw = b"Subject: only a header";
        let parsed = parse(raw);
        assert_eq!(parsed.structure.body_start, raw.len());
        assert_eq!(parsed.envelope.subject.as_deref(), Some("only a header"));

        // An empty header: the message is all body.
        let raw = b"\r\nbody only\r\n";
        let parsed = parse(raw);
        assert_eq!(parsed.structure.body_start, 2);
        assert_eq!(parsed.envelope, Envelope::default());
    }

    #[test]
    fn truncations_and_mutations_never_panic() {
        let raw = b"From: \"A, B\" <a@example.com>\r
To: G: x@y, (c) z@w;\r
Subject: =?utf-8?q?t=C3=A9st?=\r
Content-Type: multipart/mixed; boundary=\"o\"\r
\r
--o\r
Content-Type: multipart/alternative; boundary=i\r
\r
--i\r
Content-Type: text/plain; charset*0*=utf-8''a; charset*1=b\r
Content-Transfer-Encoding: quoted-printable\r
\r
caf=C3=A9 =\r
--i\r
Content-Type: text/html\r
Content-Transfer-Encoding: base64\r
\r
PGI+aGk8L2I+\r
--i--\r
--o\r
Content-Type: message/rfc822\r
\r
Subject: inner\r
Content-Type: multipart/mixed; boundary=e\r
\r
--e\r
\r
e\r
--e--\r
--o--\r
";
        for end in 0..=raw.len() {
            parse(&raw[..end]);
        }
        // Deterministic xorshift: flip bytes all over the message.
        let mut next = crate::conformance::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..2_000 {
            let mut mutated = raw.to_vec();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() as usize) % mutated.len();
                mutated[at] = match next() % 4 {
                    0 => b'\n',
                    1 => b'-',
                    2 => b':',
                    _ => next() as u8,
                };
            }
            parse(&mutated);
        }
    }
}
