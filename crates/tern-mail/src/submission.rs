//! What happens when one of our users sends, whatever the protocol (SMTP
//! submission, JMAP EmailSubmission, the webmail, ActiveSync SendMail):
//!
//! - the envelope sender must be one the account may use
//!   ([`crate::Directory::may_send_as`]): its own address, with any
//!   extension, or an alias that reaches it;
//! - the message gets the `Date` and `Message-ID` fields a submission
//!   server may add when they are missing (RFC 6409 §8.1, §8.3);
//! - with [`crate::Origin::Submission`]'s `save_copy`, a copy is filed in
//!   the sender's Sent mailbox in the same commit;
//! - local recipients are delivered at once and remote ones queued, by the
//!   same pipeline as inbound mail ([`crate::Mail::deliver`]).

use crate::delivery::{DeliveryError, DeliveryReport, Envelope, LocalRecipient, Origin};
use crate::headers::{has_header, rfc5322_date};
use crate::Mail;
use tern_core::Address;
use tern_store::{Account, DsnNotify, OutboundRecipient, StoreError};

/// Why a submission was refused. Nothing was stored or queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{account} may not send as <{mail_from}>")]
    SenderNotAllowed { account: String, mail_from: String },
    #[error("<{0}> is not a valid address: {1}")]
    InvalidAddress(String, tern_core::AddressError),
    #[error("<{0}>: no such user here")]
    UnknownRecipient(String),
    #[error("a message needs at least one recipient")]
    NoRecipients,
    #[error("at most {0} recipients per message")]
    TooManyRecipients(usize),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("{doing}: {source}")]
    Temporary {
        doing: &'static str,
        #[source]
        source: StoreError,
    },
}

impl Mail {
    /// Sends a message for one of our users from an API (JMAP
    /// EmailSubmission, the webmail, ActiveSync SendMail), as submission
    /// over SMTP does: the envelope sender must be the account's
    /// ([`Mail::may_send_as`]); each recipient at one of our domains must
    /// exist and is delivered now, any other is queued; the message gets
    /// `Date`/`Message-ID` if missing, and with `save_copy` a seen copy in
    /// Sent — all in one durable commit.
    pub async fn submit(
        &self,
        account: &Account,
        mail_from: &str,
        rcpt_to: &[String],
        body: Vec<u8>,
        save_copy: bool,
        max_recipients: usize,
    ) -> Result<DeliveryReport, SubmitError> {
        self.submit_at(
            account,
            mail_from,
            rcpt_to,
            body,
            save_copy,
            max_recipients,
            None,
        )
        .await
    }

    /// [`Mail::submit`], sent at `release_at` when given (FUTURERELEASE,
    /// RFC 4865; JMAP's delayed send): the same checks now, then every
    /// recipient — local ones too, delivered by the outbound worker —
    /// waits in the queue, where it may be cancelled until then.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_at(
        &self,
        account: &Account,
        mail_from: &str,
        rcpt_to: &[String],
        body: Vec<u8>,
        save_copy: bool,
        max_recipients: usize,
        release_at: Option<i64>,
    ) -> Result<DeliveryReport, SubmitError> {
        let temporary = |doing| move |source| SubmitError::Temporary { doing, source };
        if !self
            .may_send_as(account, mail_from)
            .await
            .map_err(temporary("checking the sender"))?
        {
            return Err(SubmitError::SenderNotAllowed {
                account: account.address.clone(),
                mail_from: mail_from.to_string(),
            });
        }
        if rcpt_to.is_empty() {
            return Err(SubmitError::NoRecipients);
        }
        if rcpt_to.len() > max_recipients {
            return Err(SubmitError::TooManyRecipients(max_recipients));
        }
        let directory = self.directory();
        let mut local: Vec<LocalRecipient> = Vec::new();
        let mut remote: Vec<OutboundRecipient> = Vec::new();
        for rcpt in rcpt_to {
            let address =
                Address::parse(rcpt).map_err(|e| SubmitError::InvalidAddress(rcpt.clone(), e))?;
            let is_local = directory
                .is_local_domain(address.domain())
                .await
                .map_err(temporary("checking a domain"))?;
            let mut push_remote = |to: String| {
                if !remote.iter().any(|r| r.address.eq_ignore_ascii_case(&to)) {
                    remote.push(OutboundRecipient {
                        address: to,
                        notify: DsnNotify::default(),
                        orcpt: None,
                    });
                }
            };
            if !is_local {
                push_remote(address.to_string());
                continue;
            }
            let expansion = directory
                .resolve(address.local(), address.domain())
                .await
                .map_err(temporary("resolving a recipient"))?
                .ok_or_else(|| SubmitError::UnknownRecipient(rcpt.clone()))?;
            for account_id in expansion.accounts {
                if !local.iter().any(|l| l.account_id == account_id) {
                    local.push(LocalRecipient {
                        account_id,
                        address: address.to_string(),
                    });
                }
            }
            expansion.remote.into_iter().for_each(push_remote);
        }
        if release_at.is_some() {
            // The queue delivers local recipients itself, by address.
            for l in local.drain(..) {
                if !remote
                    .iter()
                    .any(|r| r.address.eq_ignore_ascii_case(&l.address))
                {
                    remote.push(OutboundRecipient {
                        address: l.address,
                        notify: DsnNotify::default(),
                        orcpt: None,
                    });
                }
            }
        }
        let envelope = Envelope {
            mail_from: mail_from.to_string(),
            local,
            remote,
            release_at,
            env_id: None,
            ret: None,
            require_tls: false,
            sender_auth: None,
            origin: Origin::Submission {
                account: account.id,
                save_copy,
            },
        };
        Ok(self.deliver(envelope, None, body).await?)
    }

    /// True when `account` may send with `mail_from` as its envelope sender
    /// (the null sender `<>` never: bounces are the server's to send).
    pub async fn may_send_as(
        &self,
        account: &Account,
        mail_from: &str,
    ) -> Result<bool, StoreError> {
        if mail_from.is_empty() {
            return Ok(false);
        }
        self.directory().may_send_as(account, mail_from).await
    }
}

