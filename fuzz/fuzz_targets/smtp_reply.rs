//! What a remote SMTP server answers the outbound client: lines (split
//! at LF, CR removed) fed to `tern_smtp::client::reply::ReplyBuilder`, each
//! whole reply read for its status and as EHLO capabilities. Replayed by
//! `cargo test -p tern-smtp` (`fuzz_corpus` in crates/tern-smtp/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_smtp::client::reply::ReplyBuilder;
use tern_smtp::client::Capabilities;

fuzz_target!(|data: &[u8]| {
    let mut builder = ReplyBuilder::default();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match builder.push(line) {
            Ok(Some(reply)) => {
                let _ = reply.enhanced_status();
                let _ = Capabilities::from_ehlo(&reply);
                let _ = reply.to_string();
            }
            Ok(None) => {}
            Err(e) => {
                let _ = e.to_string();
                builder = ReplyBuilder::default();
            }
        }
    }
});
