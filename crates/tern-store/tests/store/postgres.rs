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
