//! The outbound client against Tern's own inbound session (over a pipe)
//! and against scripted servers that behave as odd real ones do: no
//! ESMTP, no PIPELINING, temporary and permanent refusals, broken replies.

use super::*;
use crate::session::tests::{fixture, serve};
use tern_store::Role;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: from.into(),
        mail_params: Vec::new(),
        rcpt_to: to.iter().map(|t| (t.to_string(), Vec::new())).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_to_tern_pipelined_with_a_refused_recipient() {
    let f = fixture().await;
    let io = serve(&f, "192.0.2.10:4000");
    let mut s = Session::open(Box::new(io), "out.example.net", Timeouts::default())
        .await
        .unwrap();
    assert!(
        s.capabilities.pipelining && s.capabilities.chunking,
        "{:?}",
        s.capabilities
    );
    assert!(s.greeting.lines[0].starts_with("mx.example.test"));
    let message = b"From: ann@remote.test\r\nSubject: out\r\n\r\n.leading dot\r\nbody\r\n";
    let out = s
        .send(
            &envelope(
                "ann@remote.test",
                &["joe@example.test", "nobody@example.test"],
            ),
            message,
        )
        .await
        .unwrap();
    assert!(out.mail.is_positive(), "{out:?}");
    assert!(out.rcpts[0].is_positive());
    assert_eq!(out.rcpts[1].code, 550);
    assert_eq!(out.rcpts[1].enhanced_status(), Some("5.1.1"));
    assert!(out.data.as_ref().unwrap().is_positive(), "{out:?}");
    assert_eq!(out.for_recipient(0).code, 250);
    assert_eq!(out.for_recipient(1).code, 550);
    // The same session carries the next message.
    let again = s
        .send(
            &envelope("", &["joe@example.test"]),
            b"Subject: two\r\n\r\nx",
        )
        .await
        .unwrap();
    assert!(again.data.unwrap().is_positive());
    s.quit().await;

    let joe = f
        .store
        .account_by_address("joe@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = f
        .store
        .mailbox_by_role(joe.id, Role::Inbox)
        .await
        .unwrap()
        .unwrap();
    let entries = f.store.list_messages(joe.id, inbox.id).await.unwrap();
    assert_eq!(entries.len(), 2);
    let first = f
        .store
        .read_blob(joe.id, &entries[0].blob_id)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.ends_with("\r\n.leading dot\r\nbody\r\n"), "{text}");
}

/// A server speaking from a script: each step reads one command line (or
/// the DATA body up to `.`) and answers with the given reply lines.
async fn scripted(
    steps: Vec<(&'static str, &'static str)>,
) -> (DuplexStream, tokio::task::JoinHandle<Vec<String>>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        let mut server = BufReader::new(server);
        let mut seen = Vec::new();
        server
            .get_mut()
            .write_all(b"220 old.example ESMTP\r\n")
            .await
            .unwrap();
        for (expect, answer) in steps {
            let mut got = String::new();
            if expect == "<body>" {
                loop {
                    let mut line = String::new();
                    if server.read_line(&mut line).await.unwrap() == 0 {
                        break;
                    }
                    got.push_str(&line);
                    if line == ".\r\n" {
                        break;
                    }
                }
            } else {
                server.read_line(&mut got).await.unwrap();
                assert!(got.starts_with(expect), "expected {expect:?}, got {got:?}");
            }
            seen.push(got);
            server.get_mut().write_all(answer.as_bytes()).await.unwrap();
        }
        let mut quit = String::new();
        server.read_line(&mut quit).await.unwrap();
        assert_eq!(quit, "QUIT\r\n");
        server.get_mut().write_all(b"221 bye\r\n").await.unwrap();
        seen
    });
    (client, task)
}

