//! SMTP sessions driven in-process over an in-memory pipe
//! (`tokio::io::duplex`), no socket: what the shared connection
//! scaffolding makes possible. The end-to-end tests drive the real binary
//! with real clients; these pin protocol details cheaply.

use crate::{Mode, SmtpServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::{Limits, SmtpConfig, TlsConfig};
use tern_core::AuthLimiter;
use tern_mail::{Mail, MailConfig};
use tern_store::prelude::*;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::{NewAccount, Role};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::watch;

pub(crate) struct Fixture {
    pub(crate) server: Arc<SmtpServer>,
    pub(crate) store: Arc<dyn Store>,
    /// Sessions end when this says stop, or when it is dropped.
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// The data directory (its `tls/` holds the self-signed certificate).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default()).unwrap());
    store.add_domain("example.test").await.unwrap();
    store
        .create_account(NewAccount {
            address: "joe@example.test".into(),
            password_hash: "x".into(),
            quota_bytes: None,
        })
        .await
        .unwrap();
    let tls =
        tern_core::tls::server_config(&TlsConfig::default(), "mx.example.test", &[], dir.path())
            .unwrap();
    let mail = Arc::new(Mail::new(
        store.clone(),
        MailConfig {
            hostname: "mx.example.test".into(),
            recipient_delimiter: "+".into(),
            check_header_from: true,
        },
        Arc::new(AuthLimiter::new(5, Duration::from_secs(60))),
    ));
    let server = Arc::new(SmtpServer::new(
        mail,
        tls,
        SmtpConfig::default(),
        Limits::default(),
    ));
    Fixture {
        server,
        store,
        stop: watch::channel(false).0,
        _dir: dir,
    }
}

/// Starts a port-25 session from `peer` over a pipe; the client's end.
fn connect(f: &Fixture, peer: &str) -> BufReader<DuplexStream> {
    BufReader::new(serve(f, peer))
}

/// Starts a port-25 session from `peer` over a pipe; the client's end,
/// unbuffered (for the outbound client's tests).
pub(crate) fn serve(f: &Fixture, peer: &str) -> DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let peer: SocketAddr = peer.parse().unwrap();
    let stopping = f.stop.subscribe();
    tokio::spawn(f.server.clone().handle(
        server,
        peer,
        Mode::Mta,
        Ok(tern_core::admission::ConnectionSlot::unlimited()),
        stopping,
    ));
    client
}

/// Reads one whole reply (all its lines); the last line.
async fn reply(c: &mut BufReader<DuplexStream>) -> String {
    loop {
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        assert!(line.ends_with("\r\n"), "incomplete reply {line:?}");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_transaction_over_a_pipe() {
    let f = fixture().await;
    let mut c = connect(&f, "192.0.2.9:4000");
    assert!(reply(&mut c).await.starts_with("220 mx.example.test"));
    c.get_mut()
        .write_all(
            b"EHLO client.test\r\nMAIL FROM:<ann@remote.test>\r\nRCPT TO:<joe+x@example.test>\r\n\
              RCPT TO:<nobody@example.test>\r\nDATA\r\n",
        )
        .await
        .unwrap();
    assert!(reply(&mut c).await.starts_with("250 "));
    assert!(reply(&mut c).await.starts_with("250 2.1.0"));
    assert!(reply(&mut c).await.starts_with("250 2.1.5"));
    assert!(reply(&mut c).await.starts_with("550 5.1.1"));
    assert!(reply(&mut c).await.starts_with("354"));
    c.get_mut()
        .write_all(b"Subject: piped\r\n\r\n..dot-stuffed\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    assert!(reply(&mut c)
        .await
        .starts_with("250 2.0.0 message accepted"));
    assert!(reply(&mut c).await.starts_with("221"));
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
    assert_eq!(entries.len(), 1);
    let raw = f
        .store
        .read_blob(joe.id, &entries[0].blob_id)
        .await
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text
        .starts_with("Return-Path: <ann@remote.test>\r\nReceived: from client.test ([192.0.2.9])"));
    assert!(text.ends_with("Subject: piped\r\n\r\n.dot-stuffed\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_in_plaintext_from_afar_and_relaying_is_refused() {
    let f = fixture().await;
    let mut c = connect(&f, "198.51.100.1:5000");
    reply(&mut c).await;
    c.get_mut()
        .write_all(b"EHLO x\r\nAUTH PLAIN AGpvZUBleGFtcGxlLnRlc3QAeA==\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<victim@elsewhere.test>\r\n")
        .await
        .unwrap();
    reply(&mut c).await;
    assert!(reply(&mut c).await.starts_with("538 5.7.11"));
    assert!(reply(&mut c).await.starts_with("250"));
    assert!(reply(&mut c).await.starts_with("550 5.7.1"));
    // The session carries on after refusals.
    c.get_mut().write_all(b"NOOP\r\n").await.unwrap();
    assert!(reply(&mut c).await.starts_with("250"));
    // The client going away ends the session; nothing was queued.
    drop(c);
    assert!(f.store.queue_list().await.unwrap().is_empty());
}
