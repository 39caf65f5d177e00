//! One POP3 session: AUTHORIZATION, then TRANSACTION, then UPDATE at QUIT
//! (RFC 1939 §3). Replies are buffered and written when the client has
//! nothing more pipelined (RFC 2449 PIPELINING).

mod auth;
mod maildrop;

use crate::command::{self, Command};
use crate::{MaildropLock, Mode, Pop3Server};
use maildrop::Maildrop;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::admission::{self, ConnectionSlot, LimitExceeded};
pub(crate) use tern_core::io::End;
use tern_core::io::{Conn, Duplex};
use tokio::sync::watch;

/// Longest command line: RFC 2449 §4 allows 255 octets; SASL responses
/// (base64 credentials) need more, so lines up to this are read.
const MAX_LINE: usize = 4096;

/// RFC 1939 §3: the autologout timer is at least 10 minutes.
const MIN_IDLE: Duration = Duration::from_secs(600);

/// The state a session is in.
enum State {
    Authorization {
        user: Option<String>,
    },
    Transaction {
        maildrop: Maildrop,
        _lock: MaildropLock,
    },
}

pub(crate) struct Session {
    srv: Arc<Pop3Server>,
    peer: SocketAddr,
    conn: Conn,
    state: State,
    errors: usize,
    stopping: watch::Receiver<bool>,
    /// This connection's place under the server's limits.
    slot: ConnectionSlot,
}

pub(crate) async fn run(
    srv: Arc<Pop3Server>,
    io: impl Duplex + 'static,
    peer: SocketAddr,
    mode: Mode,
    admission: Result<ConnectionSlot, LimitExceeded>,
    stopping: watch::Receiver<bool>,
) {
    let (slot, refused) = admission::split(admission);
    // A client that stops reading meets the idle timeout at writes too, so
    // it cannot keep the maildrop locked for ever.
    let idle = Duration::from_secs(srv.limits.idle_timeout_secs).max(MIN_IDLE);
    let tls = srv.tls.clone();
    let Some(mut conn) = Conn::open(tls, io, mode == Mode::Tls, refused.is_none(), idle).await
    else {
        return;
    };
    conn.trace_if(|| srv.tracer.for_client("pop3", peer));
    let mut s = Session {
        srv,
        peer,
        conn,
        state: State::Authorization { user: None },
        errors: 0,
        stopping,
        slot,
    };
    if let Some(why) = refused {
        s.temp_err(&format!("[SYS/TEMP] too busy ({why}); try again later"));
        let _ = s.flush().await;
        return;
    }
    s.ok(&format!("Tern POP3 server {} ready", s.srv.hostname));
    // Ending without QUIT runs no UPDATE: a dropped connection or a
    // timeout removes nothing (RFC 1939 §6).
    if let Err(End::Timeout) = s.command_loop().await {
        s.conn.out.clear();
        s.err("idle for too long; closing without deleting anything");
    }
    s.conn.close().await;
}

impl Session {
    fn ok(&mut self, text: &str) {
        let text = text.replace(['\r', '\n'], " ");
        let line = if text.is_empty() {
            "+OK\r\n".to_string()
        } else {
            format!("+OK {text}\r\n")
        };
        self.conn.out.extend_from_slice(line.as_bytes());
    }

    /// An error reply; counts towards `max_errors`.
    fn err(&mut self, text: &str) {
        self.errors += 1;
        self.temp_err(text);
    }

    /// An error reply for a condition that is not the client's fault
    /// ([SYS/TEMP], [IN-USE], [LOGIN-DELAY]); not counted.
    fn temp_err(&mut self, text: &str) {
        self.conn
            .out
            .extend_from_slice(format!("-ERR {}", text.replace(['\r', '\n'], " ")).as_bytes());
        self.conn.out.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.flush().await
    }

    /// The idle timeout: RFC 1939's ten minutes at least once logged in,
    /// `login_timeout_secs` before (a client logs in within seconds).
    fn idle(&self) -> Duration {
        let idle = Duration::from_secs(self.srv.limits.idle_timeout_secs).max(MIN_IDLE);
        match self.state {
            State::Authorization { .. } => {
                idle.min(Duration::from_secs(self.srv.limits.login_timeout_secs))
            }
            State::Transaction { .. } => idle,
        }
    }

    fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// Passwords only where they cannot be sniffed (RFC 2595 §2).
    fn auth_allowed(&self) -> bool {
        self.conn.password_may_travel(self.peer.ip())
    }

    /// One line without its line end, or `None` at end of input; an
    /// overlong line is consumed and reported as `Some(None)`.
    async fn read_line(&mut self) -> Result<Option<Option<Vec<u8>>>, End> {
        let line = self.conn.read_line(MAX_LINE, self.idle()).await?;
        Ok(if !line.complete {
            // The end of input, a partial line included.
            None
        } else if line.overflow {
            Some(None)
        } else {
            Some(Some(line.content().to_vec()))
        })
    }

    async fn command_loop(&mut self) -> Result<(), End> {
        loop {
            if self.errors >= self.srv.config.max_errors {
                self.err("too many errors; closing");
                return Ok(());
            }
            let mut stopping = self.stopping.clone();
            let line = tokio::select! {
                line = self.read_line() => line?,
                _ = stopping.wait_for(|s| *s) => {
                    self.temp_err("[SYS/TEMP] server shutting down; nothing was deleted");
                    return Ok(());
                }
            };
            let Some(line) = line else {
                return Err(End::Gone);
            };
            let Some(line) = line else {
                self.err("line too long");
                continue;
            };
            let cmd = match command::parse(&line) {
                Ok(cmd) => cmd,
                Err(e) => {
                    self.err(&e.to_string());
                    continue;
                }
            };
            if !self.dispatch(cmd).await? {
                return Ok(());
            }
        }
    }

    /// Runs one command; false when the session is over.
    async fn dispatch(&mut self, cmd: Command) -> Result<bool, End> {
        match cmd {
            Command::Capa => self.capa(),
            Command::Noop => self.ok(""),
            Command::Quit => {
                self.quit().await;
                // The client is done: its place is free for its next
                // connection even before this socket is closed.
                self.slot.release();
                return Ok(false);
            }
            cmd if matches!(self.state, State::Authorization { .. }) => {
                return self.authorization(cmd).await
            }
            cmd => self.transaction(cmd).await?,
        }
        Ok(true)
    }

    /// CAPA (RFC 2449 §5): what this server offers in the current state.
    fn capa(&mut self) {
        let mut lines = vec!["+OK capability list follows".to_string()];
        let authorization = matches!(self.state, State::Authorization { .. });
        if authorization && self.auth_allowed() {
            lines.push("USER".into());
            lines.push("SASL PLAIN".into());
        }
        if authorization && !self.is_tls() {
            lines.push("STLS".into());
        }
        lines.extend(
            [
                "TOP",
                "UIDL",
                "RESP-CODES",
                "AUTH-RESP-CODE",
                "PIPELINING",
                "UTF8",
                "EXPIRE NEVER",
            ]
            .map(String::from),
        );
        if self.srv.config.login_delay_secs > 0 {
            lines.push(format!("LOGIN-DELAY {}", self.srv.config.login_delay_secs));
        }
        lines.push("IMPLEMENTATION Tern".into());
        lines.push(".".into());
        for line in lines {
            self.conn.out.extend_from_slice(line.as_bytes());
            self.conn.out.extend_from_slice(b"\r\n");
        }
    }
}
