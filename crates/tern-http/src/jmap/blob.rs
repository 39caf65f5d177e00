//! Binary data (RFC 8620 §6): download of a message or one of its parts,
//! upload (held by the Store for a day, unless an email takes it), and
//! `Email/import` (RFC 8621 §4.8), which files uploaded messages.
//!
//! Blob ids: `b<sha256>` is a whole stored message or upload (the Store's
//! content address), `b<sha256>.<n>` part `n` of a message, decoded.

use super::email::{email_id, store_keyword};
use super::push::StreamingBody;
use super::{method_error, Call, MethodResult};
use crate::response::{self, Body};
use crate::HttpServer;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use tern_store::{AccountId, BlobId, MailboxId, StoreError};

/// How long an upload waits for an email to use it.
const UPLOAD_LIFETIME_SECS: i64 = 24 * 3600;
/// Uploads one account may send at once (`maxConcurrentUpload`).
pub const MAX_CONCURRENT_UPLOAD: usize = 4;
/// The largest upload (the session's `maxSizeUpload`).
pub const MAX_SIZE_UPLOAD: usize = 50 * 1024 * 1024;

/// A blob id's stored blob and, for a part, the part's index. Only the
/// form the server gives (lower-case hex, a part number without sign or
/// leading zero) is accepted, so one blob has one id.
pub(super) fn parse_blob_id(id: &str) -> Option<(BlobId, Option<usize>)> {
    let rest = id.strip_prefix('b')?;
    let (hash, part) = match rest.split_once('.') {
        Some((hash, part)) => {
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            (hash, Some(part.parse().ok().filter(|_| canonical)?))
        }
        None => (rest, None),
    };
    (hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| (BlobId(hash.to_string()), part))
}

/// A URL path segment or query value with its `%XX` escapes decoded;
/// `None` if an escape is broken or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// For the fuzz target: a client's blob id.
#[doc(hidden)]
pub fn fuzz_blob_id(text: &str) -> bool {
    parse_blob_id(text).is_some()
}

/// Bytes read per step when a whole blob is streamed.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

/// `GET /jmap/download/{accountId}/{blobId}/{name}?accept={type}`. A
/// whole stored blob is streamed in chunks read by range, so a large
/// attachment never sits in memory whole; a part is decoded from the
/// parsed message.
pub async fn download(
    server: &HttpServer,
    account: AccountId,
    path: &str,
    query: Option<&str>,
) -> Response<StreamingBody> {
    let not_found = || {
        super::push::boxed(response::problem(
            StatusCode::NOT_FOUND,
            "about:blank",
            "no such blob",
        ))
    };
    let mut segments = path.splitn(3, '/');
    let (Some(account_arg), Some(blob_arg), name) =
        (segments.next(), segments.next(), segments.next())
    else {
        return not_found();
    };
    if super::parse_account_id(account_arg) != Some(account) {
        return not_found();
    }
    let Some((blob, part)) = parse_blob_id(blob_arg) else {
        return not_found();
    };
    let store = server.mail.store().clone();
    let unavailable = |e: StoreError| {
        tracing::error!("jmap download {blob_arg}: {e}");
        super::push::boxed(response::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "about:blank",
            "the blob could not be read; try again later",
        ))
    };
    let body: StreamingBody = match part {
        None => {
            // The first chunk says whether the blob exists (and may be all
            // of it); the rest follow as the client reads.
            let first = match store
                .read_blob_range(account, &blob, 0, DOWNLOAD_CHUNK)
                .await
            {
                Ok(b) => b,
                Err(StoreError::NotFound { .. }) => return not_found(),
                Err(e) => return unavailable(e),
            };
            let done = first.len() < DOWNLOAD_CHUNK;
            let start = (Some(Bytes::from(first)), DOWNLOAD_CHUNK as u64, done);
            let chunks = futures_util::stream::unfold(start, move |(pending, offset, done)| {
                let (store, blob) = (store.clone(), blob.clone());
                async move {
                    if let Some(bytes) = pending {
                        return Some((Ok(Frame::data(bytes)), (None, offset, done)));
                    }
                    if done {
                        return None;
                    }
                    match store
                        .read_blob_range(account, &blob, offset, DOWNLOAD_CHUNK)
                        .await
                    {
                        Ok(b) if b.is_empty() => None,
                        Ok(b) => {
                            let last = b.len() < DOWNLOAD_CHUNK;
                            let next = offset + b.len() as u64;
                            Some((Ok(Frame::data(Bytes::from(b))), (None, next, last)))
                        }
                        // Mid-stream the status is sent: end the body short,
                        // which the client sees as a broken transfer.
                        Err(e) => {
                            tracing::error!("jmap download: reading at {offset}: {e}");
                            let error: super::push::BodyError = Box::new(DownloadError);
                            Some((Err(error), (None, offset, true)))
                        }
                    }
                }
            });
            StreamBody::new(chunks).boxed_unsync()
        }
        Some(i) => {
            let raw = match store.read_blob(account, &blob).await {
                Ok(raw) => raw,
                Err(StoreError::NotFound { .. }) => return not_found(),
                Err(e) => return unavailable(e),
            };
            match super::body::part_of(&raw, i) {
                Some(b) => Full::new(Bytes::from(b))
                    .map_err(|never: std::convert::Infallible| match never {})
                    .boxed_unsync(),
                None => return not_found(),
            }
        }
    };
    // `accept` names the type to serve it as; only a plain type/subtype
    // is taken, anything else is served as bytes.
    let accept = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("accept=")))
        .and_then(percent_decode)
        .filter(|t| {
            t.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && t.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"/.+-".contains(&c))
            })
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    // Never as something a page of ours could run or style with: a
    // mailed script is bytes (with nosniff, a <script src> refuses it).
    let lower = accept.to_ascii_lowercase();
    let accept = if ["javascript", "ecmascript", "jscript"]
        .iter()
        .any(|t| lower.contains(t))
        || lower == "text/css"
    {
        "application/octet-stream".to_string()
    } else {
        accept
    };
    let mut r = Response::new(body);
    // Only our own pages may embed what a mailbox holds.
    r.headers_mut().insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    // RFC 8620 §6.2: the name the client put in the URL is the file's
    // name: as an ASCII fallback and, whole, as RFC 6266's `filename*`.
    let name = name
        .and_then(percent_decode)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "blob".into());
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    // The webmail's previews (`inline=1`) open in the browser; only
    // types that cannot run script in our origin may, everything else
    // (HTML, SVG, ...) stays a download.
    let inline = query.is_some_and(|q| q.split('&').any(|kv| kv == "inline=1"))
        && matches!(
            accept.as_str(),
            "application/pdf"
                | "text/plain"
                | "image/png"
                | "image/jpeg"
                | "image/gif"
                | "image/webp"
        );
    let disposition = if inline { "inline" } else { "attachment" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    )) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    // Content-addressed: the same id is always the same bytes.
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("private, immutable, max-age=31536000"),
    );
    r
}

