//! The built-in spam filter (issue 13): rules and GTUBE, DNS block lists
//! against the test's DNS server, each user's Bayesian classifier trained
//! by IMAP MOVEs into and out of Junk and by `$NotJunk`, and greylisting
//! with a retry. Mail goes in with Python's smtplib on port 25; where it
//! landed, with which flags and fields, is read with imaplib.

use crate::dns_server::DnsServer;
use crate::harness::*;
use crate::smtp::python;
use serde_json::Value;
use std::time::Duration;

fn tern(config: &str) -> (TestDir, Server) {
    let dir = TestDir::with_config(config);
    dir.add_account("bob@example.test");
    let server = dir.start();
    (dir, server)
}

/// Sends `message` from `from` to bob on port 25: the reply to RCPT when
/// it is not 250, else to DATA.
fn send(server: &Server, from: &str, message: &str) -> (u64, String) {
    let reply = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo("mx.remote.test")
s.mail(sys.argv[2])
code, text = s.rcpt("bob@example.test")
if code == 250:
    code, text = s.data(sys.argv[3].encode())
s.quit()
print(json.dumps([code, text.decode()]))
"#,
        &[&server.listeners["smtp"].port().to_string(), from, message],
    );
    (
        reply[0].as_u64().unwrap(),
        reply[1].as_str().unwrap().into(),
    )
}

/// Each of bob's messages as `[mailbox, uid, flags, header]`.
fn bobs_mail(server: &Server) -> Vec<(String, u64, String, String)> {
    let all = python(
        r#"
import imaplib, json, re, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("bob@example.test", "secret")
out = []
for box in ["INBOX", "Junk"]:
    typ, count = m.select(box)
    if int(count[0]) == 0:
        continue
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER])")
    for item in data:
        if isinstance(item, tuple):
            meta = item[0].decode()
            uid = int(re.search(r"UID (\d+)", meta).group(1))
            flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1)
            out.append([box, uid, flags, item[1].decode("utf-8", "replace")])
m.logout()
print(json.dumps(out))
"#,
        &[&server.listeners["imap"].port().to_string()],
    );
    all.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m[0].as_str().unwrap().into(),
                m[1].as_u64().unwrap(),
                m[2].as_str().unwrap().into(),
                m[3].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn find<'a>(
    all: &'a [(String, u64, String, String)],
    subject: &str,
) -> &'a (String, u64, String, String) {
    all.iter()
        .find(|m| m.3.contains(&format!("Subject: {subject}\r\n")))
        .unwrap_or_else(|| panic!("no message {subject:?} in {all:?}"))
}

/// A well-formed personal message (no rule fires for it).
fn plain(subject: &str, body: &str) -> String {
    format!(
        "From: Ann <ann@remote.test>\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\
         Date: Sun, 6 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@remote.test>\r\n\r\n{body}\r\n"
    )
}

