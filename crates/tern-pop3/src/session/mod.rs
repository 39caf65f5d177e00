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
use tern_core::io::Stream;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Longest command line: RFC 2449 §4 allows 255 octets; SASL responses
/// (base64 credentials) need more, so lines up to this are read.
const MAX_LINE: usize = 4096;

/// Replies held back for pipelining before they are written anyway.
const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// RFC 1939 §3: the autologout timer is at least 10 minutes.
const MIN_IDLE: Duration = Duration::from_secs(600);

/// Why a session ends without an orderly QUIT. Either way no UPDATE runs:
/// a dropped connection removes nothing (RFC 1939 §6).
pub(crate) enum End {
    Gone,
    Timeout,
}

impl From<std::io::Error> for End {
    fn from(_: std::io::Error) -> End {
        End::Gone
    }
}

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
    conn: BufReader<Stream>,
    out: Vec<u8>,
    state: State,
    errors: usize,
    stopping: watch::Receiver<bool>,
}

pub(crate) async fn run(
    srv: Arc<Pop3Server>,
    tcp: TcpStream,
    peer: SocketAddr,
    mode: Mode,
    admitted: Result<(), String>,
    stopping: watch::Receiver<bool>,
) {
    if admitted.is_err() && mode == Mode::Tls {
        // No TLS handshake for a connection we will not serve.
        return;
    }
    let Some(stream) = tern_core::io::open(srv.tls.clone(), tcp, mode == Mode::Tls).await else {
        return;
    };
    let mut s = Session {
        srv,
        peer,
        conn: BufReader::new(stream),
        out: Vec::new(),
        state: State::Authorization { user: None },
        errors: 0,
        stopping,
    };
    if let Err(why) = admitted {
        s.temp_err(&format!("[SYS/TEMP] too busy ({why}); try again later"));
        let _ = s.flush().await;
        return;
    }
    s.ok(&format!("Tern POP3 server {} ready", s.srv.hostname));
    if let Err(End::Timeout) = s.command_loop().await {
        s.out.clear();
        s.err("idle for too long; closing without deleting anything");
    }
    let _ = s.flush().await;
    let _ = s.conn.get_mut().shutdown().await;
}

impl Session {
    fn ok(&mut self, text: &str) {
        let text = text.replace(['\r', '\n'], " ");
        let line = if text.is_empty() {
            "+OK\r\n".to_string()
        } else {
            format!("+OK {text}\r\n")
        };
        self.out.extend_from_slice(line.as_bytes());
    }

    /// An error reply; counts towards `max_errors`.
    fn err(&mut self, text: &str) {
        self.errors += 1;
        self.temp_err(text);
    }

    /// An error reply for a condition that is not the client's fault
    /// ([SYS/TEMP], [IN-USE], [LOGIN-DELAY]); not counted.
    fn temp_err(&mut self, text: &str) {
        self.out
            .extend_from_slice(format!("-ERR {}", text.replace(['\r', '\n'], " ")).as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Writes pending replies; a client that stops reading meets the idle
    /// timeout here too, so it cannot keep the maildrop locked for ever.
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            let timeout = self.idle();
            tern_core::io::write_all_within(self.conn.get_mut(), &out, timeout).await?;
        }
        Ok(())
    }

    fn idle(&self) -> Duration {
        Duration::from_secs(self.srv.limits.idle_timeout_secs).max(MIN_IDLE)
    }

    fn is_tls(&self) -> bool {
        self.conn.get_ref().is_tls()
    }

    /// Passwords only where they cannot be sniffed (RFC 2595 §2).
    fn auth_allowed(&self) -> bool {
        tern_core::io::password_may_travel(self.conn.get_ref(), self.peer.ip())
    }

    /// One line without its line end, or `None` at end of input; an
    /// overlong line is consumed and reported as `Some(None)`.
    async fn read_line(&mut self) -> Result<Option<Option<Vec<u8>>>, End> {
        let idle = self.idle();
        let read = async {
            let mut line = Vec::new();
            let mut overflow = false;
            loop {
                // Replies go out when the client has nothing more pipelined,
                // or once they pile up: pipelined LISTs must not grow memory.
                if self.conn.buffer().is_empty() || self.out.len() > MAX_PENDING_OUTPUT {
                    self.flush().await?;
                }
                let buf = self.conn.fill_buf().await?;
                if buf.is_empty() {
                    return Ok(None);
                }
                let (n, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                if line.len() + n <= MAX_LINE {
                    line.extend_from_slice(&buf[..n]);
                } else {
                    overflow = true;
                }
                self.conn.consume(n);
                if done {
                    if overflow {
                        return Ok(Some(None));
                    }
                    let end = line.len()
                        - 1
                        - usize::from(line.len() >= 2 && line[line.len() - 2] == b'\r');
                    line.truncate(end);
                    return Ok(Some(Some(line)));
                }
            }
        };
        tokio::time::timeout(idle, read)
            .await
            .map_err(|_| End::Timeout)?
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
            self.out.extend_from_slice(line.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
    }
}
