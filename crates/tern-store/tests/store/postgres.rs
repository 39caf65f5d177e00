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
    conformance::crash::deliver_until_killed(store, account).await;
}

/// A node killed with SIGKILL in the middle of a burst of concurrent
/// deliveries: everything it acknowledged is in the database once, and
/// the bookkeeping (UIDNEXT, counts, quota) agrees with the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_deliveries_loses_nothing_acknowledged() {
    use std::process::Command;
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
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "postgres::crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &db.url);
    let acknowledged =
        tokio::task::spawn_blocking(move || conformance::crash::kill_after_300_acknowledged(child))
            .await
            .unwrap();
    let store: Arc<dyn Store> =
        Arc::new(PgStore::open(PgOptions::new(db.url.clone())).await.unwrap());
    conformance::crash::check_after_crash(&store, "a@example.test", &acknowledged).await;
    store.close().await.unwrap();
}

mod migrate;
mod tls;
