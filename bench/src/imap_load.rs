//! `imap-load`: an IMAP load generator for any IMAP server on this machine.
//!
//! Three modes:
//!
//! - `mixed` (the default): `--clients` tasks, each on its own connection
//!   and its own user (round robin over `--users`), loop for `--seconds`
//!   over a mail client's mixed workload (plain LOGIN, no TLS):
//!
//!   SELECT INBOX, FETCH 1:* (UID FLAGS), FETCH n:n+19 (ENVELOPE),
//!   FETCH n BODY.PEEK[], STORE n +FLAGS (\Seen), STORE n -FLAGS (\Seen),
//!   SEARCH UNSEEN, SEARCH SUBJECT word, APPEND a 5 KiB message,
//!   UID COPY a random message to Archive, UID STORE +FLAGS.SILENT
//!   (\Deleted) on the appended one (and on last cycle's moved-back one),
//!   EXPUNGE, IDLE (entered and left with DONE at once), SELECT Archive,
//!   UID MOVE the copy back to INBOX.
//!
//!   Both mailboxes keep their size: INBOX gains the appended and the
//!   moved-back message and loses both at the next EXPUNGE; Archive gains
//!   the copy and loses it to the MOVE. A client logs out and logs in again
//!   on a new connection once it has done `--relogin-every` operations, so
//!   the login (with its password hash) is part of the mix. Reported: all
//!   operations per second, and per operation count, p50 and p99 latency
//!   (from writing the command to reading its tagged completion).
//!
//! - `idle-memory`: opens `--connections` connections that LOGIN, SELECT
//!   INBOX and IDLE, reading `VmRSS` of `--pid` from /proc before and after;
//!   reports (after - before) / connections.
//!
//! - `idle-latency`: one connection IDLEs on INBOX of the first user while
//!   `--messages` messages are delivered to it one at a time through SMTP
//!   (`--smtp`); reports the delay from reading each 250 to reading the
//!   `* n EXISTS` it causes (a reader task stamps each line on arrival).
//!
//! Only loopback servers are loaded. Every loop is bounded: a reply timeout,
//! the run's duration, a bounded number of reconnections per client, and
//! limits on line length, literal size and lines per response.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_bench::{json_string, percentile};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Longest response line read (without literals).
const MAX_LINE: u64 = 64 * 1024;
/// Largest literal accepted in a response.
const MAX_LITERAL: usize = 64 * 1024 * 1024;
/// Most untagged lines in one response (FETCH 1:* over a few hundred).
const MAX_LINES: usize = 200_000;
/// Reconnections of one client after an I/O error before it gives up.
const MAX_RECONNECTS: usize = 5;
/// Error texts kept for the report.
const MAX_ERRORS_KEPT: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Mixed,
    IdleMemory,
    IdleLatency,
}

#[derive(Parser)]
#[command(
    name = "imap-load",
    about = "IMAP load generator: mixed-workload rate and latency, IDLE memory and IDLE latency"
)]
struct Args {
    /// What to measure
    #[arg(long, value_enum, default_value_t = Mode::Mixed)]
    mode: Mode,
    /// The IMAP server, e.g. 127.0.0.1:1143 (loopback only)
    #[arg(long)]
    server: SocketAddr,
    /// Login names: a file with one per line, or a comma-separated list
    #[arg(long)]
    users: String,
    /// The password of every user
    #[arg(long)]
    password: String,
    /// Concurrent clients (mixed), each on its own connection and user
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds the mixed load runs
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Log out and in again after this many operations (mixed)
    #[arg(long, default_value_t = 100)]
    relogin_every: usize,
    /// Size of each appended message in bytes
    #[arg(long, default_value_t = 5 * 1024)]
    append_size: usize,
    /// Connections to hold in IDLE (idle-memory)
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// Connections opened (and logins run) at once (idle-memory)
    #[arg(long, default_value_t = 64)]
    open_batch: usize,
    /// The server's process id, whose VmRSS is read (idle-memory)
    #[arg(long)]
    pid: Option<u32>,
    /// The SMTP server delivering to the IDLE user (idle-latency)
    #[arg(long)]
    smtp: Option<SocketAddr>,
    /// Messages delivered one at a time (idle-latency)
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Seconds to wait for any one response
    #[arg(long, default_value_t = 60)]
    reply_timeout: u64,
    /// Print the results as one JSON object
    #[arg(long)]
    json: bool,
}

