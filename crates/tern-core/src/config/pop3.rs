//! `[pop3]`: what POP3 does with deleted messages, and its pacing.

use serde::{Deserialize, Serialize};

/// `[pop3]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Config {
    /// What a message deleted with DELE becomes at QUIT.
    pub deleted: Pop3Deleted,
    /// Minimum seconds between two logins of one account, advertised as
    /// LOGIN-DELAY (RFC 2449 §6.8) and enforced; 0 means none.
    pub login_delay_secs: u64,
    /// Bad commands before the session is closed.
    pub max_errors: usize,
}

/// What POP3's DELE does once the client QUITs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pop3Deleted {
    /// Removed from the mailbox, as RFC 1939 says: the user's other devices
    /// see it vanish too.
    #[default]
    Expunge,
    /// Moved to the Trash mailbox: gone from the POP3 client's view, kept for
    /// the user's IMAP and webmail devices until they empty the Trash.
    Trash,
}

impl Pop3Config {
    /// 0: no delay; a client that polls often is the client's business.
    pub const DEFAULT_LOGIN_DELAY_SECS: u64 = 0;
    /// 10: as for SMTP, a confused client gets several tries.
    pub const DEFAULT_MAX_ERRORS: usize = 10;
}

impl Default for Pop3Config {
    fn default() -> Pop3Config {
        Pop3Config {
            deleted: Pop3Deleted::default(),
            login_delay_secs: Pop3Config::DEFAULT_LOGIN_DELAY_SECS,
            max_errors: Pop3Config::DEFAULT_MAX_ERRORS,
        }
    }
}
