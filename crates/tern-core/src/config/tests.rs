//! Tests of the configuration loader.

use super::*;

fn err(text: &str) -> String {
    match Config::from_toml_str(text, "tern.toml") {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn empty_file_means_defaults() {
    let c = Config::from_toml_str("", "tern.toml").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.data_dir, PathBuf::from("./tern-data"));
    assert_eq!(c.listen.smtp, vec![addr("0.0.0.0:25"), addr("[::]:25")]);
    assert_eq!(c.listen.https, vec![addr("0.0.0.0:443"), addr("[::]:443")]);
    assert_eq!(c.store.durability, Durability::Group);
    assert_eq!(c.store.fsync_delay_ms, 0);
    assert_eq!(c.store.journal_retention_days, 90);
    assert_eq!(c.limits.max_message_size, 50 * 1024 * 1024);
    assert_eq!(c.limits.max_recipients, 100);
    assert_eq!(c.limits.max_connections, 1000);
    assert_eq!(c.limits.max_connections_per_ip, 50);
    assert_eq!(c.limits.max_unauthenticated, 500);
    assert_eq!(c.limits.idle_timeout_secs, 300);
    assert_eq!(c.limits.login_timeout_secs, 60);
    assert_eq!(c.limits.max_auth_failures, 5);
    assert_eq!(c.limits.auth_failure_window_secs, 300);
    assert_eq!(c.smtp.relay_networks, []);
    assert_eq!(c.smtp.max_errors, 10);
    assert_eq!(c.smtp.data_timeout_secs, 600);
    assert_eq!(c.smtp.max_line_length, 65536);
    assert_eq!(c.smtp.recipient_delimiter, "+");
    assert!(!c.smtp.may_relay("127.0.0.1".parse().unwrap()));
    assert!(parse_domain(&c.hostname).is_ok(), "{}", c.hostname);
    let ports: Vec<(String, u16)> = c
        .listeners()
        .iter()
        .filter(|(_, a)| a.is_ipv4())
        .map(|(p, a)| (p.to_string(), a.port()))
        .collect();
    assert!(
        c.listeners().iter().all(|(p, a)| c.listeners().contains(&(
            *p,
            SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), a.port())
        ))),
        "every default listener is on IPv6 as well"
    );
    assert_eq!(
        ports,
        [
            ("smtp", 25),
            ("submission", 587),
            ("submissions", 465),
            ("imap", 143),
            ("imaps", 993),
            ("pop3", 110),
            ("pop3s", 995),
            ("http", 80),
            ("https", 443)
        ]
        .map(|(k, p)| (k.to_owned(), p))
    );
}