/// The operations of the mixed workload, in report order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Login,
    Select,
    FetchFlags,
    FetchEnvelope,
    FetchBody,
    Store,
    SearchUnseen,
    SearchSubject,
    Append,
    Copy,
    Expunge,
    Idle,
    Move,
}

const OPS: [Op; 13] = [
    Op::Login,
    Op::Select,
    Op::FetchFlags,
    Op::FetchEnvelope,
    Op::FetchBody,
    Op::Store,
    Op::SearchUnseen,
    Op::SearchSubject,
    Op::Append,
    Op::Copy,
    Op::Expunge,
    Op::Idle,
    Op::Move,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Login => "LOGIN (connect+greeting+LOGIN)",
            Op::Select => "SELECT",
            Op::FetchFlags => "FETCH 1:* (UID FLAGS)",
            Op::FetchEnvelope => "FETCH n:n+19 (ENVELOPE)",
            Op::FetchBody => "FETCH n BODY.PEEK[]",
            Op::Store => "STORE / UID STORE",
            Op::SearchUnseen => "SEARCH UNSEEN",
            Op::SearchSubject => "SEARCH SUBJECT",
            Op::Append => "APPEND 5 KiB",
            Op::Copy => "UID COPY",
            Op::Expunge => "EXPUNGE",
            Op::Idle => "IDLE + DONE",
            Op::Move => "UID MOVE",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Op::Login => "login",
            Op::Select => "select",
            Op::FetchFlags => "fetch_flags",
            Op::FetchEnvelope => "fetch_envelope",
            Op::FetchBody => "fetch_body",
            Op::Store => "store",
            Op::SearchUnseen => "search_unseen",
            Op::SearchSubject => "search_subject",
            Op::Append => "append",
            Op::Copy => "copy",
            Op::Expunge => "expunge",
            Op::Idle => "idle",
            Op::Move => "move",
        }
    }
    fn index(self) -> usize {
        OPS.iter().position(|&o| o == self).unwrap_or(0)
    }
}

/// A tagged response with the untagged lines before it.
struct Resp {
    lines: Vec<Vec<u8>>,
    /// OK, NO or BAD.
    status: String,
    /// The tagged line.
    tagged: String,
}

impl Resp {
    fn ok(&self) -> bool {
        self.status == "OK"
    }
}

/// One IMAP connection.
struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    next_tag: u64,
    timeout: Duration,
}

