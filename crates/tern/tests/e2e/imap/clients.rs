//! Whole-account synchronisers and a library client against the real
//! server: mbsync (isync) and offlineimap3 keeping a local Maildir in step
//! both ways, and Node.js's imapflow with CONDSTORE/QRESYNC, IDLE and
//! COMPRESS=DEFLATE. .ci/run installs all three.
//!
//! The server's side is read with Python's imaplib (EXAMINE, so reading
//! changes nothing); every external program runs under `timeout`, and the
//! imapflow script is waited on line by line, never by sleeping.

use super::*;
use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

/// The longest any one client run may take before the test fails.
const CLIENT_TIMEOUT_SECS: &str = "120";

/// Runs `program args...` under `timeout` in `cwd` with `env` added.
fn run_bounded(program: &str, args: &[&str], cwd: &Path, env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=5", CLIENT_TIMEOUT_SECS, program])
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running {program}: {e} (is it installed? see .ci/run)"))
}

// ---- the server's side, through imaplib ----

/// One message as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remote {
    uid: u32,
    subject: String,
    flags: Vec<String>,
}

/// The messages of `mailbox` (EXAMINEd), in UID order; `None` if it does
/// not exist.
#[track_caller]
fn remote(server: &Server, mailbox: &str) -> Option<Vec<Remote>> {
    let v = imaplib(
        server,
        r#"
import re
M = login()
typ, data = M.select('"%s"' % sys.argv[2], readonly=True)
if typ != "OK":
    print(json.dumps(None))
    raise SystemExit(0)
out = []
if int(data[0]) > 0:
    typ, data = M.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for d in data:
        if isinstance(d, tuple):
            meta = d[0].decode()
            subject = d[1].decode().strip()
            out.append({
                "uid": int(re.search(r"UID (\d+)", meta).group(1)),
                "flags": sorted(re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()),
                "subject": subject[len("Subject: "):] if subject.startswith("Subject: ") else subject,
            })
M.logout()
print(json.dumps(sorted(out, key=lambda m: m["uid"])))
"#,
        &[mailbox],
    );
    if v.is_null() {
        return None;
    }
    Some(
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| Remote {
                uid: m["uid"].as_u64().unwrap() as u32,
                subject: m["subject"].as_str().unwrap().to_string(),
                flags: m["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect(),
            })
            .collect(),
    )
}

/// The mailbox names LIST returns.
fn remote_mailboxes(server: &Server) -> BTreeSet<String> {
    let v = imaplib(
        server,
        r#"
M = login()
names = []
for line in M.list()[1]:
    name = line.decode().rsplit(' "/" ', 1)[1]
    names.append(name.strip('"'))
print(json.dumps(names))
"#,
        &[],
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// Sets `flags` on the message with `subject` in INBOX from another session.
fn remote_add_flags(server: &Server, subject: &str, flags: &str) {
    imaplib(
        server,
        r#"
M = login()
ok(M.select("INBOX"))
typ, data = M.uid("SEARCH", "HEADER", "Subject", sys.argv[2])
uids = ok((typ, data)).split()
assert len(uids) == 1, uids
print(json.dumps(ok(M.uid("STORE", uids[0], "+FLAGS", sys.argv[3]))))
"#,
        &[subject, flags],
    );
}

#[track_caller]
fn subjects(messages: &[Remote]) -> Vec<&str> {
    messages.iter().map(|m| m.subject.as_str()).collect()
}

#[track_caller]
fn by_subject<'a>(messages: &'a [Remote], subject: &str) -> &'a Remote {
    messages
        .iter()
        .find(|m| m.subject == subject)
        .unwrap_or_else(|| panic!("no {subject:?} in {messages:?}"))
}

// ---- the local side: Maildir ----

/// One message file in a Maildir folder.
#[derive(Debug)]
struct Local {
    path: PathBuf,
    subject: String,
    /// The Maildir flag letters after `:2,`.
    flags: String,
    bytes: Vec<u8>,
}

