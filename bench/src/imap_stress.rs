//! `imap-stress`: many IMAP4rev1 clients on one mailbox at once, each
//! checking that what the server tells it stays a consistent protocol.
//!
//! `--clients` sessions log in as the same user, SELECT INBOX and, for
//! `--seconds`, do at random: STORE a flag or a keyword never seen before,
//! APPEND, STORE \Deleted + EXPUNGE, FETCH 1:* (UID FLAGS), SEARCH RECENT,
//! NOOP. Every response is checked as it arrives:
//!
//! - a FETCH shows no keyword the last untagged FLAGS did not announce
//!   (RFC 9051 §7.3.5; imaptest's "keyword used without being in FLAGS");
//! - message numbers stay within the mailbox as the session knows it
//!   (EXISTS, then one less per EXPUNGE; RFC 9051 §7.5.1, §7.4.1);
//! - no BAD, no NO but for the races a client must expect;
//! - a message is \Recent in one session at most (RFC 3501 §2.3.2).
//!
//! Reported: operations done and every violation found (the first few
//! whole); the exit status is 1 if there was any.
//!
//! ```sh
//! target/release/imap-stress --server 127.0.0.1:1143 \
//!     --user bob@example.test --password secret --clients 50 --seconds 20
//! ```

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// How long one command may take before the run is called failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_LINE: usize = 1 << 20;
/// Violations kept whole for the report.
const KEPT: usize = 20;

#[derive(Parser)]
#[command(name = "imap-stress", about = "IMAP protocol-consistency stress test")]
struct Args {
    /// The IMAP server (loopback only)
    #[arg(long)]
    server: SocketAddr,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value_t = 50)]
    clients: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

/// What all sessions report.
#[derive(Default)]
struct Report {
    operations: u64,
    violations: Vec<String>,
    violation_count: u64,
    /// UID -> the session that saw it \Recent.
    recent_owner: HashMap<u32, usize>,
}

impl Report {
    fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < KEPT {
            self.violations.push(what);
        }
    }
}

struct Session {
    id: usize,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    tag: u64,
    /// Keywords of the last untagged FLAGS.
    announced: HashSet<String>,
    /// Messages as the session knows them.
    exists: u32,
    report: Arc<Mutex<Report>>,
    rng: u64,
}

