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
    mail_corpus_from(std::path::Path::new("/usr/share/doc"), n)
}

/// [`mail_corpus`] cut from the text files under `root` instead.
pub fn mail_corpus_from(root: &std::path::Path, n: usize) -> anyhow::Result<Vec<String>> {
    let mut text = String::new();
    let mut stack = vec![root.to_path_buf()];
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
    anyhow::ensure!(
        text.len() > 1 << 20,
        "too little text under {}",
        root.display()
    );
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

/// The messages of [`mail_corpus`] dressed as mail arrives from a large
/// provider: a header block of about 2.5 KiB (two Received lines,
/// Authentication-Results, a DKIM signature and an ARC set, their hashes
/// and signatures random base64) and the text as multipart/alternative, a
/// plain part and an HTML part. For sizes at rest of mail as it is, where
/// `mail_corpus` is the worst case (text only, small headers).
pub fn realistic_mail(n: usize) -> anyhow::Result<Vec<String>> {
    let plain = mail_corpus(n)?;
    let mut next = xorshift(0x6a09_e667_f3bc_c908);
    let mut base64 = |len: usize| -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..len)
            .map(|_| ALPHABET[(next() % 64) as usize] as char)
            .collect()
    };
    let mut out = Vec::with_capacity(n);
    for (i, m) in plain.iter().enumerate() {
        let (head, body) = m.split_once("\r\n\r\n").unwrap_or((m, ""));
        let wrap = |s: String| -> String {
            s.as_bytes()
                .chunks(72)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\r\n\t ")
        };
        let (bh, b, ams, seal) = (
            base64(44),
            wrap(base64(344)),
            wrap(base64(344)),
            wrap(base64(88)),
        );
        let id = base64(16).replace(['+', '/'], "x");
        let html: String = body
            .split("\n\n")
            .map(|p| {
                format!(
                    "<p style=\"margin:0 0 12px 0\">{}</p>",
                    p.replace('&', "&amp;").replace('<', "&lt;")
                )
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        out.push(format!(
            "Return-Path: <sender{i}@example.net>\r\n\
             Received: from mx{a}.example.net (mx{a}.example.net [192.0.2.{a}])\r\n\tby mail.example.test (Tern) with ESMTPS id {id}\r\n\tfor <user@example.test>; Mon, 1 Jun 2026 10:{m:02}:{s:02} +0000\r\n\
             Received: from [10.1.{a}.{s}] (unknown [198.51.100.{s}])\r\n\tby mx{a}.example.net (Postfix) with ESMTPSA id {id}\r\n\tfor <user@example.test>; Mon, 1 Jun 2026 10:{m:02}:{s:02} +0000 (UTC)\r\n\
             ARC-Seal: i=1; a=rsa-sha256; t=1780000000; cv=none; d=example.net; s=arc1;\r\n\t b={seal}\r\n\
             ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=arc1;\r\n\th=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh={bh};\r\n\tb={ams}\r\n\
             ARC-Authentication-Results: i=1; mx{a}.example.net; dkim=pass header.d=example.net; spf=pass smtp.mailfrom=example.net\r\n\
             Authentication-Results: mail.example.test; dkim=pass header.d=example.net header.s=s1; spf=pass (mail.example.test: domain of sender{i}@example.net designates 192.0.2.{a} as permitted sender) smtp.mailfrom=sender{i}@example.net; dmarc=pass (p=reject) header.from=example.net\r\n\
             DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1; t=1780000000;\r\n\th=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh={bh};\r\n\tb={b}\r\n\
             {head}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b{i}\"\r\n\r\n\
             --b{i}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n\
             --b{i}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             <html><body><div style=\"font-family: Arial, sans-serif; font-size: 14px\">\r\n{html}\r\n</div></body></html>\r\n\
             --b{i}--\r\n",
            a = i % 250 + 1,
            m = i % 60,
            s = (i / 60) % 60,
        ));
    }
    Ok(out)
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
