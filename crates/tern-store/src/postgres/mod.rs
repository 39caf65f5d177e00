//! The PostgreSQL backend: for deployments that outgrow one machine,
//! several identical Tern nodes share one database.
//!
//! - Every operation is one transaction on a pooled connection
//!   ([`PgStore::write`], [`PgStore::read`]); a commit that returns is
//!   durable (PostgreSQL's `synchronous_commit`, on by default).
//! - Writes of one account are serialised by its row: each takes the
//!   account's next modseq with an `UPDATE … RETURNING`, which holds the
//!   row lock until commit, so UIDs and modseqs are handed out in commit
//!   order on every node without a server-wide lock (see [`Tx::modseq`]).
//! - Serialisation failures, deadlocks and a database that restarts or
//!   drops the connection are retried transparently (the whole operation,
//!   from a fresh transaction) for up to [`RETRY_FOR`].
//! - Commits announce themselves with `NOTIFY`, which PostgreSQL delivers
//!   only after the commit, to every node (see [`notify`]).

mod blobs;
mod cluster;
mod delivery;
mod directory;
mod emails;
mod journal;
mod listing;
mod mailboxes;
mod messages;
pub mod migrate;
mod notify;
mod queue;
mod schema;
mod search;
mod spam;
mod submissions;
pub mod tls;

use crate::error::{Result, StoreError};
use crate::hub::NotificationHub;
use crate::types::{AccountId, ModSeq};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// How long an operation keeps retrying after retryable failures (a
/// restarting database takes a few seconds to accept connections again).
pub const RETRY_FOR: Duration = Duration::from_secs(30);

