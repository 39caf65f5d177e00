//! The Store interface: everything a protocol crate may ask of storage,
//! expressed as domain operations. No SQL, no backend type and no wire
//! format appears here, so SMTP, IMAP, POP3, JMAP, ActiveSync and DAV all
//! speak to SQLite and PostgreSQL alike.
//!
//! Guarantees every backend gives (and `conformance` checks):
//! - a write returns only once it is durable: after `deliver` or `append`
//!   returns, a crash loses nothing;
//! - every change to an account takes the account's next modseq and leaves a
//!   journal row; expunges leave tombstones;
//! - subscribers of the notification hub are woken after the commit, never
//!   before.
//!
//! The interface is split into facets a reader can hold in mind, each an
//! object-safe trait; [`Store`] is all of them together, and the binary
//! picks one backend and hands out `Arc<dyn Store>`. Callers bring the
//! facets into scope with `use tern_store::prelude::*`.

use crate::error::Result;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::types::*;
use async_trait::async_trait;
use tokio::sync::watch;

/// The directory: domains, accounts and aliases.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn add_domain(&self, name: &str) -> Result<Domain>;
    async fn list_domains(&self) -> Result<Vec<Domain>>;
    /// Refuses while accounts of the domain exist; removes its aliases.
    async fn remove_domain(&self, name: &str) -> Result<()>;
    /// Creates the account with the default mailboxes and their roles.
    async fn create_account(&self, account: NewAccount) -> Result<Account>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Looks an account up by its address, case-insensitively.
    async fn account_by_address(&self, address: &str) -> Result<Option<Account>>;
    async fn account(&self, id: AccountId) -> Result<Account>;
    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()>;
    async fn set_quota(&self, address: &str, quota_bytes: Option<u64>) -> Result<()>;
    /// Removes the account and all its mail.
    async fn remove_account(&self, address: &str) -> Result<()>;
    /// Creates or replaces an alias (`local@domain` or `@domain`).
    async fn set_alias(&self, alias: Alias) -> Result<()>;
    async fn list_aliases(&self) -> Result<Vec<Alias>>;
    async fn alias(&self, address: &str) -> Result<Option<Alias>>;
    async fn remove_alias(&self, address: &str) -> Result<()>;
    /// Stores a DKIM key; Conflict if the domain has one by that selector.
    async fn add_dkim_key(&self, key: DkimKey) -> Result<()>;
    /// The domain's DKIM keys, oldest first.
    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>>;
    /// A named setting of the account (e.g. its vacation response, JSON).
    async fn account_setting(&self, account: AccountId, name: &str) -> Result<Option<String>>;
    /// Sets (or with `None` removes) a named setting of the account.
    async fn set_account_setting(
        &self,
        account: AccountId,
        name: &str,
        value: Option<&str>,
    ) -> Result<()>;
    /// The account's settings whose names start with `prefix`, by name.
    async fn account_settings_with_prefix(
        &self,
        account: AccountId,
        prefix: &str,
    ) -> Result<Vec<(String, String)>>;
    /// Whether an automatic reply from the account to `correspondent` is
    /// due at `now` (none sent in the last `period` seconds); a due one is
    /// recorded as sent in the same write, so two deliveries at once send
    /// one reply.
    async fn auto_reply_due(
        &self,
        account: AccountId,
        correspondent: &str,
        now: i64,
        period: i64,
    ) -> Result<bool>;
}

