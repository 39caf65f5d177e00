//! One session's connection, the scaffolding every protocol stands on:
//! the line reader with its bounds, replies held back while the client
//! pipelines (RFC 2920 for SMTP; IMAP and POP3 clients pipeline too),
//! idle and write timeouts, STARTTLS/STLS and IMAP COMPRESS.
//!
//! A [`Conn`] runs over any [`Duplex`] (a TCP socket in the server, an
//! in-memory `tokio::io::duplex` pipe in a test), so protocol behaviour is
//! testable without a socket.
//!
//! Never does: hold output unboundedly (it is written once
//! [`MAX_PENDING_OUTPUT`] piles up), keep more than `max` bytes of a line,
//! or let plaintext read before STARTTLS reach the TLS session.

use super::{Deflate, Stream};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::rustls::ServerConfig;

/// Replies held back for pipelining before they are written anyway, so a
/// client pipelining thousands of commands cannot grow our memory.
pub const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// Why a session ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed or the connection failed.
    Gone,
    /// The peer said nothing (or read nothing) for too long.
    Timeout,
}

impl From<io::Error> for End {
    /// A failed or timed-out write, or a failed read: the peer is gone as
    /// far as the session is concerned, and gets no goodbye (which would
    /// block for another write timeout). Only a read that waited too long
    /// is [`End::Timeout`], set where the read is timed.
    fn from(_: io::Error) -> End {
        End::Gone
    }
}

/// A line as read from the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    /// The line with its terminator; for an overlong line only its last
    /// two bytes, to tell how it ended.
    pub bytes: Vec<u8>,
    /// Ended with LF (false at the end of input).
    pub complete: bool,
    /// Longer than allowed; consumed whole, kept only as said above.
    pub overflow: bool,
}

impl Line {
    /// The line without its CRLF or LF.
    pub fn content(&self) -> &[u8] {
        let line = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
        line.strip_suffix(b"\r").unwrap_or(line)
    }

    /// Nothing at all was read: the peer closed.
    pub fn is_eof(&self) -> bool {
        !self.complete && !self.overflow && self.bytes.is_empty()
    }
}

/// A client connection with its input buffer and pending output.
pub struct Conn {
    reader: BufReader<Stream>,
    /// Output waiting to be written; [`Conn::flush`] writes it, and reads
    /// do when the client has nothing more pipelined.
    pub out: Vec<u8>,
    /// How long one write may take: a client that stops reading cannot
    /// hold a session (and its slot) for ever.
    write_timeout: Duration,
    /// The administrator's protocol trace of this connection, if asked for
    /// (see [`crate::trace`]).
    trace: Option<crate::trace::Trace>,
}

impl Conn {
    /// How every protocol's session starts on a listener's connection: a
    /// client refused by a connection limit on an implicit-TLS port (465,
    /// 993, 995) gets nothing, so a refusal costs no handshake; otherwise
    /// TLS first on those ports. `None` when there is nothing to serve.
    pub async fn open(
        tls: Arc<ServerConfig>,
        io: impl super::Duplex + 'static,
        implicit_tls: bool,
        admitted: bool,
        write_timeout: Duration,
    ) -> Option<Conn> {
        if !admitted && implicit_tls {
            return None;
        }
        let stream = super::open(tls, io, implicit_tls).await?;
        Some(Conn::new(stream, write_timeout))
    }

    pub fn new(stream: Stream, write_timeout: Duration) -> Conn {
        Conn {
            reader: BufReader::new(stream),
            out: Vec::new(),
            write_timeout,
            trace: None,
        }
    }

    /// Traces the conversation from now on.
    pub fn set_trace(&mut self, trace: crate::trace::Trace) {
        self.trace = Some(trace);
    }

    pub fn is_traced(&self) -> bool {
        self.trace.is_some()
    }

    /// Starts a trace for a connection from a traced network, or at the
    /// login of a traced account; nothing if one runs already.
    pub fn trace_if(&mut self, trace: impl FnOnce() -> Option<crate::trace::Trace>) {
        if self.trace.is_none() {
            self.trace = trace();
        }
    }

    pub fn set_write_timeout(&mut self, limit: Duration) {
        self.write_timeout = limit;
    }

    pub fn is_tls(&self) -> bool {
        self.reader.get_ref().is_tls()
    }

    pub fn is_compressed(&self) -> bool {
        self.reader.get_ref().is_compressed()
    }

    /// Whether a password may be sent here (over TLS, or from loopback).
    pub fn password_may_travel(&self, peer: std::net::IpAddr) -> bool {
        super::password_may_travel(self.reader.get_ref(), peer)
    }

