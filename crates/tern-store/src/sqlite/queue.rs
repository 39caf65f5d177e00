//! The outbound queue in SQLite: messages for remote recipients, written in
//! the same commit as the local deliveries of the same message. The
//! delivery worker (a later issue) claims due recipients from here.

use super::{db, now};
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension};

fn notify_bits(n: DsnNotify) -> i64 {
    (n.success as i64) | (n.failure as i64) << 1 | (n.delay as i64) << 2
}

fn notify_from_bits(bits: i64) -> DsnNotify {
    DsnNotify {
        success: bits & 1 != 0,
        failure: bits & 2 != 0,
        delay: bits & 4 != 0,
    }
}

fn ret_name(r: DsnReturn) -> &'static str {
    match r {
        DsnReturn::Full => "full",
        DsnReturn::Headers => "hdrs",
    }
}

/// Queues `outbound` for the blob `hash` (already stored by the caller).
pub fn enqueue(conn: &Connection, hash: &str, size: u64, outbound: &Outbound) -> Result<QueueId> {
    let created_at = now();
    conn.prepare_cached(
        "INSERT INTO queue_message (blob_hash, size, mail_from, env_id, ret, account_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            hash,
            size as i64,
            outbound.mail_from,
            outbound.env_id,
            outbound.ret.map(ret_name),
            outbound.account_id.map(|a| a.0),
            created_at
        ])
    })
    .map_err(db("queueing a message"))?;
    let id = QueueId(conn.last_insert_rowid());
    conn.prepare_cached("UPDATE blob SET refs = refs + 1 WHERE hash = ?1")
        .and_then(|mut s| s.execute([hash]))
        .map_err(db("referencing a queued blob"))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO queue_recipient (message_id, address, notify, orcpt, status, next_attempt)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5) ON CONFLICT DO NOTHING",
        )
        .map_err(db("queueing a recipient"))?;
    for r in &outbound.recipients {
        insert
            .execute(params![
                id.0,
                r.address,
                notify_bits(r.notify),
                r.orcpt,
                created_at
            ])
            .map_err(db("queueing a recipient"))?;
    }
    Ok(id)
}

/// Queues a blob that is already stored.
pub fn enqueue_existing(conn: &Connection, hash: &str, outbound: &Outbound) -> Result<QueueId> {
    let size: Option<i64> = conn
        .prepare_cached("SELECT length(data) FROM blob WHERE hash = ?1")
        .and_then(|mut s| s.query_row([hash], |r| r.get(0)).optional())
        .map_err(db("looking up a blob to queue"))?;
    let size = size.ok_or_else(|| StoreError::not_found("blob", hash))?;
    enqueue(conn, hash, size as u64, outbound)
}

pub fn list(conn: &Connection) -> Result<Vec<QueuedMessage>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, blob_hash, size, mail_from, env_id, ret, account_id, created_at
               FROM queue_message ORDER BY id",
        )
        .map_err(db("listing the queue"))?;
    let messages = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing the queue"))?;
    let mut out = Vec::with_capacity(messages.len());
    for (id, blob_id, size, mail_from, env_id, ret, account_id, created_at) in messages {
        let rows = conn
            .prepare_cached(
                "SELECT address, notify, orcpt, status, attempts, next_attempt, last_error
                   FROM queue_recipient WHERE message_id = ?1 ORDER BY address",
            )
            .and_then(|mut s| {
                s.query_map([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, u32>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db("listing queued recipients"))?;
        let mut outbound_recipients = Vec::with_capacity(rows.len());
        let mut recipients = Vec::with_capacity(rows.len());
        for (address, notify, orcpt, status, attempts, next_attempt, last_error) in rows {
            let status = match status.as_str() {
                "pending" => RecipientStatus::Pending,
                "delivered" => RecipientStatus::Delivered,
                "failed" => RecipientStatus::Failed,
                other => {
                    return Err(StoreError::Invalid(format!(
                        "queue entry {id} has an unknown recipient status {other:?}"
                    )))
                }
            };
            outbound_recipients.push(OutboundRecipient {
                address: address.clone(),
                notify: notify_from_bits(notify),
                orcpt,
            });
            recipients.push(QueuedRecipient {
                address,
                status,
                attempts,
                next_attempt,
                last_error,
            });
        }
        out.push(QueuedMessage {
            id: QueueId(id),
            blob_id,
            size: size as u64,
            outbound: Outbound {
                mail_from,
                recipients: outbound_recipients,
                env_id,
                ret: ret.as_deref().map(|r| {
                    if r == "hdrs" {
                        DsnReturn::Headers
                    } else {
                        DsnReturn::Full
                    }
                }),
                account_id: account_id.map(AccountId),
            },
            created_at,
            recipients,
        });
    }
    Ok(out)
}
