//! Delivery of one message to one destination domain over the internet:
//! its MX hosts in order ([`route`](super::route)), every address of each
//! host, TLS as the domain's policy demands ([`tls`](super::tls): DANE,
//! MTA-STS, REQUIRETLS, else opportunistic STARTTLS), and one transaction
//! carrying all the domain's recipients. Sessions are kept open briefly
//! afterwards and reused for the next message to the same host.

use super::mta_sts::{self, StsPolicy};
use super::route::{self, NoRoute};
use super::tls::{self, Judgement, Policy, Tlsa};
use super::tlsrpt::{self, TlsReports};
use crate::client::{ClientError, Envelope, Outcome, Session, Timeouts};
use crate::dns::{DnsError, Resolver};
use hickory_resolver::proto::rr::{RData, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::RootCertStore;

/// How long connecting to one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle session is kept for the next message to its host.
const REUSE_WINDOW: Duration = Duration::from_secs(5);
/// Idle sessions kept per host.
const POOL_PER_HOST: usize = 4;

/// What the message asks of the path.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Has 8-bit content: BODY=8BITMIME, or a 7-bit rewrite for a peer
    /// without it (RFC 6152 §3).
    pub eight_bit: bool,
    /// Non-ASCII addresses: only to a peer offering SMTPUTF8 (RFC 6531 §3.7).
    pub smtputf8: bool,
    /// REQUIRETLS from the submitter (RFC 8689 §4.2).
    pub require_tls: bool,
    /// `TLS-Required: No` in the header (RFC 8689 §5): DANE and MTA-STS
    /// are not enforced, TLS stays opportunistic.
    pub tls_optional: bool,
}

/// How delivery to the domain went.
#[derive(Debug)]
pub enum Delivered {
    /// A transaction happened: the per-recipient replies decide.
    Sent {
        outcome: Outcome,
        host: String,
        /// The peer relays DSN parameters itself (RFC 3461).
        peer_dsn: bool,
    },
    /// No host took the message; try later.
    Temporary(String),
    /// Will never work.
    Permanent(String),
    /// Not tried: the destination's connections are all busy.
    Busy,
}

/// Everything remote delivery shares between messages.
pub struct Remote {
    pub resolver: Arc<Resolver>,
    /// Trusted roots for certificate checks; `None` when the system has
    /// none (every certificate is then "untrusted", which only matters
    /// where a policy requires a trusted one).
    pub roots: Option<Arc<RootCertStore>>,
    pub hostname: String,
    pub timeouts: Timeouts,
    pub mx_port: u16,
    pub dane: bool,
    pub sts: Option<mta_sts::Cache>,
    dkim: Option<Arc<super::dkim::Dkim>>,
    /// TLS reporting data (RFC 8460), flushed to the store by the worker.
    pub tls_reports: TlsReports,
    pool: Mutex<HashMap<String, Vec<(Instant, Session)>>>,
}

impl Remote {
    pub fn new(
        resolver: Arc<Resolver>,
        roots: Option<Arc<RootCertStore>>,
        hostname: String,
        mx_port: u16,
        dane: bool,
        sts: Option<mta_sts::Cache>,
        dkim: Option<Arc<super::dkim::Dkim>>,
    ) -> Remote {
        Remote {
            resolver,
            roots,
            hostname,
            timeouts: Timeouts::default(),
            mx_port,
            dane,
            sts,
            dkim,
            tls_reports: TlsReports::default(),
            pool: Mutex::new(HashMap::new()),
        }
    }

