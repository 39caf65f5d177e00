//! Protocol traces for administrators: when a client misbehaves, the
//! conversation itself (as Dovecot's rawlog and Postfix's
//! `debug_peer_list` give it). `[trace]` names accounts and client
//! networks; each of their IMAP, POP3 and SMTP connections writes a file
//! under `trace/` in the data directory: a line per command (`C:`) and per
//! response (`S:`), with passwords and SASL exchanges masked and message
//! bodies elided past `body_limit`.
//!
//! A client network is traced from the greeting; an account from its
//! login on (the conversation before it is not kept).

use crate::net::IpNetwork;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// `[trace]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConfig {
    /// Accounts (addresses) whose sessions are traced from login on.
    pub accounts: Vec<String>,
    /// Client networks whose connections are traced from the start.
    pub clients: Vec<IpNetwork>,
    /// Where trace files go; default `trace/` in the data directory.
    pub directory: Option<PathBuf>,
    /// Bytes of each message body (SMTP DATA, an IMAP literal, a FETCH
    /// body) kept in the trace; the rest is elided. `"4K"` and the like
    /// are accepted.
    #[serde(deserialize_with = "crate::size::bytes")]
    pub body_limit: u64,
}

impl Default for TraceConfig {
    fn default() -> TraceConfig {
        TraceConfig {
            accounts: Vec::new(),
            clients: Vec::new(),
            directory: None,
            body_limit: 4096,
        }
    }
}

/// Decides which connections are traced and opens their files.
#[derive(Debug)]
pub struct Tracer {
    config: TraceConfig,
    directory: PathBuf,
    opened: AtomicU64,
}

impl Tracer {
    /// A tracer that traces nothing.
    pub fn off() -> Tracer {
        Tracer::new(TraceConfig::default(), PathBuf::new().as_path())
    }

    pub fn new(config: TraceConfig, data_dir: &std::path::Path) -> Tracer {
        let directory = config
            .directory
            .clone()
            .unwrap_or_else(|| data_dir.join("trace"));
        Tracer {
            config,
            directory,
            opened: AtomicU64::new(0),
        }
    }

    /// A trace for a new connection from `peer`, if its network is listed.
    pub fn for_client(&self, protocol: &str, peer: SocketAddr) -> Option<Trace> {
        if !self.config.clients.iter().any(|n| n.contains(peer.ip())) {
            return None;
        }
        self.open(protocol, peer, None)
    }

    /// A trace from a login on, if the account is listed.
    pub fn for_account(&self, protocol: &str, peer: SocketAddr, account: &str) -> Option<Trace> {
        if !self
            .config
            .accounts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(account))
        {
            return None;
        }
        self.open(protocol, peer, Some(account))
    }

    fn open(&self, protocol: &str, peer: SocketAddr, account: Option<&str>) -> Option<Trace> {
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        let now = crate::time::unix_now();
        let name = format!(
            "{}-{protocol}-{}-{}-{n}.trace",
            crate::time::compact_utc(now),
            peer.ip(),
            std::process::id()
        )
        .replace(':', "_");
        let file = match create_private(&self.directory, &name) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(
                    "trace: cannot write {}: {e}",
                    self.directory.join(&name).display()
                );
                return None;
            }
        };
        let mut trace = Trace {
            out: std::io::BufWriter::new(file),
            body_limit: self.config.body_limit as usize,
            state: State::default(),
        };
        trace.note(&match account {
            Some(a) => format!("{protocol} from {peer}, traced from the login of {a}"),
            None => format!("{protocol} from {peer}"),
        });
        Some(trace)
    }
}

/// Trace files hold mail and addresses: readable by the server's user only.
fn create_private(dir: &std::path::Path, name: &str) -> std::io::Result<std::fs::File> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.create_new(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(dir.join(name))
}

/// What the masking needs to remember between lines.
#[derive(Debug, Default)]
struct State {
    /// Inside a SASL exchange (AUTH/AUTHENTICATE): client lines are secret
    /// until the server answers with anything but a continuation.
    sasl: bool,
    /// Inside an IMAP LOGIN sent with literals: every literal and line of
    /// it is secret until a line that announces no further literal.
    in_login: bool,
    /// SMTP DATA: the client sent DATA; the body starts at the server's 354.
    data_asked: bool,
    /// Inside an SMTP DATA body: bytes seen so far.
    data_body: Option<usize>,
}

/// One connection's trace file.
#[derive(Debug)]
pub struct Trace {
    out: std::io::BufWriter<std::fs::File>,
    body_limit: usize,
    state: State,
}

