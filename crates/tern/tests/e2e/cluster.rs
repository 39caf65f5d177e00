//! Several Tern nodes on one PostgreSQL database act as one server (issue
//! 16): a delivery on one node wakes IMAP IDLE and JMAP push on the others,
//! APPENDs on every node get unique UIDs, the outbound queue is worked by
//! all without sending anything twice, and neither a node killed with
//! SIGKILL nor a database restarted under load loses an acknowledged
//! message.
//!
//! Each test gets a database of its own on the server named by
//! `TERN_TEST_POSTGRES` (`scripts/test.sh` starts a private one); the
//! database restart test starts a cluster of its own, so restarting it
//! disturbs nobody else. Without `TERN_TEST_POSTGRES` the tests say so and
//! pass, unless `TERN_REQUIRE_POSTGRES` is set (CI sets both).

use crate::harness::*;
use crate::imap::Imap;
use crate::outbound::{idle, next_message};
use crate::smtp::{python, Smtp};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The test server's URL, or `None` (with a note) when none is configured.
pub(crate) fn server_url() -> Option<String> {
    match std::env::var("TERN_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("TERN_REQUIRE_POSTGRES").is_none(),
                "TERN_REQUIRE_POSTGRES is set but TERN_TEST_POSTGRES is not"
            );
            eprintln!("skipped: set TERN_TEST_POSTGRES=postgres://… to run the cluster tests");
            None
        }
    }
}

pub(crate) fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A database of its own on the test server, dropped afterwards.
pub(crate) struct ScratchDb {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl ScratchDb {
    pub(crate) fn create(admin: &str) -> ScratchDb {
        let name = format!(
            "tern_cluster_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        psql(admin, &format!("CREATE DATABASE {name}"));
        let base = admin
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(base, _)| base)
            .expect("TERN_TEST_POSTGRES must be a postgres://…/database URL");
        ScratchDb {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-Atc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A node's data directory: its own config and certificates, the mail in
/// the shared database.
fn node(url: &str, extra: &str) -> TestDir {
    let t = TestDir::with_config(&format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 8\n{extra}"
    ));
    t.init();
    t
}

/// Adds a domain and an account with password `secret` through `t`'s CLI.
fn add_account(t: &TestDir, address: &str) {
    let domain = address.split('@').nth(1).unwrap();
    let _ = t.tern(&["domain", "add", domain], "");
    t.ok(
        &[
            "account",
            "add",
            address,
            "--password-stdin",
            "--allow-weak",
        ],
        "secret\n",
    );
}

/// `[store] tls_ca_file` naming the test cluster's CA
/// (`TERN_TEST_POSTGRES_CA`, set by scripts/test.sh), when there is one.
fn checked_tls() -> String {
    match std::env::var("TERN_TEST_POSTGRES_CA") {
        Ok(ca) if !ca.is_empty() => format!("tls_ca_file = \"{ca}\"\n"),
        _ => String::new(),
    }
}

/// Node C checks the database's certificate (`tls_ca_file`), A and B take
/// TLS as the server offers it: one cluster either way.
#[test]
fn a_delivery_on_one_node_wakes_idle_and_push_on_the_others() {
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin);
    let (a, b, c) = (
        node(&db.url, ""),
        node(&db.url, ""),
        node(&db.url, &checked_tls()),
    );
    add_account(&a, "bob@example.test");
    let (node_a, node_b, node_c) = (a.start(), b.start(), c.start());

    let mut imap = idle(node_a.listeners["imap"], "bob@example.test");
    // JMAP EventSource on B, SMTP into C, from one Python script: the
    // stream is open before the delivery starts.
    let out = python(
        r##"
import base64, json, smtplib, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
auth = {"Authorization": "Basic " + base64.b64encode(b"bob@example.test:secret").decode()}
def events(r, n):
    got, name = [], None
    while len(got) < n:
        line = r.readline().decode()
        if not line:
            break
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            got.append([name, json.loads(line[6:])])
    return got
r = urllib.request.urlopen(urllib.request.Request(
    base + "/jmap/eventsource?types=Email&closeafter=no&ping=0", headers=auth), timeout=30)
first = events(r, 1)
s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]))
s.sendmail("ann@remote.test", ["bob@example.test"],
           b"Subject: across the cluster\r\n\r\nfrom node C\r\n")
s.quit()
second = events(r, 1)
print(json.dumps({"first": first, "second": second}))
"##,
        &[
            &node_b.listeners["http"].port().to_string(),
            &node_c.listeners["smtp"].port().to_string(),
        ],
    );
    let state = |v: &serde_json::Value| {
        v[0][1]["changed"]["a1"]["Email"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
    };
    let (before, after) = (state(&out["first"]), state(&out["second"]));
    assert!(
        before.is_some() && after > before,
        "node B's EventSource saw the delivery on node C: {out}"
    );
    let got = next_message(&mut imap);
    assert!(
        got.contains("Subject: across the cluster"),
        "node A's IDLE saw it: {got}"
    );
    drop((node_a, node_b, node_c));
}

