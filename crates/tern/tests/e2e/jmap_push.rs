//! JMAP push beyond EventSource (issue 14): the WebSocket (RFC 8887,
//! driven with Debian's python3-websockets) and push subscriptions (RFC
//! 8620 §7.2, to a stand-in push service on loopback).

use crate::harness::*;
use crate::smtp::python;
use serde_json::{json, Value};
use std::process::Command;

#[test]
fn websocket_carries_requests_and_pushes_state_changes() {
    let dir = TestDir::new();
    dir.add_account("joe@example.test");
    let server = dir.start();
    // Debian's python3-websockets (scripts/test.sh installs it).
    let script = r##"
import asyncio, base64, json, smtplib, sys, websockets
url = "ws://127.0.0.1:%s/jmap/ws" % sys.argv[1]
auth = {"Authorization": "Basic " + base64.b64encode(b"joe@example.test:secret").decode()}
using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
out = {}
def deliver():
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]))
    s.sendmail("ann@remote.test", ["joe@example.test"], b"Subject: pushed\r\n\r\nhello\r\n")
    s.quit()
async def main():
    try:
        async with websockets.connect(url, subprotocols=["jmap"]) as ws:
            out["anonymous"] = "connected"
    except websockets.exceptions.InvalidStatusCode as e:
        out["anonymous"] = e.status_code
    async with websockets.connect(url, subprotocols=["jmap"], extra_headers=auth) as ws:
        out["protocol"] = ws.subprotocol
        await ws.send(json.dumps({"@type": "Request", "id": "r1", "using": using,
            "methodCalls": [["Mailbox/get", {"accountId": "a1", "properties": ["name"]}, "0"]]}))
        r = json.loads(await ws.recv())
        out["response"] = [r["@type"], r["requestId"], r["methodResponses"][0][0], len(r["methodResponses"][0][1]["list"])]
        await ws.send("{not json")
        out["not_json"] = json.loads(await ws.recv())
        await ws.send(json.dumps({"@type": "Request", "id": "r2", "using": ["urn:example:nothing"], "methodCalls": []}))
        out["unknown_capability"] = json.loads(await ws.recv())
        await ws.send(json.dumps({"@type": "Hello"}))
        out["bad_type"] = json.loads(await ws.recv())["type"]
        await ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": ["Email", "Mailbox"]}))
        await asyncio.get_running_loop().run_in_executor(None, deliver)
        out["change"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(json.dumps({"@type": "WebSocketPushDisable"}))
        await ws.send(json.dumps({"@type": "Request", "id": "r3", "using": using,
            "methodCalls": [["Email/query", {"accountId": "a1"}, "0"]]}))
        r = json.loads(await asyncio.wait_for(ws.recv(), 10))
        out["after_disable"] = [r["@type"], r.get("requestId"), len(r["methodResponses"][0][1]["ids"])]
asyncio.run(main())
print(json.dumps(out))
"##;
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(server.listeners["http"].port().to_string())
        .arg(server.listeners["smtp"].port().to_string())
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "websockets: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["anonymous"], 401, "{out}");
    assert_eq!(out["protocol"], "jmap", "{out}");
    assert_eq!(
        out["response"],
        json!(["Response", "r1", "Mailbox/get", 6]),
        "{out}"
    );
    assert_eq!(out["not_json"]["@type"], "RequestError", "{out}");
    assert_eq!(
        out["not_json"]["type"],
        "urn:ietf:params:jmap:error:notJSON"
    );
    assert_eq!(out["unknown_capability"]["requestId"], "r2", "{out}");
    assert_eq!(
        out["unknown_capability"]["type"],
        "urn:ietf:params:jmap:error:unknownCapability"
    );
    assert_eq!(out["bad_type"], "urn:ietf:params:jmap:error:notRequest");
    let change = &out["change"];
    assert_eq!(change["@type"], "StateChange", "{out}");
    let changed = change["changed"]["a1"].as_object().unwrap();
    assert!(
        changed.contains_key("Email") && changed.contains_key("Mailbox"),
        "{out}"
    );
    assert!(
        !changed.contains_key("Thread"),
        "only the types asked for: {out}"
    );
    assert_eq!(change["pushState"], changed["Email"], "{out}");
    // With push off, the next message is the answer, not a change.
    assert_eq!(out["after_disable"], json!(["Response", "r3", 1]), "{out}");
    // The session names the endpoint; a plain GET is told to upgrade.
    let http = format!("http://127.0.0.1:{}", server.listeners["http"].port());
    let (_, body) = crate::jmap::curl(&[
        "-u",
        "joe@example.test:secret",
        &format!("{http}/jmap/session"),
    ]);
    let session: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        session["capabilities"]["urn:ietf:params:jmap:websocket"]["url"],
        format!("ws://127.0.0.1:{}/jmap/ws", server.listeners["http"].port())
    );
    let (head, _) = crate::jmap::curl(&[&format!("{http}/jmap/ws")]);
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
}