#[test]
fn full_file() {
    let text = r#"
hostname = "Mail.Example.ORG"
data_dir = "/var/lib/tern"

[listen]
smtp = ["0.0.0.0:25", "[::]:25"]
submission = []
submissions = ["127.0.0.1:465"]
imap = []
imaps = ["[::1]:993"]
pop3 = []
pop3s = []
http = ["127.0.0.1:8080"]
https = ["127.0.0.1:8443"]

[tls]
cert = "/etc/tern/cert.pem"
key = "/etc/tern/key.pem"

[store]
durability = "per-commit"
fsync_delay_ms = 5
journal_retention_days = 7

[limits]
max_message_size = 10_485_760
max_recipients = 50
max_connections = 200
max_connections_per_ip = 10
max_unauthenticated = 100
idle_timeout_secs = 600
login_timeout_secs = 30
max_auth_failures = 3
auth_failure_window_secs = 900
auth_exempt_networks = ["10.0.0.0/8"]

[smtp]
relay_networks = ["127.0.0.0/8", "::1", "192.168.1.0/24", "2001:db8::/32"]
max_errors = 5
data_timeout_secs = 300
max_line_length = 1000
recipient_delimiter = "+-"
"#;
    let c = Config::from_toml_str(text, "tern.toml").unwrap();
    assert_eq!(c.hostname, "mail.example.org");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/tern"));
    assert_eq!(
        c.listeners(),
        vec![
            (Protocol::Smtp, addr("0.0.0.0:25")),
            (Protocol::Smtp, addr("[::]:25")),
            (Protocol::Submissions, addr("127.0.0.1:465")),
            (Protocol::Imaps, addr("[::1]:993")),
            (Protocol::Http, addr("127.0.0.1:8080")),
            (Protocol::Https, addr("127.0.0.1:8443")),
        ]
    );
    assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/tern/cert.pem")));
    assert_eq!(c.tls.key, Some(PathBuf::from("/etc/tern/key.pem")));
    assert_eq!(c.store.durability, Durability::PerCommit);
    assert_eq!(c.store.fsync_delay_ms, 5);
    assert_eq!(c.store.journal_retention_days, 7);
    assert_eq!(
        c.limits,
        Limits {
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 50,
            max_connections: 200,
            max_connections_per_ip: 10,
            max_unauthenticated: 100,
            idle_timeout_secs: 600,
            login_timeout_secs: 30,
            max_auth_failures: 3,
            auth_failure_window_secs: 900,
            auth_exempt_networks: vec!["10.0.0.0/8".parse().unwrap()],
        }
    );
    let nets: Vec<String> = c
        .smtp
        .relay_networks
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        nets,
        ["127.0.0.0/8", "::1/128", "192.168.1.0/24", "2001:db8::/32"]
    );
    for (ip, relay) in [
        ("127.0.0.1", true),
        ("::ffff:127.0.0.1", true),
        ("::1", true),
        ("192.168.1.200", true),
        ("192.168.2.1", false),
        ("2001:db8:5::1", true),
        ("2001:db9::1", false),
    ] {
        assert_eq!(c.smtp.may_relay(ip.parse().unwrap()), relay, "{ip}");
    }
    assert_eq!(
        (
            c.smtp.max_errors,
            c.smtp.data_timeout_secs,
            c.smtp.max_line_length,
            c.smtp.recipient_delimiter.as_str()
        ),
        (5, 300, 1000, "+-")
    );
    let off = Config::from_toml_str("[store]\ndurability = \"off\"", "x").unwrap();
    assert_eq!(off.store.durability, Durability::Off);
}

#[test]
fn partial_listen_keeps_other_defaults() {
    let c = Config::from_toml_str("[listen]\nimap = [\"127.0.0.1:1143\"]", "t").unwrap();
    assert_eq!(c.listen.imap, vec![addr("127.0.0.1:1143")]);
    assert_eq!(c.listen.smtp, Listen::default().smtp);
}

#[test]
fn unknown_top_level_key() {
    let e = err("hostname = \"a.example\"\nhostnam = \"b\"\n");
    assert!(
        e.starts_with("tern.toml line 2: unknown key `hostnam` at the top level (expected one of `hostname`, `data_dir`, `listen`, `tls`, `store`, `limits`, `smtp`, `pop3`, `trace`, `inbound`, `spam`, `milter`, `virus`, `outbound`, `dns`, `jmap`)"),
        "{e}"
    );
    let e = err("\n\n[listn]\nsmtp = []");
    assert!(
        e.starts_with("tern.toml line 3: unknown key `listn` at the top level"),
        "{e}"
    );
}

#[test]
fn unknown_key_in_listen() {
    let e = err("# comment\n[listen]\nsmtpp = [\"0.0.0.0:25\"]\n");
    assert_eq!(
        e,
        "tern.toml line 3: unknown key `smtpp` in [listen] (expected one of `smtp`, `submission`, `submissions`, `imap`, `imaps`, `pop3`, `pop3s`, `http`, `https`)"
    );
    let e = err("listen = { imap = [], imapp = [] }");
    assert!(
        e.starts_with("tern.toml line 1: unknown key `imapp` in [listen]"),
        "{e}"
    );
    let e = err("[limits]\nmax_recipients = 5\n\n[limits.x]\n");
    assert!(
        e.starts_with("tern.toml line 4: unknown key `x` in [limits]"),
        "{e}"
    );
}

