//! Messages in PostgreSQL: keywords, copy, move, expunge and the quota
//! (delivery is in `delivery.rs`, reading in `listing.rs`), the same rows
//! and the same answers as the SQLite backend's `messages.rs`.
//!
//! One email row per stored message copy; its content is a blob shared by
//! every email with the same bytes. Each (mailbox, email) membership has
//! its own UID and modseq. Every change stamps the operation's modseq on
//! the rows it touches, on the mailbox's `highest_modseq`, and in the
//! journal.
//!
//! Concurrency: every operation that reads before it writes (which
//! messages are `\Deleted`, what a keyword change makes of the current
//! keywords) first locks its account's row ([`hold_accounts`]), so it reads
//! what the previous writer of the account committed, on whatever node,
//! and nobody writes the account between its read and its commit. An
//! operation that changes nothing takes no modseq.

use super::listing;
use super::{blobs, journal, mailboxes, spam, PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::search::SearchKey;
use crate::sqlite::messages::{apply_keywords, encode_keywords, no_messages_in};
use crate::store::*;
use crate::types::*;
use async_trait::async_trait;

/// Locks the accounts' rows until the commit, in ascending id order (so
/// two operations on the same accounts never deadlock), without taking a
/// modseq: an operation that turns out to change nothing leaves no trace.
/// `NO KEY`: the strength the modseq's UPDATE takes anyway, which excludes
/// every other writer of the account but not a foreign-key check on it.
/// Accounts that do not exist are skipped (their operation fails later).
pub(super) async fn hold_accounts(tx: &Tx<'_>, accounts: &[AccountId]) -> Result<()> {
    let mut ids: Vec<i64> = accounts.iter().map(|a| a.0).collect();
    ids.sort_unstable();
    ids.dedup();
    tx.query(
        "SELECT id FROM account WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// Counts `size` more bytes against the account's quota, or refuses.
pub(super) async fn charge_quota(tx: &Tx<'_>, account: AccountId, size: u64) -> Result<()> {
    let size = size.min(i64::MAX as u64) as i64;
    let charged = tx
        .execute(
            "UPDATE account SET used_bytes = used_bytes + $2
              WHERE id = $1
                AND (quota_bytes IS NULL OR greatest(used_bytes, 0) + $2 <= greatest(quota_bytes, 0))",
            &[&account.0, &size],
        )
        .await?;
    if charged == 1 {
        return Ok(());
    }
    let row = tx
        .query_opt(
            "SELECT used_bytes, quota_bytes FROM account WHERE id = $1",
            &[&account.0],
        )
        .await?
        .ok_or_else(|| StoreError::not_found("account", account))?;
    Err(StoreError::OverQuota {
        used: row.get::<_, i64>(0).max(0) as u64,
        limit: row.get::<_, Option<i64>>(1).unwrap_or(0).max(0) as u64,
        needed: size as u64,
    })
}

/// Journals that an email joined or left `thread` (JMAP Thread/changes).
pub(super) async fn thread_changed(
    tx: &Tx<'_>,
    account: AccountId,
    thread: ThreadId,
    modseq: ModSeq,
) -> Result<()> {
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::ThreadChanged { thread_id: thread },
    )
    .await
}

/// Adds an email to a mailbox under the mailbox's next UID. The caller
/// holds the account's modseq, whose row lock orders UIDs as commits.
pub(super) async fn add_membership(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    email: EmailId,
    modseq: ModSeq,
) -> Result<Uid> {
    let row = tx
        .query_opt(
            "WITH u AS (UPDATE mailbox SET uid_next = uid_next + 1,
                                           highest_modseq = greatest(highest_modseq, $1)
                         WHERE id = $2 AND account_id = $3
                        RETURNING uid_next - 1 AS uid)
             INSERT INTO mailbox_email (mailbox_id, uid, email_id, modseq, saved_at)
             SELECT $2::bigint, u.uid, $4::bigint, $1::bigint, $5::bigint FROM u
             RETURNING uid",
            &[
                &(modseq.0 as i64),
                &mailbox.0,
                &account.0,
                &email.0,
                &super::now(),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::not_found("mailbox", mailbox))?;
    let uid = listing::uid_of(row.get(0));
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::EmailAdded {
            mailbox_id: mailbox,
            uid,
            email_id: email,
        },
    )
    .await?;
    Ok(uid)
}

/// Takes an email out of a mailbox, leaving a tombstone.
pub(super) async fn remove_membership(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    uid: Uid,
    email: EmailId,
    modseq: ModSeq,
) -> Result<()> {
    tx.execute(
        "WITH d AS (DELETE FROM mailbox_email WHERE mailbox_id = $1 AND uid = $2)
         UPDATE mailbox SET highest_modseq = greatest(highest_modseq, $3) WHERE id = $1",
        &[&mailbox.0, &i64::from(uid.0), &(modseq.0 as i64)],
    )
    .await?;
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::EmailExpunged {
            mailbox_id: mailbox,
            uid,
            email_id: email,
        },
    )
    .await
}

