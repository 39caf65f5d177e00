//! The outbound worker (issue 12): takes due queue entries with a lease
//! (two workers never hold one message), delivers queued local
//! recipients locally (those deferred over quota at arrival) and sends
//! the others to each destination domain's MX hosts ([`remote`]) or
//! through the configured smarthost; records each recipient's outcome
//! durably as soon as its transaction ends; retries temporary failures
//! with growing pauses; tells the sender of a long delay once; and on a
//! permanent failure, or after `max_queue_days`, bounces with a delivery
//! status notification ([`dsn`]) — into the INBOX of a local sender,
//! through the queue to a remote one, never for a null sender.
//!
//! Messages are worked concurrently, with a bound per destination domain
//! ([`destinations`]), so a slow or dead destination never holds up the
//! others. [`notices`] decides what the sender hears; [`relay`] is the
//! smarthost; [`envelope`] what goes on to the next hop.

mod destinations;
pub mod dkim;
mod downgrade;
pub mod dsn;
mod envelope;
pub mod mta_sts;
mod notices;
mod relay;
mod remote;
mod route;
pub mod tls;
pub mod tlsrpt;

use crate::client::Timeouts;
use crate::dns::Resolver;
use destinations::Destination;
use futures_util::stream::StreamExt;
use remote::Remote;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::config::{DnsConfig, OutboundConfig};
use tern_mail::Mail;
use tern_store::{
    AttemptOutcome, Delivery, DeliveryTarget, QueueClaim, QueuedRecipient, RecipientAttempt,
    RecipientStatus,
};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// How often the queue is looked at when it had nothing due.
const POLL: Duration = Duration::from_secs(2);
/// How long a claimed message is ours before another worker may take it.
const LEASE_SECS: i64 = 900;
/// Messages claimed at once.
const BATCH: usize = 32;
/// Free slots worth a claim while deliveries are under way.
const CLAIM_AT_LEAST: usize = 8;
/// Messages worked at once.
const IN_FLIGHT: usize = 64;
/// The longest pause between two attempts.
const MAX_BACKOFF_SECS: i64 = 4 * 3600;
/// How long connecting to the relay may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a message waits for a connection to a busy destination
/// before it is put back in the queue.
const BUSY_WAIT: Duration = Duration::from_secs(2);
/// When a message put back for a busy destination is due again.
const BUSY_RETRY_SECS: i64 = 60;
/// How long a domain whose every host failed counts as down.
const DOWN_SECS: i64 = 300;
/// How often TLS reporting counts are written to the store (and entries
/// a dead worker finished are swept).
const TLS_REPORT_FLUSH: Duration = Duration::from_secs(60);
/// How long in-flight deliveries may finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Worker {
    mail: Arc<Mail>,
    config: OutboundConfig,
    /// For TLS to the relay; `None` when the system's roots could not be
    /// read (TLS to the relay then fails, deferred).
    tls: Option<Arc<ClientConfig>>,
    timeouts: Timeouts,
    /// Direct delivery; `None` when no resolver could be set up (remote
    /// mail is then deferred with that reason).
    remote: Result<Remote, String>,
    dkim: Option<Arc<dkim::Dkim>>,
    /// Connections allowed per destination domain.
    per_domain: Mutex<HashMap<String, Destination>>,
    /// Domains that just failed entirely: until when, and why.
    down: Mutex<HashMap<String, (i64, String)>>,
}

