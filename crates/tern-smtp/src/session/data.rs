//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030): the message itself.
//!
//! DATA ends only at CRLF "." CRLF: a server that took LF "." LF (or
//! CR "." CR) as the end could be made to see two messages where the
//! client's outbound server saw one — SMTP smuggling. A line ended by a bare
//! LF is taken as ended by CRLF (`smtp.bare_lf = "normalize"`, the default,
//! as Postfix 3.9) or makes the message refused with 554 (`"reject"`); a bare
//! CR anywhere is always refused, once the real end is reached.
//! The size limit is enforced while reading: past it the rest is read and
//! dropped, and the client gets 552 at the end, never a broken connection.
//! A body past 1 MiB goes to a spool file as it arrives ([`tern_core::spool`]);
//! if the disk is full the rest is read and dropped and the client gets
//! 452 4.3.1 at the end.

use super::{Bdat, End, Flow, Session};
use crate::reply::Reply;
use std::time::Duration;
use tern_core::BareLf;

/// What went wrong inside the data, reported after its end.
#[derive(Default)]
struct DataFaults {
    too_big: bool,
    /// Writing the spool failed (a full disk): a temporary failure.
    spool_failed: Option<std::io::Error>,
    bare_cr: bool,
    bare_lf: bool,
    line_too_long: bool,
}

