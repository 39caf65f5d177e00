//! Header fields of a raw message, found by walking its header section
//! (RFC 5322 §2.2: a field runs to the next line that does not start with
//! white space; the section ends at the first empty line). For the checks
//! that read or remove fields before a message is parsed: forged
//! `Authentication-Results` (RFC 8601 §5) and `X-Spam-*` fields from
//! outside, signature counts.

use std::ops::Range;

/// The header fields of `raw`: each field's byte range (its line ending
/// included) and name.
pub fn header_fields(raw: &[u8]) -> Vec<(Range<usize>, &[u8])> {
    let mut fields: Vec<(Range<usize>, &[u8])> = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let line_end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..line_end];
        if line == b"\r\n" || line == b"\n" {
            break; // the empty line: the body follows
        }
        match (line.first(), fields.last_mut()) {
            // A continuation line belongs to the field before it.
            (Some(b' ' | b'\t'), Some((range, _))) => range.end = line_end,
            _ => {
                let name_end = line.iter().position(|&b| b == b':').unwrap_or(0);
                fields.push((at..line_end, trim(&line[..name_end])));
            }
        }
        at = line_end;
    }
    fields
}

/// `raw` without the header fields `doomed` picks (given the name and the
/// whole field); `None` when it picks none.
pub fn without_fields(raw: &[u8], doomed: impl Fn(&[u8], &[u8]) -> bool) -> Option<Vec<u8>> {
    let gone: Vec<Range<usize>> = header_fields(raw)
        .into_iter()
        .filter(|(range, name)| doomed(name, &raw[range.clone()]))
        .map(|(range, _)| range)
        .collect();
    if gone.is_empty() {
        return None;
    }
    let mut kept = Vec::with_capacity(raw.len());
    let mut at = 0;
    for range in gone {
        kept.extend_from_slice(&raw[at..range.start]);
        at = range.end;
    }
    kept.extend_from_slice(&raw[at..]);
    Some(kept)
}

pub fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

pub fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_fold_and_end_at_the_body() {
        let raw = b"A: 1\r\n\tmore\r\nB: 2\r\n\r\nC: body\r\n";
        let fields = header_fields(raw);
        let names: Vec<&[u8]> = fields.iter().map(|(_, n)| *n).collect();
        assert_eq!(names, [&b"A"[..], b"B"]);
        assert_eq!(&raw[fields[0].0.clone()], b"A: 1\r\n\tmore\r\n");
        let kept = without_fields(raw, |name, _| name == b"A").unwrap();
        assert_eq!(kept, b"B: 2\r\n\r\nC: body\r\n");
        assert_eq!(without_fields(raw, |_, _| false), None);
    }
}
