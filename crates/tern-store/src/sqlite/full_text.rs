//! Which emails' text holds a needle: IMAP SEARCH TEXT and BODY (RFC 9051
//! §6.4.4, a case-insensitive substring) and JMAP's text filters (RFC 8621
//! §4.4.1), answered from the search index that `indexer.rs` writes.
//!
//! Trigram positions would let FTS5 answer a substring alone, as the
//! phrase of its trigrams, but they cost twice the text they index
//! (BENCHMARKS.md, issue 10). So `text_trigrams` records only which emails
//! hold each trigram (`detail = none`, about a third of the mail's size),
//! and `text_folded` keeps each email's headers and body folded as the
//! index folds ([`fts5_fold`]) and compressed with LZ4 (under half the
//! mail's size). The emails holding every trigram of a needle are its
//! candidates; each is decompressed and searched with `memmem`. LZ4
//! decompresses at gigabytes a second, so a candidate costs a microsecond
//! or two, and a needle found in nearly every one of 100,000 messages is
//! still answered in about a tenth of a second.
//!
//! The answers are exactly [`index_contains`] of the message's text, what a
//! scan of the message finds; a folded text that cannot be read (damaged)
//! is matched from the message itself.

use super::db;
use super::folded_text;
use crate::error::{Result, StoreError};
use crate::search::contains_ignore_case;
use crate::types::EmailId;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashSet;

/// At most this many of a needle's trigrams are asked of `text_trigrams`:
/// every candidate is verified anyway, and each trigram more is a doclist
/// more to intersect for a long needle.
const MAX_QUERY_TRIGRAMS: usize = 12;

/// Candidates at least this share (1/n) of the id span they cover are
/// verified in one ordered pass over `text_folded`, not a lookup each.
const SCAN_DENSITY: usize = 4;

/// Candidates from this many up are verified on two threads.
const PARALLEL_FROM: usize = 2048;

/// The FTS5 query for `text_trigrams`: the needle's distinct trigrams (at
/// most [`MAX_QUERY_TRIGRAMS`], spread over it), each quoted, all required.
fn trigram_query(needle: &str) -> String {
    let chars: Vec<char> = needle.chars().collect();
    let mut grams: Vec<String> = chars
        .windows(TRIGRAM)
        .map(|w| w.iter().collect::<String>())
        .collect();
    if grams.len() > MAX_QUERY_TRIGRAMS {
        // Evenly spaced, the first and the last among them.
        let last = grams.len() - 1;
        grams = (0..MAX_QUERY_TRIGRAMS)
            .map(|k| grams[k * last / (MAX_QUERY_TRIGRAMS - 1)].clone())
            .collect();
    }
    grams.sort_unstable();
    grams.dedup();
    let quoted: Vec<String> = grams.iter().map(|g| fts5_phrase(g)).collect();
    quoted.join(" AND ")
}

/// Emails among `members` whose indexed text contains `needle` (at least
/// [`TRIGRAM`] characters once NULs are dropped). The index spans every
/// account; `members` is what keeps a search to its mailbox or account,
/// without a lookup of each hit's row.
pub(crate) fn full_text(
    conn: &Connection,
    members: &HashSet<EmailId>,
    body_only: bool,
    needle: &str,
) -> Result<HashSet<EmailId>> {
    // FTS5 strings end at NUL; mail text never holds one worth finding.
    let needle = &needle.replace('\0', "");
    let what = "searching the full-text index";
    let mut candidates = Vec::new();
    {
        let mut stmt = conn
            .prepare_cached("SELECT rowid FROM idx.text_trigrams WHERE text_trigrams MATCH ?1")
            .map_err(db(what))?;
        let mut rows = stmt.query([trigram_query(needle)]).map_err(db(what))?;
        while let Some(row) = rows.next().map_err(db(what))? {
            let id = EmailId(row.get(0).map_err(db(what))?);
            if members.contains(&id) {
                candidates.push(id);
            }
        }
    }
    if !body_only && needle.chars().count() == TRIGRAM {
        // One trigram, anywhere in the text: holding it is holding the needle.
        return Ok(candidates.into_iter().collect());
    }
    candidates.sort_unstable();
    let folded = folded_text::fold(needle);
    let dictionaries = folded_text::Dictionaries::load(conn, "idx");
    let (mut hits, unreadable) = verify(
        conn,
        &dictionaries,
        &candidates,
        folded.as_bytes(),
        body_only,
    )?;
    for id in unreadable {
        if let Some((headers, body)) = text_from_message(conn, id)? {
            if index_contains(&body, needle) || (!body_only && index_contains(&headers, needle)) {
                hits.insert(id);
            }
        }
    }
    Ok(hits)
}

