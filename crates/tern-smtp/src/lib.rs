//! `tern-smtp`: the server side of SMTP.
//!
//! - Port 25 ([`Mode::Mta`]): mail from other servers for our domains and
//!   accounts (RFC 5321), never relayed elsewhere without AUTH.
//! - Ports 587 ([`Mode::Submission`], STARTTLS then AUTH) and 465
//!   ([`Mode::Submissions`], implicit TLS, RFC 8314): our users send
//!   (RFC 6409); local recipients are delivered at once, remote ones queued.
//!
//! ESMTP: PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
//! SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034/3463), CHUNKING
//! (RFC 3030), DSN (RFC 3461), STARTTLS (RFC 3207), AUTH PLAIN and LOGIN
//! (RFC 4954).
//!
//! Mail from other servers is checked by [`trust`] (SPF, DKIM, DMARC,
//! ARC) before it enters the pipeline.
//!
//! This crate translates between the wire and the mail layer
//! (`tern-mail`: login, recipient resolution, sender policy, the delivery
//! pipeline); it opens no files and knows no other protocol. A reply of
//! 250 after DATA is sent only once `Mail::deliver` has made the message
//! durable.

pub mod client;
pub mod command;
pub mod dns;
pub mod outbound;
pub mod path;
pub mod reply;
mod session;
pub mod trust;

use std::net::SocketAddr;
use std::sync::Arc;
use tern_core::config::{Limits, SmtpConfig};
use tern_mail::Mail;
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

/// Which SMTP service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Port 25: inbound mail from other servers.
    Mta,
    /// Port 587: submission, STARTTLS then AUTH.
    Submission,
    /// Port 465: submission over implicit TLS.
    Submissions,
}

/// Everything the SMTP sessions share.
pub struct SmtpServer {
    /// Our name in the greeting, EHLO and Received.
    pub hostname: String,
    /// Login, recipients, sender policy and delivery.
    pub mail: Arc<Mail>,
    pub tls: Arc<ServerConfig>,
    pub smtp: SmtpConfig,
    pub limits: Limits,
    /// Which connections get a protocol trace.
    pub tracer: Arc<tern_core::trace::Tracer>,
    /// Sender authentication of mail from other servers (port 25).
    pub trust: Option<Arc<trust::Trust>>,
    /// Greylisting's delay in seconds, when it is on.
    pub greylist_delay: Option<u64>,
}

impl SmtpServer {
    pub fn new(
        mail: Arc<Mail>,
        tls: Arc<ServerConfig>,
        smtp: SmtpConfig,
        limits: Limits,
    ) -> SmtpServer {
        SmtpServer {
            hostname: mail.hostname().to_string(),
            mail,
            tls,
            smtp,
            limits,
            tracer: Arc::new(tern_core::trace::Tracer::off()),
            trust: None,
            greylist_delay: None,
        }
    }

    /// Checks mail from other servers with `trust` (SPF, DKIM, DMARC, ARC).
    pub fn with_trust(mut self, trust: Arc<trust::Trust>) -> SmtpServer {
        self.trust = Some(trust);
        self
    }

    /// Greylists unknown senders on port 25 for `delay_secs`.
    pub fn with_greylisting(mut self, delay_secs: u64) -> SmtpServer {
        self.greylist_delay = Some(delay_secs);
        self
    }

    /// Traces the connections `tracer` picks.
    pub fn with_tracer(mut self, tracer: Arc<tern_core::trace::Tracer>) -> SmtpServer {
        self.tracer = tracer;
        self
    }

    /// Runs one client connection to its end. `admitted` is false when a
    /// connection limit was reached: the client gets 421 and is closed.
    /// `stopping` turns true when the server shuts down; the session then
    /// ends at the next command with 421.
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
}

/// Replays the seed corpora of the `smtp_command` and `smtp_path` fuzz
/// targets (fuzz/corpus/, see fuzz/README.md): no entry may panic.
#[cfg(test)]
mod fuzz_corpus {
    use tern_core::fuzz_corpus::replay;

    #[test]
    fn smtp_command() {
        replay("smtp_command", |data| {
            if let Err(e) = crate::command::parse(data) {
                let _ = e.to_string();
            }
        });
    }

    /// As fuzz/fuzz_targets/mta_sts.rs.
    #[test]
    fn mta_sts() {
        use crate::outbound::mta_sts::{http_body, parse_policy, parse_txt};
        replay("mta_sts", |data| {
            if let Ok(body) = http_body(data) {
                if let Ok(text) = std::str::from_utf8(&body) {
                    if let Some(p) = parse_policy(text) {
                        let _ = p.allows("mx.example.com");
                    }
                }
            }
            if let Ok(text) = std::str::from_utf8(data) {
                let _ = parse_policy(text);
                let _ = parse_txt(text);
            }
        });
    }

    /// As fuzz/fuzz_targets/auth_headers.rs.
    #[test]
    fn auth_headers() {
        use crate::trust::fields::{count_signatures, strip_our_results};
        replay("auth_headers", |data| {
            let _ = count_signatures(data);
            if let Some(kept) = strip_our_results(data, "mx.example.com") {
                assert!(kept.len() < data.len());
            }
            if let Some(message) = mail_auth::AuthenticatedMessage::parse(data) {
                let _ = message.from();
            }
        });
    }

    /// As fuzz/fuzz_targets/certificate.rs.
    #[test]
    fn certificate() {
        replay("certificate", |data| {
            if let Some(spki) = crate::outbound::tls::subject_public_key_info(data) {
                assert!(spki.len() <= data.len());
            }
        });
    }

    /// As fuzz/fuzz_targets/smtp_reply.rs: a remote server's lines, fed to
    /// the outbound client's reply reader.
    #[test]
    fn smtp_reply() {
        use crate::client::reply::ReplyBuilder;
        replay("smtp_reply", |data| {
            let mut builder = ReplyBuilder::default();
            for line in data.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                match builder.push(line) {
                    Ok(Some(reply)) => {
                        let _ = reply.enhanced_status();
                        let _ = crate::client::Capabilities::from_ehlo(&reply);
                        let _ = reply.to_string();
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = e.to_string();
                        builder = ReplyBuilder::default();
                    }
                }
            }
        });
    }

    /// The input as fuzz/fuzz_targets/smtp_path.rs reads it: the first byte
    /// selects the `utf8` flag (bit 0) and `parse_mailbox` (bit 1).
    #[test]
    fn smtp_path() {
        replay("smtp_path", |data| {
            let Some((&selector, rest)) = data.split_first() else {
                return;
            };
            let text = String::from_utf8_lossy(rest);
            let mailbox = if selector & 2 == 0 {
                crate::path::parse_path(&text, selector & 1 == 1)
                    .ok()
                    .flatten()
            } else {
                crate::path::parse_mailbox(&text).ok()
            };
            if let Some(m) = mailbox {
                let _ = m.address();
                let _ = m.domain_name();
            }
        });
    }
}
