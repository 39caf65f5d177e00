//! `[virus]`: scanning every message (arriving and submitted) with ClamAV's
//! clamd before it is stored or sent on.

use serde::{Deserialize, Serialize};

/// `[virus]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VirusConfig {
    /// Where clamd listens: a Unix socket path (`/run/clamav/clamd.ctl`,
    /// Debian's) or `host:port`. Empty: no scanning.
    pub clamd: String,
    /// What happens when clamd cannot be asked (down, timing out):
    /// `defer` (the sender is told to try later: 451 4.7.0, nothing
    /// unscanned gets in) or `accept` (mail flows unscanned).
    pub on_failure: OnFailure,
    /// Messages larger than this are not scanned (clamd's own
    /// `StreamMaxLength` is 25M by default); they pass with a log line.
    #[serde(deserialize_with = "crate::size::bytes")]
    pub max_size: u64,
    /// Seconds one scan may take before it counts as a failure.
    pub timeout_secs: u64,
}

/// `virus.on_failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    #[default]
    Defer,
    Accept,
}

impl Default for VirusConfig {
    fn default() -> VirusConfig {
        VirusConfig {
            clamd: String::new(),
            on_failure: OnFailure::Defer,
            max_size: 25 * 1024 * 1024,
            timeout_secs: 60,
        }
    }
}
