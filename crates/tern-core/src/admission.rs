//! Connection admission: how many connections the server holds, in total,
//! per client address, and before login.
//!
//! Three bounds keep one client, or a crowd of them, from locking everybody
//! out (the model is Dovecot's login processes and Postfix's anvil):
//!
//! - `max_total` connections for the whole server, all protocols together;
//! - `max_per_ip` from one address (an IPv6 client counts by its /64);
//! - `max_unauthenticated` of them not yet logged in. Connections that never
//!   log in (SMTP from other servers, port 25) count here for their whole life.
//!
//! When the total or the unauthenticated share is full, a new connection does
//! not simply bounce: the oldest unauthenticated connection of the address
//! holding the most unauthenticated connections is evicted, if that address
//! holds more of them than the newcomer's. So an address that floods the server
//! only ever displaces itself, logged-in sessions are never evicted, and a
//! client from a fresh address always gets in while anyone is hogging.
//!
//! A session holds its [`ConnectionSlot`] for its life, tells it when the
//! client has logged in, and releases it when the client says goodbye (QUIT,
//! LOGOUT), not when the socket finally closes, so a client that reconnects at
//! once is not refused by its own previous connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// `limits.max_connections` reached, and nobody could be evicted.
    Total(usize),
    /// `limits.max_connections_per_ip` reached for this address.
    PerIp(usize),
    /// `limits.max_unauthenticated` reached, and nobody could be evicted.
    Unauthenticated(usize),
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitExceeded::Total(n) => write!(f, "the server already has {n} connections"),
            LimitExceeded::PerIp(n) => write!(f, "{n} connections from this address already"),
            LimitExceeded::Unauthenticated(n) => {
                write!(f, "{n} connections are waiting to log in already")
            }
        }
    }
}

/// The admission of one new connection.
pub struct Admitted {
    /// The slot, or why there is none.
    pub slot: Result<ConnectionSlot, LimitExceeded>,
    /// The address whose connection was evicted to make room, if any.
    pub evicted: Option<IpAddr>,
}

/// Counts open connections, in total, per address and before login.
#[derive(Clone)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

struct Inner {
    max_total: usize,
    max_per_ip: usize,
    max_unauthenticated: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Increasing, so a smaller id is an older connection.
    next_id: u64,
    live: HashMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    unauthenticated_per_ip: HashMap<IpAddr, usize>,
    unauthenticated: usize,
}

struct Entry {
    ip: IpAddr,
    authenticated: bool,
    /// Committing something the client will be told about (a message
    /// after DATA): not to be evicted, or the client retries what was
    /// stored and it arrives twice.
    committing: bool,
    eviction: Arc<Notify>,
}

/// Held by a session for its life; frees its place on drop or [`release`].
///
/// [`release`]: ConnectionSlot::release
pub struct ConnectionSlot {
    /// `None` for a slot outside any limits (tests, in-process callers) or
    /// one already released.
    held: Option<(Arc<Inner>, u64)>,
    eviction: Arc<Notify>,
}

