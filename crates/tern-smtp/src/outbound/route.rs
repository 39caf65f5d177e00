//! Where mail for a domain goes (RFC 5321 §5.1): its MX hosts by
//! preference, hosts of equal preference in random order so load spreads;
//! the domain itself when it has no MX records (the implicit MX); nowhere
//! for a null MX (RFC 7505) or a domain that does not exist.

use crate::dns::{DnsError, Resolver};

/// Why a domain has no usable route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Try again later (DNS failure): the text for the queue.
    Temporary(String),
    /// Will never work: the text and enhanced status for the bounce.
    Permanent(String),
}

/// The hosts to try for `domain`, best first. `our_name` is this server's
/// host name: an MX list naming us keeps only better hosts (§5.1), so mail
/// never loops back to ourselves.
pub async fn mx_hosts(
    resolver: &Resolver,
    domain: &str,
    our_name: &str,
) -> Result<Vec<String>, NoRoute> {
    match resolver.mx(domain).await {
        Ok(records) => order(domain, records, our_name),
        // No MX: the domain's own address records (implicit MX, §5.1).
        Err(DnsError::NoRecords(..)) => Ok(vec![domain.to_ascii_lowercase()]),
        Err(DnsError::NoSuchName(_)) => Err(NoRoute::Permanent(format!(
            "dns; 5.1.2 domain {domain} does not exist"
        ))),
        Err(e) => Err(NoRoute::Temporary(format!("dns; 4.4.3 {e}"))),
    }
}

/// MX records as the ordered host list.
fn order(
    domain: &str,
    mut records: Vec<(u16, String)>,
    our_name: &str,
) -> Result<Vec<String>, NoRoute> {
    // RFC 7505 §3: a single MX naming the root says "no mail here".
    if records.iter().any(|(_, host)| host.is_empty()) {
        if records.len() == 1 {
            return Err(NoRoute::Permanent(format!(
                "dns; 5.1.10 {domain} accepts no mail (null MX, RFC 7505)"
            )));
        }
        records.retain(|(_, host)| !host.is_empty());
    }
    // Random among equals: sort on (preference, random key).
    let mut keyed: Vec<(u16, u64, String)> = records
        .into_iter()
        .map(|(pref, host)| (pref, crate::dns::random_u64(), host))
        .collect();
    keyed.sort();
    if let Some(ours) = keyed
        .iter()
        .find(|(_, _, host)| host.eq_ignore_ascii_case(our_name))
        .map(|(pref, _, _)| *pref)
    {
        keyed.retain(|(pref, _, _)| *pref < ours);
        if keyed.is_empty() {
            return Err(NoRoute::Permanent(format!(
                "dns; 5.4.6 mail for {domain} loops back to myself (this server is its best MX)"
            )));
        }
    }
    let mut hosts: Vec<String> = Vec::with_capacity(keyed.len());
    for (_, _, host) in keyed {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(list: &[(u16, &str)]) -> Vec<(u16, String)> {
        list.iter().map(|(p, h)| (*p, h.to_string())).collect()
    }

    #[test]
    fn hosts_are_ordered_by_preference() {
        let hosts = order("d", mx(&[(20, "b"), (10, "a"), (30, "c")]), "me").unwrap();
        assert_eq!(hosts, ["a", "b", "c"]);
    }

    #[test]
    fn equal_preferences_come_in_varying_order() {
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let hosts = order("d", mx(&[(10, "a"), (10, "b"), (10, "c"), (5, "z")]), "me").unwrap();
            assert_eq!(hosts[0], "z");
            firsts.insert(hosts[1].clone());
        }
        assert_eq!(firsts.len(), 3, "every equal host comes first sometimes");
    }

    #[test]
    fn null_mx_is_permanent() {
        match order("d", mx(&[(0, "")]), "me") {
            Err(NoRoute::Permanent(text)) => assert!(text.contains("5.1.10"), "{text}"),
            other => panic!("{other:?}"),
        }
        // A stray root next to real hosts is ignored.
        assert_eq!(order("d", mx(&[(0, ""), (10, "a")]), "me").unwrap(), ["a"]);
    }

    #[test]
    fn our_own_name_keeps_only_better_hosts() {
        let hosts = order("d", mx(&[(10, "a"), (20, "me"), (30, "c")]), "ME").unwrap();
        assert_eq!(hosts, ["a"]);
        assert!(matches!(
            order("d", mx(&[(10, "me"), (20, "b")]), "me"),
            Err(NoRoute::Permanent(_))
        ));
    }
}