impl Conn {
    /// Connects and reads the greeting.
    async fn open(server: SocketAddr, timeout: Duration) -> Result<Conn> {
        let s = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| anyhow!("connect timed out"))??;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        let mut c = Conn {
            r: BufReader::with_capacity(64 * 1024, r),
            w,
            next_tag: 0,
            timeout,
        };
        let g = c.line().await?;
        if !g.starts_with(b"* OK") && !g.starts_with(b"* PREAUTH") {
            bail!("greeting: {}", String::from_utf8_lossy(&g).trim_end());
        }
        Ok(c)
    }

    /// One response line, with any literals it announces read into it.
    async fn line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let start = line.len();
            let n = tokio::time::timeout(
                self.timeout,
                (&mut self.r).take(MAX_LINE).read_until(b'\n', &mut line),
            )
            .await
            .map_err(|_| anyhow!("no response within {:?}", self.timeout))??;
            if n == 0 {
                bail!("connection closed by the server");
            }
            if !line.ends_with(b"\n") {
                bail!("response line longer than {MAX_LINE} bytes");
            }
            match literal_len(&line[start..]) {
                Some(len) => {
                    if len > MAX_LITERAL {
                        bail!("literal of {len} bytes");
                    }
                    let at = line.len();
                    line.resize(at + len, 0);
                    tokio::time::timeout(self.timeout, self.r.read_exact(&mut line[at..]))
                        .await
                        .map_err(|_| anyhow!("literal not read within {:?}", self.timeout))??;
                }
                None => return Ok(line),
            }
        }
    }

    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("a{}", self.next_tag)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        tokio::time::timeout(self.timeout, self.w.write_all(bytes))
            .await
            .map_err(|_| anyhow!("write timed out"))??;
        Ok(())
    }

    /// Reads until the tagged completion of `tag`. With `until_plus`, stops
    /// at a continuation request instead (returning status "+").
    async fn collect(&mut self, tag: &str, until_plus: bool) -> Result<Resp> {
        let mut lines = Vec::new();
        for _ in 0..MAX_LINES {
            let l = self.line().await?;
            if l.starts_with(b"+") {
                if until_plus {
                    return Ok(Resp {
                        lines,
                        status: "+".into(),
                        tagged: String::new(),
                    });
                }
                bail!("unexpected continuation request");
            }
            if l.len() > tag.len() && l.starts_with(tag.as_bytes()) && l[tag.len()] == b' ' {
                let t = String::from_utf8_lossy(&l).trim_end().to_string();
                let status = t[tag.len() + 1..]
                    .split(' ')
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                return Ok(Resp {
                    lines,
                    status,
                    tagged: t,
                });
            }
            // Untagged data, BYE included (LOGOUT's BYE precedes its OK; any
            // other BYE is followed by the connection closing, an error).
            lines.push(l);
        }
        bail!("more than {MAX_LINES} lines in one response")
    }

    /// Sends one command and reads its response.
    async fn cmd(&mut self, text: &str) -> Result<Resp> {
        let tag = self.tag();
        self.send(format!("{tag} {text}\r\n").as_bytes()).await?;
        self.collect(&tag, false).await
    }

    /// APPEND with a synchronizing literal (works with any server).
    async fn append(&mut self, mailbox: &str, msg: &[u8]) -> Result<Resp> {
        let tag = self.tag();
        self.send(format!("{tag} APPEND {mailbox} {{{}}}\r\n", msg.len()).as_bytes())
            .await?;
        let r = self.collect(&tag, true).await?;
        if r.status != "+" {
            return Ok(r);
        }
        let mut data = Vec::with_capacity(msg.len() + 2);
        data.extend_from_slice(msg);
        data.extend_from_slice(b"\r\n");
        self.send(&data).await?;
        self.collect(&tag, false).await
    }

    /// IDLE, then DONE as soon as the server accepts it.
    async fn idle(&mut self) -> Result<Resp> {
        let tag = self.tag();
        self.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        let r = self.collect(&tag, true).await?;
        if r.status != "+" {
            return Ok(r);
        }
        self.send(b"DONE\r\n").await?;
        self.collect(&tag, false).await
    }
}

