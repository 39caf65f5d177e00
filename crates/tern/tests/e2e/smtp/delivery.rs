//! Inbound mail on port 25 (RFC 5321): who receives it and that it arrives
//! exactly as sent — aliases, extensions, catch-all, postmaster, unknown
//! users, 8-bit and UTF-8 mail, a 20 MiB message, many sessions at once.

use super::*;
use sha2::{Digest, Sha256};

#[test]
fn port_25_stores_the_message_byte_exact_behind_return_path_and_received() {
    let t = two_accounts("");
    let server = t.start();
    // Leading dots (stuffed by smtplib, unstuffed by the server), a lone
    // dot, trailing white space, a tab and an empty line must all survive.
    let sent = b"From: Sender <sender@remote.test>\r\n\
        To: Bob <bob@example.test>\r\n\
        Subject: byte exact\r\n\
        Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\
        \r\n\
        .a line starting with a dot\r\n\
        ..two dots\r\n\
        .\r\n\
        trailing spaces   \r\n\
        \tand a tab\r\n\
        \r\n\
        last line\r\n";
    let file = write_file(&t, "msg.eml", sent);
    let out = python(
        &format!(
            "{PY_PRELUDE}\n{}",
            r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.example.test")
refused = s.sendmail("sender@remote.test", ["bob@example.test"], open(sys.argv[2], "rb").read())
print(json.dumps({"refused": list(refused), "quit": r(s.quit())}))
"#
        ),
        &[&port(&server, "smtp"), file.to_str().unwrap()],
    );
    assert_eq!(out["refused"], serde_json::json!([]), "{out}");
    assert_eq!(out["quit"][0], 221, "{out}");

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1);
    let fields = added_fields(&inbox[0].raw, sent);
    // Port 25 without AUTH adds trace fields only: no Date, no Message-ID.
    assert_eq!(names(&fields), ["Return-Path", "Received"], "{fields:?}");
    assert_eq!(field(&fields, "Return-Path"), "<sender@remote.test>");
    let received = field(&fields, "Received");
    assert!(
        received.starts_with(
            "from client.example.test ([127.0.0.1]) by mail.example.test (Tern) with ESMTP id "
        ),
        "{received}"
    );
    assert!(received.contains(" for <bob@example.test>; "), "{received}");
    assert!(received.ends_with(" +0000"), "{received}");
    assert!(store.inbox("alice@example.test").is_empty());
    assert!(store.queue().is_empty());
}