/// Options for [`PgStore::open`] (`[store]` in the configuration).
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database` or the key=value form.
    pub url: String,
    /// Connections this node keeps at most.
    pub pool_size: usize,
    /// Keep message bytes as files under this directory (shared by every
    /// node, e.g. NFS) instead of in the database.
    pub blob_dir: Option<PathBuf>,
    /// Trusted roots for the server's certificate (`[store] tls_ca_file`):
    /// with them TLS is required and the certificate checked; without,
    /// TLS is what the URL's `sslmode` asks, unchecked (see [`tls`]).
    pub tls_roots: Option<tokio_rustls::rustls::RootCertStore>,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            pool_size: 16,
            blob_dir: None,
            tls_roots: None,
        }
    }
}

/// The PostgreSQL-backed [`crate::Store`].
pub struct PgStore {
    pool: Pool,
    hub: Arc<NotificationHub>,
    listener: notify::Listener,
    closed: AtomicBool,
    blob_dir: Option<PathBuf>,
    /// This store's name in the notifications it sends (see [`notify`]).
    node: Arc<str>,
}

impl PgStore {
    /// Connects, brings the schema up to date (under an advisory lock, so
    /// nodes starting together migrate once) and starts listening for the
    /// commits of every node.
    pub async fn open(options: PgOptions) -> Result<PgStore> {
        let (mut config, tls) = tls::prepare(&options.url, options.tls_roots.as_ref())?;
        // A database that vanished without closing the socket (a failover,
        // a cut network) is noticed in about a minute rather than the
        // system's two hours, by the listener above all.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        // A transaction left open by a node that hangs must not hold an
        // account's row lock (every node's writes to it) for ever.
        let options_given = config.get_options().unwrap_or("").to_string();
        config.options(format!(
            "{options_given} -c idle_in_transaction_session_timeout=60000"
        ));
        let (mut client, connection) = config
            .connect(tls.clone())
            .await
            .map_err(|e| StoreError::backend("connecting to PostgreSQL", e))?;
        let driver = tokio::spawn(connection);
        schema::migrate(&mut client).await?;
        if migrate::unfinished(&client).await? {
            return Err(StoreError::Invalid(
                "a `tern store migrate` into this database has not finished; run it again \
                 until it completes before starting Tern on it"
                    .into(),
            ));
        }
        drop(client);
        let _ = driver.await;

        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                // A connection the database dropped (a restart) is noticed
                // when it is handed out and replaced.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .build()
            .map_err(|e| StoreError::backend("creating the connection pool", e))?;
        let hub = Arc::new(NotificationHub::new());
        let node = notify::node_id();
        let (listener, mut listening) =
            notify::Listener::start(config, tls, pool.clone(), hub.clone(), node.clone());
        // Sessions subscribe as soon as the store is open: the first LISTEN
        // must be in effect by then, or their first news could be missed.
        if tokio::time::timeout(RETRY_FOR, listening.wait_for(|l| *l))
            .await
            .is_err()
        {
            tracing::warn!("not yet listening for other nodes' changes; retrying meanwhile");
        }
        if let Some(dir) = &options.blob_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::backend(format!("creating {}", dir.display()), e))?;
        }
        Ok(PgStore {
            pool,
            hub,
            listener,
            closed: AtomicBool::new(false),
            blob_dir: options.blob_dir,
            node,
        })
    }

    /// Runs `op` in a read-write transaction and commits it; retried from
    /// the start on a retryable failure, so `op` must be repeatable (clone
    /// what it consumes inside). Subscribers of every account whose modseq
    /// it took are woken after the commit, on this node at once and on the
    /// others by NOTIFY.
    pub(crate) async fn write<'env, T, F>(&self, op: F) -> Result<T>
    where
        T: Send,
        F: for<'a> Fn(&'a mut Tx<'env>) -> BoxFuture<'a, Result<T>> + Send + Sync,
    {
        let (value, touched) = self.run(Mode::Write, &op).await?;
        for (account, modseq) in touched {
            self.hub.notify(account, modseq);
        }
        Ok(value)
    }

    /// Runs `op` in a read-only transaction that sees one snapshot of the
    /// database (REPEATABLE READ), so a read never mixes two states.
    pub(crate) async fn read<'env, T, F>(&self, op: F) -> Result<T>
    where
        T: Send,
        F: for<'a> Fn(&'a mut Tx<'env>) -> BoxFuture<'a, Result<T>> + Send + Sync,
    {
        Ok(self.run(Mode::Snapshot, &op).await?.0)
    }

    /// Runs `op`, a read of exactly one statement, without BEGIN and
    /// COMMIT: a statement sees one snapshot by itself, and the two round
    /// trips saved are a third of what the hottest reads cost (the account
    /// a login or a recipient names, a setting). A second statement fails.
    pub(crate) async fn read_one<'env, T, F>(&self, op: F) -> Result<T>
    where
        T: Send,
        F: for<'a> Fn(&'a mut Tx<'env>) -> BoxFuture<'a, Result<T>> + Send + Sync,
    {
        Ok(self.run(Mode::OneStatement, &op).await?.0)
    }

    async fn run<'env, T, F>(&self, mode: Mode, op: &F) -> Result<(T, BTreeMap<AccountId, ModSeq>)>
    where
        T: Send,
        F: for<'a> Fn(&'a mut Tx<'env>) -> BoxFuture<'a, Result<T>> + Send + Sync,
    {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(20);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(StoreError::Closed);
            }
            match self.attempt(mode, op).await {
                Ok(done) => return Ok(done),
                Err(e) if is_retryable(&e) && started.elapsed() < RETRY_FOR => {
                    tracing::debug!("retrying a PostgreSQL transaction: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt<'env, T, F>(
        &self,
        mode: Mode,
        op: &F,
    ) -> Result<(T, BTreeMap<AccountId, ModSeq>)>
    where
        T: Send,
        F: for<'a> Fn(&'a mut Tx<'env>) -> BoxFuture<'a, Result<T>> + Send + Sync,
    {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::backend("connecting to PostgreSQL", e))?;
        // A write learns its transaction id in the same round trip as its
        // BEGIN, to ask after a COMMIT whose answer was lost.
        let xid = if mode == Mode::OneStatement {
            None
        } else if mode == Mode::Snapshot {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(|e| StoreError::backend("starting a transaction", e))?;
            None
        } else {
            let messages = client
                .simple_query("BEGIN; SELECT txid_current()")
                .await
                .map_err(|e| StoreError::backend("starting a transaction", e))?;
            messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    row.get(0).and_then(|x| x.parse::<i64>().ok())
                }
                _ => None,
            })
        };
        let mut tx = Tx {
            client: Some(client),
            finished: false,
            one_statement: mode == Mode::OneStatement,
            statements: std::sync::atomic::AtomicU32::new(0),
            op_modseq: BTreeMap::new(),
            blob_dir: self.blob_dir.clone(),
            node: self.node.clone(),
            unlink: Vec::new(),
            _env: std::marker::PhantomData,
        };
        if mode == Mode::OneStatement {
            let value = op(&mut tx).await;
            tx.finished = true;
            return Ok((value?, BTreeMap::new()));
        }
        let outcome = match op(&mut tx).await {
            Ok(value) => tx.announce().await.map(|()| value),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(value) => {
                let committed = match tx.batch("COMMIT").await {
                    Ok(()) => true,
                    Err(e) => {
                        tx.discard();
                        // The connection failed around the COMMIT: it may
                        // have committed. Running the operation again
                        // would then store a message twice; ask.
                        match (xid, is_retryable(&e)) {
                            (Some(xid), true) => self.committed(xid).await?,
                            _ => false,
                        }
                        .then_some(())
                        .ok_or(e)?;
                        true
                    }
                };
                tx.finished = committed;
                for path in &tx.unlink {
                    if let Err(e) = std::fs::remove_file(path) {
                        tracing::warn!("removing freed blob file {}: {e}", path.display());
                    }
                }
                Ok((value, std::mem::take(&mut tx.op_modseq)))
            }
            Err(e) => {
                if tx.batch("ROLLBACK").await.is_ok() {
                    tx.finished = true;
                } else {
                    tx.discard();
                }
                Err(e)
            }
        }
    }

    /// Whether transaction `xid`, whose COMMIT went unanswered, committed:
    /// asked on another connection until the database answers (within the
    /// retry period). `false` (run it again) only when it is known not to
    /// have; an answer never had fails the operation as unknown rather
    /// than risk doing it twice.
    async fn committed(&self, xid: i64) -> Result<bool> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let status: Result<Option<String>> = async {
                let client = self
                    .pool
                    .get()
                    .await
                    .map_err(|e| StoreError::backend("connecting to PostgreSQL", e))?;
                let row = client
                    .query_one("SELECT txid_status($1)", &[&xid])
                    .await
                    .map_err(|e| StoreError::backend("asking whether a commit happened", e))?;
                Ok(row.get(0))
            }
            .await;
            match status {
                Ok(Some(s)) if s == "committed" => return Ok(true),
                Ok(Some(s)) if s == "aborted" => return Ok(false),
                // In progress: its connection is gone, so it is about to be
                // aborted; asked again.
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(StoreError::Invalid(format!(
                        "whether transaction {xid} committed can no longer be known"
                    )))
                }
                Err(e) if is_retryable(&e) => {}
                Err(e) => return Err(e),
            }
            if started.elapsed() >= RETRY_FOR {
                return Err(StoreError::Invalid(format!(
                    "the database did not say whether transaction {xid} committed"
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// The hub this node's sessions subscribe to.
    pub(crate) fn hub(&self) -> &NotificationHub {
        &self.hub
    }
}

/// One operation's transaction: the pooled connection inside it, and the
/// modseq the operation took per account.
///
/// `'env` is the lifetime of what the operation's closure borrows from
/// its caller: the transaction cannot outlive it, so a closure may borrow
/// its arguments instead of cloning them.
/// How [`PgStore::run`] wraps an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A read-write transaction, committed.
    Write,
    /// A read-only transaction over one snapshot.
    Snapshot,
    /// One statement on its own (its own snapshot).
    OneStatement,
}

