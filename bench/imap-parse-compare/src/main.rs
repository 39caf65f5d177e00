//! Tern's hand-written IMAP command parser against imap-codec, on the same
//! corpus of commands a busy client sends, timed in one run (issue 4 asked
//! for the parser choice to be measured). Run:
//!
//!     cargo run --release --manifest-path bench/imap-parse-compare/Cargo.toml

use imap_codec::decode::Decoder;
use imap_codec::CommandCodec;
use std::hint::black_box;
use std::time::Instant;

const CORPUS: &[&str] = &[
    "a1 LOGIN bob@example.test secret",
    "a2 SELECT INBOX",
    "a3 SELECT INBOX (CONDSTORE)",
    "a4 FETCH 1:* (FLAGS)",
    "a5 UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345)",
    "a6 UID FETCH 100:200 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])",
    "a7 FETCH 5 (BODYSTRUCTURE ENVELOPE INTERNALDATE)",
    "a8 UID FETCH 42 BODY.PEEK[1.2.MIME]<0.2048>",
    "a9 UID STORE 1,3:7,9 +FLAGS.SILENT (\\Seen $Junk)",
    "b1 STORE 2 FLAGS (\\Answered \\Flagged)",
    "b2 UID SEARCH UNSEEN SINCE 1-Feb-2026 NOT DELETED",
    "b3 SEARCH OR FROM \"alice\" SUBJECT \"report\" LARGER 1024",
    "b4 UID COPY 1:5 Archive",
    "b5 UID EXPUNGE 3:4",
    "b6 LIST \"\" \"*\"",
    "b7 STATUS INBOX (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)",
    "b8 NOOP",
    "b9 EXPUNGE",
];

fn time(name: &str, rounds: usize, mut parse: impl FnMut(&[u8]) -> bool, inputs: &[Vec<u8>]) -> f64 {
    let ok = inputs.iter().filter(|i| parse(i)).count();
    let start = Instant::now();
    for _ in 0..rounds {
        for i in inputs {
            black_box(parse(black_box(i)));
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (rounds * inputs.len()) as f64;
    println!("{name:>12}: {ns:8.0} ns per command, {ok}/{} of the corpus parsed", inputs.len());
    ns
}

fn main() {
    let rounds = 20_000;
    // Tern's parser takes the command without its CRLF; imap-codec with it.
    let tern: Vec<Vec<u8>> = CORPUS.iter().map(|c| c.as_bytes().to_vec()).collect();
    let codec_inputs: Vec<Vec<u8>> = CORPUS.iter().map(|c| format!("{c}\r\n").into_bytes()).collect();
    let codec = CommandCodec::default();
    let t = time("tern", rounds, |i| tern_imap::parse::parse_command(i).is_ok(), &tern);
    let c = time("imap-codec", rounds, |i| codec.decode(i).is_ok(), &codec_inputs);
    println!("imap-codec / tern: {:.2}x", c / t);
}
