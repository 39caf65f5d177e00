//! The per-account change journal in SQLite: one row per change, each
//! stamped with the modseq of the operation that made it and naming the
//! type of object, its collection and the object (schema v9). Rows of kind
//! `expunged` are the tombstones QRESYNC's VANISHED (RFC 7162 §3.2.10) and
//! JMAP's `/changes` read, long after the message itself is gone.
//!
//! Retention: rows older than the configured time are pruned in bounded
//! steps; each account's `journal_floor` then says from which modseq on
//! its changes are complete. Asked for changes from below the floor, the
//! Store says so (`ChangesExpired`, JMAP's `cannotCalculateChanges`; an
//! `incomplete` mailbox view for QRESYNC) instead of answering partly.

use super::db;
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension};

/// A change as a journal row stores it: its kind's name, the collection
/// (the mailbox of a message change), the object and the UID. Shared with
/// the PostgreSQL backend, whose rows are the same.
pub(crate) fn encode(kind: &ChangeKind) -> (&'static str, Option<i64>, i64, Option<u32>) {
    match *kind {
        ChangeKind::MailboxCreated { mailbox_id } => ("mailbox-created", None, mailbox_id.0, None),
        ChangeKind::MailboxRenamed { mailbox_id } => ("mailbox-renamed", None, mailbox_id.0, None),
        ChangeKind::MailboxDeleted { mailbox_id } => ("mailbox-deleted", None, mailbox_id.0, None),
        ChangeKind::MailboxUpdated { mailbox_id } => ("mailbox-updated", None, mailbox_id.0, None),
        ChangeKind::EmailAdded {
            mailbox_id,
            uid,
            email_id,
        } => ("added", Some(mailbox_id.0), email_id.0, Some(uid.0)),
        ChangeKind::KeywordsChanged {
            mailbox_id,
            uid,
            email_id,
        } => ("keywords", Some(mailbox_id.0), email_id.0, Some(uid.0)),
        ChangeKind::EmailExpunged {
            mailbox_id,
            uid,
            email_id,
        } => ("expunged", Some(mailbox_id.0), email_id.0, Some(uid.0)),
        ChangeKind::ThreadChanged { thread_id } => ("thread-changed", None, thread_id.0, None),
        ChangeKind::SubmissionCreated { submission_id } => {
            ("submission-created", None, submission_id.0, None)
        }
        ChangeKind::SubmissionDestroyed { submission_id } => {
            ("submission-destroyed", None, submission_id.0, None)
        }
        ChangeKind::SubmissionUpdated { submission_id } => {
            ("submission-updated", None, submission_id.0, None)
        }
    }
}

/// Writes one journal row.
pub fn record(
    conn: &Connection,
    account: AccountId,
    modseq: ModSeq,
    kind: &ChangeKind,
) -> Result<()> {
    let (name, collection, object, uid) = encode(kind);
    conn.prepare_cached(
        "INSERT INTO journal (account_id, modseq, type, collection, object, kind, uid, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            account.0,
            modseq.0 as i64,
            kind.object_type().as_str(),
            collection,
            object,
            name,
            uid,
            super::now()
        ])
    })
    .map_err(db("writing the change journal"))?;
    Ok(())
}

