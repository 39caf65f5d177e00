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
