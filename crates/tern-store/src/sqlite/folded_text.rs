//! The text the search index keeps of each email (`text_folded`): headers
//! and body folded as FTS5 folds ([`fts5_fold`]) and LZ4-compressed, and
//! the search of it that verifies a candidate.
//!
//! A row is the id of the dictionary its blocks were compressed with (one
//! byte, 0 for none), the length of the headers' block (4 bytes,
//! little-endian), the headers' block and the body's block, each an LZ4
//! block with its uncompressed length first (4 bytes, little-endian), as
//! `lz4.rs` writes them. Two blocks rather than one: a needle found in
//! the headers (an address, in every message of a mailbox) is answered
//! without decompressing the body, and BODY never decompresses the
//! headers; the two compress to within a percent or two of one block.
//! Lengths are checked against what each block decodes to, so a damaged
//! row is refused, never a panic.
//!
//! A message of a few KiB is too short for LZ4 to find much to refer back
//! to, so once the index holds [`DICTIONARY_FROM`] of compressed text, a
//! dictionary of [`DICTIONARY_SIZE`] is sampled from it (`text_dictionary`,
//! [`build_dictionary_when_due`]) and every block is compressed after it,
//! the rows before it again: with LZ4's high-compression mode, 0.42 of
//! the text (fast LZ4 alone) becomes 0.29, decompressing no slower (BENCHMARKS.md, issue 10). The sample is the data
//! directory's own mail, in whatever language it is written.

use super::full_text::fts5_fold;
use memchr::memmem::Finder;
use rusqlite::{params, Connection, OptionalExtension};

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

/// Compressed text the index holds before it samples a dictionary: enough
/// mail that the sample is typical of it, and that the dictionary costs
/// under a sixteenth of what it saves.
pub(crate) const DICTIONARY_FROM: i64 = 512 * 1024;

/// Rows the index holds, at least, before it samples a dictionary.
const DICTIONARY_ROWS: i64 = 64;

/// Bytes of a dictionary: 32 KiB compresses within 3% of LZ4's 64 KiB
/// window at half its size, and its start-up cost per block.
const DICTIONARY_SIZE: usize = 32 * 1024;

/// A dictionary blocks are compressed after (a row of `text_dictionary`).
pub(crate) struct Dictionary {
    pub id: u8,
    pub bytes: Vec<u8>,
}

/// The dictionaries rows may name, as a search loads them.
#[derive(Default)]
pub(crate) struct Dictionaries(Vec<Dictionary>);

