//! Writing and sending over JMAP (issue 14): a draft made with jmapc's
//! `Email/set` create, sent with `EmailSubmission/set`, and a submission
//! to a local and a remote recipient through the outbound worker.

use crate::harness::*;
use crate::jmap_mail::run;
use serde_json::{json, Value};
use std::process::Command;

#[test]
fn jmapc_writes_a_draft_with_an_attachment_and_sends_it() {
    let Some(python) = std::env::var("TERN_JMAPC_PYTHON")
        .ok()
        .filter(|p| std::path::Path::new(p).exists())
    else {
        if std::env::var_os("TERN_REQUIRE_JMAPC").is_some() {
            panic!("TERN_JMAPC_PYTHON does not name a Python with jmapc (see scripts/test.sh)");
        }
        eprintln!("jmapc test skipped: set TERN_JMAPC_PYTHON to a Python with jmapc");
        return;
    };
    // Carol is at another domain, whose server (B) the outbound worker
    // relays to.
    let b = TestDir::new();
    b.add_account("carol@b.test");
    let relay = b.start();
    let mut carol = crate::outbound::idle(relay.listeners["imap"], "carol@b.test");
    let dir = TestDir::with_config(&format!(
        "[outbound]\nrelay = \"{}\"\nrelay_tls = \"none\"\n",
        relay.listeners["smtp"]
    ));
    dir.add_account("joe@example.test");
    dir.add_account("bob@example.test");
    let server = dir.start();
    let attachment = dir.data_dir().join("../report.pdf");
    std::fs::write(&attachment, b"%PDF-1.4 pretend report\n").unwrap();
    let script = r##"
import json, sys, imaplib
from jmapc import Client, Email, EmailAddress, EmailBodyPart, EmailBodyValue, EmailSubmission
from jmapc import EmailSubmissionQueryFilterCondition
from jmapc.methods import (MailboxGet, EmailSet, EmailGet, EmailSubmissionSet, EmailSubmissionGet,
                           EmailSubmissionQuery)
client = Client.create_with_password(host=sys.argv[1], user="joe@example.test", password="secret")
client.requests_session.trust_env = False
client.requests_session.verify = sys.argv[2]
boxes = {b.role: b.id for b in client.request(MailboxGet(ids=None)).data if b.role}
blob = client.upload_blob(sys.argv[4])
draft = Email(
    mailbox_ids={boxes["drafts"]: True}, keywords={"$draft": True, "$seen": True},
    mail_from=[EmailAddress(name="Joe Example", email="joe@example.test")],
    to=[EmailAddress(name="Bob", email="bob@example.test")],
    cc=[EmailAddress(name="Carol", email="carol@b.test")],
    subject="Quarterly report \u2014 draft",
    body_values={"t": EmailBodyValue(value="Report attached.\nJoe"), "h": EmailBodyValue(value="<p>Report attached.</p>")},
    text_body=[EmailBodyPart(part_id="t", type="text/plain")],
    html_body=[EmailBodyPart(part_id="h", type="text/html")],
    attachments=[EmailBodyPart(blob_id=blob.id, type="application/pdf", name="report.pdf", disposition="attachment")],
)
created = client.request(EmailSet(create={"d": draft}))
out = {"not_created": created.not_created, "created": {k: v.to_dict(encode_json=True) for k, v in (created.created or {}).items()}}
email_id = created.created["d"].id
got = client.request(EmailGet(ids=[email_id], properties=["subject", "from", "to", "keywords", "mailboxIds",
    "attachments", "textBody", "bodyValues", "hasAttachment", "preview"], fetch_text_body_values=True)).data[0]
out["subject"] = got.subject
out["keywords"] = sorted(got.keywords)
out["attachment"] = [got.attachments[0].name, got.attachments[0].type]
out["text"] = got.body_values[got.text_body[0].part_id].value
out["has_attachment"] = got.has_attachment
# Seen over IMAP as a draft in Drafts.
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[3]))
m.login("joe@example.test", "secret")
m.select("Drafts")
typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT TO)])")
out["imap_draft"] = data[0][0].decode() + data[0][1].decode()
m.logout()
results = client.request(EmailSubmissionSet(
    create={"s": EmailSubmission(identity_id="i1", email_id=email_id)},
    on_success_update_email={"#s": {"mailboxIds/" + boxes["drafts"]: None, "mailboxIds/" + boxes["sent"]: True,
                                    "keywords/$draft": None}}))
