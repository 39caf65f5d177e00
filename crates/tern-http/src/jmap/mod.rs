//! JMAP core (RFC 8620): the session resource (§2), the API request and
//! its method calls (§3.3–3.4), result references (§3.7), and the errors
//! of §3.6. Methods by data type live in their own modules.

pub mod blob;
mod blob_methods;
pub mod body;
mod changes;
mod compose;
mod email;
mod email_filter;
mod email_query;
pub mod header_forms;
mod identity;
pub mod ids;
mod mailbox;
mod parse;
pub mod push;
pub mod push_subscription;
mod quota;
pub mod references;
mod snippet;
mod submission;
mod vacation;
pub mod websocket;

use crate::response::{self, Body};
use crate::HttpServer;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use tern_store::AccountId;

pub const CORE: &str = "urn:ietf:params:jmap:core";
pub const MAIL: &str = "urn:ietf:params:jmap:mail";
pub const SUBMISSION: &str = "urn:ietf:params:jmap:submission";
pub const VACATION: &str = "urn:ietf:params:jmap:vacationresponse";
pub const WEBSOCKET: &str = "urn:ietf:params:jmap:websocket";
/// What a request may name in `using`.
const CAPABILITIES: &[&str] = &[
    CORE,
    MAIL,
    SUBMISSION,
    VACATION,
    quota::QUOTA,
    WEBSOCKET,
    blob_methods::BLOB,
];

/// The limits advertised in the session (RFC 8620 §2).
pub const MAX_SIZE_REQUEST: usize = 10 * 1024 * 1024;
pub const MAX_CALLS_IN_REQUEST: usize = 64;
pub const MAX_CONCURRENT_REQUESTS: usize = 4;
pub const MAX_OBJECTS_IN_GET: usize = 1000;
pub const MAX_OBJECTS_IN_SET: usize = 500;
/// Most message or blob bytes one method call reads to answer (Email/get
/// with bodies, Email/parse, Blob/get): a thousand ids of large messages
/// would otherwise make one answer gigabytes.
pub const MAX_BYTES_READ_PER_CALL: u64 = 64 * 1024 * 1024;

/// Counts the bytes a call has read; past the bound, `requestTooLarge`.
#[derive(Default)]
pub struct ReadBudget(u64);

impl ReadBudget {
    pub fn spend(&mut self, bytes: usize) -> Result<(), Value> {
        self.0 += bytes as u64;
        if self.0 > MAX_BYTES_READ_PER_CALL {
            return Err(method_error(
                "requestTooLarge",
                format!(
                    "the answer would read more than {MAX_BYTES_READ_PER_CALL} bytes; ask for fewer ids"
                ),
            ));
        }
        Ok(())
    }
}

/// A JMAP Id for an account (RFC 8620 §1.2: letters, digits, `-`, `_`).
pub fn account_id(account: AccountId) -> String {
    format!("a{}", account.0)
}

/// The account a JMAP `accountId` argument names.
pub fn parse_account_id(id: &str) -> Option<AccountId> {
    id.strip_prefix('a')?.parse().ok().map(AccountId)
}

/// API requests (or uploads) in progress, per account: a client may run
/// `maxConcurrentRequests` (`maxConcurrentUpload`) at once (RFC 8620 §2),
/// so one account cannot take every worker.
pub struct InFlight {
    counts: std::sync::Mutex<std::collections::HashMap<AccountId, usize>>,
    max: usize,
}

impl Default for InFlight {
    fn default() -> InFlight {
        InFlight::new(MAX_CONCURRENT_REQUESTS)
    }
}

/// One request's place; freed when dropped.
pub struct Slot<'a> {
    in_flight: &'a InFlight,
    account: AccountId,
}

impl InFlight {
    pub fn new(max: usize) -> InFlight {
        InFlight {
            counts: Default::default(),
            max,
        }
    }

