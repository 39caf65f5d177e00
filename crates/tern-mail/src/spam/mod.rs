//! The built-in spam filter (`[spam]`), for mail from other servers (not
//! from our users, nor from clients in `smtp.relay_networks`, which are
//! ours as they are to sender authentication):
//!
//! - [`SpamRules`], a [`Screen`]: once per message, the [`rules`] (sender
//!   authentication results, header and body heuristics, GTUBE) and the
//!   DNS block [`lists`] make a score; the message gets `X-Spam-Status` and
//!   `X-Spam-Score` (and `X-Spam-Flag: YES` from `tag_score`), any such
//!   fields from outside removed first; from `reject_score` it is refused
//!   at SMTP time;
//! - [`SpamFilter`], a [`Filter`]: per recipient, the score plus what the
//!   recipient's own [`bayes`] classifier says decides `$Junk` (from
//!   `tag_score`) and the Junk mailbox (from `junk_score`);
//! - [`bayes::Trainer`] teaches the classifiers from the users' verdicts.

pub mod bayes;
pub mod lists;
pub mod rules;

use crate::delivery::Origin;
use crate::filter::{Filter, FilterInput, MailboxTarget, Verdict};
use crate::screen::{Screen, ScreenInput, Screening, SpamScore};
use async_trait::async_trait;
use lists::DnsLookup;
use mail_parser::MessageParser;
use std::sync::Arc;
use tern_core::config::SpamConfig;
use tern_core::net::IpNetwork;
use tern_store::Role;

/// The fields this filter writes; arriving ones are removed.
const OUR_FIELDS: &[&str] = &["X-Spam-Status", "X-Spam-Score", "X-Spam-Flag"];
/// Link domains looked up in URI block lists, at most.
const MAX_LINK_DOMAINS: usize = 20;

/// The whole-message part: rules, block lists, the fields.
pub struct SpamRules {
    config: SpamConfig,
    dns: Option<Arc<dyn DnsLookup>>,
    /// Clients whose mail is ours, not scored (`smtp.relay_networks`).
    ours: Vec<IpNetwork>,
}

impl SpamRules {
    /// `dns` answers the block-list lookups (none: lists are not asked).
    pub fn new(config: SpamConfig, dns: Option<Arc<dyn DnsLookup>>) -> SpamRules {
        SpamRules {
            config,
            dns,
            ours: Vec::new(),
        }
    }

    /// Mail from clients in `networks` is passed unscored, with no fields
    /// added: it is our own mail on its way out, like a user's.
    pub fn trusting(mut self, networks: Vec<IpNetwork>) -> SpamRules {
        self.ours = networks;
        self
    }

    fn is_from_ours(&self, input: &ScreenInput<'_>) -> bool {
        input
            .trace
            .is_some_and(|t| self.ours.iter().any(|net| net.contains(t.peer)))
    }

    /// The score of `input` and the rules that made it, with the message's
    /// tokens for the classifiers.
    pub async fn score(&self, input: &ScreenInput<'_>) -> SpamScore {
        let Some(message) = MessageParser::default().parse(input.raw) else {
            return SpamScore {
                score: 0.0,
                rules: vec![("UNPARSEABLE".into(), 0.0)],
                tokens: Vec::new(),
            };
        };
        let mut rules: Vec<(String, f64)> =
            rules::content_rules(&message, input.raw, input.envelope)
                .into_iter()
                .map(|(name, points)| (name.to_string(), points))
                .collect();
        if let Some(dns) = &self.dns {
            if let Some(trace) = input.trace {
                for list in lists::listed_ip(dns.as_ref(), trace.peer, &self.config.dnsbl).await {
                    rules.push((format!("RCVD_IN_DNSBL({list})"), self.config.dnsbl_points.0));
                }
            }
            if !self.config.uribl.is_empty() {
                let domains = lists::link_domains(&rules::body_text(&message), MAX_LINK_DOMAINS);
                for (domain, list) in
                    lists::listed_domains(dns.as_ref(), &domains, &self.config.uribl).await
                {
                    rules.push((
                        format!("URIBL({domain} in {list})"),
                        self.config.uribl_points.0,
                    ));
                }
            }
        }
        // The tokens feed each local recipient's classifier: mail only
        // relayed elsewhere has none to ask.
        let tokens = if self.config.bayes && !input.envelope.local.is_empty() {
            bayes::tokens(&message)
        } else {
            Vec::new()
        };
        SpamScore {
            // `+ 0.0` turns the empty sum's -0.0 into 0.0 for the fields.
            score: rules.iter().map(|(_, p)| p).sum::<f64>() + 0.0,
            rules,
            tokens,
        }
    }
}

