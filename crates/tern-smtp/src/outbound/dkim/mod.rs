//! DKIM signing of outgoing mail (RFC 6376; Ed25519 per RFC 8463 next to
//! RSA-SHA256, so verifiers that know only RSA still find a signature).
//!
//! The signing domain is the author's (the `From:` domain, so DMARC
//! aligns, RFC 7489 §3.1.1) when it is a local domain with keys, else the
//! envelope sender's. Signed fields are those a forwarder has no business
//! changing, with `From` listed twice so a second `From` cannot be added
//! without breaking the signature (RFC 6376 §8.15, "oversigning").
//! Relaxed/relaxed canonicalisation survives the re-wrapping of headers
//! common on the way.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tern_store::{DkimKey, Store};

mod system_rsa;

/// Header fields signed, `From` twice (oversigned).
pub const SIGNED_FIELDS: &[&str] = &[
    "From",
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Keys are read again after this long, so new ones apply without restart.
const KEY_CACHE: Duration = Duration::from_secs(60);

/// A key ready to sign: parsed once (RSA key parsing is not cheap), with
/// the signature template built.
pub enum Signer {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    /// RSA through the system's OpenSSL ([`system_rsa`]).
    SystemRsa(DkimSigner<system_rsa::RsaKey, Done>),
}

/// Which code makes RSA signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaEngine {
    /// The system's OpenSSL 3 when it is installed, else ring.
    SystemOpenSsl,
    /// Always ring.
    Ring,
}

impl RsaEngine {
    /// What `engine` will really use on this machine, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            RsaEngine::SystemOpenSsl if system_rsa::available() => {
                "the system's OpenSSL (libcrypto.so.3)"
            }
            RsaEngine::SystemOpenSsl => "ring (no libcrypto.so.3 found)",
            RsaEngine::Ring => "ring",
        }
    }
}

impl Signer {
    /// The signer for a stored key.
    pub fn new(key: &DkimKey, engine: RsaEngine) -> Result<Signer, String> {
        let e = |e: mail_auth::Error| e.to_string();
        match key.algorithm.as_str() {
            "ed25519" => Ok(Signer::Ed25519(template(
                Ed25519Key::from_pkcs8_der(&key.private_key).map_err(e)?,
                key,
            ))),
            "rsa" => {
                let der = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs1(
                    key.private_key.clone().into(),
                );
                let ring = RsaKey::<Sha256>::from_key_der(der).map_err(e)?;
                if engine == RsaEngine::SystemOpenSsl {
                    if let Some(system) = system_signer(key, &ring) {
                        return Ok(Signer::SystemRsa(template(system, key)));
                    }
                }
                Ok(Signer::Rsa(template(ring, key)))
            }
            other => Err(format!("unknown DKIM key algorithm {other:?}")),
        }
    }

    /// One `DKIM-Signature:` field (with its CRLF) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<String, String> {
        let signature = match self {
            Signer::Ed25519(s) => s.sign(message),
            Signer::Rsa(s) => s.sign(message),
            Signer::SystemRsa(s) => s.sign(message),
        };
        signature.map(|s| s.to_header()).map_err(|e| e.to_string())
    }
}

/// The system's OpenSSL for `key`, if it is there and signs exactly as
/// ring does: a probe is signed by both when the key is loaded, so a
/// library that misbehaves (another build, a provider configured to
/// refuse) leaves the mail signed by ring rather than unsigned or badly
/// signed.
fn system_signer(key: &DkimKey, ring: &RsaKey<Sha256>) -> Option<system_rsa::RsaKey> {
    let name = || format!("{}._domainkey.{}", key.selector, key.domain);
    let system = match system_rsa::RsaKey::from_pkcs1_der(&key.private_key)? {
        Ok(system) => system,
        Err(e) => {
            tracing::warn!(
                "DKIM: {}: the system's OpenSSL: {e}; signing with ring",
                name()
            );
            return None;
        }
    };
    const PROBE: &[u8] = b"from:Tern <probe@tern.invalid>\r\ndkim-signature:v=1; b=";
    match (
        SigningKey::sign(&system, PROBE),
        SigningKey::sign(ring, PROBE),
    ) {
        (Ok(a), Ok(b)) if a == b => Some(system),
        (Err(e), _) => {
            tracing::warn!(
                "DKIM: {}: the system's OpenSSL cannot sign ({e}); signing with ring",
                name()
            );
            None
        }
        _ => {
            tracing::warn!(
                "DKIM: {}: the system's OpenSSL signs differently from ring; signing with ring",
                name()
            );
            None
        }
    }
}

