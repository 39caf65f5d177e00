//! One POP3 command line, CRLF removed, as the session hands it to
//! `tern_pop3::command::parse`. Replayed by `cargo test -p tern-pop3`
//! (`fuzz_corpus` in crates/tern-pop3/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = tern_pop3::command::parse(data) {
        let _ = e.to_string();
    }
});
