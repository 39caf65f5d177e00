//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.
//!
//! Offered only under TLS or on loopback. The check itself is the mail
//! layer's (`Mail::authenticate`: the shared failure limiter, Argon2 at
//! equal cost for unknown users); past the limiter's limit the client gets
//! 454 until the window passes.

use super::{End, Flow, Session};
use crate::reply::Reply;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use tern_core::sasl::decode_plain;
use tern_mail::AuthError;

/// Longest SASL response line: a base64 PLAIN response of a 255-byte user
/// and a 1000-byte password fits easily.
const MAX_SASL_LINE: usize = 4096;

impl Session {
    pub(super) async fn auth(
        &mut self,
        mechanism: String,
        initial: Option<String>,
    ) -> Result<Flow, End> {
        if !self.auth_allowed() {
            self.reply(Reply::new(
                538,
                "5.7.11",
                "encryption required: issue STARTTLS first",
            ));
            return Ok(Flow::Continue);
        }
        if self.account.is_some() {
            self.reply(Reply::new(503, "5.5.1", "already authenticated"));
            return Ok(Flow::Continue);
        }
        if self.tx.is_some() {
            self.reply(Reply::new(
                503,
                "5.5.1",
                "AUTH is not allowed during a transaction",
            ));
            return Ok(Flow::Continue);
        }
        if self.helo.is_none() {
            self.reply(Reply::new(503, "5.5.1", "say EHLO first"));
            return Ok(Flow::Continue);
        }
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    // "=" is an empty initial response (RFC 4954 §4).
                    Some(r) if r != "=" => Some(r),
                    Some(_) => Some(String::new()),
                    None => self.challenge("").await?,
                };
                response.map(|r| decode_plain(&r))
            }
            "LOGIN" => {
                let user = match initial {
                    Some(u) => Some(u),
                    None => self.challenge("VXNlcm5hbWU6").await?, // "Username:"
                };
                match user {
                    None => None,
                    // "Password:"
                    Some(user) => self
                        .challenge("UGFzc3dvcmQ6")
                        .await?
                        .map(|pass| decode_login(&user, &pass)),
                }
            }
            _ => {
                self.reply(Reply::new(
                    504,
                    "5.5.4",
                    "unrecognized authentication mechanism; use PLAIN or LOGIN",
                ));
                return Ok(Flow::Continue);
            }
        };
        let (user, password) = match credentials {
            None => {
                self.reply(Reply::new(501, "5.0.0", "authentication cancelled"));
                return Ok(Flow::Continue);
            }
            Some(Err(why)) => {
                self.reply(Reply::new(501, "5.5.2", why));
                return Ok(Flow::Continue);
            }
            Some(Ok(pair)) => pair,
        };
        let srv = self.srv.clone();
        match srv
            .mail
            .authenticate("smtp", self.peer, &user, &password)
            .await
        {
            Ok(account) => {
                let (tracer, peer) = (&srv.tracer, self.peer);
                self.conn
                    .trace_if(|| tracer.for_account("smtp", peer, &account.address));
                self.account = Some(account);
                self.slot.authenticated();
                self.reply(Reply::new(235, "2.7.0", "authentication successful"));
            }
            Err(AuthError::RateLimited(retry)) => {
                self.reply(Reply::new(454, "4.7.0", retry.to_string()));
            }
            Err(AuthError::InvalidCredentials) => {
                self.reply(Reply::new(
                    535,
                    "5.7.8",
                    "authentication credentials invalid",
                ));
            }
            Err(AuthError::Unavailable(e)) => self.temporary_failure("checking a password", e),
        }
        Ok(Flow::Continue)
    }

    /// Sends a 334 challenge and reads the answer; `None` if cancelled (`*`).
    async fn challenge(&mut self, text: &str) -> Result<Option<String>, End> {
        self.reply(Reply::bare(334, vec![text.to_string()]));
        let idle = self.idle_timeout();
        let line = self.read_line(MAX_SASL_LINE, idle).await?;
        if !line.complete {
            return Err(End::Gone);
        }
        let text = String::from_utf8_lossy(&line.bytes).trim().to_string();
        Ok(if text == "*" || line.overflow {
            None
        } else {
            Some(text)
        })
    }
}

/// LOGIN: base64 user name and password in two answers.
fn decode_login(user: &str, pass: &str) -> Result<(String, String), &'static str> {
    let decode = |s: &str| -> Result<String, &'static str> {
        String::from_utf8(BASE64.decode(s.trim()).map_err(|_| "invalid base64")?)
            .map_err(|_| "credentials are not UTF-8")
    };
    Ok((decode(user)?, decode(pass)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_responses() {
        let enc = |s: &str| BASE64.encode(s);
        assert_eq!(
            decode_login(&enc("u@x"), &enc("pw")),
            Ok(("u@x".into(), "pw".into()))
        );
    }
}
