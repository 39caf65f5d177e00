//! Failed logins per client address, to slow password guessing.
//!
//! An [`AuthLimiter`] remembers when each client address last failed to log
//! in. Once an address has `max_failures` failures within `window`, further
//! attempts are refused until the oldest of them is `window` old. The
//! account itself is never locked, so a guesser
//! elsewhere cannot lock its owner out. One limiter is shared (through an
//! `Arc`) by every protocol that takes passwords: SMTP AUTH, IMAP, POP3, HTTP.
//!
//! The protocols call [`AuthLimiter::begin`] before verifying a password: a
//! refused attempt is not verified (no Argon2 work). An admitted attempt is
//! *in flight* until it ends, and an attempt that does not end with
//! [`Attempt::succeeded`] counts as a failure. An address may have at most
//! `max_failures` failures and attempts in flight together; further attempts
//! wait for one in flight to end rather than being refused, so many parallel
//! guesses get no more tries than guesses in a row, while many parallel
//! *right* passwords (a mail client opening five connections, an office
//! behind one NAT address) all get in, a few milliseconds apart.
//!
//! Addresses are grouped as the network hands them out: an IPv4 address is
//! one client (and an IPv4-mapped IPv6 address is that IPv4 address), while
//! IPv6 is counted per /64, because one host usually has a whole /64 (RFC 4291
//! §2.5.1, RFC 7421) and could otherwise take a fresh address per guess.
//!
//! A success does not forgive the address's earlier failures: otherwise an
//! attacker holding one valid account here could reset the count between
//! guesses at others. Failures expire with the window instead.
//! ([`AuthLimiter::record_success`], which forgives them all, stays for
//! callers that want it; the protocols do not use it.)
//!
//! Memory is bounded: one address keeps at most `max_failures` timestamps,
//! and when more than [`AuthLimiter::MAX_TRACKED`] addresses are held, those
//! whose failures have all expired are dropped. If every entry is still live,
//! a failure from a new address goes uncounted until some entry expires.
//!
//! Networks listed in `limits.auth_exempt_networks` (a monitoring host, an
//! office NAT) are never counted nor refused. An administrator sees the
//! blocked addresses with [`AuthLimiter::blocked`] and lifts a block with
//! [`AuthLimiter::unblock`] (`tern security blocked`, `tern security unblock`).
//!
//! The lock is held only for map operations: never across I/O or a password
//! check.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::net::IpNetwork;

/// Counts failed logins per client address; see the module documentation.
#[derive(Debug)]
pub struct AuthLimiter {
    /// Failures within `window` after which an address is refused; at least 1.
    max_failures: u32,
    window: Duration,
    state: Mutex<State>,
    /// Client networks never counted nor refused.
    exempt: Vec<IpNetwork>,
    /// Signalled whenever an attempt ends, for the attempts waiting in
    /// [`AuthLimiter::begin`] on their address's attempts in flight.
    attempt_ended: tokio::sync::Notify,
}

/// A login attempt in flight. Dropping it without calling
/// [`Attempt::succeeded`] counts a failure: a wrong password, but also an
/// attempt abandoned half-way, so cancelling cannot be used to guess for free.
pub struct Attempt<'a> {
    limiter: &'a AuthLimiter,
    ip: IpAddr,
    succeeded: bool,
    /// From an exempt network: neither in flight nor counted.
    exempt: bool,
}

impl Attempt<'_> {
    /// The password was right: the attempt ends without counting.
    pub fn succeeded(mut self) {
        self.succeeded = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.exempt {
            return;
        }
        let now = Instant::now();
        {
            let mut state = self.limiter.lock();
            let key = key(self.ip);
            if let Some(n) = state.in_flight.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.in_flight.remove(&key);
                }
            }
            if !self.succeeded {
                self.limiter.record_failure_locked(&mut state, self.ip, now);
            }
        }
        self.limiter.attempt_ended.notify_waiters();
    }
}

#[derive(Debug, Default)]
struct State {
    /// Per address key (see [`key`]), the failures within the window, oldest
    /// first; never more than `max_failures` of them, never empty.
    failures: HashMap<IpAddr, VecDeque<Instant>>,
    /// Per address key, the attempts admitted by [`AuthLimiter::begin`] and
    /// not yet ended; never zero. Bounded by the open connections.
    in_flight: HashMap<IpAddr, usize>,
    /// When the table was last found full of live entries: the oldest "newest
    /// failure" among them. Nothing can expire before it is `window` old, so
    /// until then a full table is not scanned again.
    full_since: Option<Instant>,
}