    /// Delivers `message` with `envelope` (all recipients in `domain`).
    pub async fn deliver(
        &self,
        domain: &str,
        envelope: &Envelope,
        message: &[u8],
        needs: Needs,
    ) -> Delivered {
        let hosts = match route::mx_hosts(&self.resolver, domain, &self.hostname).await {
            Ok(h) => h,
            Err(NoRoute::Permanent(text)) => return Delivered::Permanent(text),
            Err(NoRoute::Temporary(text)) => return Delivered::Temporary(text),
        };
        let sts = match &self.sts {
            Some(cache) if !needs.tls_optional => cache.policy(&self.resolver, domain).await,
            _ => None,
        };
        let dane_applies = self.dane && !needs.tls_optional && self.mx_secure(domain, &hosts).await;
        let mut last_error = String::from("no MX host could be tried");
        let mut refused_for_tls = None;
        for host in &hosts {
            if let Some(p) = sts.as_ref().filter(|p| p.enforced()) {
                if !p.allows(host) {
                    last_error = format!(
                        "mta-sts; 4.7.5 MX host {host} is not in {domain}'s MTA-STS policy"
                    );
                    continue;
                }
            }
            let policy = match self
                .tls_policy(host, dane_applies, sts.as_ref(), needs)
                .await
            {
                Ok(p) => p,
                Err(text) => {
                    last_error = text;
                    continue;
                }
            };
            let policy_type = match (&policy, &sts) {
                (Policy::Dane(_), _) => tlsrpt::TLSA,
                (_, Some(_)) => tlsrpt::STS,
                _ => tlsrpt::NO_POLICY,
            };
            let target = Target {
                domain,
                host,
                policy_type,
            };
            match self
                .to_host(&target, &policy, envelope, message, needs)
                .await
            {
                Ok(delivered) => return delivered,
                Err(HostError::Next(text)) => last_error = text,
                Err(HostError::Tls(text)) => {
                    refused_for_tls = Some(text.clone());
                    last_error = text;
                }
            }
        }
        // REQUIRETLS mail no host could take securely is returned at
        // once (RFC 8689 §4.2.1), not retried for days.
        if let (true, Some(text)) = (needs.require_tls, refused_for_tls) {
            return Delivered::Permanent(text.replacen("4.7.", "5.7.", 1));
        }
        Delivered::Temporary(last_error)
    }

    /// Whether the domain's MX RRset is DNSSEC-authenticated, so its hosts'
    /// TLSA records count (RFC 7672 §2.2.1). The implicit MX counts as
    /// secure when the domain's TLSA lookup is.
    async fn mx_secure(&self, domain: &str, hosts: &[String]) -> bool {
        if hosts.len() == 1 && hosts[0].eq_ignore_ascii_case(domain) {
            return true;
        }
        matches!(
            self.resolver.secure(domain, RecordType::MX).await,
            Ok(answer) if answer.authentic
        )
    }

    /// The TLS policy for `host`: DANE when it has usable authenticated
    /// TLSA records, verified TLS for an enforced MTA-STS policy or
    /// REQUIRETLS, opportunistic otherwise. An error when the host must be
    /// skipped (a failed TLSA lookup for a host that may have some).
    async fn tls_policy(
        &self,
        host: &str,
        dane_applies: bool,
        sts: Option<&StsPolicy>,
        needs: Needs,
    ) -> Result<Policy, String> {
        if dane_applies {
            let name = format!("_{}._tcp.{host}", self.mx_port);
            match self.resolver.secure(&name, RecordType::TLSA).await {
                Ok(answer) if answer.authentic => {
                    let records: Vec<Tlsa> = answer.records.iter().filter_map(tlsa).collect();
                    if records.iter().any(Tlsa::is_usable) {
                        return Ok(Policy::Dane(records));
                    }
                }
                Ok(_) | Err(DnsError::NoSuchName(_)) | Err(DnsError::NoRecords(..)) => {}
                Err(e) => {
                    // RFC 7672 §2.2: a failed lookup must not become plaintext.
                    return Err(format!("dane; 4.7.5 TLSA lookup for {host}: {e}"));
                }
            }
        }
        if needs.require_tls || sts.is_some_and(StsPolicy::enforced) {
            return Ok(Policy::Verified);
        }
        Ok(Policy::Opportunistic)
    }

