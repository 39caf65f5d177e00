//! IDLE (RFC 2177, RFC 9051 §6.3.13): the client waits, and hears of every
//! change to the selected mailbox as soon as it is committed.
//!
//! The session subscribes to the notification hub *before* it reads the
//! mailbox state, so no commit can fall between the read and the wait.

use super::{End, Next, Session, State};
use std::time::Duration;

/// RFC 9051 §5.4: clients re-issue IDLE at least every 29 minutes; past
/// 30 minutes of silence the session ends.
const IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Longer than any "DONE" line a client sends.
const MAX_DONE_LINE: usize = 64;

impl Session {
    pub(super) async fn idle(&mut self, tag: &str) -> Result<Next, End> {
        let mut changes = self.srv.store.subscribe(self.account_id());
        self.conn.out.extend_from_slice(b"+ idling\r\n");
        self.sync(true).await;
        self.flush().await?;
        let mut stopping = self.stopping.clone();
        let mut partial = Vec::new();
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        self.untagged("BYE the server is going away");
                        return Ok(Next::Logout);
                    }
                    changes.borrow_and_update();
                    if matches!(self.state, State::Selected(_)) {
                        self.sync(true).await;
                        self.flush().await?;
                        if self.closing {
                            return Ok(Next::Logout);
                        }
                    }
                }
                // fill_buf consumes nothing, so an update arriving while the
                // client is halfway through "DONE" loses none of it: the
                // bytes are moved into `partial` only here.
                buf = tokio::time::timeout(IDLE_LIMIT, self.conn.fill_buf()) => {
                    let buf = match buf {
                        Err(_) => {
                            self.untagged("BYE idle for too long");
                            return Ok(Next::Logout);
                        }
                        Ok(buf) => buf?,
                    };
                    if buf.is_empty() {
                        return Err(End::Gone);
                    }
                    let newline = buf.iter().position(|&b| b == b'\n');
                    let take = newline.map_or(buf.len(), |i| i + 1);
                    partial.extend_from_slice(&buf[..take]);
                    self.conn.consume(take);
                    if newline.is_some() || partial.len() > MAX_DONE_LINE {
                        if partial.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                            break;
                        }
                        self.tagged(tag, "BAD", "expected DONE");
                        return Ok(Next::Continue);
                    }
                }
                // The guard wait_for returns must not live across awaits.
                _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                    self.untagged("BYE server shutting down");
                    return Ok(Next::Logout);
                }
            }
        }
        self.sync(true).await;
        self.tagged(tag, "OK", "IDLE terminated");
        Ok(Next::Continue)
    }
}
