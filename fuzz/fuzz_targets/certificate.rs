//! A peer's TLS certificate as DANE reads it (RFC 7672): the DER walk to
//! its subjectPublicKeyInfo. Replayed by `cargo test -p tern-smtp`
//! (`fuzz_corpus` in crates/tern-smtp/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_smtp::outbound::tls::subject_public_key_info;

fuzz_target!(|data: &[u8]| {
    if let Some(spki) = subject_public_key_info(data) {
        assert!(spki.len() <= data.len());
    }
});