/// The `candidates` (sorted) whose folded text holds `needle` (folded) in
/// the body or (unless `body_only`) the headers, and those whose folded
/// text is missing or damaged. Many candidates are split over two threads,
/// the second with a connection of its own to the index file:
/// decompressing is most of the work, and a search of a large mailbox
/// should not wait on one core.
fn verify(
    conn: &Connection,
    dictionaries: &folded_text::Dictionaries,
    candidates: &[EmailId],
    needle: &[u8],
    body_only: bool,
) -> Result<(HashSet<EmailId>, Vec<EmailId>)> {
    let finder = memchr::memmem::Finder::new(needle);
    let second = match candidates.len() >= PARALLEL_FROM {
        true => second_reader(conn),
        false => None,
    };
    let Some(mut second) = second else {
        let (found, unreadable) =
            verify_part(conn, "idx", dictionaries, candidates, &finder, body_only)?;
        return Ok((found.into_iter().collect(), unreadable));
    };
    let (mine, theirs) = candidates.split_at(candidates.len() / 2);
    let (mine, theirs) = std::thread::scope(|s| {
        let (second, finder) = (&mut second, &finder);
        let helper =
            s.spawn(move || verify_part(second, "main", dictionaries, theirs, finder, body_only));
        let mine = verify_part(conn, "idx", dictionaries, mine, finder, body_only);
        (mine, helper.join())
    });
    let theirs = theirs.map_err(|_| {
        StoreError::backend(
            "verifying search candidates",
            std::io::Error::other("a verifier thread panicked"),
        )
    })?;
    let (found, mut unreadable) = mine?;
    let (more_found, more_unreadable) = theirs?;
    unreadable.extend(more_unreadable);
    Ok((found.into_iter().chain(more_found).collect(), unreadable))
}

/// A read-only connection of its own to the attached index file, or None
/// if it cannot be opened (the search then verifies on one thread).
fn second_reader(conn: &Connection) -> Option<Connection> {
    let path: String = conn
        .query_row(
            "SELECT file FROM pragma_database_list WHERE name = 'idx'",
            [],
            |r| r.get(0),
        )
        .ok()?;
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let second = Connection::open_with_flags(path, flags).ok()?;
    second
        .busy_timeout(std::time::Duration::from_secs(5))
        .ok()?;
    Some(second)
}

/// The `candidates` (sorted) whose folded text, in `schema`'s
/// `text_folded`, holds the needle, and those whose row is
/// missing or damaged.
fn verify_part(
    conn: &Connection,
    schema: &str,
    dictionaries: &folded_text::Dictionaries,
    candidates: &[EmailId],
    finder: &memchr::memmem::Finder<'_>,
    body_only: bool,
) -> Result<(Vec<EmailId>, Vec<EmailId>)> {
    let what = "reading folded text for a search";
    let mut buf = folded_text::Scratch::default();
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    let mut check = |id: EmailId, data: rusqlite::types::ValueRef<'_>| {
        let data = data.as_blob().unwrap_or_default();
        match folded_text::search(data, dictionaries, &mut buf, finder, body_only) {
            None => unreadable.push(id),
            Some(true) => found.push(id),
            Some(false) => {}
        }
    };
    let (Some(first), Some(last)) = (candidates.first(), candidates.last()) else {
        return Ok((found, unreadable));
    };
    let span = (last.0 - first.0).unsigned_abs() as usize + 1;
    let mut missing = Vec::new();
    if candidates.len() * SCAN_DENSITY >= span {
        let sql = format!(
            "SELECT id, data FROM {schema}.text_folded WHERE id BETWEEN ?1 AND ?2 ORDER BY id"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
        let mut rows = stmt.query([first.0, last.0]).map_err(db(what))?;
        let mut wanted = candidates.iter().peekable();
        while let Some(row) = rows.next().map_err(db(what))? {
            let id = EmailId(row.get(0).map_err(db(what))?);
            // Candidates without a row (none should be) are passed over.
            while let Some(skipped) = wanted.next_if(|w| **w < id) {
                missing.push(*skipped);
            }
            if wanted.next_if_eq(&&id).is_some() {
                check(id, row.get_ref(1).map_err(db(what))?);
            }
        }
        missing.extend(wanted);
    } else {
        let sql = format!("SELECT data FROM {schema}.text_folded WHERE id = ?1");
        let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
        for &id in candidates {
            let mut rows = stmt.query([id.0]).map_err(db(what))?;
            match rows.next().map_err(db(what))? {
                Some(row) => check(id, row.get_ref(0).map_err(db(what))?),
                None => missing.push(id),
            }
        }
    }
    unreadable.extend(missing);
    Ok((found, unreadable))
}