#[test]
fn gtube_is_refused_rules_tag_and_file_and_forged_status_is_replaced() {
    let (_dir, server) = tern("[spam]\nenabled = true\n");
    let gtube = plain(
        "gtube",
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X",
    );
    let (code, text) = send(&server, "ann@remote.test", &gtube);
    assert_eq!(code, 550, "{text}");
    assert!(
        text.starts_with("5.7.1 ") && text.contains("spam"),
        "{text}"
    );

    let forged = format!(
        "X-Spam-Status: No, score=-100.0\r\nX-Spam-Flag: NO\r\n{}",
        plain("forged", "hello")
    );
    assert_eq!(send(&server, "ann@remote.test", &forged).0, 250);
    // Bulk mail: HTML only with a tracking image, shouting, the reply going
    // elsewhere, a Message-ID in our domain, the usual phrases.
    let bulk = "From: <promo@remote.test>\r\nReply-To: <orders@elsewhere.test>\r\n\
                Subject: LIMITED TIME OFFER FOR YOU!!\r\nMessage-ID: <x1@example.test>\r\n\
                Content-Type: text/html\r\n\r\n<p>Act now, click here: 100% free!\
                <img src=\"http://track.test/p.gif\"></p>\r\n";
    assert_eq!(send(&server, "promo@remote.test", bulk).0, 250);
    // A little of that: marked, but left in INBOX.
    let grey = "From: <news@remote.test>\r\nSubject: YOUR WEEKLY NEWSLETTER\r\n\
                Content-Type: text/html\r\n\r\n<p>Special promotion inside</p>\r\n";
    assert_eq!(send(&server, "news@remote.test", grey).0, 250);

    let all = bobs_mail(&server);
    assert_eq!(all.len(), 3, "GTUBE was not stored");
    let forged = find(&all, "forged");
    assert_eq!(forged.0, "INBOX");
    assert_eq!(
        forged.3.matches("X-Spam-Status:").count(),
        1,
        "{}",
        forged.3
    );
    assert!(
        forged.3.contains("X-Spam-Status: No, score=0.0"),
        "{}",
        forged.3
    );
    assert!(!forged.3.contains("X-Spam-Flag"), "{}", forged.3);
    let bulk = find(&all, "LIMITED TIME OFFER FOR YOU!!");
    assert_eq!(bulk.0, "Junk", "{}", bulk.3);
    assert!(bulk.2.contains("$Junk"), "{}", bulk.2);
    assert!(bulk.3.contains("X-Spam-Flag: YES"));
    for rule in [
        "HTML_REMOTE_IMAGE",
        "FORGED_MSGID",
        "SUBJ_ALL_CAPS",
        "SPAM_PHRASES",
    ] {
        assert!(bulk.3.contains(rule), "{rule} in {}", bulk.3);
    }
    let grey = find(&all, "YOUR WEEKLY NEWSLETTER");
    assert_eq!(grey.0, "INBOX", "{}", grey.3);
    assert!(grey.2.contains("$Junk"), "tagged: {} {}", grey.2, grey.3);
}

#[test]
fn dns_block_lists_add_their_points() {
    let dns = DnsServer::start();
    // RFC 5782: the client 127.0.0.1 is listed on bl.test; spam.test on the
    // domain list; a list answering with its error code lists nobody.
    dns.a("1.0.0.127.bl.test", "127.0.0.2".parse().unwrap());
    dns.a(
        "1.0.0.127.refusing.test",
        "127.255.255.254".parse().unwrap(),
    );
    dns.a("spam.test.dbl.test", "127.0.1.2".parse().unwrap());
    let (_dir, server) = tern(&format!(
        "[dns]\nservers = [\"{}\"]\n[spam]\ndnsbl = [\"bl.test\", \"refusing.test\"]\nuribl = [\"dbl.test\"]\n",
        dns.addr
    ));
    let linked = plain(
        "links",
        "See https://www.spam.test/offer and https://fine.test/",
    );
    assert_eq!(send(&server, "ann@remote.test", &linked).0, 250);
    let all = bobs_mail(&server);
    let header = &find(&all, "links").3.replace("\r\n\t", " ");
    assert!(header.contains("RCVD_IN_DNSBL(bl.test)=3.0"), "{header}");
    assert!(!header.contains("refusing.test"), "{header}");
    assert!(
        header.contains("URIBL(spam.test in dbl.test)=2.5"),
        "{header}"
    );
    assert!(!header.contains("fine.test"), "{header}");
    assert!(header.contains("X-Spam-Score: 5.5"), "{header}");
}

fn spam_stats(dir: &TestDir) -> Value {
    serde_json::from_str(&dir.ok(&["--json", "spam", "stats", "bob@example.test"], "")).unwrap()
}

