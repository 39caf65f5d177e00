//! Logging in (RFC 9051 §6.2): CAPABILITY before and after, LOGIN,
//! AUTHENTICATE PLAIN with SASL-IR (RFC 4959) and with a continuation,
//! implicit TLS on 993 and STARTTLS on 143 (RFC 8314, RFC 9051 §6.2.1).

use super::*;
use base64::Engine;

const PY_LOGIN: &str = r#"
M = imaplib.IMAP4("127.0.0.1", PORT)
out = {"before": ok(M.capability())}
try:
    M.login(USER, "wrong")
    out["wrong"] = "accepted"
except imaplib.IMAP4.error as e:
    out["wrong"] = str(e)
out["login"] = status(M.login(USER, PASSWORD))
out["after"] = ok(M.capability())
out["select"] = status(M.select("INBOX"))
M.logout()

# AUTHENTICATE PLAIN without an initial response: imaplib waits for "+".
M = imaplib.IMAP4("127.0.0.1", PORT)
out["authenticate"] = status(M.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode()))
out["auth_state"] = M.state
M.logout()
print(json.dumps(out))
"#;

fn words(v: &serde_json::Value) -> Vec<String> {
    v.as_str()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn capability_login_and_authenticate_plain() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_LOGIN, &[]);

    let before = words(&out["before"]);
    for cap in [
        "IMAP4rev2",
        "IMAP4rev1",
        "STARTTLS",
        "AUTH=PLAIN",
        "SASL-IR",
        // Listed before login as Dovecot does (imaplib checks for it).
        "ENABLE",
    ] {
        assert!(before.iter().any(|c| c == cap), "{cap} before login: {out}");
    }
    for cap in ["IDLE", "MOVE", "CONDSTORE", "QRESYNC"] {
        assert!(
            !before.iter().any(|c| c == cap),
            "no {cap} before login: {out}"
        );
    }
    let wrong = out["wrong"].as_str().unwrap();
    assert!(wrong.contains("[AUTHENTICATIONFAILED]"), "{out}");
    assert_eq!(out["login"][0], "OK", "{out}");
    assert!(
        out["login"][1]
            .as_str()
            .unwrap()
            .starts_with("[CAPABILITY "),
        "{out}"
    );
    let after = words(&out["after"]);
    for cap in [
        "IMAP4rev2",
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "QRESYNC",
        "ESEARCH",
        "SPECIAL-USE",
        "QUOTA",
        "MULTIAPPEND",
        "UTF8=ACCEPT",
    ] {
        assert!(after.iter().any(|c| c == cap), "{cap} after login: {out}");
    }
    for cap in ["STARTTLS", "AUTH=PLAIN", "LOGINDISABLED"] {
        assert!(
            !after.iter().any(|c| c == cap),
            "no {cap} after login: {out}"
        );
    }
    assert_eq!(out["select"][0], "OK", "{out}");
    assert_eq!(out["authenticate"][0], "OK", "{out}");
    assert_eq!(out["auth_state"], "AUTH", "{out}");
}

#[test]
fn authenticate_plain_with_an_initial_response_and_with_a_continuation() {
    let t = with_bob();
    let server = t.start();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    // SASL-IR (RFC 4959): the credentials on the command line.
    let mut imap = Imap::connect(addr(&server, "imap"));
    let done = imap.run(&format!(
        "AUTHENTICATE PLAIN {}",
        b64(&format!("\0{USER}\0secret"))
    ));
    done.ok();
    imap.run("SELECT INBOX").ok();

    // With a "+" continuation, written by hand; a wrong password fails.
    let mut imap = Imap::connect(addr(&server, "imap"));
    imap.send("a1 AUTHENTICATE PLAIN\r\n");
    let cont = imap.response();
    assert!(cont.starts_with("+"), "{cont:?}");
    imap.send(format!("{}\r\n", b64(&format!("\0{USER}\0nope"))));
    imap.until_tagged("a1").is("NO", "[AUTHENTICATIONFAILED]");
    imap.send("a2 AUTHENTICATE PLAIN\r\n");
    assert!(imap.response().starts_with("+"));
    imap.send(format!("{}\r\n", b64(&format!("\0{USER}\0secret"))));
    imap.until_tagged("a2").ok();
    imap.run("SELECT INBOX").ok();

    // "*" cancels (RFC 9051 §6.2.2): BAD, and the session is still usable.
    let mut imap = Imap::connect(addr(&server, "imap"));
    imap.send("a1 AUTHENTICATE PLAIN\r\n");
    assert!(imap.response().starts_with("+"));
    imap.send("*\r\n");
    imap.until_tagged("a1").is("BAD", "");
    imap.run("SELECT INBOX").is("NO", "");
    imap.run(&format!("LOGIN {USER} secret")).ok();
}

const PY_TLS: &str = r#"
out = {}
M = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[2]), ssl_context=ctx)
out["ssl_caps"] = sorted(M.capabilities)
out["ssl_login"] = status(M.login(USER, PASSWORD))
out["ssl_select"] = status(M.select("INBOX"))
out["ssl_version"] = M.sock.version()
M.logout()