/// The text of email `id` as the index takes it (headers, body), read
/// from the message itself; `None` if the email is gone.
pub(crate) fn text_from_message(
    conn: &Connection,
    id: EmailId,
) -> Result<Option<(String, String)>> {
    let Some(raw) = message_of(conn, id)? else {
        return Ok(None);
    };
    let parsed = crate::message::parse_message(&raw);
    Ok(Some(super::indexer::index_text(&raw, &parsed)))
}

/// The bytes of an email's message as received; `None` if it is gone.
pub(crate) fn message_of(conn: &Connection, id: EmailId) -> Result<Option<Vec<u8>>> {
    let what = "reading a message to search it";
    let row: Option<(Vec<u8>, i64, Option<i64>)> = conn
        .prepare_cached(
            "SELECT b.data, b.codec, b.size FROM email e JOIN blob b ON b.hash = e.blob_hash
              WHERE e.id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(db(what))?;
    let Some((data, codec, size)) = row else {
        return Ok(None);
    };
    super::blob_codec::decode(data, codec, size).map(Some)
}

/// `needle` as an FTS5 phrase: quoted, inner quotes doubled.
pub(crate) fn fts5_phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

/// Needles this long or longer go through the trigram index; shorter ones
/// are matched by scanning ([`contains_ignore_case`]).
pub(crate) const TRIGRAM: usize = 3;

/// What the FTS5 trigram index (`case_sensitive 0`, the default) answers
/// for a needle of [`TRIGRAM`] characters or more: `needle` is a substring
/// of `haystack` once both are folded character by character as FTS5
/// folds them ([`fts5_fold`]). Another backend answers as this one does
/// by matching with this.
pub(crate) fn index_contains(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        return contains_ignore_case(haystack, needle);
    }
    let folded: String = haystack.chars().map(fts5_fold).collect();
    let needle: String = needle.chars().map(fts5_fold).collect();
    folded.contains(&needle)
}

/// Code points whose case mapping Unicode added after 6.1, the version of
/// FTS5's folding table (`sqlite3Fts5UnicodeFold`): FTS5 leaves them as
/// they are.
const FOLDED_SINCE_UNICODE_6_1: &[(u32, u32)] = &[
    (0x037F, 0x037F),
    (0x0528, 0x052F),
    (0x13A0, 0x13FD),
    (0x1C80, 0x1CBF),
    (0x2C2F, 0x2C2F),
    (0x2C5F, 0x2C5F),
    (0xA698, 0xA69B),
    (0xA794, 0xA79F),
    (0xA7AB, 0xA7FF),
    (0xAB53, 0xAB53),
    (0xAB70, 0xABBF),
];