    /// One host: a pooled session or each of its addresses in turn.
    async fn to_host(
        &self,
        target: &Target<'_>,
        policy: &Policy,
        envelope: &Envelope,
        message: &[u8],
        needs: Needs,
    ) -> Result<Delivered, HostError> {
        let host = target.host;
        // Pooled sessions are kept per policy: one opened opportunistically
        // (its certificate perhaps untrusted) never carries mail that
        // needs verified TLS.
        let key = pool_key(host, policy);
        if let Some(session) = self.checkout(&key) {
            match self
                .transact(session, host, &key, envelope, message, needs)
                .await
            {
                Ok(d) => return Ok(d),
                // A stale pooled session: connect afresh below.
                Err(e) => tracing::debug!("outbound: reused session to {host}: {e:?}"),
            }
        }
        let addresses = match self.resolver.addresses(host).await {
            Ok(a) => a,
            Err(e) => return Err(HostError::Next(format!("dns; 4.4.3 {e}"))),
        };
        let mut last = HostError::Next(format!("{host}: no address"));
        for ip in addresses {
            match self.open(target, ip, policy).await {
                Ok(session) => {
                    return self
                        .transact(session, host, &key, envelope, message, needs)
                        .await;
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A session with `host` at `ip`, with TLS as `policy` demands.
    async fn open(
        &self,
        target: &Target<'_>,
        ip: IpAddr,
        policy: &Policy,
    ) -> Result<Session, HostError> {
        let host = target.host;
        let report = |result: &'static str| {
            self.tls_reports
                .note(target.domain, target.policy_type, result, host)
        };
        let addr = SocketAddr::new(ip, self.mx_port);
        let next = |e: &dyn std::fmt::Display| HostError::Next(format!("smtp; {host} [{ip}]: {e}"));
        let session = self.connect(addr).await.map_err(|e| next(&e))?;
        let required = !matches!(policy, Policy::Opportunistic);
        if !session.capabilities.starttls {
            report(tlsrpt::STARTTLS_NOT_SUPPORTED);
            if required {
                session.quit().await;
                return Err(HostError::Tls(format!(
                    "smtp; 4.7.5 {host} [{ip}] does not offer STARTTLS, which the domain's TLS policy requires"
                )));
            }
            return Ok(session);
        }
        let Ok(name) = ServerName::try_from(host.to_string()) else {
            return Err(next(&"not a valid TLS server name"));
        };
        let roots = self
            .roots
            .clone()
            .unwrap_or_else(|| Arc::new(RootCertStore::empty()));
        let (config, judgement) =
            tls::client_config(roots, policy.clone(), host).map_err(|e| next(&e))?;
        match session.starttls(config, name).await {
            Ok(session) => {
                let judged = judgement.lock().ok().and_then(|j| j.clone());
                match judged {
                    // Under an MTA-STS testing policy this would have
                    // failed: that is what the report is for.
                    Some(Judgement::Untrusted(why)) if target.policy_type == tlsrpt::STS => {
                        report(tlsrpt::certificate_failure(&why));
                        tracing::info!(
                            "outbound: TLS to {host} [{ip}]: certificate not trusted ({why}); {}'s MTA-STS policy is only testing, so used",
                            target.domain
                        )
                    }
                    Some(Judgement::Untrusted(why)) => {
                        report(tlsrpt::SUCCESS);
                        tracing::info!(
                            "outbound: TLS to {host} [{ip}]: certificate not trusted ({why}); opportunistic, so used"
                        )
                    }
                    _ => {
                        report(tlsrpt::SUCCESS);
                        tracing::debug!("outbound: TLS to {host} [{ip}]: certificate trusted")
                    }
                }
                Ok(session)
            }
            Err(e) if required => {
                let judged = judgement.lock().ok().and_then(|j| j.clone());
                let why = match judged {
                    Some(Judgement::Untrusted(why)) => why,
                    _ => e.to_string(),
                };
                report(match policy {
                    Policy::Dane(_) => tlsrpt::TLSA_INVALID,
                    _ => tlsrpt::certificate_failure(&why),
                });
                Err(HostError::Tls(format!(
                    "smtp; 4.7.5 TLS with {host} [{ip}] failed the domain's policy: {why}"
                )))
            }
            Err(e) => {
                // Opportunistic TLS that breaks falls back to plaintext
                // on a new connection (RFC 7435 §3), as other MTAs do.
                tracing::info!("outbound: STARTTLS with {host} [{ip}] failed ({e}); plaintext");
                report(tlsrpt::VALIDATION_FAILURE);
                let mut session = self.connect(addr).await.map_err(|e| next(&e))?;
                session.capabilities.starttls = false;
                Ok(session)
            }
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Session, ClientError> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(CONNECT_TIMEOUT))??;
        let _ = tcp.set_nodelay(true);
        Session::open(Box::new(tcp), &self.hostname, self.timeouts).await
    }

    /// The transaction on an open session; the session goes back to the
    /// pool when it ended cleanly.
    async fn transact(
        &self,
        mut session: Session,
        host: &str,
        pool_key: &str,
        envelope: &Envelope,
        message: &[u8],
        needs: Needs,
    ) -> Result<Delivered, HostError> {
        let caps = session.capabilities.clone();
        if needs.smtputf8 && !caps.smtputf8 {
            session.quit().await;
            return Ok(Delivered::Permanent(format!(
                "smtp; 5.6.7 {host} does not support SMTPUTF8, which the non-ASCII addresses need"
            )));
        }
        if needs.require_tls && !(session.is_tls() && caps.requiretls) {
            session.quit().await;
            return Err(HostError::Tls(format!(
                "smtp; 4.7.30 {host} does not support REQUIRETLS, which the sender asked for"
            )));
        }
        if let Some(limit) = caps.size.filter(|l| *l > 0 && (message.len() as u64) > *l) {
            session.quit().await;
            return Ok(Delivered::Permanent(format!(
                "smtp; 5.3.4 the message ({} bytes) is larger than {host} accepts ({limit} bytes)",
                message.len()
            )));
        }
        let mut envelope = envelope.clone();
        let downgraded;
        let body: &[u8] = if needs.eight_bit && !caps.eight_bit_mime {
            downgraded = super::downgrade::to_seven_bit(message);
            &downgraded
        } else {
            message
        };
        if needs.eight_bit && caps.eight_bit_mime {
            envelope.mail_params.push("BODY=8BITMIME".into());
        }
        if needs.smtputf8 {
            envelope.mail_params.push("SMTPUTF8".into());
        }
        if needs.require_tls {
            envelope.mail_params.push("REQUIRETLS".into());
        }
        if !caps.dsn {
            // DSN parameters only to a peer that knows them (RFC 3461 §4).
            envelope
                .mail_params
                .retain(|p| !(p.starts_with("RET=") || p.starts_with("ENVID=")));
            for (_, params) in envelope.rcpt_to.iter_mut() {
                params.clear();
            }
        }
        let signed;
        let body = match &self.dkim {
            Some(dkim) => {
                signed = dkim.signed(body, &envelope.mail_from).await;
                &signed[..]
            }
            None => body,
        };
        if caps.size.is_some() {
            envelope.mail_params.push(format!("SIZE={}", body.len()));
        }
        match session.send(&envelope, body).await {
            Ok(outcome) => {
                self.checkin(pool_key, session);
                Ok(Delivered::Sent {
                    outcome,
                    host: host.to_string(),
                    peer_dsn: caps.dsn,
                })
            }
            Err(e) => Err(HostError::Next(format!("smtp; {host}: {e}"))),
        }
    }

    /// An idle session under `key` (host and policy), if one is fresh.
    fn checkout(&self, key: &str) -> Option<Session> {
        let mut pool = self.pool.lock().ok()?;
        let idle = pool.get_mut(key)?;
        while let Some((since, session)) = idle.pop() {
            if since.elapsed() < REUSE_WINDOW {
                return Some(session);
            }
            tokio::spawn(session.quit());
        }
        None
    }

    fn checkin(&self, key: &str, session: Session) {
        let Ok(mut pool) = self.pool.lock() else {
            return;
        };
        let idle = pool.entry(key.to_string()).or_default();
        if idle.len() < POOL_PER_HOST {
            idle.push((Instant::now(), session));
        } else {
            tokio::spawn(session.quit());
        }
    }

    /// Says goodbye to sessions idle longer than the reuse window.
    pub fn close_idle(&self) {
        let Ok(mut pool) = self.pool.lock() else {
            return;
        };
        for idle in pool.values_mut() {
            let (stale, fresh): (Vec<_>, Vec<_>) = std::mem::take(idle)
                .into_iter()
                .partition(|(since, _)| since.elapsed() >= REUSE_WINDOW);
            *idle = fresh;
            for (_, session) in stale {
                tokio::spawn(session.quit());
            }
        }
        pool.retain(|_, idle| !idle.is_empty());
    }
}

/// Where a session goes, for the TLS report.
struct Target<'a> {
    /// The destination domain (the policy domain).
    domain: &'a str,
    host: &'a str,
    policy_type: &'static str,
}

/// Why one host did not take the message.
#[derive(Debug)]
enum HostError {
    /// Try the next address or host.
    Next(String),
    /// The host could not meet the TLS policy; the next may.
    Tls(String),
}

/// Where idle sessions to `host` opened under `policy` are kept.
fn pool_key(host: &str, policy: &Policy) -> String {
    let kind = match policy {
        Policy::Opportunistic => "may",
        Policy::Verified => "verify",
        Policy::Dane(_) => "dane",
    };
    format!("{host} {kind}")
}

/// A TLSA record from the DNS answer.
fn tlsa(data: &RData) -> Option<Tlsa> {
    match data {
        RData::TLSA(t) => Some(Tlsa {
            usage: u8::from(t.cert_usage),
            selector: u8::from(t.selector),
            matching: u8::from(t.matching),
            data: t.cert_data.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_sessions_are_kept_apart_by_policy() {
        let may = pool_key("mx.example", &Policy::Opportunistic);
        let verify = pool_key("mx.example", &Policy::Verified);
        let dane = pool_key("mx.example", &Policy::Dane(Vec::new()));
        assert_ne!(may, verify);
        assert_ne!(may, dane);
        assert_ne!(verify, dane);
        assert_ne!(may, pool_key("mx2.example", &Policy::Opportunistic));
    }
}
