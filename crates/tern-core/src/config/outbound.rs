//! `[outbound]`: how queued mail leaves (issue 12, in progress): through a
//! smarthost (relay) for now; MX delivery comes next.

use serde::{Deserialize, Serialize};

/// `[outbound]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// The smarthost every outgoing message goes through, `host:port`
    /// (e.g. `smtp.provider.example:587`); empty: none.
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
        }
    }
}