/// The signature template: domain, selector, the fields, relaxed/relaxed.
fn template<T: SigningKey>(signing_key: T, key: &DkimKey) -> DkimSigner<T, Done> {
    DkimSigner::from_key(signing_key)
        .domain(&key.domain)
        .selector(&key.selector)
        .headers(SIGNED_FIELDS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

/// One stored key, ready or not.
struct Loaded {
    name: String,
    signer: Result<Signer, String>,
}

type KeysRead = (Instant, Arc<Vec<Loaded>>);

pub struct Dkim {
    store: Arc<dyn Store>,
    rsa: RsaEngine,
    /// Signers by domain, with when their keys were read.
    keys: Mutex<HashMap<String, KeysRead>>,
}

impl Dkim {
    pub fn new(store: Arc<dyn Store>, rsa: RsaEngine) -> Dkim {
        Dkim {
            store,
            rsa,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// `DKIM-Signature:` fields to put in front of `message`, one per key
    /// of the signing domain; empty when neither the author's nor the
    /// sender's domain has keys.
    pub async fn sign(&self, message: &[u8], mail_from: &str) -> Vec<u8> {
        let mut candidates = Vec::new();
        if let Some(d) = author_domain(message) {
            candidates.push(d);
        }
        if let Some((_, d)) = mail_from.rsplit_once('@') {
            candidates.push(d.to_ascii_lowercase());
        }
        for domain in candidates {
            let keys = self.keys_of(&domain).await;
            if keys.is_empty() {
                continue;
            }
            // RSA signing is a millisecond of CPU: off the async workers,
            // so the sessions they drive are not held up meanwhile.
            let message = message.to_vec();
            let signed = tokio::task::spawn_blocking(move || sign_all(&keys, &message)).await;
            return signed.unwrap_or_else(|e| {
                tracing::warn!("outbound: DKIM signing stopped: {e}");
                Vec::new()
            });
        }
        Vec::new()
    }

    /// `message` with its signatures in front (unchanged without keys).
    pub async fn signed(&self, message: &[u8], mail_from: &str) -> Vec<u8> {
        let mut out = self.sign(message, mail_from).await;
        out.extend_from_slice(message);
        out
    }

    async fn keys_of(&self, domain: &str) -> Arc<Vec<Loaded>> {
        if let Ok(cache) = self.keys.lock() {
            if let Some((at, keys)) = cache.get(domain) {
                if at.elapsed() < KEY_CACHE {
                    return keys.clone();
                }
            }
        }
        let keys = match self.store.dkim_keys(domain).await {
            Ok(k) => Arc::new(
                k.iter()
                    .map(|key| Loaded {
                        name: format!("{}._domainkey.{}", key.selector, key.domain),
                        signer: Signer::new(key, self.rsa),
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!("outbound: reading DKIM keys of {domain}: {e}");
                Arc::new(Vec::new())
            }
        };
        if let Ok(mut cache) = self.keys.lock() {
            cache.insert(domain.to_string(), (Instant::now(), keys.clone()));
        }
        keys
    }
}

/// Every key's `DKIM-Signature:` field over `message`; a key that fails
/// is logged and left out.
fn sign_all(keys: &[Loaded], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for key in keys {
        match key
            .signer
            .as_ref()
            .map_err(String::clone)
            .and_then(|s| s.sign(message))
        {
            Ok(field) => out.extend_from_slice(field.as_bytes()),
            Err(e) => tracing::warn!("outbound: DKIM signing with {}: {e}", key.name),
        }
    }
    out
}

/// One `DKIM-Signature:` field (with its CRLF) over `message` with `key`.
pub fn sign_with(key: &DkimKey, message: &[u8]) -> Result<String, String> {
    Signer::new(key, RsaEngine::SystemOpenSsl)?.sign(message)
}

/// The domain of the first `From:` address, lower-case. Only the `From:`
/// field is handed to the parser: parsing the whole header section (every
/// `Received:` of a relayed message) cost more than the rest of finding
/// the keys.
fn author_domain(message: &[u8]) -> Option<String> {
    let (range, _) = tern_mail::fields::header_fields(message)
        .into_iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(b"From"))?;
    let mut field = message[range].to_vec();
    if !field.ends_with(b"\n") {
        field.extend_from_slice(b"\r\n");
    }
    field.extend_from_slice(b"\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&field)?;
    let from = parsed.from()?.first()?.address()?;
    from.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

/// A new key for `domain`: `(key to store, DNS TXT record value)`.
pub fn generate(
    domain: &str,
    selector: &str,
    algorithm: &str,
    now: i64,
) -> Result<(DkimKey, String), String> {
    use base64::Engine;
    use mail_auth::dkim::generate::DkimKeyPair;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (pair, k, public) = match algorithm {
        "ed25519" => {
            let pair = DkimKeyPair::generate_ed25519().map_err(|e| e.to_string())?;
            let public = b64(pair.public_key());
            (pair, "ed25519", public)
        }
        "rsa" => {
            let pair = DkimKeyPair::generate_rsa(2048).map_err(|e| e.to_string())?;
            // Published as SubjectPublicKeyInfo, which every verifier reads.
            let public = b64(&rsa_spki(pair.public_key()));
            (pair, "rsa", public)
        }
        other => return Err(format!("unknown algorithm {other:?} (ed25519 or rsa)")),
    };
    let (private_key, _) = pair.into_inner();
    Ok((
        DkimKey {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_string(),
            algorithm: k.to_string(),
            private_key,
            created_at: now,
        },
        format!("v=DKIM1; k={k}; p={public}"),
    ))
}

/// The DNS TXT record value publishing a stored key's public half.
pub fn public_record(key: &DkimKey) -> Result<String, String> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let e = |e: mail_auth::Error| e.to_string();
    match key.algorithm.as_str() {
        "ed25519" => {
            let k = Ed25519Key::from_pkcs8_der(&key.private_key).map_err(e)?;
            Ok(format!("v=DKIM1; k=ed25519; p={}", b64(&k.public_key())))
        }
        "rsa" => {
            let der = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs1(
                key.private_key.clone().into(),
            );
            let k = RsaKey::<Sha256>::from_key_der(der).map_err(e)?;
            Ok(format!(
                "v=DKIM1; k=rsa; p={}",
                b64(&rsa_spki(&k.public_key()))
            ))
        }
        other => Err(format!("unknown DKIM key algorithm {other:?}")),
    }
}

/// A TXT record value as zone-file text: quoted strings of at most 255
/// bytes (RFC 1035 §3.3.14), as long RSA keys need.
pub fn zone_text(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A PKCS#1 RSAPublicKey wrapped as SubjectPublicKeyInfo (RFC 5280
/// §4.1.2.7, RFC 3279 §2.3.1: rsaEncryption, NULL parameters).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0u8];
    bit_string.extend_from_slice(pkcs1);
    let mut inner = ALGORITHM.to_vec();
    inner.extend(der_tlv(0x03, &bit_string));
    der_tlv(0x30, &inner)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\nDate: Sun, 6 Dec 2026 09:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello\r\n";

    #[test]
    fn ed25519_signatures_name_the_domain_and_oversign_from() {
        let (key, txt) = generate("Example.org", "sel", "ed25519", 0).unwrap();
        assert!(txt.starts_with("v=DKIM1; k=ed25519; p="), "{txt}");
        assert_eq!(public_record(&key).unwrap(), txt);
        let field = sign_with(&key, MESSAGE).unwrap();
        assert!(field.starts_with("DKIM-Signature: "), "{field}");
        assert!(field.ends_with("\r\n"));
        let unfolded = field.replace("\r\n\t", "").replace("\r\n ", " ");
        assert!(unfolded.contains("d=example.org"), "{unfolded}");
        assert!(unfolded.contains("s=sel"), "{unfolded}");
        assert!(unfolded.contains("a=ed25519-sha256"), "{unfolded}");
        let h = unfolded
            .split("h=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        assert_eq!(h.to_ascii_lowercase().matches("from").count(), 2, "{h}");
    }

    #[test]
    fn rsa_keys_sign_and_publish_spki() {
        let (key, txt) = generate("example.org", "r", "rsa", 0).unwrap();
        assert!(
            txt.contains("k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"),
            "{txt}"
        );
        assert_eq!(public_record(&key).unwrap(), txt);
        let zone = zone_text(&txt);
        assert!(zone.starts_with('"') && zone.contains("\" \""), "{zone}");
        let field = sign_with(&key, MESSAGE).unwrap();
        assert!(field.contains("a=rsa-sha256"), "{field}");
    }

    #[test]
    fn the_system_openssl_signs_rsa_exactly_as_ring_does() {
        let (key, _) = generate("example.org", "r", "rsa", 0).unwrap();
        let Some(system) = system_rsa::RsaKey::from_pkcs1_der(&key.private_key) else {
            // Only a machine without OpenSSL 3 may skip this.
            let installed = [
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu",
                "/usr/lib64",
                "/usr/lib",
            ]
            .iter()
            .any(|dir| std::path::Path::new(dir).join("libcrypto.so.3").exists());
            assert!(
                !installed,
                "libcrypto.so.3 is installed but could not be used"
            );
            return;
        };
        let system = system.unwrap();
        let ring = RsaKey::<Sha256>::from_key_der(
            tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs1(key.private_key.clone().into()),
        )
        .unwrap();
        for data in [&b""[..], b"from:Alice <alice@example.org>\r\n", MESSAGE] {
            let by_openssl = SigningKey::sign(&system, data).unwrap();
            let by_ring = SigningKey::sign(&ring, data).unwrap();
            assert_eq!(by_openssl.len(), 256);
            assert_eq!(
                by_openssl, by_ring,
                "PKCS#1 v1.5 signatures are deterministic"
            );
        }
        // A key libcrypto cannot read is an error, not a crash.
        assert!(system_rsa::RsaKey::from_pkcs1_der(b"\x30\x03\x02\x01\x00")
            .unwrap()
            .is_err());
        // And the whole field, through the system's library, names RSA.
        let signer = Signer::new(&key, RsaEngine::SystemOpenSsl).unwrap();
        assert!(matches!(signer, Signer::SystemRsa(_)));
        assert!(signer.sign(MESSAGE).unwrap().contains("a=rsa-sha256"));
        assert!(matches!(
            Signer::new(&key, RsaEngine::Ring).unwrap(),
            Signer::Rsa(_)
        ));
    }

    #[test]
    fn the_author_domain_is_found() {
        assert_eq!(author_domain(MESSAGE).as_deref(), Some("example.org"));
        assert_eq!(author_domain(b"Subject: x\r\n\r\n"), None);
        let folded = b"Received: from a by b;\r\n\tMon, 7 Dec 2026 01:00:00 +0000\r\nfrom:\r\n \"Ann\" <ann@Mail.Example.NET>\r\nSubject: x\r\n\r\nFrom: body@not.this\r\n";
        assert_eq!(author_domain(folded).as_deref(), Some("mail.example.net"));
        assert_eq!(
            author_domain(b"From: <a@last.example>").as_deref(),
            Some("last.example")
        );
        assert_eq!(
            author_domain(b"Subject: x\r\n\r\nFrom: a@body.example\r\n"),
            None
        );
    }
}
