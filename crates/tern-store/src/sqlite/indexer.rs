//! The full-text index, kept beside the mail rather than inside it.
//!
//! Indexing a message with FTS5 trigrams costs more than storing it, and
//! inside the writer's per-operation savepoints FTS5 flushes a segment per
//! delivery. So the index lives in its own database file (`*.index.db`),
//! written by its own thread in large batches, after the mail commit: the
//! writer hands each committed batch's index jobs over in commit order.
//!
//! The index is derived data. Its meta row `indexed_upto` is the highest
//! email id whose text it holds, advanced in the same transaction as the
//! text; emails above it (the tail a crash can lose) are indexed again
//! from their blobs by the indexer thread, in the background, in chunks,
//! so that opening the store never waits for the index (and a server
//! stopped on a full disk starts again whatever the index needs). Searches
//! scan the messages above `indexed_upto` instead of trusting the index
//! for them. A lost removal only leaves an orphan row, which search never
//! returns because results are matched against the mailbox's current
//! messages.
//!
//! When applying a batch fails (a full disk), the thread stops applying
//! batches and retries the catch-up every [`RETRY`] instead: the catch-up
//! re-indexes everything above `indexed_upto`, which the failed batch did
//! not advance, so no hole is left below it.
//!
//! Searches wait for the indexer to catch up with every batch committed
//! before they started (bounded by [`SEARCH_WAIT`]), so a message is
//! searchable as soon as its delivery has returned.

use super::folded_text;
use crate::error::{Result, StoreError};
use crate::message::ParsedMessage;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

/// Longest a search waits for the index to catch up before it answers from
/// what is indexed.
pub const SEARCH_WAIT: Duration = Duration::from_secs(10);

/// Most job lists applied in one index transaction.
const MAX_BATCH: usize = 256;

/// Emails indexed per transaction by the catch-up.
const CATCH_UP_CHUNK: i64 = 500;

/// How often a failed index (a full disk) is retried.
const RETRY: Duration = Duration::from_secs(30);

/// How long the indexer waits without work before it gives free pages
/// back ([`give_back_free_pages`]).
const IDLE: Duration = Duration::from_secs(1);

