//! The text the search index keeps of each email (`text_folded`): headers
//! and body folded as FTS5 folds ([`fts5_fold`]) and LZ4-compressed, and
//! the search of it that verifies a candidate.
//!
//! A row is the length of the headers' block (4 bytes, little-endian),
//! the headers' block and the body's block, each an LZ4 block with its
//! uncompressed length first (4 bytes, little-endian), as `lz4_flex`
//! writes them. Two blocks rather than one: a needle found in the headers
//! (an address, in every message of a mailbox) is answered without
//! decompressing the body, and BODY never decompresses the headers; the
//! two compress to within a percent or two of one block. Lengths are
//! checked against what each block decodes to, so a damaged row is
//! refused, never a panic.

use super::full_text::fts5_fold;
use memchr::memmem::Finder;

/// The most bytes a block may claim to unpack to: the index keeps at most
/// [`crate::message::MAX_INDEXED_TEXT`] bytes each of headers and body,
/// and folding a character at most doubles its UTF-8 length. A larger
/// claim is damage.
const MAX_FOLDED: usize = 2 * crate::message::MAX_INDEXED_TEXT;

/// `text` folded character by character as FTS5's trigram tokenizer folds.
pub(crate) fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars().map(fts5_fold).collect()
}

/// An email's text as `text_folded` keeps it (see the module docs).
pub(crate) fn pack(headers: &str, body: &str) -> Vec<u8> {
    let headers = lz4_flex::block::compress_prepend_size(fold(headers).as_bytes());
    let body = lz4_flex::block::compress_prepend_size(fold(body).as_bytes());
    let mut out = Vec::with_capacity(4 + headers.len() + body.len());
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&body);
    out
}

/// Decompresses one block into `buf`; false if it is damaged.
fn unpack(block: &[u8], buf: &mut Vec<u8>) -> bool {
    let Ok((len, rest)) = lz4_flex::block::uncompressed_size(block) else {
        return false;
    };
    if len > MAX_FOLDED {
        return false;
    }
    buf.clear();
    buf.resize(len, 0);
    matches!(lz4_flex::block::decompress_into(rest, buf), Ok(n) if n == len)
}

/// Whether the folded text in `row` holds the needle of `finder`: in the
/// body, or (unless `body_only`) in the headers, never across the two.
/// `buf` is scratch space. None if the row is damaged.
pub(crate) fn search(
    row: &[u8],
    buf: &mut Vec<u8>,
    finder: &Finder<'_>,
    body_only: bool,
) -> Option<bool> {
    let (headers_len, rest) = row.split_first_chunk::<4>()?;
    let (headers, body) = rest.split_at_checked(u32::from_le_bytes(*headers_len) as usize)?;
    if !body_only {
        if !unpack(headers, buf) {
            return None;
        }
        if finder.find(buf).is_some() {
            return Some(true);
        }
    }
    if !unpack(body, buf) {
        return None;
    }
    Some(finder.find(buf).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer of a plain search of the whole folded text.
    fn plain(headers: &str, body: &str, needle: &str, body_only: bool) -> bool {
        let (headers, body, needle) = (fold(headers), fold(body), fold(needle));
        body.contains(&needle) || (!body_only && headers.contains(&needle))
    }

    fn texts() -> Vec<(String, String)> {
        let mut next = crate::conformance::xorshift(0x2545_f491_4f6c_dd1d);
        let words = [
            "Lighthouse",
            "keeper",
            "   ",
            "Grüße",
            "ΟΔΟΣ",
            "aaaaaaa",
            "the",
            "\r\n",
            "x",
        ];
        let mut out = vec![
            (String::new(), String::new()),
            ("Subject: hi".into(), String::new()),
        ];
        for n in [1, 5, 40, 300, 3000] {
            let mut text = |n: usize| -> String {
                (0..n)
                    .map(|_| words[(next() % words.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            out.push((text(n / 4 + 1), text(n)));
        }
        out
    }

    #[test]
    fn searching_folded_text_answers_as_a_plain_search() {
        let needles = [
            "lighthouse",
            "KEEPER the",
            "aaaa",
            "grüße",
            "οδοσ",
            "x\r\nthe",
            "hi",
            "absent",
            "e k",
            "  ",
        ];
        let mut buf = Vec::new();
        for (headers, body) in texts() {
            let row = pack(&headers, &body);
            for needle in needles {
                for body_only in [false, true] {
                    let folded = fold(needle);
                    let finder = Finder::new(folded.as_bytes());
                    assert_eq!(
                        search(&row, &mut buf, &finder, body_only),
                        Some(plain(&headers, &body, needle, body_only)),
                        "{needle:?} in {headers:?} / {body:?}",
                    );
                }
            }
            // An absent needle decodes everything: the body comes back whole.
            let finder = Finder::new(b"\0absent\0");
            assert_eq!(search(&row, &mut buf, &finder, false), Some(false));
            assert_eq!(buf, fold(&body).as_bytes());
        }
    }

    #[test]
    fn a_needle_across_headers_and_body_is_not_found() {
        let row = pack("Subject: light", "house keeper");
        let mut buf = Vec::new();
        let finder = Finder::new(b"lighthouse");
        assert_eq!(search(&row, &mut buf, &finder, false), Some(false));
        let finder = Finder::new(b"light");
        assert_eq!(search(&row, &mut buf, &finder, true), Some(false));
        assert_eq!(search(&row, &mut buf, &finder, false), Some(true));
    }

    /// Every truncation and many single-byte changes of real rows are
    /// refused or decoded within bounds, never a panic.
    #[test]
    fn damaged_rows_are_refused_without_panicking() {
        let mut buf = Vec::new();
        let finder = Finder::new(b"\0never\0");
        for (headers, body) in texts() {
            let row = pack(&headers, &body);
            for cut in 0..row.len() {
                let answer = search(&row[..cut], &mut buf, &finder, false);
                assert!(answer.is_none() || answer == Some(false), "cut at {cut}");
            }
            for at in 0..row.len().min(400) {
                for value in [0u8, 1, 15, 0x7f, 0xf0, 0xff] {
                    let mut damaged = row.clone();
                    damaged[at] = value;
                    let _ = search(&damaged, &mut buf, &finder, false);
                    assert!(buf.len() <= MAX_FOLDED);
                }
            }
        }
        let mut huge = pack("Subject: x", "y");
        huge[4..8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert_eq!(
            search(&huge, &mut buf, &finder, true),
            Some(false),
            "headers unread"
        );
        assert_eq!(
            search(&huge, &mut buf, &finder, false),
            None,
            "a huge claim"
        );
        let mut past = pack("Subject: x", "y");
        past[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            search(&past, &mut buf, &finder, false),
            None,
            "headers past the end"
        );
    }
}
