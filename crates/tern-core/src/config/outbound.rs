//! `[outbound]` and `[dns]`: how queued mail leaves — straight to each
//! domain's MX hosts (RFC 5321 §5) under the TLS policies the domain
//! publishes (MTA-STS, DANE), or through a smarthost — and which DNS
//! servers answer the lookups.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[outbound]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// The smarthost every outgoing message goes through, `host:port`
    /// (e.g. `smtp.provider.example:587`); empty: none, mail goes straight
    /// to each domain's MX hosts.
    pub relay: String,
    /// How to speak TLS to the relay: `starttls` (required, the default),
    /// `implicit` (TLS from the first byte, port 465) or `none` (only for a
    /// relay on this machine or a trusted network).
    pub relay_tls: RelayTls,
    /// The relay's login, if it wants AUTH (sent only over TLS or to
    /// loopback).
    pub relay_user: String,
    pub relay_password: String,
    /// Days a message is retried before it bounces.
    pub max_queue_days: u64,
    /// Seconds after which a sender who asked (NOTIFY=DELAY, or nothing)
    /// is told a message is still waiting, once; 0: never.
    pub delay_notice_secs: u64,
    /// Honour DANE (RFC 7672) for MX hosts with DNSSEC-signed TLSA
    /// records. Needs a validating resolver in `[dns] servers` (or
    /// /etc/resolv.conf): its AD bit is trusted, as Postfix does.
    pub dane: bool,
    /// Honour MTA-STS (RFC 8461) policies.
    pub mta_sts: bool,
    /// Sign outgoing mail from local domains with their DKIM keys
    /// (`tern dkim generate DOMAIN`).
    pub dkim: bool,
    /// Make DKIM's RSA signatures with the system's OpenSSL 3
    /// (`libcrypto.so.3`, opened at run time) when it is installed: the
    /// same signatures, about twice as fast on CPUs with AVX-512 IFMA.
    /// False, or without that library: ring, built in.
    pub dkim_system_openssl: bool,
    /// Connections open at once to one destination domain.
    pub max_connections_per_domain: usize,
    /// Messages sent to one destination domain per minute; 0: no limit.
    /// Large providers throttle senders that go faster than they like.
    pub max_messages_per_minute_per_domain: u32,
    /// TCP port of MX hosts. Always 25 on the internet; tests point it
    /// at receivers on loopback.
    pub mx_port: u16,
    /// HTTPS port MTA-STS policies are fetched from. Always 443 on the
    /// internet; for tests.
    pub mta_sts_port: u16,
}

/// `outbound.relay_tls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayTls {
    #[default]
    Starttls,
    Implicit,
    None,
}

impl Default for OutboundConfig {
    fn default() -> OutboundConfig {
        OutboundConfig {
            relay: String::new(),
            relay_tls: RelayTls::default(),
            relay_user: String::new(),
            relay_password: String::new(),
            max_queue_days: 5,
            delay_notice_secs: 4 * 3600,
            dane: true,
            mta_sts: true,
            dkim: true,
            dkim_system_openssl: true,
            max_connections_per_domain: 4,
            max_messages_per_minute_per_domain: 0,
            mx_port: 25,
            mta_sts_port: 443,
        }
    }
}

/// `[dns]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Recursive resolvers to ask, `ip:port`; empty: those in
    /// /etc/resolv.conf. For DANE, list a validating resolver (e.g. a
    /// local unbound) here.
    pub servers: Vec<SocketAddr>,
}
