//! JMAP over the HTTP server (issue 14, first part): the session resource,
//! the API's request handling (batched calls, result references, the
//! errors of RFC 8620 §3.6) and `Mailbox/get`, driven with curl (HTTP/1.1
//! and HTTP/2 over TLS) and Python's urllib.

use crate::harness::*;
use crate::smtp::python;
use serde_json::{json, Value};
use std::process::Command;

fn server() -> (TestDir, Server) {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    (dir, server)
}

/// POSTs `body` to the API as joe over plain HTTP on loopback; the status
/// and the JSON answer.
pub fn api(server: &Server, body: &str) -> (u64, Value) {
    let out = python(
        r#"
import base64, json, sys, urllib.request, urllib.error
req = urllib.request.Request("http://127.0.0.1:%s/jmap/api" % sys.argv[1], data=sys.argv[2].encode(),
    headers={"Authorization": "Basic " + base64.b64encode(b"joe@example.test:secret").decode(),
             "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req) as r:
        print(json.dumps([r.status, json.loads(r.read())]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, json.loads(e.read() or b"null")]))
"#,
        &[&server.listeners["http"].port().to_string(), body],
    );
    (out[0].as_u64().unwrap(), out[1].clone())
}

/// curl's status line and headers, and its body, for `args`.
pub fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "-", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

#[test]
fn session_resource_authentication_and_http2() {
    let (_dir, server) = server();
    let http = format!("http://127.0.0.1:{}", server.listeners["http"].port());
    let (head, _) = curl(&[&format!("{http}/.well-known/jmap")]);
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("location: /jmap/session"),
        "{head}"
    );

    let (head, body) = curl(&[&format!("{http}/jmap/session")]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(head.contains("www-authenticate: Basic"), "{head}");
    assert!(
        body.contains("\"status\":401"),
        "a problem document: {body}"
    );
    let (head, _) = curl(&[
        "-u",
        "joe@example.test:wrong",
        &format!("{http}/jmap/session"),
    ]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    let (head, body) = curl(&[
        "-u",
        "joe@example.test:secret",
        &format!("{http}/jmap/session"),
    ]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let session: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(session["username"], "joe@example.test");
    assert_eq!(session["apiUrl"], format!("{http}/jmap/api"));
    let account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        .as_str()
        .unwrap();
    assert_eq!(session["accounts"][account]["name"], "joe@example.test");
    assert!(session["capabilities"]["urn:ietf:params:jmap:core"]["maxCallsInRequest"].is_number());

    // HTTP/2 over TLS, negotiated by ALPN.
    let https = format!("https://127.0.0.1:{}", server.listeners["https"].port());
    let (head, body) = curl(&[
        "-k",
        "--http2",
        "-u",
        "joe@example.test:secret",
        &format!("{https}/jmap/session"),
    ]);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(body.contains("\"username\":\"joe@example.test\""), "{body}");
    let (head, _) = curl(&["-k", &format!("{https}/nowhere")]);
    assert!(head.starts_with("HTTP/2 404"), "{head}");
}

#[test]
fn api_calls_references_errors_and_mailbox_counts() {
    let (_dir, server) = server();
    // One message in INBOX, through SMTP.
    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("ann@remote.test", ["joe@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
s.quit()
print(json.dumps("ok"))
"#,
        &[&server.listeners["smtp"].port().to_string()],
    );
    assert_eq!(sent, "ok");

    let (status, r) = api(
        &server,
        &json!({
            "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
            "methodCalls": [
                ["Core/echo", {"hello": [1, 2]}, "c0"],
                ["Mailbox/get", {"accountId": "a1", "ids": null}, "c1"],
                ["Mailbox/get", {"accountId": "a1",
                    "#ids": {"resultOf": "c1", "name": "Mailbox/get", "path": "/list/*/id"},
                    "properties": ["name", "role"]}, "c2"],
                ["Email/teleport", {}, "c3"],
                ["Mailbox/get", {"accountId": "a999"}, "c4"],
                ["Mailbox/get", {"accountId": "a1",
                    "#ids": {"resultOf": "nope", "name": "Mailbox/get", "path": "/list"}}, "c5"],
            ],
        })
        .to_string(),
    );
    assert_eq!(status, 200, "{r}");
    let responses = r["methodResponses"].as_array().unwrap();
    assert_eq!(responses[0], json!(["Core/echo", {"hello": [1, 2]}, "c0"]));
    let mailboxes = responses[1][1]["list"].as_array().unwrap();
    let inbox = mailboxes
        .iter()
        .find(|m| m["role"] == "inbox")
        .expect("an inbox");
    assert_eq!(inbox["name"], "INBOX");
    assert_eq!(inbox["totalEmails"], 1);
    assert_eq!(inbox["unreadEmails"], 1);
    assert!(mailboxes.iter().any(|m| m["role"] == "junk"));
    let state = responses[1][1]["state"].clone();
    assert!(state.is_string());
    // The reference gave every id; only the asked properties (and id).
    assert_eq!(
        responses[2][1]["list"].as_array().unwrap().len(),
        mailboxes.len()
    );
    assert_eq!(
        responses[2][1]["list"][0].as_object().unwrap().len(),
        3,
        "{}",
        responses[2][1]
    );
    assert_eq!(responses[3][0], "error");
    assert_eq!(responses[3][1]["type"], "unknownMethod");
    assert_eq!(responses[4][1]["type"], "accountNotFound");
    assert_eq!(responses[5][1]["type"], "invalidResultReference");

    // Seen over IMAP: JMAP sees the count and a new state.
    let mut imap = crate::imap::Imap::connect(server.listeners["imap"]);
    imap.run("LOGIN joe@example.test secret").ok();
    imap.run("SELECT INBOX").ok();
    imap.run("STORE 1 +FLAGS (\\Seen)").ok();
    let (_, r) = api(
        &server,
        &json!({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                "methodCalls": [["Mailbox/get", {"accountId": "a1", "ids": [inbox["id"]]}, "c0"]]})
        .to_string(),
    );
    let after = &r["methodResponses"][0][1];
    assert_eq!(after["list"][0]["unreadEmails"], 0, "{after}");
    assert_ne!(after["state"], state);

    // Request-level errors (RFC 8620 §3.6.1), as problem documents.
    let (status, r) = api(&server, "{not json");
    assert_eq!(
        (status, r["type"].as_str()),
        (400, Some("urn:ietf:params:jmap:error:notJSON"))
    );
    let (status, r) = api(
        &server,
        &json!({"using": [], "methodCalls": {}}).to_string(),
    );
    assert_eq!(
        (status, r["type"].as_str()),
        (400, Some("urn:ietf:params:jmap:error:notRequest"))
    );
    let (status, r) = api(
        &server,
        &json!({"using": ["urn:example:teleport"], "methodCalls": []}).to_string(),
    );
    assert_eq!(
        (status, r["type"].as_str()),
        (400, Some("urn:ietf:params:jmap:error:unknownCapability"))
    );
    let many: Vec<Value> = (0..100)
        .map(|i| json!(["Core/echo", {}, format!("c{i}")]))
        .collect();
    let (status, r) = api(
        &server,
        &json!({"using": ["urn:ietf:params:jmap:core"], "methodCalls": many}).to_string(),
    );
    assert_eq!(
        (status, r["limit"].as_str()),
        (400, Some("maxCallsInRequest"))
    );
    // A method of a capability not in `using`.
    let (_, r) = api(
        &server,
        &json!({"using": ["urn:ietf:params:jmap:core"],
                "methodCalls": [["Mailbox/get", {"accountId": "a1"}, "c0"]]})
        .to_string(),
    );
    assert_eq!(r["methodResponses"][0][1]["type"], "unknownMethod");
    // Deep nesting is refused as bad JSON, not a crash; the server serves on.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, _) = api(&server, &deep);
    assert_eq!(status, 400);
    let (status, _) = api(
        &server,
        &json!({"using": [], "methodCalls": []}).to_string(),
    );
    assert_eq!(status, 200);
}

#[test]
fn oversized_requests_are_refused_by_the_limit() {
    let (_dir, server) = server();
    let http = format!(
        "http://127.0.0.1:{}/jmap/api",
        server.listeners["http"].port()
    );
    let big = "x".repeat(11 * 1024 * 1024);
    let path = std::env::temp_dir().join(format!("tern-jmap-big-{}", std::process::id()));
    std::fs::write(&path, &big).unwrap();
    let (head, body) = curl(&[
        "-u",
        "joe@example.test:secret",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", path.display()),
        &http,
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(body.contains("maxSizeRequest"), "{body}");
}

/// The Python with jmapc (a third-party JMAP client): scripts/test.sh puts
/// it in a virtual environment and names it in `TERN_JMAPC_PYTHON`.
fn jmapc_python() -> Option<String> {
    let python = std::env::var("TERN_JMAPC_PYTHON").ok()?;
    std::path::Path::new(&python).exists().then_some(python)
}

#[test]
fn jmapc_queries_reads_flags_moves_and_follows_imap_changes() {
    let Some(python) = jmapc_python() else {
        if std::env::var_os("TERN_REQUIRE_JMAPC").is_some() {
            panic!("TERN_JMAPC_PYTHON does not name a Python with jmapc (see scripts/test.sh)");
        }
        eprintln!("jmapc test skipped: set TERN_JMAPC_PYTHON to a Python with jmapc");
        return;
    };
    let (dir, server) = server();
    for subject in ["first", "second"] {
        let sent = crate::smtp::python(
            r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("ann@remote.test", ["joe@example.test"],
           ("From: Ann <ann@remote.test>\r\nTo: joe@example.test\r\nSubject: %s\r\n"
            "Date: Sun, 6 Dec 2026 12:00:00 +0000\r\n\r\nhello %s\r\n" % (sys.argv[2], sys.argv[2])).encode())
s.quit()
print(json.dumps("ok"))
"#,
            &[&server.listeners["smtp"].port().to_string(), subject],
        );
        assert_eq!(sent, "ok");
    }
    let script = r#"
import json, sys, imaplib
from jmapc import Client, Comparator, EmailQueryFilterCondition, Ref
from jmapc.methods import (MailboxGet, EmailQuery, EmailGet, EmailSet, EmailChanges,
                           MailboxChanges)
client = Client.create_with_password(host=sys.argv[1], user="joe@example.test", password="secret")
# Tern's generated certificate is self-signed: trust exactly it (and not
# a CA bundle named in the environment, which requests would prefer).
client.requests_session.trust_env = False
client.requests_session.verify = sys.argv[2]
out = {}
boxes = client.request(MailboxGet(ids=None)).data
inbox = next(b for b in boxes if b.role == "inbox")
junk = next(b for b in boxes if b.role == "junk")
out["inbox_total"] = inbox.total_emails
results = client.request([
    EmailQuery(filter=EmailQueryFilterCondition(in_mailbox=inbox.id),
               sort=[Comparator(property="receivedAt", is_ascending=True)], calculate_total=True),
    EmailGet(ids=Ref("/ids"), properties=["subject", "from", "keywords", "mailboxIds", "preview", "receivedAt"]),
])
query, emails = results[0].response, results[1].response.data
out["total"] = query.total
out["subjects"] = [e.subject for e in emails]
out["from"] = emails[0].mail_from[0].email
out["preview"] = emails[0].preview
state = client.request(EmailChanges(since_state="0")).new_state
# Seen and moved to Junk over JMAP.
r = client.request(EmailSet(update={emails[0].id: {"keywords/$seen": True,
                                                    "mailboxIds": {junk.id: True}}}))
out["updated"] = sorted((r.updated or {}).keys())
# IMAP sees both; then flags the second message itself.
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[3]))
m.login("joe@example.test", "secret")
m.select("Junk")
typ, data = m.fetch("1", "(FLAGS)")
out["imap_junk_flags"] = data[0].decode()
m.select("INBOX")
m.store("1", "+FLAGS", "(\\Flagged)")
m.logout()
changes = client.request(EmailChanges(since_state=state))
out["changed"] = sorted(changes.updated)
out["created"] = changes.created
flagged = client.request(EmailGet(ids=[emails[1].id], properties=["keywords"])).data[0]
out["flagged_keywords"] = sorted(k for k, v in flagged.keywords.items() if v)
mbox_changes = client.request(MailboxChanges(since_state=state))
out["mailbox_updated"] = sorted(mbox_changes.updated)
client.request(EmailSet(destroy=[emails[1].id]))
out["after_destroy"] = client.request(EmailQuery(filter=EmailQueryFilterCondition(in_mailbox=inbox.id))).ids
out["ids"] = [e.id for e in emails]
out["inbox"], out["junk"] = inbox.id, junk.id
print(json.dumps(out))
"#;
    let cert = dir.data_dir().join("tls/cert.pem");
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(format!("127.0.0.1:{}", server.listeners["https"].port()))
        .arg(&cert)
        .arg(server.listeners["imap"].port().to_string())
        .output()
        .expect("python with jmapc");
    assert!(
        output.status.success(),
        "jmapc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["inbox_total"], 2, "{out}");
    assert_eq!(out["total"], 2, "{out}");
    assert_eq!(out["subjects"], json!(["first", "second"]), "{out}");
    assert_eq!(out["from"], "ann@remote.test");
    assert!(
        out["preview"].as_str().unwrap().contains("hello first"),
        "{out}"
    );
    assert_eq!(out["updated"], json!([out["ids"][0]]), "{out}");
    assert!(
        out["imap_junk_flags"].as_str().unwrap().contains("\\Seen"),
        "{out}"
    );
    // The second message, flagged over IMAP, is among the changes.
    assert!(
        out["changed"].as_array().unwrap().contains(&out["ids"][1]),
        "{out}"
    );
    assert_eq!(out["flagged_keywords"], json!(["$flagged"]), "{out}");
    let mailboxes = out["mailbox_updated"].as_array().unwrap();
    assert!(
        mailboxes.contains(&out["inbox"]) && mailboxes.contains(&out["junk"]),
        "{out}"
    );
    assert_eq!(out["after_destroy"], json!([]), "both left INBOX: {out}");
}

#[test]
fn upload_import_bodies_and_downloads() {
    let (_dir, server) = server();
    let out = python(
        r##"
import base64, json, sys, urllib.request, imaplib
base = "http://127.0.0.1:%s" % sys.argv[1]
auth = {"Authorization": "Basic " + base64.b64encode(b"joe@example.test:secret").decode()}
def call(calls):
    req = urllib.request.Request(base + "/jmap/api", headers=dict(auth, **{"Content-Type": "application/json"}),
        data=json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                         "methodCalls": calls}).encode())
    return json.loads(urllib.request.urlopen(req).read())["methodResponses"]
raw = (b"From: Ann <ann@remote.test>\r\nTo: joe@example.test\r\nSubject: report\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
       b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe report is attached.\r\n"
       b"--b1\r\nContent-Type: application/octet-stream; name=r.bin\r\n"
       b"Content-Disposition: attachment; filename=r.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       + base64.b64encode(bytes(range(256))) + b"\r\n--b1--\r\n")
req = urllib.request.Request(base + "/jmap/upload/a1/", data=raw,
                             headers=dict(auth, **{"Content-Type": "message/rfc822"}))
r = urllib.request.urlopen(req)
up = json.loads(r.read())
out = {"upload_status": r.status, "upload": up}
boxes = call([["Mailbox/get", {"accountId": "a1"}, "0"]])[0][1]["list"]
inbox = next(b["id"] for b in boxes if b["role"] == "inbox")
res = call([
    ["Email/import", {"accountId": "a1", "emails": {"k1": {"blobId": up["blobId"],
        "mailboxIds": {inbox: True}, "keywords": {"$seen": True}}}}, "0"],
    ["Email/get", {"accountId": "a1", "ids": ["#k1"],
        "properties": ["subject", "keywords", "textBody", "attachments", "bodyValues"],
        "fetchTextBodyValues": True}, "1"],
])
out["import"] = res[0][1]
email = res[1][1]["list"][0]
out["email"] = email
att = email["attachments"][0]
req = urllib.request.Request(base + "/jmap/download/a1/%s/%s?accept=application%%2Foctet-stream" % (att["blobId"], att["name"]), headers=auth)
r = urllib.request.urlopen(req)
out["att_ok"] = r.read() == bytes(range(256))
out["att_type"] = r.headers["Content-Type"]
req = urllib.request.Request(base + "/jmap/download/a1/%s/msg.eml" % up["blobId"], headers=auth)
out["whole_ok"] = urllib.request.urlopen(req).read() == raw
# A blob larger than the spool threshold (1 MiB: the upload goes through a
# temporary file) and than one streamed chunk (256 KiB), not a multiple
# of it, comes back whole.
big = bytes((i * 7 + i // 251) % 256 for i in range(1500001))
req = urllib.request.Request(base + "/jmap/upload/a1/", data=big, headers=auth)
big_id = json.loads(urllib.request.urlopen(req).read())["blobId"]
req = urllib.request.Request(base + "/jmap/download/a1/%s/big.bin" % big_id, headers=auth)
out["big_ok"] = urllib.request.urlopen(req).read() == big
try:
    urllib.request.urlopen(urllib.request.Request(base + "/jmap/download/a1/b%s/x" % ("0" * 64), headers=auth))
except urllib.error.HTTPError as e:
    out["missing"] = e.code
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[2]))
m.login("joe@example.test", "secret")
m.select("INBOX")
out["imap"] = m.fetch("1", "(FLAGS)")[1][0].decode()
print(json.dumps(out))
"##,
        &[
            &server.listeners["http"].port().to_string(),
            &server.listeners["imap"].port().to_string(),
        ],
    );
    assert_eq!(out["upload_status"], 201, "{out}");
    assert!(out["upload"]["blobId"].as_str().unwrap().starts_with('b'));
    assert!(out["import"]["created"]["k1"]["id"].is_string(), "{out}");
    let email = &out["email"];
    assert_eq!(email["subject"], "report");
    assert_eq!(email["keywords"], json!({"$seen": true}));
    let text_part = email["textBody"][0]["partId"].as_str().unwrap();
    assert_eq!(
        email["bodyValues"][text_part]["value"],
        "The report is attached."
    );
    assert_eq!(email["attachments"][0]["name"], "r.bin");
    assert_eq!(out["att_ok"], true, "{out}");
    assert_eq!(out["att_type"], "application/octet-stream");
    assert_eq!(out["whole_ok"], true);
    assert_eq!(out["big_ok"], true, "a streamed download is the upload");
    assert_eq!(out["missing"], 404);
    assert!(out["imap"].as_str().unwrap().contains("\\Seen"), "{out}");
}

#[test]
fn email_submission_sends_a_draft_and_files_it_in_sent() {
    let dir = TestDir::new();
    for user in ["joe", "bob", "carol"] {
        dir.add_account(&format!("{user}@example.test"));
    }
    let server = dir.start();
    let out = python(
        r##"
import base64, json, sys, urllib.request, imaplib
base = "http://127.0.0.1:%s" % sys.argv[1]
auth = {"Authorization": "Basic " + base64.b64encode(b"joe@example.test:secret").decode()}
using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission"]
def call(calls):
    req = urllib.request.Request(base + "/jmap/api", headers=dict(auth, **{"Content-Type": "application/json"}),
        data=json.dumps({"using": using, "methodCalls": calls}).encode())
    return json.loads(urllib.request.urlopen(req).read())["methodResponses"]
def upload(raw):
    req = urllib.request.Request(base + "/jmap/upload/a1/", data=raw, headers=auth)
    return json.loads(urllib.request.urlopen(req).read())["blobId"]
boxes = {b["role"]: b["id"] for b in call([["Mailbox/get", {"accountId": "a1"}, "0"]])[0][1]["list"] if b["role"]}
draft = (b"From: Joe <joe@example.test>\r\nTo: bob@example.test\r\nBcc: carol@example.test\r\n"
         b"Subject: lunch\r\n\r\nNoon?\r\n")
forged = b"From: <boss@example.test>\r\nTo: bob@example.test\r\nSubject: raise\r\n\r\nYes.\r\n"
res = call([
    ["Email/import", {"accountId": "a1", "emails": {
        "d": {"blobId": upload(draft), "mailboxIds": {boxes["drafts"]: True}, "keywords": {"$draft": True}},
        "f": {"blobId": upload(forged), "mailboxIds": {boxes["drafts"]: True}}}}, "0"],
    ["Identity/get", {"accountId": "a1"}, "1"],
    ["EmailSubmission/set", {"accountId": "a1",
        "create": {"s1": {"identityId": "i1", "emailId": "#d"}, "s2": {"identityId": "i1", "emailId": "#f"}},
        "onSuccessUpdateEmail": {"#s1": {"mailboxIds/" + boxes["drafts"]: None,
                                         "mailboxIds/" + boxes["sent"]: True, "keywords/$draft": None}}}, "2"],
])
out = {"names": [r[0] for r in res], "identity": res[1][1]["list"][0]["email"],
       "created": list((res[2][1]["created"] or {}).keys()),
       "not_created": res[2][1]["notCreated"], "implicit": res[3][1] if len(res) > 3 else None}
got = {}
for user in ["bob", "carol"]:
    m = imaplib.IMAP4("127.0.0.1", int(sys.argv[2]))
    m.login(user + "@example.test", "secret")
    typ, count = m.select("INBOX")
    got[user] = []
    if int(count[0]):
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        got[user] = [d[1].decode() for d in data if isinstance(d, tuple)]
    m.logout()
out["got"] = got
sent = call([["Email/query", {"accountId": "a1", "filter": {"inMailbox": boxes["sent"]}}, "0"],
             ["Email/get", {"accountId": "a1", "#ids": {"resultOf": "0", "name": "Email/query", "path": "/ids"},
                            "properties": ["subject", "keywords"]}, "1"]])
out["sent"] = sent[1][1]["list"]
print(json.dumps(out))
"##,
        &[
            &server.listeners["http"].port().to_string(),
            &server.listeners["imap"].port().to_string(),
        ],
    );
    assert_eq!(
        out["names"],
        json!([
            "Email/import",
            "Identity/get",
            "EmailSubmission/set",
            "Email/set"
        ]),
        "{out}"
    );
    assert_eq!(out["identity"], "joe@example.test");
    assert_eq!(out["created"], json!(["s1"]), "{out}");
    assert_eq!(out["not_created"]["s2"]["type"], "forbiddenFrom", "{out}");
    assert!(out["implicit"]["updated"].is_object(), "{out}");
    for user in ["bob", "carol"] {
        let got = out["got"][user].as_array().unwrap();
        assert_eq!(got.len(), 1, "{user}: {out}");
        let text = got[0].as_str().unwrap();
        assert!(text.contains("Subject: lunch"), "{text}");
        assert!(!text.contains("Bcc:"), "no recipient sees the Bcc: {text}");
    }
    assert_eq!(
        out["sent"],
        json!([{"id": out["sent"][0]["id"], "subject": "lunch", "keywords": {}}]),
        "{out}"
    );
}

#[test]
fn eventsource_pushes_a_state_change_on_smtp_delivery() {
    let (_dir, server) = server();
    let out = python(
        r##"
import base64, json, smtplib, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
auth = {"Authorization": "Basic " + base64.b64encode(b"joe@example.test:secret").decode()}
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
def deliver(subject):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]))
    s.sendmail("ann@remote.test", ["joe@example.test"], ("Subject: %s\r\n\r\nhi\r\n" % subject).encode())
    s.quit()
r = urllib.request.urlopen(urllib.request.Request(
    base + "/jmap/eventsource?types=Email,Mailbox&closeafter=no&ping=0", headers=auth))
out = {"type": r.headers["Content-Type"]}
first = events(r, 1)
deliver("one")
second = events(r, 1)
out["first"], out["second"] = first, second
r.close()
# closeafter=state: the response ends after the next state event.
r = urllib.request.urlopen(urllib.request.Request(
    base + "/jmap/eventsource?types=*&closeafter=state&ping=0", headers=auth))
deliver("two")
out["closeafter"] = events(r, 5)
print(json.dumps(out))
"##,
        &[
            &server.listeners["http"].port().to_string(),
            &server.listeners["smtp"].port().to_string(),
        ],
    );
    assert_eq!(out["type"], "text/event-stream", "{out}");
    let first = &out["first"][0];
    let second = &out["second"][0];
    assert_eq!(first[0], "state");
    assert_eq!(second[0], "state");
    let before = first[1]["changed"]["a1"]["Email"].as_str().unwrap();
    let after = second[1]["changed"]["a1"]["Email"].as_str().unwrap();
    assert!(
        after.parse::<u64>().unwrap() > before.parse::<u64>().unwrap(),
        "{out}"
    );
    assert_eq!(second[1]["@type"], "StateChange");
    assert!(
        second[1]["changed"]["a1"].get("Thread").is_none(),
        "only the asked types: {out}"
    );
    let closeafter = out["closeafter"].as_array().unwrap();
    assert_eq!(closeafter.len(), 1, "one state event, then the end: {out}");
}

#[test]
fn mailboxes_created_renamed_queried_and_destroyed_are_what_imap_lists() {
    let (_dir, server) = server();
    let using = json!(["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]);
    let (_, r) = api(
        &server,
        &json!({"using": using, "methodCalls": [
            ["Mailbox/set", {"accountId": "a1", "create": {
                "p": {"name": "Projects", "parentId": null},
                "c": {"name": "2026", "parentId": "#p"},
                "bad": {"name": "a/b"}}}, "0"],
        ]})
        .to_string(),
    );
    let set = &r["methodResponses"][0][1];
    assert!(set["created"]["p"]["id"].is_string(), "{r}");
    assert_eq!(set["notCreated"]["bad"]["type"], "invalidProperties", "{r}");
    let projects = set["created"]["p"]["id"].as_str().unwrap().to_string();
    // `#p` names the parent created in the same call (RFC 8620 §5.3),
    // though `c` sorts before `p`.
    let child = set["created"]["c"]["id"].clone();
    assert!(child.is_string(), "{r}");
    let (_, r) = api(
        &server,
        &json!({"using": using, "methodCalls": [
            ["Mailbox/set", {"accountId": "a1", "create": {
                "c": {"name": "2026", "parentId": projects}}}, "0"],
            ["Mailbox/set", {"accountId": "a1", "update": {
                projects.clone(): {"name": "Work"}}}, "1"],
            ["Mailbox/query", {"accountId": "a1", "filter": {"parentId": projects}}, "2"],
            ["Mailbox/set", {"accountId": "a1", "destroy": [projects]}, "3"],
        ]})
        .to_string(),
    );
    let responses = &r["methodResponses"];
    assert_eq!(
        responses[0][1]["notCreated"]["c"]["type"], "invalidProperties",
        "already there: {r}"
    );
    assert!(responses[1][1]["updated"].is_object(), "{r}");
    assert_eq!(responses[2][1]["ids"], json!([child]), "{r}");
    assert_eq!(
        responses[3][1]["notDestroyed"][&projects]["type"], "mailboxHasChild",
        "{r}"
    );
    let mut imap = crate::imap::Imap::connect(server.listeners["imap"]);
    imap.run("LOGIN joe@example.test secret").ok();
    let list = imap.run("LIST \"\" \"Work*\"");
    let text: String = list.untagged.iter().map(|r| r.text()).collect();
    assert!(
        text.contains("\"Work\"") || text.contains(" Work\r\n"),
        "{text}"
    );
    assert!(text.contains("Work/2026"), "{text}");
}

#[test]
fn threads_gather_a_reply_with_its_original() {
    let (_dir, server) = server();
    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("ann@remote.test", ["joe@example.test"], b"Subject: plan\r\nMessage-ID: <p1@remote.test>\r\n\r\nfirst\r\n")
s.sendmail("ann@remote.test", ["joe@example.test"], b"Subject: Re: plan\r\nMessage-ID: <p2@remote.test>\r\nIn-Reply-To: <p1@remote.test>\r\n\r\nreply\r\n")
s.sendmail("ann@remote.test", ["joe@example.test"], b"Subject: other\r\n\r\nelse\r\n")
s.quit()
print(json.dumps("ok"))
"#,
        &[&server.listeners["smtp"].port().to_string()],
    );
    assert_eq!(sent, "ok");
    let (_, r) = api(
        &server,
        &json!({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"], "methodCalls": [
            ["Email/query", {"accountId": "a1", "sort": [{"property": "receivedAt", "isAscending": true}]}, "0"],
            ["Email/get", {"accountId": "a1", "#ids": {"resultOf": "0", "name": "Email/query", "path": "/ids"},
                "properties": ["threadId"]}, "1"],
            ["Thread/get", {"accountId": "a1", "#ids": {"resultOf": "1", "name": "Email/get", "path": "/list/*/threadId"}}, "2"],
        ]})
        .to_string(),
    );
    let ids = &r["methodResponses"][0][1]["ids"];
    let threads = r["methodResponses"][2][1]["list"].as_array().unwrap();
    let first = &threads[0];
    assert_eq!(first["emailIds"], json!([ids[0], ids[1]]), "{r}");
    let last = threads.last().unwrap();
    assert_eq!(last["emailIds"], json!([ids[2]]), "{r}");
    // Text conditions, through the full-text index.
    let (_, r) = api(
        &server,
        &json!({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"], "methodCalls": [
            ["Email/query", {"accountId": "a1", "filter": {"text": "else"}}, "0"],
            ["Email/query", {"accountId": "a1", "filter": {"subject": "plan"},
                "sort": [{"property": "receivedAt", "isAscending": true}], "calculateTotal": true}, "1"],
            ["Email/query", {"accountId": "a1", "filter": {"body": "nothing-like-this"}}, "2"],
        ]})
        .to_string(),
    );
    let responses = &r["methodResponses"];
    assert_eq!(responses[0][1]["ids"], json!([ids[2]]), "{r}");
    assert_eq!(responses[1][1]["ids"], json!([ids[0], ids[1]]), "{r}");
    assert_eq!(responses[1][1]["total"], 2, "{r}");
    assert_eq!(responses[2][1]["ids"], json!([]), "{r}");
}

