//! `index-bench`: how big a full-text index is and how fast it answers
//! IMAP-style substring searches (RFC 9051 §6.4.4: case-insensitive
//! substring), for the index layouts SQLite's FTS5 allows (issue 10).
//!
//! A corpus of `--messages` mail-sized messages is built from the plain
//! text files under /usr/share/doc (real English prose, changelogs and
//! READMEs), each a header block plus a 2–6 KiB body. Each layout is built
//! in its own database beside a `raw` table holding the messages (as the
//! store's blobs do), then `--queries` substrings are searched: each taken
//! from a random message (so it has at least one hit) at a random length of
//! 4 to 16 characters, plus some absent. Every answer is checked against a
//! brute-force scan; a layout that needs it verifies its candidates against
//! the raw message, and the verification is part of the measured time.
//!
//! Reported per layout: index bytes / raw bytes, build time, query p50/p99,
//! and wrong answers.

use anyhow::{Context, Result};
use clap::Parser;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::time::{Duration, Instant};
mod lz4_verify;
mod word_index;

use tern_bench::{mail_corpus as corpus, percentile, substring_needles as needles};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Only these layouts (comma-separated names)
    #[arg(long)]
    only: Option<String>,
}

struct Layout {
    name: &'static str,
    create: &'static str,
    /// Candidate rowids for a needle (`?1` the FTS5 phrase).
    query: &'static str,
    /// Candidates are checked against the raw message.
    verify: bool,
    /// Hybrid: positions (`h`, detail=full) for only the first `head`
    /// bytes of each message, `t` (detail=none) for all of it; a hit in `h`
    /// is certain, the other candidates of `t` are verified.
    head: usize,
    /// Blocks: each row of `t` is a `block`-byte stretch of a message
    /// (rowid = message << 16 | block number), consecutive stretches
    /// overlapping by `OVERLAP` bytes so a needle that short lies whole in
    /// one; the trigrams must then meet within one block, which rules out
    /// most of the false candidates a whole-message `detail=none` gives,
    /// at the price of a posting per block instead of per message.
    block: usize,
    /// Verification reads the message's text lower-cased and
    /// DEFLATE-compressed from a `folded` table in the index's own file
    /// (counted in its size), not the raw message: what a store would keep
    /// beside a positionless index, so verifying is inflate and memmem.
    folded: bool,
    /// Size only (no queries): a word index, with a trigram index over its
    /// vocabulary built after it (`vt`), to see what the word-based way to
    /// substring search would weigh.
    size_only: bool,
}

/// Bytes shared by consecutive blocks: needles up to this long lie in one.
const OVERLAP: usize = 64;

