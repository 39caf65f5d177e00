//! SMTP reverse/forward paths and mailboxes. The first byte selects:
//! bit 0 the `utf8` flag of `parse_path` (SMTPUTF8 given on MAIL FROM),
//! bit 1 `parse_mailbox` instead of `parse_path`; the rest is the text
//! (invalid UTF-8 replaced by U+FFFD, as the functions take `&str`).
//! An empty input does nothing.
//!
//! Keep this in step with `fuzz_corpus::smtp_path` in
//! crates/tern-smtp/src/lib.rs, which replays the corpus the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mailbox = if selector & 2 == 0 {
        tern_smtp::path::parse_path(&text, selector & 1 == 1)
            .ok()
            .flatten()
    } else {
        tern_smtp::path::parse_mailbox(&text).ok()
    };
    // A parsed mailbox is written back into Received, DSNs and the queue.
    if let Some(m) = mailbox {
        let _ = m.address();
        let _ = m.domain_name();
    }
});