#[test]
fn bad_socket_address() {
    let e = err(
        "hostname = \"x.example\"\n\n[listen]\nsmtp = []\nimap = [\"0.0.0.0:143\", \"1.2.3.4\"]\n",
    );
    assert!(
        e.starts_with("tern.toml line 5: bad value for `listen.imap`: \"1.2.3.4\" has no port"),
        "{e}"
    );
    for (value, says) in [
        (
            "0.0.0.0:99999",
            "port 99999 is out of range: ports go from 1 to 65535",
        ),
        ("localhost:25", "\"localhost\" is not an IP address"),
        ("::1:25", "an IPv6 address goes in brackets"),
        ("0.0.0.0:smtp", "\"smtp\" is not a port number"),
    ] {
        let e = err(&format!("[listen]\nsmtp = [\"{value}\"]\n"));
        assert!(
            e.starts_with("tern.toml line 2: bad value for `listen.smtp`: ") && e.contains(says),
            "{value}: {e}"
        );
    }
    let e = err("[listen]\nimaps = [\n  \"0.0.0.0:993\",\n  \"localhost:993\",\n]\n");
    assert!(
        e.starts_with("tern.toml line 4: bad value for `listen.imaps`"),
        "{e}"
    );
}

#[test]
fn sizes_take_units() {
    let c = Config::from_toml_str(
        "[limits]\nmax_message_size = \"50M\"\n[smtp]\nmax_line_length = \"8k\"\n",
        "tern.toml",
    )
    .unwrap();
    assert_eq!(c.limits.max_message_size, 50 << 20);
    assert_eq!(c.smtp.max_line_length, 8 << 10);
    let e = err("[limits]\nmax_message_size = \"50 parsecs\"");
    assert!(
        e.starts_with(
            "tern.toml line 2: bad value for `limits.max_message_size`: invalid size unit"
        ),
        "{e}"
    );
}

#[test]
fn wrong_types() {
    let e = err("[listen]\nimap = \"0.0.0.0:143\"");
    assert_eq!(
        e,
        "tern.toml line 2: bad value for `listen.imap`: invalid type: string \"0.0.0.0:143\", expected an array"
    );
    let e = err("[limits]\nmax_recipients = \"lots\"");
    assert!(
        e.starts_with(
            "tern.toml line 2: bad value for `limits.max_recipients`: invalid type: string"
        ),
        "{e}"
    );
    let e = err("[limits]\nmax_recipients = -1");
    assert!(
        e.contains("`limits.max_recipients`") && e.contains("non-negative"),
        "{e}"
    );
    let e = err("listen = 3");
    assert_eq!(
        e,
        "tern.toml line 1: bad value for `listen`: invalid type: integer `3`, expected a table"
    );
    let e = err("hostname = 3");
    assert!(
        e.starts_with("tern.toml line 1: bad value for `hostname`"),
        "{e}"
    );
    let e = err("\n[store]\ndurability = \"sometimes\"");
    assert!(
        e.starts_with(
            "tern.toml line 3: bad value for `store.durability`: unknown value `sometimes`"
        ),
        "{e}"
    );
    let e = err("listen = []");
    assert_eq!(
        e,
        "tern.toml line 1: bad value for `listen`: invalid type: array, expected a table"
    );
    let e = err("[[listen]]\nsmtp = []");
    assert!(
        e.starts_with("tern.toml line 1: bad value for `listen`"),
        "{e}"
    );
}

#[test]
fn syntax_errors_have_lines() {
    let e = err("hostname = \"a.example\"\n[listen]\nsmtp = [\n[listen]");
    assert!(e.starts_with("tern.toml line 4: invalid TOML"), "{e}");
    let e = err("a =");
    assert_eq!(
        e,
        "tern.toml line 1: invalid TOML: syntax error at column 4"
    );
    let e = err("[listen]\nsmtp = []\n[listen]\n");
    assert!(
        e.starts_with("tern.toml line 3: invalid TOML") && e.contains("duplicate"),
        "{e}"
    );
}

