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
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    /// Seconds to wait for any one read or write
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

/// A connected POP3 session. Blocking sockets: one session, one command at
/// a time, so a thread waiting in read(2) is the cheapest client there is
/// (no event loop between the server's reply and the next command).
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    deadline: Instant,
    max_message_bytes: u64,
    line: Vec<u8>,
}

impl Conn {
    /// Connects and reads the greeting. Every read and write times out
    /// after `reply_timeout`; the session as a whole at `deadline`.
    fn open(args: &Args, deadline: Instant) -> Result<Conn> {
        let reply_timeout = Duration::from_secs(args.reply_timeout.max(1));
        let tcp = TcpStream::connect_timeout(&args.server, reply_timeout)
            .with_context(|| format!("connecting to {}", args.server))?;
        // Each command goes out at once, as an interactive client's would.
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(reply_timeout))?;
        tcp.set_write_timeout(Some(reply_timeout))?;
        let writer = tcp.try_clone().context("cloning the socket")?;
        let mut conn = Conn {
            reader: BufReader::with_capacity(READ_BUFFER, tcp),
            writer,
            deadline,
            max_message_bytes: args.max_message_bytes,
            line: Vec::with_capacity(512),
        };
        conn.status("greeting")?;
        Ok(conn)
    }

    fn check_deadline(&self, what: &str) -> Result<()> {
        if Instant::now() >= self.deadline {
            bail!("{what}: the session's time limit is reached");
        }
        Ok(())
    }

    /// Sends one command line (CRLF added) and reads its status line; an
    /// -ERR is an error naming the command.
    fn command(&mut self, cmd: &str, shown: &str) -> Result<String> {
        self.check_deadline(shown)?;
        let line = format!("{cmd}\r\n");
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| timed_out(e, shown, "writing"))?;
        self.status(shown)
    }

    /// Reads one status line: the text after +OK, or an error for -ERR.
    fn status(&mut self, what: &str) -> Result<String> {
        self.line.clear();
        (&mut self.reader)
            .take(MAX_STATUS_LINE)
            .read_until(b'\n', &mut self.line)
            .map_err(|e| timed_out(e, what, "reading a response"))?;
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\r', '\n']);
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
    fn multiline(&mut self, what: &str) -> Result<u64> {
        let mut total: u64 = 0;
        // How much of ".\r\n" the current line starts with; None once the
        // line is known to be something else.
        let mut matched: Option<usize> = Some(0);
        loop {
            self.check_deadline(what)?;
            let buf = self
                .reader
                .fill_buf()
                .map_err(|e| timed_out(e, what, "reading a response"))?;
            if buf.is_empty() {
                bail!("{what}: the server closed the connection inside a response");
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
            self.reader.consume(used);
            total += used as u64;
            if end.is_some() {
                return Ok(total - TERMINATOR.len() as u64);
            }
            if total > self.max_message_bytes {
                bail!(
                    "{what}: a response of more than {} bytes",
                    self.max_message_bytes
                );
            }
        }
    }
}

/// An I/O error, saying "timed out" for the socket timeouts.
fn timed_out(e: std::io::Error, what: &str, doing: &str) -> anyhow::Error {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => anyhow!("{what}: {doing}: timed out"),
        _ => anyhow!("{what}: {doing}: {e}"),
    }
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
fn login(args: &Args, deadline: Instant) -> Result<Conn> {
    let mut conn = Conn::open(args, deadline)?;
    conn.command(&format!("USER {}", args.user), "USER")?;
    conn.command(&format!("PASS {}", args.password), "PASS")?;
    Ok(conn)
}

fn session(args: &Args) -> Result<Report> {
    let mut r = Report::default();
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let start = Instant::now();
    let mut conn = login(args, deadline)?;
    let logged_in = Instant::now();
    r.login = logged_in - start;

    let (messages, octets) = parse_stat(&conn.command("STAT", "STAT")?)?;
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
        conn.command(&format!("RETR {n}"), "RETR")?;
        r.bytes += conn.multiline("RETR")?;
        r.retrieved += 1;
        conn.command(&format!("DELE {n}"), "DELE")?;
        r.deleted += 1;
    }
    let downloaded = Instant::now();
    r.download = downloaded - stat_done;

    conn.command("QUIT", "QUIT")?;
    let end = Instant::now();
    r.quit = end - downloaded;
    r.total = end - start;
    drop(conn);

    if args.verify_empty {
        let deadline = Instant::now() + Duration::from_secs(args.reply_timeout);
        let mut conn = login(args, deadline)?;
        let (left, _) = parse_stat(&conn.command("STAT", "STAT")?)?;
        r.left = Some(left);
        conn.command("QUIT", "QUIT")?;
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
    let r = session(&args)?;
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
