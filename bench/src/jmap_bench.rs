//! `jmap-bench`: JMAP on a large mailbox (issue 14) — the message list a
//! client shows (`Email/query` newest 50 in INBOX plus `Email/get` of
//! them with subject, from, date and preview, in one request), the same
//! with a text filter, and push: from SMTP's 250 to the EventSource
//! `state` event. Server time as the client sees it on loopback, p50 and
//! p99.
//!
//! Two steps, so the server can start between them:
//! `jmap-bench fill --db DATA/tern.db --account ADDR --messages N` puts N
//! messages of real prose in the account's INBOX (fsync off), and
//! `jmap-bench measure --http ADDR --smtp ADDR --user U --password P`
//! measures against `tern serve`.
//!
//! For the comparison with IMAP (bench/compare-jmap-imap.sh):
//! `jmap-bench maildir --dir MAILDIR --messages N` writes the same N
//! messages, with the same arrival times, as a Maildir for Dovecot, and
//! `jmap-bench imap --imap ADDR --user U --password P` measures what an
//! IMAP client does for the same screens: `UID SORT (REVERSE ARRIVAL)`
//! (all, or with `TEXT`), then `UID FETCH` of the first 50 with
//! `ENVELOPE` and `FLAGS`.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_bench::{mail_corpus, percentile, substring_needles};
use tern_store::prelude::*;
use tern_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tern_store::{Delivery, DeliveryTarget};

#[derive(Parser)]
#[command(about = "JMAP list, text search and push on a large mailbox")]
struct Args {
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Fill an account's INBOX (the server must not be running)
    Fill {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        account: String,
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
    },
    /// Measure against the running server
    Measure {
        #[arg(long)]
        http: SocketAddr,
        #[arg(long)]
        smtp: SocketAddr,
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        /// Requests per case
        #[arg(long, default_value_t = 200)]
        iterations: usize,
    },
    /// Write the same messages as a Maildir (for Dovecot)
    Maildir {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
    },
    /// Measure the IMAP equivalent against any IMAP server
    Imap {
        #[arg(long)]
        imap: SocketAddr,
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        /// Lists measured
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Text searches measured (a server without a full-text index
        /// reads every message for each)
        #[arg(long, default_value_t = 200)]
        text_iterations: usize,
    },
}

fn main() -> Result<()> {
    match Args::parse().step {
        Step::Fill {
            db,
            account,
            messages,
        } => fill(db, &account, messages),
        Step::Measure {
            http,
            smtp,
            user,
            password,
            iterations,
        } => measure(http, smtp, &user, &password, iterations),
        Step::Maildir { dir, messages } => maildir(dir, messages),
        Step::Imap {
            imap,
            user,
            password,
            iterations,
            text_iterations,
        } => measure_imap(imap, &user, &password, iterations, text_iterations),
    }
}

/// The arrival time of message `i`, as `fill` gives it.
fn arrival(i: usize) -> i64 {
    1_780_000_000 + (i as i64) * 60
}

fn maildir(dir: PathBuf, n: usize) -> Result<()> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let started = Instant::now();
    for (i, m) in mail_corpus(n)?.iter().enumerate() {
        // Maildir files have LF line ends; S= is their size, W= with CRLF.
        let lf = m.replace("\r\n", "\n");
        let crlf = lf.len() + lf.matches('\n').count();
        let at = arrival(i);
        let path = dir.join("cur").join(format!(
            "{at}.M{i}P1.bench.local,S={},W={crlf}:2,",
            lf.len()
        ));
        std::fs::write(&path, &lf)?;
        // Dovecot takes a Maildir message's arrival from its mtime.
        let when = std::time::UNIX_EPOCH + Duration::from_secs(at as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(when)?;
    }
    eprintln!("wrote {n} messages in {:.0?}", started.elapsed());
    Ok(())
}

/// A plain IMAP client: commands in, everything up to the tagged reply out.
struct Imap {
    stream: BufReader<TcpStream>,
    tag: u32,
}

impl Imap {
    fn connect(addr: SocketAddr) -> Result<Imap> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        let mut imap = Imap {
            stream: BufReader::new(stream),
            tag: 0,
        };
        let mut greeting = String::new();
        imap.stream.read_line(&mut greeting)?;
        Ok(imap)
    }

