//! JMAP EmailSubmissions in PostgreSQL (RFC 8621 §7), the SQLite
//! backend's `submissions.rs` on the same rows: each one recorded with the
//! operation's modseq and a journal row, so `EmailSubmission/changes`
//! reads the same journal as every other type. What became of each
//! recipient is a JSON object in `delivery` (TEXT, read and written as
//! `jsonb`), keyed by address.

use super::messages::hold_accounts;
use super::{journal, queue, Tx};
use crate::error::{Result, StoreError};
use crate::types::*;
use std::collections::BTreeMap;
use tokio_postgres::Row;

pub async fn record(
    tx: &mut Tx<'_>,
    account: AccountId,
    s: &SubmissionRecord,
) -> Result<SubmissionId> {
    // The account's lock (with its modseq) numbers submissions one at a
    // time, whatever node records them.
    let modseq = tx.modseq(account).await?;
    let id: i64 = tx
        .query_one(
            "SELECT coalesce(max(id), 0) + 1 FROM email_submission WHERE account_id = $1",
            &[&account.0],
        )
        .await?
        .get(0);
    let encode = |e| StoreError::backend("encoding a submission", e);
    let rcpt_to = serde_json::to_string(&s.rcpt_to).map_err(encode)?;
    // Who the queue took is who is still on the way; the rest were
    // delivered here at submission.
    let queued: Vec<String> = match s.queue_id {
        Some(q) => tx
            .query(
                "SELECT address FROM queue_recipient WHERE message_id = $1",
                &[&q.0],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        None => Vec::new(),
    };
    let delivery: BTreeMap<String, RecipientDelivery> = s
        .rcpt_to
        .iter()
        .map(|r| {
            let on_the_way = queued.iter().any(|q| q.eq_ignore_ascii_case(r));
            (
                super::text(r).into_owned(),
                RecipientDelivery {
                    delivered: if on_the_way { "queued" } else { "yes" }.into(),
                    reply: None,
                },
            )
        })
        .collect();
    let delivery = serde_json::to_string(&delivery).map_err(encode)?;
    tx.execute(
        "INSERT INTO email_submission (account_id, id, email_id, thread_id, identity_id,
             mail_from, rcpt_to, send_at, queue_id, delivery)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &account.0,
            &id,
            &s.email_id.0,
            &s.thread_id.0,
            &super::text(&s.identity_id),
            &super::text(&s.mail_from),
            &rcpt_to,
            &s.send_at,
            &s.queue_id.map(|q| q.0),
            &delivery,
        ],
    )
    .await?;
    let submission_id = SubmissionId(id);
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::SubmissionCreated { submission_id },
    )
    .await?;
    Ok(submission_id)
}

/// An address as the queue names it in the `delivery` object: as the
/// SQLite backend's JSON path, without quotes and backslashes (and without
/// NUL, whose escape `jsonb` refuses).
fn json_key(address: &str) -> String {
    address.replace(['"', '\\', '\0'], "")
}

fn from_row(r: &Row) -> SubmissionRecord {
    let rcpt_to: &str = r.get(5);
    let delivery: &str = r.get(8);
    SubmissionRecord {
        id: SubmissionId(r.get(0)),
        email_id: EmailId(r.get(1)),
        thread_id: ThreadId(r.get(2)),
        identity_id: r.get(3),
        mail_from: r.get(4),
        rcpt_to: serde_json::from_str(rcpt_to).unwrap_or_default(),
        send_at: r.get(6),
        queue_id: r.get::<_, Option<i64>>(7).map(QueueId),
        delivery: serde_json::from_str(delivery).unwrap_or_default(),
        canceled: r.get(9),
    }
}