#[test]
fn cert_without_key() {
    let e = err("[tls]\ncert = \"cert.pem\"\n");
    assert_eq!(
        e,
        "tern.toml line 2: `tls.cert` is set but `tls.key` is not; set both, or neither to use a generated self-signed certificate"
    );
    let e = err("[tls]\n\nkey = \"key.pem\"\n");
    assert!(
        e.starts_with("tern.toml line 3: `tls.key` is set but `tls.cert` is not"),
        "{e}"
    );
    let e = err("[tls]\ncert = \"\"\nkey = \"k\"");
    assert!(
        e.starts_with("tern.toml line 2: bad value for `tls.cert`"),
        "{e}"
    );
}

#[test]
fn hostname_is_validated() {
    for bad in [
        "",
        "mail_server",
        "-x.example",
        "a..b",
        "10.0.0.1",
        "[::1]",
        "x y",
    ] {
        let e = err(&format!("\nhostname = {bad:?}"));
        assert!(
            e.starts_with("tern.toml line 2: bad value for `hostname`: "),
            "{e}"
        );
    }
    let c = Config::from_toml_str("hostname = \"mail\"", "t").unwrap();
    assert_eq!(c.hostname, "mail");
}

#[test]
fn ephemeral_ports_never_collide() {
    let c = Config::from_toml_str(
        "[listen]\nsmtp = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]",
        "t",
    )
    .unwrap();
    assert_eq!(c.listen.smtp, c.listen.submission);
}

#[test]
fn limits_and_listeners_are_validated() {
    let e = err("[limits]\nmax_connections = 0");
    assert_eq!(
        e,
        "tern.toml line 2: bad value for `limits.max_connections`: must be at least 1"
    );
    let e = err("[listen]\nsmtp = [\"0.0.0.0:2525\"]\nsubmission = [\"0.0.0.0:2525\"]");
    assert_eq!(
        e,
        "tern.toml line 3: bad value for `listen.submission`: 0.0.0.0:2525 is also used by `listen.smtp`"
    );
    // A default collides with an explicit setting: the explicit key is named.
    let e = err("[listen]\nimap = [\"0.0.0.0:25\"]");
    assert!(e.starts_with("tern.toml line 2: bad value for `listen.imap`: 0.0.0.0:25 is also used by `listen.smtp`"), "{e}");
    let e = err("[listen]\nsmtp = [\"0.0.0.0:587\"]");
    assert_eq!(
        e,
        "tern.toml line 2: bad value for `listen.smtp`: 0.0.0.0:587 is also the default of `listen.submission`; set `listen.submission` to another address, or to [] to turn it off"
    );
    let e = err("[listen]\nimap = [\"0.0.0.0:1\", \"0.0.0.0:1\"]");
    assert!(e.ends_with("0.0.0.0:1 is listed twice"), "{e}");
}

