//! Limits that protect the server from one client: connections per address,
//! idle sessions, and password guessing.

use super::*;

#[test]
fn connections_past_the_per_address_limit_get_421() {
    let t = two_accounts("[limits]\nmax_connections_per_ip = 2");
    let server = t.start();
    let a = addr(&server, "smtp");
    let mut first = Smtp::connect(a);
    let _second = Smtp::connect(a);
    let mut third = TcpStream::connect(a)
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let reader = BufReader::new(s.try_clone().unwrap());
            Smtp { stream: s, reader }
        })
        .unwrap();
    third.reply().is(421, "4.7.0");
    assert!(third.is_closed());
    // The admitted sessions are unaffected, and a slot frees on QUIT.
    first.cmd("NOOP").is(250, "2.0.0");
    first.cmd("QUIT").is(221, "2.0.0");
    drop(first);
    // The place is freed at QUIT, before the socket closes: reconnecting at
    // once is admitted.
    let mut again = Smtp::connect(a);
    again.cmd("EHLO client.test").is(250, "");
}

#[test]
fn an_idle_session_is_closed_with_421() {
    let t = two_accounts("[limits]\nidle_timeout_secs = 1");
    let server = t.start();
    let mut s = Smtp::ehlo(addr(&server, "smtp"), "idle.test");
    // Say nothing: the server speaks first, after its idle timeout.
    s.reply().is(421, "4.4.2");
    assert!(s.is_closed());
}

#[test]
fn repeated_failed_logins_are_refused_for_a_while_even_with_the_right_password() {
    let t = two_accounts("[limits]\nmax_auth_failures = 2\nauth_failure_window_secs = 300");
    let server = t.start();
    let mut s = Smtp::ehlo(addr(&server, "submission"), "guess.test");
    let plain = |user: &str, pass: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
    };
    s.cmd(&format!(
        "AUTH PLAIN {}",
        plain("bob@example.test", "wrong1")
    ))
    .is(535, "5.7.8");
    s.cmd(&format!(
        "AUTH PLAIN {}",
        plain("bob@example.test", "wrong2")
    ))
    .is(535, "5.7.8");
    let limited = s.cmd(&format!(
        "AUTH PLAIN {}",
        plain("bob@example.test", "secret")
    ));
    limited.is(454, "4.7.0");
    // The session itself goes on.
    s.cmd("NOOP").is(250, "2.0.0");
}

#[test]
fn many_parallel_logins_with_the_right_password_all_get_in() {
    // Five clients behind one address (or one client opening several
    // connections) log in at once: the limit holds back guesses, not them.
    let t = two_accounts("[limits]\nmax_auth_failures = 2\nauth_failure_window_secs = 300");
    let server = t.start();
    let plain = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("\0bob@example.test\0secret")
    };
    let mut sessions: Vec<Smtp> = (0..6)
        .map(|_| Smtp::ehlo(addr(&server, "submission"), "office.test"))
        .collect();
    for s in &mut sessions {
        s.send(format!("AUTH PLAIN {plain}\r\n"));
    }
    for s in &mut sessions {
        s.reply().is(235, "2.7.0");
    }
}

/// The resident set of process `pid` now, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn large_messages_in_transfer_are_spooled_to_disk_not_held_in_memory() {
    const SESSIONS: usize = 20;
    const LINE: &[u8] =
        b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    const LINES: usize = 8 << 20 >> 6; // about 9 MiB per message
    let t = two_accounts("");
    let server = t.start();
    let a = addr(&server, "smtp");
    let before = rss(server.pid());
    let all_sent = std::sync::Arc::new(std::sync::Barrier::new(SESSIONS + 1));
    let measured = std::sync::Arc::new(std::sync::Barrier::new(SESSIONS + 1));
    let senders: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let (all_sent, measured) = (all_sent.clone(), measured.clone());
            std::thread::spawn(move || {
                let mut smtp = Smtp::ehlo(a, "big.client.test");
                smtp.cmd("MAIL FROM:<sender@remote.test>").is(250, "2.1.0");
                smtp.cmd("RCPT TO:<bob@example.test>").is(250, "2.1.5");
                smtp.cmd("DATA").is(354, "");
                smtp.send(format!("Subject: big {i}\r\n\r\n"));
                let block: Vec<u8> = LINE.repeat(1024);
                for _ in 0..LINES / 1024 {
                    smtp.send(&block);
                }
                all_sent.wait();
                measured.wait();
                smtp.send(".\r\n");
                smtp.reply().is(250, "2.0.0");
            })
        })
        .collect();
    all_sent.wait();
    // Every body is on its way in, none is complete: what do they cost?
    // The last bytes sent may still be in socket buffers; the bulk is read.
    let during = rss(server.pid());
    measured.wait();
    for s in senders {
        s.join().unwrap();
    }
    let body_bytes = (LINES * LINE.len()) as u64;
    eprintln!(
        "spool: {SESSIONS} sessions × {} MiB in transfer: server RSS {} MiB before, {} MiB during",
        body_bytes >> 20,
        before >> 20,
        during >> 20
    );
    assert!(
        during.saturating_sub(before) < 64 << 20,
        "{SESSIONS} transfers of {} MiB grew the server by {} MiB",
        body_bytes >> 20,
        during.saturating_sub(before) >> 20
    );
    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), SESSIONS);
    for m in &inbox {
        assert!(m.raw.len() as u64 > body_bytes, "{}", m.raw.len());
        assert!(m.raw.ends_with(LINE));
    }
}
