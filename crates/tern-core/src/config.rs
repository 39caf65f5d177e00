//! Tern's one configuration file, `tern.toml`.
//!
//! Every setting has a default, so an empty file (or none at all, when no path
//! was given) is a working configuration: all standard ports on every IPv4 and IPv6 address, data
//! in `./tern-data`, a self-signed certificate, and the machine's host name.
//! `tern.example.toml` at the top of the repository lists every setting with
//! its default and reason; a test below keeps the two in step.
//!
//! Mistakes are errors, never silently ignored: an unknown key, a value of the
//! wrong type or an invalid value stops the load with a message naming the
//! file, the line and the key, e.g.
//! `tern.toml line 5: bad value for `listen.imap`: invalid socket address syntax`.
//!
//! Relative paths (`data_dir`, `tls.cert`, `tls.key`) are relative to the
//! working directory of the server process, not to the configuration file.

mod inbound;
mod jmap;
mod milter;
mod outbound;
mod pop3;
mod spam;
mod store;
mod toml_keys;
mod virus;

pub use inbound::{Check, InboundConfig};
pub use jmap::JmapConfig;
pub use milter::{MilterConfig, MilterScope};
pub use outbound::{DnsConfig, OutboundConfig, RelayTls};
pub use pop3::{Pop3Config, Pop3Deleted};
pub use spam::{Points, SpamConfig};
pub use store::{Backend as StoreBackend, Durability, StoreConfig};
pub use virus::{OnFailure, VirusConfig};

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::address::parse_domain;
use crate::net::IpNetwork;
use toml_keys::KeyMap;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The server's own name: SMTP greeting and EHLO, `Received:` headers,
    /// the self-signed certificate. Default: the machine's host name.
    pub hostname: String,
    /// Where the store, the queue and generated TLS files live.
    pub data_dir: PathBuf,
    /// Addresses to listen on, per protocol.
    #[serde(deserialize_with = "table")]
    pub listen: Listen,
    /// Certificate and key; both or neither.
    #[serde(deserialize_with = "table")]
    pub tls: TlsConfig,
    /// How the store commits.
    #[serde(deserialize_with = "table")]
    pub store: StoreConfig,
    /// Bounds on what clients may ask of the server.
    #[serde(deserialize_with = "table")]
    pub limits: Limits,
    /// SMTP sessions: relaying, errors, DATA.
    #[serde(deserialize_with = "table")]
    pub smtp: SmtpConfig,
    /// POP3: deleted messages, login pacing.
    #[serde(deserialize_with = "table")]
    pub pop3: Pop3Config,
    /// Protocol traces of chosen accounts and client networks.
    #[serde(deserialize_with = "table")]
    pub trace: crate::trace::TraceConfig,
    /// What is checked about mail from other servers: SPF, DKIM, DMARC, ARC.
    #[serde(deserialize_with = "table")]
    pub inbound: InboundConfig,
    /// The spam filter: rules, block lists, Bayes, greylisting.
    #[serde(deserialize_with = "table")]
    pub spam: SpamConfig,
    /// External filters over the milter protocol.
    #[serde(deserialize_with = "table")]
    pub milter: MilterConfig,
    /// Scanning mail with clamd.
    #[serde(deserialize_with = "table")]
    pub virus: VirusConfig,
    /// How queued mail leaves: MX delivery, TLS policies, the smarthost.
    #[serde(deserialize_with = "table")]
    pub outbound: OutboundConfig,
    /// Which DNS servers answer MX, TLSA and TXT lookups.
    #[serde(deserialize_with = "table")]
    pub dns: DnsConfig,
    /// JMAP beyond answering requests: push to URLs users give.
    #[serde(deserialize_with = "table")]
    pub jmap: JmapConfig,
}

