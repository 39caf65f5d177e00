//! IMAP sessions driven in-process over an in-memory pipe: protocol
//! behaviour that a real socket cannot provoke cheaply, such as the Store
//! failing in the middle of a session.

use crate::{ImapServer, Mode};
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::{Limits, TlsConfig};
use tern_core::AuthLimiter;
use tern_mail::{Mail, MailConfig};
use tern_store::prelude::*;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::{Delivery, DeliveryTarget, NewAccount};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::watch;

/// Sends `command` and reads up to its tagged reply; every line read.
async fn run(c: &mut BufReader<DuplexStream>, tag: &str, command: &str) -> Vec<String> {
    c.get_mut()
        .write_all(format!("{tag} {command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            c.read_line(&mut line).await.unwrap() > 0,
            "closed after {lines:?}"
        );
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

/// An IMAP server over a fresh store with joe@example.test (password
/// "secret") and one message, and a client connected to it over a pipe
/// from loopback. The sender ends the session when dropped.
async fn connect(
    dir: &std::path::Path,
) -> (Arc<dyn Store>, BufReader<DuplexStream>, watch::Sender<bool>) {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join("t.db"), SqliteOptions::default()).unwrap());
    store.add_domain("example.test").await.unwrap();
    let joe = store
        .create_account(NewAccount {
            address: "joe@example.test".into(),
            password_hash: tern_core::password::hash_password("secret").unwrap(),
            quota_bytes: None,
        })
        .await
        .unwrap();
    store
        .deliver(Delivery {
            message: b"Subject: kept\r\n\r\nbody\r\n".to_vec().into(),
            recipients: vec![DeliveryTarget::inbox(joe.id)],
            received_at: 1,
        })
        .await
        .unwrap();
    let tls = tern_core::tls::server_config(&TlsConfig::default(), "imap.example.test", &[], dir)
        .unwrap();
    let mail = Arc::new(Mail::new(
        store.clone(),
        MailConfig {
            hostname: "imap.example.test".into(),
            recipient_delimiter: "+".into(),
            check_header_from: true,
        },
        Arc::new(AuthLimiter::new(5, Duration::from_secs(60))),
    ));
    let server = Arc::new(ImapServer {
        hostname: "imap.example.test".into(),
        store: store.clone(),
        mail,
        tls,
        limits: Limits::default(),
        tracer: Arc::new(tern_core::trace::Tracer::off()),
        recent: Default::default(),
    });
    let (client, io) = tokio::io::duplex(64 * 1024);
    let (stop, stopping) = watch::channel(false);
    let peer = "127.0.0.1:1143".parse().unwrap();
    tokio::spawn(server.handle(
        io,
        peer,
        Mode::Plain,
        Ok(tern_core::admission::ConnectionSlot::unlimited()),
        stopping,
    ));
    let mut c = BufReader::new(client);
    let mut greeting = String::new();
    c.read_line(&mut greeting).await.unwrap();
    assert!(greeting.starts_with("* OK"));
    (store, c, stop)
}

/// A command is bounded as a whole, lines and literals together: one that
/// continues over endless `{0+}` lines before login gets BAD, then BYE, and
/// the connection ends (it once made the server hold hundreds of MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_command_before_login_ends_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c, _stop) = connect(dir.path()).await;
    let (read, mut write) = tokio::io::split(c);
    let writer = tokio::spawn(async move {
        write.write_all(b"a LOGIN {0+}\r\n").await?;
        // 1 MiB of continuation lines: far past the bound.
        for _ in 0..(1 << 20) / 16 {
            write.write_all(b"x {0+}\r\n        ").await?;
        }
        std::io::Result::Ok(())
    });
    let mut lines = Vec::new();
    let mut read = BufReader::new(read);
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(30), read.read_line(&mut line))
            .await
            .expect("the server answers")
            .unwrap();
        if n == 0 {
            break;
        }
        lines.push(line);
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("a BAD") && l.contains("too long")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().starts_with("* BYE"), "{lines:?}");
    // The writer was cut off: the server closed before it was done.
    assert!(writer.await.unwrap().is_err());
}

/// A store error during FETCH is a NO for that command — never an OK with
/// the message silently left out — and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_during_fetch_is_a_no() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, mut c, _stop) = connect(dir.path()).await;
    assert!(run(&mut c, "a", "LOGIN joe@example.test secret")
        .await
        .last()
        .unwrap()
        .starts_with("a OK"));
    assert!(run(&mut c, "b", "SELECT INBOX")
        .await
        .last()
        .unwrap()
        .starts_with("b OK"));
    // The message bytes become unreadable under the session (a damaged
    // file would look the same to it), while its listing still reads.
    rusqlite::Connection::open(dir.path().join("t.db"))
        .unwrap()
        .execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE blob")
        .unwrap();
    let fetch = run(&mut c, "c", "FETCH 1 RFC822").await;
    assert!(
        fetch.last().unwrap().starts_with("c NO"),
        "a failed read must not pass for an expunged message: {fetch:?}"
    );
    let flags = run(&mut c, "d", "FETCH 1 FLAGS").await;
    assert!(flags.last().unwrap().starts_with("d OK"), "{flags:?}");
    assert!(flags[0].starts_with("* 1 FETCH"));
}
