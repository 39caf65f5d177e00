//! The SMTP client that outbound delivery speaks to other servers (RFC
//! 5321 §3, §4): greeting, EHLO (HELO for the oldest servers), STARTTLS
//! (RFC 3207) when asked, then one transaction per message — MAIL, RCPT
//! per recipient, DATA or BDAT (RFC 3030 CHUNKING) — with the commands of
//! a transaction sent together when the server offers PIPELINING (RFC
//! 2920). A session carries several messages to one host (RSET between
//! them) and ends with QUIT.
//!
//! This module speaks the protocol only: which host, whether TLS is
//! required, what to do with each recipient's reply is the outbound
//! worker's policy. Every read is bounded in size and time.

pub mod reply;

use reply::{PeerReply, ReplyBuilder, ReplyError, MAX_REPLY_LINE};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tern_core::io::Duplex;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

/// How long QUIT's reply is waited for: the messages are delivered by then.
const QUIT_WAIT: Duration = Duration::from_secs(10);

/// Timeouts of RFC 5321 §4.5.3.2, shortened where a modern server has no
/// reason to be slow.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Greeting, EHLO, STARTTLS, MAIL, RCPT, RSET (RFC: 5 min).
    pub command: Duration,
    /// The reply after the message's last byte (RFC: 10 min).
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            command: Duration::from_secs(300),
            data_end: Duration::from_secs(600),
        }
    }
}

/// What the server said it supports in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// True after EHLO; false when only HELO worked.
    pub esmtp: bool,
    pub pipelining: bool,
    pub starttls: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    pub dsn: bool,
    pub requiretls: bool,
    /// SIZE's limit (RFC 1870), 0 when none was given.
    pub size: Option<u64>,
    /// SASL mechanisms offered (AUTH).
    pub auth: Vec<String>,
}

impl Capabilities {
    /// From the lines of an EHLO reply (the first is the server's name).
    pub fn from_ehlo(reply: &PeerReply) -> Capabilities {
        let mut caps = Capabilities {
            esmtp: true,
            ..Capabilities::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "CHUNKING" => caps.chunking = true,
                "DSN" => caps.dsn = true,
                "REQUIRETLS" => caps.requiretls = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "AUTH" => caps.auth = words.map(|w| w.to_ascii_uppercase()).collect(),
                _ => {}
            }
        }
        caps
    }
}

/// Why a session could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error(transparent)]
    Reply(#[from] ReplyError),
    /// The server refused the session itself (greeting, EHLO/HELO,
    /// STARTTLS): the reply says whether to try again later.
    #[error("the server refused: {0}")]
    Refused(PeerReply),
    #[error("TLS: {0}")]
    Tls(io::Error),
}

impl ClientError {
    /// True when trying again later may work (everything but a 5xx).
    pub fn is_transient(&self) -> bool {
        !matches!(self, ClientError::Refused(r) if r.is_permanent())
    }
}

/// One message's envelope, in the form the commands take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path without brackets; empty for the null sender.
    pub mail_from: String,
    /// MAIL parameters (`BODY=8BITMIME`, `SMTPUTF8`, `RET=HDRS`, ...).
    pub mail_params: Vec<String>,
    /// Each recipient without brackets, with its RCPT parameters
    /// (`NOTIFY=...`, `ORCPT=...`).
    pub rcpt_to: Vec<(String, Vec<String>)>,
}

/// How one transaction went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub mail: PeerReply,
    /// One reply per recipient, in the envelope's order; empty when MAIL
    /// was refused.
    pub rcpts: Vec<PeerReply>,
    /// The reply to the message itself; `None` when no recipient was
    /// accepted (the transaction was reset instead).
    pub data: Option<PeerReply>,
}

impl Outcome {
    /// The reply that decides recipient `i`: its RCPT reply if that
    /// refused it, otherwise the reply to the message (or to MAIL).
    pub fn for_recipient(&self, i: usize) -> &PeerReply {
        if !self.mail.is_positive() {
            return &self.mail;
        }
        match self.rcpts.get(i) {
            Some(r) if !r.is_positive() => r,
            Some(r) => self.data.as_ref().unwrap_or(r),
            None => &self.mail,
        }
    }
}

/// The connection, plain or after STARTTLS.
enum Transport {
    Plain(Box<dyn Duplex>),
    Tls(Box<tokio_rustls::client::TlsStream<Box<dyn Duplex>>>),
    Gone,
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// An SMTP session with one server.
pub struct Session {
    conn: BufReader<Transport>,
    /// Our name in EHLO.
    ehlo_name: String,
    pub capabilities: Capabilities,
    /// The greeting's first line (the server's name, usually).
    pub greeting: PeerReply,
    timeouts: Timeouts,
    tls: bool,
}

impl Session {
    /// Reads the greeting and says EHLO (HELO if EHLO is refused, RFC 5321
    /// §3.2).
    pub async fn open(
        io: Box<dyn Duplex>,
        ehlo_name: &str,
        timeouts: Timeouts,
    ) -> Result<Session, ClientError> {
        let mut s = Session {
            conn: BufReader::new(Transport::Plain(io)),
            ehlo_name: ehlo_name.to_string(),
            capabilities: Capabilities::default(),
            greeting: PeerReply {
                code: 0,
                lines: Vec::new(),
            },
            timeouts,
            tls: false,
        };
        let greeting = s.reply(timeouts.command).await?;
        if greeting.code != 220 {
            return Err(ClientError::Refused(greeting));
        }
        s.greeting = greeting;
        s.hello().await?;
        Ok(s)
    }