/// Listening addresses per protocol. An empty list turns that listener off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// SMTP from other servers (MTA), STARTTLS offered. Default `0.0.0.0:25` and `[::]:25`.
    pub smtp: Vec<SocketAddr>,
    /// Message submission, STARTTLS (RFC 6409). Default `0.0.0.0:587` and `[::]:587`.
    pub submission: Vec<SocketAddr>,
    /// Message submission over implicit TLS (RFC 8314). Default `0.0.0.0:465` and `[::]:465`.
    pub submissions: Vec<SocketAddr>,
    /// IMAP, STARTTLS. Default `0.0.0.0:143` and `[::]:143`.
    pub imap: Vec<SocketAddr>,
    /// IMAP over implicit TLS. Default `0.0.0.0:993` and `[::]:993`.
    pub imaps: Vec<SocketAddr>,
    /// POP3, STLS. Default `0.0.0.0:110` and `[::]:110`.
    pub pop3: Vec<SocketAddr>,
    /// POP3 over implicit TLS. Default `0.0.0.0:995` and `[::]:995`.
    pub pop3s: Vec<SocketAddr>,
    /// Plain HTTP (autoconfig, redirects). Default `0.0.0.0:80` and `[::]:80`.
    pub http: Vec<SocketAddr>,
    /// HTTPS: webmail, JMAP, ActiveSync, DAV, admin. Default `0.0.0.0:443` and `[::]:443`.
    pub https: Vec<SocketAddr>,
}

impl Listen {
    /// The addresses configured for `protocol`.
    pub fn addrs(&self, protocol: Protocol) -> &[SocketAddr] {
        match protocol {
            Protocol::Smtp => &self.smtp,
            Protocol::Submission => &self.submission,
            Protocol::Submissions => &self.submissions,
            Protocol::Imap => &self.imap,
            Protocol::Imaps => &self.imaps,
            Protocol::Pop3 => &self.pop3,
            Protocol::Pop3s => &self.pop3s,
            Protocol::Http => &self.http,
            Protocol::Https => &self.https,
        }
    }
}

impl Default for Listen {
    /// Every protocol on its standard port, on all IPv4 and all IPv6
    /// addresses (two sockets; a machine without IPv6 skips the second).
    fn default() -> Listen {
        let any = |p: Protocol| {
            vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, p.default_port())),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, p.default_port())),
            ]
        };
        Listen {
            smtp: any(Protocol::Smtp),
            submission: any(Protocol::Submission),
            submissions: any(Protocol::Submissions),
            imap: any(Protocol::Imap),
            imaps: any(Protocol::Imaps),
            pop3: any(Protocol::Pop3),
            pop3s: any(Protocol::Pop3s),
            http: any(Protocol::Http),
            https: any(Protocol::Https),
        }
    }
}

/// A kind of listener; displays as its key in `[listen]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// SMTP from other servers, port 25.
    Smtp,
    /// Submission with STARTTLS, port 587.
    Submission,
    /// Submission over implicit TLS, port 465.
    Submissions,
    /// IMAP with STARTTLS, port 143.
    Imap,
    /// IMAP over implicit TLS, port 993.
    Imaps,
    /// POP3 with STLS, port 110.
    Pop3,
    /// POP3 over implicit TLS, port 995.
    Pop3s,
    /// HTTP, port 80.
    Http,
    /// HTTPS, port 443.
    Https,
}

impl Protocol {
    /// Every protocol, in the order of `[listen]`.
    pub const ALL: [Protocol; 9] = [
        Protocol::Smtp,
        Protocol::Submission,
        Protocol::Submissions,
        Protocol::Imap,
        Protocol::Imaps,
        Protocol::Pop3,
        Protocol::Pop3s,
        Protocol::Http,
        Protocol::Https,
    ];

    /// The key in `[listen]`.
    pub fn key(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Submissions => "submissions",
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Pop3 => "pop3",
            Protocol::Pop3s => "pop3s",
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }

    /// Whether TLS starts with the connection (rather than by STARTTLS/STLS,
    /// or never, for HTTP).
    pub fn implicit_tls(&self) -> bool {
        matches!(
            self,
            Protocol::Submissions | Protocol::Imaps | Protocol::Pop3s | Protocol::Https
        )
    }

    /// The standard port (IANA service names registry; RFC 8314 for 465).
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Smtp => 25,
            Protocol::Submission => 587,
            Protocol::Submissions => 465,
            Protocol::Imap => 143,
            Protocol::Imaps => 993,
            Protocol::Pop3 => 110,
            Protocol::Pop3s => 995,
            Protocol::Http => 80,
            Protocol::Https => 443,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// `[tls]`: the certificate chain and private key, as PEM files. Both or
/// neither; with neither, a self-signed pair is generated under `data_dir`
/// (see [`crate::tls`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// Private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: Option<PathBuf>,
}

