//! POP3 end to end: the real `tern serve` on ports 110 (STLS) and 995
//! (implicit TLS), driven by real clients — Python's poplib, curl,
//! fetchmail and getmail — and by raw TCP where a test must send what no
//! client sends (bad commands, overlong lines, pipelined bursts).
//!
//! Mail reaches INBOX the way it does in production, through the SMTP
//! listener on port 25. What "another device" does to INBOX while a POP3
//! session holds its snapshot (RFC 1939 §8: numbers are fixed for the
//! session) is done through the Store API itself, opened beside the running
//! server exactly as the IMAP server will use it: flags, expunges, moves
//! and appends.
//!
//! What POP3 retrieves is compared with what the store holds, byte for
//! byte: the message as delivered, including the Return-Path and Received
//! fields the SMTP server put in front of it (RFC 5321 §4.4).
//!
//! Every test starts its own server in its own directory; none sleeps.

mod basic;
mod clients;
mod maildrop;
mod protocol;

pub use crate::harness::*;
pub use crate::smtp::{addr, port, python, run_tool, transcript, Smtp};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tern_store::prelude::*;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
pub use tern_store::{
    AccountId, CopyResult, Delivered, Email, EmailId, ExpungeFilter, KeywordOp, MailboxChanges,
    MailboxId, MessageEntry, ModSeq, Role, Store, Uid,
};

/// How long a test waits for one reply before it fails instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The account every POP3 test reads; its password is `secret`.
pub const BOB: &str = "bob@example.test";

/// A test directory with the account [`BOB`].
pub fn bob(extra_config: &str) -> TestDir {
    let t = TestDir::with_config(extra_config);
    t.add_account(BOB);
    t
}

/// A small message with CRLF line ends and a unique Subject.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!("From: Sender <sender@remote.test>\r\nTo: <{BOB}>\r\nSubject: {subject}\r\n\r\n{body}")
        .into_bytes()
}

/// Delivers `raw` (CRLF line ends) to [`BOB`] through port 25.
#[track_caller]
pub fn deliver(server: &Server, raw: &[u8]) {
    let mut smtp = Smtp::ehlo(addr(server, "smtp"), "sender.remote.test");
    let reply = smtp.send_mail("sender@remote.test", &[BOB], raw);
    assert_eq!(reply.code, 250, "delivery refused:\n{reply}");
    smtp.cmd("QUIT");
}

/// Delivers one small message per subject, in order.
pub fn deliver_all(server: &Server, subjects: &[&str]) {
    for subject in subjects {
        deliver(
            server,
            &message(subject, &format!("This is {subject}.\r\n")),
        );
    }
}

/// The message as POP3 sends it on the wire (RFC 1939 §3): each line that
/// starts with "." gets another in front, and the response ends with ".".
pub fn stuffed(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The header of `raw` and the blank line after it.
pub fn header_of(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a blank line after the header");
    &raw[..end + 4]
}

/// The SASL PLAIN response for `user` and `password` (RFC 4616 §2).
pub fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

/// `bytes` for an assertion message, shortened.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(3000)]).into_owned()
}

// ---- raw TCP ----

/// A hand-driven POP3 connection on the plaintext port.
pub struct Pop3 {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The +OK line the server greeted with.
    pub greeting: String,
}

impl Pop3 {
    /// Connects and reads the greeting, which must be +OK.
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Pop3 {
        let stream = TcpStream::connect(addr).expect("connect to POP3");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut pop = Pop3 {
            stream,
            reader,
            greeting: String::new(),
        };
        pop.greeting = pop.line();
        assert!(
            pop.greeting.starts_with("+OK "),
            "greeting: {:?}",
            pop.greeting
        );
        pop
    }

    /// Connects and logs in with USER and PASS, which must succeed.
    #[track_caller]
    pub fn login(addr: SocketAddr, user: &str, password: &str) -> Pop3 {
        let mut pop = Pop3::connect(addr);
        pop.ok(&format!("USER {user}"));
        pop.ok(&format!("PASS {password}"));
        pop
    }

