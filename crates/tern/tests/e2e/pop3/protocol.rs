//! The protocol's edges over raw TCP: bad commands and their limits
//! (RFC 1939 §3), no APOP, response codes (RFC 2449 §8, RFC 3206), the
//! failed-login limiter, CAPA and LOGIN-DELAY (RFC 2449 §5, §6.8), SASL
//! PLAIN (RFC 5034), PIPELINING (RFC 2449 §6.6) and STLS (RFC 2595 §4).

use super::*;

#[test]
fn bad_commands_get_clear_errors_and_the_session_goes_on() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a"]);
    let mut pop = Pop3::connect(addr(&server, "pop3"));

    // Before login (each of these counts towards the 10 allowed errors).
    assert_eq!(
        pop.err("STAT"),
        "-ERR not logged in: USER and PASS, or AUTH, first"
    );
    assert_eq!(pop.err("PASS secret"), "-ERR USER first");
    assert_eq!(pop.err("XYZZY"), "-ERR unknown command");
    // APOP (RFC 1939 §7) is not offered: the greeting has no timestamp
    // banner and the command is unknown.
    assert!(!pop.greeting.contains('<'), "{}", pop.greeting);
    assert_eq!(
        pop.err("APOP bob@example.test c4c9334bac560ecc979e58001b3e22fb"),
        "-ERR unknown command"
    );
    pop.ok("USER bob@example.test");
    assert_eq!(
        pop.err("PASS wrong"),
        "-ERR [AUTH] invalid user name or password"
    );
    // An unknown user gets the very same answer (RFC 1939 §13).
    pop.ok("USER nobody@example.test");
    assert_eq!(
        pop.err("PASS secret"),
        "-ERR [AUTH] invalid user name or password"
    );
    // A line far past the limit is swallowed whole and refused.
    let long = format!("NOOP {}\r\n", "x".repeat(100_000));
    pop.send(long);
    assert_eq!(pop.line(), "-ERR line too long");
    let capa = pop.multi("CAPA");
    assert!(!capa.iter().any(|c| c.contains("APOP")), "{capa:?}");
    pop.ok("NOOP");

    // After login: 7 errors so far.
    pop.ok("USER bob@example.test");
    assert!(pop
        .ok("PASS secret")
        .starts_with("+OK maildrop has 1 messages"));
    assert_eq!(pop.err("RETR 999"), "-ERR no message 999");
    assert_eq!(pop.err("DELE 0"), "-ERR invalid message number");
    assert_eq!(pop.ok("STAT").split(' ').nth(1), Some("1"));
    pop.ok("RETR 1");
    assert!(pop.lines().contains(&"Subject: a".to_string()));
    assert!(pop
        .ok("QUIT")
        .starts_with("+OK mail.example.test signing off"));
    assert!(pop.is_closed());

    // More errors, on a fresh session: the server closes after the tenth.
    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    assert_eq!(pop.err("LIST 5"), "-ERR no message 5");
    assert_eq!(pop.err("RETR x"), "-ERR invalid message number");
    assert_eq!(
        pop.err("TOP 1"),
        "-ERR TOP needs a message number and a line count"
    );
    assert_eq!(pop.err("STAT now"), "-ERR this command takes no arguments");
    assert_eq!(pop.err("USER bob@example.test"), "-ERR already logged in");
    assert_eq!(pop.err("STLS"), "-ERR already logged in");
    assert_eq!(pop.err(""), "-ERR unknown command");
    assert_eq!(pop.err("LIST 1 2"), "-ERR at most one message number");
    assert_eq!(
        pop.err("DELE"),
        "-ERR this command needs one message number"
    );
    pop.ok("NOOP");
    assert_eq!(pop.cmd("BOGUS"), "-ERR unknown command");
    assert_eq!(pop.line(), "-ERR too many errors; closing");
    assert!(pop.is_closed());
    // Nothing was deleted by a session that ended without QUIT.
    let imap = Imap::open(&t, BOB);
    assert_eq!(imap.list(Role::Inbox).len(), 1);
}

