//! Starting and stopping the real binary. A server is ready when it prints
//! its `ready` line; no test sleeps to wait for it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to print `ready` (first start generates a
/// certificate; CI machines are slow).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A temporary data directory with a config file that listens only on
/// loopback ephemeral ports.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    /// The base configuration, its data directory created (`tern init`).
    pub fn new() -> TestDir {
        let t = TestDir::with_config("");
        t.init();
        t
    }

    /// `extra` is appended to the base configuration.
    pub fn with_config(extra: &str) -> TestDir {
        TestDir::with_smtp_on(extra, "127.0.0.1:0")
    }

    /// [`TestDir::with_config`] with SMTP (port 25's role) listening on
    /// `smtp` — another loopback address, or a given port — as an MX host
    /// in the outbound tests must.
    pub fn with_smtp_on(extra: &str, smtp: &str) -> TestDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen: String = [
            "smtp",
            "submission",
            "submissions",
            "imap",
            "imaps",
            "pop3",
            "pop3s",
            "http",
            "https",
        ]
        .iter()
        .map(|p| {
            let addr = if *p == "smtp" { smtp } else { "127.0.0.1:0" };
            format!("{p} = [\"{addr}\"]\n")
        })
        .collect();
        // Tests never ask the real DNS: a test that sends to other domains
        // names its own DNS server; the rest get a closed port (mail for
        // other domains then waits, deferred).
        let dns = if extra.contains("[dns]") {
            ""
        } else {
            "[dns]\nservers = [\"127.0.0.1:9\"]\n"
        };
        // Nor do they check senders (SPF and DMARC would ask that DNS),
        // unless they are about sender authentication.
        let inbound = if extra.contains("[inbound]") {
            ""
        } else {
            "[inbound]\nspf = \"off\"\ndkim = \"off\"\ndmarc = \"off\"\narc = \"off\"\n"
        };
        // Nor score mail as spam (it adds fields to what they compare).
        let spam = if extra.contains("[spam]") {
            ""
        } else {
            "[spam]\nenabled = false\n"
        };
        let config = format!(
            "hostname = \"mail.example.test\"\ndata_dir = \"{}\"\n{extra}\n{dns}{inbound}{spam}[listen]\n{listen}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("tern.toml"), config).expect("write config");
        TestDir { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("tern.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `tern --config <ours> ARGS...` with `stdin` as standard input.
    pub fn tern(&self, args: &[&str], stdin: &str) -> Output {
        let config = self.config();
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        run(&all, stdin, self.dir.path())
    }

    /// Runs a command that must succeed, returning its stdout.
    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.tern(args, stdin);
        assert!(
            out.status.success(),
            "tern {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a command that must fail, returning its stderr.
    pub fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.tern(args, stdin);
        assert!(
            !out.status.success(),
            "tern {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 output")
    }

    /// Adds a domain and an account with password `secret` (weak, so
    /// kept with `--allow-weak`), creating the data directory if needed.
    pub fn add_account(&self, address: &str) {
        self.init();
        let domain = address.split('@').nth(1).unwrap();
        let _ = self.tern(&["domain", "add", domain], "");
        self.ok(
            &[
                "account",
                "add",
                address,
                "--password-stdin",
                "--allow-weak",
            ],
            "secret\n",
        );
    }

    /// `tern init`: creates the data directory, as admin commands do not.
    pub fn init(&self) {
        self.ok(&["init"], "");
    }

    pub fn start(&self) -> Server {
        Server::start(&self.config(), self.dir.path())
    }

    /// [`TestDir::start`] with more environment variables for the server.
    pub fn start_env(&self, env: &[(&str, &str)]) -> Server {
        Server::spawn(&self.config(), self.dir.path(), &[], env)
    }
}

/// Runs the binary with `args` in `cwd`.
pub fn run(args: &[&str], stdin: &str, cwd: &Path) -> Output {
    let mut child = Command::new(TERN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for tern")
}

/// A running `tern serve`.
pub struct Server {
    child: Option<Child>,
    /// Log lines up to and including the ready line.
    pub startup_log: Vec<String>,
    /// "<protocol>" -> bound address, from the "listening on" lines.
    pub listeners: HashMap<String, SocketAddr>,
    rest: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(config: &Path, cwd: &Path) -> Server {
        Server::start_with(config, cwd, &[])
    }

    /// [`Server::start`] with more arguments for `serve`.
    pub fn start_with(config: &Path, cwd: &Path, serve_args: &[&str]) -> Server {
        Server::spawn(config, cwd, serve_args, &[])
    }

    fn spawn(config: &Path, cwd: &Path, serve_args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(TERN)
            .args(["--config", config.to_str().unwrap(), "serve"])
            .args(serve_args)
            .envs(env.iter().copied())
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tern serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            startup_log: Vec::new(),
            listeners: HashMap::new(),
            rest: rx,
        };
        loop {
            let line = match server.rest.recv_timeout(READY_TIMEOUT) {
                Ok(line) => line,
                Err(_) => panic!(
                    "no ready line; log so far:\n{}",
                    server.startup_log.join("\n")
                ),
            };
            let plain = strip_ansi(&line);
            // A JSON log line's text is its "message".
            let message = serde_json::from_str::<serde_json::Value>(&plain)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| plain.clone());
            if let Some((proto, addr)) = message.split_once(" listening on ") {
                let proto = proto.rsplit(' ').next().unwrap_or(proto).to_string();
                if let Ok(addr) = addr.trim().parse() {
                    server.listeners.insert(proto, addr);
                }
            }
            server.startup_log.push(plain.clone());
            if plain.contains("tern ready") {
                return server;
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit, returning the
    /// status and the log lines printed after startup.
    pub fn stop_with(mut self, signal: &str) -> (ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
        let status = self.child.take().unwrap().wait().unwrap();
        // The reader thread ends at EOF, which the exit brings.
        let rest: Vec<String> = self.rest.iter().map(|l| strip_ansi(&l)).collect();
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes terminal colour codes, should the logger emit any.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls `check` until it yields a value, at most `timeout`: for state no
/// event announces (the queue as `tern queue list` shows it, a Maildir, a
/// port coming up), never as a pause before talking to a server. Fails
/// with `what` and the last state `check` described.
pub fn poll_until<T>(
    timeout: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(state) if std::time::Instant::now() >= deadline => {
                panic!("{what} within {timeout:?}; last: {state}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// Whether `tern queue list` shows an empty queue.
pub fn queue_is_empty(dir: &TestDir) -> Result<(), String> {
    let list = dir.ok(&["queue", "list"], "");
    if list.trim() == "the queue is empty" {
        Ok(())
    } else {
        Err(list)
    }
}