impl ConnectionLimits {
    /// Limits of `max_total` connections, `max_per_ip` per address and
    /// `max_unauthenticated` not logged in.
    pub fn new(max_total: usize, max_per_ip: usize, max_unauthenticated: usize) -> Self {
        ConnectionLimits {
            inner: Arc::new(Inner {
                max_total,
                max_per_ip,
                max_unauthenticated,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Takes a slot for a new, unauthenticated connection from `ip`, evicting
    /// a hogging address's oldest unauthenticated connection if the server
    /// is full (see the module documentation).
    pub fn admit(&self, ip: IpAddr) -> Admitted {
        let ip = client_key(ip);
        let mut state = self.inner.lock();
        if state.per_ip.get(&ip).copied().unwrap_or(0) >= self.inner.max_per_ip {
            return refused(LimitExceeded::PerIp(self.inner.max_per_ip));
        }
        let total_full = state.live.len() >= self.inner.max_total;
        let share_full = state.unauthenticated >= self.inner.max_unauthenticated;
        let mut evicted = None;
        if total_full || share_full {
            match state.victim_for(ip) {
                Some(victim) => {
                    if let Some(entry) = state.remove(victim) {
                        entry.eviction.notify_one();
                        evicted = Some(entry.ip);
                    }
                }
                None if total_full => {
                    return refused(LimitExceeded::Total(self.inner.max_total));
                }
                None => {
                    return refused(LimitExceeded::Unauthenticated(
                        self.inner.max_unauthenticated,
                    ))
                }
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        let eviction = Arc::new(Notify::new());
        state.live.insert(
            id,
            Entry {
                ip,
                authenticated: false,
                committing: false,
                eviction: eviction.clone(),
            },
        );
        *state.per_ip.entry(ip).or_insert(0) += 1;
        *state.unauthenticated_per_ip.entry(ip).or_insert(0) += 1;
        state.unauthenticated += 1;
        Admitted {
            slot: Ok(ConnectionSlot {
                held: Some((self.inner.clone(), id)),
                eviction,
            }),
            evicted,
        }
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.inner.lock().live.len()
    }

    /// Open connections not logged in now.
    pub fn unauthenticated(&self) -> usize {
        self.inner.lock().unauthenticated
    }
}

fn refused(why: LimitExceeded) -> Admitted {
    Admitted {
        slot: Err(why),
        evicted: None,
    }
}

/// The key an address is counted under: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64, which one host or household usually has whole.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !0xffff_ffff_ffff_ffff).into()),
        },
        v4 => v4,
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few integer and map steps under the lock, so the
        // counts are consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The oldest unauthenticated connection of the address with the most
    /// of them, if that address would still hold at least as many as
    /// `newcomer` after the swap (otherwise two busy addresses would evict
    /// each other back and forth). Connections committing are spared.
    fn victim_for(&self, newcomer: IpAddr) -> Option<u64> {
        let own = self
            .unauthenticated_per_ip
            .get(&newcomer)
            .copied()
            .unwrap_or(0);
        let (&hog, &count) = self
            .unauthenticated_per_ip
            .iter()
            .max_by_key(|(_, &count)| count)?;
        if count <= own + 1 {
            return None;
        }
        self.live
            .iter()
            .filter(|(_, e)| e.ip == hog && !e.authenticated && !e.committing)
            .map(|(&id, _)| id)
            .min()
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.live.remove(&id)?;
        decrement(&mut self.per_ip, entry.ip);
        if !entry.authenticated {
            decrement(&mut self.unauthenticated_per_ip, entry.ip);
            self.unauthenticated -= 1;
        }
        Some(entry)
    }
}

fn decrement(counts: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = counts.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&ip);
        }
    }
}

/// Splits a listener's admission into the slot a session holds and the
/// refusal it must announce, if any.
pub fn split(
    admission: Result<ConnectionSlot, LimitExceeded>,
) -> (ConnectionSlot, Option<LimitExceeded>) {
    match admission {
        Ok(slot) => (slot, None),
        Err(why) => (ConnectionSlot::unlimited(), Some(why)),
    }
}

impl ConnectionSlot {
    /// A slot bound by no limits, for sessions run outside a listener.
    pub fn unlimited() -> ConnectionSlot {
        ConnectionSlot {
            held: None,
            eviction: Arc::new(Notify::new()),
        }
    }

    /// The client has logged in: the connection leaves the unauthenticated
    /// share and can no longer be evicted.
    pub fn authenticated(&self) {
        let Some((inner, id)) = &self.held else {
            return;
        };
        let mut state = inner.lock();
        let state = &mut *state;
        let Some(entry) = state.live.get_mut(id) else {
            return;
        };
        if !entry.authenticated {
            entry.authenticated = true;
            decrement(&mut state.unauthenticated_per_ip, entry.ip);
            state.unauthenticated -= 1;
        }
    }

    /// The session is about to commit something the client will be told
    /// about (a message after DATA): it is not evicted until
    /// [`ConnectionSlot::committed`]. False if it was evicted already: then
    /// it must not start, since the session is about to be dropped.
    pub fn committing(&self) -> bool {
        let Some((inner, id)) = &self.held else {
            return true;
        };
        match inner.lock().live.get_mut(id) {
            Some(entry) => {
                entry.committing = true;
                true
            }
            None => false,
        }
    }

    /// The commit announced by [`ConnectionSlot::committing`] is over.
    pub fn committed(&self) {
        if let Some((inner, id)) = &self.held {
            if let Some(entry) = inner.lock().live.get_mut(id) {
                entry.committing = false;
            }
        }
    }

    /// The session is over (QUIT, LOGOUT): frees its place now, before the
    /// socket is closed.
    pub fn release(&mut self) {
        if let Some((inner, id)) = self.held.take() {
            inner.lock().remove(id);
        }
    }