/// `[limits]`: bounds on what one client may ask; past a bound it gets a
/// protocol error and the server carries on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted, in bytes (SMTP SIZE, RFC 1870; IMAP APPEND);
    /// `"50M"` and the like are accepted too.
    #[serde(deserialize_with = "crate::size::bytes")]
    pub max_message_size: u64,
    /// Most recipients of one SMTP transaction.
    pub max_recipients: usize,
    /// Most simultaneous client connections, all protocols together.
    pub max_connections: usize,
    /// Most simultaneous connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Most simultaneous connections not logged in (SMTP from other servers
    /// counts here throughout); see [`crate::admission`].
    pub max_unauthenticated: usize,
    /// Seconds a connection may sit idle before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a connection that could log in (IMAP, POP3, submission) may
    /// sit idle before it has.
    pub login_timeout_secs: u64,
    /// Failed logins from one IP address (IPv6: one /64) within
    /// `auth_failure_window_secs` after which further attempts are refused
    /// until the window passes (see [`crate::auth_limit`]).
    pub max_auth_failures: u32,
    /// Seconds a failed login counts against its address.
    pub auth_failure_window_secs: u64,
    /// Client networks whose failed logins are never counted nor refused
    /// (a monitoring host, an office behind one address). Default empty.
    pub auth_exempt_networks: Vec<IpNetwork>,
}

impl Limits {
    /// 50 MiB: what the large providers accept, and room for a few
    /// base64-encoded attachments (which grow by a third).
    pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
    /// 100: RFC 5321 §4.5.3.1.8 requires servers to accept at least 100.
    pub const DEFAULT_MAX_RECIPIENTS: usize = 100;
    /// 1000: comfortably above a small organisation's devices, well below
    /// the file-descriptor limits of a default system.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
    /// 50, as Postfix allows: a household or office behind one NAT address
    /// keeps several IMAP connections per device, and large senders open many
    /// SMTP connections; a single abuser cannot take the whole pool.
    pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 50;
    /// 500, half the total: a flood of connections that never log in leaves
    /// the other half to logged-in users (and evicts only itself; see
    /// [`crate::admission`]).
    pub const DEFAULT_MAX_UNAUTHENTICATED: usize = 500;
    /// 60 s, as Dovecot's and Postfix's stress settings: a client logs in
    /// within seconds, and a connection that only holds a place is let go.
    pub const DEFAULT_LOGIN_TIMEOUT_SECS: u64 = 60;
    /// 300 s: RFC 5321 §4.5.3.2.7 asks SMTP servers to wait at least 5
    /// minutes; IMAP IDLE clients re-issue IDLE well within 29 minutes and
    /// the IMAP server may allow IDLE longer than this.
    pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
    /// 5: enough for a user fumbling a password on a new device, few enough
    /// that guessing gets nowhere; the account itself is never locked.
    pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 5;
    /// 300 s: five guesses per five minutes per address slows a dictionary
    /// attack to a crawl, while a locked-out user waits minutes, not hours.
    pub const DEFAULT_AUTH_FAILURE_WINDOW_SECS: u64 = 300;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_size: Limits::DEFAULT_MAX_MESSAGE_SIZE,
            max_recipients: Limits::DEFAULT_MAX_RECIPIENTS,
            max_connections: Limits::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: Limits::DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_unauthenticated: Limits::DEFAULT_MAX_UNAUTHENTICATED,
            idle_timeout_secs: Limits::DEFAULT_IDLE_TIMEOUT_SECS,
            login_timeout_secs: Limits::DEFAULT_LOGIN_TIMEOUT_SECS,
            max_auth_failures: Limits::DEFAULT_MAX_AUTH_FAILURES,
            auth_failure_window_secs: Limits::DEFAULT_AUTH_FAILURE_WINDOW_SECS,
            auth_exempt_networks: Vec::new(),
        }
    }
}