#[tokio::test]
async fn an_old_server_gets_helo_and_one_command_at_a_time() {
    let (io, server) = scripted(vec![
        ("EHLO out.example.net", "500 5.5.1 what?\r\n"),
        ("HELO out.example.net", "250 old.example\r\n"),
        ("MAIL FROM:<ann@remote.test>", "250 ok\r\n"),
        (
            "RCPT TO:<a@old.example>",
            "451 4.3.0 greylisted, try later\r\n",
        ),
        ("RCPT TO:<b@old.example>", "250 ok\r\n"),
        ("DATA", "354 go on\r\n"),
        ("<body>", "250-queued\r\n250 as 12345\r\n"),
    ])
    .await;
    let mut s = Session::open(Box::new(io), "out.example.net", Timeouts::default())
        .await
        .unwrap();
    assert!(!s.capabilities.esmtp && !s.capabilities.pipelining);
    let out = s
        .send(
            &envelope("ann@remote.test", &["a@old.example", "b@old.example"]),
            b"Subject: x\n\n.one\nlast line without break",
        )
        .await
        .unwrap();
    assert!(out.rcpts[0].is_transient());
    assert_eq!(out.for_recipient(0).code, 451);
    let data = out.data.clone().unwrap();
    assert_eq!(data.lines, ["queued", "as 12345"]);
    assert_eq!(out.for_recipient(1), &data);
    s.quit().await;
    let seen = server.await.unwrap();
    // Bare LFs became CRLF, the leading dot was doubled, the last line
    // got its line break.
    assert_eq!(
        seen[6],
        "Subject: x\r\n\r\n..one\r\nlast line without break\r\n.\r\n"
    );
}

#[tokio::test]
async fn no_recipient_accepted_resets_and_sends_no_data() {
    let (io, server) = scripted(vec![
        ("EHLO", "250-old.example\r\n250 SIZE 1000\r\n"),
        ("MAIL FROM:<>", "250 ok\r\n"),
        ("RCPT TO:<gone@old.example>", "550 5.1.1 no such user\r\n"),
        ("RSET", "250 ok\r\n"),
    ])
    .await;
    let mut s = Session::open(Box::new(io), "out.example.net", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(s.capabilities.size, Some(1000));
    let out = s
        .send(&envelope("", &["gone@old.example"]), b"x\r\n")
        .await
        .unwrap();
    assert!(out.data.is_none());
    assert!(out.for_recipient(0).is_permanent());
    s.quit().await;
    assert_eq!(server.await.unwrap().len(), 4);
}

#[tokio::test]
async fn refusals_and_broken_replies_are_errors() {
    // A 554 greeting: permanent.
    let (client, server) = tokio::io::duplex(1024);
    tokio::spawn(async move {
        let mut server = server;
        server.write_all(b"554 5.7.1 go away\r\n").await.unwrap();
        let mut rest = Vec::new();
        let _ = server.read_to_end(&mut rest).await;
    });
    let e = Session::open(Box::new(client), "out.example.net", Timeouts::default())
        .await
        .err()
        .unwrap();
    assert!(!e.is_transient(), "{e}");

    // A reply that is no reply, and a server that hangs up.
    for greeting in [&b"hello there\r\n"[..], b"220-first\r\n"] {
        let (client, server) = tokio::io::duplex(1024);
        let greeting = greeting.to_vec();
        tokio::spawn(async move {
            let mut server = server;
            server.write_all(&greeting).await.unwrap();
        });
        let e = Session::open(Box::new(client), "out.example.net", Timeouts::default())
            .await
            .err()
            .unwrap();
        assert!(e.is_transient(), "{e}");
    }

    // A server that says nothing: the timeout, not a hang.
    let (client, _server) = tokio::io::duplex(1024);
    let quick = Timeouts {
        command: Duration::from_millis(50),
        data_end: Duration::from_millis(50),
    };
    let e = Session::open(Box::new(client), "out.example.net", quick)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClientError::Timeout(_)), "{e}");
}

