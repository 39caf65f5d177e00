//! The server's TLS configuration, shared by every implicit-TLS listener and
//! every STARTTLS/STLS upgrade.
//!
//! With `[tls] cert` and `key` set, the certificate chain and private key are
//! read from those PEM files (the key may be PKCS#8, PKCS#1 or SEC1). Without
//! them, Tern uses `<data_dir>/tls/cert.pem` and `key.pem`, generating a
//! self-signed certificate for the host name, `localhost`, the loopback
//! addresses and the IP addresses the listeners are configured on, on first
//! start, and reusing it afterwards, so that a fresh install speaks TLS at
//! once. Every start logs the certificate's SHA-256 fingerprint, so a user
//! can compare it with what their client shows before trusting it.
//! Clients will not trust that certificate; it is a starting point, not a
//! substitute for a real one. Delete both files to generate a new pair (for
//! example after changing `hostname`).
//!
//! The crypto provider is always `ring`, chosen explicitly rather than through
//! the process-wide default so that the result does not depend on which other
//! crates enabled which rustls features. Protocol versions are rustls' safe
//! defaults (TLS 1.2 and 1.3); clients are not asked for certificates.
//!
//! This module never overwrites an existing key file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Directory under `data_dir` holding the generated certificate and key.
pub const GENERATED_DIR: &str = "tls";
/// File name of the generated certificate (PEM).
pub const GENERATED_CERT: &str = "cert.pem";
/// File name of the generated private key (PEM, PKCS#8, mode 0600).
pub const GENERATED_KEY: &str = "key.pem";

/// Failure to set up TLS; every variant names the file or step involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("reading TLS {what} file {}: {source}", path.display())]
    Read {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid PEM.
    #[error("parsing PEM in TLS {what} file {}: {source}", path.display())]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM parser reported.
        #[source]
        source: io::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("no certificate found in {} (expected a PEM \"BEGIN CERTIFICATE\" block)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error(
        "no private key found in {} (expected a PEM PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key)",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// Only one of the generated pair exists; refusing to guess.
    #[error(
        "found {} but not {}; restore the missing file, or remove the other to generate a new self-signed pair",
        present.display(),
        missing.display()
    )]
    IncompletePair {
        /// The file that exists.
        present: PathBuf,
        /// The file that does not.
        missing: PathBuf,
    },
    /// rcgen failed to make the self-signed certificate.
    #[error("generating a self-signed certificate for {hostname}: {source}")]
    Generate {
        /// The host name the certificate was for.
        hostname: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// Writing the generated certificate or key (or its directory) failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// rustls refused the certificate and key (e.g. they do not match).
    #[error("building the TLS configuration from {} and {}: {source}", cert.display(), key.display())]
    Rustls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },
}

/// Builds the server TLS configuration described in the module documentation.
/// `ips` are the addresses a generated certificate names beside the host
/// name (the listeners' specific addresses).
pub fn server_config(
    cfg: &TlsConfig,
    hostname: &str,
    ips: &[std::net::IpAddr],
    data_dir: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (&cfg.cert, &cfg.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        // The configuration loader refuses one without the other; treat a
        // hand-built half-configuration like none.
        _ => ensure_self_signed(hostname, ips, data_dir)?,
    };
    let certs = load_certs(&cert_path)?;
    tracing::info!(
        cert = %cert_path.display(),
        "TLS certificate SHA-256 fingerprint {}",
        fingerprint(&certs[0])
    );
    let key = load_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rustls_err = |source| TlsError::Rustls {
        cert: cert_path.clone(),
        key: key_path.clone(),
        source,
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rustls_err)?;
    Ok(Arc::new(config))
}

/// Where Debian (and most Linux systems) keep the trusted roots, as one PEM
/// bundle; `SSL_CERT_FILE` names another, as OpenSSL reads it.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS configuration for Tern as a client (outbound SMTP): the system's
/// trusted roots (or the PEM file in `SSL_CERT_FILE`), checked certificates,
/// no client certificate. Roots rustls cannot use are skipped.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_with(system_roots()?)
}

