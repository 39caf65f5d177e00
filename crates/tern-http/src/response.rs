//! Responses: JSON bodies, RFC 7807 problem details for errors, and the
//! security headers every response carries.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::io::Write;

pub type Body = Full<Bytes>;

/// Adds the headers every response carries: no sniffing, no framing, no
/// referrer leaks, and no caching of anything personal.
pub fn secure(mut response: Response<Body>) -> Response<Body> {
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A JSON body with `status`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An RFC 7807 problem: `type` (a JMAP error URN where RFC 8620 §3.6.1
/// names one), `status` and a `detail` for people.
pub fn problem(status: StatusCode, kind: &str, detail: &str) -> Response<Body> {
    let body = serde_json::json!({
        "type": kind,
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = json(status, &body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A redirect to `location`.
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(hyper::header::LOCATION, value);
    }
    response
}

/// Whether the client takes gzip (`Accept-Encoding`, not refused by `q=0`).
pub fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// Below this a JSON answer goes as it is: compressing would save little.
const GZIP_FROM: usize = 1024;

/// A JSON answer compressed with gzip (fast level: JMAP answers are large
/// and repetitive, and a browser's first screen is mostly them).
pub async fn gzip_json(response: Response<Body>) -> Response<Body> {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/json") || t.starts_with("application/problem+json")
        });
    if !is_json
        || response
            .headers()
            .contains_key(hyper::header::CONTENT_ENCODING)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    if bytes.len() < GZIP_FROM {
        return Response::from_parts(parts, Full::new(bytes));
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let compressed = encoder.write_all(&bytes).and_then(|()| encoder.finish());
    match compressed {
        Ok(gz) => {
            parts.headers.insert(
                hyper::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
            parts.headers.insert(
                hyper::header::VARY,
                HeaderValue::from_static("Accept-Encoding"),
            );
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            Response::from_parts(parts, Full::new(Bytes::from(gz)))
        }
        Err(_) => Response::from_parts(parts, Full::new(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_json_is_compressed_small_and_other_bodies_are_not() {
        let big = serde_json::json!({"list": vec!["the same words again"; 200]});
        let r = gzip_json(json(StatusCode::OK, &big)).await;
        assert_eq!(r.headers()[hyper::header::CONTENT_ENCODING], "gzip");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&plain).unwrap(),
            big
        );
        let small = gzip_json(json(StatusCode::OK, &serde_json::json!({"a": 1}))).await;
        assert!(small
            .headers()
            .get(hyper::header::CONTENT_ENCODING)
            .is_none());
        let mut h = hyper::HeaderMap::new();
        h.insert(
            hyper::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(
            hyper::header::ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, GZIP"),
        );
        assert!(accepts_gzip(&h));
    }
}
