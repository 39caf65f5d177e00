//! Submission on 587 (STARTTLS, RFC 3207) and 465 (implicit TLS, RFC
//! 8314): AUTH first (RFC 4954), own addresses only (RFC 6409 §6.1), local
//! recipients delivered, remote ones queued with their DSN wishes (RFC
//! 3461), Date and Message-ID added when missing (RFC 6409 §8).

use super::*;
use tern_store::{DsnNotify, DsnReturn, OutboundRecipient};

#[test]
fn port_587_wants_auth_before_mail_and_offers_starttls() {
    let t = two_accounts("");
    let server = t.start();
    let mut smtp = Smtp::connect(addr(&server, "submission"));
    let ehlo = smtp.cmd("EHLO plain.client.test");
    ehlo.is(250, "");
    assert!(ehlo.has("STARTTLS"), "{ehlo}");
    // Loopback may authenticate without TLS.
    assert!(ehlo.has("AUTH"), "{ehlo}");
    smtp.cmd("MAIL FROM:<alice@example.test>").is(530, "5.7.0");
    smtp.cmd("RCPT TO:<bob@example.test>").is(503, "5.5.1");
    smtp.cmd("DATA").is(503, "5.5.1");
    smtp.cmd("QUIT").is(221, "2.0.0");
    let store = Mailstore::open(&t);
    assert!(store.inbox("bob@example.test").is_empty());
}