/// `[smtp]`: SMTP sessions, both from other servers and from users
/// submitting mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Client networks that may relay (send to other domains) without AUTH.
    /// Default empty, not even loopback.
    pub relay_networks: Vec<IpNetwork>,
    /// Protocol errors (bad or out-of-order commands) in one session before
    /// it is closed with `421`.
    pub max_errors: usize,
    /// Seconds to wait for each block of message data, and for the end of
    /// data, after `DATA`.
    pub data_timeout_secs: u64,
    /// Longest line accepted in message data, in bytes with its CRLF.
    #[serde(deserialize_with = "crate::size::bytes_usize")]
    pub max_line_length: usize,
    /// Characters that start an address extension, as in Postfix's
    /// `recipient_delimiter`: with `+`, mail to `joe+lists@example.com`
    /// goes to `joe@example.com`. Empty turns extensions off.
    pub recipient_delimiter: String,
    /// What a line of message data ended by a bare LF gets: `normalize`
    /// (taken as CRLF) or `reject` (554). A bare CR is always refused.
    pub bare_lf: BareLf,
    /// Whether submission checks the message's `From:` header as well as the
    /// envelope: every address in it must be one the user may send as.
    pub check_header_from: bool,
}

/// `smtp.bare_lf`: lines of message data ended by LF alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BareLf {
    /// Taken as if ended by CRLF, as Postfix 3.9's `normalize`: scripts
    /// that write Unix line ends are served. The data still ends only at
    /// CRLF "." CRLF, so SMTP smuggling cannot split a message.
    #[default]
    Normalize,
    /// The message is refused with 554 5.6.0 (RFC 5321 §2.3.8).
    Reject,
}

impl SmtpConfig {
    /// Empty, not even loopback: an open relay is the worst misconfiguration
    /// a mail server can have, so even local programs must authenticate
    /// unless their network is listed explicitly.
    pub const DEFAULT_RELAY_NETWORKS: &[IpNetwork] = &[];
    /// 10: a confused client gets several tries, a probing one is cut off.
    pub const DEFAULT_MAX_ERRORS: usize = 10;
    /// 600 s: RFC 5321 §4.5.3.2.6 gives the client 10 minutes for the DATA
    /// terminator, and so for each block; a server must wait at least that.
    pub const DEFAULT_DATA_TIMEOUT_SECS: u64 = 600;
    /// 64 KiB: some mailers write whole HTML bodies as one line, so the
    /// 1000 of RFC 5321 §4.5.3.1.6 (a limit on senders) is too tight, but a
    /// line must be bounded or it could take unbounded memory.
    pub const DEFAULT_MAX_LINE_LENGTH: usize = 64 * 1024;
    /// RFC 5321 §4.5.3.1.6: a receiver must accept text lines of 1000 octets,
    /// CRLF included.
    pub const MIN_MAX_LINE_LENGTH: usize = 1000;
    /// `+`: the convention of most servers and providers.
    pub const DEFAULT_RECIPIENT_DELIMITER: &str = "+";
    /// 4: a few alternatives (`+-`) are useful, a long list is a mistake.
    pub const MAX_RECIPIENT_DELIMITERS: usize = 4;
    /// Longest command line, in bytes with its CRLF; not configurable.
    /// RFC 5321 §4.5.3.1.4 says 512, but ESMTP parameters extend it
    /// (RFC 1869 §4.1.2), and clients send long `MAIL FROM` and `AUTH` lines.
    pub const MAX_COMMAND_LINE: usize = 4096;

    /// Whether a client at `ip` may relay without authenticating.
    pub fn may_relay(&self, ip: std::net::IpAddr) -> bool {
        self.relay_networks.iter().any(|net| net.contains(ip))
    }
}

impl Default for SmtpConfig {
    fn default() -> SmtpConfig {
        SmtpConfig {
            relay_networks: SmtpConfig::DEFAULT_RELAY_NETWORKS.to_vec(),
            max_errors: SmtpConfig::DEFAULT_MAX_ERRORS,
            data_timeout_secs: SmtpConfig::DEFAULT_DATA_TIMEOUT_SECS,
            max_line_length: SmtpConfig::DEFAULT_MAX_LINE_LENGTH,
            recipient_delimiter: SmtpConfig::DEFAULT_RECIPIENT_DELIMITER.to_owned(),
            bare_lf: BareLf::default(),
            check_header_from: true,
        }
    }
}

/// Deserialises a section from a TOML table only. serde's derived struct
/// visitor also accepts an array (fields by position), which would let
/// `listen = []` silently mean "all defaults".
fn table<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct TableOnly<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for TableOnly<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_map(TableOnly(PhantomData))
}

/// The default `data_dir`.
pub const DEFAULT_DATA_DIR: &str = "./tern-data";

