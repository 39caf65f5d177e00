//! The per-account change journal in PostgreSQL: the same rows as the
//! SQLite backend's (see `sqlite/journal.rs` for the model: one row per
//! change stamped with the operation's modseq, `expunged` rows as the
//! tombstones QRESYNC and JMAP `/changes` read, retention with a floor).

use super::{PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::sqlite::journal::{decode, encode, PRUNE_STEP};
use crate::store::ChangeStore;
use crate::types::*;
use async_trait::async_trait;
use tokio::sync::watch;

/// Writes one journal row.
pub async fn record(
    tx: &Tx<'_>,
    account: AccountId,
    modseq: ModSeq,
    kind: &ChangeKind,
) -> Result<()> {
    let (name, collection, object, uid) = encode(kind);
    tx.execute(
        "INSERT INTO journal (account_id, modseq, type, collection, object, kind, uid, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &account.0,
            &(modseq.0 as i64),
            &kind.object_type().as_str(),
            &collection,
            &object,
            &name,
            &uid.map(i64::from),
            &super::now(),
        ],
    )
    .await?;
    Ok(())
}

/// The modseq at or below which the account's changes were pruned.
pub async fn floor(tx: &Tx<'_>, account: AccountId) -> Result<ModSeq> {
    tx.query_opt(
        "SELECT journal_floor FROM account WHERE id = $1",
        &[&account.0],
    )
    .await?
    .map(|r| ModSeq(r.get::<_, i64>(0).max(0) as u64))
    .ok_or_else(|| StoreError::not_found("account", account))
}

pub async fn highest_modseq(tx: &Tx<'_>, account: AccountId) -> Result<ModSeq> {
    tx.query_opt(
        "SELECT highest_modseq FROM account WHERE id = $1",
        &[&account.0],
    )
    .await?
    .map(|r| ModSeq(r.get::<_, i64>(0) as u64))
    .ok_or_else(|| StoreError::not_found("account", account))
}

/// Deletes up to [`PRUNE_STEP`] rows written before `before`, raising each
/// affected account's floor to the highest modseq deleted.
async fn prune_step(tx: &Tx<'_>, before: i64) -> Result<u64> {
    // Rows are in `seq` order and `at` grows with it: the doomed rows are
    // a prefix.
    let cut: Option<i64> = tx
        .query_one(
            "SELECT max(seq) FROM (SELECT seq, at FROM journal ORDER BY seq LIMIT $1) j
              WHERE at < $2",
            &[&PRUNE_STEP, &before],
        )
        .await?
        .get(0);
    let Some(cut) = cut else { return Ok(0) };
    // One statement: the floors rise by exactly the rows deleted, even one
    // another node commits in between.
    let n: i64 = tx
        .query_one(
            "WITH d AS (DELETE FROM journal WHERE seq <= $1 RETURNING account_id, modseq),
                  f AS (UPDATE account a SET journal_floor = greatest(a.journal_floor, j.top)
                          FROM (SELECT account_id, max(modseq) AS top FROM d
                                 GROUP BY account_id) j
                         WHERE a.id = j.account_id)
             SELECT count(*) FROM d",
            &[&cut],
        )
        .await?
        .get(0);
    Ok(n.max(0) as u64)
}

async fn mailbox_changes(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    since: ModSeq,
) -> Result<MailboxChanges> {
    let mb = super::mailboxes::get(tx, account, mailbox).await?;
    let changed = super::messages::list_changed(tx, account, mailbox, since).await?;
    // Pruned changes matter only if this mailbox changed after `since`.
    let incomplete = since < floor(tx, account).await? && since < mb.highest_modseq;
    let expunged = tx
        .query(
            "SELECT DISTINCT uid FROM journal
              WHERE collection = $1 AND kind = 'expunged' AND modseq > $2 ORDER BY uid",
            &[&mailbox.0, &(since.0 as i64)],
        )
        .await?
        .iter()
        .map(|r| Uid(r.get::<_, i64>(0) as u32))
        .collect();
    Ok(MailboxChanges {
        highest_modseq: mb.highest_modseq,
        changed,
        expunged,
        incomplete,
    })
}

/// Journal rows after `since`, at most `limit` but never part of one
/// modseq (as in the SQLite backend).
async fn account_changes(
    tx: &Tx<'_>,
    account: AccountId,
    since: ModSeq,
    limit: usize,
) -> Result<Vec<Change>> {
    let floor = floor(tx, account).await?;
    if since < floor {
        return Err(StoreError::ChangesExpired { floor });
    }
    let limit = limit.clamp(1, i64::MAX as usize - 1);
    let mut rows = journal_rows(tx, account, since, None, Some(limit + 1)).await?;
    if rows.len() > limit {
        let cut = rows[limit].modseq;
        if rows[limit - 1].modseq != cut {
            rows.truncate(limit);
        } else {
            rows.retain(|c| c.modseq < cut);
            if rows.is_empty() {
                rows = journal_rows(tx, account, ModSeq(cut.0 - 1), Some(cut), None).await?;
            }
        }
    }
    Ok(rows)
}

/// Rows with `since < modseq <= until`, in order, at most `limit`.
async fn journal_rows(
    tx: &Tx<'_>,
    account: AccountId,
    since: ModSeq,
    until: Option<ModSeq>,
    limit: Option<usize>,
) -> Result<Vec<Change>> {
    let rows = tx
        .query(
            "SELECT modseq, kind, collection, object, uid FROM journal
              WHERE account_id = $1 AND modseq > $2 AND modseq <= $3
              ORDER BY modseq, seq LIMIT $4",
            &[
                &account.0,
                &(since.0 as i64),
                &until.map_or(i64::MAX, |u| u.0 as i64),
                &limit.map(|l| l as i64),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let uid: Option<i64> = r.get(4);
            decode(r.get(1), r.get(2), r.get(3), uid.map(|u| u as u32)).map(|kind| Change {
                modseq: ModSeq(r.get::<_, i64>(0) as u64),
                kind,
            })
        })
        .collect())
}

#[async_trait]
impl ChangeStore for PgStore {
    async fn highest_modseq(&self, account: AccountId) -> Result<ModSeq> {
        self.read_one(move |tx| Box::pin(highest_modseq(tx, account)))
            .await
    }

    async fn mailbox_changes(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<MailboxChanges> {
        self.read(move |tx| Box::pin(mailbox_changes(tx, account, mailbox, since)))
            .await
    }

    async fn account_changes(
        &self,
        account: AccountId,
        since: ModSeq,
        limit: usize,
    ) -> Result<Vec<Change>> {
        self.read(move |tx| Box::pin(account_changes(tx, account, since, limit)))
            .await
    }

    async fn prune_journal(&self, before: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self
                .write(move |tx| Box::pin(prune_step(tx, before)))
                .await?;
            total += n;
            if n < PRUNE_STEP as u64 {
                return Ok(total);
            }
        }
    }

    fn subscribe(&self, account: AccountId) -> watch::Receiver<ModSeq> {
        // Seeded with 0: the first commit after subscribing always wakes
        // the subscriber, and it asks for changes since what it has seen.
        self.hub().subscribe(account, ModSeq(0))
    }
}