/// The message files of the Maildir folder `dir` (cur/ and new/).
fn maildir(dir: &Path) -> Vec<Local> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if name.starts_with('.') {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .trim_end()
                .to_string();
            let flags = name
                .rsplit_once(":2,")
                .map(|(_, f)| f.to_string())
                .unwrap_or_default();
            out.push(Local {
                path,
                subject,
                flags,
                bytes,
            });
        }
    }
    out.sort_by(|a, b| a.subject.cmp(&b.subject));
    out
}

#[track_caller]
fn local<'a>(messages: &'a [Local], subject: &str) -> &'a Local {
    messages
        .iter()
        .find(|m| m.subject == subject)
        .unwrap_or_else(|| panic!("no {subject:?} in {messages:?}"))
}

/// Makes an empty Maildir folder.
fn make_maildir(dir: &Path) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
}

/// The stored bytes with LF line ends, as Maildir clients write them.
fn lf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .into_bytes()
}

// ---- mbsync ----

/// The mbsyncrc keyword for the TLS setting and for the two sides of a
/// channel differ between isync releases: 1.4 has SSLType and Far/Near,
/// 1.5 renames SSLType to TLSType; before 1.4 the sides were Master/Slave.
fn mbsync_version() -> (u32, u32) {
    let out = run_bounded("mbsync", &["--version"], Path::new("."), &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text.split_whitespace().nth(1).unwrap_or("1.4");
    let mut parts = version.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(1), parts.next().unwrap_or(4))
}

fn mbsyncrc(port: &str, maildir: &Path) -> String {
    let version = mbsync_version();
    let tls = if version >= (1, 5) {
        "TLSType"
    } else {
        "SSLType"
    };
    let (far, near) = if version >= (1, 4) {
        ("Far", "Near")
    } else {
        ("Master", "Slave")
    };
    format!(
        "IMAPAccount tern\n\
         Host 127.0.0.1\n\
         Port {port}\n\
         User {USER}\n\
         Pass secret\n\
         {tls} None\n\
         AuthMechs LOGIN\n\
         \n\
         IMAPStore tern-remote\n\
         Account tern\n\
         \n\
         MaildirStore tern-local\n\
         Path {dir}/\n\
         Inbox {dir}/INBOX\n\
         SubFolders Verbatim\n\
         \n\
         Channel tern\n\
         {far} :tern-remote:\n\
         {near} :tern-local:\n\
         Patterns *\n\
         Create Both\n\
         Expunge Both\n\
         SyncState *\n",
        dir = maildir.display()
    )
}

/// One `mbsync -a -V` run, which must exit 0; returns its transcript.
#[track_caller]
fn mbsync(rc: &Path, cwd: &Path) -> String {
    let out = run_bounded(
        "mbsync",
        &["-c", rc.to_str().unwrap(), "-a", "-V"],
        cwd,
        &[],
    );
    let text = transcript(&out);
    assert!(out.status.success(), "mbsync failed: {text}");
    assert!(!text.contains("Error"), "mbsync reported an error: {text}");
    text
}

