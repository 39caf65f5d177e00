//! The SQLite backend against the Store conformance suite, plus what only
//! a real process can show: a kill -9 during a burst of concurrent
//! deliveries loses nothing that was acknowledged and duplicates nothing.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use tern_store::conformance::Fixture;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::*;

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tern.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open store");
    Fixture {
        store: Arc::new(store),
        open_peer: Box::new(move || {
            Arc::new(SqliteStore::open(&path, SqliteOptions::default()).expect("open peer"))
        }),
        guard: Box::new(dir),
    }
}

tern_store::conformance_tests!(fixture);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    store.add_domain("example.test").await.unwrap();
    let a = store
        .create_account(NewAccount {
            address: "a@example.test".into(),
            password_hash: "h".into(),
            quota_bytes: None,
        })
        .await
        .unwrap();
    let d = store
        .deliver(Delivery {
            message: (conformance::message("kept", "x")).into(),
            recipients: vec![DeliveryTarget::inbox(a.id)],
            received_at: 1,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
    drop(store);
    // A clean close folds the WAL into the database.
    let wal = dir.path().join("tern.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let e = store.email(a.id, d.email_id).await.unwrap();
    assert_eq!(e.summary.subject, "kept");
    assert_eq!(store.highest_modseq(a.id).await.unwrap(), d.modseq);
}

/// Environment variable that turns this test binary into the crash child.
const CHILD_ENV: &str = "TERN_STORE_CRASH_CHILD";

/// The child: opens the store, delivers from many concurrent tasks forever,
/// and prints `ok <n>` for each delivery the Store acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Only does something when started by the crash test.
    };
    let store =
        Arc::new(SqliteStore::open(std::path::Path::new(&path), SqliteOptions::default()).unwrap());
    let account = store
        .account_by_address("a@example.test")
        .await
        .unwrap()
        .unwrap()
        .id;
    println!("ready");
    let mut tasks = Vec::new();
    for writer in 0..16u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u32.. {
                let n = writer * 1_000_000 + i;
                let raw = conformance::message(&format!("msg-{n}"), &"body ".repeat(200));
                let d = store
                    .deliver(Delivery {
                        message: raw.into(),
                        recipients: vec![DeliveryTarget::inbox(account)],
                        received_at: 1,
                    })
                    .await;
                if matches!(d.as_deref(), Ok([Ok(_)])) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ok {n}");
                    let _ = out.flush();
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_deliveries_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        store.add_domain("example.test").await.unwrap();
        store
            .create_account(NewAccount {
                address: "a@example.test".into(),
                password_hash: "h".into(),
                quota_bytes: None,
            })
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acknowledged = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        let mut child = child;
        while let Some(Ok(line)) = lines.next() {
            if let Some(n) = line.strip_prefix("ok ") {
                acked.push(n.trim().to_string());
                if acked.len() == 300 {
                    // Mid-burst: SIGKILL, no chance to clean up.
                    child.kill().unwrap();
                }
            }
        }
        child.wait().unwrap();
        acked
    })
    .await
    .unwrap();
    assert!(
        acknowledged.len() >= 300,
        "the child acknowledged only {}",
        acknowledged.len()
    );

    let store = SqliteStore::open(&path, SqliteOptions::default())
        .expect("the store opens cleanly after a crash");
    let a = store
        .account_by_address("a@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = store
        .mailbox_by_role(a.id, Role::Inbox)
        .await
        .unwrap()
        .unwrap();
    let entries = store.list_messages(a.id, inbox.id).await.unwrap();
    let mut subjects = std::collections::HashMap::new();
    for e in &entries {
        let email = store.email(a.id, e.email_id).await.unwrap();
        *subjects.entry(email.summary.subject.clone()).or_insert(0) += 1;
    }
    for n in &acknowledged {
        let count = subjects.get(&format!("msg-{n}")).copied().unwrap_or(0);
        assert_eq!(
            count, 1,
            "acknowledged delivery msg-{n} is stored {count} times"
        );
    }
    assert!(
        subjects.values().all(|&c| c == 1),
        "a delivery was stored twice"
    );
    // The bookkeeping agrees with the rows.
    let last = entries.last().map(|e| e.uid.0).unwrap_or(0);
    assert!(store.mailbox(a.id, inbox.id).await.unwrap().uid_next.0 > last);
    let counts = store.mailbox_counts(a.id, inbox.id).await.unwrap();
    assert_eq!(counts.messages as usize, entries.len());
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, counts.size);
    // And it keeps working.
    store
        .deliver(Delivery {
            message: (conformance::message("after", "x")).into(),
            recipients: vec![DeliveryTarget::inbox(a.id)],
            received_at: 1,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_search_index_is_rebuilt_from_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    store.add_domain("example.test").await.unwrap();
    let a = store
        .create_account(NewAccount {
            address: "a@example.test".into(),
            password_hash: "h".into(),
            quota_bytes: None,
        })
        .await
        .unwrap();
    let raw = conformance::message("findme", "the word xylophone is rare");
    let d = store
        .deliver(Delivery {
            message: raw.into(),
            recipients: vec![DeliveryTarget::inbox(a.id)],
            received_at: 1,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    store.close().await.unwrap();
    drop(store);
    // The index is derived data: without it, the store rebuilds it.
    for suffix in ["index.db", "index.db-wal", "index.db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(suffix));
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let hits = store
        .search(a.id, d.mailbox_id, &SearchKey::Body("xylophone".into()))
        .await
        .unwrap();
    assert_eq!(hits, [d.uid]);
}

/// Rows per table of the email family, read with a plain connection.
fn email_rows(path: &std::path::Path) -> [i64; 4] {
    let conn = rusqlite::Connection::open(path).unwrap();
    ["email", "email_meta", "email_header", "mailbox_email"].map(|t| {
        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    })
}

/// An email's rows live in four tables (schema v8); expunging its last
/// copy and removing its account leave none of them behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_email_rows_outlive_their_email() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let a = conformance::account(&store, "a@example.test").await;
    let mut delivered = Vec::new();
    for i in 0..2 {
        let raw = conformance::message(&format!("m{i}"), "x");
        delivered.push(conformance::deliver_to(&store, &a, raw).await);
    }
    let inbox = delivered[0].mailbox_id;
    let archive = store
        .mailbox_by_role(a.id, Role::Archive)
        .await
        .unwrap()
        .unwrap();
    store
        .copy_messages(a.id, inbox, &[delivered[0].uid], archive.id)
        .await
        .unwrap();
    assert_eq!(email_rows(&path), [3, 3, 3, 3]);
    store
        .expunge(a.id, inbox, ExpungeFilter::Uids(vec![delivered[1].uid]))
        .await
        .unwrap();
    assert_eq!(email_rows(&path), [2, 2, 2, 2]);
    store.remove_account("a@example.test").await.unwrap();
    assert_eq!(email_rows(&path), [0, 0, 0, 0]);
    store.close().await.unwrap();
}