    pub fn enter(&self, account: AccountId) -> Option<Slot<'_>> {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(account).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            in_flight: self,
            account,
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .in_flight
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

/// A request-level error (RFC 8620 §3.6.1) as a problem document.
pub fn request_error(
    status: StatusCode,
    kind: &str,
    detail: &str,
    limit: Option<&str>,
) -> Response<Body> {
    let mut body = json!({ "type": kind, "status": status.as_u16(), "detail": detail });
    if let Some(limit) = limit {
        body["limit"] = json!(limit);
    }
    let mut r = response::json(status, &body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// The session state: changes whenever the session object would.
fn session_state(address: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(address.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /jmap/session` (RFC 8620 §2).
/// The URLs in it are absolute, under `base` (how the client reached us).
pub async fn session(server: &HttpServer, account: AccountId, base: &str) -> Response<Body> {
    let store = server.mail.store();
    let record = match store.account(account).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("jmap session: reading account {account}: {e}");
            return response::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "about:blank",
                "the account could not be read; try again later",
            );
        }
    };
    let id = account_id(account);
    let body = json!({
        "capabilities": {
            CORE: {
                "maxSizeUpload": blob::MAX_SIZE_UPLOAD,
                "maxConcurrentUpload": blob::MAX_CONCURRENT_UPLOAD,
                "maxSizeRequest": MAX_SIZE_REQUEST,
                "maxConcurrentRequests": MAX_CONCURRENT_REQUESTS,
                "maxCallsInRequest": MAX_CALLS_IN_REQUEST,
                "maxObjectsInGet": MAX_OBJECTS_IN_GET,
                "maxObjectsInSet": MAX_OBJECTS_IN_SET,
                "collationAlgorithms": ["i;ascii-casemap", "i;octet"],
            },
            MAIL: {},
            SUBMISSION: {},
            VACATION: {},
            quota::QUOTA: {},
            blob_methods::BLOB: {},
            WEBSOCKET: {
                "url": format!("{}{}", base.replacen("http", "ws", 1), websocket::PATH),
                "supportsPush": true,
            },
        },
        "accounts": {
            id.clone(): {
                "name": record.address,
                "isPersonal": true,
                "isReadOnly": false,
                "accountCapabilities": {
                    CORE: {},
                    MAIL: {
                        "maxMailboxesPerEmail": null,
                        "maxMailboxDepth": null,
                        "maxSizeMailboxName": 255,
                        "maxSizeAttachmentsPerEmail": server.limits.max_message_size,
                        "emailQuerySortOptions": ["receivedAt", "sentAt", "size"],
                        "mayCreateTopLevelMailbox": true,
                    },
                    SUBMISSION: {
                        "maxDelayedSend": submission::MAX_DELAYED_SEND,
                        // RFC 4865: the longest interval, and the latest time.
                        "submissionExtensions": {
                            "FUTURERELEASE": [
                                submission::MAX_DELAYED_SEND.to_string(),
                                email::utc_date(tern_core::time::unix_now() + submission::MAX_DELAYED_SEND),
                            ],
                        },
                    },
                    VACATION: {},
                    quota::QUOTA: {},
                    blob_methods::BLOB: blob_methods::capability(),
                },
            },
        },
        "primaryAccounts": { CORE: id, MAIL: id, SUBMISSION: id, VACATION: id, quota::QUOTA: id, blob_methods::BLOB: id },
        "username": record.address,
        "apiUrl": format!("{base}/jmap/api"),
        "downloadUrl": format!("{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"),
        "uploadUrl": format!("{base}/jmap/upload/{{accountId}}/"),
        "eventSourceUrl": format!("{base}/jmap/eventsource?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"),
        "state": session_state(&record.address),
    });
    response::json(StatusCode::OK, &body)
}

/// A method's outcome: its response arguments, or a method-level error
/// (RFC 8620 §3.6.2) as `{"type": ..., "description": ...}`.
pub type MethodResult = Result<Value, Value>;

pub fn method_error(kind: &str, description: impl Into<String>) -> Value {
    json!({ "type": kind, "description": description.into() })
}

/// What every method of one request shares.
pub struct Call<'a> {
    pub server: &'a HttpServer,
    pub account: AccountId,
    /// The capabilities the request declared in `using`.
    pub using: &'a [String],
}

impl Call<'_> {
    /// The account a method's `accountId` argument names, checked to be
    /// the caller's (no shared accounts yet).
    pub fn account_arg(&self, args: &Map<String, Value>) -> Result<AccountId, Value> {
        let id = args
            .get("accountId")
            .and_then(Value::as_str)
            .ok_or_else(|| method_error("invalidArguments", "accountId is required"))?;
        match parse_account_id(id) {
            Some(a) if a == self.account => Ok(a),
            _ => Err(method_error("accountNotFound", format!("no account {id}"))),
        }
    }
}

/// A request-level error (RFC 8620 §3.6.1): its status, type, detail and
/// the limit it names, if any. HTTP answers it as a problem document; the
/// WebSocket as a `RequestError` (RFC 8887 §4.3.4).
#[derive(Debug, Clone)]
pub struct RequestError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub detail: String,
    pub limit: Option<&'static str>,
}

impl RequestError {
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> RequestError {
        RequestError {
            status,
            kind,
            detail: detail.into(),
            limit: None,
        }
    }

    /// The problem document's fields.
    pub fn to_json(&self) -> Value {
        let mut body =
            json!({ "type": self.kind, "status": self.status.as_u16(), "detail": self.detail });
        if let Some(limit) = self.limit {
            body["limit"] = json!(limit);
        }
        body
    }
}

/// `POST /jmap/api` (RFC 8620 §3.3): the request, each method call in
/// order, the response.
pub async fn api(server: &HttpServer, account: AccountId, body: &[u8]) -> Response<Body> {
    match handle(server, account, body).await {
        Ok(answer) => response::json(StatusCode::OK, &answer),
        Err(e) => request_error(e.status, e.kind, &e.detail, e.limit),
    }
}

/// One JMAP request (the body of `POST /jmap/api`, or a WebSocket
/// `Request`), answered as the Response object.
pub async fn handle(
    server: &HttpServer,
    account: AccountId,
    body: &[u8],
) -> Result<Value, RequestError> {
    let Some(_slot) = server.in_flight.enter(account) else {
        return Err(RequestError {
            limit: Some("maxConcurrentRequests"),
            ..RequestError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "urn:ietf:params:jmap:error:limit",
                format!("at most {MAX_CONCURRENT_REQUESTS} requests at once per account"),
            )
        });
    };
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        RequestError::new(
            StatusCode::BAD_REQUEST,
            "urn:ietf:params:jmap:error:notJSON",
            format!("the request is not JSON: {e}"),
        )
    })?;
    let not_request = |why: &str| {
        RequestError::new(
            StatusCode::BAD_REQUEST,
            "urn:ietf:params:jmap:error:notRequest",
            why,
        )
    };
    let Some(object) = request.as_object() else {
        return Err(not_request("the request is not a JSON object"));
    };
    let using: Vec<String> = match object.get("using").and_then(Value::as_array) {
        Some(list) if list.iter().all(Value::is_string) => list
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => return Err(not_request("`using` must be an array of capability names")),
    };
    if let Some(unknown) = using.iter().find(|c| !CAPABILITIES.contains(&c.as_str())) {
        return Err(RequestError::new(
            StatusCode::BAD_REQUEST,
            "urn:ietf:params:jmap:error:unknownCapability",
            format!("the server does not support {unknown}"),
        ));
    }
    let Some(calls) = object.get("methodCalls").and_then(Value::as_array) else {
        return Err(not_request("`methodCalls` must be an array"));
    };
    if calls.len() > MAX_CALLS_IN_REQUEST {
        return Err(RequestError {
            limit: Some("maxCallsInRequest"),
            ..RequestError::new(
                StatusCode::BAD_REQUEST,
                "urn:ietf:params:jmap:error:limit",
                format!("at most {MAX_CALLS_IN_REQUEST} method calls per request"),
            )
        });
    }
    let mut parsed = Vec::with_capacity(calls.len());
    for call in calls {
        match call.as_array().map(Vec::as_slice) {
            Some([Value::String(name), Value::Object(args), Value::String(id)]) => {
                parsed.push((name.clone(), args.clone(), id.clone()))
            }
            _ => {
                return Err(not_request(
                    "each method call is [name, arguments, call id]",
                ))
            }
        }
    }
    // RFC 8620 §3.3: ids the client made up (`#k1`), given back as the
    // server's ids, within and across requests.
    let mut created_ids: Map<String, Value> = object
        .get("createdIds")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let echo_created_ids = object.contains_key("createdIds");
    let cx = Call {
        server,
        account,
        using: &using,
    };
    let mut responses: Vec<Value> = Vec::with_capacity(parsed.len());
    for (name, args, call_id) in parsed {
        let result = match references::resolve(&args, &responses) {
            Ok(args) => {
                let args = references::creation_ids(args, &created_ids);
                dispatch(&cx, &name, args).await
            }
            Err(e) => Err(e),
        };
        if let Ok(out) = &result {
            if let Some(created) = out.get("created").and_then(Value::as_object) {
                for (creation_id, object) in created {
                    if let Some(id) = object.get("id") {
                        created_ids.insert(creation_id.clone(), id.clone());
                    }
                }
            }
        }
        match result {
            Ok(mut out) => {
                // An implicit call's response follows (RFC 8621 §7.5).
                let implicit = out
                    .as_object_mut()
                    .and_then(|o| o.remove("_implicitEmailSet"));
                let implicit_error = out
                    .as_object_mut()
                    .and_then(|o| o.remove("_implicitEmailSetError"));
                responses.push(json!([name, out, call_id]));
                if let Some(implicit) = implicit {
                    responses.push(json!(["Email/set", implicit, call_id]));
                }
                if let Some(error) = implicit_error {
                    responses.push(json!(["error", error, call_id]));
                }
            }
            Err(error) => responses.push(json!(["error", error, call_id])),
        }
    }
    let session_state = match server.mail.store().account(account).await {
        Ok(a) => session_state(&a.address),
        Err(_) => String::new(),
    };
    let mut body = json!({ "methodResponses": responses, "sessionState": session_state });
    if echo_created_ids {
        body["createdIds"] = Value::Object(created_ids);
    }
    Ok(body)
}

/// One method call, by name.
async fn dispatch(cx: &Call<'_>, name: &str, args: Map<String, Value>) -> MethodResult {
    let needs = |capability: &str| {
        if cx.using.iter().any(|c| c == capability) {
            Ok(())
        } else {
            Err(method_error(
                "unknownMethod",
                format!("{name} needs {capability} in `using`"),
            ))
        }
    };
    // RFC 8620 §5.3: at most `maxObjectsInSet` objects per /set call.
    if name.ends_with("/set") || name == "Blob/upload" {
        let count = |key: &str| match args.get(key) {
            Some(Value::Object(m)) => m.len(),
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        };
        if count("create") + count("update") + count("destroy") > MAX_OBJECTS_IN_SET {
            return Err(method_error(
                "requestTooLarge",
                format!("at most {MAX_OBJECTS_IN_SET} objects per call"),
            ));
        }
    }
    match name {
        "Core/echo" => {
            needs(CORE)?;
            Ok(Value::Object(args))
        }
        "Mailbox/get" => {
            needs(MAIL)?;
            mailbox::get(cx, args).await
        }
        "Mailbox/set" => {
            needs(MAIL)?;
            mailbox::set(cx, args).await
        }
        "Mailbox/query" => {
            needs(MAIL)?;
            mailbox::query(cx, args).await
        }
        "Mailbox/queryChanges" => {
            needs(MAIL)?;
            mailbox::query_changes(cx, args).await
        }
        "Thread/get" => {
            needs(MAIL)?;
            email::thread_get(cx, args).await
        }
        "Email/query" => {
            needs(MAIL)?;
            email_query::query(cx, args).await
        }
        "Email/queryChanges" => {
            needs(MAIL)?;
            email_query::query_changes(cx, args).await
        }
        "Email/get" => {
            needs(MAIL)?;
            email::get(cx, args).await
        }
        "Email/set" => {
            needs(MAIL)?;
            email::set(cx, args).await
        }
        "Identity/get" => {
            needs(SUBMISSION)?;
            identity::identity_get(cx, args).await
        }
        "EmailSubmission/set" => {
            needs(SUBMISSION)?;
            submission::set(cx, args).await
        }
        "EmailSubmission/get" => {
            needs(SUBMISSION)?;
            submission::get(cx, args).await
        }
        "EmailSubmission/changes" => {
            needs(SUBMISSION)?;
            submission::changes(cx, args).await
        }
        "EmailSubmission/query" => {
            needs(SUBMISSION)?;
            submission::query(cx, args).await
        }
        "EmailSubmission/queryChanges" => {
            needs(SUBMISSION)?;
            submission::query_changes(cx, args).await
        }
        "Identity/changes" => {
            needs(SUBMISSION)?;
            identity::identity_changes(cx, args).await
        }
        "Identity/set" => {
            needs(SUBMISSION)?;
            identity::identity_set(cx, args).await
        }
        "VacationResponse/get" => {
            needs(VACATION)?;
            vacation::vacation_get(cx, args).await
        }
        "VacationResponse/set" => {
            needs(VACATION)?;
            vacation::vacation_set(cx, args).await
        }
        "Email/parse" => {
            needs(MAIL)?;
            parse::parse(cx, args).await
        }
        "Email/copy" => {
            needs(MAIL)?;
            parse::copy(cx, args).await
        }
        "Blob/upload" => {
            needs(blob_methods::BLOB)?;
            blob_methods::upload(cx, args).await
        }
        "Blob/get" => {
            needs(blob_methods::BLOB)?;
            blob_methods::get(cx, args).await
        }
        "Blob/lookup" => {
            needs(blob_methods::BLOB)?;
            blob_methods::lookup(cx, args).await
        }
        "Blob/copy" => {
            needs(CORE)?;
            parse::copy(cx, args).await
        }
        "SearchSnippet/get" => {
            needs(MAIL)?;
            snippet::get(cx, args).await
        }
        "PushSubscription/get" => {
            needs(CORE)?;
            push_subscription::get(cx, args).await
        }
        "PushSubscription/set" => {
            needs(CORE)?;
            push_subscription::set(cx, args).await
        }
        "Quota/get" => {
            needs(quota::QUOTA)?;
            quota::get(cx, args).await
        }
        "Quota/changes" => {
            needs(quota::QUOTA)?;
            quota::changes(cx, args).await
        }
        "Quota/query" => {
            needs(quota::QUOTA)?;
            quota::query(cx, args).await
        }
        // Quota/query says canCalculateChanges: false (RFC 8620 §5.6).
        "Quota/queryChanges" => {
            needs(quota::QUOTA)?;
            Err(method_error(
                "cannotCalculateChanges",
                "query the quotas again (there is at most one)",
            ))
        }
        "Email/import" => {
            needs(MAIL)?;
            blob::import(cx, args).await
        }
        "Mailbox/changes" | "Email/changes" => {
            needs(MAIL)?;
            changes::changes(cx, name, args).await
        }
        "Thread/changes" => {
            needs(MAIL)?;
            changes::thread_changes(cx, args).await
        }
        _ => Err(method_error(
            "unknownMethod",
            format!("{name} is not a method this server knows"),
        )),
    }
}

/// The account's state string for a data type: the account's highest
/// modseq (it moves with every change, which RFC 8620 §1.6 allows).
pub async fn state(cx: &Call<'_>) -> Result<String, Value> {
    cx.server
        .mail
        .store()
        .highest_modseq(cx.account)
        .await
        .map(|m| m.0.to_string())
        .map_err(|e| method_error("serverFail", e.to_string()))
}

/// A string argument a method requires (`sinceState`, `sinceQueryState`).
pub fn required_str<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, Value> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| method_error("invalidArguments", format!("{name} is required")))
}

/// `tooManyChanges` (RFC 8620 §5.6) when more ids changed than the
/// client's `maxChanges` allows.
pub fn within_max_changes(args: &Map<String, Value>, changed: usize) -> Result<(), Value> {
    if args
        .get("maxChanges")
        .and_then(Value::as_u64)
        .is_some_and(|m| changed as u64 > m)
    {
        return Err(method_error(
            "tooManyChanges",
            "more changes than maxChanges; query again",
        ));
    }
    Ok(())
}

/// The objects a /get asks for (RFC 8620 §5.1): all of `all` when `ids`
/// is null or absent, else those named, in order, and the ids not found.
pub fn pick<T: Clone>(
    args: &Map<String, Value>,
    all: Vec<T>,
    id_of: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Vec<Value>), Value> {
    match args.get("ids") {
        None | Some(Value::Null) => Ok((all, Vec::new())),
        Some(Value::Array(ids)) => {
            let (mut found, mut missing) = (Vec::new(), Vec::new());
            for id in ids {
                match all.iter().find(|o| id.as_str() == Some(id_of(o).as_str())) {
                    Some(o) => found.push(o.clone()),
                    None => missing.push(id.clone()),
                }
            }
            Ok((found, missing))
        }
        Some(_) => Err(method_error(
            "invalidArguments",
            "ids must be an array or null",
        )),
    }
}

/// One page of a query's results already in memory (RFC 8620 §5.5):
/// `position` (negative counts from the end) and `limit`; the page and
/// where it starts.
pub fn page_of<T>(args: &Map<String, Value>, all: &[T]) -> (usize, std::ops::Range<usize>) {
    let total = all.len();
    let position = match args.get("position").and_then(Value::as_i64).unwrap_or(0) {
        p if p < 0 => total.saturating_sub(p.unsigned_abs() as usize),
        p => (p as usize).min(total),
    };
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |l| l as usize);
    (
        position,
        position..position.saturating_add(limit).min(total),
    )
}

/// A /set's `destroy` (RFC 8620 §5.3): the ids parsed with `parse`, all
/// handed to `destroy` at once (which answers those it destroyed), and
/// split into `destroyed` and `notDestroyed` (`notFound`).
pub async fn destroy_ids<T, Fut>(
    args: &Map<String, Value>,
    parse: impl Fn(&str) -> Option<T>,
    destroy: impl FnOnce(Vec<T>) -> Fut,
) -> Result<(Vec<Value>, Map<String, Value>), Value>
where
    T: Copy + PartialEq,
    Fut: std::future::Future<Output = Result<Vec<T>, Value>>,
{
    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    let Some(Value::Array(list)) = args.get("destroy") else {
        return Ok((destroyed, not_destroyed));
    };
    let ids: Vec<(String, Option<T>)> = list
        .iter()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), parse(s)))
        .collect();
    let gone = destroy(ids.iter().filter_map(|(_, id)| *id).collect()).await?;
    for (text, id) in ids {
        match id {
            Some(id) if gone.contains(&id) => destroyed.push(json!(text)),
            _ => {
                not_destroyed.insert(text, json!({"type": "notFound"}));
            }
        }
    }
    Ok((destroyed, not_destroyed))
}

