//! What the webmail keeps for its user on the server, so it follows them
//! from browser to browser: `GET`/`PUT /webmail/prefs` (the user's
//! preferences as one JSON object — theme, conversation view, senders
//! whose remote images are shown, collected addresses) and
//! `POST /webmail/password` (a password change, the current password
//! proven first).

use crate::response::{self, Body};
use crate::HttpServer;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use tern_store::AccountId;

/// The account setting that holds the preferences.
const SETTING: &str = "webmail.prefs";
/// The most the preferences may hold, in bytes.
pub const MAX_PREFS: usize = 64 * 1024;
/// The shortest new password accepted.
const MIN_PASSWORD: usize = 8;

fn unavailable(what: &str) -> Response<Body> {
    response::problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "about:blank",
        &format!("{what}; try again later"),
    )
}

/// `GET /webmail/prefs`: the stored object (`{}` before the first save).
pub async fn get(server: &HttpServer, account: AccountId) -> Response<Body> {
    match server.mail.store().account_setting(account, SETTING).await {
        Ok(stored) => {
            let value = stored
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            response::json(StatusCode::OK, &value)
        }
        Err(e) => {
            tracing::error!("webmail prefs: {e}");
            unavailable("the preferences could not be read")
        }
    }
}

/// `PUT /webmail/prefs`: replaces the stored object with the body (a
/// JSON object of at most [`MAX_PREFS`] bytes).
pub async fn put(server: &HttpServer, account: AccountId, body: &[u8]) -> Response<Body> {
    let Some(value) = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
    else {
        return response::problem(
            StatusCode::BAD_REQUEST,
            "about:blank",
            "the preferences are one JSON object",
        );
    };
    let text = value.to_string();
    match server
        .mail
        .store()
        .set_account_setting(account, SETTING, Some(&text))
        .await
    {
        Ok(()) => response::json(StatusCode::OK, &value),
        Err(e) => {
            tracing::error!("webmail prefs: {e}");
            unavailable("the preferences could not be saved")
        }
    }
}

/// `POST /webmail/password` with `{"current", "new"}`: the current
/// password is checked as a login is (the shared limiter counts a wrong
/// one), then the new one replaces it.
pub async fn change_password(
    server: &HttpServer,
    account: AccountId,
    peer: SocketAddr,
    session: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (Some(current), Some(new)) = (
        request.get("current").and_then(Value::as_str),
        request.get("new").and_then(Value::as_str),
    ) else {
        return response::problem(
            StatusCode::BAD_REQUEST,
            "about:blank",
            "send {\"current\": ..., \"new\": ...} as JSON",
        );
    };
    let store = server.mail.store();
    let record = match store.account(account).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("webmail password: {e}");
            return unavailable("the account could not be read");
        }
    };
    let address = record.address.clone();
    // The rule `tern account add` applies, so the web is no way around it.
    let weakness = if new.chars().count() < MIN_PASSWORD || new.len() > 1024 {
        Some(format!("it needs {MIN_PASSWORD} to 1024 characters"))
    } else {
        tern_core::password_strength::weakness(new, &address)
    };
    if let Some(why) = weakness {
        return response::problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "about:blank",
            &format!("the new password is too easy to guess: {why}"),
        );
    }
    match server
        .mail
        .authenticate("webmail", peer, &address, current)
        .await
    {
        Ok(a) if a.id == account => {}
        Err(tern_mail::AuthError::RateLimited(_)) => {
            return response::problem(
                StatusCode::TOO_MANY_REQUESTS,
                "about:blank",
                "too many failed logins from your address; try again later",
            )
        }
        Err(tern_mail::AuthError::Unavailable(_)) => {
            return unavailable("the account directory is unavailable")
        }
        _ => {
            return response::problem(
                StatusCode::FORBIDDEN,
                "about:blank",
                "the current password is not right",
            )
        }
    }
    let new = new.to_string();
    let hash =
        match tokio::task::spawn_blocking(move || tern_core::password::hash_password(&new)).await {
            Ok(Ok(hash)) => hash,
            _ => return unavailable("the password could not be hashed"),
        };
    match store.set_password(&address, &hash).await {
        Ok(()) => {
            // Logins checked with the old password must not stay good, nor
            // any other session or token (one may be a thief's).
            server.logins.forget(account);
            let revoked = tern_mail::tokens::revoke_all_but(store.as_ref(), &record, session)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!("webmail password: revoking sessions: {e}");
                    0
                });
            response::json(
                StatusCode::OK,
                &json!({"changed": true, "sessionsEnded": revoked}),
            )
        }
        Err(e) => {
            tracing::error!("webmail password: {e}");
            unavailable("the password could not be saved")
        }
    }
}
