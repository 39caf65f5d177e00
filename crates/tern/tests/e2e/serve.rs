//! `tern serve`: starts, says ready, listens on every protocol, stops cleanly.

use crate::harness::*;

#[test]
fn serve_says_ready_and_stops_cleanly_on_sigterm() {
    let t = TestDir::new();
    let server = t.start();
    let log = server.startup_log.join("\n");
    // One line per configured listener, each on its ephemeral port.
    for proto in [
        "smtp",
        "submission",
        "submissions",
        "pop3",
        "pop3s",
        "imap",
        "imaps",
        "http",
        "https",
    ] {
        assert!(
            server.listeners.contains_key(proto),
            "{proto} not listening:\n{log}"
        );
    }
    // First start made a self-signed certificate and the store.
    assert!(t.data_dir().join("tls/cert.pem").exists());
    assert!(t.data_dir().join("tls/key.pem").exists());
    assert!(t.data_dir().join("tern.db").exists());
    let (status, rest) = server.stop_with("TERM");
    assert!(status.success(), "exit status {status:?}; log: {rest:?}");
    let rest = rest.join("\n");
    assert!(rest.contains("SIGTERM received"), "{rest}");
    assert!(rest.contains("stopped cleanly"), "{rest}");
}

#[test]
fn serve_stops_cleanly_on_sigint_and_restarts_with_the_same_certificate() {
    let t = TestDir::new();
    let server = t.start();
    let cert = std::fs::read(t.data_dir().join("tls/cert.pem")).unwrap();
    let (status, rest) = server.stop_with("INT");
    assert!(status.success(), "{rest:?}");
    assert!(rest.join("\n").contains("SIGINT received"));
    let server = t.start();
    assert_eq!(
        std::fs::read(t.data_dir().join("tls/cert.pem")).unwrap(),
        cert,
        "certificate reused"
    );
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
}

#[test]
fn an_empty_listener_list_turns_the_listener_off() {
    let t = TestDir::new();
    let config = std::fs::read_to_string(t.config())
        .unwrap()
        .replace("imap = [\"127.0.0.1:0\"]", "imap = []");
    std::fs::write(t.config(), config).unwrap();
    let server = t.start();
    let log = server.startup_log.join("\n");
    assert!(!server.listeners.contains_key("imap"), "{log}");
    assert!(server.listeners.contains_key("imaps"), "{log}");
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
}

#[test]
fn admin_commands_work_while_the_server_runs() {
    let t = TestDir::new();
    let server = t.start();
    t.ok(&["domain", "add", "example.test"], "");
    t.ok(
        &["account", "add", "live@example.test", "--password-stdin"],
        "live and well 1\n",
    );
    assert!(t.ok(&["account", "list"], "").contains("live@example.test"));
    t.ok(
        &["alias", "add", "info@example.test", "live@example.test"],
        "",
    );
    t.ok(
        &["account", "passwd", "live@example.test", "--password-stdin"],
        "live and well 2\n",
    );
    let (status, rest) = server.stop_with("TERM");
    assert!(status.success(), "{rest:?}");
    // Everything done beside the running server is kept.
    let accounts: serde_json::Value =
        serde_json::from_str(&t.ok(&["account", "list", "--json"], "")).unwrap();
    assert_eq!(accounts[0]["address"], "live@example.test");
}

/// One server per data directory: a second `tern serve` on it is refused
/// with the first one's PID, and the first keeps serving.
#[test]
fn a_second_server_on_one_data_directory_is_refused() {
    let t = TestDir::new();
    let first = t.start();
    let err = t.fails(&["serve"], "");
    assert!(
        err.contains(&format!("PID {}", first.pid()))
            && err.contains("already using the data directory"),
        "{err}"
    );
    // Admin commands still work beside it.
    t.ok(&["domain", "add", "example.test"], "");
    let (status, rest) = first.stop_with("TERM");
    assert!(status.success(), "{rest:?}");
}

#[test]
fn the_certificate_fingerprint_is_logged_at_start() {
    use sha2::{Digest, Sha256};
    let t = TestDir::new();
    let server = t.start();
    let pem = std::fs::read_to_string(t.data_dir().join("tls/cert.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let expected = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        server
            .startup_log
            .iter()
            .any(|l| l.contains("SHA-256 fingerprint") && l.contains(&expected)),
        "{expected} not in {:#?}",
        server.startup_log
    );
}
