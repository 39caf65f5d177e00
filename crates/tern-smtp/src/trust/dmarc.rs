//! DMARC (RFC 7489) evaluation: the author domain's policy record, found
//! at `_dmarc.<author domain>` or else at `_dmarc.<organizational
//! domain>` (§6.6.3), where the organizational domain is the registrable
//! domain by the Public Suffix List shipped in the binary (the `psl`
//! crate, §3.2); identifier alignment of the passing SPF and DKIM
//! identities (§3.1, strict or relaxed per `aspf`/`adkim`); and the policy
//! that applies (`p`, or `sp` for a subdomain's mail under the
//! organizational record), sampled by `pct` (§6.6.4).
//!
//! mail-auth parses the record; the rest is here, because mail-auth 0.13
//! walks the DNS tree of DMARCbis instead of the list RFC 7489 names.

use super::DmarcPolicy;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::{Alignment, Dmarc, Policy};
use mail_auth::hickory_resolver::proto::rr::RData;
use mail_auth::hickory_resolver::TokioResolver;
use tern_mail::AuthResult;

/// What DMARC concluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub result: AuthResult,
    /// The author domain (`header.from`).
    pub domain: String,
    /// The published policy that applies (`policy.dmarc` in the results).
    pub published: DmarcPolicy,
    /// The policy to act on after `pct` sampling.
    pub policy: DmarcPolicy,
}

impl Verdict {
    /// The `dmarc=` part of `Authentication-Results` (RFC 7489 §11.2).
    pub fn results_text(&self) -> Option<String> {
        if self.domain.is_empty() {
            return None;
        }
        let policy = match self.published {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        };
        Some(format!(
            "dmarc={} header.from={} policy.dmarc={policy}",
            self.result.as_str(),
            self.domain
        ))
    }
}

/// The organizational domain of `domain` (RFC 7489 §3.2): its registrable
/// domain by the Public Suffix List, or itself when it is a public suffix
/// or not a name the list knows.
pub fn organizational_domain(domain: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&domain)
        .map(str::to_string)
        .unwrap_or(domain)
}

/// Whether identifier `a` is aligned with author domain `b` (§3.1).
pub fn aligned(a: &str, b: &str, mode: Alignment) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    match mode {
        Alignment::Strict => a == b,
        Alignment::Relaxed => organizational_domain(&a) == organizational_domain(&b),
    }
}

/// What the lookup of one `_dmarc` name found.
enum Lookup {
    Record(Dmarc, u8),
    None,
    TempError,
}

/// The DMARC record at `_dmarc.<domain>` (§6.6.3: exactly one TXT record
/// starting `v=DMARC1`, else none), with its `pct` (100 when absent).
async fn lookup(resolver: &TokioResolver, domain: &str) -> Lookup {
    let name = format!("_dmarc.{domain}.");
    let answer = match resolver.txt_lookup(name.as_str()).await {
        Ok(a) => a,
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => return Lookup::None,
        Err(_) => return Lookup::TempError,
    };
    let records: Vec<Vec<u8>> = answer
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect(),
            ),
            _ => None,
        })
        .filter(|t: &Vec<u8>| t.len() >= 8 && t[..8].eq_ignore_ascii_case(b"v=DMARC1"))
        .collect();
    let [record] = records.as_slice() else {
        return Lookup::None;
    };
    match Dmarc::parse(record) {
        Ok(dmarc) => Lookup::Record(dmarc, pct_of(record)),
        Err(_) => Lookup::None,
    }
}

/// The `pct` tag (RFC 7489 §6.3), which mail-auth's DMARCbis parser drops.
pub fn pct_of(record: &[u8]) -> u8 {
    String::from_utf8_lossy(record)
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("pct"))
        .and_then(|(_, v)| v.trim().parse::<u8>().ok())
        .map_or(100, |p| p.min(100))
}

fn policy_of(p: Policy) -> DmarcPolicy {
    match p {
        Policy::Reject => DmarcPolicy::Reject,
        Policy::Quarantine => DmarcPolicy::Quarantine,
        Policy::None | Policy::Unspecified => DmarcPolicy::None,
    }
}