/// `text_trigrams` holds each email's trigrams, headers and body as two
/// columns, without positions (`detail = none`) or text (`content = ''`):
/// which emails hold a trigram, nothing more. `text_folded` holds the text
/// itself, folded as FTS5 folds and LZ4-compressed (`folded_text.rs`),
/// against which `full_text.rs` verifies the candidates. Trigram
/// positions, which answer a substring without reading the text, cost 2×
/// the text they index (BENCHMARKS.md, issue 10); this costs about 0.8×.
/// Without positions a column costs nothing extra (FTS5 records none), so
/// headers and body share one table and a trigram found in both is listed
/// once.
const INDEX_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS text_trigrams USING fts5 (headers, body, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram');
CREATE TABLE IF NOT EXISTS text_folded (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS text_dictionary (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
"#;

/// The layout of the index tables, kept in `meta`; an index of another layout
/// is dropped and rebuilt by the catch-up (it is derived data).
pub(crate) const INDEX_LAYOUT: i64 = 7;

/// One change to the index.
pub enum IndexJob {
    Add {
        email_id: i64,
        headers: String,
        body: String,
    },
    /// A COPY: a new email with the text of an existing blob, read back
    /// from the mail database (the index keeps no text to copy).
    Copy {
        email_id: i64,
    },
    Remove {
        email_id: i64,
    },
}

/// The text of a message as the index keeps it: its headers
/// ([`index_headers`]) and its body text, each at most
/// [`MAX_INDEXED_TEXT`](crate::message::MAX_INDEXED_TEXT) bytes.
pub fn index_text(raw: &[u8], parsed: &ParsedMessage) -> (String, String) {
    let header_end = parsed.summary.header_size.min(raw.len());
    let header_raw = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    (
        index_headers(header_raw, &parsed.summary),
        parsed.body_text.clone(),
    )
}

/// The headers as the index keeps them: the header block plus the decoded
/// subject and names (so TEXT finds words inside RFC 2047 encoded-words),
/// at most [`MAX_INDEXED_TEXT`](crate::message::MAX_INDEXED_TEXT) bytes.
/// Deliveries and the catch-up both index through this, so that what a
/// search finds does not depend on which indexed the message.
pub fn index_headers(header_raw: String, s: &crate::message::Summary) -> String {
    let mut headers = header_raw;
    headers.push('\n');
    headers.push_str(&s.subject);
    for m in s.from.iter().chain(&s.to).chain(&s.cc) {
        if let Some(name) = &m.name {
            headers.push('\n');
            headers.push_str(name);
        }
    }
    // A header block of megabytes is abuse, not mail anyone searches.
    let mut end = headers.len().min(crate::message::MAX_INDEXED_TEXT);
    while !headers.is_char_boundary(end) {
        end -= 1;
    }
    headers.truncate(end);
    headers
}

/// The index file beside the mail database `tern.db` → `tern.index.db`.
pub fn index_path(db: &Path) -> PathBuf {
    db.with_extension("index.db")
}

/// Batches sent and applied, so searches can wait for the index.
#[derive(Default)]
pub struct Progress {
    sent: AtomicU64,
    applied: Mutex<u64>,
    caught_up: Condvar,
}

impl Progress {
    /// Waits until every batch sent before this call has been applied, at
    /// most `limit`; true if it has.
    pub fn wait_caught_up(&self, limit: Duration) -> bool {
        let target = self.sent.load(Ordering::Acquire);
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        let (applied, _) = self
            .caught_up
            .wait_timeout_while(applied, limit, |a| *a < target)
            .unwrap_or_else(|e| e.into_inner());
        *applied >= target
    }
}

/// Handle to the indexer thread.
/// A committed batch's index jobs and its sequence number.
type Batch = (u64, Vec<IndexJob>);

pub struct Indexer {
    jobs: Mutex<Option<mpsc::Sender<Batch>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub progress: Arc<Progress>,
}

impl Indexer {
    /// Creates the index file if it is missing (when the disk allows) and
    /// starts the thread, which first indexes what the index lacks.
    pub fn start(db_path: &Path) -> Result<Indexer> {
        // Created here so that read connections can attach it at once; if
        // even that fails, they attach an empty stand-in and scan.
        if let Err(e) = open(&index_path(db_path)) {
            tracing::warn!("search index: {e}; searches scan the mail until it can be built");
        }
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::channel();
        let p = progress.clone();
        let db_path = db_path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("tern-store-indexer".into())
            .spawn(move || run(&db_path, rx, &p))
            .map_err(|e| StoreError::backend("starting the indexer thread", e))?;
        Ok(Indexer {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            progress,
        })
    }

    /// Hands over the index jobs of one committed batch.
    pub fn submit(&self, jobs: Vec<IndexJob>) {
        if jobs.is_empty() {
            return;
        }
        let sender = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = sender.as_ref() {
            let seq = self.progress.sent.fetch_add(1, Ordering::AcqRel) + 1;
            // A gone thread means the store is closing; the catch-up at the
            // next open indexes whatever this batch held.
            let _ = sender.send((seq, jobs));
        }
    }

    /// Applies what is queued and stops the thread.
    pub fn shutdown(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::backend(format!("opening {}", path.display()), e))?;
    conn.busy_timeout(Duration::from_secs(10))
        // A new file gets the mail database's 16 KiB pages: a folded body of
        // a few KiB wasted most of a second 4 KiB page.
        .and_then(|_| conn.pragma_update(None, "page_size", super::PAGE_SIZE))
        // Free pages go back to the filesystem when the indexer is idle
        // (`give_back_free_pages`); a file can only take this before its
        // first table, or at a VACUUM (`compact`, on a layout change).
        .and_then(|_| conn.pragma_update(None, "auto_vacuum", "INCREMENTAL"))
        .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
        // Derived data: integrity matters, the last transactions do not (the
        // catch-up redoes them), so no fsync per commit.
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
        // After each checkpoint the WAL is cut back to this, so a burst of
        // indexing does not leave a large file behind.
        .and_then(|_| conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024))
        .and_then(|_| upgrade_layout(&conn))
        .and_then(|_| conn.execute_batch(INDEX_SCHEMA))
        .map_err(|e| StoreError::backend("preparing the search index", e))?;
    Ok(conn)
}

/// Drops an index of an older layout, so that the catch-up rebuilds it.
fn upgrade_layout(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    )?;
    let layout: i64 = conn
        .query_row("SELECT value FROM meta WHERE key = 'layout'", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(1);
    if layout == INDEX_LAYOUT {
        return Ok(());
    }
    tracing::info!("search index: rebuilding it in layout {INDEX_LAYOUT}, in the background");
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         DROP TABLE IF EXISTS email_text;
         DROP TABLE IF EXISTS header_text;
         DROP TABLE IF EXISTS body_text;
         DROP TABLE IF EXISTS body_folded;
         DROP TABLE IF EXISTS text_trigrams;
         DROP TABLE IF EXISTS text_folded;
         DROP TABLE IF EXISTS text_dictionary;
         DELETE FROM meta;
         INSERT INTO meta (key, value) VALUES ('layout', {INDEX_LAYOUT});
         COMMIT;"
    ))?;
    if let Err(e) = compact(conn) {
        tracing::warn!("search index: could not give the old layout's space back: {e}");
    }
    Ok(())
}

