//! MTA-STS (RFC 8461): a domain's promise, published over DNS and HTTPS,
//! that its MX hosts speak TLS with valid certificates. Under `enforce`,
//! mail goes only to listed MX hosts over verified TLS (§5); `testing`
//! changes nothing but is reported (RFC 8460).
//!
//! The TXT record `_mta-sts.DOMAIN` (`v=STSv1; id=...`, §3.1) says a
//! policy exists and which version; the policy itself is fetched from
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (§3.3: a valid
//! certificate, status 200, `text/plain`, no redirects) and cached for its
//! `max_age`, refetched when the id changes. A cached policy outlives DNS
//! or HTTPS failures — that is what stops an attacker from stripping it.

use crate::dns::Resolver;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::RootCertStore;

/// The longest a policy is believed (RFC 8461 §3.2: max_age ≤ 31557600).
const MAX_AGE_LIMIT: u64 = 31_557_600;
/// How long fetching a policy may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest policy body read (RFC 8461 §3.3 suggests 64 KiB).
const MAX_POLICY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

/// A parsed policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsPolicy {
    pub mode: Mode,
    /// MX patterns: `mail.example.com` or `*.example.net`.
    pub mx: Vec<String>,
    pub max_age: u64,
}

impl StsPolicy {
    pub fn enforced(&self) -> bool {
        self.mode == Mode::Enforce
    }

    /// Whether `host` matches one of the policy's MX patterns (§4.1): a
    /// wildcard stands for exactly one leftmost label.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

/// Parses a policy body; `None` when it is not a valid STSv1 policy.
pub fn parse_policy(body: &str) -> Option<StsPolicy> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_string()),
            "mode" => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    _ => return None,
                })
            }
            "max_age" => {
                let v: u64 = value.parse().ok()?;
                max_age = Some(v.min(MAX_AGE_LIMIT));
            }
            "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
            // Unknown keys are ignored (§3.2, extensions).
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return None;
    }
    let mode = mode?;
    if mode != Mode::None && mx.is_empty() {
        return None;
    }
    Some(StsPolicy {
        mode,
        mx,
        max_age: max_age?,
    })
}

