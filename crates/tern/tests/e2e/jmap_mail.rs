//! JMAP mail beyond reading (issue 14, second part): drafts refused when
//! they would smuggle fields, filters with operators, `queryChanges`,
//! `Thread/changes`, the `header:` forms, `Email/parse`, snippets, quotas,
//! blobs, and IMAP and JMAP writing one account at once — driven with
//! Python's urllib, the results checked over IMAP where IMAP can see them.

use crate::harness::*;
use crate::smtp::python;
use serde_json::{json, Value};

/// A Python prelude: `call(calls)` posts one request as joe over HTTP on
/// loopback and returns the method responses; `deliver(raw)` sends a
/// message to joe over SMTP.
pub const PRELUDE: &str = r#"
import base64, json, smtplib, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
auth = {"Authorization": "Basic " + base64.b64encode(b"joe@example.test:secret").decode()}
using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission"]
def call(calls):
    req = urllib.request.Request(base + "/jmap/api", headers=dict(auth, **{"Content-Type": "application/json"}),
        data=json.dumps({"using": using, "methodCalls": calls}).encode())
    return json.loads(urllib.request.urlopen(req).read())["methodResponses"]
def one(name, args):
    r = call([[name, dict({"accountId": "a1"}, **args), "0"]])[0]
    return r[1] if r[0] == name else {"error": r[1]}
def deliver(raw, rcpt="joe@example.test"):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]))
    s.sendmail("ann@remote.test", [rcpt], raw)
    s.quit()
boxes = {b["role"]: b["id"] for b in one("Mailbox/get", {})["list"] if b["role"]}
"#;

pub fn run(server: &Server, script: &str) -> Value {
    python(
        &format!("{PRELUDE}{script}"),
        &[
            &server.listeners["http"].port().to_string(),
            &server.listeners["smtp"].port().to_string(),
            &server.listeners["imap"].port().to_string(),
        ],
    )
}

#[test]
fn drafts_refuse_smuggled_fields_and_bad_parts() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    let out = run(
        &server,
        r#"
d = boxes["drafts"]
r = one("Email/set", {"create": {
    "raw_field": {"mailboxIds": {d: True}, "header:X-Note": " a\r\nBcc: evil@example.net"},
    "address": {"mailboxIds": {d: True}, "to": [{"email": "bob@x>\r\nBcc: evil@example.net"}]},
    "both": {"mailboxIds": {d: True}, "subject": "a", "header:Subject:asText": "b"},
    "content": {"mailboxIds": {d: True}, "header:Content-Type": " text/html"},
    "server_set": {"mailboxIds": {d: True}, "id": "e1"},
    "no_mailbox": {"subject": "x"},
    "no_blob": {"mailboxIds": {d: True}, "attachments": [{"blobId": "b" + "0" * 64}]},
    "two_texts": {"mailboxIds": {d: True}, "bodyValues": {"1": {"value": "a"}},
                  "textBody": [{"partId": "1"}, {"partId": "1"}]},
    "cte": {"mailboxIds": {d: True}, "bodyValues": {"1": {"value": "a"}},
            "bodyStructure": {"partId": "1", "header:Content-Transfer-Encoding": " base64"}},
    "bad_keyword": {"mailboxIds": {d: True}, "keywords": {"two words": True}},
    "part_type_twice": {"mailboxIds": {d: True}, "bodyValues": {"1": {"value": "a"}},
            "bodyStructure": {"partId": "1", "header:Content-Type": " text/html"}},
    "good": {"mailboxIds": {d: True}, "subject": "line one\r\nBcc: evil@example.net",
             "header:List-Id:asText": "Tern <tern.example>",
             "bodyValues": {"1": {"value": "fine"}}, "textBody": [{"partId": "1"}]},
}})
out = {k: v["type"] for k, v in (r["notCreated"] or {}).items()}
out["created"] = sorted((r["created"] or {}).keys())
got = one("Email/get", {"ids": [r["created"]["good"]["id"]],
    "properties": ["subject", "header:Bcc", "header:List-Id:asText", "header:Subject"]})["list"][0]
out["good"] = got
print(json.dumps(out))
"#,
    );
    for (key, kind) in [
        ("raw_field", "invalidProperties"),
        ("address", "invalidProperties"),
        ("both", "invalidProperties"),
        ("content", "invalidProperties"),
        ("server_set", "invalidProperties"),
        ("no_mailbox", "invalidProperties"),
        ("no_blob", "blobNotFound"),
        ("two_texts", "invalidProperties"),
        ("cte", "invalidProperties"),
        ("bad_keyword", "invalidProperties"),
        ("part_type_twice", "invalidProperties"),
    ] {
        assert_eq!(out[key], kind, "{key}: {out}");
    }
    assert_eq!(out["created"], json!(["good"]), "{out}");
    let good = &out["good"];
    assert_eq!(good["header:Bcc"], Value::Null, "no field smuggled: {out}");
    assert_eq!(good["subject"], "line one Bcc: evil@example.net");
    assert_eq!(good["header:List-Id:asText"], "Tern <tern.example>");
    assert!(good["header:Subject"].as_str().unwrap().starts_with(' '));
}