/// A map of a /set response (`created`, `notUpdated`, ...): null when
/// empty, as clients expect.
pub fn map_or_null(m: Map<String, Value>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// The `properties` argument: every one of `all` when not given; each
/// named must be one of `all` or one `also` accepts (the `header:` forms).
pub fn properties(
    args: &Map<String, Value>,
    all: &[&str],
    also: fn(&str) -> bool,
) -> Result<Vec<String>, Value> {
    match args.get("properties") {
        None | Some(Value::Null) => Ok(all.iter().map(|p| p.to_string()).collect()),
        Some(Value::Array(list)) => {
            let mut out = Vec::new();
            for p in list {
                match p.as_str() {
                    Some(p) if all.contains(&p) || also(p) => out.push(p.to_string()),
                    _ => {
                        return Err(method_error(
                            "invalidArguments",
                            format!("unknown property {p}"),
                        ))
                    }
                }
            }
            // The id is always returned (RFC 8620 §5.1).
            if !out.iter().any(|p| p == "id") {
                out.push("id".into());
            }
            Ok(out)
        }
        Some(_) => Err(method_error(
            "invalidArguments",
            "properties must be an array of names or null",
        )),
    }
}

/// One fuzzing input (fuzz/fuzz_targets/jmap_request.rs): the bytes as a
/// JMAP request body, each method call's arguments through result and
/// creation-id references against the calls before it, and as the other
/// strings a client controls (a Basic credential, a push query string, a
/// UTCDate, a blob id). Panics are the bugs.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::auth::basic_credentials(&text);
    let _ = push::options(Some(&text));
    let _ = email_filter::fuzz_dates(&text);
    let _ = blob::fuzz_blob_id(&text);
    let _ = header_forms::HeaderProperty::parse(&text);
    for form in [
        header_forms::Form::Raw,
        header_forms::Form::Text,
        header_forms::Form::Addresses,
        header_forms::Form::GroupedAddresses,
        header_forms::Form::MessageIds,
        header_forms::Form::Date,
        header_forms::Form::Urls,
    ] {
        let _ = header_forms::parse_form(data, form);
    }
    let Ok(request) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut responses: Vec<Value> = Vec::new();
    let created = request
        .get("createdIds")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(calls) = request.get("methodCalls").and_then(Value::as_array) {
        for call in calls.iter().take(MAX_CALLS_IN_REQUEST) {
            if let Some([Value::String(name), Value::Object(args), id]) =
                call.as_array().map(Vec::as_slice)
            {
                if let Some(filter) = args.get("filter") {
                    let _ = email_filter::fuzz_filter(filter);
                }
                // Email objects a client asks to create, built with no blobs.
                if let Some(Value::Object(create)) = args.get("create") {
                    for object in create.values().filter_map(Value::as_object) {
                        let _ = compose::build(object, &compose::Blobs::new(), "fuzz.example");
                    }
                }
                if let Ok(args) = references::resolve(args, &responses) {
                    let args = references::creation_ids(args, &created);
                    responses.push(json!([name, args, id]));
                }
            }
        }
    }
    if let Some(path) = request.get("path").and_then(Value::as_str) {
        let _ = references::pointer(&request, path);
    }
}

/// Replays the seed corpus of the `jmap_request` fuzz target.
#[cfg(test)]
mod in_flight_tests {
    use super::*;

    #[test]
    fn concurrent_requests_are_bounded_per_account() {
        let f = InFlight::default();
        let a = AccountId(1);
        let held: Vec<_> = (0..MAX_CONCURRENT_REQUESTS)
            .map(|_| f.enter(a).unwrap())
            .collect();
        assert!(f.enter(a).is_none());
        assert!(
            f.enter(AccountId(2)).is_some(),
            "another account is not held up"
        );
        drop(held);
        assert!(f.enter(a).is_some());
        // Uploads have their own, smaller bound.
        let uploads = InFlight::new(1);
        let one = uploads.enter(a);
        assert!(one.is_some() && uploads.enter(a).is_none());
    }
}

#[cfg(test)]
mod fuzz_corpus {
    #[test]
    fn jmap_request() {
        tern_core::fuzz_corpus::replay("jmap_request", super::fuzz_one);
    }
}
