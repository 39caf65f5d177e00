//! A private Dovecot for the differential tester: Debian's `dovecot`
//! binary with a configuration written here, IMAP only, on a loopback
//! ephemeral port, with a passwd-file of the same users and passwords as
//! Tern's and the same special-use mailboxes, subscribed, that a new Tern
//! account has. Nothing is read from `/etc/dovecot`.
//!
//! Dovecot refuses to deliver as root: the mail belongs to `nobody`
//! (65534), so the fixture needs root to hand its home over. Without root
//! or without Dovecot, [`Dovecot::start`] says why it cannot run.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The mail owner: Dovecot will not run a user's mail as root.
const MAIL_UID: u32 = 65534;

pub struct Dovecot {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts Dovecot for `users` (password "secret"), or says why it
    /// cannot on this machine.
    pub fn start(users: &[String]) -> Result<Dovecot, String> {
        if Command::new("dovecot").arg("--version").output().is_err() {
            return Err("dovecot is not installed (apt-get install dovecot-imapd)".into());
        }
        if !crate::config::running_as_root() {
            return Err("the Dovecot fixture needs root to give the mail to nobody".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let d = dir.path();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir(d.join(sub)).map_err(|e| e.to_string())?;
        }
        let passwd: String = users
            .iter()
            .map(|u| {
                format!(
                    "{u}:{{PLAIN}}secret:{MAIL_UID}:{MAIL_UID}::{}::\n",
                    d.join("home").join(u).display()
                )
            })
            .collect();
        std::fs::write(d.join("passwd"), passwd).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let conf = config(d, port);
        std::fs::write(d.join("dovecot.conf"), conf).map_err(|e| e.to_string())?;
        chown_nobody(&d.join("home"))?;
        // Dovecot logs to its stderr here: its "starting up" line comes
        // once the master has bound the listeners.
        let mut child = Command::new("dovecot")
            .args(["-F", "-c"])
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting dovecot: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let dovecot = Dovecot {
            child,
            addr,
            _dir: dir,
        };
        let mut log = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains("starting up") => break,
                Ok(line) => log.push(line),
                Err(_) => return Err(format!("dovecot did not start:\n{}", log.join("\n"))),
            }
        }
        TcpStream::connect(addr).map_err(|e| format!("dovecot at {addr}: {e}"))?;
        Ok(dovecot)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ephemeral port, free a moment ago (Dovecot binds it itself).
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn chown_nobody(path: &Path) -> Result<(), String> {
    let status = Command::new("chown")
        .args(["-R", &format!("{MAIL_UID}:{MAIL_UID}")])
        .arg(path)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("chown {} failed", path.display()))
    }
}

/// The configuration: what a new Tern account looks like (the same
/// special-use mailboxes, subscribed; "/" as separator; QUOTA without a
/// limit), plain LOGIN on loopback, maildir in each user's home.
fn config(d: &Path, port: u16) -> String {
    let d = d.display();
    format!(
        r#"base_dir = {d}/run
state_dir = {d}/state
log_path = /dev/stderr
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins quota
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
  mail_max_userip_connections = 100
}}
plugin {{
  quota = count:User quota
  quota_vsizes = yes
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox INBOX {{
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \Archive
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"#
    )
}
