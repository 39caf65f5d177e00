//! The outbound queue in SQLite: messages for remote recipients, written in
//! the same commit as the local deliveries of the same message, and the
//! queue as work: a worker claims due messages with a lease, records each
//! recipient's attempt, and the entry goes when nobody is left pending.
//!
//! Claims and records run on the writer, inside SQLite's write lock, so two
//! claimers (threads, processes) never lease the same message at once.

use super::{db, now};
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension};

/// DSN NOTIFY as stored: one bit each for success, failure and delay.
pub(crate) fn notify_bits(n: DsnNotify) -> i64 {
    (n.success as i64) | (n.failure as i64) << 1 | (n.delay as i64) << 2
}

pub(crate) fn notify_from_bits(bits: i64) -> DsnNotify {
    DsnNotify {
        success: bits & 1 != 0,
        failure: bits & 2 != 0,
        delay: bits & 4 != 0,
    }
}

/// DSN RET as stored (RFC 3461 §4.3 spells it `FULL` / `HDRS`).
pub(crate) fn ret_name(r: DsnReturn) -> &'static str {
    match r {
        DsnReturn::Full => "full",
        DsnReturn::Headers => "hdrs",
    }
}

pub(crate) fn ret_from_name(name: &str) -> DsnReturn {
    if name == "hdrs" {
        DsnReturn::Headers
    } else {
        DsnReturn::Full
    }
}

/// A recipient's stored status; an unknown one is refused, not guessed.
pub(crate) fn status_from_name(queue_id: i64, name: &str) -> Result<RecipientStatus> {
    match name {
        "pending" => Ok(RecipientStatus::Pending),
        "delivered" => Ok(RecipientStatus::Delivered),
        "failed" => Ok(RecipientStatus::Failed),
        other => Err(StoreError::Invalid(format!(
            "queue entry {queue_id} has an unknown recipient status {other:?}"
        ))),
    }
}

