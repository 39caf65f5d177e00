//! The Store's vocabulary: identifiers that carry their meaning in their type,
//! and the records the Store hands to protocol crates.
//!
//! Names follow the RFCs: `uid_validity`, `uid_next` and `highest_modseq` are
//! IMAP's (RFC 9051 §2.3.1.1, RFC 7162 §3.1), `keywords` are JMAP's word for
//! IMAP flags (RFC 8621 §4.1.1).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A domain we accept mail for.
    DomainId(i64)
);
id_type!(
    /// An account (one user, one set of mailboxes, one change journal).
    AccountId(i64)
);
id_type!(
    /// A mailbox; unique across the whole store, never reused.
    MailboxId(i64)
);
id_type!(
    /// An email, stable for its life even when it moves between mailboxes
    /// (the JMAP Email id and IMAP OBJECTID EMAILID, RFC 8474 §4).
    EmailId(i64)
);
id_type!(
    /// A thread of related emails (RFC 8474 THREADID).
    ThreadId(i64)
);

/// The address of a message's bytes: the hex SHA-256 of the content, so
/// the same bytes are stored once however many emails, queue entries or
/// uploads hold them. A blob is freed when nothing holds it any more.
/// Reading one always names who asks (an account that owns an email of
/// it, or a queue entry), so a blob id alone never opens anyone's mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobId(pub String);

impl BlobId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
id_type!(
    /// An IMAP UID: strictly ascending within a mailbox, never reused
    /// while `uid_validity` stays the same (RFC 9051 §2.3.1.1).
    Uid(u32)
);
id_type!(
    /// A modification sequence: every change to an account takes the
    /// account's next value (RFC 7162 §3.1; JMAP states derive from it).
    ModSeq(u64)
);

/// The special-use role of a mailbox (RFC 6154), which JMAP calls `role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Inbox,
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
    All,
    Flagged,
    Important,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 9] = [
        Role::Inbox,
        Role::Sent,
        Role::Drafts,
        Role::Trash,
        Role::Junk,
        Role::Archive,
        Role::All,
        Role::Flagged,
        Role::Important,
    ];

    /// The name used in storage and in JMAP (`"sent"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inbox => "inbox",
            Role::Sent => "sent",
            Role::Drafts => "drafts",
            Role::Trash => "trash",
            Role::Junk => "junk",
            Role::Archive => "archive",
            Role::All => "all",
            Role::Flagged => "flagged",
            Role::Important => "important",
        }
    }

    /// Parses the storage/JMAP name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The IMAP SPECIAL-USE attribute (RFC 6154 §2), if the role has one.
    pub fn imap_attribute(self) -> Option<&'static str> {
        match self {
            Role::Inbox => None,
            Role::Sent => Some("\\Sent"),
            Role::Drafts => Some("\\Drafts"),
            Role::Trash => Some("\\Trash"),
            Role::Junk => Some("\\Junk"),
            Role::Archive => Some("\\Archive"),
            Role::All => Some("\\All"),
            Role::Flagged => Some("\\Flagged"),
            Role::Important => Some("\\Important"),
        }
    }
}

/// The mailboxes every new account starts with, and their roles.
pub const DEFAULT_MAILBOXES: [(&str, Role); 6] = [
    ("INBOX", Role::Inbox),
    ("Sent", Role::Sent),
    ("Drafts", Role::Drafts),
    ("Trash", Role::Trash),
    ("Junk", Role::Junk),
    ("Archive", Role::Archive),
];

/// The hierarchy separator in mailbox names, as IMAP LIST reports it.
pub const HIERARCHY_SEPARATOR: char = '/';

/// A domain we accept mail for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: DomainId,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// An account, as the directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// The login name and primary address, lowercase.
    pub address: String,
    /// Argon2id PHC string; never shown to people.
    #[serde(skip_serializing)]
    pub password_hash: String,
    /// Storage limit in bytes; `None` means unlimited.
    pub quota_bytes: Option<u64>,
    /// Bytes of mail currently counted against the quota.
    pub used_bytes: u64,
    pub created_at: i64,
}

