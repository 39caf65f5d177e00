//! Change notifications between nodes with LISTEN/NOTIFY.
//!
//! Every write transaction ends with `pg_notify('tern_change',
//! 'account:modseq')` for each account it changed ([`super::Tx`]);
//! PostgreSQL delivers a notification only after its transaction commits,
//! to every listening connection, in commit order. Each node keeps one
//! connection listening and passes what arrives to its hub, so an IDLE on
//! node A wakes for a delivery that node C committed.
//!
//! A lost listening connection (a database restart) loses the
//! notifications sent meanwhile: once listening again, the node reads the
//! highest modseq of every account someone on it is subscribed to, which
//! wakes exactly the sessions that missed something.

use crate::hub::NotificationHub;
use crate::types::{AccountId, ModSeq};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// The channel every node listens on.
pub const CHANNEL: &str = "tern_change";

/// The task that listens; stopped when the store closes.
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub fn start(
        config: tokio_postgres::Config,
        pool: Pool,
        hub: Arc<NotificationHub>,
    ) -> Listener {
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            let mut first = true;
            loop {
                match listen(&config, &pool, &hub, !first).await {
                    Ok(()) => backoff = Duration::from_millis(50),
                    Err(e) => {
                        tracing::warn!("listening for changes from other nodes: {e}");
                    }
                }
                first = false;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
        Listener { task }
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens until the connection ends. After a reconnection (`catch_up`),
/// wakes the subscribers of accounts whose modseq moved while deaf.
async fn listen(
    config: &tokio_postgres::Config,
    pool: &Pool,
    hub: &NotificationHub,
    catch_up: bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("change listener connection ended: {e}");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    if catch_up {
        wake_subscribed(pool, hub).await;
    }
    while let Some(payload) = rx.recv().await {
        if let Some((account, modseq)) = parse(&payload) {
            hub.notify(account, modseq);
        }
    }
    driver.abort();
    Ok(())
}

/// `account:modseq` as [`super::Tx`] writes it.
fn parse(payload: &str) -> Option<(AccountId, ModSeq)> {
    let (account, modseq) = payload.split_once(':')?;
    Some((
        AccountId(account.parse().ok()?),
        ModSeq(modseq.parse().ok()?),
    ))
}

async fn wake_subscribed(pool: &Pool, hub: &NotificationHub) {
    let accounts: Vec<i64> = hub.subscribed_accounts().iter().map(|a| a.0).collect();
    if accounts.is_empty() {
        return;
    }
    let rows = match pool.get().await {
        Ok(client) => {
            client
                .query(
                    "SELECT id, highest_modseq FROM account WHERE id = ANY($1)",
                    &[&accounts],
                )
                .await
        }
        Err(e) => {
            tracing::warn!("catching up on missed changes: {e}");
            return;
        }
    };
    match rows {
        Ok(rows) => {
            for row in rows {
                hub.notify(AccountId(row.get(0)), ModSeq(row.get::<_, i64>(1) as u64));
            }
        }
        Err(e) => tracing::warn!("catching up on missed changes: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_account_and_modseq() {
        assert_eq!(parse("7:42"), Some((AccountId(7), ModSeq(42))));
        assert_eq!(parse("7"), None);
        assert_eq!(parse("x:1"), None);
    }
}