#[test]
fn smtp_is_validated() {
    let e = err("[smtp]\nrelay_networks = [\"127.0.0.0/8\",\n  \"10.0.0.1/8\"]");
    assert_eq!(
        e,
        "tern.toml line 3: bad value for `smtp.relay_networks`: 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"
    );
    let e = err("[smtp]\nrelay_networks = [\"10.0.0.0/33\"]");
    assert!(
        e.starts_with("tern.toml line 2: bad value for `smtp.relay_networks`: \"10.0.0.0/33\": prefix length /33 is too long"),
        "{e}"
    );
    let e = err("[smtp]\nrelay_networks = [\"localhost\"]");
    assert!(
        e.starts_with("tern.toml line 2: bad value for `smtp.relay_networks`: \"localhost\" is not an IP address or network"),
        "{e}"
    );
    let e = err("[smtp]\nrelay_networks = \"10.0.0.0/8\"");
    assert!(e.contains("expected an array"), "{e}");
    let e = err("smtp = []");
    assert_eq!(
        e,
        "tern.toml line 1: bad value for `smtp`: invalid type: array, expected a table"
    );

    for key in ["max_errors", "data_timeout_secs"] {
        let e = err(&format!("[smtp]\n\n{key} = 0"));
        assert_eq!(
            e,
            format!("tern.toml line 3: bad value for `smtp.{key}`: must be at least 1")
        );
    }
    let e = err("[smtp]\nmax_line_length = 999");
    assert_eq!(
        e,
        "tern.toml line 2: bad value for `smtp.max_line_length`: must be at least 1000: RFC 5321 §4.5.3.1.6 requires accepting lines of 1000 octets"
    );
    let e = err("[smtp]\nmax_line_length = 0");
    assert!(e.contains("must be at least 1000"), "{e}");
    let e = err("[smtp]\nmax_errorss = 3");
    assert!(
        e.starts_with("tern.toml line 2: unknown key `max_errorss` in [smtp] (expected one of `relay_networks`, `max_errors`,"),
        "{e}"
    );

    for ok in ["", "+", "-", "+-_=", "+~"] {
        let text = format!("[smtp]\nrecipient_delimiter = {ok:?}");
        let c = Config::from_toml_str(&text, "t").unwrap();
        assert_eq!(c.smtp.recipient_delimiter, ok);
    }
    for (bad, problem) in [
        ("+-_=~", "5 characters; at most 4 are allowed"),
        ("x", "'x' cannot be a delimiter"),
        ("+1", "'1' cannot be a delimiter"),
        ("é", "'é' cannot be a delimiter"),
        ("@", "'@' cannot be a delimiter"),
        ("+ ", "' ' cannot be a delimiter"),
        ("\\t", "'\\t' cannot be a delimiter"),
        ("\\u007F", "'\\u{7f}' cannot be a delimiter"),
    ] {
        let e = err(&format!("[smtp]\nrecipient_delimiter = \"{bad}\""));
        assert!(
            e.starts_with(&format!(
                "tern.toml line 2: bad value for `smtp.recipient_delimiter`: {problem}"
            )),
            "{bad:?}: {e}"
        );
    }
    let e = err("[smtp]\nrecipient_delimiter = '+'\nmax_errors = -1");
    assert!(
        e.contains("`smtp.max_errors`") && e.contains("non-negative"),
        "{e}"
    );
}

#[test]
fn auth_limits_are_validated() {
    for key in ["max_auth_failures", "auth_failure_window_secs"] {
        let e = err(&format!("[limits]\n{key} = 0"));
        assert_eq!(
            e,
            format!("tern.toml line 2: bad value for `limits.{key}`: must be at least 1")
        );
    }
    let e = err("[limits]\nmax_auth_failures = -2");
    assert!(
        e.contains("`limits.max_auth_failures`") && e.contains("non-negative"),
        "{e}"
    );
    let e = err("[limits]\nmax_auth_failures = 4294967296");
    assert!(
        e.starts_with("tern.toml line 2: bad value for `limits.max_auth_failures`"),
        "{e}"
    );
}

#[test]
fn load_paths() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let e = Config::load(Some(&missing)).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("absent.toml"), "{e}");

    let file = dir.path().join("tern.toml");
    fs::write(&file, "[limits]\nmax_recipients = 7\nbogus = 1\n").unwrap();
    let e = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{} line 3: unknown key `bogus` in [limits]",
            file.display()
        )),
        "{e}"
    );

    fs::write(&file, "[limits]\nmax_recipients = 7\n").unwrap();
    assert_eq!(Config::load(Some(&file)).unwrap().limits.max_recipients, 7);
}

#[test]
fn protocols() {
    let tls: Vec<_> = Protocol::ALL
        .iter()
        .filter(|p| p.implicit_tls())
        .map(|p| p.key())
        .collect();
    assert_eq!(tls, ["submissions", "imaps", "pop3s", "https"]);
    assert_eq!(Protocol::Pop3s.to_string(), "pop3s");
    assert_eq!(Durability::PerCommit.to_string(), "per-commit");
}

