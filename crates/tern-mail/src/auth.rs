//! One login for every protocol.
//!
//! [`Mail::authenticate`] is what SMTP AUTH, IMAP LOGIN/AUTHENTICATE, POP3
//! USER/PASS and AUTH, and every later protocol (JMAP, the webmail,
//! ActiveSync) call with the client's address and the credentials they
//! decoded. In order:
//!
//! 1. the failure limiter admits the attempt or refuses it for a while
//!    (failures and attempts in flight per address, IPv6 per /64; see
//!    `tern_core::auth_limit`), before any work is spent on it; with a store
//!    several nodes share, the failures every node recorded count too
//!    (`ClusterStore`), so N nodes do not give a guesser N times the tries;
//! 2. the account is looked up by its address;
//! 3. the password is checked with Argon2id, at the same cost whether or
//!    not the account exists, so timing does not reveal accounts;
//! 4. the result is accounted: a success ends the attempt without a
//!    failure, anything else (a wrong password, an unknown user, a store
//!    fault, a cancelled future) counts against the address.
//!
//! Protocols decide only how to say the outcome on their wire.

use crate::Mail;
use std::net::SocketAddr;
use tern_core::auth_limit::RetryAfter;
use tern_core::password::verify_login_async;
use tern_store::{Account, StoreError};

/// Why a login did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Too many failures from this address lately; try after the delay.
    #[error("{0}")]
    RateLimited(RetryAfter),
    /// Unknown user or wrong password (indistinguishable on purpose).
    #[error("invalid user name or password")]
    InvalidCredentials,
    /// The directory could not be read: a temporary failure.
    #[error("looking up the account: {0}")]
    Unavailable(#[source] StoreError),
}

impl Mail {
    /// Checks `user`'s `secret` for a client at `peer`; the account on
    /// success. `protocol` names the service in the log line.
    pub async fn authenticate(
        &self,
        protocol: &str,
        peer: SocketAddr,
        user: &str,
        secret: &str,
    ) -> Result<Account, AuthError> {
        let shared = SharedFailures::new(self, peer);
        // Counted as a failure for every node until it succeeds, so that
        // guesses made in parallel on several nodes all count at once.
        let (pending, cluster_admitted) = match shared.admit().await {
            Ok(admitted) => admitted,
            Err(retry) => {
                tracing::info!(
                    client = %peer.ip(),
                    "{protocol} login refused for {user:?}: address blocked after failed logins on the cluster ({retry})"
                );
                return Err(AuthError::RateLimited(retry));
            }
        };
        let refused = |retry| {
            tracing::info!(
                client = %peer.ip(),
                "{protocol} login refused for {user:?}: address blocked after failed logins ({retry})"
            );
            AuthError::RateLimited(retry)
        };
        let attempt = match self.limiter.begin(peer.ip()).await {
            Ok(attempt) => attempt,
            // Every failure this node counted is in the cluster's count
            // too, which has just admitted the attempt: a block this node
            // still remembers was lifted on another node (`tern security
            // unblock`) or has run out by the database's clock.
            Err(_) if cluster_admitted => {
                self.limiter.unblock(peer.ip());
                self.limiter.begin(peer.ip()).await.map_err(refused)?
            }
            Err(retry) => return Err(refused(retry)),
        };
        // Dropping `attempt` without `succeeded` counts a failure, so every
        // early return below (a store fault too) costs the guesser.
        let account = match self.store.account_by_address(user).await {
            Ok(account) => account,
            Err(e) => {
                tracing::error!("{protocol} {peer}: looking up {user:?}: {e}");
                return Err(AuthError::Unavailable(e));
            }
        };
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let ok = verify_login_async(secret.to_string(), hash).await;
        match account.filter(|_| ok) {
            Some(account) => {
                attempt.succeeded();
                shared.forget(pending).await;
                tracing::info!("{protocol} {peer}: {} logged in", account.address);
                Ok(account)
            }
            None => {
                tracing::info!(client = %peer.ip(), "{protocol} login failed for {user:?}");
                Err(AuthError::InvalidCredentials)
            }
        }
    }
}