/// Gives the dropped tables' pages back to the filesystem (an index of an
/// older layout could be larger than the new one will ever be, and SQLite
/// only reuses free pages) and takes 16 KiB pages and incremental
/// auto-vacuum (layout 7). Changing the page size
/// needs the file out of WAL mode, which needs no other connection to it:
/// at start, before any reader attaches it, that holds; otherwise this fails
/// and the old pages are reused instead.
fn compact(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    let vacuumed = conn
        .pragma_update(None, "page_size", super::PAGE_SIZE)
        .and_then(|_| conn.execute_batch("VACUUM"));
    conn.pragma_update(None, "journal_mode", "WAL")?;
    vacuumed
}

/// Gives the index's free pages back to the filesystem, when they are more
/// than a sixteenth of the file. FTS5 merges its segments as it goes and
/// frees the old ones; SQLite reuses free pages but never shrinks the file
/// by itself, so at rest the file held up to a sixth of free pages, 0.15×
/// the mail at 1,000 messages (BENCHMARKS.md, issue 10). Runs when the
/// indexer is idle and at shutdown; the checkpoint then cuts the file.
fn give_back_free_pages(conn: &Connection) -> rusqlite::Result<()> {
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if free == 0 || free * 16 < pages {
        return Ok(());
    }
    // The pragma frees pages as it is stepped: step it to the end.
    let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = vacuum.query([])?;
    while rows.next()?.is_some() {}
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
}

fn indexed_upto(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'indexed_upto'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Indexes emails the index has not seen (a crash's tail, or everything
/// for a new index file), reading them back from their blobs, a chunk per
/// transaction so that progress survives an interruption.
fn catch_up(main: &Connection, index: &Connection) -> Result<()> {
    let err = |e| StoreError::backend("catching the search index up", e);
    let mut count = 0u64;
    loop {
        // IMMEDIATE: take the write lock before reading, or a second process
        // indexing at the same moment makes the upgrade fail without waiting.
        index.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        let chunk = (|| {
            let from = indexed_upto(index)?;
            let mut stmt = main.prepare_cached(
                "SELECT e.id, b.data, b.codec, b.size FROM email e JOIN blob b ON b.hash = e.blob_hash
                 WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![from, CATCH_UP_CHUNK])?;
            let mut n = 0u64;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let raw = stored_bytes(id, row.get(1)?, row.get(2)?, row.get(3)?);
                let parsed = crate::message::parse_message(&raw);
                let (headers, body) = index_text(&raw, &parsed);
                apply(
                    index,
                    main,
                    &IndexJob::Add {
                        email_id: id,
                        headers,
                        body,
                    },
                )?;
                n += 1;
            }
            folded_text::build_dictionary_when_due(index)?;
            Ok(n)
        })();
        let n = match chunk.and_then(|n| index.execute_batch("COMMIT").map(|_| n)) {
            Ok(n) => n,
            Err(e) => {
                let _ = index.execute_batch("ROLLBACK");
                return Err(err(e));
            }
        };
        count += n;
        if n < CATCH_UP_CHUNK as u64 {
            break;
        }
    }
    if count > 0 {
        tracing::info!("search index: indexed {count} message(s) it was missing");
    }
    Ok(())
}

/// A blob row's bytes as received; a row that cannot be decoded (it
/// should not happen) is indexed as empty, with a warning, rather than
/// stopping the index for every later message.
fn stored_bytes(email_id: i64, data: Vec<u8>, codec: i64, size: Option<i64>) -> Vec<u8> {
    super::blob_codec::decode(data, codec, size).unwrap_or_else(|e| {
        tracing::warn!("search index: the message of email {email_id} cannot be read: {e}");
        Vec::new()
    })
}

/// Indexes one email's text: its trigrams and its folded text (see
/// [`INDEX_SCHEMA`]).
fn put_text(conn: &Connection, email_id: i64, headers: &str, body: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO text_trigrams (rowid, headers, body) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![email_id, headers, body])?;
    let dictionary = folded_text::current_dictionary(conn)?;
    match folded_text::pack(headers, body, dictionary.as_ref()) {
        Some(folded) => conn
            .prepare_cached("INSERT OR REPLACE INTO text_folded (id, data) VALUES (?1, ?2)")?
            .execute(params![email_id, folded])?,
        // Without a row, a search matches the message itself.
        None => conn
            .prepare_cached("DELETE FROM text_folded WHERE id = ?1")?
            .execute([email_id])?,
    };
    Ok(())
}

