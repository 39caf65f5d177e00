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
//! Messages are worked concurrently, with a bound per destination domain,
//! so a slow or dead destination never holds up the others; a domain that
//! just failed at the connection level is remembered as down for a while
//! and its mail deferred without another connection attempt.

pub mod dkim;
mod downgrade;
pub mod dsn;
pub mod mta_sts;
mod remote;
mod route;
pub mod tls;
pub mod tlsrpt;

use crate::client::{ClientError, Envelope as ClientEnvelope, Session, Timeouts};
use crate::dns::Resolver;
use dsn::Notice;
use futures_util::stream::{FuturesUnordered, StreamExt};
use remote::{Delivered, Needs, Remote};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::config::{DnsConfig, OutboundConfig, RelayTls};
use tern_mail::Mail;
use tern_store::{
    AttemptOutcome, Delivery, DeliveryTarget, DsnNotify, Outbound, OutboundRecipient, QueueClaim,
    QueuedMessage, QueuedRecipient, RecipientAttempt, RecipientStatus,
};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::rustls::pki_types::ServerName;
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

/// One destination domain's connection limit, and when a transaction
/// with it last ended: a busy destination that is making progress is
/// worth a short wait, a stuck one is not.
struct Destination {
    permits: Arc<Semaphore>,
    last_done: std::time::Instant,
    /// When its queue was last postponed for being stuck.
    postponed_at: Option<std::time::Instant>,
    /// Messages started in the current minute, for the rate limit.
    minute: (std::time::Instant, u32),
}

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
        let dkim = config
            .dkim
            .then(|| Arc::new(dkim::Dkim::new(mail.store().clone())));
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
        // rather than after the leases run out.
        match self.mail.store().queue_release_leases().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("outbound: resuming {n} deliveries a previous run left unfinished")
            }
            Err(e) => tracing::warn!("outbound: releasing stale leases: {e}"),
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

    /// When every due recipient is for a destination known to be down or
    /// stuck (every connection busy, none finishing) — and none is local,
    /// and there is no relay — their deferrals or postponements.
    async fn all_down(
        &self,
        msg: &QueuedMessage,
        now: i64,
    ) -> Result<Option<Vec<RecipientAttempt>>, tern_store::StoreError> {
        if !self.config.relay.is_empty() {
            return Ok(None);
        }
        let expired = now > msg.created_at + self.config.max_queue_days as i64 * 86_400;
        let mut out = Vec::new();
        for r in msg
            .recipients
            .iter()
            .filter(|r| r.status == RecipientStatus::Pending)
        {
            let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
            let lower = domain.to_ascii_lowercase();
            let outcome = match self.is_down(&lower) {
                Some(error) => deferred(r.attempts, now, error),
                None if self.is_stuck(&lower) => {
                    if self.first_stuck_notice(&lower) {
                        self.postpone_destination(&lower, now + BUSY_RETRY_SECS)
                            .await;
                    }
                    AttemptOutcome::Postponed {
                        next_attempt: now + BUSY_RETRY_SECS,
                    }
                }
                None => return Ok(None),
            };
            if expired || self.mail.directory().is_local_domain(domain).await? {
                return Ok(None);
            }
            out.push(RecipientAttempt {
                address: r.address.clone(),
                outcome,
            });
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// The notices the sender asked for (RFC 3461 §4.1 NOTIFY): failures
    /// unless NEVER, successes only with SUCCESS — "relayed" when the next
    /// hop takes over reporting without DSN support (RFC 3464 §2.3.3).
    fn reports(
        &self,
        msg: &QueuedMessage,
        attempts: &[RecipientAttempt],
        relayed_to: &HashMap<String, String>,
    ) -> Vec<Notice> {
        let submitted = |address: &str| {
            msg.outbound
                .recipients
                .iter()
                .find(|r| r.address.eq_ignore_ascii_case(address))
        };
        let notify = |address: &str| submitted(address).map(|r| r.notify).unwrap_or_default();
        let orcpt = |address: &str| submitted(address).and_then(|r| r.orcpt.clone());
        attempts
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
                    let relayed = relayed_to.get(&a.address);
                    Some(Notice {
                        action: if relayed.is_some() {
                            "relayed"
                        } else {
                            "delivered"
                        },
                        original_recipient: orcpt(&a.address),
                        recipient: a.address.clone(),
                        status: "2.0.0".into(),
                        diagnostic: "smtp; 250 accepted".into(),
                        remote_mta: relayed.cloned(),
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// One "delayed" notice per message (RFC 3464 §2.3.3) for recipients
    /// still deferred `delay_notice_secs` after submission, unless their
    /// NOTIFY left DELAY out.
    fn delay_notices(
        &self,
        msg: &QueuedMessage,
        attempts: &[RecipientAttempt],
        now: i64,
    ) -> Vec<Notice> {
        let after = self.config.delay_notice_secs as i64;
        if after == 0 || msg.delay_notified || now < msg.created_at + after {
            return Vec::new();
        }
        attempts
            .iter()
            .filter_map(|a| {
                let AttemptOutcome::Deferred { error, .. } = &a.outcome else {
                    return None;
                };
                let submitted = msg
                    .outbound
                    .recipients
                    .iter()
                    .find(|r| r.address.eq_ignore_ascii_case(&a.address));
                if !submitted.map(|r| r.notify).unwrap_or_default().delay {
                    return None;
                }
                Some(Notice {
                    action: "delayed",
                    original_recipient: submitted.and_then(|r| r.orcpt.clone()),
                    recipient: a.address.clone(),
                    status: status_of_temporary(error),
                    diagnostic: error.clone(),
                    remote_mta: None,
                })
            })
            .collect()
    }

    /// The remote recipients straight to their domains' MX hosts, the
    /// domains of one message at once.
    /// Yields each domain's outcomes as its transaction ends, with the
    /// recipients passed to a next hop that does not report on them.
    fn direct<'a>(
        &'a self,
        outbound: &'a Outbound,
        recipients: &[&'a QueuedRecipient],
        message: &'a [u8],
        now: i64,
    ) -> FuturesUnordered<impl std::future::Future<Output = DomainOutcome> + 'a> {
        let mut by_domain: Vec<(String, Vec<&QueuedRecipient>)> = Vec::new();
        for r in recipients {
            let domain = r
                .address
                .rsplit_once('@')
                .map_or(String::new(), |(_, d)| d.to_ascii_lowercase());
            match by_domain.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, list)) => list.push(r),
                None => by_domain.push((domain, vec![r])),
            }
        }
        let needs = Needs {
            eight_bit: downgrade::is_eight_bit(message),
            smtputf8: !outbound.mail_from.is_ascii()
                || recipients.iter().any(|r| !r.address.is_ascii()),
            require_tls: outbound.require_tls,
            tls_optional: !outbound.require_tls && tls_required_no(message),
        };
        by_domain
            .into_iter()
            .map(|(domain, list)| async move {
                let delivered = self
                    .to_domain(outbound, &domain, &list, message, needs)
                    .await;
                outcomes_of(&list, delivered, now)
            })
            .collect()
    }

    /// One domain's share of a message, within its connection limit and
    /// unless it is known to be down.
    async fn to_domain(
        &self,
        outbound: &Outbound,
        domain: &str,
        recipients: &[&QueuedRecipient],
        message: &[u8],
        needs: Needs,
    ) -> Delivered {
        let remote = match &self.remote {
            Ok(r) => r,
            Err(e) => return Delivered::Temporary(e.clone()),
        };
        if let Some(error) = self.is_down(domain) {
            return Delivered::Temporary(error);
        }
        let (limit, progressing) = {
            let Ok(mut map) = self.per_domain.lock() else {
                return Delivered::Temporary("local; 4.3.0 internal lock poisoned".into());
            };
            let d = map
                .entry(domain.to_string())
                .or_insert_with(|| Destination {
                    permits: Arc::new(Semaphore::new(
                        self.config.max_connections_per_domain.max(1),
                    )),
                    last_done: std::time::Instant::now(),
                    postponed_at: None,
                    minute: (std::time::Instant::now(), 0),
                });
            // The rate limit: a message over it waits for the next minute.
            let per_minute = self.config.max_messages_per_minute_per_domain;
            if per_minute > 0 {
                if d.minute.0.elapsed() >= Duration::from_secs(60) {
                    d.minute = (std::time::Instant::now(), 0);
                }
                if d.minute.1 >= per_minute {
                    return Delivered::Busy;
                }
                d.minute.1 += 1;
            }
            (d.permits.clone(), d.last_done.elapsed() < BUSY_WAIT)
        };
        // A message does not wait long for a busy destination, and not at
        // all for one that finished nothing lately (a dead host being
        // connected to): it would hold a worker slot that mail for other
        // destinations needs.
        let wait = if progressing {
            BUSY_WAIT
        } else {
            Duration::ZERO
        };
        let _permit = match tokio::time::timeout(wait, limit.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Delivered::Temporary("local; 4.3.0 shutting down".into()),
            Err(_) => match limit.try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    if !progressing && self.first_stuck_notice(domain) {
                        let until = tern_core::time::unix_now() + BUSY_RETRY_SECS;
                        self.postpone_destination(domain, until).await;
                    }
                    return Delivered::Busy;
                }
            },
        };
        // Another message may have found the domain down while we waited.
        if let Some(error) = self.is_down(domain) {
            return Delivered::Temporary(error);
        }
        let envelope = ClientEnvelope {
            mail_from: outbound.mail_from.clone(),
            mail_params: dsn_mail_params(outbound),
            rcpt_to: recipients
                .iter()
                .map(|r| (r.address.clone(), dsn_rcpt_params(outbound, &r.address)))
                .collect(),
        };
        let delivered = remote.deliver(domain, &envelope, message, needs).await;
        if let Ok(mut map) = self.per_domain.lock() {
            if let Some(d) = map.get_mut(domain) {
                d.last_done = std::time::Instant::now();
            }
        }
        if let Delivered::Temporary(error) = &delivered {
            // Down: the rest of its mail waits until the next probe,
            // unclaimed (Postfix's dead-destination rule).
            let until = tern_core::time::unix_now() + DOWN_SECS;
            if let Ok(mut down) = self.down.lock() {
                down.insert(domain.to_string(), (until, error.clone()));
            }
            self.postpone_destination(domain, until).await;
        }
        delivered
    }

    /// Forgets which destinations were down or stuck.
    fn forget_down_destinations(&self) {
        if let Ok(mut down) = self.down.lock() {
            down.clear();
        }
        if let Ok(mut map) = self.per_domain.lock() {
            for d in map.values_mut() {
                d.postponed_at = None;
                d.last_done = std::time::Instant::now();
            }
        }
    }

    /// Moves the destination's other pending mail to `until`.
    async fn postpone_destination(&self, domain: &str, until: i64) {
        match self.mail.store().queue_postpone_domain(domain, until).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "outbound: {domain} is not answering; {n} more recipient(s) there wait until it is tried again"
            ),
            Err(e) => tracing::warn!("outbound: postponing mail for {domain}: {e}"),
        }
    }

    /// True once per retry window for a stuck destination: its queue is
    /// postponed then, not for every message that finds it stuck.
    fn first_stuck_notice(&self, domain: &str) -> bool {
        let Ok(mut map) = self.per_domain.lock() else {
            return false;
        };
        let Some(d) = map.get_mut(domain) else {
            return false;
        };
        let now = std::time::Instant::now();
        if d.postponed_at
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(BUSY_RETRY_SECS as u64))
        {
            return false;
        }
        d.postponed_at = Some(now);
        true
    }

    /// Whether every connection to `domain` is taken and none finished
    /// lately (typically: all are waiting on a dead host).
    fn is_stuck(&self, domain: &str) -> bool {
        let Ok(map) = self.per_domain.lock() else {
            return false;
        };
        map.get(domain).is_some_and(|d| {
            d.permits.available_permits() == 0 && d.last_done.elapsed() >= BUSY_WAIT
        })
    }

    /// The reason `domain` is down, if it is.
    fn is_down(&self, domain: &str) -> Option<String> {
        let mut down = self.down.lock().ok()?;
        let now = tern_core::time::unix_now();
        down.retain(|_, (until, _)| *until > now);
        down.get(domain).map(|(_, error)| error.clone())
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
        message: &[u8],
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
        let caps = session.capabilities.clone();
        let mut envelope = ClientEnvelope {
            mail_from: outbound.mail_from.clone(),
            mail_params: Vec::new(),
            rcpt_to: recipients
                .iter()
                .map(|r| (r.address.clone(), Vec::new()))
                .collect(),
        };
        if caps.dsn {
            envelope.mail_params = dsn_mail_params(outbound);
            for (address, params) in envelope.rcpt_to.iter_mut() {
                *params = dsn_rcpt_params(outbound, address);
            }
        }
        if !outbound.mail_from.is_ascii() || recipients.iter().any(|r| !r.address.is_ascii()) {
            envelope.mail_params.push("SMTPUTF8".into());
        }
        if outbound.require_tls {
            // RFC 8689 §4.2.1: only on to a verified TLS peer that
            // promises the same; otherwise returned to the sender.
            if !(session.is_tls() && caps.requiretls) {
                session.quit().await;
                return all(AttemptOutcome::Failed {
                    error: format!(
                        "smtp; 5.7.30 the relay {} does not offer REQUIRETLS over TLS, which the sender asked for",
                        self.config.relay
                    ),
                });
            }
            envelope.mail_params.push("REQUIRETLS".into());
        }
        let downgraded;
        let message = if !downgrade::is_eight_bit(message) {
            message
        } else if caps.eight_bit_mime {
            envelope.mail_params.push("BODY=8BITMIME".into());
            message
        } else {
            downgraded = downgrade::to_seven_bit(message);
            &downgraded
        };
        let signed = match &self.dkim {
            Some(dkim) => dkim.signed(message, &outbound.mail_from).await,
            None => message.to_vec(),
        };
        let outcome = match session.send(&envelope, &signed).await {
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
            .map(|(i, r)| per_recipient(r, outcome.for_recipient(i), now))
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
                        require_tls: false,
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

/// Whether the header says `TLS-Required: No` (RFC 8689 §5): the sender
/// prefers delivery to the domain's TLS policies (DANE, MTA-STS).
fn tls_required_no(message: &[u8]) -> bool {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    message[..end].split(|b| *b == b'\n').any(|line| {
        line.len() >= 13
            && line[..13].eq_ignore_ascii_case(b"tls-required:")
            && String::from_utf8_lossy(&line[13..])
                .trim()
                .eq_ignore_ascii_case("no")
    })
}

/// One domain's outcomes and the recipients relayed to a next hop
/// without DSN support.
type DomainOutcome = (Vec<RecipientAttempt>, HashMap<String, String>);

/// Per-recipient outcomes of one domain's delivery.
fn outcomes_of(list: &[&QueuedRecipient], delivered: Delivered, now: i64) -> DomainOutcome {
    let mut out = Vec::new();
    let mut relayed_to = HashMap::new();
    match delivered {
        Delivered::Sent {
            outcome,
            host,
            peer_dsn,
        } => {
            for (i, r) in list.iter().enumerate() {
                let reply = outcome.for_recipient(i);
                let attempt = per_recipient(r, reply, now);
                if attempt.outcome == AttemptOutcome::Delivered && !peer_dsn {
                    relayed_to.insert(r.address.clone(), format!("dns; {host}"));
                }
                out.push(attempt);
            }
        }
        Delivered::Temporary(error) => out.extend(list.iter().map(|r| RecipientAttempt {
            address: r.address.clone(),
            outcome: deferred(r.attempts, now, error.clone()),
        })),
        Delivered::Permanent(error) => out.extend(list.iter().map(|r| RecipientAttempt {
            address: r.address.clone(),
            outcome: AttemptOutcome::Failed {
                error: error.clone(),
            },
        })),
        Delivered::Busy => out.extend(list.iter().map(|r| RecipientAttempt {
            address: r.address.clone(),
            outcome: AttemptOutcome::Postponed {
                next_attempt: now + BUSY_RETRY_SECS,
            },
        })),
    }
    (out, relayed_to)
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

/// MAIL parameters passing the submitter's DSN wishes on (RFC 3461 §4.3,
/// §4.4); sent only to a peer offering DSN.
fn dsn_mail_params(outbound: &Outbound) -> Vec<String> {
    let mut params = Vec::new();
    if let Some(ret) = outbound.ret {
        params.push(match ret {
            tern_store::DsnReturn::Full => "RET=FULL".to_string(),
            tern_store::DsnReturn::Headers => "RET=HDRS".to_string(),
        });
    }
    if let Some(id) = &outbound.env_id {
        params.push(format!("ENVID={}", xtext(id)));
    }
    params
}

/// RCPT parameters for `address` (RFC 3461 §4.1, §4.2).
fn dsn_rcpt_params(outbound: &Outbound, address: &str) -> Vec<String> {
    let Some(r) = outbound
        .recipients
        .iter()
        .find(|r| r.address.eq_ignore_ascii_case(address))
    else {
        return Vec::new();
    };
    let n = r.notify;
    let notify = if !(n.success || n.failure || n.delay) {
        "NEVER".to_string()
    } else {
        [
            (n.success, "SUCCESS"),
            (n.failure, "FAILURE"),
            (n.delay, "DELAY"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
    };
    let mut params = vec![format!("NOTIFY={notify}")];
    if let Some(orcpt) = &r.orcpt {
        match orcpt.split_once(';') {
            Some((kind, addr)) => params.push(format!("ORCPT={kind};{}", xtext(addr))),
            None => params.push(format!("ORCPT=rfc822;{}", xtext(orcpt))),
        }
    }
    params
}

/// xtext (RFC 3461 §4): `+`, `=`, controls and non-ASCII as `+HH`.
fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
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

/// The enhanced status of a temporary error as it stands (`4.x.y`), or a
/// generic one, for delay notices.
fn status_of_temporary(error: &str) -> String {
    status_of(error).replacen('5', "4", 1)
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