/// The account's submissions, oldest first: all, or those asked for.
pub async fn list(
    tx: &Tx<'_>,
    account: AccountId,
    ids: Option<&[SubmissionId]>,
) -> Result<Vec<SubmissionRecord>> {
    let wanted: Option<Vec<i64>> = ids.map(|ids| ids.iter().map(|i| i.0).collect());
    let rows = tx
        .query(
            "SELECT id, email_id, thread_id, identity_id, mail_from, rcpt_to, send_at, queue_id,
                    delivery, canceled
               FROM email_submission
              WHERE account_id = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))
              ORDER BY id",
            &[&account.0, &wanted],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Forgets submissions; those that were the account's.
pub async fn destroy(
    tx: &mut Tx<'_>,
    account: AccountId,
    ids: &[SubmissionId],
) -> Result<Vec<SubmissionId>> {
    hold_accounts(tx, &[account]).await?;
    let mut gone = Vec::new();
    for id in ids {
        let n = tx
            .execute(
                "DELETE FROM email_submission WHERE account_id = $1 AND id = $2",
                &[&account.0, &id.0],
            )
            .await?;
        if n > 0 {
            let modseq = tx.modseq(account).await?;
            journal::record(
                tx,
                account,
                modseq,
                &ChangeKind::SubmissionDestroyed { submission_id: *id },
            )
            .await?;
            gone.push(*id);
        }
    }
    Ok(gone)
}

/// The queue's final word on one recipient of message `queue_id`, written
/// into the submissions that sent it, in the queue's transaction (so a
/// client never sees the queue and its submission disagree).
pub async fn record_outcome(
    tx: &Tx<'_>,
    queue_id: QueueId,
    address: &str,
    delivered: bool,
    reply: Option<&str>,
) -> Result<()> {
    let outcome = serde_json::to_string(&RecipientDelivery {
        delivered: if delivered { "yes" } else { "no" }.into(),
        reply: reply.map(|r| super::text(r).into_owned()),
    })
    .map_err(|e| StoreError::backend("encoding a submission's delivery", e))?;
    tx.execute(
        "UPDATE email_submission
            SET delivery = (delivery::jsonb || jsonb_build_object($1::text, $2::text::jsonb))::text
          WHERE queue_id = $3",
        &[&json_key(address), &outcome, &queue_id.0],
    )
    .await?;
    Ok(())
}

/// Cancels a submission sent later (JMAP `undoStatus: canceled`): its
/// queued message goes, unless the queue has started on it (a lease
/// taken, an attempt made) — then it is too late and nothing changes.
pub async fn cancel(tx: &mut Tx<'_>, account: AccountId, id: SubmissionId) -> Result<bool> {
    hold_accounts(tx, &[account]).await?;
    let queue_id: Option<Option<i64>> = tx
        .query_opt(
            "SELECT queue_id FROM email_submission
              WHERE account_id = $1 AND id = $2 AND NOT canceled",
            &[&account.0, &id.0],
        )
        .await?
        .map(|r| r.get(0));
    let Some(Some(queue_id)) = queue_id else {
        return Ok(false);
    };
    // Locked first, so no worker on any node claims it while it goes; one
    // that claimed it first has changed `lease_id`, which the lock
    // re-reads. The attempts are read after the lock, in a statement of
    // their own: in the locking one they would be read as of before the
    // wait, missing what a worker recorded meanwhile.
    let unleased = tx
        .query_opt(
            "SELECT id FROM queue_message WHERE id = $1 AND lease_id IS NULL FOR UPDATE",
            &[&queue_id],
        )
        .await?;
    if unleased.is_none() {
        return Ok(false);
    }
    let attempted: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM queue_recipient
                             WHERE message_id = $1 AND (attempts > 0 OR status <> 'pending'))",
            &[&queue_id],
        )
        .await?
        .get(0);
    if attempted {
        return Ok(false);
    }
    queue::remove_entry(tx, QueueId(queue_id)).await?;
    let modseq = tx.modseq(account).await?;
    tx.execute(
        "UPDATE email_submission SET canceled = TRUE, queue_id = NULL
          WHERE account_id = $1 AND id = $2",
        &[&account.0, &id.0],
    )
    .await?;
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::SubmissionUpdated { submission_id: id },
    )
    .await?;
    Ok(true)
}
