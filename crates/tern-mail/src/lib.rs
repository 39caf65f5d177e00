//! `tern-mail`: what every protocol does with mail, written once.
//!
//! SMTP, IMAP and POP3 today, and JMAP, the webmail and ActiveSync next,
//! are translators between a wire format and this layer:
//!
//! - [`auth`]: one [`Mail::authenticate`] for every login (the shared
//!   failure limiter, the directory lookup, Argon2 at equal cost for
//!   unknown users, and the accounting of the result);
//! - [`directory`]: who an address reaches (accounts, aliases, `+tag`,
//!   postmaster/abuse, catch-all) and which envelope senders an account may
//!   use;
//! - [`delivery`]: the pipeline every message takes to the Store: trace
//!   fields, the message prepared (hashed and parsed) once, the [`filter`]s
//!   in order, a target per recipient, then one durable `Store::accept`;
//! - [`screen`]: whole-message checks before the message is stored (the
//!   [`virus`] scanner, the spam rules), which may refuse it or add fields;
//! - [`spam`]: the built-in spam filter (rules, block lists, each user's
//!   Bayesian classifier and its trainer);
//! - [`milter`]: external filters over the Sendmail/Postfix milter
//!   protocol, as screens;
//! - [`sender_auth`]: the summary of SPF/DKIM/DMARC/ARC results an inbound
//!   message carries to the filters;
//! - [`tokens`]: API tokens, for programs that send a bearer token
//!   instead of a password;
//! - [`vacation`]: the automatic reply while a user is away (JMAP
//!   VacationResponse, RFC 3834);
//! - [`submission`]: what happens when one of our users sends (the fields a
//!   submission server adds, RFC 6409 §8, and the copy in Sent).
//!
//! It sits between the protocols and the Store (`tern-core` below it too);
//! it knows no wire format and holds no SQL.

pub mod auth;
pub mod delivery;
pub mod directory;
pub mod fields;
pub mod filter;
pub mod headers;
pub mod milter;
pub mod screen;
pub mod sender_auth;
pub mod spam;
pub mod submission;
#[cfg(test)]
mod test_support;
pub mod tokens;
pub mod vacation;
pub mod virus;

use std::sync::Arc;
use tern_core::spool::{LargeBodies, Spool, SpoolConfig};
use tern_core::AuthLimiter;
use tern_store::message::PreparedMessage;
use tern_store::Store;

pub use auth::AuthError;
pub use delivery::{DeliveryError, DeliveryReport, Envelope, Origin, Trace};
pub use directory::{Directory, Expansion};
pub use filter::{Filter, FilterInput, MailboxTarget, Verdict};
pub use screen::{Screen, ScreenInput, Screening, SpamScore};
pub use sender_auth::{AuthResult, SenderAuth};
pub use submission::SubmitError;

/// Settings of the mail layer, taken from `tern.toml`.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Our name, in `Received` fields and generated Message-IDs.
    pub hostname: String,
    /// Characters that start an address extension (`+`); empty for none.
    pub recipient_delimiter: String,
    /// Whether a submitted message's `From:` addresses must each be one the
    /// sender may send as (see [`Mail::deliver`]).
    pub check_header_from: bool,
}

/// The mail layer: one per server, shared by every protocol.
pub struct Mail {
    store: Arc<dyn Store>,
    config: MailConfig,
    limiter: Arc<AuthLimiter>,
    filters: Vec<Arc<dyn Filter>>,
    screens: Vec<Arc<dyn Screen>>,
    /// Where bodies being received go once large ([`tern_core::spool`]).
    spool: SpoolConfig,
    large_bodies: LargeBodies,
}

impl Mail {
    pub fn new(store: Arc<dyn Store>, config: MailConfig, limiter: Arc<AuthLimiter>) -> Mail {
        Mail {
            store,
            config,
            limiter,
            filters: Vec::new(),
            screens: Vec::new(),
            spool: SpoolConfig::memory(),
            large_bodies: LargeBodies::default(),
        }
    }

    /// Spools large bodies being received as `spool` says (by default they
    /// stay in memory).
    pub fn with_spool(mut self, spool: SpoolConfig) -> Mail {
        self.spool = spool;
        self
    }

    /// A new body to receive a message into.
    pub fn new_body(&self) -> Spool {
        self.spool.spool()
    }

    /// A received body in memory, with the slot that bounds how many large
    /// ones are at once; hold the slot until the body is stored.
    pub async fn read_body(
        &self,
        body: Spool,
    ) -> std::io::Result<(Vec<u8>, Option<tokio::sync::OwnedSemaphorePermit>)> {
        self.large_bodies.read(body).await
    }

    /// Adds a whole-message screen to the delivery pipeline; screens run
    /// in the order they were added, before the filters.
    pub fn with_screen(mut self, screen: Arc<dyn Screen>) -> Mail {
        self.screens.push(screen);
        self
    }

    /// Adds a filter to the delivery pipeline; filters run in the order
    /// they were added.
    pub fn with_filter(mut self, filter: Arc<dyn Filter>) -> Mail {
        self.filters.push(filter);
        self
    }

    /// The Store, for the reads a protocol makes on its own (listings,
    /// FETCH, flags): those need no policy.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn hostname(&self) -> &str {
        &self.config.hostname
    }

    pub fn limiter(&self) -> &AuthLimiter {
        &self.limiter
    }

    /// The directory logic over this Store.
    pub fn directory(&self) -> Directory<'_> {
        Directory {
            store: self.store.as_ref(),
            delimiters: &self.config.recipient_delimiter,
        }
    }
}

impl Mail {
    /// A message a user files themselves (IMAP APPEND, JMAP Email/import):
    /// prepared once, then stored in `mailbox` with `keywords`. No filter
    /// runs: the user chose where it goes.
    pub async fn append(
        &self,
        account: tern_store::AccountId,
        mailbox: tern_store::MailboxId,
        raw: Vec<u8>,
        keywords: Vec<String>,
        received_at: i64,
    ) -> Result<tern_store::Delivered, tern_store::StoreError> {
        let message = prepare(raw).await?;
        self.store
            .append(account, mailbox, message, keywords, received_at)
            .await
    }
}

/// Messages up to this size are hashed and parsed on the calling task: a
/// few tens of microseconds, less than the two thread switches a trip to
/// the blocking pool costs. Larger ones go to the blocking pool.
const PREPARE_INLINE_MAX: usize = 16 * 1024;

/// Hashes and parses a message (CPU work over the whole message, on a
/// blocking thread unless it is small): what every path into the Store does
/// first, so the filters and the backend share one parse.
pub async fn prepare(raw: Vec<u8>) -> Result<PreparedMessage, tern_store::StoreError> {
    prepare_for(raw, true).await
}

/// [`prepare`], or with `parse` false only the hash (the parse is then made
/// if something asks for it).
pub async fn prepare_for(
    raw: Vec<u8>,
    parse: bool,
) -> Result<PreparedMessage, tern_store::StoreError> {
    let small = raw.len() <= PREPARE_INLINE_MAX;
    let work = move || match parse {
        true => PreparedMessage::new(raw),
        false => PreparedMessage::unparsed(raw),
    };
    if small {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| tern_store::StoreError::backend("parsing a message", e))
}