    /// True once STARTTLS succeeded.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    async fn hello(&mut self) -> Result<(), ClientError> {
        let ehlo = self.command(&format!("EHLO {}", self.ehlo_name)).await?;
        if ehlo.is_positive() {
            self.capabilities = Capabilities::from_ehlo(&ehlo);
            return Ok(());
        }
        if ehlo.code == 421 {
            return Err(ClientError::Refused(ehlo));
        }
        let helo = self.command(&format!("HELO {}", self.ehlo_name)).await?;
        if !helo.is_positive() {
            return Err(ClientError::Refused(helo));
        }
        self.capabilities = Capabilities::default();
        Ok(())
    }

    /// STARTTLS and the TLS handshake with `config` for `server_name`, then
    /// EHLO again (RFC 3207 §4.2: what was learnt before is forgotten).
    pub async fn starttls(
        mut self,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<Session, ClientError> {
        let reply = self.command("STARTTLS").await?;
        if reply.code != 220 {
            return Err(ClientError::Refused(reply));
        }
        // Anything the server sent after its 220 would be plaintext
        // injected before the handshake: refuse it.
        if !self.conn.buffer().is_empty() {
            return Err(ClientError::Tls(io::Error::other(
                "the server sent data after its STARTTLS reply, before the handshake",
            )));
        }
        let Transport::Plain(io) = std::mem::replace(self.conn.get_mut(), Transport::Gone) else {
            return Err(ClientError::Tls(io::Error::other("already TLS")));
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(self.timeouts.command, connector.connect(server_name, io))
            .await
            .map_err(|_| ClientError::Timeout(self.timeouts.command))?
            .map_err(ClientError::Tls)?;
        self.conn = BufReader::new(Transport::Tls(Box::new(tls)));
        self.tls = true;
        self.hello().await?;
        Ok(self)
    }

    /// AUTH PLAIN (RFC 4954, RFC 4616) with an initial response, for a
    /// smarthost; only over TLS or to loopback, which the caller checks.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        let reply = self.command(&format!("AUTH PLAIN {token}")).await?;
        if reply.code == 235 {
            Ok(())
        } else {
            Err(ClientError::Refused(reply))
        }
    }

    /// Sends one message: MAIL, RCPT for each recipient, then the message
    /// (DATA with dot-stuffing, or BDAT when the server offers CHUNKING),
    /// pipelined when the server offers it. Without an accepted recipient
    /// the transaction is reset. `message` is the whole message; a missing
    /// final line break is added.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Outcome, ClientError> {
        let mail_cmd = {
            let mut c = format!("MAIL FROM:<{}>", envelope.mail_from);
            for p in &envelope.mail_params {
                c.push(' ');
                c.push_str(p);
            }
            c
        };
        let rcpt_cmds: Vec<String> = envelope
            .rcpt_to
            .iter()
            .map(|(to, params)| {
                let mut c = format!("RCPT TO:<{to}>");
                for p in params {
                    c.push(' ');
                    c.push_str(p);
                }
                c
            })
            .collect();
        let chunking = self.capabilities.chunking;
        if self.capabilities.pipelining {
            // MAIL, every RCPT and (without CHUNKING) DATA in one write
            // (RFC 2920 §3.1: DATA is last in a group).
            let mut batch = String::new();
            for c in std::iter::once(&mail_cmd).chain(&rcpt_cmds) {
                batch.push_str(c);
                batch.push_str("\r\n");
            }
            if !chunking {
                batch.push_str("DATA\r\n");
            }
            self.write(batch.as_bytes()).await?;
            let mail = self.reply(self.timeouts.command).await?;
            let mut rcpts = Vec::with_capacity(rcpt_cmds.len());
            for _ in &rcpt_cmds {
                rcpts.push(self.reply(self.timeouts.command).await?);
            }
            let accepted = mail.is_positive() && rcpts.iter().any(PeerReply::is_positive);
            if chunking {
                if !accepted {
                    self.rset().await?;
                    return Ok(Outcome {
                        mail,
                        rcpts,
                        data: None,
                    });
                }
                let data = self.bdat(message).await?;
                return Ok(Outcome {
                    mail,
                    rcpts,
                    data: Some(data),
                });
            }
            let go = self.reply(self.timeouts.command).await?;
            if go.code != 354 {
                // No recipient, or DATA refused: nothing was sent.
                if accepted {
                    return Ok(Outcome {
                        mail,
                        rcpts,
                        data: Some(go),
                    });
                }
                self.rset().await?;
                return Ok(Outcome {
                    mail,
                    rcpts,
                    data: None,
                });
            }
            if !accepted {
                // The server said 354 with no recipient (RFC 2920 §3.1
                // allows it): end the data at once; nothing is delivered.
                self.write(b".\r\n").await?;
                let _ = self.reply(self.timeouts.data_end).await?;
                return Ok(Outcome {
                    mail,
                    rcpts,
                    data: None,
                });
            }
            let data = self.data_body(message).await?;
            return Ok(Outcome {
                mail,
                rcpts,
                data: Some(data),
            });
        }
        let mail = self.command(&mail_cmd).await?;
        if !mail.is_positive() {
            self.rset().await?;
            return Ok(Outcome {
                mail,
                rcpts: Vec::new(),
                data: None,
            });
        }
        let mut rcpts = Vec::with_capacity(rcpt_cmds.len());
        for c in &rcpt_cmds {
            rcpts.push(self.command(c).await?);
        }
        if !rcpts.iter().any(PeerReply::is_positive) {
            self.rset().await?;
            return Ok(Outcome {
                mail,
                rcpts,
                data: None,
            });
        }
        if chunking {
            let data = self.bdat(message).await?;
            return Ok(Outcome {
                mail,
                rcpts,
                data: Some(data),
            });
        }
        let go = self.command("DATA").await?;
        if go.code != 354 {
            return Ok(Outcome {
                mail,
                rcpts,
                data: Some(go),
            });
        }
        let data = self.data_body(message).await?;
        Ok(Outcome {
            mail,
            rcpts,
            data: Some(data),
        })
    }

