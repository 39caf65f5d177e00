//! The SQLite backend: Tern's embedded default, a single file in the data
//! directory with nothing to install.
//!
//! - WAL mode: readers never block the writer nor each other.
//! - One writer thread with group commit (see [`writer`]); `synchronous=FULL`
//!   makes each COMMIT fsync the WAL, so a returned write is on disk.
//! - Reads run on a small pool of read-only connections in tokio's blocking
//!   pool, so no async task ever waits on SQLite.
//! - Several processes may open the same database (the admin CLI beside a
//!   running server); SQLite's locks and the busy timeout order their writes,
//!   and [`watcher`] carries their commits to this process's subscribers.

pub(crate) mod blob_codec;
mod blobs;
mod checkpoint;
pub(crate) mod directory;
pub(crate) mod emails;
mod facets;
mod folded_text;
pub(crate) mod full_text;
pub(crate) mod header_block;
pub(crate) mod indexer;
pub(crate) mod journal;
mod listing;
mod lz4;
pub(crate) mod mailboxes;
pub(crate) mod messages;
mod periodic;
pub(crate) mod queue;
pub(crate) mod schema;
pub(crate) mod search;
mod settings;
pub(crate) mod spam;
mod submissions;
mod uploads;
mod watcher;
mod writer;

use crate::error::{Result, StoreError};
use crate::hub::NotificationHub;
use crate::query::*;
use crate::search::SearchKey;
use crate::types::*;
use async_trait::async_trait;
/// How the search index folds text (FTS5's case folding), for tools that
/// must compare as it does (`index-bench`).
pub use full_text::fts5_fold;
use indexer::Indexer;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use writer::{WriteCtx, Writer};

/// How long a connection waits for another process's write lock before
/// failing: long enough for any single commit, short enough to surface a
/// stuck peer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle read connections kept open; more are opened under load and closed
/// after. Generous, because a connection opened afresh has an empty statement
/// cache: with 8, a mixed IMAP load spent a fifth of its CPU compiling SQL
/// (BENCHMARKS.md, issue 4). Each idle one costs its page cache (see
/// [`READER_CACHE_KIB`]) and a file descriptor.
const READ_POOL_SIZE: usize = 48;

/// Page cache of each read connection. Small: the operating system caches
/// the file for all of them, and the readers' hot pages (the mailbox and
/// email indexes) are few.
const READER_CACHE_KIB: i64 = 512;

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Durable commits, shared by all writers waiting at that moment (default).
    #[default]
    Group,
    /// Durable commits, one fsync per operation (for comparison only).
    PerCommit,
    /// No fsync at all: fast and unsafe; for benchmarks' ceiling only.
    Off,
}

/// Options for [`SqliteStore::open`].
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Added after every commit to model a slower disk (benchmarks only).
    pub fsync_delay: Duration,
}

