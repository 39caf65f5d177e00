//! Sender authentication of mail arriving from other servers: who really
//! sent it.
//!
//! - SPF (RFC 7208) of the HELO and MAIL FROM identities starts as soon as
//!   MAIL FROM is accepted ([`Trust::spf`], spawned by the session), so its
//!   lookups overlap RCPT and DATA;
//! - DKIM (RFC 6376, every signature, Ed25519 and RSA), ARC (RFC 8617) and
//!   DMARC (RFC 7489, the organizational domain from the Public Suffix
//!   List: [`dmarc`]) run when the message is complete ([`Trust::check`]);
//! - the results become one `Authentication-Results` field (RFC 8601) named
//!   after our host name, after any field claiming that name is removed
//!   ([`fields`]);
//! - [`policy`] turns them into an action: accept, quarantine (Junk) or a
//!   refusal.
//!
//! mail-auth does the cryptography and the record parsing; DNS answers come
//! through our resolver (`[dns] servers`), whose cache keeps them for their
//! TTLs.

pub mod dmarc;
pub mod fields;
pub mod policy;

/// For the fuzz target, which exercises mail-auth's header parsers too.
pub use mail_auth;

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, MessageAuthenticator, SpfOutput,
    SpfResult,
};
use std::net::IpAddr;
use tern_core::config::InboundConfig;
use tern_mail::{AuthResult, SenderAuth};

/// More DKIM and ARC signatures than this and none is verified: each costs
/// a DNS lookup and may ask for its own body hash.
pub const MAX_SIGNATURES: usize = 16;

/// The checks, shared by every SMTP session.
pub struct Trust {
    authenticator: MessageAuthenticator,
    config: InboundConfig,
    /// Our authserv-id (RFC 8601 §2.5): the host name.
    authserv_id: String,
}

/// SPF results, computed while the rest of the transaction arrives.
#[derive(Debug, Clone, Default)]
pub struct SpfChecks {
    /// The HELO identity (none when HELO named no domain).
    pub helo: Option<SpfOutput>,
    /// The MAIL FROM identity (`postmaster@` the HELO name for `<>`).
    pub mail_from: Option<SpfOutput>,
}

/// The client a message came from.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub helo: String,
    /// The reverse-path; empty for `<>`.
    pub mail_from: String,
}

/// Everything the checks found about one message, owned.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The `Authentication-Results:` field to prepend, CRLF-terminated.
    pub field: String,
    pub summary: SenderAuth,
    /// The `From:` addresses' domains (lower case).
    pub from_domains: Vec<String>,
    /// The MAIL FROM domain (the HELO name for `<>`), lower case.
    pub mail_from_domain: String,
    /// The author domain's DMARC policy, as mail-auth applied it.
    pub dmarc_policy: DmarcPolicy,
    /// The ARC chain passed and its last seal is by a trusted sealer.
    pub trusted_arc: bool,
    /// The last ARC sealer's domain, if any.
    pub arc_sealer: Option<String>,
    /// Our ARC set (RFC 8617 §4.1: seal, message signature, results) for a
    /// message we forward, CRLF-terminated fields to prepend.
    pub arc_seal: Option<String>,
}

/// Fields our ARC message signature covers (RFC 8617 §4.1.2 takes
/// DKIM's rules: what identifies the message, not what hops add).
const ARC_SIGNED_FIELDS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "DKIM-Signature",
];

/// The `p=` that applies to the author domain (RFC 7489 §6.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DmarcPolicy {
    #[default]
    None,
    Quarantine,
    Reject,
}

impl Trust {
    pub fn new(resolver: TokioResolver, config: InboundConfig, authserv_id: String) -> Trust {
        Trust {
            authenticator: MessageAuthenticator(resolver),
            config,
            authserv_id,
        }
    }

    pub fn config(&self) -> &InboundConfig {
        &self.config
    }

    /// Whether any check is on.
    pub fn applies(&self) -> bool {
        self.config.any()
    }