/// Stores an email's new keywords under `modseq`. Keywords belong to the
/// email: every mailbox holding it sees the change, in its modseq and its
/// journal.
pub(super) async fn write_keywords(
    tx: &Tx<'_>,
    account: AccountId,
    email: EmailId,
    old: &[String],
    new: &[String],
    modseq: ModSeq,
) -> Result<()> {
    spam::keywords_changed(tx, account, email, old, new).await?;
    let touched = tx
        .query(
            "WITH k AS (UPDATE email SET keywords = $1 WHERE id = $2),
                  m AS (UPDATE mailbox_email SET modseq = $3 WHERE email_id = $2
                        RETURNING mailbox_id, uid),
                  b AS (UPDATE mailbox SET highest_modseq = greatest(highest_modseq, $3)
                         WHERE id IN (SELECT mailbox_id FROM m))
             SELECT mailbox_id, uid FROM m ORDER BY mailbox_id, uid",
            &[&encode_keywords(new), &email.0, &(modseq.0 as i64)],
        )
        .await?;
    for r in &touched {
        journal::record(
            tx,
            account,
            modseq,
            &ChangeKind::KeywordsChanged {
                mailbox_id: MailboxId(r.get(0)),
                uid: listing::uid_of(r.get(1)),
                email_id: email,
            },
        )
        .await?;
    }
    Ok(())
}

async fn set_keywords(
    tx: &mut Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    uids: &[Uid],
    op: KeywordOp,
    keywords: &[String],
    unchanged_since: Option<ModSeq>,
) -> Result<KeywordsResult> {
    keywords.iter().try_for_each(|k| validate_keyword(k))?;
    hold_accounts(tx, &[account]).await?;
    let mut result = KeywordsResult::default();
    for entry in listing::list(tx, account, mailbox, Some(uids)).await? {
        if unchanged_since.is_some_and(|u| entry.modseq > u) {
            result.modified.push(entry.uid);
            continue;
        }
        let new = apply_keywords(&entry.keywords, op, keywords);
        if new == entry.keywords {
            continue;
        }
        let modseq = tx.modseq(account).await?;
        write_keywords(tx, account, entry.email_id, &entry.keywords, &new, modseq).await?;
        result.prior_modseq.push(entry.modseq);
        result.updated.push(MessageEntry {
            keywords: new,
            modseq,
            ..entry
        });
    }
    Ok(result)
}

/// Copies (`is_move` false: new emails, same blob) or moves (the same
/// emails, new memberships) messages to another mailbox inside the
/// caller's transaction (IMAP COPY and MOVE; mailboxes.rs renaming INBOX).
pub async fn copy_in(
    tx: &mut Tx<'_>,
    account: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
    is_move: bool,
) -> Result<CopyResult> {
    hold_accounts(tx, &[account]).await?;
    let target = mailboxes::get(tx, account, to).await?;
    no_messages_in(&target)?;
    // A MOVE into the same mailbox is allowed (RFC 6851 does not forbid
    // it): the messages get new UIDs there, as Dovecot gives them.
    let entries = listing::list(tx, account, from, Some(uids)).await?;
    if entries.is_empty() {
        // Nothing to do takes no modseq and wakes nobody.
        return Ok(CopyResult {
            uid_validity: target.uid_validity,
            mapping: Vec::new(),
            modseq: journal::highest_modseq(tx, account).await?,
        });
    }
    let mut mapping = Vec::with_capacity(entries.len());
    let modseq = tx.modseq(account).await?;
    // Into or out of Junk: the user's verdict, for their spam classifier.
    let source_role = mailboxes::get(tx, account, from).await?.role;
    let verdict = crate::sqlite::spam::verdict_of_move(source_role, target.role);
    for entry in entries {
        let (email, dest_uid) = if is_move {
            remove_membership(tx, account, from, entry.uid, entry.email_id, modseq).await?;
            let uid = add_membership(tx, account, to, entry.email_id, modseq).await?;
            (entry.email_id, uid)
        } else {
            let copy = duplicate_email(tx, account, entry.email_id, entry.size, modseq).await?;
            (copy, add_membership(tx, account, to, copy, modseq).await?)
        };
        if let Some(spam) = verdict {
            spam::request_training(tx, account, email, spam).await?;
        }
        mapping.push((entry.uid, dest_uid));
    }
    Ok(CopyResult {
        uid_validity: target.uid_validity,
        mapping,
        modseq,
    })
}