impl Dictionaries {
    /// Every dictionary in `schema`'s index (none if the table is missing).
    pub(crate) fn load(conn: &Connection, schema: &str) -> Dictionaries {
        let sql = format!("SELECT id, data FROM {schema}.text_dictionary");
        let loaded = conn.prepare_cached(&sql).and_then(|mut stmt| {
            stmt.query_map([], |r| {
                Ok(Dictionary {
                    id: r.get(0)?,
                    bytes: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
        Dictionaries(loaded.unwrap_or_default())
    }

    /// Dictionary `id`'s bytes (empty for 0, none); None if unknown.
    fn get(&self, id: u8) -> Option<&[u8]> {
        if id == 0 {
            return Some(&[]);
        }
        self.0.iter().find(|d| d.id == id).map(|d| &d.bytes[..])
    }
}

/// The dictionary new rows are compressed after, if the index has one.
pub(crate) fn current_dictionary(conn: &Connection) -> rusqlite::Result<Option<Dictionary>> {
    conn.prepare_cached("SELECT id, data FROM text_dictionary ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| {
            Ok(Dictionary {
                id: r.get(0)?,
                bytes: r.get(1)?,
            })
        })
        .optional()
}

/// An email's text as `text_folded` keeps it (see the module docs); None
/// if LZ4 could not compress it (it could not allocate: the row is left
/// out, and a search matches the message instead).
pub(crate) fn pack(headers: &str, body: &str, dictionary: Option<&Dictionary>) -> Option<Vec<u8>> {
    pack_folded(fold(headers).as_bytes(), fold(body).as_bytes(), dictionary)
}

/// [`pack`] of text already folded.
fn pack_folded(headers: &[u8], body: &[u8], dictionary: Option<&Dictionary>) -> Option<Vec<u8>> {
    let bytes = dictionary.map_or(&[][..], |d| &d.bytes[..]);
    let headers = super::lz4::compress(headers, bytes)?;
    let body = super::lz4::compress(body, bytes)?;
    let mut out = Vec::with_capacity(5 + headers.len() + body.len());
    out.push(dictionary.map_or(0, |d| d.id));
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&body);
    Some(out)
}

/// Where a row's blocks are decompressed: the dictionary they were
/// compressed after, then the text. LZ4's C decoder runs as fast with a
/// dictionary as without when the dictionary lies right before the output
/// (`lz4.rs`), so the current dictionary stays in front, copied in only
/// when a row names another.
#[derive(Default)]
pub(crate) struct Scratch {
    buf: Vec<u8>,
    /// The id of the dictionary in `buf[..prefix]`.
    dictionary: u8,
    prefix: usize,
}

impl Scratch {
    /// The text the last [`unpack`] decompressed.
    pub(crate) fn text(&self) -> &[u8] {
        &self.buf[self.prefix..]
    }
}

/// Decompresses one block into `scratch`, after dictionary `id`; false if
/// it is damaged.
fn unpack(block: &[u8], (id, dictionary): DictionaryRef<'_>, scratch: &mut Scratch) -> bool {
    let Some((len, rest)) = super::lz4::split_size(block) else {
        return false;
    };
    if len > MAX_FOLDED {
        return false;
    }
    if scratch.dictionary != id || scratch.prefix != dictionary.len() {
        scratch.buf.clear();
        scratch.buf.extend_from_slice(dictionary);
        (scratch.dictionary, scratch.prefix) = (id, dictionary.len());
    }
    let prefix = scratch.prefix;
    scratch.buf.resize(prefix + len, 0);
    super::lz4::decompress_after_prefix(rest, &mut scratch.buf, prefix)
}

/// A dictionary's id and bytes (none: 0 and empty).
type DictionaryRef<'d> = (u8, &'d [u8]);

/// A row's dictionary, headers' block and body's block; None if it is
/// damaged or names a dictionary that is not there.
fn split_row<'r>(
    row: &'r [u8],
    dictionaries: &'r Dictionaries,
) -> Option<(DictionaryRef<'r>, &'r [u8], &'r [u8])> {
    let (&id, rest) = row.split_first()?;
    let dictionary = dictionaries.get(id)?;
    let (headers_len, rest) = rest.split_first_chunk::<4>()?;
    let (headers, body) = rest.split_at_checked(u32::from_le_bytes(*headers_len) as usize)?;
    Some(((id, dictionary), headers, body))
}

/// Whether the folded text in `row` holds the needle of `finder`: in the
/// body, or (unless `body_only`) in the headers, never across the two.
/// None if the row is damaged.
pub(crate) fn search(
    row: &[u8],
    dictionaries: &Dictionaries,
    scratch: &mut Scratch,
    finder: &Finder<'_>,
    body_only: bool,
) -> Option<bool> {
    let (dictionary, headers, body) = split_row(row, dictionaries)?;
    if !body_only {
        if !unpack(headers, dictionary, scratch) {
            return None;
        }
        if finder.find(scratch.text()).is_some() {
            return Some(true);
        }
    }
    if !unpack(body, dictionary, scratch) {
        return None;
    }
    Some(finder.find(scratch.text()).is_some())
}

/// Samples a dictionary from the index's text once it holds
/// [`DICTIONARY_FROM`] (and has none), and compresses every row again
/// after it, a row at a time, into a new table that takes the old one's
/// place; in the caller's transaction. Rows that cannot be read are kept
/// as they are (a search matches them from the message).
pub(crate) fn build_dictionary_when_due(conn: &Connection) -> rusqlite::Result<()> {
    if current_dictionary(conn)?.is_some() {
        return Ok(());
    }
    let (rows, bytes): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(length(data)), 0) FROM text_folded",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if rows < DICTIONARY_ROWS || bytes < DICTIONARY_FROM {
        return Ok(());
    }
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM text_folded ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let every = ids.len().div_ceil(SAMPLES);
    // Rows are written again into a new table, in id order: rewritten in
    // place, each a third smaller, they left a third of every page empty.
    conn.execute_batch(
        "DROP TABLE IF EXISTS text_folded_repacked;
         CREATE TABLE text_folded_repacked (id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
    )?;
    let dictionary = {
        let mut select = conn.prepare("SELECT data FROM text_folded WHERE id = ?1")?;
        let mut scratch = Scratch::default();
        // A row's stored bytes, and its text if it can be read.
        let mut read = |id: i64| -> rusqlite::Result<_> {
            let data: Vec<u8> = select.query_row([id], |r| r.get(0))?;
            let none = Dictionaries::default();
            let text = split_row(&data, &none).and_then(|(dictionary, headers, body)| {
                unpack(headers, dictionary, &mut scratch).then_some(())?;
                let headers = scratch.text().to_vec();
                unpack(body, dictionary, &mut scratch).then_some(())?;
                Some((headers, scratch.text().to_vec()))
            });
            Ok((data, text))
        };
        let mut samples = Vec::new();
        for &id in ids.iter().step_by(every) {
            samples.extend(read(id)?.1);
        }
        let dictionary = Dictionary {
            id: 1,
            bytes: sample_dictionary(&samples),
        };
        drop(samples);
        let mut insert =
            conn.prepare("INSERT INTO text_folded_repacked (id, data) VALUES (?1, ?2)")?;
        for &id in &ids {
            let (data, text) = read(id)?;
            // A row that cannot be read is kept as it is.
            let repacked = text
                .and_then(|(headers, body)| pack_folded(&headers, &body, Some(&dictionary)))
                .unwrap_or(data);
            insert.execute(params![id, repacked])?;
        }
        dictionary
    };
    conn.execute_batch(
        "DROP TABLE text_folded;
         ALTER TABLE text_folded_repacked RENAME TO text_folded;",
    )?;
    conn.execute(
        "INSERT INTO text_dictionary (id, data) VALUES (?1, ?2)",
        params![dictionary.id, dictionary.bytes],
    )?;
    tracing::info!(
        "search index: compressing text after a {} KiB dictionary sampled from {} messages",
        dictionary.bytes.len() / 1024,
        ids.len().div_ceil(every)
    );
    Ok(())
}

/// Texts a dictionary is sampled from.
const SAMPLES: usize = 64;

/// [`DICTIONARY_SIZE`] bytes from `texts` (folded headers and body, up to
/// [`SAMPLES`] of them): from each, the start of its headers (the fields
/// mail carries) and a piece from the middle of its body.
fn sample_dictionary(texts: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let header_piece = DICTIONARY_SIZE / SAMPLES / 4;
    let per_text = DICTIONARY_SIZE / texts.len().max(1);
    let mut dictionary = Vec::with_capacity(DICTIONARY_SIZE);
    for (headers, body) in texts {
        let from_headers = header_piece.min(headers.len());
        dictionary.extend_from_slice(&headers[..from_headers]);
        let from_body = per_text.saturating_sub(from_headers).min(body.len());
        let start = (body.len() - from_body) / 2;
        dictionary.extend_from_slice(&body[start..start + from_body]);
    }
    dictionary.truncate(DICTIONARY_SIZE);
    dictionary
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
        let mut buf = Scratch::default();
        let none = Dictionaries::default();
        for (headers, body) in texts() {
            let row = pack(&headers, &body, None).unwrap();
            for needle in needles {
                for body_only in [false, true] {
                    let folded = fold(needle);
                    let finder = Finder::new(folded.as_bytes());
                    assert_eq!(
                        search(&row, &none, &mut buf, &finder, body_only),
                        Some(plain(&headers, &body, needle, body_only)),
                        "{needle:?} in {headers:?} / {body:?}",
                    );
                }
            }
            // An absent needle decodes everything: the body comes back whole.
            let finder = Finder::new(b"\0absent\0");
            assert_eq!(search(&row, &none, &mut buf, &finder, false), Some(false));
            assert_eq!(buf.text(), fold(&body).as_bytes());
        }
    }