/// Queues `outbound` for the blob `hash` (already stored by the caller).
pub fn enqueue(
    conn: &Connection,
    hash: &BlobId,
    size: u64,
    outbound: &Outbound,
) -> Result<QueueId> {
    let created_at = now();
    conn.prepare_cached(
        "INSERT INTO queue_message (blob_hash, size, mail_from, env_id, ret, account_id, created_at, require_tls)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            hash,
            size as i64,
            outbound.mail_from,
            outbound.env_id,
            outbound.ret.map(ret_name),
            outbound.account_id.map(|a| a.0),
            created_at,
            outbound.require_tls
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
    // A message sent later waits for its release (FUTURERELEASE).
    let first_attempt = outbound
        .release_at
        .map_or(created_at, |r| r.max(created_at));
    for r in &outbound.recipients {
        insert
            .execute(params![
                id.0,
                r.address,
                notify_bits(r.notify),
                r.orcpt,
                first_attempt
            ])
            .map_err(db("queueing a recipient"))?;
    }
    Ok(id)
}

/// Queues a blob that is already stored and that one of `account`'s
/// emails or uploads holds (a blob id alone opens nobody's mail).
pub fn enqueue_existing(
    conn: &Connection,
    account: AccountId,
    hash: &BlobId,
    outbound: &Outbound,
) -> Result<QueueId> {
    let size: Option<i64> = conn
        .prepare_cached(
            "SELECT coalesce(size, length(data)) FROM blob WHERE hash = ?1
                AND (EXISTS (SELECT 1 FROM email WHERE blob_hash = ?1 AND account_id = ?2)
                     OR EXISTS (SELECT 1 FROM upload WHERE blob_hash = ?1 AND account_id = ?2))",
        )
        .and_then(|mut s| {
            s.query_row(params![hash, account.0], |r| r.get(0))
                .optional()
        })
        .map_err(db("looking up a blob to queue"))?;
    let size = size.ok_or_else(|| StoreError::not_found("blob", hash))?;
    enqueue(conn, hash, size as u64, outbound)
}

pub fn list(conn: &Connection) -> Result<Vec<QueuedMessage>> {
    load(conn, None, None)
}

/// Queued messages, all or those with the given ids; with `due_at`, only
/// their recipients pending and due by then (what a claim hands out).
fn load(conn: &Connection, ids: Option<&[i64]>, due_at: Option<i64>) -> Result<Vec<QueuedMessage>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, blob_hash, size, mail_from, env_id, ret, account_id, created_at, held, delay_notified, require_tls
               FROM queue_message WHERE ?1 IS NULL OR id IN (SELECT value FROM json_each(?1))
              ORDER BY id",
        )
        .map_err(db("listing the queue"))?;
    let filter = ids.map(|ids| format!("{ids:?}"));
    let messages = stmt
        .query_map([filter], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, bool>(8)?,
                r.get::<_, bool>(9)?,
                r.get::<_, bool>(10)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing the queue"))?;
    let mut out = Vec::with_capacity(messages.len());
    for (
        id,
        blob_id,
        size,
        mail_from,
        env_id,
        ret,
        account_id,
        created_at,
        held,
        delay_notified,
        require_tls,
    ) in messages
    {
        let rows = conn
            .prepare_cached(
                "SELECT address, notify, orcpt, status, attempts, next_attempt, last_error
                   FROM queue_recipient
                  WHERE message_id = ?1 AND (?2 IS NULL OR (status = 'pending' AND next_attempt <= ?2))
                  ORDER BY address",
            )
            .and_then(|mut s| {
                s.query_map(params![id, due_at], |r| {
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
            let status = status_from_name(id, &status)?;
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
            blob_id: BlobId(blob_id),
            size: size as u64,
            outbound: Outbound {
                mail_from,
                recipients: outbound_recipients,
                env_id,
                ret: ret.as_deref().map(ret_from_name),
                account_id: account_id.map(AccountId),
                require_tls,
                release_at: None,
            },
            created_at,
            recipients,
            held,
            delay_notified,
        });
    }
    Ok(out)
}

/// Leases up to `limit` due messages; see `Store::queue_claim`.
pub fn claim(
    conn: &Connection,
    now: i64,
    lease_secs: i64,
    limit: usize,
) -> Result<Vec<QueueClaim>> {
    // Walks the due index in order and stops after a few rows per wanted
    // entry: a claim costs the same with ten or a million entries queued.
    let rows: Vec<i64> = conn
        .prepare_cached(
            "SELECT r.message_id FROM queue_recipient r
              WHERE r.status = 'pending' AND r.next_attempt <= ?1
                AND EXISTS (SELECT 1 FROM queue_message m
                             WHERE m.id = r.message_id AND m.held = 0
                               AND (m.lease_until IS NULL OR m.lease_until <= ?1))
              ORDER BY r.next_attempt, r.message_id LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![now, (limit as i64).saturating_mul(4)], |r| r.get(0))?
                .collect()
        })
        .map_err(db("finding due queue entries"))?;
    let mut ids: Vec<i64> = Vec::with_capacity(limit);
    for id in rows {
        if ids.len() == limit {
            break;
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lease_until = now.saturating_add(lease_secs.max(1));
    let mut claims = Vec::with_capacity(ids.len());
    let messages = load(conn, Some(&ids), Some(now))?;
    for message in messages {
        let lease: i64 = conn
            .prepare_cached(
                "UPDATE meta SET value = value + 1 WHERE key = 'lease_seq' RETURNING value",
            )
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(db("taking a lease number"))?;
        conn.prepare_cached(
            "UPDATE queue_message SET lease_id = ?1, lease_until = ?2 WHERE id = ?3",
        )
        .and_then(|mut s| s.execute(params![lease, lease_until, message.id.0]))
        .map_err(db("leasing a queue entry"))?;
        claims.push(QueueClaim {
            message,
            lease: LeaseId(lease),
            lease_until,
        });
    }
    Ok(claims)
}

/// Records attempts under a lease; see `Store::queue_record`. With
/// `finish` false the lease is kept and the entry stays, whatever is left
/// pending (`Store::queue_record_part`).
pub fn record(
    conn: &Connection,
    id: QueueId,
    lease: LeaseId,
    attempts: &[RecipientAttempt],
    finish: bool,
) -> Result<QueueState> {
    let held: Option<Option<i64>> = conn
        .prepare_cached("SELECT lease_id FROM queue_message WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.0], |r| r.get(0)).optional())
        .map_err(db("checking a lease"))?;
    if held.flatten() != Some(lease.0) {
        return Err(StoreError::LeaseLost { queue_id: id.0 });
    }
    let mut update = conn
        .prepare_cached(
            "UPDATE queue_recipient
                SET status = ?1, attempts = attempts + 1, next_attempt = ?2, last_error = ?3
              WHERE message_id = ?4 AND address = ?5 AND status = 'pending'",
        )
        .map_err(db("recording a delivery attempt"))?;
    let mut postpone = conn
        .prepare_cached(
            "UPDATE queue_recipient SET next_attempt = ?1
              WHERE message_id = ?2 AND address = ?3 AND status = 'pending'",
        )
        .map_err(db("postponing a delivery"))?;
    let at = now();
    for a in attempts {
        if let AttemptOutcome::Postponed { next_attempt } = &a.outcome {
            postpone
                .execute(params![next_attempt, id.0, a.address])
                .map_err(db("postponing a delivery"))?;
            continue;
        }
        let (status, next, error) = match &a.outcome {
            AttemptOutcome::Delivered => ("delivered", at, None),
            AttemptOutcome::Deferred {
                next_attempt,
                error,
            } => ("pending", *next_attempt, Some(error.as_str())),
            AttemptOutcome::Failed { error } => ("failed", at, Some(error.as_str())),
            AttemptOutcome::Postponed { .. } => continue,
        };
        update
            .execute(params![status, next, error, id.0, a.address])
            .map_err(db("recording a delivery attempt"))?;
        if status != "pending" {
            super::submissions::record_outcome(conn, id, &a.address, status == "delivered", error)?;
        }
    }
    if !finish {
        return Ok(QueueState::Pending);
    }
    let pending: i64 = conn
        .prepare_cached(
            // `+status`: the primary key, not the status index (which
            // would walk every pending recipient of the whole queue).
            "SELECT count(*) FROM queue_recipient WHERE message_id = ?1 AND +status = 'pending'",
        )
        .and_then(|mut s| s.query_row([id.0], |r| r.get(0)))
        .map_err(db("counting pending recipients"))?;
    if pending > 0 {
        conn.prepare_cached(
            "UPDATE queue_message SET lease_id = NULL, lease_until = NULL WHERE id = ?1",
        )
        .and_then(|mut s| s.execute([id.0]))
        .map_err(db("releasing a lease"))?;
        return Ok(QueueState::Pending);
    }
    remove(conn, id)?;
    Ok(QueueState::Done)
}

/// Deletes a finished entry and its hold on the blob.
fn remove(conn: &Connection, id: QueueId) -> Result<()> {
    let hash: String = conn
        .prepare_cached("SELECT blob_hash FROM queue_message WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.0], |r| r.get(0)))
        .map_err(db("finding a queued blob"))?;
    for sql in [
        "DELETE FROM queue_recipient WHERE message_id = ?1",
        "DELETE FROM queue_message WHERE id = ?1",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([id.0]))
            .map_err(db("removing a finished queue entry"))?;
    }
    conn.prepare_cached("UPDATE blob SET refs = refs - 1 WHERE hash = ?1")
        .and_then(|mut s| s.execute([&hash]))
        .map_err(db("releasing a queued blob"))?;
    conn.prepare_cached("DELETE FROM blob WHERE hash = ?1 AND refs <= 0")
        .and_then(|mut s| s.execute([&hash]))
        .map_err(db("dropping an unused blob"))?;
    Ok(())
}

/// Removes a queued message whatever its recipients' state (an
/// administrator's `tern queue remove`); NotFound if there is none.
pub fn remove_entry(conn: &Connection, id: QueueId) -> Result<()> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT id FROM queue_message WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.0], |r| r.get(0)).optional())
        .map_err(db("finding a queued message"))?;
    if exists.is_none() {
        return Err(StoreError::not_found("queued message", id.to_string()));
    }
    remove(conn, id)
}