sent = results[0]
out["implicit"] = [type(results[1]).__name__, sorted((results[1].updated or {}).keys())]
out["submitted"] = sorted((sent.created or {}).keys())
moved = client.request(EmailGet(ids=[email_id], properties=["mailboxIds", "keywords"])).data[0]
submission = client.request(EmailSubmissionGet(ids=None)).data
out["submission"] = [s.to_dict(encode_json=True) for s in submission]
out["submission_query"] = client.request(EmailSubmissionQuery(filter=EmailSubmissionQueryFilterCondition(email_ids=[email_id]))).ids
out["in_sent"] = list(moved.mailbox_ids) == [boxes["sent"]]
out["still_draft"] = "$draft" in (moved.keywords or {})
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[3]))
m.login("bob@example.test", "secret")
m.select("INBOX")
typ, data = m.fetch("1", "(BODY.PEEK[])")
out["bob"] = data[0][1].decode()
m.logout()
print(json.dumps(out))
"##;
    let cert = dir.data_dir().join("tls/cert.pem");
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(format!("127.0.0.1:{}", server.listeners["https"].port()))
        .arg(&cert)
        .arg(server.listeners["imap"].port().to_string())
        .arg(&attachment)
        .output()
        .expect("python with jmapc");
    assert!(
        output.status.success(),
        "jmapc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(out["not_created"].is_null(), "{out}");
    let created = &out["created"]["d"];
    for p in ["id", "blobId", "threadId", "size"] {
        assert!(!created[p].is_null(), "{p} of the created email: {out}");
    }
    assert_eq!(out["subject"], "Quarterly report \u{2014} draft");
    assert_eq!(out["keywords"], json!(["$draft", "$seen"]));
    assert_eq!(out["attachment"], json!(["report.pdf", "application/pdf"]));
    // Stored with CRLF line ends, as RFC 5322 has them.
    assert_eq!(out["text"], "Report attached.\r\nJoe");
    assert_eq!(out["has_attachment"], true);
    let imap = out["imap_draft"].as_str().unwrap();
    assert!(
        imap.contains("\\Draft") && imap.contains("\\Seen"),
        "{imap}"
    );
    assert!(imap.contains("To: \"Bob\" <bob@example.test>"), "{imap}");
    assert_eq!(out["submitted"], json!(["s"]));
    assert_eq!(
        out["implicit"],
        json!(["EmailSetResponse", [created["id"]]]),
        "{out}"
    );
    let submission = &out["submission"][0];
    assert_eq!(submission["emailId"], created["id"], "{out}");
    assert_eq!(submission["threadId"], created["threadId"], "{out}");
    assert_eq!(submission["undoStatus"], "final", "{out}");
    assert_eq!(
        submission["deliveryStatus"]["bob@example.test"]["delivered"], "yes",
        "{out}"
    );
    assert_eq!(out["submission_query"], json!([submission["id"]]), "{out}");
    assert_eq!(out["in_sent"], true, "{out}");
    assert_eq!(out["still_draft"], false, "{out}");
    let bob = out["bob"].as_str().unwrap();
    let message = mail_parser::MessageParser::default()
        .parse(bob.as_bytes())
        .unwrap();
    assert_eq!(message.subject(), Some("Quarterly report \u{2014} draft"));
    assert_eq!(
        message.body_text(0).unwrap().trim(),
        "Report attached.\r\nJoe"
    );
    use mail_parser::MimeHeaders;
    let pdf = message.attachment(0).expect("the attachment");
    assert_eq!(pdf.attachment_name(), Some("report.pdf"));
    assert_eq!(pdf.contents(), b"%PDF-1.4 pretend report\n");
    assert!(message.message_id().is_some() && message.date().is_some());
    // Carol's copy went out through the queue and B.
    let remote = crate::outbound::next_message(&mut carol);
    assert!(remote.contains("Report attached."), "{remote}");
    assert!(remote.contains("report.pdf"), "{remote}");
}

