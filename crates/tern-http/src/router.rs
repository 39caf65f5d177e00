//! Which handler a request goes to, by method and path.

use crate::response::{self, Body};
use crate::HttpServer;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;

/// What a handler knows of the connection.
#[derive(Clone)]
pub struct Context {
    pub peer: SocketAddr,
    /// Over TLS.
    pub secure: bool,
    /// The connection's place under the server's limits: once a request
    /// authenticates, the connection counts as logged in.
    pub slot: std::sync::Arc<tern_core::admission::ConnectionSlot>,
    /// Turns true when the server stops: long responses (push) end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

pub async fn route(
    server: &std::sync::Arc<HttpServer>,
    cx: Context,
    request: Request<Incoming>,
) -> Response<crate::jmap::push::StreamingBody> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let gzip_ok = response::accepts_gzip(request.headers());
    if method == Method::GET && path == crate::jmap::websocket::PATH {
        let response = if !crate::jmap::websocket::is_upgrade(&request) {
            response::problem(
                StatusCode::UPGRADE_REQUIRED,
                "about:blank",
                "this is the JMAP WebSocket endpoint (RFC 8887)",
            )
        } else {
            match account(server, &cx, &request).await {
                Ok(account) => crate::jmap::websocket::upgrade(
                    server.clone(),
                    account,
                    request,
                    cx.stopping.clone(),
                    cx.slot.clone(),
                ),
                Err(r) => r,
            }
        };
        return crate::jmap::push::boxed(response::secure(response));
    }
    if method == Method::GET && path == "/jmap/eventsource" {
        let response = match account(server, &cx, &request).await {
            Ok(account) => {
                let options = crate::jmap::push::options(request.uri().query());
                let changes = server.mail.store().subscribe(account);
                crate::jmap::push::eventsource(account, changes, options, cx.stopping.clone())
            }
            Err(r) => crate::jmap::push::boxed(r),
        };
        return secure_streaming(response);
    }
    // The reading pane's page sets its own headers (a frame of ours, under
    // its own sandboxing policy).
    if method == Method::GET && path.starts_with("/webmail/message/") {
        let response = match account(server, &cx, &request).await {
            Ok(account) => {
                let rest = &path["/webmail/message/".len()..];
                crate::webmail::reading::page(server, account, rest, request.uri().query()).await
            }
            Err(r) => response::secure(r),
        };
        return crate::jmap::push::boxed(response);
    }
    if method == Method::GET && path.starts_with("/jmap/download/") {
        let by_cookie = by_cookie(&request);
        let response = match account(server, &cx, &request).await {
            Ok(account) => {
                let rest = &path["/jmap/download/".len()..];
                let mut r =
                    crate::jmap::blob::download(server, account, rest, request.uri().query()).await;
                // A browser session's downloads stay out of the disk cache
                // of what may be a shared computer.
                if by_cookie {
                    r.headers_mut().insert(
                        hyper::header::CACHE_CONTROL,
                        hyper::header::HeaderValue::from_static("private, no-store"),
                    );
                }
                r
            }
            Err(r) => crate::jmap::push::boxed(r),
        };
        return secure_streaming(response);
    }
    if (method == Method::GET || method == Method::HEAD) && crate::webmail::assets::is_asset(&path)
    {
        return crate::jmap::push::boxed(crate::webmail::assets::serve(&path, request.headers()));
    }
    let response = match (&method, path.as_str()) {
        (&Method::GET, "/webmail" | "/webmail/") => response::redirect(StatusCode::FOUND, "/"),
        (&Method::GET, "/webmail/prefs") => match account(server, &cx, &request).await {
            Ok(account) => crate::webmail::prefs::get(server, account).await,
            Err(r) => r,
        },
        (&Method::PUT, "/webmail/prefs") => match account(server, &cx, &request).await {
            Ok(account) => {
                match body(request, crate::webmail::prefs::MAX_PREFS, "maxSizeRequest").await {
                    Ok(bytes) => crate::webmail::prefs::put(server, account, &bytes).await,
                    Err(r) => r,
                }
            }
            Err(r) => r,
        },
        (&Method::POST, "/webmail/password") => match account(server, &cx, &request).await {
            Ok(account) => {
                let session = crate::webmail::session::session_cookie(request.headers());
                match body(request, 64 * 1024, "maxSizeRequest").await {
                    Ok(bytes) => {
                        crate::webmail::prefs::change_password(
                            server,
                            account,
                            cx.peer,
                            session.as_deref(),
                            &bytes,
                        )
                        .await
                    }
                    Err(r) => r,
                }
            }
            Err(r) => r,
        },
        (&Method::POST, "/webmail/login") => {
            // No login CSRF: a browser names the page's origin on every
            // POST (a form of another site included); scripts and tools
            // that send none may log in.
            if !same_origin(server, &cx, &request, false) {
                response::problem(
                    StatusCode::FORBIDDEN,
                    "about:blank",
                    "log in from the webmail's own page (this origin)",
                )
            } else {
                match body(request, 64 * 1024, "maxSizeRequest").await {
                    Ok(bytes) => {
                        crate::webmail::session::login(server, cx.peer, cx.secure, &bytes).await
                    }
                    Err(r) => r,
                }
            }
        }
        (&Method::GET, "/webmail/session") => match account(server, &cx, &request).await {
            Ok(account) => match crate::webmail::session::session_cookie(request.headers()) {
                Some(token) => crate::webmail::session::current(server, account, &token).await,
                None => response::problem(
                    StatusCode::UNAUTHORIZED,
                    "about:blank",
                    "no webmail session",
                ),
            },
            Err(r) => r,
        },
        (&Method::POST, "/webmail/logout") => match account(server, &cx, &request).await {
            Ok(account) => match crate::webmail::session::session_cookie(request.headers()) {
                Some(token) => {
                    crate::webmail::session::logout(server, account, &token, cx.secure).await
                }
                None => response::problem(
                    StatusCode::UNAUTHORIZED,
                    "about:blank",
                    "no webmail session",
                ),
            },
            Err(r) => r,
        },
        // RFC 8620 §2.2: the well-known URL redirects to the session.
        (&Method::GET, "/.well-known/jmap") => {
            response::redirect(StatusCode::PERMANENT_REDIRECT, "/jmap/session")
        }
        (&Method::GET, "/jmap/session") => match account(server, &cx, &request).await {
            Ok(account) => {
                let base = base_url(server, &cx, &request);
                crate::jmap::session(server, account, &base).await
            }
            Err(r) => r,
        },
        (&Method::POST, "/jmap/api") => match account(server, &cx, &request).await {
            Ok(account) => {
                match body(request, crate::jmap::MAX_SIZE_REQUEST, "maxSizeRequest").await {
                    Ok(bytes) => crate::jmap::api(server, account, &bytes).await,
                    Err(r) => r,
                }
            }
            Err(r) => r,
        },

        (&Method::POST, p) if p.starts_with("/jmap/upload/") => {
            match account(server, &cx, &request).await {
                Ok(account) => {
                    let content_type = request
                        .headers()
                        .get(hyper::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let rest = path["/jmap/upload/".len()..].to_string();
                    let Some(_upload) = server.uploads.enter(account) else {
                        return crate::jmap::push::boxed(response::secure(
                            crate::jmap::request_error(
                                StatusCode::TOO_MANY_REQUESTS,
                                "urn:ietf:params:jmap:error:limit",
                                "at most maxConcurrentUpload uploads at once per account",
                                Some("maxConcurrentUpload"),
                            ),
                        ));
                    };
                    match spooled_body(server, request, crate::jmap::blob::MAX_SIZE_UPLOAD).await {
                        // The slot bounds how many large uploads are in
                        // memory at once; held until the upload is stored.
                        Ok((bytes, _slot)) => {
                            crate::jmap::blob::upload(server, account, &rest, &content_type, bytes)
                                .await
                        }
                        Err(r) => r,
                    }
                }
                Err(r) => r,
            }
        }
        (_, "/.well-known/jmap" | "/jmap/session" | "/jmap/api") => {
            let mut r = response::problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "about:blank",
                &format!("{method} is not allowed on {path}"),
            );
            let allow = if path == "/jmap/api" { "POST" } else { "GET" };
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static(allow),
            );
            r
        }
        _ => response::problem(StatusCode::NOT_FOUND, "about:blank", "no such resource"),
    };
    let response = if gzip_ok {
        response::gzip_json(response).await
    } else {
        response
    };
    crate::jmap::push::boxed(response::secure(response))
}

