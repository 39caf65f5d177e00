//! EHLO and HELO (RFC 5321 §4.1.1.1): the client names itself; EHLO also
//! learns what this server offers. Either one resets the transaction.

use super::Session;
use crate::reply::Reply;

impl Session {
    pub(super) fn ehlo(&mut self, name: String, extended: bool) {
        self.tx = None;
        self.esmtp = extended;
        let host = self.srv.hostname.clone();
        let greeting = format!("{host} greets {name} [{}]", self.peer.ip());
        self.helo = Some(name);
        if !extended {
            self.reply(Reply::bare(250, vec![greeting]));
            return;
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.srv.limits.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "CHUNKING".to_string(),
            "DSN".to_string(),
        ];
        if self.is_tls() {
            // RFC 8689 §4: offered only where the session is TLS.
            lines.push("REQUIRETLS".to_string());
        } else {
            lines.push("STARTTLS".to_string());
        }
        // RFC 4954 §4 / DESIGN.md: no passwords over plaintext off loopback.
        if self.auth_allowed() && self.account.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        lines.push("HELP".to_string());
        self.reply(Reply::bare(250, lines));
    }
}