    /// Sends `command` (its literals already in it, as LITERAL+ allows)
    /// and reads through the tagged reply, which must be OK.
    fn run(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.stream.get_mut().write_all(&line)?;
        let mut out = Vec::new();
        loop {
            let mut l = Vec::new();
            if self.stream.read_until(b'\n', &mut l)? == 0 {
                bail!("the IMAP server closed the connection");
            }
            let done = l.starts_with(tag.as_bytes()) && l.get(tag.len()) == Some(&b' ');
            // A literal follows a line that ends in {n}.
            if let Some(n) = literal_length(&l) {
                let mut data = vec![0u8; n];
                self.stream.read_exact(&mut data)?;
                out.extend_from_slice(&l);
                out.extend_from_slice(&data);
                continue;
            }
            out.extend_from_slice(&l);
            if done {
                let text = String::from_utf8_lossy(&l);
                if !text[tag.len() + 1..].starts_with("OK") {
                    bail!("{}", text.trim_end());
                }
                return Ok(out);
            }
        }
    }
}

fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = line.get(open + 1..line.len().checked_sub(1)?)?;
    if line.last() != Some(&b'}') {
        return None;
    }
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// The UIDs of `* SORT` lines.
fn sorted_uids(response: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(response)
        .lines()
        .filter_map(|l| l.strip_prefix("* SORT"))
        .flat_map(|l| {
            l.split_ascii_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// One screen: the sort, then the first 50 fetched.
fn imap_screen(imap: &mut Imap, criteria: &[u8]) -> Result<usize> {
    let mut sort = b"UID SORT (REVERSE ARRIVAL) UTF-8 ".to_vec();
    sort.extend_from_slice(criteria);
    let uids = sorted_uids(&imap.run(&sort)?);
    let first: Vec<String> = uids.iter().take(50).map(u32::to_string).collect();
    if !first.is_empty() {
        imap.run(format!("UID FETCH {} (UID FLAGS ENVELOPE)", first.join(",")).as_bytes())?;
    }
    Ok(uids.len())
}

fn measure_imap(
    addr: SocketAddr,
    user: &str,
    password: &str,
    n: usize,
    text_n: usize,
) -> Result<()> {
    let mut imap = Imap::connect(addr)?;
    imap.run(format!("LOGIN \"{user}\" \"{password}\"").as_bytes())?;
    imap.run(b"SELECT INBOX")?;
    // Untimed: the server may build its indexes on the first sort.
    let all = imap_screen(&mut imap, b"ALL")?;
    if all == 0 {
        bail!("the INBOX is empty");
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        imap_screen(&mut imap, b"ALL")?;
        times.push(t.elapsed());
    }
    report(
        "list (UID SORT REVERSE ARRIVAL + UID FETCH 50 ENVELOPE)",
        &mut times,
    );
    let corpus = mail_corpus(2_000)?;
    let needles = substring_needles(&corpus, text_n);
    let mut times = Vec::with_capacity(text_n);
    for needle in needles.iter().take(text_n) {
        let mut criteria = format!("TEXT {{{}+}}\r\n", needle.len()).into_bytes();
        criteria.extend_from_slice(needle.as_bytes());
        let t = Instant::now();
        imap_screen(&mut imap, &criteria)?;
        times.push(t.elapsed());
    }
    report(
        "text search (UID SORT TEXT + UID FETCH 50 ENVELOPE)",
        &mut times,
    );
    imap.run(b"LOGOUT").ok();
    Ok(())
}

fn fill(db: PathBuf, address: &str, n: usize) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let options = SqliteOptions {
            durability: Durability::Off,
            ..Default::default()
        };
        let store = Arc::new(SqliteStore::open(&db, options)?);
        let account = store
            .account_by_address(address)
            .await?
            .context("no such account")?;
        let messages = mail_corpus(n)?;
        let started = Instant::now();
        for (c, chunk) in messages.chunks(64).enumerate() {
            let mut tasks = Vec::new();
            for (i, m) in chunk.iter().enumerate() {
                let store = store.clone();
                let raw = m.clone().into_bytes();
                let at = arrival(c * 64 + i);
                tasks.push(tokio::spawn(async move {
                    store
                        .deliver(Delivery {
                            message: raw.into(),
                            recipients: vec![DeliveryTarget::inbox(account.id)],
                            received_at: at,
                        })
                        .await
                }));
            }
            for t in tasks {
                t.await??;
            }
        }
        store.close().await?;
        eprintln!("filled {n} messages in {:.0?}", started.elapsed());
        anyhow::Ok(())
    })
}

/// A keep-alive HTTP/1.1 client for one kind of request.
struct Http {
    stream: BufReader<TcpStream>,
    auth: String,
}

impl Http {
    fn connect(addr: SocketAddr, user: &str, password: &str) -> Result<Http> {
        use base64::Engine;
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(Http {
            stream: BufReader::new(stream),
            auth,
        })
    }

