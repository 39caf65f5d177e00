//! IMAP end to end: the real `tern serve` on ports 143 (STARTTLS) and 993
//! (implicit TLS), driven by real clients — Python's imaplib and curl —
//! and by raw TCP where the exact protocol across two sessions matters
//! (RFC 9051 §7.5.1 expunge timing, IDLE, CONDSTORE/QRESYNC resync) or a
//! test must misbehave in ways no client allows.
//!
//! Mail arrives through the server's own SMTP listener, and what IMAP
//! returns is checked against the store itself, opened read-side beside
//! the running server: FETCH BODY[] must be the stored bytes, exactly.
//!
//! Every test starts its own server in its own directory, so they run in
//! parallel; none sleeps: each waits on a reply (IDLE reads block, with a
//! read timeout only as a safety net against a hang).

mod clients;
mod curl;
mod expunge;
mod fetch;
mod flags;
mod login;
mod mailboxes;
mod messages;
mod robustness;
mod search;
mod sessions;
mod sync;

pub use crate::harness::*;
pub use crate::smtp::{python, run_tool, transcript, write_file, Mailstore, Smtp};
use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a test waits for one response before it fails instead of
/// hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The account every IMAP test logs in as; its password is "secret".
pub const USER: &str = "bob@example.test";

/// A data directory with `bob@example.test`.
pub fn with_bob() -> TestDir {
    let t = TestDir::new();
    t.add_account(USER);
    t
}

/// The bound address of a listener: "imap", "imaps" or "smtp".
pub fn addr(server: &Server, listener: &str) -> SocketAddr {
    crate::smtp::addr(server, listener)
}

pub fn port(server: &Server, listener: &str) -> String {
    addr(server, listener).port().to_string()
}

/// Delivers `message` (CRLF line ends) to bob through the SMTP listener;
/// returns once the server has said 250, that is once it is stored.
pub fn deliver(server: &Server, message: &[u8]) {
    let mut smtp = Smtp::ehlo(addr(server, "smtp"), "client.test");
    smtp.send_mail("sender@remote.test", &[USER], message)
        .is(250, "");
    smtp.cmd("QUIT").is(221, "");
}

/// A small message with CRLF line ends.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    crate::smtp::message(subject, body)
}

/// The UIDs of bob's INBOX, as the store holds them.
pub fn stored_uids(t: &TestDir) -> Vec<u32> {
    Mailstore::open(t)
        .inbox(USER)
        .iter()
        .map(|m| m.uid.0)
        .collect()
}

// ---- Python's imaplib ----

/// Python that every imaplib script starts with: the port in `PORT`
/// (argv[1]), a TLS context that accepts the self-signed certificate, and
/// small helpers that make replies printable as JSON.
pub const PY_IMAP: &str = r#"
import base64, imaplib, json, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
PORT = int(sys.argv[1])
USER, PASSWORD = "bob@example.test", "secret"

def text(data):
    """A reply's data as one string: (line, literal) tuples joined up."""
    out = []
    for d in data:
        if isinstance(d, tuple):
            out.append(b"".join(d))
        elif d is not None:
            out.append(d)
    return b"\n".join(out).decode("utf-8", "replace")

def status(reply):
    typ, data = reply
    return [typ, text(data)]

def ok(reply):
    typ, data = reply
    if typ != "OK":
        raise SystemExit(f"expected OK, got {typ} {data!r}")
    return text(data)

def literal(reply):
    """The first literal of a reply, base64-encoded for JSON; None if the
    reply has none."""
    typ, data = reply
    if typ != "OK":
        raise SystemExit(f"expected OK, got {typ} {data!r}")
    for d in data:
        if isinstance(d, tuple):
            return base64.b64encode(d[1]).decode()
    return None

def login():
    M = imaplib.IMAP4("127.0.0.1", PORT)
    M.login(USER, PASSWORD)
    return M
"#;

/// Runs `PY_IMAP` then `script` with the port of the plain IMAP listener
/// and `args`; returns the JSON value it printed.
#[track_caller]
pub fn imaplib(server: &Server, script: &str, args: &[&str]) -> serde_json::Value {
    let port = port(server, "imap");
    let mut all = vec![port.as_str()];
    all.extend_from_slice(args);
    python(&format!("{PY_IMAP}\n{script}"), &all)
}

