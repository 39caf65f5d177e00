//! Listening sockets: binding with errors that say how to fix them, the
//! accept loop, and the connection limits (in total and per IP address)
//! that keep one client from taking the whole server.
//!
//! The accept loop never blocks on a session: each connection runs in its
//! own task, tracked so that shutdown can wait for it.

use super::shutdown::{SessionTracker, Shutdown};
use super::Service;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::Protocol;
use tokio::net::{TcpListener, TcpStream};

/// A running session, as a protocol's service returns it.
pub type BoxedSession = Pin<Box<dyn Future<Output = ()> + Send>>;

/// After an accept error such as EMFILE (out of file descriptors) the loop
/// pauses this long instead of spinning while sessions end and free some.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A bound listening socket for one protocol.
pub struct Listener {
    protocol: Protocol,
    socket: TcpListener,
    local_addr: SocketAddr,
}

/// Binds `addr` for `protocol`; the error names the address and the fix.
pub async fn bind(protocol: Protocol, addr: SocketAddr) -> anyhow::Result<Listener> {
    let socket = TcpListener::bind(addr).await.map_err(|e| {
        let fix = match e.kind() {
            io::ErrorKind::AddrInUse => format!(
                "the address is already in use; stop the program using it or choose another port for `{}` in [listen] of the configuration",
                protocol.key()
            ),
            io::ErrorKind::PermissionDenied => format!(
                "permission denied; ports below 1024 need root or the CAP_NET_BIND_SERVICE capability \
                 (setcap cap_net_bind_service=+ep $(which tern)), or choose a port above 1023 for `{}` in [listen]",
                protocol.key()
            ),
            io::ErrorKind::AddrNotAvailable => format!(
                "this machine has no such address; use one of its own addresses (or 0.0.0.0) for `{}` in [listen]",
                protocol.key()
            ),
            _ => format!("{e}"),
        };
        anyhow::anyhow!("cannot listen for {protocol} on {addr}: {fix}")
    })?;
    let local_addr = socket.local_addr()?;
    Ok(Listener {
        protocol,
        socket,
        local_addr,
    })
}

/// An accepted connection handed to a protocol's service.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub protocol: Protocol,
    /// `Err` when a connection limit is reached: the service should send its
    /// protocol's "too busy" reply (SMTP 421, IMAP BYE, POP3 -ERR) and close.
    pub admission: Result<ConnectionPermit, LimitExceeded>,
}

impl Listener {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepts connections until shutdown, running `service` on each.
    pub async fn run(
        self,
        service: Service,
        limits: ConnectionLimits,
        sessions: SessionTracker,
        shutdown: Shutdown,
    ) {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait() => break,
                accepted = self.socket.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(
                        "{} on {}: accept failed: {e}",
                        self.protocol,
                        self.local_addr
                    );
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let admission = limits.admit(peer.ip());
            if let Err(e) = &admission {
                tracing::info!("{} connection from {peer} refused: {e}", self.protocol);
            }
            let session = service(Accepted {
                stream,
                peer,
                local: self.local_addr,
                protocol: self.protocol,
                admission,
            });
            let guard = sessions.track();
            tokio::spawn(async move {
                session.await;
                drop(guard);
            });
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// `limits.max_connections` reached.
    Total(usize),
    /// `limits.max_connections_per_ip` reached for this address.
    PerIp(usize),
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitExceeded::Total(n) => write!(f, "the server already has {n} connections"),
            LimitExceeded::PerIp(n) => write!(f, "{n} connections from this address already"),
        }
    }
}

/// Counts open connections, in total and per IP address.
#[derive(Clone)]
pub struct ConnectionLimits {
    inner: Arc<LimitsInner>,
}

struct LimitsInner {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held for the life of an admitted connection; releases its slot on drop.
pub struct ConnectionPermit {
    limits: Arc<LimitsInner>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            inner: Arc::new(LimitsInner {
                max_total,
                max_per_ip,
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// Takes a slot for a connection from `ip`, if both limits allow. An
    /// IPv6 client is counted by its /64, which one host usually has whole.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, LimitExceeded> {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !0xffff_ffff_ffff_ffff).into()),
            },
            v4 => v4,
        };
        let mut counts = self.inner.lock();
        if counts.total >= self.inner.max_total {
            return Err(LimitExceeded::Total(self.inner.max_total));
        }
        let per_ip = counts.per_ip.entry(ip).or_insert(0);
        if *per_ip >= self.inner.max_per_ip {
            return Err(LimitExceeded::PerIp(self.inner.max_per_ip));
        }
        *per_ip += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            limits: self.inner.clone(),
            ip,
        })
    }

    /// Open connections now (for logs and tests).
    pub fn open(&self) -> usize {
        self.inner.lock().total
    }
}

impl LimitsInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counts stay consistent even if a holder panicked: each update is
        // a pair of integer steps done under the lock.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn limits_count_in_total_and_per_ip() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = limits.admit(a).unwrap();
        let _p2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(LimitExceeded::PerIp(2)));
        let _p3 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(LimitExceeded::Total(3)));
        drop(p1);
        assert_eq!(limits.open(), 2);
        assert!(limits.admit(a).is_ok());
        // One IPv6 /64 is one client.
        let limits = ConnectionLimits::new(10, 1);
        let _x = limits.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(
            limits.admit("2001:db8::2".parse().unwrap()).err(),
            Some(LimitExceeded::PerIp(1))
        );
        assert!(limits.admit("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn binding_a_used_port_names_the_address_and_the_fix() {
        let first = bind(Protocol::Imap, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let err = bind(Protocol::Imap, first.local_addr())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&first.local_addr().to_string()), "{err}");
        assert!(
            err.contains("already in use") && err.contains("[listen]"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_accept_loop_serves_refuses_over_limit_and_stops() {
        let listener = bind(Protocol::Pop3, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr();
        // A one-line echo service that reports admission.
        let service: Service = Arc::new(|mut c: Accepted| {
            Box::pin(async move {
                let reply: &[u8] = if c.admission.is_ok() {
                    b"welcome\n"
                } else {
                    b"busy\n"
                };
                let _ = c.stream.write_all(reply).await;
                let mut buf = [0u8; 1];
                let _ = c.stream.read(&mut buf).await;
            })
        });
        let shutdown = Shutdown::new();
        let sessions = SessionTracker::new();
        let task = tokio::spawn(listener.run(
            service,
            ConnectionLimits::new(10, 1),
            sessions.clone(),
            shutdown.clone(),
        ));
        let read_line = |mut s: TcpStream| async move {
            let mut buf = vec![0u8; 16];
            let n = s.read(&mut buf).await.unwrap();
            (String::from_utf8_lossy(&buf[..n]).into_owned(), s)
        };
        let (first, first_conn) = read_line(TcpStream::connect(addr).await.unwrap()).await;
        assert_eq!(first, "welcome\n");
        let (second, _) = read_line(TcpStream::connect(addr).await.unwrap()).await;
        assert_eq!(second, "busy\n", "the per-IP limit of 1 applies");
        drop(first_conn);
        shutdown.trigger();
        task.await.unwrap();
        assert!(sessions.wait_idle(Duration::from_secs(5)).await);
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the socket is closed after shutdown"
        );
    }
}
