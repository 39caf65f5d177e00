//! Push over EventSource (RFC 8620 §7.3): `GET /jmap/eventsource` holds a
//! `text/event-stream` response open and writes a `state` event whenever
//! the account changes — woken by the Store's notification hub, which
//! hears commits of every protocol and every process — plus `ping` events
//! at the interval the client asked for.

use crate::response::Body;
use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::time::Duration;
use tern_store::{AccountId, ModSeq};
use tokio::sync::watch;

/// A response body that is written as it goes; an error ends it short.
pub type StreamingBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

/// Why a streamed body ended short.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// What the client asked for in the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Data types to report (`*`: all).
    pub types: Vec<String>,
    /// End the response after the first state event.
    pub close_after_state: bool,
    /// Seconds between pings; 0 for none.
    pub ping: u64,
}

/// The types a state event reports (all share the account's state).
const TYPES: &[&str] = &[
    "Mailbox",
    "Email",
    "Thread",
    "EmailDelivery",
    "EmailSubmission",
    "Quota",
];

pub fn options(query: Option<&str>) -> Options {
    let mut o = Options {
        types: vec!["*".into()],
        close_after_state: false,
        ping: 0,
    };
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = v
            .replace("%2C", ",")
            .replace("%2c", ",")
            .replace("%2A", "*");
        match k {
            "types" => {
                o.types = v
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect()
            }
            "closeafter" => o.close_after_state = v == "state",
            // RFC 8620 §7.3: at least one second apart; at most an hour.
            "ping" => o.ping = v.parse::<u64>().unwrap_or(0).min(3600),
            _ => {}
        }
    }
    o
}

/// A `StateChange` (RFC 8620 §7.1) for the types asked for (`*`: all).
pub fn state_change(account: AccountId, modseq: ModSeq, types: &[String]) -> Value {
    let state = modseq.0.to_string();
    let changed: Map<String, Value> = TYPES
        .iter()
        .filter(|t| types.iter().any(|w| w == "*" || w == *t))
        .map(|t| (t.to_string(), json!(state)))
        .collect();
    json!({
        "@type": "StateChange",
        "changed": { super::account_id(account): changed },
    })
}

fn state_event(account: AccountId, modseq: ModSeq, types: &[String]) -> Bytes {
    let event = state_change(account, modseq, types);
    Bytes::from(format!("event: state\ndata: {event}\n\n"))
}

/// Where the stream is.
struct Stream {
    account: AccountId,
    changes: watch::Receiver<ModSeq>,
    stopping: watch::Receiver<bool>,
    options: Options,
    /// The state to report before waiting (the current one).
    first: Option<ModSeq>,
    finished: bool,
}

/// What woke the stream.
enum Wake {
    Changed,
    Ping,
    End,
}

/// The event stream for `account`, ending when `stopping` turns true.
pub fn eventsource(
    account: AccountId,
    mut changes: watch::Receiver<ModSeq>,
    options: Options,
    stopping: watch::Receiver<bool>,
) -> Response<StreamingBody> {
    // Unless the client only waits for the next change, it hears the
    // current state first: it knows the stream is live and what to compare.
    let first = (!options.close_after_state).then(|| *changes.borrow_and_update());
    let start = Stream {
        account,
        changes,
        stopping,
        options,
        first,
        finished: false,
    };
    let body = stream::unfold(start, |mut st| async move {
        if st.finished {
            return None;
        }
        if let Some(modseq) = st.first.take() {
            let event = state_event(st.account, modseq, &st.options.types);
            return Some((Ok::<_, BodyError>(Frame::data(event)), st));
        }
        let ping = st.options.ping;
        let wake = tokio::select! {
            changed = st.changes.changed() => if changed.is_ok() { Wake::Changed } else { Wake::End },
            _ = async {
                if ping > 0 {
                    tokio::time::sleep(Duration::from_secs(ping)).await
                } else {
                    std::future::pending().await
                }
            } => Wake::Ping,
            _ = st.stopping.wait_for(|s| *s) => Wake::End,
        };
        let frame = match wake {
            Wake::End => return None,
            Wake::Changed => {
                let modseq = *st.changes.borrow_and_update();
                st.finished = st.options.close_after_state;
                state_event(st.account, modseq, &st.options.types)
            }
            Wake::Ping => Bytes::from(format!("event: ping\ndata: {{\"interval\":{ping}}}\n\n")),
        };
        Some((Ok(Frame::data(frame)), st))
    });
    let mut response = Response::new(StreamBody::new(body).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    response
}

/// A finished response as a streaming one.
pub fn boxed(response: Response<Body>) -> Response<StreamingBody> {
    response.map(|b| b.map_err(|never: Infallible| match never {}).boxed_unsync())
}
