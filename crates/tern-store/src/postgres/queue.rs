//! The outbound queue in PostgreSQL: messages for remote recipients,
//! written in the same commit as the local deliveries of the same message,
//! and the queue as work shared by every node: a worker claims due
//! messages with a lease, records each recipient's attempt, and the entry
//! goes when nobody is left pending. The same rows and answers as the
//! SQLite backend's `queue.rs`.
//!
//! Concurrency: claimers on several nodes run at once. A claim locks the
//! messages it takes with `FOR UPDATE SKIP LOCKED`, so two claimers never
//! lease one message and neither waits for the other (each takes what the
//! other has not locked). The lease number comes from a sequence, not a
//! counter row that every claim would queue on. A record locks its
//! message's row before checking the lease, so a claim after the lease
//! ran out and a late record are ordered: whichever commits second sees
//! the other (the claim skips the row, or the record finds the lease gone).

use super::text;
use super::{blobs, now, submissions, PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::sqlite::queue::{
    notify_bits, notify_from_bits, ret_from_name, ret_name, status_from_name,
};
use crate::store::QueueStore;
use crate::types::*;
use async_trait::async_trait;
use std::borrow::Cow;
use std::collections::HashMap;

/// Due recipients a claim looks at per message it wants: a claim walks the
/// due index this far and no further, so it costs the same with ten or a
/// million entries queued (as on SQLite).
const DUE_ROWS_PER_CLAIM: i64 = 4;

fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(text)
}

/// Queues `outbound` for the blob `hash`, already stored by the caller
/// (this adds the queue entry's hold on it). Interface used by messages.rs
/// (`accept`).
pub async fn enqueue(
    tx: &mut Tx<'_>,
    hash: &BlobId,
    size: u64,
    outbound: &Outbound,
) -> Result<QueueId> {
    let created_at = now();
    // The hold first: it fails (NotFound) if the blob went meanwhile.
    blobs::add_ref(tx, hash, 1).await?;
    let row = tx
        .query_one(
            "INSERT INTO queue_message
                    (blob_hash, size, mail_from, env_id, ret, account_id, created_at, require_tls)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id",
            &[
                &hash.0,
                &(size.min(i64::MAX as u64) as i64),
                &text(&outbound.mail_from),
                &opt_text(&outbound.env_id),
                &outbound.ret.map(ret_name),
                &outbound.account_id.map(|a| a.0),
                &created_at,
                &outbound.require_tls,
            ],
        )
        .await?;
    let id = QueueId(row.get(0));
    // A message sent later waits for its release (FUTURERELEASE).
    let first_attempt = outbound
        .release_at
        .map_or(created_at, |r| r.max(created_at));
    let addresses: Vec<String> = outbound
        .recipients
        .iter()
        .map(|r| text(&r.address).into_owned())
        .collect();
    let notify: Vec<i64> = outbound
        .recipients
        .iter()
        .map(|r| notify_bits(r.notify))
        .collect();
    let orcpt: Vec<Option<String>> = outbound
        .recipients
        .iter()
        .map(|r| opt_text(&r.orcpt).map(Cow::into_owned))
        .collect();
    // One statement for every recipient; a repeated address is queued
    // once, the first as given (as on SQLite).
    tx.execute(
        "INSERT INTO queue_recipient (message_id, address, notify, orcpt, status, next_attempt)
         SELECT $1, r.address, r.notify, r.orcpt, 'pending', $5
           FROM unnest($2::text[], $3::bigint[], $4::text[]) WITH ORDINALITY
                AS r(address, notify, orcpt, n)
          ORDER BY r.n
         ON CONFLICT DO NOTHING",
        &[&id.0, &addresses, &notify, &orcpt, &first_attempt],
    )
    .await?;
    Ok(id)
}

/// Removes a queue entry and its hold on the blob (interface used by
/// submissions: cancelling a message sent later; an administrator's
/// `tern queue remove`). NotFound if there is none.
pub async fn remove_entry(tx: &mut Tx<'_>, id: QueueId) -> Result<()> {
    // The recipients go with it (ON DELETE CASCADE).
    let row = tx
        .query_opt(
            "DELETE FROM queue_message WHERE id = $1 RETURNING blob_hash",
            &[&id.0],
        )
        .await?
        .ok_or_else(|| StoreError::not_found("queued message", id.to_string()))?;
    blobs::release(tx, &BlobId(row.get(0)), 1).await
}