/// The system's trusted roots (or those in the PEM file `SSL_CERT_FILE`
/// names); roots rustls cannot use are skipped.
pub fn system_roots() -> Result<rustls::RootCertStore, TlsError> {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_ROOTS));
    let mut roots = rustls::RootCertStore::empty();
    let (added, _skipped) = roots.add_parsable_certificates(load_certs(&path)?);
    if added == 0 {
        return Err(TlsError::NoCertificate { path });
    }
    Ok(roots)
}

/// A client configuration trusting exactly `roots` (tests trust a
/// self-signed certificate this way).
pub fn client_config_with(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The SHA-256 fingerprint of a certificate as clients show it:
/// upper-case hex pairs joined by colons.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads every certificate in the PEM file at `path` (leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let what = "certificate";
    let pem = fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what,
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "private key";
    let pem = fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Pem {
            what,
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_owned(),
        })
}

/// Returns the generated certificate and key paths under `data_dir`, creating
/// a self-signed pair first if neither exists.
fn ensure_self_signed(
    hostname: &str,
    ips: &[std::net::IpAddr],
    data_dir: &Path,
) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join(GENERATED_DIR);
    let cert_path = dir.join(GENERATED_CERT);
    let key_path = dir.join(GENERATED_KEY);
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => return Ok((cert_path, key_path)),
        (true, false) => {
            return Err(TlsError::IncompletePair {
                present: cert_path,
                missing: key_path,
            })
        }
        (false, true) => {
            return Err(TlsError::IncompletePair {
                present: key_path,
                missing: cert_path,
            })
        }
        (false, false) => {}
    }

    let mut names = vec![hostname.to_owned()];
    if hostname != "localhost" {
        names.push("localhost".to_owned());
    }
    let generate_err = |source| TlsError::Generate {
        hostname: hostname.to_owned(),
        source,
    };
    let mut params = rcgen::CertificateParams::new(names).map_err(generate_err)?;
    // Clients told to connect to an IP address check it against the
    // certificate's IP names.
    let mut addresses: Vec<std::net::IpAddr> = vec![
        std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::Ipv6Addr::LOCALHOST.into(),
    ];
    for ip in ips {
        if !ip.is_unspecified() && !addresses.contains(ip) {
            addresses.push(*ip);
        }
    }
    params
        .subject_alt_names
        .extend(addresses.into_iter().map(rcgen::SanType::IpAddress));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let key_pair = rcgen::KeyPair::generate().map_err(generate_err)?;
    let cert = params.self_signed(&key_pair).map_err(generate_err)?;

    create_private_dir(&dir)?;
    // The key goes first and the certificate last: a crash in between leaves
    // a lone key, which the next start reports instead of silently replacing.
    write_new_file(&key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(
        cert = %cert_path.display(),
        hostname,
        "generated a self-signed TLS certificate; clients will not trust it until you configure [tls] cert and key"
    );
    Ok((cert_path, key_path))
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Creates `path` (failing if it exists: never overwrite a key), writes
/// `contents` and syncs it, so that the pair survives a crash right after start.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let write = || -> io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    /// The system's roots load (where the system has the bundle), and a
    /// file without certificates is an error, not an empty trust store.
    #[test]
    fn client_config_from_system_roots() {
        if std::path::Path::new(super::SYSTEM_ROOTS).exists()
            && std::env::var_os("SSL_CERT_FILE").is_none()
        {
            assert!(super::client_config().is_ok());
        }
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("none.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert!(super::load_certs(&empty).is_err());
    }

    use super::*;

    fn none() -> TlsConfig {
        TlsConfig {
            cert: None,
            key: None,
        }
    }

    #[test]
    fn generates_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        server_config(&none(), "mail.example.com", &[], &data).unwrap();
        let cert_path = data.join("tls/cert.pem");
        let key_path = data.join("tls/key.pem");
        let first = fs::read(&cert_path).unwrap();
        assert!(String::from_utf8_lossy(&first).contains("BEGIN CERTIFICATE"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        server_config(&none(), "mail.example.com", &[], &data).unwrap();
        assert_eq!(fs::read(&cert_path).unwrap(), first);

        // The generated pair also loads as an explicitly configured one.
        let explicit = TlsConfig {
            cert: Some(cert_path),
            key: Some(key_path),
        };
        server_config(&explicit, "ignored", &[], Path::new("/nonexistent")).unwrap();
    }

    #[test]
    fn the_generated_certificate_names_loopback_and_the_listening_ips() {
        let dir = tempfile::tempdir().unwrap();
        let ips = ["192.0.2.7".parse().unwrap(), "0.0.0.0".parse().unwrap()];
        server_config(&none(), "mail.example.com", &ips, dir.path()).unwrap();
        let certs = load_certs(&dir.path().join("tls/cert.pem")).unwrap();
        let der = certs[0].as_ref();
        // An iPAddress subjectAltName is [7] IMPLICIT OCTET STRING: 0x87, length, bytes.
        let has_ip = |ip: &[u8]| {
            let mut needle = vec![0x87, ip.len() as u8];
            needle.extend_from_slice(ip);
            der.windows(needle.len()).any(|w| w == needle.as_slice())
        };
        assert!(has_ip(&[192, 0, 2, 7]), "the configured address");
        assert!(has_ip(&[127, 0, 0, 1]), "IPv4 loopback");
        assert!(
            has_ip(&std::net::Ipv6Addr::LOCALHOST.octets()),
            "IPv6 loopback"
        );
        assert!(!has_ip(&[0, 0, 0, 0]), "never the unspecified address");
        let fp = fingerprint(&certs[0]);
        assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
        assert!(fp.split(':').all(|pair| pair.len() == 2
            && pair
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
    }

    #[test]
    fn lone_generated_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        server_config(&none(), "localhost", &[], dir.path()).unwrap();
        fs::remove_file(dir.path().join("tls/cert.pem")).unwrap();
        let err = server_config(&none(), "localhost", &[], dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::IncompletePair { .. }), "{err}");
        assert!(err.to_string().contains("key.pem"), "{err}");
    }

    #[test]
    fn missing_cert_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsConfig {
            cert: Some(dir.path().join("nope.pem")),
            key: Some(dir.path().join("key.pem")),
        };
        let err = server_config(&cfg, "localhost", &[], dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("certificate"), "{msg}");
        assert!(msg.contains("nope.pem"), "{msg}");
    }

    #[test]
    fn empty_files_say_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        server_config(&none(), "localhost", &[], dir.path()).unwrap();
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "not pem at all\n").unwrap();
        let good_cert = dir.path().join("tls/cert.pem");
        let good_key = dir.path().join("tls/key.pem");

        let cfg = TlsConfig {
            cert: Some(empty.clone()),
            key: Some(good_key.clone()),
        };
        let err = server_config(&cfg, "localhost", &[], dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("empty.pem"));

        // A certificate file is not a key file.
        let cfg = TlsConfig {
            cert: Some(good_cert.clone()),
            key: Some(good_cert),
        };
        let err = server_config(&cfg, "localhost", &[], dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        assert!(err.to_string().contains("cert.pem"));
    }

    #[test]
    fn mismatched_key_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        server_config(&none(), "localhost", &[], a.path()).unwrap();
        server_config(&none(), "localhost", &[], b.path()).unwrap();
        let cfg = TlsConfig {
            cert: Some(a.path().join("tls/cert.pem")),
            key: Some(b.path().join("tls/key.pem")),
        };
        let err = server_config(&cfg, "localhost", &[], a.path()).unwrap_err();
        assert!(matches!(err, TlsError::Rustls { .. }), "{err}");
    }

    #[test]
    fn loads_pkcs1_and_sec1_keys() {
        // load_key dispatches on the PEM label; the body is a placeholder
        // (rustls checks the key itself later, in server_config).
        let dir = tempfile::tempdir().unwrap();
        for (label, name) in [("RSA PRIVATE KEY", "rsa.pem"), ("EC PRIVATE KEY", "ec.pem")] {
            let path = dir.path().join(name);
            fs::write(
                &path,
                format!("-----BEGIN {label}-----\nMAMCAQA=\n-----END {label}-----\n"),
            )
            .unwrap();
            let key = load_key(&path).unwrap();
            match (label, key) {
                ("RSA PRIVATE KEY", PrivateKeyDer::Pkcs1(_))
                | ("EC PRIVATE KEY", PrivateKeyDer::Sec1(_)) => {}
                (label, other) => panic!("{label} loaded as {other:?}"),
            }
        }
    }
}
