//! Sender authentication of mail from other servers (issue 13): a Tern
//! with `[inbound]` checks on asks a DNS server the test runs
//! ([`DnsServer`]) for SPF, DKIM and DMARC records. Mail is sent on port 25
//! with Python's smtplib, signed by an independent signer (dkimpy, Ed25519
//! and ARC) or by Tern's own outbound path; verdicts are read from the
//! refusal or from the stored `Authentication-Results` field over IMAP,
//! and cross-checked against pyspf and dkimpy on the same input.

use crate::dns_server::DnsServer;
use crate::harness::*;
use crate::mx::{debian_python, dkim_generate};
use serde_json::{json, Value};
use std::process::Command;

/// Runs `script` with Debian's Python (dkimpy, pyspf, nacl) and returns
/// the JSON it prints.
fn py(script: &str, args: &[&str]) -> Value {
    let out = Command::new(debian_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// A receiving Tern for `bob@example.test` whose DNS is `dns`.
fn receiver(dns: &DnsServer, inbound: &str) -> (TestDir, Server) {
    let dir = TestDir::with_config(&format!(
        "[dns]\nservers = [\"{}\"]\n[inbound]\n{inbound}\n",
        dns.addr
    ));
    dir.add_account("bob@example.test");
    let server = dir.start();
    (dir, server)
}

/// Sends each case (`helo`, `from`, `message` as base64) on port 25 in
/// its own session; the reply to the end of DATA (or the first refusal)
/// for each, as `[code, text]`.
fn send(server: &Server, cases: &[Value]) -> Vec<(u16, String)> {
    let replies = py(
        r#"
import base64, json, smtplib, sys
out = []
for c in json.loads(sys.argv[2]):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname=c["helo"])
    s.ehlo()
    code, text = s.mail(c["from"])
    if code == 250:
        code, text = s.rcpt("bob@example.test")
    if code == 250:
        code, text = s.data(base64.b64decode(c["message"]))
    s.quit()
    out.append([code, text.decode()])
print(json.dumps(out))
"#,
        &[
            &server.listeners["smtp"].port().to_string(),
            &Value::Array(cases.to_vec()).to_string(),
        ],
    );
    replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_u64().unwrap() as u16, r[1].as_str().unwrap().into()))
        .collect()
}

fn case(helo: &str, from: &str, message: &[u8]) -> Value {
    use base64::Engine;
    json!({
        "helo": helo,
        "from": from,
        "message": base64::engine::general_purpose::STANDARD.encode(message),
    })
}