/// Holds a queued message (no claim takes it) or releases it.
pub fn hold(conn: &Connection, id: QueueId, on: bool) -> Result<()> {
    let changed = conn
        .prepare_cached("UPDATE queue_message SET held = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![on, id.0]))
        .map_err(db("holding a queued message"))?;
    if changed == 0 {
        return Err(StoreError::not_found("queued message", id.to_string()));
    }
    Ok(())
}

/// Sums session counts into the TLS report.
pub fn tls_report_add(conn: &Connection, rows: &[TlsReportRow]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO tls_report (day, policy_domain, policy_type, result_type, mx_host, sessions)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions",
        )
        .map_err(db("recording TLS report data"))?;
    for r in rows {
        stmt.execute(params![
            r.day,
            r.policy_domain,
            r.policy_type,
            r.result_type,
            r.mx_host,
            r.sessions as i64
        ])
        .map_err(db("recording TLS report data"))?;
    }
    Ok(())
}

/// TLS report rows from `since` on.
pub fn tls_report_list(conn: &Connection, since: &str) -> Result<Vec<TlsReportRow>> {
    conn.prepare_cached(
        "SELECT day, policy_domain, policy_type, result_type, mx_host, sessions
           FROM tls_report WHERE day >= ?1
          ORDER BY day, policy_domain, policy_type, result_type, mx_host",
    )
    .and_then(|mut s| {
        s.query_map([since], |r| {
            Ok(TlsReportRow {
                day: r.get(0)?,
                policy_domain: r.get(1)?,
                policy_type: r.get(2)?,
                result_type: r.get(3)?,
                mx_host: r.get(4)?,
                sessions: r.get::<_, i64>(5)? as u64,
            })
        })?
        .collect()
    })
    .map_err(db("reading TLS report data"))
}

