//! The SQLite backend against the Store conformance suite, plus what only
//! a real process can show: a kill -9 during a burst of concurrent
//! deliveries loses nothing that was acknowledged and duplicates nothing.

use std::process::Command;
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
    conformance::crash::deliver_until_killed(store, account).await;
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
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "sqlite::crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path);
    let acknowledged =
        tokio::task::spawn_blocking(move || conformance::crash::kill_after_300_acknowledged(child))
            .await
            .unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&path, SqliteOptions::default())
            .expect("the store opens cleanly after a crash"),
    );
    conformance::crash::check_after_crash(&store, "a@example.test", &acknowledged).await;
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