    /// Logs in as [`BOB`], retrying while the maildrop is still `[IN-USE]`
    /// by a session whose connection we dropped: the server releases it
    /// once it reads the end of that connection, a moment later. Each try
    /// costs a password check, which paces the loop.
    #[track_caller]
    pub fn login_when_free(addr: SocketAddr) -> Pop3 {
        for _ in 0..200 {
            let mut pop = Pop3::connect(addr);
            pop.ok(&format!("USER {BOB}"));
            let reply = pop.cmd("PASS secret");
            if reply.starts_with("+OK") {
                return pop;
            }
            assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
        }
        panic!("the maildrop of a dropped session was never released");
    }

    /// Sends bytes as they are, in one write.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .expect("write to POP3");
    }

    /// The next line without its CRLF, or `None` at end of input.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no reply within {IO_TIMEOUT:?}")
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a reply: {e}"),
            Ok(0) => return None,
            Ok(_) => {}
        }
        assert!(line.ends_with(b"\r\n"), "a line without CRLF: {line:?}");
        line.truncate(line.len() - 2);
        Some(String::from_utf8(line).expect("a UTF-8 reply line"))
    }

    #[track_caller]
    pub fn line(&mut self) -> String {
        self.read_line()
            .expect("the server closed the connection instead of replying")
    }

    /// Sends one command line and reads the status line of its reply.
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n"));
        self.line()
    }

    /// A command that must succeed; returns the status line.
    #[track_caller]
    pub fn ok(&mut self, line: &str) -> String {
        let reply = self.cmd(line);
        assert!(
            reply == "+OK" || reply.starts_with("+OK "),
            "{line}: {reply}"
        );
        reply
    }

    /// A command that must fail; returns the status line.
    #[track_caller]
    pub fn err(&mut self, line: &str) -> String {
        let reply = self.cmd(line);
        assert!(reply.starts_with("-ERR "), "{line}: {reply}");
        reply
    }

    /// The body of a multi-line response, unstuffed, up to its ".".
    #[track_caller]
    pub fn lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self.line();
            if line == "." {
                return out;
            }
            out.push(line.strip_prefix('.').map(String::from).unwrap_or(line));
        }
    }

    /// A command with a multi-line answer that must succeed; its body.
    #[track_caller]
    pub fn multi(&mut self, line: &str) -> Vec<String> {
        self.ok(line);
        self.lines()
    }

    /// The body of a multi-line response exactly as sent, through its
    /// final ".\r\n".
    #[track_caller]
    pub fn wire(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = self.reader.read_until(b'\n', &mut out).expect("reading");
            assert!(n > 0, "closed inside a multi-line response: {}", show(&out));
            if &out[start..] == b".\r\n" {
                return out;
            }
        }
    }

    /// UIDL as (message number, unique id) pairs.
    #[track_caller]
    pub fn uidl(&mut self) -> Vec<(u32, String)> {
        self.multi("UIDL")
            .iter()
            .map(|l| {
                let (n, id) = l.split_once(' ').expect("UIDL line: number and id");
                (n.parse().expect("a message number"), id.to_string())
            })
            .collect()
    }

    /// True when the server has closed the connection and sent nothing
    /// more.
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == ErrorKind::ConnectionReset && rest.is_empty(),
        }
    }
}

// ---- the Store, as an IMAP client would change it ----

/// The store of a running server, opened beside it for one account: what
/// the tests do here is what an IMAP or JMAP client will do.
pub struct Imap {
    rt: tokio::runtime::Runtime,
    store: SqliteStore,
    pub account: AccountId,
}

impl Imap {
    pub fn open(t: &TestDir, address: &str) -> Imap {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = SqliteStore::open(&t.data_dir().join("tern.db"), SqliteOptions::default())
            .expect("open the store");
        let account = rt
            .block_on(store.account_by_address(address))
            .unwrap()
            .unwrap_or_else(|| panic!("no account {address}"))
            .id;
        Imap { rt, store, account }
    }