#[test]
fn aliases_extensions_catch_all_and_postmaster_reach_their_accounts() {
    let t = two_accounts("");
    t.add_account("carol@other.test");
    t.ok(
        &[
            "alias",
            "add",
            "team@example.test",
            "bob@example.test",
            "alice@example.test",
        ],
        "",
    );
    t.ok(&["alias", "add", "@other.test", "carol@other.test"], "");
    let server = t.start();
    let smtp_port = port(&server, "smtp");

    // An alias of two accounts, with smtplib.
    let team = message("team", "to the whole team\r\n");
    let file = write_file(&t, "team.eml", &team);
    let out = python(
        &format!(
            "{PY_PRELUDE}\n{}",
            r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
print(json.dumps(list(s.sendmail("sender@remote.test", ["team@example.test"], open(sys.argv[2], "rb").read()))))
"#
        ),
        &[&smtp_port, file.to_str().unwrap()],
    );
    assert_eq!(out, serde_json::json!([]));

    // An address extension, with curl (the URL's path is its EHLO name).
    let plus = message("plus", "bob with a tag\r\n");
    let file = write_file(&t, "plus.eml", &plus);
    tool_ok(
        "curl",
        &[
            "-sS",
            "--max-time",
            "60",
            "--url",
            &format!("smtp://127.0.0.1:{smtp_port}/curl.client.test"),
            "--mail-from",
            "sender@remote.test",
            "--mail-rcpt",
            "bob+tag@example.test",
            "--upload-file",
            file.to_str().unwrap(),
        ],
        t.dir.path(),
    );

    // Anyone at other.test reaches carol through the catch-all, with swaks.
    tool_ok(
        "swaks",
        &[
            "--server",
            &format!("127.0.0.1:{smtp_port}"),
            "--helo",
            "swaks.client.test",
            "--from",
            "sender@remote.test",
            "--to",
            "whoever@other.test",
            "--header",
            "Subject: catch-all",
            "--body",
            "caught by the catch-all",
        ],
        t.dir.path(),
    );

    // postmaster@ and the bare <Postmaster> exist without any alias.
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "raw.client.test");
    let pm = message("postmaster", "hello postmaster\r\n");
    smtp.send_mail("sender@remote.test", &["postmaster@example.test"], &pm)
        .is(250, "2.0.0");
    smtp.cmd("MAIL FROM:<sender@remote.test>").is(250, "2.1.0");
    smtp.cmd("RCPT TO:<Postmaster>").is(250, "2.1.5");
    smtp.cmd("DATA").is(354, "");
    smtp.send(b"Subject: bare postmaster\r\n\r\nhello\r\n.\r\n");
    smtp.reply().is(250, "2.0.0");
    smtp.cmd("QUIT").is(221, "2.0.0");

    let store = Mailstore::open(&t);
    let (to_bob, to_alice) = (
        store.find("bob@example.test", "team"),
        store.find("alice@example.test", "team"),
    );
    assert_eq!(to_bob.email.blob_id, to_alice.email.blob_id, "stored once");
    assert_eq!(to_bob.raw, to_alice.raw);
    let fields = added_fields(&to_bob.raw, &team);
    assert!(
        !field(&fields, "Received").contains(" for <"),
        "a copy to several accounts names none of them: {fields:?}"
    );

    let fields = added_fields(&store.find("bob@example.test", "plus").raw, &plus);
    let received = field(&fields, "Received");
    assert!(received.starts_with("from curl.client.test "), "{received}");
    assert!(
        received.contains(" for <bob+tag@example.test>;"),
        "{received}"
    );

    let caught = store.find("carol@other.test", "catch-all");
    assert!(caught.text().contains("caught by the catch-all"));
    assert!(
        caught.text().contains("for <whoever@other.test>;"),
        "{}",
        caught.text()
    );

    let fields = added_fields(&store.find("bob@example.test", "postmaster").raw, &pm);
    assert!(field(&fields, "Received").contains(" for <postmaster@example.test>;"));
    store.find("bob@example.test", "bare postmaster");

    assert_eq!(store.inbox("bob@example.test").len(), 4);
    assert_eq!(store.inbox("alice@example.test").len(), 1);
    assert_eq!(store.inbox("carol@other.test").len(), 1);
    assert!(store.queue().is_empty());
}

#[test]
fn an_unknown_local_user_is_refused_at_rcpt_with_550_5_1_1() {
    let t = two_accounts("");
    let server = t.start();
    let out = python(
        &format!(
            "{PY_PRELUDE}\n{}",
            r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
out = {}
try:
    s.sendmail("sender@remote.test", ["nobody@example.test"], b"Subject: alone\r\n\r\nx\r\n")
    out["alone"] = "accepted"
except smtplib.SMTPRecipientsRefused as e:
    out["alone"] = {k: r(v) for k, v in e.recipients.items()}
refused = s.sendmail("sender@remote.test", ["bob@example.test", "ghost@example.test"],
                     b"Subject: mixed\r\n\r\nfor bob only\r\n")
out["mixed"] = {k: r(v) for k, v in refused.items()}
print(json.dumps(out))
"#
        ),
        &[&port(&server, "smtp")],
    );
    let alone = &out["alone"]["nobody@example.test"];
    assert_eq!(alone[0], 550, "{out}");
    assert!(alone[1].as_str().unwrap().starts_with("5.1.1 "), "{out}");
    let mixed = out["mixed"].as_object().unwrap();
    assert_eq!(mixed.len(), 1, "{out}");
    assert_eq!(mixed["ghost@example.test"][0], 550, "{out}");
    assert!(mixed["ghost@example.test"][1]
        .as_str()
        .unwrap()
        .starts_with("5.1.1 "));

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1);
    let fields = added_fields(&inbox[0].raw, b"Subject: mixed\r\n\r\nfor bob only\r\n");
    let received = field(&fields, "Received");
    assert!(
        received.contains(" for <bob@example.test>;"),
        "only the accepted recipient counts: {received}"
    );
    assert!(
        store.queue().is_empty(),
        "nothing is accepted to bounce later"
    );
}

