//! The account-wide email query (JMAP `Email/query`) on a large account:
//! how long one page takes, newest first, from the top and deep, across
//! the account and inside one mailbox, with and without the total.
//!
//! Usage: query-bench [--messages N] [--dir DIR]

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tern_store::prelude::*;
use tern_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tern_store::{Delivery, DeliveryTarget, EmailQuery, NewAccount, Role};

#[derive(Parser)]
#[command(about = "Pages of the account-wide email query on a large account")]
struct Args {
    /// Messages in the account (one in ten also filed in Archive)
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Directory for the scratch database
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
    // Filling is not what is measured: no fsync while it runs.
    let options = SqliteOptions {
        durability: Durability::Off,
        ..Default::default()
    };
    let store = Arc::new(SqliteStore::open(&base.path().join("tern.db"), options)?);
    store.add_domain("bench.test").await?;
    let a = store
        .create_account(NewAccount {
            address: "big@bench.test".into(),
            password_hash: "x".into(),
            quota_bytes: None,
        })
        .await?;
    let archive = store
        .mailbox_by_role(a.id, Role::Archive)
        .await?
        .context("Archive")?;
    let inbox = store
        .mailbox_by_role(a.id, Role::Inbox)
        .await?
        .context("INBOX")?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..32usize {
        let store = store.clone();
        let n = args.messages;
        tasks.push(tokio::spawn(async move {
            let mut i = writer;
            while i < n {
                let raw = format!(
                    "From: a{i}@remote.test\r\nSubject: message {i}\r\nMessage-ID: <{i}@remote.test>\r\n\r\nbody {i}\r\n"
                );
                let mut targets = vec![DeliveryTarget::inbox(a.id)];
                if i % 10 == 0 {
                    targets[0].mailbox_id = Some(archive.id);
                }
                store
                    .deliver(Delivery {
                        message: raw.into_bytes().into(),
                        recipients: targets,
                        // Arrival times spread over about three years.
                        received_at: 1_700_000_000 + (i as i64 * 7919) % 100_000_000,
                    })
                    .await?;
                i += 32;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "{} messages delivered in {:.1} s (fsync off)\n",
        args.messages,
        started.elapsed().as_secs_f64()
    );
    let cases: Vec<(&str, EmailQuery)> = vec![
        (
            "account, newest 50",
            EmailQuery {
                limit: 50,
                ..Default::default()
            },
        ),
        (
            "account, newest 50, with total",
            EmailQuery {
                limit: 50,
                calculate_total: true,
                ..Default::default()
            },
        ),
        (
            "account, 50 from position 50,000",
            EmailQuery {
                limit: 50,
                position: 50_000,
                ..Default::default()
            },
        ),
        (
            "INBOX, newest 50",
            EmailQuery {
                in_mailbox: Some(inbox.id),
                limit: 50,
                ..Default::default()
            },
        ),
        (
            "Archive (1 in 10), newest 50",
            EmailQuery {
                in_mailbox: Some(archive.id),
                limit: 50,
                ..Default::default()
            },
        ),
        (
            "unseen, newest 50",
            EmailQuery {
                not_keywords: vec!["\\Seen".into()],
                limit: 50,
                ..Default::default()
            },
        ),
    ];
    println!("| query | median of 9 (ms) | results |\n|---|---:|---:|");
    for (name, q) in cases {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..9 {
            let t = Instant::now();
            let r = store.query_emails(a.id, &q).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            found = r.ids.len();
        }
        times.sort_by(|x, y| x.total_cmp(y));
        println!("| {name} | {:.2} | {found} |", times[4]);
    }
    store.close().await?;
    Ok(())
}
