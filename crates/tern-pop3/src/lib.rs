//! `tern-pop3`: the POP3 server (RFC 1939) on ports 110 (STLS, RFC 2595)
//! and 995 (implicit TLS, RFC 8314), with CAPA (RFC 2449), SASL PLAIN
//! (RFC 5034), RESP-CODES and AUTH-RESP-CODE (RFC 3206) and UTF8 (RFC 6856).
//!
//! The maildrop is INBOX as it stood at login: numbers and sizes hold for
//! the whole session while IMAP, SMTP or others change the mailbox. UIDL is
//! the email's id, stable for ever. DELE takes effect only at QUIT, through
//! the Store like any other expunge; a dropped connection removes nothing.
//! One POP3 session at a time per maildrop (`[IN-USE]` otherwise).

pub mod command;
mod session;
mod stream;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tern_core::config::{Limits, Pop3Config};
use tern_mail::Mail;
use tern_store::{AccountId, Store};
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

/// Whether a listener speaks TLS from the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Port 110: plaintext, STLS offered.
    Plain,
    /// Port 995: implicit TLS.
    Tls,
}

/// Everything POP3 sessions share.
pub struct Pop3Server {
    pub hostname: String,
    pub store: Arc<dyn Store>,
    pub tls: Arc<ServerConfig>,
    pub config: Pop3Config,
    pub limits: Limits,
    /// Login.
    pub mail: Arc<Mail>,
    /// Which connections get a protocol trace.
    pub tracer: Arc<tern_core::trace::Tracer>,
    /// Maildrops held by a session (RFC 1939 §4: exclusive access).
    in_use: Mutex<HashSet<AccountId>>,
    /// When each account last logged in, for LOGIN-DELAY.
    last_login: Mutex<HashMap<AccountId, Instant>>,
}

impl Pop3Server {
    pub fn new(
        mail: Arc<Mail>,
        tls: Arc<ServerConfig>,
        config: Pop3Config,
        limits: Limits,
    ) -> Pop3Server {
        Pop3Server {
            hostname: mail.hostname().to_string(),
            store: mail.store().clone(),
            tls,
            config,
            limits,
            mail,
            tracer: Arc::new(tern_core::trace::Tracer::off()),
            in_use: Mutex::new(HashSet::new()),
            last_login: Mutex::new(HashMap::new()),
        }
    }

    /// Traces the connections `tracer` picks.
    pub fn with_tracer(mut self, tracer: Arc<tern_core::trace::Tracer>) -> Pop3Server {
        self.tracer = tracer;
        self
    }

    /// Runs one connection to its end. `admission` is `Err` when a connection
    /// limit was reached; `stopping` turns true at shutdown.
    pub async fn handle(
        self: Arc<Self>,
        stream: impl tern_core::io::Duplex + 'static,
        peer: SocketAddr,
        mode: Mode,
        admission: Result<
            tern_core::admission::ConnectionSlot,
            tern_core::admission::LimitExceeded,
        >,
        stopping: watch::Receiver<bool>,
    ) {
        session::run(self, stream, peer, mode, admission, stopping).await
    }

    /// Takes the maildrop lock of `account`, if no other session holds it:
    /// first among this server's sessions, then in the store, where the
    /// other nodes sharing it look (RFC 1939 §8: one session at a time).
    async fn lock_maildrop(
        self: &Arc<Self>,
        account: AccountId,
    ) -> Result<Option<MaildropLock>, tern_store::StoreError> {
        let taken = self
            .in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account);
        if !taken {
            return Ok(None);
        }
        let mut lock = MaildropLock {
            server: self.clone(),
            account,
            holder: None,
            renewal: None,
            lost: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let holder = lock_holder();
        // Named before asking, so that an answer lost after the store took
        // the lock (or this session cancelled meanwhile) still releases it.
        lock.holder = Some(holder.clone());
        let now = tern_core::time::unix_now();
        if !self
            .store
            .maildrop_lock(account, &holder, now, now + MAILDROP_LEASE_SECS)
            .await?
        {
            return Ok(None);
        }
        // Renewed while held, so that only a node that died leaves it to
        // expire. A lease that could not be renewed in time (the database
        // away longer than the lease) may have gone to another session:
        // the lock is then lost, and QUIT deletes nothing.
        let (store, renewing, lost) = (self.store.clone(), holder.clone(), lock.lost.clone());
        lock.renewal = Some(tokio::spawn(async move {
            let every = std::time::Duration::from_secs(MAILDROP_LEASE_SECS as u64 / 3);
            let mut renewed = tern_core::time::unix_now();
            loop {
                tokio::time::sleep(every).await;
                let now = tern_core::time::unix_now();
                match store
                    .maildrop_lock(account, &renewing, now, now + MAILDROP_LEASE_SECS)
                    .await
                {
                    Ok(true) => renewed = now,
                    Ok(false) => {
                        lost.store(true, std::sync::atomic::Ordering::Release);
                        tracing::warn!("pop3: the maildrop lock went to another session");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("pop3: renewing a maildrop lock: {e}");
                        if now - renewed >= MAILDROP_LEASE_SECS {
                            lost.store(true, std::sync::atomic::Ordering::Release);
                        }
                    }
                }
            }
        }));
        Ok(Some(lock))
    }
}

/// How long a maildrop lock in the store outlives a node that died
/// holding it; renewed every third of it while the session lasts.
const MAILDROP_LEASE_SECS: i64 = 120;

/// A name for one session's hold on a maildrop, unique across nodes
/// (identical nodes may share a hostname and, in containers, a PID).
fn lock_holder() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Held while a session has the maildrop; released on drop, whatever ends
/// the session.
pub(crate) struct MaildropLock {
    server: Arc<Pop3Server>,
    account: AccountId,
    /// This session's name in the store's lock, once it has it.
    holder: Option<String>,
    renewal: Option<tokio::task::JoinHandle<()>>,
    /// Set when the store's lease could not be kept.
    lost: Arc<std::sync::atomic::AtomicBool>,
}

impl MaildropLock {
    /// Whether another session may have had the maildrop meanwhile.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if let Some(holder) = self.holder.take() {
            let (store, account) = (self.server.store.clone(), self.account);
            // Dropped at the end of a session, inside the runtime.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = store.maildrop_unlock(account, &holder).await {
                        tracing::warn!("pop3: releasing a maildrop lock: {e}");
                    }
                });
            }
        }
        self.server
            .in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.account);
    }
}

/// Replays the seed corpus of the `pop3_command` fuzz target
/// (fuzz/corpus/, see fuzz/README.md): no entry may panic.
#[cfg(test)]
mod fuzz_corpus {
    #[test]
    fn pop3_command() {
        tern_core::fuzz_corpus::replay("pop3_command", |data| {
            if let Err(e) = crate::command::parse(data) {
                let _ = e.to_string();
            }
        });
    }
}
