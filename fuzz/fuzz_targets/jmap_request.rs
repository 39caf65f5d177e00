//! What a JMAP client sends: the request body's method calls through
//! result references and creation ids, and the other strings it controls.
//! Replayed by `cargo test -p tern-http` (`fuzz_corpus` in
//! crates/tern-http/src/jmap/mod.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tern_http::jmap::fuzz_one(data);
});
