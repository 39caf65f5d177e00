//! `[jmap]`: what the JMAP server may do on its users' behalf beyond
//! answering them — today, where it may send push notifications.

use serde::{Deserialize, Serialize};

/// `[jmap]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JmapConfig {
    /// Push subscriptions (RFC 8620 §7.2) make the server POST to a URL a
    /// user gives. By default only to `https://` URLs on public addresses,
    /// so a user cannot aim the server at its own network (loopback,
    /// private, link-local). `true` also allows those and plain `http://`
    /// — for a push relay on the same machine or network.
    pub push_allow_private: bool,
}