/// A read that failed after the response began.
#[derive(Debug)]
pub struct DownloadError;

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the blob could not be read to its end")
    }
}

impl std::error::Error for DownloadError {}

/// `POST /jmap/upload/{accountId}/`: the request body becomes a blob.
pub async fn upload(
    server: &HttpServer,
    account: AccountId,
    path: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Response<Body> {
    if super::parse_account_id(path.trim_end_matches('/')) != Some(account) {
        return response::problem(StatusCode::NOT_FOUND, "about:blank", "no such account");
    }
    let size = bytes.len();
    let expires = tern_core::time::unix_now() + UPLOAD_LIFETIME_SECS;
    match server
        .mail
        .store()
        .upload_blob(account, bytes, expires)
        .await
    {
        Ok(blob) => response::json(
            StatusCode::CREATED,
            &json!({
                "accountId": super::account_id(account),
                "blobId": format!("b{}", blob.0),
                "type": if content_type.is_empty() { "application/octet-stream" } else { content_type },
                "size": size,
            }),
        ),
        Err(StoreError::OverQuota { limit, .. }) => super::request_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:ietf:params:jmap:error:overQuota",
            &format!("the upload does not fit in the account's quota ({limit} bytes)"),
            None,
        ),
        Err(e) if e.is_storage_full() => response::problem(
            StatusCode::INSUFFICIENT_STORAGE,
            "about:blank",
            "no storage left for the upload",
        ),
        Err(e) => {
            tracing::error!("jmap upload: {e}");
            response::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "about:blank",
                "the upload could not be stored; try again later",
            )
        }
    }
}