M = imaplib.IMAP4("127.0.0.1", PORT)
out["plain_caps"] = sorted(M.capabilities)
out["starttls"] = status(M.starttls(ssl_context=ctx))
out["tls_caps"] = sorted(M.capabilities)
out["tls_version"] = M.sock.version()
out["tls_login"] = status(M.login(USER, PASSWORD))
out["tls_select"] = status(M.select("INBOX"))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn implicit_tls_and_starttls() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_TLS, &[&port(&server, "imaps")]);
    let has = |key: &str, cap: &str| out[key].as_array().unwrap().contains(&cap.into());
    assert!(has("plain_caps", "STARTTLS"), "{out}");
    assert!(
        !has("tls_caps", "STARTTLS"),
        "no STARTTLS inside TLS: {out}"
    );
    assert!(!has("ssl_caps", "STARTTLS"), "no STARTTLS on 993: {out}");
    assert!(
        has("ssl_caps", "AUTH=PLAIN") && has("tls_caps", "AUTH=PLAIN"),
        "{out}"
    );
    for key in [
        "starttls",
        "ssl_login",
        "ssl_select",
        "tls_login",
        "tls_select",
    ] {
        assert_eq!(out[key][0], "OK", "{key}: {out}");
    }
    for key in ["ssl_version", "tls_version"] {
        assert!(out[key].as_str().unwrap().starts_with("TLSv1."), "{out}");
    }
}

const PY_STARTTLS_INJECTION: &str = r#"
import socket
s = socket.create_connection(("127.0.0.1", PORT))
f = s.makefile("rb", buffering=0)
out = {"greeting": f.readline().decode()}
# A command pipelined behind STARTTLS in the same packet, as an attacker on
# the path would add it: it must not run inside the TLS session.
s.sendall(b"a1 STARTTLS\r\na2 LOGIN bob@example.test secret\r\n")
out["starttls"] = f.readline().decode()
t = ctx.wrap_socket(s)
t.sendall(b"a3 CAPABILITY\r\na4 SELECT INBOX\r\n")
tf = t.makefile("rb")
lines = []
while not lines or not lines[-1].startswith(("a4 ", "a2 ")):
    lines.append(tf.readline().decode().rstrip("\r\n"))
out["inside"] = lines
print(json.dumps(out))
"#;

#[test]
fn commands_pipelined_behind_starttls_are_discarded() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_STARTTLS_INJECTION, &[]);
    assert!(
        out["starttls"].as_str().unwrap().starts_with("a1 OK"),
        "{out}"
    );
    let inside: Vec<&str> = out["inside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(!inside.iter().any(|l| l.starts_with("a2 ")), "{out}");
    assert!(inside.iter().any(|l| l.starts_with("a3 OK")), "{out}");
    let caps = inside
        .iter()
        .find(|l| l.starts_with("* CAPABILITY"))
        .unwrap();
    assert!(
        caps.contains("AUTH=PLAIN") && !caps.contains("IDLE"),
        "not logged in: {out}"
    );
    assert!(inside.last().unwrap().starts_with("a4 NO"), "{out}");
}

#[test]
fn an_administrator_sees_and_lifts_a_login_block() {
    let t = TestDir::with_config("[limits]\nmax_auth_failures = 2");
    t.add_account(USER);
    let server = t.start();
    let imap = addr(&server, "imap");
    let mut c = Imap::connect(imap);
    for _ in 0..2 {
        c.run(&format!("LOGIN {USER} wrong"))
            .is("NO", "[AUTHENTICATIONFAILED]");
    }
    c.run(&format!("LOGIN {USER} secret"))
        .is("NO", "[UNAVAILABLE]");
    let listed = t.ok(&["security", "blocked"], "");
    assert!(
        listed.contains("127.0.0.1") && listed.contains("2 failed logins"),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["security", "blocked", "--json"], "")).unwrap();
    assert_eq!(json["blocked"][0]["address"], "127.0.0.1", "{json}");
    assert_eq!(
        t.ok(&["security", "unblock", "127.0.0.1"], ""),
        "unblocked 127.0.0.1\n"
    );
    assert!(t
        .ok(&["security", "blocked"], "")
        .contains("no address is blocked"));
    c.run(&format!("LOGIN {USER} secret")).ok();
    let err = t.fails(&["security", "unblock", "not-an-ip"], "");
    assert!(err.contains("not an IP address"), "{err}");
    drop(server);
    // Without a running server there is nothing in force.
    assert!(t
        .ok(&["security", "blocked"], "")
        .contains("no server is running"));
}

#[test]
fn exempt_networks_are_never_blocked() {
    let t = TestDir::with_config(
        "[limits]\nmax_auth_failures = 1\nauth_exempt_networks = [\"127.0.0.0/8\"]",
    );
    t.add_account(USER);
    let server = t.start();
    let mut c = Imap::connect(addr(&server, "imap"));
    for _ in 0..3 {
        c.run(&format!("LOGIN {USER} wrong"))
            .is("NO", "[AUTHENTICATIONFAILED]");
    }
    c.run(&format!("LOGIN {USER} secret")).ok();
    assert!(t
        .ok(&["security", "blocked"], "")
        .contains("no address is blocked"));
}