    pub fn mailbox(&self, role: Role) -> MailboxId {
        self.rt
            .block_on(self.store.mailbox_by_role(self.account, role))
            .unwrap()
            .unwrap_or_else(|| panic!("no {role:?} mailbox"))
            .id
    }

    /// The messages of a mailbox in UID order.
    pub fn list(&self, role: Role) -> Vec<MessageEntry> {
        self.rt
            .block_on(self.store.list_messages(self.account, self.mailbox(role)))
            .unwrap()
    }

    pub fn email(&self, id: EmailId) -> Email {
        self.rt
            .block_on(self.store.email(self.account, id))
            .unwrap()
    }

    /// The stored bytes of an email.
    pub fn raw(&self, id: EmailId) -> Vec<u8> {
        let email = self.email(id);
        self.rt
            .block_on(self.store.read_blob(self.account, &email.blob_id))
            .unwrap()
    }

    /// The stored bytes of every INBOX message, in UID order.
    pub fn inbox_raw(&self) -> Vec<Vec<u8>> {
        self.list(Role::Inbox)
            .iter()
            .map(|e| self.raw(e.email_id))
            .collect()
    }

    /// IMAP `STORE +FLAGS`.
    pub fn add_flag(&self, role: Role, uids: &[Uid], flag: &str) {
        self.rt
            .block_on(self.store.set_keywords(
                self.account,
                self.mailbox(role),
                uids,
                KeywordOp::Add,
                &[flag.to_string()],
                None,
            ))
            .unwrap();
    }

    /// IMAP `UID EXPUNGE` of these UIDs, flags regardless.
    pub fn expunge(&self, role: Role, uids: &[Uid]) -> Vec<Uid> {
        self.rt
            .block_on(self.store.expunge(
                self.account,
                self.mailbox(role),
                ExpungeFilter::Uids(uids.to_vec()),
            ))
            .unwrap()
    }

    /// IMAP `UID MOVE`.
    pub fn move_messages(&self, from: Role, uids: &[Uid], to: Role) -> CopyResult {
        self.rt
            .block_on(self.store.move_messages(
                self.account,
                self.mailbox(from),
                uids,
                self.mailbox(to),
            ))
            .unwrap()
    }

    /// IMAP `APPEND`.
    pub fn append(&self, role: Role, raw: &[u8]) -> Delivered {
        self.rt
            .block_on(self.store.append(
                self.account,
                self.mailbox(role),
                raw.to_vec().into(),
                vec![],
                0,
            ))
            .unwrap()
    }

    pub fn highest_modseq(&self) -> ModSeq {
        self.rt
            .block_on(self.store.highest_modseq(self.account))
            .unwrap()
    }

    /// What changed in a mailbox after `since` (the journal, as QRESYNC
    /// reads it).
    pub fn changes(&self, role: Role, since: ModSeq) -> MailboxChanges {
        self.rt
            .block_on(
                self.store
                    .mailbox_changes(self.account, self.mailbox(role), since),
            )
            .unwrap()
    }
}

impl Drop for Imap {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.store.close());
    }
}

// ---- Python's poplib ----

/// Python that every poplib script starts with: a TLS context that accepts
/// the server's self-signed certificate, `s(b)` to make bytes printable
/// as JSON, and `save(path, lines)` to write a retrieved message back as
/// the bytes it was (poplib splits it into lines, CRLF removed, dots
/// unstuffed).
pub const PY_POP: &str = r#"
import hashlib, json, poplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def s(b):
    return b.decode("utf-8", "replace")
def joined(lines):
    return b"".join(l + b"\r\n" for l in lines)
def save(path, lines):
    with open(path, "wb") as f:
        f.write(joined(lines))
"#;

/// Runs a poplib script (after [`PY_POP`]) that prints one JSON value.
#[track_caller]
pub fn poplib(script: &str, args: &[&str]) -> serde_json::Value {
    python(&format!("{PY_POP}\n{script}"), args)
}