#[test]
fn mbsync_syncs_an_account_both_ways() {
    let t = with_bob();
    let server = t.start();
    for subject in ["one", "two", "three", "four"] {
        deliver(
            &server,
            &message(subject, &format!("body of {subject}\r\n")),
        );
    }
    let dir = t.dir.path();
    let mail = dir.join("mbsync-mail");
    std::fs::create_dir_all(&mail).unwrap();
    let rc = dir.join("mbsyncrc");
    std::fs::write(&rc, mbsyncrc(&port(&server, "imap"), &mail)).unwrap();

    // Down: every message, byte for byte (with LF line ends), and every
    // mailbox.
    let log = mbsync(&rc, dir);
    let inbox = maildir(&mail.join("INBOX"));
    assert_eq!(
        inbox.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["four", "one", "three", "two"],
        "{log}"
    );
    let store = Mailstore::open(&t);
    for m in &inbox {
        let stored = store.find(USER, &m.subject);
        // mbsync marks each message it propagates with an X-TUID header
        // (its way to find it again should a run be interrupted).
        let text = String::from_utf8_lossy(&m.bytes).into_owned();
        let tuid = text.lines().filter(|l| l.starts_with("X-TUID: ")).count();
        assert_eq!(tuid, 1, "{text}");
        let without: String = text
            .split_inclusive('\n')
            .filter(|l| !l.starts_with("X-TUID: "))
            .collect();
        assert!(
            without.as_bytes() == lf(&stored.raw),
            "{} differs from the store:\n{}",
            m.path.display(),
            String::from_utf8_lossy(&m.bytes)
        );
        assert_eq!(m.flags, "", "{m:?}");
    }
    drop(store);
    for name in ["Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(mail.join(name).join("cur").is_dir(), "{name} made locally");
    }

    // Local changes: "one" read (S), "two" deleted, "three" moved to a new
    // folder (without mbsync's ",U=" so it is a new message there), and an
    // empty folder created. A server change: "four" flagged and answered.
    let one = local(&inbox, "one");
    let name = one.path.file_name().unwrap().to_str().unwrap();
    std::fs::rename(&one.path, mail.join("INBOX/cur").join(format!("{name}S"))).unwrap();
    std::fs::remove_file(&local(&inbox, "two").path).unwrap();
    make_maildir(&mail.join("Projects"));
    let three = local(&inbox, "three");
    let name = three.path.file_name().unwrap().to_str().unwrap();
    let unique = name.split_once(",U=").map_or(name, |(u, _)| u);
    std::fs::rename(
        &three.path,
        mail.join("Projects/cur").join(format!("{unique}:2,")),
    )
    .unwrap();
    make_maildir(&mail.join("Later"));
    remote_add_flags(&server, "four", "(\\Flagged \\Answered)");

    let log = mbsync(&rc, dir);

    // The server now has what the Maildir has.
    let inbox_remote = remote(&server, "INBOX").expect("INBOX");
    assert_eq!(subjects(&inbox_remote), ["one", "four"], "{log}");
    assert_eq!(by_subject(&inbox_remote, "one").flags, ["\\Seen"], "{log}");
    assert_eq!(
        by_subject(&inbox_remote, "four").flags,
        ["\\Answered", "\\Flagged"],
        "{log}"
    );
    assert_eq!(
        stored_uids(&t).len(),
        2,
        "two and three expunged from INBOX: {log}"
    );
    let projects = remote(&server, "Projects").expect("Projects created on the server");
    assert_eq!(subjects(&projects), ["three"], "{log}");
    assert_eq!(projects[0].flags, Vec::<String>::new(), "{log}");
    assert_eq!(
        remote(&server, "Later").expect("Later created on the server"),
        [],
        "{log}"
    );
    let names = remote_mailboxes(&server);
    for name in ["INBOX", "Projects", "Later", "Sent", "Trash"] {
        assert!(names.contains(name), "{name} in {names:?}");
    }

    // ...and the Maildir has the server's flags.
    let inbox = maildir(&mail.join("INBOX"));
    assert_eq!(
        inbox.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["four", "one"],
        "{log}"
    );
    assert_eq!(local(&inbox, "four").flags, "FR", "{log}");
    assert_eq!(local(&inbox, "one").flags, "S", "{log}");
    let projects_local = maildir(&mail.join("Projects"));
    assert_eq!(projects_local.len(), 1, "{projects_local:?}");

    // A message deleted on the server leaves the Maildir; a new one
    // arrives; a third run then finds both sides in step and changes
    // nothing.
    imaplib(
        &server,
        r#"
M = login()
ok(M.select("Projects"))
ok(M.store("1", "+FLAGS", "(\\Deleted)"))
ok(M.expunge())
print(json.dumps(True))
"#,
        &[],
    );
    deliver(&server, &message("five", "late\r\n"));
    let log = mbsync(&rc, dir);
    assert_eq!(maildir(&mail.join("Projects")).len(), 0, "{log}");
    let inbox = maildir(&mail.join("INBOX"));
    assert_eq!(
        inbox.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["five", "four", "one"],
        "{log}"
    );
    let before = remote(&server, "INBOX");
    let log = mbsync(&rc, dir);
    assert_eq!(remote(&server, "INBOX"), before, "{log}");
    assert_eq!(maildir(&mail.join("INBOX")).len(), 3, "{log}");
}