/// The id of a `_mta-sts` TXT record (`v=STSv1; id=20160831085700Z;`).
pub fn parse_txt(txt: &str) -> Option<String> {
    let mut fields = txt.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next()? != "v=STSv1" {
        return None;
    }
    fields
        .filter_map(|f| f.split_once('='))
        .find(|(k, _)| k.trim() == "id")
        .map(|(_, v)| v.trim().to_string())
        .filter(|id| {
            !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

struct Cached {
    id: String,
    policy: StsPolicy,
    expires: Instant,
}

/// Policies by domain, shared by all deliveries.
#[derive(Clone)]
pub struct Cache {
    roots: Arc<RootCertStore>,
    port: u16,
    policies: Arc<Mutex<HashMap<String, Arc<Cached>>>>,
}

impl Cache {
    pub fn new(roots: Arc<RootCertStore>, port: u16) -> Cache {
        Cache {
            roots,
            port,
            policies: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The domain's policy in force, if it has one.
    pub async fn policy(&self, resolver: &Resolver, domain: &str) -> Option<StsPolicy> {
        let domain = domain.to_ascii_lowercase();
        let cached = self
            .policies
            .lock()
            .ok()
            .and_then(|p| p.get(&domain).cloned())
            .filter(|c| c.expires > Instant::now());
        let id = match resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => {
                let ids: Vec<String> = records.iter().filter_map(|t| parse_txt(t)).collect();
                // Exactly one valid record (§3.1); none: no (new) policy.
                if ids.len() == 1 {
                    ids.into_iter().next()
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        let Some(id) = id else {
            return cached.map(|c| c.policy.clone());
        };
        if let Some(c) = cached.as_ref().filter(|c| c.id == id) {
            return Some(c.policy.clone());
        }
        match self.fetch(resolver, &domain).await {
            Ok(policy) => {
                let entry = Arc::new(Cached {
                    id,
                    policy: policy.clone(),
                    expires: Instant::now() + Duration::from_secs(policy.max_age),
                });
                if let Ok(mut p) = self.policies.lock() {
                    p.insert(domain, entry);
                }
                (policy.mode != Mode::None).then_some(policy)
            }
            Err(e) => {
                tracing::info!("outbound: MTA-STS policy of {domain}: {e}");
                cached.map(|c| c.policy.clone())
            }
        }
    }

    /// GET the policy over HTTPS with a verified certificate.
    async fn fetch(&self, resolver: &Resolver, domain: &str) -> Result<StsPolicy, String> {
        let host = format!("mta-sts.{domain}");
        let fetch = async {
            let addresses = resolver.addresses(&host).await.map_err(|e| e.to_string())?;
            let mut tcp = Err(format!("{host} has no address"));
            for ip in addresses {
                match tokio::net::TcpStream::connect((ip, self.port)).await {
                    Ok(s) => {
                        tcp = Ok(s);
                        break;
                    }
                    Err(e) => tcp = Err(format!("connecting to {host} [{ip}]: {e}")),
                }
            }
            let tcp = tcp?;
            let config = tern_core::tls::client_config_with((*self.roots).clone())
                .map_err(|e| e.to_string())?;
            let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let mut tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            let request = format!(
                "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tern\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
            );
            tls.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut response = Vec::new();
            let mut limited = (&mut tls).take((MAX_POLICY_BYTES + 16 * 1024) as u64);
            // A peer that closes without close_notify still sent its body.
            let _ = limited.read_to_end(&mut response).await;
            Ok::<Vec<u8>, String>(response)
        };
        let response = tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| format!("fetching from {host} took longer than {FETCH_TIMEOUT:?}"))??;
        let body = http_body(&response)?;
        let text = std::str::from_utf8(&body).map_err(|_| "the policy is not UTF-8".to_string())?;
        parse_policy(text).ok_or_else(|| "not a valid STSv1 policy".to_string())
    }
}

/// The body of an HTTP/1.1 response if it is `200` and `text/plain`
/// (RFC 8461 §3.3); chunked or length-delimited or up to the close.
pub fn http_body(response: &[u8]) -> Result<Vec<u8>, String> {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP header")?;
    let head = std::str::from_utf8(&response[..head_end]).map_err(|_| "HTTP header not text")?;
    let rest = &response[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split_ascii_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(format!("HTTP status {status:?}, not 200"));
    }
    let mut content_type = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.to_ascii_lowercase()),
            "content-length" => {
                length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?)
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let media = content_type.unwrap_or_default();
    if media.split(';').next().map(str::trim) != Some("text/plain") {
        return Err(format!("Content-Type {media:?}, not text/plain"));
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("body shorter than Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_POLICY_BYTES {
        return Err("policy larger than 64 KiB".into());
    }
    Ok(body)
}

fn dechunk(mut input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = input
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_text = std::str::from_utf8(&input[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        input = &input[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size > MAX_POLICY_BYTES || input.len() < size + 2 {
            return Err("truncated or oversized chunk".into());
        }
        out.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_rfc_8461_shows() {
        let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert!(p.enforced());
        assert_eq!(p.max_age, 604_800);
        assert!(p.allows("mail.example.com"));
        assert!(p.allows("MX1.example.net."));
        assert!(!p.allows("a.b.example.net"), "a wildcard is one label");
        assert!(!p.allows("example.net"));
        assert!(!p.allows("evil.example.com"));
        assert_eq!(
            parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n"),
            None
        );
        assert_eq!(
            parse_policy("version: STSv2\nmode: none\nmax_age: 1\n"),
            None
        );
        assert_eq!(parse_policy("mode: bogus\n"), None);
        let none = parse_policy("version: STSv1\nmode: none\nmax_age: 99999999999\n").unwrap();
        assert_eq!(none.max_age, MAX_AGE_LIMIT);
    }

    #[test]
    fn txt_records() {
        assert_eq!(
            parse_txt("v=STSv1; id=20160831085700Z;").as_deref(),
            Some("20160831085700Z")
        );
        assert_eq!(parse_txt("v=STSv1;id=abc"), Some("abc".into()));
        assert_eq!(parse_txt("v=spf1 -all"), None);
        assert_eq!(parse_txt("v=STSv1; id=has space"), None);
    }

    #[test]
    fn http_responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        assert_eq!(http_body(ok).unwrap(), b"hello");
        let chunked = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(http_body(chunked).unwrap(), b"abcde");
        assert!(http_body(b"HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n").is_err());
        assert!(http_body(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx").is_err());
        assert!(http_body(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n").is_err());
    }
}
