//! Store benchmark: durable deliveries per second, side by side.
//!
//! For each fsync delay (0 = the disk as it is; 1 ms models a consumer SSD
//! whose fsync takes that long) and each number of concurrent writers, it
//! delivers the same number of messages with three commit disciplines:
//! - `group`: durable, one fsync shared by every delivery waiting (Tern's default);
//! - `per-commit`: durable, one fsync per delivery;
//! - `off`: no fsync at all — the ceiling, not a safe setting.
//!
//! It also measures the raw fsync rate of the disk under the data directory
//! (write 4 KiB, fdatasync, repeat), the physical limit the others divide.
//! Output is a Markdown table; ratios are to the `off` ceiling of the same
//! row, so figures from a noisy shared machine still compare.

use anyhow::{Context, Result};
use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_store::prelude::*;
use tern_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tern_store::{Delivery, DeliveryTarget, NewAccount, Store};

#[derive(Parser)]
#[command(about = "Durable deliveries per second of the SQLite Store")]
struct Args {
    /// Messages delivered per measurement
    #[arg(long, default_value_t = 3000)]
    messages: usize,
    /// Message size in bytes
    #[arg(long, default_value_t = 5 * 1024)]
    size: usize,
    /// Concurrent writers, comma-separated
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    writers: Vec<usize>,
    /// Artificial fsync delays in milliseconds, comma-separated
    #[arg(long, default_value = "0,1", value_delimiter = ',')]
    fsync_delay_ms: Vec<u64>,
    /// Directory for the scratch databases (must be on the disk to measure)
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let base = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let fsyncs = raw_fsync_rate(base.path(), Duration::from_secs(2))?;
    println!(
        "raw fsync rate of {}: {fsyncs:.0} fsync/s ({:.3} ms each)\n",
        base.path().display(),
        1000.0 / fsyncs
    );
    println!(
        "{} messages of {} bytes per measurement\n",
        args.messages, args.size
    );
    println!("| fsync delay | writers | group (msg/s) | per-commit (msg/s) | off (msg/s) | group/off | group/per-commit |");
    println!("|---|---|---|---|---|---|---|");
    for &delay in &args.fsync_delay_ms {
        for &writers in &args.writers {
            let mut rates = Vec::new();
            for durability in [Durability::Group, Durability::PerCommit, Durability::Off] {
                let options = SqliteOptions {
                    durability,
                    fsync_delay: Duration::from_millis(delay),
                };
                rates.push(run(base.path(), options, writers, args.messages, args.size).await?);
            }
            println!(
                "| {delay} ms | {writers} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1}x |",
                rates[0],
                rates[1],
                rates[2],
                rates[0] / rates[2],
                rates[0] / rates[1]
            );
        }
    }
    Ok(())
}

/// Delivers `messages` messages from `writers` concurrent tasks into a fresh
/// store and returns deliveries per second, counted until the last
/// acknowledgement.
async fn run(
    dir: &Path,
    options: SqliteOptions,
    writers: usize,
    messages: usize,
    size: usize,
) -> Result<f64> {
    let scratch = tempfile::tempdir_in(dir)?;
    let store = Arc::new(SqliteStore::open(
        &scratch.path().join("bench.db"),
        options,
    )?);
    store.add_domain("bench.test").await?;
    // One account per writer: the realistic case of many recipients, and it
    // keeps writers from contending on one account's modseq row alone.
    let mut accounts = Vec::new();
    for w in 0..writers {
        let a = store
            .create_account(NewAccount {
                address: format!("user{w}@bench.test"),
                password_hash: "x".into(),
                quota_bytes: None,
            })
            .await?;
        accounts.push(a.id);
    }
    let per_writer = messages.div_ceil(writers);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, account) in accounts.into_iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let raw = message(w, i, size);
                let results = store
                    .deliver(Delivery {
                        message: raw.into(),
                        recipients: vec![DeliveryTarget::inbox(account)],
                        received_at: 0,
                    })
                    .await?;
                for r in results {
                    r?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await.context("writer task")??;
    }
    let elapsed = start.elapsed();
    store.close().await?;
    Ok((per_writer * writers) as f64 / elapsed.as_secs_f64())
}

/// A distinct message of about `size` bytes (distinct, so no blob is shared).
fn message(writer: usize, i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: sender@example.net\r\nTo: user{writer}@bench.test\r\nSubject: bench {writer}-{i}\r\n\
         Message-ID: <{writer}.{i}@example.net>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

/// fsyncs per second: append 4 KiB and fdatasync, for `duration`.
fn raw_fsync_rate(dir: &Path, duration: Duration) -> Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0x55u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        file.write_all(&block)?;
        file.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}