impl Trace {
    /// A remark of the server's own (`#`), not part of the conversation.
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "# {text}");
        let _ = self.out.flush();
    }

    /// A line the client sent (terminator included or not).
    pub fn client_line(&mut self, line: &[u8]) {
        let line = trim_eol(line);
        if let Some(seen) = self.state.data_body.as_mut() {
            if line == b"." {
                self.state.data_body = None;
                self.write("C", b".");
                return;
            }
            let before = *seen;
            *seen += line.len() + 2;
            let after = *seen;
            if before < self.body_limit {
                let keep = (self.body_limit - before).min(line.len());
                self.write("C", &line[..keep]);
                if after > self.body_limit {
                    self.write("C", b"[... the rest of the message is not traced]");
                }
            }
            return;
        }
        if self.state.sasl {
            self.write("C", b"[SASL response, masked]");
            return;
        }
        if self.state.in_login {
            self.state.in_login = line.ends_with(b"}");
            self.write("C", b"[the rest of LOGIN, masked]");
            return;
        }
        let masked = self.mask(line);
        self.write("C", &masked);
    }

    /// Octets the client sent outside lines: an IMAP literal, a BDAT chunk.
    pub fn client_data(&mut self, data: &[u8]) {
        if self.state.in_login {
            self.write("C", b"[literal, masked]");
            return;
        }
        self.elided("C", data);
    }

    /// What the server sent.
    pub fn server(&mut self, bytes: &[u8]) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let text = trim_eol(line);
            // A SASL continuation is "+" or "+ ..." (IMAP, POP3) or "334"
            // (SMTP); POP3's "+OK" ends the exchange.
            let continuation = text == b"+" || text.starts_with(b"+ ") || text.starts_with(b"334");
            if self.state.sasl && !continuation {
                self.state.sasl = false;
            }
            // With PIPELINING the 354 comes after the other replies of the
            // group (RFC 2920 §3.1): only it starts the body.
            if self.state.data_asked && text.starts_with(b"354") {
                self.state.data_asked = false;
                self.state.data_body = Some(0);
            }
        }
        self.elided("S", bytes);
    }

    /// `bytes` as lines, the part past `body_limit` elided.
    fn elided(&mut self, who: &str, bytes: &[u8]) {
        let kept = &bytes[..bytes.len().min(self.body_limit)];
        for line in kept.split_inclusive(|&b| b == b'\n') {
            self.write(who, trim_eol(line));
        }
        if bytes.len() > kept.len() {
            let note = format!("[... {} more bytes not traced]", bytes.len() - kept.len());
            self.write(who, note.as_bytes());
        }
    }

    fn write(&mut self, who: &str, line: &[u8]) {
        let _ = self.out.write_all(who.as_bytes());
        let _ = self.out.write_all(b": ");
        let _ = self.out.write_all(&escape(line));
        let _ = self.out.write_all(b"\n");
        let _ = self.out.flush();
    }

    /// A client command line with its secrets masked: IMAP LOGIN's
    /// password, POP3 PASS and APOP, SASL initial responses (and the
    /// exchange that follows); SMTP DATA starts a body.
    fn mask(&mut self, line: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(line);
        let words: Vec<&str> = text.split(' ').collect();
        let upper = |i: usize| words.get(i).map(|w| w.to_ascii_uppercase());
        let first = upper(0).unwrap_or_default();
        let second = upper(1).unwrap_or_default();
        let ends_in_literal = text.ends_with('}');
        // SASL first: SMTP's and POP3's `AUTH LOGIN` is no IMAP LOGIN.
        if first == "AUTH" {
            self.state.sasl = true;
            return format!("AUTH {} [masked]", words.get(1).unwrap_or(&"")).into_bytes();
        }
        // IMAP: tag LOGIN user password / tag AUTHENTICATE mech [ir].
        if second == "LOGIN" {
            if ends_in_literal {
                // The user name or password comes as a literal: all of it
                // is masked (the name stays in the login log line).
                self.state.in_login = true;
                return format!("{} LOGIN [masked]", words[0]).into_bytes();
            }
            let user = words.get(2).copied().unwrap_or("");
            return format!("{} LOGIN {user} [password masked]", words[0]).into_bytes();
        }
        if second == "AUTHENTICATE" {
            self.state.sasl = true;
            let mech = words.get(2).copied().unwrap_or("");
            return format!("{} AUTHENTICATE {mech} [masked]", words[0]).into_bytes();
        }
        // POP3 and SMTP.
        match first.as_str() {
            "PASS" => b"PASS [masked]".to_vec(),
            "APOP" => format!("APOP {} [masked]", words.get(1).unwrap_or(&"")).into_bytes(),
            "DATA" if words.len() == 1 => {
                self.state.data_asked = true;
                line.to_vec()
            }
            _ => line.to_vec(),
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Control octets other than tab as `\xNN`, so a trace stays one line per
/// line and shows what was really sent.
fn escape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    for &b in line {
        if b < 0x20 && b != b'\t' || b == 0x7f {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traced(config: TraceConfig) -> (tempfile::TempDir, Tracer) {
        let dir = tempfile::tempdir().unwrap();
        let tracer = Tracer::new(config, dir.path());
        (dir, tracer)
    }

    fn read_all(dir: &std::path::Path) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(dir.join("trace")).unwrap() {
            out.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
        out
    }

    #[test]
    fn secrets_are_masked_and_bodies_elided() {
        let (dir, tracer) = traced(TraceConfig {
            clients: vec!["127.0.0.0/8".parse().unwrap()],
            body_limit: 20,
            ..TraceConfig::default()
        });
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert!(tracer
            .for_client("imap", "192.0.2.1:1".parse().unwrap())
            .is_none());
        let mut t = tracer.for_client("imap", peer).unwrap();
        t.client_line(b"a1 LOGIN bob s3cret\r\n");
        t.server(b"a1 OK logged in\r\n");
        t.client_line(b"a2 AUTHENTICATE PLAIN\r\n");
        t.server(b"+ \r\n");
        t.client_line(b"AGJvYgBzM2NyZXQ=\r\n");
        t.server(b"a2 OK\r\n* 1 FETCH (BODY[] {100}\r\n");
        t.server(&[b'x'; 100]);
        drop(t);
        let mut smtp = tracer.for_client("smtp", peer).unwrap();
        smtp.client_line(b"AUTH PLAIN AGJvYgBzM2NyZXQ=\r\n");
        smtp.server(b"235 2.7.0 ok\r\n");
        smtp.client_line(b"DATA\r\n");
        smtp.server(b"354 go ahead\r\n");
        for _ in 0..10 {
            smtp.client_line(b"body line here\r\n");
        }
        smtp.client_line(b".\r\n");
        smtp.client_line(b"QUIT\r\n");
        drop(smtp);
        // SMTP AUTH LOGIN: user and password in separate 334 exchanges.
        let mut login = tracer.for_client("smtp", peer).unwrap();
        login.client_line(b"AUTH LOGIN\r\n");
        login.server(b"334 VXNlcm5hbWU6\r\n");
        login.client_line(b"Ym9i\r\n");
        login.server(b"334 UGFzc3dvcmQ6\r\n");
        login.client_line(b"czNjcmV0\r\n");
        login.server(b"235 2.7.0 ok\r\n");
        // Pipelined: the 354 comes after the other replies.
        login.client_line(b"MAIL FROM:<a@b>\r\n");
        login.client_line(b"RCPT TO:<c@d>\r\n");
        login.client_line(b"DATA\r\n");
        login.server(b"250 ok\r\n250 ok\r\n354 go\r\n");
        for _ in 0..10 {
            login.client_line(b"pipelined body!\r\n");
        }
        login.client_line(b".\r\n");
        drop(login);
        // IMAP LOGIN with literals, and POP3 after a successful AUTH.
        let mut lit = tracer.for_client("imap", peer).unwrap();
        lit.client_line(b"a1 LOGIN {3}\r\n");
        lit.client_data(b"bob");
        lit.client_line(b" {6}\r\n");
        lit.client_data(b"s3cret");
        lit.client_line(b"\r\n");
        lit.client_line(b"a2 LOGIN {3}\r\n");
        lit.client_data(b"bob");
        lit.client_line(b" \"s3cret\"\r\n");
        lit.client_line(b"a3 NOOP\r\n");
        drop(lit);
        let mut pop = tracer.for_client("pop3", peer).unwrap();
        pop.client_line(b"AUTH PLAIN AGJvYgBzM2NyZXQ=\r\n");
        pop.server(b"+OK logged in\r\n");
        pop.client_line(b"STAT\r\n");
        drop(pop);
        let text = read_all(dir.path());
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("AGJvYgBzM2NyZXQ="), "{text}");
        assert!(text.contains("C: a1 LOGIN bob [password masked]"), "{text}");
        assert!(text.contains("[SASL response, masked]"), "{text}");
        assert!(text.contains("more bytes not traced"), "{text}");
        assert!(text.contains("not traced]"), "{text}");
        // 20 bytes of body: one whole line (16 with its CRLF), 4 of the next.
        assert_eq!(text.matches("C: body line here").count(), 1, "{text}");
        assert!(
            text.contains("C: body\nC: [... the rest of the message is not traced]"),
            "{text}"
        );
        assert!(text.contains("C: QUIT"), "{text}");
        assert!(!text.contains("czNjcmV0"), "{text}");
        assert_eq!(text.matches("C: pipelined body!").count(), 1, "{text}");
        assert!(text.contains("C: a3 NOOP"), "{text}");
        assert!(text.contains("C: STAT"), "{text}");
    }

    #[test]
    fn accounts_are_traced_from_login() {
        let (_dir, tracer) = traced(TraceConfig {
            accounts: vec!["Bob@Example.Test".into()],
            ..TraceConfig::default()
        });
        let peer: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        assert!(tracer.for_client("pop3", peer).is_none());
        assert!(tracer
            .for_account("pop3", peer, "alice@example.test")
            .is_none());
        assert!(tracer
            .for_account("pop3", peer, "bob@example.test")
            .is_some());
    }
}