    /// Notified when the connection was evicted to make room for another;
    /// the listener then drops the session.
    pub fn eviction(&self) -> Arc<Notify> {
        self.eviction.clone()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn limits_count_in_total_and_per_address() {
        let limits = ConnectionLimits::new(3, 2, 3);
        let p1 = limits.admit(ip("192.0.2.1")).slot.unwrap();
        let _p2 = limits.admit(ip("192.0.2.1")).slot.unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.1")).slot.err(),
            Some(LimitExceeded::PerIp(2))
        );
        let p3 = limits.admit(ip("192.0.2.2")).slot.unwrap();
        p3.authenticated();
        drop(p1);
        assert_eq!(limits.open(), 2);
        assert!(limits.admit(ip("192.0.2.1")).slot.is_ok());
        // One IPv6 /64 is one client.
        let limits = ConnectionLimits::new(10, 1, 10);
        let _x = limits.admit(ip("2001:db8::1")).slot.unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8::2")).slot.err(),
            Some(LimitExceeded::PerIp(1))
        );
        assert!(limits.admit(ip("2001:db8:0:1::1")).slot.is_ok());
    }

    #[test]
    fn a_full_server_evicts_the_hogs_oldest_unauthenticated_connection() {
        let limits = ConnectionLimits::new(4, 10, 4);
        let hog: Vec<_> = (0..3)
            .map(|_| limits.admit(ip("198.51.100.7")).slot.unwrap())
            .collect();
        let user = limits.admit(ip("192.0.2.1")).slot.unwrap();
        user.authenticated();
        // Full: a fresh address gets in, in place of the hog's oldest.
        let fresh = limits.admit(ip("203.0.113.9"));
        assert_eq!(fresh.evicted, Some(ip("198.51.100.7")));
        assert!(fresh.slot.is_ok());
        assert_eq!(limits.open(), 4);
        // The hog's first slot was the one evicted, and was told so.
        let notified = hog[0].eviction();
        assert!(
            futures_now(notified.notified()),
            "the oldest connection of the hog is notified"
        );
        assert!(!futures_now(hog[1].eviction().notified()));
        // The hog now holds no more than the fresh address's one plus one;
        // it cannot evict them, nor the logged-in user: it is refused.
        let more = limits.admit(ip("198.51.100.7"));
        assert_eq!(more.slot.err(), Some(LimitExceeded::Total(4)));
        drop(hog);
        assert_eq!(limits.open(), 2, "the user and the fresh address remain");
    }

    #[test]
    fn the_unauthenticated_share_is_smaller_than_the_total() {
        let limits = ConnectionLimits::new(10, 10, 2);
        let a = limits.admit(ip("192.0.2.1")).slot.unwrap();
        let b = limits.admit(ip("192.0.2.2")).slot.unwrap();
        a.authenticated();
        let _c = limits.admit(ip("192.0.2.3")).slot.unwrap();
        assert_eq!(limits.unauthenticated(), 2);
        let d = limits.admit(ip("192.0.2.3"));
        assert_eq!(
            d.slot.err(),
            Some(LimitExceeded::Unauthenticated(2)),
            "an address holding one already does not evict another's one"
        );
        drop(b);
        assert_eq!(limits.unauthenticated(), 1);
        assert_eq!(limits.open(), 2);
    }

    #[test]
    fn busy_addresses_do_not_evict_each_other_and_a_commit_is_spared() {
        let limits = ConnectionLimits::new(5, 10, 5);
        let a: Vec<_> = (0..3)
            .map(|_| limits.admit(ip("192.0.2.1")).slot.unwrap())
            .collect();
        let _b: Vec<_> = (0..2)
            .map(|_| limits.admit(ip("192.0.2.2")).slot.unwrap())
            .collect();
        // Full. B (2) may not take one of A's (3): A would be left with fewer.
        assert_eq!(
            limits.admit(ip("192.0.2.2")).slot.err(),
            Some(LimitExceeded::Total(5))
        );
        // A fresh address may; A's oldest is committing, so the next goes.
        assert!(a[0].committing());
        let fresh = limits.admit(ip("203.0.113.1"));
        assert!(fresh.slot.is_ok());
        assert!(!futures_now(a[0].eviction().notified()));
        assert!(futures_now(a[1].eviction().notified()));
        assert!(
            !a[1].committing(),
            "an evicted connection may not start a commit"
        );
        a[0].committed();
    }

    #[test]
    fn release_frees_the_place_before_the_slot_is_dropped() {
        let limits = ConnectionLimits::new(10, 1, 10);
        let mut first = limits.admit(ip("192.0.2.1")).slot.unwrap();
        first.release();
        let second = limits.admit(ip("192.0.2.1"));
        assert!(second.slot.is_ok(), "QUIT freed the address's one place");
        drop(first);
        assert_eq!(limits.open(), 1, "the later drop frees nothing twice");
    }

    /// Whether `future` is ready at its first poll.
    fn futures_now(future: impl std::future::Future<Output = ()>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        future.as_mut().poll(&mut cx).is_ready()
    }
}
