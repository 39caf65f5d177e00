//! JMAP EmailSubmissions in SQLite (schema v19, RFC 8621 §7): each one
//! recorded with the operation's modseq and a journal row, so
//! `EmailSubmission/changes` reads the same journal as every other type.

use super::db;
use super::writer::WriteCtx;
use crate::error::Result;
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub fn record(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    s: &SubmissionRecord,
) -> Result<SubmissionId> {
    super::directory::account(ctx.conn, account)?;
    let modseq = ctx.modseq(account)?;
    let id: i64 = ctx
        .conn
        .prepare_cached(
            "SELECT coalesce(max(id), 0) + 1 FROM email_submission WHERE account_id = ?1",
        )
        .and_then(|mut st| st.query_row([account.0], |r| r.get(0)))
        .map_err(db("numbering a submission"))?;
    let rcpt_to = serde_json::to_string(&s.rcpt_to).unwrap_or_else(|_| "[]".into());
    // Who the queue took is who is still on the way; the rest were
    // delivered here at submission.
    let queued: Vec<String> = match s.queue_id {
        Some(q) => ctx
            .conn
            .prepare_cached("SELECT address FROM queue_recipient WHERE message_id = ?1")
            .and_then(|mut st| {
                st.query_map([q.0], |r| r.get(0))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            })
            .map_err(db("reading a submission's queue"))?,
        None => Vec::new(),
    };
    let delivery: std::collections::BTreeMap<String, RecipientDelivery> = s
        .rcpt_to
        .iter()
        .map(|r| {
            let on_the_way = queued.iter().any(|q| q.eq_ignore_ascii_case(r));
            (
                r.clone(),
                RecipientDelivery {
                    delivered: if on_the_way { "queued" } else { "yes" }.into(),
                    reply: None,
                },
            )
        })
        .collect();
    let delivery = serde_json::to_string(&delivery).unwrap_or_else(|_| "{}".into());
    ctx.conn
        .prepare_cached(
            "INSERT INTO email_submission (account_id, id, email_id, thread_id, identity_id,
                 mail_from, rcpt_to, send_at, queue_id, delivery)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut st| {
            st.execute(params![
                account.0,
                id,
                s.email_id.0,
                s.thread_id.0,
                s.identity_id,
                s.mail_from,
                rcpt_to,
                s.send_at,
                s.queue_id.map(|q| q.0),
                delivery,
            ])
        })
        .map_err(db("recording a submission"))?;
    let submission_id = SubmissionId(id);
    super::journal::record(
        ctx.conn,
        account,
        modseq,
        &ChangeKind::SubmissionCreated { submission_id },
    )?;
    Ok(submission_id)
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<SubmissionRecord> {
    let rcpt_to: String = r.get(5)?;
    let delivery: String = r.get(8)?;
    let canceled: bool = r.get(9)?;
    Ok(SubmissionRecord {
        id: SubmissionId(r.get(0)?),
        email_id: EmailId(r.get(1)?),
        thread_id: ThreadId(r.get(2)?),
        identity_id: r.get(3)?,
        mail_from: r.get(4)?,
        rcpt_to: serde_json::from_str(&rcpt_to).unwrap_or_default(),
        send_at: r.get(6)?,
        queue_id: r.get::<_, Option<i64>>(7)?.map(QueueId),
        delivery: serde_json::from_str(&delivery).unwrap_or_default(),
        canceled,
    })
}

/// The account's submissions, oldest first: all, or those asked for.
pub fn list(
    conn: &Connection,
    account: AccountId,
    ids: Option<&[SubmissionId]>,
) -> Result<Vec<SubmissionRecord>> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, email_id, thread_id, identity_id, mail_from, rcpt_to, send_at, queue_id,
                    delivery, canceled
             FROM email_submission WHERE account_id = ?1 ORDER BY id",
        )
        .map_err(db("reading submissions"))?;
    let all = st
        .query_map([account.0], from_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("reading submissions"))?;
    Ok(match ids {
        None => all,
        Some(ids) => all.into_iter().filter(|s| ids.contains(&s.id)).collect(),
    })
}

