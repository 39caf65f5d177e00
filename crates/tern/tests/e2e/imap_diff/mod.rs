//! The differential tester: the same IMAP command sequences against
//! Dovecot (the reference, see [`dovecot`]) and Tern, over the same
//! mailbox of varied real-world messages (`tests/imap-diff/corpus`), with
//! the answers compared once what may legitimately differ is masked
//! ([`wire::normalize`]). Every other difference is a Tern bug, or an
//! allowed variation listed with its RFC reference in
//! `tests/imap-diff/ALLOWED.md`.
//!
//! Sequences are hand-written (`tests/imap-diff/sequences/*.txt`) and
//! generated from seeds ([`generate`]). Their format, a command per line:
//!
//! ```text
//! # a comment
//! SELECT INBOX                     session 1 (tags are added)
//! 2> STORE 1 +FLAGS (\Seen)        session 2; each session logs in first
//! APPEND Drafts (\Draft) <<01-plain.eml>>   a corpus file as a literal
//! IDLE                             ... then later: DONE
//! ```
//!
//! Each sequence runs as its own user, whose INBOX holds the corpus
//! (appended with fixed flags and dates) and who has the special-use
//! mailboxes of a new Tern account. CI installs Dovecot and sets
//! `TERN_REQUIRE_DOVECOT=1`, so the tester cannot be skipped there.

mod dovecot;
mod wire;

use crate::harness::TestDir;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use wire::{normalize, Answer, Client};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap-diff")
}

/// The corpus, by file name, in name order.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir().join("corpus"))
        .expect("corpus directory")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("corpus file"))
        })
        .collect()
}

/// A command sequence: its name (file or seed) and its lines.
struct Sequence {
    name: String,
    lines: Vec<String>,
}

fn hand_written() -> Vec<Sequence> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir().join("sequences"))
        .expect("sequences directory")
        .map(|e| e.expect("sequence entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| Sequence {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            lines: std::fs::read_to_string(&p)
                .expect("sequence file")
                .lines()
                .map(str::to_string)
                .collect(),
        })
        .collect()
}

/// A differences the list of allowed variations accepts: the sequence and
/// the command, from lines "- allow `SEQUENCE` `COMMAND` — why (RFC ...)".
fn allowed() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data_dir().join("ALLOWED.md")).expect("ALLOWED.md");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("- allow `")?;
            let (seq, rest) = rest.split_once('`')?;
            let rest = rest.trim_start().strip_prefix('`')?;
            let (cmd, _) = rest.split_once('`')?;
            Some((seq.to_string(), cmd.to_string()))
        })
        .collect()
}

