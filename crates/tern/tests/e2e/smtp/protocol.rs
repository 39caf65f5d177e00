//! The protocol under stress: SIZE (RFC 1870), CHUNKING (RFC 3030),
//! PIPELINING (RFC 2920), STARTTLS command injection (RFC 3207 §4.2,
//! CVE-2011-0411), SMTP smuggling (bare LF / CR line ends, RFC 5321
//! §2.3.8), and malformed or endless input that must never take the server
//! down.

use super::*;

#[test]
fn size_is_advertised_and_enforced_and_the_session_survives_it() {
    let t = two_accounts("[limits]\nmax_message_size = 100000");
    let server = t.start();
    let big = {
        let mut m = message("too big", "");
        while m.len() <= 150_000 {
            m.extend_from_slice(
                b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
            );
        }
        m
    };
    let small = message("small after big", "fits\r\n");
    let fb = write_file(&t, "big.eml", &big);
    let fs = write_file(&t, "small.eml", &small);
    let out = python(
        &format!(
            "{PY_PRELUDE}\n{}",
            r#"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo()
big, small = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
out = {"size": s.esmtp_features.get("size")}
# sendmail declares SIZE= itself: refused at MAIL.
try:
    s.sendmail("sender@remote.test", ["bob@example.test"], big)
    out["declared"] = "accepted"
except smtplib.SMTPSenderRefused as e:
    out["declared"] = [e.smtp_code, e.smtp_error.decode()]
# Undeclared, the data is read to its end and refused after it.
out["mail"] = r(s.mail("sender@remote.test"))
out["rcpt"] = r(s.rcpt("bob@example.test"))
out["data"] = r(s.data(big))
out["noop"] = r(s.noop())
out["small"] = list(s.sendmail("sender@remote.test", ["bob@example.test"], small))
out["quit"] = r(s.quit())
print(json.dumps(out))
"#
        ),
        &[
            &port(&server, "smtp"),
            fb.to_str().unwrap(),
            fs.to_str().unwrap(),
        ],
    );
    assert_eq!(out["size"], "100000", "{out}");
    assert_eq!(out["declared"][0], 552, "{out}");
    assert!(
        out["declared"][1].as_str().unwrap().starts_with("5.3.4 "),
        "{out}"
    );
    assert_eq!(out["mail"][0], 250, "{out}");
    assert_eq!(out["rcpt"][0], 250, "{out}");
    assert_eq!(out["data"][0], 552, "{out}");
    assert!(
        out["data"][1].as_str().unwrap().starts_with("5.3.4 "),
        "{out}"
    );
    assert_eq!(out["noop"][0], 250, "{out}");
    assert_eq!(out["small"], serde_json::json!([]), "{out}");
    assert_eq!(out["quit"][0], 221, "{out}");

    // MAIL FROM with SIZE= past the limit, by hand too.
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "raw.client.test");
    smtp.cmd("MAIL FROM:<sender@remote.test> SIZE=100001")
        .is(552, "5.3.4");
    smtp.cmd("MAIL FROM:<sender@remote.test> SIZE=100000")
        .is(250, "2.1.0");
    smtp.cmd("QUIT").is(221, "2.0.0");

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1, "only the small message");
    added_fields(&inbox[0].raw, &small);
}

#[test]
fn bdat_past_the_size_limit_gets_552_and_stores_nothing() {
    let t = two_accounts("[limits]\nmax_message_size = 100000");
    let server = t.start();
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "chunky.client.test");
    let head: &[u8] = b"Subject: chunked too big\r\n\r\n";
    let big = vec![b'x'; 150_000];
    // Over the limit in the second chunk, and in the first and only one.
    for chunks in [vec![head, &big[..]], vec![&big[..]]] {
        smtp.cmd("MAIL FROM:<sender@remote.test>").is(250, "2.1.0");
        smtp.cmd("RCPT TO:<bob@example.test>").is(250, "2.1.5");
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.iter().enumerate() {
            let flag = if i == last { " LAST" } else { "" };
            smtp.send(format!("BDAT {}{flag}\r\n", chunk.len()));
            smtp.send(chunk);
            let reply = smtp.reply();
            if i < last {
                reply.is(250, "2.0.0");
            } else {
                assert!(
                    reply.code == 552 && reply.lines[0].starts_with("5.3.4"),
                    "{} chunk(s) of {} bytes in all past a limit of 100000: {reply}",
                    chunks.len(),
                    chunks.iter().map(|c| c.len()).sum::<usize>()
                );
            }
        }
        // The whole chunk was read: the session is in step.
        smtp.cmd("NOOP").is(250, "2.0.0");
    }
    smtp.cmd("QUIT").is(221, "2.0.0");
    let store = Mailstore::open(&t);
    assert!(store.inbox("bob@example.test").is_empty());
}