#[test]
fn dot_stuffing_and_line_ends() {
    assert_eq!(dot_stuffed(b""), b".\r\n");
    assert_eq!(dot_stuffed(b".\r\n"), b"..\r\n.\r\n");
    assert_eq!(dot_stuffed(b"a\r\n.b\nc"), b"a\r\n..b\r\nc\r\n.\r\n");
    assert_eq!(dot_stuffed(b"a\rb\r\n"), b"a\rb\r\n.\r\n");
    assert_eq!(dot_stuffed(b"a\r"), b"a\r\r\n.\r\n");
    assert_eq!(dot_stuffed(b"\r\r\n\n.."), b"\r\r\n\r\n...\r\n.\r\n");
    assert_eq!(dot_stuffed(b"\n.\n"), b"\r\n..\r\n.\r\n");
}

#[test]
fn capabilities_from_an_ehlo_reply() {
    let reply = PeerReply {
        code: 250,
        lines: vec![
            "mx.example.net Hello".into(),
            "PIPELINING".into(),
            "SIZE 52428800".into(),
            "8bitmime".into(),
            "STARTTLS".into(),
            "AUTH PLAIN login".into(),
            "SMTPUTF8".into(),
            "CHUNKING".into(),
            "DSN".into(),
            "X-UNKNOWN".into(),
        ],
    };
    let caps = Capabilities::from_ehlo(&reply);
    assert!(caps.pipelining && caps.eight_bit_mime && caps.starttls && caps.smtputf8);
    assert!(caps.chunking && caps.dsn && !caps.requiretls);
    assert_eq!(caps.size, Some(52_428_800));
    assert_eq!(caps.auth, ["PLAIN", "LOGIN"]);
}

/// STARTTLS against Tern's own inbound session: the certificate is checked
/// against the roots given (here the session's self-signed one), EHLO is
/// said again, and the transaction runs inside TLS. A client trusting
/// other roots refuses the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_checks_the_certificate() {
    let f = fixture().await;
    let cert_path = f.dir().join("tls").join("cert.pem");
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in tern_core::tls::load_certs(&cert_path).unwrap() {
        roots.add(c).unwrap();
    }
    let trusting = tern_core::tls::client_config_with(roots).unwrap();
    let name = ServerName::try_from("mx.example.test").unwrap();

    let s = Session::open(
        Box::new(serve(&f, "192.0.2.11:4000")),
        "out.example.net",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert!(s.capabilities.starttls && !s.is_tls());
    let mut s = s.starttls(trusting, name.clone()).await.unwrap();
    assert!(s.is_tls());
    assert!(!s.capabilities.starttls, "STARTTLS is not offered twice");
    let out = s
        .send(
            &envelope("ann@remote.test", &["joe@example.test"]),
            b"Subject: tls\r\n\r\nx\r\n",
        )
        .await
        .unwrap();
    assert!(out.data.unwrap().is_positive());
    s.quit().await;

    // The system's roots do not know a self-signed certificate.
    let empty =
        tern_core::tls::client_config_with(tokio_rustls::rustls::RootCertStore::empty()).unwrap();
    let s = Session::open(
        Box::new(serve(&f, "192.0.2.11:4001")),
        "out.example.net",
        Timeouts::default(),
    )
    .await
    .unwrap();
    let e = s.starttls(empty, name).await.err().unwrap();
    assert!(matches!(e, ClientError::Tls(_)), "{e}");
}

#[tokio::test]
async fn auth_plain_sends_one_initial_response() {
    let (io, server) = scripted(vec![
        ("EHLO", "250-relay.example\r\n250 AUTH PLAIN LOGIN\r\n"),
        ("AUTH PLAIN AGFubgBzM2NyZXQ=", "235 2.7.0 ok\r\n"),
        ("AUTH PLAIN AGFubgB3cm9uZw==", "535 5.7.8 no\r\n"),
    ])
    .await;
    let mut s = Session::open(Box::new(io), "out.example.net", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(s.capabilities.auth, ["PLAIN", "LOGIN"]);
    s.auth_plain("ann", "s3cret").await.unwrap();
    let e = s.auth_plain("ann", "wrong").await.err().unwrap();
    assert!(!e.is_transient(), "{e}");
    s.quit().await;
    server.await.unwrap();
}
