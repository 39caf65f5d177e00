//! `[inbound]`: what is checked about mail arriving from other servers on
//! port 25 — who really sent it (SPF, DKIM, DMARC, ARC) and what happens
//! when a check fails. Authenticated submissions and clients in
//! `smtp.relay_networks` are not checked: they are ours.

use serde::{Deserialize, Serialize};

/// `[inbound]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// SPF (RFC 7208) for the HELO and MAIL FROM identities. `on`: a
    /// `fail` refuses the message (550 5.7.23) unless a DKIM signature
    /// passes or a trusted ARC sealer vouches for it.
    pub spf: Check,
    /// DKIM signatures (RFC 6376). A failing signature never refuses mail
    /// on its own (RFC 6376 §6.3); the results feed DMARC and the spam
    /// score.
    pub dkim: Check,
    /// DMARC (RFC 7489). `on`: the author domain's `p=reject` refuses the
    /// message (550 5.7.1) and `p=quarantine` delivers it to Junk.
    pub dmarc: Check,
    /// ARC (RFC 8617): chains of forwarders are verified, and a passing
    /// chain sealed last by one of `trusted_arc_sealers` overrides SPF and
    /// DMARC failures that forwarding causes.
    pub arc: Check,
    /// Domains whose ARC seals are trusted (mailing lists, forwarders).
    pub trusted_arc_sealers: Vec<String>,
    /// Mail from outside claiming one of our own domains (in MAIL FROM or
    /// `From:`) must pass SPF or carry a passing DKIM signature of that
    /// domain: 550 5.7.1 otherwise. Our users send through submission.
    pub refuse_forged_local: bool,
}

/// What to do with one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Checked, recorded in `Authentication-Results`, and acted on.
    #[default]
    On,
    /// Checked and recorded only: nothing is refused or filed.
    Tag,
    /// Not checked.
    Off,
}

impl Check {
    pub fn checked(self) -> bool {
        self != Check::Off
    }
    pub fn enforced(self) -> bool {
        self == Check::On
    }
}

impl Default for InboundConfig {
    fn default() -> InboundConfig {
        InboundConfig {
            spf: Check::On,
            dkim: Check::On,
            dmarc: Check::On,
            arc: Check::On,
            trusted_arc_sealers: Vec::new(),
            refuse_forged_local: true,
        }
    }
}

impl InboundConfig {
    /// Whether anything at all is checked.
    pub fn any(&self) -> bool {
        self.spf.checked() || self.dkim.checked() || self.dmarc.checked() || self.arc.checked()
    }
}
