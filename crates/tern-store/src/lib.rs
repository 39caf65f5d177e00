//! `tern-store`: where Tern keeps mail.
//!
//! The [`Store`] trait is the whole interface: directory (domains, accounts,
//! aliases), mailboxes, messages stored once as content-addressed blobs, the
//! per-account change journal every sync protocol reads, full-text search,
//! and the notification hub. [`sqlite::SqliteStore`] is the embedded
//! backend; every backend passes the same [`conformance`] suite.

pub mod error;
pub mod hub;
pub mod message;
pub mod postgres;
pub mod query;
pub mod search;
pub mod sqlite;
pub mod store;
pub mod types;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{Result, StoreError};
pub use query::*;
pub use search::SearchKey;
pub use store::{
    BlobStore, ChangeStore, ClusterStore, DirectoryStore, EmailStore, MailboxStore, MessageStore,
    QueueStore, SpamStore, Store,
};
pub use types::*;

/// The Store's facets, to call their methods on an `Arc<dyn Store>`.
pub mod prelude {
    pub use crate::store::{
        BlobStore, ChangeStore, ClusterStore, DirectoryStore, EmailStore, MailboxStore,
        MessageStore, QueueStore, SpamStore, Store,
    };
}