/// A new account for [`crate::Store::create_account`].
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Lowercase `local@domain`; the domain must exist.
    pub address: String,
    pub password_hash: String,
    pub quota_bytes: Option<u64>,
}

/// An alias: mail for `address` goes to every target. `address` is either
/// `local@domain` or `@domain` (a catch-all for the domain). A target is any
/// address, local (an account or another alias) or remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub address: String,
    pub targets: Vec<String>,
}

/// A mailbox and its IMAP bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account_id: AccountId,
    /// Full hierarchical name, `/`-separated (`Archive/2024`).
    pub name: String,
    pub role: Option<Role>,
    pub uid_validity: u32,
    /// The UID the next message added to this mailbox will get.
    pub uid_next: Uid,
    /// The highest modseq of any change in this mailbox, including expunges.
    pub highest_modseq: ModSeq,
    /// Messages from this UID on are recent (IMAP4rev1 `\Recent`, RFC 3501
    /// §2.3.2): no session has selected the mailbox since they arrived.
    pub first_recent_uid: Uid,
    pub subscribed: bool,
    /// A name kept only as the parent of others, after DELETE; it holds no
    /// messages (IMAP `\Noselect`).
    pub noselect: bool,
}

/// Counts for IMAP STATUS and the JMAP Mailbox object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailboxCounts {
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Messages with `\Deleted`.
    pub deleted: u32,
    /// Total size of the messages in bytes (IMAP STATUS=SIZE, RFC 8438).
    pub size: u64,
    /// Messages not yet claimed as `\Recent` by a session (RFC 3501 §6.3.10).
    pub recent: u32,
}

/// One message as it sits in one mailbox: what IMAP SELECT and FETCH FLAGS
/// need, without the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEntry {
    pub uid: Uid,
    pub email_id: EmailId,
    pub thread_id: ThreadId,
    /// The modseq of the last change to this message in this mailbox.
    pub modseq: ModSeq,
    /// Sorted, deduplicated flags and keywords in IMAP form (`\Seen`, `$Junk`).
    pub keywords: Vec<String>,
    pub size: u64,
    /// IMAP INTERNALDATE / JMAP receivedAt, unix seconds.
    pub received_at: i64,
    /// The message's bytes, for [`crate::Store::read_blob_range`] without
    /// a detour through [`crate::Store::email`].
    pub blob_id: BlobId,
    /// The size with CRLF line ends (what POP3 sends); equals `size` for
    /// messages stored with CRLF.
    pub crlf_size: u64,
    /// When the message was put in this mailbox (IMAP SAVEDATE, RFC 8514);
    /// unknown for messages stored before Tern kept it.
    pub saved_at: Option<i64>,
}

impl MessageEntry {
    /// True when the entry carries `keyword` (compared case-insensitively,
    /// as IMAP flags are, RFC 9051 §2.3.2).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }
}

/// Everything known about an email except its content, which is the blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub id: EmailId,
    pub account_id: AccountId,
    pub thread_id: ThreadId,
    /// Hex SHA-256 of the raw message: the blob's address.
    pub blob_id: BlobId,
    pub size: u64,
    pub received_at: i64,
    pub keywords: Vec<String>,
    /// Parsed once at delivery (RFC 9051 §7.5.2 ENVELOPE).
    pub envelope: crate::message::Envelope,
    /// The MIME tree with byte offsets into the blob.
    pub structure: crate::message::MimePart,
    /// Decoded fields for message lists and threading.
    pub summary: crate::message::Summary,
}

/// A message to deliver to local recipients: the raw bytes are stored once
/// whatever the number of recipients.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Hashed and parsed by the delivery pipeline before any backend sees it.
    pub message: crate::message::PreparedMessage,
    pub recipients: Vec<DeliveryTarget>,
    /// Unix seconds; the time the message was received.
    pub received_at: i64,
}