#[test]
fn vacation_response_answers_once_per_sender_and_never_bulk_mail() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    dir.add_account("bob@example.test");
    let server = dir.start();
    let using = json!([
        "urn:ietf:params:jmap:core",
        "urn:ietf:params:jmap:vacationresponse"
    ]);
    let (_, r) = api(
        &server,
        &json!({"using": using, "methodCalls": [
            ["VacationResponse/set", {"accountId": "a1", "update": {"singleton": {
                "isEnabled": true, "subject": "Away", "textBody": "Back on Monday."}}}, "0"],
            ["VacationResponse/get", {"accountId": "a1"}, "1"],
            ["VacationResponse/set", {"accountId": "a1", "create": {"x": {}}}, "2"],
        ]})
        .to_string(),
    );
    let responses = &r["methodResponses"];
    assert!(responses[0][1]["updated"].is_object(), "{r}");
    assert_eq!(responses[1][1]["list"][0]["id"], "singleton");
    assert_eq!(responses[1][1]["list"][0]["isEnabled"], true);
    assert_eq!(responses[1][1]["list"][0]["subject"], "Away");
    assert_eq!(
        responses[2][1]["notCreated"]["x"]["type"], "singleton",
        "{r}"
    );

    // bob writes twice, and a newsletter comes: one reply, to bob.
    let out = python(
        r#"
import imaplib, json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("bob@example.test", ["joe@example.test"], b"From: bob@example.test\r\nSubject: lunch\r\nMessage-ID: <l1@example.test>\r\n\r\nnoon?\r\n")
s.sendmail("bob@example.test", ["joe@example.test"], b"From: bob@example.test\r\nSubject: lunch again\r\n\r\n1pm?\r\n")
s.sendmail("news@example.test", ["joe@example.test"], b"From: news@example.test\r\nPrecedence: bulk\r\nSubject: news\r\n\r\nnews\r\n")
s.quit()
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[2]))
m.login("bob@example.test", "secret")
typ, count = m.select("INBOX")
out = {"count": int(count[0])}
if out["count"]:
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    out["reply"] = data[0][1].decode()
print(json.dumps(out))
"#,
        &[
            &server.listeners["smtp"].port().to_string(),
            &server.listeners["imap"].port().to_string(),
        ],
    );
    assert_eq!(out["count"], 1, "one reply for two messages: {out}");
    let reply = out["reply"].as_str().unwrap();
    assert!(reply.contains("Subject: Away"), "{reply}");
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    assert!(reply.contains("In-Reply-To: <l1@example.test>"), "{reply}");
    assert!(reply.contains("Back on Monday."), "{reply}");
}

