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

mod envelope;
mod header;
mod structure;
mod subject;

use std::panic::{self, AssertUnwindSafe};

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

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
///   A message/rfc822 that cannot be described in place (it has a
///   Content-Transfer-Encoding, or is empty) is reported as
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
    // stack exhaustion; the depth limits below are what prevent that.)
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

fn summarize(message: &Message<'_>, fields: &[header::RawField<'_>], header_size: usize) -> Summary {
    let subject = message.subject().unwrap_or_default().to_string();
    let ids = |name: &str| last_value(fields, name).map(|v| message_ids(&v)).unwrap_or_default();
    Summary {
        base_subject: subject::base_subject(&subject),
        subject,
        from: mailboxes(message.from()),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        sent_at: message
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp()),
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
fn first_body_text(message: &Message<'_>) -> String {
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
fn part_text(body: &PartType<'_>) -> Option<String> {
    match body {
        PartType::Text(text) => Some(text.to_string()),
        PartType::Html(html) => Some(mail_parser::decoders::html::html_to_text(html)),
        _ => None,
    }
}

fn preview_of(text: &str) -> String {
    let mut preview = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            preview.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= PREVIEW_CHARS {
                return preview;
            }
            preview.push(c);
            chars += 1;
        }
        if chars >= PREVIEW_CHARS {
            break;
        }
    }
    // A trailing space can only come from the cut; drop it.
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
