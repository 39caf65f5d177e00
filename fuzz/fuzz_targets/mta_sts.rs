//! What a domain's web server and DNS say about MTA-STS (RFC 8461): the
//! HTTP response carrying the policy (`http_body`), the policy text
//! (`parse_policy`, then `allows` on a host) and the `_mta-sts` TXT record
//! (`parse_txt`). Replayed by `cargo test -p tern-smtp` (`fuzz_corpus` in
//! crates/tern-smtp/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_smtp::outbound::mta_sts::{http_body, parse_policy, parse_txt};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = http_body(data) {
        if let Ok(text) = std::str::from_utf8(&body) {
            if let Some(p) = parse_policy(text) {
                let _ = p.allows("mx.example.com");
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_policy(text);
        let _ = parse_txt(text);
    }
});
