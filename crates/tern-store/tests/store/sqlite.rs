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

/// A store in a new temporary directory (`tern.db` in it), with account
/// a@example.test.
async fn scratch_store() -> (tempfile::TempDir, Arc<dyn Store>, Account) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("tern.db"), SqliteOptions::default()).unwrap());
    let a = conformance::account(&store, "a@example.test").await;
    (dir, store, a)
}

/// An email's rows live in four tables (schema v8); expunging its last
/// copy and removing its account leave none of them behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_email_rows_outlive_their_email() {
    let (dir, store, a) = scratch_store().await;
    let path = dir.path().join("tern.db");
    let mut delivered = Vec::new();
    for i in 0..2 {
        let raw = conformance::message(&format!("m{i}"), "x");
        delivered.push(conformance::deliver_to(&store, &a, raw).await);
    }
    let inbox = delivered[0].mailbox_id;
    let archive = conformance::mailbox(&store, &a, Role::Archive).await;
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

/// `codec` and stored length of every blob, by hash.
fn blob_rows(path: &std::path::Path) -> Vec<(String, i64, Option<i64>, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT hash, codec, size, length(data) FROM blob ORDER BY hash")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows
}

/// Schema v21: an email's parse is stored packed (one compressed JSON
/// array), copies keep it packed, and both it and a row from before
/// (three JSON texts) read back as the parse of the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parse_is_stored_packed_and_read_back() {
    let (dir, store, a) = scratch_store().await;
    let path = dir.path().join("tern.db");
    let raw = conformance::message("packed parse", "Hello,\r\nthe parse is packed.\r\n");
    let delivered = conformance::deliver_to(&store, &a, raw.clone()).await;
    let expected = tern_store::message::PreparedMessage::new(raw)
        .parsed()
        .clone();
    let same = |email: &Email| {
        assert_eq!(email.envelope, expected.envelope);
        assert_eq!(email.structure, expected.structure);
        assert_eq!(email.summary, expected.summary);
    };
    same(&store.email(a.id, delivered.email_id).await.unwrap());
    let archive = conformance::mailbox(&store, &a, Role::Archive).await;
    store
        .copy_messages(a.id, delivered.mailbox_id, &[delivered.uid], archive.id)
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: Vec<(i64, String, Option<Vec<u8>>)> = conn
        .prepare("SELECT email_id, envelope, packed FROM email_meta ORDER BY email_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows.len(), 2);
    for (_, envelope, packed) in &rows {
        assert_eq!(envelope, "", "the texts are empty when packed");
        assert!(packed.is_some());
    }
    let copy = EmailId(rows[1].0);
    same(&store.email(a.id, copy).await.unwrap());
    // A row written before version 21: the three texts, nothing packed.
    conn.execute(
        "UPDATE email_meta SET envelope = ?1, structure = ?2, summary = ?3, packed = NULL
          WHERE email_id = ?4",
        rusqlite::params![
            serde_json::to_string(&expected.envelope).unwrap(),
            serde_json::to_string(&expected.structure).unwrap(),
            serde_json::to_string(&expected.summary).unwrap(),
            copy.0
        ],
    )
    .unwrap();
    same(&store.email(a.id, copy).await.unwrap());
    // A damaged packed parse is an error, not a panic or a wrong answer.
    conn.execute(
        "UPDATE email_meta SET packed = x'0500000001' WHERE email_id = ?1",
        [delivered.email_id.0],
    )
    .unwrap();
    assert!(store.email(a.id, delivered.email_id).await.is_err());
    store.close().await.unwrap();
}

/// Schema v20: text mail is kept compressed and every read — whole, by
/// range, from the queue, by the search index rebuilding itself — gives
/// back exactly the bytes received; what does not shrink, and mail that is
/// only relayed, stays as it came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_mail_is_stored_compressed_and_read_back_exactly() {
    let (dir, store, a) = scratch_store().await;
    let path = dir.path().join("tern.db");
    let body: String = (0..300)
        .map(|i| format!("Line {i} of the quarterly report, where the numbers are.\r\n"))
        .collect();
    let text = conformance::message("report", &format!("{body}the word zanzibar once\r\n"));
    let text_delivered = conformance::deliver_to(&store, &a, text.clone()).await;
    // A body without redundancy: 8 KiB of xorshift output.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = b"Subject: noise\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    noise.extend((0..8192).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    conformance::deliver_to(&store, &a, noise.clone()).await;
    // Only relayed: queued for a remote recipient, kept for nobody here.
    let relayed = conformance::message("relayed", &body);
    let queue_id = conformance::queue_raw(&store, relayed.clone(), &["b@elsewhere.test"]).await;

    let hash_of = |raw: &[u8]| {
        tern_store::message::PreparedMessage::new(raw.to_vec())
            .blob_id()
            .0
            .clone()
    };
    let rows = blob_rows(&path);
    let row = |raw: &[u8]| {
        let h = hash_of(raw);
        rows.iter().find(|r| r.0 == h).cloned().expect("blob row")
    };
    let (_, codec, size, stored) = row(&text);
    assert_eq!((codec, size), (1, Some(text.len() as i64)));
    assert!(stored * 4 < text.len() as i64, "{stored} of {}", text.len());
    let (_, codec, size, stored) = row(&noise);
    assert_eq!((codec, size, stored), (0, None, noise.len() as i64));
    let (_, codec, _, _) = row(&relayed);
    assert_eq!(codec, 0, "relayed mail is not compressed");

    let blob = BlobId(hash_of(&text));
    assert_eq!(store.read_blob(a.id, &blob).await.unwrap(), text);
    for (offset, len) in [
        (0, 10),
        (7, 1000),
        (text.len() as u64 - 5, 100),
        (text.len() as u64, 5),
        (u64::MAX, 5),
        (3, usize::MAX),
    ] {
        let start = (offset.min(text.len() as u64)) as usize;
        let end = start.saturating_add(len).min(text.len());
        assert_eq!(
            store
                .read_blob_range(a.id, &blob, offset, len)
                .await
                .unwrap(),
            &text[start..end],
            "range {offset}+{len}"
        );
    }
    assert_eq!(
        store.queue_read(queue_id, 0, 1 << 20).await.unwrap(),
        relayed
    );
    let message = store
        .messages(a.id, text_delivered.mailbox_id, &[text_delivered.uid])
        .await
        .unwrap();
    assert_eq!(message.len(), 1);

    // The index rebuilt from the compressed blobs finds the word.
    store.close().await.unwrap();
    drop(store);
    for suffix in ["index.db", "index.db-wal", "index.db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(suffix));
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let hits = store
        .search(
            a.id,
            text_delivered.mailbox_id,
            &SearchKey::Body("zanzibar".into()),
        )
        .await
        .unwrap();
    assert_eq!(hits, [text_delivered.uid]);
}
