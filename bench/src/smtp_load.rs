//! `smtp-load`: an SMTP load generator for any server on this machine.
//!
//! It opens `--concurrency` sessions at once; each keeps its connection and
//! sends its share of `--messages` distinct messages (own Message-ID and
//! subject counter, about `--size` bytes, recipients round-robin from
//! `--recipients`), with RSET between them. Plain SMTP as on port 25: no
//! STARTTLS, no AUTH. MAIL, RCPT and DATA go in one write when the server
//! offers PIPELINING (RFC 2920).
//!
//! What it measures:
//! - accept latency of each message: from writing the end of data
//!   (`CRLF.CRLF`) to reading the final reply — the time the server takes
//!   to make the message safe before it answers 250;
//! - the accept rate: accepted messages from the first connection to the
//!   last 250;
//! - with `--wait-maildir DIR`, the end-to-end rate: from the first
//!   connection until `--expect` new files are in the `new/` folders under
//!   DIR (for servers such as Postfix that answer 250 when the message is
//!   queued and deliver it afterwards).
//!
//! It only sends to loopback addresses: a load test never targets another
//! machine. Every loop is bounded: a reply timeout, a time limit on the
//! whole load, a bounded number of reconnections per session, and a time
//! limit on waiting for the Maildirs.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tern_bench::{json_string, percentile};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Longest reply line read: RFC 5321 §4.5.3.1.5 allows 512; some servers
/// send longer texts, none sends this much.
const MAX_REPLY_LINE: u64 = 4096;
/// Most lines of one multi-line reply (EHLO lists a dozen or so).
const MAX_REPLY_LINES: usize = 100;
/// Times one session reconnects after losing its connection before it
/// gives up on the rest of its share.
const MAX_RECONNECTS: usize = 3;
/// Error replies kept for the report; the rest are only counted.
const MAX_ERRORS_KEPT: usize = 5;
/// Deepest folder visited when counting Maildir files (base/domain/user/new).
const MAX_MAILDIR_DEPTH: usize = 6;

#[derive(Parser)]
#[command(
    name = "smtp-load",
    about = "SMTP load generator: accept latency and rate of any SMTP server on loopback"
)]
struct Args {
    /// The server, e.g. 127.0.0.1:2525 (loopback only)
    #[arg(long)]
    server: SocketAddr,
    /// Messages to send in total
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Concurrent sessions, each on its own connection
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Approximate size of each message in bytes, headers included
    #[arg(long, default_value_t = 5 * 1024)]
    size: usize,
    /// A file with one address per line, or a comma-separated list
    #[arg(long)]
    recipients: String,
    /// Recipients per message, taken round-robin from the list
    #[arg(long, default_value_t = 1)]
    rcpts_per_message: usize,
    /// Envelope sender and From:
    #[arg(long, default_value = "loadgen@load.example")]
    from: String,
    /// The name given in EHLO
    #[arg(long, default_value = "load.example")]
    helo: String,
    /// Send one command at a time even when the server offers PIPELINING
    #[arg(long)]
    no_pipelining: bool,
    /// Seconds to wait for any one reply
    #[arg(long, default_value_t = 60)]
    reply_timeout: u64,
    /// Seconds the whole load may take; messages not sent by then fail
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
    /// After the load, wait until the Maildirs under DIR hold the messages
    /// (files in any `new/` folder, counted from the start of the run)
    #[arg(long, value_name = "DIR")]
    wait_maildir: Option<PathBuf>,
    /// Files to wait for in --wait-maildir [default: the recipients accepted]
    #[arg(long, value_name = "N")]
    expect: Option<usize>,
    /// Seconds to wait for the Maildirs at most
    #[arg(long, default_value_t = 600)]
    wait_timeout: u64,
    /// Milliseconds between two counts of the Maildirs
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// Body text: `words` (varied words, like real text) or `repeat` (one
    /// line over and over, as store-bench uses: little for a full-text index)
    #[arg(long, value_enum, default_value_t = Body::Words)]
    body: Body,
    /// Print the results as one JSON object
    #[arg(long)]
    json: bool,
    /// Sign every message with DKIM (Ed25519, RFC 8463) with the key in
    /// FILE (base64 PKCS#8), as `--dkim-selector` of the --from domain
    #[arg(long, value_name = "FILE")]
    dkim_key: Option<PathBuf>,
    #[arg(long, default_value = "bench")]
    dkim_selector: String,
    /// Make a new key in --dkim-key's FILE, print its DNS record as
    /// `NAME<TAB>VALUE` and exit
    #[arg(long)]
    dkim_keygen: bool,
}