/// Decodes a base64 string printed by a script (`literal()`'s result).
#[track_caller]
pub fn unbase64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("the FETCH response held no literal: {v}"));
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 from the script")
}

// ---- raw TCP ----

/// One server response: a line with any literals inside it, the final
/// CRLF removed.
#[derive(Clone, PartialEq, Eq)]
pub struct Response(pub Vec<u8>);

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    pub fn starts_with(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix.as_bytes())
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }

    /// The bytes of the literal that follows `item` (e.g. `"BODY[] "`).
    #[track_caller]
    pub fn literal_after(&self, item: &str) -> Vec<u8> {
        let at = find(&self.0, item.as_bytes())
            .unwrap_or_else(|| panic!("no {item:?} in {self:?}"))
            + item.len();
        let rest = &self.0[at..];
        let rest = rest.strip_prefix(b"~").unwrap_or(rest);
        assert!(
            rest.starts_with(b"{"),
            "no literal after {item:?} in {self:?}"
        );
        let close = find(rest, b"}\r\n").expect("a literal's size");
        let size: usize = std::str::from_utf8(&rest[1..close])
            .unwrap()
            .parse()
            .expect("a literal's size");
        rest[close + 3..close + 3 + size].to_vec()
    }

    /// `* n KIND ...` as (n, KIND), for EXISTS, EXPUNGE and FETCH.
    pub fn numbered(&self) -> Option<(u32, String)> {
        let text = self.text();
        let mut words = text.strip_prefix("* ")?.split(' ');
        let n = words.next()?.parse().ok()?;
        Some((n, words.next()?.to_string()))
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text())
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a tagged command brought: the untagged responses before the
/// tagged one, and the tagged one's text after the tag.
#[derive(Debug)]
pub struct Done {
    pub untagged: Vec<Response>,
    pub tagged: String,
}

impl Done {
    /// Asserts the status (`OK`, `NO`, `BAD`) and that the text after it
    /// starts with `code` (`""` to check the status only).
    #[track_caller]
    pub fn is(&self, status: &str, code: &str) -> &Done {
        let rest = self
            .tagged
            .strip_prefix(status)
            .and_then(|r| r.strip_prefix(' '));
        assert!(
            rest.is_some_and(|r| r.starts_with(code)),
            "expected {status} {code}, got:\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Done {
        self.is("OK", "")
    }

    /// Untagged responses that start with `prefix` (e.g. `"* SEARCH"`).
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        self.untagged
            .iter()
            .filter(|r| r.starts_with(prefix))
            .map(Response::text)
            .collect()
    }

    /// The one untagged response that starts with `prefix`.
    #[track_caller]
    pub fn line(&self, prefix: &str) -> String {
        let lines = self.lines(prefix);
        assert_eq!(lines.len(), 1, "one {prefix:?} expected in:\n{self}");
        lines.into_iter().next().unwrap()
    }

    /// The untagged `* n KIND` responses as (n, KIND), in order.
    pub fn numbered(&self) -> Vec<(u32, String)> {
        self.untagged
            .iter()
            .filter_map(Response::numbered)
            .collect()
    }

    /// The FETCH responses, in order.
    pub fn fetches(&self) -> Vec<&Response> {
        self.untagged
            .iter()
            .filter(|r| r.numbered().is_some_and(|(_, k)| k == "FETCH"))
            .collect()
    }
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.untagged {
            writeln!(f, "{}", r.text())?;
        }
        writeln!(f, "<tag> {}", self.tagged)
    }
}

/// A hand-driven IMAP connection.
pub struct Imap {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    tags: u32,
}

impl Imap {
    /// Connects and reads the greeting, which must be `* OK`.
    pub fn connect(addr: SocketAddr) -> Imap {
        let mut imap = Imap::open(TcpStream::connect(addr).expect("connect to IMAP"));
        let greeting = imap.response();
        assert!(greeting.starts_with("* OK "), "greeting: {greeting:?}");
        imap
    }

