//! Who is asking: HTTP Basic credentials (RFC 7617) or an API token as a
//! Bearer token (RFC 6750; `tern token create`), accepted only over TLS or
//! from loopback. Basic credentials are checked by the mail layer's one login path (the
//! failure limiter, Argon2). A client sends them with every request, so
//! a success is remembered for a few minutes under a salted hash of the
//! credentials: the next request of the same client costs a hash, not
//! Argon2; a wrong password is never remembered.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tern_store::AccountId;

/// How long a checked login is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
/// Logins remembered at most (then the cache starts over).
const MAX_REMEMBERED: usize = 10_000;

/// Recently checked logins.
pub struct LoginCache {
    salt: [u8; 16],
    checked: Mutex<HashMap<[u8; 32], (AccountId, Instant)>>,
}

impl Default for LoginCache {
    fn default() -> LoginCache {
        // Salt from the OS-seeded hasher keys: enough that the map's keys
        // say nothing about the passwords to anyone reading memory dumps
        // across restarts.
        use std::hash::{BuildHasher, Hasher};
        let mut salt = [0u8; 16];
        for chunk in salt.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x7465_726e);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        LoginCache {
            salt,
            checked: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginCache {
    fn key(&self, user: &str, secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(secret.as_bytes());
        h.finalize().into()
    }

    fn get(&self, key: &[u8; 32]) -> Option<AccountId> {
        let map = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, at)| at.elapsed() < REMEMBER)
            .map(|(id, _)| *id)
    }

    /// Forgets the account's remembered logins (its password changed).
    pub fn forget(&self, account: AccountId) {
        let mut map = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (id, _)| *id != account);
    }

    fn put(&self, key: [u8; 32], account: AccountId) {
        let mut map = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_REMEMBERED {
            map.retain(|_, (_, at)| at.elapsed() < REMEMBER);
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(key, (account, Instant::now()));
    }
}

/// Why a request is not authenticated.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No credentials, or not Basic.
    Missing,
    /// Basic over plain HTTP from another machine.
    Insecure,
    /// Wrong user or password (or blocked for too many of them).
    Wrong,
    /// The Store could not be asked.
    Unavailable,
}

/// `user` and `password` of a Basic `Authorization` value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The token of a Bearer `Authorization` value (RFC 6750 §2.1).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl crate::HttpServer {
    /// The account the request's credentials name.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        peer: SocketAddr,
        secure: bool,
    ) -> Result<AccountId, Refused> {
        let authorization = authorization.ok_or(Refused::Missing)?;
        if let Some(token) = bearer_token(authorization) {
            if !secure && !peer.ip().is_loopback() {
                return Err(Refused::Insecure);
            }
            return match self.mail.account_for_token(token).await {
                Ok(Some(account)) => Ok(account.id),
                Ok(None) => {
                    tracing::info!(client = %peer.ip(), "http: an unknown or expired API token");
                    Err(Refused::Wrong)
                }
                Err(_) => Err(Refused::Unavailable),
            };
        }
        let (user, password) = basic_credentials(authorization).ok_or(Refused::Missing)?;
        if !secure && !peer.ip().is_loopback() {
            return Err(Refused::Insecure);
        }
        let key = self.logins.key(&user, &password);
        if let Some(account) = self.logins.get(&key) {
            return Ok(account);
        }
        match self.mail.authenticate("http", peer, &user, &password).await {
            Ok(account) => {
                self.logins.put(key, account.id);
                Ok(account.id)
            }
            Err(tern_mail::AuthError::Unavailable(_)) => Err(Refused::Unavailable),
            Err(_) => Err(Refused::Wrong),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_values() {
        assert_eq!(
            basic_credentials("Basic am9lQGV4YW1wbGUudGVzdDpzM2NyZXQ6eA=="),
            Some(("joe@example.test".into(), "s3cret:x".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic"), None);
    }

    #[test]
    fn remembered_logins() {
        let cache = LoginCache::default();
        let key = cache.key("joe", "pw");
        assert_eq!(cache.get(&key), None);
        cache.put(key, AccountId(7));
        assert_eq!(cache.get(&key), Some(AccountId(7)));
        assert_eq!(cache.get(&cache.key("joe", "other")), None);
    }
}