impl Worker {
    pub fn new(mail: Arc<Mail>, config: OutboundConfig, dns: &DnsConfig) -> Worker {
        let roots = match tern_core::tls::system_roots() {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::warn!("outbound: no trusted roots ({e}): certificates cannot be verified, so domains requiring TLS get no mail");
                None
            }
        };
        let tls = roots
            .as_ref()
            .and_then(|r| tern_core::tls::client_config_with((**r).clone()).ok());
        let dkim = config.dkim.then(|| {
            let rsa = if config.dkim_system_openssl {
                dkim::RsaEngine::SystemOpenSsl
            } else {
                dkim::RsaEngine::Ring
            };
            tracing::info!("outbound: DKIM RSA signatures by {}", rsa.describe());
            Arc::new(dkim::Dkim::new(mail.store().clone(), rsa))
        });
        let remote = Resolver::new(dns)
            .map(|resolver| {
                let sts = config.mta_sts.then(|| {
                    mta_sts::Cache::new(
                        roots
                            .clone()
                            .unwrap_or_else(|| Arc::new(RootCertStore::empty())),
                        config.mta_sts_port,
                    )
                });
                Remote::new(
                    Arc::new(resolver),
                    roots.clone(),
                    mail.hostname().to_string(),
                    config.mx_port,
                    config.dane,
                    sts,
                    dkim.clone(),
                )
            })
            .map_err(|e| format!("local; 4.4.3 no DNS resolver: {e}"));
        if let Err(e) = &remote {
            tracing::warn!("outbound: {e}");
        }
        Worker {
            mail,
            config,
            tls,
            timeouts: Timeouts::default(),
            remote,
            dkim,
            per_domain: Mutex::new(HashMap::new()),
            down: Mutex::new(HashMap::new()),
        }
    }

    /// Works the queue until `stopping` turns true.
    pub async fn run_until(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        // A previous process that died mid-delivery left its leases; the
        // data directory is ours alone, so its work is ours to resume now
        // rather than after the leases run out. Not on a store other nodes
        // share: a lease there may be another node's delivery under way,
        // and a dead node's expires on its own.
        if self.mail.store().shared_by_nodes() {
            tracing::debug!("outbound: shared store; leases are left to expire");
        } else {
            match self.mail.store().queue_release_leases().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    "outbound: resuming {n} deliveries a previous run left unfinished"
                ),
                Err(e) => tracing::warn!("outbound: releasing stale leases: {e}"),
            }
        }
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tasks = tokio::task::JoinSet::new();
        let mut reports_written = tokio::time::Instant::now();
        let mut flushes = self.mail.store().queue_flush_count().await.unwrap_or(0);
        let mut flush_checked = tokio::time::Instant::now();
        loop {
            // `tern queue flush` means "try now", down or not (looked at
            // once a second at most).
            if flush_checked.elapsed() >= Duration::from_secs(1) {
                flush_checked = tokio::time::Instant::now();
                if let Ok(n) = self.mail.store().queue_flush_count().await {
                    if n != flushes {
                        flushes = n;
                        self.forget_down_destinations();
                    }
                }
            }
            if reports_written.elapsed() >= TLS_REPORT_FLUSH {
                self.write_tls_reports().await;
                let now = tern_core::time::unix_now();
                if let Err(e) = self.mail.store().queue_sweep(now).await {
                    tracing::warn!("outbound: sweeping finished queue entries: {e}");
                }
                reports_written = tokio::time::Instant::now();
            }
            if *stopping.borrow() {
                break;
            }
            let free = slots.available_permits().min(BATCH);
            let mut claimed = 0;
            // Claims are writes: under load, gather a few free slots
            // before the next one rather than claim for every finish.
            if free >= CLAIM_AT_LEAST || (free > 0 && tasks.is_empty()) {
                let now = tern_core::time::unix_now();
                match self.mail.store().queue_claim(now, LEASE_SECS, free).await {
                    Ok(claims) => {
                        claimed = claims.len();
                        for claim in claims {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let worker = self.clone();
                            tasks.spawn(async move {
                                let id = claim.message.id;
                                if let Err(e) = worker.work(claim).await {
                                    tracing::warn!("outbound: queue entry {id}: {e}");
                                }
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::warn!("outbound: reading the queue: {e}"),
                }
            }
            while tasks.try_join_next().is_some() {}
            if let Ok(remote) = &self.remote {
                remote.close_idle();
            }
            if claimed == 0 || slots.available_permits() == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = stopping.changed() => {}
                }
            }
        }
        // Let deliveries under way record their outcome; what does not
        // finish in time is retried after its lease.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        self.write_tls_reports().await;
    }

    /// Writes the TLS sessions counted since the last time.
    async fn write_tls_reports(&self) {
        let Ok(remote) = &self.remote else { return };
        let rows = remote.tls_reports.take();
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.mail.store().tls_report_add(rows).await {
            tracing::warn!("outbound: writing TLS report data: {e}");
        }
    }

    async fn work(&self, claim: QueueClaim) -> Result<(), tern_store::StoreError> {
        let store = self.mail.store().clone();
        let msg = &claim.message;
        let now = tern_core::time::unix_now();
        if let Some(attempts) = self.all_down(msg, now).await? {
            // Nothing to send: not even the message is read.
            let delay = self.delay_notices(msg, &attempts, now);
            store.queue_record(msg.id, claim.lease, attempts).await?;
            if !delay.is_empty() {
                let raw = read_all(&store, msg.id, msg.size).await?;
                store.queue_delay_notified(msg.id).await?;
                self.bounce(&msg.outbound, &delay, &raw, now).await;
            }
            return Ok(());
        }
        let raw = read_all(&store, msg.id, msg.size).await?;
        let expired = now > msg.created_at + self.config.max_queue_days as i64 * 86_400;
        let due: Vec<&QueuedRecipient> = msg
            .recipients
            .iter()
            .filter(|r| r.status == RecipientStatus::Pending)
            .collect();
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for r in &due {
            let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
            if self.mail.directory().is_local_domain(domain).await? {
                let outcome = self
                    .deliver_locally(&r.address, &raw, r.attempts, now)
                    .await;
                local.push(RecipientAttempt {
                    address: r.address.clone(),
                    outcome,
                });
            } else {
                remote.push(*r);
            }
        }
        // Each group of outcomes is recorded as soon as it is known when
        // more are to come, so a crash later never repeats what already
        // happened; the last group goes with the final record.
        let mut outcomes = Outcomes {
            store: &store,
            claim: &claim,
            expired,
            max_queue_days: self.config.max_queue_days,
            attempts: Vec::new(),
            recorded: 0,
        };
        if !local.is_empty() {
            outcomes.add(local, !remote.is_empty()).await?;
        }
        let mut relayed_to: HashMap<String, String> = HashMap::new();
        if !remote.is_empty() {
            // `Return-Path:` is added at final delivery only (RFC 5321
            // §4.4). DKIM signs per transaction, after any 7-bit rewrite.
            let message = strip_return_path(&raw);
            if self.config.relay.is_empty() {
                let mut groups = self.direct(&msg.outbound, &remote, &message, now);
                while let Some((group, relayed)) = groups.next().await {
                    outcomes.add(group, !groups.is_empty()).await?;
                    relayed_to.extend(relayed);
                }
            } else {
                let group = self.relay(&msg.outbound, &remote, &message, now).await;
                for a in &group {
                    if a.outcome == AttemptOutcome::Delivered {
                        relayed_to.insert(a.address.clone(), self.config.relay.clone());
                    }
                }
                outcomes.add(group, false).await?;
            }
        }
        let attempts = &outcomes.attempts;
        let reports = self.reports(msg, attempts, &relayed_to);
        let delay = self.delay_notices(msg, attempts, now);
        // The rest, releasing the lease (or removing the entry when
        // nothing is left pending).
        store
            .queue_record(msg.id, claim.lease, attempts[outcomes.recorded..].to_vec())
            .await?;
        if !reports.is_empty() {
            self.bounce(&msg.outbound, &reports, &raw, now).await;
        }
        if !delay.is_empty() {
            store.queue_delay_notified(msg.id).await?;
            self.bounce(&msg.outbound, &delay, &raw, now).await;
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
}

/// A message's outcomes as they come in: expiry applied, recorded early
/// when more are to come.
struct Outcomes<'a> {
    store: &'a Arc<dyn tern_store::Store>,
    claim: &'a QueueClaim,
    expired: bool,
    max_queue_days: u64,
    attempts: Vec<RecipientAttempt>,
    /// How many of `attempts` are recorded already.
    recorded: usize,
}

impl Outcomes<'_> {
    async fn add(
        &mut self,
        mut group: Vec<RecipientAttempt>,
        more_to_come: bool,
    ) -> Result<(), tern_store::StoreError> {
        // Expiry turns what is still deferred into a failure.
        if self.expired {
            for a in group.iter_mut() {
                if let AttemptOutcome::Deferred { error, .. } = &a.outcome {
                    a.outcome = AttemptOutcome::Failed {
                        error: format!(
                            "gave up after {} days; last error: {error}",
                            self.max_queue_days
                        ),
                    };
                }
            }
        }
        self.attempts.extend(group);
        if more_to_come {
            let unrecorded = self.attempts[self.recorded..].to_vec();
            self.store
                .queue_record_part(self.claim.message.id, self.claim.lease, unrecorded)
                .await?;
            self.recorded = self.attempts.len();
        }
        Ok(())
    }
}

