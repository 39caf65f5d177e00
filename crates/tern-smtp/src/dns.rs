//! DNS for mail: the lookups outbound delivery needs (RFC 5321 §5 MX and
//! address records, TXT for MTA-STS) through hickory-resolver and its
//! cache, and — for DANE (RFC 7672 §2.1) — lookups that report whether
//! the configured validating resolver vouched for the answer (the AD bit,
//! RFC 4035 §3.2.3), which hickory's stub does not expose.
//!
//! Errors keep the distinction delivery needs: a name or record that does
//! not exist is a permanent answer; a server that failed or did not answer
//! is a reason to try again later.

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tern_core::config::DnsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one server may take to answer a secure lookup.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Cached secure answers live no longer than this, whatever their TTL.
const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist (permanent).
    #[error("{0}: no such domain (NXDOMAIN)")]
    NoSuchName(String),
    /// The name exists but has no records of the type (NODATA).
    #[error("{0}: no {1} records")]
    NoRecords(String, &'static str),
    /// SERVFAIL, timeouts, unreachable servers: try later.
    #[error("{0}: DNS lookup failed: {1}")]
    Temporary(String, String),
}

impl DnsError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, DnsError::Temporary(..))
    }
}

/// An answer and whether the validating resolver authenticated it.
#[derive(Debug, Clone)]
pub struct SecureAnswer {
    pub authentic: bool,
    pub records: Vec<RData>,
}

/// A secure answer (or its failure) and until when it may be used.
type CachedAnswer = (Instant, Result<SecureAnswer, DnsError>);

pub struct Resolver {
    inner: TokioResolver,
    /// Where secure lookups go: the configured servers, else those of
    /// /etc/resolv.conf.
    servers: Vec<SocketAddr>,
    secure_cache: Mutex<HashMap<(String, RecordType), CachedAnswer>>,
}