// ---- offlineimap ----

#[test]
fn offlineimap_syncs_down_and_propagates_a_local_deletion() {
    let t = with_bob();
    let server = t.start();
    deliver(&server, &message("kept", "stays\r\n"));
    deliver(&server, &message("doomed", "deleted locally\r\n"));
    let home = t.dir.path().join("offlineimap-home");
    let mail = home.join("Mail");
    std::fs::create_dir_all(&mail).unwrap();
    let rc = home.join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\n\
             accounts = tern\n\
             metadata = {home}/metadata\n\
             \n\
             [Account tern]\n\
             localrepository = local\n\
             remoterepository = remote\n\
             \n\
             [Repository local]\n\
             type = Maildir\n\
             localfolders = {mail}\n\
             \n\
             [Repository remote]\n\
             type = IMAP\n\
             remotehost = 127.0.0.1\n\
             remoteport = {port}\n\
             remoteuser = {USER}\n\
             remotepass = secret\n\
             ssl = no\n\
             starttls = no\n\
             auth_mechanisms = LOGIN\n",
            home = home.display(),
            mail = mail.display(),
            port = port(&server, "imap"),
        ),
    )
    .unwrap();
    let sync = || {
        let out = run_bounded(
            "offlineimap",
            &["-c", rc.to_str().unwrap(), "-o", "-u", "quiet"],
            &home,
            &[("HOME", &home)],
        );
        let text = transcript(&out);
        assert!(out.status.success(), "offlineimap failed: {text}");
        assert!(
            !text.contains("ERROR"),
            "offlineimap reported an error: {text}"
        );
        text
    };

    let log = sync();
    let inbox = maildir(&mail.join("INBOX"));
    assert_eq!(
        inbox.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["doomed", "kept"],
        "{log}"
    );
    let store = Mailstore::open(&t);
    for m in &inbox {
        let stored = store.find(USER, &m.subject);
        assert!(
            m.bytes == stored.raw || m.bytes == lf(&stored.raw),
            "{} differs from the store:\n{}",
            m.path.display(),
            String::from_utf8_lossy(&m.bytes)
        );
    }
    drop(store);
    for name in ["Sent", "Drafts", "Trash"] {
        assert!(mail.join(name).join("cur").is_dir(), "{name} made locally");
    }

    std::fs::remove_file(&local(&inbox, "doomed").path).unwrap();
    let log = sync();
    let inbox_remote = remote(&server, "INBOX").expect("INBOX");
    assert_eq!(subjects(&inbox_remote), ["kept"], "{log}");
    let kept = Mailstore::open(&t).find(USER, "kept");
    assert_eq!(stored_uids(&t), [kept.uid.0], "{log}");
    assert_eq!(maildir(&mail.join("INBOX")).len(), 1, "{log}");
}

// ---- imapflow ----

/// Where .ci/run installs imapflow.
fn imapflow_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/node/node_modules/imapflow")
}