impl Default for Config {
    fn default() -> Config {
        Config {
            hostname: machine_hostname(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: Listen::default(),
            tls: TlsConfig::default(),
            store: StoreConfig::default(),
            limits: Limits::default(),
            smtp: SmtpConfig::default(),
            pop3: Pop3Config::default(),
            trace: crate::trace::TraceConfig::default(),
            inbound: InboundConfig::default(),
            spam: SpamConfig::default(),
            virus: VirusConfig::default(),
            milter: MilterConfig::default(),
            outbound: OutboundConfig::default(),
            dns: DnsConfig::default(),
            jmap: JmapConfig::default(),
        }
    }
}

/// The machine's host name if it is a valid domain name, else `localhost`.
fn machine_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .find_map(|name| parse_domain(name.trim()).ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Why the configuration could not be loaded. Each message names the file,
/// the line where known, and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{origin} line {line}: invalid TOML: {message}")]
    Syntax {
        /// The file name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// What the TOML parser said.
        message: String,
    },
    /// A key Tern does not know, most often a typo.
    #[error("{origin} line {line}: unknown key `{key}` {place}{expected}")]
    UnknownKey {
        /// The file name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// The unknown key.
        key: String,
        /// `in [listen]`, or `at the top level`.
        place: String,
        /// ` (expected one of ...)`, or empty.
        expected: String,
    },
    /// A value of the wrong type, or one that is out of range or malformed.
    #[error("{}: bad value for `{key}`: {message}", at(origin, *line))]
    BadValue {
        /// The file name.
        origin: String,
        /// 1-based line, if the key appears in the file.
        line: Option<usize>,
        /// Dotted key path, e.g. `listen.imap`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Settings that are fine alone but not together, or an error whose key
    /// could not be located.
    #[error("{}: {message}", at(origin, *line))]
    Invalid {
        /// The file name.
        origin: String,
        /// 1-based line, if known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

fn at(origin: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{origin} line {line}"),
        None => origin.to_owned(),
    }
}

impl Config {
    /// The file [`Config::load`] reads when given no path.
    pub const DEFAULT_FILE: &str = "tern.toml";

    /// Loads `path`, or `tern.toml` in the working directory when `path` is
    /// `None`. A missing default file means all defaults; a missing file that
    /// was named explicitly is an error.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, explicit) = match path {
            Some(path) => (path, true),
            None => (Path::new(Config::DEFAULT_FILE), false),
        };
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if !explicit && e.kind() == io::ErrorKind::NotFound => {
                return Ok(Config::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        // Syntax first, so that what remains are errors about keys and values.
        if let Err(e) = text.parse::<toml::Table>() {
            let message = e.message().trim().replace('\n', "; ");
            let offset = e.span().map_or(0, |span| span.start);
            let message = if message.is_empty() {
                format!("syntax error at column {}", column_of(text, offset))
            } else {
                message
            };
            return Err(ConfigError::Syntax {
                origin: origin.to_owned(),
                line: line_of(text, offset),
                message,
            });
        }
        let keys = KeyMap::scan(text);
        let mut config: Config =
            toml::from_str(text).map_err(|e| explain(&e, text, origin, &keys))?;
        config.validate(text, origin, &keys)?;
        Ok(config)
    }

    /// Every configured listener, in `[listen]` order.
    pub fn listeners(&self) -> Vec<(Protocol, SocketAddr)> {
        Protocol::ALL
            .iter()
            .flat_map(|&p| self.listen.addrs(p).iter().map(move |&a| (p, a)))
            .collect()
    }

    /// Checks what the types alone cannot, normalising `hostname` to lowercase.
    fn validate(&mut self, text: &str, origin: &str, keys: &KeyMap) -> Result<(), ConfigError> {
        let line = |path: &[&str]| keys.find(path).map(|offset| line_of(text, offset));
        let bad = |path: &[&str], message: String| ConfigError::BadValue {
            origin: origin.to_owned(),
            line: line(path),
            key: path.join("."),
            message,
        };

        self.hostname = parse_domain(&self.hostname)
            .map_err(|e| bad(&["hostname"], e.problem().to_string()))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad(&["data_dir"], "must not be empty".to_owned()));
        }

        for (key, path) in [("cert", &self.tls.cert), ("key", &self.tls.key)] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(bad(&["tls", key], "must not be empty".to_owned()));
            }
        }
        let half = match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => Some(("cert", "key")),
            (None, Some(_)) => Some(("key", "cert")),
            _ => None,
        };
        if let Some((set, unset)) = half {
            return Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                line: line(&["tls", set]),
                message: format!(
                    "`tls.{set}` is set but `tls.{unset}` is not; set both, or neither to use a generated self-signed certificate"
                ),
            });
        }

        match self.store.backend {
            store::Backend::Postgres if self.store.postgres_url().is_none() => {
                return Err(bad(
                    &["store", "backend"],
                    "\"postgres\" needs `store.url` (or TERN_STORE_URL) naming the database"
                        .to_owned(),
                ));
            }
            store::Backend::Sqlite if self.store.url.is_some() => {
                return Err(bad(
                    &["store", "url"],
                    "is for backend = \"postgres\"; the SQLite store is the file in data_dir"
                        .to_owned(),
                ));
            }
            _ => {}
        }
        if let Some(path) = &self.store.tls_ca_file {
            if let Err(e) = std::fs::File::open(path) {
                return Err(bad(
                    &["store", "tls_ca_file"],
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        }
        if self.store.pool_size < 2 {
            return Err(bad(
                &["store", "pool_size"],
                "must be at least 2".to_owned(),
            ));
        }

        let limits = &self.limits;
        for (key, value) in [
            ("max_message_size", limits.max_message_size),
            ("max_recipients", limits.max_recipients as u64),
            ("max_connections", limits.max_connections as u64),
            (
                "max_connections_per_ip",
                limits.max_connections_per_ip as u64,
            ),
            ("max_unauthenticated", limits.max_unauthenticated as u64),
            ("idle_timeout_secs", limits.idle_timeout_secs),
            ("login_timeout_secs", limits.login_timeout_secs),
            ("max_auth_failures", u64::from(limits.max_auth_failures)),
            ("auth_failure_window_secs", limits.auth_failure_window_secs),
        ] {
            if value == 0 {
                return Err(bad(&["limits", key], "must be at least 1".to_owned()));
            }
        }

        let smtp = &self.smtp;
        for (key, value) in [
            ("max_errors", smtp.max_errors as u64),
            ("data_timeout_secs", smtp.data_timeout_secs),
        ] {
            if value == 0 {
                return Err(bad(&["smtp", key], "must be at least 1".to_owned()));
            }
        }
        if smtp.max_line_length < SmtpConfig::MIN_MAX_LINE_LENGTH {
            return Err(bad(
                &["smtp", "max_line_length"],
                format!(
                    "must be at least {}: RFC 5321 §4.5.3.1.6 requires accepting lines of 1000 octets",
                    SmtpConfig::MIN_MAX_LINE_LENGTH
                ),
            ));
        }
        check_delimiter(&smtp.recipient_delimiter)
            .map_err(|message| bad(&["smtp", "recipient_delimiter"], message))?;
        if self.pop3.max_errors == 0 {
            return Err(bad(
                &["pop3", "max_errors"],
                "must be at least 1".to_owned(),
            ));
        }

        // Two listeners on one address would fail at bind time with a less
        // helpful message; say which keys collide now.
        // Port 0 asks the system for a free port each time, so it never collides.
        let mut seen: HashMap<SocketAddr, Protocol> = HashMap::new();
        for (protocol, addr) in self.listeners() {
            if addr.port() == 0 {
                continue;
            }
            let Some(first) = seen.insert(addr, protocol) else {
                continue;
            };
            if first == protocol {
                return Err(bad(
                    &["listen", protocol.key()],
                    format!("{addr} is listed twice"),
                ));
            }
            // Blame the key the user wrote, not one left at its default.
            let written = |p: Protocol| keys.find(&["listen", p.key()]).is_some();
            return Err(if written(protocol) || !written(first) {
                bad(
                    &["listen", protocol.key()],
                    format!("{addr} is also used by `listen.{first}`"),
                )
            } else {
                bad(
                    &["listen", first.key()],
                    format!(
                        "{addr} is also the default of `listen.{protocol}`; set `listen.{protocol}` to another address, or to [] to turn it off"
                    ),
                )
            });
        }
        Ok(())
    }
}

/// Checks `smtp.recipient_delimiter`: a few characters that cannot be part
/// of a plain user name.
fn check_delimiter(delimiter: &str) -> Result<(), String> {
    let count = delimiter.chars().count();
    if count > SmtpConfig::MAX_RECIPIENT_DELIMITERS {
        return Err(format!(
            "{count} characters; at most {} are allowed (each one is a delimiter on its own)",
            SmtpConfig::MAX_RECIPIENT_DELIMITERS
        ));
    }
    match delimiter
        .chars()
        .find(|&c| c.is_alphanumeric() || c == '@' || c.is_whitespace() || c.is_control())
    {
        Some(c) => Err(format!(
            "{c:?} cannot be a delimiter: use characters such as \"+\" or \"-\" that are neither letters, digits, `@`, spaces nor control characters"
        )),
        None => Ok(()),
    }
}

/// Turns a toml deserialisation error into one naming the key and line.
fn explain(e: &toml::de::Error, text: &str, origin: &str, keys: &KeyMap) -> ConfigError {
    let message = e.message().trim();
    let Some(offset) = e.span().map(|span| span.start) else {
        return ConfigError::Invalid {
            origin: origin.to_owned(),
            line: None,
            message: message.to_owned(),
        };
    };
    let line = line_of(text, offset);

    // serde: "unknown field `smtpp`, expected `smtp` or `imap`" (or "one of ...")
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let place = match keys.key_at(offset) {
            Some([]) | Some([_]) | None => "at the top level".to_owned(),
            Some([parents @ .., _]) => format!("in [{}]", parents.join(".")),
        };
        let names = backticked(tail);
        let expected = if names.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!(" (expected one of {})", names.join(", "))
        };
        return ConfigError::UnknownKey {
            origin: origin.to_owned(),
            line,
            key: key.to_owned(),
            place,
            expected,
        };
    }

    let mut message = plain_words(message);
    if message.starts_with("invalid socket address syntax") {
        let value = e.span().and_then(|span| text.get(span)).unwrap_or_default();
        if let Some(problem) = socket_address_problem(value) {
            message = problem;
        }
    }
    match keys.value_at(offset).or_else(|| keys.key_at(offset)) {
        Some(path) => ConfigError::BadValue {
            origin: origin.to_owned(),
            line: Some(line),
            key: path.join("."),
            message,
        },
        None => ConfigError::Invalid {
            origin: origin.to_owned(),
            line: Some(line),
            message,
        },
    }
}

