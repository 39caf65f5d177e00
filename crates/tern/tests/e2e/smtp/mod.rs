//! SMTP end to end: the real `tern serve` on ports 25, 587 and 465, driven
//! by real clients — Python's smtplib, swaks, curl and the lettre crate —
//! and by raw TCP where a test must misbehave in ways no client allows
//! (relay tricks spelled exactly, STARTTLS injection, SMTP smuggling).
//!
//! What was accepted is checked in the store itself, opened read-side
//! beside the running server: the stored bytes must be the sent bytes
//! behind the fields the server adds (RFC 5321 §4.4 Return-Path and
//! Received; RFC 6409 §8 Date and Message-ID on submission), and the
//! queue must hold exactly what was relayed — nothing, without AUTH.
//!
//! Every test starts its own server in its own directory, so they run in
//! parallel; none sleeps: each waits on the ready line or on a reply.

mod delivery;
mod limits;
mod protocol;
mod relay;
mod submission;

use crate::harness::*;
use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tern_store::prelude::*;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::{Email, QueuedMessage, Role, Store, Uid};

/// How long a test waits for one reply before it fails instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

pub const CRLF: &str = "\r\n";

/// The directory every SMTP test starts from: `bob@example.test` (the
/// domain's first account, so its postmaster) and `alice@example.test`.
pub fn two_accounts(extra_config: &str) -> TestDir {
    let t = TestDir::with_config(extra_config);
    t.add_account("bob@example.test");
    t.add_account("alice@example.test");
    t
}

/// The bound address of an SMTP listener: "smtp", "submission" or
/// "submissions".
pub fn addr(server: &Server, listener: &str) -> SocketAddr {
    *server
        .listeners
        .get(listener)
        .unwrap_or_else(|| panic!("no {listener} listener: {:?}", server.listeners))
}

pub fn port(server: &Server, listener: &str) -> String {
    addr(server, listener).port().to_string()
}

/// A small message with CRLF line ends.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@remote.test>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n\r\n{body}"
    )
    .into_bytes()
}

/// Writes `bytes` to a file in the test directory, for clients that read
/// the message from a file.
pub fn write_file(t: &TestDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = t.dir.path().join(name);
    std::fs::write(&path, bytes).expect("write message file");
    path
}

// ---- raw TCP ----

/// One reply: its code and the text of each line after `NNN-`/`NNN `.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// Asserts the code and the enhanced status code that starts the first
    /// line (`""` to check the code only).
    #[track_caller]
    pub fn is(&self, code: u16, status: &str) -> &Reply {
        assert!(
            self.code == code && self.lines[0].starts_with(status),
            "expected {code} {status}, got:\n{self}"
        );
        self
    }

    /// True when a line of a multi-line reply is `keyword` or starts with
    /// `keyword ` (an EHLO capability).
    pub fn has(&self, keyword: &str) -> bool {
        self.lines
            .iter()
            .any(|l| l == keyword || l.starts_with(&format!("{keyword} ")))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            writeln!(f, "{}{sep}{line}", self.code)?;
        }
        Ok(())
    }
}

/// A hand-driven SMTP connection.
pub struct Smtp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Smtp {
    /// Connects and reads the 220 greeting.
    pub fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).expect("connect to SMTP");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut smtp = Smtp { stream, reader };
        smtp.reply().is(220, "");
        smtp
    }

    /// Connects and says EHLO.
    pub fn ehlo(addr: SocketAddr, name: &str) -> Smtp {
        let mut smtp = Smtp::connect(addr);
        smtp.cmd(&format!("EHLO {name}")).is(250, "");
        smtp
    }

    /// Sends bytes as they are, in one write.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .expect("write to SMTP");
    }

    /// The next reply, or `None` if the server closed the connection
    /// before starting one.
    pub fn read_reply(&mut self) -> Option<Reply> {
        let mut reply = Reply {
            code: 0,
            lines: Vec::new(),
        };
        loop {
            let mut line = Vec::new();
            match self.reader.read_until(b'\n', &mut line) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no reply within {IO_TIMEOUT:?}; so far:\n{reply}")
                }
                Ok(0) | Err(_) if reply.lines.is_empty() => return None,
                Ok(0) => panic!("connection closed inside a reply:\n{reply}"),
                Err(e) => panic!("reading a reply: {e}; so far:\n{reply}"),
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            assert!(
                line.len() >= 3 && line.as_bytes()[..3].iter().all(u8::is_ascii_digit),
                "not a reply line: {line:?}"
            );
            reply.code = line[..3].parse().unwrap();
            reply.lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(reply);
            }
        }
    }

    #[track_caller]
    pub fn reply(&mut self) -> Reply {
        self.read_reply()
            .expect("the server closed the connection instead of replying")
    }

    /// Sends one command line and reads its reply.
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}{CRLF}"));
        self.reply()
    }

    /// True when the server has closed the connection (EOF or reset) and
    /// sent nothing more.
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match std::io::Read::read_to_end(&mut self.reader, &mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == ErrorKind::ConnectionReset && rest.is_empty(),
        }
    }

    /// A whole DATA transaction; returns the reply after the final dot.
    /// `body` must use CRLF line ends; dots are stuffed here.
    #[track_caller]
    pub fn send_mail(&mut self, from: &str, to: &[&str], body: &[u8]) -> Reply {
        self.cmd(&format!("MAIL FROM:<{from}>")).is(250, "2.1.0");
        for rcpt in to {
            self.cmd(&format!("RCPT TO:<{rcpt}>")).is(250, "2.1.5");
        }
        self.cmd("DATA").is(354, "");
        let mut data = Vec::with_capacity(body.len() + 16);
        for line in body.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        if !data.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        self.send(&data);
        self.reply()
    }
}

