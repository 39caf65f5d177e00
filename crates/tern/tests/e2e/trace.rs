//! Protocol traces for administrators (`[trace]`, issue 11): the real
//! server traces the IMAP, POP3 and SMTP conversations of a listed client
//! network from the start, or of a listed account from its login, with
//! passwords and SASL exchanges masked and message bodies elided.

use crate::harness::*;
use crate::smtp::python;
use std::path::Path;

const USER: &str = "bob@example.test";

/// Every trace file's text, by file name.
fn traces(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    let p = e.unwrap().path();
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, std::fs::read_to_string(&p).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

const PY_SESSIONS: &str = r#"
import imaplib, poplib, smtplib, sys, json
imap, pop, sub = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = "x" * 5000
msg = "From: bob@example.test\r\nTo: bob@example.test\r\nSubject: traced\r\n\r\n" + body + "\r\n"
s = smtplib.SMTP("127.0.0.1", sub)
s.login("bob@example.test", "secret")
s.sendmail("bob@example.test", ["bob@example.test"], msg)
s.quit()
M = imaplib.IMAP4("127.0.0.1", imap)
M.login("bob@example.test", "secret")
M.select("INBOX")
typ, data = M.fetch("1", "(BODY.PEEK[])")
M.logout()
P = poplib.POP3("127.0.0.1", pop)
P.user("bob@example.test")
P.pass_("secret")
P.stat()
P.quit()
print(json.dumps(typ))
"#;

fn run_sessions(server: &Server) {
    let port = |l: &str| server.listeners[l].port().to_string();
    let out = python(
        PY_SESSIONS,
        &[&port("imap"), &port("pop3"), &port("submission")],
    );
    assert_eq!(out, "OK");
}

#[test]
fn a_traced_network_gets_every_conversation_with_secrets_masked() {
    let t = TestDir::with_config("[trace]\nclients = [\"127.0.0.0/8\"]\nbody_limit = \"1K\"");
    t.add_account(USER);
    let server = t.start();
    run_sessions(&server);
    drop(server);
    let files = traces(&t.data_dir().join("trace"));
    let all: String = files.iter().map(|(_, text)| text.as_str()).collect();
    for protocol in ["imap", "pop3", "smtp"] {
        assert!(
            files
                .iter()
                .any(|(name, _)| name.contains(&format!("-{protocol}-127.0.0.1-"))),
            "a {protocol} trace: {:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
    }
    // The password and the SASL PLAIN response never reach the file.
    assert!(!all.contains("secret"), "{all}");
    assert!(!all.contains("AGJvYkBleGFtcGxlLnRlc3QAc2VjcmV0"), "{all}");
    assert!(
        all.contains(" LOGIN bob@example.test [password masked]"),
        "{all}"
    );
    assert!(all.contains("C: PASS [masked]"), "{all}");
    assert!(all.contains("C: AUTH PLAIN [masked]"), "{all}");
    // Commands and answers are there; the 5,000-byte body is not.
    assert!(
        all.to_ascii_uppercase()
            .contains("C: MAIL FROM:<BOB@EXAMPLE.TEST>"),
        "{all}"
    );
    assert!(all.contains("S: 250 "), "{all}");
    assert!(all.contains("S: +OK"), "{all}");
    assert!(all.contains("not traced]"), "{all}");
    assert!(!all.contains(&"x".repeat(2000)), "the body is elided");
}

#[test]
fn a_traced_account_is_traced_from_its_login() {
    let t = TestDir::with_config("[trace]\naccounts = [\"Bob@Example.test\"]");
    t.add_account(USER);
    t.add_account("carol@example.test");
    let server = t.start();
    run_sessions(&server);
    // Carol's session is not traced.
    let out = crate::smtp::python(
        r#"
import imaplib, sys, json
M = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
M.login("carol@example.test", "secret")
M.logout()
print(json.dumps("ok"))
"#,
        &[&server.listeners["imap"].port().to_string()],
    );
    assert_eq!(out, "ok");
    drop(server);
    let files = traces(&t.data_dir().join("trace"));
    assert_eq!(files.len(), 3, "one per session of bob: {files:?}");
    for (name, text) in &files {
        assert!(
            text.starts_with("# ") && text.contains("traced from the login of bob@example.test"),
            "{name}: {text}"
        );
        assert!(!text.contains("carol"), "{name}: {text}");
        assert!(!text.contains("secret"), "{name}: {text}");
    }
}