type DkimSigner =
    mail_auth::dkim::DkimSigner<mail_auth::common::crypto::Ed25519Key, mail_auth::dkim::Done>;

/// The signer of `--dkim-key`, or with `--dkim-keygen` a new key and its
/// record printed.
fn dkim_signer(args: &Args) -> Result<Option<DkimSigner>> {
    use base64::Engine;
    use mail_auth::common::crypto::Ed25519Key;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(path) = &args.dkim_key else {
        return Ok(None);
    };
    let domain = args
        .from
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .ok_or_else(|| anyhow!("--from has no domain to sign as"))?;
    if args.dkim_keygen {
        let pkcs8 = Ed25519Key::generate_pkcs8().map_err(|e| anyhow!("{e}"))?;
        std::fs::write(path, b64.encode(&pkcs8))
            .with_context(|| format!("writing {}", path.display()))?;
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).map_err(|e| anyhow!("{e}"))?;
        println!(
            "{}._domainkey.{domain}\tv=DKIM1; k=ed25519; p={}",
            args.dkim_selector,
            b64.encode(key.public_key())
        );
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let pkcs8 = b64
        .decode(text.trim())
        .context("the key file is not base64")?;
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).map_err(|e| anyhow!("{e}"))?;
    Ok(Some(
        mail_auth::dkim::DkimSigner::from_key(key)
            .domain(domain)
            .selector(args.dkim_selector.clone())
            .headers(["From", "To", "Subject", "Date", "Message-ID"]),
    ))
}

/// What message bodies are made of.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Body {
    Words,
    Repeat,
}

/// What every session shares.
struct Plan {
    server: SocketAddr,
    messages: usize,
    concurrency: usize,
    size: usize,
    body: Body,
    recipients: Vec<String>,
    rcpts_per_message: usize,
    from: String,
    helo: String,
    pipelining_allowed: bool,
    reply_timeout: Duration,
    deadline: Instant,
    /// Distinguishes this run's Message-IDs from earlier runs'.
    run_id: String,
    /// Signs each message, when asked.
    dkim: Option<DkimSigner>,
}

/// What one session reports.
#[derive(Default)]
struct SessionResult {
    latencies: Vec<Duration>,
    failed: usize,
    rcpt_rejected: usize,
    /// Recipients accepted in messages that were accepted.
    delivered_rcpts: usize,
    errors: Vec<String>,
    last_accept: Option<Instant>,
    pipelined: bool,
}

impl SessionResult {
    fn error(&mut self, e: String) {
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(e);
        }
    }
}

/// One reply: its code and its lines' texts joined.
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    fn is(&self, class: u16) -> bool {
        self.code / 100 == class
    }
}

/// A connected, greeted session.
struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pipelining: bool,
    reply_timeout: Duration,
    /// A transaction was started on this connection: RSET before the next.
    used: bool,
}

impl Conn {
    async fn open(plan: &Plan) -> Result<Conn> {
        let tcp = tokio::time::timeout(plan.reply_timeout, TcpStream::connect(plan.server))
            .await
            .map_err(|_| anyhow!("connecting to {}: timed out", plan.server))?
            .with_context(|| format!("connecting to {}", plan.server))?;
        // Commands and the end of data go out at once, not after Nagle's delay.
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        let mut conn = Conn {
            reader: BufReader::new(r),
            writer: w,
            pipelining: false,
            reply_timeout: plan.reply_timeout,
            used: false,
        };
        let greeting = conn.reply().await?;
        if greeting.code != 220 {
            bail!("greeting: {} {}", greeting.code, greeting.text);
        }
        conn.send(format!("EHLO {}\r\n", plan.helo).as_bytes())
            .await?;
        let ehlo = conn.reply().await?;
        if ehlo.is(2) {
            conn.pipelining = plan.pipelining_allowed
                && ehlo
                    .text
                    .split(" / ")
                    .any(|l| l.eq_ignore_ascii_case("PIPELINING"));
        } else {
            // RFC 5321 §3.2: a server without ESMTP gets HELO.
            conn.send(format!("HELO {}\r\n", plan.helo).as_bytes())
                .await?;
            let helo = conn.reply().await?;
            if !helo.is(2) {
                bail!("HELO: {} {}", helo.code, helo.text);
            }
        }
        Ok(conn)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        tokio::time::timeout(self.reply_timeout, self.writer.write_all(bytes))
            .await
            .map_err(|_| anyhow!("writing: timed out"))?
            .context("writing")
    }

