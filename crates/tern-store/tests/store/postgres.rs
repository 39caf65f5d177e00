//! The PostgreSQL backend against the Store conformance suite. Each case
//! gets a database of its own on the server named by `TERN_TEST_POSTGRES`
//! (a URL whose user may create databases), dropped afterwards; without
//! that variable the cases say so and pass, unless `TERN_REQUIRE_POSTGRES`
//! is set (CI sets both).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tern_store::conformance::Fixture;
use tern_store::postgres::{PgOptions, PgStore};

/// The server's URL, or `None` (with a note) when none is configured.
pub fn server_url() -> Option<String> {
    match std::env::var("TERN_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("TERN_REQUIRE_POSTGRES").is_none(),
                "TERN_REQUIRE_POSTGRES is set but TERN_TEST_POSTGRES is not"
            );
            eprintln!("skipped: set TERN_TEST_POSTGRES=postgres://… to run the PostgreSQL tests");
            None
        }
    }
}

/// A fresh database on the test server; dropped with the guard.
pub struct ScratchDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl ScratchDb {
    pub async fn create(admin_url: &str) -> ScratchDb {
        let name = format!(
            "tern_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .expect("connecting to TERN_TEST_POSTGRES");
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating a scratch database");
        drop(client);
        let _ = driver.await;
        let base = admin_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(base, _)| base)
            .expect("TERN_TEST_POSTGRES must be a postgres://…/database URL");
        ScratchDb {
            admin_url: admin_url.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        // Dropped at the end of a test, on its runtime or while unwinding:
        // a thread of its own with its own runtime works from both.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Opens a store on the scratch database as a node would, from a sync
/// context inside the test's multi-threaded runtime.
fn open_blocking(url: &str) -> Arc<PgStore> {
    let url = url.to_string();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            Arc::new(PgStore::open(PgOptions::new(url)).await.expect("open peer"))
        })
    })
}

async fn fixture() -> Option<Fixture> {
    let admin = server_url()?;
    let db = ScratchDb::create(&admin).await;
    let store = PgStore::open(PgOptions::new(db.url.clone()))
        .await
        .expect("open PostgreSQL store");
    let url = db.url.clone();
    Some(Fixture {
        store: Arc::new(store),
        open_peer: Box::new(move || -> Arc<dyn tern_store::Store> { open_blocking(&url) }),
        guard: Box::new(db),
    })
}

tern_store::conformance_tests!(fixture);

/// The same suite with message bytes kept as files under a directory
/// (`[store] blob_dir`, a filesystem every node mounts) instead of in
/// the database.
mod blob_files {
    use super::*;

    async fn fixture() -> Option<Fixture> {
        let admin = server_url()?;
        let db = ScratchDb::create(&admin).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let options = |url: &str| {
            let mut options = PgOptions::new(url.to_string());
            options.blob_dir = Some(dir.path().join("blobs"));
            options
        };
        let store = PgStore::open(options(&db.url))
            .await
            .expect("open PostgreSQL store");
        let peer = options(&db.url);
        Some(Fixture {
            store: Arc::new(store),
            open_peer: Box::new(move || -> Arc<dyn tern_store::Store> {
                let peer = peer.clone();
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current()
                        .block_on(async { Arc::new(PgStore::open(peer).await.expect("open peer")) })
                })
            }),
            guard: Box::new((db, dir)),
        })
    }

    tern_store::conformance_tests!(fixture);

    /// The bytes are in files, not in the database, and a freed blob's
    /// file goes with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_live_in_files_and_go_with_their_last_holder() {
        use tern_store::*;
        let Some(fixture) = fixture().await else {
            return;
        };
        let store = fixture.store.clone();
        let a = conformance::account(&store, "a@example.test").await;
        let raw = conformance::message("on disk", &"x".repeat(300_000));
        let d = conformance::deliver_to(&store, &a, raw.clone()).await;
        let (_, dir) = fixture
            .guard
            .downcast_ref::<(ScratchDb, tempfile::TempDir)>()
            .expect("the guard");
        let files = || -> Vec<std::path::PathBuf> {
            let mut out = Vec::new();
            let root = dir.path().join("blobs");
            for shard in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                for f in std::fs::read_dir(shard.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    out.push(f.path());
                }
            }
            out
        };
        assert_eq!(files().len(), 1, "one file for the message");
        assert_eq!(std::fs::read(&files()[0]).unwrap(), raw);
        let email = store.email(a.id, d.email_id).await.unwrap();
        let range = store
            .read_blob_range(a.id, &email.blob_id, 100_000, 10)
            .await
            .unwrap();
        assert_eq!(range, raw[100_000..100_010].to_vec());
        store.destroy_emails(a.id, &[d.email_id]).await.unwrap();
        assert!(files().is_empty(), "the file went with the email");
    }
}

/// Environment variable that turns this test binary into the crash child;
/// its value is the database URL.
const CHILD_ENV: &str = "TERN_STORE_PG_CRASH_CHILD";

/// The child: delivers from many concurrent tasks forever and prints
/// `ok <n>` for each delivery the Store acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    use std::io::Write;
    use tern_store::*;
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return; // Only does something when started by the crash test.
    };
    let store = Arc::new(PgStore::open(PgOptions::new(url)).await.unwrap());
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

/// A node killed with SIGKILL in the middle of a burst of concurrent
/// deliveries: everything it acknowledged is in the database once, and
/// the bookkeeping (UIDNEXT, counts, quota) agrees with the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_deliveries_loses_nothing_acknowledged() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use tern_store::*;
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin).await;
    {
        let store = PgStore::open(PgOptions::new(db.url.clone())).await.unwrap();
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
            "postgres::crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acknowledged = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        let mut child = child;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(n) = line.strip_prefix("ok ") {
                acked.push(n.trim().to_string());
                if acked.len() == 300 {
                    child.kill().unwrap();
                }
            }
        }
        child.wait().unwrap();
        acked
    })
    .await
    .unwrap();
    assert!(acknowledged.len() >= 300, "only {}", acknowledged.len());

    let store = PgStore::open(PgOptions::new(db.url.clone())).await.unwrap();
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
    let ids: Vec<EmailId> = entries.iter().map(|e| e.email_id).collect();
    let mut subjects = std::collections::HashMap::new();
    for email in store
        .emails(a.id, &ids)
        .await
        .unwrap()
        .into_iter()
        .flatten()
    {
        *subjects.entry(email.summary.subject.clone()).or_insert(0) += 1;
    }
    for n in &acknowledged {
        let count = subjects.get(&format!("msg-{n}")).copied().unwrap_or(0);
        assert_eq!(count, 1, "acknowledged msg-{n} is stored {count} times");
    }
    assert!(
        subjects.values().all(|&c| c == 1),
        "a delivery was stored twice"
    );
    let last = entries.last().map(|e| e.uid.0).unwrap_or(0);
    assert!(store.mailbox(a.id, inbox.id).await.unwrap().uid_next.0 > last);
    let counts = store.mailbox_counts(a.id, inbox.id).await.unwrap();
    assert_eq!(counts.messages as usize, entries.len());
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, counts.size);
    // Consecutive modseqs: the account's highest is its journal's last.
    let changes = store
        .account_changes(a.id, ModSeq(0), usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        changes.last().map(|c| c.modseq),
        Some(store.highest_modseq(a.id).await.unwrap())
    );
    store.close().await.unwrap();
}

mod migrate;