/// jmap-jam, the Node.js JMAP client, as scripts/test.sh installs it.
pub fn node_modules() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/node/node_modules")
}

const JMAP_JAM_SCRIPT: &str = r#"
const [modules, base, token] = process.argv.slice(2);
const { default: JamClient } = await import(`file://${modules}/jmap-jam/dist/index.js`);
const out = {};
const jam = new JamClient({ sessionUrl: `${base}/.well-known/jmap`, bearerToken: token });
const accountId = await jam.getPrimaryAccount();
out.accountId = accountId;
const [mailboxes] = await jam.api.Mailbox.get({ accountId });
const inbox = mailboxes.list.find((m) => m.role === "inbox");
const [results] = await jam.requestMany((t) => {
  const query = t.Email.query({ accountId, filter: { inMailbox: inbox.id } });
  const emails = t.Email.get({
    accountId,
    ids: query.$ref("/ids"),
    properties: ["subject", "keywords", "bodyValues", "textBody"],
    fetchTextBodyValues: true,
  });
  return { query, emails };
});
const email = results.emails.list[0];
out.subject = email.subject;
out.body = email.bodyValues[email.textBody[0].partId].value;
const [set] = await jam.api.Email.set({ accountId, update: { [email.id]: { "keywords/$seen": true } } });
out.updated = Object.keys(set.updated ?? {});
const blob = await jam.uploadBlob(accountId, new Blob(["From: joe@example.test\r\nTo: bob@example.test\r\nSubject: from jam\r\n\r\nhello bob\r\n"]));
const [imported] = await jam.api.Email.import({
  accountId,
  emails: { n: { blobId: blob.blobId, mailboxIds: { [inbox.id]: true }, keywords: {} } },
});
out.imported = imported.created.n.id;
const download = await jam.downloadBlob({ accountId, blobId: blob.blobId, mimeType: "message/rfc822", fileName: "m.eml" });
out.downloaded = (await download.text()).includes("hello bob");
const [identities] = await jam.api.Identity.get({ accountId });
const [sub] = await jam.api.EmailSubmission.set({
  accountId,
  create: { s: { identityId: identities.list[0].id, emailId: out.imported } },
});
out.submitted = Object.keys(sub.created ?? {});
console.log(JSON.stringify(out));
"#;