/// One recipient of a [`Delivery`]: an account and, optionally, the mailbox
/// (INBOX when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    pub account_id: AccountId,
    pub mailbox_id: Option<MailboxId>,
    pub keywords: Vec<String>,
    /// The sender's own copy (Sent), not a recipient: when it fails (over
    /// quota) it is not queued for a retry that would deliver it to the
    /// sender's INBOX.
    pub sender_copy: bool,
}

impl DeliveryTarget {
    /// Delivery to the account's INBOX with no flags.
    pub fn inbox(account_id: AccountId) -> DeliveryTarget {
        DeliveryTarget {
            account_id,
            mailbox_id: None,
            keywords: Vec::new(),
            sender_copy: false,
        }
    }
}

id_type!(
    /// A message waiting in the outbound queue.
    QueueId(i64)
);

/// A message for remote recipients, queued in the same durable commit as
/// the local deliveries of the same message (the outbound worker takes it
/// from there). The DSN fields are RFC 3461's, kept for the bounce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// The reverse-path; empty for the null sender `<>`.
    pub mail_from: String,
    pub recipients: Vec<OutboundRecipient>,
    /// DSN `ENVID`.
    pub env_id: Option<String>,
    /// DSN `RET`: return the full message or only its headers.
    pub ret: Option<DsnReturn>,
    /// The account that submitted it, if any.
    pub account_id: Option<AccountId>,
    /// REQUIRETLS (RFC 8689): every hop must be verified TLS.
    #[serde(default)]
    pub require_tls: bool,
    /// Not before this time, unix seconds (FUTURERELEASE, RFC 4865: a
    /// JMAP submission sent later, which may be cancelled until then).
    #[serde(default)]
    pub release_at: Option<i64>,
}

/// DSN `RET` (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DsnReturn {
    Full,
    Headers,
}

/// One remote recipient and its DSN wishes (RFC 3461 §4.1, §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecipient {
    pub address: String,
    pub notify: DsnNotify,
    /// DSN `ORCPT`, as given (`rfc822;user@example.com`).
    pub orcpt: Option<String>,
}

/// DSN `NOTIFY`: when the sender wants to hear about this recipient.
/// `never` is all false; the default (no NOTIFY given) is failure + delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnNotify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Default for DsnNotify {
    fn default() -> DsnNotify {
        DsnNotify {
            success: false,
            failure: true,
            delay: true,
        }
    }
}

/// The state of one queued recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientStatus {
    Pending,
    Delivered,
    Failed,
}

/// A queued message as the queue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub id: QueueId,
    pub blob_id: BlobId,
    pub size: u64,
    pub outbound: Outbound,
    pub created_at: i64,
    pub recipients: Vec<QueuedRecipient>,
    /// Held by an administrator: not delivered until released.
    pub held: bool,
    /// The sender was told the message is delayed (once per message).
    pub delay_notified: bool,
}

/// A domain's DKIM signing key (RFC 6376 §3.1: published at
/// `SELECTOR._domainkey.DOMAIN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    /// `ed25519` (RFC 8463) or `rsa`.
    pub algorithm: String,
    /// PKCS#8 DER for Ed25519, PKCS#1 DER for RSA.
    pub private_key: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// TLS sessions to one destination on one day with one result, for
/// TLS reports (RFC 8460).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsReportRow {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub policy_domain: String,
    /// `sts`, `tlsa` or `no-policy-found` (RFC 8460 §4.3).
    pub policy_type: String,
    /// `success`, or a result type of RFC 8460 §4.4.
    pub result_type: String,
    pub mx_host: String,
    pub sessions: u64,
}

/// One recipient of a queued message, with its delivery attempts so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    pub status: RecipientStatus,
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

id_type!(
    /// A claim on a queued message: whoever holds the current one may
    /// record attempts; a claim whose lease ran out is worth nothing.
    LeaseId(i64)
);

