//! The POP3 clients people run: curl, fetchmail (with and without `keep`,
//! tracking seen messages by UIDL) and getmail (into a Maildir, only new
//! messages, deleting after retrieval).

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs a tool with `HOME` (and fetchmail's `FETCHMAILHOME`) set to
/// `home`, so that parallel tests share no state, and no standard input.
fn run_in_home(program: &str, args: &[&str], home: &Path) -> Output {
    Command::new(program)
        .args(args)
        .env("HOME", home)
        .env("FETCHMAILHOME", home)
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e} (is it installed? see .ci/run)"))
}

/// The files in `dir`, read, in name order.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = String::from_utf8(std::fs::read(&p).unwrap()).expect("UTF-8 mail");
            (p, text)
        })
        .collect()
}

/// The subjects of the messages in `dir`, sorted.
fn subjects(dir: &Path) -> Vec<String> {
    let mut subjects: Vec<String> = files(dir)
        .iter()
        .map(|(p, text)| {
            text.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_else(|| panic!("no Subject in {}:\n{text}", p.display()))
                .trim_end()
                .to_string()
        })
        .collect();
    subjects.sort();
    subjects
}

// ---- curl ----

fn curl(args: &[&str], cwd: &Path) -> Vec<u8> {
    let mut all = vec![
        "-sS",
        "--max-time",
        "60",
        "--user",
        "bob@example.test:secret",
    ];
    all.extend_from_slice(args);
    let out = run_tool("curl", &all, cwd);
    assert!(out.status.success(), "curl {args:?}: {}", transcript(&out));
    out.stdout
}

#[test]
fn curl_lists_retrieves_and_deletes_in_the_clear_over_stls_and_on_995() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b"]);
    deliver(&server, &message("dots", ".a dot\r\n..two\r\n.\r\nend\r\n"));
    let imap = Imap::open(&t, BOB);
    let inbox = imap.list(Role::Inbox);
    let raws = imap.inbox_raw();
    let cwd = t.dir.path();
    let plain = format!("pop3://127.0.0.1:{}", port(&server, "pop3"));
    let tls = format!("pop3s://127.0.0.1:{}", port(&server, "pop3s"));

    // The URL of the maildrop lists it (LIST), a message number retrieves.
    let listing: String = inbox
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{} {}\r\n", i + 1, e.size))
        .collect();
    for (url, extra) in [
        (&plain, &[][..]),
        (&plain, &["--ssl-reqd", "-k"][..]),
        (&tls, &["-k"][..]),
    ] {
        let mut args = extra.to_vec();
        args.push(url);
        assert_eq!(show(&curl(&args, cwd)), listing, "{url} {extra:?}");
        for (i, raw) in raws.iter().enumerate() {
            let one = format!("{url}/{}", i + 1);
            let mut args = extra.to_vec();
            args.push(&one);
            assert_eq!(show(&curl(&args, cwd)), show(raw), "{one} {extra:?}");
        }
    }
    let uidl: String = inbox
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{} {}\r\n", i + 1, e.email_id))
        .collect();
    assert_eq!(show(&curl(&["-X", "UIDL", &plain], cwd)), uidl);

    // DELE through curl (-I: no transfer expected), which then QUITs.
    let modseq = imap.highest_modseq();
    curl(&["-I", "-X", "DELE", &format!("{plain}/1")], cwd);
    assert_eq!(imap.list(Role::Inbox), inbox[1..]);
    assert_eq!(imap.changes(Role::Inbox, modseq).expunged, [inbox[0].uid]);
    curl(&["-k", "-I", "-X", "DELE", &format!("{tls}/2")], cwd);
    assert_eq!(imap.list(Role::Inbox), [inbox[1].clone()]);
    assert_eq!(
        show(&curl(&["-k", &tls], cwd)),
        format!("1 {}\r\n", inbox[1].size)
    );
}

// ---- fetchmail ----

/// A fetchmail run directory: HOME, the rcfile (mode 0600, or fetchmail
/// refuses it), the UIDL id file and the directory the MDA writes to.
struct Fetchmail {
    home: PathBuf,
    out: PathBuf,
}