/// Applies one job; Add and Copy advance `indexed_upto`. `main` is the
/// mail database, where a copy's text is read (the index keeps none).
fn apply(conn: &Connection, main: &Connection, job: &IndexJob) -> rusqlite::Result<()> {
    let added = match job {
        IndexJob::Add {
            email_id,
            headers,
            body,
        } => {
            put_text(conn, *email_id, headers, body)?;
            Some(*email_id)
        }
        IndexJob::Copy { email_id: to } => {
            let row: Option<(Vec<u8>, i64, Option<i64>)> = main
                .prepare_cached(
                    "SELECT b.data, b.codec, b.size FROM email e JOIN blob b ON b.hash = e.blob_hash
                      WHERE e.id = ?1",
                )?
                .query_row([to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            if let Some((data, codec, size)) = row {
                let raw = stored_bytes(*to, data, codec, size);
                let parsed = crate::message::parse_message(&raw);
                let (headers, body) = index_text(&raw, &parsed);
                put_text(conn, *to, &headers, &body)?;
            }
            Some(*to)
        }
        IndexJob::Remove { email_id } => {
            for sql in [
                "DELETE FROM text_trigrams WHERE rowid = ?1",
                "DELETE FROM text_folded WHERE id = ?1",
            ] {
                conn.prepare_cached(sql)?.execute([email_id])?;
            }
            None
        }
    };
    if let Some(id) = added {
        conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('indexed_upto', ?1)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        )?
        .execute([id])?;
    }
    Ok(())
}

/// The indexer's nice value: under a burst of mail the CPU goes first to
/// taking mail in (SMTP sessions and the writer); the index catches up
/// when the burst is over, and a search waits for it meanwhile.
const INDEXER_NICENESS: libc::c_int = 10;

/// Lowers this thread's scheduling priority (Linux: per thread).
fn lower_priority() {
    // SAFETY: gettid and setpriority only read their integer arguments; a
    // failure leaves the priority as it was, which is harmless.
    #[cfg(target_os = "linux")]
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, INDEXER_NICENESS);
    }
}

