//! Outbound delivery through a smarthost (issue 12, first part): server A
//! relays its users' mail for other domains through server B (a second
//! real Tern on loopback, `relay_tls = "none"`); B delivers what it takes
//! and refuses an unknown recipient, for whom A's sender gets a delivery
//! status notification in her INBOX. Both are watched with IMAP IDLE, no
//! sleeping.

use crate::harness::*;
use crate::imap::Imap;
use crate::smtp::python;

/// Logs in as `user`, selects INBOX and enters IDLE.
pub fn idle(addr: std::net::SocketAddr, user: &str) -> Imap {
    let mut imap = Imap::connect(addr);
    imap.run(&format!("LOGIN {user} secret")).ok();
    imap.run("SELECT INBOX").ok();
    imap.send("i1 IDLE\r\n");
    assert!(imap.response().starts_with("+ "));
    imap
}

/// Waits (IDLE) for new mail, then returns the newest message whole.
pub fn next_message(imap: &mut Imap) -> String {
    loop {
        let r = imap.response();
        if r.text().ends_with(" EXISTS") {
            break;
        }
    }
    imap.send("DONE\r\n");
    imap.until_tagged("i1").ok();
    let fetch = imap.run("FETCH * (BODY.PEEK[])");
    fetch.ok();
    fetch.untagged.iter().map(|r| r.text()).collect()
}

#[test]
fn a_smarthost_carries_the_mail_and_a_refusal_bounces_to_the_sender() {
    let b = TestDir::new();
    b.add_account("bob@b.test");
    let relay = b.start();
    let relay_smtp = relay.listeners["smtp"];

    let a = TestDir::with_config(&format!(
        "[outbound]\nrelay = \"{relay_smtp}\"\nrelay_tls = \"none\"\n"
    ));
    a.add_account("ann@a.test");
    let server = a.start();

    let mut bob = idle(relay.listeners["imap"], "bob@b.test");
    let mut ann = idle(server.listeners["imap"], "ann@a.test");

    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.login("ann@a.test", "secret")
# First a message whose sender wants no report (NOTIFY=NEVER): its failure
# must not reach her; then one that asks for every report.
never = "From: ann@a.test\r\nTo: nobody@b.test\r\nSubject: quiet\r\n\r\nno report\r\n"
r1 = s.sendmail("ann@a.test", ["nobody@b.test"], never, rcpt_options=["NOTIFY=NEVER"])
msg = "From: ann@a.test\r\nTo: bob@b.test, nobody@b.test\r\nSubject: across\r\n\r\nover the relay\r\n"
r2 = s.sendmail("ann@a.test", ["bob@b.test", "nobody@b.test"], msg,
                rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
s.quit()
print(json.dumps([r1, r2]))
"#,
        &[&server.listeners["submission"].port().to_string()],
    );
    assert_eq!(sent, serde_json::json!([{}, {}]), "submission queues both");

    let got = next_message(&mut bob);
    assert!(got.contains("Subject: across"), "{got}");
    assert!(got.contains("over the relay"), "{got}");
    assert_eq!(
        got.matches("Return-Path:").count(),
        1,
        "added once, by B: {got}"
    );

    // The first report ann gets is about "across": "quiet" (NOTIFY=NEVER),
    // sent first, produced none.
    let dsn = next_message(&mut ann);
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(
        dsn.contains("Subject: across"),
        "the original header: {dsn}"
    );
    assert!(!dsn.contains("Subject: quiet"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@b.test\r\nAction: failed\r\nStatus: 5.1.1"),
        "{dsn}"
    );
    // NOTIFY=SUCCESS: bob's is reported too, as relayed.
    assert!(
        dsn.contains("Final-Recipient: rfc822; bob@b.test\r\nAction: relayed\r\nStatus: 2.0.0"),
        "{dsn}"
    );
}

/// `tern queue list` and `show`, beside the running server: what waits,
/// for whom, and why. The recipient's only MX host is down, so the mail
/// waits.
#[test]
fn queue_commands_show_what_waits() {
    let dns = crate::dns_server::DnsServer::start();
    dns.mx("remote.test", 10, "mx.remote.test");
    dns.a("mx.remote.test", std::net::Ipv4Addr::new(127, 0, 0, 3));
    let a = TestDir::with_config(&format!(
        "[dns]\nservers = [\"{}\"]\n[outbound]\nmx_port = 9\n",
        dns.addr
    ));
    a.init();
    a.add_account("ann@a.test");
    let server = a.start();
    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.login("ann@a.test", "secret")
refused = s.sendmail("ann@a.test", ["friend@remote.test"], "Subject: waits\r\n\r\nx\r\n")
s.quit()
print(json.dumps(refused))
"#,
        &[&server.listeners["submission"].port().to_string()],
    );
    assert_eq!(sent, serde_json::json!({}));

    let list: serde_json::Value =
        serde_json::from_str(&a.ok(&["queue", "list", "--json"], "")).unwrap();
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    let entry = &entries[0];
    assert_eq!(entry["sender"], "ann@a.test");
    assert_eq!(entry["recipients"][0]["address"], "friend@remote.test");
    assert_eq!(entry["recipients"][0]["status"], "pending");
    let id = entry["id"].as_i64().unwrap().to_string();

    let show: serde_json::Value =
        serde_json::from_str(&a.ok(&["queue", "show", &id, "--json"], "")).unwrap();
    assert_eq!(show["id"], entry["id"]);
    let human = a.ok(&["queue", "show", &id], "");
    assert!(human.contains("Subject: waits"), "{human}");
    let listed = a.ok(&["queue", "list"], "");
    assert!(listed.contains("friend@remote.test  pending"), "{listed}");
    let missing = a.fails(&["queue", "show", "999999"], "");
    assert!(missing.contains("no queue entry 999999"), "{missing}");

    // hold and release show in the list.
    a.ok(&["queue", "hold", &id], "");
    assert!(a.ok(&["queue", "list"], "").contains(", HELD"));
    a.ok(&["queue", "release", &id], "");
    assert!(!a.ok(&["queue", "list"], "").contains(", HELD"));
    // flush makes it due now; remove drops it.
    let flushed: serde_json::Value =
        serde_json::from_str(&a.ok(&["queue", "flush", &id, "--json"], "")).unwrap();
    assert_eq!(flushed["flushed"], 1);
    a.ok(&["queue", "remove", &id], "");
    assert_eq!(a.ok(&["queue", "list"], "").trim(), "the queue is empty");
    let again = a.fails(&["queue", "remove", &id], "");
    assert!(again.contains("no queue entry"), "{again}");
    drop(server);
}