impl Session {
    fn random(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    fn violation(&self, what: String) {
        let mut r = self.report.lock().unwrap_or_else(|e| e.into_inner());
        r.violation(format!("session {}: {what}", self.id));
    }

    /// One response: a line and the literals it announces, inlined.
    async fn response(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_until(b'\n', &mut line))
                .await
                .context("no reply within the timeout")??;
            if n == 0 {
                bail!("the server closed the connection");
            }
            if line.len() > MAX_LINE {
                bail!("a response line over {MAX_LINE} bytes");
            }
            out.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line);
            let trimmed = text.trim_end();
            let literal = trimmed
                .strip_suffix('}')
                .and_then(|t| t.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            match literal {
                Some(n) if n <= MAX_LINE * 64 => {
                    let mut data = vec![0; n];
                    self.reader.read_exact(&mut data).await?;
                    out.extend_from_slice(&data);
                }
                Some(_) => bail!("a literal too large"),
                None => return Ok(out),
            }
        }
    }

    /// Sends a command and checks every response up to its completion;
    /// returns the completion's status word.
    async fn command(&mut self, command: &str) -> Result<String> {
        self.tag += 1;
        let tag = format!("s{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        loop {
            let r = self.response().await?;
            let text = String::from_utf8_lossy(&r).into_owned();
            if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                let status = rest.split(' ').next().unwrap_or("").to_string();
                if status == "BAD" {
                    self.violation(format!("{command:?} got {}", text.trim_end()));
                }
                return Ok(status);
            }
            self.check_untagged(command, &text);
        }
    }

    fn check_untagged(&mut self, command: &str, text: &str) {
        let line = text.trim_end();
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        if words.first() != Some(&"*") {
            return;
        }
        let second = words.get(1).copied().unwrap_or("");
        if second == "FLAGS" {
            self.announced = flag_list(line, "FLAGS (").into_iter().collect();
            return;
        }
        if second == "BAD" {
            self.violation(format!("untagged BAD after {command:?}: {line}"));
            return;
        }
        let Ok(n) = second.parse::<u32>() else {
            return;
        };
        match words.get(2).copied().unwrap_or("") {
            "EXISTS" => self.exists = n,
            "EXPUNGE" => {
                if n == 0 || n > self.exists {
                    self.violation(format!(
                        "EXPUNGE {n} with {} messages known, after {command:?}",
                        self.exists
                    ));
                }
                self.exists = self.exists.saturating_sub(1);
            }
            "FETCH" => {
                if n == 0 || n > self.exists {
                    self.violation(format!(
                        "FETCH of message {n} with {} messages known, after {command:?}: {line}",
                        self.exists
                    ));
                }
                if let Some(at) = line.find("FLAGS (") {
                    let flags = flag_list(&line[at..], "FLAGS (");
                    for f in &flags {
                        if !f.starts_with('\\') && !self.announced.contains(f) {
                            self.violation(format!(
                                "keyword {f} used without being in FLAGS, after {command:?}: {line}"
                            ));
                        }
                    }
                    if flags.iter().any(|f| f == "\\Recent") {
                        if let Some(uid) = uid_of(line) {
                            let mut r = self.report.lock().unwrap_or_else(|e| e.into_inner());
                            match r.recent_owner.insert(uid, self.id) {
                                Some(other) if other != self.id => r.violation(format!(
                                    "UID {uid} \\Recent in sessions {other} and {}",
                                    self.id
                                )),
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// One random operation.
    async fn operate(&mut self) -> Result<()> {
        let n = self.exists.max(1);
        let target = 1 + self.random(u64::from(n)) as u32;
        let keyword = format!("kw{}", self.random(1_000_000));
        // Message numbers must exist: an empty mailbox gets an APPEND.
        let choice = if self.exists == 0 { 2 } else { self.random(8) };
        let status = match choice {
            0 => {
                self.command(&format!("STORE {target} +FLAGS ({keyword})"))
                    .await?
            }
            1 => {
                self.command(&format!("STORE {target} +FLAGS (\\Flagged)"))
                    .await?
            }
            2 => {
                let msg = format!(
                    "Subject: stress {}\r\nFrom: a@example.test\r\n\r\nbody\r\n",
                    self.random(1 << 30)
                );
                self.command(&format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len()))
                    .await?
            }
            3 => {
                self.command(&format!("STORE {target} +FLAGS.SILENT (\\Deleted)"))
                    .await?;
                self.command("EXPUNGE").await?
            }
            4 => self.command("FETCH 1:* (UID FLAGS)").await?,
            5 => self.command("SEARCH RECENT").await?,
            6 => self.command("UID SEARCH UNSEEN").await?,
            _ => self.command("NOOP").await?,
        };
        // A message expunged by another session meanwhile is a NO a client
        // must expect (RFC 2180 §4.2); anything else is not.
        if status != "OK" && status != "NO" {
            self.violation(format!("a completion {status}"));
        }
        Ok(())
    }
}

fn flag_list(text: &str, opener: &str) -> Vec<String> {
    let Some(start) = text.find(opener).map(|i| i + opener.len()) else {
        return Vec::new();
    };
    let end = text[start..].find(')').map_or(text.len(), |e| start + e);
    text[start..end]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn uid_of(line: &str) -> Option<u32> {
    let at = line.find("UID ")? + 4;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

async fn session(args: Arc<Args>, id: usize, report: Arc<Mutex<Report>>) -> Result<()> {
    let stream = TcpStream::connect(args.server).await?;
    let (read, write) = stream.into_split();
    let mut s = Session {
        id,
        reader: BufReader::new(read),
        writer: write,
        tag: 0,
        announced: HashSet::new(),
        exists: 0,
        report: report.clone(),
        rng: 0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
    };
    s.response().await?;
    let login = s
        .command(&format!("LOGIN \"{}\" \"{}\"", args.user, args.password))
        .await?;
    if login != "OK" {
        bail!("LOGIN failed: {login}");
    }
    if s.command("SELECT INBOX").await? != "OK" {
        bail!("SELECT failed");
    }
    let end = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        s.operate().await?;
        report.lock().unwrap_or_else(|e| e.into_inner()).operations += 1;
    }
    s.command("LOGOUT").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Arc::new(Args::parse());
    if !args.server.ip().is_loopback() {
        eprintln!("imap-stress: only loopback servers are stressed");
        return ExitCode::from(2);
    }
    let report = Arc::new(Mutex::new(Report::default()));
    let tasks: Vec<_> = (0..args.clients)
        .map(|id| tokio::spawn(session(args.clone(), id, report.clone())))
        .collect();
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("a session failed: {e:#}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("a session panicked: {e}");
            }
        }
    }
    let r = report.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "{} clients, {} s: {} operations, {} protocol violations, {} sessions failed, {} messages seen \\Recent",
        args.clients,
        args.seconds,
        r.operations,
        r.violation_count,
        failed,
        r.recent_owner.len()
    );
    for v in &r.violations {
        println!("  {v}");
    }
    if r.violation_count > 0 || failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