/// The change a journal row describes; `None` for a kind this build does
/// not know.
pub(crate) fn decode(
    kind: &str,
    collection: Option<i64>,
    object: Option<i64>,
    uid: Option<u32>,
) -> Option<ChangeKind> {
    let mailbox_id = || Some(MailboxId(object?));
    let message = || Some((MailboxId(collection?), Uid(uid?), EmailId(object?)));
    Some(match kind {
        "mailbox-created" => ChangeKind::MailboxCreated {
            mailbox_id: mailbox_id()?,
        },
        "mailbox-renamed" => ChangeKind::MailboxRenamed {
            mailbox_id: mailbox_id()?,
        },
        "mailbox-deleted" => ChangeKind::MailboxDeleted {
            mailbox_id: mailbox_id()?,
        },
        "mailbox-updated" => ChangeKind::MailboxUpdated {
            mailbox_id: mailbox_id()?,
        },
        "thread-changed" => ChangeKind::ThreadChanged {
            thread_id: ThreadId(object?),
        },
        "submission-created" => ChangeKind::SubmissionCreated {
            submission_id: SubmissionId(object?),
        },
        "submission-destroyed" => ChangeKind::SubmissionDestroyed {
            submission_id: SubmissionId(object?),
        },
        "submission-updated" => ChangeKind::SubmissionUpdated {
            submission_id: SubmissionId(object?),
        },
        "added" => {
            let (mailbox_id, uid, email_id) = message()?;
            ChangeKind::EmailAdded {
                mailbox_id,
                uid,
                email_id,
            }
        }
        "keywords" => {
            let (mailbox_id, uid, email_id) = message()?;
            ChangeKind::KeywordsChanged {
                mailbox_id,
                uid,
                email_id,
            }
        }
        "expunged" => {
            let (mailbox_id, uid, email_id) = message()?;
            ChangeKind::EmailExpunged {
                mailbox_id,
                uid,
                email_id,
            }
        }
        _ => return None,
    })
}

/// The modseq at or below which the account's changes were pruned.
pub fn floor(conn: &Connection, account: AccountId) -> Result<ModSeq> {
    conn.prepare_cached("SELECT journal_floor FROM account WHERE id = ?1")
        .and_then(|mut s| s.query_row([account.0], |r| r.get::<_, i64>(0)).optional())
        .map_err(db("reading the journal floor"))?
        .map(|f| ModSeq(f.max(0) as u64))
        .ok_or_else(|| StoreError::not_found("account", account))
}

/// Most journal rows one prune step deletes, so the writer is never held
/// for long; `prune` loops over steps.
pub const PRUNE_STEP: i64 = 10_000;

/// Deletes up to [`PRUNE_STEP`] rows written before `before` (unix
/// seconds), raising each affected account's floor to the highest modseq
/// deleted. Returns the number of rows deleted.
pub fn prune_step(conn: &Connection, before: i64) -> Result<u64> {
    // Rows are in `seq` order, and `at` grows with it: the doomed rows are
    // a prefix, found without an index on `at`.
    let cut: Option<i64> = conn
        .prepare_cached(
            "SELECT max(seq) FROM (SELECT seq, at FROM journal ORDER BY seq LIMIT ?1) WHERE at < ?2",
        )
        .and_then(|mut s| s.query_row(params![PRUNE_STEP, before], |r| r.get(0)))
        .map_err(db("finding old journal rows"))?;
    let Some(cut) = cut else { return Ok(0) };
    conn.prepare_cached(
        "UPDATE account SET journal_floor = max(journal_floor,
            (SELECT max(modseq) FROM journal WHERE account_id = account.id AND seq <= ?1))
          WHERE id IN (SELECT DISTINCT account_id FROM journal WHERE seq <= ?1)",
    )
    .and_then(|mut s| s.execute([cut]))
    .map_err(db("raising journal floors"))?;
    let n = conn
        .prepare_cached("DELETE FROM journal WHERE seq <= ?1")
        .and_then(|mut s| s.execute([cut]))
        .map_err(db("pruning the journal"))?;
    Ok(n as u64)
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
    // Pruned changes matter only if this mailbox changed after `since`:
    // every change to it raises its highest_modseq. (A mailbox untouched
    // for longer than the retention is complete, not resynchronised for
    // ever.)
    let incomplete = since < floor(conn, account)? && since < mb.highest_modseq;
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT uid FROM journal
              WHERE collection = ?1 AND kind = 'expunged' AND modseq > ?2 ORDER BY uid",
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
        incomplete,
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
    let floor = floor(conn, account)?;
    if since < floor {
        return Err(StoreError::ChangesExpired { floor });
    }
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
            "SELECT modseq, kind, collection, object, uid FROM journal
              WHERE account_id = ?1 AND modseq > ?2 AND modseq <= ?3 ORDER BY modseq, seq LIMIT ?4",
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
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<u32>>(4)?,
                ))
            },
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("reading the change journal"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(modseq, kind, collection, object, uid)| {
            decode(&kind, collection, object, uid).map(|kind| Change {
                modseq: ModSeq(modseq as u64),
                kind,
            })
        })
        .collect())
}