/// An attempt refused by [`AuthLimiter::check`]: how long until the address
/// may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// The wait in whole seconds, rounded up and at least 1 (what a client
    /// should be told; "0 seconds" would invite an immediate retry).
    pub fn secs(&self) -> u64 {
        let secs = self
            .0
            .as_secs()
            .saturating_add(u64::from(self.0.subsec_nanos() > 0));
        secs.max(1)
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.secs();
        let unit = if secs == 1 { "second" } else { "seconds" };
        write!(
            f,
            "too many failed logins from this address; try again in {secs} {unit}"
        )
    }
}

impl std::error::Error for RetryAfter {}

/// An address refused for now, as [`AuthLimiter::blocked`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The address, or for IPv6 the first address of its /64.
    pub address: IpAddr,
    /// Failures within the window.
    pub failures: usize,
    /// Until the address may try again.
    pub retry_after: Duration,
}

impl AuthLimiter {
    /// 100,000 addresses: a few megabytes of timestamps at the default of
    /// 5 failures each, far more distinct guessers than a small server meets
    /// within one window.
    pub const MAX_TRACKED: usize = 100_000;

    /// A limiter refusing an address after `max_failures` failures within
    /// `window`. A `max_failures` of 0 is taken as 1.
    pub fn new(max_failures: u32, window: Duration) -> AuthLimiter {
        AuthLimiter {
            max_failures: max_failures.max(1),
            window,
            exempt: Vec::new(),
            attempt_ended: tokio::sync::Notify::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// A limiter configured by `[limits]` (`max_auth_failures`,
    /// `auth_failure_window_secs`).
    pub fn from_limits(limits: &Limits) -> AuthLimiter {
        AuthLimiter::new(
            limits.max_auth_failures,
            Duration::from_secs(limits.auth_failure_window_secs),
        )
        .with_exempt(limits.auth_exempt_networks.clone())
    }

    /// The same limiter, never counting nor refusing clients in `networks`.
    pub fn with_exempt(mut self, networks: Vec<IpNetwork>) -> AuthLimiter {
        self.exempt = networks;
        self
    }

    /// Whether `ip` is in an exempt network.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|net| net.contains(ip))
    }

    /// The addresses refused now, most failures first.
    pub fn blocked(&self) -> Vec<Blocked> {
        let now = Instant::now();
        let mut state = self.lock();
        let keys: Vec<IpAddr> = state.failures.keys().copied().collect();
        let mut out = Vec::new();
        for address in keys {
            if let Err(retry) = self.check_locked(&mut state, address, now) {
                let failures = state.failures.get(&address).map_or(0, |t| t.len());
                out.push(Blocked {
                    address,
                    failures,
                    retry_after: retry.0,
                });
            }
        }
        out.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.address.cmp(&b.address)));
        out
    }

    /// Forgets the failures of `ip` (its /64 for IPv6): it may log in at
    /// once. Whether it was blocked.
    pub fn unblock(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        let was_blocked = self.check_locked(&mut state, ip, now).is_err();
        state.failures.remove(&key(ip));
        drop(state);
        self.attempt_ended.notify_waiters();
        was_blocked
    }

    /// Failures within the window after which an address is refused.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// How long a failure counts.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether `ip` may attempt a login now.
    pub fn check(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        self.check_at(ip, Instant::now())
    }

    /// Counts a failed login from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    /// Forgets the failures of `ip` (of its /64, for IPv6) after a successful
    /// login.
    pub fn record_success(&self, ip: IpAddr) {
        self.lock().failures.remove(&key(ip));
    }

    /// Starts a login attempt: refused if the address has `max_failures`
    /// failures within the window; otherwise admitted once the address's
    /// failures and attempts in flight are fewer than `max_failures`, waiting
    /// for attempts in flight to end until then.
    pub async fn begin(&self, ip: IpAddr) -> Result<Attempt<'_>, RetryAfter> {
        if self.is_exempt(ip) {
            return Ok(Attempt {
                limiter: self,
                ip,
                succeeded: false,
                exempt: true,
            });
        }
        loop {
            // Registered before looking, so an attempt ending in between
            // still wakes us.
            let mut ended = std::pin::pin!(self.attempt_ended.notified());
            ended.as_mut().enable();
            {
                let mut state = self.lock();
                let failures = self.check_locked(&mut state, ip, Instant::now())?;
                let in_flight = state.in_flight.entry(key(ip)).or_insert(0);
                if failures + *in_flight < self.max_failures as usize {
                    *in_flight += 1;
                    return Ok(Attempt {
                        limiter: self,
                        ip,
                        succeeded: false,
                        exempt: false,
                    });
                }
                if *in_flight == 0 {
                    // Unreachable (failures alone would have refused), but
                    // never leave a zero behind.
                    state.in_flight.remove(&key(ip));
                }
            }
            ended.await;
        }
    }

    /// [`AuthLimiter::check`] at the time `now`.
    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let mut state = self.lock();
        self.check_locked(&mut state, ip, now).map(|_| ())
    }

    /// Whether `ip` may attempt a login at `now`; if so, how many failures
    /// it has within the window.
    fn check_locked(
        &self,
        state: &mut State,
        ip: IpAddr,
        now: Instant,
    ) -> Result<usize, RetryAfter> {
        let key = key(ip);
        let Some(times) = state.failures.get_mut(&key) else {
            return Ok(0);
        };
        self.expire(times, now);
        match times.front() {
            None => {
                state.failures.remove(&key);
                Ok(0)
            }
            Some(&oldest) if times.len() >= self.max_failures as usize => Err(RetryAfter(
                self.window
                    .saturating_sub(now.saturating_duration_since(oldest)),
            )),
            Some(_) => Ok(times.len()),
        }
    }

    /// [`AuthLimiter::record_failure`] at the time `now`.
    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let mut state = self.lock();
        self.record_failure_locked(&mut state, ip, now);
    }

    /// Counts a failure from `ip` at `now`, under the lock.
    fn record_failure_locked(&self, state: &mut State, ip: IpAddr, now: Instant) {
        let key = key(ip);
        if state.failures.len() >= AuthLimiter::MAX_TRACKED
            && !state.failures.contains_key(&key)
            && !self.make_room(state, now)
        {
            return;
        }
        let times = state.failures.entry(key).or_default();
        self.expire(times, now);
        times.push_back(now);
        while times.len() > self.max_failures as usize {
            times.pop_front();
        }
    }

    /// Drops the entries whose failures have all expired; whether there is
    /// now room for one more.
    fn make_room(&self, state: &mut State, now: Instant) -> bool {
        if let Some(since) = state.full_since {
            if !self.expired(since, now) {
                return false;
            }
        }
        state
            .failures
            .retain(|_, times| times.back().is_some_and(|&t| !self.expired(t, now)));
        if state.failures.len() < AuthLimiter::MAX_TRACKED {
            state.full_since = None;
            return true;
        }
        state.full_since = state
            .failures
            .values()
            .filter_map(|t| t.back())
            .min()
            .copied();
        false
    }

    /// Drops the failures of one address that are `window` old.
    fn expire(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|&t| self.expired(t, now)) {
            times.pop_front();
        }
    }

    /// Whether a failure at `at` no longer counts at `now`.
    fn expired(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) >= self.window
    }

    /// The state. Nothing here panics while holding the lock; were something
    /// to, the map would still be a valid map (at worst one address's count
    /// off by one), so a poisoned lock is used as is rather than spreading
    /// the panic to every login.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The client an address stands for: an IPv4 address (an IPv4-mapped IPv6