    /// True when the client has sent bytes not yet read (it pipelines).
    pub fn has_pipelined(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Writes the pending output within the write timeout.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            if let Some(t) = self.trace.as_mut() {
                t.server(&out);
            }
            super::write_all_within(self.reader.get_mut(), &out, self.write_timeout).await?;
        }
        Ok(())
    }

    /// Writes `bytes` after the pending output, now (a literal streamed
    /// in chunks).
    pub async fn write_now(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.flush().await?;
        if let Some(t) = self.trace.as_mut() {
            t.server(bytes);
        }
        super::write_all_within(self.reader.get_mut(), bytes, self.write_timeout).await
    }

    /// Writes pending output when the client has nothing more pipelined,
    /// or once it piles up.
    async fn flush_unless_pipelining(&mut self) -> io::Result<()> {
        if self.reader.buffer().is_empty() || self.out.len() > MAX_PENDING_OUTPUT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Reads one line of at most `max` bytes, terminator included (more is
    /// consumed and dropped, see [`Line`]), within `idle`.
    pub async fn read_line(&mut self, max: usize, idle: Duration) -> Result<Line, End> {
        let read = async {
            let mut line = Line::default();
            loop {
                self.flush_unless_pipelining().await?;
                let buf = self.reader.fill_buf().await?;
                if buf.is_empty() {
                    return Ok::<Line, End>(line);
                }
                let (n, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                // Once over the limit nothing more of this line is kept (the
                // end of an overlong line must not pass for a short one),
                // except its last bytes, to tell how it ended.
                if !line.overflow && line.bytes.len() + n <= max {
                    line.bytes.extend_from_slice(&buf[..n]);
                } else {
                    if !line.overflow {
                        line.bytes.clear();
                    }
                    line.overflow = true;
                    line.bytes.extend_from_slice(&buf[n.saturating_sub(2)..n]);
                    let keep = line.bytes.len().saturating_sub(2);
                    line.bytes.drain(..keep);
                }
                self.reader.consume(n);
                if done {
                    line.complete = true;
                    return Ok(line);
                }
            }
        };
        let line = tokio::time::timeout(idle, read)
            .await
            .map_err(|_| End::Timeout)??;
        if let Some(t) = self.trace.as_mut() {
            if line.overflow {
                t.note("the client sent an overlong line");
            } else if !line.bytes.is_empty() {
                t.client_line(&line.bytes);
            }
        }
        Ok(line)
    }

    /// Fills `buf` from the client within `idle` (an IMAP literal). Pending
    /// output stays pending (a continuation request is flushed by whoever
    /// asked for the literal).
    pub async fn read_exact(&mut self, buf: &mut [u8], idle: Duration) -> Result<(), End> {
        tokio::time::timeout(idle, self.reader.read_exact(buf))
            .await
            .map_err(|_| End::Timeout)??;
        if let Some(t) = self.trace.as_mut() {
            t.client_data(buf);
        }
        Ok(())
    }

    /// Reads exactly `n` bytes and appends them to `into`, or, with `into`
    /// `None`, reads and drops them; within `idle`. Fewer at the end of
    /// input; the count read is returned.
    pub async fn read_chunk(
        &mut self,
        n: u64,
        into: Option<&mut Vec<u8>>,
        idle: Duration,
    ) -> Result<u64, End> {
        let reader = &mut self.reader;
        let trace = &mut self.trace;
        let read = async move {
            let mut limited = reader.take(n);
            match into {
                Some(buf) => {
                    let start = buf.len();
                    let n = limited.read_to_end(buf).await?;
                    if let Some(t) = trace.as_mut() {
                        t.client_data(&buf[start..]);
                    }
                    Ok(n as u64)
                }
                None => tokio::io::copy(&mut limited, &mut tokio::io::sink()).await,
            }
        };
        tokio::time::timeout(idle, read)
            .await
            .map_err(|_: tokio::time::error::Elapsed| End::Timeout)?
            .map_err(|e: io::Error| End::from(e))
    }

    /// Reads exactly `n` bytes into `spool` (a large body goes to disk as it
    /// arrives), waiting at most `idle` for each piece; fewer at the end of
    /// input. Returns the count read and, if writing the spool failed (a
    /// full disk), why: the rest is then read and dropped, so the session
    /// stays in step and can answer with a temporary failure.
    pub async fn read_into_spool(
        &mut self,
        n: u64,
        spool: &mut crate::spool::Spool,
        idle: Duration,
    ) -> Result<(u64, Option<io::Error>), End> {
        let mut read = 0u64;
        let mut failed = None;
        while read < n {
            let available = tokio::time::timeout(idle, self.reader.fill_buf())
                .await
                .map_err(|_| End::Timeout)??;
            if available.is_empty() {
                break;
            }
            let take = available.len().min((n - read) as usize);
            if failed.is_none() {
                if let Err(e) = spool.push(&available[..take]).await {
                    spool.clear();
                    failed = Some(e);
                }
            }
            self.reader.consume(take);
            read += take as u64;
        }
        if let Some(t) = self.trace.as_mut() {
            t.note(&format!(
                "the client sent {read} bytes, spooled to disk, not traced"
            ));
        }
        Ok((read, failed))
    }

    /// Waits for input without consuming it (IMAP IDLE waits for DONE and
    /// for mailbox news at once); empty at the end of input.
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf().await
    }

    pub fn consume(&mut self, n: usize) {
        self.reader.consume(n);
    }

    /// STARTTLS (RFC 3207 §4.2, RFC 2595 §3.1): the pending output goes
    /// first, then the handshake. Whatever the client sent after the
    /// command, before the handshake, is discarded with the plaintext
    /// buffer: otherwise a man in the middle could inject commands that
    /// would run inside the TLS session (CVE-2011-0411). False if the
    /// handshake fails; the connection is then unusable.
    pub async fn start_tls(&mut self, tls: Arc<ServerConfig>) -> io::Result<bool> {
        self.flush().await?;
        let plain = std::mem::replace(&mut self.reader, BufReader::new(Stream::Closed));
        let Stream::Plain(io) = plain.into_inner() else {
            return Ok(false);
        };
        match super::accept_tls(tls, io).await {
            Some(stream) => {
                self.reader = BufReader::new(stream);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// IMAP COMPRESS=DEFLATE (RFC 4978): from now both directions are raw
    /// deflate. Bytes already received behind the command are compressed
    /// ones, so they go to the inflater rather than being dropped.
    pub async fn start_deflate(&mut self) -> io::Result<()> {
        self.flush().await?;
        let pending = self.reader.buffer().to_vec();
        let inner = std::mem::replace(&mut self.reader, BufReader::new(Stream::Closed));
        self.reader = BufReader::new(Stream::Deflate(Box::new(Deflate::with_input(
            inner.into_inner(),
            pending,
        ))));
        Ok(())
    }

    /// Writes what is pending, then closes our side: within the write
    /// timeout, so a peer that reads nothing (a TLS close_notify that
    /// cannot be sent) cannot keep the task alive.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(self.write_timeout, self.reader.get_mut().shutdown()).await;
    }
}

/// A test double for protocol sessions: the client's end of an in-memory
/// connection and the server's [`Stream`] for it.
pub fn in_memory(buffer: usize) -> (tokio::io::DuplexStream, Stream) {
    let (client, server) = tokio::io::duplex(buffer);
    (client, Stream::Plain(Box::new(server)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const IDLE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn lines_are_bounded_and_pipelined_replies_wait() {
        let (mut client, server) = in_memory(4096);
        let mut conn = Conn::new(server, IDLE);
        client
            .write_all(b"NOOP\r\nTHIS LINE IS TOO LONG\r\nLAST")
            .await
            .unwrap();
        let first = conn.read_line(16, IDLE).await.unwrap();
        assert_eq!(first.content(), b"NOOP");
        conn.out.extend_from_slice(b"250 ok\r\n");
        // The client has more pipelined: the reply waits.
        let long = conn.read_line(16, IDLE).await.unwrap();
        assert!(long.overflow && long.complete);
        assert_eq!(long.bytes, b"\r\n");
        assert_eq!(conn.out, b"250 ok\r\n");
        drop(client.shutdown().await);
        // Nothing more pipelined: the reply goes out before the next read.
        let last = conn.read_line(16, IDLE).await.unwrap();
        assert_eq!(
            (last.bytes.as_slice(), last.complete),
            (&b"LAST"[..], false)
        );
        assert!(conn.out.is_empty());
        let mut got = vec![0u8; 8];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"250 ok\r\n");
        assert!(conn.read_line(16, IDLE).await.unwrap().is_eof());
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let (_client, server) = in_memory(64);
        let mut conn = Conn::new(server, IDLE);
        let r = conn.read_line(100, Duration::from_millis(10)).await;
        assert_eq!(r, Err(End::Timeout));
    }

    #[tokio::test]
    async fn chunks_are_read_or_skipped_exactly() {
        let (mut client, server) = in_memory(4096);
        let mut conn = Conn::new(server, IDLE);
        client.write_all(b"0123456789NEXT\r\n").await.unwrap();
        let mut kept = Vec::new();
        assert_eq!(conn.read_chunk(4, Some(&mut kept), IDLE).await, Ok(4));
        assert_eq!(kept, b"0123");
        assert_eq!(conn.read_chunk(6, None, IDLE).await, Ok(6));
        assert_eq!(conn.read_line(100, IDLE).await.unwrap().content(), b"NEXT");
    }
}