/// Mailboxes: the folders of an account and their IMAP bookkeeping.
#[async_trait]
pub trait MailboxStore: Send + Sync {
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>>;
    async fn mailbox(&self, account: AccountId, id: MailboxId) -> Result<Mailbox>;
    async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>>;
    async fn mailbox_by_role(&self, account: AccountId, role: Role) -> Result<Option<Mailbox>>;
    /// Creates a mailbox; missing parents (`a` for `a/b`) are created too.
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        role: Option<Role>,
    ) -> Result<Mailbox>;
    /// Renames a mailbox and every child under it (`a/x` follows `a`).
    /// Renaming INBOX moves its messages into a new mailbox instead and
    /// leaves INBOX empty (RFC 9051 §6.3.6).
    async fn rename_mailbox(&self, account: AccountId, id: MailboxId, new_name: &str)
        -> Result<()>;
    /// Deletes a mailbox and its messages (tombstones for each). Refuses
    /// INBOX and mailboxes with children.
    async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()>;
    async fn subscribe_mailbox(&self, account: AccountId, id: MailboxId, on: bool) -> Result<()>;
    /// The account's subscribed names, in name order; a subscription
    /// outlives the mailbox's DELETE (RFC 9051 §6.3.4, §6.3.7).
    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>>;
    /// Subscribes or unsubscribes a name, whether a mailbox has it or not;
    /// false when it already was so.
    async fn set_subscription(&self, account: AccountId, name: &str, on: bool) -> Result<bool>;
    async fn mailbox_counts(&self, account: AccountId, id: MailboxId) -> Result<MailboxCounts>;
    /// Threads with an email in the mailbox, and those of them with an
    /// email there without `\Seen` (JMAP `totalThreads`, `unreadThreads`).
    async fn mailbox_thread_counts(&self, account: AccountId, id: MailboxId) -> Result<(u32, u32)>;
    /// Records that IMAP sessions claimed the mailbox's messages below
    /// `upto` as \Recent (RFC 3501 §2.3.2): `first_recent_uid` rises to
    /// it, never falls.
    async fn mark_recent_claimed(&self, account: AccountId, id: MailboxId, upto: Uid)
        -> Result<()>;
}

/// Messages as mailboxes hold them, by (mailbox, UID): delivery, IMAP
/// APPEND, FETCH, STORE, COPY, MOVE, EXPUNGE, SEARCH and the quota.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores one message for every target in one durable commit; the blob
    /// is written once. One result per target, in order: a recipient over
    /// quota fails alone.
    async fn deliver(&self, delivery: Delivery) -> Result<Vec<Result<Delivered>>> {
        Ok(self.accept(delivery, None).await?.local)
    }
    /// What SMTP does with a message: deliver to the local targets and queue
    /// it for the remote recipients, all in one durable commit, so a 250
    /// never covers half a message. A queue entry that cannot be written
    /// fails the whole call. A local target over quota fails alone; when the
    /// message is accepted anyway (another target took it, or it has remote
    /// recipients) and `outbound` is given, that target's address is queued
    /// in the same commit ([`Accepted::deferred`]), so the queue retries.
    async fn accept(&self, delivery: Delivery, outbound: Option<Outbound>) -> Result<Accepted>;
    /// IMAP APPEND / JMAP Email/import: one message into one mailbox (a
    /// delivery with one target, in every backend).
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
                sender_copy: false,
            }],
            received_at,
        };
        let mut results = self.deliver(delivery).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(crate::StoreError::Invalid("nothing was appended".into())))
    }
    /// Every message of the mailbox in UID order (the IMAP SELECT snapshot).
    async fn list_messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageEntry>>;
    /// The messages with the given UIDs that exist, in UID order.
    async fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageEntry>>;
    async fn email(&self, account: AccountId, id: EmailId) -> Result<Email>;
    /// Several emails in one round trip; `None` for any that is gone.
    async fn emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<Option<Email>>>;
    /// Changes keywords of the given UIDs. With `unchanged_since`, messages
    /// whose modseq is higher are left alone and reported (RFC 7162 §3.1.3).
    async fn set_keywords(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: KeywordOp,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<KeywordsResult>;
    /// Copies messages to another mailbox as new emails with the same
    /// content and keywords (IMAP COPY).
    async fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult>;
    /// Moves messages: same emails, new UIDs in `to`, tombstones in `from`
    /// (IMAP MOVE, RFC 6851).
    async fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult>;
    /// Removes messages from a mailbox; returns the expunged UIDs, ascending.
    async fn expunge(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        filter: ExpungeFilter,
    ) -> Result<Vec<Uid>>;
    async fn quota(&self, account: AccountId) -> Result<Quota>;
    /// UIDs of the mailbox's messages matching `key`, ascending.
    async fn search(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        key: &SearchKey,
    ) -> Result<Vec<Uid>>;
}

