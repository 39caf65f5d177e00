//! The end of a transaction: trace headers, then one durable `Store::accept`
//! for every local recipient and the queue, then the reply.
//!
//! Ordering is the point: the 250 is written only after `accept` returns,
//! and `accept` returns only after the commit is on disk.

use super::Session;
use crate::headers::{has_header, new_id, now, rfc5322_date};
use crate::reply::Reply;
use crate::Mode;
use tern_store::{Delivery, DeliveryTarget, Outbound, OutboundRecipient, StoreError};

impl Session {
    pub(super) async fn finish(&mut self, body: Vec<u8>) {
        let Some(tx) = self.tx.take() else { return };
        let id = new_id();
        let received_at = now();
        let mail_from = tx.from.as_ref().map(|m| m.address()).unwrap_or_default();
        let mut message = Vec::with_capacity(body.len() + 512);
        // RFC 5321 §4.4: Return-Path at final delivery, Received by every hop.
        // The outbound worker strips Return-Path before relaying.
        message.extend_from_slice(format!("Return-Path: <{mail_from}>\r\n").as_bytes());
        message.extend_from_slice(
            self.received_header(&id, received_at, &tx.local, &tx.remote, tx.params.smtputf8)
                .as_bytes(),
        );
        if self.mode != Mode::Mta || self.account.is_some() {
            // RFC 6409 §8.1, §8.3: a submission server may add what is missing.
            if !has_header(&body, "Date") {
                message.extend_from_slice(
                    format!("Date: {}\r\n", rfc5322_date(received_at)).as_bytes(),
                );
            }
            if !has_header(&body, "Message-ID") {
                message.extend_from_slice(
                    format!("Message-ID: <{id}@{}>\r\n", self.srv.hostname).as_bytes(),
                );
            }
        }
        message.extend_from_slice(&body);
        let size = message.len();
        let targets: Vec<DeliveryTarget> = tx
            .local
            .iter()
            .map(|(a, _)| DeliveryTarget::inbox(*a))
            .collect();
        let outbound = Outbound {
            mail_from: mail_from.clone(),
            recipients: tx.remote.clone(),
            env_id: tx.params.env_id.clone(),
            ret: tx.params.ret,
            account_id: self.account.as_ref().map(|a| a.id),
        };
        let delivery = Delivery {
            raw: message,
            recipients: targets,
            received_at,
        };
        let accepted = match self.srv.store.accept(delivery, Some(outbound)).await {
            Ok(a) => a,
            Err(e) => return self.temporary_failure("storing a message", e),
        };
        // A local recipient over quota was queued by `accept` in the same
        // commit when the message was accepted for anyone else (the queue
        // retries, then bounces). If nobody took it, the client hears now
        // and nothing is owed.
        let failed: Vec<(usize, StoreError)> = accepted
            .local
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| r.err().map(|e| (i, e)))
            .collect();
        if let Some((_, e)) = failed.iter().find(|(i, _)| !accepted.deferred.contains(i)) {
            if failed.len() == tx.local.len() && tx.remote.is_empty() {
                return match e {
                    StoreError::OverQuota { .. } => {
                        self.reply(Reply::new(452, "4.2.2", "mailbox full; try again later"))
                    }
                    e => self.temporary_failure("delivering a message", e),
                };
            }
            // A failure that is not a full mailbox, with others delivered:
            // the message is accepted for them; log loudly, as it is lost
            // for this one recipient (only a store fault gets here).
            tracing::error!(
                "smtp {}: a local delivery failed after others succeeded: {e}",
                self.peer
            );
        }
        tracing::info!(
            "smtp {}: accepted {id} from <{mail_from}>, {size} bytes, {} local, {} queued{}",
            self.peer,
            tx.local.len() - failed.len(),
            tx.remote.len() + failed.len(),
            self.account
                .as_ref()
                .map(|a| format!(", sent by {}", a.address))
                .unwrap_or_default()
        );
        self.reply(Reply::new(
            250,
            "2.0.0",
            format!("message accepted as {id}"),
        ));
    }

    /// The Received field (RFC 5321 §4.4, "with" types from RFC 3848).
    fn received_header(
        &self,
        id: &str,
        at: i64,
        local: &[(tern_store::AccountId, String)],
        remote: &[OutboundRecipient],
        utf8: bool,
    ) -> String {
        // RFC 3848 and, for SMTPUTF8 transactions, RFC 6531 §4.3.
        let base = if utf8 { "UTF8SMTP" } else { "ESMTP" };
        let suffix = match (self.is_tls(), self.account.is_some()) {
            (false, false) => "",
            (true, false) => "S",
            (false, true) => "A",
            (true, true) => "SA",
        };
        let protocol = format!("{base}{suffix}");
        let helo = self.helo.as_deref().unwrap_or("unknown");
        // Name the recipient only when there is one, so a copy to many
        // does not tell each recipient who else got it.
        let single = match (local, remote) {
            ([(_, a)], []) => Some(a.clone()),
            ([], [r]) => Some(r.address.clone()),
            _ => None,
        };
        let for_clause = single
            .map(|a| format!("\r\n\tfor <{a}>"))
            .unwrap_or_default();
        format!(
            "Received: from {helo} ([{}])\r\n\tby {} (Tern) with {protocol} id {id}{for_clause};\r\n\t{}\r\n",
            self.peer.ip(),
            self.srv.hostname,
            rfc5322_date(at)
        )
    }
}
