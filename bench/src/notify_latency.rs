//! How soon a commit made by another process wakes this process's
//! subscribers (issue 9: IDLE sees another process's append within 1 s,
//! target p99 under 100 ms).
//!
//! The parent opens a Store, subscribes to an account and starts itself
//! again as a child process that opens the same database and appends
//! messages one by one, printing each one's modseq and the wall-clock time
//! its append returned. The parent notes when its subscription saw each
//! modseq; the latency is the difference (same machine, same clock).
//!
//! Usage: notify-latency [--samples N] [--gap-ms MS] [--dir DIR]

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tern_store::prelude::*;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::{ModSeq, NewAccount, Role};

#[derive(Parser)]
#[command(about = "Latency from another process's commit to this process's wake-up")]
struct Args {
    /// Appends measured
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Pause between appends, so each is measured alone
    #[arg(long, default_value_t = 20)]
    gap_ms: u64,
    /// Directory for the scratch database
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Internal: run as the appending child on this database
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
}

const ACCOUNT: &str = "idle@bench.test";

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.child {
        return child(path, args.samples, args.gap_ms).await;
    }
    let base = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let path = base.path().join("tern.db");
    let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default())?);
    store.add_domain("bench.test").await?;
    let account = store
        .create_account(NewAccount {
            address: ACCOUNT.into(),
            password_hash: "x".into(),
            quota_bytes: None,
        })
        .await?;
    let mut rx = store.subscribe(account.id);
    let seen: Arc<std::sync::Mutex<BTreeMap<u64, u128>>> = Default::default();
    // The highest modseq recorded in `seen`, for waiting on the last one.
    let (recorded_tx, mut recorded) = tokio::sync::watch::channel(0u64);
    let watcher = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let at = now_ns();
                let ModSeq(m) = *rx.borrow_and_update();
                seen.lock().unwrap().entry(m).or_insert(at);
                recorded_tx.send_modify(|r| *r = (*r).max(m));
            }
        })
    };
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("--child")
        .arg(&path)
        .args(["--samples", &args.samples.to_string()])
        .args(["--gap-ms", &args.gap_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the child")?;
    let out = child.stdout.take().context("child stdout")?;
    let sent: Vec<(u64, u128)> = tokio::task::spawn_blocking(move || {
        BufReader::new(out)
            .lines()
            .map_while(|l| l.ok())
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
            })
            .collect()
    })
    .await?;
    if !child.wait()?.success() || sent.len() != args.samples {
        bail!("the child appended {} of {}", sent.len(), args.samples);
    }
    // The last wake-up may still be on its way: wait for it (a second at
    // most; one never seen is counted as such below).
    let last = sent.last().map(|s| s.0).unwrap_or(0);
    let _ = tokio::time::timeout(Duration::from_secs(1), recorded.wait_for(|m| *m >= last)).await;
    watcher.abort();
    let seen = seen.lock().unwrap();
    let mut latencies: Vec<f64> = Vec::new();
    let mut missed = 0;
    for (modseq, at) in &sent {
        // The first wake-up showing this modseq or a later one.
        match seen.range(modseq..).next() {
            Some((_, woke)) => latencies.push(woke.saturating_sub(*at) as f64 / 1e6),
            None => missed += 1,
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{} appends by another process: wake-up after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {missed} never seen",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

/// The other process: appends to INBOX, one every `gap_ms`.
async fn child(path: &Path, samples: usize, gap_ms: u64) -> Result<()> {
    let store = SqliteStore::open(path, SqliteOptions::default())?;
    let account = store
        .account_by_address(ACCOUNT)
        .await?
        .context("no account")?;
    let inbox = store
        .mailbox_by_role(account.id, Role::Inbox)
        .await?
        .context("no INBOX")?;
    for i in 0..samples {
        let raw = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
        let d = store
            .append(account.id, inbox.id, raw.into(), vec![], 1)
            .await?;
        println!("{} {}", d.modseq.0, now_ns());
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
    }
    store.close().await?;
    Ok(())
}