/// Forgets submissions; those that were the account's.
pub fn destroy(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    ids: &[SubmissionId],
) -> Result<Vec<SubmissionId>> {
    let mut gone = Vec::new();
    for id in ids {
        let n = ctx
            .conn
            .prepare_cached("DELETE FROM email_submission WHERE account_id = ?1 AND id = ?2")
            .and_then(|mut st| st.execute(params![account.0, id.0]))
            .map_err(db("destroying a submission"))?;
        if n > 0 {
            let modseq = ctx.modseq(account)?;
            super::journal::record(
                ctx.conn,
                account,
                modseq,
                &ChangeKind::SubmissionDestroyed { submission_id: *id },
            )?;
            gone.push(*id);
        }
    }
    Ok(gone)
}

/// The queue's final word on one recipient of message `queue_id`, written
/// into the submissions that sent it (the same transaction as the queue's
/// record, so a client never sees the queue and its submission disagree).
pub fn record_outcome(
    conn: &Connection,
    queue_id: QueueId,
    address: &str,
    delivered: bool,
    reply: Option<&str>,
) -> Result<()> {
    let outcome = serde_json::to_string(&RecipientDelivery {
        delivered: if delivered { "yes" } else { "no" }.into(),
        reply: reply.map(String::from),
    })
    .unwrap_or_else(|_| "{}".into());
    // A JSON path naming the address as one key, whatever it holds.
    let path = format!("$.\"{}\"", address.replace(['"', '\\'], ""));
    conn.prepare_cached(
        "UPDATE email_submission SET delivery = json_set(delivery, ?1, json(?2))
          WHERE queue_id = ?3",
    )
    .and_then(|mut st| st.execute(params![path, outcome, queue_id.0]))
    .map_err(db("recording a submission's delivery"))?;
    Ok(())
}

/// Cancels a submission sent later (JMAP `undoStatus: canceled`): its
/// queued message goes, unless the queue has started on it (a lease
/// taken, an attempt made) — then it is too late and nothing changes.
pub fn cancel(ctx: &mut WriteCtx<'_>, account: AccountId, id: SubmissionId) -> Result<bool> {
    let queue_id: Option<Option<i64>> = ctx
        .conn
        .prepare_cached(
            "SELECT queue_id FROM email_submission WHERE account_id = ?1 AND id = ?2 AND canceled = 0",
        )
        .and_then(|mut st| st.query_row(params![account.0, id.0], |r| r.get(0)).optional())
        .map_err(db("reading a submission"))?;
    let Some(Some(queue_id)) = queue_id else {
        return Ok(false);
    };
    let untouched: Option<i64> = ctx
        .conn
        .prepare_cached(
            "SELECT m.id FROM queue_message m
              WHERE m.id = ?1 AND m.lease_id IS NULL
                AND NOT EXISTS (SELECT 1 FROM queue_recipient r
                                 WHERE r.message_id = m.id
                                   AND (r.attempts > 0 OR r.status != 'pending'))",
        )
        .and_then(|mut st| st.query_row([queue_id], |r| r.get(0)).optional())
        .map_err(db("checking a queued submission"))?;
    if untouched.is_none() {
        return Ok(false);
    }
    super::queue::remove_entry(ctx.conn, QueueId(queue_id))?;
    let modseq = ctx.modseq(account)?;
    ctx.conn
        .prepare_cached(
            "UPDATE email_submission SET canceled = 1, queue_id = NULL
              WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut st| st.execute(params![account.0, id.0]))
        .map_err(db("cancelling a submission"))?;
    super::journal::record(
        ctx.conn,
        account,
        modseq,
        &ChangeKind::SubmissionUpdated { submission_id: id },
    )?;
    Ok(true)
}
