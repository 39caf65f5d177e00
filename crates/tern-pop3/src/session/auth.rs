//! The AUTHORIZATION state: USER/PASS (RFC 1939 §7), AUTH PLAIN (RFC 5034),
//! STLS (RFC 2595), UTF8 (RFC 6856), and taking the maildrop.
//!
//! Failed logins count against the client's address in the shared limiter;
//! an unknown user costs the same Argon2 work as a wrong password.

use super::maildrop::Maildrop;
use super::{End, Session, State};
use crate::command::Command;
use std::time::Instant;
use tern_core::sasl::decode_plain;
use tern_mail::AuthError;

impl Session {
    /// A command in the AUTHORIZATION state; false when the session ends.
    pub(super) async fn authorization(&mut self, cmd: Command) -> Result<bool, End> {
        match cmd {
            Command::User(name) => {
                if !self.auth_allowed() {
                    self.err(
                        "use STLS first: passwords are not accepted over an unencrypted connection",
                    );
                } else {
                    // Never says whether the user exists (RFC 1939 §13).
                    self.state = State::Authorization { user: Some(name) };
                    self.ok("send PASS");
                }
            }
            Command::Pass(password) => {
                let user = match &mut self.state {
                    State::Authorization { user } => user.take(),
                    State::Transaction { .. } => None,
                };
                match user {
                    None => self.err("USER first"),
                    Some(user) => self.login(&user, &password).await,
                }
            }
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial).await?,
            Command::Stls => return self.stls().await,
            Command::Utf8 => self.ok("UTF8 enabled"),
            _ => self.err("not logged in: USER and PASS, or AUTH, first"),
        }
        Ok(true)
    }

    async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial: Option<String>,
    ) -> Result<(), End> {
        if !self.auth_allowed() {
            self.err("use STLS first: passwords are not accepted over an unencrypted connection");
            return Ok(());
        }
        let Some(mechanism) = mechanism else {
            // Old clients (RFC 1734) ask for the list with a bare AUTH.
            self.conn.out.extend_from_slice(b"+OK\r\nPLAIN\r\n.\r\n");
            return Ok(());
        };
        if mechanism != "PLAIN" {
            self.err("unsupported mechanism; use PLAIN");
            return Ok(());
        }
        let response = match initial {
            Some(r) if r == "=" => String::new(),
            Some(r) => r,
            None => {
                self.conn.out.extend_from_slice(b"+ \r\n");
                match self.read_line().await? {
                    None => return Err(End::Gone),
                    Some(None) => {
                        self.err("line too long");
                        return Ok(());
                    }
                    Some(Some(line)) => String::from_utf8_lossy(&line).trim().to_string(),
                }
            }
        };
        if response == "*" {
            self.err("authentication cancelled");
            return Ok(());
        }
        match decode_plain(&response) {
            Ok((user, password)) => self.login(&user, &password).await,
            Err(why) => self.err(why),
        }
        Ok(())
    }

    /// Checks the credentials and takes the maildrop.
    async fn login(&mut self, user: &str, password: &str) {
        let srv = self.srv.clone();
        let account = match srv
            .mail
            .authenticate("pop3", self.peer, user, password)
            .await
        {
            Ok(account) => account,
            Err(AuthError::RateLimited(retry)) => {
                self.temp_err(&format!("[SYS/TEMP] {retry}"));
                return;
            }
            Err(AuthError::Unavailable(_)) => {
                self.temp_err("[SYS/TEMP] temporary failure; try again later");
                return;
            }
            Err(AuthError::InvalidCredentials) => {
                self.err("[AUTH] invalid user name or password");
                return;
            }
        };
        let delay = srv.config.login_delay_secs;
        if delay > 0 {
            let last = srv.last_login.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(since) = last.get(&account.id).map(|at| at.elapsed().as_secs()) {
                if since < delay {
                    drop(last);
                    self.temp_err(&format!(
                        "[LOGIN-DELAY] wait {} more seconds between logins",
                        delay - since
                    ));
                    return;
                }
            }
        }
        let lock = match srv.lock_maildrop(account.id).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                self.temp_err("[IN-USE] the maildrop is in use by another POP3 session");
                return;
            }
            Err(e) => {
                tracing::error!("pop3 {}: locking the maildrop: {e}", self.peer);
                self.temp_err("[SYS/TEMP] the maildrop cannot be locked now; try again later");
                return;
            }
        };
        match Maildrop::open(srv.store.as_ref(), account.id).await {
            Ok(maildrop) => {
                if delay > 0 {
                    // Only a login that got the maildrop starts the delay.
                    srv.last_login
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(account.id, Instant::now());
                }
                let (count, size) = maildrop.stat();
                tracing::info!(
                    "pop3 {}: {} logged in, {count} messages",
                    self.peer,
                    account.address
                );
                let (tracer, peer) = (&srv.tracer, self.peer);
                self.conn
                    .trace_if(|| tracer.for_account("pop3", peer, &account.address));
                self.slot.authenticated();
                self.state = State::Transaction {
                    maildrop,
                    _lock: lock,
                };
                self.ok(&format!("maildrop has {count} messages ({size} octets)"));
            }
            Err(e) => {
                tracing::error!(
                    "pop3 {}: opening the maildrop of {}: {e}",
                    self.peer,
                    account.address
                );
                self.temp_err("[SYS/TEMP] cannot open the maildrop; try again later");
            }
        }
    }

    /// STLS: everything pipelined before the handshake is dropped with the
    /// plaintext buffer, and the session starts over (RFC 2595 §4).
    async fn stls(&mut self) -> Result<bool, End> {
        if self.is_tls() {
            self.err("TLS is already active");
            return Ok(true);
        }
        self.ok("begin TLS negotiation");
        if !self.conn.start_tls(self.srv.tls.clone()).await? {
            return Err(End::Gone);
        }
        self.state = State::Authorization { user: None };
        Ok(true)
    }
}