/// `n` when the line ends with a literal announcement `{n}` (or `{n+}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"\r\n").or(line.strip_suffix(b"\n"))?;
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let digits = &l[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An IMAP quoted string.
fn quoted(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// The number before ` EXISTS` in untagged lines, the last one.
fn exists(lines: &[Vec<u8>]) -> Option<u32> {
    lines.iter().rev().find_map(|l| {
        let t = std::str::from_utf8(l).ok()?.trim_end();
        let rest = t.strip_prefix("* ")?;
        let (n, word) = rest.split_once(' ')?;
        word.eq_ignore_ascii_case("EXISTS")
            .then(|| n.parse().ok())
            .flatten()
    })
}

/// The number after `key ` (e.g. `UID `) in a line.
fn number_after(line: &str, key: &str) -> Option<u32> {
    let at = line.find(key)? + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The last UID of a `[APPENDUID v uid]` or `[COPYUID v src dst]` code in
/// the tagged line or the untagged lines.
fn uid_code(r: &Resp, code: &str) -> Option<u32> {
    let find = |t: &str| -> Option<u32> {
        let at = t.find(code)?;
        let inner = t[at..].split(']').next()?;
        inner.split(' ').next_back()?.parse().ok()
    };
    find(&r.tagged).or_else(|| {
        r.lines
            .iter()
            .find_map(|l| find(&String::from_utf8_lossy(l)))
    })
}

/// A small xorshift generator: each client its own, reproducible sequence.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// In 1..=n (n >= 1).
    fn upto(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32 + 1
    }
}

const WORDS: &[&str] = &[
    "the", "mail", "server", "delivers", "message", "to", "every", "mailbox", "of", "our",
    "domain", "quickly", "and", "safely", "report", "meeting", "tomorrow", "budget", "invoice",
    "attached", "please", "review", "draft", "schedule", "project", "update", "thanks", "regards",
    "question", "answer", "weekly", "summary", "release", "notes", "customer", "order", "shipping",
    "status", "calendar", "agenda", "minutes", "travel",
];

/// A message of about `size` bytes with CRLF line ends.
fn message(size: usize, id: &str, rng: &mut Rng) -> Vec<u8> {
    let mut m = String::new();
    let _ = write!(
        m,
        "From: Load Generator <loadgen@load.example>\r\nTo: bench@bench.test\r\n\
         Subject: imap-load append {id}\r\nMessage-ID: <{id}@load.example>\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    );
    let mut line = String::new();
    while m.len() + line.len() + 2 < size {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        if line.len() + w.len() + 1 > 72 {
            m.push_str(&line);
            m.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        m.push_str(&line);
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// What every client shares.
struct Plan {
    server: SocketAddr,
    users: Vec<String>,
    password: String,
    deadline: Instant,
    relogin_every: usize,
    append_size: usize,
    timeout: Duration,
}

/// What one client measured.
#[derive(Default)]
struct Stats {
    lat: Vec<Vec<Duration>>,
    failed: usize,
    errors: Vec<String>,
    reconnects: usize,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            lat: vec![Vec::new(); OPS.len()],
            ..Default::default()
        }
    }
    fn error(&mut self, e: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(e);
        }
    }
}

/// What one operation sends.
enum Req {
    Cmd(String),
    Append(Vec<u8>),
    Idle,
}

/// Ends the cycle when the run's time is up.
struct Stop;

/// One client of the mixed load.
struct Client {
    plan: Arc<Plan>,
    user: String,
    conn: Option<Conn>,
    ops_since_login: usize,
    rng: Rng,
    stats: Stats,
    /// UIDs in INBOX to delete at the next EXPUNGE (moved-back copies).
    pending: Vec<u32>,
    appended: u64,
    id: usize,
}

impl Client {
    /// Runs `req` as operation `op` unless the time is up; records its
    /// latency when it completes with OK before the deadline.
    async fn op(&mut self, op: Op, req: Req) -> Result<Result<Resp, Stop>> {
        if Instant::now() >= self.plan.deadline {
            return Ok(Err(Stop));
        }
        let conn = self.conn.as_mut().ok_or_else(|| anyhow!("not connected"))?;
        let t = Instant::now();
        let r = match req {
            Req::Cmd(text) => conn.cmd(&text).await?,
            Req::Append(msg) => conn.append("INBOX", &msg).await?,
            Req::Idle => conn.idle().await?,
        };
        let end = Instant::now();
        if end > self.plan.deadline {
            return Ok(Err(Stop));
        }
        self.ops_since_login += 1;
        if r.ok() {
            self.stats.lat[op.index()].push(end - t);
        } else {
            self.stats.error(r.tagged.clone());
        }
        Ok(Ok(r))
    }

    async fn login(&mut self) -> Result<Result<(), Stop>> {
        if Instant::now() >= self.plan.deadline {
            return Ok(Err(Stop));
        }
        if let Some(mut c) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.cmd("LOGOUT")).await;
        }
        let t = Instant::now();
        let mut c = Conn::open(self.plan.server, self.plan.timeout).await?;
        let r = c
            .cmd(&format!(
                "LOGIN {} {}",
                quoted(&self.user),
                quoted(&self.plan.password)
            ))
            .await?;
        if !r.ok() {
            bail!("LOGIN as {}: {}", self.user, r.tagged);
        }
        let end = Instant::now();
        self.conn = Some(c);
        self.ops_since_login = 0;
        if end > self.plan.deadline {
            return Ok(Err(Stop));
        }
        self.stats.lat[Op::Login.index()].push(end - t);
        Ok(Ok(()))
    }

    /// One cycle of the workload; Err(Stop) inside when the time is up.
    async fn cycle(&mut self) -> Result<Result<(), Stop>> {
        macro_rules! go {
            ($e:expr) => {
                match $e? {
                    Ok(r) => r,
                    Err(Stop) => return Ok(Err(Stop)),
                }
            };
        }
        if self.conn.is_none() || self.ops_since_login >= self.plan.relogin_every {
            go!(self.login().await);
        }
        let r = go!(self.op(Op::Select, Req::Cmd("SELECT INBOX".into())).await);
        let n = exists(&r.lines).unwrap_or(0);
        let r = go!(self
            .op(Op::FetchFlags, Req::Cmd("FETCH 1:* (UID FLAGS)".into()))
            .await);
        let uids: Vec<u32> = r
            .lines
            .iter()
            .filter_map(|l| number_after(&String::from_utf8_lossy(l), "UID "))
            .collect();
        if n == 0 || uids.is_empty() {
            bail!("INBOX of {} is empty", self.user);
        }
        let first = self.rng.upto(n.saturating_sub(19).max(1));
        let last = (first + 19).min(n);
        go!(self
            .op(
                Op::FetchEnvelope,
                Req::Cmd(format!("FETCH {first}:{last} (ENVELOPE)"))
            )
            .await);
        let k = self.rng.upto(n);
        go!(self
            .op(Op::FetchBody, Req::Cmd(format!("FETCH {k} BODY.PEEK[]")))
            .await);
        let k = self.rng.upto(n);
        go!(self
            .op(Op::Store, Req::Cmd(format!("STORE {k} +FLAGS (\\Seen)")))
            .await);
        go!(self
            .op(Op::Store, Req::Cmd(format!("STORE {k} -FLAGS (\\Seen)")))
            .await);
        go!(self
            .op(Op::SearchUnseen, Req::Cmd("SEARCH UNSEEN".into()))
            .await);
        let w = WORDS[(self.rng.next() % WORDS.len() as u64) as usize];
        go!(self
            .op(Op::SearchSubject, Req::Cmd(format!("SEARCH SUBJECT {w}")))
            .await);
        self.appended += 1;
        let id = format!("{}.{}.{}", std::process::id(), self.id, self.appended);
        let msg = message(self.plan.append_size, &id, &mut self.rng);
        let r = go!(self.op(Op::Append, Req::Append(msg)).await);
        match uid_code(&r, "APPENDUID") {
            Some(u) => self.pending.push(u),
            None => {
                // No UIDPLUS: find it by its Message-ID.
                let q = format!("UID SEARCH HEADER Message-ID {}", quoted(&id));
                let r = go!(self.op(Op::SearchSubject, Req::Cmd(q)).await);
                for l in &r.lines {
                    let t = String::from_utf8_lossy(l);
                    if let Some(rest) = t.trim_end().strip_prefix("* SEARCH") {
                        self.pending
                            .extend(rest.split(' ').filter_map(|s| s.parse::<u32>().ok()));
                    }
                }
            }
        }
        let src = uids[(self.rng.next() % uids.len() as u64) as usize];
        let r = go!(self
            .op(Op::Copy, Req::Cmd(format!("UID COPY {src} Archive")))
            .await);
        let copy = uid_code(&r, "COPYUID");
        if !self.pending.is_empty() {
            let set: Vec<String> = self.pending.iter().map(u32::to_string).collect();
            let set = set.join(",");
            go!(self
                .op(
                    Op::Store,
                    Req::Cmd(format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"))
                )
                .await);
            self.pending.clear();
        }
        go!(self.op(Op::Expunge, Req::Cmd("EXPUNGE".into())).await);
        go!(self.op(Op::Idle, Req::Idle).await);
        go!(self.op(Op::Select, Req::Cmd("SELECT Archive".into())).await);
        if let Some(copy) = copy {
            let r = go!(self
                .op(Op::Move, Req::Cmd(format!("UID MOVE {copy} INBOX")))
                .await);
            if let Some(u) = uid_code(&r, "COPYUID") {
                self.pending.push(u);
            }
        }
        Ok(Ok(()))
    }
}

async fn client(plan: Arc<Plan>, i: usize) -> Stats {
    let user = plan.users[i % plan.users.len()].clone();
    let mut c = Client {
        plan,
        user,
        conn: None,
        ops_since_login: 0,
        rng: Rng(0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 0x1000_0001)),
        stats: Stats::new(),
        pending: Vec::new(),
        appended: 0,
        id: i,
    };
    // Bounded: each cycle ends by the deadline (every read has a timeout).
    while Instant::now() < c.plan.deadline {
        match c.cycle().await {
            Ok(Ok(())) => {}
            Ok(Err(Stop)) => break,
            Err(e) => {
                c.stats.error(format!("{}: {e:#}", c.user));
                c.conn = None;
                c.stats.reconnects += 1;
                if c.stats.reconnects > MAX_RECONNECTS {
                    break;
                }
            }
        }
    }
    if let Some(mut conn) = c.conn.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.cmd("LOGOUT")).await;
    }
    c.stats
}