#[test]
fn jmap_jam_with_an_api_token_reads_flags_imports_downloads_and_sends() {
    let modules = node_modules();
    assert!(
        modules.join("jmap-jam/package.json").is_file(),
        "jmap-jam is not installed in {} (see scripts/test.sh)",
        modules.display()
    );
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    dir.add_account("bob@example.test");
    let server = dir.start();
    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("ann@remote.test", ["joe@example.test"], b"Subject: for jam\r\n\r\nhello joe\r\n")
s.quit()
print(json.dumps("ok"))
"#,
        &[&server.listeners["smtp"].port().to_string()],
    );
    assert_eq!(sent, "ok");
    let token = dir
        .ok(&["token", "create", "joe@example.test"], "")
        .trim()
        .to_string();
    assert!(token.starts_with("tern_"), "{token}");
    let base = format!("http://127.0.0.1:{}", server.listeners["http"].port());
    let script = dir.data_dir().join("../jam.mjs");
    std::fs::write(&script, JMAP_JAM_SCRIPT).unwrap();
    let run = |token: &str| {
        Command::new("node")
            .arg(&script)
            .arg(&modules)
            .arg(&base)
            .arg(token)
            .output()
            .expect("node")
    };
    let output = run(&token);
    assert!(
        output.status.success(),
        "jmap-jam: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["accountId"], "a1", "{out}");
    assert_eq!(out["subject"], "for jam");
    assert!(
        out["body"].as_str().unwrap().starts_with("hello joe"),
        "{out}"
    );
    assert_eq!(out["updated"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["downloaded"], true, "{out}");
    assert_eq!(out["submitted"], json!(["s"]), "{out}");
    // Bob got it; a revoked token opens nothing.
    let (_, r) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base}/jmap/session"),
    ]);
    assert!(r.contains("joe@example.test"), "{r}");
    dir.ok(&["token", "revoke", "joe@example.test", &token], "");
    let (head, _) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base}/jmap/session"),
    ]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let mut imap = crate::imap::Imap::connect(server.listeners["imap"]);
    imap.run("LOGIN bob@example.test secret").ok();
    let status = imap.run("STATUS INBOX (MESSAGES)");
    let text: String = status.untagged.iter().map(|r| r.text()).collect();
    assert!(text.contains("MESSAGES 1"), "{text}");
}