/// Queues a blob that is already stored and that one of `account`'s
/// emails or uploads holds (a blob id alone opens nobody's mail).
async fn enqueue_existing(
    tx: &mut Tx<'_>,
    account: AccountId,
    hash: &BlobId,
    outbound: &Outbound,
) -> Result<QueueId> {
    let size = tx
        .query_opt("SELECT size FROM blob WHERE hash = $1", &[&hash.0])
        .await?
        .map(|r| r.get::<_, i64>(0));
    let Some(size) = size else {
        return Err(StoreError::not_found("blob", hash));
    };
    if !blobs::owned_by(tx, account, hash).await? {
        return Err(StoreError::not_found("blob", hash));
    }
    enqueue(tx, hash, size.max(0) as u64, outbound).await
}

/// Queued messages, all or those with the given ids, oldest first; with
/// `due_at`, only their recipients pending and due by then (what a claim
/// hands out).
async fn load(tx: &Tx<'_>, ids: Option<&[i64]>, due_at: Option<i64>) -> Result<Vec<QueuedMessage>> {
    let ids: Option<Vec<i64>> = ids.map(<[i64]>::to_vec);
    let messages = tx
        .query(
            "SELECT id, blob_hash, size, mail_from, env_id, ret, account_id, created_at, held,
                    delay_notified, require_tls
               FROM queue_message WHERE $1::bigint[] IS NULL OR id = ANY($1)
              ORDER BY id",
            &[&ids],
        )
        .await?;
    // Addresses in byte order, as SQLite's BINARY collation sorts them,
    // whatever the database's locale.
    let recipients = tx
        .query(
            "SELECT message_id, address, notify, orcpt, status, attempts, next_attempt, last_error
               FROM queue_recipient
              WHERE ($1::bigint[] IS NULL OR message_id = ANY($1))
                AND ($2::bigint IS NULL OR (status = 'pending' AND next_attempt <= $2))
              ORDER BY message_id, address COLLATE \"C\"",
            &[&ids, &due_at],
        )
        .await?;
    let mut by_message: HashMap<i64, (Vec<OutboundRecipient>, Vec<QueuedRecipient>)> =
        HashMap::new();
    for r in &recipients {
        let id: i64 = r.get(0);
        let address: String = r.get(1);
        let status = status_from_name(id, r.get(4))?;
        let entry = by_message.entry(id).or_default();
        entry.0.push(OutboundRecipient {
            address: address.clone(),
            notify: notify_from_bits(r.get(2)),
            orcpt: r.get(3),
        });
        entry.1.push(QueuedRecipient {
            address,
            status,
            attempts: r.get::<_, i64>(5).clamp(0, u32::MAX as i64) as u32,
            next_attempt: r.get(6),
            last_error: r.get(7),
        });
    }
    Ok(messages
        .iter()
        .map(|m| {
            let id: i64 = m.get(0);
            let (outbound_recipients, recipients) = by_message.remove(&id).unwrap_or_default();
            QueuedMessage {
                id: QueueId(id),
                blob_id: BlobId(m.get(1)),
                size: m.get::<_, i64>(2).max(0) as u64,
                outbound: Outbound {
                    mail_from: m.get(3),
                    recipients: outbound_recipients,
                    env_id: m.get(4),
                    ret: m.get::<_, Option<&str>>(5).map(ret_from_name),
                    account_id: m.get::<_, Option<i64>>(6).map(AccountId),
                    require_tls: m.get(10),
                    release_at: None,
                },
                created_at: m.get(7),
                recipients,
                held: m.get(8),
                delay_notified: m.get(9),
            }
        })
        .collect())
}