/// A queued message claimed for delivery until `lease_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueClaim {
    pub message: QueuedMessage,
    pub lease: LeaseId,
    /// Unix seconds; after this another worker may claim the message.
    pub lease_until: i64,
}

/// What one delivery attempt did for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The next hop took it (or it was delivered locally).
    Delivered,
    /// A temporary failure: try again at `next_attempt` (unix seconds).
    Deferred { next_attempt: i64, error: String },
    /// A permanent failure (or the queue lifetime ran out).
    Failed { error: String },
    /// Not tried (its destination was busy): again at `next_attempt`,
    /// without counting an attempt.
    Postponed { next_attempt: i64 },
}

/// One recipient's attempt, for [`crate::Store::queue_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientAttempt {
    pub address: String,
    pub outcome: AttemptOutcome,
}

/// Whether a queued message is finished after recorded attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    /// Some recipients are still pending; the lease is released.
    Pending,
    /// Every recipient is delivered or failed: the entry and its hold on
    /// the blob are gone.
    Done,
}

/// What [`crate::Store::accept`] did: one result per local target, and the
/// queue entry for the remote recipients, if there were any.
#[derive(Debug)]
pub struct Accepted {
    pub local: Vec<crate::Result<Delivered>>,
    pub queued: Option<QueueId>,
    /// Indexes of `local` targets that were over quota and were queued
    /// instead (only when the message was accepted for someone else).
    pub deferred: Vec<usize>,
    /// The stored message's blob (for [`crate::Store::enqueue_blob`]).
    pub blob_id: BlobId,
}

/// Where one delivered copy landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub account_id: AccountId,
    pub mailbox_id: MailboxId,
    pub email_id: EmailId,
    pub uid: Uid,
    pub modseq: ModSeq,
}

/// How [`crate::Store::set_keywords`] changes the keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordOp {
    /// IMAP `+FLAGS`.
    Add,
    /// IMAP `-FLAGS`.
    Remove,
    /// IMAP `FLAGS`.
    Replace,
}

/// The result of a conditional keyword change (RFC 7162 §3.1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeywordsResult {
    /// Entries that changed, with their new keywords and modseq.
    pub updated: Vec<MessageEntry>,
    /// The modseq each of `updated` had before the change: above what a
    /// session last reported, someone else changed it meanwhile.
    pub prior_modseq: Vec<ModSeq>,
    /// UIDs not changed because their modseq was above `unchanged_since`.
    pub modified: Vec<Uid>,
}

/// Which messages [`crate::Store::expunge`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpungeFilter {
    /// Every message carrying `\Deleted` at the moment of the commit (IMAP EXPUNGE).
    Deleted,
    /// Those of these UIDs that carry `\Deleted` (IMAP UID EXPUNGE, RFC 4315).
    DeletedAmong(Vec<Uid>),
    /// These UIDs, flags regardless (POP3 DELE, JMAP destroy).
    Uids(Vec<Uid>),
}

/// A UID mapping produced by COPY or MOVE (RFC 4315 COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    pub uid_validity: u32,
    /// (source UID, destination UID) pairs, in source UID order.
    pub mapping: Vec<(Uid, Uid)>,
    pub modseq: ModSeq,
}

/// What changed in one mailbox since a modseq: CONDSTORE/QRESYNC's view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    pub highest_modseq: ModSeq,
    /// Messages present now whose modseq is above the given one (new ones included).
    pub changed: Vec<MessageEntry>,
    /// UIDs expunged since then (tombstones), ascending.
    pub expunged: Vec<Uid>,
    /// True when the modseq asked about is below the journal's retention
    /// floor: some expunges are no longer known, so the caller must take
    /// every UID it knows that is not in the mailbox now as expunged.
    pub incomplete: bool,
}

/// A JMAP EmailSubmission's id within its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubmissionId(pub i64);

