//! Connection admission under a flood (issue 10): connections that never log
//! in have their own share and a short idle timeout, a flooding address
//! displaces only its own connections, and logged-in users and clients from
//! fresh addresses are served throughout. Client addresses are played with
//! sources in 127.0.0.0/8, which all reach a loopback listener.

use crate::harness::TestDir;
use crate::imap::{addr, Imap, USER};
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn a_flood_of_connections_that_never_log_in_locks_nobody_out() {
    let t = TestDir::with_config(
        "[limits]\nmax_connections = 12\nmax_unauthenticated = 8\nmax_connections_per_ip = 50",
    );
    t.add_account(USER);
    let server = t.start();
    let imap = addr(&server, "imap");

    // A user logs in before the flood.
    let mut user = Imap::connect_from(imap, ip("127.0.0.2"));
    assert!(user.response().starts_with("* OK "));
    user.run(&format!("LOGIN {USER} secret")).ok();

    // The flood: one address fills the unauthenticated share and then some.
    let mut flood = Vec::new();
    for _ in 0..8 {
        let mut c = Imap::connect_from(imap, ip("127.0.0.66"));
        assert!(c.response().starts_with("* OK "));
        flood.push(c);
    }
    // More from the flooding address: the share is full and it holds the
    // most, so each newcomer from it displaces its own oldest, never another.
    let mut late = Imap::connect_from(imap, ip("127.0.0.66"));
    let greeting = late.response();
    assert!(greeting.starts_with("* BYE"), "{greeting:?}");

    // A client from a fresh address is served, in place of the flood's oldest.
    let mut fresh = Imap::connect_from(imap, ip("127.0.0.3"));
    let greeting = fresh.response();
    assert!(greeting.starts_with("* OK "), "{greeting:?}");
    fresh.run(&format!("LOGIN {USER} secret")).ok();
    assert!(
        flood[0].is_closed(),
        "the flood's oldest connection was evicted"
    );
    // The user logged in before the flood still works.
    user.run("NOOP").ok();
    fresh.run("SELECT INBOX").ok();
}

#[test]
fn a_connection_that_does_not_log_in_is_let_go_sooner() {
    let t = TestDir::with_config("[limits]\nlogin_timeout_secs = 1\nidle_timeout_secs = 300");
    t.add_account(USER);
    let server = t.start();
    let imap = addr(&server, "imap");
    let mut user = Imap::login(imap);
    let mut idle = Imap::connect(imap);
    // Say nothing: the server closes the one not logged in after a second.
    let bye = idle.response();
    assert!(bye.starts_with("* BYE"), "{bye:?}");
    assert!(idle.is_closed());
    // The logged-in one keeps the ordinary idle timeout.
    user.run("NOOP").ok();
}

/// The resident-set high-water mark of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// One hostile client: connects from `source`, then sends a command that
/// never ends (continuation lines with small literals), 4 KiB every 50 ms,
/// reconnecting whenever the server hangs up. The pace keeps the load
/// generator from taking the two cores of a test machine from the server;
/// every connection still reaches the server's bound within seconds.
async fn hostile(
    target: std::net::SocketAddr,
    source: IpAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    peak: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chunk = "a LOGIN {1+}\r\nx {1+}\r\nx ".repeat(170).into_bytes();
    while !stop.load(Relaxed) {
        let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
            continue;
        };
        if socket.bind(std::net::SocketAddr::new(source, 0)).is_err() {
            continue;
        }
        // Every step has a deadline: a connect storm overflows the listen
        // queue, and the kernel then drops handshakes the client believes
        // complete; such a connection never hears anything.
        let step = Duration::from_millis(500);
        let Ok(Ok(mut stream)) = tokio::time::timeout(step, socket.connect(target)).await else {
            continue;
        };
        let mut greeting = [0u8; 64];
        match tokio::time::timeout(step, stream.read(&mut greeting)).await {
            Ok(Ok(n)) if greeting[..n].starts_with(b"* OK") => {}
            _ => {
                // Refused (BYE): come back a little later, as a bot would.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let now = open.fetch_add(1, Relaxed) + 1;
        peak.fetch_max(now, Relaxed);
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

#[test]
fn a_thousand_hostile_connections_keep_the_server_small_and_serving() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let t = TestDir::new();
    t.add_account(USER);
    let server = t.start();
    let imap = addr(&server, "imap");
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, open, peak) = (stop.clone(), open.clone(), peak.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for i in 0..1000u32 {
                    // 20 addresses, 50 connections each: the per-address limit.
                    let source = IpAddr::from([127, 0, 1, (i / 50) as u8 + 1]);
                    tasks.push(tokio::spawn(hostile(
                        imap,
                        source,
                        stop.clone(),
                        open.clone(),
                        peak.clone(),
                    )));
                }
                for task in tasks {
                    let _ = task.await;
                }
            })
        })
    };
    // A real user works throughout: log in, open INBOX, log out.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    while rounds < 5 || started.elapsed() < Duration::from_secs(4) {
        let begun = Instant::now();
        let mut user = Imap::connect_from(imap, ip("127.0.0.2"));
        let greeting = user.response();
        assert!(greeting.starts_with("* OK "), "{greeting:?}");
        user.run(&format!("LOGIN {USER} secret")).ok();
        user.run("SELECT INBOX").ok();
        user.run("LOGOUT").ok();
        slowest = slowest.max(begun.elapsed());
        rounds += 1;
    }
    let rss = peak_rss(server.pid());
    stop.store(true, Relaxed);
    load.join().unwrap();
    eprintln!(
        "flood: {} hostile connections open at the peak, server peak RSS {} MiB, \
         slowest of {rounds} user sessions {slowest:?}",
        peak.load(Relaxed),
        rss >> 20
    );
    assert!(
        peak.load(Relaxed) >= 400,
        "the flood held {} connections at once; the test proves nothing",
        peak.load(Relaxed)
    );
    assert!(rss < 256 << 20, "server peak RSS {} MiB", rss >> 20);
}