/// The indexer thread: catches the index up, then applies batches as they
/// come; while the index cannot be written, drops batches and retries the
/// catch-up every [`RETRY`] (see the module documentation).
fn run(db_path: &Path, jobs: mpsc::Receiver<Batch>, progress: &Progress) {
    lower_priority();
    let mut index: Option<Connection> = None;
    let mut main: Option<Connection> = None;
    let mut caught_up = false;
    let mut warned = false;
    // Pages may have been freed since the last `give_back_free_pages`.
    let mut dirty = true;
    // A failed catch-up is retried at this time, not at every batch: each
    // attempt may parse hundreds of messages before it fails again.
    let mut next_retry = std::time::Instant::now();
    loop {
        if !caught_up && std::time::Instant::now() >= next_retry {
            let attempt = (|| -> Result<()> {
                if main.is_none() {
                    main = Some(open_main(db_path)?);
                }
                if index.is_none() {
                    index = Some(open(&index_path(db_path))?);
                }
                match (&main, &index) {
                    (Some(main), Some(index)) => catch_up(main, index),
                    _ => Ok(()),
                }
            })();
            match attempt {
                Ok(()) => {
                    if warned {
                        tracing::info!("search index: caught up again");
                    }
                    caught_up = true;
                    warned = false;
                }
                Err(e) if !warned => {
                    tracing::warn!(
                        "search index: {e}; searches scan unindexed mail; retrying every {}s",
                        RETRY.as_secs()
                    );
                    warned = true;
                    next_retry = std::time::Instant::now() + RETRY;
                }
                Err(_) => next_retry = std::time::Instant::now() + RETRY,
            }
        }
        let first = if caught_up {
            // Idle for a moment after work: time to give pages back.
            let wait = if dirty { IDLE } else { Duration::MAX };
            match jobs.recv_timeout(wait) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let (true, Some(conn)) = (dirty, &index) {
                        if let Err(e) = give_back_free_pages(conn) {
                            tracing::debug!("search index: giving free pages back: {e}");
                        }
                        dirty = false;
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            let wait = next_retry.saturating_duration_since(std::time::Instant::now());
            match jobs.recv_timeout(wait.max(Duration::from_millis(10))) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let last_seq = batch.last().map(|(seq, _)| *seq).unwrap_or(0);
        dirty = true;
        // Not caught up: the batch is dropped; the catch-up covers it.
        if let (true, Some(conn), Some(main)) = (caught_up, &index, &main) {
            let result = conn.execute_batch("BEGIN IMMEDIATE").and_then(|_| {
                for (_, list) in &batch {
                    for job in list {
                        apply(conn, main, job)?;
                    }
                }
                folded_text::build_dictionary_when_due(conn)?;
                conn.execute_batch("COMMIT")
            });
            if let Err(e) = result {
                // The mail is safe; the catch-up redoes the index.
                tracing::error!("search index: applying a batch failed: {e}");
                let _ = conn.execute_batch("ROLLBACK");
                caught_up = false;
            }
        }
        let mut applied = progress.applied.lock().unwrap_or_else(|e| e.into_inner());
        *applied = (*applied).max(last_seq);
        progress.caught_up.notify_all();
    }
    if let Some(conn) = &index {
        if dirty {
            let _ = give_back_free_pages(conn);
        }
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }
}

/// A read-only connection to the mail database, for the catch-up.
fn open_main(db_path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        db_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::backend(format!("opening {}", db_path.display()), e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| StoreError::backend("setting the busy timeout", e))?;
    Ok(conn)
}

/// Whether a read connection has the index attached (it is not when the
/// file could not be created).
pub fn is_attached(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT count(*) FROM pragma_database_list WHERE name = 'idx'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

/// The highest email id the index holds, as a read connection (with the
/// index attached as `idx`) sees it; emails above it are not searchable
/// through the index.
pub fn indexed_upto_attached(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT value FROM idx.meta WHERE key = 'indexed_upto'",
        [],
        |r| r.get(0),
    )
    .optional()
    .ok()
    .flatten()
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Summary, MAX_INDEXED_TEXT};

    /// Headers carry the decoded subject, and stop at the cap on a
    /// character boundary however long the header block is.
    #[test]
    fn indexed_headers_carry_the_subject_and_are_capped() {
        let summary = Summary {
            subject: "Grüße".into(),
            ..Summary::default()
        };
        let short = index_headers("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n".into(), &summary);
        assert!(short.ends_with("\nGrüße"), "{short:?}");
        let huge = format!("X-Long: {}\r\n", "é".repeat(MAX_INDEXED_TEXT));
        let capped = index_headers(huge, &summary);
        assert!(capped.len() <= MAX_INDEXED_TEXT && capped.len() > MAX_INDEXED_TEXT - 4);
        assert!(capped.starts_with("X-Long: éé"));
    }

    /// Pages freed by removed mail (and by FTS5's merges) go back to the
    /// filesystem: an index that held 300 messages of distinct words and
    /// lost all of them is left with few free pages once the store closes.
    #[tokio::test]
    async fn free_index_pages_are_given_back() {
        use crate::conformance::{deliver_to, message, xorshift};
        use crate::ExpungeFilter;
        let (_dir, db, store, a, mb) = crate::sqlite::test_mailbox().await;
        let mut next = xorshift(7);
        let mut uids = Vec::new();
        for i in 0..300 {
            let words: Vec<String> = (0..400)
                .map(|_| format!("w{:x}", next() % 1_000_000))
                .collect();
            let d = deliver_to(&store, &a, message(&format!("m{i}"), &words.join(" "))).await;
            uids.push(d.uid);
        }
        let file_size = || {
            std::fs::metadata(db.with_extension("index.db"))
                .unwrap()
                .len()
        };
        store.close().await.unwrap();
        let full = file_size();
        let store = crate::sqlite::test_store(&db);
        store
            .expunge(a.id, mb.id, ExpungeFilter::Uids(uids))
            .await
            .unwrap();
        store.close().await.unwrap();
        let index = rusqlite::Connection::open(db.with_extension("index.db")).unwrap();
        let pragma = |name: &str| -> i64 {
            index
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(pragma("auto_vacuum"), 2, "incremental");
        let (free, pages) = (pragma("freelist_count"), pragma("page_count"));
        assert!(free * 16 < pages, "{free} of {pages} pages free");
        assert!(
            file_size() < full / 2,
            "{} of {full} bytes left",
            file_size()
        );
    }
}