#[test]
fn filters_header_forms_and_query_and_thread_changes() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    let out = run(
        &server,
        r#"
def msg(subject, frm, extra=""):
    return ("From: %s\r\nTo: joe@example.test\r\nSubject: %s\r\nMessage-ID: <%s@remote.test>\r\n%s"
            "Date: Sun, 6 Dec 2026 12:00:00 +0100\r\n\r\nbody of %s\r\n" % (frm, subject, subject.replace(" ", "."), extra, subject)).encode()
deliver(msg("alpha", "Ann <ann@remote.test>",
            "List-Post: <mailto:list@remote.test>\r\nList-Unsubscribe: <https://remote.test/u>, <mailto:u@remote.test>\r\n"))
deliver(msg("beta", "=?utf-8?q?Zo=C3=AB?= <zoe@else.test>"))
deliver(msg("gamma", "Ann <ann@remote.test>"))
q = lambda f, **kw: one("Email/query", dict({"filter": f, "sort": [{"property": "receivedAt", "isAscending": True}]}, **kw))
ids = q(None)["ids"]
out = {"ids": ids}
out["or"] = q({"operator": "OR", "conditions": [{"subject": "beta"}, {"from": "ann@remote.test"}]})["ids"]
out["not"] = q({"operator": "NOT", "conditions": [{"from": "ann@remote.test"}]})["ids"]
out["and_not"] = q({"operator": "AND", "conditions": [{"inMailbox": boxes["inbox"]},
                   {"operator": "NOT", "conditions": [{"subject": "alpha"}]}]})["ids"]
out["other_than"] = q({"inMailboxOtherThan": [boxes["trash"]]})["ids"]
out["other_than_inbox"] = q({"inMailboxOtherThan": [boxes["inbox"]]})["ids"]
out["bad_op"] = one("Email/query", {"filter": {"operator": "XOR", "conditions": []}})
out["unknown"] = one("Email/query", {"filter": {"colour": "red"}})
out["anchor"] = q(None, anchor=ids[1], anchorOffset=0, limit=1)
out["negative"] = q(None, position=-1, calculateTotal=True)
out["attachment"] = q({"hasAttachment": False}, calculateTotal=True)["total"]
out["get"] = one("Email/get", {"ids": [ids[0], ids[1]], "properties": [
    "header:List-Post:asURLs", "header:List-Unsubscribe:asURLs", "header:From:asAddresses",
    "header:Date:asDate", "header:Message-ID:asMessageIds", "header:Subject:asText:all", "headers"],
    "bodyProperties": ["partId", "headers"]})
out["bad_prop"] = one("Email/get", {"ids": [ids[0]], "properties": ["header:From:asDate"]})
# queryChanges: one message seen over IMAP, one new; the unseen view changes.
unseen = {"notKeyword": "$seen"}
before = q(unseen)
import imaplib
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[3]))
m.login("joe@example.test", "secret")
m.select("INBOX")
m.store("2", "+FLAGS", "(\\Seen)")
m.create("Projects")
m.logout()
deliver(msg("Re: alpha", "Ann <ann@remote.test>", "In-Reply-To: <alpha@remote.test>\r\n"))
threads_before = one("Thread/get", {"ids": [one("Email/get", {"ids": [ids[0]], "properties": ["threadId"]})["list"][0]["threadId"]]})
ch = one("Email/queryChanges", {"filter": unseen, "sort": [{"property": "receivedAt", "isAscending": True}],
                                "sinceQueryState": before["queryState"], "calculateTotal": True})
