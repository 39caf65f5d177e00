//! MTA-STS (RFC 8461) end to end: the sender trusts a test CA
//! (`SSL_CERT_FILE`), fetches policies over HTTPS from a server the test
//! runs with a certificate from that CA, and under `enforce` delivers only
//! over TLS with a certificate valid for a listed MX host: a receiver with
//! its own self-signed certificate gets nothing, one with a CA-issued
//! certificate gets the mail.

use crate::dns_server::DnsServer;
use crate::harness::*;
use crate::mx::deferred_error;
use crate::outbound::{idle, next_message};
use crate::smtp::python;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use tokio_rustls::rustls;

const POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.s.test\r\nmx: *.t.test\r\nmax_age: 86400\r\n";

/// Serves `POLICY` over HTTPS on `ip` with `cert_pem`/`key_pem`; the port.
fn policy_server(ip: &str, cert_pem: &str, key_pem: &str) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let ok = request.starts_with(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n");
                let response = if ok {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{POLICY}",
                        POLICY.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
                };
                let _ = tls.write_all(response.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

#[test]
fn an_enforced_policy_refuses_an_untrusted_mx_and_delivers_to_a_trusted_one() {
    // The test CA, and certificates from it.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let issue = |names: &[&str]| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (web_cert, web_key) = issue(&["mta-sts.s.test", "mta-sts.t.test"]);
    let (mx_cert, mx_key) = issue(&["mx1.t.test"]);

    // s.test's MX keeps Tern's self-signed certificate; t.test's has one
    // from the CA. Both publish the same enforced policy.
    let (_s_dir, s) = {
        let dir = TestDir::with_smtp_on("", "127.0.0.8:0");
        dir.init();
        dir.add_account("sam@s.test");
        let server = dir.start();
        (dir, server)
    };
    let port = s.listeners["smtp"].port();
    let t_dir = tempfile::tempdir().unwrap();
    std::fs::write(t_dir.path().join("cert.pem"), &mx_cert).unwrap();
    std::fs::write(t_dir.path().join("key.pem"), &mx_key).unwrap();
    let (_t_dir, t) = {
        let dir = TestDir::with_smtp_on(
            &format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                t_dir.path().join("cert.pem").display(),
                t_dir.path().join("key.pem").display()
            ),
            &format!("127.0.0.9:{port}"),
        );
        dir.init();
        dir.add_account("tim@t.test");
        let server = dir.start();
        (dir, server)
    };
    let https = policy_server("127.0.0.10", &web_cert, &web_key);

    let dns = DnsServer::start();
    for (domain, mx, ip) in [("s.test", "mx.s.test", 8), ("t.test", "mx1.t.test", 9)] {
        dns.mx(domain, 10, mx);
        dns.a(mx, Ipv4Addr::new(127, 0, 0, ip));
        dns.txt(&format!("_mta-sts.{domain}"), "v=STSv1; id=20261206;");
        dns.a(&format!("mta-sts.{domain}"), Ipv4Addr::new(127, 0, 0, 10));
    }
    let ca_file = t_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let a_dir = TestDir::with_config(&format!(
        "[dns]\nservers = [\"{}\"]\n[outbound]\nmx_port = {port}\nmta_sts_port = {https}\n",
        dns.addr
    ));
    a_dir.init();
    a_dir.add_account("ann@a.test");
    let a = a_dir.start_env(&[("SSL_CERT_FILE", ca_file.to_str().unwrap())]);

    let mut tim = idle(t.listeners["imap"], "tim@t.test");
    let sent = python(
        r#"
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.login("ann@a.test", "secret")
r = [s.sendmail("ann@a.test", [to], "Subject: sts to %s\r\n\r\nx\r\n" % to) for to in ["sam@s.test", "tim@t.test"]]
s.quit()
print(json.dumps(r))
"#,
        &[&a.listeners["submission"].port().to_string()],
    );
    assert_eq!(sent, serde_json::json!([{}, {}]));

    let got = next_message(&mut tim);
    assert!(got.contains("Subject: sts to tim@t.test"), "{got}");
    assert!(got.contains("with ESMTPS"), "{got}");

    let error = deferred_error(&a_dir, "sam@s.test");
    assert!(error.contains("4.7.5"), "{error}");
    assert!(error.contains("policy"), "{error}");

    // The sessions are kept for TLS reports (RFC 8460), written at the
    // latest when the server stops.
    let (status, _) = a.stop_with("TERM");
    assert!(status.success());
    let report: serde_json::Value =
        serde_json::from_str(&a_dir.ok(&["--json", "tls-report"], "")).unwrap();
    let has = |domain: &str, result: &str, host: &str| {
        report.as_array().unwrap().iter().any(|r| {
            r["policy_domain"] == domain
                && r["policy_type"] == "sts"
                && r["result_type"] == result
                && r["mx_host"] == host
                && r["sessions"].as_u64() >= Some(1)
        })
    };
    assert!(has("t.test", "success", "mx1.t.test"), "{report}");
    assert!(
        has("s.test", "certificate-not-trusted", "mx.s.test"),
        "{report}"
    );
    drop(s);
}
