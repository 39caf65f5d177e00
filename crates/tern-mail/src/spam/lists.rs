//! DNS block lists (RFC 5782): the client's address looked up in IP lists
//! (DNSBL, e.g. `zen.spamhaus.org`), and the domains of the links in the
//! body in domain lists (URIBL, e.g. `dbl.spamhaus.org`). A listing is an
//! A record in 127.0.0.0/8; 127.255.255.0/24 are the lists' own error
//! codes (a refused query), never a listing.

use async_trait::async_trait;
use futures_util::future::join_all;
use std::net::{IpAddr, Ipv4Addr};

/// The lookups the lists need; the server passes its resolver.
#[async_trait]
pub trait DnsLookup: Send + Sync {
    /// The IPv4 addresses of `name`; empty when it does not exist or the
    /// lookup failed (a list that cannot answer lists nobody).
    async fn ipv4(&self, name: &str) -> Vec<Ipv4Addr>;
}

/// The query name for `ip` in `list` (RFC 5782 §2.1, §2.4: reversed octets,
/// or reversed nibbles for IPv6).
pub fn dnsbl_query(ip: IpAddr, list: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{list}")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + list.len());
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str(list);
            name
        }
    }
}

/// Whether an answer is a listing.
pub fn is_listing(answer: &[Ipv4Addr]) -> bool {
    answer
        .iter()
        .any(|a| a.octets()[0] == 127 && a.octets()[..3] != [127, 255, 255])
}

/// The lists among `lists` that list `ip`.
pub async fn listed_ip(dns: &dyn DnsLookup, ip: IpAddr, lists: &[String]) -> Vec<String> {
    let lookups = lists.iter().map(|list| async move {
        let answer = dns.ipv4(&dnsbl_query(ip, list)).await;
        is_listing(&answer).then(|| list.clone())
    });
    join_all(lookups).await.into_iter().flatten().collect()
}

/// The link domains of `text` (at most `max`, distinct), with their parent
/// domain, as the lists key them.
pub fn link_domains(text: &str, max: usize) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let lower = text.to_ascii_lowercase();
    for (i, _) in lower.match_indices("http") {
        let after = &lower[i + 4..];
        let Some(rest) = after
            .strip_prefix("://")
            .or_else(|| after.strip_prefix("s://"))
        else {
            continue;
        };
        let host: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        let host = host.trim_matches('.');
        if !host.contains('.') || host.parse::<Ipv4Addr>().is_ok() {
            continue;
        }
        // The registered domain, approximated by the last two labels.
        let labels: Vec<&str> = host.split('.').collect();
        let parent = labels[labels.len().saturating_sub(2)..].join(".");
        for d in [host.to_string(), parent] {
            if !found.contains(&d) && found.len() < max {
                found.push(d);
            }
        }
    }
    found
}

/// The `(domain, list)` pairs among `domains` × `lists` that are listed.
pub async fn listed_domains(
    dns: &dyn DnsLookup,
    domains: &[String],
    lists: &[String],
) -> Vec<(String, String)> {
    let lookups = domains.iter().flat_map(|d| {
        lists.iter().map(move |list| async move {
            let answer = dns.ipv4(&format!("{d}.{list}")).await;
            is_listing(&answer).then(|| (d.clone(), list.clone()))
        })
    });
    join_all(lookups).await.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names() {
        assert_eq!(
            dnsbl_query("192.0.2.99".parse().unwrap(), "bl.test"),
            "99.2.0.192.bl.test"
        );
        let v6 = dnsbl_query("2001:db8:1:2:3:4:567:89ab".parse().unwrap(), "bl.test");
        assert_eq!(
            v6,
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test"
        );
    }

    #[test]
    fn listings_and_list_errors() {
        assert!(is_listing(&["127.0.0.2".parse().unwrap()]));
        assert!(!is_listing(&["127.255.255.254".parse().unwrap()]));
        assert!(!is_listing(&["10.0.0.1".parse().unwrap()]));
        assert!(!is_listing(&[]));
    }

    #[test]
    fn link_domains_and_their_parents() {
        let text = "Visit https://Shop.Spam.Test/buy and http://spam.test/x or http://192.0.2.1/ \
                    and mailto:a@b.test";
        assert_eq!(link_domains(text, 10), ["shop.spam.test", "spam.test"]);
    }
}
