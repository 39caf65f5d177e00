//! APPEND of binary content (RFC 3516 §4.4): a message sent as a literal8
//! may hold NUL octets, which no plain literal may carry (RFC 9051 §4.3),
//! so FETCH BODY[...] could not return it as stored. As Dovecot does, the
//! parts holding NUL are stored base64-encoded instead: BINARY[...] still
//! returns the original octets, BODY[...] returns 7-bit text.

use base64::Engine;
use tern_store::message::{parse_message, MimePart};

/// The message with every leaf part that holds NUL re-encoded as base64;
/// the bytes unchanged when there is no NUL. A NUL left outside any part's
/// body (in a header, a preamble) becomes 0x80, as Dovecot's does.
pub(crate) fn encode_binary_parts(raw: Vec<u8>) -> Vec<u8> {
    if !raw.contains(&0) {
        return raw;
    }
    let parsed = parse_message(&raw);
    let mut leaves = Vec::new();
    leaves_with_nul(&parsed.structure, &raw, &mut leaves);
    // From the last part to the first, so earlier offsets stay right; a
    // part overlapping one already rewritten (never from a sound parse)
    // is left alone rather than spliced past the end.
    leaves.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut out = raw.clone();
    let mut floor = usize::MAX;
    for (header_start, body_start, body_end) in leaves {
        if body_end > floor || body_end > out.len() {
            continue;
        }
        floor = header_start;
        let header = &raw[header_start..body_start];
        let body = &raw[body_start..body_end];
        let mut replaced = rewrite_encoding(header);
        replaced.extend_from_slice(&wrapped_base64(body));
        out.splice(header_start..body_end, replaced);
    }
    for b in out.iter_mut().filter(|b| **b == 0) {
        *b = 0x80;
    }
    out
}

/// (header_start, body_start, body_end) of the leaf parts whose body holds
/// NUL, embedded messages' parts included.
fn leaves_with_nul(part: &MimePart, raw: &[u8], out: &mut Vec<(usize, usize, usize)>) {
    if let Some(inner) = &part.message {
        return leaves_with_nul(&inner.structure, raw, out);
    }
    if !part.children.is_empty() {
        for child in &part.children {
            leaves_with_nul(child, raw, out);
        }
        return;
    }
    let (start, end) = (part.body_start.min(raw.len()), part.body_end.min(raw.len()));
    if start <= end && raw[start..end].contains(&0) && part.header_start <= start {
        out.push((part.header_start, start, end));
    }
}

/// The part's header with its Content-Transfer-Encoding (and any
/// continuation lines) replaced by `base64`, before the blank line.
fn rewrite_encoding(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 40);
    let mut skipping = false;
    let mut lines = header.split_inclusive(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let blank = line == b"\r\n" || line == b"\n";
        if blank {
            out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
            out.extend_from_slice(line);
            out.extend(lines.flatten());
            return out;
        }
        if skipping && line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        skipping =
            line.len() >= 26 && line[..26].eq_ignore_ascii_case(b"content-transfer-encoding:");
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    // A header without its blank line (the part has no body separator).
    out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
    out
}

/// Base64 in lines of 76 characters (RFC 2045 §6.8) joined by CRLF; the
/// last has none, as the line break before a boundary belongs to the
/// boundary (RFC 2046 §5.1.1).
fn wrapped_base64(body: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for (i, chunk) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_part_is_stored_as_base64() {
        let raw = b"Subject: bin\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\nab\x00cd\x00\r\n--xx--\r\n".to_vec();
        let out = encode_binary_parts(raw);
        assert!(!out.contains(&0));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nYWIAY2QA\r\n--xx--"), "{text}");
        assert!(!text.contains("binary"), "{text}");
        assert!(
            text.contains("\r\n\r\nhello\r\n--xx\r\n"),
            "the text part is untouched: {text}"
        );
        let parsed = parse_message(&out);
        assert_eq!(parsed.structure.children.len(), 2);
    }

    #[test]
    fn without_nul_nothing_changes() {
        let raw = b"Subject: x\r\n\r\nplain\r\n".to_vec();
        assert_eq!(encode_binary_parts(raw.clone()), raw);
        let single = encode_binary_parts(b"Subject: y\r\n\r\na\x00b".to_vec());
        assert_eq!(
            single,
            b"Subject: y\r\nContent-Transfer-Encoding: base64\r\n\r\nYQBi"
        );
    }
}