/// The SQLite-backed [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Writer>,
    indexer: Arc<Indexer>,
    checkpointer: Arc<periodic::Periodic>,
    watcher: Arc<periodic::Periodic>,
    closed: Arc<std::sync::atomic::AtomicBool>,
    readers: Arc<Mutex<Vec<Connection>>>,
    hub: Arc<NotificationHub>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, brings its schema
    /// up to date and starts the writer thread.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::backend(format!("creating {}", parent.display()), e)
                })?;
            }
        }
        let mut conn = open_connection(path, false)?;
        let sync = match options.durability {
            Durability::Off => "OFF",
            Durability::Group | Durability::PerCommit => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(|e| StoreError::backend("setting synchronous", e))?;
        // Each operation of a group commit runs in its own savepoint, whose
        // statement journal (the pages it changes, as they were) spilled to
        // a temporary file past 64 KiB — four 16 KiB pages, so nearly every
        // delivery: a pwrite per page, 4% of the server's CPU relaying mail
        // (BENCHMARKS.md, issue 12). In memory it is a copy; it never
        // holds more than the pages one operation changes.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(|e| StoreError::backend("keeping statement journals in memory", e))?;
        match schema::migrate(&mut conn) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => return Err(StoreError::Invalid(msg)),
            Err(e) => return Err(StoreError::backend("migrating the schema", e)),
        }
        // Checkpoints happen on their own thread (see `checkpoint`); a WAL
        // file left large by a burst is cut back when it is reset.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .and_then(|_| conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024))
            .map_err(|e| StoreError::backend("configuring checkpoints", e))?;
        let checkpointer = Arc::new(checkpoint::start(path)?);
        let hub = Arc::new(NotificationHub::new());
        let indexer = Arc::new(Indexer::start(path)?);
        let writer = Writer::start(
            conn,
            options.durability,
            options.fsync_delay,
            hub.clone(),
            indexer.clone(),
        )
        .map_err(|e| StoreError::backend("starting the writer thread", e))?;
        let watcher = Arc::new(watcher::start(path, hub.clone())?);
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Arc::new(writer),
            indexer,
            checkpointer,
            watcher,
            closed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            readers: Arc::new(Mutex::new(Vec::new())),
            hub,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a write in the next group commit.
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.write(op).await
    }

    /// Runs a read on a pooled read-only connection, off the async threads.
    async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let closed = self.closed.clone();
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&path, true)?,
            };
            // One transaction per read: every statement of it sees the same
            // snapshot, so a reader never mixes two states of the store.
            run_cached(&conn, "BEGIN").map_err(|e| StoreError::backend("starting a read", e))?;
            let result = op(&conn);
            let _ = run_cached(&conn, "COMMIT");
            let mut pool = readers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < READ_POOL_SIZE && !closed.load(std::sync::atomic::Ordering::Acquire) {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::backend("running a read", e))?
    }
}

/// Prepared statements kept per connection (see `open_connection`).
const STATEMENT_CACHE: usize = 256;

/// Runs one statement without results (`BEGIN`, `SAVEPOINT op`, …) from
/// the connection's statement cache instead of parsing it every time.
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The page size of a new database.
pub(crate) const PAGE_SIZE: i64 = 16 * 1024;

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::backend(format!("opening {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StoreError::backend("setting the busy timeout", e))?;
    // Every statement the Store runs stays prepared: rusqlite's default of
    // 16 was fewer than one delivery, queue claim and record use between
    // them, so the writer parsed its SQL again and again.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if !read_only {
        // A new database gets 16 KiB pages: with 4 KiB ones, a message a
        // little over 4 KiB took a page and an overflow page, most of both
        // empty, and the database was twice the mail (BENCHMARKS.md, issue
        // 10). Only a database without tables takes it; older ones keep
        // their page size.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
            .map_err(|e| StoreError::backend("switching to WAL", e))?;
    } else {
        // Readers see the search index as schema `idx`. Without one (it
        // could not even be created: a full disk), searches scan the mail.
        let index = indexer::index_path(path);
        if let Err(e) = conn.execute("ATTACH DATABASE ?1 AS idx", [index.to_string_lossy()]) {
            tracing::warn!("attaching the search index: {e}; searches scan the mail");
        }
        conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
            .map_err(|e| StoreError::backend("sizing the page cache", e))?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| StoreError::backend("enabling foreign keys", e))?;
    Ok(conn)
}

/// A store on `db` with the default options, for tests.
#[cfg(test)]
pub(crate) fn test_store(db: &Path) -> std::sync::Arc<dyn crate::Store> {
    std::sync::Arc::new(
        SqliteStore::open(db, SqliteOptions::default()).expect("opening a test store"),
    )
}

/// A store in a temporary directory (removed when dropped: keep it while
/// the store is used), its database's path, the store, the account
/// `a@example.test` and its INBOX, for tests.
#[cfg(test)]
pub(crate) async fn test_mailbox() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::sync::Arc<dyn crate::Store>,
    crate::types::Account,
    crate::types::Mailbox,
) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("tern.db");
    let store = test_store(&db);
    let account = crate::conformance::account(&store, "a@example.test").await;
    let mailbox = crate::conformance::inbox(&store, &account).await;
    (dir, db, store, account, mailbox)
}

/// Maps a rusqlite error with what was being done.
pub(crate) fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(context, e)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// A blob id is stored as its hex text (the `blob.hash` column).
impl rusqlite::types::ToSql for BlobId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl rusqlite::types::FromSql for BlobId {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        String::column_result(value).map(BlobId)
    }
}