out["query_changes"] = ch
out["after"] = q(unseen)["ids"]
out["too_many"] = one("Email/queryChanges", {"filter": unseen, "sinceQueryState": before["queryState"], "maxChanges": 1})
out["bad_state"] = one("Email/queryChanges", {"sinceQueryState": "nonsense"})
mq = one("Mailbox/query", {})
out["mailbox_query_changes"] = one("Mailbox/queryChanges", {"sinceQueryState": before["queryState"]})
out["mailbox_ids"] = mq["ids"]
out["thread"] = threads_before["list"]
out["thread_changes"] = one("Thread/changes", {"sinceState": before["queryState"]})
print(json.dumps(out))
"#,
    );
    let ids = out["ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 3, "{out}");
    assert_eq!(out["or"], json!(ids), "{out}");
    assert_eq!(out["not"], json!([ids[1]]), "{out}");
    assert_eq!(out["and_not"], json!([ids[1], ids[2]]), "{out}");
    assert_eq!(out["other_than"], json!(ids), "{out}");
    assert_eq!(out["other_than_inbox"], json!([]), "{out}");
    assert_eq!(out["bad_op"]["error"]["type"], "invalidArguments", "{out}");
    assert_eq!(
        out["unknown"]["error"]["type"], "unsupportedFilter",
        "{out}"
    );
    assert_eq!(out["anchor"]["ids"], json!([ids[1]]), "{out}");
    assert_eq!(out["anchor"]["position"], 1, "{out}");
    assert_eq!(out["negative"]["ids"], json!([ids[2]]), "{out}");
    assert_eq!(out["negative"]["position"], 2, "{out}");
    assert_eq!(out["attachment"], 3, "{out}");

    let list = out["get"]["list"].as_array().unwrap();
    assert_eq!(
        list[0]["header:List-Post:asURLs"],
        json!(["mailto:list@remote.test"])
    );
    assert_eq!(
        list[0]["header:List-Unsubscribe:asURLs"],
        json!(["https://remote.test/u", "mailto:u@remote.test"])
    );
    assert_eq!(list[1]["header:List-Post:asURLs"], Value::Null);
    assert_eq!(
        list[1]["header:From:asAddresses"],
        json!([{"name": "Zo\u{eb}", "email": "zoe@else.test"}])
    );
    assert_eq!(list[0]["header:Date:asDate"], "2026-12-06T12:00:00+01:00");
    assert_eq!(
        list[0]["header:Message-ID:asMessageIds"],
        json!(["alpha@remote.test"])
    );
    assert_eq!(list[0]["header:Subject:asText:all"], json!(["alpha"]));
    let headers = list[0]["headers"].as_array().unwrap();
    assert!(
        headers.contains(&json!({"name": "Subject", "value": " alpha"})),
        "{out}"
    );
    assert_eq!(out["bad_prop"]["error"]["type"], "invalidArguments");

    // queryChanges: the seen message left, the new one joined at the end.
    let ch = &out["query_changes"];
    let removed = ch["removed"].as_array().unwrap();
    assert!(removed.contains(&ids[1]), "{out}");
    let after = out["after"].as_array().unwrap();
    assert_eq!(after.len(), 3, "{out}");
    assert_eq!(ch["total"], 3, "{out}");
    let added = ch["added"].as_array().unwrap();
    assert!(
        added.contains(&json!({"id": after[2], "index": 2})),
        "{out}"
    );
    assert!(!added.iter().any(|a| a["id"] == ids[1]), "{out}");
    assert_eq!(out["too_many"]["error"]["type"], "tooManyChanges", "{out}");
    assert_eq!(
        out["bad_state"]["error"]["type"], "cannotCalculateChanges",
        "{out}"
    );
    let mqc = &out["mailbox_query_changes"];
    assert_eq!(mqc["added"].as_array().unwrap().len(), 1, "{out}");
    let projects = &mqc["added"][0]["id"];
    let at = mqc["added"][0]["index"].as_u64().unwrap() as usize;
    assert_eq!(&out["mailbox_ids"][at], projects, "{out}");
    // The reply joined alpha's thread: the thread is updated, not new.
    assert_eq!(
        out["thread"][0]["emailIds"],
        json!([ids[0], after[2]]),
        "{out}"
    );
    let tc = &out["thread_changes"];
    assert!(
        tc["updated"]
            .as_array()
            .unwrap()
            .contains(&out["thread"][0]["id"]),
        "{out}"
    );
}