#[test]
fn a_20_mib_message_is_stored_byte_exact() {
    let t = two_accounts("");
    let server = t.start();
    let mut sent =
        b"From: <sender@remote.test>\r\nTo: <bob@example.test>\r\nSubject: big\r\n\r\n".to_vec();
    let mut i = 0u64;
    while sent.len() < 20 << 20 {
        // Every 997th line starts with a dot, to be stuffed and unstuffed.
        let lead = match i % 997 {
            0 => '.',
            _ => 'L',
        };
        sent.extend_from_slice(
            format!("{lead}{i:010} {}\r\n", "0123456789abcdef".repeat(4)).as_bytes(),
        );
        i += 1;
    }
    let file = write_file(&t, "big.eml", &sent);
    let out = python(
        &format!(
            "{PY_PRELUDE}\n{}",
            r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=300)
refused = s.sendmail("sender@remote.test", ["bob@example.test"], open(sys.argv[2], "rb").read())
print(json.dumps({"refused": list(refused), "quit": r(s.quit())}))
"#
        ),
        &[&port(&server, "smtp"), file.to_str().unwrap()],
    );
    assert_eq!(out["refused"], serde_json::json!([]), "{out}");

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1);
    let stored = &inbox[0];
    let fields = added_fields(&stored.raw, &sent);
    assert_eq!(names(&fields), ["Return-Path", "Received"]);
    let body = &stored.raw[stored.raw.len() - sent.len()..];
    assert_eq!(
        hex(&Sha256::digest(body)),
        hex(&Sha256::digest(&sent)),
        "body digest"
    );
    // The blob is addressed by the SHA-256 of everything stored.
    assert_eq!(
        stored.email.blob_id.as_str(),
        hex(&Sha256::digest(&stored.raw))
    );
    assert_eq!(stored.email.size, stored.raw.len() as u64);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// smtplib with SMTPUTF8 to a UTF-8 account, and with BODY=8BITMIME alone.
const PY_UTF8: &str = r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="utf8.client.test")
s.ehlo()
out = {"features": sorted(s.esmtp_features)}
out["eight"] = list(s.sendmail("sender@remote.test", ["bob@example.test"],
                               open(sys.argv[2], "rb").read(), mail_options=["BODY=8BITMIME"]))
out["utf8"] = list(s.sendmail("änne@remote.test", ["jörg@example.test"],
                              open(sys.argv[3], "rb").read(), mail_options=["SMTPUTF8", "BODY=8BITMIME"]))
s.quit()
print(json.dumps(out))
"#;

fn send_utf8_mail(t: &TestDir, server: &Server) -> (Vec<u8>, Vec<u8>) {
    let mut eight =
        b"From: <sender@remote.test>\r\nSubject: eight bit\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 ".to_vec();
    eight.extend(0x80u8..=0xff);
    eight.extend_from_slice(b"\r\n");
    let utf8 = "From: Änne <änne@remote.test>\r\nTo: Jörg <jörg@example.test>\r\nSubject: Grüße\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo Jörg, schöne Grüße! ✓\r\n"
        .as_bytes()
        .to_vec();
    let f8 = write_file(t, "eight.eml", &eight);
    let fu = write_file(t, "utf8.eml", &utf8);
    let out = python(
        &format!("{PY_PRELUDE}\n{PY_UTF8}"),
        &[
            &port(server, "smtp"),
            f8.to_str().unwrap(),
            fu.to_str().unwrap(),
        ],
    );
    for ext in ["8bitmime", "smtputf8"] {
        assert!(
            out["features"].as_array().unwrap().contains(&ext.into()),
            "{out}"
        );
    }
    assert_eq!(out["eight"], serde_json::json!([]), "{out}");
    assert_eq!(out["utf8"], serde_json::json!([]), "{out}");
    (eight, utf8)
}

#[test]
fn eight_bit_bodies_and_utf8_addresses_with_smtputf8_are_delivered() {
    let t = two_accounts("");
    t.add_account("jörg@example.test");
    let server = t.start();
    let (eight, utf8) = send_utf8_mail(&t, &server);

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1);
    added_fields(&inbox[0].raw, &eight);

    let inbox = store.inbox("jörg@example.test");
    assert_eq!(inbox.len(), 1);
    let fields = added_fields(&inbox[0].raw, &utf8);
    assert_eq!(field(&fields, "Return-Path"), "<änne@remote.test>");
    let received = field(&fields, "Received");
    assert!(received.contains(" for <jörg@example.test>;"), "{received}");
}

