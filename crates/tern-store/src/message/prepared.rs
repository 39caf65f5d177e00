//! A message made ready for storage: hashed and parsed once, before any
//! filter and before any backend sees it.
//!
//! The delivery pipeline (`tern-mail`) prepares a message as soon as its
//! bytes are complete, so filters (spam, virus, Sieve) read the same parse
//! the Store keeps, and no backend parses again: SQLite and PostgreSQL both
//! receive a [`PreparedMessage`]. Preparing is CPU work (SHA-256 and
//! mail-parser over the whole message); async callers run it on a blocking
//! thread when the message is large.
//!
//! A message that only passes through (relayed, nobody here keeps it) needs
//! no parse at all: [`PreparedMessage::unparsed`] hashes it and parses only
//! if something asks for the parse after all.

use super::{parse_message, ParsedMessage};
use crate::types::BlobId;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::OnceLock;

/// Raw bytes, their content address and their parse.
#[derive(Clone)]
pub struct PreparedMessage {
    raw: Vec<u8>,
    blob_id: BlobId,
    crlf_size: u64,
    /// Set at once by [`PreparedMessage::new`], on first use otherwise.
    parsed: OnceLock<ParsedMessage>,
}

impl PreparedMessage {
    /// Hashes and parses `raw`. Never fails and never panics: bytes that are
    /// not a message still get a parse (see [`parse_message`]).
    pub fn new(raw: Vec<u8>) -> PreparedMessage {
        let message = PreparedMessage::unparsed(raw);
        message.parsed();
        message
    }

    /// Hashes `raw` and leaves the parse for when something asks for it:
    /// for a message that is only relayed, which nothing reads but the
    /// outbound queue. Asking later costs the parse then, on that thread.
    pub fn unparsed(raw: Vec<u8>) -> PreparedMessage {
        PreparedMessage {
            blob_id: BlobId(hex::encode(Sha256::digest(&raw))),
            crlf_size: crlf_size(&raw),
            raw,
            parsed: OnceLock::new(),
        }
    }

    /// The message as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The hex SHA-256 of the bytes: the blob's address in every backend.
    pub fn blob_id(&self) -> &BlobId {
        &self.blob_id
    }

    /// Size in octets as stored (IMAP RFC822.SIZE).
    pub fn size(&self) -> u64 {
        self.raw.len() as u64
    }

    /// Size with every line ending in CRLF (what POP3 reports).
    pub fn crlf_size(&self) -> u64 {
        self.crlf_size
    }

    pub fn parsed(&self) -> &ParsedMessage {
        self.parsed.get_or_init(|| parse_message(&self.raw))
    }

    /// The header section, bytes as received (lossy UTF-8).
    pub fn header_raw(&self) -> String {
        let end = self.parsed().summary.header_size.min(self.raw.len());
        String::from_utf8_lossy(&self.raw[..end]).into_owned()
    }

    /// Message-IDs this message refers to (`References` then `In-Reply-To`),
    /// for threading.
    pub fn referenced_ids(&self) -> Vec<String> {
        let s = &self.parsed().summary;
        let mut ids = s.references.clone();
        ids.extend(s.in_reply_to.iter().cloned());
        ids
    }

    /// Gives the parts back, for a backend that keeps them.
    pub fn into_parts(self) -> (Vec<u8>, BlobId, u64, ParsedMessage) {
        let parsed = match self.parsed.into_inner() {
            Some(parsed) => parsed,
            None => parse_message(&self.raw),
        };
        (self.raw, self.blob_id, self.crlf_size, parsed)
    }

    /// The bytes, their address and CRLF size, for a backend that keeps no
    /// parse (a message only queued for relaying): never parses.
    pub fn into_raw(self) -> (Vec<u8>, BlobId, u64) {
        (self.raw, self.blob_id, self.crlf_size)
    }
}

impl From<Vec<u8>> for PreparedMessage {
    fn from(raw: Vec<u8>) -> PreparedMessage {
        PreparedMessage::new(raw)
    }
}

impl fmt::Debug for PreparedMessage {
    // The bytes can be megabytes: name the message instead of dumping it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("blob_id", &self.blob_id)
            .field("size", &self.raw.len())
            .finish_non_exhaustive()
    }
}

/// The size of `raw` as sent with CRLF line ends: one more octet per bare
/// LF, and a final CRLF if the message does not end with a line end.
pub fn crlf_size(raw: &[u8]) -> u64 {
    let mut size = raw.len() as u64;
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            size += 1;
        }
        prev = b;
    }
    if !raw.is_empty() && !raw.ends_with(b"\n") {
        size += 2;
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_sizes_count_bare_line_ends() {
        assert_eq!(crlf_size(b"a\r\nb\r\n"), 6);
        assert_eq!(crlf_size(b"a\nb\n"), 6);
        assert_eq!(crlf_size(b"a\r\nb"), 6);
        assert_eq!(crlf_size(b""), 0);
    }

    #[test]
    fn a_prepared_message_knows_its_address_and_parse() {
        let m = PreparedMessage::new(b"Subject: hi\r\nReferences: <a@b>\r\n\r\nbody\r\n".to_vec());
        assert_eq!(m.blob_id().as_str().len(), 64);
        assert_eq!(m.parsed().summary.subject, "hi");
        assert_eq!(m.referenced_ids(), ["a@b"]);
        assert!(m.header_raw().starts_with("Subject: hi"));
        assert_eq!(m.size(), m.crlf_size());
    }

    #[test]
    fn an_unparsed_message_parses_only_when_asked() {
        let raw = b"Subject: later\r\n\r\nbody\r\n".to_vec();
        let eager = PreparedMessage::new(raw.clone());
        let lazy = PreparedMessage::unparsed(raw.clone());
        assert!(lazy.parsed.get().is_none());
        assert_eq!(lazy.blob_id(), eager.blob_id());
        assert_eq!(lazy.crlf_size(), eager.crlf_size());
        let (bytes, id, crlf) = lazy.clone().into_raw();
        assert_eq!(
            (bytes, &id, crlf),
            (raw, eager.blob_id(), eager.crlf_size())
        );
        assert_eq!(lazy.into_parts().3.summary.subject, "later");
        let asked = PreparedMessage::unparsed(b"Subject: now\r\n\r\n".to_vec());
        assert_eq!(asked.parsed().summary.subject, "now");
    }
}
