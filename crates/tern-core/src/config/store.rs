//! `[store]`: where the mail is kept (the embedded SQLite file, or a
//! PostgreSQL database several nodes share), when a commit counts as done,
//! and how long the change journal keeps changes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// `[store]`: how commits reach the disk, and how long changes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Which database keeps the mail. Default `sqlite`: a file in the data
    /// directory, nothing to install. `postgres`: a PostgreSQL database
    /// named by `url`, which several Tern nodes may share.
    pub backend: Backend,
    /// The PostgreSQL database (`backend = "postgres"`), as
    /// `postgres://user:password@host:port/database` or `host=… user=…`.
    /// Overridden by the environment variable `TERN_STORE_URL`, which keeps
    /// a password out of the file.
    pub url: Option<String>,
    /// Connections each node keeps to PostgreSQL at most. Default 16.
    pub pool_size: u32,
    /// With PostgreSQL: keep message bytes as files under this directory
    /// (a filesystem every node mounts) instead of in the database.
    pub blob_dir: Option<PathBuf>,
    /// With PostgreSQL: the CA certificates (PEM) the database server's
    /// certificate must chain to. When set, TLS is required and the
    /// certificate must also name the URL's host (libpq's `verify-full`).
    /// Unset, TLS follows the URL's `sslmode` (`prefer` by default) and
    /// any certificate is accepted, as libpq does without a root
    /// certificate. `tern store migrate` uses it too.
    pub tls_ca_file: Option<PathBuf>,
    /// When a commit counts as done (SQLite; PostgreSQL commits are
    /// durable by its own `synchronous_commit`).
    pub durability: Durability,
    /// An artificial delay in milliseconds before each fsync, to emulate a
    /// slower disk (a network volume, a cheap SSD) when benchmarking group
    /// commit on fast hardware. For benchmarks only: in production it adds
    /// latency to every delivery and buys nothing. Default 0.
    pub fsync_delay_ms: u64,
    /// Days the change journal keeps each change. A client that was away
    /// longer resynchronises in full (JMAP `cannotCalculateChanges`, IMAP
    /// QRESYNC reports every missing UID as vanished) instead of the
    /// journal growing for ever. 0 keeps changes for ever. Default 90.
    pub journal_retention_days: u32,
}

impl StoreConfig {
    /// 90 days: a phone or laptop left in a drawer for a season still
    /// syncs by changes; the journal stays a small fraction of the mail.
    pub const DEFAULT_JOURNAL_RETENTION_DAYS: u32 = 90;

    /// Enough for a node's concurrent sessions to rarely wait: a
    /// connection is held only for one operation's transaction.
    pub const DEFAULT_POOL_SIZE: u32 = 16;

    /// The PostgreSQL URL: `TERN_STORE_URL` if set, else `url`.
    pub fn postgres_url(&self) -> Option<String> {
        std::env::var("TERN_STORE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.url.clone())
    }
}

/// The database behind the Store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The embedded file `tern.db` in the data directory.
    #[default]
    Sqlite,
    /// A PostgreSQL database, shared by every node pointed at it.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            backend: Backend::default(),
            url: None,
            pool_size: StoreConfig::DEFAULT_POOL_SIZE,
            blob_dir: None,
            tls_ca_file: None,
            durability: Durability::default(),
            fsync_delay_ms: 0,
            journal_retention_days: StoreConfig::DEFAULT_JOURNAL_RETENTION_DAYS,
        }
    }
}

/// When a commit counts as done, and so when a client hears `250` or `OK`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Concurrent commits share one fsync; each client is answered after the
    /// fsync covering its commit. As safe as `PerCommit`, and much faster
    /// under load because the fsync is the bottleneck. The default.
    #[default]
    Group,
    /// One fsync per commit: the same guarantee, lower throughput. For
    /// comparison, and for filesystems where batching misbehaves.
    PerCommit,
    /// No fsync: the operating system writes when it likes, and a power
    /// failure can lose mail that clients were told was delivered. For tests
    /// and throw-away benchmarks only.
    Off,
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Group => "group",
            Durability::PerCommit => "per-commit",
            Durability::Off => "off",
        })
    }
}