/// A command line with `<<file>>` (or `~<<file>>`, literal8) replaced by
/// the corpus file as a non-synchronising literal, and `<<=text>>` by
/// the text as one (for 8-bit strings, which IMAP4rev1 allows only in
/// literals).
fn expand(line: &str, corpus: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find("<<") {
        let (before, after) = rest.split_at(open);
        let close = after.find(">>").expect("<< without >>");
        let name = &after[2..close];
        let from_dir;
        let data = match name.strip_prefix('=') {
            Some(text) => text.as_bytes(),
            None => match corpus.iter().find(|(n, _)| n == name) {
                Some((_, data)) => data,
                // Beside the corpus (binary/), not loaded into INBOX.
                None => {
                    from_dir = std::fs::read(data_dir().join(name))
                        .unwrap_or_else(|e| panic!("no corpus file {name}: {e}"));
                    &from_dir
                }
            },
        };
        out.extend_from_slice(before.as_bytes());
        out.extend_from_slice(format!("{{{}+}}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        rest = &after[close + 2..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// One server's side of a sequence: its sessions, opened on first use.
struct Side {
    addr: SocketAddr,
    user: String,
    sessions: HashMap<u32, Client>,
    /// Per session, the keywords the last untagged FLAGS announced.
    announced: HashMap<u32, Vec<String>>,
    /// Keywords shown by a FETCH before any FLAGS announced them (RFC 9051
    /// §7.3.5): a protocol error whatever the other server does.
    unannounced: Vec<String>,
}

impl Side {
    fn session(&mut self, n: u32) -> &mut Client {
        let (addr, user) = (self.addr, self.user.clone());
        self.sessions.entry(n).or_insert_with(|| {
            let mut c = Client::connect(addr).expect("connect");
            let a = c
                .command("L0", format!("LOGIN {user} secret").as_bytes())
                .expect("LOGIN");
            assert!(
                a.tagged.starts_with(b"L0 OK"),
                "LOGIN {user} at {addr}: {:?}",
                String::from_utf8_lossy(&a.tagged)
            );
            c
        })
    }

    fn run(&mut self, session: u32, tag: &str, command: &[u8]) -> Result<Answer, String> {
        let c = self.session(session);
        let answer = if command == b"DONE" {
            c.done()
        } else {
            c.command(tag, command)
        }
        .map_err(|e| format!("no answer: {e}"))?;
        let announced = self.announced.entry(session).or_default();
        for r in &answer.untagged {
            if let Some(flags) = wire::announced_flags(r) {
                *announced = flags;
            } else if let Some(flags) = wire::fetched_flags(r) {
                for f in flags {
                    if !f.starts_with('\\') && !announced.iter().any(|a| a.eq_ignore_ascii_case(&f))
                    {
                        self.unannounced.push(format!(
                            "session {session}, {tag}: {f} in {}",
                            String::from_utf8_lossy(r)
                        ));
                    }
                }
            }
        }
        Ok(answer)
    }
}

/// Fills a user's INBOX with the corpus: the same flags and dates on both
/// servers, so that everything derived from them compares.
fn load(side: &mut Side, corpus: &[(String, Vec<u8>)]) {
    for (i, (_, data)) in corpus.iter().enumerate() {
        let flags = match i % 4 {
            0 => "(\\Seen)",
            1 => "()",
            2 => "(\\Seen \\Flagged $Important)",
            _ => "(\\Answered \\Seen)",
        };
        let mut cmd = format!(
            "APPEND INBOX {flags} \"{:02}-Nov-2026 {:02}:{:02}:00 +0000\" {{{}+}}\r\n",
            1 + i % 28,
            8 + i % 12,
            (i * 7) % 60,
            data.len()
        )
        .into_bytes();
        cmd.extend_from_slice(data);
        let a = side
            .session(0)
            .command(&format!("F{i}"), &cmd)
            .expect("APPEND");
        assert!(
            a.tagged.starts_with(format!("F{i} OK").as_bytes()),
            "loading the corpus: {:?}",
            String::from_utf8_lossy(&a.tagged)
        );
    }
    side.sessions.remove(&0);
}

/// An answer as compared: untagged responses as a sorted list (servers may
/// order them differently, RFC 9051 §7), but EXPUNGE and VANISHED in their
/// order, which carries meaning; then the tagged response.
fn canonical(a: &Answer, command: &str, rev2: bool) -> Vec<String> {
    let mut expunges = Vec::new();
    let mut rest = Vec::new();
    // When a server announces a new keyword is its choice, as long as it is
    // before a FETCH shows it (checked apart, see `Side::run`); SELECT's
    // FLAGS are compared.
    let selects = {
        let c = command.to_ascii_uppercase();
        c.starts_with("SELECT") || c.starts_with("EXAMINE")
    };
    for r in &a.untagged {
        if !selects && (wire::announced_flags(r).is_some() || is_permanentflags(r)) {
            continue;
        }
        let Some(n) = normalize(r, command, rev2) else {
            continue;
        };
        if n.ends_with(" EXPUNGE") || n.starts_with("* VANISHED") {
            expunges.push(n);
        } else {
            rest.push(n);
        }
    }
    rest.sort();
    rest.extend(expunges);
    if let Some(t) = normalize(&a.tagged, command, rev2) {
        rest.push(t);
    }
    rest
}

fn is_permanentflags(r: &[u8]) -> bool {
    r.starts_with(b"* OK [PERMANENTFLAGS ")
}

/// Runs one sequence on both sides; returns the differences.
fn run_sequence(
    seq: &Sequence,
    dovecot: &mut Side,
    tern: &mut Side,
    corpus: &[(String, Vec<u8>)],
) -> Vec<(String, String)> {
    load(dovecot, corpus);
    load(tern, corpus);
    let mut diffs = Vec::new();
    for (no, raw) in seq.lines.iter().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (session, command) = match line.split_once("> ") {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => {
                (n.parse().unwrap_or(1), rest)
            }
            _ => (1, line),
        };
        let tag = format!("T{}", no + 1);
        let bytes = expand(command, corpus);
        let d = dovecot.run(session, &tag, &bytes);
        let t = tern.run(session, &tag, &bytes);
        let (d, t) = match (d, t) {
            (Ok(d), Ok(t)) => (canonical(&d, command, false), canonical(&t, command, false)),
            (d, t) => {
                let show = |r: Result<Answer, String>| match r {
                    Ok(a) => canonical(&a, command, false),
                    Err(e) => vec![e],
                };
                (show(d), show(t))
            }
        };
        if d != t {
            let report = format!(
                "{}:{} [{session}] {command}\n  dovecot:\n    {}\n  tern:\n    {}",
                seq.name,
                no + 1,
                d.join("\n    "),
                t.join("\n    ")
            );
            diffs.push((command.to_string(), report));
        }
    }
    dovecot.sessions.clear();
    tern.sessions.clear();
    diffs
}

/// Random sequences of valid commands from a seed: sessions interleave
/// flag changes, appends, copies and expunges with fetches and searches.
fn generate(seed: u64, corpus: &[(String, Vec<u8>)]) -> Sequence {
    let mut state = seed.max(1);
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let flags = [
        "\\Seen",
        "\\Flagged",
        "\\Deleted",
        "\\Answered",
        "$Label1",
        "Junk",
    ];
    let sets = ["1", "2:4", "1:*", "*", "3,5:6", "2"];
    let items = [
        "FLAGS",
        "UID",
        "RFC822.SIZE",
        "INTERNALDATE",
        "ENVELOPE",
        "BODYSTRUCTURE",
        "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
        "BODY.PEEK[TEXT]<0.40>",
        "BINARY.SIZE[1]",
    ];
    let searches = [
        "ALL",
        "SEEN",
        "UNSEEN",
        "NEW",
        "OLD",
        "RECENT",
        "FLAGGED",
        "KEYWORD $Label1",
        "DELETED",
        "FROM alice",
        "SUBJECT lunch",
        "TEXT report",
        "BODY north",
        "LARGER 600",
        "SENTSINCE 4-Nov-2026",
        "OR SEEN FLAGGED",
        "NOT ANSWERED",
    ];
    let mut lines = vec!["SELECT INBOX".to_string(), "2> SELECT INBOX".to_string()];
    for _ in 0..40 {
        let second = next(3) == 0;
        let s = if second { "2> " } else { "" };
        let set = sets[next(sets.len())];
        let line = match next(10) {
            0 | 1 => format!(
                "{s}FETCH {set} ({} {})",
                items[next(items.len())],
                items[next(items.len())]
            ),
            2 | 3 => {
                let mode = ["+FLAGS", "-FLAGS", "FLAGS", "+FLAGS.SILENT"][next(4)];
                format!("{s}STORE {set} {mode} ({})", flags[next(flags.len())])
            }
            4 => format!("{s}SEARCH {}", searches[next(searches.len())]),
            5 => format!("{s}UID SEARCH {}", searches[next(searches.len())]),
            6 => format!("{s}APPEND INBOX <<{}>>", corpus[next(corpus.len())].0),
            7 => format!("{s}COPY {set} Archive"),
            8 => format!("{s}EXPUNGE"),
            _ => format!("{s}NOOP"),
        };
        // The other session is told of a change at once: when a server
        // reports another session's changes is its choice, the NOOP after
        // makes it the same moment on both.
        let changes = ["STORE", "APPEND", "COPY", "EXPUNGE"]
            .iter()
            .any(|c| line.contains(c));
        lines.push(line);
        if changes {
            lines.push(if second { "NOOP" } else { "2> NOOP" }.to_string());
        }
    }
    lines.push("NOOP".into());
    lines.push("2> NOOP".into());
    lines.push("STATUS Archive (MESSAGES RECENT UNSEEN UIDNEXT)".into());
    Sequence {
        name: format!("seed {seed}"),
        lines,
    }
}

/// How many generated sequences CI runs (more with TERN_DIFF_SEEDS).
const SEEDS: u64 = 6;

#[test]
fn tern_answers_as_dovecot_does() {
    let corpus = corpus();
    let seeds: u64 = std::env::var("TERN_DIFF_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS);
    let mut sequences = hand_written();
    sequences.extend((1..=seeds).map(|s| generate(s, &corpus)));
    let users: Vec<String> = (0..sequences.len())
        .map(|i| format!("u{i}@example.test"))
        .collect();
    let dovecot = match dovecot::Dovecot::start(&users) {
        Ok(d) => d,
        Err(why) if std::env::var_os("TERN_REQUIRE_DOVECOT").is_none() => {
            eprintln!("differential tester skipped: {why}");
            return;
        }
        Err(why) => panic!("the differential tester needs Dovecot: {why}"),
    };
    let t = TestDir::new();
    for u in &users {
        t.add_account(u);
    }
    let server = t.start();
    let allowed = allowed();
    let mut unexplained = Vec::new();
    let mut explained = 0;
    for (seq, user) in sequences.iter().zip(&users) {
        let side = |addr| Side {
            addr,
            user: user.clone(),
            sessions: HashMap::new(),
            announced: HashMap::new(),
            unannounced: Vec::new(),
        };
        let (mut d, mut tr) = (side(dovecot.addr), side(server.listeners["imap"]));
        for v in &tr.unannounced {
            unexplained.push(format!("{}: keyword not announced in FLAGS: {v}", seq.name));
        }
        for v in &d.unannounced {
            eprintln!("{}: Dovecot showed an unannounced keyword: {v}", seq.name);
        }
        for (command, report) in run_sequence(seq, &mut d, &mut tr, &corpus) {
            if allowed
                .iter()
                .any(|(s, c)| (s == &seq.name || s == "*") && command.starts_with(c.as_str()))
            {
                explained += 1;
            } else {
                unexplained.push(report);
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} difference(s) from Dovecot ({explained} allowed):\n\n{}",
        unexplained.len(),
        unexplained.join("\n\n")
    );
}
