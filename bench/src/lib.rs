//! Helpers shared by the load generators: latency percentiles and the bits
//! of JSON they print, so every benchmark reports figures the same way.

use std::fmt::Write as _;
use std::time::Duration;

/// The p-th percentile (nearest rank) of sorted values, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `n` mail-sized messages (a header block and a 2–6 KiB body) made of the
/// plain text files under /usr/share/doc: real prose, deterministic.
pub fn mail_corpus(n: usize) -> anyhow::Result<Vec<String>> {
    let mut text = String::new();
    let mut stack = vec![std::path::PathBuf::from("/usr/share/doc")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_none_or(|e| e != "gz") {
                if let Ok(t) = std::fs::read_to_string(&path) {
                    text.push_str(&t);
                }
            }
        }
    }
    anyhow::ensure!(text.len() > 1 << 20, "too little text under /usr/share/doc");
    let chars: Vec<char> = text.chars().collect();
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let len = 2048 + (next() % 4096) as usize;
        let start = (next() as usize) % (chars.len() - len);
        let body: String = chars[start..start + len].iter().collect();
        let subject: String = body
            .lines()
            .find(|l| l.len() > 10)
            .unwrap_or("hello")
            .chars()
            .take(60)
            .collect();
        out.push(format!(
            "From: Sender {i} <sender{i}@example.net>\r\nTo: <user@example.test>\r\nSubject: {subject}\r\nDate: Mon, 1 Jun 2026 10:{:02}:00 +0000\r\nMessage-ID: <{i}.{}@example.net>\r\n\r\n{body}",
            i % 60,
            next()
        ));
    }
    Ok(out)
}

pub fn substring_needles(messages: &[String], n: usize) -> Vec<String> {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    while out.len() < n {
        let m: Vec<char> = messages[(next() as usize) % messages.len()]
            .chars()
            .collect();
        let len = 4 + (next() % 13) as usize;
        let start = (next() as usize) % (m.len() - len);
        let s: String = m[start..start + len].iter().collect();
        if s.chars().all(|c| !c.is_control() && c != '"') && s.trim() == s {
            out.push(s);
        }
    }
    out.push("zzqxj absent".into());
    out
}

/// The `n` largest tables and indexes of a database by pages, in bytes,
/// from SQLite's `dbstat` (empty when the library lacks it).
pub fn largest_tables(
    conn: &rusqlite::Connection,
    n: usize,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let Ok(mut stmt) =
        conn.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT ?1")
    else {
        return Ok(Vec::new());
    };
    let rows = stmt.query_map([n as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A xorshift64 generator from `seed` (not zero): deterministic corpora and
/// queries, so runs compare.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.5), 50.0);
        assert_eq!(percentile(&ms, 0.99), 99.0);
        assert_eq!(percentile(&ms, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