#[test]
fn a_submission_reaches_a_local_and_a_remote_recipient_through_the_outbound_worker() {
    // B: the other domain's server, which A's outbound worker relays to.
    let b = TestDir::new();
    b.add_account("carol@b.test");
    let relay = b.start();
    let a = TestDir::with_config(&format!(
        "[outbound]\nrelay = \"{}\"\nrelay_tls = \"none\"\n",
        relay.listeners["smtp"]
    ));
    a.add_account("joe@example.test");
    a.add_account("bob@example.test");
    let server = a.start();
    let mut carol = crate::outbound::idle(relay.listeners["imap"], "carol@b.test");
    let mut bob = crate::outbound::idle(server.listeners["imap"], "bob@example.test");
    let out = run(
        &server,
        r##"
d = boxes["drafts"]
r = call([
    ["Email/set", {"accountId": "a1", "create": {"draft": {
        "mailboxIds": {d: True}, "keywords": {"$draft": True},
        "from": [{"name": "Joe", "email": "joe@example.test"}],
        "to": [{"email": "bob@example.test"}, {"name": "Carol", "email": "carol@b.test"}],
        "subject": "both sides", "bodyValues": {"t": {"value": "one local, one remote"}},
        "textBody": [{"partId": "t"}]}}}, "0"],
    ["EmailSubmission/set", {"accountId": "a1", "create": {"s": {"identityId": "i1", "emailId": "#draft"}},
        "onSuccessUpdateEmail": {"#s": {"mailboxIds/" + d: None, "mailboxIds/" + boxes["sent"]: True,
                                        "keywords/$draft": None}}}, "1"],
])
out = {"names": [x[0] for x in r], "submitted": r[1][1]["created"]}
print(json.dumps(out))
"##,
    );
    assert_eq!(
        out["names"],
        json!(["Email/set", "EmailSubmission/set", "Email/set"]),
        "{out}"
    );
    let id = out["submitted"]["s"]["id"].as_str().unwrap().to_string();
    let local = crate::outbound::next_message(&mut bob);
    assert!(local.contains("one local, one remote"), "{local}");
    let remote = crate::outbound::next_message(&mut carol);
    assert!(remote.contains("Subject: both sides"), "{remote}");
    assert!(!remote.contains("Bcc:"), "{remote}");
    // What the submission says of each recipient: bob's delivered at
    // once; carol's once the outbound worker records B's 250 (which it
    // does just after B stored the message carol saw).
    let status = poll_until(
        std::time::Duration::from_secs(10),
        "the submission shows carol's delivery",
        || {
            let got = run(
                &server,
                &format!(
                    r##"
print(json.dumps(one("EmailSubmission/get", {{"ids": ["{id}"]}})["list"][0]))
"##
                ),
            );
            if got["deliveryStatus"]["carol@b.test"]["delivered"] == "yes" {
                Ok(got)
            } else {
                Err(got.to_string())
            }
        },
    );
    let delivery = &status["deliveryStatus"];
    assert_eq!(delivery["bob@example.test"]["delivered"], "yes", "{status}");
    assert_eq!(status["undoStatus"], "final");
}

