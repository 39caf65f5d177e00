//! One whole IMAP command as the session hands it to
//! `tern_imap::parse::parse_command`: its lines joined with the literals the
//! session already read (`{5}` CRLF and 5 bytes inline), final CRLF removed.
//! On a parse error the session looks for the tag to answer BAD with, so
//! `ParseError::tag` runs on the same input. Replayed by
//! `cargo test -p tern-imap` (`fuzz_corpus` in crates/tern-imap/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_imap::parse::{parse_command, ParseError};

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_command(data) {
        let _ = ParseError::tag(data);
        let _ = e.to_string();
    }
});
