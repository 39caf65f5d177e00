//! The single writer thread and group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs one fsync
//! of the WAL: that fsync is the physical limit of the whole server. So every
//! write operation is sent to one thread, which takes all operations waiting
//! at that moment, runs each inside its own SAVEPOINT of one transaction, and
//! commits them together: one fsync for the batch. Only after COMMIT returns
//! (the data is on disk) does any caller get its answer, and only then is the
//! notification hub told, so nobody ever sees or acknowledges a change that a
//! crash could take back.
//!
//! An operation that fails is rolled back to its savepoint and fails alone;
//! the rest of the batch commits.

use super::indexer::{IndexJob, Indexer};
use super::Durability;
use crate::error::{Result, StoreError};
use crate::hub::NotificationHub;
use crate::types::{AccountId, ModSeq};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Most operations one commit carries: bounds the latency a huge batch would
/// add to its first member while keeping the fsync amortised.
const MAX_BATCH: usize = 512;

/// What an operation gets to work with: the connection inside the open
/// transaction and the per-account modseq bookkeeping.
pub struct WriteCtx<'c> {
    pub conn: &'c Connection,
    /// The modseq this operation took per account (one per operation).
    op_modseq: HashMap<AccountId, ModSeq>,
    /// Highest modseq per account over the whole batch, to notify after commit.
    touched: HashMap<AccountId, ModSeq>,
    /// Set when the batch's transaction can no longer be trusted; the batch
    /// then fails as a whole.
    broken: Option<String>,
    /// Search index changes, handed to the indexer once the batch commits.
    index_jobs: Vec<IndexJob>,
}

