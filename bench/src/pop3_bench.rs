//! `pop3-bench`: one POP3 session that downloads and deletes a whole
//! mailbox, timed, against any POP3 server on this machine.
//!
//! What a plain "download and leave nothing on the server" client does, one
//! command at a time (no PIPELINING): connect, USER and PASS, STAT, then for
//! each message RETR (read to the terminating `.` line, counting the bytes,
//! not un-stuffing them) and DELE, then QUIT, waiting for its +OK. QUIT is
//! when a server really removes the deleted messages (RFC 1939 §6, the
//! UPDATE state), so its time is part of the session's.
//!
//! What it reports: messages and octets (STAT), bytes received in the RETR
//! responses, the time of the whole session (from connecting to the QUIT
//! reply) and its parts: login (connect, greeting, USER, PASS), STAT,
//! downloads (every RETR and DELE) and QUIT (the update). With
//! `--verify-empty` it logs in again afterwards, untimed, and counts what
//! is left.
//!
//! It only talks to loopback addresses. Every loop is bounded: a timeout on
//! each reply, a time limit on the session, a most-messages limit and a
//! most-bytes limit per response.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Longest single-line response read: RFC 1939 §3 allows 512 octets; some
/// servers send longer texts, none this much.
const MAX_STATUS_LINE: u64 = 4096;
/// The reader's buffer: large reads for large messages.
const READ_BUFFER: usize = 64 * 1024;
/// The multi-line terminator, at the start of a line (RFC 1939 §3).
const TERMINATOR: &[u8; 3] = b".\r\n";

#[derive(Parser)]
#[command(
    name = "pop3-bench",
    about = "Times one POP3 session that downloads (RETR) and deletes (DELE) every message, then QUITs"
)]
struct Args {
    /// The server, e.g. 127.0.0.1:11110 (loopback only)
    #[arg(long)]
    server: SocketAddr,
    /// The user name sent with USER
    #[arg(long)]
    user: String,
    /// The password sent with PASS
    #[arg(long)]
    password: String,
    /// Fail (exit 2) unless STAT reports exactly this many messages
    #[arg(long, value_name = "N")]
    expect: Option<usize>,
    /// Most messages to download; STAT reporting more is an error
    #[arg(long, default_value_t = 1_000_000)]
    max_messages: usize,
    /// Most bytes in one RETR response
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    max_message_bytes: u64,
    /// Seconds to wait for any one response
    #[arg(long, default_value_t = 60)]
    reply_timeout: u64,
    /// Seconds the whole session may take
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// Afterwards, log in again (untimed) and check that STAT reports 0
    #[arg(long)]
    verify_empty: bool,
    /// Print the results as one JSON object
    #[arg(long)]
    json: bool,
}

/// A connected POP3 session.
struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    reply_timeout: Duration,
    deadline: Instant,
    max_message_bytes: u64,
    line: Vec<u8>,
}

impl Conn {
    /// Connects and reads the greeting.
    async fn open(server: SocketAddr, reply_timeout: Duration, deadline: Instant) -> Result<Conn> {
        let tcp = tokio::time::timeout(reply_timeout, TcpStream::connect(server))
            .await
            .map_err(|_| anyhow!("connecting to {server}: timed out"))?
            .with_context(|| format!("connecting to {server}"))?;
        // Each command goes out at once, as an interactive client's would.
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        let mut conn = Conn {
            reader: BufReader::with_capacity(READ_BUFFER, r),
            writer: w,
            reply_timeout,
            deadline,
            max_message_bytes: 0,
            line: Vec::with_capacity(512),
        };
        conn.status("greeting").await?;
        Ok(conn)
    }