/// Connects with imapflow (which negotiates COMPRESS=DEFLATE and ENABLEs
/// CONDSTORE and QRESYNC by itself), reads INBOX, flags and deletes,
/// resynchronises with SELECT (QRESYNC ...), then IDLEs until the test's
/// delivery shows up. Prints one JSON object a line.
const IMAPFLOW_SCRIPT: &str = r#"
const { ImapFlow } = require(process.env.IMAPFLOW);
const out = (o) => process.stdout.write(JSON.stringify(o, (k, v) => typeof v === "bigint" ? v.toString() : v) + "\n");
setTimeout(() => { out({ event: "error", message: "script timed out" }); process.exit(2); }, 90000).unref();
(async () => {
  const client = new ImapFlow({
    host: "127.0.0.1", port: Number(process.argv[2]), secure: false, doSTARTTLS: false,
    auth: { user: process.argv[3], pass: "secret" }, logger: false, qresync: true,
  });
  await client.connect();
  // imapflow has no public accessor; _deflate is its compressor once
  // COMPRESS succeeded.
  out({ event: "connected", enabled: [...client.enabled], compression: !!client._deflate });

  let mailbox = await client.mailboxOpen("INBOX");
  const validity = mailbox.uidValidity, modseq0 = mailbox.highestModseq;
  out({ event: "opened", exists: mailbox.exists, uidValidity: validity, highestModseq: modseq0, uidNext: mailbox.uidNext });

  const messages = [];
  for await (const m of client.fetch("1:*", { uid: true, envelope: true, flags: true })) {
    messages.push({ uid: m.uid, subject: m.envelope.subject, from: m.envelope.from.map((a) => a.address), flags: [...m.flags], modseq: m.modseq });
  }
  out({ event: "fetched", messages });

  const first = messages[0].uid, last = messages[messages.length - 1].uid;
  const flagged = await client.messageFlagsAdd({ uid: String(first) }, ["\\Flagged"], { uid: true });
  const deleted = await client.messageDelete({ uid: String(last) }, { uid: true });
  const changed = [];
  for await (const m of client.fetch("1:*", { uid: true, flags: true }, { changedSince: modseq0 })) {
    changed.push({ uid: m.uid, flags: [...m.flags], modseq: m.modseq });
  }
  out({ event: "changed", flagged, deleted, messages: changed, highestModseq: client.mailbox.highestModseq });

  // Come back with what the first SELECT knew: QRESYNC names the flag
  // change and the expunged UID.
  await client.mailboxClose();
  const flagEvents = [], vanished = [];
  const onFlags = (e) => flagEvents.push({ uid: e.uid, flags: [...e.flags] });
  const onExpunge = (e) => vanished.push({ uid: e.uid, vanished: e.vanished, earlier: e.earlier });
  client.on("flags", onFlags);
  client.on("expunge", onExpunge);
  mailbox = await client.mailboxOpen("INBOX", { uidValidity: validity, changedSince: modseq0 });
  client.off("flags", onFlags);
  client.off("expunge", onExpunge);
  out({ event: "resynced", qresync: !!mailbox.qresync, exists: mailbox.exists, flags: flagEvents, vanished });

  const arrived = new Promise((resolve) => client.once("exists", resolve));
  client.idle().catch((e) => out({ event: "error", message: String(e) }));
  out({ event: "idling" });
  const exists = await arrived;
  const m = await client.fetchOne(String(exists.count), { uid: true, envelope: true, flags: true });
  out({ event: "exists", count: exists.count, prevCount: exists.prevCount, uid: m.uid, subject: m.envelope.subject, compression: !!client._deflate });
  await client.logout();
  out({ event: "done" });
})().catch((e) => { out({ event: "error", message: String((e && e.stack) || e), response: e && e.responseText }); process.exit(1); });
"#;

/// The running script: its JSON lines as they come.
struct Script {
    child: std::process::Child,
    lines: mpsc::Receiver<serde_json::Value>,
    stderr: PathBuf,
}