impl Fetchmail {
    /// `options` go on the user line (`keep`, `ssl`, ...).
    fn new(t: &TestDir, port: &str, options: &str) -> Fetchmail {
        let home = t.dir.path().join("fetchmail");
        let out = home.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let rc = home.join("fetchmailrc");
        std::fs::write(
            &rc,
            format!(
                "set no bouncemail\n\
                 poll 127.0.0.1 service {port} protocol pop3 uidl\n  \
                 user \"{BOB}\" password \"secret\" no sslcertck {options}\n  \
                 mda \"/bin/sh -c 'cat > {}/msg.$$'\"\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
        Fetchmail { home, out }
    }

    /// One poll; returns the exit code (0: mail retrieved, 1: none).
    fn run(&self) -> (i32, String) {
        let rc = self.home.join("fetchmailrc");
        let ids = self.home.join("fetchids");
        // As root, fetchmail's lock is /var/run/fetchmail.pid unless told
        // otherwise: one per test, or parallel tests see "another
        // fetchmail is running".
        let pid = self.home.join("fetchmail.pid");
        let out = run_in_home(
            "fetchmail",
            &[
                "-v",
                "--nodetach",
                "--pidfile",
                pid.to_str().unwrap(),
                "-f",
                rc.to_str().unwrap(),
                "-i",
                ids.to_str().unwrap(),
            ],
            &self.home,
        );
        (out.status.code().unwrap_or(-1), transcript(&out))
    }

    fn ids(&self) -> String {
        std::fs::read_to_string(self.home.join("fetchids")).unwrap_or_default()
    }
}

#[test]
fn fetchmail_with_keep_fetches_each_message_once_by_uidl() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b"]);
    let imap = Imap::open(&t, BOB);
    // Port 110: fetchmail sees STLS in CAPA and upgrades before USER.
    let fm = Fetchmail::new(&t, &port(&server, "pop3"), "keep");

    let (code, log) = fm.run();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("POP3> STLS"), "{log}");
    assert_eq!(subjects(&fm.out), ["a", "b"]);
    for (path, text) in files(&fm.out) {
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap();
        assert!(
            text.contains(&format!("\nThis is {subject}.\n")),
            "{}:\n{text}",
            path.display()
        );
    }
    // Kept on the server, and remembered by their unique ids.
    let inbox = imap.list(Role::Inbox);
    assert_eq!(inbox.len(), 2);
    let ids = fm.ids();
    for e in &inbox {
        assert!(
            ids.lines()
                .any(|l| l == format!("{BOB}@127.0.0.1 {}", e.email_id)),
            "{ids}"
        );
    }

    // Nothing new: exit code 1, nothing written.
    let (code, log) = fm.run();
    assert_eq!(code, 1, "{log}");
    assert_eq!(files(&fm.out).len(), 2);

    // One new message, with dot lines: only it is fetched.
    deliver(&server, &message("c", ".dot\r\n..two\r\n.\r\nend\r\n"));
    let (code, log) = fm.run();
    assert_eq!(code, 0, "{log}");
    assert_eq!(subjects(&fm.out), ["a", "b", "c"]);
    let c = files(&fm.out)
        .into_iter()
        .map(|(_, text)| text)
        .find(|text| text.contains("Subject: c"))
        .unwrap();
    assert!(c.contains("\n\n.dot\n..two\n.\nend\n"), "{c}");
    assert_eq!(imap.list(Role::Inbox).len(), 3);
}

#[test]
fn fetchmail_without_keep_on_995_deletes_what_it_fetched() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b"]);
    let imap = Imap::open(&t, BOB);
    let modseq = imap.highest_modseq();
    let before = imap.list(Role::Inbox);
    let fm = Fetchmail::new(&t, &port(&server, "pop3s"), "ssl");

    let (code, log) = fm.run();
    assert_eq!(code, 0, "{log}");
    assert_eq!(subjects(&fm.out), ["a", "b"]);
    assert!(
        log.contains("POP3> DELE 1") && log.contains("POP3> DELE 2"),
        "{log}"
    );
    assert!(imap.list(Role::Inbox).is_empty());
    assert_eq!(
        imap.changes(Role::Inbox, modseq).expunged,
        before.iter().map(|e| e.uid).collect::<Vec<_>>()
    );

    let (code, log) = fm.run();
    assert_eq!(code, 1, "{log}");
    assert_eq!(files(&fm.out).len(), 2);
}

