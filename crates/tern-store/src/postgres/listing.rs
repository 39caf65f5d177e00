//! Reading messages in PostgreSQL: a mailbox's listing (all of it or some
//! UIDs), what changed since a modseq, and emails with their stored parse
//! (the SQLite backend's `listing.rs`, same rows, same answers). Writes
//! live in `messages.rs` and `delivery.rs`.

use super::{mailboxes, Tx};
use crate::error::{Result, StoreError};
use crate::sqlite::messages::decode_keywords;
use crate::types::*;
use std::collections::HashMap;
use tokio_postgres::Row;

/// The columns of a [`MessageEntry`], for a query that adds its own WHERE
/// on `m` and binds the account as `$1`.
macro_rules! entries_where {
    ($condition:literal) => {
        concat!(
            "SELECT m.uid, m.email_id, e.thread_id, m.modseq, e.keywords, e.size, e.received_at,
                    e.blob_hash, coalesce(e.crlf_size, e.size), m.saved_at
               FROM mailbox_email m JOIN email e ON e.id = m.email_id AND e.account_id = $1
              WHERE ",
            $condition,
            " ORDER BY m.uid"
        )
    };
}

/// A `BIGINT` holding a UID (u32 in IMAP).
pub(super) fn uid_of(v: i64) -> Uid {
    Uid(v as u32)
}

fn entry_row(r: &Row) -> MessageEntry {
    MessageEntry {
        uid: uid_of(r.get(0)),
        email_id: EmailId(r.get(1)),
        thread_id: ThreadId(r.get(2)),
        modseq: ModSeq(r.get::<_, i64>(3).max(0) as u64),
        keywords: decode_keywords(r.get(4)),
        size: r.get::<_, i64>(5).max(0) as u64,
        received_at: r.get(6),
        blob_id: BlobId(r.get(7)),
        crlf_size: r.get::<_, i64>(8).max(0) as u64,
        saved_at: r.get(9),
    }
}

/// The mailbox's messages in UID order, all of them or those with `uids`
/// (those that exist). NotFound unless the mailbox is the account's.
pub async fn list(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    uids: Option<&[Uid]>,
) -> Result<Vec<MessageEntry>> {
    mailboxes::get(tx, account, mailbox).await?;
    let rows = match uids {
        None => {
            tx.query(
                entries_where!("m.mailbox_id = $2"),
                &[&account.0, &mailbox.0],
            )
            .await?
        }
        Some(uids) => {
            let uids: Vec<i64> = uids.iter().map(|u| i64::from(u.0)).collect();
            tx.query(
                entries_where!("m.mailbox_id = $2 AND m.uid = ANY($3)"),
                &[&account.0, &mailbox.0, &uids],
            )
            .await?
        }
    };
    Ok(rows.iter().map(entry_row).collect())
}

/// Entries whose modseq is above `since`, in UID order.
pub async fn list_changed(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    since: ModSeq,
) -> Result<Vec<MessageEntry>> {
    let since = since.0.min(i64::MAX as u64) as i64;
    let rows = tx
        .query(
            entries_where!("m.mailbox_id = $2 AND m.modseq > $3"),
            &[&account.0, &mailbox.0, &since],
        )
        .await?;
    Ok(rows.iter().map(entry_row).collect())
}

/// Every UID of the mailbox, ascending.
pub async fn all_uids(tx: &Tx<'_>, account: AccountId, mailbox: MailboxId) -> Result<Vec<Uid>> {
    mailboxes::get(tx, account, mailbox).await?;
    let rows = tx
        .query(
            "SELECT uid FROM mailbox_email WHERE mailbox_id = $1 ORDER BY uid",
            &[&mailbox.0],
        )
        .await?;
    Ok(rows.iter().map(|r| uid_of(r.get(0))).collect())
}

/// Emails of the account with their stored parse, in the order asked;
/// `None` for any that is not (or no longer) the account's.
pub async fn emails(
    tx: &Tx<'_>,
    account: AccountId,
    ids: &[EmailId],
) -> Result<Vec<Option<Email>>> {
    let wanted: Vec<i64> = ids.iter().map(|i| i.0).collect();
    let rows = tx
        .query(
            "SELECT e.id, e.thread_id, e.blob_hash, e.size, e.received_at, e.keywords,
                    p.envelope, p.structure, p.summary
               FROM email e JOIN email_meta p ON p.email_id = e.id
              WHERE e.id = ANY($1) AND e.account_id = $2",
            &[&wanted, &account.0],
        )
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in &rows {
        let id = EmailId(r.get(0));
        let decode_err =
            |e| StoreError::backend(format!("decoding the stored parse of email {id}"), e);
        let email = Email {
            id,
            account_id: account,
            thread_id: ThreadId(r.get(1)),
            blob_id: BlobId(r.get(2)),
            size: r.get::<_, i64>(3).max(0) as u64,
            received_at: r.get(4),
            keywords: decode_keywords(r.get(5)),
            envelope: serde_json::from_str(r.get(6)).map_err(decode_err)?,
            structure: serde_json::from_str(r.get(7)).map_err(decode_err)?,
            summary: serde_json::from_str(r.get(8)).map_err(decode_err)?,
        };
        found.insert(id, email);
    }
    Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
}

/// One email of the account; NotFound for anyone else's.
pub async fn email(tx: &Tx<'_>, account: AccountId, id: EmailId) -> Result<Email> {
    emails(tx, account, &[id])
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| StoreError::not_found("email", id))
}

/// Each mailbox holding the email and its UID there, by mailbox.
pub async fn memberships(tx: &Tx<'_>, email: EmailId) -> Result<Vec<(MailboxId, Uid)>> {
    let rows = tx
        .query(
            "SELECT mailbox_id, uid FROM mailbox_email WHERE email_id = $1
              ORDER BY mailbox_id, uid",
            &[&email.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (MailboxId(r.get(0)), uid_of(r.get(1))))
        .collect())
}
