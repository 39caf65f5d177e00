//! The delivery pipeline: every message on its way into the Store.
//!
//! SMTP (inbound and submission) today, and JMAP EmailSubmission, the
//! webmail and ActiveSync SendMail next, hand a complete message and its
//! [`Envelope`] to [`Mail::deliver`], which:
//!
//! 1. prepends the trace fields: `Return-Path` and `Received` (RFC 5321
//!    §4.4, "with" types from RFC 3848), and on submission the `Date` and
//!    `Message-ID` a submission server may add (RFC 6409 §8.1, §8.3);
//! 2. runs the whole-message [`crate::screen`]s (virus, milters, spam
//!    rules: refuse, rewrite, add fields), then prepares the message once
//!    (hash and parse; the parse only when a local copy or the submission
//!    checks need it);
//! 3. runs the [`crate::filter`]s, in order, for each local recipient;
//! 4. turns the verdicts into one target per recipient (INBOX, or the
//!    mailbox a filter named, with its keywords), plus the copy in Sent a
//!    submission asked for;
//! 5. makes one durable `Store::accept` of the local targets and the queue
//!    entry for remote recipients.
//!
//! Ordering is the point: the caller may acknowledge (SMTP `250`) only
//! after this returns `Ok`, and it returns only after the commit is on
//! disk. A local recipient over quota, when the message is accepted for
//! anyone else, is queued in the same commit (the queue retries, then
//! bounces), so nothing acknowledged is lost.

use crate::filter::{FilterInput, MailboxTarget, Verdict};
use crate::headers::{new_id, now, rfc5322_date};
use crate::screen::SpamScore;
use crate::Mail;
use std::net::IpAddr;
use tern_store::message::PreparedMessage;
use tern_store::{
    AccountId, BlobId, Delivery, DeliveryTarget, DsnReturn, Outbound, OutboundRecipient, Role,
    StoreError,
};

/// Where a message comes from, which decides what the pipeline adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Another server (or an unauthenticated client) hands us mail.
    Inbound,
    /// One of our users sends: `Date`/`Message-ID` are added when missing,
    /// and with `save_copy` the message is also filed in the sender's Sent
    /// mailbox, seen.
    Submission { account: AccountId, save_copy: bool },
}

/// One local recipient: the account it reaches and the address as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRecipient {
    pub account_id: AccountId,
    pub address: String,
}

/// Who the message is from and for (RFC 5321 §2.3.1), and the DSN wishes.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The reverse-path; empty for the null sender `<>`.
    pub mail_from: String,
    pub local: Vec<LocalRecipient>,
    pub remote: Vec<OutboundRecipient>,
    /// DSN `ENVID` (RFC 3461 §4.4).
    pub env_id: Option<String>,
    /// DSN `RET` (RFC 3461 §4.3).
    pub ret: Option<DsnReturn>,
    /// REQUIRETLS (RFC 8689 §4.1): onward hops only over verified TLS.
    pub require_tls: bool,
    /// What sender authentication found (inbound mail from other servers
    /// only; `None` when nothing was checked).
    pub sender_auth: Option<crate::SenderAuth>,
    pub origin: Origin,
    /// Sent later (FUTURERELEASE): nothing is delivered now; every
    /// recipient, local ones too, waits in the queue until then.
    pub release_at: Option<i64>,
}

/// How the message reached us, for the `Received` field.
#[derive(Debug, Clone)]
pub struct Trace {
    /// What the client called itself (EHLO/HELO), or the protocol's stand-in.
    pub helo: String,
    pub peer: IpAddr,
    /// The RFC 3848 "with" keyword: `ESMTP`, `ESMTPSA`, `UTF8SMTPS`, `HTTP`...
    pub with: String,
}

/// What became of an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Our id for the message, in `Received` and the logs.
    pub id: String,
    /// Octets stored, trace fields included.
    pub size: usize,
    /// Local copies stored (the Sent copy included).
    pub delivered: usize,
    /// Recipients left to the queue: remote ones, and local ones over quota.
    pub queued: usize,
    /// The queued copy, when there is one.
    pub queue_id: Option<tern_store::QueueId>,
    /// Local recipients a filter discarded or refused while others took it.
    pub dropped: usize,
    /// The stored bytes (for `Store::enqueue_blob`).
    pub blob_id: BlobId,
}