#[test]
fn parse_snippets_quota_copy_and_a_mailbox_tree_in_one_call() {
    let dir = TestDir::new();
    dir.init();
    let _ = dir.tern(&["domain", "add", "example.test"], "");
    dir.ok(
        &[
            "account",
            "add",
            "joe@example.test",
            "--password-stdin",
            "--allow-weak",
            "--quota",
            "10M",
        ],
        "secret\n",
    );
    let server = dir.start();
    let out = run(
        &server,
        r##"
inner = (b"From: Carol <carol@remote.test>\r\nTo: ann@remote.test\r\nSubject: the original plan\r\n"
         b"Message-ID: <plan@remote.test>\r\n\r\nWe meet for lunch at noon.\r\n")
outer = (b"From: Ann <ann@remote.test>\r\nTo: joe@example.test\r\nSubject: Fwd: plan\r\n"
         b"Reply-To: Ann Team <team@remote.test>\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
         b"See the forwarded lunch plan below & reply.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--b--\r\n")
deliver(outer)
deliver(b"From: ann@remote.test\r\nTo: joe@example.test\r\nSubject: Re: Fwd: plan\r\nIn-Reply-To: <plan@remote.test>\r\n\r\nok\r\n")
ids = one("Email/query", {"sort": [{"property": "receivedAt", "isAscending": True}]})["ids"]
got = one("Email/get", {"ids": [ids[0]], "properties": ["attachments", "replyTo", "sender", "bcc"]})["list"][0]
out = {"replyTo": got["replyTo"], "sender": got["sender"], "bcc": got["bcc"]}
attached = [a for a in got["attachments"] if a["type"] == "message/rfc822"][0]
parsed = one("Email/parse", {"blobIds": [attached["blobId"], "b" + "f" * 64],
                              "fetchTextBodyValues": True,
                              "properties": ["subject", "from", "messageId", "bodyValues", "textBody", "id", "mailboxIds"]})
out["parsed"] = parsed
out["snippets"] = one("SearchSnippet/get", {"filter": {"text": "lunch"}, "emailIds": [ids[0], ids[1], "M999999"]})
out["quota"] = call([["Quota/get", {"accountId": "a1"}, "0"]])
req = urllib.request.Request(base + "/jmap/api", headers=dict(auth, **{"Content-Type": "application/json"}),
    data=json.dumps({"using": using + ["urn:ietf:params:jmap:quota"],
                     "methodCalls": [["Quota/get", {"accountId": "a1"}, "0"]]}).encode())
out["quota_with"] = json.loads(urllib.request.urlopen(req).read())["methodResponses"][0]
out["copy_same"] = one("Email/copy", {"fromAccountId": "a1", "create": {}})
out["copy_other"] = one("Email/copy", {"fromAccountId": "a7", "create": {}})
made = one("Mailbox/set", {"create": {"a_child": {"name": "Child", "parentId": "#b_parent"},
                                      "b_parent": {"name": "Parent"},
                                      "c_orphan": {"name": "Lost", "parentId": "#nobody"}}})
out["made"] = made
boxes_now = one("Mailbox/get", {"properties": ["name", "parentId", "totalEmails", "totalThreads", "unreadThreads"]})["list"]
out["boxes"] = {b["name"]: b for b in boxes_now}
out["threads"] = len({e["threadId"] for e in one("Email/get", {"ids": ids, "properties": ["threadId"]})["list"]})
print(json.dumps(out))
"##,
    );
    assert_eq!(
        out["replyTo"],
        json!([{"name": "Ann Team", "email": "team@remote.test"}]),
        "{out}"
    );
    assert_eq!(out["sender"], Value::Null);
    assert_eq!(out["bcc"], Value::Null);
    let parsed = &out["parsed"];
    let (blob, email) = parsed["parsed"].as_object().unwrap().iter().next().unwrap();
    assert!(blob.contains('.'), "a part's blob id: {out}");
    assert_eq!(email["subject"], "the original plan");
    assert_eq!(email["messageId"], json!(["plan@remote.test"]));
    assert_eq!(email["id"], Value::Null);
    assert_eq!(email["mailboxIds"], Value::Null);
    let text_part = email["textBody"][0]["partId"].as_str().unwrap();
    assert!(email["bodyValues"][text_part]["value"]
        .as_str()
        .unwrap()
        .contains("lunch at noon"));
    assert_eq!(parsed["notFound"].as_array().unwrap().len(), 1, "{out}");

    let snippets = &out["snippets"];
    let first = &snippets["list"][0];
    assert!(
        first["preview"]
            .as_str()
            .unwrap()
            .contains("forwarded <mark>lunch</mark> plan below &amp; reply"),
        "{out}"
    );
    assert_eq!(first["subject"], Value::Null, "no match in the subject");
    assert_eq!(snippets["list"][1]["preview"], Value::Null, "{out}");
    assert_eq!(snippets["notFound"], json!(["M999999"]));

    // Quota needs its capability in `using`.
    assert_eq!(out["quota"][0][0], "error", "{out}");
    let quota = &out["quota_with"][1]["list"][0];
    assert_eq!(quota["hardLimit"], 10 * 1024 * 1024, "{out}");
    assert_eq!(quota["resourceType"], "octets");
    assert!(quota["used"].as_u64().unwrap() > 100, "{out}");

    assert_eq!(out["copy_same"]["error"]["type"], "invalidArguments");
    assert_eq!(out["copy_other"]["error"]["type"], "fromAccountNotFound");

    let made = &out["made"];
    let parent_id = &made["created"]["b_parent"]["id"];
    assert!(made["created"]["a_child"]["id"].is_string(), "{out}");
    assert_eq!(
        made["notCreated"]["c_orphan"]["type"], "invalidProperties",
        "{out}"
    );
    let boxes = &out["boxes"];
    assert_eq!(&boxes["Child"]["parentId"], parent_id, "{out}");
    // Thread counts are of threads, as Email/get groups them.
    assert_eq!(boxes["INBOX"]["totalEmails"], 2, "{out}");
    assert_eq!(boxes["INBOX"]["totalThreads"], out["threads"], "{out}");
    assert_eq!(boxes["INBOX"]["unreadThreads"], out["threads"], "{out}");
}

