//! Raw header fields, read straight from the message bytes.
//!
//! mail-parser decodes the values it parses (RFC 2047 encoded-words, quoted
//! pairs, comments), but IMAP must return several fields exactly as they
//! were written (RFC 9051 §7.5.2 ENVELOPE, body-fld-id/desc/md5/loc). So
//! this module splits a header block into fields itself and hands out
//! values that are only unfolded (RFC 5322 §2.2.3) and trimmed.
//!
//! Which occurrence wins: when a field appears more than once we take the
//! LAST one, because mail-parser decides the MIME structure from the last
//! Content-Type (its `header_value` searches from the end). Using the same
//! rule everywhere means the envelope, the summary and the structure never
//! disagree about one message.

/// One header field of a raw header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawField<'a> {
    /// The field name as written (without the colon).
    pub name: &'a [u8],
    /// Everything after the colon up to the field's last line break,
    /// continuation lines included; still folded.
    pub value: &'a [u8],
}

/// The fields of a header block (`block` may include the terminating blank
/// line and anything after it: scanning stops at the first empty line).
///
/// A line that starts with SP or HTAB continues the previous field. A line
/// that is not `name ":" ...` with a valid field name (RFC 5322 §3.6.8:
/// printable US-ASCII except colon) is skipped, as mail-parser skips it.
pub(super) fn raw_fields(block: &[u8]) -> Vec<RawField<'_>> {
    let mut fields: Vec<RawField<'_>> = Vec::new();
    // Start of the field being collected: (name, value start).
    let mut current: Option<(&[u8], usize)> = None;
    let mut pos = 0;

    while pos < block.len() {
        let line_end = block[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.len(), |i| pos + i);
        let line = trim_cr(&block[pos..line_end]);
        let next = (line_end + 1).min(block.len());

        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            // A whitespace-only line ends the header for mail-parser, which
            // skips whitespace before looking for the blank line; agree.
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                break;
            }
            // Continuation line: the current field (if any) grows.
            pos = next;
            continue;
        }

        // Any new line (or the end) closes the field being collected.
        if let Some((name, start)) = current.take() {
            fields.push(RawField {
                name,
                value: trim_line_end(&block[start..pos]),
            });
        }

        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            // obs-optional (RFC 5322 §4.5.8) allows WSP before the colon.
            let name = trim_end_wsp(&line[..colon]);
            if !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b)) {
                current = Some((name, pos + colon + 1));
            }
        }
        pos = next;
    }
    if let Some((name, start)) = current {
        fields.push(RawField {
            name,
            value: trim_line_end(&block[start.min(pos)..pos.min(block.len())]),
        });
    }
    fields
}

/// The last field called `name` (ASCII case-insensitive), unfolded and
/// trimmed, as UTF-8 (RFC 6532 allows UTF-8 in headers; other 8-bit bytes
/// become U+FFFD since the result must be a `String`).
pub(super) fn last_value(fields: &[RawField<'_>], name: &str) -> Option<String> {
    fields
        .iter()
        .rev()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| unfold(f.value))
}

/// RFC 5322 §2.2.3: unfolding removes each CRLF that is immediately
/// followed by WSP. We also accept bare LF (messages arrive by IMAP APPEND
/// and import, not only by SMTP) and drop any line break not followed by
/// WSP, which can only be the field's own terminator. Then trim.
pub(super) fn unfold(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\r' if value.get(i + 1) == Some(&b'\n') => i += 2,
            b'\n' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(trim_wsp(&out)).into_owned()
}

/// Message identifiers from a Message-ID, In-Reply-To or References value
/// (RFC 5322 §3.6.4), without angle brackets. A value with no `<...>` at
/// all is taken whole when it looks like an id (broken clients send bare
/// `local@domain`), so threading still has something to work with.
pub(super) fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let id: String = after[..close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !id.is_empty() {
            ids.push(id);
        }
        rest = &after[close + 1..];
    }
    if ids.is_empty() {
        let bare = value.trim();
        if bare.contains('@') && !bare.contains(char::is_whitespace) && !bare.contains('<') {
            ids.push(bare.to_string());
        }
    }
    ids
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Drops the line terminator that ends a field's last line.
fn trim_line_end(value: &[u8]) -> &[u8] {
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    value.strip_suffix(b"\r").unwrap_or(value)
}

fn trim_end_wsp(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

fn trim_wsp(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_unfolds_and_takes_the_last_occurrence() {
        let block =
            b"Subject: first\r\nX-Long: a\r\n  b\r\n\tc\r\nsubject : second\r\n\r\nBody: no\r\n";
        let fields = raw_fields(block);
        assert_eq!(fields.len(), 3);
        assert_eq!(last_value(&fields, "x-long").as_deref(), Some("a  b\tc"));
        assert_eq!(last_value(&fields, "SUBJECT").as_deref(), Some("second"));
        assert_eq!(last_value(&fields, "body"), None);
    }

    #[test]
    fn skips_junk_lines_and_handles_bare_lf_and_no_terminator() {
        let block = b"not a header\nFrom: a@b\n  (cont)\nTo: c@d";
        let fields = raw_fields(block);
        assert_eq!(fields.len(), 2);
        assert_eq!(last_value(&fields, "from").as_deref(), Some("a@b  (cont)"));
        assert_eq!(last_value(&fields, "to").as_deref(), Some("c@d"));
    }

    #[test]
    fn extracts_message_ids() {
        assert_eq!(message_ids("<a@b>"), vec!["a@b"]);
        assert_eq!(
            message_ids(" <a@b> (comment)\r\n <c@d>"),
            vec!["a@b", "c@d"]
        );
        assert_eq!(message_ids("bare@id"), vec!["bare@id"]);
        assert!(message_ids("no id here").is_empty());
        assert!(message_ids("<unterminated").is_empty());
    }
}