pub(crate) struct Tx<'env> {
    client: Option<deadpool_postgres::Object>,
    /// Outside a transaction ([`PgStore::read_one`]): one statement only.
    one_statement: bool,
    statements: std::sync::atomic::AtomicU32,
    /// Set once COMMIT or ROLLBACK went through; a Tx dropped without it
    /// (its operation's future cancelled, a panic) takes its connection
    /// out of the pool instead of handing it back mid-transaction.
    finished: bool,
    op_modseq: BTreeMap<AccountId, ModSeq>,
    blob_dir: Option<PathBuf>,
    node: Arc<str>,
    unlink: Vec<PathBuf>,
    _env: std::marker::PhantomData<&'env ()>,
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Closing the connection rolls its transaction back and frees
            // its locks at once.
            self.discard();
        }
    }
}

impl<'env> Tx<'env> {
    /// Removes a file once the transaction has committed (a blob's bytes
    /// whose row it deleted); never before, since a rollback keeps the row.
    pub fn unlink_after_commit(&mut self, path: PathBuf) {
        self.unlink.push(path);
    }

    /// Drops the connection instead of handing it back to the pool: after
    /// a failed COMMIT or ROLLBACK its state is unknown.
    fn discard(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = deadpool_postgres::Object::take(client);
        }
    }

    fn client(&self) -> Result<&deadpool_postgres::Object> {
        if self.one_statement
            && self
                .statements
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                > 0
        {
            return Err(StoreError::Invalid(
                "a one-statement read ran a second statement (it needs PgStore::read)".into(),
            ));
        }
        self.client.as_ref().ok_or(StoreError::Closed)
    }

    /// The modseq of the current operation for `account`: the first call
    /// takes the account's next value (and with it the account's row
    /// lock, held to the commit), later calls return the same one, so one
    /// operation is one journal step. An operation that writes to several
    /// accounts first locks their rows in ascending id order
    /// (`messages::hold_accounts`), so two such never deadlock.
    pub async fn modseq(&mut self, account: AccountId) -> Result<ModSeq> {
        if let Some(m) = self.op_modseq.get(&account) {
            return Ok(*m);
        }
        let row = self
            .query_opt(
                "UPDATE account SET highest_modseq = highest_modseq + 1 WHERE id = $1
                 RETURNING highest_modseq",
                &[&account.0],
            )
            .await?
            .ok_or_else(|| StoreError::not_found("account", account))?;
        let modseq = ModSeq(row.get::<_, i64>(0) as u64);
        self.op_modseq.insert(account, modseq);
        Ok(modseq)
    }

    /// Where blob bytes live as files, when configured.
    pub fn blob_dir(&self) -> Option<&std::path::Path> {
        self.blob_dir.as_deref()
    }

    /// Tells every node which accounts this transaction changed; PostgreSQL
    /// delivers the notifications only once the commit is done.
    async fn announce(&self) -> Result<()> {
        if self.op_modseq.is_empty() {
            return Ok(());
        }
        let accounts: Vec<i64> = self.op_modseq.keys().map(|a| a.0).collect();
        let modseqs: Vec<i64> = self.op_modseq.values().map(|m| m.0 as i64).collect();
        self.execute(
            "SELECT pg_notify($3, $4 || ':' || a::text || ':' || m::text)
             FROM unnest($1::bigint[], $2::bigint[]) AS t(a, m)",
            &[&accounts, &modseqs, &notify::CHANNEL, &&*self.node],
        )
        .await?;
        Ok(())
    }

    /// Runs a statement (prepared once per connection); rows changed.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await.map_err(sql_error(sql))?;
        client.execute(&stmt, params).await.map_err(sql_error(sql))
    }

    pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await.map_err(sql_error(sql))?;
        client.query(&stmt, params).await.map_err(sql_error(sql))
    }

    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await.map_err(sql_error(sql))?;
        client
            .query_one(&stmt, params)
            .await
            .map_err(sql_error(sql))
    }

    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await.map_err(sql_error(sql))?;
        client
            .query_opt(&stmt, params)
            .await
            .map_err(sql_error(sql))
    }

    /// Runs a statement whose text is built from a request (a JMAP filter
    /// of any shape) without caching it: the cache would grow with every
    /// shape a client invents, here and in the server.
    pub async fn query_dynamic(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.client()?
            .query(sql, params)
            .await
            .map_err(sql_error(sql))
    }

    /// Runs SQL text that is not worth preparing (DDL, a one-off batch).
    pub async fn batch(&self, sql: &str) -> Result<()> {
        self.client()?
            .batch_execute(sql)
            .await
            .map_err(sql_error(sql))
    }

    /// Runs `op` inside a savepoint: on error the savepoint is rolled back
    /// (the rest of the transaction stands) and the error returned; the
    /// modseqs taken inside are forgotten with it.
    pub async fn savepoint<T, F>(&mut self, op: F) -> Result<T>
    where
        F: for<'a> FnOnce(&'a mut Tx<'env>) -> BoxFuture<'a, Result<T>>,
    {
        let held = self.op_modseq.clone();
        self.batch("SAVEPOINT op").await?;
        match op(self).await {
            Ok(v) => {
                self.batch("RELEASE SAVEPOINT op").await?;
                Ok(v)
            }
            Err(e) if is_retryable(&e) => Err(e),
            Err(e) => {
                self.batch("ROLLBACK TO SAVEPOINT op").await?;
                self.op_modseq = held;
                Err(e)
            }
        }
    }
}

