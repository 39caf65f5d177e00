//! Sender authentication in the session ([`crate::trust`]): SPF starts at
//! MAIL FROM, the rest runs at the end of DATA, and the outcome is a
//! refusal or the message with its `Authentication-Results` field.
//!
//! Only mail from other servers is checked: not authenticated users, not
//! clients in `smtp.relay_networks`, nothing on the submission ports.

use super::Session;
use crate::path::Mailbox;
use crate::reply::Reply;
use crate::trust::policy::{self, Action};
use crate::trust::{fields, Client, SpfChecks, Trust};
use crate::Mode;
use std::sync::Arc;
use tern_mail::SenderAuth;
use tokio::task::JoinHandle;

/// SPF lookups running for the open transaction; stopped if the
/// transaction is abandoned.
pub struct PendingSpf(JoinHandle<SpfChecks>);

impl Drop for PendingSpf {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Session {
    /// The checks, when this client's mail is to be checked.
    fn trust(&self) -> Option<Arc<Trust>> {
        let trust = self.srv.trust.as_ref()?;
        let ours = self.account.is_some() || self.config().may_relay(self.peer.ip());
        (self.mode == Mode::Mta && !ours && trust.applies()).then(|| trust.clone())
    }

    /// Starts SPF for a new transaction from `from`.
    pub(super) fn start_spf(&self, from: Option<&Mailbox>) -> Option<PendingSpf> {
        let trust = self.trust()?;
        if !trust.config().spf.checked() {
            return None;
        }
        let ip = self.peer.ip();
        let helo = self.helo.clone().unwrap_or_default();
        let mail_from = from.map(|m| m.address()).unwrap_or_default();
        Some(PendingSpf(tokio::spawn(async move {
            trust.spf(ip, &helo, &mail_from).await
        })))
    }

    /// The RSA key `domain` seals forwarded mail with (its DKIM key), if
    /// it has one (`tern dkim generate`).
    async fn arc_key(&mut self, domain: &str) -> Option<tern_store::DkimKey> {
        match self.srv.mail.store().dkim_keys(domain).await {
            Ok(keys) => keys.into_iter().find(|k| k.algorithm == "rsa"),
            Err(e) => {
                tracing::warn!("smtp {}: reading {domain}'s keys for ARC: {e}", self.peer);
                None
            }
        }
    }

    /// Checks a complete message from another server: the message to
    /// store (forged results removed, ours in front) and what was found,
    /// or the refusal.
    pub(super) async fn authenticate(
        &mut self,
        spf: Option<PendingSpf>,
        mail_from: &str,
        forwarded_by: Option<String>,
        body: Vec<u8>,
    ) -> Result<(Vec<u8>, Option<SenderAuth>), Reply> {
        let Some(trust) = self.trust() else {
            return Ok((body, None));
        };
        let hostname = self.srv.hostname.clone();
        // RFC 8601 §5: results claiming to be ours come only from us.
        let body = fields::strip_our_results(&body, &hostname).unwrap_or(body);
        let spf = match spf {
            Some(mut pending) => (&mut pending.0).await.unwrap_or_default(),
            None => SpfChecks::default(),
        };
        let client = Client {
            ip: self.peer.ip(),
            helo: self.helo.clone().unwrap_or_default(),
            mail_from: mail_from.to_string(),
        };
        let seal = match forwarded_by {
            Some(domain) => self.arc_key(&domain).await,
            None => None,
        };
        let checked = trust.check(&body, &client, spf, seal.as_ref()).await;

        let mut local = Vec::new();
        let directory = self.srv.mail.directory();
        for domain in checked
            .from_domains
            .iter()
            .chain(std::iter::once(&checked.mail_from_domain))
        {
            match directory.is_local_domain(domain).await {
                Ok(true) => local.push(domain.clone()),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("smtp {}: looking up domain {domain}: {e}", self.peer);
                    return Err(Reply::new(
                        451,
                        "4.3.0",
                        "temporary failure; try again later",
                    ));
                }
            }
        }
        let action = policy::decide(&checked, trust.config(), &|d: &str| {
            local.iter().any(|l| l == d)
        });
        let a = &checked.summary;
        tracing::info!(
            "smtp {}: sender authentication from=<{mail_from}> header.from={} spf={} dkim={} dmarc={} arc={}: {}",
            self.peer.ip(),
            checked.from_domains.join(","),
            a.spf.as_str(),
            a.dkim.as_str(),
            a.dmarc.as_str(),
            a.arc.as_str(),
            match &action {
                Action::Accept => "accepted",
                Action::Quarantine => "quarantined",
                Action::Refuse(_) => "refused",
            }
        );
        let mut summary = checked.summary;
        match action {
            Action::Refuse(reply) => return Err(reply),
            Action::Quarantine => summary.quarantine = true,
            Action::Accept => {}
        }
        let seal = checked.arc_seal.unwrap_or_default();
        let mut message = Vec::with_capacity(seal.len() + checked.field.len() + body.len());
        // RFC 8617 §4.1: our ARC set first, then our results.
        message.extend_from_slice(seal.as_bytes());
        message.extend_from_slice(checked.field.as_bytes());
        message.extend_from_slice(&body);
        Ok((message, Some(summary)))
    }
}
