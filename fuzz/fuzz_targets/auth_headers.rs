//! The header fields of an arriving message that sender authentication
//! reads: Tern's walk of the header section (removing forged
//! `Authentication-Results`, counting signatures) and mail-auth's parse of
//! `DKIM-Signature`, `ARC-*` and `From:`. Replayed by `cargo test -p
//! tern-smtp` (`fuzz_corpus` in crates/tern-smtp/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_smtp::trust::fields::{count_signatures, strip_our_results};
use tern_smtp::trust::mail_auth;

fuzz_target!(|data: &[u8]| {
    let _ = count_signatures(data);
    if let Some(kept) = strip_our_results(data, "mx.example.com") {
        assert!(kept.len() < data.len());
    }
    if let Some(message) = mail_auth::AuthenticatedMessage::parse(data) {
        let _ = message.from();
    }
});
