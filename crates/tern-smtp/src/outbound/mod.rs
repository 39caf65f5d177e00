//! The outbound worker (issue 12, first part): takes due queue entries
//! with a lease (two workers never hold one message), delivers queued
//! local recipients locally (those deferred over quota at arrival) and
//! sends the others through the configured smarthost; records each
//! recipient's outcome durably as soon as the transaction ends; retries
//! temporary failures with growing pauses; and on a permanent failure, or
//! after `max_queue_days`, bounces to the sender with a delivery status
//! notification ([`dsn`]) — into the INBOX of a local sender, through the
//! queue to a remote one, never for a null sender.
//!
//! Direct delivery to each domain's MX (DNS, MTA-STS, DANE) is not built
//! yet: without a relay, remote recipients wait and bounce at expiry with
//! a notification that says why.

pub mod dsn;

use crate::client::{ClientError, Envelope as ClientEnvelope, Session, Timeouts};
use dsn::Notice;
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::{OutboundConfig, RelayTls};
use tern_mail::Mail;
use tern_store::{
    AttemptOutcome, Delivery, DeliveryTarget, DsnNotify, Outbound, OutboundRecipient, QueueClaim,
    RecipientAttempt, RecipientStatus,
};
use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

/// How often the queue is looked at when it had nothing due.
const POLL: Duration = Duration::from_secs(2);
/// How long a claimed message is ours before another worker may take it.
const LEASE_SECS: i64 = 600;
/// Messages claimed at once.
const BATCH: usize = 8;
/// The longest pause between two attempts.
const MAX_BACKOFF_SECS: i64 = 4 * 3600;
/// How long connecting to the relay may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Worker {
    mail: Arc<Mail>,
    config: OutboundConfig,
    /// For STARTTLS/implicit TLS to the relay; `None` when the system's
    /// roots could not be read (TLS to the relay then fails, deferred).
    tls: Option<Arc<ClientConfig>>,
    timeouts: Timeouts,
}

impl Worker {
    pub fn new(mail: Arc<Mail>, config: OutboundConfig, tls: Option<Arc<ClientConfig>>) -> Worker {
        Worker {
            mail,
            config,
            tls,
            timeouts: Timeouts::default(),
        }
    }

