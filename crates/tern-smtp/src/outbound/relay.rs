//! The smarthost (`[outbound] relay`): every remote recipient of a
//! message in one transaction with the configured relay, over STARTTLS,
//! implicit TLS or (on this machine or a trusted network) none, with AUTH
//! PLAIN only over TLS or to loopback.

use super::envelope::{dsn_mail_params, dsn_rcpt_params};
use super::{deferred, downgrade, per_recipient, Worker, CONNECT_TIMEOUT};
use crate::client::{ClientError, Envelope as ClientEnvelope, Session};
use tern_core::config::RelayTls;
use tern_store::{AttemptOutcome, Outbound, RecipientAttempt};
use tokio_rustls::rustls::pki_types::ServerName;

impl Worker {
    /// The remote recipients through the smarthost, one transaction.
    pub(super) async fn relay(
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
    pub(super) async fn connect(&self) -> Result<Session, ClientError> {
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
}
