//! Errors the Store reports. Each variant says what went wrong in terms a
//! protocol crate can map to its own reply (SMTP 550/552, IMAP NO [TRYCREATE],
//! JMAP notFound) without knowing the backend.

use thiserror::Error;

/// The Store's error type.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },

    #[error("{what} {name:?} already exists")]
    AlreadyExists { what: &'static str, name: String },

    #[error("{0}")]
    Invalid(String),

    #[error("mailbox {name:?} has child mailboxes")]
    HasChildren { name: String },

    #[error("domain {name:?} still has {accounts} account(s); remove them first")]
    DomainInUse { name: String, accounts: u64 },

    #[error("over quota: {used} of {limit} bytes used, {needed} more needed")]
    OverQuota { used: u64, limit: u64, needed: u64 },

    #[error("the store is closed")]
    Closed,

    #[error("changes at or below modseq {floor} are no longer kept; resynchronise")]
    ChangesExpired { floor: crate::types::ModSeq },

    #[error("the lease on queued message {queue_id} was lost (it expired and was claimed again)")]
    LeaseLost { queue_id: i64 },

    #[error("storage backend failed while {context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, name: impl ToString) -> StoreError {
        StoreError::NotFound {
            what,
            name: name.to_string(),
        }
    }

    pub(crate) fn exists(what: &'static str, name: impl ToString) -> StoreError {
        StoreError::AlreadyExists {
            what,
            name: name.to_string(),
        }
    }

    /// Whether the failure is the disk (or the database's size limit) being
    /// full: a temporary condition that protocols report as such (SMTP
    /// 452 4.3.1, IMAP `[OVERQUOTA]`), which clears once space is freed.
    pub fn is_storage_full(&self) -> bool {
        let StoreError::Backend { source, .. } = self else {
            return false;
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
        while let Some(e) = cause {
            if let Some(rusqlite::Error::SqliteFailure(failure, _)) = e.downcast_ref() {
                if failure.code == rusqlite::ErrorCode::DiskFull {
                    return true;
                }
            }
            // The writer hands one commit's failure to every operation in
            // its group as text; SQLite's words for SQLITE_FULL identify it.
            if e.to_string().contains("database or disk is full") {
                return true;
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) {
                    return true;
                }
            }
            cause = e.source();
        }
        false
    }

    /// Wraps a backend error with what the store was doing.
    pub fn backend(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// Shorthand for results of Store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