/// Frees every lease; how many.
pub fn release_leases(conn: &Connection) -> Result<usize> {
    let freed = conn
        .prepare_cached(
            "UPDATE queue_message SET lease_id = NULL, lease_until = NULL WHERE lease_id IS NOT NULL",
        )
        .and_then(|mut s| s.execute([]))
        .map_err(db("releasing leases"))?;
    sweep(conn, now())?;
    Ok(freed)
}

/// Postpones the pending recipients of `domain` to `until`; how many.
pub fn postpone_domain(conn: &Connection, domain: &str, until: i64) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE queue_recipient SET next_attempt = ?2
          WHERE status = 'pending' AND next_attempt < ?2
            AND lower(substr(address, -(length(?1) + 1))) = '@' || ?1",
    )
    .and_then(|mut s| s.execute(params![domain, until]))
    .map_err(db("postponing a destination"))
}

/// Removes entries nobody holds with no recipient left pending: a worker
/// that recorded every recipient but died before its final record left
/// them. How many.
pub fn sweep(conn: &Connection, now: i64) -> Result<usize> {
    let finished: Vec<i64> = conn
        .prepare_cached(
            "SELECT m.id FROM queue_message m
              WHERE (m.lease_until IS NULL OR m.lease_until <= ?1)
                AND NOT EXISTS (SELECT 1 FROM queue_recipient r
                                 WHERE r.message_id = m.id AND +r.status = 'pending')",
        )
        .and_then(|mut s| s.query_map([now], |r| r.get(0))?.collect())
        .map_err(db("finding finished queue entries"))?;
    for id in &finished {
        remove(conn, QueueId(*id))?;
    }
    Ok(finished.len())
}

/// Notes the delay notice of a queued message.
pub fn delay_notified(conn: &Connection, id: QueueId) -> Result<()> {
    conn.prepare_cached("UPDATE queue_message SET delay_notified = 1 WHERE id = ?1")
        .and_then(|mut s| s.execute([id.0]))
        .map_err(db("noting a delay notice"))?;
    Ok(())
}

/// Makes pending recipients due now, of one message or of all; how many.
pub fn flush(conn: &Connection, id: Option<QueueId>) -> Result<usize> {
    // Counted, so a worker that holds destinations as down (in memory)
    // sees an administrator wants them tried now.
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('queue_flushes', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    )
    .map_err(db("counting a flush"))?;
    conn.prepare_cached(
        "UPDATE queue_recipient SET next_attempt = ?1
          WHERE status = 'pending' AND (?2 IS NULL OR message_id = ?2)",
    )
    .and_then(|mut s| s.execute(params![now(), id.map(|i| i.0)]))
    .map_err(db("flushing the queue"))
}

/// How many flushes there have been.
pub fn flush_count(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = 'queue_flushes'")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
        .map(|v| v.unwrap_or(0) as u64)
        .map_err(db("reading the flush count"))
}

/// A range of a queued message's bytes.
pub fn read(conn: &Connection, id: QueueId, offset: u64, len: usize) -> Result<Vec<u8>> {
    let row = conn
        .prepare_cached(
            "SELECT b.rowid, b.codec, b.size FROM queue_message m JOIN blob b ON b.hash = m.blob_hash
              WHERE m.id = ?1",
        )
        .and_then(|mut s| s.query_row([id.0], super::blobs::BlobRow::from_row).optional())
        .map_err(db("finding a queued message"))?
        .ok_or_else(|| StoreError::not_found("queued message", id.to_string()))?;
    super::blobs::read_blob_at(conn, row, offset, len)
}