    /// Works the queue until `stopping` turns true.
    pub async fn run_until(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        if self.config.relay.is_empty() {
            tracing::info!(
                "outbound: no [outbound] relay; mail for other domains waits in the queue (direct MX delivery is not built yet)"
            );
        }
        loop {
            if *stopping.borrow() {
                return;
            }
            let worked = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("outbound: reading the queue: {e}");
                    0
                }
            };
            if worked == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stopping.changed() => return,
                }
            }
        }
    }

    /// One pass: claims what is due and works it; how many were claimed.
    pub async fn round(&self) -> Result<usize, tern_store::StoreError> {
        let now = tern_core::time::unix_now();
        let claims = self
            .mail
            .store()
            .queue_claim(now, LEASE_SECS, BATCH)
            .await?;
        let n = claims.len();
        for claim in claims {
            let id = claim.message.id;
            if let Err(e) = self.work(claim).await {
                tracing::warn!("outbound: queue entry {id}: {e}");
            }
        }
        Ok(n)
    }

    async fn work(&self, claim: QueueClaim) -> Result<(), tern_store::StoreError> {
        let store = self.mail.store().clone();
        let msg = &claim.message;
        let raw = read_all(&store, msg.id, msg.size).await?;
        let now = tern_core::time::unix_now();
        let expired = now > msg.created_at + self.config.max_queue_days as i64 * 86_400;
        let due: Vec<&tern_store::QueuedRecipient> = msg
            .recipients
            .iter()
            .filter(|r| r.status == RecipientStatus::Pending)
            .collect();
        let mut attempts = Vec::new();
        let mut remote = Vec::new();
        for r in &due {
            let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
            if self.mail.directory().is_local_domain(domain).await? {
                let outcome = self
                    .deliver_locally(&r.address, &raw, r.attempts, now)
                    .await;
                attempts.push(RecipientAttempt {
                    address: r.address.clone(),
                    outcome,
                });
            } else {
                remote.push(*r);
            }
        }
        if !remote.is_empty() {
            let outcomes = self.relay(&msg.outbound, &remote, &raw, now).await;
            attempts.extend(outcomes);
        }
        // Expiry turns what is still deferred into a failure.
        for a in attempts.iter_mut() {
            if let (true, AttemptOutcome::Deferred { error, .. }) = (expired, &a.outcome) {
                a.outcome = AttemptOutcome::Failed {
                    error: format!(
                        "gave up after {} days; last error: {error}",
                        self.config.max_queue_days
                    ),
                };
            }
        }
        // What the sender asked to hear of (RFC 3461 §4.1 NOTIFY): a
        // failure unless NEVER, a success only with SUCCESS.
        let submitted = |address: &str| {
            msg.outbound
                .recipients
                .iter()
                .find(|r| r.address.eq_ignore_ascii_case(address))
        };
        let notify = |address: &str| submitted(address).map(|r| r.notify).unwrap_or_default();
        let orcpt = |address: &str| submitted(address).and_then(|r| r.orcpt.clone());
        let relay_name = (!self.config.relay.is_empty()).then(|| self.config.relay.clone());
        let failures: Vec<Notice> = attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                AttemptOutcome::Failed { error } if notify(&a.address).failure => Some(Notice {
                    action: "failed",
                    original_recipient: orcpt(&a.address),
                    recipient: a.address.clone(),
                    status: status_of(error),
                    diagnostic: error.clone(),
                    remote_mta: None,
                }),
                AttemptOutcome::Delivered if notify(&a.address).success => {
                    let relayed = remote.iter().any(|r| r.address == a.address);
                    Some(Notice {
                        // Past us, the next hop reports on (RFC 3464 §2.3.3).
                        action: if relayed { "relayed" } else { "delivered" },
                        original_recipient: orcpt(&a.address),
                        recipient: a.address.clone(),
                        status: "2.0.0".into(),
                        diagnostic: "smtp; 250 accepted".into(),
                        remote_mta: if relayed { relay_name.clone() } else { None },
                    })
                }
                _ => None,
            })
            .collect();
        // Recorded first: a recipient the next hop took is never sent twice.
        store.queue_record(msg.id, claim.lease, attempts).await?;
        if !failures.is_empty() {
            self.bounce(&msg.outbound, &failures, &raw, now).await;
        }
        Ok(())
    }

    /// A queued local recipient (over quota at arrival): delivered to its
    /// INBOX now, or deferred again while the quota is still full.
    async fn deliver_locally(
        &self,
        address: &str,
        raw: &[u8],
        attempts: u32,
        now: i64,
    ) -> AttemptOutcome {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return AttemptOutcome::Failed {
                error: format!("local; 5.1.3 bad address {address}"),
            };
        };
        let expansion = match self.mail.directory().resolve(local, domain).await {
            Ok(Some(e)) if !e.accounts.is_empty() => e,
            Ok(_) => {
                return AttemptOutcome::Failed {
                    error: format!("local; 5.1.1 no mailbox {address} here any more"),
                }
            }
            Err(e) => return deferred(attempts, now, format!("local; 4.3.0 {e}")),
        };
        let prepared = match tern_mail::prepare(raw.to_vec()).await {
            Ok(p) => p,
            Err(e) => return deferred(attempts, now, format!("local; 4.3.0 {e}")),
        };
        let delivery = Delivery {
            message: prepared,
            recipients: expansion
                .accounts
                .iter()
                .map(|a| DeliveryTarget::inbox(*a))
                .collect(),
            received_at: now,
        };
        match self.mail.store().deliver(delivery).await {
            Ok(results) if results.iter().all(|r| r.is_ok()) => AttemptOutcome::Delivered,
            Ok(results) => {
                let why = results
                    .into_iter()
                    .find_map(|r| r.err())
                    .map_or_else(|| "not stored".to_string(), |e| e.to_string());
                deferred(attempts, now, format!("local; 4.2.2 {why}"))
            }
            Err(e) => deferred(attempts, now, format!("local; 4.3.0 {e}")),
        }
    }

    /// The remote recipients through the smarthost, one transaction.
    async fn relay(
        &self,
        outbound: &Outbound,
        recipients: &[&tern_store::QueuedRecipient],
        raw: &[u8],
        now: i64,
    ) -> Vec<RecipientAttempt> {
        let attempts = recipients.iter().map(|r| r.attempts).max().unwrap_or(0);
        let all = |outcome: AttemptOutcome| -> Vec<RecipientAttempt> {
            recipients
                .iter()
                .map(|r| RecipientAttempt {
                    address: r.address.clone(),
                    outcome: outcome.clone(),
                })
                .collect()
        };
        if self.config.relay.is_empty() {
            return all(deferred(
                attempts,
                now,
                "local; 4.4.1 no route: this server has no [outbound] relay and does not deliver to other servers directly yet".into(),
            ));
        }
        let session = match self.connect().await {
            Ok(s) => s,
            Err(e) if e.is_transient() => {
                return all(deferred(
                    attempts,
                    now,
                    format!("relay {}: {e}", self.config.relay),
                ))
            }
            Err(e) => {
                return all(AttemptOutcome::Failed {
                    error: format!("smtp; relay {}: {e}", self.config.relay),
                })
            }
        };
        let mut session = session;
        let envelope = ClientEnvelope {
            mail_from: outbound.mail_from.clone(),
            mail_params: Vec::new(),
            rcpt_to: recipients
                .iter()
                .map(|r| (r.address.clone(), Vec::new()))
                .collect(),
        };
        let message = strip_return_path(raw);
        let outcome = match session.send(&envelope, &message).await {
            Ok(o) => o,
            Err(e) => {
                return all(deferred(
                    attempts,
                    now,
                    format!("relay {}: {e}", self.config.relay),
                ))
            }
        };
        session.quit().await;
        recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let reply = outcome.for_recipient(i);
                let text = format!("smtp; {reply}");
                RecipientAttempt {
                    address: r.address.clone(),
                    outcome: if reply.is_positive() {
                        AttemptOutcome::Delivered
                    } else if reply.is_permanent() {
                        AttemptOutcome::Failed { error: text }
                    } else {
                        deferred(r.attempts, now, text)
                    },
                }
            })
            .collect()
    }

    /// A session with the relay: connected, TLS as configured, logged in.
    async fn connect(&self) -> Result<Session, ClientError> {
        let addr = self.config.relay.as_str();
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(CONNECT_TIMEOUT))??;
        let loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
        let name = || {
            ServerName::try_from(host.to_string())
                .map_err(|e| ClientError::Tls(std::io::Error::other(e.to_string())))
        };
        let tls = || {
            self.tls.clone().ok_or_else(|| {
                ClientError::Tls(std::io::Error::other("no trusted roots could be read"))
            })
        };
        let hostname = self.mail.hostname().to_string();
        let mut session = match self.config.relay_tls {
            RelayTls::Implicit => {
                let connector = tokio_rustls::TlsConnector::from(tls()?);
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name()?, tcp))
                    .await
                    .map_err(|_| ClientError::Timeout(CONNECT_TIMEOUT))?
                    .map_err(ClientError::Tls)?;
                Session::open(Box::new(stream), &hostname, self.timeouts).await?
            }
            RelayTls::Starttls => {
                let s = Session::open(Box::new(tcp), &hostname, self.timeouts).await?;
                if !s.capabilities.starttls {
                    return Err(ClientError::Tls(std::io::Error::other(
                        "the relay does not offer STARTTLS, which [outbound] relay_tls requires",
                    )));
                }
                s.starttls(tls()?, name()?).await?
            }
            RelayTls::None => Session::open(Box::new(tcp), &hostname, self.timeouts).await?,
        };
        if !self.config.relay_user.is_empty() {
            if !(session.is_tls() || loopback) {
                return Err(ClientError::Tls(std::io::Error::other(
                    "the relay login is sent only over TLS or to loopback",
                )));
            }
            session
                .auth_plain(&self.config.relay_user, &self.config.relay_password)
                .await?;
        }
        Ok(session)
    }

    /// A delivery status notification for `failures` to the sender: into
    /// a local sender's INBOX, through the queue to a remote one, to nobody
    /// for the null sender. Best effort: the failures are recorded already.
    async fn bounce(&self, outbound: &Outbound, failures: &[Notice], raw: &[u8], now: i64) {
        if outbound.mail_from.is_empty() {
            return;
        }
        let report = dsn::failure_report(
            self.mail.hostname(),
            &outbound.mail_from,
            failures,
            raw,
            outbound.ret,
            outbound.env_id.as_deref(),
            now,
        );
        let prepared = match tern_mail::prepare(report).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("outbound: building a bounce: {e}");
                return;
            }
        };
        let store = self.mail.store();
        let result = match outbound.account_id {
            Some(account) => store
                .deliver(Delivery {
                    message: prepared,
                    recipients: vec![DeliveryTarget::inbox(account)],
                    received_at: now,
                })
                .await
                .map(|_| ()),
            None => store
                .accept(
                    Delivery {
                        message: prepared,
                        recipients: Vec::new(),
                        received_at: now,
                    },
                    Some(Outbound {
                        mail_from: String::new(),
                        recipients: vec![OutboundRecipient {
                            address: outbound.mail_from.clone(),
                            notify: DsnNotify {
                                success: false,
                                failure: false,
                                delay: false,
                            },
                            orcpt: None,
                        }],
                        env_id: None,
                        ret: None,
                        account_id: None,
                    }),
                )
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            tracing::warn!(
                "outbound: delivering a bounce to {}: {e}",
                outbound.mail_from
            );
        }
    }
}