    /// SPF for both identities (RFC 7208 §2.3, §2.4), concurrently.
    pub async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfChecks {
        if !self.config.spf.checked() {
            return SpfChecks::default();
        }
        let host = self.authserv_id.as_str();
        let helo_domain = helo_domain(helo);
        let sender = if mail_from.is_empty() {
            // §2.4: the null reverse-path is checked as postmaster@HELO.
            helo_domain.map(|d| format!("postmaster@{d}"))
        } else {
            Some(mail_from.to_string())
        };
        let helo_check = async {
            match helo_domain {
                Some(d) => Some(
                    self.authenticator
                        .verify_spf(SpfParameters::verify_ehlo(ip, d, host))
                        .await,
                ),
                None => None,
            }
        };
        let mail_from_check = async {
            match &sender {
                Some(s) => Some(
                    self.authenticator
                        .verify_spf(SpfParameters::verify_mail_from(
                            ip,
                            helo_domain.unwrap_or(helo),
                            host,
                            s,
                        ))
                        .await,
                ),
                None => None,
            }
        };
        let (helo, mail_from) = tokio::join!(helo_check, mail_from_check);
        SpfChecks { helo, mail_from }
    }

    /// DKIM, ARC and DMARC over the complete message `raw` (as the client
    /// sent it), with the SPF results, into one field and a summary.
    /// With `seal` (we forward the message), our ARC set is made too.
    pub async fn check(
        &self,
        raw: &[u8],
        client: &Client,
        spf: SpfChecks,
        seal: Option<&tern_store::DkimKey>,
    ) -> Checked {
        let config = &self.config;
        let mut results = AuthenticationResults::new(&self.authserv_id);
        let helo = helo_domain(&client.helo).unwrap_or(&client.helo);
        if let Some(out) = &spf.helo {
            results = results.with_spf_ehlo_result(out, client.ip, helo);
        }
        if let Some(out) = &spf.mail_from {
            results = results.with_spf_mailfrom_result(out, client.ip, &client.mail_from, helo);
        }
        let mail_from_domain = match client.mail_from.rsplit_once('@') {
            Some((_, d)) => d.to_ascii_lowercase(),
            None => helo.to_ascii_lowercase(),
        };
        let mut checked = Checked {
            mail_from_domain,
            ..Checked::default()
        };
        checked.summary.spf = spf
            .mail_from
            .as_ref()
            .map(|o| spf_result(o.result()))
            .unwrap_or_default();

        let signatures = fields::count_signatures(raw);
        let message = AuthenticatedMessage::parse(raw);
        let Some(message) = message.filter(|_| signatures <= MAX_SIGNATURES) else {
            // Unparseable headers, or a flood of signatures: nothing to
            // verify, say so.
            let why = if signatures > MAX_SIGNATURES {
                "too many signatures"
            } else {
                "message not parseable"
            };
            if config.dkim.checked() && signatures > 0 {
                checked.summary.dkim = AuthResult::PermError;
            }
            checked.field = finish(results.to_string(), &format!("dkim=permerror ({why})"));
            return checked;
        };
        checked.from_domains = message
            .from
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .collect();
        checked.from_domains.dedup();
        let header_from = message.from().to_string();

        let dkim = if config.dkim.checked() || config.dmarc.checked() {
            self.authenticator.verify_dkim(&message).await
        } else {
            Vec::new()
        };
        if config.dkim.checked() {
            results = results.with_dkim_results(&dkim, &header_from);
            checked.summary.dkim = dkim
                .iter()
                .map(|o| dkim_result(o.result()))
                .min_by_key(|r| rank(*r))
                .unwrap_or_default();
            checked.summary.dkim_domains = dkim
                .iter()
                .filter(|o| o.result() == &DkimResult::Pass)
                .filter_map(|o| o.signature().map(|s| s.d.to_ascii_lowercase()))
                .collect();
        }

        let arc = if config.arc.checked() || seal.is_some() {
            Some(self.authenticator.verify_arc(&message).await)
        } else {
            None
        };
        if let (true, Some(arc)) = (config.arc.checked(), &arc) {
            results = results.with_arc_result(arc, client.ip);
            checked.summary.arc = dkim_result(arc.result());
            checked.arc_sealer = arc
                .sets()
                .last()
                .map(|set| set.seal.header.d.to_ascii_lowercase());
            checked.trusted_arc = checked.summary.arc == AuthResult::Pass
                && checked.arc_sealer.as_ref().is_some_and(|d| {
                    config
                        .trusted_arc_sealers
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(d))
                });
        }