/// What is wrong with a listening address that did not parse, when it can
/// be said more precisely than "invalid socket address syntax": a port out
/// of range, a host name, IPv6 without brackets, no port.
fn socket_address_problem(value: &str) -> Option<String> {
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let example = "e.g. \"0.0.0.0:25\" or \"[::]:25\"";
    let Some((host, port)) = value.rsplit_once(':') else {
        return Some(format!("{value:?} has no port ({example})"));
    };
    if host.parse::<std::net::Ipv6Addr>().is_ok() || value.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some(format!(
            "{value:?}: an IPv6 address goes in brackets before the port, as \"[::1]:25\""
        ));
    }
    let host_ok = host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    if !host_ok {
        return Some(format!(
            "{host:?} is not an IP address; listen on an address of this machine, 0.0.0.0 (every IPv4 address) or [::] (every IPv6 address) ({example})"
        ));
    }
    match port.parse::<u64>() {
        Ok(p) if p > u64::from(u16::MAX) => Some(format!(
            "port {p} is out of range: ports go from 1 to 65535 (0 picks a free one)"
        )),
        Ok(_) => None,
        Err(_) => Some(format!("{port:?} is not a port number ({example})")),
    }
}

/// Rewrites serde's Rust-flavoured phrases in TOML terms.
fn plain_words(message: &str) -> String {
    let mut message = message
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table")
        .replace("unknown variant", "unknown value")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected usize", "expected a non-negative integer")
        .replace("expected u32", "expected a non-negative integer");
    if let Some(at) = message.find("expected struct ") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    if message == "invalid socket address syntax" {
        message.push_str(" (expected \"IP:port\", e.g. \"0.0.0.0:25\" or \"[::]:25\")");
    }
    message
}

/// The `backticked` words of a serde "expected ..." tail.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// 1-based column (in characters) of byte `offset` in `text`.
fn column_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    let line_start = text.as_bytes()[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&text.as_bytes()[line_start..end])
        .chars()
        .count()
        + 1
}

#[cfg(test)]
mod tests;
