//! Reading messages in SQLite: a mailbox's listing (all of it or some
//! UIDs), what changed since a modseq, and an email with its stored parse.
//! Writes live in `messages.rs`; these run on the read pool.

use super::messages::decode_keywords;
use super::{db, mailboxes};
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{named_params, params, Connection, OptionalExtension, Row};

/// The columns of a [`MessageEntry`], for a query that adds its own WHERE
/// on `m` and binds `:account`. The emails' columns come from the
/// `email_listing` index (schema v7), where an account's emails sit side by
/// side: through the table, each email of a mailbox was a page of its own
/// (mail arrives interleaved across accounts), and every commit by anyone
/// makes a reader read its pages again.
const ENTRY_COLUMNS: &str =
    "m.uid, m.email_id, e.thread_id, m.modseq, e.keywords, e.size, e.received_at, e.blob_hash,
       coalesce(e.crlf_size, e.size), m.saved_at
       FROM mailbox_email m
       JOIN email e INDEXED BY email_listing ON e.account_id = :account AND e.id = m.email_id";

fn entry_row(r: &Row<'_>) -> rusqlite::Result<MessageEntry> {
    Ok(MessageEntry {
        uid: Uid(r.get(0)?),
        email_id: EmailId(r.get(1)?),
        thread_id: ThreadId(r.get(2)?),
        modseq: ModSeq(r.get::<_, i64>(3)? as u64),
        keywords: decode_keywords(&r.get::<_, String>(4)?),
        size: r.get::<_, i64>(5)? as u64,
        received_at: r.get(6)?,
        blob_id: r.get(7)?,
        crlf_size: r.get::<_, i64>(8)? as u64,
        saved_at: r.get(9)?,
    })
}

/// Above this many UIDs, one scan of the mailbox beats a lookup per UID.
const UID_LOOKUP_LIMIT: usize = 64;

/// The mailbox's messages in UID order, all of them or those with `uids`.
pub fn list(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    uids: Option<&[Uid]>,
) -> Result<Vec<MessageEntry>> {
    mailboxes::get(conn, account, mailbox)?;
    match uids {
        Some(uids) if uids.len() <= UID_LOOKUP_LIMIT => look_up(conn, account, mailbox, uids),
        _ => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ENTRY_COLUMNS} WHERE m.mailbox_id = :mailbox ORDER BY m.uid"
                ))
                .map_err(db("reading messages"))?;
            let all = stmt
                .query_map(
                    named_params! {":account": account.0, ":mailbox": mailbox.0},
                    entry_row,
                )
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(db("reading messages"))?;
            Ok(match uids {
                None => all,
                Some(uids) => {
                    let mut wanted = uids.to_vec();
                    wanted.sort_unstable();
                    all.into_iter()
                        .filter(|e| wanted.binary_search(&e.uid).is_ok())
                        .collect()
                }
            })
        }
    }
}

/// The entries of `uids` (those that exist), in UID order, one lookup
/// each: for a few UIDs of a large mailbox. The mailbox is not checked.
pub fn look_up(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<MessageEntry>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} WHERE m.mailbox_id = :mailbox AND m.uid = :uid"
        ))
        .map_err(db("reading messages"))?;
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    let mut out = Vec::with_capacity(uids.len());
    for uid in uids {
        if let Some(e) = stmt
            .query_row(
                named_params! {":account": account.0, ":mailbox": mailbox.0, ":uid": uid.0},
                entry_row,
            )
            .optional()
            .map_err(db("reading messages"))?
        {
            out.push(e);
        }
    }
    Ok(out)
}

/// A message's place in a mailbox, as `mailbox_email` holds it.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub uid: Uid,
    pub email_id: EmailId,
    pub modseq: ModSeq,
    pub saved_at: Option<i64>,
}

/// The mailbox's memberships in UID order, from `mailbox_email` alone:
/// what a search needs before it knows which emails are worth reading.
pub fn members(conn: &Connection, account: AccountId, mailbox: MailboxId) -> Result<Vec<Member>> {
    mailboxes::get(conn, account, mailbox)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid, email_id, modseq, saved_at FROM mailbox_email
              WHERE mailbox_id = ?1 ORDER BY uid",
        )
        .map_err(db("reading a mailbox's messages"))?;
    let rows = stmt
        .query_map([mailbox.0], |r| {
            Ok(Member {
                uid: Uid(r.get(0)?),
                email_id: EmailId(r.get(1)?),
                modseq: ModSeq(r.get::<_, i64>(2)? as u64),
                saved_at: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("reading a mailbox's messages"))?;
    Ok(rows)
}

/// Entries whose modseq is above `since`, in UID order.
pub fn list_changed(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    since: ModSeq,
) -> Result<Vec<MessageEntry>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} WHERE m.mailbox_id = :mailbox AND m.modseq > :since ORDER BY m.uid"
        ))
        .map_err(db("reading changed messages"))?;
    let rows = stmt
        .query_map(
            named_params! {":account": account.0, ":mailbox": mailbox.0, ":since": since.0 as i64},
            entry_row,
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("reading changed messages"))?;
    Ok(rows)
}

pub fn email(conn: &Connection, account: AccountId, id: EmailId) -> Result<Email> {
    let row = conn
        .prepare_cached(
            "SELECT e.thread_id, e.blob_hash, e.size, e.received_at, e.keywords,
                    p.envelope, p.structure, p.summary, p.packed
               FROM email e JOIN email_meta p ON p.email_id = e.id
              WHERE e.id = ?1 AND e.account_id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![id.0, account.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<Vec<u8>>>(8)?,
                ))
            })
            .optional()
        })
        .map_err(db("reading an email"))?
        .ok_or_else(|| StoreError::not_found("email", id))?;
    let (thread, blob_id, size, received_at, keywords, envelope, structure, summary, packed) = row;
    let decode_err = |e| StoreError::backend(format!("decoding the stored parse of email {id}"), e);
    let (envelope, structure, summary) = match packed {
        Some(packed) => {
            let bundle = super::blob_codec::unpack(&packed)?;
            serde_json::from_slice(&bundle).map_err(decode_err)?
        }
        None => (
            serde_json::from_str(&envelope).map_err(decode_err)?,
            serde_json::from_str(&structure).map_err(decode_err)?,
            serde_json::from_str(&summary).map_err(decode_err)?,
        ),
    };
    Ok(Email {
        id,
        account_id: account,
        thread_id: ThreadId(thread),
        blob_id: BlobId(blob_id),
        size: size as u64,
        received_at,
        keywords: decode_keywords(&keywords),
        envelope,
        structure,
        summary,
    })
}