/// Leases up to `limit` due messages; see `QueueStore::queue_claim`.
async fn claim(tx: &Tx<'_>, now: i64, lease_secs: i64, limit: usize) -> Result<Vec<QueueClaim>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = limit.min(i64::MAX as usize / DUE_ROWS_PER_CLAIM as usize) as i64;
    // The due recipients in the order they fell due, a few per wanted
    // message (`due`), then their messages, locked as they are taken. A
    // message another claimer has locked is skipped, not waited for; one
    // it leased and committed meanwhile fails the lease test again when
    // locked (PostgreSQL re-reads a row it locks after a concurrent
    // update), so no two claimers ever lease the same message.
    let rows = tx
        .query(
            "WITH due AS (
                 SELECT r.message_id, r.next_attempt FROM queue_recipient r
                  WHERE r.status = 'pending' AND r.next_attempt <= $1
                    AND EXISTS (SELECT 1 FROM queue_message m
                                 WHERE m.id = r.message_id AND NOT m.held
                                   AND (m.lease_until IS NULL OR m.lease_until <= $1))
                  ORDER BY r.next_attempt, r.message_id
                  LIMIT $3),
             first_due AS (
                 SELECT message_id, min(next_attempt) AS at FROM due GROUP BY message_id)
             SELECT m.id FROM queue_message m JOIN first_due d ON d.message_id = m.id
              WHERE NOT m.held AND (m.lease_until IS NULL OR m.lease_until <= $1)
              ORDER BY d.at, m.id
              LIMIT $2
                FOR UPDATE OF m SKIP LOCKED",
            &[&now, &limit, &(limit * DUE_ROWS_PER_CLAIM)],
        )
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lease_until = now.saturating_add(lease_secs.max(1));
    // A lease number per message, from a sequence: unique on every node,
    // and no row that all claimers would queue on.
    let leased = tx
        .query(
            "UPDATE queue_message SET lease_id = nextval('queue_lease_seq'), lease_until = $2
              WHERE id = ANY($1)
             RETURNING id, lease_id",
            &[&ids, &lease_until],
        )
        .await?;
    let leases: HashMap<i64, i64> = leased.iter().map(|r| (r.get(0), r.get(1))).collect();
    let messages = load(tx, Some(&ids), Some(now)).await?;
    messages
        .into_iter()
        .map(|message| {
            let lease = leases.get(&message.id.0).copied().ok_or_else(|| {
                StoreError::Invalid(format!("queue entry {} lost its lease", message.id))
            })?;
            Ok(QueueClaim {
                message,
                lease: LeaseId(lease),
                lease_until,
            })
        })
        .collect()
}

/// Records attempts under a lease; see `QueueStore::queue_record`. With
/// `finish` false the lease is kept and the entry stays, whatever is left
/// pending (`QueueStore::queue_record_part`).
async fn record(
    tx: &mut Tx<'_>,
    id: QueueId,
    lease: LeaseId,
    attempts: &[RecipientAttempt],
    finish: bool,
) -> Result<QueueState> {
    // Locked before the lease is checked: a claimer after the lease ran
    // out either committed first (the lease is not ours any more) or
    // skips this row until we commit.
    let held: Option<i64> = tx
        .query_opt(
            "SELECT lease_id FROM queue_message WHERE id = $1 FOR UPDATE",
            &[&id.0],
        )
        .await?
        .and_then(|r| r.get(0));
    if held != Some(lease.0) {
        return Err(StoreError::LeaseLost { queue_id: id.0 });
    }
    let at = now();
    for a in attempts {
        let address = text(&a.address);
        if let AttemptOutcome::Postponed { next_attempt } = &a.outcome {
            tx.execute(
                "UPDATE queue_recipient SET next_attempt = $1
                  WHERE message_id = $2 AND address = $3 AND status = 'pending'",
                &[next_attempt, &id.0, &address],
            )
            .await?;
            continue;
        }
        let (status, next, error) = match &a.outcome {
            AttemptOutcome::Delivered => ("delivered", at, None),
            AttemptOutcome::Deferred {
                next_attempt,
                error,
            } => ("pending", *next_attempt, Some(text(error))),
            AttemptOutcome::Failed { error } => ("failed", at, Some(text(error))),
            AttemptOutcome::Postponed { .. } => continue,
        };
        tx.execute(
            "UPDATE queue_recipient
                SET status = $1, attempts = attempts + 1, next_attempt = $2, last_error = $3
              WHERE message_id = $4 AND address = $5 AND status = 'pending'",
            &[&status, &next, &error, &id.0, &address],
        )
        .await?;
        if status != "pending" {
            // The final word, into the submissions that sent it, in this
            // same commit (a client never sees the two disagree).
            submissions::record_outcome(
                tx,
                id,
                &a.address,
                status == "delivered",
                error.as_deref(),
            )
            .await?;
        }
    }
    if !finish {
        return Ok(QueueState::Pending);
    }
    let pending: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM queue_recipient
                             WHERE message_id = $1 AND status = 'pending')",
            &[&id.0],
        )
        .await?
        .get(0);
    if pending {
        tx.execute(
            "UPDATE queue_message SET lease_id = NULL, lease_until = NULL WHERE id = $1",
            &[&id.0],
        )
        .await?;
        return Ok(QueueState::Pending);
    }
    remove_entry(tx, id).await?;
    Ok(QueueState::Done)
}

