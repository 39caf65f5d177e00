//! What the sender authentication results mean for the message: the
//! decision the administrator's `[inbound]` settings ask for.
//!
//! In order, the first that applies:
//! 1. **Our own domains** (`refuse_forged_local`): mail from outside that
//!    names one of our domains in MAIL FROM or `From:` must pass SPF for it
//!    or carry a passing DKIM signature aligned with it (RFC 7489 §3.1
//!    relaxed alignment, by the Public Suffix List); our users send
//!    through submission.
//! 2. **DMARC** (RFC 7489 §6.3, §10.3): `p=reject` refuses with 550 5.7.1,
//!    `p=quarantine` files into Junk — unless a trusted ARC sealer vouches
//!    for the message (RFC 8617 §7.2: forwarding breaks SPF and often DKIM).
//! 3. **SPF** (RFC 7208 §8.4): a `fail` with no passing DKIM signature and
//!    no trusted ARC chain refuses with 550 5.7.23.

use super::{Checked, DmarcPolicy};
use crate::reply::Reply;
use tern_core::config::InboundConfig;
use tern_mail::AuthResult;

/// What becomes of the message.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Accept,
    /// Delivered into Junk.
    Quarantine,
    Refuse(Reply),
}

/// Decides; `local` says whether a domain is one of ours.
pub fn decide(checked: &Checked, config: &InboundConfig, local: &dyn Fn(&str) -> bool) -> Action {
    let auth = &checked.summary;
    if config.refuse_forged_local {
        let envelope_domain =
            (!checked.mail_from_domain.is_empty()).then_some(checked.mail_from_domain.as_str());
        for domain in checked
            .from_domains
            .iter()
            .map(String::as_str)
            .chain(envelope_domain)
        {
            if !local(domain) {
                continue;
            }
            let spf_pass =
                auth.spf == AuthResult::Pass && aligned(&checked.mail_from_domain, domain);
            let dkim_pass = auth.dkim_domains.iter().any(|d| aligned(d, domain));
            if !spf_pass && !dkim_pass && !checked.trusted_arc {
                return Action::Refuse(Reply::new(
                    550,
                    "5.7.1",
                    format!(
                        "{domain} is a domain of this server: mail from it must be sent \
                         through submission, pass SPF or carry its DKIM signature"
                    ),
                ));
            }
        }
    }
    if config.dmarc.enforced() && auth.dmarc == AuthResult::Fail && !checked.trusted_arc {
        match checked.dmarc_policy {
            DmarcPolicy::Reject => {
                return Action::Refuse(Reply::new(
                    550,
                    "5.7.1",
                    format!(
                        "rejected by the DMARC policy of {}: neither SPF nor DKIM \
                         passed for the From: domain",
                        auth.from_domain
                    ),
                ))
            }
            DmarcPolicy::Quarantine => return Action::Quarantine,
            DmarcPolicy::None => {}
        }
    }
    if config.spf.enforced()
        && auth.spf == AuthResult::Fail
        && auth.dkim_domains.is_empty()
        && !checked.trusted_arc
    {
        return Action::Refuse(Reply::new(
            550,
            "5.7.23",
            format!(
                "SPF of {} does not allow this server to send its mail",
                checked.mail_from_domain
            ),
        ));
    }
    Action::Accept
}

/// Relaxed alignment (RFC 7489 §3.1.1): the same organizational domain.
fn aligned(a: &str, b: &str) -> bool {
    super::dmarc::aligned(a, b, mail_auth::dmarc::Alignment::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_mail::SenderAuth;

    fn checked(auth: SenderAuth, from: &str, mail_from: &str) -> Checked {
        Checked {
            summary: auth,
            from_domains: vec![from.into()],
            mail_from_domain: mail_from.into(),
            ..Checked::default()
        }
    }

    fn ours(d: &str) -> bool {
        d == "tern.test"
    }

    #[test]
    fn our_domain_from_outside_needs_spf_or_dkim() {
        let config = InboundConfig::default();
        let forged = checked(SenderAuth::default(), "tern.test", "spam.test");
        assert!(matches!(
            decide(&forged, &config, &ours),
            Action::Refuse(r) if r.code == 550
        ));
        let signed = checked(
            SenderAuth {
                dkim_domains: vec!["mail.tern.test".into()],
                ..SenderAuth::default()
            },
            "tern.test",
            "list.test",
        );
        assert_eq!(decide(&signed, &config, &ours), Action::Accept);
        let spf = checked(
            SenderAuth {
                spf: AuthResult::Pass,
                ..SenderAuth::default()
            },
            "tern.test",
            "tern.test",
        );
        assert_eq!(decide(&spf, &config, &ours), Action::Accept);
        let off = InboundConfig {
            refuse_forged_local: false,
            ..InboundConfig::default()
        };
        assert_eq!(decide(&forged, &off, &ours), Action::Accept);
    }

    #[test]
    fn dmarc_policies_apply_unless_tagging_or_a_trusted_sealer() {
        let config = InboundConfig::default();
        let mut failed = checked(
            SenderAuth {
                dmarc: AuthResult::Fail,
                from_domain: "bank.test".into(),
                ..SenderAuth::default()
            },
            "bank.test",
            "phish.test",
        );
        failed.dmarc_policy = DmarcPolicy::Reject;
        assert!(matches!(decide(&failed, &config, &ours), Action::Refuse(r) if r.code == 550));
        failed.dmarc_policy = DmarcPolicy::Quarantine;
        assert_eq!(decide(&failed, &config, &ours), Action::Quarantine);
        failed.trusted_arc = true;
        assert_eq!(decide(&failed, &config, &ours), Action::Accept);
        failed.trusted_arc = false;
        let tag = InboundConfig {
            dmarc: tern_core::config::Check::Tag,
            ..InboundConfig::default()
        };
        assert_eq!(decide(&failed, &tag, &ours), Action::Accept);
    }

    #[test]
    fn spf_fail_refuses_only_unsigned_mail() {
        let config = InboundConfig::default();
        let mut c = checked(
            SenderAuth {
                spf: AuthResult::Fail,
                ..SenderAuth::default()
            },
            "a.test",
            "a.test",
        );
        assert!(matches!(decide(&c, &config, &ours), Action::Refuse(r) if r.code == 550));
        c.summary.dkim_domains = vec!["a.test".into()];
        assert_eq!(decide(&c, &config, &ours), Action::Accept);
    }

    #[test]
    fn alignment_is_relaxed() {
        assert!(aligned("a.example.org", "example.org"));
        assert!(aligned("Example.org", "example.ORG"));
        assert!(!aligned("badexample.org", "example.org"));
    }
}
