//! The hook where filters judge a message on its way to the Store.
//!
//! Spam and virus checks, sender authentication (SPF/DKIM/DMARC) and Sieve
//! plug in here. Each [`Filter`] sees the message already prepared (the
//! parse the Store will keep), the envelope, and one local recipient, and
//! returns a [`Verdict`] for that recipient. Filters run in the order they
//! were added to [`crate::Mail`]; how verdicts combine is described on
//! [`Verdict`].

use crate::delivery::Envelope;
use async_trait::async_trait;
use tern_store::message::PreparedMessage;
use tern_store::{AccountId, Role};

/// What one filter decides for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No objection: the next filter runs.
    Accept,
    /// Refuse the message for this recipient with this reply (an SMTP code,
    /// an RFC 3463 enhanced status and a text). The remaining filters do
    /// not run. When every recipient is refused, the client hears the
    /// first refusal (a `5xx` at the end of DATA, or `4xx` for "later").
    Reject {
        code: u16,
        status: String,
        text: String,
    },
    /// Deliver into another mailbox, adding keywords; later filters may
    /// still refuse, discard or file elsewhere (the last `FileInto` wins,
    /// keywords add up).
    FileInto {
        mailbox: MailboxTarget,
        keywords: Vec<String>,
    },
    /// Accept and drop silently for this recipient (Sieve `discard`).
    Discard,
}

/// A mailbox named by a filter. A mailbox that does not exist (a renamed
/// Junk, a Sieve script's typo) means INBOX: mail is never lost to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxTarget {
    Role(Role),
    Name(String),
}

/// What a filter is shown.
pub struct FilterInput<'a> {
    /// Hashed and parsed; trace fields already added.
    pub message: &'a PreparedMessage,
    pub envelope: &'a Envelope,
    /// The spam rules' score of the whole message, when they ran.
    pub spam: Option<&'a crate::screen::SpamScore>,
    /// The local recipient this verdict is for.
    pub recipient: AccountId,
}

/// A step of the delivery pipeline.
#[async_trait]
pub trait Filter: Send + Sync {
    /// For logs: which filter decided.
    fn name(&self) -> &str;
    /// Judges the message for one recipient. A filter that cannot decide
    /// (its DNS or scanner is down) answers `Reject` with a `4xx` if it
    /// must not let mail through, `Accept` if it may.
    async fn check(&self, input: &FilterInput<'_>) -> Verdict;
}