    /// POSTs `body` to the API; the response body.
    fn api(&mut self, body: &str) -> Result<String> {
        let request = format!(
            "POST /jmap/api HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.auth,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes())?;
        let mut status = String::new();
        self.stream.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 200") {
            bail!("API answered {status}");
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse()?;
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body)?;
        Ok(String::from_utf8(body)?)
    }
}

fn list_request(extra_filter: &str) -> String {
    format!(
        r##"{{"using":["urn:ietf:params:jmap:core","urn:ietf:params:jmap:mail"],"methodCalls":[
        ["Email/query",{{"accountId":"a1","filter":{{"inMailbox":"M1"{extra_filter}}},
          "sort":[{{"property":"receivedAt","isAscending":false}}],"limit":50}},"q"],
        ["Email/get",{{"accountId":"a1","#ids":{{"resultOf":"q","name":"Email/query","path":"/ids"}},
          "properties":["subject","from","receivedAt","preview","keywords"]}},"g"]]}}"##
    )
}

fn report(name: &str, times: &mut [Duration]) {
    times.sort();
    println!(
        "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        times.len(),
        percentile(times, 0.50),
        percentile(times, 0.99),
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
}

fn measure(http: SocketAddr, smtp: SocketAddr, user: &str, password: &str, n: usize) -> Result<()> {
    let mut client = Http::connect(http, user, password)?;
    // The INBOX is M1 in a fresh data directory; check it holds the mail.
    let first = client.api(&list_request(""))?;
    if !first.contains("\"list\":[{") {
        bail!("the list came back empty: {first}");
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        client.api(&list_request(""))?;
        times.push(t.elapsed());
    }
    report("list (Email/query newest 50 + Email/get)", &mut times);

    let corpus = mail_corpus(2_000)?;
    let needles = substring_needles(&corpus, n);
    let mut times = Vec::with_capacity(n);
    for needle in needles.iter().take(n) {
        let filter = format!(",\"text\":{}", serde_json::Value::String(needle.clone()));
        let t = Instant::now();
        client.api(&list_request(&filter))?;
        times.push(t.elapsed());
    }
    report("text search (Email/query text + Email/get)", &mut times);

    let mut times = Vec::with_capacity(n.min(100));
    let events = TcpStream::connect(http)?;
    events.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut events = BufReader::new(events);
    write!(
        events.get_mut(),
        "GET /jmap/eventsource?types=Email&closeafter=no&ping=0 HTTP/1.1\r\nHost: bench\r\n\
         Authorization: Basic {}\r\n\r\n",
        client.auth
    )?;
    next_state(&mut events)?; // the current state
    let mut smtp_conn = Smtp::connect(smtp)?;
    for i in 0..n.min(100) {
        let accepted = smtp_conn.send(user, &format!("Subject: push {i}\r\n\r\nping\r\n"))?;
        next_state(&mut events)?;
        times.push(accepted.elapsed());
    }
    report("push (SMTP 250 -> EventSource state)", &mut times);
    Ok(())
}

/// Reads the event stream until the next `state` event; when the 250 was
/// read, the clock started.
fn next_state(events: &mut BufReader<TcpStream>) -> Result<()> {
    loop {
        let mut line = String::new();
        if events.read_line(&mut line)? == 0 {
            bail!("the event stream ended");
        }
        if line.starts_with("event: state") {
            return Ok(());
        }
    }
}

struct Smtp {
    stream: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> Result<Smtp> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut s = Smtp {
            stream: BufReader::new(stream),
        };
        s.reply()?;
        s.command("EHLO bench.local\r\n")?;
        Ok(s)
    }

    fn reply(&mut self) -> Result<String> {
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line)? == 0 {
                bail!("SMTP connection closed");
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(line);
            }
        }
    }

    fn command(&mut self, text: &str) -> Result<String> {
        self.stream.get_mut().write_all(text.as_bytes())?;
        self.reply()
    }

    /// Sends one message; the instant its 250 arrived.
    fn send(&mut self, to: &str, message: &str) -> Result<Instant> {
        self.command("MAIL FROM:<bench@remote.test>\r\n")?;
        self.command(&format!("RCPT TO:<{to}>\r\n"))?;
        self.command("DATA\r\n")?;
        let reply = self.command(&format!("{message}.\r\n"))?;
        let at = Instant::now();
        if !reply.starts_with("250") {
            bail!("DATA answered {reply}");
        }
        Ok(at)
    }
}
