//! The durability promise end to end: under a load of concurrent SMTP
//! sessions the server is killed with SIGKILL; after a restart every
//! message that got its 250 is in its mailbox exactly once.

use crate::harness::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_store::prelude::*;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::{Role, Store};

/// Reads one (possibly multi-line) reply; its code, or None if the
/// connection is gone.
fn reply(r: &mut impl BufRead) -> Option<u16> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.len() < 4 {
            return None;
        }
        if line.as_bytes()[3] == b' ' {
            return line[..3].parse().ok();
        }
    }
}

/// Sends messages on one connection until the server dies or `stop` is
/// set; pushes the subject of every message that got 250.
fn sender(addr: SocketAddr, worker: usize, acked: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    if reply(&mut r) != Some(220) {
        return;
    }
    if w.write_all(b"EHLO crash.test\r\n").is_err() || reply(&mut r) != Some(250) {
        return;
    }
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let subject = format!("crash-{worker}-{i}");
        let body = format!(
            "From: s@remote.test\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\r\n{}\r\n.\r\n",
            "line of text\r\n".repeat(100)
        );
        let steps: [(&[u8], u16); 4] = [
            (b"MAIL FROM:<s@remote.test>\r\n", 250),
            (b"RCPT TO:<bob@example.test>\r\n", 250),
            (b"DATA\r\n", 354),
            (body.as_bytes(), 250),
        ];
        for (bytes, want) in steps {
            if w.write_all(bytes).is_err() {
                return;
            }
            match reply(&mut r) {
                Some(code) if code == want => {}
                _ => return,
            }
        }
        acked.lock().unwrap().push(subject);
    }
}

#[test]
fn kill_9_under_smtp_load_loses_no_acknowledged_message() {
    let t = TestDir::new();
    t.add_account("bob@example.test");
    let server = t.start();
    let addr = server.listeners["smtp"];
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || sender(addr, w, acked, stop))
        })
        .collect();
    // Kill mid-burst, once a good number of messages were acknowledged.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 400 {
        assert!(
            std::time::Instant::now() < deadline,
            "the load never reached 400 messages"
        );
        std::thread::yield_now();
    }
    let pid = server.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    drop(server);
    let acked = acked.lock().unwrap().clone();

    // The store opens cleanly and holds each acknowledged message once.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store =
            SqliteStore::open(&t.data_dir().join("tern.db"), SqliteOptions::default()).unwrap();
        let bob = store
            .account_by_address("bob@example.test")
            .await
            .unwrap()
            .unwrap();
        let inbox = store
            .mailbox_by_role(bob.id, Role::Inbox)
            .await
            .unwrap()
            .unwrap();
        let mut counts = std::collections::HashMap::new();
        for e in store.list_messages(bob.id, inbox.id).await.unwrap() {
            let email = store.email(bob.id, e.email_id).await.unwrap();
            *counts.entry(email.summary.subject).or_insert(0) += 1;
        }
        for subject in &acked {
            assert_eq!(
                counts.get(subject),
                Some(&1),
                "{subject} acknowledged but stored {:?} times",
                counts.get(subject)
            );
        }
        assert!(
            counts.values().all(|&n| n == 1),
            "a message was stored twice"
        );
        store.close().await.unwrap();
    });

    // And the server starts again on the same data and takes mail.
    let server = t.start();
    let stream = TcpStream::connect(server.listeners["smtp"]).unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(reply(&mut r), Some(220));
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
}