#[test]
fn a_submission_sent_later_waits_and_can_be_cancelled() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    dir.add_account("bob@example.test");
    let server = dir.start();
    let mut bob = crate::outbound::idle(server.listeners["imap"], "bob@example.test");
    let submit = |hold: &str, subject: &str| {
        run(
            &server,
            &format!(
                r##"
d = boxes["drafts"]
r = call([
    ["Email/set", {{"accountId": "a1", "create": {{"draft": {{
        "mailboxIds": {{d: True}}, "from": [{{"email": "joe@example.test"}}],
        "to": [{{"email": "bob@example.test"}}], "subject": "{subject}",
        "bodyValues": {{"t": {{"value": "later"}}}}, "textBody": [{{"partId": "t"}}]}}}}}}, "0"],
    ["EmailSubmission/set", {{"accountId": "a1", "create": {{"s": {{"emailId": "#draft",
        "envelope": {{"mailFrom": {{"email": "joe@example.test", "parameters": {{"HOLDFOR": "{hold}"}}}},
                     "rcptTo": [{{"email": "bob@example.test"}}]}}}}}}}}, "1"],
])
print(json.dumps(r[1][1]))
"##
            ),
        )
    };
    let too_far = submit("99999999", "too far");
    assert_eq!(
        too_far["notCreated"]["s"]["type"], "invalidProperties",
        "{too_far}"
    );
    let held = submit("3600", "in an hour");
    assert_eq!(held["created"]["s"]["undoStatus"], "pending", "{held}");
    let id = held["created"]["s"]["id"].as_str().unwrap().to_string();
    let cancel = run(
        &server,
        &format!(
            r##"
before = one("EmailSubmission/get", {{"ids": ["{id}"]}})["list"][0]["undoStatus"]
r = one("EmailSubmission/set", {{"update": {{"{id}": {{"undoStatus": "canceled"}}}}}})
after = one("EmailSubmission/get", {{"ids": ["{id}"]}})["list"][0]["undoStatus"]
again = one("EmailSubmission/set", {{"update": {{"{id}": {{"undoStatus": "canceled"}}}}}})
session = json.loads(urllib.request.urlopen(urllib.request.Request(base + "/jmap/session", headers=auth)).read())
print(json.dumps({{"before": before, "set": r, "after": after, "again": again,
                  "max": session["accounts"]["a1"]["accountCapabilities"]["urn:ietf:params:jmap:submission"]["maxDelayedSend"]}}))
"##
        ),
    );
    assert_eq!(cancel["before"], "pending", "{cancel}");
    assert!(
        cancel["set"]["updated"]
            .as_object()
            .unwrap()
            .contains_key(&id),
        "{cancel}"
    );
    assert_eq!(cancel["after"], "canceled", "{cancel}");
    assert_eq!(
        cancel["again"]["notUpdated"][&id]["type"], "cannotUnsend",
        "{cancel}"
    );
    assert_eq!(cancel["max"], 604800);
    // One second ahead: the outbound worker delivers it to bob then (the
    // cancelled one never comes, so this is the first bob sees).
    let soon = submit("1", "in a second");
    assert_eq!(soon["created"]["s"]["undoStatus"], "pending", "{soon}");
    let got = crate::outbound::next_message(&mut bob);
    assert!(got.contains("Subject: in a second"), "{got}");
    assert!(!got.contains("in an hour"), "{got}");
}

#[test]
fn aliases_a_user_may_send_as_are_identities() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    dir.add_account("bob@example.test");
    dir.ok(
        &["alias", "add", "sales@example.test", "joe@example.test"],
        "",
    );
    dir.ok(
        &["alias", "add", "team@example.test", "bob@example.test"],
        "",
    );
    let server = dir.start();
    let out = run(
        &server,
        r##"
got = one("Identity/get", {})
sales = next(i["id"] for i in got["list"] if i["email"] == "sales@example.test")
changes_now = one("Identity/changes", {"sinceState": got["state"]})
r = call([
    ["Email/set", {"accountId": "a1", "create": {"d": {"mailboxIds": {boxes["drafts"]: True},
        "from": [{"email": "sales@example.test"}], "to": [{"email": "bob@example.test"}],
        "subject": "from sales", "bodyValues": {"t": {"value": "hi"}}, "textBody": [{"partId": "t"}]}}}, "0"],
    ["EmailSubmission/set", {"accountId": "a1", "create": {
        "ok": {"identityId": sales, "emailId": "#d"},
        "unknown": {"identityId": "i1-000000000000", "emailId": "#d"}}}, "1"],
])
print(json.dumps({"emails": sorted(i["email"] for i in got["list"]), "changes_now": changes_now,
                  "submitted": r[1][1]}))
"##,
    );
    assert_eq!(
        out["emails"],
        json!(["joe@example.test", "sales@example.test"]),
        "bob's alias is not joe's: {out}"
    );
    assert_eq!(out["changes_now"]["created"], json!([]), "{out}");
    assert!(out["submitted"]["created"]["ok"].is_object(), "{out}");
    assert_eq!(
        out["submitted"]["notCreated"]["unknown"]["type"], "invalidProperties",
        "{out}"
    );
}