// ---- the store, read beside the running server ----

/// One delivered message.
pub struct Stored {
    pub uid: Uid,
    pub email: Email,
    pub raw: Vec<u8>,
}

impl Stored {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// The test's store, opened like admin.rs does.
pub struct Mailstore {
    rt: tokio::runtime::Runtime,
    store: SqliteStore,
}

impl Mailstore {
    pub fn open(t: &TestDir) -> Mailstore {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = SqliteStore::open(&t.data_dir().join("tern.db"), SqliteOptions::default())
            .expect("open the store");
        Mailstore { rt, store }
    }

    /// Every message in the INBOX of `address`, in UID order.
    pub fn inbox(&self, address: &str) -> Vec<Stored> {
        self.rt.block_on(async {
            let account = self
                .store
                .account_by_address(address)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no account {address}"));
            let inbox = self
                .store
                .mailbox_by_role(account.id, Role::Inbox)
                .await
                .unwrap()
                .expect("an INBOX");
            let mut out = Vec::new();
            for entry in self
                .store
                .list_messages(account.id, inbox.id)
                .await
                .unwrap()
            {
                let email = self.store.email(account.id, entry.email_id).await.unwrap();
                let raw = self
                    .store
                    .read_blob(account.id, &email.blob_id)
                    .await
                    .unwrap();
                assert_eq!(entry.size, raw.len() as u64, "size of UID {:?}", entry.uid);
                out.push(Stored {
                    uid: entry.uid,
                    email,
                    raw,
                });
            }
            out
        })
    }

    /// The one message in the INBOX of `address` whose Subject is `subject`.
    #[track_caller]
    pub fn find(&self, address: &str, subject: &str) -> Stored {
        let needle = format!("\r\nSubject: {subject}\r\n");
        let mut found: Vec<Stored> = self
            .inbox(address)
            .into_iter()
            .filter(|m| m.text().contains(&needle))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "messages with Subject {subject:?} for {address}"
        );
        found.remove(0)
    }

    pub fn queue(&self) -> Vec<QueuedMessage> {
        self.rt.block_on(self.store.queue_list()).unwrap()
    }

    pub fn account_id(&self, address: &str) -> tern_store::AccountId {
        self.rt
            .block_on(self.store.account_by_address(address))
            .unwrap()
            .unwrap()
            .id
    }
}

impl Drop for Mailstore {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.store.close());
    }
}

/// The header fields the server put in front of the message it was sent:
/// asserts that `stored` is `sent` behind them, byte for byte, and returns
/// them unfolded as (name, value).
#[track_caller]
pub fn added_fields(stored: &[u8], sent: &[u8]) -> Vec<(String, String)> {
    if !stored.ends_with(sent) {
        let common = stored
            .iter()
            .rev()
            .zip(sent.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let show = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(2000)]).into_owned();
        panic!(
            "the stored message ({} bytes) does not end with the sent one ({} bytes); \
             they agree on the last {common} bytes.\nstored: {:?}\nsent: {:?}",
            stored.len(),
            sent.len(),
            show(stored),
            show(sent)
        );
    }
    let prefix =
        std::str::from_utf8(&stored[..stored.len() - sent.len()]).expect("added fields are UTF-8");
    assert!(
        prefix.is_empty() || prefix.ends_with(CRLF),
        "added fields end with CRLF: {prefix:?}"
    );
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in prefix.split_terminator(CRLF) {
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields.last_mut().expect("a continuation after a field");
            value.push(' ');
            value.push_str(line.trim());
        } else {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("not a header field: {line:?}"));
            fields.push((name.to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// The names of `fields`, in order.
pub fn names(fields: &[(String, String)]) -> Vec<&str> {
    fields.iter().map(|(n, _)| n.as_str()).collect()
}

/// The value of the first field called `name`.
#[track_caller]
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
}

// ---- third-party clients ----

/// Runs a program to its end with no standard input.
pub fn run_tool(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e} (is it installed? see .ci/run)"))
}

/// stdout and stderr of a finished tool, for assertion messages.
pub fn transcript(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a tool that must succeed; returns its transcript.
#[track_caller]
pub fn tool_ok(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = run_tool(program, args, cwd);
    let text = transcript(&out);
    assert!(out.status.success(), "{program} {args:?} failed: {text}");
    text
}

/// Runs `python3 -c script args...`, which must succeed and print one JSON
/// value; returns it.
#[track_caller]
pub fn python(script: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run_tool("python3", &all, Path::new("."));
    assert!(out.status.success(), "python3 failed: {}", transcript(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("python3 printed no JSON ({e}): {}", transcript(&out)))
}

/// Python that every smtplib script starts with: a TLS context that accepts
/// the server's self-signed certificate, and `r(x)` to make a reply
/// `(code, bytes)` printable as JSON.
pub const PY_PRELUDE: &str = r#"
import json, smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def r(reply):
    code, text = reply
    return [code, text.decode("utf-8", "replace")]
"#;