    /// How long the next read may take: the reply timeout, or less near
    /// the session's deadline.
    fn limit(&self, what: &str) -> Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{what}: the session's time limit is reached");
        }
        Ok(self.reply_timeout.min(left))
    }

    /// Sends one command line (CRLF added) and reads its status line; an
    /// -ERR is an error naming the command.
    async fn command(&mut self, cmd: &str, shown: &str) -> Result<String> {
        let line = format!("{cmd}\r\n");
        let w = &mut self.writer;
        let write = async { w.write_all(line.as_bytes()).await.context("writing") };
        tokio::time::timeout(self.reply_timeout, write)
            .await
            .map_err(|_| anyhow!("{shown}: writing timed out"))??;
        self.status(shown).await
    }

    /// Reads one status line: the text after +OK, or an error for -ERR.
    async fn status(&mut self, what: &str) -> Result<String> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let limit = self.limit(what)?;
        let reader = &mut self.reader;
        let read = async {
            reader
                .take(MAX_STATUS_LINE)
                .read_until(b'\n', &mut line)
                .await
                .context("reading a response")?;
            anyhow::Ok(())
        };
        let res = bounded(what, limit, read).await;
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        self.line = line;
        res?;
        if text.is_empty() {
            bail!("{what}: the server closed the connection");
        }
        if let Some(rest) = text.strip_prefix("+OK") {
            return Ok(rest.trim_start().to_string());
        }
        bail!("{what}: {text}")
    }

    /// Reads a multi-line response's body up to and including its
    /// terminating `.` line; returns the bytes before that line, as sent
    /// (dot-stuffed, CRLFs included).
    async fn multiline(&mut self, what: &str) -> Result<u64> {
        let max = self.max_message_bytes;
        let limit = self.limit(what)?;
        let reader = &mut self.reader;
        let read = async {
            let mut total: u64 = 0;
            // How much of ".\r\n" the current line starts with; None once
            // the line is known to be something else.
            let mut matched: Option<usize> = Some(0);
            loop {
                let buf = reader.fill_buf().await.context("reading a response")?;
                if buf.is_empty() {
                    bail!("the server closed the connection inside a response");
                }
                let mut i = 0;
                let mut end = None;
                while i < buf.len() {
                    match matched {
                        None => match buf[i..].iter().position(|&b| b == b'\n') {
                            Some(p) => {
                                i += p + 1;
                                matched = Some(0);
                            }
                            None => i = buf.len(),
                        },
                        Some(k) => {
                            let b = buf[i];
                            i += 1;
                            if b == TERMINATOR[k] {
                                if k + 1 == TERMINATOR.len() {
                                    end = Some(i);
                                    break;
                                }
                                matched = Some(k + 1);
                            } else if b == b'\n' {
                                matched = Some(0);
                            } else {
                                matched = None;
                            }
                        }
                    }
                }
                let used = end.unwrap_or(buf.len());
                reader.consume(used);
                total += used as u64;
                if end.is_some() {
                    return Ok(total - TERMINATOR.len() as u64);
                }
                if total > max {
                    bail!("a response of more than {max} bytes");
                }
            }
        };
        bounded(what, limit, read).await
    }
}

/// Runs `f` for at most `limit`.
async fn bounded<T>(what: &str, limit: Duration, f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| anyhow!("{what}: timed out"))?
}

/// What one session measured.
#[derive(Default)]
struct Report {
    messages: usize,
    octets: u64,
    retrieved: usize,
    deleted: usize,
    bytes: u64,
    login: Duration,
    stat: Duration,
    download: Duration,
    quit: Duration,
    total: Duration,
    /// Messages STAT reported on a second login, with --verify-empty.
    left: Option<usize>,
}

/// "+OK n m" after STAT: (messages, octets).
fn parse_stat(text: &str) -> Result<(usize, u64)> {
    let mut it = text.split_ascii_whitespace();
    let n = it.next().and_then(|s| s.parse().ok());
    let m = it.next().and_then(|s| s.parse().ok());
    match (n, m) {
        (Some(n), Some(m)) => Ok((n, m)),
        _ => bail!("STAT: not a drop listing: {text:?}"),
    }
}

