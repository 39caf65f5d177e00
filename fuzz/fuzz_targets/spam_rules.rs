//! What the spam filter reads of an arriving message: mail-parser's parse,
//! then the content rules, the Bayes tokens, the link domains and the
//! header-field walk that removes `X-Spam-*` fields from outside. Replayed
//! by `cargo test -p tern-mail` (`fuzz_corpus` in
//! crates/tern-mail/src/spam/mod.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tern_mail::spam::fuzz_one(data);
});