/// Emails by id, account-wide (JMAP, ActiveSync, the webmail).
#[async_trait]
pub trait EmailStore: Send + Sync {
    /// Emails with the mailboxes holding them; `None` for any that is not
    /// (or no longer) an email of the account.
    async fn email_records(
        &self,
        account: AccountId,
        ids: &[EmailId],
    ) -> Result<Vec<Option<EmailRecord>>>;
    /// Changes the keywords of emails by id, in every mailbox holding them.
    async fn set_email_keywords(
        &self,
        account: AccountId,
        ids: &[EmailId],
        op: KeywordOp,
        keywords: &[String],
    ) -> Result<EmailsChanged>;
    /// Puts an email in exactly these mailboxes (JMAP `mailboxIds`): kept
    /// memberships keep their UID, new ones get the mailbox's next UID,
    /// removed ones leave tombstones. Refuses an empty set.
    async fn set_email_mailboxes(
        &self,
        account: AccountId,
        id: EmailId,
        mailboxes: &[MailboxId],
    ) -> Result<ModSeq>;
    /// Destroys emails: out of every mailbox (tombstones), their quota and
    /// their share of the blob released.
    async fn destroy_emails(&self, account: AccountId, ids: &[EmailId]) -> Result<EmailsChanged>;
    /// One sorted page of the account's emails matching `query`.
    async fn query_emails(
        &self,
        account: AccountId,
        query: &EmailQuery,
    ) -> Result<EmailQueryResult>;
    /// The account's emails whose stored message is `blob` (JMAP
    /// `Blob/lookup`, RFC 9404).
    async fn emails_with_blob(&self, account: AccountId, blob: &BlobId) -> Result<Vec<EmailId>>;
    /// Records a JMAP EmailSubmission (its `id` is ignored); its id.
    async fn record_submission(
        &self,
        account: AccountId,
        submission: &SubmissionRecord,
    ) -> Result<SubmissionId>;
    /// The account's submissions, oldest first: all, or those asked for.
    async fn submissions(
        &self,
        account: AccountId,
        ids: Option<&[SubmissionId]>,
    ) -> Result<Vec<SubmissionRecord>>;
    /// Cancels a submission sent later, if the queue has not started on
    /// it; false when it is too late (or there is nothing to cancel).
    async fn cancel_submission(&self, account: AccountId, id: SubmissionId) -> Result<bool>;
    /// Forgets submissions (the message sent is not affected); the ids
    /// that were the account's.
    async fn destroy_submissions(
        &self,
        account: AccountId,
        ids: &[SubmissionId],
    ) -> Result<Vec<SubmissionId>>;
}

/// Message bytes, read whole or by range, checked against the account
/// that asks; and uploads, which hold bytes no email owns yet.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` for the account (JMAP upload, a webmail attachment)
    /// until `expires_at` (unix seconds): the account may read them, and an
    /// email made from them keeps them past the expiry.
    async fn upload_blob(
        &self,
        account: AccountId,
        bytes: Vec<u8>,
        expires_at: i64,
    ) -> Result<BlobId>;
    /// Drops uploads expired at `now`, freeing bytes nothing else holds;
    /// the number dropped.
    async fn expire_uploads(&self, now: i64) -> Result<u64>;
    /// The raw message bytes.
    async fn read_blob(&self, account: AccountId, blob_id: &BlobId) -> Result<Vec<u8>>;
    /// Several whole messages in one round trip (`None` for any that is
    /// gone), for a client that will read them one after another.
    async fn read_blobs(
        &self,
        account: AccountId,
        blob_ids: &[BlobId],
    ) -> Result<Vec<Option<Vec<u8>>>>;
    /// At most `len` bytes of the raw message from `offset` (fewer at its
    /// end, none past it), so that large messages stream in bounded memory.
    async fn read_blob_range(
        &self,
        account: AccountId,
        blob_id: &BlobId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>>;
}