/// A message a user sent through JMAP (RFC 8621 §7): what was sent to
/// whom and when. Kept after sending, so a client can show what went out
/// and its delivery status, until the client destroys it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionRecord {
    /// Set by the Store when recorded.
    pub id: SubmissionId,
    pub email_id: EmailId,
    pub thread_id: ThreadId,
    pub identity_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Unix seconds.
    pub send_at: i64,
    /// The queued copy for recipients elsewhere, while it is queued.
    pub queue_id: Option<QueueId>,
    /// What became of each recipient, by address (set by the Store: local
    /// ones delivered at once, queued ones as the queue records them).
    pub delivery: std::collections::BTreeMap<String, RecipientDelivery>,
    /// Cancelled before its release (JMAP `undoStatus: canceled`).
    pub canceled: bool,
}

/// One recipient of a submission (JMAP `DeliveryStatus`, RFC 8621 §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientDelivery {
    /// `queued`, `yes` or `no`.
    pub delivered: String,
    /// The last SMTP reply or error, when there is one.
    pub reply: Option<String>,
}

/// One row of an account's change journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub modseq: ModSeq,
    pub kind: ChangeKind,
}

/// What a journal row records. Expunges are tombstones that stay in the
/// journal so a client offline for weeks resynchronises in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    MailboxCreated {
        mailbox_id: MailboxId,
    },
    MailboxRenamed {
        mailbox_id: MailboxId,
    },
    /// A property other than the name changed (subscription).
    MailboxUpdated {
        mailbox_id: MailboxId,
    },
    MailboxDeleted {
        mailbox_id: MailboxId,
    },
    EmailAdded {
        mailbox_id: MailboxId,
        uid: Uid,
        email_id: EmailId,
    },
    KeywordsChanged {
        mailbox_id: MailboxId,
        uid: Uid,
        email_id: EmailId,
    },
    EmailExpunged {
        mailbox_id: MailboxId,
        uid: Uid,
        email_id: EmailId,
    },
    /// An email joined or left the thread (JMAP `Thread/changes`); written
    /// when an email is created or destroyed, so the thread of a destroyed
    /// email is still known.
    ThreadChanged {
        thread_id: ThreadId,
    },
    /// A JMAP EmailSubmission was made (RFC 8621 §7).
    SubmissionCreated {
        submission_id: SubmissionId,
    },
    SubmissionDestroyed {
        submission_id: SubmissionId,
    },
    /// Its `undoStatus` changed (cancelled before release).
    SubmissionUpdated {
        submission_id: SubmissionId,
    },
}

/// The kind of object a journal row is about. Every sync protocol reads
/// the rows of the types it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Email,
    Mailbox,
    Thread,
    /// The account itself (its removal).
    Account,
    /// A JMAP EmailSubmission.
    Submission,
}

impl ObjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Email => "email",
            ObjectType::Mailbox => "mailbox",
            ObjectType::Thread => "thread",
            ObjectType::Account => "account",
            ObjectType::Submission => "submission",
        }
    }
}

impl ChangeKind {
    /// What the row is about.
    pub fn object_type(&self) -> ObjectType {
        match self {
            ChangeKind::MailboxCreated { .. }
            | ChangeKind::MailboxRenamed { .. }
            | ChangeKind::MailboxUpdated { .. }
            | ChangeKind::MailboxDeleted { .. } => ObjectType::Mailbox,
            ChangeKind::EmailAdded { .. }
            | ChangeKind::KeywordsChanged { .. }
            | ChangeKind::EmailExpunged { .. } => ObjectType::Email,
            ChangeKind::ThreadChanged { .. } => ObjectType::Thread,
            ChangeKind::SubmissionCreated { .. }
            | ChangeKind::SubmissionDestroyed { .. }
            | ChangeKind::SubmissionUpdated { .. } => ObjectType::Submission,
        }
    }