/// Connect, USER, PASS: a session in the TRANSACTION state.
async fn login(args: &Args, deadline: Instant) -> Result<Conn> {
    let mut conn = Conn::open(
        args.server,
        Duration::from_secs(args.reply_timeout),
        deadline,
    )
    .await?;
    conn.max_message_bytes = args.max_message_bytes;
    conn.command(&format!("USER {}", args.user), "USER").await?;
    conn.command(&format!("PASS {}", args.password), "PASS")
        .await?;
    Ok(conn)
}

async fn session(args: &Args) -> Result<Report> {
    let mut r = Report::default();
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let start = Instant::now();
    let mut conn = login(args, deadline).await?;
    let logged_in = Instant::now();
    r.login = logged_in - start;

    let (messages, octets) = parse_stat(&conn.command("STAT", "STAT").await?)?;
    r.messages = messages;
    r.octets = octets;
    let stat_done = Instant::now();
    r.stat = stat_done - logged_in;
    if messages > args.max_messages {
        bail!(
            "STAT reports {messages} messages, more than --max-messages {}",
            args.max_messages
        );
    }

    for n in 1..=messages {
        conn.command(&format!("RETR {n}"), "RETR").await?;
        r.bytes += conn.multiline("RETR").await?;
        r.retrieved += 1;
        conn.command(&format!("DELE {n}"), "DELE").await?;
        r.deleted += 1;
    }
    let downloaded = Instant::now();
    r.download = downloaded - stat_done;

    conn.command("QUIT", "QUIT").await?;
    let end = Instant::now();
    r.quit = end - downloaded;
    r.total = end - start;
    drop(conn);

    if args.verify_empty {
        let deadline = Instant::now() + Duration::from_secs(args.reply_timeout);
        let mut conn = login(args, deadline).await?;
        let (left, _) = parse_stat(&conn.command("STAT", "STAT").await?)?;
        r.left = Some(left);
        conn.command("QUIT", "QUIT").await?;
    }
    Ok(r)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pop3-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the session and prints the report. Exit code 2 when STAT did not
/// match --expect or messages were left behind, so scripts notice.
fn run(args: Args) -> Result<ExitCode> {
    if !args.server.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: only servers on this machine are measured (127.0.0.0/8, ::1)",
            args.server
        );
    }
    // One session, one command at a time: one thread is all it needs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let r = runtime.block_on(session(&args))?;
    let secs = |d: Duration| d.as_secs_f64();

    if args.json {
        let mut j = String::from("{");
        let _ = write!(
            j,
            "\"server\": \"{}\", \"messages\": {}, \"octets\": {}, \"retrieved\": {}, \
             \"deleted\": {}, \"bytes\": {}, \"total_s\": {:.4}, \"login_s\": {:.4}, \
             \"stat_s\": {:.4}, \"download_s\": {:.4}, \"quit_s\": {:.4}",
            args.server,
            r.messages,
            r.octets,
            r.retrieved,
            r.deleted,
            r.bytes,
            secs(r.total),
            secs(r.login),
            secs(r.stat),
            secs(r.download),
            secs(r.quit),
        );
        if let Some(left) = r.left {
            let _ = write!(j, ", \"left\": {left}");
        }
        j.push('}');
        println!("{j}");
    } else {
        println!(
            "pop3-bench: {} as {}: {} messages, {} octets (STAT)",
            args.server, args.user, r.messages, r.octets
        );
        println!(
            "retrieved: {} messages, {} bytes; deleted: {}",
            r.retrieved, r.bytes, r.deleted
        );
        println!(
            "session:   {:.3} s from connecting to the QUIT reply",
            secs(r.total)
        );
        println!(
            "  login {:.3} s, STAT {:.3} s, RETR+DELE {:.3} s ({:.3} ms per message), QUIT {:.3} s",
            secs(r.login),
            secs(r.stat),
            secs(r.download),
            if r.messages > 0 {
                secs(r.download) * 1000.0 / r.messages as f64
            } else {
                0.0
            },
            secs(r.quit),
        );
        if let Some(left) = r.left {
            println!("left:      {left} messages on logging in again");
        }
    }
    let expected = args.expect.is_none_or(|n| n == r.messages);
    if !expected || r.left.is_some_and(|n| n > 0) {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
