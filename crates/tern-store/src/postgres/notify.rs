//! Change notifications between nodes with LISTEN/NOTIFY.
//!
//! Every write transaction ends with `pg_notify('tern_change',
//! 'node:account:modseq')` for each account it changed ([`super::Tx`]);
//! PostgreSQL delivers a notification only after its transaction commits,
//! to every listening connection, in commit order. Each node keeps one
//! connection listening and passes what arrives to its hub, so an IDLE on
//! node A wakes for a delivery that node C committed. A node skips its
//! own notifications: it told its hub at the commit already, and its own
//! arriving late could wake a subscriber that came in between for a commit
//! older than its subscription.
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

/// A name for this store in the notifications it sends, unique among the
/// nodes (identical nodes may share a hostname and, in containers, a PID).
pub fn node_id() -> Arc<str> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}.{nanos:x}.{n}", std::process::id()).into()
}

/// The task that listens; stopped when the store closes.
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub fn start(
        config: tokio_postgres::Config,
        tls: super::tls::PgTls,
        pool: Pool,
        hub: Arc<NotificationHub>,
        node: Arc<str>,
    ) -> (Listener, tokio::sync::watch::Receiver<bool>) {
        let (listening, ready) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match listen(&config, &tls, &pool, &hub, &node, &listening).await {
                    Ok(()) => backoff = Duration::from_millis(50),
                    Err(e) => {
                        tracing::warn!("listening for changes from other nodes: {e}");
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
        (Listener { task }, ready)
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

/// Listens until the connection ends; `listening` is told once LISTEN is
/// in effect. After a reconnection, wakes the subscribers of accounts
/// whose modseq moved while deaf (the first time, the store is still
/// opening: nobody can have subscribed).
async fn listen(
    config: &tokio_postgres::Config,
    tls: &super::tls::PgTls,
    pool: &Pool,
    hub: &NotificationHub,
    node: &str,
    listening: &tokio::sync::watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
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
    if !listening.send_replace(true) {
        // Not the first connection: what committed while deaf was not
        // heard.
        wake_subscribed(pool, hub).await;
    }
    while let Some(payload) = rx.recv().await {
        match parse(&payload) {
            Some((from, _, _)) if from == node => {}
            Some((_, account, modseq)) => hub.notify(account, modseq),
            None => tracing::debug!("ignoring change notification {payload:?}"),
        }
    }
    driver.abort();
    Ok(())
}

/// `node:account:modseq` as [`super::Tx`] writes it.
fn parse(payload: &str) -> Option<(&str, AccountId, ModSeq)> {
    let (node, rest) = payload.split_once(':')?;
    let (account, modseq) = rest.split_once(':')?;
    Some((
        node,
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
        assert_eq!(parse("n1:7:42"), Some(("n1", AccountId(7), ModSeq(42))));
        assert_eq!(parse("n1:7"), None);
        assert_eq!(parse("n1:x:1"), None);
    }
}