/// A temporary failure, tried again after a pause that doubles with each
/// attempt: 5 min, 10, 20 ... up to 4 h.
fn deferred(attempts: u32, now: i64, error: String) -> AttemptOutcome {
    let pause = (300i64 << attempts.min(10)).min(MAX_BACKOFF_SECS);
    AttemptOutcome::Deferred {
        next_attempt: now + pause,
        error,
    }
}

/// The enhanced status in a recorded error (`smtp; 550 5.1.1 ...`), or a
/// generic permanent one.
fn status_of(error: &str) -> String {
    error
        .split_ascii_whitespace()
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|s| s.replacen('4', "5", 1))
        .unwrap_or_else(|| "5.0.0".into())
}

/// The message without its `Return-Path:` fields: they are added at final
/// delivery only (RFC 5321 §4.4).
fn strip_return_path(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_header = true;
    let mut skipping = false;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if in_header {
            if line == b"\r\n" || line == b"\n" {
                in_header = false;
            } else if skipping && line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                continue;
            } else {
                skipping = line.len() >= 12 && line[..12].eq_ignore_ascii_case(b"return-path:");
                if skipping {
                    continue;
                }
            }
        }
        out.extend_from_slice(line);
    }
    out
}

/// The whole queued message.
async fn read_all(
    store: &Arc<dyn tern_store::Store>,
    id: tern_store::QueueId,
    size: u64,
) -> Result<Vec<u8>, tern_store::StoreError> {
    const CHUNK: usize = 1 << 20;
    let mut out = Vec::with_capacity(size as usize);
    while (out.len() as u64) < size {
        let part = store.queue_read(id, out.len() as u64, CHUNK).await?;
        if part.is_empty() {
            break;
        }
        out.extend_from_slice(&part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_is_stripped_from_the_header_only() {
        let raw = b"Return-Path: <a@b>\r\nReceived: x\r\nreturn-path:\r\n <c@d>\r\nSubject: s\r\n\r\nReturn-Path: in the body\r\n";
        assert_eq!(
            strip_return_path(raw),
            b"Received: x\r\nSubject: s\r\n\r\nReturn-Path: in the body\r\n"
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let next = |a| match deferred(a, 0, String::new()) {
            AttemptOutcome::Deferred { next_attempt, .. } => next_attempt,
            _ => unreachable!(),
        };
        assert_eq!(next(0), 300);
        assert_eq!(next(1), 600);
        assert_eq!(next(20), MAX_BACKOFF_SECS);
        assert_eq!(status_of("smtp; 550 5.1.1 no such user"), "5.1.1");
        assert_eq!(
            status_of("gave up; last error: smtp; 451 4.7.1 later"),
            "5.7.1"
        );
        assert_eq!(status_of("relay: refused"), "5.0.0");
    }
}