/// The outbound queue: entries written with deliveries, claimed by
/// workers with a lease, attempts recorded per recipient.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Queues an already stored blob for more recipients (a message
    /// re-sent, a forward of an upload): one of `account`'s emails or
    /// uploads must hold the blob. Fails with NotFound otherwise, or if
    /// the blob is gone.
    async fn enqueue_blob(
        &self,
        account: AccountId,
        blob_id: &BlobId,
        outbound: Outbound,
    ) -> Result<QueueId>;
    /// Every queued message with its recipients, oldest first.
    async fn queue_list(&self) -> Result<Vec<QueuedMessage>>;
    /// Claims up to `limit` messages with a pending recipient due at `now`
    /// (unix seconds) that nobody holds, or whose lease has run out, and
    /// leases them for `lease_secs`. Two claimers never hold the same
    /// message at once, whatever process or node they run in; a worker
    /// that dies leaves its messages to the next claim after the lease.
    /// Each claim lists only the recipients pending and due at `now`.
    async fn queue_claim(&self, now: i64, lease_secs: i64, limit: usize)
        -> Result<Vec<QueueClaim>>;
    /// Records attempts durably for recipients of a claimed message and
    /// releases the lease. When no recipient is left pending the entry is
    /// removed (its blob freed if nothing else holds it). Fails with
    /// [`crate::StoreError::LeaseLost`] if `lease` is no longer the
    /// message's: another worker has it now, and its record wins.
    async fn queue_record(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<QueueState>;
    /// Records some recipients' attempts durably while the lease is kept:
    /// a worker delivering to several destinations records each as soon
    /// as its transaction ends, so a crash before the rest never sends
    /// these again. The lease is released by the final `queue_record`.
    async fn queue_record_part(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<()>;
    /// At most `len` bytes of a queued message from `offset`, for the
    /// worker that sends it (no email need own the bytes).
    async fn queue_read(&self, id: QueueId, offset: u64, len: usize) -> Result<Vec<u8>>;
    /// Removes a queued message and its hold on the blob, whatever its
    /// recipients' state (an administrator's decision).
    async fn queue_remove(&self, id: QueueId) -> Result<()>;
    /// Makes the pending recipients of `id` (of every message with `None`)
    /// due now; returns how many.
    async fn queue_flush(&self, id: Option<QueueId>) -> Result<usize>;
    /// How many times the queue was flushed: a worker that sees it change
    /// forgets which destinations it held as down.
    async fn queue_flush_count(&self) -> Result<u64>;
    /// Holds a queued message (no claim takes it) or releases it; NotFound
    /// if there is none.
    async fn queue_hold(&self, id: QueueId, on: bool) -> Result<()>;
    /// Frees every lease: for a server starting on a store only it uses
    /// (the embedded store, one server per data directory), whose
    /// previous process died holding leases. How many were freed.
    async fn queue_release_leases(&self) -> Result<usize>;
    /// Removes entries whose every recipient was recorded by a worker
    /// that died before its final record, once their lease ran out (and
    /// at `queue_release_leases`). How many.
    async fn queue_sweep(&self, now: i64) -> Result<usize>;
    /// Makes every pending recipient in `domain` due no sooner than
    /// `until` (unix seconds), without counting an attempt: a destination
    /// found dead costs nothing until then. How many were moved.
    async fn queue_postpone_domain(&self, domain: &str, until: i64) -> Result<usize>;
    /// Adds TLS session counts to the report rows (summing with what is
    /// there).
    async fn tls_report_add(&self, rows: Vec<TlsReportRow>) -> Result<()>;
    /// Report rows from `since_day` (`YYYY-MM-DD`) on, by day and domain.
    async fn tls_report_list(&self, since_day: &str) -> Result<Vec<TlsReportRow>>;
    /// Notes that the sender of `id` has been told of its delay.
    async fn queue_delay_notified(&self, id: QueueId) -> Result<()>;
}

/// The spam filter's memory: each account's Bayesian classifier and the
/// greylisting triplets.
#[async_trait]
pub trait SpamStore: Send + Sync {
    /// The account's trained message counts, and what it knows of `tokens`.
    async fn bayes_counts(&self, account: AccountId, tokens: &[u64]) -> Result<BayesCounts>;
    /// Training requests waiting, oldest first.
    async fn bayes_pending(&self, limit: usize) -> Result<Vec<TrainRequest>>;
    /// Applies `request` with the message's `tokens` (untraining an earlier
    /// opposite verdict on the same email; the same verdict again changes
    /// nothing) and removes it; `None` drops a request whose email is gone.
    /// `agreed`: the filter had judged the message the same way.
    async fn bayes_train(
        &self,
        request: &TrainRequest,
        tokens: Option<Vec<u64>>,
        agreed: bool,
    ) -> Result<()>;
    async fn spam_stats(&self, account: AccountId) -> Result<SpamStats>;
    /// Greylisting (`[spam] greylisting`): records the triplet and says
    /// whether it may pass at `now`. A triplet passes once `delay` seconds
    /// after it was first seen, and from then on for `ttl` seconds after
    /// each pass (auto-whitelisting of senders that retry).
    async fn greylist(
        &self,
        triplet: (&str, &str, &str),
        now: i64,
        delay: i64,
        ttl: i64,
    ) -> Result<GreylistVerdict>;
}

/// The change journal and notifications: what changed since a modseq,
/// retention, and subscriptions that wake on commits by any process.
#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// The account's highest modseq.
    async fn highest_modseq(&self, account: AccountId) -> Result<ModSeq>;
    /// What changed in a mailbox after `since`: current entries with a
    /// higher modseq, and tombstones.
    async fn mailbox_changes(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<MailboxChanges>;
    /// Journal rows of the account after `since`, ascending, at most `limit`.
    /// [`crate::StoreError::ChangesExpired`] when `since` is below the
    /// retention floor (JMAP `cannotCalculateChanges`).
    async fn account_changes(
        &self,
        account: AccountId,
        since: ModSeq,
        limit: usize,
    ) -> Result<Vec<Change>>;
    /// Prunes journal rows written before `before` (unix seconds), raising
    /// each account's floor to the highest modseq pruned; the number of rows
    /// removed. Runs in bounded steps, so it never holds writers for long.
    async fn prune_journal(&self, before: i64) -> Result<u64>;
    /// Wakes the receiver after each commit that changes the account.
    ///
    /// The value is the account's highest modseq as of the latest commit
    /// announced, and it rises after every commit that changes the account,
    /// once that commit is visible to reads. So a session that noted the
    /// value, then read, needs to read again only when the value moves.
    /// Every write operation takes exactly the next modseq of each account
    /// it changes (they are consecutive): a value one above the noted one
    /// that equals the session's own write's modseq means nobody else
    /// wrote in between.
    fn subscribe(&self, account: AccountId) -> watch::Receiver<ModSeq>;
}

/// What the nodes sharing one store must agree on besides the mail: who
/// holds a POP3 maildrop, and how many logins a client address failed
/// lately (so N nodes do not give a guesser N times the tries).
///
/// The defaults are for a store one server uses alone (SQLite, one server
/// per data directory): that server's own in-memory lock and limiter see
/// everything, so there is nothing to share and nothing to cost.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Whether other servers (nodes) may be using this store at the same
    /// time: then what one finds held (a queue lease) may be another's
    /// live work, never a dead predecessor's to take back at start.
    fn shared_by_nodes(&self) -> bool {
        false
    }
    /// Takes (or, for the same `holder`, renews) the POP3 maildrop lock of
    /// the account until `expires_at` (unix seconds); false while another
    /// holder's lock is unexpired at `now`. A node that dies holding one
    /// leaves it to expire.
    async fn maildrop_lock(
        &self,
        _account: AccountId,
        _holder: &str,
        _now: i64,
        _expires_at: i64,
    ) -> Result<bool> {
        Ok(true)
    }
    /// Releases the lock if `holder` has it.
    async fn maildrop_unlock(&self, _account: AccountId, _holder: &str) -> Result<()> {
        Ok(())
    }
    /// Failed logins from `client` (an address key: an IPv4 address, an
    /// IPv6 /64) recorded by any node at or after `since`; with `upto`,
    /// only those recorded no later than that record (see
    /// [`ClusterStore::record_login_failure`]).
    async fn login_failures(&self, _client: &str, _since: i64, _upto: Option<i64>) -> Result<u32> {
        Ok(0)
    }
    /// Records a failed login (or one in flight) from `client` at `now`,
    /// forgetting its failures before `since`; the record's number, which
    /// orders it among every node's.
    async fn record_login_failure(&self, _client: &str, _now: i64, _since: i64) -> Result<i64> {
        Ok(0)
    }
    /// Forgets the record numbered `record` (a login counted as failed
    /// while in flight, so that parallel guesses on several nodes count at
    /// once, which then succeeded).
    async fn forget_login_failure(&self, _client: &str, _record: i64) -> Result<()> {
        Ok(())
    }
    /// Forgets every failure of `client` (`tern security unblock`).
    async fn clear_login_failures(&self, _client: &str) -> Result<()> {
        Ok(())
    }
    /// Clients with at least `min` failures at or after `since`, with their
    /// count and their latest failure (`tern security blocked`).
    async fn clients_with_login_failures(
        &self,
        _since: i64,
        _min: u32,
    ) -> Result<Vec<(String, u32, i64)>> {
        Ok(Vec::new())
    }
}

/// Storage for every protocol: every facet, and the end of its life.
/// Object-safe: the binary picks one backend and hands out `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    DirectoryStore
    + MailboxStore
    + MessageStore
    + EmailStore
    + BlobStore
    + QueueStore
    + ChangeStore
    + SpamStore
    + ClusterStore
    + 'static
{
    /// Finishes pending writes and closes the store cleanly; later calls fail
    /// with [`crate::StoreError::Closed`].
    async fn close(&self) -> Result<()>;
}
