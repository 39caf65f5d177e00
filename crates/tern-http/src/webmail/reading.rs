//! `GET /webmail/message/{emailId}/html[?images=1]`: a message's HTML body
//! (or its text as HTML) made safe (`html.rs`), as a page the webmail
//! shows in a sandboxed frame. The answer says in `X-Tern-Blocked-Images`
//! how many remote images were held back, so the reader can be offered
//! to show them.

use super::html;
use crate::response::{self, Body};
use crate::HttpServer;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use std::collections::HashMap;
use tern_store::AccountId;

/// The page's own defaults, before the message's: a readable font and
/// margins, long words and wide tables kept inside the frame.
const BASE_STYLE: &str = "body{margin:12px 16px;font:14px/1.5 system-ui,-apple-system,\
    'Segoe UI',Roboto,sans-serif;color:#1c2127;background:#fff;overflow-wrap:anywhere}\
    img{max-width:100%;height:auto}pre{white-space:pre-wrap}blockquote{margin:0 0 0 8px;\
    padding-left:10px;border-left:3px solid #d8dde3;color:#5b6570}";

/// Serves the page; `rest` is what follows `/webmail/message/`.
pub async fn page(
    server: &HttpServer,
    account: AccountId,
    rest: &str,
    query: Option<&str>,
) -> Response<Body> {
    let not_found = || response::problem(StatusCode::NOT_FOUND, "about:blank", "no such message");
    let Some(email) = rest
        .strip_suffix("/html")
        .and_then(crate::jmap::ids::parse_email_id)
    else {
        return not_found();
    };
    let remote_images = query.is_some_and(|q| q.split('&').any(|kv| kv == "images=1"));
    let store = server.mail.store();
    let record = match store.email_records(account, &[email]).await {
        Ok(mut r) => match r.pop().flatten() {
            Some(r) => r,
            None => return not_found(),
        },
        Err(e) => {
            tracing::error!("webmail page: {e}");
            return response::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "about:blank",
                "the message could not be read; try again later",
            );
        }
    };
    let raw = match store.read_blob(account, &record.blob_id).await {
        Ok(raw) => raw,
        Err(_) => return not_found(),
    };
    let Some(message) = MessageParser::default().parse(&raw[..]) else {
        return not_found();
    };
    // The message's own images, by Content-ID, for `cid:` references.
    let cid: HashMap<String, (String, Vec<u8>)> = message
        .parts
        .iter()
        .filter(|p| !matches!(p.body, PartType::Multipart(_) | PartType::Message(_)))
        .filter_map(|p| {
            let id = p
                .content_id()?
                .trim_matches(['<', '>'])
                .to_ascii_lowercase();
            let ct = p.content_type()?;
            let ctype = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream"))
                .to_ascii_lowercase();
            Some((id, (ctype, p.contents().to_vec())))
        })
        .collect();
    // The HTML body, or the text one as HTML (mail-parser converts).
    let body = message
        .body_html(0)
        .map(|h| h.into_owned())
        .unwrap_or_default();
    let safe = html::sanitize(&body, remote_images, &cid);
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>{BASE_STYLE}</style></head><body>{}</body></html>",
        safe.html
    );
    let mut r = Response::new(Full::new(Bytes::from(page)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&html::policy(remote_images)) {
        h.insert("content-security-policy", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    // Not kept by the browser: a shared computer keeps no message after
    // logout (rendering it again costs the server about a millisecond).
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(
        "x-tern-blocked-images",
        HeaderValue::from(safe.blocked_images),
    );
    r
}