/// Appends to `out` the `Date` and `Message-ID` fields `body` lacks.
pub(crate) fn add_missing_fields(
    out: &mut Vec<u8>,
    body: &[u8],
    id: &str,
    at: i64,
    hostname: &str,
) {
    if !has_header(body, "Date") {
        out.extend_from_slice(format!("Date: {}\r\n", rfc5322_date(at)).as_bytes());
    }
    if !has_header(body, "Message-ID") {
        out.extend_from_slice(format!("Message-ID: <{id}@{hostname}>\r\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_store::Role;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_api_submission_delivers_queues_and_keeps_a_copy() {
        let (mail, joe, _dir) = crate::test_support::mail_with_joe("x", 5).await;
        let body = b"Subject: from the webmail\r\n\r\nhi\r\n".to_vec();
        let r = mail
            .submit(
                &joe,
                "joe@example.test",
                &["joe+self@example.test".into(), "ann@remote.test".into()],
                body.clone(),
                true,
                100,
            )
            .await
            .unwrap();
        // Delivered to joe (himself), a copy in Sent, ann queued.
        assert_eq!((r.delivered, r.queued), (2, 1));
        let store = mail.store();
        let sent = store
            .mailbox_by_role(joe.id, Role::Sent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .mailbox_counts(joe.id, sent.id)
                .await
                .unwrap()
                .messages,
            1
        );
        let queued = store.queue_list().await.unwrap();
        assert_eq!(queued[0].outbound.recipients[0].address, "ann@remote.test");
        assert_eq!(queued[0].outbound.account_id, Some(joe.id));
        // Refused, nothing stored: another sender, an unknown local user,
        // a bad address, no recipient.
        let refused = [
            mail.submit(
                &joe,
                "boss@example.test",
                &["ann@remote.test".into()],
                body.clone(),
                false,
                100,
            )
            .await,
            mail.submit(
                &joe,
                "joe@example.test",
                &["nobody@example.test".into()],
                body.clone(),
                false,
                100,
            )
            .await,
            mail.submit(
                &joe,
                "joe@example.test",
                &["not an address".into()],
                body.clone(),
                false,
                100,
            )
            .await,
            mail.submit(&joe, "joe@example.test", &[], body.clone(), false, 100)
                .await,
            mail.submit(
                &joe,
                "joe@example.test",
                &["a@remote.test".into(), "b@remote.test".into()],
                body.clone(),
                false,
                1,
            )
            .await,
        ];
        assert!(matches!(
            refused[0],
            Err(SubmitError::SenderNotAllowed { .. })
        ));
        assert!(matches!(refused[1], Err(SubmitError::UnknownRecipient(_))));
        assert!(matches!(refused[2], Err(SubmitError::InvalidAddress(..))));
        assert!(matches!(refused[3], Err(SubmitError::NoRecipients)));
        assert!(matches!(refused[4], Err(SubmitError::TooManyRecipients(1))));
        assert_eq!(store.queue_list().await.unwrap().len(), 1);
    }

    /// The sender's own copy is never a recipient: over quota it is lost
    /// (logged), not queued to land in the sender's INBOX; without a Sent
    /// mailbox there is no copy, not one in INBOX.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sent_copy_is_never_queued_nor_put_in_inbox() {
        let (mail, joe, _dir) = crate::test_support::mail_with_joe("x", 5).await;
        let store = mail.store().clone();
        store.set_quota("joe@example.test", Some(10)).await.unwrap();
        let body = b"Subject: big\r\n\r\nmore than ten bytes\r\n".to_vec();
        let r = mail
            .submit(
                &joe,
                "joe@example.test",
                &["ann@remote.test".into()],
                body.clone(),
                true,
                100,
            )
            .await
            .unwrap();
        assert_eq!((r.delivered, r.queued), (0, 1));
        let queued = store.queue_list().await.unwrap();
        let to: Vec<_> = queued[0]
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(to, ["ann@remote.test"]);
        store.set_quota("joe@example.test", None).await.unwrap();
        let sent = store
            .mailbox_by_role(joe.id, Role::Sent)
            .await
            .unwrap()
            .unwrap();
        store.delete_mailbox(joe.id, sent.id).await.unwrap();
        let r = mail
            .submit(
                &joe,
                "joe@example.test",
                &["ann@remote.test".into()],
                body,
                true,
                100,
            )
            .await
            .unwrap();
        assert_eq!(r.delivered, 0);
        let inbox = store
            .mailbox_by_role(joe.id, Role::Inbox)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .mailbox_counts(joe.id, inbox.id)
                .await
                .unwrap()
                .messages,
            0
        );
    }

    #[test]
    fn only_missing_fields_are_added() {
        let mut out = Vec::new();
        add_missing_fields(&mut out, b"Date: x\r\n\r\nbody", "abc", 0, "mx.test");
        assert_eq!(out, b"Message-ID: <abc@mx.test>\r\n");
        let mut out = Vec::new();
        add_missing_fields(
            &mut out,
            b"Subject: s\r\n\r\nMessage-ID: in body",
            "i",
            0,
            "h",
        );
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("Date: Thu, 1 Jan 1970"));
        assert!(out.contains("Message-ID: <i@h>"));
    }
}
