//! What the nodes agree on besides the mail ([`ClusterStore`]): POP3
//! maildrop locks as leases with an expiry (a node that dies holding one
//! frees it when the lease runs out), and failed logins per client
//! address, counted by every node together.

use super::PgStore;
use crate::error::Result;
use crate::store::ClusterStore;
use crate::types::AccountId;
use async_trait::async_trait;

#[async_trait]
impl ClusterStore for PgStore {
    fn shared_by_nodes(&self) -> bool {
        true
    }

    async fn maildrop_lock(
        &self,
        account: AccountId,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        self.write(move |tx| {
            Box::pin(async move {
                // Inserted, or taken over from an expired (or our own)
                // holder; a live lock of someone else's stays, and then
                // RETURNING gives nothing. Times are the database's clock,
                // one clock for every node, whatever theirs say.
                let lease = (expires_at - now).max(1);
                let row = tx
                    .query_opt(
                        "WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::bigint AS now)
                         INSERT INTO maildrop_lock (account_id, holder, expires_at)
                         SELECT $1, $2, clock.now + $3 FROM clock
                         ON CONFLICT (account_id) DO UPDATE
                            SET holder = excluded.holder, expires_at = excluded.expires_at
                          WHERE maildrop_lock.holder = excluded.holder
                             OR maildrop_lock.expires_at
                                <= extract(epoch FROM clock_timestamp())::bigint
                         RETURNING holder",
                        &[&account.0, &holder, &lease],
                    )
                    .await?;
                Ok(row.is_some())
            })
        })
        .await
    }

    async fn maildrop_unlock(&self, account: AccountId, holder: &str) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM maildrop_lock WHERE account_id = $1 AND holder = $2",
                    &[&account.0, &holder],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn login_failures(&self, client: &str, since: i64, upto: Option<i64>) -> Result<u32> {
        self.read(move |tx| {
            Box::pin(async move {
                let n: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM login_failure
                          WHERE client = $1 AND at >= $2 AND ($3::bigint IS NULL OR id <= $3)",
                        &[&client, &since, &upto],
                    )
                    .await?
                    .get(0);
                Ok(n.clamp(0, u32::MAX as i64) as u32)
            })
        })
        .await
    }

    async fn record_login_failure(&self, client: &str, now: i64, since: i64) -> Result<i64> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM login_failure WHERE client = $1 AND at < $2",
                    &[&client, &since],
                )
                .await?;
                let row = tx
                    .query_one(
                        "INSERT INTO login_failure (client, at) VALUES ($1, $2) RETURNING id",
                        &[&client, &now],
                    )
                    .await?;
                Ok(row.get(0))
            })
        })
        .await
    }

    async fn forget_login_failure(&self, client: &str, record: i64) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM login_failure WHERE client = $1 AND id = $2",
                    &[&client, &record],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn clear_login_failures(&self, client: &str) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute("DELETE FROM login_failure WHERE client = $1", &[&client])
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn clients_with_login_failures(
        &self,
        since: i64,
        min: u32,
    ) -> Result<Vec<(String, u32, i64)>> {
        self.read(move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT client, count(*), max(at) FROM login_failure WHERE at >= $1
                          GROUP BY client HAVING count(*) >= $2 ORDER BY client",
                        &[&since, &i64::from(min)],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let n: i64 = r.get(1);
                        (r.get(0), n.clamp(0, u32::MAX as i64) as u32, r.get(2))
                    })
                    .collect())
            })
        })
        .await
    }
}