    /// Rows compressed after a dictionary sampled from the texts answer as
    /// plain rows do, and without their dictionary are refused, not misread.
    #[test]
    fn rows_compressed_after_a_dictionary_answer_alike() {
        let texts = texts();
        let samples: Vec<(Vec<u8>, Vec<u8>)> = texts
            .iter()
            .map(|(h, b)| (fold(h).into_bytes(), fold(b).into_bytes()))
            .collect();
        let bytes = sample_dictionary(&samples);
        assert!(!bytes.is_empty() && bytes.len() <= DICTIONARY_SIZE);
        let with = Dictionaries(vec![Dictionary { id: 1, bytes }]);
        let none = Dictionaries::default();
        let mut buf = Scratch::default();
        for (headers, body) in &texts {
            let row = pack(headers, body, Some(&with.0[0])).unwrap();
            assert_eq!(row[0], 1, "the row names its dictionary");
            for needle in ["lighthouse", "grüße", "e k", "absent"] {
                for body_only in [false, true] {
                    let folded = fold(needle);
                    let finder = Finder::new(folded.as_bytes());
                    assert_eq!(
                        search(&row, &with, &mut buf, &finder, body_only),
                        Some(plain(headers, body, needle, body_only)),
                        "{needle:?} in {headers:?} / {body:?}",
                    );
                }
            }
            let finder = Finder::new(b"\0never\0");
            assert_eq!(search(&row, &none, &mut buf, &finder, false), None);
        }
    }

