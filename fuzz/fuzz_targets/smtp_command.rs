//! One SMTP command line, CRLF removed, as the session hands it to
//! `tern_smtp::command::parse`. Replayed by `cargo test -p tern-smtp`
//! (`fuzz_corpus` in crates/tern-smtp/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The session turns an error into a reply text: render it too.
    if let Err(e) = tern_smtp::command::parse(data) {
        let _ = e.to_string();
    }
});
