//! External filters over the milter protocol (issue 13): the test starts
//! Debian's rspamd (its milter proxy, scanning by itself, with its own
//! configuration in a temporary directory and a DNS server that answers
//! nothing) and points Tern's `[milter] servers` at its socket. rspamd
//! refuses GTUBE through the protocol's reply code and adds its header
//! fields to what it accepts.
//!
//! Needs rspamd (`scripts/test.sh` installs it and sets
//! `TERN_REQUIRE_RSPAMD=1`, so it cannot be skipped there).

use crate::harness::*;
use crate::smtp::python;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Rspamd {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        // SIGTERM: the main process stops its workers with it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn start_rspamd() -> Result<Rspamd, String> {
    let rspamd = "/usr/bin/rspamd";
    if !std::path::Path::new(rspamd).exists() {
        return Err("rspamd is not installed (apt-get install rspamd)".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let p = dir.path();
    for sub in ["local.d", "override.d", "db", "run", "log"] {
        std::fs::create_dir(p.join(sub)).map_err(|e| e.to_string())?;
    }
    let socket = p.join("milter.sock");
    let files = [
        (
            "override.d/worker-proxy.inc",
            format!(
                "bind_socket = \"{} mode=0600\";\nmilter = yes;\ntimeout = 30s;\n\
                 upstream \"local\" {{\n  default = yes;\n  self_scan = yes;\n}}\n\
                 count = 1;\nmax_retries = 1;\ndiscard_on_reject = false;\n\
                 quarantine_on_reject = false;\nspam_header = \"X-Spam\";\n\
                 reject_message = \"Spam message rejected\";\n",
                socket.display()
            ),
        ),
        ("override.d/worker-normal.inc", "enabled = false;\n".into()),
        ("override.d/worker-controller.inc", "enabled = false;\n".into()),
        (
            "local.d/options.inc",
            "dns {\n  nameserver = [\"127.0.0.1:9\"];\n  timeout = 0.2s;\n  retransmits = 1;\n}\n".into(),
        ),
        (
            "local.d/logging.inc",
            format!("type = \"file\";\nfilename = \"{}\";\nlevel = \"info\";\n", p.join("log/rspamd.log").display()),
        ),
        (
            "local.d/milter_headers.conf",
            "use = [\"x-spamd-result\", \"x-rspamd-server\"];\nskip_local = false;\nskip_authenticated = false;\n".into(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(p.join(name), text).map_err(|e| e.to_string())?;
    }
    let var = |name: &str, value: PathBuf| format!("{name}={}", value.display());
    let child = Command::new(rspamd)
        .args([
            "-f",
            "-i",
            "-u",
            "root",
            "-g",
            "root",
            "-c",
            "/etc/rspamd/rspamd.conf",
        ])
        .args(["--var", &var("LOCAL_CONFDIR", p.to_path_buf())])
        .args(["--var", &var("DBDIR", p.join("db"))])
        .args(["--var", &var("RUNDIR", p.join("run"))])
        .args(["--var", &var("LOGDIR", p.join("log"))])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{rspamd}: {e}"))?;
    let rspamd = Rspamd {
        child,
        socket,
        _dir: dir,
    };
    // Ready when its milter socket accepts (it loads its rules first).
    poll_until(Duration::from_secs(120), "rspamd's milter socket", || {
        UnixStream::connect(&rspamd.socket)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    Ok(rspamd)
}

#[test]
fn rspamd_judges_and_marks_mail_through_the_milter_protocol() {
    let rspamd = match start_rspamd() {
        Ok(r) => r,
        Err(why) if std::env::var_os("TERN_REQUIRE_RSPAMD").is_none() => {
            eprintln!("rspamd milter test skipped: {why}");
            return;
        }
        Err(why) => panic!("the milter test needs rspamd: {why}"),
    };
    let dir = TestDir::with_config(&format!(
        "[milter]\nservers = [\"unix:{}\"]\n",
        rspamd.socket.display()
    ));
    dir.add_account("bob@example.test");
    let server = dir.start();
    let replies = python(
        r#"
import imaplib, json, smtplib, sys
out = []
for subject, body in [("clean", "Hello Bob, lunch at noon?"),
                      ("gtube", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X")]:
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
    s.ehlo("mx.remote.test")
    s.mail("ann@remote.test")
    s.rcpt("bob@example.test")
    code, text = s.data(("From: ann@remote.test\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\n%s\r\n" % (subject, body)).encode())
    s.quit()
    out.append([code, text.decode()])
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[2]))
m.login("bob@example.test", "secret")
typ, count = m.select("INBOX")
typ, data = m.fetch("1", "(BODY.PEEK[HEADER])")
out.append([int(count[0]), data[0][1].decode()])
print(json.dumps(out))
"#,
        &[
            &server.listeners["smtp"].port().to_string(),
            &server.listeners["imap"].port().to_string(),
        ],
    );
    assert_eq!(replies[0][0], 250, "clean mail passes: {replies}");
    assert_eq!(replies[1][0], 554, "GTUBE is refused by rspamd: {replies}");
    assert!(
        replies[1][1].as_str().unwrap().starts_with("5.7.1 "),
        "{replies}"
    );
    assert_eq!(replies[2][0], 1, "only the clean message is stored");
    let header = replies[2][1].as_str().unwrap();
    assert!(
        header.contains("X-Spamd-Result: default: False"),
        "rspamd's fields are added: {header}"
    );
    assert!(header.contains("X-Rspamd-Server:"), "{header}");
}
