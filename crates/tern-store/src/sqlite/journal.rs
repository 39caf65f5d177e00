//! The per-account change journal in SQLite: one row per change, each
//! stamped with the modseq of the operation that made it. Rows of kind
//! `expunged` are the tombstones QRESYNC's VANISHED (RFC 7162 §3.2.10) and
//! JMAP's `/changes` read, long after the message itself is gone.

use super::db;
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{params, Connection};

/// Writes one journal row.
pub fn record(
    conn: &Connection,
    account: AccountId,
    modseq: ModSeq,
    kind: &ChangeKind,
) -> Result<()> {
    let (name, mailbox, uid, email) = match *kind {
        ChangeKind::MailboxCreated { mailbox_id } => ("mailbox-created", mailbox_id, None, None),
        ChangeKind::MailboxRenamed { mailbox_id } => ("mailbox-renamed", mailbox_id, None, None),
        ChangeKind::MailboxDeleted { mailbox_id } => ("mailbox-deleted", mailbox_id, None, None),
        ChangeKind::MailboxUpdated { mailbox_id } => ("mailbox-updated", mailbox_id, None, None),
        ChangeKind::EmailAdded {
            mailbox_id,
            uid,
            email_id,
        } => ("added", mailbox_id, Some(uid), Some(email_id)),
        ChangeKind::KeywordsChanged {
            mailbox_id,
            uid,
            email_id,
        } => ("keywords", mailbox_id, Some(uid), Some(email_id)),
        ChangeKind::EmailExpunged {
            mailbox_id,
            uid,
            email_id,
        } => ("expunged", mailbox_id, Some(uid), Some(email_id)),
    };
    conn.prepare_cached(
        "INSERT INTO journal (account_id, modseq, kind, mailbox_id, uid, email_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            account.0,
            modseq.0 as i64,
            name,
            mailbox.0,
            uid.map(|u| u.0),
            email.map(|e| e.0)
        ])
    })
    .map_err(db("writing the change journal"))?;
    Ok(())
}

fn decode(kind: &str, mailbox: i64, uid: Option<u32>, email: Option<i64>) -> Option<ChangeKind> {
    let mailbox_id = MailboxId(mailbox);
    let message = || Some((Uid(uid?), EmailId(email?)));
    Some(match kind {
        "mailbox-created" => ChangeKind::MailboxCreated { mailbox_id },
        "mailbox-renamed" => ChangeKind::MailboxRenamed { mailbox_id },
        "mailbox-deleted" => ChangeKind::MailboxDeleted { mailbox_id },
        "mailbox-updated" => ChangeKind::MailboxUpdated { mailbox_id },
        "added" => {
            let (uid, email_id) = message()?;
            ChangeKind::EmailAdded {
                mailbox_id,
                uid,
                email_id,
            }
        }
        "keywords" => {
            let (uid, email_id) = message()?;
            ChangeKind::KeywordsChanged {
                mailbox_id,
                uid,
                email_id,
            }
        }
        "expunged" => {
            let (uid, email_id) = message()?;
            ChangeKind::EmailExpunged {
                mailbox_id,
                uid,
                email_id,
            }
        }
        _ => return None,
    })
}

pub fn highest_modseq(conn: &Connection, account: AccountId) -> Result<ModSeq> {
    let m: Option<i64> = conn
        .prepare_cached("SELECT highest_modseq FROM account WHERE id = ?1")
        .and_then(|mut s| s.query_row([account.0], |r| r.get(0)))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(db("reading the highest modseq"))?;
    m.map(|m| ModSeq(m as u64))
        .ok_or_else(|| StoreError::not_found("account", account))
}

pub fn mailbox_changes(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    since: ModSeq,
) -> Result<MailboxChanges> {
    let mb = super::mailboxes::get(conn, account, mailbox)?;
    let changed = super::messages::list_changed(conn, account, mailbox, since)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT uid FROM journal
              WHERE mailbox_id = ?1 AND kind = 'expunged' AND modseq > ?2 ORDER BY uid",
        )
        .map_err(db("reading tombstones"))?;
    let expunged = stmt
        .query_map(params![mailbox.0, since.0 as i64], |r| Ok(Uid(r.get(0)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("reading tombstones"))?;
    Ok(MailboxChanges {
        highest_modseq: mb.highest_modseq,
        changed,
        expunged,
    })
}

/// Journal rows after `since`, at most `limit` of them but never part of one
/// modseq: a client that resumes from the last modseq it got must not miss
/// the rest of that operation. One operation with more rows than `limit`
/// comes whole.
pub fn account_changes(
    conn: &Connection,
    account: AccountId,
    since: ModSeq,
    limit: usize,
) -> Result<Vec<Change>> {
    let limit = limit.clamp(1, i64::MAX as usize - 1);
    let mut rows = journal_rows(conn, account, since, None, Some(limit + 1))?;
    if rows.len() > limit {
        let cut = rows[limit].modseq;
        if rows[limit - 1].modseq != cut {
            rows.truncate(limit);
        } else {
            rows.retain(|c| c.modseq < cut);
            if rows.is_empty() {
                rows = journal_rows(conn, account, ModSeq(cut.0 - 1), Some(cut), None)?;
            }
        }
    }
    Ok(rows)
}

/// Rows with `since < modseq <= until`, in order, at most `limit`.
fn journal_rows(
    conn: &Connection,
    account: AccountId,
    since: ModSeq,
    until: Option<ModSeq>,
    limit: Option<usize>,
) -> Result<Vec<Change>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT modseq, kind, mailbox_id, uid, email_id FROM journal
              WHERE account_id = ?1 AND modseq > ?2 AND modseq <= ?3 ORDER BY modseq, rowid LIMIT ?4",
        )
        .map_err(db("reading the change journal"))?;
    let rows = stmt
        .query_map(
            params![
                account.0,
                since.0 as i64,
                until.map_or(i64::MAX, |u| u.0 as i64),
                limit.map_or(-1, |l| l as i64)
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<u32>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("reading the change journal"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(modseq, kind, mailbox, uid, email)| {
            decode(&kind, mailbox, uid, email).map(|kind| Change {
                modseq: ModSeq(modseq as u64),
                kind,
            })
        })
        .collect())
}