#[test]
fn failed_logins_are_limited_per_address_even_with_the_right_password() {
    let t = bob("[limits]\nmax_auth_failures = 2\nauth_failure_window_secs = 300");
    let server = t.start();
    let mut pop = Pop3::connect(addr(&server, "pop3"));
    for wrong in ["wrong1", "wrong2"] {
        pop.ok("USER bob@example.test");
        assert_eq!(
            pop.err(&format!("PASS {wrong}")),
            "-ERR [AUTH] invalid user name or password"
        );
    }
    pop.ok("USER bob@example.test");
    let limited = pop.err("PASS secret");
    assert!(limited.starts_with("-ERR [SYS/TEMP] "), "{limited}");
    // The session goes on, and the refusal holds for AUTH PLAIN, for a new
    // connection from the same address and on port 995.
    pop.ok("NOOP");
    let mut again = Pop3::connect(addr(&server, "pop3"));
    let plain = base64_plain(BOB, "secret");
    assert!(again
        .err(&format!("AUTH PLAIN {plain}"))
        .starts_with("-ERR [SYS/TEMP] "));
    let out = poplib(
        r#"
p = poplib.POP3_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=60)
p.user("bob@example.test")
try:
    p.pass_("secret")
    print(json.dumps("logged in"))
except poplib.error_proto as e:
    print(json.dumps(s(e.args[0])))
"#,
        &[&port(&server, "pop3s")],
    );
    assert!(
        out.as_str().unwrap().starts_with("-ERR [SYS/TEMP] "),
        "{out}"
    );
}

#[test]
fn parallel_guesses_cannot_all_pass_the_limiter() {
    // Attempts in flight hold places under the limit, so guesses sent at
    // once on many connections get no more tries than guesses in a row.
    let t = bob("[limits]\nmax_auth_failures = 2\nauth_failure_window_secs = 300");
    let server = t.start();
    let mut sessions: Vec<Pop3> = (0..8)
        .map(|_| Pop3::connect(addr(&server, "pop3")))
        .collect();
    for (i, pop) in sessions.iter_mut().enumerate() {
        pop.send(format!("USER bob@example.test\r\nPASS guess{i}\r\n"));
    }
    let mut replies: Vec<String> = sessions
        .iter_mut()
        .map(|pop| {
            assert_eq!(pop.line(), "+OK send PASS");
            pop.line()
        })
        .collect();
    replies.sort();
    let wrong = "-ERR [AUTH] invalid user name or password".to_string();
    assert_eq!(replies[..2], [wrong.clone(), wrong], "{replies:#?}");
    assert!(
        replies[2..]
            .iter()
            .all(|r| r.starts_with("-ERR [SYS/TEMP] ")),
        "{replies:#?}"
    );
}

/// The CAPA list of a fresh connection, without the status line.
fn capa(pop: &mut Pop3) -> Vec<String> {
    pop.multi("CAPA")
}

#[test]
fn capa_lists_what_is_offered_in_each_state() {
    let t = bob("");
    let server = t.start();
    let mut pop = Pop3::connect(addr(&server, "pop3"));
    assert_eq!(
        capa(&mut pop),
        [
            "USER",
            "SASL PLAIN",
            "STLS",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "UTF8",
            "EXPIRE NEVER",
            "IMPLEMENTATION Tern",
        ]
    );
    assert_eq!(pop.ok("UTF8"), "+OK UTF8 enabled");
    pop.ok("USER bob@example.test");
    pop.ok("PASS secret");
    // In TRANSACTION there is nothing left to log in or upgrade with.
    let after = capa(&mut pop);
    assert!(
        !after
            .iter()
            .any(|c| c == "USER" || c == "STLS" || c.starts_with("SASL")),
        "{after:?}"
    );
    assert!(after.contains(&"UIDL".to_string()) && after.contains(&"TOP".to_string()));
    pop.ok("QUIT");

    // Port 995 is TLS already: no STLS, and STLS is refused.
    let out = poplib(
        r#"
p = poplib.POP3_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=60)
capa = p.capa()
try:
    stls = s(p._shortcmd("STLS"))
except poplib.error_proto as e:
    stls = s(e.args[0])
p.quit()
print(json.dumps({"capa": capa, "stls": stls}))
"#,
        &[&port(&server, "pop3s")],
    );
    let capa995 = out["capa"].as_object().unwrap();
    let mut keys: Vec<&str> = capa995.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "AUTH-RESP-CODE",
            "EXPIRE",
            "IMPLEMENTATION",
            "PIPELINING",
            "RESP-CODES",
            "SASL",
            "TOP",
            "UIDL",
            "USER",
            "UTF8",
        ]
    );
    assert_eq!(out["capa"]["SASL"], serde_json::json!(["PLAIN"]));
    assert_eq!(out["stls"], "-ERR TLS is already active");
}