    /// Connects from `source` (any 127.0.0.0/8 address reaches a loopback
    /// listener), so one test can play several client addresses; the
    /// greeting is left unread.
    pub fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> Imap {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(source, 0)).unwrap();
            socket.connect(addr).await.expect("connect to IMAP")
        });
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        Imap::open(stream)
    }

    fn open(stream: TcpStream) -> Imap {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Imap {
            stream,
            reader,
            tags: 0,
        }
    }

    /// Connects and logs in as bob.
    pub fn login(addr: SocketAddr) -> Imap {
        let mut imap = Imap::connect(addr);
        imap.run(&format!("LOGIN {USER} secret")).ok();
        imap
    }

    /// Connects, logs in and selects `mailbox`.
    pub fn select(addr: SocketAddr, mailbox: &str) -> Imap {
        let mut imap = Imap::login(addr);
        imap.run(&format!("SELECT {mailbox}")).ok();
        imap
    }

    /// Sends bytes as they are, in one write.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .expect("write to IMAP");
    }

    /// A fresh tag.
    pub fn tag(&mut self) -> String {
        self.tags += 1;
        format!("t{}", self.tags)
    }

    /// The next response, or `None` if the server closed the connection
    /// before starting one.
    pub fn read(&mut self) -> Option<Response> {
        let mut response = Vec::new();
        loop {
            let mut line = Vec::new();
            match self.reader.read_until(b'\n', &mut line) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "no response within {IO_TIMEOUT:?}; so far: {:?}",
                        String::from_utf8_lossy(&response)
                    )
                }
                Ok(0) | Err(_) if response.is_empty() && line.is_empty() => return None,
                Ok(0) | Err(_) => panic!(
                    "connection closed inside a response: {:?}",
                    String::from_utf8_lossy(&[response, line].concat())
                ),
                Ok(_) => {}
            }
            if !line.ends_with(b"\n") {
                panic!("connection closed inside a line: {line:?}");
            }
            response.extend_from_slice(&line);
            match literal_size(&line) {
                Some(size) => {
                    let start = response.len();
                    response.resize(start + size, 0);
                    self.reader
                        .read_exact(&mut response[start..])
                        .expect("read a literal");
                }
                None => {
                    response.truncate(response.len() - line.len());
                    let line = line.strip_suffix(b"\n").unwrap();
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    response.extend_from_slice(line);
                    return Some(Response(response));
                }
            }
        }
    }

    #[track_caller]
    pub fn response(&mut self) -> Response {
        self.read()
            .expect("the server closed the connection instead of responding")
    }

    /// Reads up to and including the response tagged `tag`.
    #[track_caller]
    pub fn until_tagged(&mut self, tag: &str) -> Done {
        let prefix = format!("{tag} ");
        let mut untagged = Vec::new();
        loop {
            let r = self.response();
            if r.starts_with(&prefix) {
                return Done {
                    untagged,
                    tagged: r.text()[prefix.len()..].to_string(),
                };
            }
            untagged.push(r);
        }
    }

    /// Sends `command` under a fresh tag and reads everything up to its
    /// tagged response.
    #[track_caller]
    pub fn run(&mut self, command: &str) -> Done {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n"));
        self.until_tagged(&tag)
    }

    /// True when the server has closed the connection (EOF or reset) and
    /// sent nothing more.
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == ErrorKind::ConnectionReset && rest.is_empty(),
        }
    }
}

/// `{n}` (or `~{n}`, `{n+}`) at the end of a line: a literal of n bytes
/// follows.
fn literal_size(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The number after `key` and any spaces or `(` in `text` (e.g.
/// `HIGHESTMODSEQ` in `* OK [HIGHESTMODSEQ 7] ...`, `MODSEQ` in
/// `MODSEQ (7)`).
#[track_caller]
pub fn number_after(text: &str, key: &str) -> u64 {
    let at = text
        .find(&format!("{key} "))
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
        + key.len();
    text[at..]
        .trim_start_matches([' ', '('])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key} in {text:?}"))
}

/// The flags inside `FLAGS (...)` of a response, sorted.
#[track_caller]
/// The stored flags a FETCH shows, sorted. `\Recent` is left out: it is
/// the session's, not the message's (the conformance scripts test it).
pub fn flags_of(text: &str) -> Vec<String> {
    let at = text
        .find("FLAGS (")
        .unwrap_or_else(|| panic!("no FLAGS in {text:?}"))
        + "FLAGS (".len();
    let end = text[at..].find(')').expect("FLAGS list ends") + at;
    let mut flags: Vec<String> = text[at..end]
        .split_whitespace()
        .filter(|f| *f != "\\Recent")
        .map(String::from)
        .collect();
    flags.sort();
    flags
}

/// Sorted flag names, for comparing with [`flags_of`].
pub fn sorted(flags: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