impl Resolver {
    /// A resolver asking `config.servers`, or the system's.
    pub fn new(config: &DnsConfig) -> Result<Resolver, DnsError> {
        let failed =
            |e: &dyn std::fmt::Display| DnsError::Temporary("resolver".into(), e.to_string());
        let (resolver_config, mut opts) = if config.servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf().map_err(|e| failed(&e))?
        } else {
            let name_servers = config
                .servers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            (
                ResolverConfig::from_name_servers(name_servers),
                ResolverOpts::default(),
            )
        };
        // Names are always absolute here: no search list, no ndots games.
        opts.ndots = 0;
        opts.edns0 = true;
        let servers: Vec<SocketAddr> = resolver_config
            .name_servers
            .iter()
            .filter_map(|ns| {
                ns.connections
                    .first()
                    .map(|c| SocketAddr::new(ns.ip, c.port))
            })
            .collect();
        let inner =
            TokioResolver::builder_with_config(resolver_config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(|e| failed(&e))?;
        Ok(Resolver {
            inner,
            servers,
            secure_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The underlying resolver with its cache, for the sender
    /// authentication checks (mail-auth asks through it).
    pub fn hickory(&self) -> TokioResolver {
        self.inner.clone()
    }

    /// The MX records of `domain`, `(preference, exchange)` with the
    /// exchange lower-case and without the trailing dot ("" for the root,
    /// a null MX). `NoRecords` when there are none (implicit MX applies).
    pub async fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>, DnsError> {
        let lookup = self
            .inner
            .mx_lookup(fqdn(domain))
            .await
            .map_err(|e| classify(domain, "MX", e))?;
        let found: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, host_name(&mx.exchange))),
                _ => None,
            })
            .collect();
        if found.is_empty() {
            return Err(DnsError::NoRecords(domain.to_string(), "MX"));
        }
        Ok(found)
    }

    /// The IPv4 and IPv6 addresses of `host`, IPv6 first when both exist
    /// (as most MTAs prefer).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let (v6, v4) = tokio::join!(
            self.inner.ipv6_lookup(fqdn(host)),
            self.inner.ipv4_lookup(fqdn(host))
        );
        let mut out = Vec::new();
        let mut errors = Vec::new();
        match v6 {
            Ok(l) => out.extend(l.answers().iter().filter_map(|r| match &r.data {
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })),
            Err(e) => errors.push(classify(host, "AAAA", e)),
        }
        match v4 {
            Ok(l) => out.extend(l.answers().iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })),
            Err(e) => errors.push(classify(host, "A", e)),
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // A failure to look up is worse news than absence: report it first.
        errors.sort_by_key(|e| !e.is_temporary());
        Err(errors
            .into_iter()
            .next()
            .unwrap_or_else(|| DnsError::NoRecords(host.to_string(), "A/AAAA")))
    }

    /// The TXT records at `name`, each one's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self
            .inner
            .txt_lookup(fqdn(name))
            .await
            .map_err(|e| classify(name, "TXT", e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Records of `record_type` at `name`, asked with the DO and AD bits
    /// set (RFC 6840 §5.7), with whether the resolver marked the answer
    /// authentic. Cached for the records' TTL.
    pub async fn secure(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<SecureAnswer, DnsError> {
        let key = (name.to_ascii_lowercase(), record_type);
        if let Ok(cache) = self.secure_cache.lock() {
            if let Some((until, answer)) = cache.get(&key) {
                if *until > Instant::now() {
                    return answer.clone();
                }
            }
        }
        let mut last = DnsError::Temporary(name.to_string(), "no DNS servers configured".into());
        for server in &self.servers {
            match secure_query(*server, name, record_type).await {
                Ok(response) => {
                    let (answer, ttl) = interpret(name, record_type, &response);
                    if let Ok(mut cache) = self.secure_cache.lock() {
                        if cache.len() > 10_000 {
                            cache.clear();
                        }
                        cache.insert(
                            key,
                            (Instant::now() + ttl.min(MAX_CACHE_TTL), answer.clone()),
                        );
                    }
                    return answer;
                }
                Err(e) => last = DnsError::Temporary(name.to_string(), e),
            }
        }
        Err(last)
    }
}

/// `name` as an absolute DNS name (a trailing dot: no search list).
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A host name as mail uses it: lower-case, no trailing dot.
fn host_name(name: &Name) -> String {
    let s = name.to_ascii().to_ascii_lowercase();
    s.strip_suffix('.').unwrap_or(&s).to_string()
}

/// hickory's error as the three outcomes delivery distinguishes.
fn classify(name: &str, what: &'static str, e: hickory_resolver::net::NetError) -> DnsError {
    if e.is_nx_domain() {
        DnsError::NoSuchName(name.to_string())
    } else if e.is_no_records_found() {
        DnsError::NoRecords(name.to_string(), what)
    } else {
        DnsError::Temporary(name.to_string(), e.to_string())
    }
}

/// One query to `server` over UDP, again over TCP if the answer was
/// truncated.
async fn secure_query(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
) -> Result<Message, String> {
    let qname = Name::from_ascii(fqdn(name)).map_err(|e| e.to_string())?;
    let id = random_id();
    let mut request = Message::new(id, MessageType::Query, OpCode::Query);
    request.metadata.recursion_desired = true;
    request.metadata.authentic_data = true;
    request.add_query(Query::query(qname, record_type));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(1232);
    request.set_edns(edns);
    let bytes = request.to_vec().map_err(|e| e.to_string())?;

    let udp = async {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = tokio::net::UdpSocket::bind(bind).await?;
        socket.connect(server).await?;
        socket.send(&bytes).await?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).await?;
            // Answers to other queries (or forgeries) are ignored.
            if let Ok(m) = Message::from_vec(&buf[..n]) {
                if m.metadata.id == id && m.metadata.message_type == MessageType::Response {
                    return Ok::<Message, std::io::Error>(m);
                }
            }
        }
    };
    let response = tokio::time::timeout(QUERY_TIMEOUT, udp)
        .await
        .map_err(|_| format!("{server}: no answer within {QUERY_TIMEOUT:?}"))?
        .map_err(|e| format!("{server}: {e}"))?;
    if !response.metadata.truncation {
        return Ok(response);
    }
    let tcp = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        let len = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(&bytes).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).await?;
        Message::from_vec(&buf).map_err(std::io::Error::other)
    };
    tokio::time::timeout(QUERY_TIMEOUT, tcp)
        .await
        .map_err(|_| format!("{server}: no TCP answer within {QUERY_TIMEOUT:?}"))?
        .map_err(|e| format!("{server}: {e}"))
}

/// The records of the asked type in `response` and how long to keep them.
fn interpret(
    name: &str,
    record_type: RecordType,
    response: &Message,
) -> (Result<SecureAnswer, DnsError>, Duration) {
    let authentic = response.metadata.authentic_data;
    let negative_ttl = Duration::from_secs(300);
    match response.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return (Err(DnsError::NoSuchName(name.to_string())), negative_ttl);
        }
        other => {
            return (
                Err(DnsError::Temporary(name.to_string(), other.to_string())),
                Duration::from_secs(30),
            );
        }
    }
    let records: Vec<_> = response
        .answers
        .iter()
        .filter(|r| r.record_type() == record_type)
        .collect();
    let ttl = records
        .iter()
        .map(|r| r.ttl)
        .min()
        .map_or(negative_ttl, |t| Duration::from_secs(u64::from(t)));
    (
        Ok(SecureAnswer {
            authentic,
            records: records.into_iter().map(|r| r.data.clone()).collect(),
        }),
        ttl,
    )
}

/// A query ID nobody on the path can guess (RFC 5452).
fn random_id() -> u16 {
    random_u64() as u16
}

/// 64 random bits from the standard library's per-process hash keys,
/// fresh per call: enough for query IDs and shuffling equal MX hosts.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Block-list lookups for the spam filter (RFC 5782): A records only; a
/// name that does not exist, or a failed lookup, lists nobody.
#[async_trait::async_trait]
impl tern_mail::spam::lists::DnsLookup for Resolver {
    async fn ipv4(&self, name: &str) -> Vec<std::net::Ipv4Addr> {
        match self.inner.ipv4_lookup(fqdn(name)).await {
            Ok(l) => l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}