// ---- getmail ----

/// True when the tests run as root (CI containers): getmail refuses to
/// write a Maildir as root, so it is told to deliver as `nobody`, into
/// directories `nobody` may write.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A getmail directory with a Maildir called `maildir` and an rcfile
/// called `rc_name`; returns the Maildir's `new`.
fn getmail_rc(
    t: &TestDir,
    rc_name: &str,
    maildir: &str,
    retriever: &str,
    port: &str,
    options: &str,
) -> PathBuf {
    let dir = t.dir.path().join("getmail");
    let maildir = dir.join(maildir);
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let user = if running_as_root() {
        let open = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        open(t.dir.path(), 0o755);
        open(&dir, 0o755);
        open(&maildir, 0o777);
        for sub in ["cur", "new", "tmp"] {
            open(&maildir.join(sub), 0o777);
        }
        "user = nobody\n"
    } else {
        ""
    };
    std::fs::write(
        dir.join(rc_name),
        format!(
            "[retriever]\ntype = {retriever}\nserver = 127.0.0.1\nport = {port}\n\
             username = {BOB}\npassword = secret\n\n\
             [destination]\ntype = Maildir\npath = {}/\n{user}\n\
             [options]\nverbose = 2\n{options}\n",
            maildir.display()
        ),
    )
    .unwrap();
    maildir.join("new")
}

fn getmail(t: &TestDir, rc_name: &str) -> String {
    let dir = t.dir.path().join("getmail");
    let out = run_tool(
        "getmail",
        &["--getmaildir", dir.to_str().unwrap(), "--rcfile", rc_name],
        &dir,
    );
    let text = transcript(&out);
    assert!(out.status.success(), "getmail {rc_name}: {text}");
    text
}

#[test]
fn getmail_fetches_into_a_maildir_only_new_messages_then_deletes() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b", "c"]);
    let imap = Imap::open(&t, BOB);
    let pop3 = port(&server, "pop3");
    let new = getmail_rc(
        &t,
        "keep",
        "Maildir",
        "SimplePOP3Retriever",
        &pop3,
        "delete = false\nread_all = false",
    );

    let log = getmail(&t, "keep");
    assert!(log.contains("3 messages"), "{log}");
    assert_eq!(subjects(&new), ["a", "b", "c"]);
    for (path, text) in files(&new) {
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap();
        assert!(
            text.contains(&format!("\nThis is {subject}.\n")),
            "{}:\n{text}",
            path.display()
        );
    }
    assert_eq!(imap.list(Role::Inbox).len(), 3);

    // Again: every message is "seen" by its UIDL, nothing is fetched.
    let log = getmail(&t, "keep");
    assert!(log.contains("0 messages"), "{log}");
    assert_eq!(files(&new).len(), 3);

    // A new one arrives: only it is fetched.
    deliver_all(&server, &["d"]);
    getmail(&t, "keep");
    assert_eq!(subjects(&new), ["a", "b", "c", "d"]);

    // With delete (on 995 this time), into a second Maildir: everything,
    // then INBOX is empty.
    let new2 = getmail_rc(
        &t,
        "delete",
        "Maildir2",
        "SimplePOP3SSLRetriever",
        &port(&server, "pop3s"),
        "delete = true\nread_all = true",
    );
    let modseq = imap.highest_modseq();
    let before = imap.list(Role::Inbox);
    let log = getmail(&t, "delete");
    assert!(log.contains("4 messages"), "{log}");
    assert_eq!(subjects(&new2), ["a", "b", "c", "d"]);
    assert!(imap.list(Role::Inbox).is_empty());
    assert_eq!(
        imap.changes(Role::Inbox, modseq).expunged,
        before.iter().map(|e| e.uid).collect::<Vec<_>>()
    );
}
