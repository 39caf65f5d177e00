//! What a mail filter (milter) sends back: reply codes, header-change
//! packets, and the message they are applied to. Replayed by `cargo test
//! -p tern-mail` (`fuzz_corpus` in crates/tern-mail/src/milter.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tern_mail::milter::fuzz_one(data);
});