#[test]
fn login_delay_is_advertised_and_enforced() {
    let t = bob("[pop3]\nlogin_delay_secs = 30");
    let server = t.start();
    let mut pop = Pop3::connect(addr(&server, "pop3"));
    let capa = capa(&mut pop);
    assert!(capa.contains(&"LOGIN-DELAY 30".to_string()), "{capa:?}");
    pop.ok("USER bob@example.test");
    pop.ok("PASS secret");
    pop.ok("QUIT");

    // A second login within 30 seconds.
    let mut pop = Pop3::connect(addr(&server, "pop3"));
    pop.ok("USER bob@example.test");
    let refused = pop.err("PASS secret");
    assert!(refused.starts_with("-ERR [LOGIN-DELAY] "), "{refused}");
    let plain = base64_plain(BOB, "secret");
    assert!(pop
        .err(&format!("AUTH PLAIN {plain}"))
        .starts_with("-ERR [LOGIN-DELAY] "));
    // A wrong password is still just wrong: the delay says nothing about
    // the password until it is right.
    pop.ok("USER bob@example.test");
    assert!(pop.err("PASS wrong").starts_with("-ERR [AUTH] "));
    pop.ok("NOOP");
}

#[test]
fn auth_plain_with_initial_response_with_continuation_and_cancelled() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a"]);
    let pop3 = addr(&server, "pop3");
    let plain = base64_plain(BOB, "secret");

    // Initial response on the command line (RFC 5034 §4).
    let mut pop = Pop3::connect(pop3);
    let ok = pop.ok(&format!("AUTH PLAIN {plain}"));
    assert!(ok.starts_with("+OK maildrop has 1 messages"), "{ok}");
    assert_eq!(pop.ok("STAT").split(' ').nth(1), Some("1"));
    pop.ok("QUIT");

    // No initial response: the server says "+ " and waits for it.
    let mut pop = Pop3::connect(pop3);
    assert_eq!(pop.cmd("AUTH PLAIN"), "+ ");
    assert!(pop.ok(&plain).starts_with("+OK maildrop has 1 messages"));
    pop.ok("QUIT");

    // "*" cancels; the session goes on and can log in afterwards.
    let mut pop = Pop3::connect(pop3);
    assert_eq!(pop.cmd("AUTH PLAIN"), "+ ");
    assert_eq!(pop.err("*"), "-ERR authentication cancelled");
    pop.ok("NOOP");
    pop.err("STAT");
    // A bare AUTH lists the mechanisms (RFC 1734 clients); others are
    // refused; a wrong password has the AUTH response code; a PLAIN
    // response that is not base64 is refused.
    assert_eq!(pop.multi("AUTH"), ["PLAIN"]);
    assert_eq!(
        pop.err("AUTH CRAM-MD5"),
        "-ERR unsupported mechanism; use PLAIN"
    );
    assert_eq!(
        pop.err(&format!("AUTH PLAIN {}", base64_plain(BOB, "wrong"))),
        "-ERR [AUTH] invalid user name or password"
    );
    assert_eq!(pop.cmd("AUTH PLAIN"), "+ ");
    assert_eq!(pop.err("!!!not base64"), "-ERR invalid base64");
    // authzid equal to the user is fine (RFC 4616 §2).
    use base64::Engine;
    let with_authzid =
        base64::engine::general_purpose::STANDARD.encode(format!("{BOB}\0{BOB}\0secret"));
    assert_eq!(pop.cmd("AUTH PLAIN"), "+ ");
    assert!(pop
        .ok(&with_authzid)
        .starts_with("+OK maildrop has 1 messages"));
    pop.ok("QUIT");
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b"]);
    let imap = Imap::open(&t, BOB);
    let inbox = imap.list(Role::Inbox);
    let raws = imap.inbox_raw();
    let total: u64 = inbox.iter().map(|e| e.size).sum();

    let mut pop = Pop3::connect(addr(&server, "pop3"));
    // Login and a whole session in one write each (RFC 2449 §6.6).
    pop.send("CAPA\r\nUSER bob@example.test\r\nPASS secret\r\nSTAT\r\n");
    assert_eq!(pop.line(), "+OK capability list follows");
    assert!(pop.lines().contains(&"PIPELINING".to_string()));
    assert_eq!(pop.line(), "+OK send PASS");
    assert_eq!(
        pop.line(),
        format!("+OK maildrop has 2 messages ({total} octets)")
    );
    assert_eq!(pop.line(), format!("+OK 2 {total}"));

    pop.send(
        "LIST\r\nUIDL 2\r\nRETR 1\r\nTOP 2 0\r\nBOGUS\r\nDELE 1\r\nNOOP\r\nLIST 1\r\nSTAT\r\nQUIT\r\n",
    );
    assert_eq!(pop.line(), format!("+OK 2 messages ({total} octets)"));
    assert_eq!(
        pop.lines(),
        [
            format!("1 {}", inbox[0].size),
            format!("2 {}", inbox[1].size)
        ]
    );
    assert_eq!(pop.line(), format!("+OK 2 {}", inbox[1].email_id));
    assert_eq!(pop.line(), format!("+OK {} octets", raws[0].len()));
    assert_eq!(show(&pop.wire()), show(&stuffed(&raws[0])));
    assert_eq!(pop.line(), "+OK top of message follows");
    assert_eq!(
        show(&pop.wire()),
        show(&[header_of(&raws[1]), b".\r\n"].concat())
    );
    assert_eq!(pop.line(), "-ERR unknown command");
    assert_eq!(pop.line(), "+OK message 1 deleted");
    assert_eq!(pop.line(), "+OK");
    assert_eq!(pop.line(), "-ERR message 1 is deleted");
    assert_eq!(pop.line(), format!("+OK 1 {}", inbox[1].size));
    assert_eq!(
        pop.line(),
        "+OK mail.example.test signing off (1 messages deleted)"
    );
    assert!(pop.is_closed());
    assert_eq!(imap.list(Role::Inbox), inbox[1..]);
}

