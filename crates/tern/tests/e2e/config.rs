//! Configuration errors reach the administrator as one clear line.

use crate::harness::*;

fn serve_with(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tern.toml"), config).unwrap();
    let out = run(&["serve"], "", dir.path());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let (ok, err) =
        serve_with("hostname = \"mail.example.test\"\n\n[listen]\nsmtpp = [\"127.0.0.1:2525\"]\n");
    assert!(!ok);
    assert!(err.contains("line 4") && err.contains("smtpp"), "{err}");
}

#[test]
fn a_bad_value_is_named_with_its_line() {
    let (ok, err) = serve_with("[listen]\nimap = [\"not-an-address\"]\n");
    assert!(!ok);
    assert!(
        err.contains("line 2") && err.contains("listen.imap"),
        "{err}"
    );
    let (ok, err) = serve_with("data_dir = 5\n");
    assert!(!ok);
    assert!(err.contains("line 1") && err.contains("data_dir"), "{err}");
}

#[test]
fn a_missing_config_file_is_an_error_when_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["--config", "nope.toml", "domain", "list"], "", dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.toml"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn no_config_file_means_defaults() {
    // With no tern.toml in the working directory, admin commands use
    // ./tern-data.
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["domain", "add", "example.test"], "", dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("tern-data/tern.db").exists());
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tern.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example).unwrap();
    std::fs::write(dir.path().join("tern.toml"), text).unwrap();
    let out = run(&["domain", "list"], "", dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
