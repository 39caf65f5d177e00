//! No open relay on port 25: without AUTH, mail goes only to our own
//! domains, however the address is spelled (RFC 5321 §3.6, §4.1.1.3, and
//! the old tricks of RFC 2505 §2). Raw TCP, so each path is sent exactly
//! as written here.

use super::*;

/// Each trick, the reply it must get, and why.
const TRICKS: &[(&str, u16, &str)] = &[
    // A plain remote recipient.
    ("<victim@remote.test>", 550, "5.7.1"),
    // %-hack: an odd local part at our domain, not a route.
    ("<victim%remote.test@example.test>", 550, "5.1.1"),
    // Bang path: likewise.
    ("<remote.test!victim@example.test>", 550, "5.1.1"),
    // Source route through us: ignored, the mailbox decides.
    ("<@example.test:victim@remote.test>", 550, "5.7.1"),
    (
        "<@example.test,@mail.example.test:victim@remote.test>",
        550,
        "5.7.1",
    ),
    // A quoted @ stays in the local part.
    ("<\"victim@remote.test\"@example.test>", 550, "5.1.1"),
    // Trailing dot and odd case are still the remote domain.
    ("<victim@remote.test.>", 550, "5.7.1"),
    ("<Victim@REMOTE.Test>", 550, "5.7.1"),
    // Address literals are never local, not even our own address.
    ("<victim@[192.0.2.1]>", 550, "5.7.1"),
    ("<bob@[127.0.0.1]>", 550, "5.7.1"),
];

#[test]
fn no_open_relay_trick_works_on_port_25_without_auth() {
    let t = two_accounts("");
    let server = t.start();
    let smtp_addr = addr(&server, "smtp");
    for &(path, code, status) in TRICKS {
        // One session per trick: refusals count towards the error limit.
        // Sending as one of our own users changes nothing either.
        for from in ["<sender@remote.test>", "<bob@example.test>"] {
            let mut smtp = Smtp::ehlo(smtp_addr, "relay.client.test");
            smtp.cmd(&format!("MAIL FROM:{from}")).is(250, "2.1.0");
            let reply = smtp.cmd(&format!("RCPT TO:{path}"));
            assert!(
                reply.code == code && reply.lines[0].starts_with(status),
                "RCPT TO:{path} (from {from}): expected {code} {status}, got {reply}"
            );
            // With no recipient accepted, there is nothing to send data for.
            smtp.cmd("DATA").is(554, "5.5.1");
            smtp.cmd("QUIT").is(221, "2.0.0");
        }
    }

    // Our own domain with a trailing dot and in capitals is ours.
    let mut smtp = Smtp::ehlo(smtp_addr, "relay.client.test");
    smtp.cmd("MAIL FROM:<sender@remote.test>").is(250, "2.1.0");
    smtp.cmd("RCPT TO:<bob@EXAMPLE.TEST.>").is(250, "2.1.5");
    smtp.cmd("DATA").is(354, "");
    smtp.send("Subject: trailing dot\r\n\r\nstill ours\r\n.\r\n");
    smtp.reply().is(250, "2.0.0");
    smtp.cmd("QUIT").is(221, "2.0.0");

    let store = Mailstore::open(&t);
    assert!(store.queue().is_empty(), "{:?}", store.queue());
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1);
    let fields = added_fields(
        &inbox[0].raw,
        b"Subject: trailing dot\r\n\r\nstill ours\r\n",
    );
    let received = field(&fields, "Received");
    assert!(received.contains(" for <bob@example.test>;"), "{received}");
    assert!(store.inbox("alice@example.test").is_empty());
}

#[test]
fn relaying_needs_auth_even_from_loopback_and_works_with_it_on_port_25() {
    let t = two_accounts("");
    let server = t.start();
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "relay.client.test");
    smtp.cmd("MAIL FROM:<bob@example.test>").is(250, "2.1.0");
    smtp.cmd("RCPT TO:<friend@remote.test>").is(550, "5.7.1");
    smtp.cmd("RSET").is(250, "2.0.0");
    // AUTH PLAIN with the initial response: "\0bob@example.test\0secret".
    smtp.cmd("AUTH PLAIN AGJvYkBleGFtcGxlLnRlc3QAc2VjcmV0")
        .is(235, "2.7.0");
    smtp.cmd("MAIL FROM:<bob@example.test>").is(250, "2.1.0");
    smtp.cmd("RCPT TO:<friend@remote.test>").is(250, "2.1.5");
    smtp.cmd("DATA").is(354, "");
    smtp.send("Subject: relayed\r\n\r\nwith AUTH\r\n.\r\n");
    smtp.reply().is(250, "2.0.0");
    smtp.cmd("QUIT").is(221, "2.0.0");
    let queue = Mailstore::open(&t).queue();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0].outbound.mail_from, "bob@example.test");
    let to: Vec<&str> = queue[0]
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(to, ["friend@remote.test"]);
}

#[test]
fn every_rejection_is_one_log_line_with_the_client_and_the_reason() {
    for json in [false, true] {
        let t = two_accounts("");
        let args: &[&str] = if json { &["--log-format", "json"] } else { &[] };
        let server = crate::harness::Server::start_with(&t.config(), t.dir.path(), args);
        let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "relay.client.test");
        smtp.cmd("MAIL FROM:<spammer@remote.test>").is(250, "2.1.0");
        let relay = smtp.cmd("RCPT TO:<victim@elsewhere.test>");
        assert_eq!(relay.code, 550, "{relay}");
        smtp.cmd("RCPT TO:<nobody@example.test>").is(550, "5.1.1");
        smtp.cmd("QUIT").is(221, "2.0.0");
        let (status, log) = server.stop_with("TERM");
        assert!(status.success());
        let rejects: Vec<&String> = log.iter().filter(|l| l.contains("smtp reject")).collect();
        assert_eq!(rejects.len(), 2, "{log:#?}");
        for (line, code) in rejects.iter().zip(["relaying denied", "5.1.1"]) {
            if json {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert_eq!(v["level"], "INFO", "{line}");
                assert_eq!(v["client"], "127.0.0.1", "{line}");
                let message = v["message"].as_str().unwrap();
                assert!(
                    message.contains(code) && message.contains("from=<spammer@remote.test>"),
                    "{line}"
                );
            } else {
                assert!(
                    line.contains("INFO")
                        && line.contains("client=127.0.0.1")
                        && line.contains(code),
                    "{line}"
                );
            }
        }
    }
}
