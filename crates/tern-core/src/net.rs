//! IP networks in CIDR notation (RFC 4632 §3.1, RFC 4291 §2.3), for settings
//! such as `smtp.relay_networks`.
//!
//! [`IpNetwork`] parses `"10.0.0.0/8"`, `"2001:db8::/32"`, or a bare address
//! (`"192.0.2.7"`, a /32; `"::1"`, a /128). It is strict where a typo would
//! silently widen or narrow the network: bits below the prefix must be zero
//! (`10.0.0.1/8` is refused with a suggestion of `10.0.0.0/8`), and the prefix
//! is plain decimal digits within the address family's length.
//!
//! IPv4 clients are matched as IPv4 however they arrive: a dual-stack socket
//! reports them as IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`, RFC 4291
//! §2.5.5.2), and [`IpNetwork::contains`] treats those as the IPv4 address
//! they carry. So an IPv6 network such as `::/0` never matches an IPv4 client.
//!
//! Parsing never panics; error messages quote at most
//! [`MAX_QUOTED`](crate::address::MAX_QUOTED) characters of the input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::address::quoted;

/// A block of IP addresses: an address and a prefix length, with every bit
/// below the prefix zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not an [`IpNetwork`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetworkError {
    /// Not an address, or the prefix is not a decimal number.
    #[error("{input:?} is not an IP address or network (expected e.g. \"192.0.2.0/24\", \"2001:db8::/32\" or \"192.0.2.7\")")]
    Syntax {
        /// The input, truncated to [`MAX_QUOTED`](crate::address::MAX_QUOTED)
        /// characters.
        input: String,
    },
    /// The prefix is longer than the address.
    #[error(
        "{input:?}: prefix length /{prefix} is too long for an {family} address (at most /{max})"
    )]
    PrefixTooLong {
        /// The input, truncated.
        input: String,
        /// The prefix length given.
        prefix: u32,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// 32 or 128.
        max: u8,
    },
    /// Bits below the prefix are set: most often a host address written
    /// where its network was meant.
    #[error("{input} has host bits set; did you mean {network}?")]
    HostBits {
        /// The input, truncated.
        input: String,
        /// The network the input lies in.
        network: IpNetwork,
    },
}

impl IpNetwork {
    /// The network `addr/prefix`; bits of `addr` below `prefix` must be zero.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpNetwork, IpNetworkError> {
        IpNetwork::checked(addr, u32::from(prefix), &format!("{addr}/{prefix}"))
    }

    /// The network of the single address `addr` (a /32 or /128).
    pub fn host(addr: IpAddr) -> IpNetwork {
        IpNetwork {
            addr,
            prefix: max_prefix(addr),
        }
    }

    /// The first address of the network.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is treated as the IPv4 address it carries, so it is
    /// matched against IPv4 networks (and against IPv4-mapped networks such
    /// as `::ffff:10.0.0.0/104`), never against other IPv6 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match unmapped(ip) {
            IpAddr::V4(ip) => self
                .as_v4()
                .is_some_and(|(net, prefix)| u32::from(ip) & mask_v4(prefix) == u32::from(net)),
            IpAddr::V6(ip) => match self.addr {
                IpAddr::V6(net) => u128::from(ip) & mask_v6(self.prefix) == u128::from(net),
                IpAddr::V4(_) => false,
            },
        }
    }

    /// This network as an IPv4 one, if it is IPv4 or lies wholly within the
    /// IPv4-mapped block `::ffff:0:0/96`.
    fn as_v4(&self) -> Option<(Ipv4Addr, u8)> {
        match self.addr {
            IpAddr::V4(net) => Some((net, self.prefix)),
            IpAddr::V6(net) if self.prefix >= 96 => Some((net.to_ipv4_mapped()?, self.prefix - 96)),
            IpAddr::V6(_) => None,
        }
    }

    /// Builds `addr/prefix` after checking the prefix and the host bits;
    /// `input` is what the user wrote, for error messages.
    fn checked(addr: IpAddr, prefix: u32, input: &str) -> Result<IpNetwork, IpNetworkError> {
        let max = max_prefix(addr);
        if prefix > u32::from(max) {
            return Err(IpNetworkError::PrefixTooLong {
                input: quoted(input),
                prefix,
                family: if addr.is_ipv4() { "IPv4" } else { "IPv6" },
                max,
            });
        }
        // In range just above, so the cast keeps the value.
        let prefix = prefix as u8;
        let network = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(prefix))),
        };
        let network = IpNetwork {
            addr: network,
            prefix,
        };
        if network.addr != addr {
            return Err(IpNetworkError::HostBits {
                input: quoted(input),
                network,
            });
        }
        Ok(network)
    }
}

/// 32 for IPv4, 128 for IPv6.
fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address carries, else `ip` itself.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The netmask of an IPv4 prefix (at most 32).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The netmask of an IPv6 prefix (at most 128).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNetwork {
    type Err = IpNetworkError;

    fn from_str(s: &str) -> Result<IpNetwork, IpNetworkError> {
        let syntax = || IpNetworkError::Syntax { input: quoted(s) };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        let prefix = match prefix {
            None => u32::from(max_prefix(addr)),
            // Digits only: `str::parse` would also take "+8". Long digit
            // strings are refused as syntax rather than overflowing.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| syntax())?
            }
            Some(_) => return Err(syntax()),
        };
        IpNetwork::checked(addr, prefix, s)
    }
}

