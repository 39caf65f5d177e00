//! IMAP conformance scripts: plain-text files in `tests/imap/*.imap`, run
//! against the real server, one server per script, any number of sessions.
//!
//! The format, one directive per line (blank lines and `#` comments are
//! ignored):
//!
//! ```text
//! @account bob@example.test          create an account (password "secret")
//! @deliver bob@example.test Subject  send a small message through SMTP
//! 1 C: a1 LOGIN bob@example.test secret
//! 1 S: a1 OK *                      the next line from session 1 must match
//! 2 C: b1 NOOP                      session 2 (connected on first use)
//! 2 S~ * 1 EXISTS                   skip lines until one matches
//! 1 C+ a2 APPEND INBOX {5}          send, then expect "+ " and send the rest
//! 1 L: hello                        a literal continuation line
//! ```
//!
//! Patterns are exact except that `*` matches any run of characters and
//! `$(name)` captures a number, which later `C:` lines use as `$(name)`
//! (IMAP keywords such as `$Junk` stay literal). A
//! session's greeting is read when it connects. Each `S:` waits at most
//! [`REPLY_TIMEOUT`]; a script fails with its file, line and the lines
//! actually received.

use crate::harness::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    seen: Vec<String>,
}

impl Conn {
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = line.trim_end_matches(['\r', '\n']).to_string();
                self.seen.push(line.clone());
                Some(line)
            }
        }
    }
}

/// Matches `text` against `pattern`: `*` is any run of characters, `$(name)`
/// a run of digits captured into `vars`; the rest is literal.
fn matches(pattern: &str, text: &str, vars: &mut HashMap<String, String>) -> bool {
    fn go(p: &[u8], t: &[u8], caps: &mut Vec<(String, String)>) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len()).any(|k| go(&p[1..], &t[k..], caps)),
            Some(b'$') if p.get(1) == Some(&b'(') && p.contains(&b')') => {
                let close = p.iter().position(|&b| b == b')').unwrap_or(p.len() - 1);
                let name = String::from_utf8_lossy(&p[2..close]).into_owned();
                let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
                (1..=digits).rev().any(|k| {
                    caps.push((name.clone(), String::from_utf8_lossy(&t[..k]).into_owned()));
                    if go(&p[close + 1..], &t[k..], caps) {
                        return true;
                    }
                    caps.pop();
                    false
                })
            }
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..], caps),
        }
    }
    let mut caps = Vec::new();
    let ok = go(pattern.as_bytes(), text.as_bytes(), &mut caps);
    if ok {
        vars.extend(caps);
    }
    ok
}

/// `$(name)` in a command replaced by its captured value.
fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}

fn run_script(path: &Path) {
    let script = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let t = TestDir::new();
    // Accounts first: the server reads the directory on each login.
    for line in script.lines() {
        if let Some(address) = line.trim().strip_prefix("@account ") {
            t.add_account(address.trim());
        }
    }
    let server = t.start();
    let imap = server.listeners["imap"];
    let smtp = server.listeners["smtp"];
    let mut conns: HashMap<String, Conn> = HashMap::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    for (no, raw) in script.lines().enumerate() {
        let line = raw.trim_end();
        let at = format!("{name}:{}", no + 1);
        if line.trim().is_empty()
            || line.trim_start().starts_with('#')
            || line.starts_with("@account ")
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@deliver ") {
            let (to, subject) = rest.split_once(' ').unwrap_or((rest, "test"));
            deliver(smtp, to, subject, &at);
            continue;
        }
        let (session, directive) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{at}: no session number"));
        let (kind, text) = directive.split_at(2.min(directive.len()));
        let text = text.strip_prefix(' ').unwrap_or(text);
        let sent = substitute(text, &vars);
        let conn = conns.entry(session.to_string()).or_insert_with(|| {
            let stream = TcpStream::connect(imap).unwrap();
            stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
            let mut c = Conn {
                writer: stream.try_clone().unwrap(),
                reader: BufReader::new(stream),
                seen: vec![],
            };
            let greeting = c.line().unwrap_or_default();
            assert!(greeting.starts_with("* OK"), "{at}: greeting {greeting:?}");
            c
        });
        match kind {
            "C:" => conn
                .writer
                .write_all(format!("{sent}\r\n").as_bytes())
                .unwrap(),
            "C+" => {
                conn.writer
                    .write_all(format!("{sent}\r\n").as_bytes())
                    .unwrap();
                let cont = conn.line().unwrap_or_default();
                assert!(
                    cont.starts_with('+'),
                    "{at}: expected a continuation, got {cont:?}; seen {:#?}",
                    conn.seen
                );
            }
            "L:" => conn
                .writer
                .write_all(format!("{sent}\r\n").as_bytes())
                .unwrap(),
            "S:" => {
                let got = conn.line();
                assert!(
                    got.as_deref().is_some_and(|g| matches(text, g, &mut vars)),
                    "{at}: expected {text:?}, got {got:?}; session {session} saw {:#?}",
                    conn.seen
                );
            }
            "S~" => loop {
                match conn.line() {
                    Some(g) if matches(text, &g, &mut vars) => break,
                    Some(_) => {}
                    None => panic!(
                        "{at}: never got {text:?}; session {session} saw {:#?}",
                        conn.seen
                    ),
                }
            },
            other => panic!("{at}: unknown directive {other:?}"),
        }
    }
    drop(server);
}

/// A small message through SMTP, checked with raw commands.
fn deliver(smtp: std::net::SocketAddr, to: &str, subject: &str, at: &str) {
    let stream = TcpStream::connect(smtp).unwrap();
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut reply = || loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            break line.get(..3).unwrap_or("").to_string();
        }
    };
    assert_eq!(reply(), "220", "{at}");
    let body = format!(
        "From: Sender <sender@remote.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@remote.test>\r\n\r\nbody of {subject}\r\n.\r\n"
    );
    for (send, want) in [
        ("EHLO script.test\r\n".to_string(), "250"),
        ("MAIL FROM:<sender@remote.test>\r\n".to_string(), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_string(), "354"),
        (body, "250"),
    ] {
        w.write_all(send.as_bytes()).unwrap();
        assert_eq!(reply(), want, "{at}: SMTP refused the delivery");
    }
}

#[test]
fn imap_conformance_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "imap"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no scripts in {}", dir.display());
    // Each script has its own server; run them side by side.
    let handles: Vec<_> = scripts
        .into_iter()
        .map(|p| std::thread::spawn(move || run_script(&p)))
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        if let Err(e) = h.join() {
            failures.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "a script panicked".into()),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn script_patterns() {
    let mut vars = HashMap::new();
    assert!(matches(
        "a1 OK *",
        "a1 OK [READ-WRITE] SELECT completed",
        &mut vars
    ));
    assert!(matches("* * EXISTS", "* 3 EXISTS", &mut vars));
    assert!(!matches("* 3 EXISTS", "* 4 EXISTS", &mut vars));
    assert!(matches(
        "* OK [UIDVALIDITY $(uv)] *",
        "* OK [UIDVALIDITY 1795] UIDs valid",
        &mut vars
    ));
    assert_eq!(vars["uv"], "1795");
    assert_eq!(
        substitute("SELECT INBOX (QRESYNC ($(uv) 5))", &vars),
        "SELECT INBOX (QRESYNC (1795 5))"
    );
    assert!(!matches("x $(n)", "x y", &mut vars));
    assert!(matches("FLAGS ($Junk)", "FLAGS ($Junk)", &mut vars));
}