/// A child process killed when dropped, even by a failing assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A push service stand-in: Python's http.server on loopback, printing
/// each POST body as a line. Its port, and the lines as they come.
fn push_receiver() -> (KillOnDrop, u16, std::sync::mpsc::Receiver<Value>) {
    use std::io::BufRead;
    let script = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        print(body.decode() if self.headers.get("TTL") else '"no TTL"', flush=True)
        self.send_response(201)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx
                .send(serde_json::from_str(&line).unwrap_or(Value::Null))
                .is_err()
            {
                break;
            }
        }
    });
    (KillOnDrop(child), port, rx)
}

#[test]
fn push_subscriptions_are_verified_then_told_of_changes() {
    let (_receiver, port, posts) = push_receiver();
    let dir = TestDir::with_config("[jmap]\npush_allow_private = true\n");
    dir.add_account("joe@example.test");
    let server = dir.start();
    let call = |calls: Value| {
        let (status, r) = crate::jmap::api(
            &server,
            &json!({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                    "methodCalls": calls})
            .to_string(),
        );
        assert_eq!(status, 200, "{r}");
        r["methodResponses"][0][1].clone()
    };
    let url = format!("http://127.0.0.1:{port}/push/joe");
    let set = call(json!([["PushSubscription/set", {"create": {
        "phone": {"deviceClientId": "joe-phone", "url": url, "types": ["Email"]},
        "ftp": {"deviceClientId": "x", "url": "ftp://127.0.0.1/"},
        "keys": {"deviceClientId": "y", "url": url, "keys": {"p256dh": "AA", "auth": "BB"}},
    }}, "0"]]));
    assert_eq!(
        set["notCreated"]["ftp"]["type"], "invalidProperties",
        "{set}"
    );
    assert_eq!(
        set["notCreated"]["keys"]["type"], "invalidProperties",
        "{set}"
    );
    let id = set["created"]["phone"]["id"].as_str().unwrap().to_string();
    let wait = || {
        posts
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a POST to the push URL")
    };
    let verification = wait();
    assert_eq!(verification["@type"], "PushVerification", "{verification}");
    assert_eq!(verification["pushSubscriptionId"], id);
    let code = verification["verificationCode"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = call(
        json!([["PushSubscription/set", {"update": {&id: {"verificationCode": "nope"}}}, "0"]]),
    );
    assert_eq!(
        wrong["notUpdated"][&id]["type"], "invalidProperties",
        "{wrong}"
    );
    let right =
        call(json!([["PushSubscription/set", {"update": {&id: {"verificationCode": code}}}, "0"]]));
    assert!(
        right["updated"][&id].is_null() && right["updated"].is_object(),
        "{right}"
    );
    let got = call(json!([["PushSubscription/get", {"ids": null}, "0"]]));
    assert_eq!(got["list"][0]["deviceClientId"], "joe-phone", "{got}");
    assert_eq!(
        got["list"][0]["url"],
        Value::Null,
        "the URL is not given back"
    );
    assert_eq!(got["list"][0]["types"], json!(["Email"]));

    // Mail arrives: the subscription hears of it.
    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("ann@remote.test", ["joe@example.test"], b"Subject: ping\r\n\r\nhello\r\n")
s.quit()
print(json.dumps("ok"))
"#,
        &[&server.listeners["smtp"].port().to_string()],
    );
    assert_eq!(sent, "ok");
    let change = wait();
    assert_eq!(change["@type"], "StateChange", "{change}");
    let changed = change["changed"]["a1"].as_object().unwrap();
    assert!(changed.contains_key("Email"), "{change}");
    assert!(
        !changed.contains_key("Mailbox"),
        "only the types asked for: {change}"
    );
    let gone = call(json!([["PushSubscription/set", {"destroy": [&id]}, "0"]]));
    assert_eq!(gone["destroyed"], json!([id]), "{gone}");
}
