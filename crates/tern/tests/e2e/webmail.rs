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