const LAYOUTS: &[Layout] = &[
    Layout {
        name: "trigram, content stored (before)",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: false,
        head: 0,
        block: 0,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "trigram, contentless, detail=full",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: false,
        head: 0,
        block: 0,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "trigram, contentless, detail=column + verify",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = column, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 0,
        block: 0,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "trigram, contentless, detail=none + verify",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 0,
        block: 0,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "hybrid, first 1 KiB detail=full, all detail=none + verify",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram');
                 CREATE VIRTUAL TABLE h USING fts5 (text, content = '', contentless_delete = 1, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 1024,
        block: 0,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "hybrid, first 2 KiB detail=full, all detail=none + verify",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram');
                 CREATE VIRTUAL TABLE h USING fts5 (text, content = '', contentless_delete = 1, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 2048,
        block: 0,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "blocks of 512 B, detail=none + verify",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 0,
        block: 512,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "blocks of 1024 B, detail=none + verify",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 0,
        block: 1024,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "blocks of 2048 B, detail=none + verify",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram')",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 0,
        block: 2048,
        folded: false,
        size_only: false,
    },
    Layout {
        name: "trigram, detail=none + verify on folded, deflated text",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram');
                 CREATE TABLE folded (id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
        query: "SELECT rowid FROM t WHERE t MATCH ?1",
        verify: true,
        head: 0,
        block: 0,
        folded: true,
        size_only: false,
    },
    Layout {
        name: "words (unicode61), detail=full, + vocabulary trigrams (size only)",
        create: "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0');
                 CREATE VIRTUAL TABLE v USING fts5vocab (t, 'row');
                 CREATE VIRTUAL TABLE vt USING fts5 (term, tokenize = 'trigram')",
        query: "",
        verify: false,
        head: 0,
        block: 0,
        folded: false,
        size_only: true,
    },
];

/// The first `n` bytes of `s`, cut at a character boundary.
fn head_of(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` in stretches of about `size` bytes (cut at character boundaries),
/// each starting `OVERLAP` bytes before the previous one ended.
fn blocks_of(s: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = head_of(&s[start..], size).len() + start;
        out.push(&s[start..end]);
        if end >= s.len() {
            return out;
        }
        let mut next = end.saturating_sub(OVERLAP).max(start + 1);
        while !s.is_char_boundary(next) {
            next += 1;
        }
        start = next;
    }
}

/// Case-insensitive substring test: ASCII folded byte by byte, other
/// characters through `char::to_lowercase`, into a reused buffer.
fn contains_folded(hay: &[u8], needle: &str, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let text = String::from_utf8_lossy(hay);
    for (i, chunk) in text.split(|c: char| !c.is_ascii()).enumerate() {
        if i > 0 {
            // The non-ASCII character that split the chunks.
            let start = chunk.as_ptr() as usize - text.as_ptr() as usize;
            let c = text[..start].chars().next_back().unwrap_or(' ');
            for l in c.to_lowercase() {
                let mut b = [0u8; 4];
                buf.extend_from_slice(l.encode_utf8(&mut b).as_bytes());
            }
        }
        let from = buf.len();
        buf.extend_from_slice(chunk.as_bytes());
        buf[from..].make_ascii_lowercase();
    }
    memchr::memmem::find(buf, needle.as_bytes()).is_some()
}

/// The FTS5 query a positionless trigram index answers for `needle`:
/// every trigram of it, quoted, all required.
fn every_trigram(needle: &str) -> String {
    let chars: Vec<char> = needle.chars().collect();
    let mut grams: Vec<String> = chars
        .windows(3)
        .map(|w| format!("\"{}\"", w.iter().collect::<String>().replace('"', "\"\"")))
        .collect();
    grams.sort();
    grams.dedup();
    grams.join(" AND ")
}

/// The text as the truth is computed: `str::to_lowercase`.
fn lower_of(s: &str) -> String {
    s.to_lowercase()
}

fn deflate(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(1));
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Inflates `data` into `buf` (cleared first); false if it is damaged.
fn inflate_into(data: &[u8], buf: &mut Vec<u8>) -> bool {
    use std::io::Read;
    buf.clear();
    flate2::read::DeflateDecoder::new(data)
        .read_to_end(buf)
        .is_ok()
}

fn file_size(conn: &Connection) -> Result<u64> {
    let pages: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(pages * size)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let messages = corpus(args.messages)?;
    let raw_bytes: u64 = messages.iter().map(|m| m.len() as u64).sum();
    let needles = needles(&messages, args.queries);
    let lower: Vec<String> = messages.iter().map(|m| m.to_lowercase()).collect();
    let truth: Vec<HashSet<i64>> = needles
        .iter()
        .map(|n| {
            let n = n.to_lowercase();
            lower
                .iter()
                .enumerate()
                .filter(|(_, m)| m.contains(&n))
                .map(|(i, _)| i as i64 + 1)
                .collect()
        })
        .collect();
    println!(
        "corpus: {} messages, {:.1} MiB; {} queries",
        messages.len(),
        raw_bytes as f64 / (1 << 20) as f64,
        needles.len()
    );
    const WORDS: &str = "words and separators, forward + reversed, vocabulary trigrams";
    if args
        .only
        .as_ref()
        .is_none_or(|o| o.split(',').any(|o| WORDS.contains(o.trim())))
    {
        word_layout(WORDS, "", &messages, raw_bytes, &needles)?;
    }
    const WORDS_PREFIX: &str = "words, forward + reversed, with FTS5 prefix = '1 2'";
    if args
        .only
        .as_ref()
        .is_some_and(|o| o.split(',').any(|o| WORDS_PREFIX.contains(o.trim())))
    {
        word_layout(
            WORDS_PREFIX,
            ", prefix = '1 2'",
            &messages,
            raw_bytes,
            &needles,
        )?;
    }
    const FORWARD: &str = "forward index, every message scanned";
    if args
        .only
        .as_ref()
        .is_some_and(|o| o.split(',').any(|o| FORWARD.contains(o.trim())))
    {
        forward_scan(FORWARD, &messages, raw_bytes, &needles)?;
    }
    const LZ4: &str = "trigram, detail=none + verify on LZ4 folded text";
    if args
        .only
        .as_ref()
        .is_some_and(|o| o.split(',').any(|o| LZ4.contains(o.trim())))
    {
        lz4_verify::run(LZ4, &messages, raw_bytes, &needles)?;
    }
    for layout in LAYOUTS {
        if let Some(only) = &args.only {
            if !only.split(',').any(|o| layout.name.contains(o.trim())) {
                continue;
            }
        }
        let dir = tempfile::tempdir()?;
        let conn = Connection::open(dir.path().join("index.db"))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        conn.execute_batch(layout.create)
            .with_context(|| layout.name)?;
        let raw = Connection::open(dir.path().join("raw.db"))?;
        raw.execute_batch("CREATE TABLE raw (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")?;
        let started = Instant::now();
        for (chunk_index, chunk) in messages.chunks(500).enumerate() {
            conn.execute_batch("BEGIN")?;
            raw.execute_batch("BEGIN")?;
            for (i, m) in chunk.iter().enumerate() {
                let id = (chunk_index * 500 + i + 1) as i64;
                if layout.block > 0 {
                    for (n, block) in blocks_of(m, layout.block).into_iter().enumerate() {
                        conn.prepare_cached("INSERT INTO t (rowid, text) VALUES (?1, ?2)")?
                            .execute(params![id << 16 | n as i64, block])?;
                    }
                } else {
                    conn.prepare_cached("INSERT INTO t (rowid, text) VALUES (?1, ?2)")?
                        .execute(params![id, m])?;
                }
                if layout.head > 0 {
                    conn.prepare_cached("INSERT INTO h (rowid, text) VALUES (?1, ?2)")?
                        .execute(params![id, head_of(m, layout.head)])?;
                }
                if layout.folded {
                    conn.prepare_cached("INSERT INTO folded (id, data) VALUES (?1, ?2)")?
                        .execute(params![id, deflate(lower_of(m).as_bytes())?])?;
                }
                raw.prepare_cached("INSERT INTO raw (id, data) VALUES (?1, ?2)")?
                    .execute(params![id, m.as_bytes()])?;
            }
            conn.execute_batch("COMMIT")?;
            raw.execute_batch("COMMIT")?;
        }
        conn.execute_batch(
            "INSERT INTO t (t) VALUES ('optimize'); PRAGMA wal_checkpoint(TRUNCATE);",
        )?;
        if layout.head > 0 {
            conn.execute_batch(
                "INSERT INTO h (h) VALUES ('optimize'); PRAGMA wal_checkpoint(TRUNCATE);",
            )?;
        }
        if layout.size_only {
            let words = file_size(&conn)?;
            conn.execute_batch(
                "INSERT INTO vt (term) SELECT term FROM v;
                 INSERT INTO vt (vt) VALUES ('optimize'); PRAGMA wal_checkpoint(TRUNCATE);",
            )?;
            let terms: i64 = conn.query_row("SELECT count(*) FROM v", [], |r| r.get(0))?;
            println!(
                "{:<48} index/raw {:>5.2} (words alone {:.2})  build {:>6.1}s  vocabulary {terms} words",
                layout.name,
                file_size(&conn)? as f64 / raw_bytes as f64,
                words as f64 / raw_bytes as f64,
                started.elapsed().as_secs_f64(),
            );
            continue;
        }
        let mut verified = 0usize;
        let mut buf = Vec::new();
        let build = started.elapsed();
        let size = file_size(&conn)?;
        let mut times: Vec<Duration> = Vec::new();
        let mut wrong = 0;
        for (needle, expected) in needles.iter().zip(&truth) {
            // With detail != full FTS5 has no phrases: every trigram of the
            // needle must be in the message, and the verification does the rest.
            let phrase = if layout.verify {
                every_trigram(&needle.to_lowercase())
            } else {
                format!("\"{}\"", needle.replace('"', "\"\""))
            };
            let begun = Instant::now();
            let mut stmt = conn.prepare_cached(layout.query)?;
            let mut candidates: Vec<i64> = stmt
                .query_map([&phrase], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if layout.block > 0 {
                // Block rows to messages, once each (rowids come sorted).
                for c in candidates.iter_mut() {
                    *c >>= 16;
                }
                candidates.dedup();
            }
            let certain: HashSet<i64> = if layout.head > 0 {
                let phrase = format!("\"{}\"", needle.replace('"', "\"\""));
                conn.prepare_cached("SELECT rowid FROM h WHERE h MATCH ?1")?
                    .query_map([&phrase], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            } else {
                HashSet::new()
            };
            let found: HashSet<i64> = if layout.verify {
                let lowered = needle.to_lowercase();
                let mut get = raw.prepare_cached("SELECT data FROM raw WHERE id = ?1")?;
                let mut get_folded = match layout.folded {
                    true => Some(conn.prepare_cached("SELECT data FROM folded WHERE id = ?1")?),
                    false => None,
                };
                let finder = memchr::memmem::Finder::new(lowered.as_bytes());
                candidates
                    .into_iter()
                    .filter(|id| {
                        if certain.contains(id) {
                            return true;
                        }
                        verified += 1;
                        if let Some(get_folded) = get_folded.as_mut() {
                            return get_folded
                                .query_row([id], |r| {
                                    Ok(inflate_into(r.get_ref(0)?.as_bytes()?, &mut buf)
                                        && finder.find(&buf).is_some())
                                })
                                .unwrap_or(false);
                        }
                        get.query_row([id], |r| {
                            Ok(contains_folded(
                                r.get_ref(0)?.as_bytes()?,
                                &lowered,
                                &mut buf,
                            ))
                        })
                        .unwrap_or(false)
                    })
                    .collect()
            } else {
                candidates.into_iter().collect()
            };
            times.push(begun.elapsed());
            if &found != expected {
                wrong += 1;
            }
        }
        times.sort();
        println!(
            "{:<48} index/raw {:>5.2}  build {:>6.1}s  query p50 {:>7.2} ms  p99 {:>8.2} ms  wrong {wrong}  verified {verified}",
            layout.name,
            size as f64 / raw_bytes as f64,
            build.as_secs_f64(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
        );
    }
    Ok(())
}

/// The word index of `tern_store::sqlite::word_index`: tokens forward and
/// reversed in an FTS5 `ascii` table, a vocabulary with its own trigram
/// index for needles inside one token, and messages it cannot write
/// exactly listed to be scanned. Checked against `word_index::contains`
/// (the folding the index uses), not `str::to_lowercase`.
/// `options` is added to the word table's FTS5 options (e.g. prefix
/// indexes).
fn word_layout(
    name: &str,
    options: &str,
    messages: &[String],
    raw_bytes: u64,
    needles: &[String],
) -> Result<()> {
    use word_index::Plan;
    let dir = tempfile::tempdir()?;
    let conn = Connection::open(dir.path().join("index.db"))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, tokenize = 'ascii'{options});
         CREATE TABLE vocab (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
         CREATE VIRTUAL TABLE vt USING fts5 (term, content = '', tokenize = 'trigram');
         CREATE TABLE unindexed (id INTEGER PRIMARY KEY);"
    ))?;
    // The messages, for verification, in a file of their own (not counted).
    conn.execute_batch(&format!(
        "ATTACH DATABASE '{}' AS r; CREATE TABLE r.raw (id INTEGER PRIMARY KEY, data TEXT NOT NULL);",
        dir.path().join("raw.db").display()
    ))?;
    let raw = &conn;
    let started = Instant::now();
    let mut unindexed = Vec::new();
    for (chunk_index, chunk) in messages.chunks(500).enumerate() {
        conn.execute_batch("BEGIN")?;
        for (i, m) in chunk.iter().enumerate() {
            let id = (chunk_index * 500 + i + 1) as i64;
            conn.prepare_cached("INSERT INTO raw (id, data) VALUES (?1, ?2)")?
                .execute(params![id, m])?;
            let Some(doc) = word_index::document(m) else {
                conn.prepare_cached("INSERT INTO unindexed (id) VALUES (?1)")?
                    .execute([id])?;
                unindexed.push(id);
                continue;
            };
            conn.prepare_cached("INSERT INTO t (rowid, text) VALUES (?1, ?2)")?
                .execute(params![id, doc])?;
            for term in word_index::vocabulary(&doc) {
                let new: Option<i64> = conn
                    .prepare_cached(
                        "INSERT INTO vocab (term) VALUES (?1) ON CONFLICT DO NOTHING RETURNING id",
                    )?
                    .query_row([term], |r| r.get(0))
                    .optional()?;
                if let Some(vid) = new {
                    conn.prepare_cached("INSERT INTO vt (rowid, term) VALUES (?1, ?2)")?
                        .execute(params![vid, term])?;
                }
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    conn.execute_batch(
        "INSERT INTO t (t) VALUES ('optimize'); INSERT INTO vt (vt) VALUES ('optimize');
         PRAGMA wal_checkpoint(TRUNCATE);",
    )?;
    let build = started.elapsed();
    let size = file_size(&conn)?;
    let terms: i64 = conn.query_row("SELECT count(*) FROM vocab", [], |r| r.get(0))?;
    for (table, bytes) in tern_bench::largest_tables(&conn, 8)? {
        println!("  {table:<24} {:>6.2}", bytes as f64 / raw_bytes as f64);
    }
    let mut times = Vec::new();
    let mut wrong = 0;
    let mut slow = Vec::new();
    let mut verified = 0usize;
    // With prefix indexes, short edges are left to them.
    let weak_edge = if options.is_empty() { 3 } else { 0 };
    const VERIFY_AT_MOST: usize = 3000;
    for needle in needles {
        let expected: HashSet<i64> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| word_index::contains(m, needle))
            .map(|(i, _)| i as i64 + 1)
            .collect();
        let begun = Instant::now();
        let plan = word_index::plan(needle);
        let run = |e: &str| -> Result<HashSet<i64>> {
            Ok(conn
                .prepare_cached("SELECT rowid FROM t WHERE t MATCH ?1")?
                .query_map([e], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        };
        let mut found: HashSet<i64> = match &plan {
            Plan::Nowhere => HashSet::new(),
            Plan::Phrase(full) => {
                // Short edges expand to many terms: leave them out, and
                // verify the candidates if they are few.
                let (first, last, _) = word_index::phrase_without_edges(needle, true, true)
                    .context("a phrase plan has edges")?;
                let (with_first, with_last) = (first >= weak_edge, last >= weak_edge);
                let reduced = word_index::phrase_without_edges(needle, with_first, with_last)
                    .filter(|(_, _, p)| (!with_first || !with_last) && !p.is_empty());
                let mut answer = None;
                if let Some((_, _, p)) = reduced {
                    let candidates = run(&p)?;
                    if candidates.len() <= VERIFY_AT_MOST {
                        let mut get = raw.prepare_cached("SELECT data FROM raw WHERE id = ?1")?;
                        let mut kept = HashSet::new();
                        for id in candidates {
                            verified += 1;
                            let text: String = get.query_row([id], |r| r.get(0))?;
                            if word_index::contains(&text, needle) {
                                kept.insert(id);
                            }
                        }
                        answer = Some(kept);
                    }
                }
                match answer {
                    Some(a) => a,
                    None => run(full)?,
                }
            }
            Plan::Inside(inside) => {
                let found: Vec<String> = conn
                    .prepare_cached(
                        "SELECT v.term FROM vt JOIN vocab v ON v.id = vt.rowid WHERE vt MATCH ?1",
                    )?
                    .query_map([format!("\"{inside}\"")], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                // Each term's shortest prefix that holds the needle: every
                // term starting with it holds it too.
                let mut prefixes: Vec<&str> = found
                    .iter()
                    .filter_map(|t| t.find(inside.as_str()).map(|at| &t[..at + inside.len()]))
                    .collect();
                prefixes.sort_unstable();
                prefixes.dedup();
                let mut hits = HashSet::new();
                for chunk in prefixes.chunks(64) {
                    let e: Vec<String> = chunk.iter().map(|p| format!("\"{p}\" *")).collect();
                    hits.extend(run(&e.join(" OR "))?);
                }
                hits
            }
        };
        for id in &unindexed {
            if word_index::contains(&messages[*id as usize - 1], needle) {
                found.insert(*id);
            }
        }
        let took = begun.elapsed();
        times.push(took);
        slow.push((
            took,
            needle.clone(),
            matches!(plan, Plan::Inside(_)),
            found.len(),
        ));
        if found != expected {
            wrong += 1;
        }
    }
    times.sort();
    slow.sort_by_key(|s| std::cmp::Reverse(s.0));
    println!(
        "{name:<48} index/raw {:>5.2}  build {:>6.1}s  query p50 {:>7.2} ms  p99 {:>8.2} ms  wrong {wrong}  vocabulary {terms}  unindexed {}  verified {verified}",
        size as f64 / raw_bytes as f64,
        build.as_secs_f64(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        unindexed.len(),
    );
    for (took, needle, inside, hits) in slow.iter().take(5) {
        println!(
            "  slow: {:>8.2} ms  {needle:?}  inside-one-token {inside}  hits {hits}",
            took.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// The worst case of a word index checked at word edges: each message's
/// token ids in order (a forward index, varint-packed), and a needle with
/// cuts answered by reading the forward index of every message and
/// looking for a token ending with its first part, its whole tokens, and
/// a token starting with its last part. The vocabulary is in memory here;
/// the time to find the edge sets in it is reported apart.
fn forward_scan(name: &str, messages: &[String], raw_bytes: u64, needles: &[String]) -> Result<()> {
    use std::collections::HashMap;
    let dir = tempfile::tempdir()?;
    let conn = Connection::open(dir.path().join("forward.db"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE fwd (id INTEGER PRIMARY KEY, seq BLOB NOT NULL);",
    )?;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut terms: Vec<String> = Vec::new();
    let mut indexed = Vec::new();
    for (chunk_index, chunk) in messages.chunks(500).enumerate() {
        conn.execute_batch("BEGIN")?;
        for (i, m) in chunk.iter().enumerate() {
            let id = (chunk_index * 500 + i + 1) as i64;
            let Some(doc) = word_index::document(m) else {
                continue;
            };
            indexed.push(id);
            let mut seq = Vec::new();
            for t in word_index::forward_tokens(&doc) {
                let next = terms.len() as u32;
                let tid = *ids.entry(t.to_string()).or_insert_with(|| {
                    terms.push(t.to_string());
                    next
                });
                let mut v = tid;
                while v >= 0x80 {
                    seq.push((v as u8) | 0x80);
                    v >>= 7;
                }
                seq.push(v as u8);
            }
            conn.prepare_cached("INSERT INTO fwd (id, seq) VALUES (?1, ?2)")?
                .execute(params![id, seq])?;
        }
        conn.execute_batch("COMMIT")?;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let size = file_size(&conn)?;
    let indexed: HashSet<i64> = indexed.into_iter().collect();
    let mut times = Vec::new();
    let mut set_times = Vec::new();
    let mut wrong = 0;
    let mut skipped = 0;
    for needle in needles {
        let Some(parts) = word_index::needle_tokens(needle) else {
            skipped += 1;
            continue;
        };
        if parts.len() < 2 {
            skipped += 1;
            continue;
        }
        let expected: HashSet<i64> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (i as i64 + 1, m))
            .filter(|(id, m)| indexed.contains(id) && word_index::contains(m, needle))
            .map(|(id, _)| id)
            .collect();
        let begun = Instant::now();
        let (first, rest) = parts.split_first().context("two parts")?;
        let (last, middle) = rest.split_last().context("two parts")?;
        let starts: Vec<bool> = terms.iter().map(|t| t.ends_with(first.as_str())).collect();
        let ends: Vec<bool> = terms.iter().map(|t| t.starts_with(last.as_str())).collect();
        let middle: Option<Vec<u32>> = middle.iter().map(|t| ids.get(t).copied()).collect();
        set_times.push(begun.elapsed());
        let mut found = HashSet::new();
        if let Some(middle) = middle {
            let span = middle.len() + 2;
            let mut stmt = conn.prepare_cached("SELECT id, seq FROM fwd")?;
            let mut rows = stmt.query([])?;
            let mut seq: Vec<u32> = Vec::new();
            while let Some(row) = rows.next()? {
                let bytes = row.get_ref(1)?.as_blob()?;
                seq.clear();
                let (mut v, mut shift) = (0u32, 0);
                for b in bytes {
                    v |= ((b & 0x7f) as u32) << shift;
                    if b & 0x80 == 0 {
                        seq.push(v);
                        v = 0;
                        shift = 0;
                    } else {
                        shift += 7;
                    }
                }
                let hit = seq.windows(span).any(|w| {
                    starts[w[0] as usize]
                        && w[1..span - 1] == middle[..]
                        && ends[w[span - 1] as usize]
                });
                if hit {
                    found.insert(row.get(0)?);
                }
            }
        }
        times.push(begun.elapsed());
        if found != expected {
            wrong += 1;
        }
    }
    times.sort();
    set_times.sort();
    println!(
        "{name:<48} forward/raw {:>5.2}  vocabulary {}  scan p50 {:>7.2} ms  p99 {:>8.2} ms  (edge sets p50 {:.2} ms, p99 {:.2} ms)  wrong {wrong}  needles without a cut {skipped}",
        size as f64 / raw_bytes as f64,
        terms.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&set_times, 0.5),
        percentile(&set_times, 0.99),
    );
    Ok(())
}
