//! `[milter]`: external mail filters speaking the Sendmail/Postfix milter
//! protocol (rspamd, OpenDKIM, clamav-milter), run on every message in
//! the order listed.

use super::virus::OnFailure;
use serde::{Deserialize, Serialize};

/// `[milter]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MilterConfig {
    /// Filters, as Postfix writes them: `inet:127.0.0.1:11332` or
    /// `unix:/run/rspamd/milter.sock` (a bare path is a Unix socket too).
    pub servers: Vec<String>,
    /// Which mail they see: `inbound` (from other servers, the default),
    /// or `all` (submissions too, e.g. for OpenDKIM signing).
    pub scope: MilterScope,
    /// When a filter cannot be asked: `defer` (451 4.7.1, as Postfix's
    /// default `tempfail`) or `accept` (mail flows unfiltered).
    pub on_failure: OnFailure,
    /// Seconds one message's conversation may take.
    pub timeout_secs: u64,
}

/// `milter.scope`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MilterScope {
    #[default]
    Inbound,
    All,
}

impl Default for MilterConfig {
    fn default() -> MilterConfig {
        MilterConfig {
            servers: Vec::new(),
            scope: MilterScope::Inbound,
            on_failure: OnFailure::Defer,
            timeout_secs: 60,
        }
    }
}
