//! APPEND literals past 1 MiB go to a spool file as they arrive
//! ([`tern_core::spool`]) rather than into the command buffer, so that many
//! clients uploading large messages at once cost disk, not memory.
//!
//! The command buffer gets a short placeholder literal in their place,
//! `tern-spool:NONCE:INDEX`, which the parser passes through as the
//! message data; APPEND swaps it for the spooled body. The nonce is random
//! per session and never shown, so a client cannot name a spool by sending
//! a placeholder itself: it would just be stored as those bytes.

use tern_core::spool::Spool;

/// The spooled literals of the command being read, by placeholder index.
#[derive(Default)]
pub(super) struct Spooled {
    nonce: u64,
    bodies: Vec<Option<Spool>>,
}

impl Spooled {
    pub(super) fn new() -> Spooled {
        let nonce = std::collections::hash_map::RandomState::new();
        let nonce = std::hash::BuildHasher::hash_one(&nonce, std::time::SystemTime::now());
        Spooled {
            nonce,
            bodies: Vec::new(),
        }
    }

    /// Drops what an earlier command left.
    pub(super) fn clear(&mut self) {
        self.bodies.clear();
    }

    /// Keeps `body`; the placeholder to put in the command instead.
    pub(super) fn keep(&mut self, body: Spool) -> Vec<u8> {
        let index = self.bodies.len();
        self.bodies.push(Some(body));
        format!("tern-spool:{:016x}:{index}", self.nonce).into_bytes()
    }

    /// The spooled body `data` stands for, if it is one of our placeholders.
    pub(super) fn take(&mut self, data: &[u8]) -> Option<Spool> {
        let text = std::str::from_utf8(data).ok()?;
        let rest = text.strip_prefix("tern-spool:")?;
        let (nonce, index) = rest.split_once(':')?;
        if u64::from_str_radix(nonce, 16).ok()? != self.nonce {
            return None;
        }
        self.bodies.get_mut(index.parse::<usize>().ok()?)?.take()
    }
}

/// Whether the command read so far is an APPEND (`tag APPEND ...`), the
/// one command whose literals are message bodies.
pub(super) fn is_append(command: &[u8]) -> bool {
    let mut words = command.splitn(3, |&b| b == b' ');
    let _tag = words.next();
    words
        .next()
        .is_some_and(|verb| verb.eq_ignore_ascii_case(b"APPEND"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn placeholders_stand_for_their_body_once() {
        let mut spooled = Spooled::new();
        let mut body = tern_core::spool::SpoolConfig::memory().spool();
        body.push(b"Subject: big\r\n\r\nbody").await.unwrap();
        let marker = spooled.keep(body);
        let forged = b"tern-spool:0000000000000000:0";
        assert!(spooled.take(forged).is_none() || spooled.nonce == 0);
        let body = spooled.take(&marker).expect("our placeholder");
        assert_eq!(body.len(), 20);
        assert!(spooled.take(&marker).is_none(), "taken once");
        assert!(is_append(b"a1 append INBOX (\\Seen) {5}"));
        assert!(!is_append(b"a1 SEARCH TEXT {5}"));
    }
}
