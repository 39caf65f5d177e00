//! A client connection: plain TCP until STARTTLS/STLS, TLS after (or from
//! the first byte on the implicit-TLS ports), behind one type so protocol
//! sessions do not care which.

mod conn;
mod deflate;

pub use conn::{in_memory, Conn, End, Line, MAX_PENDING_OUTPUT};
pub use deflate::Deflate;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

/// What a connection runs over: a TCP socket in the server, an in-memory
/// pipe in a test (see [`in_memory`]).
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A client connection, plain or TLS.
pub enum Stream {
    Plain(Box<dyn Duplex>),
    Tls(Box<TlsStream<Box<dyn Duplex>>>),
    /// After IMAP COMPRESS=DEFLATE (RFC 4978), over either of the above.
    Deflate(Box<Deflate<Stream>>),
    /// What is left while the TCP stream is being handed to TLS: reads end,
    /// writes fail.
    Closed,
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        match self {
            Stream::Tls(_) => true,
            Stream::Deflate(d) => d.get_ref().is_tls(),
            _ => false,
        }
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self, Stream::Deflate(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// How long a TLS handshake may take before the client is dropped.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the server side of a TLS handshake on `tcp` (implicit TLS or after
/// STARTTLS/STLS); `None` if it fails or takes too long.
pub async fn accept_tls(
    tls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    io: Box<dyn Duplex>,
) -> Option<Stream> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(stream)) => Some(Stream::Tls(Box::new(stream))),
        _ => None,
    }
}

/// The stream a listener's session starts with: `tcp` as it is, or after
/// the TLS handshake on an implicit-TLS port (993, 995, 465); `None` if the
/// handshake fails or takes too long.
pub async fn open(
    tls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    io: impl Duplex + 'static,
    implicit_tls: bool,
) -> Option<Stream> {
    let io: Box<dyn Duplex> = Box::new(io);
    if implicit_tls {
        accept_tls(tls, io).await
    } else {
        Some(Stream::Plain(io))
    }
}

/// Writes `bytes` and flushes within `limit`: a client that stops reading
/// cannot hold a session forever.
pub async fn write_all_within(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: &[u8],
    limit: std::time::Duration,
) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    tokio::time::timeout(limit, write)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Whether a password may be sent on `stream` from `peer`: over TLS, or
/// from this machine (every protocol's LOGIN/AUTH/PASS rule).
pub fn password_may_travel(stream: &Stream, peer: std::net::IpAddr) -> bool {
    stream.is_tls() || is_loopback(peer)
}

/// Loopback, including IPv4-mapped IPv6 loopback: where passwords may be
/// sent without TLS.
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}
