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

use super::{End, Flow, Session};
use crate::reply::Reply;
use std::time::Duration;
use tern_core::BareLf;

/// What went wrong inside the data, reported after its end.
#[derive(Default)]
struct DataFaults {
    too_big: bool,
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
        let mut message = Vec::new();
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
            if message.len() + unstuffed.len() + 2 > max_size {
                faults.too_big = true;
            } else if !faults.too_big {
                // Stored with CRLF whichever line end came.
                message.extend_from_slice(unstuffed);
                message.extend_from_slice(b"\r\n");
            }
        }
        let reject_bare_lf = self.srv.smtp.bare_lf == BareLf::Reject;
        if faults.bare_lf {
            tracing::info!(client = %self.peer.ip(), "smtp: message data with bare LF line ends ({})",
                if reject_bare_lf { "refused" } else { "normalized to CRLF" });
        }
        let refusal = if faults.bare_cr {
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

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Result<Flow, End> {
        // The chunk follows the command whatever we think of it, so it is
        // always read (or skipped) to keep the session in step (RFC 3030 §3).
        let refusal = self.data_refusal();
        let max_size = self.srv.limits.max_message_size as usize;
        let mut chunk = Vec::new();
        // Keep the chunk only while the message stays within the limit;
        // past it the bytes are skipped, never buffered.
        let (so_far, already_too_big) = self
            .tx
            .as_ref()
            .and_then(|t| t.bdat.as_ref())
            .map_or((0, false), |(data, too_big)| (data.len() as u64, *too_big));
        let keep =
            refusal.is_none() && !already_too_big && so_far.saturating_add(size) <= max_size as u64;
        let timeout = self.data_timeout();
        // Past the limit the bytes are skipped, never buffered.
        let into = keep.then_some(&mut chunk);
        let n = self.conn.read_chunk(size, into, timeout).await?;
        if n < size {
            return Err(End::Gone);
        }
        if let Some(refusal) = refusal {
            self.reply(refusal);
            return Ok(Flow::Continue);
        }
        let Some(tx) = self.tx.as_mut() else {
            return Ok(Flow::Continue);
        };
        let (data, too_big) = tx.bdat.get_or_insert_with(|| (Vec::new(), false));
        if keep {
            data.extend_from_slice(&chunk);
        } else {
            *too_big = true;
            data.clear();
        }
        let (received, too_big) = (data.len(), *too_big);
        if !last {
            self.reply(Reply::new(250, "2.0.0", format!("{size} octets received")));
            return Ok(Flow::Continue);
        }
        let message = tx.bdat.take().map(|(d, _)| d).unwrap_or_default();
        if too_big {
            self.reply(Reply::new(
                552,
                "5.3.4",
                format!("message too big; the limit is {max_size} bytes"),
            ));
            self.tx = None;
            return Ok(Flow::Continue);
        }
        tracing::debug!("smtp {}: BDAT LAST after {received} octets", self.peer);
        self.finish(message).await;
        Ok(Flow::Continue)
    }
}
