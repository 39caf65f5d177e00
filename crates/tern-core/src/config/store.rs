//! `[store]`: when a commit counts as done, and how long the change journal
//! keeps changes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `[store]`: how commits reach the disk, and how long changes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// When a commit counts as done.
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
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
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
