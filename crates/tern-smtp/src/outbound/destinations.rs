//! Destinations: a message's remote recipients grouped by domain, each
//! domain within its connection and rate limits; a busy destination is
//! waited for briefly, a stuck or down one not at all — its mail is
//! postponed in one statement, so a dead host costs nothing until its
//! next probe, and slow destinations never hold up the others.

use super::envelope::{dsn_mail_params, dsn_rcpt_params, tls_required_no};
use super::remote::{Delivered, Needs};
use super::{deferred, downgrade, per_recipient, Worker, BUSY_RETRY_SECS, BUSY_WAIT, DOWN_SECS};
use crate::client::Envelope as ClientEnvelope;
use futures_util::stream::FuturesUnordered;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tern_store::{
    AttemptOutcome, Outbound, QueuedMessage, QueuedRecipient, RecipientAttempt, RecipientStatus,
};
use tokio::sync::Semaphore;

/// How often a stuck or down destination's newly due mail is postponed
/// in one statement.
const BULK_POSTPONE_EVERY: Duration = Duration::from_secs(5);

/// One destination domain's connection limit, and when a transaction
/// with it last ended: a busy destination that is making progress is
/// worth a short wait, a stuck one is not.
pub(super) struct Destination {
    permits: Arc<Semaphore>,
    last_done: std::time::Instant,
    /// When its queue was last postponed for being stuck.
    postponed_at: Option<std::time::Instant>,
    /// Messages started in the current minute, for the rate limit.
    minute: (std::time::Instant, u32),
}

/// One domain's outcomes and the recipients relayed to a next hop
/// without DSN support.
pub(super) type DomainOutcome = (Vec<RecipientAttempt>, HashMap<String, String>);

/// Per-recipient outcomes of one domain's delivery.
pub(super) fn outcomes_of(
    list: &[&QueuedRecipient],
    delivered: Delivered,
    now: i64,
) -> DomainOutcome {
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

impl Worker {
    /// When every due recipient is for a destination known to be down or
    /// stuck (every connection busy, none finishing) — and none is local,
    /// and there is no relay — their deferrals or postponements.
    pub(super) async fn all_down(
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
            // Mail for such a destination may keep arriving: every few
            // seconds what came since is moved in one statement too.
            let outcome = match self.down_until(&lower) {
                Some((until, error)) => {
                    if self.bulk_postpone_due(&lower) {
                        self.postpone_destination(&lower, until).await;
                    }
                    deferred(r.attempts, now, error)
                }
                None if self.is_stuck(&lower) => {
                    if self.bulk_postpone_due(&lower) {
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

    /// The remote recipients straight to their domains' MX hosts, the
    /// domains of one message at once. Yields each domain's outcomes as its transaction ends, with the
    /// recipients passed to a next hop that does not report on them.
    pub(super) fn direct<'a>(
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
    pub(super) async fn to_domain(
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
                    if !progressing && self.bulk_postpone_due(domain) {
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
    pub(super) fn forget_down_destinations(&self) {
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
    pub(super) async fn postpone_destination(&self, domain: &str, until: i64) {
        match self.mail.store().queue_postpone_domain(domain, until).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "outbound: {domain} is not answering; {n} more recipient(s) there wait until it is tried again"
            ),
            Err(e) => tracing::warn!("outbound: postponing mail for {domain}: {e}"),
        }
    }

    /// True at most every few seconds per destination: a stuck or down
    /// destination's queue is postponed in one statement then, not
    /// message by message.
    pub(super) fn bulk_postpone_due(&self, domain: &str) -> bool {
        let Ok(mut map) = self.per_domain.lock() else {
            return false;
        };
        let Some(d) = map.get_mut(domain) else {
            return false;
        };
        let now = std::time::Instant::now();
        if d.postponed_at
            .is_some_and(|at| now.duration_since(at) < BULK_POSTPONE_EVERY)
        {
            return false;
        }
        d.postponed_at = Some(now);
        true
    }

    /// Whether every connection to `domain` is taken and none finished
    /// lately (typically: all are waiting on a dead host).
    pub(super) fn is_stuck(&self, domain: &str) -> bool {
        let Ok(map) = self.per_domain.lock() else {
            return false;
        };
        map.get(domain).is_some_and(|d| {
            d.permits.available_permits() == 0 && d.last_done.elapsed() >= BUSY_WAIT
        })
    }

    /// Until when `domain` is down, and why, if it is.
    pub(super) fn down_until(&self, domain: &str) -> Option<(i64, String)> {
        let mut down = self.down.lock().ok()?;
        let now = tern_core::time::unix_now();
        down.retain(|_, (until, _)| *until > now);
        down.get(domain).cloned()
    }

    /// Why `domain` is down, if it is.
    pub(super) fn is_down(&self, domain: &str) -> Option<String> {
        self.down_until(domain).map(|(_, error)| error)
    }
}