fn users(arg: &str) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(arg) {
        Ok(t) => t,
        Err(_) => arg.replace(',', "\n"),
    };
    let u: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if u.is_empty() {
        bail!("no users in --users");
    }
    Ok(u)
}

async fn mixed(args: &Args, users: Vec<String>) -> Result<ExitCode> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let start = Instant::now();
    let plan = Arc::new(Plan {
        server: args.server,
        users,
        password: args.password.clone(),
        deadline: start + Duration::from_secs(args.seconds),
        relogin_every: args.relogin_every.max(1),
        append_size: args.append_size,
        timeout: Duration::from_secs(args.reply_timeout),
    });
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| tokio::spawn(client(plan.clone(), i)))
        .collect();
    let mut all = Stats::new();
    for t in tasks {
        let s = t.await.context("client task")?;
        for (a, b) in all.lat.iter_mut().zip(s.lat) {
            a.extend(b);
        }
        all.failed += s.failed;
        all.reconnects += s.reconnects;
        for e in s.errors {
            if all.errors.len() < MAX_ERRORS_KEPT {
                all.errors.push(e);
            }
        }
    }
    let elapsed = args.seconds as f64;
    let mut total: Vec<Duration> = Vec::new();
    for l in &mut all.lat {
        l.sort();
        total.extend(l.iter().copied());
    }
    total.sort();
    let ops = total.len();
    let rate = ops as f64 / elapsed;
    if args.json {
        let mut j = String::new();
        let _ = write!(
            j,
            "{{\"clients\": {}, \"seconds\": {}, \"ops\": {ops}, \"ops_per_s\": {rate:.1}, \
             \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"failed\": {}, \"reconnects\": {}",
            args.clients,
            args.seconds,
            percentile(&total, 0.5),
            percentile(&total, 0.99),
            all.failed,
            all.reconnects
        );
        for op in OPS {
            let l = &all.lat[op.index()];
            let _ = write!(
                j,
                ", \"{k}_n\": {}, \"{k}_p50_ms\": {:.3}, \"{k}_p99_ms\": {:.3}",
                l.len(),
                percentile(l, 0.5),
                percentile(l, 0.99),
                k = op.key()
            );
        }
        let errs: Vec<String> = all.errors.iter().map(|e| json_string(e)).collect();
        let _ = write!(j, ", \"errors\": [{}]}}", errs.join(", "));
        println!("{j}");
    } else {
        println!(
            "{} clients, {} s: {ops} operations, {rate:.1} ops/s, p50 {:.2} ms, p99 {:.2} ms; \
             {} failed, {} reconnects",
            args.clients,
            args.seconds,
            percentile(&total, 0.5),
            percentile(&total, 0.99),
            all.failed,
            all.reconnects
        );
        println!("| operation | count | p50 (ms) | p99 (ms) |");
        println!("|---|---|---|---|");
        for op in OPS {
            let l = &all.lat[op.index()];
            println!(
                "| {} | {} | {:.2} | {:.2} |",
                op.name(),
                l.len(),
                percentile(l, 0.5),
                percentile(l, 0.99)
            );
        }
        for e in &all.errors {
            eprintln!("error: {e}");
        }
    }
    Ok(if all.failed > 0 || ops == 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `VmRSS` and `RssAnon` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}

