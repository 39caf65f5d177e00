//! `flood-bench`: an IMAP server under a pre-login flood (issue 10).
//!
//! `--hostile` connections (50 per source address, from 127.0.1.1 up) each
//! send a command that never ends — continuation lines with small
//! non-synchronising literals, 4 KiB every 50 ms — reconnecting whenever the
//! server hangs up. Meanwhile one user, from 127.0.0.2, loops over connect,
//! LOGIN, SELECT INBOX, LOGOUT. After `--seconds`, reported: the server's
//! peak resident set (VmHWM of `--pid`), the most hostile connections open
//! at once, and the user's sessions with p50, p99 and max latency (connect
//! to LOGOUT's completion) and how many failed.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_bench::percentile;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
#[command(about = "An IMAP server under a flood of pre-login connections")]
struct Args {
    /// The server's IMAP address (loopback)
    #[arg(long)]
    imap: SocketAddr,
    /// The server's process id, for its memory
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value = "bench@example.test")]
    user: String,
    #[arg(long, default_value = "bench-password-1")]
    password: String,
    /// Hostile connections (50 per source address)
    #[arg(long, default_value_t = 1000)]
    hostile: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

fn peak_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no VmHWM")?;
    Ok(kib * 1024)
}

async fn hostile(
    target: SocketAddr,
    source: IpAddr,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
) {
    let chunk = "a LOGIN {1+}\r\nx {1+}\r\nx ".repeat(170).into_bytes();
    let step = Duration::from_millis(500);
    while !stop.load(Relaxed) {
        let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
            continue;
        };
        if socket.bind(SocketAddr::new(source, 0)).is_err() {
            continue;
        }
        let Ok(Ok(mut stream)) = tokio::time::timeout(step, socket.connect(target)).await else {
            continue;
        };
        let mut greeting = [0u8; 64];
        match tokio::time::timeout(step, stream.read(&mut greeting)).await {
            Ok(Ok(n)) if greeting[..n].starts_with(b"* OK") => {}
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        peak.fetch_max(open.fetch_add(1, Relaxed) + 1, Relaxed);
        while !stop.load(Relaxed) {
            match tokio::time::timeout(step, stream.write_all(&chunk)).await {
                Ok(Ok(())) | Err(_) => {}
                Ok(Err(_)) => break,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        open.fetch_sub(1, Relaxed);
    }
}

/// One user session: connect, LOGIN, SELECT INBOX, LOGOUT.
async fn session(target: SocketAddr, user: &str, password: &str) -> Result<()> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new([127, 0, 0, 2].into(), 0))?;
    let stream = socket.connect(target).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = lines.next_line().await?.unwrap_or_default();
    if !greeting.starts_with("* OK") {
        bail!("greeting: {greeting}");
    }
    for (tag, command) in [
        ("a", format!("LOGIN {user} {password}")),
        ("b", "SELECT INBOX".to_string()),
        ("c", "LOGOUT".to_string()),
    ] {
        write
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        loop {
            let line = lines.next_line().await?.context("connection closed")?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                if !rest.starts_with("OK") {
                    bail!("{command}: {line}");
                }
                break;
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..args.hostile {
        let source = IpAddr::from([127, 0, 1, (i / 50) as u8 + 1]);
        tasks.push(tokio::spawn(hostile(
            args.imap,
            source,
            stop.clone(),
            open.clone(),
            peak.clone(),
        )));
    }
    // Let the flood build up before measuring the user.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failed = 0;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let begun = Instant::now();
        match tokio::time::timeout(
            Duration::from_secs(10),
            session(args.imap, &args.user, &args.password),
        )
        .await
        {
            Ok(Ok(())) => latencies.push(begun.elapsed()),
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("user session failed: {e}");
            }
            Err(_) => failed += 1,
        }
    }
    let rss = peak_rss(args.pid)?;
    stop.store(true, Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    latencies.sort();
    println!(
        "{{\"hostile\": {}, \"hostile_open_peak\": {}, \"server_peak_rss_mib\": {:.1}, \"user_sessions\": {}, \"user_failed\": {failed}, \"user_p50_ms\": {:.1}, \"user_p99_ms\": {:.1}, \"user_max_ms\": {:.1}}}",
        args.hostile,
        peak.load(Relaxed),
        rss as f64 / (1 << 20) as f64,
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    Ok(())
}