    /// The collection the object sits in (an email's mailbox), if any.
    pub fn collection(&self) -> Option<MailboxId> {
        match *self {
            ChangeKind::EmailAdded { mailbox_id, .. }
            | ChangeKind::KeywordsChanged { mailbox_id, .. }
            | ChangeKind::EmailExpunged { mailbox_id, .. } => Some(mailbox_id),
            _ => None,
        }
    }
}

/// Quota usage of an account (IMAP QUOTA "STORAGE", RFC 9208).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub used_bytes: u64,
    pub limit_bytes: Option<u64>,
}

/// Longest keyword accepted: far above any real flag, small enough that
/// keyword lists never dominate a row.
pub const MAX_KEYWORD_LEN: usize = 128;

/// Checks that `keyword` is an IMAP flag or keyword (RFC 9051 §9: `flag`,
/// an atom optionally after a backslash) and so also a valid JMAP keyword.
/// The store keeps keywords space-separated, so this is also what keeps one
/// keyword from posing as two.
pub fn validate_keyword(keyword: &str) -> Result<(), crate::StoreError> {
    let atom = keyword.strip_prefix('\\').unwrap_or(keyword);
    let bad = atom.is_empty()
        || keyword.len() > MAX_KEYWORD_LEN
        || atom
            .bytes()
            .any(|b| !(0x21..0x7f).contains(&b) || b"(){%*\"\\]".contains(&b));
    if bad {
        return Err(crate::StoreError::Invalid(format!(
            "{keyword:?} is not a valid flag or keyword"
        )));
    }
    Ok(())
}

/// Sorts and deduplicates keywords case-insensitively, keeping the first
/// spelling seen, so that stored keyword lists are canonical.
pub fn normalize_keywords<I, S>(keywords: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for k in keywords {
        let k = k.as_ref();
        if k.is_empty() || out.iter().any(|o| o.eq_ignore_ascii_case(k)) {
            continue;
        }
        out.push(k.to_string());
    }
    out.sort_by_key(|k| k.to_ascii_lowercase());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_sorted_and_deduplicated_case_insensitively() {
        let k = normalize_keywords(["\\Seen", "$Junk", "\\seen", "", "Work"]);
        assert_eq!(k, vec!["$Junk", "\\Seen", "Work"]);
    }

    #[test]
    fn keywords_must_be_atoms() {
        for good in ["\\Seen", "$Junk", "Work", "a.b-c_d"] {
            assert!(validate_keyword(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "\\",
            "two words",
            "x\\Deleted",
            "a(b",
            "é",
            "tab\t",
            "q\"",
            "%",
            "]",
        ] {
            assert!(validate_keyword(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("nope"), None);
        assert_eq!(Role::Sent.imap_attribute(), Some("\\Sent"));
    }
}

/// A user's verdict on a message, waiting to train their spam classifier:
/// written by the Store operation that moved it into or out of Junk or
/// gave it `$Junk` / `$NotJunk`, whichever protocol asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainRequest {
    pub seq: i64,
    pub account_id: AccountId,
    pub email_id: EmailId,
    /// Spam (true) or not spam.
    pub spam: bool,
}

/// What an account's classifier knows about some tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BayesCounts {
    /// Messages trained as spam and as not spam.
    pub spam_messages: u64,
    pub ham_messages: u64,
    /// `(token, times in spam, times in ham)` for the asked tokens seen.
    pub tokens: Vec<(u64, u64, u64)>,
}

/// An account's classifier in numbers (`tern spam stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpamStats {
    pub spam_messages: u64,
    pub ham_messages: u64,
    pub tokens: u64,
    /// Training events of the last 30 days, and how many of them the
    /// filter had already judged the same way (the rest are its mistakes
    /// the user corrected).
    pub recent_trained: u64,
    pub recent_agreed: u64,
}

/// Greylisting's answer for a (client network, sender, recipient) triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreylistVerdict {
    /// Known, or waited long enough: accept.
    Pass,
    /// New or too soon: try again in this many seconds.
    Wait(i64),
}