#[async_trait]
impl Screen for SpamRules {
    fn name(&self) -> &str {
        "spam"
    }

    async fn screen(&self, input: &ScreenInput<'_>) -> Screening {
        if !self.config.enabled
            || input.envelope.origin != Origin::Inbound
            || self.is_from_ours(input)
        {
            return Screening::pass();
        }
        let spam = self.score(input).await;
        let from = &input.envelope.mail_from;
        if spam.score >= self.config.reject_score.0 {
            tracing::info!(
                "spam: refused a message from <{from}>, score {:.1} ({})",
                spam.score,
                names(&spam)
            );
            return Screening::refuse(
                550,
                "5.7.1",
                format!("message refused as spam (score {:.1})", spam.score),
            );
        }
        let flagged = spam.score >= self.config.tag_score.0;
        let mut fields = vec![
            status_field(&spam, flagged, self.config.tag_score.0),
            format!("X-Spam-Score: {:.1}\r\n", spam.score),
        ];
        if flagged {
            fields.push("X-Spam-Flag: YES\r\n".into());
        }
        Screening {
            refuse: None,
            fields,
            remove_fields: OUR_FIELDS.to_vec(),
            spam: Some(spam),
            ..Screening::default()
        }
    }
}

/// SpamAssassin's `X-Spam-Status` form, folded.
fn status_field(spam: &SpamScore, flagged: bool, required: f64) -> String {
    format!(
        "X-Spam-Status: {}, score={:.1} required={required:.1}\r\n\ttests={}\r\n",
        if flagged { "Yes" } else { "No" },
        spam.score,
        if spam.rules.is_empty() {
            "none".to_string()
        } else {
            names(spam)
        }
    )
}

