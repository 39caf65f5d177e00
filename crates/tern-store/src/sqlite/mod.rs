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

mod checkpoint;
mod directory;
mod emails;
mod indexer;
mod journal;
mod mailboxes;
mod messages;
mod queue;
mod schema;
mod search;
mod watcher;
mod writer;

use crate::error::{Result, StoreError};
use crate::hub::NotificationHub;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::Store;
use crate::types::*;
use async_trait::async_trait;
use checkpoint::Checkpointer;
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
    checkpointer: Arc<Checkpointer>,
    watcher: Arc<watcher::Watcher>,
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
        let checkpointer = Arc::new(Checkpointer::start(path)?);
        let hub = Arc::new(NotificationHub::new());
        let indexer = Arc::new(Indexer::start(&conn, path)?);
        let writer = Writer::start(
            conn,
            options.durability,
            options.fsync_delay,
            hub.clone(),
            indexer.clone(),
        )
        .map_err(|e| StoreError::backend("starting the writer thread", e))?;
        let watcher = Arc::new(watcher::Watcher::start(path, hub.clone())?);
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
            conn.execute_batch("BEGIN")
                .map_err(|e| StoreError::backend("starting a read", e))?;
            let result = op(&conn);
            let _ = conn.execute_batch("COMMIT");
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
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| StoreError::backend("switching to WAL", e))?;
    } else {
        // Readers see the search index as schema `idx`.
        let index = indexer::index_path(path);
        conn.execute("ATTACH DATABASE ?1 AS idx", [index.to_string_lossy()])
            .map_err(|e| StoreError::backend("attaching the search index", e))?;
        conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
            .map_err(|e| StoreError::backend("sizing the page cache", e))?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| StoreError::backend("enabling foreign keys", e))?;
    Ok(conn)
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

