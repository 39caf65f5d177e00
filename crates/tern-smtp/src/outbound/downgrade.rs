//! 8-bit to 7-bit conversion for a peer without 8BITMIME (RFC 6152 §3:
//! the client must convert or return the message; we convert, as Postfix
//! does). Every leaf MIME part holding 8-bit bytes under an identity
//! encoding (none, `7bit`, `8bit`, `binary`) is re-encoded as
//! quoted-printable (RFC 2045 §6.7) with its header saying so; header
//! fields with raw 8-bit text become RFC 2047 encoded words. Parts are
//! found with the store's MIME parser, whose offsets are exact.

use base64::Engine;
use tern_store::message::{parse_message, MimePart};

/// Whether any byte of `message` is 8-bit.
pub fn is_eight_bit(message: &[u8]) -> bool {
    message.iter().any(|b| *b >= 0x80)
}

/// `message` with nothing but 7-bit bytes, meaning unchanged.
pub fn to_seven_bit(message: &[u8]) -> Vec<u8> {
    if !is_eight_bit(message) {
        return message.to_vec();
    }
    let parsed = parse_message(message);
    let mut edits: Vec<Edit> = Vec::new();
    collect(&parsed.structure, message, &mut edits);
    edits.sort_by_key(|e| e.start);
    let mut out = Vec::with_capacity(message.len() + message.len() / 4);
    let mut at = 0;
    for edit in edits {
        if edit.start < at {
            continue; // overlapping (malformed structure): keep the first
        }
        out.extend_from_slice(&message[at..edit.start]);
        out.extend_from_slice(&edit.replacement);
        at = edit.end;
    }
    out.extend_from_slice(&message[at..]);
    out
}

/// Replace `start..end` of the original with `replacement`.
struct Edit {
    start: usize,
    end: usize,
    replacement: Vec<u8>,
}

fn collect(part: &MimePart, raw: &[u8], edits: &mut Vec<Edit>) {
    let header = raw
        .get(part.header_start..part.body_start)
        .unwrap_or_default();
    let body = raw.get(part.body_start..part.body_end).unwrap_or_default();
    let identity = part
        .encoding
        .as_deref()
        .is_none_or(|e| matches!(e.to_ascii_lowercase().as_str(), "7bit" | "8bit" | "binary"));
    let leaf = part.children.is_empty() && part.message.is_none();
    let recode_body = leaf && identity && is_eight_bit(body);
    if recode_body || is_eight_bit(header) {
        edits.push(Edit {
            start: part.header_start,
            end: part.body_start,
            replacement: rewrite_header(header, recode_body),
        });
    }
    if recode_body {
        edits.push(Edit {
            start: part.body_start,
            end: part.body_end,
            replacement: quoted_printable(body),
        });
    }
    for child in &part.children {
        collect(child, raw, edits);
    }
    if let Some(m) = &part.message {
        collect(&m.structure, raw, edits);
    }
}

/// The header with 8-bit field values encoded and, when the body is
/// re-encoded, `Content-Transfer-Encoding: quoted-printable` in place of
/// the old one.
fn rewrite_header(header: &[u8], recode_body: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 48);
    let mut fields: Vec<&[u8]> = Vec::new();
    // Split into fields (a field's continuation lines start with WSP).
    let mut start = 0;
    let lines: Vec<(usize, &[u8])> = header
        .split_inclusive(|b| *b == b'\n')
        .scan(0usize, |pos, line| {
            let at = *pos;
            *pos += line.len();
            Some((at, line))
        })
        .collect();
    for (i, (at, line)) in lines.iter().enumerate() {
        let continues = lines
            .get(i + 1)
            .is_some_and(|(_, next)| next.first().is_some_and(|b| *b == b' ' || *b == b'\t'));
        if !continues {
            fields.push(&header[start..at + line.len()]);
            start = at + line.len();
        }
    }
    for field in fields {
        let is_blank = field == b"\r\n" || field == b"\n";
        if is_blank {
            if recode_body {
                out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n");
            }
            out.extend_from_slice(field);
            continue;
        }
        let name_end = field.iter().position(|b| *b == b':').unwrap_or(0);
        let name = &field[..name_end];
        if recode_body && name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            continue;
        }
        if !is_eight_bit(field) || name_end == 0 {
            out.extend_from_slice(field);
            continue;
        }
        // An 8-bit value: one encoded word per line-sized piece.
        let value = String::from_utf8_lossy(&field[name_end + 1..]);
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        out.extend_from_slice(name);
        out.push(b':');
        for (i, piece) in chunk_chars(&value, 45).iter().enumerate() {
            out.extend_from_slice(if i == 0 { b" " } else { b"\r\n " });
            out.extend_from_slice(b"=?UTF-8?B?");
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(piece.as_bytes())
                    .as_bytes(),
            );
            out.extend_from_slice(b"?=");
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `text` in pieces of at most `max` bytes, cut at char boundaries.
fn chunk_chars(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

/// Quoted-printable (RFC 2045 §6.7) keeping the line structure: lines of
/// at most 76 characters with soft breaks, trailing white space encoded.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 3 / 2);
    for raw_line in body.split_inclusive(|b| *b == b'\n') {
        let (line, ending): (&[u8], &[u8]) = if let Some(l) = raw_line.strip_suffix(b"\r\n") {
            (l, b"\r\n")
        } else if let Some(l) = raw_line.strip_suffix(b"\n") {
            (l, b"\r\n")
        } else {
            (raw_line, b"")
        };
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let piece_len = if literal { 1 } else { 3 };
            if width + piece_len > 75 {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            width += piece_len;
        }
        out.extend_from_slice(ending);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_bit_messages_are_untouched() {
        let m = b"Subject: hi\r\n\r\nplain\r\n";
        assert_eq!(to_seven_bit(m), m);
    }

    #[test]
    fn a_single_part_body_becomes_quoted_printable() {
        let m = "Subject: caf\u{e9}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\u{e9} cr\u{e8}me \r\n".as_bytes();
        let out = to_seven_bit(m);
        assert!(!is_eight_bit(&out), "{}", String::from_utf8_lossy(&out));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
            "{text}"
        );
        assert!(!text.contains("8bit"), "{text}");
        assert!(text.contains("Caf=C3=A9 cr=C3=A8me=20\r\n"), "{text}");
        assert!(text.contains("Subject: =?UTF-8?B?"), "{text}");
        // And it reads back as the same text.
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.body_text(0).unwrap().trim_end(),
            "Caf\u{e9} cr\u{e8}me"
        );
        assert_eq!(parsed.subject(), Some("caf\u{e9}"));
    }

    #[test]
    fn only_eight_bit_parts_of_a_multipart_change() {
        let m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\u{fc}ber\r\n--b--\r\n".as_bytes();
        let out = String::from_utf8(to_seven_bit(m)).unwrap();
        assert!(out.is_ascii());
        assert!(out.contains("\r\n\r\nascii\r\n--b\r\n"), "{out}");
        assert!(
            out.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BCber\r\n--b--"),
            "{out}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(out.as_bytes())
            .unwrap();
        assert_eq!(parsed.body_text(1).unwrap().trim_end(), "\u{fc}ber");
    }

    #[test]
    fn long_lines_get_soft_breaks() {
        let body = "\u{e9}".repeat(100);
        let qp = quoted_printable(body.as_bytes());
        for line in qp.split(|b| *b == b'\n') {
            assert!(line.len() <= 77, "{}", String::from_utf8_lossy(line));
        }
    }
}