#[test]
fn received_says_utf8smtp_when_smtputf8_was_used() {
    // RFC 6531 §3.7.3 and §4.3: the WITH clause of a message received with
    // SMTPUTF8 is UTF8SMTP (UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA), not ESMTP.
    let t = two_accounts("");
    t.add_account("jörg@example.test");
    let server = t.start();
    let (eight, utf8) = send_utf8_mail(&t, &server);
    let store = Mailstore::open(&t);
    let fields = added_fields(&store.inbox("bob@example.test")[0].raw, &eight);
    assert!(
        field(&fields, "Received").contains(" with ESMTP id "),
        "8BITMIME alone is plain ESMTP: {fields:?}"
    );
    let fields = added_fields(&store.inbox("jörg@example.test")[0].raw, &utf8);
    assert!(
        field(&fields, "Received").contains(" with UTF8SMTP id "),
        "{fields:?}"
    );
}

#[test]
fn utf8_addresses_without_smtputf8_are_refused_with_x_6_7() {
    let t = two_accounts("");
    t.add_account("jörg@example.test");
    let server = t.start();
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "ascii.client.test");
    // RFC 6531 §3.5: a RCPT that needs SMTPUTF8 gets 553 X.6.7 ...
    smtp.cmd("MAIL FROM:<sender@remote.test>").is(250, "2.1.0");
    smtp.cmd("RCPT TO:<jörg@example.test>").is(553, "5.6.7");
    smtp.cmd("RSET").is(250, "2.0.0");
    // ... and a MAIL that does gets 550 X.6.7 (553, X.6.7's other basic
    // code in the §4.2 registry, will do): the address is well formed, so
    // not a syntax error.
    let reply = smtp.cmd("MAIL FROM:<änne@remote.test>");
    assert!(
        matches!(reply.code, 550 | 553) && reply.lines[0].starts_with("5.6.7"),
        "expected 550 5.6.7, got {reply}"
    );
    smtp.cmd("NOOP").is(250, "2.0.0");
    drop(smtp);
    let store = Mailstore::open(&t);
    assert!(store.inbox("jörg@example.test").is_empty());
}

#[test]
fn fifty_concurrent_sessions_deliver_two_hundred_distinct_messages() {
    const THREADS: usize = 50;
    const PER_THREAD: usize = 4;
    let t = two_accounts("[limits]\nmax_connections_per_ip = 100");
    let server = t.start();
    let out = python(
        &format!(
            "{PY_PRELUDE}\n{}",
            r#"
import threading
port, threads, per = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
errors = []
# Every session is open before any sends, so all of them run at once.
barrier = threading.Barrier(threads, timeout=120)
def worker(t):
    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="t%d.client.test" % t, timeout=120)
        barrier.wait()
        for i in range(per):
            msg = ("From: <t%d@remote.test>\r\nTo: <bob@example.test>\r\nSubject: concurrent %d.%d\r\n"
                   "Message-ID: <%d.%d@remote.test>\r\n\r\nbody %d.%d\r\n" % (t, t, i, t, i, t, i)).encode()
            refused = s.sendmail("t%d@remote.test" % t, ["bob@example.test"], msg)
            if refused:
                errors.append("%d.%d refused %r" % (t, i, refused))
        s.quit()
    except Exception as e:
        errors.append("%d: %r" % (t, e))
workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps({"errors": errors}))
"#
        ),
        &[
            &port(&server, "smtp"),
            &THREADS.to_string(),
            &PER_THREAD.to_string(),
        ],
    );
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), THREADS * PER_THREAD);
    let mut seen = std::collections::HashSet::new();
    let mut uids = std::collections::HashSet::new();
    for m in &inbox {
        assert!(uids.insert(m.uid), "UID {:?} twice", m.uid);
        let text = m.text();
        let subject = text
            .split("\r\nSubject: concurrent ")
            .nth(1)
            .and_then(|s| s.split_once("\r\n"))
            .map(|(s, _)| s.to_string())
            .unwrap_or_else(|| panic!("no subject in {text}"));
        let (th, i) = subject.split_once('.').unwrap();
        let sent = format!(
            "From: <t{th}@remote.test>\r\nTo: <bob@example.test>\r\nSubject: concurrent {th}.{i}\r\n\
             Message-ID: <{th}.{i}@remote.test>\r\n\r\nbody {th}.{i}\r\n"
        );
        let fields = added_fields(&m.raw, sent.as_bytes());
        assert_eq!(
            field(&fields, "Return-Path"),
            format!("<t{th}@remote.test>")
        );
        assert!(field(&fields, "Received").starts_with(&format!("from t{th}.client.test ")));
        assert!(seen.insert(subject.clone()), "{subject} stored twice");
    }
    assert_eq!(seen.len(), THREADS * PER_THREAD);
}