/// Maps a PostgreSQL error with the statement it came from (its first
/// line is enough to find it).
fn sql_error(sql: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
    move |e| {
        let first = sql.trim().lines().next().unwrap_or("");
        StoreError::backend(format!("running `{first}`"), e)
    }
}

/// Whether an error is worth running the operation again for: a
/// serialisation failure or deadlock (another node's write won), or the
/// connection to the database lost (a restart, a failover).
pub(crate) fn is_retryable(e: &StoreError) -> bool {
    let StoreError::Backend { source, .. } = e else {
        return false;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(e) = cause {
        if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
            if pg.is_closed() {
                return true;
            }
            if let Some(code) = pg.code() {
                let code = code.code();
                // 40001 serialization_failure, 40P01 deadlock_detected,
                // 08xxx connection exceptions, 57P01-57P03 shutdown and
                // "cannot connect now" (a database starting up).
                return code == "40001"
                    || code == "40P01"
                    || code.starts_with("08")
                    || matches!(code, "57P01" | "57P02" | "57P03");
            }
            // No SQLSTATE: retryable only when the socket failed (an I/O
            // error underneath); a statement this build got wrong (a
            // parameter of the wrong type) fails at once instead.
            let mut inner = std::error::Error::source(pg);
            while let Some(e) = inner {
                if e.downcast_ref::<std::io::Error>().is_some() {
                    return true;
                }
                inner = e.source();
            }
            return false;
        }
        if let Some(pool) = e.downcast_ref::<deadpool_postgres::PoolError>() {
            return !matches!(pool, deadpool_postgres::PoolError::Closed);
        }
        cause = e.source();
    }
    false
}

/// Whether an error is a unique constraint violation (23505): an insert
/// that lost a race, reported as the domain's AlreadyExists.
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    let StoreError::Backend { source, .. } = e else {
        return false;
    };
    source
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.code())
        .is_some_and(|c| c.code() == "23505")
}

/// Peer data without NUL bytes, which a PostgreSQL TEXT cannot hold (an
/// address, a reply from a remote server, a search needle): they carry
/// nothing a search, a thread or a reply could use.
pub(crate) fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl crate::store::Store for PgStore {
    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.listener.stop();
        self.pool.close();
        Ok(())
    }
}
