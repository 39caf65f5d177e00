//! MAIL FROM (RFC 5321 §4.1.1.2): starts a transaction.
//!
//! On submission ports the client must have authenticated, and may only
//! use its own addresses (RFC 6409 §6.1): 553 5.7.1 otherwise.

use super::{Session, Transaction};
use crate::command::MailParams;
use crate::path::Mailbox;
use crate::reply::Reply;
use crate::Mode;

impl Session {
    pub(super) async fn mail(&mut self, from: Option<Mailbox>, params: MailParams) {
        if self.helo.is_none() {
            return self.reply(Reply::new(503, "5.5.1", "say EHLO first"));
        }
        if self.tx.is_some() {
            return self.reply(Reply::new(
                503,
                "5.5.1",
                "a transaction is already open; RSET first",
            ));
        }
        if self.mode != Mode::Mta && self.account.is_none() {
            let why = if self.auth_allowed() {
                "authentication required"
            } else {
                "authentication required; issue STARTTLS first"
            };
            return self.reply(Reply::new(530, "5.7.0", why));
        }
        if (params.eight_bit || params.smtputf8 || params.ret.is_some() || params.env_id.is_some())
            && !self.esmtp
        {
            return self.reply(Reply::new(555, "5.5.4", "parameters need EHLO, not HELO"));
        }
        if params.require_tls && !self.is_tls() {
            return self.reply(Reply::new(
                530,
                "5.7.10",
                "REQUIRETLS needs a TLS session (RFC 8689)",
            ));
        }
        let max = self.srv.limits.max_message_size;
        if params.size.is_some_and(|s| s > max) {
            return self.reply(Reply::new(
                552,
                "5.3.4",
                format!("message too big; the limit is {max} bytes"),
            ));
        }
        if let Some(account) = &self.account {
            let owned = match &from {
                None => false,
                Some(m) => match self.srv.mail.may_send_as(account, &m.address()).await {
                    Ok(owned) => owned,
                    Err(e) => {
                        tracing::error!("smtp {}: checking the sender: {e}", self.peer);
                        return self.reply(Reply::new(
                            451,
                            "4.3.0",
                            "temporary failure; try again later",
                        ));
                    }
                },
            };
            if !owned {
                let who = account.address.clone();
                return self.reply(Reply::new(
                    553,
                    "5.7.1",
                    format!("{who} may not send as {}", display(&from)),
                ));
            }
        }
        let spf = self.start_spf(from.as_ref());
        self.tx = Some(Transaction {
            from,
            params,
            local: Vec::new(),
            remote: Vec::new(),
            accepted_rcpts: 0,
            bdat: None,
            spf,
            forwarded_by: None,
        });
        self.reply(Reply::new(250, "2.1.0", "sender OK"));
    }
}

fn display(from: &Option<Mailbox>) -> String {
    match from {
        Some(m) => format!("<{m}>"),
        None => "<>".to_string(),
    }
}