/// Removes entries nobody holds with no recipient left pending: a worker
/// that recorded every recipient but died before its final record left
/// them. How many.
async fn sweep(tx: &mut Tx<'_>, now: i64) -> Result<usize> {
    // Another node sweeping at once skips what this one has locked.
    let finished: Vec<i64> = tx
        .query(
            "SELECT m.id FROM queue_message m
              WHERE (m.lease_until IS NULL OR m.lease_until <= $1)
                AND NOT EXISTS (SELECT 1 FROM queue_recipient r
                                 WHERE r.message_id = m.id AND r.status = 'pending')
              ORDER BY m.id
                FOR UPDATE SKIP LOCKED",
            &[&now],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &finished {
        remove_entry(tx, QueueId(*id)).await?;
    }
    Ok(finished.len())
}

/// Makes pending recipients due now, of one message or of all; how many.
async fn flush(tx: &Tx<'_>, id: Option<QueueId>) -> Result<usize> {
    // Counted, so a worker that holds destinations as down (in memory)
    // sees an administrator wants them tried now.
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('queue_flushes', 1)
         ON CONFLICT (key) DO UPDATE SET value = meta.value + 1",
        &[],
    )
    .await?;
    let n = tx
        .execute(
            "UPDATE queue_recipient SET next_attempt = $1
              WHERE status = 'pending' AND ($2::bigint IS NULL OR message_id = $2)",
            &[&now(), &id.map(|i| i.0)],
        )
        .await?;
    Ok(n as usize)
}

/// Sums session counts into the TLS report.
async fn tls_report_add(tx: &Tx<'_>, rows: &[TlsReportRow]) -> Result<()> {
    // In key order, so two nodes adding the same rows never deadlock.
    let mut rows: Vec<&TlsReportRow> = rows.iter().collect();
    rows.sort_by(|a, b| {
        (
            &a.day,
            &a.policy_domain,
            &a.policy_type,
            &a.result_type,
            &a.mx_host,
        )
            .cmp(&(
                &b.day,
                &b.policy_domain,
                &b.policy_type,
                &b.result_type,
                &b.mx_host,
            ))
    });
    for r in rows {
        tx.execute(
            "INSERT INTO tls_report (day, policy_domain, policy_type, result_type, mx_host, sessions)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (day, policy_domain, policy_type, result_type, mx_host)
             DO UPDATE SET sessions = tls_report.sessions + excluded.sessions",
            &[
                &text(&r.day),
                &text(&r.policy_domain),
                &text(&r.policy_type),
                &text(&r.result_type),
                &text(&r.mx_host),
                &(r.sessions.min(i64::MAX as u64) as i64),
            ],
        )
        .await?;
    }
    Ok(())
}

/// TLS report rows from `since` on, in byte order as on SQLite.
async fn tls_report_list(tx: &Tx<'_>, since: &str) -> Result<Vec<TlsReportRow>> {
    let rows = tx
        .query(
            "SELECT day, policy_domain, policy_type, result_type, mx_host, sessions
               FROM tls_report WHERE day COLLATE \"C\" >= $1
              ORDER BY day COLLATE \"C\", policy_domain COLLATE \"C\", policy_type COLLATE \"C\",
                       result_type COLLATE \"C\", mx_host COLLATE \"C\"",
            &[&text(since)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TlsReportRow {
            day: r.get(0),
            policy_domain: r.get(1),
            policy_type: r.get(2),
            result_type: r.get(3),
            mx_host: r.get(4),
            sessions: r.get::<_, i64>(5).max(0) as u64,
        })
        .collect())
}