/// A new email row with the same content, parse, search text and keywords
/// as `email`, charged to the quota and holding the blob once more.
async fn duplicate_email(
    tx: &Tx<'_>,
    account: AccountId,
    email: EmailId,
    size: u64,
    modseq: ModSeq,
) -> Result<EmailId> {
    charge_quota(tx, account, size).await?;
    let row = tx
        .query_opt(
            "WITH e AS (INSERT INTO email (account_id, thread_id, blob_hash, size, received_at,
                                           sent_at, keywords, message_id, crlf_size)
                        SELECT account_id, thread_id, blob_hash, size, received_at, sent_at,
                               keywords, message_id, crlf_size
                          FROM email WHERE id = $1 AND account_id = $2
                        RETURNING id, thread_id, blob_hash),
                  m AS (INSERT INTO email_meta (email_id, envelope, structure, summary)
                        SELECT e.id, p.envelope, p.structure, p.summary
                          FROM e, email_meta p WHERE p.email_id = $1),
                  h AS (INSERT INTO email_header (account_id, email_id, header_raw)
                        SELECT $2::bigint, e.id, x.header_raw
                          FROM e, email_header x WHERE x.account_id = $2 AND x.email_id = $1),
                  t AS (INSERT INTO email_text (email_id, account_id, headers, body)
                        SELECT e.id, $2::bigint, x.headers, x.body
                          FROM e, email_text x WHERE x.email_id = $1),
                  b AS (UPDATE blob SET refs = refs + 1 WHERE hash = (SELECT blob_hash FROM e))
             SELECT id, thread_id FROM e",
            &[&email.0, &account.0],
        )
        .await?
        .ok_or_else(|| StoreError::not_found("email", email))?;
    let copy = EmailId(row.get(0));
    thread_changed(tx, account, ThreadId(row.get(1)), modseq).await?;
    Ok(copy)
}

/// Deletes an email that no mailbox holds any more, its parse and search
/// text, its share of the blob and its quota charge.
pub(super) async fn collect_email(
    tx: &mut Tx<'_>,
    account: AccountId,
    email: EmailId,
) -> Result<()> {
    let Some(row) = tx
        .query_opt(
            "DELETE FROM email e WHERE e.id = $1 AND e.account_id = $2
                AND NOT EXISTS (SELECT 1 FROM mailbox_email m WHERE m.email_id = $1)
             RETURNING blob_hash, size, thread_id",
            &[&email.0, &account.0],
        )
        .await?
    else {
        return Ok(());
    };
    let hash = BlobId(row.get(0));
    let size: i64 = row.get(1);
    let modseq = tx.modseq(account).await?;
    thread_changed(tx, account, ThreadId(row.get(2)), modseq).await?;
    tx.execute(
        "WITH h AS (DELETE FROM email_header WHERE account_id = $1 AND email_id = $2)
         UPDATE account SET used_bytes = greatest(0, used_bytes - $3) WHERE id = $1",
        &[&account.0, &email.0, &size],
    )
    .await?;
    blobs::release(tx, &hash, 1).await
}

/// Removes messages from a mailbox inside the caller's transaction (the
/// write side of `MessageStore::expunge`; mailboxes.rs deletes a mailbox
/// with it). The expunged UIDs, ascending.
pub async fn expunge_in(
    tx: &mut Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    filter: ExpungeFilter,
) -> Result<Vec<Uid>> {
    hold_accounts(tx, &[account]).await?;
    let doomed: Vec<(Uid, EmailId)> = match &filter {
        ExpungeFilter::Deleted => deleted_messages(tx, account, mailbox).await?,
        ExpungeFilter::DeletedAmong(uids) | ExpungeFilter::Uids(uids) => {
            let only_deleted = matches!(filter, ExpungeFilter::DeletedAmong(_));
            listing::list(tx, account, mailbox, Some(uids))
                .await?
                .into_iter()
                .filter(|e| !only_deleted || e.has_keyword("\\Deleted"))
                .map(|e| (e.uid, e.email_id))
                .collect()
        }
    };
    if doomed.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = tx.modseq(account).await?;
    let mut expunged = Vec::with_capacity(doomed.len());
    for (uid, email_id) in doomed {
        remove_membership(tx, account, mailbox, uid, email_id, modseq).await?;
        collect_email(tx, account, email_id).await?;
        expunged.push(uid);
    }
    Ok(expunged)
}

