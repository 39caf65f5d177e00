//! The not-authenticated state (RFC 9051 §6.2): STARTTLS, LOGIN and
//! AUTHENTICATE PLAIN with SASL-IR (RFC 4959); and ENABLE (RFC 5161).

use super::{End, Next, Session, State};
use tern_core::sasl::decode_plain;
use tern_mail::AuthError;

impl Session {
    /// STARTTLS: the plaintext buffer, and anything pipelined in it, is
    /// dropped before the handshake (RFC 9051 §6.2.1).
    pub(super) async fn starttls(&mut self, tag: &str) -> Result<Next, End> {
        if self.is_tls() {
            self.tagged(tag, "BAD", "TLS is already active");
            return Ok(Next::Continue);
        }
        if !matches!(self.state, State::NotAuthenticated) {
            self.tagged(tag, "BAD", "STARTTLS only before login");
            return Ok(Next::Continue);
        }
        self.tagged(tag, "OK", "begin TLS negotiation now");
        if !self.conn.start_tls(self.srv.tls.clone()).await? {
            return Err(End::Gone);
        }
        Ok(Next::Continue)
    }

    pub(super) async fn login(&mut self, tag: &str, user: &str, password: &str) {
        if !matches!(self.state, State::NotAuthenticated) {
            self.tagged(tag, "BAD", "already logged in");
            return;
        }
        if !self.auth_allowed() {
            self.tagged(tag, "NO", "[PRIVACYREQUIRED] use STARTTLS first");
            return;
        }
        self.check_credentials(tag, user, password).await;
    }

    pub(super) async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<String>,
    ) -> Result<(), End> {
        if !matches!(self.state, State::NotAuthenticated) {
            self.tagged(tag, "BAD", "already logged in");
            return Ok(());
        }
        if !self.auth_allowed() {
            self.tagged(tag, "NO", "[PRIVACYREQUIRED] use STARTTLS first");
            return Ok(());
        }
        if mechanism != "PLAIN" {
            self.tagged(tag, "NO", "[CANNOT] unsupported mechanism; use PLAIN");
            return Ok(());
        }
        let response = match initial {
            Some(r) if r == "=" => String::new(),
            Some(r) => r,
            None => {
                self.conn.out.extend_from_slice(b"+ \r\n");
                match self.read_line(8 * 1024).await? {
                    None => return Err(End::Gone),
                    Some(Err(())) => {
                        self.tagged(tag, "BAD", "line too long");
                        return Ok(());
                    }
                    Some(Ok(line)) => String::from_utf8_lossy(&line).trim().to_string(),
                }
            }
        };
        if response == "*" {
            self.tagged(tag, "BAD", "authentication cancelled");
            return Ok(());
        }
        match decode_plain(&response) {
            Ok((user, password)) => self.check_credentials(tag, &user, &password).await,
            Err(why) => self.tagged(tag, "BAD", why),
        }
        Ok(())
    }

    async fn check_credentials(&mut self, tag: &str, user: &str, password: &str) {
        let srv = self.srv.clone();
        match srv
            .mail
            .authenticate("imap", self.peer, user, password)
            .await
        {
            Ok(account) => {
                let (tracer, peer) = (&srv.tracer, self.peer);
                self.conn
                    .trace_if(|| tracer.for_account("imap", peer, &account.address));
                self.account = Some(account);
                self.slot.authenticated();
                self.state = State::Authenticated;
                let caps = self.capabilities();
                self.tagged(tag, "OK", &format!("[CAPABILITY {caps}] logged in"));
            }
            Err(AuthError::RateLimited(retry)) => {
                self.tagged(tag, "NO", &format!("[UNAVAILABLE] {retry}"));
            }
            Err(AuthError::Unavailable(_)) => {
                self.tagged(
                    tag,
                    "NO",
                    "[UNAVAILABLE] temporary failure; try again later",
                );
            }
            Err(AuthError::InvalidCredentials) => {
                self.tagged(
                    tag,
                    "NO",
                    "[AUTHENTICATIONFAILED] invalid user name or password",
                );
            }
        }
    }

    /// ENABLE (RFC 5161): only what was not enabled before is echoed.
    pub(super) fn enable(&mut self, tag: &str, caps: &[String]) {
        let mut enabled = Vec::new();
        for cap in caps {
            let flag = match cap.as_str() {
                "CONDSTORE" => &mut self.condstore,
                "QRESYNC" => &mut self.qresync,
                "UTF8=ACCEPT" => &mut self.utf8,
                "IMAP4REV2" => &mut self.rev2,
                _ => continue,
            };
            if !*flag {
                *flag = true;
                enabled.push(cap.clone());
            }
        }
        // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
        if self.qresync {
            self.condstore = true;
        }
        if !enabled.is_empty() {
            self.untagged(&format!("ENABLED {}", enabled.join(" ")));
        }
        self.tagged(tag, "OK", "ENABLE completed");
    }
}
