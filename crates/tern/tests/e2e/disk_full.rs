//! A full disk (issue 10), on a small tmpfs the test mounts (as root; the
//! test says so and passes without it otherwise): writes get temporary
//! failures with the right codes, reads keep working, everything works
//! again once space is freed — without a restart — and a server stopped on
//! a full disk starts again.

use crate::harness::TestDir;
use crate::imap::{Imap, USER};
use crate::smtp::{addr, Smtp};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }

    fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap()
    }

    /// Fills the disk up to `leave` bytes free with a ballast file.
    fn fill(&self, leave: u64) {
        let size = self.available().saturating_sub(leave);
        let ballast = self.0.join("ballast");
        let mut existing = std::fs::metadata(&ballast).map(|m| m.len()).unwrap_or(0);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&ballast)
            .unwrap();
        let block = vec![0x55u8; 1 << 20];
        let target = existing + size;
        while existing < target {
            let n = ((target - existing) as usize).min(block.len());
            if std::io::Write::write_all(&mut file, &block[..n]).is_err() {
                break;
            }
            existing += n as u64;
        }
    }

    fn free(&self) {
        let _ = std::fs::remove_file(self.0.join("ballast"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn big_message(n: usize) -> Vec<u8> {
    let mut m = format!("From: <sender@remote.test>\r\nSubject: filler {n}\r\n\r\n").into_bytes();
    while m.len() < 300 << 10 {
        m.extend_from_slice(
            format!("filler line {} of message {n} with words\r\n", m.len()).as_bytes(),
        );
    }
    m
}

#[test]
fn a_full_disk_gives_temporary_failures_and_recovers_without_a_restart() {
    let t = TestDir::with_config("");
    let Some(disk) = Tmpfs::mount(&t.data_dir(), "48m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    t.add_account(USER);
    let server = t.start();
    let mut smtp = Smtp::ehlo(addr(&server, "smtp"), "filler.client.test");
    smtp.send_mail(
        "sender@remote.test",
        &[USER],
        b"Subject: before\r\n\r\nfindable words\r\n",
    )
    .is(250, "2.0.0");
    disk.fill(2 << 20);
    // Deliver until the disk refuses: the refusal is 452 4.3.1.
    let mut refused = None;
    for n in 0..40 {
        let reply = smtp.send_mail("sender@remote.test", &[USER], &big_message(n));
        if reply.code != 250 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the disk never filled");
    if refused.code != 452 {
        let (_, log) = server.stop_with("TERM");
        panic!("{refused}\n{}", log.join("\n"));
    }
    refused.is(452, "4.3.1");
    smtp.cmd("NOOP").is(250, "2.0.0");

    // Reads keep working; an APPEND is refused with OVERQUOTA.
    let mut imap = Imap::login(crate::imap::addr(&server, "imap"));
    imap.run("SELECT INBOX").ok();
    imap.run("FETCH 1 BODY.PEEK[]").ok();
    // Free pages inside the database may take a small message or two; keep
    // appending until the disk refuses, which must say OVERQUOTA.
    disk.fill(0);
    let mut refused = false;
    for n in 0..40 {
        let appended = big_message(1000 + n);
        let tag = imap.tag();
        let mut command = format!("{tag} APPEND INBOX {{{}+}}\r\n", appended.len()).into_bytes();
        command.extend_from_slice(&appended);
        command.extend_from_slice(b"\r\n");
        imap.send(&command);
        let done = imap.until_tagged(&tag);
        if !done.tagged.starts_with("OK") {
            done.is("NO", "[OVERQUOTA]");
            refused = true;
            break;
        }
    }
    assert!(refused, "APPEND never met the full disk");
    imap.run("FETCH 1 BODY.PEEK[]").ok();

    // Space returns: everything works again, with no restart.
    disk.free();
    smtp.send_mail("sender@remote.test", &[USER], &big_message(99))
        .is(250, "2.0.0");
    imap.run("NOOP").ok();
    let found = imap.run("SEARCH TEXT \"findable words\"");
    assert!(found.line("* SEARCH").contains(" 1"), "{found}");

    // A server stopped on a full disk starts again.
    drop(imap);
    drop(smtp);
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
    disk.fill(0);
    let server = t.start();
    let mut imap = Imap::login(crate::imap::addr(&server, "imap"));
    imap.run("SELECT INBOX").ok();
    let found = imap.run("SEARCH TEXT \"findable words\"");
    assert!(found.line("* SEARCH").contains(" 1"), "{found}");
    drop(imap);
    let _ = server.stop_with("TERM");
    disk.free();
}
