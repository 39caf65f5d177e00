//! What the sender hears (RFC 3461 §4.1 NOTIFY, RFC 3464): failure
//! reports unless NOTIFY=NEVER, success reports with NOTIFY=SUCCESS
//! ("relayed" past a next hop that does not report), one delay notice per
//! message; delivered to a local sender's INBOX, queued with the null
//! sender for a remote one, never sent for a bounce.

use super::dsn::{self, Notice};
use super::Worker;
use std::collections::HashMap;
use tern_store::{
    AttemptOutcome, Delivery, DeliveryTarget, DsnNotify, Outbound, OutboundRecipient,
    QueuedMessage, RecipientAttempt,
};

/// The enhanced status of a temporary error as it stands (`4.x.y`), or a
/// generic one, for delay notices.
pub(super) fn status_of_temporary(error: &str) -> String {
    status_of(error).replacen('5', "4", 1)
}

/// The enhanced status in a recorded error (`smtp; 550 5.1.1 ...`), or a
/// generic permanent one.
pub(super) fn status_of(error: &str) -> String {
    error
        .split_ascii_whitespace()
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|s| s.replacen('4', "5", 1))
        .unwrap_or_else(|| "5.0.0".into())
}

impl Worker {
    /// The notices the sender asked for (RFC 3461 §4.1 NOTIFY): failures
    /// unless NEVER, successes only with SUCCESS — "relayed" when the next
    /// hop takes over reporting without DSN support (RFC 3464 §2.3.3).
    pub(super) fn reports(
        &self,
        msg: &QueuedMessage,
        attempts: &[RecipientAttempt],
        relayed_to: &HashMap<String, String>,
    ) -> Vec<Notice> {
        let submitted = |address: &str| {
            msg.outbound
                .recipients
                .iter()
                .find(|r| r.address.eq_ignore_ascii_case(address))
        };
        let notify = |address: &str| submitted(address).map(|r| r.notify).unwrap_or_default();
        let orcpt = |address: &str| submitted(address).and_then(|r| r.orcpt.clone());
        attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                AttemptOutcome::Failed { error } if notify(&a.address).failure => Some(Notice {
                    action: "failed",
                    original_recipient: orcpt(&a.address),
                    recipient: a.address.clone(),
                    status: status_of(error),
                    diagnostic: error.clone(),
                    remote_mta: None,
                }),
                AttemptOutcome::Delivered if notify(&a.address).success => {
                    let relayed = relayed_to.get(&a.address);
                    Some(Notice {
                        action: if relayed.is_some() {
                            "relayed"
                        } else {
                            "delivered"
                        },
                        original_recipient: orcpt(&a.address),
                        recipient: a.address.clone(),
                        status: "2.0.0".into(),
                        diagnostic: "smtp; 250 accepted".into(),
                        remote_mta: relayed.cloned(),
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// One "delayed" notice per message (RFC 3464 §2.3.3) for recipients
    /// still deferred `delay_notice_secs` after submission, unless their
    /// NOTIFY left DELAY out.
    pub(super) fn delay_notices(
        &self,
        msg: &QueuedMessage,
        attempts: &[RecipientAttempt],
        now: i64,
    ) -> Vec<Notice> {
        let after = self.config.delay_notice_secs as i64;
        if after == 0 || msg.delay_notified || now < msg.created_at + after {
            return Vec::new();
        }
        attempts
            .iter()
            .filter_map(|a| {
                let AttemptOutcome::Deferred { error, .. } = &a.outcome else {
                    return None;
                };
                let submitted = msg
                    .outbound
                    .recipients
                    .iter()
                    .find(|r| r.address.eq_ignore_ascii_case(&a.address));
                if !submitted.map(|r| r.notify).unwrap_or_default().delay {
                    return None;
                }
                Some(Notice {
                    action: "delayed",
                    original_recipient: submitted.and_then(|r| r.orcpt.clone()),
                    recipient: a.address.clone(),
                    status: status_of_temporary(error),
                    diagnostic: error.clone(),
                    remote_mta: None,
                })
            })
            .collect()
    }

    /// A delivery status notification for `failures` to the sender: into
    /// a local sender's INBOX, through the queue to a remote one, to nobody
    /// for the null sender. Best effort: the failures are recorded already.
    pub(super) async fn bounce(
        &self,
        outbound: &Outbound,
        failures: &[Notice],
        raw: &[u8],
        now: i64,
    ) {
        if outbound.mail_from.is_empty() {
            return;
        }
        let report = dsn::failure_report(
            self.mail.hostname(),
            &outbound.mail_from,
            failures,
            raw,
            outbound.ret,
            outbound.env_id.as_deref(),
            now,
        );
        let prepared = match tern_mail::prepare(report).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("outbound: building a bounce: {e}");
                return;
            }
        };
        let store = self.mail.store();
        let result = match outbound.account_id {
            Some(account) => store
                .deliver(Delivery {
                    message: prepared,
                    recipients: vec![DeliveryTarget::inbox(account)],
                    received_at: now,
                })
                .await
                .map(|_| ()),
            None => store
                .accept(
                    Delivery {
                        message: prepared,
                        recipients: Vec::new(),
                        received_at: now,
                    },
                    Some(Outbound {
                        mail_from: String::new(),
                        recipients: vec![OutboundRecipient {
                            address: outbound.mail_from.clone(),
                            notify: DsnNotify {
                                success: false,
                                failure: false,
                                delay: false,
                            },
                            orcpt: None,
                        }],
                        env_id: None,
                        ret: None,
                        account_id: None,
                        require_tls: false,
                        release_at: None,
                    }),
                )
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            tracing::warn!(
                "outbound: delivering a bounce to {}: {e}",
                outbound.mail_from
            );
        }
    }
}
