//! A whole POP3 session with Python's poplib (RFC 1939 §5–§7) on port 110
//! in the clear (allowed on loopback), on port 995 (RFC 8314) and after
//! STLS (RFC 2595 §4); dot-stuffing on the wire (RFC 1939 §3); and a
//! 20 MiB message retrieved byte-exact.

use super::*;
use sha2::{Digest, Sha256};

/// How poplib reaches the server.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Plain,
    Tls,
    Stls,
}

/// Three messages in, then every TRANSACTION command with poplib; checks
/// what it saw against the store, and that QUIT removed only the message
/// still marked deleted after RSET.
fn full_session(via: Via) {
    let t = bob("");
    let server = t.start();
    deliver(&server, &message("first", "one line\r\n"));
    deliver(
        &server,
        &message("second", "body line 1\r\nbody line 2\r\nbody line 3\r\n"),
    );
    deliver(&server, &message("third", "the last one\r\n"));
    let imap = Imap::open(&t, BOB);
    let inbox = imap.list(Role::Inbox);
    let raws = imap.inbox_raw();
    assert_eq!(inbox.len(), 3);

    let (listener, mode) = match via {
        Via::Plain => ("pop3", "plain"),
        Via::Tls => ("pop3s", "ssl"),
        Via::Stls => ("pop3", "stls"),
    };
    let dir = t.dir.path().to_str().unwrap();
    let out = poplib(
        r#"
mode, port, dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "ssl":
    p = poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=60)
else:
    p = poplib.POP3("127.0.0.1", port, timeout=60)
out = {"welcome": s(p.getwelcome()), "capa": p.capa()}
if mode == "stls":
    out["stls"] = s(p.stls(context=ctx))
    out["capa_tls"] = p.capa()
out["tls"] = hasattr(p.sock, "version") and p.sock.version()
out["user"] = s(p.user("bob@example.test"))
out["pass"] = s(p.pass_("secret"))
out["stat"] = list(p.stat())
resp, lines, _ = p.list()
out["list"] = [s(resp)] + [s(l) for l in lines]
resp, lines, _ = p.uidl()
out["uidl"] = [s(resp)] + [s(l) for l in lines]
out["list2"] = s(p.list(2))
out["uidl2"] = s(p.uidl(2))
out["retr"] = []
for i in (1, 2, 3):
    resp, lines, octets = p.retr(i)
    save(f"{dir}/retr{i}", lines)
    out["retr"].append(s(resp))
for n in (0, 2):
    resp, lines, _ = p.top(2, n)
    save(f"{dir}/top{n}", lines)
out["dele"] = [s(p.dele(1)), s(p.dele(3))]
out["stat_deleted"] = list(p.stat())
resp, lines, _ = p.list()
out["list_deleted"] = [s(l) for l in lines]
for name, call in (("retr_deleted", lambda: p.retr(1)), ("dele_again", lambda: p.dele(3))):
    try:
        call()
        out[name] = "no error"
    except poplib.error_proto as e:
        out[name] = s(e.args[0])
out["rset"] = s(p.rset())
out["stat_rset"] = list(p.stat())
out["noop"] = s(p.noop())
out["dele_last"] = s(p.dele(2))
out["quit"] = s(p.quit())
print(json.dumps(out))
"#,
        &[mode, &port(&server, listener), dir],
    );

    assert!(
        out["welcome"]
            .as_str()
            .unwrap()
            .starts_with("+OK Tern POP3 server mail.example.test ready"),
        "{out}"
    );
    let stls_offered = out["capa"].get("STLS").is_some();
    assert_eq!(stls_offered, via != Via::Tls, "{}", out["capa"]);
    if via == Via::Stls {
        assert_eq!(out["stls"], "+OK begin TLS negotiation");
        assert!(out["capa_tls"].get("STLS").is_none(), "{}", out["capa_tls"]);
        assert!(out["capa_tls"].get("USER").is_some(), "{}", out["capa_tls"]);
    }
    let tls = out["tls"].as_str().unwrap_or("");
    assert_eq!(
        tls.starts_with("TLSv1."),
        via != Via::Plain,
        "TLS version {:?}",
        out["tls"]
    );
    assert_eq!(out["user"], "+OK send PASS");
    let total: u64 = inbox.iter().map(|e| e.size).sum();
    assert_eq!(
        out["pass"],
        format!("+OK maildrop has 3 messages ({total} octets)")
    );
    assert_eq!(out["stat"], serde_json::json!([3, total]));
    let expect_list: Vec<String> = std::iter::once(format!("+OK 3 messages ({total} octets)"))
        .chain(
            inbox
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{} {}", i + 1, e.size)),
        )
        .collect();
    assert_eq!(out["list"], serde_json::json!(expect_list));
    // UIDL is the email's store id (RFC 1939 §7: 1 to 70 printable
    // characters, unique in the maildrop).
    let expect_uidl: Vec<String> = std::iter::once(format!("+OK 3 messages ({total} octets)"))
        .chain(
            inbox
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{} {}", i + 1, e.email_id)),
        )
        .collect();
    assert_eq!(out["uidl"], serde_json::json!(expect_uidl));
    assert_eq!(out["list2"], format!("+OK 2 {}", inbox[1].size));
    assert_eq!(out["uidl2"], format!("+OK 2 {}", inbox[1].email_id));

    // RETR: the stored message, byte for byte, with the trace fields the
    // SMTP server added in front.
    for (i, raw) in raws.iter().enumerate() {
        assert_eq!(out["retr"][i], format!("+OK {} octets", raw.len()));
        let got = std::fs::read(t.dir.path().join(format!("retr{}", i + 1))).unwrap();
        assert!(
            got == *raw,
            "RETR {}:\n{}\nstored:\n{}",
            i + 1,
            show(&got),
            show(raw)
        );
        assert!(raw.starts_with(b"Return-Path: <sender@remote.test>\r\nReceived: "));
    }
    // TOP: the header, the blank line, and n lines of the body.
    let top0 = std::fs::read(t.dir.path().join("top0")).unwrap();
    assert_eq!(show(&top0), show(header_of(&raws[1])));
    let top2 = std::fs::read(t.dir.path().join("top2")).unwrap();
    assert_eq!(
        show(&top2),
        show(&[header_of(&raws[1]), b"body line 1\r\nbody line 2\r\n"].concat())
    );

    // DELE hides a message for the rest of the session; RSET brings back.
    assert_eq!(
        out["dele"],
        serde_json::json!(["+OK message 1 deleted", "+OK message 3 deleted"])
    );
    assert_eq!(out["stat_deleted"], serde_json::json!([1, inbox[1].size]));
    assert_eq!(
        out["list_deleted"],
        serde_json::json!([format!("2 {}", inbox[1].size)])
    );
    assert_eq!(out["retr_deleted"], "-ERR message 1 is deleted");
    assert_eq!(out["dele_again"], "-ERR message 3 is deleted");
    assert_eq!(
        out["rset"],
        format!("+OK maildrop has 3 messages ({total} octets)")
    );
    assert_eq!(out["stat_rset"], serde_json::json!([3, total]));
    assert_eq!(out["noop"], "+OK");
    assert_eq!(out["dele_last"], "+OK message 2 deleted");
    assert_eq!(
        out["quit"],
        "+OK mail.example.test signing off (1 messages deleted)"
    );

    // UPDATE removed the second message only.
    let after: Vec<EmailId> = imap.list(Role::Inbox).iter().map(|e| e.email_id).collect();
    assert_eq!(after, [inbox[0].email_id, inbox[2].email_id]);
}

