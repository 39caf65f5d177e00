//! `POST /webmail/login`, `GET /webmail/session`, `POST /webmail/logout`,
//! the session cookie and its CSRF token.

use crate::response::{self, Body};
use crate::HttpServer;
use base64::Engine;
use hyper::header::{HeaderMap, HeaderValue, SET_COOKIE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use tern_store::AccountId;

/// The session cookie's name.
pub const COOKIE: &str = "tern_session";
/// The header a cookie-authenticated request that changes state carries.
pub const CSRF_HEADER: &str = "x-tern-csrf";
/// A session without "remember me" lasts the browser session, at most a day.
const SESSION_DAYS: u32 = 1;
/// "Remember me": a month.
const REMEMBER_DAYS: u32 = 30;

/// The session token in the request's cookies, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: derived from the session token, so the
/// server keeps nothing more; a page that cannot read the cookie cannot
/// compute it.
pub fn csrf_token(session: &str) -> String {
    let digest = Sha256::digest(format!("tern-csrf\0{session}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// Whether the request carries the session's CSRF token.
pub fn csrf_ok(headers: &HeaderMap, session: &str) -> bool {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let want = csrf_token(session);
    // Compared in full whatever differs first.
    given.len() == want.len()
        && given
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn cookie(value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c)
        .unwrap_or_else(|_| HeaderValue::from_static("tern_session=; Max-Age=0"))
}

/// `POST /webmail/login` with `{"username", "password", "remember"}`:
/// the shared login check (and its limiter), then a session cookie and
/// the CSRF token.
pub async fn login(
    server: &HttpServer,
    peer: SocketAddr,
    secure: bool,
    body: &[u8],
) -> Response<Body> {
    if !secure && !peer.ip().is_loopback() {
        return response::problem(
            StatusCode::FORBIDDEN,
            "about:blank",
            "passwords are accepted only over HTTPS",
        );
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (Some(user), Some(password)) = (
        request.get("username").and_then(Value::as_str),
        request.get("password").and_then(Value::as_str),
    ) else {
        return response::problem(
            StatusCode::BAD_REQUEST,
            "about:blank",
            "send {\"username\": ..., \"password\": ...} as JSON",
        );
    };
    let remember = request.get("remember").and_then(Value::as_bool) == Some(true);
    let account = match server
        .mail
        .authenticate("webmail", peer, user, password)
        .await
    {
        Ok(account) => account,
        Err(tern_mail::AuthError::RateLimited(after)) => {
            let mut r = response::problem(
                StatusCode::TOO_MANY_REQUESTS,
                "about:blank",
                "too many failed logins from your address; try again later",
            );
            if let Ok(v) = HeaderValue::from_str(&after.secs().to_string()) {
                r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(tern_mail::AuthError::Unavailable(_)) => {
            return response::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "about:blank",
                "the account directory is unavailable; try again later",
            )
        }
        Err(_) => {
            return response::problem(
                StatusCode::UNAUTHORIZED,
                "about:blank",
                "invalid user name or password",
            )
        }
    };
    let days = if remember {
        REMEMBER_DAYS
    } else {
        SESSION_DAYS
    };
    let token = match tern_mail::tokens::create(server.mail.store().as_ref(), &account, days).await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("webmail login: keeping the session: {e}");
            return response::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "about:blank",
                "the session could not be kept; try again later",
            );
        }
    };
    let mut r = response::json(
        StatusCode::OK,
        &json!({"username": account.address, "accountId": crate::jmap::account_id(account.id), "csrf": csrf_token(&token)}),
    );
    // Without "remember me", a browser-session cookie (the token itself
    // expires within a day in any case).
    let max_age = remember.then_some(i64::from(REMEMBER_DAYS) * 86_400);
    r.headers_mut()
        .insert(SET_COOKIE, cookie(&token, max_age, secure));
    r
}

/// `GET /webmail/session`: who the cookie belongs to and its CSRF token
/// (a reloaded page learns it here).
pub async fn current(server: &HttpServer, account: AccountId, token: &str) -> Response<Body> {
    match server.mail.store().account(account).await {
        Ok(a) => response::json(
            StatusCode::OK,
            &json!({"username": a.address, "accountId": crate::jmap::account_id(a.id), "csrf": csrf_token(token)}),
        ),
        Err(_) => response::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "about:blank",
            "the account could not be read; try again later",
        ),
    }
}

/// `POST /webmail/logout`: the session ends on the server (its token is
/// revoked) and in the browser (the cookie cleared).
pub async fn logout(
    server: &HttpServer,
    account: AccountId,
    token: &str,
    secure: bool,
) -> Response<Body> {
    if let Ok(a) = server.mail.store().account(account).await {
        if let Err(e) = tern_mail::tokens::revoke(server.mail.store().as_ref(), &a, token).await {
            tracing::error!("webmail logout: {e}");
        }
    }
    let mut r = response::json(StatusCode::OK, &json!({"loggedOut": true}));
    r.headers_mut()
        .insert(SET_COOKIE, cookie("", Some(0), secure));
    // What the browser kept of this origin (attachments it downloaded)
    // goes with the session.
    r.headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_csrf() {
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::COOKIE,
            HeaderValue::from_static("theme=dark; tern_session=tern_1_abc ; other=x"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("tern_1_abc"));
        assert!(!csrf_ok(&h, "tern_1_abc"));
        h.insert(
            CSRF_HEADER,
            HeaderValue::from_str(&csrf_token("tern_1_abc")).unwrap(),
        );
        assert!(csrf_ok(&h, "tern_1_abc"));
        assert!(!csrf_ok(&h, "tern_1_other"));
        let c = cookie("v", Some(60), true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
    }
}
