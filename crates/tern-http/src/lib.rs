//! `tern-http`: one HTTP server for everything web (ports 80 and 443).
//!
//! JMAP (RFC 8620 core, RFC 8621 mail) is served now: the session resource
//! at `/jmap/session` (and `/.well-known/jmap`, RFC 8620 §2.2), the API at
//! `/jmap/api`. The webmail, ActiveSync, CalDAV/CardDAV, autoconfig and the
//! admin API will hang off the same [`router`].
//!
//! hyper serves HTTP/1.1 and HTTP/2 (negotiated by ALPN under TLS, by the
//! connection preface in the clear); routing is a plain `match` on method
//! and path — a handful of routes do not need a framework, and the
//! dependency tree stays small. Like the other protocol crates this one
//! translates between its wire and the mail layer (`tern-mail`: login,
//! delivery) and the Store; it opens no files and knows no other protocol.

pub mod auth;
pub mod jmap;
mod push_sender;
pub mod response;
mod router;
pub mod webmail;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::admission::{ConnectionSlot, LimitExceeded};
use tern_core::config::Limits;
use tern_mail::Mail;
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

/// Which listener a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Port 80: plain HTTP.
    Plain,
    /// Port 443: TLS from the first byte.
    Tls,
}

/// Everything the HTTP connections share.
pub struct HttpServer {
    pub mail: Arc<Mail>,
    /// The TLS configuration with ALPN for h2 and http/1.1.
    tls: Arc<ServerConfig>,
    pub limits: Limits,
    /// Logins recently checked, so a client sending Basic credentials with
    /// every request does not pay Argon2 every time.
    pub(crate) logins: auth::LoginCache,
    /// API requests in progress per account (`maxConcurrentRequests`).
    pub(crate) in_flight: jmap::InFlight,
    /// Uploads in progress per account (`maxConcurrentUpload`).
    pub(crate) uploads: jmap::InFlight,
    /// Push to the URLs of push subscriptions.
    pub(crate) push: Arc<push_sender::PushSender>,
}

impl HttpServer {
    pub fn new(
        mail: Arc<Mail>,
        tls: Arc<ServerConfig>,
        limits: Limits,
        jmap: &tern_core::config::JmapConfig,
    ) -> HttpServer {
        let mut tls = (*tls).clone();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        HttpServer {
            push: Arc::new(push_sender::PushSender::new(
                mail.clone(),
                jmap.push_allow_private,
            )),
            mail,
            tls: Arc::new(tls),
            limits,
            logins: auth::LoginCache::default(),
            in_flight: jmap::InFlight::default(),
            uploads: jmap::InFlight::new(jmap::blob::MAX_CONCURRENT_UPLOAD),
        }
    }

    /// Starts the background work: pushing to verified push subscriptions
    /// until `stopping` turns true.
    pub async fn start(&self, stopping: watch::Receiver<bool>) {
        self.push.start(stopping).await;
    }

    pub fn hostname(&self) -> &str {
        self.mail.hostname()
    }

    /// Serves one connection until the client closes it, it idles past the
    /// idle timeout, or the server stops.
    pub async fn handle(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        mode: Mode,
        admission: Result<ConnectionSlot, LimitExceeded>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let slot = match admission {
            Ok(slot) => Arc::new(slot),
            Err(why) => {
                // Over the connection limits: closed without a word, as a
                // busy server's listen queue would.
                tracing::debug!("http {peer}: refused ({why})");
                return;
            }
        };
        let idle = Duration::from_secs(self.limits.idle_timeout_secs);
        match mode {
            Mode::Plain => {
                self.serve(stream, peer, false, slot, idle, &mut stopping)
                    .await
            }
            Mode::Tls => {
                let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
                let handshake = tokio::time::timeout(idle, acceptor.accept(stream)).await;
                match handshake {
                    Ok(Ok(tls)) => self.serve(tls, peer, true, slot, idle, &mut stopping).await,
                    _ => tracing::debug!("http {peer}: TLS handshake failed or timed out"),
                }
            }
        }
    }

    async fn serve<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        secure: bool,
        slot: Arc<ConnectionSlot>,
        idle: Duration,
        stopping: &mut watch::Receiver<bool>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let server = self.clone();
        let stop = stopping.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let server = server.clone();
            let slot = slot.clone();
            let stopping = stop.clone();
            async move {
                let context = router::Context {
                    peer,
                    secure,
                    slot,
                    stopping,
                };
                Ok::<_, std::convert::Infallible>(router::route(&server, context, request).await)
            }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(idle)
            .max_buf_size(64 * 1024);
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(64)
            .keep_alive_interval(Some(idle / 2));
        // Upgrades: JMAP over WebSocket (RFC 8887).
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("http {peer}: {e}");
                }
            }
            _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                // Finish the requests in flight, take no more.
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
            }
        }
    }
}