/// Python, because its ssl module is a real TLS client that can wrap a
/// socket we drove by hand: after EHLO, sends STARTTLS with more commands
/// in the same write, completes the handshake, and records the replies.
const PY_STARTTLS_INJECTION: &str = r#"
import socket
port = int(sys.argv[1])
class Conn:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""
    def reply(self):
        lines = []
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    lines.append("<closed>")
                    return lines
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.decode().rstrip("\r")
            lines.append(line)
            if line[3:4] != "-":
                return lines
    def cmd(self, data):
        self.sock.sendall(data)
        return self.reply()
out = {}
for name, injected in [("rset", b"RSET\r\n"),
                       ("ehlo_mail", b"EHLO evil.test\r\nMAIL FROM:<evil@remote.test>\r\n")]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    c = Conn(sock)
    c.reply()
    c.cmd(b"EHLO client.test\r\n")
    res = {"starttls": c.cmd(b"STARTTLS\r\n" + injected), "leftover": c.buf.decode()}
    c = Conn(ctx.wrap_socket(sock))
    res["first"] = c.cmd(b"MAIL FROM:<a@remote.test>\r\n")
    res["ehlo"] = c.cmd(b"EHLO client.test\r\n")
    res["mail"] = c.cmd(b"MAIL FROM:<a@remote.test>\r\n")
    res["noop"] = c.cmd(b"NOOP\r\n")
    res["quit"] = c.cmd(b"QUIT\r\n")
    out[name] = res
print(json.dumps(out))
"#;

#[test]
fn commands_sent_with_starttls_are_discarded_not_run_inside_tls() {
    let t = two_accounts("");
    let server = t.start();
    let out = python(
        &format!("{PY_PRELUDE}\n{PY_STARTTLS_INJECTION}"),
        &[&port(&server, "smtp")],
    );
    for variant in ["rset", "ehlo_mail"] {
        let v = &out[variant];
        let first_line = |key: &str| v[key][0].as_str().unwrap_or_default().to_string();
        assert!(first_line("starttls").starts_with("220 2.0.0"), "{v}");
        assert_eq!(v["leftover"], "", "no reply to the injected commands: {v}");
        // The session starts over inside TLS: MAIL before EHLO is out of
        // order. Had the injected commands run, their replies would come
        // first (250 for RSET, the EHLO's 250 lines).
        assert!(
            first_line("first").starts_with("503 5.5.1"),
            "{variant}: {v}"
        );
        assert!(
            first_line("ehlo").starts_with("250-mail.example.test greets client.test"),
            "{v}"
        );
        assert!(
            !v["ehlo"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().contains("STARTTLS")),
            "{v}"
        );
        // No injected MAIL FROM is open: a new one starts cleanly.
        assert_eq!(v["mail"][0], "250 2.1.0 sender OK", "{v}");
        assert_eq!(v["noop"][0], "250 2.0.0 OK", "no stray reply queued: {v}");
        assert!(first_line("quit").starts_with("221 "), "{v}");
    }
}

#[test]
fn smuggled_messages_behind_bare_line_ends_are_refused_as_one() {
    smuggling("[smtp]\nbare_lf = \"reject\"", false);
}

#[test]
fn bare_lf_is_normalized_by_default_and_never_ends_the_data() {
    smuggling("", true);
}