impl Session {
    fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.srv.smtp.data_timeout_secs)
    }

    /// 503/554 when there is nothing to send data for.
    fn data_refusal(&self) -> Option<Reply> {
        match &self.tx {
            None => Some(Reply::new(503, "5.5.1", "MAIL FROM and RCPT TO first")),
            Some(tx) if tx.accepted_rcpts == 0 => {
                Some(Reply::new(554, "5.5.1", "no valid recipients"))
            }
            Some(_) => None,
        }
    }

    pub(super) async fn data(&mut self) -> Result<Flow, End> {
        if let Some(refusal) = self.data_refusal() {
            self.reply(refusal);
            return Ok(Flow::Continue);
        }
        self.reply(Reply::bare(
            354,
            vec!["end data with <CR><LF>.<CR><LF>".into()],
        ));
        let max_size = self.srv.limits.max_message_size as usize;
        let max_line = self.srv.smtp.max_line_length;
        let timeout = self.data_timeout();
        let mut message = self.srv.mail.new_body();
        let mut faults = DataFaults::default();
        // The end is CRLF "." CRLF: a "." line ends the data only when the
        // line before it ended with CRLF (the 354 counts as such). After a
        // bare LF, ".\r\n" is data — taking it as the end is what SMTP
        // smuggling exploits.
        let mut after_crlf = true;
        loop {
            let line = self.read_line(max_line, timeout).await?;
            if !line.complete {
                // The connection ended inside the data: nothing was accepted.
                return Err(End::Gone);
            }
            if line.overflow {
                faults.line_too_long = true;
                after_crlf = line.bytes.ends_with(b"\r\n");
                continue;
            }
            let bytes = &line.bytes;
            if after_crlf && bytes.as_slice() == b".\r\n" {
                break;
            }
            // The line ends with LF: CRLF, or a bare LF; a CR elsewhere in
            // it is a bare CR.
            let body = &bytes[..bytes.len() - 1];
            after_crlf = body.last() == Some(&b'\r');
            let text = if after_crlf {
                &body[..body.len() - 1]
            } else {
                faults.bare_lf = true;
                body
            };
            if text.contains(&b'\r') {
                faults.bare_cr = true;
            }
            // RFC 5321 §4.5.2: a leading dot was doubled by the client.
            let unstuffed = text.strip_prefix(b".").unwrap_or(text);
            if message.len() as usize + unstuffed.len() + 2 > max_size {
                faults.too_big = true;
            } else if !faults.too_big && faults.spool_failed.is_none() {
                // Stored with CRLF whichever line end came.
                let mut pushed = message.push(unstuffed).await;
                if pushed.is_ok() {
                    pushed = message.push(b"\r\n").await;
                }
                if let Err(e) = pushed {
                    message.clear();
                    faults.spool_failed = Some(e);
                }
            }
        }
        let reject_bare_lf = self.srv.smtp.bare_lf == BareLf::Reject;
        if faults.bare_lf {
            tracing::info!(client = %self.peer.ip(), "smtp: message data with bare LF line ends ({})",
                if reject_bare_lf { "refused" } else { "normalized to CRLF" });
        }
        let refusal = if let Some(e) = faults.spool_failed {
            Some(self.spool_failure(e))
        } else if faults.bare_cr {
            Some(Reply::new(
                554,
                "5.6.0",
                "message refused: bare CR in data; lines must end with CRLF (RFC 5321 §2.3.8)",
            ))
        } else if faults.bare_lf && reject_bare_lf {
            Some(Reply::new(
                554,
                "5.6.0",
                "message refused: bare LF in data; lines must end with CRLF (RFC 5321 §2.3.8)",
            ))
        } else if faults.too_big {
            Some(Reply::new(
                552,
                "5.3.4",
                format!("message too big; the limit is {max_size} bytes"),
            ))
        } else if faults.line_too_long {
            Some(Reply::new(
                554,
                "5.6.0",
                format!("message refused: a line is longer than {max_line} bytes"),
            ))
        } else {
            None
        };
        match refusal {
            Some(reply) => {
                self.reply(reply);
                self.tx = None;
            }
            None => self.finish(message).await,
        }
        Ok(Flow::Continue)
    }

    /// 452 4.3.1 for a body that could not be spooled (RFC 3463: mail
    /// system storage insufficient), logged with the cause.
    pub(super) fn spool_failure(&self, e: std::io::Error) -> Reply {
        tracing::warn!("smtp {}: spooling a message body: {e}", self.peer);
        Reply::new(452, "4.3.1", "insufficient system storage; try again later")
    }

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Result<Flow, End> {
        // The chunk follows the command whatever we think of it, so it is
        // always read (or skipped) to keep the session in step (RFC 3030 §3).
        let refusal = self.data_refusal();
        let max_size = self.srv.limits.max_message_size;
        let timeout = self.data_timeout();
        let mut bdat = match (&refusal, self.tx.as_mut()) {
            (None, Some(tx)) => tx.bdat.take().unwrap_or_else(|| Bdat {
                body: self.srv.mail.new_body(),
                too_big: false,
                spool_failed: None,
            }),
            _ => {
                let n = self.conn.read_chunk(size, None, timeout).await?;
                if n < size {
                    return Err(End::Gone);
                }
                if let Some(refusal) = refusal {
                    self.reply(refusal);
                }
                return Ok(Flow::Continue);
            }
        };
        // Keep the chunk only while the message stays within the limit;
        // past it the bytes are skipped, never buffered.
        if bdat.spool_failed.is_some() {
            // The disk refused already: skip the rest, LAST gets 452.
            let n = self.conn.read_chunk(size, None, timeout).await?;
            if n < size {
                return Err(End::Gone);
            }
        } else if bdat.too_big || bdat.body.len().saturating_add(size) > max_size {
            bdat.too_big = true;
            bdat.body.clear();
            let n = self.conn.read_chunk(size, None, timeout).await?;
            if n < size {
                return Err(End::Gone);
            }
        } else {
            let (n, failed) = self
                .conn
                .read_into_spool(size, &mut bdat.body, timeout)
                .await?;
            if n < size {
                return Err(End::Gone);
            }
            if let Some(e) = failed {
                bdat.spool_failed.get_or_insert(e);
            }
        }
        let received = bdat.body.len();
        if !last {
            if let Some(tx) = self.tx.as_mut() {
                tx.bdat = Some(bdat);
            }
            self.reply(Reply::new(250, "2.0.0", format!("{size} octets received")));
            return Ok(Flow::Continue);
        }
        if bdat.too_big {
            self.reply(Reply::new(
                552,
                "5.3.4",
                format!("message too big; the limit is {max_size} bytes"),
            ));
            self.tx = None;
            return Ok(Flow::Continue);
        }
        if let Some(e) = bdat.spool_failed {
            let reply = self.spool_failure(e);
            self.reply(reply);
            self.tx = None;
            return Ok(Flow::Continue);
        }
        let message = bdat.body;
        tracing::debug!("smtp {}: BDAT LAST after {received} octets", self.peer);
        self.finish(message).await;
        Ok(Flow::Continue)
    }
}