#[test]
fn stls_drops_commands_pipelined_behind_it_in_the_clear() {
    let t = bob("");
    let server = t.start();
    // A man in the middle appends a command to the client's STLS: it must
    // not be run inside the TLS session (RFC 2595 §4, like CVE-2011-0411
    // for SMTP). Python's ssl does the handshake on the same socket.
    let out = poplib(
        r#"
import socket
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
f = sock.makefile("rb")
greeting = f.readline()
sock.sendall(b"STLS\r\nUSER bob@example.test\r\nPASS secret\r\n")
stls = f.readline()
tls = ctx.wrap_socket(sock, server_hostname="mail.example.test")
tf = tls.makefile("rb")
tls.sendall(b"STAT\r\n")
first = tf.readline()
tls.sendall(b"QUIT\r\n")
print(json.dumps({"stls": s(stls), "first": s(first), "quit": s(tf.readline())}))
"#,
        &[&port(&server, "pop3")],
    );
    assert_eq!(out["stls"], "+OK begin TLS negotiation\r\n");
    // Not logged in: the injected USER and PASS were discarded.
    assert_eq!(
        out["first"],
        "-ERR not logged in: USER and PASS, or AUTH, first\r\n"
    );
    assert!(out["quit"].as_str().unwrap().starts_with("+OK "), "{out}");
}

#[test]
fn a_successful_login_does_not_reset_the_failures_of_its_address() {
    // tern_core::auth_limit: a success takes back only its own attempt, so
    // an attacker holding one valid account cannot reset the count between
    // guesses at others. Failures expire with the window.
    let t = bob("[limits]\nmax_auth_failures = 2\nauth_failure_window_secs = 300");
    let server = t.start();
    let pop3 = addr(&server, "pop3");
    let mut pop = Pop3::connect(pop3);
    pop.ok("USER bob@example.test");
    assert!(pop.err("PASS typo").starts_with("-ERR [AUTH] "));
    pop.ok("USER bob@example.test");
    pop.ok("PASS secret");
    pop.ok("QUIT");

    let mut pop = Pop3::connect(pop3);
    pop.ok("USER bob@example.test");
    assert!(pop.err("PASS typo again").starts_with("-ERR [AUTH] "));
    pop.ok("USER bob@example.test");
    let reply = pop.cmd("PASS secret");
    assert!(
        reply.starts_with("-ERR [SYS/TEMP] "),
        "two failures within the window, a success between them or not: {reply}"
    );
}
