//! The control socket, `<data_dir>/control.sock`: how admin commands reach
//! the running server for what only it holds in memory — the login
//! limiter's blocked addresses (`tern security blocked`, `tern security
//! unblock`). Everything else the admin commands change lives in the store,
//! which both processes open.
//!
//! The socket is a Unix socket readable and writable by the server's user
//! only (mode 0600), so the same people who may open the store may use it.
//! A request is one line, `blocked` or `unblock ADDRESS`; the answer is one
//! JSON line, and the connection closes.

use super::Shutdown;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tern_core::AuthLimiter;
use tern_store::Store;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// The socket's file name inside the data directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// A request may take this long to arrive; the socket is for local tools.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the control socket and serves it until shutdown. The data
/// directory lock is held, so a socket file already there is a dead
/// server's and is replaced. A failure to bind is logged, not fatal: the
/// server works without it, only `tern security` cannot reach it.
pub fn start(
    data_dir: &Path,
    limiter: Arc<AuthLimiter>,
    store: Arc<dyn Store>,
    shutdown: Shutdown,
) -> Option<PathBuf> {
    let path = data_dir.join(CONTROL_SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(
                "control socket {}: {e}; `tern security` cannot reach this server",
                path.display()
            );
            return None;
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    let socket = path.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = shutdown.wait() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("control socket: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (limiter, store) = (limiter.clone(), store.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, serve_one(stream, &limiter, &*store))
                    .await;
            });
        }
        let _ = std::fs::remove_file(&socket);
    });
    Some(path)
}

/// Answers one request.
async fn serve_one(
    stream: UnixStream,
    limiter: &AuthLimiter,
    store: &dyn Store,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(1024)).read_line(&mut line).await?;
    let answer = answer(line.trim(), limiter, store).await;
    write.write_all(format!("{answer}\n").as_bytes()).await?;
    write.shutdown().await
}

/// The JSON answer to a request line. With a store several nodes share,
/// the blocks the other nodes' failures make count too (`ClusterStore`).
async fn answer(request: &str, limiter: &AuthLimiter, store: &dyn Store) -> serde_json::Value {
    use serde_json::json;
    let (command, argument) = request.split_once(' ').unwrap_or((request, ""));
    let now = tern_core::time::unix_now();
    let window = limiter.window().as_secs() as i64;
    match command {
        "blocked" => {
            let mut blocked: Vec<serde_json::Value> = limiter
                .blocked()
                .iter()
                .map(|b| {
                    json!({
                        "address": b.address.to_string(),
                        "ipv6_prefix": b.address.is_ipv6().then_some(64),
                        "failures": b.failures,
                        "retry_after_secs": b.retry_after.as_secs(),
                    })
                })
                .collect();
            let shared = match store
                .clients_with_login_failures(now - window, limiter.max_failures())
                .await
            {
                Ok(shared) => shared,
                Err(e) => {
                    return json!({ "error": format!("reading the cluster's failed logins: {e}") })
                }
            };
            for (client, failures, latest) in shared {
                if blocked.iter().any(|b| b["address"] == client.as_str()) {
                    continue;
                }
                let is_ipv6 = client.contains(':');
                blocked.push(json!({
                    "address": client,
                    "ipv6_prefix": is_ipv6.then_some(64),
                    "failures": failures,
                    "retry_after_secs": (latest + window - now).max(1),
                }));
            }
            json!({ "blocked": blocked })
        }
        "unblock" => match argument.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let client = tern_core::auth_limit::client_key(ip).to_string();
                let shared = store
                    .login_failures(&client, now - window, None)
                    .await
                    .unwrap_or(0)
                    >= limiter.max_failures();
                if let Err(e) = store.clear_login_failures(&client).await {
                    return json!({ "error": format!("clearing the cluster's failed logins: {e}") });
                }
                let was = limiter.unblock(ip) || shared;
                if was {
                    tracing::info!(client = %ip, "login block lifted by an administrator");
                }
                json!({ "address": ip.to_string(), "was_blocked": was })
            }
            Err(_) => json!({ "error": format!("{argument:?} is not an IP address") }),
        },
        _ => json!({ "error": format!("unknown request {command:?}") }),
    }
}
