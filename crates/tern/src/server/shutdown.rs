//! Graceful shutdown: the stop signal, a broadcast every session can wait
//! on, and a count of running sessions to wait for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Tells every listener and session that the server is stopping.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: Arc::new(tx),
            rx,
        }
    }

    /// Starts the shutdown; idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// A receiver that turns true when shutdown starts, for protocol
    /// crates that know nothing of this type.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been triggered.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the sender is gone, which also means stop.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

/// Counts running sessions so shutdown can wait for them.
#[derive(Clone, Default)]
pub struct SessionTracker {
    inner: Arc<TrackerInner>,
}

#[derive(Default)]
struct TrackerInner {
    active: AtomicUsize,
    idle: Notify,
}

/// Held by a running session.
pub struct SessionGuard {
    inner: Arc<TrackerInner>,
}

impl SessionTracker {
    pub fn new() -> SessionTracker {
        SessionTracker::default()
    }

    pub fn track(&self) -> SessionGuard {
        self.inner.active.fetch_add(1, Ordering::AcqRel);
        SessionGuard {
            inner: self.inner.clone(),
        }
    }

    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Waits until no session runs, at most `limit`; true if they all ended.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.idle.notified();
                if self.active() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.inner.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

/// SIGTERM and SIGINT handlers. Installed before the server says `ready`,
/// so a stop signal sent the moment after is always heard (the default
/// action would kill the process without closing the store).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT and says which.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_sessions_to_end() {
        let tracker = SessionTracker::new();
        assert!(tracker.wait_idle(Duration::from_millis(1)).await);
        let guard = tracker.track();
        assert!(
            !tracker.wait_idle(Duration::from_millis(20)).await,
            "a session is running"
        );
        let t = tracker.clone();
        let waiter = tokio::spawn(async move { t.wait_idle(Duration::from_secs(10)).await });
        drop(guard);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn shutdown_reaches_every_clone() {
        let s = Shutdown::new();
        let c = s.clone();
        let waiter = tokio::spawn(async move { c.wait().await });
        assert!(!s.is_triggered());
        s.trigger();
        waiter.await.unwrap();
        assert!(s.is_triggered());
    }
}
