//! STARTTLS (RFC 3207): upgrade the connection to TLS.
//!
//! Everything the client sent after STARTTLS and before the handshake is
//! discarded with the plaintext reader's buffer: otherwise a man in the
//! middle could inject commands that the server would run inside the TLS
//! session (CVE-2011-0411 in several servers). The session starts over
//! afterwards: no EHLO, no transaction, no authentication (RFC 3207 §4.2).

use super::{End, Flow, Session};
use crate::reply::Reply;

impl Session {
    pub(super) async fn starttls(&mut self) -> Result<Flow, End> {
        if self.is_tls() {
            self.reply(Reply::new(503, "5.5.1", "TLS is already active"));
            return Ok(Flow::Continue);
        }
        self.reply(Reply::new(220, "2.0.0", "ready to start TLS"));
        // Drops the plaintext buffer, and with it anything pipelined.
        if !self.conn.start_tls(self.srv.tls.clone()).await? {
            tracing::debug!("smtp {}: TLS handshake failed", self.peer);
            return Err(End::Gone);
        }
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.account = None;
        Ok(Flow::Continue)
    }
}
