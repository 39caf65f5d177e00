//! Virus scanning through ClamAV's clamd (issue 13): the test starts
//! Debian's clamd on a Unix socket with a signature database of its own
//! making (the EICAR test file's hash: signature downloads are not possible
//! here), points Tern's `[virus] clamd` at it, and sends mail on port 25
//! and through submission with Python's smtplib.
//!
//! Needs clamd (`scripts/test.sh` installs clamav-daemon and sets
//! `TERN_REQUIRE_CLAMD=1`, so it cannot be skipped there).

use crate::harness::*;
use crate::smtp::python;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The EICAR anti-virus test file (eicar.org): harmless, and detected by
/// every scanner as if it were a virus.
const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

struct Clamd {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_clamd() -> Result<Clamd, String> {
    let clamd = ["/usr/sbin/clamd", "/usr/bin/clamd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("clamd is not installed (apt-get install clamav-daemon)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = dir.path().join("db");
    std::fs::create_dir(&db).map_err(|e| e.to_string())?;
    // A hash signature (clamav's .hdb: md5:size:name) of the EICAR file.
    let md5 = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(EICAR.as_bytes())?;
            c.wait_with_output()
        })
        .map_err(|e| e.to_string())?;
    let md5 = String::from_utf8_lossy(&md5.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    std::fs::write(
        db.join("tern-test.hdb"),
        format!("{md5}:{}:Tern-Test-EICAR\n", EICAR.len()),
    )
    .map_err(|e| e.to_string())?;
    let socket = dir.path().join("clamd.sock");
    let config = dir.path().join("clamd.conf");
    std::fs::write(
        &config,
        format!(
            "DatabaseDirectory {}\nLocalSocket {}\nForeground yes\nPidFile {}\n",
            db.display(),
            socket.display(),
            dir.path().join("clamd.pid").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = Command::new(clamd)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{clamd}: {e}"))?;
    let clamd = Clamd {
        child,
        socket,
        _dir: dir,
    };
    // Ready when its socket accepts.
    poll_until(Duration::from_secs(60), "clamd listening", || {
        UnixStream::connect(&clamd.socket)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    Ok(clamd)
}

/// A message with the EICAR file attached.
fn infected(from: &str) -> String {
    use base64::Engine;
    format!(
        "From: <{from}>\r\nTo: <bob@example.test>\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
         Please see the attachment.\r\n--b1\r\nContent-Type: application/octet-stream; name=invoice.com\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        base64::engine::general_purpose::STANDARD.encode(EICAR)
    )
}

/// Sends `message` on port 25 (or, with `login`, through submission) and
/// returns the reply to DATA.
fn send(server: &Server, login: bool, from: &str, message: &str) -> (u64, String) {
    let port = if login {
        server.listeners["submission"].port()
    } else {
        server.listeners["smtp"].port()
    };
    let reply = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo("client.test")
if sys.argv[2] == "1":
    s.login(sys.argv[3], "secret")
s.mail(sys.argv[3])
s.rcpt("bob@example.test")
code, text = s.data(sys.argv[4].encode())
s.quit()
print(json.dumps([code, text.decode()]))
"#,
        &[
            &port.to_string(),
            if login { "1" } else { "0" },
            from,
            message,
        ],
    );
    (
        reply[0].as_u64().unwrap(),
        reply[1].as_str().unwrap().into(),
    )
}

fn tern_with(clamd: &Clamd, on_failure: &str) -> (TestDir, Server) {
    let dir = TestDir::with_config(&format!(
        "[virus]\nclamd = \"{}\"\non_failure = \"{on_failure}\"\n",
        clamd.socket.display()
    ));
    dir.add_account("bob@example.test");
    dir.add_account("ann@example.test");
    let server = dir.start();
    (dir, server)
}

#[test]
fn clamd_refuses_eicar_at_smtp_time_and_its_absence_defers_or_passes() {
    let mut clamd = match start_clamd() {
        Ok(c) => c,
        Err(why) if std::env::var_os("TERN_REQUIRE_CLAMD").is_none() => {
            eprintln!("clamd test skipped: {why}");
            return;
        }
        Err(why) => panic!("the virus test needs clamd: {why}"),
    };
    let (_dir, server) = tern_with(&clamd, "defer");
    let (_open_dir, open) = tern_with(&clamd, "accept");

    let (code, text) = send(&server, false, "x@remote.test", &infected("x@remote.test"));
    assert_eq!(code, 554, "{text}");
    assert!(
        text.starts_with("5.7.1 ") && text.contains("Tern-Test-EICAR"),
        "{text}"
    );
    // Our own users cannot send it either.
    let (code, text) = send(
        &server,
        true,
        "ann@example.test",
        &infected("ann@example.test"),
    );
    assert_eq!(code, 554, "submission: {text}");
    let clean = "From: <x@remote.test>\r\nSubject: clean\r\n\r\nNothing to see.\r\n";
    let (code, text) = send(&server, false, "x@remote.test", clean);
    assert_eq!(code, 250, "{text}");

    // clamd gone: "defer" tells the sender to come back, "accept" lets it in.
    let _ = clamd.child.kill();
    let _ = clamd.child.wait();
    let (code, text) = send(&server, false, "x@remote.test", clean);
    assert_eq!(code, 451, "{text}");
    assert!(text.starts_with("4.7.0 "), "{text}");
    let (code, text) = send(&open, false, "x@remote.test", clean);
    assert_eq!(code, 250, "{text}");

    // Only the clean message was stored.
    let stored = python(
        r#"
import imaplib, json, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("bob@example.test", "secret")
typ, count = m.select("INBOX")
print(json.dumps(int(count[0])))
"#,
        &[&server.listeners["imap"].port().to_string()],
    );
    assert_eq!(stored, 1);
}