/// Why a message was not accepted. Nothing was stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Every recipient's filters refused it.
    #[error("{code} {status} {text}")]
    Rejected {
        code: u16,
        status: String,
        text: String,
    },
    /// Every recipient's mailbox is full (a temporary condition).
    #[error("mailbox full")]
    MailboxFull,
    /// The Store failed; try again later.
    #[error("{doing}: {source}")]
    Temporary {
        doing: &'static str,
        #[source]
        source: StoreError,
    },
}

/// One local recipient's fate after the filters.
enum Decision {
    Store(DeliveryTarget),
    Drop,
    Reject {
        code: u16,
        status: String,
        text: String,
    },
}

impl Mail {
    /// A submitted message claims its author in `From:`; with
    /// `check_header_from`, each address there must be one `account` may
    /// send as (its own, an extension of it, or an alias reaching it), as
    /// mox and Stalwart require: the envelope alone does not stop a user
    /// from writing as someone else. A message without `From:` is left to
    /// the recipients' judgement.
    async fn check_header_from(
        &self,
        account: AccountId,
        message: &PreparedMessage,
    ) -> Result<(), DeliveryError> {
        if !self.config.check_header_from {
            return Ok(());
        }
        let temporary = |doing| move |source| DeliveryError::Temporary { doing, source };
        let from: Vec<String> = message
            .parsed()
            .envelope
            .from
            .iter()
            .filter_map(|a| Some(format!("{}@{}", a.mailbox.as_ref()?, a.host.as_ref()?)))
            .collect();
        if from.is_empty() {
            return Ok(());
        }
        let account = self
            .store
            .account(account)
            .await
            .map_err(temporary("reading the sender's account"))?;
        for address in from {
            if !self
                .may_send_as(&account, &address)
                .await
                .map_err(temporary("checking the From: header"))?
            {
                tracing::info!(
                    "submission refused: {} may not write From: <{address}>",
                    account.address
                );
                return Err(DeliveryError::Rejected {
                    code: 553,
                    status: "5.7.1".into(),
                    text: format!(
                        "From: <{address}> is not an address {} may send as; use your own address or one of your aliases",
                        account.address
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs the pipeline for one message; see the module documentation.
    /// `body` is the message as the client sent it.
    pub async fn deliver(
        &self,
        envelope: Envelope,
        trace: Option<&Trace>,
        body: Vec<u8>,
    ) -> Result<DeliveryReport, DeliveryError> {
        let id = new_id();
        let received_at = now();
        let screened = self.screen(&envelope, trace, body).await?;
        let spam = screened.spam;
        let raw = self.with_trace_fields(&envelope, trace, &id, received_at, screened.body);
        let size = raw.len();
        // Relayed mail that nobody here keeps is never parsed: no local
        // copy, no filter and no From check reads it.
        let parse = !envelope.local.is_empty() || envelope.origin != Origin::Inbound;
        let message =
            crate::prepare_for(raw, parse)
                .await
                .map_err(|source| DeliveryError::Temporary {
                    doing: "parsing a message",
                    source,
                })?;

        if let Origin::Submission { account, .. } = envelope.origin {
            self.check_header_from(account, &message).await?;
        }
        if screened.discard {
            // Accepted and dropped, as the filter asked: the client hears
            // 250 and nothing is kept.
            let dropped = envelope.local.len() + envelope.remote.len();
            return Ok(DeliveryReport {
                id,
                size,
                delivered: 0,
                queued: 0,
                queue_id: None,
                dropped,
                blob_id: message.blob_id().clone(),
            });
        }

        let mut first_refusal = None;
        let mut dropped = 0;
        let mut targets = Vec::new();
        for rcpt in &envelope.local {
            match self
                .decide(
                    &message,
                    &envelope,
                    spam.as_ref(),
                    screened.quarantine,
                    rcpt.account_id,
                )
                .await
            {
                Decision::Store(t) => targets.push(t),
                Decision::Drop => dropped += 1,
                Decision::Reject { code, status, text } => {
                    dropped += 1;
                    first_refusal.get_or_insert(DeliveryError::Rejected { code, status, text });
                }
            }
        }
        // Refused for everyone (no local target left, nobody remote).
        if let Some(refusal) = first_refusal {
            if targets.is_empty() && envelope.remote.is_empty() {
                return Err(refusal);
            }
        }
        let local_wanted = targets.len();
        if let Origin::Submission {
            account,
            save_copy: true,
        } = envelope.origin
        {
            if let Some(copy) = self.sent_copy(account).await? {
                targets.push(copy);
            }
        }

        let outbound = Outbound {
            mail_from: envelope.mail_from.clone(),
            recipients: envelope.remote.clone(),
            env_id: envelope.env_id.clone(),
            ret: envelope.ret,
            require_tls: envelope.require_tls,
            account_id: match envelope.origin {
                Origin::Submission { account, .. } => Some(account),
                Origin::Inbound => None,
            },
            release_at: envelope.release_at,
        };
        // Who will answer it automatically (almost always nobody); the
        // replies go after the commit.
        let responders = self.vacation_responders(&envelope, &message).await;
        let delivery = Delivery {
            message,
            recipients: targets,
            received_at,
        };
        let accepted = self
            .store
            .accept(delivery, Some(outbound))
            .await
            .map_err(|source| DeliveryError::Temporary {
                doing: "storing a message",
                source,
            })?;
        // A recipient over quota was queued by `accept` in the same commit
        // when the message was accepted for anyone else. The client hears
        // of a failure only when nothing at all was committed (no copy
        // stored, nothing queued): then nothing is owed and a retry
        // duplicates nothing.
        let stored = accepted.local.iter().filter(|r| r.is_ok()).count();
        let mut failures: Vec<(usize, StoreError)> = accepted
            .local
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| r.err().map(|e| (i, e)))
            .filter(|(i, _)| !accepted.deferred.contains(i))
            .collect();
        if stored == 0 && accepted.queued.is_none() {
            if let Some((_, e)) = failures.drain(..).next() {
                return Err(match e {
                    StoreError::OverQuota { .. } => DeliveryError::MailboxFull,
                    source => DeliveryError::Temporary {
                        doing: "delivering a message",
                        source,
                    },
                });
            }
        }
        for (i, e) in failures {
            // Accepted for others, lost for this target: only a store fault
            // (an account removed meanwhile) gets here, or a full Sent
            // mailbox, which costs the sender only their copy.
            let what = if i >= local_wanted {
                "the sender's Sent copy"
            } else {
                "a local delivery"
            };
            tracing::error!("delivery {id}: {what} failed while others succeeded: {e}");
        }
        if stored > 0 {
            if let Some(responders) = responders {
                Box::pin(self.auto_reply(&envelope, responders)).await;
            }
        }
        Ok(DeliveryReport {
            id,
            size,
            delivered: stored,
            queued: envelope.remote.len() + accepted.deferred.len(),
            queue_id: accepted.queued,
            dropped,
            blob_id: accepted.blob_id,
        })
    }

    /// Runs the filters for one recipient.
    async fn decide(
        &self,
        message: &PreparedMessage,
        envelope: &Envelope,
        spam: Option<&SpamScore>,
        quarantine: bool,
        recipient: AccountId,
    ) -> Decision {
        let input = FilterInput {
            message,
            envelope,
            spam,
            recipient,
        };
        let mut target = DeliveryTarget::inbox(recipient);
        // DMARC `p=quarantine` (RFC 7489 §6.3) or a filter's quarantine:
        // delivered, but as junk.
        if quarantine || envelope.sender_auth.as_ref().is_some_and(|a| a.quarantine) {
            target.mailbox_id = self
                .find_mailbox(recipient, &MailboxTarget::Role(Role::Junk))
                .await;
            target.keywords.push("$Junk".into());
        }
        for filter in &self.filters {
            match filter.check(&input).await {
                Verdict::Accept => {}
                Verdict::Discard => {
                    tracing::info!(
                        "filter {} discarded a message for {recipient}",
                        filter.name()
                    );
                    return Decision::Drop;
                }
                Verdict::Reject { code, status, text } => {
                    tracing::info!(
                        "filter {} refused a message for {recipient}: {code} {status} {text}",
                        filter.name()
                    );
                    return Decision::Reject { code, status, text };
                }
                Verdict::FileInto { mailbox, keywords } => {
                    target.mailbox_id = self.find_mailbox(recipient, &mailbox).await;
                    // A filter's bad keyword must not turn into a delivery
                    // failure (and a sender retrying for ever): it is dropped.
                    for k in keywords {
                        match tern_store::validate_keyword(&k) {
                            Ok(()) => target.keywords.push(k),
                            Err(e) => {
                                tracing::warn!("filter {}: {e}; keyword dropped", filter.name())
                            }
                        }
                    }
                }
            }
        }
        Decision::Store(target)
    }

    /// The mailbox a filter named, if it exists (INBOX otherwise).
    async fn find_mailbox(
        &self,
        account: AccountId,
        target: &MailboxTarget,
    ) -> Option<tern_store::MailboxId> {
        let found = match target {
            MailboxTarget::Role(role) => self.store.mailbox_by_role(account, *role).await,
            MailboxTarget::Name(name) => self.store.mailbox_by_name(account, name).await,
        };
        match found {
            Ok(m) => m.filter(|m| !m.noselect).map(|m| m.id),
            Err(e) => {
                tracing::warn!(
                    "looking up a filter's mailbox {target:?} for {account}: {e}; INBOX"
                );
                None
            }
        }
    }

    /// The sender's Sent mailbox, seen; none when the account has no
    /// mailbox with the Sent role (a copy is never put in INBOX instead).
    async fn sent_copy(&self, account: AccountId) -> Result<Option<DeliveryTarget>, DeliveryError> {
        let sent = self
            .store
            .mailbox_by_role(account, Role::Sent)
            .await
            .map_err(|source| DeliveryError::Temporary {
                doing: "finding the Sent mailbox",
                source,
            })?;
        let Some(sent) = sent.filter(|m| !m.noselect) else {
            tracing::warn!("account {account} has no Sent mailbox: no copy kept");
            return Ok(None);
        };
        Ok(Some(DeliveryTarget {
            account_id: account,
            mailbox_id: Some(sent.id),
            keywords: vec!["\\Seen".into()],
            sender_copy: true,
        }))
    }

    /// `body` with the fields this server adds in front of it.
    fn with_trace_fields(
        &self,
        envelope: &Envelope,
        trace: Option<&Trace>,
        id: &str,
        received_at: i64,
        body: Vec<u8>,
    ) -> Vec<u8> {
        let mut message = Vec::with_capacity(body.len() + 512);
        // RFC 5321 §4.4: Return-Path at final delivery, Received by every
        // hop. The outbound worker strips Return-Path before relaying.
        message.extend_from_slice(format!("Return-Path: <{}>\r\n", envelope.mail_from).as_bytes());
        if let Some(trace) = trace {
            message.extend_from_slice(
                self.received_field(trace, envelope, id, received_at)
                    .as_bytes(),
            );
        }
        if matches!(envelope.origin, Origin::Submission { .. }) {
            crate::submission::add_missing_fields(
                &mut message,
                &body,
                id,
                received_at,
                self.hostname(),
            );
        }
        message.extend_from_slice(&body);
        message
    }

    /// The Received field (RFC 5321 §4.4).
    fn received_field(&self, trace: &Trace, envelope: &Envelope, id: &str, at: i64) -> String {
        // Name the recipient only when there is one, so a copy to many does
        // not tell each recipient who else got it.
        let single = match (envelope.local.as_slice(), envelope.remote.as_slice()) {
            ([l], []) => Some(l.address.clone()),
            ([], [r]) => Some(r.address.clone()),
            _ => None,
        };
        let for_clause = single
            .map(|a| format!("\r\n\tfor <{a}>"))
            .unwrap_or_default();
        format!(
            "Received: from {} ([{}])\r\n\tby {} (Tern) with {} id {id}{for_clause};\r\n\t{}\r\n",
            trace.helo,
            trace.peer,
            self.hostname(),
            trace.with,
            rfc5322_date(at)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use std::sync::Arc;
    use tern_store::Account;

    /// Decides by the subject: "reject", "discard", "junk", anything else
    /// passes. Records the subject it saw, to show the parse is shared.
    struct BySubject;

    #[async_trait::async_trait]
    impl Filter for BySubject {
        fn name(&self) -> &str {
            "by-subject"
        }
        async fn check(&self, input: &FilterInput<'_>) -> Verdict {
            match input.message.parsed().summary.subject.as_str() {
                "reject" => Verdict::Reject {
                    code: 550,
                    status: "5.7.1".into(),
                    text: "refused by policy".into(),
                },
                "discard" => Verdict::Discard,
                "junk" => Verdict::FileInto {
                    mailbox: MailboxTarget::Role(Role::Junk),
                    keywords: vec!["$Junk".into()],
                },
                "nowhere" => Verdict::FileInto {
                    mailbox: MailboxTarget::Name("No such folder".into()),
                    keywords: vec![],
                },
                _ => Verdict::Accept,
            }
        }
    }

    async fn setup() -> (Mail, Account, tempfile::TempDir) {
        let (mail, joe, dir) = crate::test_support::mail_with_joe("x", 5).await;
        (mail.with_filter(Arc::new(BySubject)), joe, dir)
    }

    fn envelope(to: &Account, origin: Origin) -> Envelope {
        Envelope {
            mail_from: "ann@remote.test".into(),
            local: vec![LocalRecipient {
                account_id: to.id,
                address: to.address.clone(),
            }],
            remote: vec![],
            env_id: None,
            ret: None,
            require_tls: false,
            sender_auth: None,
            origin,
            release_at: None,
        }
    }

    fn body(subject: &str) -> Vec<u8> {
        format!("From: ann@remote.test\r\nSubject: {subject}\r\n\r\nhello\r\n").into_bytes()
    }

    async fn count(mail: &Mail, a: &Account, role: Role) -> u32 {
        let mb = mail
            .store()
            .mailbox_by_role(a.id, role)
            .await
            .unwrap()
            .unwrap();
        mail.store()
            .mailbox_counts(a.id, mb.id)
            .await
            .unwrap()
            .messages
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn filters_reject_discard_and_file_into() {
        let (mail, joe, _dir) = setup().await;
        let trace = Trace {
            helo: "client.remote.test".into(),
            peer: "192.0.2.7".parse().unwrap(),
            with: "ESMTP".into(),
        };
        let r = mail
            .deliver(
                envelope(&joe, Origin::Inbound),
                Some(&trace),
                body("reject"),
            )
            .await;
        assert!(
            matches!(r, Err(DeliveryError::Rejected { code: 550, .. })),
            "{r:?}"
        );
        let r = mail
            .deliver(
                envelope(&joe, Origin::Inbound),
                Some(&trace),
                body("discard"),
            )
            .await
            .unwrap();
        assert_eq!((r.delivered, r.dropped), (0, 1));
        assert_eq!(count(&mail, &joe, Role::Inbox).await, 0);

        mail.deliver(envelope(&joe, Origin::Inbound), Some(&trace), body("junk"))
            .await
            .unwrap();
        assert_eq!(count(&mail, &joe, Role::Junk).await, 1);
        let junk = mail
            .store()
            .mailbox_by_role(joe.id, Role::Junk)
            .await
            .unwrap()
            .unwrap();
        let entry = &mail.store().list_messages(joe.id, junk.id).await.unwrap()[0];
        assert!(entry.has_keyword("$Junk"));
        // The trace fields were added before the store saw it.
        let raw = mail
            .store()
            .read_blob(joe.id, &entry.blob_id)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with(
            "Return-Path: <ann@remote.test>\r\nReceived: from client.remote.test ([192.0.2.7])"
        ));
        assert!(text.contains("for <joe@example.test>"));
        assert!(
            !text.contains("Message-ID"),
            "inbound mail is not completed"
        );

        // A missing mailbox means INBOX, never a lost message.
        mail.deliver(
            envelope(&joe, Origin::Inbound),
            Some(&trace),
            body("nowhere"),
        )
        .await
        .unwrap();
        assert_eq!(count(&mail, &joe, Role::Inbox).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_submission_is_completed_and_copied_to_sent() {
        let (mail, joe, _dir) = setup().await;
        let mut env = envelope(
            &joe,
            Origin::Submission {
                account: joe.id,
                save_copy: true,
            },
        );
        env.mail_from = "joe@example.test".into();
        env.remote = vec![OutboundRecipient {
            address: "ann@remote.test".into(),
            notify: Default::default(),
            orcpt: None,
        }];
        let own = b"From: Joe <joe@example.test>\r\nSubject: hello\r\n\r\nhello\r\n".to_vec();
        let r = mail.deliver(env, None, own).await.unwrap();
        assert_eq!((r.delivered, r.queued), (2, 1));
        assert_eq!(count(&mail, &joe, Role::Sent).await, 1);
        let sent = mail
            .store()
            .mailbox_by_role(joe.id, Role::Sent)
            .await
            .unwrap()
            .unwrap();
        let entry = &mail.store().list_messages(joe.id, sent.id).await.unwrap()[0];
        assert!(entry.has_keyword("\\Seen"));
        let raw = mail
            .store()
            .read_blob(joe.id, &entry.blob_id)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("\r\nDate: "));
        assert!(text.contains("@mx.example.test>\r\n"));
        assert_eq!(mail.store().queue_list().await.unwrap().len(), 1);
    }
}