/// Opens a connection that logs in, selects INBOX and enters IDLE.
async fn idle_conn(server: SocketAddr, user: &str, pw: &str, t: Duration) -> Result<Conn> {
    let mut c = Conn::open(server, t).await?;
    let r = c
        .cmd(&format!("LOGIN {} {}", quoted(user), quoted(pw)))
        .await?;
    if !r.ok() {
        bail!("LOGIN as {user}: {}", r.tagged);
    }
    let r = c.cmd("SELECT INBOX").await?;
    if !r.ok() {
        bail!("SELECT: {}", r.tagged);
    }
    let tag = c.tag();
    c.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
    let r = c.collect(&tag, true).await?;
    if r.status != "+" {
        bail!("IDLE: {}", r.tagged);
    }
    Ok(c)
}

/// Opens `count` IDLE connections, `--open-batch` at a time.
async fn open_idle(args: &Args, users: &Arc<Vec<String>>, count: usize) -> Result<Vec<Conn>> {
    let timeout = Duration::from_secs(args.reply_timeout);
    let pw = Arc::new(args.password.clone());
    let mut conns: Vec<Conn> = Vec::with_capacity(count);
    let mut i = 0;
    while i < count {
        let batch = args.open_batch.max(1).min(count - i);
        let tasks: Vec<_> = (i..i + batch)
            .map(|k| {
                let (users, pw) = (users.clone(), pw.clone());
                let server = args.server;
                tokio::spawn(async move {
                    idle_conn(server, &users[k % users.len()], &pw, timeout).await
                })
            })
            .collect();
        for t in tasks {
            conns.push(
                t.await
                    .context("task")?
                    .context("opening an IDLE connection")?,
            );
        }
        i += batch;
    }
    Ok(conns)
}