/// What one recipient's reply means for it.
fn per_recipient(
    r: &QueuedRecipient,
    reply: &crate::client::reply::PeerReply,
    now: i64,
) -> RecipientAttempt {
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

/// The message without its `Return-Path:` fields: they are added at final
/// delivery only (RFC 5321 §4.4).
fn strip_return_path(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    let mut at = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break; // the body, copied whole below
        }
        at += line.len();
        if skipping && line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        skipping = line.len() >= 12 && line[..12].eq_ignore_ascii_case(b"return-path:");
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[at..]);
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
    use super::envelope::{dsn_mail_params, dsn_rcpt_params, tls_required_no};
    use super::notices::status_of;
    use super::*;
    use tern_store::{DsnNotify, Outbound, OutboundRecipient};

    #[test]
    fn return_path_is_stripped_from_the_header_only() {
        let raw = b"Return-Path: <a@b>\r\nReceived: x\r\nreturn-path:\r\n <c@d>\r\nSubject: s\r\n\r\nReturn-Path: in the body\r\n";
        assert_eq!(
            strip_return_path(raw),
            b"Received: x\r\nSubject: s\r\n\r\nReturn-Path: in the body\r\n"
        );
        assert_eq!(
            strip_return_path(b"Subject: s\r\nReturn-Path: <a@b>\r\n"),
            b"Subject: s\r\n"
        );
        assert_eq!(strip_return_path(b"Subject: s"), b"Subject: s");
    }

    #[test]
    fn tls_required_no_is_read_from_the_header_only() {
        assert!(tls_required_no(
            b"Subject: x\r\nTLS-Required:  No \r\n\r\nbody\r\n"
        ));
        assert!(tls_required_no(b"tls-required: no\r\n\r\n"));
        assert!(!tls_required_no(b"TLS-Required: yes\r\n\r\n"));
        assert!(!tls_required_no(b"Subject: x\r\n\r\nTLS-Required: No\r\n"));
    }

    #[test]
    fn dsn_parameters_go_on_as_xtext() {
        let outbound = Outbound {
            mail_from: "a@b".into(),
            recipients: vec![OutboundRecipient {
                address: "x@y".into(),
                notify: DsnNotify {
                    success: true,
                    failure: true,
                    delay: false,
                },
                orcpt: Some("rfc822;x+tag=1@y".into()),
            }],
            env_id: Some("id 1".into()),
            ret: Some(tern_store::DsnReturn::Headers),
            account_id: None,
            require_tls: false,
            release_at: None,
        };
        assert_eq!(dsn_mail_params(&outbound), ["RET=HDRS", "ENVID=id+201"]);
        assert_eq!(
            dsn_rcpt_params(&outbound, "X@y"),
            ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;x+2Btag+3D1@y"]
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
