//! The webmail's server side (issue 15): its files (`assets.rs`), browser
//! sessions (below), the reading pane (`reading.rs`, `html.rs`) and the
//! user's preferences (`prefs.rs`).
//!
//! A browser logs in once (`POST /webmail/login`) and is given an
//! HttpOnly cookie holding a session token (an API token of
//! `tern_mail::tokens`, so the Store keeps only its hash and expiry); from
//! then on the JMAP endpoints accept the cookie instead of an
//! `Authorization` header. Every request that changes something and
//! carries only the cookie must also carry the CSRF token the login
//! answered with (`X-Tern-CSRF`), which a page of another site cannot read
//! — besides the cookie being `SameSite=Strict`.

pub mod assets;
pub mod html;
pub mod prefs;
pub mod reading;
pub mod session;