/// One character as FTS5's trigram tokenizer folds it: Unicode 6.1 simple
/// case folding (so `ς`, `ϐ`, `µ` and `ſ` meet `σ`, `β`, `μ` and `s`, and
/// `İ` stays itself), in the Basic Multilingual Plane and Deseret only.
pub fn fts5_fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let n = c as u32;
    if n >= 0x1_0000 {
        // Deseret is the one plane-1 script FTS5 folds.
        return match n {
            0x1_0400..=0x1_0427 => char::from_u32(n + 40).unwrap_or(c),
            _ => c,
        };
    }
    if FOLDED_SINCE_UNICODE_6_1
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&n))
    {
        return c;
    }
    match c {
        // Lowercase letters whose folding is another letter.
        'ς' => 'σ',
        'ϐ' => 'β',
        'ϑ' => 'θ',
        'ϕ' => 'φ',
        'ϖ' => 'π',
        'ϰ' => 'κ',
        'ϱ' => 'ρ',
        'ϵ' => 'ε',
        'ſ' => 's',
        'µ' => 'μ',
        '\u{345}' | '\u{1FBE}' => 'ι',
        'ẛ' => 'ṡ',
        // Noncharacters: SQLite reads them as the replacement character.
        '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
        _ => {
            // A lowercase of several characters (`İ`) is no simple folding.
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{account, deliver_to, inbox, message};
    use crate::search::SearchKey;
    use crate::sqlite::{SqliteOptions, SqliteStore};
    use crate::Store;
    use rusqlite::params;
    use std::sync::Arc;

    /// A body holding every trigram of a needle, but not the needle, is a
    /// candidate the verification must turn away; the needle itself, in
    /// any case, is found, and headers are answered from their own index.
    #[tokio::test]
    async fn candidates_are_verified_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::sqlite::test_store(&dir.path().join("tern.db"));
        let a = account(&store, "a@example.test").await;
        let mb = inbox(&store, &a).await;
        // lig igh ght hth tho hou ous use, all apart.
        let decoy = deliver_to(&store, &a, message("Decoy", "light, hthought, house")).await;
        let real = deliver_to(&store, &a, message("Real", "The LIGHTHOUSE keeper")).await;
        let greek = deliver_to(&store, &a, message("Greek", "ΟΔΟΣ ΚΑΙ ΓΡΑΜΜΑ")).await;
        let search = |key: SearchKey| {
            let store = store.clone();
            async move { store.search(a.id, mb.id, &key).await.unwrap() }
        };
        assert_eq!(
            search(SearchKey::Body("lighthouse".into())).await,
            [real.uid]
        );
        assert_eq!(
            search(SearchKey::Text("Lighthouse".into())).await,
            [real.uid]
        );
        assert_eq!(search(SearchKey::Body("ht, hth".into())).await, [decoy.uid]);
        assert_eq!(
            search(SearchKey::Body("οδοσ και".into())).await,
            [greek.uid]
        );
        assert!(search(SearchKey::Body("οδοσ γρ".into())).await.is_empty());
        // "Decoy" is in a header only: TEXT finds it, BODY does not.
        assert_eq!(search(SearchKey::Text("decoy".into())).await, [decoy.uid]);
        assert!(search(SearchKey::Body("decoy".into())).await.is_empty());
        // One trigram: the candidates are the answer.
        assert_eq!(
            search(SearchKey::Body("hou".into())).await,
            [decoy.uid, real.uid]
        );
        store.close().await.unwrap();
    }

    /// A folded body that is damaged or missing is matched from the
    /// message itself: the answer does not change.
    #[tokio::test]
    async fn a_damaged_folded_body_is_matched_from_the_message() {
        let (_dir, db, store, a, mb) = crate::sqlite::test_mailbox().await;
        let mut uids = Vec::new();
        for i in 0..12 {
            let pilot = if i % 11 == 0 { ", said the pilot" } else { "" };
            let body = format!("note {i}: the harbour lights are on{pilot}");
            uids.push(deliver_to(&store, &a, message("n", &body)).await.uid);
        }
        let body = |s: &str| SearchKey::Body(s.into());
        assert_eq!(
            store.search(a.id, mb.id, &body("HARBOUR")).await.unwrap(),
            uids
        );
        let index = rusqlite::Connection::open(db.with_extension("index.db")).unwrap();
        let damaged = index
            .execute(
                "UPDATE text_folded SET data = x'00000000ffffff7f0102' WHERE id IN (SELECT id FROM text_folded ORDER BY id LIMIT 2)",
                [],
            )
            .unwrap();
        assert_eq!(damaged, 2);
        index
            .execute(
                "DELETE FROM text_folded WHERE id = (SELECT max(id) FROM text_folded)",
                [],
            )
            .unwrap();
        drop(index);
        // Dense candidates (one ordered pass) and sparse ones (a lookup each).
        assert_eq!(
            store.search(a.id, mb.id, &body("harbour")).await.unwrap(),
            uids
        );
        let pilot = store.search(a.id, mb.id, &body("the PILOT")).await.unwrap();
        assert_eq!(pilot, [uids[0], uids[11]]);
        assert_eq!(
            store.search(a.id, mb.id, &body("note 1:")).await.unwrap(),
            [uids[1]]
        );
        assert!(store
            .search(a.id, mb.id, &body("harbour dark"))
            .await
            .unwrap()
            .is_empty());
        store.close().await.unwrap();
    }

    /// Text mail of a made-up language: words of common syllables, as
    /// often as Zipf's law has words occur in real prose, in sentences and
    /// lines; 2–6 KiB of body per message, as in `search-bench`. Made up
    /// rather than read from files so that the figure cannot drift with
    /// what a machine or the repository holds.
    fn text_mail(n: usize) -> Vec<Vec<u8>> {
        let mut next = crate::conformance::xorshift(0x9e37_79b9_7f4a_7c15);
        const SYLLABLES: &[&str] = &[
            "ka", "to", "ri", "mel", "son", "dar", "e", "in", "ost", "ul", "ba", "ne", "sh", "que",
            "lo", "ver", "an", "ti", "gro", "pa", "st", "ion", "al", "mu",
        ];
        let words: Vec<String> = (0..4000)
            .map(|_| {
                let parts = 1 + (next() % 4) as usize;
                (0..parts)
                    .map(|_| SYLLABLES[(next() % SYLLABLES.len() as u64) as usize])
                    .collect()
            })
            .collect();
        (0..n)
            .map(|i| {
                let len = 2048 + (next() % 4096) as usize;
                let mut body = String::new();
                let mut line = 0;
                while body.len() < len {
                    // Log-uniform ranks: a word's frequency falls as 1/rank.
                    let u = (next() % 1_000_000) as f64 / 1_000_000.0;
                    let word = &words[(4000f64.powf(u) as usize - 1).min(3999)];
                    body.push_str(word);
                    line += word.len() + 1;
                    match next() % 12 {
                        0 => body.push_str(". "),
                        1 => body.push_str(", "),
                        _ if line > 66 => {
                            body.push_str("\r\n");
                            line = 0;
                        }
                        _ => body.push(' '),
                    }
                }
                format!(
                    "From: Sender {i} <s{i}@example.net>\r\nTo: reader@example.test\r\n\
                     Subject: {} {}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
                     Message-ID: <m{i}@example.net>\r\n\r\n{body}\r\n",
                    words[i % 4000],
                    words[(i * 7) % 4000]
                )
                .into_bytes()
            })
            .collect()
    }

    /// What text mail costs at rest: mail, metadata and search index
    /// together, next to the mail itself, and searching it still finds what
    /// a scan finds. Layout 3 (trigram positions) made this 3.38×; layout 6
    /// 1.99–2.00×; packed parses and header blocks, free pages given back
    /// and a sampled LZ4 dictionary (layout 7) 1.83×. The `search-bench`
    /// corpus, whose English compresses far better than this made-up
    /// language (LZ4: 0.45 against 0.69), is 1.77× at 1,000 messages.
    /// Issue 10 asks for 2× at most.
    #[tokio::test]
    async fn text_mail_takes_about_twice_its_size_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tern.db");
        let options = SqliteOptions {
            durability: crate::sqlite::Durability::Off,
            ..Default::default()
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db, options).unwrap());
        let a = account(&store, "reader@example.test").await;
        let mb = inbox(&store, &a).await;
        let mail = text_mail(1500);
        let raw: u64 = mail.iter().map(|m| m.len() as u64).sum();
        for chunk in mail.chunks(50) {
            let deliveries = chunk.iter().map(|m| deliver_to(&store, &a, m.clone()));
            futures_util::future::join_all(deliveries).await;
        }
        let needle = "son mel";
        let found = store
            .search(a.id, mb.id, &SearchKey::Body(needle.into()))
            .await
            .unwrap();
        let expected = mail
            .iter()
            .filter(|m| {
                let text = String::from_utf8_lossy(m);
                let body = &text[text.find("\r\n\r\n").unwrap()..];
                index_contains(body, needle)
            })
            .count();
        assert!(expected > 10, "a needle found in {expected} messages");
        assert_eq!(found.len(), expected);
        store.close().await.unwrap();
        let size =
            |suffix: &str| std::fs::metadata(db.with_extension(suffix)).map_or(0, |m| m.len());
        let all: u64 = ["db", "db-wal", "index.db", "index.db-wal"]
            .iter()
            .map(|s| size(s))
            .sum();
        let ratio = all as f64 / raw as f64;
        eprintln!(
            "mail {raw} bytes; tern.db {}, tern.index.db {}: {ratio:.2}x",
            size("db"),
            size("index.db")
        );
        assert!(ratio <= 2.0, "the data directory is {ratio:.2}x the mail");
        // The text was compressed after a dictionary sampled from it, the
        // rows written before the dictionary too.
        let index = rusqlite::Connection::open(db.with_extension("index.db")).unwrap();
        let dictionaries: Vec<usize> = index
            .prepare("SELECT length(data) FROM text_dictionary")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            matches!(dictionaries[..], [n] if n > 30 * 1024 && n <= 32 * 1024),
            "{dictionaries:?}"
        );
        let without: i64 = index
            .query_row(
                "SELECT count(*) FROM text_folded WHERE substr(data, 1, 1) != x'01'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(without, 0, "rows without the dictionary");
    }

    #[test]
    fn a_long_needle_asks_for_some_of_its_trigrams() {
        assert_eq!(trigram_query("abcd"), "\"abc\" AND \"bcd\"");
        assert_eq!(trigram_query("a\"bc"), "\"\"\"bc\" AND \"a\"\"b\"");
        let long: String = ('a'..='z').collect();
        let query = trigram_query(&long);
        assert_eq!(query.matches(" AND ").count() + 1, MAX_QUERY_TRIGRAMS);
        assert!(query.contains("\"abc\"") && query.contains("\"xyz\""));
    }

    /// [`fts5_fold`] folds every character as the FTS5 trigram tokenizer
    /// of the bundled SQLite does (read back through `fts5vocab`).
    #[test]
    fn fts5_fold_is_the_trigram_tokenizers() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5 (x, tokenize = 'trigram');
             CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance');
             BEGIN;",
        )
        .unwrap();
        {
            let mut insert = db
                .prepare("INSERT INTO t (rowid, x) VALUES (?1, ?2)")
                .unwrap();
            for n in (0x80..0x1_0000).chain(0x1_0400..0x1_0450) {
                if let Some(c) = char::from_u32(n) {
                    insert.execute(params![n, format!("a{c}a")]).unwrap();
                }
            }
        }
        db.execute_batch("COMMIT").unwrap();
        let mut stmt = db.prepare("SELECT doc, term FROM v").unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
            .unwrap();
        let mut checked = 0;
        for row in rows {
            let (n, term) = row.unwrap();
            let c = char::from_u32(n).unwrap();
            let folded = term.chars().nth(1).unwrap();
            assert_eq!(fts5_fold(c), folded, "U+{n:04X} {c}");
            checked += 1;
        }
        assert!(checked > 60_000, "{checked}");
        assert!(index_contains("ΟΔΟΣ ΚΑΙ", "οδοσ"));
        assert!(index_contains("5 µm", "μm"));
        assert!(!index_contains("İstanbul", "istanbul"));
        assert!(!index_contains("Ünïcödé", "unicode"));
        assert!(index_contains("Ünïcödé", "üNÏcödé"));
    }
}