/// Sends each smuggling variant in one transaction. With `bare_lf`
/// normalized, a variant using only bare LFs is one accepted message (the
/// smuggled part inside it); anything with a bare CR, or any bare line end
/// under `reject`, is refused with 554. Never is a second message seen.
fn smuggling(config: &str, lf_normalized: bool) {
    let t = two_accounts(config);
    let server = t.start();
    let smuggled = "MAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\
                    Subject: smuggled\r\n\r\nevil\r\n";
    let variants = [
        (
            "LF.LF",
            false,
            format!("Subject: one\r\n\r\nhello\n.\n{smuggled}"),
        ),
        (
            "CRLF.LF",
            false,
            format!("Subject: two\r\n\r\nhello\r\n.\n{smuggled}"),
        ),
        // The SEC Consult variant: a bare LF, then "." CRLF.
        (
            "LF.CRLF",
            false,
            format!("Subject: lfcrlf\r\n\r\nhello\n.\r\n{smuggled}"),
        ),
        (
            "CR.CR",
            true,
            format!(
                "Subject: three\r\n\r\nhello\r.\r{}",
                smuggled.replace("\r\n", "\r")
            ),
        ),
        (
            "all three in one",
            true,
            format!(
                "Subject: four\r\n\r\na\n.\n{smuggled}b\r\n.\n{smuggled}c\r.\r{}",
                smuggled.replace("\r\n", "\r")
            ),
        ),
    ];
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "smuggler.client.test");
    let mut accepted = Vec::new();
    for (name, has_bare_cr, data) in &variants {
        smtp.cmd("MAIL FROM:<sender@remote.test>").is(250, "2.1.0");
        smtp.cmd("RCPT TO:<bob@example.test>").is(250, "2.1.5");
        smtp.cmd("DATA").is(354, "");
        // The real end, then a command, in the same write: exactly one
        // reply for the whole data, then the command's.
        smtp.send(format!("{data}\r\n.\r\nRSET\r\n"));
        let reply = smtp.reply();
        if lf_normalized && !has_bare_cr {
            assert!(reply.code == 250, "{name}: {reply}");
            accepted.push(*name);
        } else {
            assert!(
                reply.code == 554 && reply.lines[0].starts_with("5.6.0"),
                "{name}: {reply}"
            );
        }
        let reply = smtp.reply();
        assert!(
            reply.code == 250 && reply.lines[0].starts_with("2.0.0 reset"),
            "{name}: a second reply that is not RSET's means a smuggled command ran: {reply}"
        );
        smtp.cmd("NOOP").is(250, "2.0.0");
    }
    // The session is still good for honest mail.
    let honest = message("honest", "after the smugglers\r\n");
    smtp.send_mail("sender@remote.test", &["bob@example.test"], &honest)
        .is(250, "2.0.0");
    smtp.cmd("QUIT").is(221, "2.0.0");

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(
        inbox.len(),
        accepted.len() + 1,
        "the honest message, and each normalized one as one message: {accepted:?}"
    );
    added_fields(&inbox[accepted.len()].raw, &honest);
    for m in &inbox[..accepted.len()] {
        let raw = String::from_utf8_lossy(&m.raw);
        assert!(
            !raw.replace("\r\n", "").contains('\n'),
            "stored with CRLF line ends only: {raw:?}"
        );
        assert!(
            raw.contains("MAIL FROM:<evil@remote.test>"),
            "the smuggled part stays inside the message: {raw:?}"
        );
    }
    assert!(
        store.inbox("alice@example.test").is_empty(),
        "nothing smuggled"
    );
}

