//! Listening sockets: binding with errors that say how to fix them, and the
//! accept loop, which admits each connection under the server's connection
//! limits ([`tern_core::admission`]) and logs refusals as one summary line per
//! address and minute rather than a line per connection.
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
use std::time::{Duration, Instant};
pub use tern_core::admission::{ConnectionLimits, ConnectionSlot, LimitExceeded};
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

/// Connections the kernel queues for the accept loop. The usual 128 drops
/// handshakes during a connection storm (clients then wait on a connection
/// the server never saw); the kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds a listening socket. An IPv6 socket takes IPv6 only, so that the
/// default pair `0.0.0.0:port` and `[::]:port` can share a port whatever
/// the system's `bindv6only`, as Postfix and Dovecot do.
fn listen_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // A restarted server can bind at once beside connections in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Whether `e` says this machine has no IPv6 at all (disabled in the kernel
/// or in the container), so a default `[::]` listener is skipped.
pub fn is_ipv6_unavailable(addr: SocketAddr, e: &io::Error) -> bool {
    addr.is_ipv6()
        && (e.raw_os_error() == Some(libc_eafnosupport())
            || e.kind() == io::ErrorKind::AddrNotAvailable)
}

/// EAFNOSUPPORT, "address family not supported", on Linux and the BSDs.
fn libc_eafnosupport() -> i32 {
    if cfg!(target_os = "linux") {
        97
    } else {
        47
    }
}

/// Binds `addr` for `protocol`; the error names the address and the fix.
pub async fn bind(protocol: Protocol, addr: SocketAddr) -> anyhow::Result<Listener> {
    bind_or_io(protocol, addr).map_err(|(e, message)| anyhow::Error::new(e).context(message))
}

/// [`bind`], keeping the I/O error for callers that look at it.
pub fn bind_or_io(protocol: Protocol, addr: SocketAddr) -> Result<Listener, (io::Error, String)> {
    let socket = listen_socket(addr).map_err(|e| {
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
        (e, format!("cannot listen for {protocol} on {addr}: {fix}"))
    })?;
    let local_addr = socket
        .local_addr()
        .map_err(|e| (e, format!("cannot listen for {protocol} on {addr}")))?;
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
    pub admission: Result<ConnectionSlot, LimitExceeded>,
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
        refusals: RefusalLog,
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
            let admitted = limits.admit(peer.ip());
            let now = Instant::now();
            if let Some(evicted) = admitted.evicted {
                refusals.record(evicted, Event::Evicted, self.protocol, now);
            }
            if let Err(why) = &admitted.slot {
                refusals.record(peer.ip(), Event::Refused(*why), self.protocol, now);
            }
            let session = service(Accepted {
                stream,
                peer,
                local: self.local_addr,
                protocol: self.protocol,
                admission: admitted.slot,
            });
            let guard = sessions.track();
            tokio::spawn(async move {
                session.await;
                drop(guard);
            });
        }
    }
}

/// What happened to a connection from an address, for the log.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// Refused at accept.
    Refused(LimitExceeded),
    /// Evicted before login to make room for a newcomer.
    Evicted,
}

/// Refused and evicted connections, logged as one line for an address's
/// first event and then one summary line per address and interval, so a
/// flood of connections cannot flood the log as well.
#[derive(Clone, Default)]
pub struct RefusalLog {
    inner: Arc<Mutex<HashMap<IpAddr, Tally>>>,
}

#[derive(Default)]
struct Tally {
    refused: usize,
    evicted: usize,
    last_reason: Option<String>,
}

impl RefusalLog {
    /// How often the summaries are written.
    pub const INTERVAL: Duration = Duration::from_secs(60);

    /// Counts an event; the first for an address in an interval is logged
    /// at once, the rest in the next summary. Addresses are counted as the
    /// limits count them (IPv6 by /64), so cycling through a /64 does not
    /// make every connection a "first".
    pub fn record(&self, ip: IpAddr, event: Event, protocol: Protocol, _now: Instant) {
        let ip = tern_core::admission::client_key(ip);
        let mut tallies = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let first = !tallies.contains_key(&ip);
        let tally = tallies.entry(ip).or_default();
        if first {
            match event {
                Event::Refused(why) => tracing::info!(
                    client = %ip,
                    "{protocol} connection refused: {why}; further refusals for this address are summarised every {}s",
                    Self::INTERVAL.as_secs()
                ),
                Event::Evicted => tracing::info!(
                    client = %ip,
                    "connection evicted before login to make room; further evictions for this address are summarised every {}s",
                    Self::INTERVAL.as_secs()
                ),
            }
            return;
        }
        match event {
            Event::Refused(why) => {
                tally.refused += 1;
                tally.last_reason = Some(why.to_string());
            }
            Event::Evicted => tally.evicted += 1,
        }
    }

    /// Summarises every [`RefusalLog::INTERVAL`] until shutdown: one task
    /// for all listeners.
    pub async fn summarise_until(self, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(RefusalLog::INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {
                    self.summarise(Instant::now());
                }
            }
        }
    }

    /// Logs one line per address with events since its first, and starts a
    /// new interval. Returns the lines (for tests).
    pub fn summarise(&self, _now: Instant) -> Vec<String> {
        let tallies = std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()));
        let mut lines = Vec::new();
        for (ip, tally) in tallies {
            if tally.refused == 0 && tally.evicted == 0 {
                continue;
            }
            let reason = tally
                .last_reason
                .map(|r| format!(" (last: {r})"))
                .unwrap_or_default();
            let line = format!(
                "{} more connection(s) refused and {} evicted in the last {}s{reason}",
                tally.refused,
                tally.evicted,
                Self::INTERVAL.as_secs()
            );
            tracing::info!(client = %ip, "{line}");
            lines.push(format!("{ip}: {line}"));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn refusals_are_summarised_per_address() {
        let log = RefusalLog::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let now = Instant::now();
        for _ in 0..5 {
            log.record(
                a,
                Event::Refused(LimitExceeded::PerIp(2)),
                Protocol::Imap,
                now,
            );
        }
        log.record(b, Event::Evicted, Protocol::Imap, now);
        log.record(b, Event::Evicted, Protocol::Imap, now);
        let mut lines = log.summarise(now);
        lines.sort();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("192.0.2.1: 4 more connection(s) refused and 0 evicted"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("192.0.2.2: 0 more connection(s) refused and 1 evicted"),
            "{lines:?}"
        );
        assert!(log.summarise(now).is_empty(), "a new interval starts empty");
    }

    #[tokio::test]
    async fn ipv4_and_ipv6_listeners_share_a_port() {
        let v4 = bind(Protocol::Imap, "0.0.0.0:0".parse().unwrap())
            .await
            .unwrap();
        let port = v4.local_addr().port();
        let v6 = match bind_or_io(Protocol::Imap, SocketAddr::from(([0u16; 8], port))) {
            Ok(v6) => v6,
            Err((e, _)) if is_ipv6_unavailable("[::]:0".parse().unwrap(), &e) => return,
            Err((e, message)) => panic!("{message}: {e}"),
        };
        assert_eq!(v6.local_addr().port(), port);
        // Each family reaches its own socket.
        let (_c6, accepted) = tokio::join!(TcpStream::connect(("::1", port)), v6.socket.accept());
        assert!(accepted.unwrap().1.is_ipv6());
        let (_c4, accepted) =
            tokio::join!(TcpStream::connect(("127.0.0.1", port)), v4.socket.accept());
        assert!(accepted.unwrap().1.is_ipv4());
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
            ConnectionLimits::new(10, 1, 10),
            sessions.clone(),
            shutdown.clone(),
            RefusalLog::default(),
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