    /// Reads one reply, all its lines (RFC 5321 §4.2.1).
    async fn reply(&mut self) -> Result<Reply> {
        let read = async {
            let mut text = String::new();
            for _ in 0..MAX_REPLY_LINES {
                let mut line = Vec::new();
                (&mut self.reader)
                    .take(MAX_REPLY_LINE)
                    .read_until(b'\n', &mut line)
                    .await
                    .context("reading a reply")?;
                if line.is_empty() {
                    bail!("the server closed the connection");
                }
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                let code: u16 = line
                    .get(..3)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| anyhow!("not a reply: {line:?}"))?;
                if !text.is_empty() {
                    text.push_str(" / ");
                }
                text.push_str(line.get(4..).unwrap_or(""));
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(Reply { code, text });
                }
            }
            bail!("a reply of more than {MAX_REPLY_LINES} lines")
        };
        tokio::time::timeout(self.reply_timeout, read)
            .await
            .map_err(|_| anyhow!("waiting for a reply: timed out"))?
    }
}

/// How one message went, short of a lost connection.
enum Outcome {
    /// 250 after the data, with the accept latency and recipients accepted.
    Accepted(Duration, usize),
    /// Refused; the text names the command and the reply.
    Refused(String),
}

/// Sends message number `n` on `conn`: [RSET], MAIL, RCPT..., DATA, data.
async fn send_message(
    conn: &mut Conn,
    plan: &Plan,
    n: usize,
    result: &mut SessionResult,
) -> Result<Outcome> {
    let rcpts: Vec<&str> = (0..plan.rcpts_per_message)
        .map(|i| plan.recipients[(n * plan.rcpts_per_message + i) % plan.recipients.len()].as_str())
        .collect();
    let rset = std::mem::replace(&mut conn.used, true);
    let mail = format!("MAIL FROM:<{}>\r\n", plan.from);
    let rcpt_cmds: Vec<String> = rcpts.iter().map(|r| format!("RCPT TO:<{r}>\r\n")).collect();
    let mut refused = None;
    let mut accepted_rcpts = 0;
    let data_reply = if conn.pipelining {
        // RFC 2920 §3.1: RSET, MAIL, RCPT and DATA may share one write; the
        // replies come back in order.
        let mut batch = String::new();
        if rset {
            batch.push_str("RSET\r\n");
        }
        batch.push_str(&mail);
        for c in &rcpt_cmds {
            batch.push_str(c);
        }
        batch.push_str("DATA\r\n");
        conn.send(batch.as_bytes()).await?;
        if rset {
            let r = conn.reply().await?;
            if !r.is(2) {
                refused.get_or_insert(format!("RSET: {} {}", r.code, r.text));
            }
        }
        let r = conn.reply().await?;
        if !r.is(2) {
            refused.get_or_insert(format!("MAIL: {} {}", r.code, r.text));
        }
        for rcpt in &rcpts {
            let r = conn.reply().await?;
            if r.is(2) {
                accepted_rcpts += 1;
            } else {
                result.rcpt_rejected += 1;
                result.error(format!("RCPT <{rcpt}>: {} {}", r.code, r.text));
            }
        }
        conn.reply().await?
    } else {
        if rset {
            conn.send(b"RSET\r\n").await?;
            let r = conn.reply().await?;
            if !r.is(2) {
                return Ok(Outcome::Refused(format!("RSET: {} {}", r.code, r.text)));
            }
        }
        conn.send(mail.as_bytes()).await?;
        let r = conn.reply().await?;
        if !r.is(2) {
            return Ok(Outcome::Refused(format!("MAIL: {} {}", r.code, r.text)));
        }
        for (rcpt, cmd) in rcpts.iter().zip(&rcpt_cmds) {
            conn.send(cmd.as_bytes()).await?;
            let r = conn.reply().await?;
            if r.is(2) {
                accepted_rcpts += 1;
            } else {
                result.rcpt_rejected += 1;
                result.error(format!("RCPT <{rcpt}>: {} {}", r.code, r.text));
            }
        }
        if accepted_rcpts == 0 {
            return Ok(Outcome::Refused("no recipient accepted".into()));
        }
        conn.send(b"DATA\r\n").await?;
        conn.reply().await?
    };
    if data_reply.code != 354 {
        let why =
            refused.unwrap_or_else(|| format!("DATA: {} {}", data_reply.code, data_reply.text));
        return Ok(Outcome::Refused(why));
    }
    let body = message(plan, n, &rcpts);
    conn.send(&body).await?;
    // The clock runs from the end of data to the server's verdict.
    let sent = Instant::now();
    conn.send(b".\r\n").await?;
    let r = conn.reply().await?;
    let latency = sent.elapsed();
    if r.is(2) {
        Ok(Outcome::Accepted(latency, accepted_rcpts))
    } else {
        Ok(Outcome::Refused(format!(
            "end of data: {} {}",
            r.code, r.text
        )))
    }
}

