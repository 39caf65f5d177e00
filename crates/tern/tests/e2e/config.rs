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
    // With no tern.toml in the working directory, commands use ./tern-data;
    // an admin command does not create it, and says where it looked.
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["domain", "add", "example.test"], "", dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no Tern data directory at")
            && err.contains("tern-data")
            && err.contains("--config")
            && err.contains("TERN_CONFIG")
            && err.contains("--data-dir")
            && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(
        !dir.path().join("tern-data").exists(),
        "an admin command created a data directory"
    );
    run(&["init"], "", dir.path());
    let out = run(&["domain", "add", "example.test"], "", dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("tern-data/tern.db").exists());
}

#[test]
fn admin_commands_find_the_data_directory_by_flag_or_environment() {
    let t = TestDir::new();
    t.ok(&["domain", "add", "example.test"], "");
    let elsewhere = tempfile::tempdir().unwrap();
    // TERN_CONFIG names the configuration, from any working directory.
    let out = std::process::Command::new(TERN)
        .args(["domain", "list"])
        .env("TERN_CONFIG", t.config())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "example.test\n");
    // --data-dir names the directory itself.
    let data_dir = t.data_dir();
    let out = run(
        &["--data-dir", data_dir.to_str().unwrap(), "domain", "list"],
        "",
        elsewhere.path(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "example.test\n");
    // --json errors are JSON on stdout.
    let out = run(&["domain", "list", "--json"], "", elsewhere.path());
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no Tern data directory"),
        "{v}"
    );
}

#[test]
fn data_directory_problems_are_named_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    // data_dir is a file.
    std::fs::write(dir.path().join("afile"), "x").unwrap();
    std::fs::write(dir.path().join("tern.toml"), "data_dir = \"afile\"\n").unwrap();
    for args in [&["init"][..], &["domain", "list"][..], &["serve"][..]] {
        let out = run(args, "", dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("afile is a file, not a directory"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_serve_that_fails_to_start_leaves_no_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A port in use, so serve fails after creating the directory.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let listen: String = [
        "smtp",
        "submission",
        "submissions",
        "imaps",
        "pop3",
        "pop3s",
        "http",
        "https",
    ]
    .iter()
    .map(|p| format!("{p} = []\n"))
    .collect();
    std::fs::write(
        dir.path().join("tern.toml"),
        format!(
            "hostname = \"mail.example.test\"\n[listen]\n{listen}imap = [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let out = run(&["serve"], "", dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    assert!(
        !dir.path().join("tern-data").exists(),
        "a failed serve left its data directory behind"
    );
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tern.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example).unwrap();
    std::fs::write(dir.path().join("tern.toml"), text).unwrap();
    run(&["init"], "", dir.path());
    let out = run(&["domain", "list"], "", dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_data_directory_without_permission_says_so_and_names_it() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDir::new();
    let data_dir = t.data_dir();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = t.config();
    // Root may write anywhere: play an ordinary user with setpriv then.
    let is_root = running_as_root();
    let mut command = if is_root {
        tern_as_nobody()
    } else {
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        std::process::Command::new(TERN)
    };
    // The configuration must be readable by that user.
    std::fs::set_permissions(t.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = command
        .args(["--config", config.to_str().unwrap(), "domain", "list"])
        .current_dir("/")
        .output()
        .unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied") && err.contains(data_dir.to_str().unwrap()),
        "{err}"
    );
    assert!(!err.contains("code 14"), "{err}");
}

#[test]
fn the_user_configuration_runs_as_an_ordinary_user() {
    use std::os::unix::fs::PermissionsExt;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/tern.user.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let config = tern_core::Config::from_toml_str(&text, "tern.user.toml").unwrap();
    for (protocol, addr) in config.listeners() {
        assert!(addr.port() > 1023, "{protocol} on {addr} needs root");
        assert!(addr.ip().is_loopback(), "{protocol} on {addr}");
    }
    assert!(config.data_dir.is_relative());
    assert!(config.tls.cert.is_none(), "no certificate paths under /etc");
    // Serve it as nobody (uid 65534) when the tests run as root; its ports
    // are fixed, so it is started only here.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(dir.path().join("tern.toml"), &text).unwrap();
    let is_root = running_as_root();
    let mut command = if is_root {
        tern_as_nobody()
    } else {
        std::process::Command::new(TERN)
    };
    let mut child = command
        .args(["serve"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut log = Vec::new();
    let mut ready = false;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let Ok(line) = line else { break };
        log.push(line.clone());
        if line.contains("tern ready") {
            ready = true;
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(ready, "{log:#?}");
    assert!(dir.path().join("tern-data/tern.db").exists());
}

#[test]
fn the_systemd_unit_runs_serve_as_an_unprivileged_user() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/tern.service"
    ))
    .unwrap();
    for line in [
        "User=tern",
        "ExecStart=/usr/local/bin/tern serve",
        "Environment=TERN_CONFIG=/etc/tern/tern.toml",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
}

/// Whether the tests run as root (who may write anywhere).
pub(crate) fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// `tern` run as nobody (uid 65534), to play an ordinary user as root.
fn tern_as_nobody() -> std::process::Command {
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        TERN,
    ]);
    c
}