impl WriteCtx<'_> {
    /// The modseq of the current operation for `account`: the first call
    /// takes the account's next value, later calls in the same operation
    /// return the same one, so one operation is one journal step.
    pub fn modseq(&mut self, account: AccountId) -> Result<ModSeq> {
        if let Some(m) = self.op_modseq.get(&account) {
            return Ok(*m);
        }
        let next: i64 = self
            .conn
            .prepare_cached(
                "UPDATE account SET highest_modseq = highest_modseq + 1 WHERE id = ?1 RETURNING highest_modseq",
            )
            .and_then(|mut s| s.query_row([account.0], |r| r.get(0)))
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => StoreError::not_found("account", account),
                e => StoreError::backend("taking the next modseq", e),
            })?;
        let modseq = ModSeq(next as u64);
        self.op_modseq.insert(account, modseq);
        Ok(modseq)
    }

    /// Queues a search index change, applied after the commit.
    pub fn index(&mut self, job: IndexJob) {
        self.index_jobs.push(job);
    }

    /// How many index changes are queued, to drop those of a rolled-back
    /// savepoint with [`WriteCtx::forget_index_jobs`].
    pub fn index_mark(&self) -> usize {
        self.index_jobs.len()
    }

    pub fn forget_index_jobs(&mut self, mark: usize) {
        self.index_jobs.truncate(mark);
    }

    /// The modseq the operation holds for `account`, if it took one yet.
    pub fn held_modseq(&self, account: AccountId) -> Option<ModSeq> {
        self.op_modseq.get(&account).copied()
    }

    /// Puts back what [`WriteCtx::held_modseq`] said, after a nested
    /// savepoint that may have taken (and rolled back) a modseq.
    pub fn restore_modseq(&mut self, account: AccountId, held: Option<ModSeq>) {
        match held {
            Some(m) => self.op_modseq.insert(account, m),
            None => self.op_modseq.remove(&account),
        };
    }
}

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// An operation: given the open transaction (or `None` when the transaction
/// could not even begin), runs and returns what to do once the commit is known.
type Job = Box<dyn FnOnce(Option<&mut WriteCtx<'_>>) -> Completion + Send>;

/// Handle to the writer thread.
pub struct Writer {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    pub fn start(
        conn: Connection,
        durability: Durability,
        fsync_delay: Duration,
        hub: Arc<NotificationHub>,
        indexer: Arc<Indexer>,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("tern-store-writer".into())
            .spawn(move || run(conn, rx, durability, fsync_delay, &hub, &indexer))?;
        Ok(Writer {
            jobs: std::sync::Mutex::new(Some(tx)),
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Runs `op` in the next group commit and returns its result once the
    /// commit is durable.
    pub async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |ctx| {
            let result = match ctx {
                Some(ctx) => in_savepoint(ctx, op),
                // Never reported: the completion below gets the failure.
                None => Err(StoreError::Closed),
            };
            Box::new(move |commit: Result<(), String>| {
                let result = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Backend {
                        context: "committing".into(),
                        source: e.into(),
                    }),
                };
                // The caller may have gone away (client disconnected); the
                // data is committed regardless.
                let _ = reply.send(result);
            })
        });
        {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            let sender = jobs.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops accepting writes, lets the thread finish what is queued, and
    /// waits for it.
    pub fn shutdown(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

fn in_savepoint<T>(
    ctx: &mut WriteCtx<'_>,
    op: impl FnOnce(&mut WriteCtx<'_>) -> Result<T>,
) -> Result<T> {
    if let Some(why) = &ctx.broken {
        // The batch's transaction is already lost; do not run more work
        // outside it (each statement would commit on its own).
        return Err(StoreError::Invalid(format!("not run: {why}")));
    }
    super::run_cached(ctx.conn, "SAVEPOINT op")
        .map_err(|e| StoreError::backend("opening a savepoint", e))?;
    ctx.op_modseq.clear();
    let index_mark = ctx.index_mark();
    // A bug that panics inside one operation must not take the writer
    // thread (and so every later write) down with it.
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(ctx))).unwrap_or_else(|_| {
            Err(StoreError::Invalid(
                "the operation panicked; it was rolled back".into(),
            ))
        });
    let end = match &result {
        Ok(_) => super::run_cached(ctx.conn, "RELEASE op"),
        Err(_) => ctx.conn.execute_batch("ROLLBACK TO op; RELEASE op"),
    };
    if let Err(e) = end {
        // Whether this operation's writes stay in the transaction is now
        // unknown: the only safe answer is to fail the whole batch.
        ctx.broken = Some(format!("closing a savepoint failed: {e}"));
        return Err(StoreError::backend("closing a savepoint", e));
    }
    if ctx.conn.is_autocommit() {
        // SQLite rolled the whole transaction back by itself (disk full,
        // I/O error): every earlier operation of the batch is undone too.
        ctx.broken =
            Some("the transaction was rolled back by SQLite (disk full or I/O error?)".into());
        return Err(StoreError::Invalid("the write transaction was lost".into()));
    }
    if result.is_err() {
        ctx.forget_index_jobs(index_mark);
    }
    if result.is_ok() {
        for (account, modseq) in ctx.op_modseq.drain() {
            let t = ctx.touched.entry(account).or_insert(modseq);
            *t = (*t).max(modseq);
        }
    }
    ctx.op_modseq.clear();
    result
}

fn run(
    conn: Connection,
    jobs: mpsc::Receiver<Job>,
    durability: Durability,
    fsync_delay: Duration,
    hub: &NotificationHub,
    indexer: &Indexer,
) {
    let max_batch = match durability {
        Durability::PerCommit => 1,
        Durability::Group | Durability::Off => MAX_BATCH,
    };
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = super::run_cached(&conn, "BEGIN IMMEDIATE") {
            // Another process holds the write lock past the busy timeout, or
            // the disk failed: every operation of the batch fails, unrun.
            let msg = format!("starting a write transaction: {e}");
            tracing::error!("{msg}");
            for job in batch {
                job(None)(Err(msg.clone()));
            }
            continue;
        }
        let mut ctx = WriteCtx {
            conn: &conn,
            op_modseq: HashMap::new(),
            touched: HashMap::new(),
            broken: None,
            index_jobs: Vec::new(),
        };
        let completions: Vec<Completion> =
            batch.into_iter().map(|job| job(Some(&mut ctx))).collect();
        let commit = match ctx.broken.take() {
            Some(why) => Err(why),
            None => super::run_cached(&conn, "COMMIT").map_err(|e| e.to_string()),
        };
        if commit.is_err() {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        } else if !fsync_delay.is_zero() && durability != Durability::Off {
            // Benchmark aid: pretend the disk's fsync is this much slower.
            std::thread::sleep(fsync_delay);
        }
        // Subscribers hear of the commit before any writer gets its answer,
        // so a caller that saw its write succeed knows every subscriber
        // has been woken (an IMAP IDLE hears of a message before SMTP's 250).
        let touched = std::mem::take(&mut ctx.touched);
        if commit.is_ok() {
            // Before the answers, so a search that follows a returned write
            // waits for its text.
            indexer.submit(std::mem::take(&mut ctx.index_jobs));
            for (account, modseq) in touched {
                hub.notify(account, modseq);
            }
        }
        for completion in completions {
            completion(commit.clone());
        }
    }
    // Every sender is gone: fold the WAL back into the database so the next
    // start (or a copy of the data directory) finds one tidy file. Without
    // waiting: if another process (the server, beside an admin command) is
    // busy with the database, it will checkpoint at its own close.
    let _ = conn.busy_timeout(Duration::ZERO);
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::debug!("checkpointing the WAL at close: {e}");
    }
}