#[test]
fn poplib_session_on_port_110_in_the_clear_on_loopback() {
    full_session(Via::Plain);
}

#[test]
fn poplib_session_on_port_995_over_implicit_tls() {
    full_session(Via::Tls);
}

#[test]
fn poplib_session_after_stls_on_port_110() {
    full_session(Via::Stls);
}

#[test]
fn lines_starting_with_a_dot_survive_and_are_stuffed_on_the_wire() {
    let t = bob("");
    let server = t.start();
    let sent = b"From: <sender@remote.test>\r\n\
        To: <bob@example.test>\r\n\
        Subject: dots\r\n\
        \r\n\
        .one dot\r\n\
        ..two dots\r\n\
        .\r\n\
        ..\r\n\
        ...\r\n\
        a line . with dots . inside\r\n\
        .\r\n\
        last\r\n";
    // The raw SMTP client stuffs; the SMTP server unstuffs.
    deliver(&server, sent);
    let imap = Imap::open(&t, BOB);
    let stored = imap.inbox_raw().remove(0);
    assert!(stored.ends_with(sent), "stored:\n{}", show(&stored));

    // poplib unstuffs: the message comes back as stored.
    let out = poplib(
        r#"
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=60)
p.user("bob@example.test")
p.pass_("secret")
retr, lines, octets = p.retr(1)
save(sys.argv[2], lines)
resp, top, _ = p.top(1, 3)
save(sys.argv[3], top)
p.quit()
print(json.dumps({"retr": s(retr)}))
"#,
        &[
            &port(&server, "pop3"),
            t.dir.path().join("retr").to_str().unwrap(),
            t.dir.path().join("top").to_str().unwrap(),
        ],
    );
    assert_eq!(out["retr"], format!("+OK {} octets", stored.len()));
    let got = std::fs::read(t.dir.path().join("retr")).unwrap();
    assert_eq!(show(&got), show(&stored));
    let top = std::fs::read(t.dir.path().join("top")).unwrap();
    assert_eq!(
        show(&top),
        show(&[header_of(&stored), b".one dot\r\n..two dots\r\n.\r\n"].concat())
    );

    // On the wire each of those lines carries one more dot, and the lone
    // "." of the body can never be taken for the end of the response.
    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    assert_eq!(pop.ok("RETR 1"), format!("+OK {} octets", stored.len()));
    let wire = pop.wire();
    assert_eq!(show(&wire), show(&stuffed(&stored)));
    let body = &wire[header_of(&wire).len()..];
    assert!(
        body.starts_with(b"..one dot\r\n...two dots\r\n..\r\n...\r\n....\r\n"),
        "{}",
        show(body)
    );
    pop.ok("TOP 1 3");
    assert_eq!(
        show(&pop.wire()),
        show(
            &[
                header_of(&stored),
                b"..one dot\r\n...two dots\r\n..\r\n.\r\n"
            ]
            .concat()
        )
    );
    pop.ok("QUIT");
}

