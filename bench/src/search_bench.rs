//! `search-bench`: IMAP SEARCH TEXT through the Store on a large mailbox,
//! and what the data directory costs beside the mail (issue 10).
//!
//! `--messages` messages of the /usr/share/doc corpus (see `mail_corpus`)
//! are delivered to one INBOX, the search index is let catch up, then
//! `--queries` substrings are searched with `Store::search` (what IMAP
//! SEARCH TEXT runs), each checked against a brute-force scan. Reported:
//! the raw mail size; tern.db, the index and their WAL files at rest; the
//! ratio of the whole to the mail; search p50, p99 and wrong answers, and
//! the five slowest needles.

use anyhow::{Context, Result};
use clap::Parser;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_bench::{mail_corpus, percentile, substring_needles};
use tern_store::prelude::*;
use tern_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tern_store::{Delivery, DeliveryTarget, NewAccount, Role, SearchKey, Store};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Directory for the scratch data
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch data directory (its path is printed) for a look
    /// inside, e.g. `sqlite3 tern.index.db` with dbstat
    #[arg(long)]
    keep: bool,
    /// Mail as it arrives from a large provider (`realistic_mail`: 2.5 KiB
    /// of headers, plain and HTML parts) instead of text alone; answers
    /// are not checked (the index searches decoded parts, the check the
    /// raw message)
    #[arg(long)]
    realistic: bool,
    /// Cut the text-only messages from the text files under this
    /// directory instead of /usr/share/doc (e.g. a source tree: text dense
    /// with distinct trigrams, harder to compress)
    #[arg(long, conflicts_with = "realistic")]
    text_from: Option<PathBuf>,
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let base = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let db = base.path().join("tern.db");
    let messages = match (&args.text_from, args.realistic) {
        (Some(root), _) => tern_bench::mail_corpus_from(root, args.messages)?,
        (None, true) => tern_bench::realistic_mail(args.messages)?,
        (None, false) => mail_corpus(args.messages)?,
    };
    let raw: u64 = messages.iter().map(|m| m.len() as u64).sum();
    let needles = substring_needles(&messages, args.queries);
    // The UID each message got (deliveries run 64 at a time).
    let mut uids = vec![0u32; messages.len()];
    {
        // Filling is not what is measured: no fsync while it runs.
        let options = SqliteOptions {
            durability: Durability::Off,
            ..Default::default()
        };
        let store = Arc::new(SqliteStore::open(&db, options)?);
        store.add_domain("bench.test").await?;
        let account = store
            .create_account(NewAccount {
                address: "a@bench.test".into(),
                password_hash: "x".into(),
                quota_bytes: None,
            })
            .await?;
        let started = Instant::now();
        for (chunk_index, chunk) in messages.chunks(64).enumerate() {
            let mut tasks = Vec::new();
            for (i, m) in chunk.iter().enumerate() {
                let index = chunk_index * 64 + i;
                let store = store.clone();
                let message = m.clone().into_bytes();
                tasks.push(tokio::spawn(async move {
                    let delivered = store
                        .deliver(Delivery {
                            message: message.into(),
                            recipients: vec![DeliveryTarget::inbox(account.id)],
                            received_at: 1_900_000_000,
                        })
                        .await?;
                    let uid = match delivered.into_iter().next() {
                        Some(Ok(d)) => d.uid.0,
                        _ => anyhow::bail!("a delivery was refused"),
                    };
                    Ok::<_, anyhow::Error>((index, uid))
                }));
            }
            for t in tasks {
                let (index, uid) = t.await??;
                uids[index] = uid;
            }
        }
        eprintln!("filled in {:.0?}", started.elapsed());
        store.close().await?;
    }
    // A fresh open, as after a restart: the index catches up in the
    // background; the first search waits for the batches of this process
    // only, so wait for the catch-up by searching until the index is full.
    let store = Arc::new(SqliteStore::open(&db, SqliteOptions::default())?);
    let account = store
        .account_by_address("a@bench.test")
        .await?
        .context("the account")?;
    let inbox = store
        .mailbox_by_role(account.id, Role::Inbox)
        .await?
        .context("INBOX")?;
    let lower: Vec<String> = messages.iter().map(|m| m.to_lowercase()).collect();
    // Let the background catch-up finish (it logs nothing here): poll the
    // index size until it stops growing.
    let index = db.with_extension("index.db");
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = size(&index) + size(&index.with_extension("db-wal"));
        if now == last {
            break;
        }
        last = now;
    }
    let mut times = Vec::new();
    let mut flagged_times = Vec::new();
    let mut slowest = Vec::new();
    let mut wrong = 0;
    for needle in &needles {
        let lowered = needle.to_lowercase();
        let expected: HashSet<u32> = lower
            .iter()
            .enumerate()
            .filter(|(_, m)| m.contains(&lowered))
            .map(|(i, _)| uids[i])
            .collect();
        let begun = Instant::now();
        let found = store
            .search(account.id, inbox.id, &SearchKey::Text(needle.clone()))
            .await?;
        times.push(begun.elapsed());
        slowest.push((begun.elapsed(), found.len(), needle));
        let found: HashSet<u32> = found.into_iter().map(|u| u.0).collect();
        if found != expected {
            wrong += 1;
        }
        // What a desktop client sends: the text among the undeleted, which
        // needs each candidate's flags as well.
        let undeleted = SearchKey::And(vec![
            SearchKey::Not(Box::new(SearchKey::Keyword("\\Deleted".into()))),
            SearchKey::Text(needle.clone()),
        ]);
        let begun = Instant::now();
        let found = store.search(account.id, inbox.id, &undeleted).await?;
        flagged_times.push(begun.elapsed());
        let found: HashSet<u32> = found.into_iter().map(|u| u.0).collect();
        if found != expected {
            wrong += 1;
        }
    }
    flagged_times.sort();
    // What every search pays before any text: the mailbox's message list.
    let mut all_times = Vec::new();
    for _ in 0..20 {
        let begun = Instant::now();
        store.search(account.id, inbox.id, &SearchKey::All).await?;
        all_times.push(begun.elapsed());
    }
    all_times.sort();
    // What SUBJECT, FROM and HEADER search: the stored header blocks.
    let mut header_times = Vec::new();
    for i in 0..20 {
        let key = SearchKey::Header {
            name: "subject".into(),
            value: needles[i % needles.len()].clone(),
        };
        let begun = Instant::now();
        store.search(account.id, inbox.id, &key).await?;
        header_times.push(begun.elapsed());
    }
    header_times.sort();
    store.close().await?;
    times.sort();
    // Where tern.db's bytes go.
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    for (what, sql) in [
        ("page size", "PRAGMA page_size"),
        ("blob bytes", "SELECT sum(length(data)) FROM blob"),
        (
            "email header_raw",
            "SELECT sum(length(header_raw)) FROM email",
        ),
        ("email envelope", "SELECT sum(length(envelope)) FROM email"),
        (
            "email structure",
            "SELECT sum(length(structure)) FROM email",
        ),
        ("email summary", "SELECT sum(length(summary)) FROM email"),
        (
            "email_header",
            "SELECT sum(length(header_raw)) FROM email_header",
        ),
    ] {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0)).unwrap_or(-1);
        println!("  {what:<18} {n}");
    }
    for (name, bytes) in tern_bench::largest_tables(&conn, 8)? {
        println!(
            "  table {name:<24} {:.1} MiB",
            bytes as f64 / (1 << 20) as f64
        );
    }
    drop(conn);
    let files = [
        ("tern.db", size(&db)),
        ("tern.db-wal", size(&db.with_extension("db-wal"))),
        ("tern.index.db", size(&index)),
        (
            "tern.index.db-wal",
            size(&base.path().join("tern.index.db-wal")),
        ),
    ];
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("{} messages, raw mail {:.1} MiB", messages.len(), mib(raw));
    for (name, bytes) in files {
        println!(
            "  {name:<18} {:>8.1} MiB  {:.2}x",
            mib(bytes),
            bytes as f64 / raw as f64
        );
    }
    println!(
        "  {:<18} {:>8.1} MiB  {:.2}x",
        "all",
        mib(total),
        total as f64 / raw as f64
    );
    println!(
        "SEARCH TEXT, {} queries: p50 {:.1} ms, p99 {:.1} ms, wrong answers (both kinds) {}",
        needles.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        match args.realistic {
            true => "not checked".to_string(),
            false => wrong.to_string(),
        }
    );
    slowest.sort();
    for (time, hits, needle) in slowest.iter().rev().take(5) {
        println!(
            "    {:>8.1} ms  {hits:>6} hits  {needle:?}",
            time.as_secs_f64() * 1000.0
        );
    }
    println!(
        "SEARCH UNDELETED TEXT, {} queries: p50 {:.1} ms, p99 {:.1} ms",
        needles.len(),
        percentile(&flagged_times, 0.5),
        percentile(&flagged_times, 0.99)
    );
    println!(
        "SEARCH ALL (the listing alone), 20 times: p50 {:.1} ms",
        percentile(&all_times, 0.5)
    );
    println!(
        "SEARCH SUBJECT (the header blocks), 20 times: p50 {:.1} ms",
        percentile(&header_times, 0.5)
    );
    if args.keep {
        println!("kept {}", base.keep().display());
    }
    Ok(())
}