#[async_trait]
impl Store for SqliteStore {
    async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = name.to_ascii_lowercase();
        self.write(move |ctx| directory::add_domain(ctx.conn, &name))
            .await
    }

    async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.read(directory::list_domains).await
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        self.write(move |ctx| directory::remove_domain(ctx.conn, &name))
            .await
    }

    async fn create_account(&self, account: NewAccount) -> Result<Account> {
        self.write(move |ctx| directory::create_account(ctx, account))
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(directory::list_accounts).await
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        let address = address.to_lowercase();
        self.read(move |c| directory::account_by_address(c, &address))
            .await
    }

    async fn account(&self, id: AccountId) -> Result<Account> {
        self.read(move |c| directory::account(c, id)).await
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let (address, hash) = (address.to_lowercase(), password_hash.to_string());
        self.write(move |ctx| directory::set_password(ctx.conn, &address, &hash))
            .await
    }

    async fn set_quota(&self, address: &str, quota_bytes: Option<u64>) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| directory::set_quota(ctx.conn, &address, quota_bytes))
            .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| directory::remove_account(ctx, &address))
            .await
    }

    async fn set_alias(&self, alias: Alias) -> Result<()> {
        self.write(move |ctx| directory::set_alias(ctx.conn, alias))
            .await
    }

    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        self.read(directory::list_aliases).await
    }

    async fn alias(&self, address: &str) -> Result<Option<Alias>> {
        let address = address.to_lowercase();
        self.read(move |c| directory::alias(c, &address)).await
    }

    async fn remove_alias(&self, address: &str) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| directory::remove_alias(ctx.conn, &address))
            .await
    }

    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.read(move |c| mailboxes::list(c, account)).await
    }

    async fn mailbox(&self, account: AccountId, id: MailboxId) -> Result<Mailbox> {
        self.read(move |c| mailboxes::get(c, account, id)).await
    }

    async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let name = name.to_string();
        self.read(move |c| mailboxes::by_name(c, account, &name))
            .await
    }

    async fn mailbox_by_role(&self, account: AccountId, role: Role) -> Result<Option<Mailbox>> {
        self.read(move |c| mailboxes::by_role(c, account, role))
            .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        role: Option<Role>,
    ) -> Result<Mailbox> {
        let name = name.to_string();
        self.write(move |ctx| mailboxes::create(ctx, account, &name, role))
            .await
    }

    async fn rename_mailbox(
        &self,
        account: AccountId,
        id: MailboxId,
        new_name: &str,
    ) -> Result<()> {
        let new_name = new_name.to_string();
        self.write(move |ctx| mailboxes::rename(ctx, account, id, &new_name))
            .await
    }

    async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()> {
        self.write(move |ctx| mailboxes::delete(ctx, account, id))
            .await
    }

    async fn subscribe_mailbox(&self, account: AccountId, id: MailboxId, on: bool) -> Result<()> {
        self.write(move |ctx| mailboxes::subscribe(ctx, account, id, on))
            .await
    }

    async fn mailbox_counts(&self, account: AccountId, id: MailboxId) -> Result<MailboxCounts> {
        self.read(move |c| mailboxes::counts(c, account, id)).await
    }

    async fn accept(&self, delivery: Delivery, outbound: Option<Outbound>) -> Result<Accepted> {
        // Encode the parse outside the writer: the writer's time is the
        // server's scarcest resource.
        let prepared = tokio::task::spawn_blocking(move || messages::prepare(delivery))
            .await
            .map_err(|e| StoreError::backend("parsing a message", e))??;
        self.write(move |ctx| messages::deliver(ctx, prepared, outbound))
            .await
    }

    async fn enqueue_blob(&self, blob_id: &str, outbound: Outbound) -> Result<QueueId> {
        let blob_id = blob_id.to_string();
        self.write(move |ctx| queue::enqueue_existing(ctx.conn, &blob_id, &outbound))
            .await
    }

    async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        self.read(queue::list).await
    }

    async fn queue_claim(
        &self,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueClaim>> {
        self.write(move |ctx| queue::claim(ctx.conn, now, lease_secs, limit))
            .await
    }

    async fn queue_record(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<QueueState> {
        self.write(move |ctx| queue::record(ctx.conn, id, lease, &attempts))
            .await
    }

    async fn queue_read(&self, id: QueueId, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.read(move |c| queue::read(c, id, offset, len)).await
    }

    async fn append(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        message: PreparedMessage,
        keywords: Vec<String>,
        received_at: i64,
    ) -> Result<Delivered> {
        let delivery = Delivery {
            message,
            recipients: vec![DeliveryTarget {
                account_id: account,
                mailbox_id: Some(mailbox),
                keywords,
            }],
            received_at,
        };
        let mut results = self.deliver(delivery).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Invalid("nothing was appended".into())))
    }

    async fn list_messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageEntry>> {
        self.read(move |c| messages::list(c, account, mailbox, None))
            .await
    }

    async fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageEntry>> {
        let uids = uids.to_vec();
        self.read(move |c| messages::list(c, account, mailbox, Some(&uids)))
            .await
    }

    async fn email(&self, account: AccountId, id: EmailId) -> Result<Email> {
        self.read(move |c| messages::email(c, account, id)).await
    }

    async fn emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<Option<Email>>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            ids.iter()
                .map(|id| match messages::email(c, account, *id) {
                    Ok(e) => Ok(Some(e)),
                    Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                })
                .collect()
        })
        .await
    }

    async fn read_blob(&self, account: AccountId, blob_id: &str) -> Result<Vec<u8>> {
        let blob_id = blob_id.to_string();
        self.read(move |c| messages::read_blob(c, account, &blob_id))
            .await
    }

    async fn read_blobs(
        &self,
        account: AccountId,
        blob_ids: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let blob_ids = blob_ids.to_vec();
        self.read(move |c| {
            blob_ids
                .iter()
                .map(|id| match messages::read_blob(c, account, id) {
                    Ok(data) => Ok(Some(data)),
                    Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                })
                .collect()
        })
        .await
    }

    async fn read_blob_range(
        &self,
        account: AccountId,
        blob_id: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        let blob_id = blob_id.to_string();
        self.read(move |c| messages::read_blob_range(c, account, &blob_id, offset, len))
            .await
    }

    async fn set_keywords(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: KeywordOp,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<KeywordsResult> {
        let (uids, keywords) = (uids.to_vec(), keywords.to_vec());
        self.write(move |ctx| {
            messages::set_keywords(ctx, account, mailbox, &uids, op, &keywords, unchanged_since)
        })
        .await
    }

    async fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        let uids = uids.to_vec();
        self.write(move |ctx| messages::copy(ctx, account, from, &uids, to, false))
            .await
    }

    async fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        let uids = uids.to_vec();
        self.write(move |ctx| messages::copy(ctx, account, from, &uids, to, true))
            .await
    }

    async fn expunge(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        filter: ExpungeFilter,
    ) -> Result<Vec<Uid>> {
        self.write(move |ctx| messages::expunge(ctx, account, mailbox, filter))
            .await
    }

    async fn email_records(
        &self,
        account: AccountId,
        ids: &[EmailId],
    ) -> Result<Vec<Option<EmailRecord>>> {
        let ids = ids.to_vec();
        self.read(move |c| emails::records(c, account, &ids)).await
    }

    async fn set_email_keywords(
        &self,
        account: AccountId,
        ids: &[EmailId],
        op: KeywordOp,
        keywords: &[String],
    ) -> Result<EmailsChanged> {
        let (ids, keywords) = (ids.to_vec(), keywords.to_vec());
        self.write(move |ctx| emails::set_keywords(ctx, account, &ids, op, &keywords))
            .await
    }

    async fn set_email_mailboxes(
        &self,
        account: AccountId,
        id: EmailId,
        mailboxes: &[MailboxId],
    ) -> Result<ModSeq> {
        let mailboxes = mailboxes.to_vec();
        self.write(move |ctx| emails::set_mailboxes(ctx, account, id, &mailboxes))
            .await
    }

    async fn destroy_emails(&self, account: AccountId, ids: &[EmailId]) -> Result<EmailsChanged> {
        let ids = ids.to_vec();
        self.write(move |ctx| emails::destroy(ctx, account, &ids))
            .await
    }

    async fn query_emails(
        &self,
        account: AccountId,
        query: &EmailQuery,
    ) -> Result<EmailQueryResult> {
        let query = query.clone();
        self.read(move |c| emails::query(c, account, &query)).await
    }

    async fn prune_journal(&self, before: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self
                .write(move |ctx| journal::prune_step(ctx.conn, before))
                .await?;
            total += n;
            if n < journal::PRUNE_STEP as u64 {
                return Ok(total);
            }
        }
    }

    async fn quota(&self, account: AccountId) -> Result<Quota> {
        self.read(move |c| {
            let a = directory::account(c, account)?;
            Ok(Quota {
                used_bytes: a.used_bytes,
                limit_bytes: a.quota_bytes,
            })
        })
        .await
    }

    async fn highest_modseq(&self, account: AccountId) -> Result<ModSeq> {
        self.read(move |c| journal::highest_modseq(c, account))
            .await
    }

    async fn mailbox_changes(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<MailboxChanges> {
        self.read(move |c| journal::mailbox_changes(c, account, mailbox, since))
            .await
    }

    async fn account_changes(
        &self,
        account: AccountId,
        since: ModSeq,
        limit: usize,
    ) -> Result<Vec<Change>> {
        self.read(move |c| journal::account_changes(c, account, since, limit))
            .await
    }

    async fn search(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        key: &SearchKey,
    ) -> Result<Vec<Uid>> {
        let key = key.clone();
        let progress = self.indexer.progress.clone();
        self.read(move |c| search::search(c, account, mailbox, &key, &progress))
            .await
    }

    fn subscribe(&self, account: AccountId) -> watch::Receiver<ModSeq> {
        // Seeded with 0: the first commit after subscribing always wakes the
        // subscriber, and it asks for changes since what it has seen.
        self.hub.subscribe(account, ModSeq(0))
    }

    async fn close(&self) -> Result<()> {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        // Joining the writer thread blocks; keep it off the async threads.
        // The writer first: its last batch hands index jobs to the indexer.
        let (writer, indexer) = (self.writer.clone(), self.indexer.clone());
        let checkpointer = self.checkpointer.clone();
        let watcher = self.watcher.clone();
        tokio::task::spawn_blocking(move || {
            watcher.shutdown();
            // The checkpointer first, so the writer's final TRUNCATE
            // checkpoint does not wait on it.
            checkpointer.shutdown();
            writer.shutdown();
            indexer.shutdown();
        })
        .await
        .map_err(|e| StoreError::backend("stopping the writer", e))?;
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }
}
