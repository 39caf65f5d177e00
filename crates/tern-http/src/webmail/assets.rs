//! The webmail's own files (`webmail/` at the repository's root), built
//! into the binary: `GET /` is the application's page, `GET /app/{file}`
//! its scripts, style sheet and translations.
//!
//! Each file is compressed once (gzip) the first time it is asked for and
//! served compressed to every browser that accepts it; an `ETag` from the
//! content lets a returning browser revalidate with a `304`. The page's
//! Content-Security-Policy allows scripts, styles and connections to this
//! origin only, and no inline script at all: what the page shows of a
//! message comes from the sandboxed reading frame (`reading.rs`), never as
//! markup of the application's own document.

use crate::response::Body;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    VARY,
};
use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::OnceLock;

/// The application page's policy: its own origin for everything it
/// loads, frames of its own origin (the reading pane), images of its own
/// origin and `data:`/`blob:` (attachment previews, icons), and nothing
/// else; no inline script, no plug-ins, no `<base>`, no framing of it.
pub const APP_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; font-src 'self'; \
    manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A file: the path it is served at, its media type and its bytes.
struct Source {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Source {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../webmail/",
                $file
            )),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the webmail.
const SOURCES: &[Source] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/app/style.css", "style.css", "text/css; charset=utf-8"),
    asset!("/app/icon.svg", "icon.svg", "image/svg+xml"),
    asset!("/app/main.js", "main.js", JS),
    asset!("/app/dom.js", "dom.js", JS),
    asset!("/app/i18n.js", "i18n.js", JS),
    asset!("/app/vi.js", "vi.js", JS),
    asset!("/app/jmap.js", "jmap.js", JS),
    asset!("/app/state.js", "state.js", JS),
    asset!("/app/mailboxes.js", "mailboxes.js", JS),
    asset!("/app/list.js", "list.js", JS),
    asset!("/app/reader.js", "reader.js", JS),
    asset!("/app/actions.js", "actions.js", JS),
    asset!("/app/compose.js", "compose.js", JS),
    asset!("/app/search.js", "search.js", JS),
    asset!("/app/settings.js", "settings.js", JS),
    asset!("/app/keys.js", "keys.js", JS),
];

/// A file ready to serve.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    plain: Bytes,
    gzip: Bytes,
    etag: String,
}

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        SOURCES
            .iter()
            .map(|s| {
                let digest = Sha256::digest(s.bytes);
                let etag: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
                Asset {
                    path: s.path,
                    content_type: s.content_type,
                    plain: Bytes::from_static(s.bytes),
                    gzip: gzip(s.bytes),
                    etag: format!("\"{etag}\""),
                }
            })
            .collect()
    })
}

fn gzip(bytes: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail; an empty answer would only be served
    // uncompressed below.
    if encoder.write_all(bytes).is_err() {
        return Bytes::new();
    }
    encoder.finish().map(Bytes::from).unwrap_or_default()
}

/// Whether `path` is one of the webmail's files.
pub fn is_asset(path: &str) -> bool {
    SOURCES.iter().any(|s| s.path == path)
}

/// Serves the file at `path` (one [`is_asset`] accepted).
pub fn serve(path: &str, headers: &HeaderMap) -> Response<Body> {
    let Some(asset) = assets().iter().find(|a| a.path == path) else {
        return crate::response::problem(StatusCode::NOT_FOUND, "about:blank", "no such resource");
    };
    let revalidated = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let gzip_ok = !asset.gzip.is_empty() && crate::response::accepts_gzip(headers);
    let mut r = if revalidated {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else if gzip_ok {
        let mut r = Response::new(Full::new(asset.gzip.clone()));
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Full::new(asset.plain.clone()))
    };
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(ETAG, v);
    }
    // Revalidated on each load: an upgraded server's files are seen at
    // once, and an unchanged file costs a 304.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mut r = crate::response::secure(r);
    r.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(APP_POLICY),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::ACCEPT_ENCODING;

    #[test]
    fn files_are_served_compressed_and_revalidated() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("br, gzip"));
        let r = serve("/app/main.js", &h);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        let etag = r.headers()[ETAG].clone();
        h.insert(IF_NONE_MATCH, etag);
        assert_eq!(serve("/app/main.js", &h).status(), StatusCode::NOT_MODIFIED);
        let mut plain = HeaderMap::new();
        plain.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0"));
        let r = serve("/", &plain);
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        assert!(is_asset("/app/style.css") && !is_asset("/app/../Cargo.toml"));
    }
}
