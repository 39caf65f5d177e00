//! TLS to PostgreSQL, over rustls.
//!
//! Whether TLS is used is the URL's `sslmode`, as libpq reads it and
//! tokio-postgres implements it: `disable` never, `prefer` (the default)
//! when the server offers it, `require` always. What is checked:
//!
//! - With trusted roots configured (`[store] tls_ca_file`), the server's
//!   certificate must chain to them and name the host of the URL — libpq's
//!   `verify-full` — and TLS is required: a `prefer` becomes `require`, so
//!   a server (or a man in the middle) that declines TLS gets no password
//!   and no mail. `disable` with roots is refused as a contradiction.
//! - Without, the connection is encrypted against a passive listener but
//!   any certificate is accepted (the handshake's own signatures are still
//!   checked), as libpq does for `prefer` and `require` without a root
//!   certificate. That keeps working a database on the same host or a
//!   private network with the self-signed certificate Debian's PostgreSQL
//!   makes at installation.
//!
//! libpq's `verify-ca` and `verify-full` are not values tokio-postgres
//! reads; the URL's parser refuses them, and [`prepare`] says to use
//! `tls_ca_file` instead.

use crate::error::{Result, StoreError};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_rustls::TlsConnector;

/// The connection settings of a URL and the TLS that goes with them.
pub(crate) fn prepare(
    url: &str,
    roots: Option<&RootCertStore>,
) -> Result<(tokio_postgres::Config, PgTls)> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        let hint = if url.contains("verify-ca") || url.contains("verify-full") {
            " (for a checked certificate, use sslmode=require and set [store] tls_ca_file)"
        } else {
            ""
        };
        StoreError::backend(format!("reading the PostgreSQL URL{hint}"), e)
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::backend("setting up TLS to PostgreSQL", e))?;
    let client = match roots {
        Some(roots) => {
            if config.get_ssl_mode() == SslMode::Disable {
                return Err(StoreError::Invalid(
                    "the PostgreSQL URL says sslmode=disable, but [store] tls_ca_file asks for a checked certificate"
                        .into(),
                ));
            }
            config.ssl_mode(SslMode::Require);
            builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok((
        config,
        PgTls {
            connector: TlsConnector::from(Arc::new(client)),
        },
    ))
}

/// Makes the TLS side of each new connection (cheap to clone: the rustls
/// configuration is shared).
#[derive(Clone)]
pub struct PgTls {
    connector: TlsConnector,
}

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<PgTlsConnect> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host:?} is not a host name TLS can check"),
            )
        })?;
        Ok(PgTlsConnect {
            connector: self.connector.clone(),
            name,
        })
    }
}

/// The handshake of one connection.
pub struct PgTlsConnect {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(PgTlsStream(Box::new(stream)))
        })
    }
}

/// A connection inside TLS.
pub struct PgTlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl TlsStream for PgTlsStream {
    /// None: SCRAM's `tls-server-end-point` binding hashes the certificate
    /// with its own signature's hash, which would have to be read out of
    /// the certificate; without a binding SCRAM-SHA-256 is used, which
    /// every server accepts.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for PgTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// Accepts whatever certificate the server shows (no roots configured),
/// while still checking that the server holds its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
