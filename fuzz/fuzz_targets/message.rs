//! A whole message as it arrives (SMTP DATA, IMAP APPEND): the MIME
//! structure, envelope and summary `tern_store::message::parse_message`
//! builds, and the Date and address-list parsers on the raw header text.
//! Replayed by `cargo test -p tern-imap` (`fuzz_corpus` in
//! crates/tern-imap/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tern_store::message::parse_message(data);
    let text = String::from_utf8_lossy(data);
    let _ = tern_store::message::date::parse_date(&text);
    let _ = tern_store::message::addresses(&text);
    let _ = tern_store::message::decode_words(&text);
});
