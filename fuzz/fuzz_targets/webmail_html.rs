//! A mail's HTML as the webmail's reading pane gets it: any bytes through
//! the sanitiser, which must not panic nor leave a script element.
//! Replayed by `cargo test -p tern-http` (`fuzz_corpus` in
//! crates/tern-http/src/webmail/html.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tern_http::webmail::html::fuzz_one(data);
});