const PY_SUBMIT: &str = r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="submit.client.test")
s.ehlo()
out = {"before": sorted(s.esmtp_features)}
out["starttls"] = r(s.starttls(context=ctx))
s.ehlo()
out["after"] = sorted(s.esmtp_features)
out["login"] = r(s.login("alice@example.test", "secret"))
out["mail"] = r(s.mail("alice@example.test", ["RET=HDRS", "ENVID=env+2Dq1"]))
out["rcpt_local"] = r(s.rcpt("bob@example.test"))
out["rcpt_remote"] = r(s.rcpt("friend@remote.test",
                              ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Friend+40remote.test"]))
out["data"] = r(s.data(open(sys.argv[2], "rb").read()))
out["dated"] = list(s.sendmail("alice@example.test", ["bob@example.test"], open(sys.argv[3], "rb").read()))
out["quit"] = r(s.quit())
print(json.dumps(out))
"#;

#[test]
fn starttls_and_auth_on_587_deliver_locally_and_queue_remote_with_dsn() {
    let t = two_accounts("");
    let server = t.start();
    let undated =
        b"From: Alice <alice@example.test>\r\nTo: bob@example.test, friend@remote.test\r\n\
        Subject: undated\r\n\r\nno Date, no Message-ID\r\n";
    let dated = b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: dated\r\n\
        Date: Tue, 2 Jan 2024 10:00:00 +0100\r\nMessage-ID: <dated.1@example.test>\r\n\r\nhas both\r\n";
    let f1 = write_file(&t, "undated.eml", undated);
    let f2 = write_file(&t, "dated.eml", dated);
    let out = python(
        &format!("{PY_PRELUDE}\n{PY_SUBMIT}"),
        &[
            &port(&server, "submission"),
            f1.to_str().unwrap(),
            f2.to_str().unwrap(),
        ],
    );
    let has = |key: &str, ext: &str| out[key].as_array().unwrap().contains(&ext.into());
    assert!(has("before", "starttls") && has("before", "auth"), "{out}");
    assert!(!has("after", "starttls"), "no STARTTLS inside TLS: {out}");
    assert!(has("after", "auth"), "{out}");
    for (key, code) in [
        ("starttls", 220),
        ("login", 235),
        ("mail", 250),
        ("rcpt_local", 250),
        ("rcpt_remote", 250),
        ("data", 250),
        ("quit", 221),
    ] {
        assert_eq!(out[key][0], code, "{key}: {out}");
    }
    assert_eq!(out["dated"], serde_json::json!([]), "{out}");

    let store = Mailstore::open(&t);
    let local = store.find("bob@example.test", "undated");
    let fields = added_fields(&local.raw, undated);
    assert_eq!(
        names(&fields),
        ["Return-Path", "Received", "Date", "Message-ID"]
    );
    assert_eq!(field(&fields, "Return-Path"), "<alice@example.test>");
    let received = field(&fields, "Received");
    assert!(
        received.starts_with(
            "from submit.client.test ([127.0.0.1]) by mail.example.test (Tern) with ESMTPSA id "
        ),
        "{received}"
    );
    let date = field(&fields, "Date");
    assert!(
        date.ends_with(" +0000") && date.split(' ').count() == 6,
        "{date}"
    );
    let id = field(&fields, "Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with("@mail.example.test>"),
        "{id}"
    );

    // A Date and Message-ID of its own are kept, and none added.
    let fields = added_fields(&store.find("bob@example.test", "dated").raw, dated);
    assert_eq!(names(&fields), ["Return-Path", "Received"]);

    let queue = store.queue();
    assert_eq!(queue.len(), 1, "{queue:?}");
    let q = &queue[0];
    assert_eq!(
        q.blob_id, local.email.blob_id,
        "queued and delivered together"
    );
    assert_eq!(q.outbound.mail_from, "alice@example.test");
    assert_eq!(q.outbound.env_id.as_deref(), Some("env-q1"));
    assert_eq!(q.outbound.ret, Some(DsnReturn::Headers));
    assert_eq!(
        q.outbound.account_id,
        Some(store.account_id("alice@example.test"))
    );
    assert_eq!(
        q.outbound.recipients,
        [OutboundRecipient {
            address: "friend@remote.test".into(),
            notify: DsnNotify {
                success: true,
                failure: true,
                delay: false
            },
            orcpt: Some("rfc822;Friend@remote.test".into()),
        }]
    );
    let to: Vec<&str> = q.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(
        to,
        ["friend@remote.test"],
        "the local recipient is not queued"
    );
}

#[test]
fn curl_submits_over_implicit_tls_on_465_and_starttls_on_587() {
    let t = two_accounts("");
    let server = t.start();
    for (subject, url, extra) in [
        (
            "over 465",
            format!(
                "smtps://127.0.0.1:{}/curl.client.test",
                port(&server, "submissions")
            ),
            None,
        ),
        (
            "over 587",
            format!(
                "smtp://127.0.0.1:{}/curl.client.test",
                port(&server, "submission")
            ),
            Some("--ssl-reqd"),
        ),
    ] {
        // From: the user who logs in, as submission requires.
        let sent = format!(
            "From: Bob <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n\r\nsent by curl\r\n"
        )
        .into_bytes();
        let file = write_file(&t, "curl.eml", &sent);
        let mut args = vec![
            "-sS",
            "-k",
            "--max-time",
            "60",
            "--url",
            &url,
            "--user",
            "bob@example.test:secret",
            "--mail-from",
            "bob@example.test",
            "--mail-rcpt",
            "alice@example.test",
            "--upload-file",
            file.to_str().unwrap(),
        ];
        args.extend(extra);
        tool_ok("curl", &args, t.dir.path());
        let store = Mailstore::open(&t);
        let fields = added_fields(&store.find("alice@example.test", subject).raw, &sent);
        assert_eq!(
            names(&fields),
            ["Return-Path", "Received", "Date", "Message-ID"]
        );
        assert!(
            field(&fields, "Received").starts_with(
                "from curl.client.test ([127.0.0.1]) by mail.example.test (Tern) with ESMTPSA id "
            ),
            "{fields:?}"
        );
    }
}

#[test]
fn a_wrong_password_gets_535_and_the_right_one_still_works() {
    let t = two_accounts("");
    let server = t.start();
    let out = python(
        &format!(
            "{PY_PRELUDE}\n{}",
            r#"
s = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[1]), context=ctx)
out = {}
for user, password in [("bob@example.test", "wrong"), ("nobody@example.test", "secret")]:
    try:
        out[user] = r(s.login(user, password))
    except smtplib.SMTPAuthenticationError as e:
        out[user] = [e.smtp_code, e.smtp_error.decode()]
out["right"] = r(s.login("bob@example.test", "secret"))
print(json.dumps(out))
"#
        ),
        &[&port(&server, "submissions")],
    );
    for user in ["bob@example.test", "nobody@example.test"] {
        assert_eq!(out[user][0], 535, "{out}");
        assert!(
            out[user][1].as_str().unwrap().starts_with("5.7.8 "),
            "{out}"
        );
    }
    assert_eq!(out["right"][0], 235, "{out}");
}

fn swaks_as(t: &TestDir, server: &Server, from: &str) -> Output {
    run_tool(
        "swaks",
        &[
            "--server",
            &format!("127.0.0.1:{}", port(server, "submission")),
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "bob@example.test",
            "--auth-password",
            "secret",
            "--from",
            from,
            "--to",
            "alice@example.test",
            "--header",
            &format!("Subject: as {from}"),
            "--body",
            "who am I",
        ],
        t.dir.path(),
    )
}