/// The security headers on a streaming response.
fn secure_streaming(
    response: Response<crate::jmap::push::StreamingBody>,
) -> Response<crate::jmap::push::StreamingBody> {
    let (parts, body) = response.into_parts();
    let headers = response::secure(Response::new(response::Body::default()))
        .headers()
        .clone();
    let mut response = Response::from_parts(parts, body);
    for (name, value) in headers.iter() {
        if !response.headers().contains_key(name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// `scheme://host[:port]` as the client reached us (the Host header, or
/// the HTTP/2 authority), for the absolute URLs of the JMAP session; our
/// host name when the client named none usable.
fn base_url(server: &HttpServer, cx: &Context, request: &Request<Incoming>) -> String {
    let scheme = if cx.secure { "https" } else { "http" };
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            request
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(String::from)
        })
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or_else(|| server.hostname().to_string());
    format!("{scheme}://{host}")
}

/// Whether the request carries the webmail's session cookie and no
/// `Authorization` (the cookie stands for the credentials).
fn by_cookie(request: &Request<Incoming>) -> bool {
    !request.headers().contains_key(hyper::header::AUTHORIZATION)
        && crate::webmail::session::session_cookie(request.headers()).is_some()
}

/// Whether the request's `Origin` is this server as the client reached it
/// (the scheme of the connection and the Host it named); a request
/// without one passes unless `required` (browsers send it on every
/// WebSocket and on every request that changes something).
fn same_origin(
    server: &HttpServer,
    cx: &Context,
    request: &Request<Incoming>,
    required: bool,
) -> bool {
    match request
        .headers()
        .get(hyper::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => !required,
        Some(origin) => origin.eq_ignore_ascii_case(&base_url(server, cx, request)),
    }
}

/// The authenticated account, or the response that says why not.
async fn account(
    server: &HttpServer,
    cx: &Context,
    request: &Request<Incoming>,
) -> Result<tern_store::AccountId, Response<Body>> {
    use crate::auth::Refused;
    let mut authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // A browser's webmail session: the cookie stands for a bearer token,
    // and a request that may change something must carry the session's
    // CSRF token as well.
    if authorization.is_none() {
        if let Some(token) = crate::webmail::session::session_cookie(request.headers()) {
            // A page of another site (a sibling subdomain is "same site"
            // to SameSite) gets nothing with the cookie; a WebSocket,
            // which has no CSRF header, must name our origin.
            let upgrade = request.uri().path() == crate::jmap::websocket::PATH;
            if !same_origin(server, cx, request, upgrade) {
                return Err(response::problem(
                    StatusCode::FORBIDDEN,
                    "about:blank",
                    "the request comes from another site",
                ));
            }
            let safe = matches!(*request.method(), Method::GET | Method::HEAD);
            if !safe && !crate::webmail::session::csrf_ok(request.headers(), &token) {
                return Err(response::problem(
                    StatusCode::FORBIDDEN,
                    "about:blank",
                    "the request lacks the session's CSRF token (X-Tern-CSRF)",
                ));
            }
            authorization = Some(format!("Bearer {token}"));
        }
    }
    match server
        .authenticate(authorization.as_deref(), cx.peer, cx.secure)
        .await
    {
        Ok(account) => {
            cx.slot.authenticated();
            Ok(account)
        }
        Err(Refused::Insecure) => Err(response::problem(
            StatusCode::FORBIDDEN,
            "about:blank",
            "passwords are accepted only over HTTPS",
        )),
        Err(Refused::Unavailable) => Err(response::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "about:blank",
            "the account directory is unavailable; try again later",
        )),
        Err(Refused::Missing | Refused::Wrong) => {
            let mut r = response::problem(
                StatusCode::UNAUTHORIZED,
                "about:blank",
                "authentication required",
            );
            // The webmail logs in with its own page: a challenge would make
            // the browser put up its password prompt over it.
            let from_webmail = request.uri().path().starts_with("/webmail/")
                || request
                    .headers()
                    .contains_key(crate::webmail::session::CSRF_HEADER)
                || crate::webmail::session::session_cookie(request.headers()).is_some();
            if from_webmail {
                return Err(r);
            }
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static(
                    "Basic realm=\"Tern\", charset=\"UTF-8\", Bearer realm=\"Tern\"",
                ),
            );
            Err(r)
        }
    }
}