/// address is that IPv4 address), or an IPv6 /64. What failures are
/// counted against, here and in a store shared by several nodes.
pub fn client_key(ip: IpAddr) -> IpAddr {
    key(ip)
}

/// The address a failure is counted against: an IPv4 address itself (also
/// when IPv4-mapped), an IPv6 address's /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn attempts_count_unless_they_succeed() {
        let l = AuthLimiter::new(2, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        l.begin(ip).await.unwrap().succeeded();
        l.begin(ip).await.unwrap().succeeded();
        // Wrong passwords: the attempt is dropped without succeeded().
        drop(l.begin(ip).await.unwrap());
        l.begin(ip).await.unwrap().succeeded();
        drop(l.begin(ip).await.unwrap());
        assert!(l.begin(ip).await.is_err());
        assert!(l.check(ip).is_err());
    }

    #[tokio::test]
    async fn parallel_attempts_wait_instead_of_being_refused() {
        let l = Arc::new(AuthLimiter::new(2, Duration::from_secs(60)));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let a = l.begin(ip).await.unwrap();
        let b = l.begin(ip).await.unwrap();
        // Two in flight: a third waits for one of them.
        let third = {
            let l = l.clone();
            tokio::spawn(async move { l.begin(ip).await.map(|a| a.succeeded()) })
        };
        tokio::task::yield_now().await;
        assert!(!third.is_finished());
        a.succeeded();
        third.await.unwrap().unwrap();
        // b fails; a fourth now meets one failure and nothing in flight.
        drop(b);
        let d = l.begin(ip).await.unwrap();
        // One failure plus d in flight: a fifth waits, then d fails and the
        // fifth is refused without ever being verified.
        let fifth = {
            let l = l.clone();
            tokio::spawn(async move { l.begin(ip).await.map(|a| a.succeeded()) })
        };
        tokio::task::yield_now().await;
        assert!(!fifth.is_finished());
        drop(d);
        assert!(fifth.await.unwrap().is_err());
    }

    use std::net::Ipv4Addr;
    use std::sync::Arc;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const MIN: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn blocked_addresses_are_listed_and_can_be_unblocked() {
        let limiter = AuthLimiter::new(2, MIN);
        for _ in 0..2 {
            drop(limiter.begin(ip("192.0.2.9")).await.unwrap());
        }
        drop(limiter.begin(ip("2001:db8::5")).await.unwrap());
        let blocked = limiter.blocked();
        assert_eq!(blocked.len(), 1, "{blocked:?}");
        assert_eq!(blocked[0].address, ip("192.0.2.9"));
        assert_eq!(blocked[0].failures, 2);
        assert!(limiter.begin(ip("192.0.2.9")).await.is_err());
        assert!(limiter.unblock(ip("192.0.2.9")));
        assert!(!limiter.unblock(ip("192.0.2.9")), "no longer blocked");
        assert!(limiter.blocked().is_empty());
        assert!(limiter.begin(ip("192.0.2.9")).await.is_ok());
    }

    #[tokio::test]
    async fn exempt_networks_are_never_counted() {
        let limiter = AuthLimiter::new(1, MIN).with_exempt(vec!["10.0.0.0/8".parse().unwrap()]);
        for _ in 0..5 {
            drop(limiter.begin(ip("10.1.2.3")).await.unwrap());
        }
        assert!(limiter.blocked().is_empty());
        drop(limiter.begin(ip("192.0.2.1")).await.unwrap());
        assert!(limiter.begin(ip("192.0.2.1")).await.is_err());
    }

    #[test]
    fn shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<AuthLimiter>();
        send_sync::<std::sync::Arc<AuthLimiter>>();
    }

    #[test]
    fn refuses_after_max_failures_until_the_window_passes() {
        let limiter = AuthLimiter::new(3, 5 * MIN);
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for i in 0..3 {
            let t = t0 + i * MIN;
            assert_eq!(limiter.check_at(a, t), Ok(()), "attempt {i}");
            limiter.record_failure_at(a, t);
        }
        // Failures at 0, 1 and 2 minutes: refused until the first expires.
        assert_eq!(limiter.check_at(a, t0 + 2 * MIN), Err(RetryAfter(3 * MIN)));
        assert_eq!(
            limiter.check_at(a, t0 + 4 * MIN + Duration::from_millis(500)),
            Err(RetryAfter(Duration::from_millis(59_500)))
        );
        assert_eq!(limiter.check_at(a, t0 + 5 * MIN), Ok(()));
        // One more failure fills the window again, until the next expires.
        limiter.record_failure_at(a, t0 + 5 * MIN);
        assert_eq!(limiter.check_at(a, t0 + 5 * MIN), Err(RetryAfter(MIN)));
        assert_eq!(limiter.check_at(a, t0 + 6 * MIN), Ok(()));
        // Other addresses are unaffected.
        assert_eq!(limiter.check_at(ip("192.0.2.2"), t0 + 2 * MIN), Ok(()));
    }

    #[test]
    fn success_forgets() {
        let limiter = AuthLimiter::new(2, 5 * MIN);
        let a = ip("198.51.100.9");
        let t0 = Instant::now();
        limiter.record_failure_at(a, t0);
        limiter.record_failure_at(a, t0);
        assert!(limiter.check_at(a, t0).is_err());
        limiter.record_success(a);
        assert_eq!(limiter.check_at(a, t0), Ok(()));
        limiter.record_failure_at(a, t0);
        assert_eq!(limiter.check_at(a, t0), Ok(()), "the count restarted");
    }

    #[test]
    fn one_address_keeps_at_most_max_failures() {
        let limiter = AuthLimiter::new(4, 5 * MIN);
        let a = ip("203.0.113.5");
        let t0 = Instant::now();
        for i in 0..1000 {
            limiter.record_failure_at(a, t0 + Duration::from_millis(i));
        }
        let state = limiter.lock();
        assert_eq!(state.failures.len(), 1);
        assert_eq!(state.failures[&a].len(), 4);
        assert_eq!(
            state.failures[&a].front(),
            Some(&(t0 + Duration::from_millis(996)))
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_as_ipv4() {
        let limiter = AuthLimiter::new(2, 5 * MIN);
        let t0 = Instant::now();
        limiter.record_failure_at(ip("2001:db8:1:2::1"), t0);
        limiter.record_failure_at(ip("2001:db8:1:2:ffff::9"), t0);
        assert!(limiter.check_at(ip("2001:db8:1:2::abcd"), t0).is_err());
        assert_eq!(limiter.check_at(ip("2001:db8:1:3::1"), t0), Ok(()));
        limiter.record_success(ip("2001:db8:1:2::77"));
        assert_eq!(limiter.check_at(ip("2001:db8:1:2::1"), t0), Ok(()));

        limiter.record_failure_at(ip("::ffff:192.0.2.1"), t0);
        limiter.record_failure_at(ip("192.0.2.1"), t0);
        assert!(limiter.check_at(ip("192.0.2.1"), t0).is_err());
        assert!(limiter.check_at(ip("::ffff:192.0.2.1"), t0).is_err());
        assert_eq!(limiter.check_at(ip("192.0.2.2"), t0), Ok(()));
    }

    #[test]
    fn expired_addresses_are_forgotten() {
        let limiter = AuthLimiter::new(2, MIN);
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        limiter.record_failure_at(a, t0);
        assert_eq!(limiter.check_at(a, t0 + MIN), Ok(()));
        assert!(limiter.lock().failures.is_empty());
        // A failure after the window starts a fresh count.
        limiter.record_failure_at(a, t0);
        limiter.record_failure_at(a, t0 + 2 * MIN);
        assert_eq!(limiter.check_at(a, t0 + 2 * MIN), Ok(()));
    }

    #[test]
    fn the_table_is_bounded() {
        let limiter = AuthLimiter::new(1, MIN);
        let t0 = Instant::now();
        let nth = |i: usize| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..AuthLimiter::MAX_TRACKED {
            limiter.record_failure_at(nth(i), t0);
        }
        // Full of live entries: a new address goes uncounted, known ones
        // still count.
        let new = nth(AuthLimiter::MAX_TRACKED);
        limiter.record_failure_at(new, t0 + Duration::from_secs(1));
        assert_eq!(limiter.lock().failures.len(), AuthLimiter::MAX_TRACKED);
        assert_eq!(limiter.check_at(new, t0 + Duration::from_secs(1)), Ok(()));
        assert!(limiter
            .check_at(nth(0), t0 + Duration::from_secs(1))
            .is_err());
        limiter.record_failure_at(nth(0), t0 + Duration::from_secs(2));
        assert_eq!(limiter.lock().full_since, Some(t0));

        // Once the window has passed, the expired entries make room.
        limiter.record_failure_at(new, t0 + MIN);
        let state = limiter.lock();
        assert_eq!(state.failures.len(), 2, "nth(0) (refreshed) and new");
        assert_eq!(state.full_since, None);
    }

    #[test]
    fn retry_after_message() {
        let message = |d| RetryAfter(d).to_string();
        assert_eq!(
            message(Duration::from_secs(120)),
            "too many failed logins from this address; try again in 120 seconds"
        );
        assert!(message(Duration::from_millis(1500)).ends_with("in 2 seconds"));
        assert!(message(Duration::ZERO).ends_with("in 1 second"));
        assert_eq!(RetryAfter(Duration::MAX).secs(), u64::MAX);
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
    }

    #[test]
    fn zero_max_failures_is_one_and_huge_windows_do_not_overflow() {
        let limiter = AuthLimiter::new(0, Duration::MAX);
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        assert_eq!(limiter.check_at(a, t0), Ok(()));
        limiter.record_failure_at(a, t0);
        let e = limiter.check_at(a, t0 + MIN).unwrap_err();
        assert_eq!(e.0, Duration::MAX - MIN);
        assert!(e.to_string().contains("try again in"));
    }

    #[test]
    fn from_limits() {
        let limiter = AuthLimiter::from_limits(&Limits::default());
        assert_eq!(limiter.max_failures(), 5);
        assert_eq!(limiter.window(), Duration::from_secs(300));
    }
}