#[test]
fn an_authenticated_user_sends_only_as_its_own_addresses() {
    let t = two_accounts("");
    t.ok(
        &["alias", "add", "sales@example.test", "bob@example.test"],
        "",
    );
    t.ok(
        &["alias", "add", "info@example.test", "alice@example.test"],
        "",
    );
    let server = t.start();
    for from in [
        "alice@example.test",
        "info@example.test",
        // bob is the domain's first account and so gets postmaster's mail,
        // but that does not make him postmaster.
        "postmaster@example.test",
        "bob@remote.test",
    ] {
        let out = swaks_as(&t, &server, from);
        let text = transcript(&out);
        assert!(!out.status.success(), "sent as {from}: {text}");
        assert!(text.contains("553 5.7.1"), "as {from}: {text}");
    }
    for from in [
        "bob+x@example.test",
        "sales@example.test",
        "BOB@Example.Test",
    ] {
        let out = swaks_as(&t, &server, from);
        assert!(out.status.success(), "as {from}: {}", transcript(&out));
    }

    // The null sender is nobody's address either.
    let mut smtp = Smtp::ehlo(addr(&server, "submission"), "raw.client.test");
    smtp.cmd("AUTH PLAIN AGJvYkBleGFtcGxlLnRlc3QAc2VjcmV0")
        .is(235, "2.7.0");
    smtp.cmd("MAIL FROM:<>").is(553, "5.7.1");
    smtp.cmd("MAIL FROM:<bob@example.test>").is(250, "2.1.0");
    drop(smtp);

    let store = Mailstore::open(&t);
    let inbox = store.inbox("alice@example.test");
    let senders: Vec<String> = inbox
        .iter()
        .map(|m| {
            let text = m.text();
            let line = text.lines().next().unwrap().to_string();
            line.to_ascii_lowercase()
        })
        .collect();
    assert_eq!(
        senders,
        [
            "return-path: <bob+x@example.test>",
            "return-path: <sales@example.test>",
            "return-path: <bob@example.test>"
        ]
    );
    assert!(store.queue().is_empty());
}

const PY_FROM_HEADER: &str = r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="submit.client.test")
s.login("alice@example.test", "secret")
out = {}
for name, path in (("forged", sys.argv[2]), ("own", sys.argv[3]), ("two", sys.argv[4])):
    try:
        s.sendmail("alice@example.test", ["bob@example.test"], open(path, "rb").read())
        out[name] = "250"
    except smtplib.SMTPDataError as e:
        out[name] = "%d %s" % (e.smtp_code, e.smtp_error.decode())
out["noop"] = r(s.noop())
s.quit()
print(json.dumps(out))
"#;

/// Submits, as alice, a message From: bob, one From: alice with a display
/// name, and one From: alice and bob; returns what each got.
fn submit_from_headers(config: &str) -> (serde_json::Value, Vec<String>) {
    let t = two_accounts(config);
    let server = t.start();
    let forged = write_file(
        &t,
        "forged.eml",
        b"From: Bob <bob@example.test>\r\nTo: bob@example.test\r\nSubject: forged\r\n\r\nnot bob\r\n",
    );
    let own = write_file(
        &t,
        "own.eml",
        b"From: \"Alice (work)\" <ALICE@example.test>\r\nTo: bob@example.test\r\nSubject: own\r\n\r\nme\r\n",
    );
    let two = write_file(
        &t,
        "two.eml",
        b"From: alice@example.test, bob@example.test\r\nTo: bob@example.test\r\nSubject: two\r\n\r\nus\r\n",
    );
    let out = python(
        &format!("{PY_PRELUDE}\n{PY_FROM_HEADER}"),
        &[
            &port(&server, "submission"),
            forged.to_str().unwrap(),
            own.to_str().unwrap(),
            two.to_str().unwrap(),
        ],
    );
    let store = Mailstore::open(&t);
    let subjects = store
        .inbox("bob@example.test")
        .iter()
        .map(|m| {
            let raw = String::from_utf8_lossy(&m.raw).into_owned();
            raw.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    (out, subjects)
}

#[test]
fn submission_refuses_a_from_header_the_user_may_not_send_as() {
    let (out, subjects) = submit_from_headers("");
    let forged = out["forged"].as_str().unwrap();
    assert!(forged.starts_with("553 5.7.1"), "{out}");
    assert!(forged.contains("bob@example.test"), "{out}");
    assert_eq!(out["own"], "250", "{out}");
    assert!(
        out["two"].as_str().unwrap().starts_with("553 5.7.1"),
        "{out}"
    );
    assert_eq!(out["noop"][0], 250, "{out}");
    assert_eq!(subjects, ["own"]);
}

#[test]
fn the_from_header_check_can_be_turned_off() {
    let (out, subjects) = submit_from_headers("[smtp]\ncheck_header_from = false");
    assert_eq!(out["forged"], "250", "{out}");
    assert_eq!(subjects, ["forged", "own", "two"]);
}
