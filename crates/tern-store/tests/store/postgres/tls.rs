//! TLS to PostgreSQL: the test cluster (`scripts/postgres-test-cluster.sh`)
//! serves TLS with a certificate for 127.0.0.1 from a CA of its own, whose
//! certificate `TERN_TEST_POSTGRES_CA` names. The store's connections are
//! read back from the server's `pg_stat_ssl`, not taken on trust.

use super::{server_url, ScratchDb};
use tern_store::postgres::{PgOptions, PgStore};
use tern_store::{DirectoryStore, Store};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::RootCertStore;

/// The cluster's CA, or `None` (with a note) when the cluster has none.
fn cluster_ca() -> Option<RootCertStore> {
    let Some(path) = std::env::var_os("TERN_TEST_POSTGRES_CA") else {
        assert!(
            std::env::var_os("TERN_REQUIRE_POSTGRES").is_none(),
            "TERN_REQUIRE_POSTGRES is set but TERN_TEST_POSTGRES_CA is not"
        );
        eprintln!("skipped: set TERN_TEST_POSTGRES_CA to the test cluster's CA certificate");
        return None;
    };
    Some(roots(&path))
}

fn roots(path: impl AsRef<std::path::Path>) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path.as_ref())
        .expect("reading CA certificates")
        .collect::<Result<Vec<_>, _>>()
        .expect("parsing CA certificates");
    let (added, _) = roots.add_parsable_certificates(certs);
    assert!(added > 0, "no CA certificate in {:?}", path.as_ref());
    roots
}

/// The encryption of the server's connections to `db`: (with TLS,
/// without), counted by the server.
async fn connections(admin_url: &str, db: &str) -> (i64, i64) {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .expect("connecting to TERN_TEST_POSTGRES");
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
               FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.datname = $1",
            &[&db],
        )
        .await
        .expect("reading pg_stat_ssl");
    drop(client);
    let _ = driver.await;
    (row.get(0), row.get(1))
}

/// The URL's default (`sslmode=prefer`) encrypts every connection to a
/// server that offers TLS — the pool's and the listener's — though no
/// certificate is configured to check it against.
#[tokio::test(flavor = "multi_thread")]
async fn connections_are_encrypted_when_the_server_offers_tls() {
    let Some(admin) = server_url() else { return };
    if cluster_ca().is_none() {
        return;
    }
    let db = ScratchDb::create(&admin).await;
    let store = PgStore::open(PgOptions::new(db.url.clone())).await.unwrap();
    store.add_domain("example.test").await.unwrap();
    let (tls, plain) = connections(&admin, &db.name).await;
    assert!(
        tls >= 2,
        "pool and listener over TLS: {tls} with, {plain} without"
    );
    assert_eq!(plain, 0);
    store.close().await.unwrap();
}

/// `sslmode=disable` in the URL is respected: no TLS at all.
#[tokio::test(flavor = "multi_thread")]
async fn sslmode_disable_is_plaintext() {
    let Some(admin) = server_url() else { return };
    if cluster_ca().is_none() {
        return;
    }
    let db = ScratchDb::create(&admin).await;
    let url = format!("{}?sslmode=disable", db.url);
    let store = PgStore::open(PgOptions::new(url)).await.unwrap();
    store.add_domain("example.test").await.unwrap();
    let (tls, plain) = connections(&admin, &db.name).await;
    assert_eq!(tls, 0);
    assert!(plain >= 2, "{plain} plaintext connections");
    store.close().await.unwrap();
}

/// With the CA configured the certificate is checked: the cluster's own
/// CA opens the store over TLS; roots that did not sign it (the system's)
/// refuse to connect, naming the certificate; and a URL that turns TLS
/// off contradicts the configured CA and is refused before connecting.
#[tokio::test(flavor = "multi_thread")]
async fn a_configured_ca_checks_the_certificate() {
    let Some(admin) = server_url() else { return };
    let Some(ca) = cluster_ca() else { return };
    let db = ScratchDb::create(&admin).await;

    let mut options = PgOptions::new(db.url.clone());
    options.tls_roots = Some(ca.clone());
    let store = PgStore::open(options).await.expect("the cluster's CA");
    store.add_domain("example.test").await.unwrap();
    assert_eq!(connections(&admin, &db.name).await.1, 0);
    store.close().await.unwrap();

    let mut options = PgOptions::new(db.url.clone());
    options.tls_roots = Some(roots("/etc/ssl/certs/ca-certificates.crt"));
    let refused = PgStore::open(options).await.err().expect("foreign roots");
    // What an administrator reads: the error and its causes.
    let mut why = refused.to_string();
    let mut cause = std::error::Error::source(&refused);
    while let Some(c) = cause {
        why.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert!(why.contains("invalid peer certificate"), "{why}");

    let mut options = PgOptions::new(format!("{}?sslmode=disable", db.url));
    options.tls_roots = Some(ca);
    let refused = PgStore::open(options).await.err().expect("sslmode=disable");
    assert!(refused.to_string().contains("sslmode=disable"), "{refused}");
}

/// libpq's `verify-full` is not a value the URL parser knows: the error
/// says what to do instead.
#[tokio::test]
async fn verify_full_in_the_url_says_to_use_tls_ca_file() {
    let refused = PgStore::open(PgOptions::new(
        "postgres://tern@127.0.0.1:1/tern?sslmode=verify-full",
    ))
    .await
    .err()
    .expect("verify-full");
    assert!(refused.to_string().contains("tls_ca_file"), "{refused}");
}