/// A range of a queued message's bytes (no account owns them).
async fn read(tx: &Tx<'_>, id: QueueId, offset: u64, len: usize) -> Result<Vec<u8>> {
    let hash: String = tx
        .query_opt(
            "SELECT blob_hash FROM queue_message WHERE id = $1",
            &[&id.0],
        )
        .await?
        .ok_or_else(|| StoreError::not_found("queued message", id.to_string()))?
        .get(0);
    blobs::read_range(tx, &BlobId(hash), offset, len).await
}

#[async_trait]
impl QueueStore for PgStore {
    async fn enqueue_blob(
        &self,
        account: AccountId,
        blob_id: &BlobId,
        outbound: Outbound,
    ) -> Result<QueueId> {
        let outbound = &outbound;
        self.write(move |tx| Box::pin(enqueue_existing(tx, account, blob_id, outbound)))
            .await
    }

    async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        self.read(|tx| Box::pin(load(tx, None, None))).await
    }

    async fn queue_claim(
        &self,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueClaim>> {
        self.write(move |tx| Box::pin(claim(tx, now, lease_secs, limit)))
            .await
    }

    async fn queue_record(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<QueueState> {
        let attempts = &attempts;
        self.write(move |tx| Box::pin(record(tx, id, lease, attempts, true)))
            .await
    }

    async fn queue_record_part(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<()> {
        let attempts = &attempts;
        self.write(move |tx| Box::pin(record(tx, id, lease, attempts, false)))
            .await
            .map(|_| ())
    }

    async fn queue_read(&self, id: QueueId, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.read(move |tx| Box::pin(read(tx, id, offset, len)))
            .await
    }

    async fn queue_remove(&self, id: QueueId) -> Result<()> {
        self.write(move |tx| Box::pin(remove_entry(tx, id))).await
    }

    async fn queue_flush(&self, id: Option<QueueId>) -> Result<usize> {
        self.write(move |tx| Box::pin(flush(tx, id))).await
    }

    async fn queue_flush_count(&self) -> Result<u64> {
        self.read(|tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt("SELECT value FROM meta WHERE key = 'queue_flushes'", &[])
                    .await?;
                Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
            })
        })
        .await
    }

    async fn queue_hold(&self, id: QueueId, on: bool) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                let changed = tx
                    .execute(
                        "UPDATE queue_message SET held = $1 WHERE id = $2",
                        &[&on, &id.0],
                    )
                    .await?;
                if changed == 0 {
                    return Err(StoreError::not_found("queued message", id.to_string()));
                }
                Ok(())
            })
        })
        .await
    }

    async fn queue_release_leases(&self) -> Result<usize> {
        self.write(|tx| {
            Box::pin(async move {
                let freed = tx
                    .execute(
                        "UPDATE queue_message SET lease_id = NULL, lease_until = NULL
                          WHERE lease_id IS NOT NULL",
                        &[],
                    )
                    .await?;
                sweep(tx, now()).await?;
                Ok(freed as usize)
            })
        })
        .await
    }

    async fn queue_sweep(&self, now: i64) -> Result<usize> {
        self.write(move |tx| Box::pin(sweep(tx, now))).await
    }

    async fn queue_postpone_domain(&self, domain: &str, until: i64) -> Result<usize> {
        let domain = &text(domain).to_ascii_lowercase();
        self.write(move |tx| {
            Box::pin(async move {
                // `COLLATE "C"`: lower() folds ASCII only, as SQLite's does,
                // whatever the database's locale.
                let n = tx
                    .execute(
                        "UPDATE queue_recipient SET next_attempt = $2
                          WHERE status = 'pending' AND next_attempt < $2
                            AND lower(right(address, length($1) + 1) COLLATE \"C\") = '@' || $1",
                        &[domain, &until],
                    )
                    .await?;
                Ok(n as usize)
            })
        })
        .await
    }

    async fn tls_report_add(&self, rows: Vec<TlsReportRow>) -> Result<()> {
        let rows = &rows;
        self.write(move |tx| Box::pin(tls_report_add(tx, rows)))
            .await
    }

    async fn tls_report_list(&self, since_day: &str) -> Result<Vec<TlsReportRow>> {
        self.read(move |tx| Box::pin(tls_report_list(tx, since_day)))
            .await
    }

    async fn queue_delay_notified(&self, id: QueueId) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE queue_message SET delay_notified = TRUE WHERE id = $1",
                    &[&id.0],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }
}