#[test]
fn lettre_delivers_on_port_25_and_submits_with_credentials_on_587() {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{Message, SmtpTransport, Transport};

    let t = two_accounts("");
    let server = t.start();
    let inbound = Message::builder()
        .from("Sender <sender@remote.test>".parse().unwrap())
        .to("Bob <bob@example.test>".parse().unwrap())
        .subject("via lettre")
        .body(String::from("Hello from lettre.\r\n"))
        .unwrap();
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(addr(&server, "smtp").port())
        .hello_name(ClientId::Domain("lettre.client.test".into()))
        .timeout(Some(IO_TIMEOUT))
        .build();
    let response = mailer.send(&inbound).expect("lettre sends on port 25");
    assert!(response.is_positive(), "{response:?}");

    // Loopback is trusted with a password in plaintext; lettre has no TLS
    // backend here, so it authenticates without STARTTLS.
    let submitted = Message::builder()
        .from("Bob <bob@example.test>".parse().unwrap())
        .to("Alice <alice@example.test>".parse().unwrap())
        .subject("submitted via lettre")
        .body(String::from("Hello Alice.\r\n"))
        .unwrap();
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(addr(&server, "submission").port())
        .hello_name(ClientId::Domain("lettre.client.test".into()))
        .credentials(Credentials::new("bob@example.test".into(), "secret".into()))
        .timeout(Some(IO_TIMEOUT))
        .build();
    let response = mailer.send(&submitted).expect("lettre submits on 587");
    assert!(response.is_positive(), "{response:?}");

    let store = Mailstore::open(&t);
    let m = store.find("bob@example.test", "via lettre").text();
    assert!(m.contains("Hello from lettre."), "{m}");
    assert!(
        m.contains("Received: from lettre.client.test ([127.0.0.1])\r\n\tby mail.example.test (Tern) with ESMTP id "),
        "{m}"
    );
    let m = store
        .find("alice@example.test", "submitted via lettre")
        .text();
    assert!(m.starts_with("Return-Path: <bob@example.test>\r\n"), "{m}");
    assert!(m.contains(" with ESMTPA id "), "{m}");
    assert!(store.queue().is_empty());
}

#[test]
fn a_script_writing_unix_line_ends_is_served_by_curl_without_crlf() {
    let t = two_accounts("");
    let server = t.start();
    let smtp_port = addr(&server, "smtp").port();
    // What a shell script writes: LF line ends, no --crlf for curl.
    let file = write_file(
        &t,
        "unix.eml",
        b"From: <script@remote.test>\nSubject: from cron\n\nbackup done\n",
    );
    tool_ok(
        "curl",
        &[
            "-sS",
            "--max-time",
            "60",
            "--url",
            &format!("smtp://127.0.0.1:{smtp_port}/cron.client.test"),
            "--mail-from",
            "script@remote.test",
            "--mail-rcpt",
            "bob@example.test",
            "--upload-file",
            file.to_str().unwrap(),
        ],
        t.dir.path(),
    );
    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1);
    let raw = String::from_utf8_lossy(&inbox[0].raw);
    // curl ends the data with CRLF "." CRLF after the file's last LF, which
    // makes one empty line more, as with Postfix.
    assert!(
        raw.ends_with("Subject: from cron\r\n\r\nbackup done\r\n\r\n"),
        "stored with CRLF: {raw:?}"
    );
    assert!(!raw.replace("\r\n", "").contains('\n'), "{raw:?}");
}