/// How long an attempt waits for the client's attempts in flight on other
/// nodes to end before it is refused, and how often it looks.
const ADMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const ADMIT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// A client's failures as the store counts them for every node (nothing,
/// for a store one server uses alone: see `ClusterStore`).
struct SharedFailures<'a> {
    mail: &'a Mail,
    /// The client's key, or `None` for an exempt network.
    client: Option<String>,
}

impl<'a> SharedFailures<'a> {
    fn new(mail: &'a Mail, peer: SocketAddr) -> SharedFailures<'a> {
        let client = (!mail.limiter.is_exempt(peer.ip()))
            .then(|| tern_core::auth_limit::client_key(peer.ip()).to_string());
        SharedFailures { mail, client }
    }

    /// Now and the start of the window, in unix seconds.
    fn since(&self) -> (i64, i64) {
        let now = tern_core::time::unix_now();
        let window = self.mail.limiter.window().as_secs() as i64;
        (now, now - window)
    }

    /// Admits an attempt as the local limiter does, over every node: the
    /// attempt is recorded as a failure first, then admitted if the
    /// client's failures (attempts in flight included) are within the
    /// limit; otherwise its record is taken back and it waits for attempts
    /// in flight to end, as many right passwords at once (a client opening
    /// several connections, an office behind one address) do. Refused when
    /// the failures stay (they are real ones). `Ok((Some(at), _))` is the
    /// record to take back on success; the flag says the store shared by
    /// the nodes counted the client's failures and found them within the
    /// limit. A store that cannot say does not lock everyone out: the
    /// local limiter still counts.
    async fn admit(&self) -> Result<(Option<i64>, bool), RetryAfter> {
        let Some(client) = self.client.as_deref() else {
            return Ok((None, false));
        };
        let store = &self.mail.store;
        let max = self.mail.limiter.max_failures();
        let started = std::time::Instant::now();
        loop {
            let (now, since) = self.since();
            let record = match store.record_login_failure(client, now, since).await {
                Ok(record) => record,
                Err(e) => {
                    tracing::warn!("recording a login attempt for the cluster: {e}");
                    return Ok((None, false));
                }
            };
            // Only the records before this one count: of attempts made at
            // once, the first ones go ahead while the later wait, rather
            // than all stepping back together.
            match store.login_failures(client, since, Some(record)).await {
                Ok(n) if n <= max => return Ok((Some(record), store.shared_by_nodes())),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("reading the cluster's failed logins: {e}");
                    return Ok((Some(record), false));
                }
            }
            self.forget(Some(record)).await;
            if started.elapsed() >= ADMIT_WAIT {
                return Err(RetryAfter(self.mail.limiter.window()));
            }
            tokio::time::sleep(ADMIT_POLL).await;
        }
    }

    /// Takes back the failure [`SharedFailures::admit`] counted.
    async fn forget(&self, record: Option<i64>) {
        let (Some(client), Some(record)) = (self.client.as_deref(), record) else {
            return;
        };
        if let Err(e) = self.mail.store.forget_login_failure(client, record).await {
            tracing::warn!("forgetting a successful login's count for the cluster: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::password::hash_password;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn right_wrong_unknown_and_limited() {
        let hash = hash_password("right").unwrap();
        let (mail, _joe, _dir) = crate::test_support::mail_with_joe(&hash, 2).await;
        let peer: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let ok = mail
            .authenticate("test", peer, "joe@example.test", "right")
            .await
            .unwrap();
        assert_eq!(ok.address, "joe@example.test");
        assert!(matches!(
            mail.authenticate("test", peer, "joe@example.test", "wrong")
                .await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            mail.authenticate("test", peer, "nobody@example.test", "right")
                .await,
            Err(AuthError::InvalidCredentials)
        ));
        // Two failures: this address is refused even with the right password.
        assert!(matches!(
            mail.authenticate("test", peer, "joe@example.test", "right")
                .await,
            Err(AuthError::RateLimited(_))
        ));
        // Another address is not.
        let other: SocketAddr = "192.0.2.2:1000".parse().unwrap();
        assert!(mail
            .authenticate("test", other, "joe@example.test", "right")
            .await
            .is_ok());
    }
}
