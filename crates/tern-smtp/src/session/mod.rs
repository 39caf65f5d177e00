//! One SMTP session: the greeting, the command loop, and the state a
//! session carries (RFC 5321 §4.1.4 command order).
//!
//! Replies are collected in `out` and written when the client has nothing
//! more pipelined (RFC 2920): a pipelined batch gets its replies in one
//! write, and a lone command is answered at once. The session never holds
//! a lock across a network write.

mod auth;
mod data;
mod deliver;
mod ehlo;
mod greylist;
mod mail;
mod rcpt;
mod starttls;
#[cfg(test)]
pub(crate) mod tests;
mod trust_check;

use crate::command::{self, Command, CommandError, MailParams};
use crate::path::{Mailbox, PathError};
use crate::reply::Reply;
use crate::{Mode, SmtpServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::admission::{self, ConnectionSlot, LimitExceeded};
use tern_core::config::SmtpConfig;
pub(crate) use tern_core::io::End;
use tern_core::io::{Conn, Duplex, Line};
use tern_store::{Account, AccountId, OutboundRecipient};
use tokio::sync::watch;

/// What the loop does after a command.
pub(crate) enum Flow {
    Continue,
    Close,
}

/// The envelope of the message being received.
pub(crate) struct Transaction {
    pub from: Option<Mailbox>,
    pub params: MailParams,
    /// Local accounts and the address each was reached through.
    pub local: Vec<(AccountId, String)>,
    pub remote: Vec<OutboundRecipient>,
    /// RCPT commands accepted (one address may expand to many targets).
    pub accepted_rcpts: usize,
    /// BDAT chunks so far, and whether the size limit was passed.
    pub bdat: Option<Bdat>,
    /// SPF of this transaction, looked up while the rest arrives.
    pub spf: Option<trust_check::PendingSpf>,
    /// The local domain whose alias sends this message on to other
    /// servers: we ARC-seal it with that domain's key.
    pub forwarded_by: Option<String>,
}

pub(crate) struct Session {
    srv: Arc<SmtpServer>,
    mode: Mode,
    peer: SocketAddr,
    conn: Conn,
    /// The EHLO/HELO name, once given.
    helo: Option<String>,
    esmtp: bool,
    account: Option<Account>,
    tx: Option<Transaction>,
    errors: usize,
    stopping: watch::Receiver<bool>,
    /// This connection's place under the server's limits.
    slot: ConnectionSlot,
}

/// A message arriving in BDAT chunks (RFC 3030).
pub struct Bdat {
    /// What the chunks carried so far.
    pub body: tern_core::spool::Spool,
    /// Past the size limit: the rest is skipped, and LAST gets 552.
    pub too_big: bool,
    /// The spool could not be written: LAST gets 452 4.3.1.
    pub spool_failed: Option<std::io::Error>,
}

pub(crate) async fn run(
    srv: Arc<SmtpServer>,
    io: impl Duplex + 'static,
    peer: SocketAddr,
    mode: Mode,
    admission: Result<ConnectionSlot, LimitExceeded>,
    stopping: watch::Receiver<bool>,
) {
    let (slot, refused) = admission::split(admission);
    // Port 465: TLS from the first byte (RFC 8314 §3.3).
    let implicit_tls = mode == Mode::Submissions;
    // A client that stops reading meets the idle timeout at writes too.
    let idle = Duration::from_secs(srv.limits.idle_timeout_secs);
    let tls = srv.tls.clone();
    let Some(mut conn) = Conn::open(tls, io, implicit_tls, refused.is_none(), idle).await else {
        tracing::debug!("smtp {peer}: refused on an implicit-TLS port, or TLS handshake failed");
        return;
    };
    conn.trace_if(|| srv.tracer.for_client("smtp", peer));
    let mut s = Session {
        srv,
        mode,
        peer,
        conn,
        helo: None,
        esmtp: false,
        account: None,
        tx: None,
        errors: 0,
        stopping,
        slot,
    };
    if let Some(why) = refused {
        s.reply(Reply::new(
            421,
            "4.7.0",
            format!("{} too busy ({why}); try again later", s.srv.hostname),
        ));
        let _ = s.flush().await;
        return;
    }
    s.reply(Reply::bare(
        220,
        vec![format!("{} ESMTP Tern", s.srv.hostname)],
    ));
    match s.command_loop().await {
        Ok(()) => {}
        Err(End::Timeout) => {
            s.conn.out.clear();
            s.reply(Reply::new(
                421,
                "4.4.2",
                format!("{} timeout; closing", s.srv.hostname),
            ));
        }
        Err(End::Gone) => return,
    }
    s.conn.close().await;
}

impl Session {
    fn config(&self) -> &SmtpConfig {
        &self.srv.smtp
    }

    /// The idle timeout: shorter for a submission client that has not
    /// logged in yet. Port 25 keeps RFC 5321's five minutes throughout.
    fn idle_timeout(&self) -> Duration {
        let idle = Duration::from_secs(self.srv.limits.idle_timeout_secs);
        if self.mode != Mode::Mta && self.account.is_none() {
            idle.min(Duration::from_secs(self.srv.limits.login_timeout_secs))
        } else {
            idle
        }
    }

    fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// AUTH is offered only where the password cannot be sniffed.
    fn auth_allowed(&self) -> bool {
        self.conn.password_may_travel(self.peer.ip())
    }

    /// Queues a reply; errors count towards `max_errors`.
    fn reply(&mut self, reply: Reply) {
        // Only 5xx count: 4xx are temporary conditions (452 too many
        // recipients is how a long recipient list is meant to be split).
        if reply.code >= 500 {
            self.errors += 1;
        }
        // Every refusal is one line, as Postfix logs every reject: who,
        // what was said to them, and the transaction it was part of.
        if reply.code >= 400 {
            let from = self
                .tx
                .as_ref()
                .and_then(|t| t.from.as_ref())
                .map(|m| m.address())
                .unwrap_or_default();
            tracing::info!(
                client = %self.peer.ip(),
                "smtp reject: {} {} {}; from=<{from}> helo=<{}>{}",
                reply.code,
                reply.status.as_deref().unwrap_or(""),
                reply.lines.join(" / "),
                self.helo.as_deref().unwrap_or(""),
                self.account
                    .as_ref()
                    .map(|a| format!(" user={}", a.address))
                    .unwrap_or_default()
            );
        }
        reply.write_to(&mut self.conn.out);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.flush().await
    }

    /// Reads one line of at most `max` bytes (more is consumed and dropped),
    /// writing pending replies first if the client has nothing pipelined.
    async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Line, End> {
        self.conn.read_line(max, timeout).await
    }

    async fn command_loop(&mut self) -> Result<(), End> {
        loop {
            if self.errors >= self.config().max_errors {
                self.reply(Reply::new(421, "4.7.0", "too many errors; closing"));
                return Ok(());
            }
            let max = SmtpConfig::MAX_COMMAND_LINE;
            let idle = self.idle_timeout();
            let mut stopping = self.stopping.clone();
            let line = tokio::select! {
                line = self.read_line(max, idle) => line?,
                _ = stopping.wait_for(|s| *s) => {
                    self.reply(Reply::new(421, "4.3.2", "server shutting down; try again later"));
                    return Ok(());
                }
            };
            if !line.complete {
                return Err(End::Gone);
            }
            if line.overflow {
                self.reply(Reply::new(
                    500,
                    "5.5.2",
                    format!("line too long (limit {max} bytes)"),
                ));
                continue;
            }
            let text = line.bytes.strip_suffix(b"\n").unwrap_or(&line.bytes);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let flow = match command::parse(text) {
                Ok(cmd) => self.dispatch(cmd).await?,
                Err(e) => {
                    self.reply(syntax_reply(&e));
                    Flow::Continue
                }
            };
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    async fn dispatch(&mut self, cmd: Command) -> Result<Flow, End> {
        // A BDAT transfer admits only more BDAT, RSET, NOOP or QUIT (RFC 3030 §2).
        let in_bdat = self.tx.as_ref().is_some_and(|t| t.bdat.is_some());
        if in_bdat
            && !matches!(
                cmd,
                Command::Bdat { .. } | Command::Rset | Command::Noop | Command::Quit
            )
        {
            self.reply(Reply::new(
                503,
                "5.5.1",
                "only BDAT, RSET, NOOP or QUIT during a BDAT transfer",
            ));
            return Ok(Flow::Continue);
        }
        match cmd {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, params } => self.rcpt(to, params).await,
            Command::Data => return self.data().await,
            Command::Bdat { size, last } => return self.bdat(size, last).await,
            Command::Auth { mechanism, initial } => return self.auth(mechanism, initial).await,
            Command::StartTls => return self.starttls().await,
            Command::Rset => {
                self.tx = None;
                self.reply(Reply::new(250, "2.0.0", "reset"));
            }
            Command::Noop => self.reply(Reply::new(250, "2.0.0", "OK")),
            Command::Help => self.reply(Reply::new(
                214,
                "2.0.0",
                "see RFC 5321; https://www.rfc-editor.org/rfc/rfc5321",
            )),
            // Never confirm addresses: VRFY and EXPN help harvesters, not users.
            Command::Vrfy => self.reply(Reply::new(
                252,
                "2.5.0",
                "cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Expn => self.reply(Reply::new(502, "5.5.1", "EXPN is not available")),
            Command::Quit => {
                self.reply(Reply::new(
                    221,
                    "2.0.0",
                    format!("{} closing", self.srv.hostname),
                ));
                // The client is done: its place is free for its next
                // connection even before this socket is closed.
                self.slot.release();
                return Ok(Flow::Close);
            }
        }
        Ok(Flow::Continue)
    }
}

/// The reply for a line that did not parse.
fn syntax_reply(e: &CommandError) -> Reply {
    match e {
        CommandError::Unknown => Reply::new(500, "5.5.1", "command not recognized"),
        CommandError::Syntax(why) => Reply::new(501, "5.5.4", format!("syntax error: {why}")),
        // RFC 6531 §3.5: a non-ASCII address without SMTPUTF8.
        CommandError::Path(PathError::NeedsUtf8) => Reply::new(
            553,
            "5.6.7",
            "non-ASCII address needs SMTPUTF8 on MAIL FROM",
        ),
        CommandError::Path(why) => Reply::new(501, "5.1.3", format!("bad address syntax: {why}")),
        CommandError::Parameter(p) => {
            Reply::new(555, "5.5.4", format!("parameter {p} not recognized"))
        }
    }
}