#[test]
fn bdat_chunks_are_stored_byte_exact_and_stray_chunks_are_consumed() {
    let t = two_accounts("");
    let server = t.start();
    let mut smtp = Smtp::connect(addr(&server, "smtp"));
    let ehlo = smtp.cmd("EHLO chunky.client.test");
    assert!(ehlo.has("CHUNKING"), "{ehlo}");

    // Several chunks, then an empty LAST. BDAT has no terminator and no dot
    // stuffing: a CRLF.CRLF and leading dots inside are just data.
    let chunks: [&[u8]; 3] = [
        b"From: <sender@remote.test>\r\nSubject: chunked\r\n\r\n",
        b"line one\r\n.\r\nnot the end\r\n..two dots stay two\r\n",
        b"last chunk, split mid-li",
    ];
    let tail: &[u8] = b"ne\r\n";
    smtp.cmd("MAIL FROM:<sender@remote.test> BODY=8BITMIME")
        .is(250, "2.1.0");
    smtp.cmd("RCPT TO:<bob@example.test>").is(250, "2.1.5");
    for chunk in chunks.iter().chain([&tail]) {
        smtp.send(format!("BDAT {}\r\n", chunk.len()));
        smtp.send(chunk);
        smtp.reply().is(250, "2.0.0");
    }
    smtp.cmd("BDAT 0 LAST").is(250, "2.0.0");
    let first: Vec<u8> = [&chunks[..], &[tail]].concat().concat();

    // One pipelined write: MAIL, RCPT and a single BDAT LAST.
    let second: &[u8] = b"From: <sender@remote.test>\r\nSubject: one chunk\r\n\r\nbare\nLF and bare\rCR are data here\r\n";
    let mut write = format!(
        "MAIL FROM:<sender@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT {} LAST\r\n",
        second.len()
    )
    .into_bytes();
    write.extend_from_slice(second);
    smtp.send(&write);
    smtp.reply().is(250, "2.1.0");
    smtp.reply().is(250, "2.1.5");
    smtp.reply().is(250, "2.0.0");

    // BDAT without a transaction is refused, but its chunk ("QUIT\r\n")
    // is read as data, not run: the next reply is NOOP's.
    smtp.send("BDAT 6\r\nQUIT\r\nNOOP\r\n");
    smtp.reply().is(503, "5.5.1");
    smtp.reply().is(250, "2.0.0");
    smtp.cmd("BDAT 0 LAST").is(503, "5.5.1");
    smtp.cmd("QUIT").is(221, "2.0.0");

    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 2);
    added_fields(&store.find("bob@example.test", "chunked").raw, &first);
    added_fields(&store.find("bob@example.test", "one chunk").raw, second);
}

#[test]
fn pipelined_commands_get_their_replies_in_order() {
    let t = two_accounts("");
    let server = t.start();
    let mut smtp = Smtp::connect(addr(&server, "smtp"));
    smtp.send(
        "EHLO pipe.client.test\r\nMAIL FROM:<sender@remote.test>\r\nRCPT TO:<bob@example.test>\r\n\
         RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n",
    );
    let ehlo = smtp.reply();
    ehlo.is(250, "");
    assert!(ehlo.has("PIPELINING"), "{ehlo}");
    smtp.reply().is(250, "2.1.0");
    smtp.reply().is(250, "2.1.5");
    smtp.reply().is(550, "5.1.1");
    smtp.reply().is(250, "2.1.5");
    smtp.reply().is(354, "");
    let sent = message("pipelined", "all in one go\r\n");
    let mut data = sent.clone();
    data.extend_from_slice(b".\r\nNOOP\r\nQUIT\r\n");
    smtp.send(&data);
    smtp.reply().is(250, "2.0.0");
    smtp.reply().is(250, "2.0.0");
    smtp.reply().is(221, "2.0.0");
    assert!(smtp.is_closed());

    // swaks pipelines MAIL, RCPT and DATA when PIPELINING is offered.
    let text = tool_ok(
        "swaks",
        &[
            "--server",
            &format!("127.0.0.1:{}", port(&server, "smtp")),
            "--pipeline",
            "--from",
            "sender@remote.test",
            "--to",
            "bob@example.test",
            "--header",
            "Subject: swaks pipeline",
            "--body",
            "pipelined by swaks",
        ],
        t.dir.path(),
    );
    // Its transcript shows the three commands sent before any reply.
    assert!(
        text.contains(
            " -> MAIL FROM:<sender@remote.test>\n -> RCPT TO:<bob@example.test>\n -> DATA\n<-  250 2.1.0"
        ),
        "{text}"
    );

    let store = Mailstore::open(&t);
    let to_bob = store.find("bob@example.test", "pipelined");
    let to_alice = store.find("alice@example.test", "pipelined");
    assert_eq!(to_bob.email.blob_id, to_alice.email.blob_id);
    added_fields(&to_bob.raw, &sent);
    assert!(store
        .find("bob@example.test", "swaks pipeline")
        .text()
        .contains("pipelined by swaks"));
}