/// The messages of a mailbox flagged `\Deleted`, found in SQL. Keywords
/// keep the case they were stored with, so the test ignores case as
/// [`MessageEntry::has_keyword`] does.
async fn deleted_messages(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
) -> Result<Vec<(Uid, EmailId)>> {
    mailboxes::get(tx, account, mailbox).await?;
    let rows = tx
        .query(
            "SELECT m.uid, m.email_id FROM mailbox_email m
               JOIN email e ON e.id = m.email_id AND e.account_id = $1
              WHERE m.mailbox_id = $2 AND strpos(lower(e.keywords), $3) > 0
              ORDER BY m.uid",
            &[&account.0, &mailbox.0, &" \\deleted "],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (listing::uid_of(r.get(0)), EmailId(r.get(1))))
        .collect())
}

async fn quota(tx: &Tx<'_>, account: AccountId) -> Result<Quota> {
    let row = tx
        .query_opt(
            "SELECT used_bytes, quota_bytes FROM account WHERE id = $1",
            &[&account.0],
        )
        .await?
        .ok_or_else(|| StoreError::not_found("account", account))?;
    Ok(Quota {
        used_bytes: row.get::<_, i64>(0).max(0) as u64,
        limit_bytes: row.get::<_, Option<i64>>(1).map(|q| q.max(0) as u64),
    })
}

#[async_trait]
impl MessageStore for PgStore {
    async fn accept(&self, delivery: Delivery, outbound: Option<Outbound>) -> Result<Accepted> {
        super::delivery::accept(self, delivery, outbound).await
    }

    async fn list_messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageEntry>> {
        self.read(move |tx| Box::pin(listing::list(tx, account, mailbox, None)))
            .await
    }

    async fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageEntry>> {
        self.read(move |tx| Box::pin(listing::list(tx, account, mailbox, Some(uids))))
            .await
    }

    async fn email(&self, account: AccountId, id: EmailId) -> Result<Email> {
        self.read(move |tx| Box::pin(listing::email(tx, account, id)))
            .await
    }

    async fn emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<Option<Email>>> {
        self.read(move |tx| Box::pin(listing::emails(tx, account, ids)))
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
        self.write(move |tx| {
            Box::pin(set_keywords(
                tx,
                account,
                mailbox,
                uids,
                op,
                keywords,
                unchanged_since,
            ))
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
        self.write(move |tx| Box::pin(copy_in(tx, account, from, uids, to, false)))
            .await
    }

    async fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        self.write(move |tx| Box::pin(copy_in(tx, account, from, uids, to, true)))
            .await
    }

    async fn expunge(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        filter: ExpungeFilter,
    ) -> Result<Vec<Uid>> {
        let filter = &filter;
        self.write(move |tx| Box::pin(expunge_in(tx, account, mailbox, filter.clone())))
            .await
    }

    async fn quota(&self, account: AccountId) -> Result<Quota> {
        self.read_one(move |tx| Box::pin(quota(tx, account))).await
    }

    async fn search(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        key: &SearchKey,
    ) -> Result<Vec<Uid>> {
        self.read(move |tx| Box::pin(super::search::search(tx, account, mailbox, key)))
            .await
    }
}

/// Current entries of the mailbox with a modseq above `since`, in UID
/// order (interface used by journal.rs).
pub async fn list_changed(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    since: ModSeq,
) -> Result<Vec<MessageEntry>> {
    listing::list_changed(tx, account, mailbox, since).await
}

/// Every UID of the mailbox, ascending (interface used by mailboxes.rs).
pub async fn all_uids(tx: &Tx<'_>, account: AccountId, mailbox: MailboxId) -> Result<Vec<Uid>> {
    listing::all_uids(tx, account, mailbox).await
}