    #[test]
    fn a_needle_across_headers_and_body_is_not_found() {
        let row = pack("Subject: light", "house keeper", None).unwrap();
        let mut buf = Scratch::default();
        let none = Dictionaries::default();
        let finder = Finder::new(b"lighthouse");
        assert_eq!(search(&row, &none, &mut buf, &finder, false), Some(false));
        let finder = Finder::new(b"light");
        assert_eq!(search(&row, &none, &mut buf, &finder, true), Some(false));
        assert_eq!(search(&row, &none, &mut buf, &finder, false), Some(true));
    }

    /// Every truncation and many single-byte changes of real rows are
    /// refused or decoded within bounds, never a panic.
    #[test]
    fn damaged_rows_are_refused_without_panicking() {
        let mut buf = Scratch::default();
        let none = Dictionaries::default();
        let finder = Finder::new(b"\0never\0");
        for (headers, body) in texts() {
            let row = pack(&headers, &body, None).unwrap();
            for cut in 0..row.len() {
                let answer = search(&row[..cut], &none, &mut buf, &finder, false);
                assert!(answer.is_none() || answer == Some(false), "cut at {cut}");
            }
            for at in 0..row.len().min(400) {
                for value in [0u8, 1, 15, 0x7f, 0xf0, 0xff] {
                    let mut damaged = row.clone();
                    damaged[at] = value;
                    let _ = search(&damaged, &none, &mut buf, &finder, false);
                    assert!(buf.text().len() <= MAX_FOLDED);
                }
            }
        }
        let mut huge = pack("Subject: x", "y", None).unwrap();
        huge[5..9].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert_eq!(
            search(&huge, &none, &mut buf, &finder, true),
            Some(false),
            "headers unread"
        );
        assert_eq!(
            search(&huge, &none, &mut buf, &finder, false),
            None,
            "a huge claim"
        );
        let mut past = pack("Subject: x", "y", None).unwrap();
        past[1..5].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            search(&past, &none, &mut buf, &finder, false),
            None,
            "headers past the end"
        );
    }
}