/// The body's declared length (Content-Length), if any.
fn declared_length(request: &Request<Incoming>) -> Option<usize> {
    request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// RFC 8620 §3.6.1's `limit` error for a body past `limit` bytes.
fn over_limit(limit: usize, limit_name: &'static str) -> Response<Body> {
    crate::jmap::request_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "urn:ietf:params:jmap:error:limit",
        &format!("the body is larger than {limit_name} ({limit} bytes)"),
        Some(limit_name),
    )
}

/// An upload's body, received into a spool (a temporary file past 1 MiB,
/// as SMTP and IMAP bodies are), then read back under the mail layer's
/// bound on large bodies in memory: many clients uploading at once cost
/// disk while they send, not memory. At most `limit` bytes.
async fn spooled_body(
    server: &HttpServer,
    request: Request<Incoming>,
    limit: usize,
) -> Result<(Vec<u8>, Option<tokio::sync::OwnedSemaphorePermit>), Response<Body>> {
    let too_large = || over_limit(limit, "maxSizeUpload");
    let unreadable = || {
        response::problem(
            StatusCode::BAD_REQUEST,
            "about:blank",
            "the request body could not be read",
        )
    };
    if declared_length(&request).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut spool = server.mail.new_body();
    let mut incoming = request.into_body();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|_| unreadable())?;
        if let Some(data) = frame.data_ref() {
            if spool.len() as usize + data.len() > limit {
                return Err(too_large());
            }
            spool.push(data).await.map_err(|e| {
                tracing::error!("http upload: spooling: {e}");
                response::problem(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "about:blank",
                    "no room to receive the upload",
                )
            })?;
        }
    }
    server.mail.read_body(spool).await.map_err(|e| {
        tracing::error!("http upload: reading the spool: {e}");
        unreadable()
    })
}

/// The request body, at most `limit` bytes (RFC 8620 §3.6.1 `limit`
/// naming `limit_name` past it).
async fn body(
    request: Request<Incoming>,
    limit: usize,
    limit_name: &'static str,
) -> Result<bytes::Bytes, Response<Body>> {
    let too_large = || over_limit(limit, limit_name);
    if declared_length(&request).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(request.into_body(), limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(_) => Err(response::problem(
            StatusCode::BAD_REQUEST,
            "about:blank",
            "the request body could not be read",
        )),
    }
}