const EXAMPLE: &str = include_str!("../../../../tern.example.toml");

#[test]
fn example_file_is_the_defaults() {
    let mut c = Config::from_toml_str(EXAMPLE, "tern.example.toml").unwrap();
    // The one deliberate difference: an example host name.
    assert_eq!(c.hostname, "mail.example.com");
    c.hostname = Config::default().hostname;
    assert_eq!(c, Config::default());
}

#[test]
fn example_file_mentions_every_setting() {
    // Every key of the full configuration (with the optional ones filled
    // in) must appear in the example, set or commented out, in its table.
    let mut full = Config::default();
    full.tls.cert = Some("c".into());
    full.tls.key = Some("k".into());
    let table = toml::Table::try_from(&full).unwrap();

    let mut mentioned: Vec<(String, String)> = Vec::new();
    let mut section = String::new();
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let setting = line.trim_start_matches('#').trim_start();
        if let Some((key, _)) = setting.split_once(" = ") {
            mentioned.push((section.clone(), key.trim().to_owned()));
        }
    }
    for (key, value) in &table {
        match value {
            toml::Value::Table(inner) => {
                assert!(EXAMPLE.contains(&format!("\n[{key}]\n")), "[{key}] missing");
                for sub in inner.keys() {
                    assert!(
                        mentioned.contains(&(key.clone(), sub.clone())),
                        "{key}.{sub} missing from tern.example.toml"
                    );
                }
            }
            _ => assert!(
                mentioned.contains(&(String::new(), key.clone())),
                "{key} missing from tern.example.toml"
            ),
        }
    }
}

#[test]
fn pop3_settings() {
    let c =
        Config::from_toml_str("[pop3]\ndeleted = \"trash\"\nlogin_delay_secs = 60", "t").unwrap();
    assert_eq!(c.pop3.deleted, Pop3Deleted::Trash);
    assert_eq!(c.pop3.login_delay_secs, 60);
    assert_eq!(Config::default().pop3.deleted, Pop3Deleted::Expunge);
    let e = err("[pop3]\ndeleted = \"shred\"");
    assert!(e.contains("line 2") && e.contains("pop3.deleted"), "{e}");
    let e = err("[pop3]\nmax_errors = 0");
    assert!(e.contains("pop3.max_errors"), "{e}");
}

#[test]
fn store_backend_settings() {
    let c = Config::from_toml_str(
        "[store]\nbackend = \"postgres\"\nurl = \"postgres://tern@db/tern\"\npool_size = 4\nblob_dir = \"/mnt/blobs\"",
        "t",
    )
    .unwrap();
    assert_eq!(c.store.backend, crate::StoreBackend::Postgres);
    assert_eq!(c.store.url.as_deref(), Some("postgres://tern@db/tern"));
    assert_eq!(c.store.pool_size, 4);
    assert_eq!(
        c.store.blob_dir.as_deref(),
        Some(std::path::Path::new("/mnt/blobs"))
    );
    // PostgreSQL without a database named is refused at load, not at the
    // first delivery (unless the environment names one).
    if std::env::var_os("TERN_STORE_URL").is_none() {
        let e = Config::from_toml_str("[store]\nbackend = \"postgres\"", "t").unwrap_err();
        assert!(e.to_string().contains("store.backend"), "{e}");
    }
    let e = Config::from_toml_str("[store]\nurl = \"postgres://x/y\"", "t").unwrap_err();
    assert!(e.to_string().contains("store.url"), "{e}");
    let e = Config::from_toml_str("[store]\npool_size = 1", "t").unwrap_err();
    assert!(e.to_string().contains("store.pool_size"), "{e}");
    // A CA file that cannot be read is named at load.
    let e = Config::from_toml_str("[store]\ntls_ca_file = \"/nonexistent/ca.pem\"", "t")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("store.tls_ca_file") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
}