fn names(spam: &SpamScore) -> String {
    spam.rules
        .iter()
        .map(|(name, points)| format!("{name}={points:.1}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The per-recipient part: the message's score plus the recipient's own
/// classifier, against the thresholds.
pub struct SpamFilter {
    config: SpamConfig,
    store: Arc<dyn tern_store::Store>,
}

impl SpamFilter {
    pub fn new(config: SpamConfig, store: Arc<dyn tern_store::Store>) -> SpamFilter {
        SpamFilter { config, store }
    }
}

#[async_trait]
impl Filter for SpamFilter {
    fn name(&self) -> &str {
        "spam"
    }

    async fn check(&self, input: &FilterInput<'_>) -> Verdict {
        let Some(spam) = input.spam else {
            return Verdict::Accept;
        };
        let mut score = spam.score;
        let mut bayes_rule = None;
        if self.config.bayes && !spam.tokens.is_empty() {
            match self.store.bayes_counts(input.recipient, &spam.tokens).await {
                Ok(counts) => {
                    if let Some(p) = bayes::classify(&counts) {
                        let (name, points) = bayes::points(p);
                        score += points;
                        bayes_rule = Some(format!("{name} (p={p:.3})"));
                    }
                }
                Err(e) => {
                    tracing::warn!("spam: reading the classifier of {}: {e}", input.recipient)
                }
            }
        }
        let verdict = if score >= self.config.junk_score.0 {
            Verdict::FileInto {
                mailbox: MailboxTarget::Role(Role::Junk),
                keywords: vec!["$Junk".into()],
            }
        } else if score >= self.config.tag_score.0 {
            Verdict::FileInto {
                mailbox: MailboxTarget::Role(Role::Inbox),
                keywords: vec!["$Junk".into()],
            }
        } else {
            Verdict::Accept
        };
        tracing::debug!(
            "spam: {} scores {score:.1}{} for {}",
            input.envelope.mail_from,
            bayes_rule.map(|r| format!(" with {r}")).unwrap_or_default(),
            input.recipient
        );
        verdict
    }
}

/// One fuzzing input through everything the filter reads of a message
/// (fuzz/fuzz_targets/spam_rules.rs); panics are the bugs.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let doomed = |name: &[u8], _: &[u8]| {
        OUR_FIELDS
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
    };
    if let Some(kept) = crate::fields::without_fields(data, doomed) {
        assert!(kept.len() < data.len());
    }
    if let Some(message) = MessageParser::default().parse(data) {
        let envelope = crate::delivery::Envelope {
            mail_from: "a@remote.test".into(),
            local: vec![crate::delivery::LocalRecipient {
                account_id: tern_store::AccountId(1),
                address: "b@example.test".into(),
            }],
            remote: vec![],
            env_id: None,
            ret: None,
            require_tls: false,
            sender_auth: None,
            origin: Origin::Inbound,
            release_at: None,
        };
        let _ = rules::content_rules(&message, data, &envelope);
        let _ = bayes::tokens(&message);
        let _ = lists::link_domains(&rules::body_text(&message), MAX_LINK_DOMAINS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classifiers' tokens are taken for mail with a local recipient
    /// only: relayed mail has no classifier to feed, and tokenising it was
    /// 2% of the server's CPU relaying (BENCHMARKS.md, issue 12).
    #[tokio::test]
    async fn tokens_only_for_local_recipients() {
        let rules = SpamRules::new(SpamConfig::default(), None);
        assert!(SpamConfig::default().bayes);
        let raw = b"From: a@remote.test\r\nSubject: cheap words here\r\n\r\nSome body words to count.\r\n";
        let mut envelope = crate::test_support::inbound_envelope();
        envelope.remote = vec![tern_store::OutboundRecipient {
            address: "c@elsewhere.test".into(),
            notify: tern_store::DsnNotify::default(),
            orcpt: None,
        }];
        let input = |envelope| ScreenInput {
            raw,
            envelope,
            trace: None,
        };
        assert!(rules.score(&input(&envelope)).await.tokens.is_empty());
        let mut envelope = envelope.clone();
        envelope.local = vec![crate::delivery::LocalRecipient {
            account_id: tern_store::AccountId(1),
            address: "b@example.test".into(),
        }];
        assert!(!rules.score(&input(&envelope)).await.tokens.is_empty());
    }

    /// Mail from a relay-network client is ours: passed unscored and
    /// without fields; the same message from elsewhere is scored.
    #[tokio::test]
    async fn relay_network_clients_are_not_scored() {
        let rules = SpamRules::new(SpamConfig::default(), None)
            .trusting(vec!["192.0.2.0/24".parse().expect("a network")]);
        let raw = b"From: a@remote.test\r\nSubject: XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
        let envelope = crate::test_support::inbound_envelope();
        let from = |peer: &str| {
            let trace = crate::delivery::Trace {
                helo: "client".into(),
                peer: peer.parse().expect("an address"),
                with: "ESMTP".into(),
            };
            let envelope = &envelope;
            let rules = &rules;
            async move {
                let input = ScreenInput {
                    raw,
                    envelope,
                    trace: Some(&trace),
                };
                rules.screen(&input).await
            }
        };
        assert_eq!(from("192.0.2.7").await, Screening::pass());
        let screened = from("198.51.100.7").await;
        assert!(screened.refuse.is_some(), "{screened:?}");
    }
}

/// Replays the seed corpus of the `spam_rules` fuzz target (fuzz/corpus/).
#[cfg(test)]
mod fuzz_corpus {
    #[test]
    fn spam_rules() {
        tern_core::fuzz_corpus::replay("spam_rules", super::fuzz_one);
    }
}