#[test]
fn a_20_mib_message_is_retrieved_byte_exact() {
    let t = bob("");
    let server = t.start();
    let mut sent =
        b"From: <sender@remote.test>\r\nTo: <bob@example.test>\r\nSubject: big\r\n\r\n".to_vec();
    let mut i = 0u64;
    while sent.len() < 20 << 20 {
        // Every 997th line starts with a dot, stuffed on both protocols.
        let lead = if i.is_multiple_of(997) { '.' } else { 'L' };
        sent.extend_from_slice(
            format!("{lead}{i:010} {}\r\n", "0123456789abcdef".repeat(4)).as_bytes(),
        );
        i += 1;
    }
    deliver(&server, &sent);
    let imap = Imap::open(&t, BOB);
    let entry = imap.list(Role::Inbox).remove(0);
    let email = imap.email(entry.email_id);
    assert!(email.size > 20 << 20);

    let out = poplib(
        r#"
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=300)
p.user("bob@example.test")
p.pass_("secret")
size = p.list(1)
resp, lines, octets = p.retr(1)
data = joined(lines)
p.quit()
print(json.dumps({"list": s(size), "retr": s(resp), "len": len(data),
                  "sha256": hashlib.sha256(data).hexdigest()}))
"#,
        &[&port(&server, "pop3")],
    );
    assert_eq!(out["list"], format!("+OK 1 {}", email.size));
    assert_eq!(out["retr"], format!("+OK {} octets", email.size));
    assert_eq!(out["len"], email.size);
    // The blob id is the SHA-256 of the stored message.
    assert_eq!(out["sha256"], email.blob_id.as_str());
    assert_eq!(
        email.blob_id.as_str(),
        Sha256::digest(imap.raw(entry.email_id))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
}

#[test]
fn a_message_stored_with_bare_lf_is_sent_and_sized_with_crlf() {
    // IMAP APPEND (and JMAP import) may store bare LF line ends. POP3 sends
    // CRLF, and RFC 1939 §11 says the sizes of STAT, LIST and RETR count
    // each line end as the two octets the client receives.
    let t = bob("");
    let server = t.start();
    let imap = Imap::open(&t, BOB);
    let stored = b"From: <sender@remote.test>\nSubject: lf\n\n.dot\nline 2\n".to_vec();
    imap.append(Role::Inbox, &stored);
    let crlf = b"From: <sender@remote.test>\r\nSubject: lf\r\n\r\n.dot\r\nline 2\r\n";

    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    pop.ok("RETR 1");
    let wire = pop.wire();
    assert_eq!(show(&wire), show(&stuffed(crlf)));
    pop.ok("TOP 1 1");
    assert_eq!(
        show(&pop.wire()),
        show(b"From: <sender@remote.test>\r\nSubject: lf\r\n\r\n..dot\r\n.\r\n")
    );
    let size = crlf.len();
    assert_eq!(
        (pop.ok("STAT"), pop.ok("LIST 1")),
        (format!("+OK 1 {size}"), format!("+OK 1 {size}")),
        "stored {} octets, sent {size}",
        stored.len()
    );
    assert_eq!(pop.ok("RETR 1"), format!("+OK {size} octets"));
    pop.wire();
    pop.ok("QUIT");
}
