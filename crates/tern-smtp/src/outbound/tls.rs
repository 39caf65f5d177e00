//! TLS to MX hosts: how a certificate is judged under each policy.
//!
//! - **Opportunistic** (RFC 7435; the default, as in Postfix's `may`):
//!   any certificate is accepted, since refusing would only push the mail
//!   to plaintext, but whether it was valid for the host is checked and
//!   recorded.
//! - **Verified** (MTA-STS `enforce`, RFC 8461 §4.2; REQUIRETLS, RFC 8689
//!   §4.2.1): a certificate chaining to a trusted root, valid for the MX
//!   host's name, or no delivery.
//! - **DANE** (RFC 7672 §3): the certificate matches a DNSSEC-signed TLSA
//!   record — DANE-EE(3) by the leaf itself, names and dates not checked
//!   (§3.1.1); DANE-TA(2) by a certificate of the presented chain that is
//!   then the trust anchor for the leaf, names checked (§3.1.2). PKIX
//!   usages (0, 1) are unusable for SMTP (§3.1.3) and ignored.

use std::sync::{Arc, Mutex};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Tlsa {
    /// Usable for SMTP: DANE-TA or DANE-EE, a known selector and matching
    /// type (RFC 7672 §3.1.3, RFC 7671 §4).
    pub fn is_usable(&self) -> bool {
        matches!(self.usage, 2 | 3) && self.selector <= 1 && self.matching <= 2
    }

    /// Whether `cert` is what this record names.
    fn matches(&self, cert: &[u8]) -> bool {
        let selected: &[u8] = match self.selector {
            0 => cert,
            1 => match subject_public_key_info(cert) {
                Some(spki) => spki,
                None => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => sha256(selected) == self.data,
            2 => sha512(selected) == self.data,
            _ => false,
        }
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn sha512(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha512::digest(data).to_vec()
}

/// How the certificate of one session was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Valid for the name under the policy.
    Trusted,
    /// Accepted opportunistically though invalid: why.
    Untrusted(String),
}

/// Where the judgement of one handshake is left.
pub type JudgementCell = Arc<Mutex<Option<Judgement>>>;

/// What a connection's TLS must satisfy.
#[derive(Debug, Clone)]
pub enum Policy {
    Opportunistic,
    Verified,
    Dane(Vec<Tlsa>),
}

/// A client configuration judging the certificate under `policy` for
/// `host`; the judgement of the handshake lands in the returned cell.
pub fn client_config(
    roots: Arc<RootCertStore>,
    policy: Policy,
    host: &str,
) -> Result<(Arc<ClientConfig>, JudgementCell), Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| Error::General(e.to_string()))?;
    let judgement = Arc::new(Mutex::new(None));
    let verifier = Arc::new(Judge {
        webpki,
        provider: provider.clone(),
        policy,
        host: host.to_string(),
        judgement: judgement.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((Arc::new(config), judgement))
}

#[derive(Debug)]
struct Judge {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    policy: Policy,
    host: String,
    judgement: Arc<Mutex<Option<Judgement>>>,
}

impl Judge {
    fn record(&self, j: Judgement) {
        if let Ok(mut cell) = self.judgement.lock() {
            *cell = Some(j);
        }
    }

    fn dane(
        &self,
        records: &[Tlsa],
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), String> {
        let usable: Vec<&Tlsa> = records.iter().filter(|r| r.is_usable()).collect();
        if usable
            .iter()
            .any(|r| r.usage == 3 && r.matches(end_entity.as_ref()))
        {
            return Ok(());
        }
        // DANE-TA: a certificate of the chain the server sent is the
        // anchor; the leaf must chain to it and carry the host's name.
        for anchor in intermediates {
            if !usable
                .iter()
                .any(|r| r.usage == 2 && r.matches(anchor.as_ref()))
            {
                continue;
            }
            let mut roots = RootCertStore::empty();
            if roots.add(anchor.clone()).is_err() {
                continue;
            }
            let Ok(verifier) =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
            else {
                continue;
            };
            if verifier
                .verify_server_cert(end_entity, intermediates, server_name, &[], now)
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(format!(
            "no TLSA record of {} matches the certificate",
            self.host
        ))
    }
}

impl ServerCertVerifier for Judge {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match &self.policy {
            Policy::Dane(records) => {
                match self.dane(records, end_entity, intermediates, server_name, now) {
                    Ok(()) => {
                        self.record(Judgement::Trusted);
                        Ok(ServerCertVerified::assertion())
                    }
                    Err(why) => {
                        self.record(Judgement::Untrusted(why.clone()));
                        Err(Error::General(why))
                    }
                }
            }
            policy => match self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(v) => {
                    self.record(Judgement::Trusted);
                    Ok(v)
                }
                Err(e) => {
                    self.record(Judgement::Untrusted(e.to_string()));
                    if matches!(policy, Policy::Opportunistic) {
                        Ok(ServerCertVerified::assertion())
                    } else {
                        Err(e)
                    }
                }
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The DER of a certificate's `subjectPublicKeyInfo` (RFC 5280 §4.1),
/// found by walking the outer structure; `None` when the bytes are not a
/// well-formed certificate.
pub fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    // Certificate ::= SEQUENCE { tbsCertificate, ... }
    let (certificate, _) = der_element(cert, 0x30)?;
    let (tbs, _) = der_element(der_contents(certificate)?, 0x30)?;
    let mut rest = der_contents(tbs)?;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = der_element(rest, 0xa0)?.1;
    }
    // serialNumber, signature, issuer, validity, subject.
    for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
        rest = der_element(rest, tag)?.1;
    }
    der_element(rest, 0x30).map(|(spki, _)| spki)
}

/// The first element of `input` if it has `tag`: (the whole element,
/// what follows it).
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    if end > input.len() {
        return None;
    }
    Some((&input[..end], &input[end..]))
}

/// The contents of one element (without tag and length).
fn der_contents(element: &[u8]) -> Option<&[u8]> {
    let first = *element.get(1)?;
    let header = if first < 0x80 {
        2
    } else {
        2 + (first & 0x7f) as usize
    };
    element.get(header..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_is_found_in_a_real_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let spki = subject_public_key_info(cert.der()).expect("spki");
        use rcgen::PublicKeyData;
        assert_eq!(spki, key.subject_public_key_info().as_slice());
    }

    #[test]
    fn garbage_has_no_spki() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01",
        ] {
            assert_eq!(subject_public_key_info(bad), None);
        }
    }

    #[test]
    fn tlsa_matching_types() {
        let cert = b"certificate bytes";
        let sha256 = sha256(cert);
        let sha512 = sha512(cert);
        let tlsa = |matching, data: &[u8]| Tlsa {
            usage: 3,
            selector: 0,
            matching,
            data: data.to_vec(),
        };
        assert!(tlsa(0, cert).matches(cert));
        assert!(tlsa(1, &sha256).matches(cert));
        assert!(tlsa(2, &sha512).matches(cert));
        assert!(!tlsa(1, &sha512).matches(cert));
        assert!(!Tlsa {
            usage: 1,
            ..tlsa(1, &sha256)
        }
        .is_usable());
    }
}