#[test]
fn blobs_are_made_read_and_looked_up_within_the_quota() {
    let dir = TestDir::new();
    dir.init();
    let _ = dir.tern(&["domain", "add", "example.test"], "");
    dir.ok(
        &[
            "account",
            "add",
            "joe@example.test",
            "--password-stdin",
            "--allow-weak",
            "--quota",
            "20000",
        ],
        "secret\n",
    );
    let server = dir.start();
    let out = run(
        &server,
        r##"
deliver(b"Subject: kept\r\nMessage-ID: <kept@remote.test>\r\n\r\nthe stored message\r\n")
using.append("urn:ietf:params:jmap:blob")
email = one("Email/get", {"ids": one("Email/query", {})["ids"], "properties": ["blobId", "threadId", "mailboxIds"]})["list"][0]
made = one("Blob/upload", {"create": {
    "joined": {"data": [{"data:asText": "Hello, "}, {"data:asBase64": "d29ybGQ="},
                        {"blobId": email["blobId"], "offset": 0, "length": 8}], "type": "text/plain"},
    "bad": {"data": [{"nothing": 1}]},
    "missing": {"data": [{"blobId": "b" + "0" * 64}]}}})
out = {"made": made, "email": email}
joined = made["created"]["joined"]["id"]
out["get"] = one("Blob/get", {"ids": [joined, "b" + "1" * 64], "properties": ["data:asText", "size", "digest:sha-256"]})
out["range"] = one("Blob/get", {"ids": [joined], "properties": ["data:asBase64"], "offset": 7, "length": 5})
import hashlib
prefix = one("Blob/get", {"ids": [email["blobId"]], "properties": ["data:asText"], "length": 8})["list"][0]["data:asText"]
out["expected"] = "Hello, world" + prefix
out["expected_digest"] = base64.b64encode(hashlib.sha256(out["expected"].encode()).digest()).decode()
out["lookup"] = one("Blob/lookup", {"typeNames": ["Email", "Thread", "Mailbox"], "ids": [email["blobId"], joined]})
out["lookup_bad"] = one("Blob/lookup", {"typeNames": ["Calendar"], "ids": []})
out["too_many"] = one("Email/set", {"destroy": ["M%d" % i for i in range(501)]})
# Uploads count against the 20,000-byte quota: a 30,000-byte upload is refused.
import urllib.error
req = urllib.request.Request(base + "/jmap/upload/a1/", data=b"x" * 30000, headers=auth)
try:
    urllib.request.urlopen(req)
    out["over_quota"] = "accepted"
except urllib.error.HTTPError as e:
    out["over_quota"] = [e.code, json.loads(e.read())["type"]]
print(json.dumps(out))
"##,
    );
    let made = &out["made"];
    assert_eq!(made["created"]["joined"]["size"], 20, "{out}");
    assert_eq!(
        made["notCreated"]["bad"]["type"], "invalidProperties",
        "{out}"
    );
    assert_eq!(
        made["notCreated"]["missing"]["type"], "blobNotFound",
        "{out}"
    );
    let got = &out["get"]["list"][0];
    assert_eq!(got["data:asText"], out["expected"], "{out}");
    assert_eq!(got["size"], 20);
    assert_eq!(got["digest:sha-256"], out["expected_digest"], "{out}");
    assert_eq!(out["get"]["notFound"].as_array().unwrap().len(), 1);
    assert_eq!(
        out["range"]["list"][0]["data:asBase64"], "d29ybGQ=",
        "{out}"
    );
    let lookup = &out["lookup"]["list"];
    let email = &out["email"];
    assert_eq!(
        lookup[0]["matchedIds"]["Email"],
        json!([email["id"]]),
        "{out}"
    );
    assert_eq!(
        lookup[0]["matchedIds"]["Thread"],
        json!([email["threadId"]])
    );
    assert_eq!(
        lookup[0]["matchedIds"]["Mailbox"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        lookup[1]["matchedIds"]["Email"],
        json!([]),
        "an upload: {out}"
    );
    assert_eq!(out["lookup_bad"]["error"]["type"], "unknownDataType");
    assert_eq!(out["too_many"]["error"]["type"], "requestTooLarge", "{out}");
    assert_eq!(
        out["over_quota"],
        json!([413, "urn:ietf:params:jmap:error:overQuota"]),
        "{out}"
    );
}

#[test]
fn imap_and_jmap_writers_at_once_leave_one_consistent_account() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    let out = run(
        &server,
        r##"
import imaplib, random, threading
for i in range(30):
    deliver(b"Subject: m%d\r\nMessage-ID: <m%d@remote.test>\r\n\r\nbody %d\r\n" % (i, i, i))
start = one("Email/query", {"calculateTotal": True})
start_state = start["queryState"]
ids = one("Email/query", {"limit": 100})["ids"]
errors = []
def imap_writer():
    try:
        m = imaplib.IMAP4("127.0.0.1", int(sys.argv[3]))
        m.login("joe@example.test", "secret")
        m.enable("CONDSTORE")
        for round in range(15):
            m.select("INBOX")
            typ, data = m.uid("SEARCH", "ALL")
            uids = data[0].split()
            if not uids:
                break
            pick = random.sample(uids, min(3, len(uids)))
            m.uid("STORE", b",".join(pick), "+FLAGS", "(\\Flagged)")
            m.uid("MOVE", pick[0], "Archive")
            m.select("Archive")
            m.uid("STORE", "1:*", "-FLAGS", "(\\Seen)")
        m.logout()
    except Exception as e:
        errors.append("imap: %r" % e)
def jmap_writer():
    try:
        for round in range(15):
            chosen = random.sample(ids, 4)
            one("Email/set", {"update": {i: {"keywords/$seen": True} for i in chosen}})
            one("Email/set", {"update": {chosen[0]: {"mailboxIds": {boxes["inbox"]: True}}}})
            one("Email/set", {"update": {chosen[1]: {"keywords/$flagged": None}}})
    except Exception as e:
        errors.append("jmap: %r" % e)
threads = [threading.Thread(target=imap_writer), threading.Thread(target=jmap_writer)]
for t in threads: t.start()
for t in threads: t.join()
out = {"errors": errors}
# JMAP's view, and what /changes since the start says changed.
emails = one("Email/get", {"ids": ids, "properties": ["keywords", "mailboxIds"]})["list"]
changes = one("Email/changes", {"sinceState": start_state})
out["changed_all_seen"] = sorted(set(changes["created"] + changes["updated"]))
out["state"] = changes["newState"]
out["start_state"] = start_state
# IMAP's view of each mailbox: UIDs, flags, modseqs.
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[3]))
m.login("joe@example.test", "secret")
imap = {}
for name, role in [("INBOX", "inbox"), ("Archive", "archive")]:
    typ, data = m.select(name)
    typ, hm = m.status(name, "(HIGHESTMODSEQ UIDNEXT)")
    typ, data = m.fetch("1:*", "(UID FLAGS MODSEQ EMAILID)") if int(data[0]) else ("OK", [])
    rows = []
    import re
    for d in data:
        d = d.decode() if isinstance(d, bytes) else d[0].decode()
        uid = int(re.search(r"UID (\d+)", d).group(1))
        flags = re.search(r"FLAGS \(([^)]*)\)", d).group(1).split()
        modseq = int(re.search(r"MODSEQ \((\d+)\)", d).group(1))
        emailid = re.search(r"EMAILID \(([^)]*)\)", d).group(1)
        rows.append([uid, sorted(flags), modseq, emailid])
    imap[role] = {"rows": rows, "status": hm[0].decode()}