#[test]
fn appends_on_every_node_get_unique_increasing_uids() {
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin);
    let nodes: Vec<TestDir> = (0..3).map(|_| node(&db.url, "")).collect();
    add_account(&nodes[0], "bob@example.test");
    let servers: Vec<Server> = nodes.iter().map(|n| n.start()).collect();
    // Four connections per node append ten messages each, all at once
    // (Python threads, one process per node, the three run together).
    let script = r#"
import imaplib, json, re, sys, threading
port, node = int(sys.argv[1]), sys.argv[2]
results = {}
def worker(w):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("bob@example.test", "secret")
    uids = []
    for i in range(10):
        msg = ("Subject: %s-%d-%d\r\n\r\nbody\r\n" % (node, w, i)).encode()
        typ, data = m.append("INBOX", None, None, msg)
        code = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
        uids.append([int(code.group(1)), int(code.group(2))])
    m.logout()
    results[w] = uids
threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(results))
"#;
    let handles: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let port = s.listeners["imap"].port().to_string();
            let script = script.to_string();
            std::thread::spawn(move || {
                let out = Command::new("python3")
                    .args(["-c", &script, &port, &format!("m{i}")])
                    .output()
                    .expect("python3");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                serde_json::from_slice::<HashMap<String, Vec<[u64; 2]>>>(&out.stdout).expect("JSON")
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut validities = BTreeSet::new();
    for h in handles {
        for (_, uids) in h.join().expect("node script") {
            // Each connection's own appends come back in increasing order.
            let mine: Vec<u64> = uids.iter().map(|[_, uid]| *uid).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
            validities.extend(uids.iter().map(|[v, _]| *v));
            all.extend(mine);
        }
    }
    assert_eq!(validities.len(), 1, "one UIDVALIDITY everywhere");
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    // 3 nodes x 4 connections x 10 appends.
    assert_eq!(all.len(), 120);
    assert_eq!(unique.len(), all.len(), "no UID given out twice");
    // Every node lists the same messages, with nothing lost.
    for s in &servers {
        let mut imap = Imap::connect(s.listeners["imap"]);
        imap.run("LOGIN bob@example.test secret").ok();
        imap.run("SELECT INBOX").ok();
        let search = imap.run("UID SEARCH ALL");
        search.ok();
        let listed: BTreeSet<u64> = search
            .untagged
            .iter()
            .flat_map(|r| {
                r.text()
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect::<Vec<u64>>()
            })
            .collect();
        assert_eq!(listed, unique, "every append is listed on every node");
    }
}

/// A node's outbound worker relays through `sink`, a plain (SQLite) Tern
/// that keeps what it gets for bob@b.test.
#[test]
fn the_queue_is_worked_by_every_node_and_nothing_is_sent_twice() {
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin);
    let sink_dir = TestDir::new();
    sink_dir.add_account("bob@b.test");
    let sink = sink_dir.start();
    let relay = format!(
        "[outbound]\nrelay = \"{}\"\nrelay_tls = \"none\"\n",
        sink.listeners["smtp"]
    );
    let nodes: Vec<TestDir> = (0..3).map(|_| node(&db.url, &relay)).collect();
    add_account(&nodes[0], "ann@a.test");
    let servers: Vec<Server> = nodes.iter().map(|n| n.start()).collect();
    const EACH: usize = 15;
    for (i, s) in servers.iter().enumerate() {
        let sent = python(
            r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.login("ann@a.test", "secret")
out = []
for i in range(int(sys.argv[3])):
    msg = "From: ann@a.test\r\nTo: bob@b.test\r\nSubject: %s-%d\r\n\r\nx\r\n" % (sys.argv[2], i)
    out.append(s.sendmail("ann@a.test", ["bob@b.test"], msg))
s.quit()
print(json.dumps(out))
"#,
            &[
                &s.listeners["submission"].port().to_string(),
                &format!("q{i}"),
                &EACH.to_string(),
            ],
        );
        assert_eq!(sent.as_array().map(Vec::len), Some(EACH), "{sent}");
    }
    // Every node's queue view is the one queue: wait until it is empty.
    poll_until(
        std::time::Duration::from_secs(120),
        "the shared queue empties",
        || queue_is_empty(&nodes[1]),
    );
    let mut sink_imap = Imap::connect(sink.listeners["imap"]);
    sink_imap.run("LOGIN bob@b.test secret").ok();
    sink_imap.run("SELECT INBOX").ok();
    let fetch = sink_imap.run("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    fetch.ok();
    let mut subjects: HashMap<String, usize> = HashMap::new();
    for r in &fetch.untagged {
        let text = r.text();
        if let Some(s) = text.split("Subject: ").nth(1) {
            let subject = s.split_whitespace().next().unwrap_or("").to_string();
            *subjects.entry(subject).or_default() += 1;
        }
    }
    assert_eq!(
        subjects.len(),
        3 * EACH,
        "every message arrived: {subjects:?}"
    );
    assert!(
        subjects.values().all(|&n| n == 1),
        "none arrived twice: {subjects:?}"
    );
    drop(servers);
}

/// The script that sends `count` messages to bob through SMTP on `port`
/// and prints one line per message the server acknowledged with 250.
const SENDER: &str = r#"
import smtplib, sys
port, tag, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = None
for i in range(count):
    try:
        if s is None:
            s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.sendmail("ann@remote.test", ["bob@example.test"],
                   ("Subject: %s-%d\r\n\r\nload\r\n" % (tag, i)).encode())
        print("ok %s-%d" % (tag, i), flush=True)
    except (smtplib.SMTPException, OSError) as e:
        print("err %s-%d %s" % (tag, i, e), flush=True)
        try:
            s.close()
        except Exception:
            pass
        s = None
"#;

/// Subjects of bob's INBOX, counted, read through `server`'s IMAP.
fn inbox_subjects(server: &Server) -> HashMap<String, usize> {
    let mut imap = Imap::connect(server.listeners["imap"]);
    imap.run("LOGIN bob@example.test secret").ok();
    imap.run("SELECT INBOX").ok();
    let fetch = imap.run("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let mut subjects = HashMap::new();
    for r in &fetch.untagged {
        if let Some(s) = r.text().split("Subject: ").nth(1) {
            let subject = s.split_whitespace().next().unwrap_or("").to_string();
            *subjects.entry(subject).or_insert(0) += 1;
        }
    }
    subjects
}

fn acknowledged(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ok ").map(str::to_string))
        .collect()
}

#[test]
fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin);
    let (a, b) = (node(&db.url, ""), node(&db.url, ""));
    add_account(&a, "bob@example.test");
    let (node_a, node_b) = (a.start(), b.start());
    let port_a = node_a.listeners["smtp"].port().to_string();
    let port_b = node_b.listeners["smtp"].port().to_string();
    let load_b = std::thread::spawn(move || {
        Command::new("python3")
            .args(["-c", SENDER, &port_b, "b", "150"])
            .output()
            .expect("python3")
    });
    // Node A dies (SIGKILL) once it has acknowledged 60 messages.
    let mut load_a = Command::new("python3")
        .args(["-c", SENDER, &port_a, "a", "400"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut acked_a = Vec::new();
    {
        use std::io::BufRead;
        let lines = std::io::BufReader::new(load_a.stdout.take().unwrap()).lines();
        let mut node_a = Some(node_a);
        for line in lines.map_while(Result::ok) {
            if let Some(subject) = line.strip_prefix("ok ") {
                acked_a.push(subject.to_string());
                if acked_a.len() == 60 {
                    if let Some(n) = node_a.take() {
                        let (status, _) = n.stop_with("KILL");
                        assert!(!status.success());
                    }
                }
            }
        }
        assert!(node_a.is_none(), "node A acknowledged fewer than 60");
    }
    load_a.wait().unwrap();
    let out_b = load_b.join().unwrap();
    let acked_b = acknowledged(&out_b.stdout);
    assert_eq!(acked_b.len(), 150, "node B kept serving");
    let subjects = inbox_subjects(&node_b);
    for s in acked_a.iter().chain(&acked_b) {
        assert_eq!(
            subjects.get(s).copied().unwrap_or(0),
            1,
            "acknowledged {s} is stored once"
        );
    }
}

/// `scripts/postgres-test-cluster.sh` from the repository.
fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres-test-cluster.sh")
}

/// A PostgreSQL cluster of this test's own, stopped and removed on drop.
struct OwnCluster {
    dir: PathBuf,
    url: String,
}

impl OwnCluster {
    fn start() -> OwnCluster {
        let dir = std::env::temp_dir().join(format!(
            "tern-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let out = Command::new("bash")
            .arg(cluster_script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run the cluster script");
        assert!(
            out.status.success(),
            "starting a cluster: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let admin = String::from_utf8_lossy(&out.stdout).trim().to_string();
        psql(&admin, "CREATE DATABASE tern");
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
        let url = format!("{base}/tern");
        OwnCluster { dir, url }
    }

    fn restart(&self) {
        let out = Command::new("bash")
            .arg(cluster_script())
            .arg("restart")
            .arg(&self.dir)
            .output()
            .expect("run the cluster script");
        assert!(
            out.status.success(),
            "restarting: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(cluster_script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

#[test]
fn a_database_restart_under_load_costs_temporary_errors_at_most() {
    if server_url().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let t = node(&cluster.url, "");
    add_account(&t, "bob@example.test");
    let server = t.start();
    let port = server.listeners["smtp"].port().to_string();
    let mut load = Command::new("python3")
        .args(["-c", SENDER, &port, "r", "300"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    {
        use std::io::BufRead;
        let lines = std::io::BufReader::new(load.stdout.take().unwrap()).lines();
        let mut restarted = false;
        for line in lines.map_while(Result::ok) {
            if let Some(subject) = line.strip_prefix("ok ") {
                acked.push(subject.to_string());
                if acked.len() == 50 && !restarted {
                    cluster.restart();
                    restarted = true;
                }
            } else if let Some(rest) = line.strip_prefix("err ") {
                refused.push(rest.to_string());
            }
        }
        assert!(restarted, "the load outlived the restart");
    }
    load.wait().unwrap();
    // A refusal is a temporary one (4xx), never a permanent 5xx.
    for r in &refused {
        assert!(!r.contains(" 5") || r.contains("(4"), "{r}");
    }
    assert!(
        acked.len() >= 250,
        "most got through: {} of 300",
        acked.len()
    );
    let subjects = inbox_subjects(&server);
    for s in &acked {
        assert_eq!(subjects.get(s).copied().unwrap_or(0), 1, "{s} stored once");
    }
    // And the node works on without a restart of its own.
    let mut smtp = Smtp::ehlo(server.listeners["smtp"], "after.test");
    smtp.send_mail(
        "ann@remote.test",
        &["bob@example.test"],
        b"Subject: after\r\n\r\nx\r\n",
    )
    .is(250, "2.0.0");
    assert_eq!(inbox_subjects(&server).get("after"), Some(&1));
}

#[test]
fn a_pop3_maildrop_held_on_one_node_is_in_use_on_the_others() {
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin);
    let (a, b) = (node(&db.url, ""), node(&db.url, ""));
    add_account(&a, "bob@example.test");
    let (node_a, node_b) = (a.start(), b.start());
    let out = python(
        r#"
import json, poplib, sys
a = poplib.POP3("127.0.0.1", int(sys.argv[1]))
a.user("bob@example.test")
a.pass_("secret")
out = {}
b = poplib.POP3("127.0.0.1", int(sys.argv[2]))
b.user("bob@example.test")
try:
    b.pass_("secret")
    out["while_held"] = "+OK"
except poplib.error_proto as e:
    out["while_held"] = e.args[0].decode()
b.quit()
a.quit()
b = poplib.POP3("127.0.0.1", int(sys.argv[2]))
b.user("bob@example.test")
out["after_quit"] = b.pass_("secret").decode()
b.quit()
print(json.dumps(out))
"#,
        &[
            &node_a.listeners["pop3"].port().to_string(),
            &node_b.listeners["pop3"].port().to_string(),
        ],
    );
    let held = out["while_held"].as_str().unwrap_or("");
    assert!(held.starts_with("-ERR [IN-USE]"), "{out}");
    assert!(
        out["after_quit"].as_str().unwrap_or("").starts_with("+OK"),
        "{out}"
    );
}

#[test]
fn failed_logins_on_one_node_count_on_the_others() {
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin);
    let limits = "[limits]\nmax_auth_failures = 3\n";
    let (a, b) = (node(&db.url, limits), node(&db.url, limits));
    add_account(&a, "bob@example.test");
    let (node_a, node_b) = (a.start(), b.start());
    let login = |server: &Server, password: &str| {
        let mut imap = Imap::connect(server.listeners["imap"]);
        imap.run(&format!("LOGIN bob@example.test {password}"))
            .tagged
    };
    for _ in 0..3 {
        let answer = login(&node_a, "wrong");
        assert!(answer.starts_with("NO [AUTHENTICATIONFAILED]"), "{answer}");
    }
    // Node B never saw a failure itself, and still refuses the right
    // password: the guesser's three tries were spent on node A.
    let answer = login(&node_b, "secret");
    assert!(answer.starts_with("NO [UNAVAILABLE]"), "{answer}");
    // The block shows on node B's `tern security blocked`, and lifting it
    // there lets the owner in on either node — on A too, whose own
    // limiter counted the three failures: the cluster's count decides.
    let blocked = b.ok(&["security", "blocked"], "");
    assert!(blocked.contains("127.0.0.1"), "{blocked}");
    b.ok(&["security", "unblock", "127.0.0.1"], "");
    let answer = login(&node_b, "secret");
    assert!(answer.starts_with("OK"), "{answer}");
    let answer = login(&node_a, "secret");
    assert!(answer.starts_with("OK"), "{answer}");
}