    /// The message after 354: dot-stuffed (RFC 5321 §4.5.2), CRLF line
    /// ends, then `.`.
    async fn data_body(&mut self, message: &[u8]) -> Result<PeerReply, ClientError> {
        self.write(&dot_stuffed(message)).await?;
        self.reply(self.timeouts.data_end).await
    }

    /// The message as one `BDAT n LAST` chunk (RFC 3030 §2).
    async fn bdat(&mut self, message: &[u8]) -> Result<PeerReply, ClientError> {
        let mut out = format!("BDAT {} LAST\r\n", message.len()).into_bytes();
        out.extend_from_slice(message);
        self.write(&out).await?;
        self.reply(self.timeouts.data_end).await
    }

    /// RSET: the session is ready for the next message.
    pub async fn rset(&mut self) -> Result<(), ClientError> {
        let reply = self.command("RSET").await?;
        if reply.is_positive() {
            Ok(())
        } else {
            Err(ClientError::Refused(reply))
        }
    }

    /// QUIT, and the connection closed; errors do not matter any more, and
    /// a server slow to say goodbye is not waited for long.
    pub async fn quit(mut self) {
        if self.write(b"QUIT\r\n").await.is_ok() {
            let _ = self.reply(self.timeouts.command.min(QUIT_WAIT)).await;
        }
        let _ = self.conn.get_mut().shutdown().await;
    }

    async fn command(&mut self, line: &str) -> Result<PeerReply, ClientError> {
        let mut out = line.as_bytes().to_vec();
        out.extend_from_slice(b"\r\n");
        self.write(&out).await?;
        self.reply(self.timeouts.command).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let limit = self.timeouts.data_end;
        let conn = self.conn.get_mut();
        tokio::time::timeout(limit, async {
            conn.write_all(bytes).await?;
            conn.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout(limit))??;
        Ok(())
    }

    /// One whole reply, within `limit`.
    async fn reply(&mut self, limit: Duration) -> Result<PeerReply, ClientError> {
        let conn = &mut self.conn;
        let read = async move {
            let mut builder = ReplyBuilder::default();
            loop {
                let mut line = Vec::new();
                let n = AsyncReadExt::take(&mut *conn, MAX_REPLY_LINE as u64 + 2)
                    .read_until(b'\n', &mut line)
                    .await?;
                if n == 0 {
                    return Err(ClientError::Closed);
                }
                if !line.ends_with(b"\n") {
                    return Err(ReplyError::LineTooLong.into());
                }
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                if let Some(reply) = builder.push(&line)? {
                    return Ok(reply);
                }
            }
        };
        tokio::time::timeout(limit, read)
            .await
            .map_err(|_| ClientError::Timeout(limit))?
    }
}

/// The message for DATA: every line ending in CRLF (a bare LF becomes
/// CRLF), a line starting with `.` doubled, then `.` CRLF.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    // A line at a time: the copy is one memcpy per line, not a push per
    // byte (it was a percent of the server's CPU relaying).
    let mut rest = message;
    while !rest.is_empty() {
        let (line, ended) = match rest.iter().position(|&b| b == b'\n') {
            Some(lf) => (&rest[..lf], Some(lf + 1)),
            None => (rest, None),
        };
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        // The line's own CR, if any, goes with its LF: CRLF stays, a bare
        // LF gains its CR; a CR inside the line is kept as it is.
        let text = match ended {
            Some(_) => line.strip_suffix(b"\r").unwrap_or(line),
            None => line,
        };
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
        rest = match ended {
            Some(next) => &rest[next..],
            None => &[],
        };
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests;