m.logout()
out["imap"] = imap
out["jmap"] = {e["id"]: [sorted(e["keywords"]), sorted(e["mailboxIds"])] for e in emails}
out["ids"] = ids
print(json.dumps(out))
"##,
    );
    assert_eq!(out["errors"], json!([]), "{out}");
    let state: u64 = out["state"].as_str().unwrap().parse().unwrap();
    let mut seen_by_imap = std::collections::BTreeMap::new();
    for role in ["inbox", "archive"] {
        let rows = out["imap"][role]["rows"].as_array().unwrap();
        let uids: Vec<u64> = rows.iter().map(|r| r[0].as_u64().unwrap()).collect();
        let mut sorted = uids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(uids, sorted, "{role}: UIDs ascend, none twice: {out}");
        let status = out["imap"][role]["status"].as_str().unwrap();
        let uidnext: u64 = status
            .split("UIDNEXT ")
            .nth(1)
            .and_then(|s| s.trim_end_matches(')').split_whitespace().next())
            .unwrap()
            .trim_end_matches(')')
            .parse()
            .unwrap();
        assert!(uids.iter().all(|u| *u < uidnext), "{role}: {status}");
        let start: u64 = out["start_state"].as_str().unwrap().parse().unwrap();
        let changed = out["changed_all_seen"].as_array().unwrap();
        for r in rows {
            let modseq = r[2].as_u64().unwrap();
            assert!(
                modseq <= state,
                "{role}: a modseq beyond JMAP's state: {out}"
            );
            // What changed since the start, IMAP's modseq says, JMAP's
            // /changes names too.
            if modseq > start {
                assert!(changed.contains(&r[3]), "{role} {r}: {out}");
            }
            // JMAP's email id of this message, in JMAP's form.
            let jmap_flags: Vec<String> = r[1]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|f| f.as_str())
                .filter(|f| *f != "\\Recent")
                .map(|f| match f {
                    "\\Seen" => "$seen".to_string(),
                    "\\Flagged" => "$flagged".to_string(),
                    other => other.to_ascii_lowercase(),
                })
                .collect();
            seen_by_imap
                .entry(r[3].as_str().unwrap().to_string())
                .or_insert_with(Vec::new)
                .push((role, jmap_flags));
        }
    }
    // Every email is where JMAP says, with the keywords JMAP says.
    let jmap = out["jmap"].as_object().unwrap();
    assert_eq!(jmap.len(), 30, "{out}");
    let mut in_mailboxes = 0;
    for (id, view) in jmap {
        let mut keywords: Vec<String> = view[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        keywords.sort();
        let imap_rows = seen_by_imap.get(id).cloned().unwrap_or_default();
        let mailboxes = view[1].as_array().unwrap().len();
        assert_eq!(
            imap_rows.len(),
            mailboxes,
            "{id}: IMAP {imap_rows:?}, JMAP {view}"
        );
        for (_, mut flags) in imap_rows {
            flags.sort();
            assert_eq!(flags, keywords, "{id}: {out}");
        }
        in_mailboxes += mailboxes;
    }
    assert!(in_mailboxes >= 30, "{out}");
}