/// Evaluates DMARC for a message whose `From:` domains are `from_domains`,
/// with the SPF result of the MAIL FROM domain and the domains of the DKIM
/// signatures that passed.
pub async fn evaluate(
    resolver: &TokioResolver,
    from_domains: &[String],
    spf: AuthResult,
    mail_from_domain: &str,
    dkim_pass: &[String],
) -> Verdict {
    // §6.6.1: one author domain; several (or none) and DMARC does not apply.
    let mut domains: Vec<&String> = from_domains.iter().collect();
    domains.dedup();
    let [author] = domains.as_slice() else {
        return Verdict::default();
    };
    let author = author.trim_end_matches('.').to_ascii_lowercase();
    let org = organizational_domain(&author);
    let (record, pct, at_org) = match lookup(resolver, &author).await {
        Lookup::Record(r, pct) => (r, pct, false),
        Lookup::TempError => {
            return Verdict {
                result: AuthResult::TempError,
                domain: author,
                ..Verdict::default()
            }
        }
        Lookup::None if org != author => match lookup(resolver, &org).await {
            Lookup::Record(r, pct) => (r, pct, true),
            Lookup::TempError => {
                return Verdict {
                    result: AuthResult::TempError,
                    domain: author,
                    ..Verdict::default()
                }
            }
            Lookup::None => return Verdict::default(),
        },
        Lookup::None => return Verdict::default(),
    };
    let spf_aligned = spf == AuthResult::Pass && aligned(mail_from_domain, &author, record.aspf);
    let dkim_aligned = dkim_pass.iter().any(|d| aligned(d, &author, record.adkim));
    let result = if spf_aligned || dkim_aligned {
        AuthResult::Pass
    } else {
        AuthResult::Fail
    };
    // §6.3: `sp` for mail from a subdomain under the organization's record
    // (when given; `p` otherwise).
    let published = if at_org && record.sp != Policy::Unspecified {
        policy_of(record.sp)
    } else {
        policy_of(record.p)
    };
    // §6.6.4: `pct` below 100 applies the policy to that share of failing
    // mail; the rest gets the next milder one. `t=y` (DMARCbis test mode)
    // applies nothing stricter than none.
    let sampled = pct >= 100 || (rand_percent() < pct);
    let policy = match (record.t, sampled, published) {
        (true, _, _) => DmarcPolicy::None,
        (false, true, p) => p,
        (false, false, DmarcPolicy::Reject) => DmarcPolicy::Quarantine,
        (false, false, _) => DmarcPolicy::None,
    };
    Verdict {
        result,
        domain: author,
        published,
        policy,
    }
}

/// A number in 0..100, good enough for sampling.
fn rand_percent() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (h.finish() % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizational_domains_by_the_public_suffix_list() {
        assert_eq!(organizational_domain("mail.example.co.uk"), "example.co.uk");
        assert_eq!(organizational_domain("a.b.example.com"), "example.com");
        assert_eq!(organizational_domain("example.com"), "example.com");
        // Not on the list: the last two labels, as the list's default rule.
        assert_eq!(organizational_domain("mx.bank.test"), "bank.test");
        assert_eq!(organizational_domain("co.uk"), "co.uk");
    }

    #[test]
    fn alignment() {
        assert!(aligned(
            "mail.example.co.uk",
            "example.co.uk",
            Alignment::Relaxed
        ));
        assert!(!aligned(
            "mail.example.co.uk",
            "example.co.uk",
            Alignment::Strict
        ));
        assert!(!aligned("other.co.uk", "example.co.uk", Alignment::Relaxed));
        assert!(!aligned(
            "badexample.com",
            "example.com",
            Alignment::Relaxed
        ));
        assert!(aligned("Example.COM", "example.com", Alignment::Strict));
    }

    #[test]
    fn pct_tags() {
        assert_eq!(pct_of(b"v=DMARC1; p=reject; pct=20"), 20);
        assert_eq!(pct_of(b"v=DMARC1; p=reject"), 100);
        assert_eq!(pct_of(b"v=DMARC1; pct=250"), 100);
        assert_eq!(pct_of(b"v=DMARC1; pct=x"), 100);
    }

    #[test]
    fn results_text() {
        let v = Verdict {
            result: AuthResult::Fail,
            domain: "bank.test".into(),
            published: DmarcPolicy::Reject,
            policy: DmarcPolicy::Reject,
        };
        assert_eq!(
            v.results_text().unwrap(),
            "dmarc=fail header.from=bank.test policy.dmarc=reject"
        );
        assert_eq!(Verdict::default().results_text(), None);
    }
}
