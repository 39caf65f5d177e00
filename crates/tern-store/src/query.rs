//! Emails by id, account-wide: what JMAP (RFC 8621 §4), ActiveSync and the
//! webmail ask of the Store, beside IMAP's (mailbox, UID) view.
//!
//! An email is one object however many mailboxes hold it (JMAP
//! `mailboxIds`); each membership keeps its own IMAP UID. Keywords belong
//! to the email, so every mailbox holding it sees a change.

use crate::types::{BlobId, EmailId, MailboxId, ModSeq, ThreadId, Uid};
use serde::{Deserialize, Serialize};

/// An email with the mailboxes that hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRecord {
    pub id: EmailId,
    pub thread_id: ThreadId,
    /// Hex SHA-256 of the raw message: the blob's address.
    pub blob_id: BlobId,
    pub size: u64,
    /// JMAP `receivedAt`, unix seconds.
    pub received_at: i64,
    /// The `Date` header, unix seconds, if it parsed (JMAP `sentAt`).
    pub sent_at: Option<i64>,
    /// Sorted, deduplicated, in IMAP form (`\Seen`, `$Junk`).
    pub keywords: Vec<String>,
    /// Each mailbox holding the email and the UID it has there, by mailbox.
    pub mailboxes: Vec<(MailboxId, Uid)>,
}

/// What an operation on emails by id did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailsChanged {
    /// Emails changed (or destroyed), in the order asked.
    pub changed: Vec<EmailId>,
    /// Ids that are not (or no longer) emails of the account.
    pub not_found: Vec<EmailId>,
    /// The operation's modseq; unchanged when nothing changed.
    pub modseq: ModSeq,
}

/// The property an account-wide query sorts by (JMAP `Email/query` sort).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EmailSort {
    #[default]
    ReceivedAt,
    SentAt,
    Size,
}

/// An account-wide query: every condition given must hold. Sorted by
/// `sort` (ties by id), one page from `position`, so a client pages
/// through 100,000 messages without anyone listing them whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailQuery {
    /// Only emails in this mailbox (JMAP `inMailbox`).
    pub in_mailbox: Option<MailboxId>,
    /// Only emails of this thread (JMAP `Thread/get`).
    pub in_thread: Option<ThreadId>,
    /// Full-text conditions every email must meet, through the search
    /// index: `(body only, needle)` (JMAP `body`, `text`). A backend that
    /// cannot answer them from its index now (none, behind, a needle
    /// shorter than its trigrams) refuses with `StoreError::Invalid`, and
    /// the caller searches mailbox by mailbox instead.
    pub text: Vec<(bool, String)>,
    /// Only emails in none of these (JMAP `inMailboxOtherThan` is "in some
    /// other", which callers express with `in_mailbox` per mailbox; this is
    /// the common "not in Trash or Junk").
    pub not_in_mailboxes: Vec<MailboxId>,
    /// Only emails in at least one mailbox not listed (JMAP
    /// `inMailboxOtherThan`, RFC 8621 §4.4.1).
    pub in_mailbox_other_than: Option<Vec<MailboxId>>,
    /// Keywords every email must have (JMAP `hasKeyword`).
    pub has_keywords: Vec<String>,
    /// Keywords no email may have (JMAP `notKeyword`).
    pub not_keywords: Vec<String>,
    /// `receivedAt` at or after / before, unix seconds (JMAP `after`/`before`).
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    pub sort: EmailSort,
    /// JMAP's `isAscending`; JMAP clients mostly ask newest first.
    pub ascending: bool,
    /// Zero-based index of the first result.
    pub position: usize,
    /// Most results returned.
    pub limit: usize,
    /// Count every match (costs a pass over all of them).
    pub calculate_total: bool,
}

/// A page of an account-wide query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailQueryResult {
    pub ids: Vec<EmailId>,
    /// Every match, when asked for.
    pub total: Option<u64>,
}