impl Script {
    /// The next line, which must be `{"event": event, ...}`.
    #[track_caller]
    fn expect(&mut self, event: &str) -> serde_json::Value {
        match self.lines.recv_timeout(IO_TIMEOUT) {
            Ok(v) if v["event"] == event => v,
            Ok(v) => panic!(
                "imapflow: expected {event}, got {v}\nstderr: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            ),
            Err(e) => panic!(
                "imapflow: no {event} line ({e:?})\nstderr: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            ),
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn imapflow_condstore_qresync_idle_and_compress() {
    let imapflow = imapflow_dir();
    assert!(
        imapflow.join("package.json").is_file(),
        "imapflow is not installed in {} (see .ci/run)",
        imapflow.display()
    );
    let t = with_bob();
    let server = t.start();
    for subject in ["alpha", "beta", "gamma"] {
        deliver(&server, &message(subject, "for imapflow\r\n"));
    }
    let script = write_file(&t, "imapflow.js", IMAPFLOW_SCRIPT.as_bytes());
    let stderr = t.dir.path().join("imapflow.stderr");
    let mut child = Command::new("node")
        .arg(&script)
        .args([port(&server, "imap").as_str(), USER])
        .env("IMAPFLOW", &imapflow)
        .current_dir(t.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start node (is Node.js installed?)");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v = serde_json::from_str(&line)
                .unwrap_or_else(|_| serde_json::json!({ "event": "garbage", "line": line }));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut s = Script {
        child,
        lines: rx,
        stderr,
    };

    let connected = s.expect("connected");
    let enabled = strings(&connected["enabled"]);
    for ext in ["CONDSTORE", "QRESYNC"] {
        assert!(enabled.contains(&ext.to_string()), "{connected}");
    }
    assert_eq!(
        connected["compression"], true,
        "imapflow negotiated COMPRESS=DEFLATE: {connected}"
    );

    let uids = stored_uids(&t);
    let opened = s.expect("opened");
    assert_eq!(opened["exists"], 3, "{opened}");
    assert_eq!(opened["uidNext"], uids[2] + 1, "{opened}");
    let modseq0: u64 = opened["highestModseq"].as_str().unwrap().parse().unwrap();
    assert!(modseq0 > 0, "{opened}");

    let fetched = s.expect("fetched");
    let messages = fetched["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{fetched}");
    for (m, (uid, subject)) in messages
        .iter()
        .zip(uids.iter().zip(["alpha", "beta", "gamma"]))
    {
        assert_eq!(m["uid"], *uid, "{fetched}");
        assert_eq!(m["subject"], subject, "{fetched}");
        assert_eq!(
            m["from"],
            serde_json::json!(["sender@remote.test"]),
            "{fetched}"
        );
        assert_eq!(m["flags"], serde_json::json!([]), "{fetched}");
    }

    let changed = s.expect("changed");
    assert_eq!(changed["flagged"], true, "{changed}");
    assert_eq!(changed["deleted"], true, "{changed}");
    // Only alpha changed and is still there (gamma is expunged).
    let list = changed["messages"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{changed}");
    assert_eq!(list[0]["uid"], uids[0], "{changed}");
    assert_eq!(strings(&list[0]["flags"]), ["\\Flagged"], "{changed}");
    let modseq1: u64 = list[0]["modseq"].as_str().unwrap().parse().unwrap();
    assert!(modseq1 > modseq0, "{changed}");
    let inbox = remote(&server, "INBOX").unwrap();
    assert_eq!(subjects(&inbox), ["alpha", "beta"]);
    // Stored flags; \Recent is the reading session's (IMAP4rev1).
    let stored: Vec<&String> = inbox[0].flags.iter().filter(|f| *f != "\\Recent").collect();
    assert_eq!(stored, ["\\Flagged"]);
    assert_eq!(stored_uids(&t), uids[..2]);

    let resynced = s.expect("resynced");
    assert_eq!(resynced["qresync"], true, "{resynced}");
    assert_eq!(resynced["exists"], 2, "{resynced}");
    let flags = resynced["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{resynced}");
    assert_eq!(flags[0]["uid"], uids[0], "{resynced}");
    assert_eq!(strings(&flags[0]["flags"]), ["\\Flagged"], "{resynced}");
    assert_eq!(
        resynced["vanished"],
        serde_json::json!([{ "uid": uids[2], "vanished": true, "earlier": true }]),
        "{resynced}"
    );

    s.expect("idling");
    deliver(&server, &message("delta", "while idling\r\n"));
    let exists = s.expect("exists");
    assert_eq!(exists["count"], 3, "{exists}");
    assert_eq!(exists["prevCount"], 2, "{exists}");
    assert_eq!(exists["subject"], "delta", "{exists}");
    assert_eq!(exists["uid"], *stored_uids(&t).last().unwrap(), "{exists}");
    assert_eq!(exists["compression"], true, "{exists}");
    s.expect("done");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "node exited {status:?}");
}
