//! Tern delivering to Postfix (issue 12): a private Postfix from Debian —
//! its own configuration, queue and Maildirs in a temporary directory,
//! smtpd on a loopback address with STARTTLS and a self-signed
//! certificate, `virtual` delivery into a Maildir — as the MX host of
//! `pf.test`. What Postfix wrote to the Maildir shows how the message
//! came: over TLS, with its 8-bit body as it was (Postfix offers
//! 8BITMIME), with both DKIM signatures, which dkimpy verifies.
//!
//! Needs root and Postfix (`scripts/test.sh` installs it and sets
//! `TERN_REQUIRE_POSTFIX=1`, so it cannot be skipped there).

use crate::dns_server::DnsServer;
use crate::harness::*;
use crate::smtp::python;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The owner of Postfix's virtual mailboxes (no such user need exist).
const VMAIL_ID: u32 = 5000;
const POSTFIX_IP: &str = "127.0.0.13";

struct Postfix {
    child: Child,
    conf: PathBuf,
    mail: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private Postfix receiving `pf.test` for `pat@pf.test`, or why not.
fn start_postfix() -> Result<Postfix, String> {
    if !Path::new("/usr/sbin/postfix").exists() {
        return Err("postfix is not installed (apt-get install postfix)".into());
    }
    if !crate::config::running_as_root() {
        return Err("a private Postfix needs root".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let sh = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    // Postfix's daemons (user postfix) and virtual (VMAIL_ID) traverse it.
    sh(Command::new("chmod").arg("755").arg(d))?;
    let conf = d.join("conf");
    for sub in ["conf", "queue", "data", "mail"] {
        std::fs::create_dir(d.join(sub)).map_err(|e| e.to_string())?;
    }
    sh(Command::new("chown").arg("postfix:").arg(d.join("data")))?;
    sh(Command::new("chown")
        .arg(format!("{VMAIL_ID}:{VMAIL_ID}"))
        .arg(d.join("mail")))?;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = rcgen::CertificateParams::new(vec!["mx.pf.test".to_string()])
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| e.to_string())?;
    std::fs::write(conf.join("cert.pem"), cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(conf.join("key.pem"), key.serialize_pem()).map_err(|e| e.to_string())?;
    let port = {
        let probe = std::net::TcpListener::bind((POSTFIX_IP, 0)).map_err(|e| e.to_string())?;
        probe.local_addr().map_err(|e| e.to_string())?.port()
    };
    let main_cf = format!(
        "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.pf.test
mydomain = pf.test
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relayhost =
default_transport = error:this test instance relays nothing
relay_transport = error:this test instance relays nothing
smtp_dns_support_level = disabled
smtpd_tls_security_level = may
smtpd_tls_cert_file = {d}/conf/cert.pem
smtpd_tls_key_file = {d}/conf/key.pem
smtpd_tls_received_header = yes
alias_maps =
alias_database =
local_recipient_maps =
biff = no
virtual_mailbox_domains = pf.test
virtual_mailbox_maps = hash:{d}/conf/vmailbox
virtual_mailbox_base = {d}/mail
virtual_uid_maps = static:{VMAIL_ID}
virtual_gid_maps = static:{VMAIL_ID}
virtual_minimum_uid = 100
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
",
        d = d.display()
    );
    std::fs::write(conf.join("main.cf"), main_cf).map_err(|e| e.to_string())?;
    let master_cf = format!(
        "{POSTFIX_IP}:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"
    );
    std::fs::write(conf.join("master.cf"), master_cf).map_err(|e| e.to_string())?;
    std::fs::write(conf.join("vmailbox"), "pat@pf.test pf.test/pat/\n")
        .map_err(|e| e.to_string())?;
    sh(Command::new("postmap")
        .arg("-c")
        .arg(&conf)
        .arg(format!("hash:{}/vmailbox", conf.display())))?;
    sh(Command::new("postfix").arg("-c").arg(&conf).arg("check"))?;
    let child = Command::new("postfix")
        .arg("-c")
        .arg(&conf)
        .arg("start-fg")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postfix: {e}"))?;
    let postfix = Postfix {
        child,
        conf,
        mail: d.join("mail"),
        port,
        _dir: dir,
    };
    // Ready when smtpd's port answers.
    poll_until(Duration::from_secs(30), "Postfix listening", || {
        TcpStream::connect((POSTFIX_IP, port))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    Ok(postfix)
}

/// The first message Postfix delivered to pat, waiting for it.
fn delivered(postfix: &Postfix) -> Vec<u8> {
    let new = postfix.mail.join("pf.test/pat/new");
    let file = poll_until(Duration::from_secs(60), "Postfix delivering", || {
        std::fs::read_dir(&new)
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(|e| e.ok())
            .ok_or_else(|| format!("nothing in {}", new.display()))
    });
    std::fs::read(file.path()).unwrap()
}

#[test]
fn postfix_receives_over_starttls_with_8bit_and_dkim_intact() {
    let postfix = match start_postfix() {
        Ok(p) => p,
        Err(why) if std::env::var_os("TERN_REQUIRE_POSTFIX").is_none() => {
            eprintln!("Postfix receiver test skipped: {why}");
            return;
        }
        Err(why) => panic!("the Postfix receiver test needs Postfix: {why}"),
    };
    let dns = DnsServer::start();
    dns.mx("pf.test", 10, "mx.pf.test");
    dns.a("mx.pf.test", POSTFIX_IP.parse::<Ipv4Addr>().unwrap());
    let a_dir = TestDir::with_config(&format!(
        "[dns]\nservers = [\"{}\"]\n[outbound]\nmx_port = {}\n",
        dns.addr, postfix.port
    ));
    a_dir.init();
    a_dir.add_account("ann@a.test");
    let records = crate::mx::dkim_generate(&a_dir, "a.test");
    let a = a_dir.start();
    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.login("ann@a.test", "secret")
msg = "From: Ann <ann@a.test>\r\nTo: pat@pf.test\r\nSubject: to Postfix\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\u00e9 cr\u00e8me\r\n"
r = s.sendmail("ann@a.test", ["pat@pf.test"], msg.encode("utf-8"), mail_options=["BODY=8BITMIME"])
s.quit()
print(json.dumps(r))
"#,
        &[&a.listeners["submission"].port().to_string()],
    );
    assert_eq!(sent, serde_json::json!({}));

    let raw = delivered(&postfix);
    let text = String::from_utf8(raw.clone()).expect("8-bit UTF-8 body kept as it was");
    assert!(text.contains("Caf\u{e9} cr\u{e8}me"), "{text}");
    assert!(
        text.contains("with ESMTPS"),
        "Postfix received it over TLS: {text}"
    );
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    // Postfix adds Return-Path and Delivered-To above the signatures;
    // dkimpy verifies the message as it arrived.
    let verdicts = crate::mx::dkimpy_verifies(&raw, &records);
    assert_eq!(verdicts, serde_json::json!([true, true]));
    drop(a);
}