#[test]
fn malformed_commands_get_5xx_and_ten_errors_end_the_session() {
    let t = two_accounts("");
    let server = t.start();
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "sloppy.client.test");
    // Each is refused and the session goes on: NOOP after each still works.
    let errors: &[(&str, u16, &str)] = &[
        ("FROB", 500, "5.5.1"),
        ("MAIL FROM:bob@example.test", 501, "5.1.3"),
        ("MAIL TO:<bob@example.test>", 501, "5.5.4"),
        ("MAIL FROM:<a@remote.test> FOO=1", 555, "5.5.4"),
        ("RCPT TO:<bob@example.test>", 503, "5.5.1"),
        ("DATA", 503, "5.5.1"),
        ("HELO", 501, "5.5.4"),
        ("EXPN bob", 502, "5.5.1"),
    ];
    for &(line, code, status) in errors {
        let reply = smtp.cmd(line);
        assert!(
            reply.code == code && reply.lines[0].starts_with(status),
            "{line:?}: expected {code} {status}, got {reply}"
        );
        smtp.cmd("NOOP").is(250, "2.0.0");
    }
    // Not UTF-8 is a syntax error: the ninth.
    smtp.send(b"EHLO \xff\xfe\x00\r\n");
    smtp.reply().is(501, "5.5.4");
    // The tenth error is answered, then the session ends with 421.
    smtp.cmd("BDAT x").is(501, "5.5.4");
    smtp.reply().is(421, "4.7.0");
    assert!(smtp.is_closed());

    // A new connection works as if nothing happened.
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "fresh.client.test");
    smtp.send_mail(
        "sender@remote.test",
        &["bob@example.test"],
        &message("after errors", "ok\r\n"),
    )
    .is(250, "2.0.0");
    smtp.cmd("QUIT").is(221, "2.0.0");
    Mailstore::open(&t).find("bob@example.test", "after errors");
}

#[test]
fn command_lines_are_limited_to_4096_bytes_with_their_crlf() {
    let t = two_accounts("");
    let server = t.start();
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "long.client.test");
    let line = |total: usize| format!("NOOP {}", "x".repeat(total - "NOOP \r\n".len()));
    smtp.cmd(&line(4096)).is(250, "2.0.0");
    smtp.cmd(&line(4097)).is(500, "5.5.2");
    // A megabyte without a line end is read and dropped, not buffered.
    smtp.cmd(&line(1 << 20)).is(500, "5.5.2");
    smtp.cmd("NOOP").is(250, "2.0.0");
    smtp.send_mail(
        "sender@remote.test",
        &["bob@example.test"],
        &message("after long lines", "ok\r\n"),
    )
    .is(250, "2.0.0");
    smtp.cmd("QUIT").is(221, "2.0.0");
    Mailstore::open(&t).find("bob@example.test", "after long lines");
}

#[test]
fn nothing_a_peer_sends_takes_the_server_down() {
    let t = two_accounts("");
    let server = t.start();
    let smtp_addr = addr(&server, "smtp");

    // Binary noise, NULs, a TLS ClientHello on the plaintext port.
    let mut noise = Vec::new();
    let mut x: u32 = 0x2545_f491;
    for _ in 0..64 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    for garbage in [
        noise.as_slice(),
        b"\x00\x00\x00\x00\r\n\x00\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        b"EHLO a\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: cut\r\n\r\npartial",
        b"EHLO a\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT 1000000 LAST\r\nshort",
        b"AUTH LOGIN\r\n",
        b"STARTTLS\r\nnot a handshake at all\r\n",
    ] {
        // The server may hang up first (too many errors): a failed write
        // is fine. Then we hang up too, whatever state the session is in,
        // and wait for the server to end it.
        let mut tcp = TcpStream::connect(smtp_addr).unwrap();
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = tcp.write_all(garbage);
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        let _ = std::io::Read::read_to_end(&mut tcp, &mut Vec::new());
    }
    // Plaintext on the implicit-TLS port.
    let mut tcp = TcpStream::connect(addr(&server, "submissions")).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.write_all(b"EHLO plain.client.test\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut tcp, &mut buf);
    assert!(
        !buf.starts_with(b"220"),
        "no SMTP greeting without TLS on 465"
    );

    // The server is still there and still delivers.
    let mut smtp = Smtp::ehlo(smtp_addr, "fresh.client.test");
    smtp.send_mail(
        "sender@remote.test",
        &["bob@example.test"],
        &message("survivor", "still here\r\n"),
    )
    .is(250, "2.0.0");
    smtp.cmd("QUIT").is(221, "2.0.0");
    let store = Mailstore::open(&t);
    let inbox = store.inbox("bob@example.test");
    assert_eq!(inbox.len(), 1, "nothing half-sent was stored");
    assert!(inbox[0].text().contains("Subject: survivor"));
}
