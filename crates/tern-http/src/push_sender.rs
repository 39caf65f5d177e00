//! Push to URLs (RFC 8620 §7.2): the `PushVerification` a new
//! `PushSubscription` gets, and a `StateChange` to every verified one
//! whenever its account changes — one watcher per account, woken by the
//! Store's notification hub, which coalesces changes that come while a
//! POST is under way.
//!
//! The server makes these requests on a user's word, so where they may
//! go is limited: `https://` to public addresses unless the
//! administrator allows private ones (`[jmap] push_allow_private`).

use crate::jmap::push_subscription::{self, Subscription};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_mail::Mail;
use tern_store::AccountId;
use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::ServerName;

/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a push service keeps an undelivered notification (RFC 8030
/// §5.2 `TTL`): a state change is stale after a day.
const TTL_SECS: u32 = 86_400;

/// Why a push was not delivered.
#[derive(Debug)]
pub enum PushError {
    /// The URL is not one the server may call.
    Refused(String),
    /// The push service says the subscription is gone (404, 410).
    Gone,
    Failed(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Refused(why) => write!(f, "refused: {why}"),
            PushError::Gone => write!(f, "the push service no longer knows the subscription"),
            PushError::Failed(why) => write!(f, "{why}"),
        }
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local, unique-local, shared (CGNAT), documentation or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
                || o[0] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4
            // address, which decides; local-use NAT64 (64:ff9b:1::/48) is
            // local by definition.
            if s[0] == 0x64 && s[1] == 0xff9b {
                return s[2..6] == [0, 0, 0, 0] && is_public(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(s[1], s[2])));
            }
            let first = s[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Sends pushes; one per server.
pub struct PushSender {
    mail: Arc<Mail>,
    allow_private: bool,
    /// Accounts with a watcher running.
    watching: Mutex<HashSet<AccountId>>,
    stopping: Mutex<Option<watch::Receiver<bool>>>,
    /// Serialises changes to an account's subscriptions (read, change,
    /// write back).
    pub(crate) edit: tokio::sync::Mutex<()>,
}

impl PushSender {
    pub fn new(mail: Arc<Mail>, allow_private: bool) -> PushSender {
        PushSender {
            mail,
            allow_private,
            watching: Mutex::new(HashSet::new()),
            stopping: Mutex::new(None),
            edit: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether `url` is one the server may push to (scheme and form; the
    /// addresses are checked when it connects).
    pub fn url_allowed(&self, url: &str) -> Result<url::Url, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            other => return Err(format!("{other}: URLs are not allowed; use https")),
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("the URL names no host".into());
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("the URL may not carry credentials".into());
        }
        Ok(parsed)
    }

    /// Starts a watcher for every account with a verified subscription:
    /// once at server start.
    pub async fn start(self: &Arc<Self>, stopping: watch::Receiver<bool>) {
        if let Ok(mut s) = self.stopping.lock() {
            *s = Some(stopping);
        }
        let store = self.mail.store();
        let Ok(accounts) = store.list_accounts().await else {
            return;
        };
        for account in accounts {
            if let Ok(subs) = push_subscription::load(store, account.id).await {
                if subs.iter().any(|s| s.verified) {
                    self.watch(account.id);
                }
            }
        }
    }

    /// Makes sure a watcher runs for the account.
    pub fn watch(self: &Arc<Self>, account: AccountId) {
        let Some(stopping) = self.stopping.lock().ok().and_then(|s| s.clone()) else {
            return;
        };
        if let Ok(mut w) = self.watching.lock() {
            if !w.insert(account) {
                return;
            }
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.run(account, stopping).await;
            if let Ok(mut w) = me.watching.lock() {
                w.remove(&account);
            }
        });
    }

    /// Pushes each change of the account until it has no verified
    /// subscription left or the server stops.
    async fn run(&self, account: AccountId, mut stopping: watch::Receiver<bool>) {
        let store = self.mail.store();
        let mut changes = store.subscribe(account);
        changes.borrow_and_update();
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = async { drop(stopping.wait_for(|s| *s).await) } => return,
            }
            let modseq = *changes.borrow_and_update();
            let Ok(subs) = push_subscription::load(store, account).await else {
                continue;
            };
            let now = tern_core::time::unix_now();
            let live: Vec<&Subscription> = subs
                .iter()
                .filter(|s| s.verified && s.expires > now)
                .collect();
            if live.is_empty() {
                return;
            }
            for sub in live {
                let types = sub.types.clone().unwrap_or_else(|| vec!["*".into()]);
                let change = crate::jmap::push::state_change(account, modseq, &types);
                match self.post(&sub.url, &change).await {
                    Ok(()) => {}
                    Err(PushError::Gone) => {
                        tracing::info!("jmap push {}: gone at the push service; removed", sub.id);
                        let _guard = self.edit.lock().await;
                        let _ = push_subscription::remove(store, account, &sub.id).await;
                    }
                    Err(e) => tracing::info!("jmap push {}: {e}", sub.id),
                }
            }
        }
    }

    /// POSTs `body` as JSON to `url`.
    pub async fn post(&self, url: &str, body: &Value) -> Result<(), PushError> {
        tokio::time::timeout(POST_TIMEOUT, self.post_now(url, body))
            .await
            .map_err(|_| PushError::Failed(format!("no answer within {POST_TIMEOUT:?}")))?
    }

    async fn post_now(&self, url: &str, body: &Value) -> Result<(), PushError> {
        let parsed = self.url_allowed(url).map_err(PushError::Refused)?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addresses: Vec<std::net::SocketAddr> =
            tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
                .await
                .map_err(|e| PushError::Failed(format!("resolving {host}: {e}")))?
                .collect();
        let allowed: Vec<_> = addresses
            .into_iter()
            .filter(|a| self.allow_private || is_public(a.ip()))
            .collect();
        let Some(first) = allowed.first() else {
            return Err(PushError::Refused(format!(
                "{host} has no public address (see [jmap] push_allow_private)"
            )));
        };
        let tcp = tokio::net::TcpStream::connect(first)
            .await
            .map_err(|e| PushError::Failed(format!("connecting to {first}: {e}")))?;
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let request = Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "tern")
            .header("ttl", TTL_SECS.to_string())
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| PushError::Failed(e.to_string()))?;
        let status = if parsed.scheme() == "https" {
            let config = tern_core::tls::client_config()
                .map_err(|e| PushError::Failed(format!("TLS roots: {e}")))?;
            let name =
                ServerName::try_from(host.clone()).map_err(|e| PushError::Failed(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| PushError::Failed(format!("TLS with {host}: {e}")))?;
            send(tls, request).await?
        } else {
            send(tcp, request).await?
        };
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND | StatusCode::GONE => Err(PushError::Gone),
            s => Err(PushError::Failed(format!("the push service answered {s}"))),
        }
    }
}

/// One HTTP/1.1 request on a fresh connection; the response's status.
async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<StatusCode, PushError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| PushError::Failed(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| PushError::Failed(e.to_string()))?;
    Ok(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "2001:4860:4860::8888",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
