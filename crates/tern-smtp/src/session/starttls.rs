//! STARTTLS (RFC 3207): upgrade the connection to TLS.
//!
//! Everything the client sent after STARTTLS and before the handshake is
//! discarded with the plaintext reader's buffer: otherwise a man in the
//! middle could inject commands that the server would run inside the TLS
//! session (CVE-2011-0411 in several servers). The session starts over
//! afterwards: no EHLO, no transaction, no authentication (RFC 3207 §4.2).

use super::{End, Flow, Session};
use crate::reply::Reply;
use tern_core::io::Stream;
use tokio::io::BufReader;

impl Session {
    pub(super) async fn starttls(&mut self) -> Result<Flow, End> {
        if self.is_tls() {
            self.reply(Reply::new(503, "5.5.1", "TLS is already active"));
            return Ok(Flow::Continue);
        }
        self.reply(Reply::new(220, "2.0.0", "ready to start TLS"));
        self.flush().await?;
        // into_inner drops the buffer, and with it anything pipelined.
        let conn = std::mem::replace(&mut self.conn, BufReader::new(Stream::Closed));
        let Stream::Plain(tcp) = conn.into_inner() else {
            return Err(End::Gone);
        };
        let Some(tls) = tern_core::io::accept_tls(self.srv.tls.clone(), tcp).await else {
            tracing::debug!("smtp {}: TLS handshake failed", self.peer);
            return Err(End::Gone);
        };
        self.conn = BufReader::new(tls);
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.account = None;
        Ok(Flow::Continue)
    }
}
