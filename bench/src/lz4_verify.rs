//! Layout "trigram, detail=none + verify on LZ4 folded text": a trigram
//! index without positions (about 0.3× the mail) and each message's text,
//! lower-cased as the truth is, LZ4-compressed in a table of the index's
//! own file (counted in its size). A needle's candidates are the messages
//! holding all its trigrams; each is then decompressed and searched, on
//! two threads, in one ordered pass over the table when the candidates are
//! many. The question it answers: is verification cheap enough, once it is
//! a fast decompression and a `memmem` instead of a page read and a fold,
//! for a positionless index to answer common needles under 200 ms?

use anyhow::Result;
use rusqlite::{params, Connection};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use tern_bench::percentile;

/// Candidates above this share of all messages are verified in an ordered
/// pass over the folded table instead of one lookup each.
const SCAN_SHARE: usize = 16;

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA mmap_size = 4294967296; PRAGMA cache_size = -65536;",
    )?;
    Ok(conn)
}

pub fn run(name: &str, messages: &[String], raw_bytes: u64, needles: &[String]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("index.db");
    let conn = open(&path)?;
    conn.execute_batch(
        "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram');
         CREATE TABLE folded (id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
    )?;
    let started = Instant::now();
    let lower: Vec<String> = messages.iter().map(|m| m.to_lowercase()).collect();
    for (chunk_index, chunk) in messages.chunks(500).enumerate() {
        conn.execute_batch("BEGIN")?;
        for (i, m) in chunk.iter().enumerate() {
            let id = chunk_index * 500 + i;
            conn.prepare_cached("INSERT INTO t (rowid, text) VALUES (?1, ?2)")?
                .execute(params![id as i64 + 1, m])?;
            let packed = lz4_flex::block::compress_prepend_size(lower[id].as_bytes());
            conn.prepare_cached("INSERT INTO folded (id, data) VALUES (?1, ?2)")?
                .execute(params![id as i64 + 1, packed])?;
        }
        conn.execute_batch("COMMIT")?;
    }
    conn.execute_batch("INSERT INTO t (t) VALUES ('optimize'); PRAGMA wal_checkpoint(TRUNCATE);")?;
    let build = started.elapsed();
    let page: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let size = page * conn.query_row::<u64, _, _>("PRAGMA page_count", [], |r| r.get(0))?;
    let folded_bytes: u64 =
        conn.query_row("SELECT sum(length(data)) FROM folded", [], |r| r.get(0))?;
    let mut readers = [open(&path)?, open(&path)?];

    let mut times: Vec<(Duration, usize, &str)> = Vec::new();
    let mut wrong = 0;
    let mut verified = 0;
    for needle in needles {
        let lowered = needle.to_lowercase();
        let expected: HashSet<i64> = lower
            .iter()
            .enumerate()
            .filter(|(_, m)| m.contains(&lowered))
            .map(|(i, _)| i as i64 + 1)
            .collect();
        let begun = Instant::now();
        let candidates: Vec<i64> = conn
            .prepare_cached("SELECT rowid FROM t WHERE t MATCH ?1 ORDER BY rowid")?
            .query_map([crate::every_trigram(&lowered)], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        verified += candidates.len();
        let found = verify(
            &mut readers,
            &candidates,
            lowered.as_bytes(),
            messages.len(),
        )?;
        times.push((begun.elapsed(), candidates.len(), needle));
        if found.into_iter().collect::<HashSet<_>>() != expected {
            wrong += 1;
        }
    }
    times.sort();
    let durations: Vec<Duration> = times.iter().map(|t| t.0).collect();
    println!(
        "{name:<48} index/raw {:>5.2} (folded text {:.2})  build {:>6.1}s  query p50 {:>7.2} ms  p99 {:>8.2} ms  wrong {wrong}  verified {verified}",
        size as f64 / raw_bytes as f64,
        folded_bytes as f64 / raw_bytes as f64,
        build.as_secs_f64(),
        percentile(&durations, 0.5),
        percentile(&durations, 0.99),
    );
    for (time, candidates, needle) in times.iter().rev().take(5) {
        println!(
            "    {:>8.1} ms  {candidates:>6} candidates  {needle:?}",
            time.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// The candidates whose folded text holds `needle`, split over the two
/// readers by halves of the candidate list.
fn verify(
    readers: &mut [Connection; 2],
    candidates: &[i64],
    needle: &[u8],
    total: usize,
) -> Result<Vec<i64>> {
    let finder = memchr::memmem::Finder::new(needle);
    let scan = candidates.len() * SCAN_SHARE > total;
    let (left, right) = candidates.split_at(candidates.len() / 2);
    let [a, b] = readers;
    std::thread::scope(|s| {
        let finder = &finder;
        let first = s.spawn(move || verify_part(a, left, finder, scan));
        let second = verify_part(b, right, finder, scan);
        let mut found = first.join().expect("verifier panicked")?;
        found.extend(second?);
        Ok(found)
    })
}

fn verify_part(
    conn: &mut Connection,
    candidates: &[i64],
    finder: &memchr::memmem::Finder,
    scan: bool,
) -> Result<Vec<i64>> {
    let mut found = Vec::new();
    let mut buf = Vec::new();
    let mut check = |id: i64, data: &[u8]| {
        buf.clear();
        let Ok(len) = lz4_flex::block::uncompressed_size(data).map(|(len, _)| len) else {
            return;
        };
        buf.resize(len, 0);
        if lz4_flex::block::decompress_into(&data[4..], &mut buf).is_ok()
            && finder.find(&buf).is_some()
        {
            found.push(id);
        }
    };
    let (Some(&first), Some(&last)) = (candidates.first(), candidates.last()) else {
        return Ok(found);
    };
    if scan {
        let mut stmt =
            conn.prepare_cached("SELECT id, data FROM folded WHERE id BETWEEN ?1 AND ?2")?;
        let mut rows = stmt.query([first, last])?;
        let mut wanted = candidates.iter().peekable();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            while wanted.next_if(|&&w| w < id).is_some() {}
            if wanted.next_if_eq(&&id).is_some() {
                check(id, row.get_ref(1)?.as_bytes()?);
            }
        }
    } else {
        let mut stmt = conn.prepare_cached("SELECT data FROM folded WHERE id = ?1")?;
        for &id in candidates {
            let mut rows = stmt.query([id])?;
            if let Some(row) = rows.next()? {
                check(id, row.get_ref(0)?.as_bytes()?);
            }
        }
    }
    Ok(found)
}