        let mut dmarc_text = String::new();
        if config.dmarc.checked() {
            let dkim_pass: Vec<String> = dkim
                .iter()
                .filter(|o| o.result() == &DkimResult::Pass)
                .filter_map(|o| o.signature().map(|s| s.d.to_ascii_lowercase()))
                .collect();
            let verdict = dmarc::evaluate(
                &self.authenticator.0,
                &checked.from_domains,
                checked.summary.spf,
                &checked.mail_from_domain,
                &dkim_pass,
            )
            .await;
            dmarc_text = verdict.results_text().unwrap_or_default();
            checked.summary.dmarc = verdict.result;
            checked.summary.from_domain = verdict.domain;
            checked.dmarc_policy = verdict.policy;
        }
        if let (Some(key), Some(arc)) = (seal, &arc) {
            checked.arc_seal = arc_seal(key, &message, &results, arc);
        }
        checked.field = finish(results.to_string(), &dmarc_text);
        checked
    }
}

/// Our ARC set over `message` with the RSA `key` (RFC 8617 allows only
/// rsa-sha256), continuing the chain `arc` found; none when the chain
/// already failed (§5.1.2: a failed chain is not sealed again) or the
/// key is unusable.
fn arc_seal(
    key: &tern_store::DkimKey,
    message: &AuthenticatedMessage<'_>,
    results: &AuthenticationResults<'_>,
    arc: &mail_auth::ArcOutput<'_>,
) -> Option<String> {
    use mail_auth::arc::ArcSealer;
    use mail_auth::common::crypto::{RsaKey, Sha256};
    use mail_auth::common::headers::HeaderWriter;
    if !arc.can_be_sealed() {
        return None;
    }
    let der = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs1(key.private_key.clone().into());
    let rsa = match RsaKey::<Sha256>::from_key_der(der) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(
                "ARC seal: the RSA key {} of {}: {e}",
                key.selector,
                key.domain
            );
            return None;
        }
    };
    let sealer = ArcSealer::from_key(rsa)
        .domain(key.domain.clone())
        .selector(key.selector.clone())
        .headers(ARC_SIGNED_FIELDS.iter().copied());
    match sealer.seal(message, results, arc) {
        Ok(set) => Some(set.to_header()),
        Err(e) => {
            tracing::warn!("ARC seal for {}: {e}", key.domain);
            None
        }
    }
}

/// The field from mail-auth's `authserv-id; method=result...` text, with
/// `extra` results appended; `none` when nothing was checked (RFC 8601
/// §2.2).
fn finish(text: String, extra: &str) -> String {
    let mut text = text;
    if !extra.is_empty() {
        text.push_str(";\r\n\t");
        text.push_str(extra);
    }
    if !text.contains(';') {
        text.push_str("; none");
    }
    format!("Authentication-Results: {text}\r\n")
}

/// The HELO argument as a domain for SPF: none for an address literal
/// (`[192.0.2.1]`) or a bare word.
fn helo_domain(helo: &str) -> Option<&str> {
    let helo = helo.trim_end_matches('.');
    (!helo.starts_with('[') && helo.contains('.') && helo.parse::<IpAddr>().is_err())
        .then_some(helo)
}

fn spf_result(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn dkim_result(r: &DkimResult) -> AuthResult {
    match r {
        DkimResult::Pass => AuthResult::Pass,
        DkimResult::Neutral(_) => AuthResult::Neutral,
        DkimResult::Fail(_) => AuthResult::Fail,
        DkimResult::PermError(_) => AuthResult::PermError,
        DkimResult::TempError(_) => AuthResult::TempError,
        DkimResult::None => AuthResult::None,
    }
}

/// Which of several signatures' results speaks for the message: a pass
/// beats everything, then a temporary error (it may pass later).
fn rank(r: AuthResult) -> u8 {
    match r {
        AuthResult::Pass => 0,
        AuthResult::TempError => 1,
        AuthResult::Fail => 2,
        AuthResult::PermError => 3,
        AuthResult::Neutral => 4,
        AuthResult::SoftFail => 5,
        AuthResult::None => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helo_names_that_spf_can_check() {
        assert_eq!(helo_domain("mail.example.org"), Some("mail.example.org"));
        assert_eq!(helo_domain("mail.example.org."), Some("mail.example.org"));
        assert_eq!(helo_domain("[192.0.2.1]"), None);
        assert_eq!(helo_domain("192.0.2.1"), None);
        assert_eq!(helo_domain("localhost"), None);
    }

    #[test]
    fn a_signature_that_passes_speaks_for_the_message() {
        let best = [AuthResult::Fail, AuthResult::Pass, AuthResult::Neutral]
            .into_iter()
            .min_by_key(|r| rank(*r));
        assert_eq!(best, Some(AuthResult::Pass));
    }
}
