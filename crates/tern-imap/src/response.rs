//! Writing IMAP data (RFC 9051 §7 and §9): strings as quoted strings or
//! literals, ENVELOPE and BODYSTRUCTURE from what the Store parsed at
//! delivery, dates and flag lists.
//!
//! Everything here appends to a byte buffer; nothing here reads the
//! message again.

use tern_store::message::{Envelope, EnvelopeAddress, MimePart};

/// Appends `s` as an IMAP string: quoted when it can be, a literal when it
/// holds CR, LF, NUL or (for clients without UTF-8) 8-bit bytes.
pub fn string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    let quotable = s.len() < 1024
        && s.iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && (utf8 || b < 0x80))
        && (!utf8 || std::str::from_utf8(s).is_ok());
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// NIL or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&str>, utf8: bool) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string(out, s.as_bytes(), utf8),
    }
}

/// `(a b c)` of strings, or NIL when empty.
fn string_list(out: &mut Vec<u8>, items: &[String], utf8: bool) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, item.as_bytes(), utf8);
    }
    out.push(b')');
}

/// body-fld-param: `("name" "value" ...)` or NIL.
fn params(out: &mut Vec<u8>, params: &[(String, String)], utf8: bool) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.to_ascii_uppercase().as_bytes(), utf8);
        out.push(b' ');
        string(out, v.as_bytes(), utf8);
    }
    out.push(b')');
}

/// The ENVELOPE structure (RFC 9051 §7.5.2).
pub fn envelope(out: &mut Vec<u8>, e: &Envelope, utf8: bool) {
    out.push(b'(');
    nstring(out, e.date.as_deref(), utf8);
    out.push(b' ');
    nstring(out, e.subject.as_deref(), utf8);
    for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        out.push(b' ');
        addresses(out, list, utf8);
    }
    out.push(b' ');
    nstring(out, e.in_reply_to.as_deref(), utf8);
    out.push(b' ');
    nstring(out, e.message_id.as_deref(), utf8);
    out.push(b')');
}

fn addresses(out: &mut Vec<u8>, list: &[EnvelopeAddress], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstring(out, a.name.as_deref(), utf8);
        out.push(b' ');
        nstring(out, a.adl.as_deref(), utf8);
        out.push(b' ');
        nstring(out, a.mailbox.as_deref(), utf8);
        out.push(b' ');
        nstring(out, a.host.as_deref(), utf8);
        out.push(b')');
    }
    out.push(b')');
}

/// BODY (`extensible` false) or BODYSTRUCTURE (`extensible` true) of a part.
pub fn body_structure(out: &mut Vec<u8>, part: &MimePart, extensible: bool, utf8: bool) {
    out.push(b'(');
    if part.media_type.eq_ignore_ascii_case("multipart") && !part.children.is_empty() {
        for child in &part.children {
            body_structure(out, child, extensible, utf8);
        }
        out.push(b' ');
        string(
            out,
            part.media_subtype.to_ascii_uppercase().as_bytes(),
            utf8,
        );
        if extensible {
            out.push(b' ');
            params(out, &part.params, utf8);
            extension(out, part, utf8);
        }
    } else {
        string(out, part.media_type.to_ascii_uppercase().as_bytes(), utf8);
        out.push(b' ');
        string(
            out,
            part.media_subtype.to_ascii_uppercase().as_bytes(),
            utf8,
        );
        out.push(b' ');
        // A text part without a charset is US-ASCII (RFC 2045 §5.2): say
        // so, as Dovecot does, rather than leave the client to know it.
        if part.media_type.eq_ignore_ascii_case("text")
            && !part
                .params
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("charset"))
        {
            let mut with_charset = vec![("charset".to_string(), "US-ASCII".to_string())];
            with_charset.extend(part.params.iter().cloned());
            params(out, &with_charset, utf8);
        } else {
            params(out, &part.params, utf8);
        }
        out.push(b' ');
        nstring(out, part.id.as_deref(), utf8);
        out.push(b' ');
        nstring(out, part.description.as_deref(), utf8);
        out.push(b' ');
        let encoding = part
            .encoding
            .as_deref()
            .unwrap_or("7BIT")
            .to_ascii_uppercase();
        string(out, encoding.as_bytes(), utf8);
        out.extend_from_slice(format!(" {}", part.body_size).as_bytes());
        let is_message = part.media_type.eq_ignore_ascii_case("message")
            && (part.media_subtype.eq_ignore_ascii_case("rfc822")
                || part.media_subtype.eq_ignore_ascii_case("global"));
        if let (true, Some(inner)) = (is_message, &part.message) {
            out.push(b' ');
            envelope(out, &inner.envelope, utf8);
            out.push(b' ');
            body_structure(out, &inner.structure, extensible, utf8);
            out.extend_from_slice(format!(" {}", part.body_lines).as_bytes());
        } else if part.media_type.eq_ignore_ascii_case("text") {
            out.extend_from_slice(format!(" {}", part.body_lines).as_bytes());
        }
        if extensible {
            out.push(b' ');
            nstring(out, part.md5.as_deref(), utf8);
            extension(out, part, utf8);
        }
    }
    out.push(b')');
}