#[test]
fn each_users_classifier_learns_from_moves_into_and_out_of_junk() {
    // Low thresholds: the classifier alone decides here.
    let (dir, server) = tern("[spam]\ntag_score = 3.0\njunk_score = 4.0\n");
    let spam_words = "cheap pharmacy pills discount replica watches casino bonus";
    let ham_words = "project meeting agenda quarterly report budget review";
    for i in 0..6 {
        let s = plain(&format!("offer{i}"), &format!("{spam_words} number{i}"));
        let h = plain(&format!("notes{i}"), &format!("{ham_words} item{i}"));
        assert_eq!(send(&server, "ann@remote.test", &s).0, 250);
        assert_eq!(send(&server, "ann@remote.test", &h).0, 250);
    }
    assert_eq!(spam_stats(&dir)["spam_messages"], 0);
    // Bob teaches: the offers into Junk; one note into Junk by mistake and
    // back out; the other notes marked $NotJunk.
    let taught = python(
        r#"
import imaplib, json, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("bob@example.test", "secret")
m.select("INBOX")
def uids(subject):
    typ, data = m.uid("SEARCH", "SUBJECT", subject)
    return data[0].decode().split()
spam = uids("offer")
notes = uids("notes")
assert m.uid("MOVE", ",".join(spam), "Junk")[0] == "OK"
assert m.uid("MOVE", notes[0], "Junk")[0] == "OK"
m.select("Junk")
typ, data = m.uid("SEARCH", "SUBJECT", "notes")
assert m.uid("MOVE", data[0].decode(), "INBOX")[0] == "OK"
m.select("INBOX")
assert m.uid("STORE", ",".join(notes[1:]), "+FLAGS", "($NotJunk)")[0] == "OK"
print(json.dumps([len(spam), len(notes)]))
"#,
        &[&server.listeners["imap"].port().to_string()],
    );
    assert_eq!(taught, serde_json::json!([6, 6]));
    let stats = poll_until(Duration::from_secs(30), "the trainer", || {
        let stats = spam_stats(&dir);
        if stats["spam_messages"] == 6 && stats["ham_messages"] == 6 {
            Ok(stats)
        } else {
            Err(stats.to_string())
        }
    });
    assert_eq!(stats["classifying"], true, "{stats}");
    assert!(stats["tokens"].as_u64().unwrap() > 10, "{stats}");

    // New mail is judged by what bob taught.
    let s = plain("newoffer", &format!("{spam_words} today"));
    let h = plain("newnotes", &format!("{ham_words} tomorrow"));
    assert_eq!(send(&server, "ann@remote.test", &s).0, 250);
    assert_eq!(send(&server, "ann@remote.test", &h).0, 250);
    let all = bobs_mail(&server);
    let offer = find(&all, "newoffer");
    assert_eq!(offer.0, "Junk", "spam by bob's classifier: {offer:?}");
    assert!(offer.2.contains("$Junk"));
    let notes = find(&all, "newnotes");
    assert_eq!(notes.0, "INBOX", "{notes:?}");
    assert!(!notes.2.contains("$Junk"), "{notes:?}");
}

#[test]
fn greylisting_defers_a_first_attempt_and_remembers_a_retrying_sender() {
    let (_dir, server) = tern("[spam]\ngreylisting = true\ngreylist_delay_secs = 1\n");
    let message = plain("grey", "hello");
    let (code, text) = send(&server, "ann@remote.test", &message);
    assert_eq!(code, 451, "{text}");
    assert!(
        text.starts_with("4.7.1 ") && text.contains("greylisted"),
        "{text}"
    );
    // A real server retries later: the retry passes once the delay is over.
    poll_until(
        Duration::from_secs(10),
        "the retry accepted",
        || match send(&server, "ann@remote.test", &message) {
            (250, _) => Ok(()),
            (451, text) if text.starts_with("4.7.1 ") => Err(text),
            other => panic!("unexpected {other:?}"),
        },
    );
    // Remembered: the next message of the triplet passes at once; another
    // sender waits.
    assert_eq!(
        send(&server, "ann@remote.test", &plain("grey2", "again")).0,
        250
    );
    assert_eq!(
        send(&server, "eve@remote.test", &plain("grey3", "hi")).0,
        451
    );
}