impl fmt::Display for IpNetwork {
    /// Always `addr/prefix`, also for a single host (`192.0.2.7/32`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<IpNetwork, D::Error> {
        struct NetworkVisitor;

        impl serde::de::Visitor<'_> for NetworkVisitor {
            type Value = IpNetwork;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP network such as \"192.0.2.0/24\" or an IP address")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<IpNetwork, E> {
                s.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(NetworkVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn err(s: &str) -> String {
        match s.parse::<IpNetwork>() {
            Ok(n) => panic!("accepted {s:?} as {n}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_and_displays() {
        for (input, shown, prefix) in [
            ("10.0.0.0/8", "10.0.0.0/8", 8),
            ("192.168.1.7", "192.168.1.7/32", 32),
            ("192.168.1.7/32", "192.168.1.7/32", 32),
            ("0.0.0.0/0", "0.0.0.0/0", 0),
            ("::1/128", "::1/128", 128),
            ("::1", "::1/128", 128),
            ("2001:db8::/32", "2001:db8::/32", 32),
            ("2001:DB8::/32", "2001:db8::/32", 32),
            ("::/0", "::/0", 0),
            ("::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104", 104),
            ("10.0.0.0/08", "10.0.0.0/8", 8),
        ] {
            let n = net(input);
            assert_eq!(n.to_string(), shown);
            assert_eq!(n.prefix(), prefix);
            assert_eq!(net(shown), n, "{shown} round-trips");
        }
        assert_eq!(net("10.1.0.0/16").addr(), ip("10.1.0.0"));
        assert_eq!(IpNetwork::host(ip("2001:db8::1")), net("2001:db8::1/128"));
        assert_eq!(IpNetwork::new(ip("10.0.0.0"), 8), Ok(net("10.0.0.0/8")));
        assert!(IpNetwork::new(ip("10.0.0.0"), 33).is_err());
    }

    #[test]
    fn host_bits_are_refused_with_a_suggestion() {
        assert_eq!(
            err("10.0.0.1/8"),
            "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            err("2001:db8::1/32"),
            "2001:db8::1/32 has host bits set; did you mean 2001:db8::/32?"
        );
        assert_eq!(
            err("192.168.1.7/0"),
            "192.168.1.7/0 has host bits set; did you mean 0.0.0.0/0?"
        );
        assert!(IpNetwork::new(ip("10.0.0.1"), 8).is_err_and(|e| matches!(
            e,
            IpNetworkError::HostBits { network, .. } if network == net("10.0.0.0/8")
        )));
    }

    #[test]
    fn bad_prefixes_and_syntax() {
        assert_eq!(
            err("10.0.0.0/33"),
            "\"10.0.0.0/33\": prefix length /33 is too long for an IPv4 address (at most /32)"
        );
        assert!(err("::/129").contains("too long for an IPv6 address (at most /128)"));
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/ 8",
            " 10.0.0.0/8",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "10.0.0.0/99999999999999999999999",
            "localhost",
            "[::1]/128",
            "fe80::1%eth0/64",
            "10.0.0.0/٨",
        ] {
            assert!(
                err(bad).contains("is not an IP address or network"),
                "{bad:?}: {}",
                err(bad)
            );
        }
        // Hostile input is quoted only in part.
        let long = "1".repeat(10_000);
        assert!(err(&long).len() < 400);
    }

    #[test]
    fn contains() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.0.0.0")));
        assert!(ten.contains(ip("10.255.255.255")));
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("9.255.255.255")));
        assert!(!ten.contains(ip("::a00:1")));

        let host = net("192.0.2.7");
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.6")));

        let all4 = net("0.0.0.0/0");
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("::1")));

        let doc = net("2001:db8::/32");
        assert!(doc.contains(ip("2001:db8::1")));
        assert!(doc.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!doc.contains(ip("2001:db9::")));
        assert!(!doc.contains(ip("10.0.0.1")));

        let loop6 = net("::1");
        assert!(loop6.contains(ip("::1")));
        assert!(!loop6.contains(ip("::2")));
        assert!(!loop6.contains(ip("127.0.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_as_ipv4() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("::ffff:10.1.2.3")));
        assert!(!ten.contains(ip("::ffff:11.1.2.3")));
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        // Not as IPv6: `::/0` does not take in every IPv4 client.
        assert!(!net("::/0").contains(ip("::ffff:10.1.2.3")));
        assert!(!net("::/0").contains(ip("10.1.2.3")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        // A network written in mapped form matches both spellings.
        let mapped = net("::ffff:10.0.0.0/104");
        assert!(mapped.contains(ip("10.9.9.9")));
        assert!(mapped.contains(ip("::ffff:10.9.9.9")));
        assert!(!mapped.contains(ip("11.0.0.0")));
        assert!(net("::ffff:0:0/96").contains(ip("203.0.113.1")));
    }

    #[test]
    fn serde_as_a_string() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct T {
            n: Vec<IpNetwork>,
        }
        let t: T = toml::from_str("n = [\"10.0.0.0/8\", \"::1\"]").unwrap();
        assert_eq!(t.n, [net("10.0.0.0/8"), net("::1/128")]);
        assert_eq!(
            toml::to_string(&t).unwrap(),
            "n = [\"10.0.0.0/8\", \"::1/128\"]\n"
        );
        let e = toml::from_str::<T>("n = [\"10.0.0.1/8\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean 10.0.0.0/8?"), "{e}");
        let e = toml::from_str::<T>("n = [8]").unwrap_err().to_string();
        assert!(e.contains("expected an IP network"), "{e}");
    }
}
