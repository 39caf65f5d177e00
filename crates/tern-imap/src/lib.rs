//! `tern-imap`: the IMAP server (RFC 9051 IMAP4rev2 and RFC 3501
//! IMAP4rev1) on ports 143 (STARTTLS) and 993 (implicit TLS).
//!
//! - [`parse`]: every command of RFC 9051/3501 and of the extensions Tern
//!   offers, from one whole command (literals included);
//! - [`response`]: strings, ENVELOPE, BODYSTRUCTURE and dates on the wire;
//! - [`mutf7`]: IMAP4rev1's modified UTF-7 mailbox names;
//! - `session`: the connection states, a file per command group, and the
//!   untagged updates that keep several sessions on one mailbox consistent.
//!
//! A protocol translator only: every change goes through the Store, which
//! journals it; other sessions hear of it through the notification hub.

pub mod mutf7;
pub mod parse;
mod recent;
pub mod response;
mod session;

pub use recent::RecentClaims;

use std::net::SocketAddr;
use std::sync::Arc;
use tern_core::config::Limits;
use tern_mail::Mail;
use tern_store::Store;
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

/// Whether a listener speaks TLS from the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Port 143: plaintext, STARTTLS offered.
    Plain,
    /// Port 993: implicit TLS.
    Tls,
}

/// Everything IMAP sessions share.
pub struct ImapServer {
    pub hostname: String,
    /// For reads and writes that need no policy (listings, FETCH, flags).
    pub store: Arc<dyn Store>,
    /// Login and the delivery pipeline (APPEND).
    pub mail: Arc<Mail>,
    pub tls: Arc<ServerConfig>,
    pub limits: Limits,
    /// Which connections get a protocol trace.
    pub tracer: Arc<tern_core::trace::Tracer>,
    /// Which session owns which new message's \Recent.
    pub recent: RecentClaims,
}

impl ImapServer {
    /// Runs one connection to its end. `admission` is `Err` when a connection
    /// limit was reached; `stopping` turns true at shutdown.
    pub async fn handle(
        self: Arc<Self>,
        stream: impl tern_core::io::Duplex + 'static,
        peer: SocketAddr,
        mode: Mode,
        admission: Result<
            tern_core::admission::ConnectionSlot,
            tern_core::admission::LimitExceeded,
        >,
        stopping: watch::Receiver<bool>,
    ) {
        session::run(self, stream, peer, mode, admission, stopping).await
    }
}

/// Replays the seed corpus of the `imap_command` fuzz target
/// (fuzz/corpus/, see fuzz/README.md): no entry may panic. Entries are
/// whole commands as the session passes them, literals inline.
#[cfg(test)]
mod fuzz_corpus {
    use crate::parse::{parse_command, ParseError};

    /// The `message` target: what a delivery or APPEND parses of a whole
    /// message (the Store's parse, Date, address lists, encoded words).
    #[test]
    fn message() {
        tern_core::fuzz_corpus::replay("message", |data| {
            let _ = tern_store::message::parse_message(data);
            let text = String::from_utf8_lossy(data);
            let _ = tern_store::message::date::parse_date(&text);
            let _ = tern_store::message::addresses(&text);
            let _ = tern_store::message::decode_words(&text);
            // And APPEND's re-encoding of parts holding NUL.
            let _ = crate::session::encode_binary_parts(data.to_vec());
        });
    }

    #[test]
    fn imap_command() {
        tern_core::fuzz_corpus::replay("imap_command", |data| {
            // As the session does: on an error, the tag for the BAD.
            if let Err(e) = parse_command(data) {
                let _ = ParseError::tag(data);
                let _ = e.to_string();
            }
        });
    }
}