/// Session `s`: messages s, s + C, s + 2C, ... on one connection.
async fn session(plan: Arc<Plan>, s: usize) -> SessionResult {
    let mut result = SessionResult::default();
    let mine: Vec<usize> = (s..plan.messages).step_by(plan.concurrency).collect();
    let mut conn: Option<Conn> = None;
    let mut reconnects = 0;
    for (i, &n) in mine.iter().enumerate() {
        if Instant::now() >= plan.deadline {
            result.failed += mine.len() - i;
            result.error(format!(
                "time limit reached; {} message(s) not sent",
                mine.len() - i
            ));
            break;
        }
        if conn.is_none() {
            match Conn::open(&plan).await {
                Ok(c) => {
                    result.pipelined |= c.pipelining;
                    conn = Some(c);
                }
                Err(e) => {
                    result.failed += 1;
                    result.error(format!("{e:#}"));
                    reconnects += 1;
                    if reconnects > MAX_RECONNECTS {
                        result.failed += mine.len() - i - 1;
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        match send_message(c, &plan, n, &mut result).await {
            Ok(Outcome::Accepted(latency, rcpts)) => {
                result.latencies.push(latency);
                result.delivered_rcpts += rcpts;
                result.last_accept = Some(Instant::now());
            }
            Ok(Outcome::Refused(why)) => {
                result.failed += 1;
                result.error(why);
            }
            Err(e) => {
                // The session is out of step or gone: start a new one.
                result.failed += 1;
                result.error(format!("{e:#}"));
                conn = None;
                reconnects += 1;
                if reconnects > MAX_RECONNECTS {
                    result.failed += mine.len() - i - 1;
                    break;
                }
            }
        }
    }
    if let Some(mut c) = conn {
        // A polite end; its answer does not matter.
        if c.send(b"QUIT\r\n").await.is_ok() {
            let _ = c.reply().await;
        }
    }
    result
}

/// Words for message bodies: varied text, as a real body is, so a server
/// that indexes bodies gets realistic work.
const WORDS: &[&str] = &[
    "the", "mail", "server", "delivers", "message", "to", "every", "mailbox", "of", "our",
    "domain", "quickly", "and", "safely", "after", "checking", "its", "envelope", "with", "care",
    "report", "meeting", "tomorrow", "budget", "invoice", "attached", "please", "review", "draft",
    "schedule", "project", "update", "thanks", "regards", "question", "answer", "weekly",
    "summary", "release", "notes", "customer", "order", "shipping", "status", "account",
    "password", "reset", "calendar", "invite", "agenda", "minutes", "follow", "up", "on", "this",
    "thread", "before", "friday", "lunch", "office", "travel", "plans", "holiday", "team",
];

/// Message `n`: distinct headers and body of about `plan.size` bytes, dot-stuffed
/// (RFC 5321 §4.5.2), without the final `.`.
fn message(plan: &Plan, n: usize, rcpts: &[&str]) -> Vec<u8> {
    let mut m = String::with_capacity(plan.size + 256);
    let _ = write!(
        m,
        "From: Load Generator <{from}>\r\nTo: {to}\r\nSubject: smtp-load message {n}\r\n\
         Message-ID: <{n}.{run}@load.example>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
        from = plan.from,
        to = rcpts.join(", "),
        run = plan.run_id,
    );
    if plan.body == Body::Repeat {
        let line = "The quick brown fox jumps over the lazy dog, again and again.\r\n";
        while m.len() + line.len() <= plan.size {
            m.push_str(line);
        }
        return m.into_bytes();
    }
    // xorshift64, seeded by the message number: each body differs.
    let mut x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut line = String::new();
    while m.len() + line.len() + 2 < plan.size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = WORDS[(x % WORDS.len() as u64) as usize];
        if line.len() + word.len() + 1 > 72 {
            m.push_str(&line);
            m.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        m.push_str(&line);
        m.push_str("\r\n");
    }
    if let Some(signer) = &plan.dkim {
        use mail_auth::common::headers::HeaderWriter;
        if let Ok(signature) = signer.sign(m.as_bytes()) {
            m.insert_str(0, &signature.to_header());
        }
    }
    // Dot-stuffing: no body line above starts with '.', but the rule is cheap.
    m.replace("\r\n.", "\r\n..").into_bytes()
}

/// The recipients: lines of a file (blank lines and `#` comments skipped),
/// or a comma-separated list.
fn recipients(arg: &str) -> Result<Vec<String>> {
    let list: Vec<String> = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg)
            .with_context(|| format!("reading {arg}"))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    } else {
        arg.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect()
    };
    if list.is_empty() {
        bail!("no recipients in {arg:?}");
    }
    Ok(list)
}

/// Files in every `new/` folder under `dir`.
fn count_maildir(dir: &Path, depth: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if !kind.is_dir() {
            continue;
        }
        let path = e.path();
        if e.file_name() == "new" {
            n += std::fs::read_dir(&path).map(|d| d.count()).unwrap_or(0);
        } else if depth < MAX_MAILDIR_DEPTH {
            n += count_maildir(&path, depth + 1);
        }
    }
    n
}

/// The Maildir wait's outcome.
struct Delivered {
    expect: usize,
    found: usize,
    /// From the first connection to the count reaching `expect`.
    elapsed: Option<Duration>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smtp-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the load and prints the report. Exit code 2 when a message failed
/// or the Maildirs did not fill in time, so scripts notice.
fn run(args: Args) -> Result<ExitCode> {
    if !args.server.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: only servers on this machine are loaded (127.0.0.0/8, ::1)",
            args.server
        );
    }
    if args.concurrency == 0 || args.rcpts_per_message == 0 {
        bail!("--concurrency and --rcpts-per-message must be at least 1");
    }
    let dkim = dkim_signer(&args)?;
    if args.dkim_keygen {
        return Ok(ExitCode::SUCCESS);
    }
    let recipients = recipients(&args.recipients)?;
    let baseline = args
        .wait_maildir
        .as_deref()
        .map(|d| count_maildir(d, 0))
        .unwrap_or(0);
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let plan = Arc::new(Plan {
        server: args.server,
        messages: args.messages,
        concurrency: args.concurrency.min(args.messages.max(1)),
        size: args.size,
        body: args.body,
        recipients,
        rcpts_per_message: args.rcpts_per_message,
        from: args.from.clone(),
        helo: args.helo.clone(),
        pipelining_allowed: !args.no_pipelining,
        reply_timeout: Duration::from_secs(args.reply_timeout),
        deadline: Instant::now() + Duration::from_secs(args.max_seconds),
        run_id: format!("{}.{}", std::process::id(), stamp.as_nanos()),
        dkim,
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let start = Instant::now();
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..plan.concurrency)
            .map(|s| tokio::spawn(session(plan.clone(), s)))
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.context("a session task failed")?);
        }
        anyhow::Ok(results)
    })?;
    let finished = Instant::now();
    drop(runtime);

    let mut latencies: Vec<Duration> = Vec::new();
    let (mut failed, mut rcpt_rejected, mut delivered_rcpts) = (0, 0, 0);
    let mut errors = Vec::new();
    let mut last_accept = None;
    let mut pipelined = false;
    for r in results {
        latencies.extend(r.latencies);
        failed += r.failed;
        rcpt_rejected += r.rcpt_rejected;
        delivered_rcpts += r.delivered_rcpts;
        pipelined |= r.pipelined;
        for e in r.errors {
            if errors.len() < MAX_ERRORS_KEPT {
                errors.push(e);
            }
        }
        last_accept = last_accept.max(r.last_accept);
    }
    latencies.sort();
    let accepted = latencies.len();
    let accept_wall = last_accept.map(|t| t - start).unwrap_or_default();
    let accept_rate = if accept_wall.is_zero() {
        0.0
    } else {
        accepted as f64 / accept_wall.as_secs_f64()
    };
    let (p50, p95, p99, max) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );

    let delivered = args.wait_maildir.as_deref().map(|dir| {
        let expect = args.expect.unwrap_or(delivered_rcpts);
        let limit = finished + Duration::from_secs(args.wait_timeout);
        let poll = Duration::from_millis(args.poll_ms.max(1));
        loop {
            let found = count_maildir(dir, 0).saturating_sub(baseline);
            let now = Instant::now();
            if found >= expect {
                break Delivered {
                    expect,
                    found,
                    elapsed: Some(now - start),
                };
            }
            if now >= limit {
                break Delivered {
                    expect,
                    found,
                    elapsed: None,
                };
            }
            std::thread::sleep(poll);
        }
    });

    if args.json {
        let mut j = String::from("{");
        let _ = write!(
            j,
            "\"server\": \"{}\", \"messages\": {}, \"concurrency\": {}, \"size\": {}, \
             \"rcpts_per_message\": {}, \"pipelining\": {pipelined}, \"accepted\": {accepted}, \
             \"failed\": {failed}, \"rcpt_rejected\": {rcpt_rejected}, \
             \"accept_wall_s\": {:.3}, \"wall_s\": {:.3}, \"accept_rate\": {accept_rate:.1}, \
             \"latency_p50_ms\": {p50:.2}, \"latency_p95_ms\": {p95:.2}, \
             \"latency_p99_ms\": {p99:.2}, \"latency_max_ms\": {max:.2}, \"errors\": [{}]",
            args.server,
            args.messages,
            plan.concurrency,
            args.size,
            args.rcpts_per_message,
            accept_wall.as_secs_f64(),
            (finished - start).as_secs_f64(),
            errors
                .iter()
                .map(|e| json_string(e))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if let Some(d) = &delivered {
            let (e2e_s, e2e_rate) = match d.elapsed {
                Some(t) => (t.as_secs_f64(), d.found as f64 / t.as_secs_f64()),
                None => (0.0, 0.0),
            };
            let _ = write!(
                j,
                ", \"maildir_expect\": {}, \"maildir_found\": {}, \"maildir_complete\": {}, \
                 \"e2e_s\": {e2e_s:.3}, \"e2e_rate\": {e2e_rate:.1}",
                d.expect,
                d.found,
                d.elapsed.is_some(),
            );
        }
        j.push('}');
        println!("{j}");
    } else {
        println!(
            "smtp-load: {} messages of ~{} bytes to {}, {} sessions, {} recipient(s) each{}",
            args.messages,
            args.size,
            args.server,
            plan.concurrency,
            args.rcpts_per_message,
            if pipelined { ", PIPELINING" } else { "" }
        );
        println!("accepted:  {accepted}");
        println!("failed:    {failed} (recipients refused: {rcpt_rejected})");
        for e in &errors {
            println!("  error:   {e}");
        }
        println!(
            "wall:      {:.3} s to the last 250 ({:.3} s with QUIT)",
            accept_wall.as_secs_f64(),
            (finished - start).as_secs_f64()
        );
        println!("rate:      {accept_rate:.0} msg/s accepted");
        println!(
            "latency:   p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (end of data to reply)"
        );
        if let Some(d) = &delivered {
            match d.elapsed {
                Some(t) => println!(
                    "delivered: {} files in new/ after {:.3} s: {:.0} msg/s end to end",
                    d.found,
                    t.as_secs_f64(),
                    d.found as f64 / t.as_secs_f64()
                ),
                None => println!(
                    "delivered: only {} of {} files in new/ after waiting {} s",
                    d.found, d.expect, args.wait_timeout
                ),
            }
        }
    }
    if failed > 0 || delivered.as_ref().is_some_and(|d| d.elapsed.is_none()) {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