/// `Email/import`: each uploaded (or stored) message filed into its
/// mailboxes with its keywords, through the mail layer's append.
pub async fn import(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let emails = args
        .get("emails")
        .and_then(Value::as_object)
        .ok_or_else(|| method_error("invalidArguments", "emails is required"))?;
    let old_state = super::state(cx).await?;
    if let Some(expected) = args.get("ifInState").and_then(Value::as_str) {
        if expected != old_state {
            return Err(method_error("stateMismatch", "the state has moved on"));
        }
    }
    let store = cx.server.mail.store();
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (creation_id, spec) in emails {
        let invalid = |p: &str| json!({"type": "invalidProperties", "properties": [p]});
        let result: Result<Value, Value> = async {
            let spec = spec.as_object().ok_or_else(|| invalid("blobId"))?;
            let (blob, part) = spec
                .get("blobId")
                .and_then(Value::as_str)
                .and_then(parse_blob_id)
                .ok_or_else(|| invalid("blobId"))?;
            if part.is_some() {
                return Err(invalid("blobId"));
            }
            let mailboxes: Vec<MailboxId> = spec
                .get("mailboxIds")
                .and_then(Value::as_object)
                .ok_or_else(|| invalid("mailboxIds"))?
                .iter()
                .filter(|(_, v)| **v == json!(true))
                .map(|(id, _)| super::ids::parse_mailbox_id(id))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("mailboxIds"))?;
            if mailboxes.is_empty() {
                return Err(invalid("mailboxIds"));
            }
            let keywords: Vec<String> = match spec.get("keywords") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(k)) if k.values().all(|v| v == &json!(true)) => {
                    k.keys().map(|k| store_keyword(k)).collect()
                }
                Some(_) => return Err(invalid("keywords")),
            };
            if keywords
                .iter()
                .any(|k| tern_store::validate_keyword(k).is_err())
            {
                return Err(invalid("keywords"));
            }
            // The time it arrived where it comes from (a migration keeps it).
            let received_at = match spec.get("receivedAt") {
                None | Some(Value::Null) => tern_core::time::unix_now(),
                Some(Value::String(d)) => {
                    tern_mail::headers::parse_utc_date(d).ok_or_else(|| invalid("receivedAt"))?
                }
                Some(_) => return Err(invalid("receivedAt")),
            };
            let raw = store.read_blob(account, &blob).await.map_err(|e| match e {
                StoreError::NotFound { .. } => {
                    json!({"type": "blobNotFound", "notFound": [spec["blobId"]]})
                }
                other => json!({"type": "serverFail", "description": other.to_string()}),
            })?;
            file(cx, account, raw, &mailboxes, keywords, received_at).await
        }
        .await;
        match result {
            Ok(v) => {
                created.insert(creation_id.clone(), v);
            }
            Err(e) => {
                not_created.insert(creation_id.clone(), e);
            }
        }
    }
    let new_state = super::state(cx).await?;
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": old_state,
        "newState": new_state,
        "created": super::map_or_null(created),
        "notCreated": super::map_or_null(not_created),
    }))
}

/// Files a message in the mailboxes with the keywords, as `Email/import`
/// and `Email/set` create do; the created object's server-set properties.
pub(super) async fn file(
    cx: &Call<'_>,
    account: AccountId,
    raw: Vec<u8>,
    mailboxes: &[MailboxId],
    keywords: Vec<String>,
    received_at: i64,
) -> Result<Value, Value> {
    let invalid = |p: &str| json!({"type": "invalidProperties", "properties": [p]});
    let store = cx.server.mail.store();
    let Some(&first) = mailboxes.first() else {
        return Err(invalid("mailboxIds"));
    };
    let size = raw.len();
    let delivered = cx
        .server
        .mail
        .append(account, first, raw, keywords, received_at)
        .await
        .map_err(|e| match e {
            StoreError::OverQuota { .. } => json!({"type": "overQuota"}),
            StoreError::NotFound { .. } => invalid("mailboxIds"),
            other => json!({"type": "serverFail", "description": other.to_string()}),
        })?;
    if mailboxes.len() > 1 {
        let mut all = mailboxes.to_vec();
        all.sort();
        all.dedup();
        store
            .set_email_mailboxes(account, delivered.email_id, &all)
            .await
            .map_err(|e| json!({"type": "serverFail", "description": e.to_string()}))?;
    }
    let record = store
        .email_records(account, &[delivered.email_id])
        .await
        .ok()
        .and_then(|mut r| r.pop().flatten());
    Ok(json!({
        "id": email_id(delivered.email_id),
        "blobId": record.as_ref().map(|r| format!("b{}", r.blob_id.0)),
        "threadId": record.map(|r| super::ids::thread_id(r.thread_id)),
        "size": size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids() {
        let hash = "a".repeat(64);
        assert_eq!(
            parse_blob_id(&format!("b{hash}")),
            Some((BlobId(hash.clone()), None))
        );
        assert_eq!(
            parse_blob_id(&format!("b{hash}.3")),
            Some((BlobId(hash.clone()), Some(3)))
        );
        assert_eq!(parse_blob_id(&format!("b{hash}.x")), None);
        assert_eq!(parse_blob_id("b1234"), None);
        assert_eq!(parse_blob_id(&format!("x{hash}")), None);
        // One blob, one id: no other spellings.
        assert_eq!(parse_blob_id(&format!("b{}", "A".repeat(64))), None);
        assert_eq!(parse_blob_id(&format!("b{hash}.03")), None);
        assert_eq!(parse_blob_id(&format!("b{hash}.+3")), None);
        assert_eq!(
            percent_decode("my%20file%C3%A9.pdf").as_deref(),
            Some("my fileé.pdf")
        );
        assert_eq!(
            percent_decode("image%2Fsvg%2Bxml").as_deref(),
            Some("image/svg+xml")
        );
        assert_eq!(percent_decode("bad%2"), None);
    }
}