async fn idle_memory(args: &Args, users: Vec<String>) -> Result<ExitCode> {
    let pid = args
        .pid
        .ok_or_else(|| anyhow!("--pid is needed for idle-memory"))?;
    let users = Arc::new(users);
    let settle = Duration::from_secs(3);
    // Warm-up: the same burst of logins (Argon2 buffers, threads, allocator
    // arenas) on connections closed again, so "before" already holds what a
    // login burst leaves behind and the difference is the connections.
    let warm = open_idle(
        args,
        &users,
        (2 * args.open_batch.max(1)).min(args.connections),
    )
    .await?;
    drop(warm);
    tokio::time::sleep(settle).await;
    let (before, anon_before) = rss_kib(pid)?;
    let t0 = Instant::now();
    let conns = open_idle(args, &users, args.connections).await?;
    let opened = t0.elapsed();
    tokio::time::sleep(settle).await;
    let (after, anon_after) = rss_kib(pid)?;
    let k = conns.len();
    drop(conns);
    tokio::time::sleep(settle).await;
    let (closed, _) = rss_kib(pid)?;
    let per = (after as f64 - before as f64) / k as f64;
    let per_anon = (anon_after as f64 - anon_before as f64) / k as f64;
    if args.json {
        println!(
            "{{\"connections\": {k}, \"rss_before_kib\": {before}, \"rss_after_kib\": {after}, \
             \"rss_closed_kib\": {closed}, \"kib_per_connection\": {per:.1}, \
             \"anon_kib_per_connection\": {per_anon:.1}, \"open_s\": {:.1}}}",
            opened.as_secs_f64()
        );
    } else {
        println!(
            "{k} IDLE connections (opened in {:.1} s): VmRSS {before} KiB before, {after} KiB \
             after, {closed} KiB once closed; {per:.1} KiB per connection ({per_anon:.1} KiB \
             anonymous)",
            opened.as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one SMTP reply (multi-line aware); returns its code and last line.
async fn smtp_reply(r: &mut BufReader<OwnedReadHalf>, t: Duration) -> Result<(u16, String)> {
    for _ in 0..100 {
        let mut l = String::new();
        let n = tokio::time::timeout(t, (&mut *r).take(4096).read_line(&mut l))
            .await
            .map_err(|_| anyhow!("no SMTP reply within {t:?}"))??;
        if n == 0 {
            bail!("SMTP connection closed");
        }
        if l.len() >= 4 && l.as_bytes()[3] == b'-' {
            continue;
        }
        let code = l.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        return Ok((code, l.trim_end().to_string()));
    }
    bail!("SMTP reply of more than 100 lines")
}

async fn idle_latency(args: &Args, users: Vec<String>) -> Result<ExitCode> {
    let smtp = args
        .smtp
        .ok_or_else(|| anyhow!("--smtp is needed for idle-latency"))?;
    if !smtp.ip().is_loopback() {
        bail!("{smtp} is not a loopback address");
    }
    let t = Duration::from_secs(args.reply_timeout);
    let user = users[0].clone();
    let c = idle_conn(args.server, &user, &args.password, t).await?;
    // A reader task stamps every `* n EXISTS` as it arrives.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u32, Instant)>();
    let mut c = c;
    let reader = tokio::spawn(async move {
        loop {
            let l = match c.line().await {
                Ok(l) => l,
                Err(_) => return c,
            };
            let at = Instant::now();
            if let Some(n) = exists(&[l]) {
                if tx.send((n, at)).is_err() {
                    return c;
                }
            }
        }
    });
    let s = TcpStream::connect(smtp).await?;
    s.set_nodelay(true)?;
    let (sr, mut sw) = s.into_split();
    let mut sr = BufReader::new(sr);
    let (code, l) = smtp_reply(&mut sr, t).await?;
    if code != 220 {
        bail!("SMTP greeting: {l}");
    }
    sw.write_all(b"EHLO load.example\r\n").await?;
    smtp_reply(&mut sr, t).await?;
    let mut rng = Rng(42);
    let mut lat: Vec<f64> = Vec::with_capacity(args.messages);
    let mut missing = 0;
    let mut last_exists = 0u32;
    for i in 0..args.messages {
        for cmd in [
            "MAIL FROM:<loadgen@load.example>".to_string(),
            format!("RCPT TO:<{user}>"),
            "DATA".to_string(),
        ] {
            sw.write_all(format!("{cmd}\r\n").as_bytes()).await?;
            let (code, l) = smtp_reply(&mut sr, t).await?;
            if code >= 400 {
                bail!("SMTP {cmd}: {l}");
            }
        }
        let mut m = message(2048, &format!("idle.{}.{i}", std::process::id()), &mut rng);
        m.extend_from_slice(b".\r\n");
        sw.write_all(&m).await?;
        let (code, l) = smtp_reply(&mut sr, t).await?;
        let accepted = Instant::now();
        if code != 250 {
            bail!("SMTP end of data: {l}");
        }
        // The EXISTS for this message: the next one with a larger count
        // than the last (one delivery, one new message).
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (n, at) = rx.recv().await?;
                if n > last_exists {
                    last_exists = n;
                    return Some(at);
                }
            }
        })
        .await
        .ok()
        .flatten();
        match got {
            Some(at) => {
                let d = if at >= accepted {
                    (at - accepted).as_secs_f64() * 1000.0
                } else {
                    -((accepted - at).as_secs_f64() * 1000.0)
                };
                lat.push(d);
            }
            None => missing += 1,
        }
    }
    let _ = sw.write_all(b"QUIT\r\n").await;
    reader.abort();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        lat[rank - 1]
    };
    let (p50, p99, max) = (pct(0.5), pct(0.99), pct(1.0));
    let early = lat.iter().filter(|&&d| d < 0.0).count();
    if args.json {
        println!(
            "{{\"messages\": {}, \"seen\": {}, \"missing\": {missing}, \"p50_ms\": {p50:.3}, \
             \"p99_ms\": {p99:.3}, \"max_ms\": {max:.3}, \"exists_before_250\": {early}}}",
            args.messages,
            lat.len()
        );
    } else {
        println!(
            "{} messages: SMTP 250 to IDLE EXISTS p50 {p50:.2} ms, p99 {p99:.2} ms, max \
             {max:.2} ms; {missing} without EXISTS within 10 s; {early} EXISTS read before \
             the 250",
            args.messages
        );
    }
    Ok(if missing > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("imap-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imap-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    if !args.server.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: only servers on this machine are loaded",
            args.server
        );
    }
    let users = users(&args.users)?;
    match args.mode {
        Mode::Mixed => mixed(&args, users).await,
        Mode::IdleMemory => idle_memory(&args, users).await,
        Mode::IdleLatency => idle_latency(&args, users).await,
    }
}