/// body-fld-dsp, body-fld-lang and body-fld-loc.
fn extension(out: &mut Vec<u8>, part: &MimePart, utf8: bool) {
    out.push(b' ');
    match &part.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            out.push(b'(');
            string(out, d.kind.to_ascii_uppercase().as_bytes(), utf8);
            out.push(b' ');
            params(out, &d.params, utf8);
            out.push(b')');
        }
    }
    out.push(b' ');
    string_list(out, &part.language, utf8);
    out.push(b' ');
    nstring(out, part.location.as_deref(), utf8);
}

/// INTERNALDATE: `"21-Nov-2026 22:02:00 +0000"`.
pub fn date_time(out: &mut Vec<u8>, unix: i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = tern_core::time::civil_from_days(days);
    use tern_core::time::MONTHS;
    out.extend_from_slice(
        format!(
            "\"{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000\"",
            MONTHS[(m - 1) as usize],
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
        .as_bytes(),
    );
}

/// `(\Seen $Junk)`.
pub fn flags(out: &mut Vec<u8>, keywords: &[String]) {
    out.push(b'(');
    out.extend_from_slice(keywords.join(" ").as_bytes());
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_store::message::parse_message;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_quote_or_become_literals() {
        assert_eq!(
            text(|o| string(o, b"a \"b\" \\", false)),
            "\"a \\\"b\\\" \\\\\""
        );
        assert_eq!(
            text(|o| string(o, b"two\r\nlines", false)),
            "{10}\r\ntwo\r\nlines"
        );
        assert_eq!(
            text(|o| string(o, "Grüße".as_bytes(), false)),
            "{7}\r\nGrüße"
        );
        assert_eq!(text(|o| string(o, "Grüße".as_bytes(), true)), "\"Grüße\"");
        assert_eq!(text(|o| nstring(o, None, false)), "NIL");
    }

    #[test]
    fn dates() {
        assert_eq!(
            text(|o| date_time(o, 1_795_298_520)),
            "\"21-Nov-2026 22:02:00 +0000\""
        );
        assert_eq!(text(|o| date_time(o, 0)), "\"01-Jan-1970 00:00:00 +0000\"");
    }

    #[test]
    fn envelope_and_bodystructure_of_a_simple_message() {
        let raw = b"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nFrom: Alice <alice@example.net>\r\nTo: bob@example.test\r\nSubject: hi\r\nMessage-ID: <m1@example.net>\r\n\r\nhello\r\nworld\r\n";
        let p = parse_message(raw);
        assert_eq!(
            text(|o| envelope(o, &p.envelope, false)),
            "(\"Mon, 2 Nov 2026 10:00:00 +0000\" \"hi\" ((\"Alice\" NIL \"alice\" \"example.net\")) \
             ((\"Alice\" NIL \"alice\" \"example.net\")) ((\"Alice\" NIL \"alice\" \"example.net\")) \
             ((NIL NIL \"bob\" \"example.test\")) NIL NIL NIL \"<m1@example.net>\")"
        );
        assert_eq!(
            text(|o| body_structure(o, &p.structure, false, false)),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 2)"
        );
    }

    #[test]
    fn bodystructure_of_a_multipart_message() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n\
--b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=x.pdf\r\n\r\nQUJD\r\n--b--\r\n";
        let p = parse_message(raw);
        assert_eq!(
            text(|o| body_structure(o, &p.structure, true, false)),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 0 NIL NIL NIL NIL)\
(\"APPLICATION\" \"PDF\" (\"NAME\" \"x.pdf\") NIL NIL \"BASE64\" 4 NIL (\"ATTACHMENT\" (\"FILENAME\" \"x.pdf\")) NIL NIL) \
\"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)"
        );
        assert_eq!(
            text(|o| body_structure(o, &p.structure, false, false)),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 0)(\"APPLICATION\" \"PDF\" (\"NAME\" \"x.pdf\") NIL NIL \"BASE64\" 4) \"MIXED\")"
        );
    }
}
