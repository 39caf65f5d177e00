//! JMAP over WebSocket (RFC 8887): `GET /jmap/ws` upgrades an HTTP/1.1
//! connection (subprotocol `jmap`, RFC 6455 framing by tungstenite) on
//! which the client sends `Request` objects and hears `Response`s, and
//! may turn on push (`WebSocketPushEnable`) to hear `StateChange`s as
//! the account changes — the same notification hub as EventSource.

use super::push;
use crate::response::{self, Body};
use crate::HttpServer;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::sync::Arc;
use tern_store::AccountId;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The path of the WebSocket endpoint.
pub const PATH: &str = "/jmap/ws";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the request asks to become a WebSocket.
pub fn is_upgrade(request: &Request<Incoming>) -> bool {
    let h = request.headers();
    has_token(header(h, "upgrade"), "websocket") && has_token(header(h, "connection"), "upgrade")
}

/// Answers the opening handshake (RFC 6455 §4.2.2) and, once the
/// connection is handed over, serves the JMAP session on it.
pub fn upgrade(
    server: Arc<HttpServer>,
    account: AccountId,
    request: Request<Incoming>,
    stopping: watch::Receiver<bool>,
    slot: Arc<tern_core::admission::ConnectionSlot>,
) -> Response<Body> {
    let h = request.headers();
    let key = header(h, "sec-websocket-key").to_string();
    if key.is_empty() || header(h, "sec-websocket-version") != "13" {
        let mut r = response::problem(
            StatusCode::UPGRADE_REQUIRED,
            "about:blank",
            "a WebSocket version 13 handshake is required",
        );
        r.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        return r;
    }
    // RFC 8887 §4.2: the client asks for the `jmap` subprotocol.
    if !has_token(header(h, "sec-websocket-protocol"), "jmap") {
        return response::problem(
            StatusCode::BAD_REQUEST,
            "about:blank",
            "the jmap subprotocol is required (Sec-WebSocket-Protocol: jmap)",
        );
    }
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(super::MAX_SIZE_REQUEST))
                    .max_frame_size(Some(super::MAX_SIZE_REQUEST));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve(&server, account, ws, stopping).await;
                // The connection counts against the limits while it lasts.
                drop(slot);
            }
            Err(e) => tracing::debug!("jmap websocket: the upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = r.headers_mut();
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("connection", HeaderValue::from_static("Upgrade"));
    headers.insert("sec-websocket-protocol", HeaderValue::from_static("jmap"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert("sec-websocket-accept", v);
    }
    r
}

/// The push a client turned on: the types it wants.
struct Push {
    types: Vec<String>,
}

/// Reads the client's messages and writes answers and state changes
/// until either side closes or the server stops.
async fn serve<S>(
    server: &HttpServer,
    account: AccountId,
    ws: WebSocketStream<S>,
    mut stopping: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let mut changes = server.mail.store().subscribe(account);
    let mut push: Option<Push> = None;
    loop {
        let outgoing: Option<Value> = tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    Some(answer(server, account, text.as_bytes(), &mut push, &mut changes).await)
                        .filter(|v| !v.is_null())
                }
                Some(Ok(Message::Binary(_))) => Some(request_error(
                    None,
                    &super::RequestError {
                        status: StatusCode::BAD_REQUEST,
                        kind: "urn:ietf:params:jmap:error:notRequest",
                        detail: "JMAP messages are text frames".into(),
                        limit: None,
                    },
                )),
                // Pings are answered by tungstenite as it reads.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!("jmap websocket: {e}");
                    break;
                }
            },
            changed = changes.changed(), if push.is_some() => {
                if changed.is_err() {
                    break;
                }
                let modseq = *changes.borrow_and_update();
                push.as_ref().map(|p| state_change(account, modseq, &p.types))
            }
            _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: "the server is stopping".into(),
                    })))
                    .await;
                break;
            }
        };
        if let Some(value) = outgoing {
            if sink
                .send(Message::Text(value.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    }
}

fn state_change(account: AccountId, modseq: tern_store::ModSeq, types: &[String]) -> Value {
    let mut change = push::state_change(account, modseq, types);
    change["pushState"] = json!(modseq.0.to_string());
    change
}

fn request_error(id: Option<&Value>, e: &super::RequestError) -> Value {
    let mut out = e.to_json();
    out["@type"] = json!("RequestError");
    if let Some(id) = id {
        out["requestId"] = id.clone();
    }
    out
}

/// One message from the client (RFC 8887 §4.3), answered.
async fn answer(
    server: &HttpServer,
    account: AccountId,
    text: &[u8],
    push: &mut Option<Push>,
    changes: &mut watch::Receiver<tern_store::ModSeq>,
) -> Value {
    let not_request = |id: Option<&Value>, why: &str| {
        request_error(
            id,
            &super::RequestError {
                status: StatusCode::BAD_REQUEST,
                kind: "urn:ietf:params:jmap:error:notRequest",
                detail: why.into(),
                limit: None,
            },
        )
    };
    let message: Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            return request_error(
                None,
                &super::RequestError {
                    status: StatusCode::BAD_REQUEST,
                    kind: "urn:ietf:params:jmap:error:notJSON",
                    detail: format!("the message is not JSON: {e}"),
                    limit: None,
                },
            )
        }
    };
    let id = message.get("id").filter(|v| v.is_string());
    match message.get("@type").and_then(Value::as_str) {
        Some("Request") => match super::handle(server, account, text).await {
            Ok(mut response) => {
                response["@type"] = json!("Response");
                if let Some(id) = id {
                    response["requestId"] = id.clone();
                }
                response
            }
            Err(e) => request_error(id, &e),
        },
        Some("WebSocketPushEnable") => {
            let types = match message.get("dataTypes") {
                None | Some(Value::Null) => vec!["*".to_string()],
                Some(Value::Array(t)) => t
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect(),
                Some(_) => return not_request(id, "dataTypes is a list of type names or null"),
            };
            // RFC 8887 §4.3.5.2: with the push state the client last saw,
            // it hears at once what changed since.
            let current = *changes.borrow_and_update();
            let behind = message
                .get("pushState")
                .and_then(Value::as_str)
                .is_some_and(|s| s != current.0.to_string());
            let first = behind.then(|| state_change(account, current, &types));
            *push = Some(Push { types });
            first.unwrap_or(Value::Null)
        }
        Some("WebSocketPushDisable") => {
            *push = None;
            Value::Null
        }
        _ => not_request(
            id,
            "a message is a Request, WebSocketPushEnable or WebSocketPushDisable",
        ),
    }
}