/// Every message bob has, as `(mailbox, flags, text)`.
fn mailbox_contents(server: &Server) -> Vec<(String, String, String)> {
    let all = py(
        r#"
import imaplib, json, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("bob@example.test", "secret")
out = []
for box in ["INBOX", "Junk"]:
    typ, count = m.select(box)
    if int(count[0]) == 0:
        continue
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
    for item in data:
        if isinstance(item, tuple):
            out.append([box, item[0].decode(), item[1].decode("utf-8", "replace")])
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
                m[1].as_str().unwrap().into(),
                m[2].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// The stored message with `subject`, and the Authentication-Results
/// fields naming our authserv-id in it (unfolded).
fn stored<'a>(
    all: &'a [(String, String, String)],
    subject: &str,
) -> (&'a (String, String, String), Vec<String>) {
    let found = all
        .iter()
        .find(|m| {
            m.2.lines().any(|l| {
                l.strip_prefix("Subject:")
                    .is_some_and(|v| v.trim() == subject)
            })
        })
        .unwrap_or_else(|| panic!("no stored message {subject:?}"));
    let header = found
        .2
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n\t", " ");
    let ours = header
        .lines()
        .filter(|l| l.starts_with("Authentication-Results: mail.example.test;"))
        .map(String::from)
        .collect();
    (found, ours)
}

fn message(from: &str, subject: &str, extra_fields: &str) -> Vec<u8> {
    format!(
        "{extra_fields}From: <{from}>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n\
         Date: Sun, 6 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@test>\r\n\r\n\
         Hello   Bob,\r\nthe body.\r\n"
    )
    .into_bytes()
}

/// The `spf=` result for `smtp.mailfrom` in an Authentication-Results line.
fn spf_mailfrom(results: &str) -> String {
    results
        .split(';')
        .map(str::trim)
        .find(|r| r.starts_with("spf=") && r.contains("smtp.mailfrom="))
        .and_then(|r| r.strip_prefix("spf="))
        .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no spf mailfrom result in {results}"))
}

#[test]
fn spf_verdicts_agree_with_pyspf() {
    let dns = DnsServer::start();
    let records = [
        ("pass.test", "v=spf1 ip4:127.0.0.0/8 -all"),
        ("fail.test", "v=spf1 ip4:192.0.2.0/24 -all"),
        ("soft.test", "v=spf1 ip4:192.0.2.0/24 ~all"),
        ("neutral.test", "v=spf1 ?all"),
        ("broken.test", "v=spf1 ip4:not-an-address -all"),
        ("incl.test", "v=spf1 include:pass.test -all"),
        ("helo.pass.test", "v=spf1 ip4:127.0.0.1 -all"),
    ];
    for (name, text) in records {
        dns.txt(name, text);
    }
    dns.a("none.test", std::net::Ipv4Addr::new(192, 0, 2, 9));
    // Tagged only: every verdict is delivered and can be read back.
    let (_dir, server) = receiver(
        &dns,
        "spf = \"tag\"\ndmarc = \"tag\"\nrefuse_forged_local = false",
    );
    let senders = [
        ("helo.pass.test", "a@pass.test"),
        ("helo.pass.test", "a@fail.test"),
        ("helo.pass.test", "a@soft.test"),
        ("helo.pass.test", "a@neutral.test"),
        ("helo.pass.test", "a@broken.test"),
        ("helo.pass.test", "a@incl.test"),
        ("helo.pass.test", "a@none.test"),
        ("helo.pass.test", ""),
    ];
    let cases: Vec<Value> = senders
        .iter()
        .enumerate()
        .map(|(i, (helo, from))| case(helo, from, &message("x@y.test", &format!("spf{i}"), "")))
        .collect();
    for (code, text) in send(&server, &cases) {
        assert_eq!(code, 250, "{text}");
    }
    let all = mailbox_contents(&server);
    let pyspf = py(
        r#"
import json, sys, dns.resolver, spf
r = dns.resolver.Resolver(configure=False)
host, port = sys.argv[1].rsplit(":", 1)
r.nameservers = [host]
r.port = int(port)
dns.resolver.default_resolver = r
out = []
for helo, sender in json.loads(sys.argv[2]):
    out.append(spf.check2(i="127.0.0.1", s=sender or "postmaster@" + helo, h=helo)[0])
print(json.dumps(out))
"#,
        &[
            &dns.addr.to_string(),
            &serde_json::to_string(&senders).unwrap(),
        ],
    );
    let expected = [
        "pass",
        "fail",
        "softfail",
        "neutral",
        "permerror",
        "pass",
        "none",
        "pass",
    ];
    for (i, want) in expected.iter().enumerate() {
        let (_, ours) = stored(&all, &format!("spf{i}"));
        assert_eq!(ours.len(), 1, "one field of ours: {ours:?}");
        let tern = spf_mailfrom(&ours[0]);
        assert_eq!(
            tern, pyspf[i],
            "Tern and pyspf disagree on {:?}",
            senders[i]
        );
        assert_eq!(&tern, want, "{:?}: {}", senders[i], ours[0]);
    }
}

#[test]
fn dmarc_policies_forged_results_and_our_own_domains() {
    let dns = DnsServer::start();
    let us = "v=spf1 ip4:127.0.0.0/8 -all";
    let not_us = "v=spf1 ip4:192.0.2.0/24 -all";
    for (domain, spf, dmarc) in [
        ("good.test", us, Some("v=DMARC1; p=reject")),
        ("bad.test", not_us, Some("v=DMARC1; p=reject")),
        ("quar.test", not_us, Some("v=DMARC1; p=quarantine")),
        (
            "lax.test",
            "v=spf1 ip4:192.0.2.0/24 ~all",
            Some("v=DMARC1; p=none"),
        ),
        ("spfonly.test", not_us, None),
        // sp= for subdomains (RFC 7489 §6.3), pct=0 samples the policy out.
        ("org.test", not_us, Some("v=DMARC1; p=none; sp=reject")),
        ("sampled.test", not_us, Some("v=DMARC1; p=reject; pct=0")),
    ] {
        dns.txt(domain, spf);
        if let Some(dmarc) = dmarc {
            dns.txt(&format!("_dmarc.{domain}"), dmarc);
        }
    }
    let (_dir, server) = receiver(&dns, "");
    let forged = "Authentication-Results: mail.example.test; dkim=pass header.d=bad.test\r\n\
                  Authentication-Results: elsewhere.test; spf=pass\r\n";
    let cases = [
        case(
            "mx.good.test",
            "a@good.test",
            &message("a@good.test", "good", forged),
        ),
        case(
            "mx.bad.test",
            "a@bad.test",
            &message("a@bad.test", "bad", ""),
        ),
        case(
            "mx.quar.test",
            "a@quar.test",
            &message("a@quar.test", "quar", ""),
        ),
        case(
            "mx.lax.test",
            "a@lax.test",
            &message("a@lax.test", "lax", ""),
        ),
        case(
            "mx.spfonly.test",
            "a@spfonly.test",
            &message("a@spfonly.test", "spfonly", ""),
        ),
        // One of our own domains, from outside, unauthenticated.
        case(
            "mx.evil.test",
            "alice@example.test",
            &message("alice@example.test", "own", ""),
        ),
        case(
            "mx.evil.test",
            "a@lax.test",
            &message("ceo@example.test", "own2", ""),
        ),
        case(
            "mx.evil.test",
            "a@lax.test",
            &message("a@news.org.test", "subdomain", ""),
        ),
        case(
            "mx.evil.test",
            "a@lax.test",
            &message("a@sampled.test", "sampled", ""),
        ),
    ];
    let replies = send(&server, &cases);
    assert_eq!(replies[0].0, 250, "SPF and DMARC pass: {replies:?}");
    assert_eq!(replies[1].0, 550, "DMARC p=reject: {replies:?}");
    assert!(replies[1].1.starts_with("5.7.1 ") && replies[1].1.contains("DMARC"));
    assert_eq!(replies[2].0, 250, "p=quarantine is delivered: {replies:?}");
    assert_eq!(replies[3].0, 250, "p=none is delivered: {replies:?}");
    assert_eq!(replies[4].0, 550, "SPF fail, nothing else: {replies:?}");
    assert!(replies[4].1.starts_with("5.7.23 "), "{replies:?}");
    assert_eq!(replies[7].0, 550, "sp=reject for a subdomain: {replies:?}");
    assert_eq!(
        replies[8].0, 250,
        "pct=0: quarantined, not refused: {replies:?}"
    );
    for own in &replies[5..7] {
        assert_eq!(own.0, 550, "our own domain from outside: {replies:?}");
        assert!(own.1.contains("domain of this server"), "{own:?}");
    }

    let all = mailbox_contents(&server);
    assert_eq!(all.len(), 4, "only the accepted messages are stored");
    let (sampled, ours) = stored(&all, "sampled");
    assert_eq!(sampled.0, "Junk", "{ours:?}");
    assert!(
        ours[0].contains("dmarc=fail header.from=sampled.test policy.dmarc=reject"),
        "{ours:?}"
    );
    let (good, ours) = stored(&all, "good");
    assert_eq!(good.0, "INBOX");
    assert_eq!(
        ours.len(),
        1,
        "the forged field is gone, ours added: {ours:?}"
    );
    assert!(
        ours[0].contains("spf=pass") && ours[0].contains("dmarc=pass"),
        "{ours:?}"
    );
    assert!(!ours[0].contains("header.d=bad.test"), "{ours:?}");
    assert!(good
        .2
        .contains("Authentication-Results: elsewhere.test; spf=pass"));
    let (quar, ours) = stored(&all, "quar");
    assert_eq!(quar.0, "Junk", "quarantined mail goes to Junk");
    assert!(quar.1.contains("$Junk"), "{}", quar.1);
    assert!(ours[0].contains("dmarc=fail"), "{ours:?}");
    let (lax, ours) = stored(&all, "lax");
    assert_eq!(lax.0, "INBOX");
    assert!(
        ours[0].contains("dmarc=fail") && ours[0].contains("spf=softfail"),
        "{ours:?}"
    );

    // The server still serves the next, good message after the refusals.
    let again = send(
        &server,
        &[case(
            "mx.good.test",
            "a@good.test",
            &message("a@good.test", "again", ""),
        )],
    );
    assert_eq!(again[0].0, 250);
}

/// Signs each `[message, canonicalization]` with dkimpy (Ed25519), as
/// `d=signed.test s=sel`; the signed messages, and the public key record.
fn dkimpy_sign(messages: &[(&[u8], &str)]) -> (Vec<Vec<u8>>, String) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let input: Vec<Value> = messages
        .iter()
        .map(|(m, c)| json!([b64.encode(m), c]))
        .collect();
    let signed = py(
        r#"
import base64, dkim, json, sys, nacl.signing
key = nacl.signing.SigningKey.generate()
seed = base64.b64encode(bytes(key))
out = []
for m, canon in json.loads(sys.argv[1]):
    msg = base64.b64decode(m)
    c = canon.encode().split(b"/")
    sig = dkim.sign(msg, b"sel", b"signed.test", seed, signature_algorithm=b"ed25519-sha256",
                    canonicalize=(c[0], c[1]), include_headers=[b"from", b"to", b"subject", b"date"])
    out.append(base64.b64encode(sig + msg).decode())
print(json.dumps({"signed": out,
                  "record": "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(key.verify_key)).decode()}))
"#,
        &[&Value::Array(input).to_string()],
    );
    let messages = signed["signed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| b64.decode(m.as_str().unwrap()).unwrap())
        .collect();
    (messages, signed["record"].as_str().unwrap().to_string())
}

fn replace(message: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(message.to_vec())
        .unwrap()
        .replacen(from, to, 1)
        .into_bytes()
}

#[test]
fn dkim_signatures_from_dkimpy_agree_and_canonicalisation_matters() {
    let dns = DnsServer::start();
    // SPF fails for every sender here: DKIM alone must carry DMARC.
    dns.txt("signed.test", "v=spf1 ip4:192.0.2.0/24 -all");
    dns.txt("_dmarc.signed.test", "v=DMARC1; p=reject");
    dns.txt("relay.test", "v=spf1 ip4:192.0.2.0/24 -all");
    let (signed, record) = dkimpy_sign(&[
        (&message("a@signed.test", "relaxed", ""), "relaxed/relaxed"),
        (&message("a@signed.test", "simple", ""), "simple/simple"),
        (&message("a@signed.test", "body", ""), "relaxed/relaxed"),
        (&message("a@signed.test", "intact", ""), "simple/simple"),
    ]);
    dns.txt("sel._domainkey.signed.test", &record);
    let (_dir, server) = receiver(&dns, "");
    // Header whitespace changed in transit: relaxed survives, simple not.
    let relaxed = replace(&signed[0], "Subject: relaxed", "Subject:   relaxed");
    let simple = replace(&signed[1], "Subject: simple", "Subject:   simple");
    // The body changed: no canonicalisation survives that.
    let body = replace(&signed[2], "the body.", "the b0dy.");
    // Replayed from another server and envelope: DKIM still verifies (it
    // signs content, not the path), SPF fails.
    let intact = signed[3].clone();
    let cases = [
        case("mx.signed.test", "a@signed.test", &relaxed),
        case("mx.signed.test", "a@signed.test", &simple),
        case("mx.signed.test", "a@signed.test", &body),
        case("mx.relay.test", "bounce@relay.test", &intact),
    ];
    let replies = send(&server, &cases);
    assert_eq!(
        replies[0].0, 250,
        "relaxed survives whitespace: {replies:?}"
    );
    assert_eq!(replies[1].0, 550, "simple does not: {replies:?}");
    assert_eq!(replies[2].0, 550, "a changed body fails: {replies:?}");
    assert_eq!(replies[3].0, 250, "replayed but intact: {replies:?}");

    // dkimpy, on the very same bytes, agrees with every verdict.
    let records = json!({ "sel._domainkey.signed.test": record });
    let dkimpy: Vec<bool> = [&relaxed, &simple, &body, &intact]
        .iter()
        .map(|m| {
            crate::mx::dkimpy_verifies(m, &records)[0]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(dkimpy, [true, false, false, true]);

    let all = mailbox_contents(&server);
    for subject in ["relaxed", "intact"] {
        let (_, ours) = stored(&all, subject);
        assert!(
            ours[0].contains("dkim=pass header.i=@signed.test header.s=sel")
                && ours[0].contains("dmarc=pass"),
            "{subject}: {ours:?}"
        );
    }
}

#[test]
fn mail_signed_by_tern_verifies_at_another_tern() {
    let dns = DnsServer::start();
    // The receiver: bob@example.test at 127.0.0.1, MX for example.test.
    let (b_dir, b) = receiver(&dns, "");
    let mx_port = b.listeners["smtp"].port();
    dns.mx("example.test", 10, "mx.example.test");
    dns.a("mx.example.test", std::net::Ipv4Addr::LOCALHOST);
    // The sender: ann@a.test with DKIM keys, SPF and DMARC published.
    let a_dir = TestDir::with_config(&format!(
        "[dns]\nservers = [\"{}\"]\n[outbound]\nmx_port = {mx_port}\n",
        dns.addr
    ));
    a_dir.add_account("ann@a.test");
    dkim_generate(&a_dir, "a.test");
    // Exactly what `tern dns` tells the administrator to publish.
    let published: Value =
        serde_json::from_str(&a_dir.ok(&["--json", "dns", "a.test"], "")).unwrap();
    let mut kinds = Vec::new();
    for r in published["records"].as_array().unwrap() {
        let (name, value) = (r["name"].as_str().unwrap(), r["value"].as_str().unwrap());
        kinds.push(r["type"].as_str().unwrap().to_string());
        match r["type"].as_str().unwrap() {
            "TXT" => dns.txt(name, value),
            "MX" => dns.mx(name, 10, value.split_whitespace().nth(1).unwrap()),
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        ["MX", "TXT", "TXT", "TXT", "TXT", "SRV", "SRV", "SRV", "SRV"],
        "MX, SPF, two DKIM keys, DMARC, client SRV records: {published}"
    );
    // The sender's host name (its MX, so SPF's `mx` names it).
    dns.a("mail.example.test", std::net::Ipv4Addr::LOCALHOST);
    assert!(a_dir
        .fails(&["dns", "nowhere.test"], "")
        .contains("not a local domain"));
    let a = a_dir.start();
    let sent = py(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.login("ann@a.test", "secret")
s.sendmail("ann@a.test", ["bob@example.test"],
           b"From: <ann@a.test>\r\nTo: <bob@example.test>\r\nSubject: from-tern\r\n\r\nSigned by Tern.\r\n")
s.quit()
print(json.dumps("ok"))
"#,
        &[&a.listeners["submission"].port().to_string()],
    );
    assert_eq!(sent, "ok");
    // Read as it arrives (IMAP IDLE).
    let text = crate::mx::mail_with(&b, "bob@example.test", "from-tern");
    let all = [("INBOX".to_string(), String::new(), text)];
    let (_, ours) = stored(&all, "from-tern");
    let results = &ours[0];
    assert_eq!(
        results.matches("dkim=pass header.d=a.test").count(),
        2,
        "both signatures (Ed25519 and RSA) verify: {results}"
    );
    assert!(
        results.contains("spf=pass") && results.contains("dmarc=pass"),
        "{results}"
    );
    drop(b_dir);
}

/// A message from `orig.test` (DKIM, `p=reject`) that a mailing list at
/// `sealer` changed (breaking the signature) and ARC-sealed with dkimpy
/// (RSA, RFC 8617), as it reaches us from the list's server; and the
/// seal's public key record.
fn forwarded_through(sealer: &str, subject: &str, orig_record: &mut String) -> (Vec<u8>, String) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let original = message("a@orig.test", subject, "");
    let out = py(
        r#"
import base64, dkim, json, sys, nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
msg = base64.b64decode(sys.argv[1])
sealer = sys.argv[2].encode()
author = nacl.signing.SigningKey.generate()
msg = dkim.sign(msg, b"sel", b"orig.test", base64.b64encode(bytes(author)),
                signature_algorithm=b"ed25519-sha256",
                include_headers=[b"from", b"to", b"subject", b"date"]) + msg
# The list tags the subject: the author's signature breaks.
msg = msg.replace(b"Subject: ", b"Subject: [list] ", 1)
msg = b"Authentication-Results: " + sealer + b"; dkim=pass header.d=orig.test; spf=pass smtp.mailfrom=orig.test\r\n" + msg
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                        serialization.NoEncryption())
spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
seal = dkim.arc_sign(msg, b"arc", sealer, pem, sealer,
                     include_headers=[b"from", b"to", b"subject", b"date"])
sealed = b"".join(seal) + msg
print(json.dumps({"message": base64.b64encode(sealed).decode(),
                  "seal_record": "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode(),
                  "author_record": "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(author.verify_key)).decode()}))
"#,
        &[&b64.encode(&original), sealer],
    );
    *orig_record = out["author_record"].as_str().unwrap().to_string();
    (
        b64.decode(out["message"].as_str().unwrap()).unwrap(),
        out["seal_record"].as_str().unwrap().to_string(),
    )
}

#[test]
fn arc_from_a_trusted_sealer_saves_forwarded_mail_from_dmarc() {
    let dns = DnsServer::start();
    dns.txt("orig.test", "v=spf1 ip4:192.0.2.0/24 -all");
    dns.txt("_dmarc.orig.test", "v=DMARC1; p=reject");
    for list in ["list.test", "other.test"] {
        dns.txt(list, "v=spf1 ip4:127.0.0.0/8 -all");
    }
    let mut orig_record = String::new();
    let (trusted, trusted_key) = forwarded_through("list.test", "via-trusted", &mut orig_record);
    dns.txt("arc._domainkey.list.test", &trusted_key);
    let (untrusted, untrusted_key) = forwarded_through("other.test", "via-other", &mut orig_record);
    dns.txt("arc._domainkey.other.test", &untrusted_key);
    dns.txt("sel._domainkey.orig.test", &orig_record);
    let (_dir, server) = receiver(&dns, "trusted_arc_sealers = [\"list.test\"]");
    let replies = send(
        &server,
        &[
            case("mx.list.test", "bounce@list.test", &trusted),
            case("mx.other.test", "bounce@other.test", &untrusted),
        ],
    );
    assert_eq!(replies[0].0, 250, "a trusted sealer vouches: {replies:?}");
    assert_eq!(replies[1].0, 550, "an untrusted one does not: {replies:?}");
    assert!(replies[1].1.contains("DMARC"), "{replies:?}");

    let all = mailbox_contents(&server);
    let (found, ours) = stored(&all, "[list] via-trusted");
    assert_eq!(found.0, "INBOX");
    assert!(
        ours[0].contains("arc=pass") && ours[0].contains("dmarc=fail"),
        "the chain verifies, DMARC alone would have refused: {ours:?}"
    );
    // dkimpy verifies the same chain.
    let verdict = py(
        r#"
import base64, dkim, json, sys
records = json.loads(sys.argv[2])
def dnsfunc(name, timeout=5):
    return records.get(name.decode().rstrip(".")).encode()
cv, results, why = dkim.arc_verify(base64.b64decode(sys.argv[1]), dnsfunc=dnsfunc)
print(json.dumps(cv.decode()))
"#,
        &[
            &{
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(&trusted)
            },
            &json!({ "arc._domainkey.list.test": trusted_key }).to_string(),
        ],
    );
    assert_eq!(verdict, "pass");
}

#[test]
fn forwarded_mail_is_arc_sealed_and_the_next_hop_verifies_the_seal() {
    let dns = DnsServer::start();
    // The author's domain: DKIM (dkimpy), SPF that excludes every
    // forwarder, p=reject.
    dns.txt("signed.test", "v=spf1 ip4:192.0.2.0/24 -all");
    dns.txt("_dmarc.signed.test", "v=DMARC1; p=reject");
    let (signed, record) = dkimpy_sign(&[(
        &message("a@signed.test", "forwarded", ""),
        "relaxed/relaxed",
    )]);
    dns.txt("sel._domainkey.signed.test", &record);
    // The final receiver, bob@example.test; it trusts the forwarder.
    let (_c_dir, c) = receiver(&dns, "trusted_arc_sealers = [\"fwd.test\"]");
    dns.mx("example.test", 10, "mx.example.test");
    dns.a("mx.example.test", std::net::Ipv4Addr::LOCALHOST);
    // The forwarder: list@fwd.test goes on to bob@example.test.
    let b_dir = TestDir::with_config(&format!(
        "[dns]\nservers = [\"{}\"]\n[inbound]\n[outbound]\nmx_port = {}\n",
        dns.addr,
        c.listeners["smtp"].port()
    ));
    b_dir.add_account("owner@fwd.test");
    b_dir.ok(&["alias", "add", "list@fwd.test", "bob@example.test"], "");
    dkim_generate(&b_dir, "fwd.test");
    let published: Value =
        serde_json::from_str(&b_dir.ok(&["--json", "dns", "fwd.test"], "")).unwrap();
    let mut seal_records = serde_json::Map::new();
    for r in published["records"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        if name.contains("._domainkey.") {
            dns.txt(name, r["value"].as_str().unwrap());
            seal_records.insert(name.to_string(), r["value"].clone());
        }
    }
    let b = b_dir.start();
    let replies = py(
        r#"
import base64, json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="mx.signed.test")
s.ehlo()
s.mail("a@signed.test")
s.rcpt("list@fwd.test")
code, text = s.data(base64.b64decode(sys.argv[2]))
s.quit()
print(json.dumps([code, text.decode()]))
"#,
        &[&b.listeners["smtp"].port().to_string(), &{
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&signed[0])
        }],
    );
    assert_eq!(replies[0], 250, "the forwarder takes it: {replies}");

    // At the receiver: our seal verifies, and so does dkimpy's ARC check
    // of the very bytes that arrived.
    let fetched = crate::mx::mail_with(&c, "bob@example.test", "Subject: forwarded");
    // The message itself: the literal of the FETCH response, `{n}\r\n` on.
    let open = fetched.find('{').expect("a literal");
    let close = open + fetched[open..].find("}\r\n").expect("a literal");
    let n: usize = fetched[open + 1..close].parse().unwrap();
    let text = fetched[close + 3..close + 3 + n].to_string();
    let all = [("INBOX".to_string(), String::new(), text.clone())];
    let (_, ours) = stored(&all, "forwarded");
    assert!(ours[0].contains("arc=pass"), "{ours:?}");
    assert!(
        text.contains("ARC-Seal: i=1;") && text.contains("d=fwd.test"),
        "{text}"
    );
    let cv = py(
        r#"
import base64, dkim, json, sys
records = json.loads(sys.argv[2])
def dnsfunc(name, timeout=5):
    return records.get(name.decode().rstrip(".")).encode()
cv, results, why = dkim.arc_verify(base64.b64decode(sys.argv[1]), dnsfunc=dnsfunc)
print(json.dumps([cv.decode(), why]))
"#,
        &[
            &{
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
            },
            &Value::Object(seal_records).to_string(),
        ],
    );
    assert_eq!(cv[0], "pass", "dkimpy on the forwarded message: {cv}");
}
