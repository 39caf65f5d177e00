//! The end of a transaction: the message goes through the mail layer's
//! delivery pipeline (`Mail::deliver`: trace fields, one parse, filters,
//! one durable `Store::accept`), and the outcome becomes the reply.
//!
//! Ordering is the point: the 250 is written only after `deliver` returns,
//! and `deliver` returns only after the commit is on disk.

use super::Session;
use crate::reply::Reply;
use tern_mail::delivery::LocalRecipient;
use tern_mail::{DeliveryError, Envelope, Origin, Trace};

impl Session {
    pub(super) async fn finish(&mut self, body: tern_core::spool::Spool) {
        let Some(mut tx) = self.tx.take() else { return };
        // A spooled body comes back into memory only here, a few at a time
        // server-wide; the slot is held until the message is stored.
        let (body, _slot) = match self.srv.mail.read_body(body).await {
            Ok(read) => read,
            Err(e) => {
                let reply = self.spool_failure(e);
                return self.reply(reply);
            }
        };
        let mail_from = tx.from.as_ref().map(|m| m.address()).unwrap_or_default();
        let forwarded_by = tx.forwarded_by.take();
        let checked = self
            .authenticate(tx.spf.take(), &mail_from, forwarded_by, body)
            .await;
        let (body, sender_auth) = match checked {
            Ok(checked) => checked,
            Err(refusal) => return self.reply(refusal),
        };
        // RFC 6409 §8: a submission server may complete the message; on
        // port 25 only an authenticated client is a submitter.
        // (Submission ports require AUTH, so that is every client there.)
        let origin = match &self.account {
            Some(account) => Origin::Submission {
                account: account.id,
                save_copy: false,
            },
            None => Origin::Inbound,
        };
        let envelope = Envelope {
            mail_from: mail_from.clone(),
            local: tx
                .local
                .iter()
                .map(|(account_id, address)| LocalRecipient {
                    account_id: *account_id,
                    address: address.clone(),
                })
                .collect(),
            remote: tx.remote.clone(),
            env_id: tx.params.env_id.clone(),
            ret: tx.params.ret,
            require_tls: tx.params.require_tls,
            sender_auth,
            origin,
            release_at: None,
        };
        let trace = Trace {
            helo: self.helo.clone().unwrap_or_else(|| "unknown".into()),
            peer: self.peer.ip(),
            with: self.with_protocol(tx.params.smtputf8),
        };
        // While the message commits, this connection is not evicted: a
        // session dropped after the commit but before its 250 makes the
        // client send the message again. If it was evicted already it must
        // not commit at all.
        if !self.slot.committing() {
            return self.reply(Reply::new(
                421,
                "4.3.2",
                "too busy; connection closed to make room, try again later",
            ));
        }
        let delivered = self.srv.mail.deliver(envelope, Some(&trace), body).await;
        self.slot.committed();
        let report = match delivered {
            Ok(report) => report,
            Err(DeliveryError::MailboxFull) => {
                return self.reply(Reply::new(452, "4.2.2", "mailbox full; try again later"))
            }
            Err(DeliveryError::Rejected { code, status, text }) => {
                return self.reply(Reply::new(code, status, text))
            }
            Err(DeliveryError::Temporary { doing, source }) if source.is_storage_full() => {
                tracing::warn!("smtp {}: {doing}: {source}", self.peer);
                return self.reply(Reply::new(
                    452,
                    "4.3.1",
                    "insufficient system storage; try again later",
                ));
            }
            Err(DeliveryError::Temporary { doing, source }) => {
                return self.temporary_failure(doing, source)
            }
        };
        tracing::info!(
            "smtp {}: accepted {} from <{mail_from}>, {} bytes, {} local, {} queued{}",
            self.peer,
            report.id,
            report.size,
            report.delivered,
            report.queued,
            self.account
                .as_ref()
                .map(|a| format!(", sent by {}", a.address))
                .unwrap_or_default()
        );
        self.reply(Reply::new(
            250,
            "2.0.0",
            format!("message accepted as {}", report.id),
        ));
    }

    /// The RFC 3848 "with" keyword of this transaction (RFC 6531 §4.3 for
    /// SMTPUTF8).
    fn with_protocol(&self, utf8: bool) -> String {
        let base = if utf8 { "UTF8SMTP" } else { "ESMTP" };
        let suffix = match (self.is_tls(), self.account.is_some()) {
            (false, false) => "",
            (true, false) => "S",
            (false, true) => "A",
            (true, true) => "SA",
        };
        format!("{base}{suffix}")
    }
}
