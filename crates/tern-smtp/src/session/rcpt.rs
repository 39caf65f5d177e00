//! RCPT TO (RFC 5321 §4.1.1.3): one recipient of the transaction.
//!
//! A recipient at one of our domains must exist now (550 5.1.1 otherwise:
//! refused here, never bounced later). Any other domain is relaying, which
//! needs AUTH or a client in `relay_networks` (550 5.7.1 otherwise) —
//! whatever the address looks like: the parser gives the real domain, and a
//! `%`, `!` or quoted `@` in a local part never changes it.

use super::Session;
use crate::command::{RcptParams, Recipient};
use crate::path::Domain;
use crate::reply::Reply;
use tern_store::{DsnNotify, OutboundRecipient};

impl Session {
    pub(super) async fn rcpt(&mut self, to: Recipient, params: RcptParams) {
        let Some(tx) = &self.tx else {
            return self.reply(Reply::new(503, "5.5.1", "MAIL FROM first"));
        };
        if tx.accepted_rcpts >= self.srv.limits.max_recipients {
            let max = self.srv.limits.max_recipients;
            return self.reply(Reply::new(
                452,
                "4.5.3",
                format!("too many recipients; at most {max} per message"),
            ));
        }
        let smtputf8 = tx.params.smtputf8;
        let directory = self.srv.mail.directory();
        let (local, domain, shown) = match &to {
            Recipient::Postmaster => {
                // Bare <Postmaster>: the postmaster of our first domain.
                match directory.postmaster_domain().await {
                    Ok(domain) => match domain {
                        Some(d) => (
                            "postmaster".to_string(),
                            Domain::Name(d),
                            "Postmaster".to_string(),
                        ),
                        None => return self.reply(Reply::new(550, "5.1.1", "no postmaster here")),
                    },
                    Err(e) => return self.temporary_failure("listing domains", e),
                }
            }
            Recipient::Mailbox(m) => {
                if !smtputf8 && !m.address().is_ascii() {
                    return self.reply(Reply::new(
                        553,
                        "5.6.7",
                        "non-ASCII address needs SMTPUTF8 on MAIL FROM",
                    ));
                }
                (m.local.clone(), m.domain.clone(), m.address())
            }
        };
        let local_domain = match &domain {
            Domain::Name(name) => match directory.is_local_domain(name).await {
                Ok(is) => is.then_some(name.clone()),
                Err(e) => return self.temporary_failure("checking the domain", e),
            },
            Domain::Literal(_) => None,
        };
        let notify = params.notify.unwrap_or_default();
        if let Some(domain) = local_domain {
            let expansion = match directory.resolve(&local, &domain).await {
                Ok(Some(e)) => e,
                Ok(None) => {
                    return self.reply(Reply::new(
                        550,
                        "5.1.1",
                        format!("<{shown}>: no such user here"),
                    ))
                }
                Err(e) => return self.temporary_failure("resolving a recipient", e),
            };
            if let Some(wait) = self.greylisted(&shown).await {
                return self.reply(wait);
            }
            let Some(tx) = self.tx.as_mut() else { return };
            for account in expansion.accounts {
                if !tx.local.iter().any(|(a, _)| *a == account) {
                    tx.local.push((account, shown.clone()));
                }
            }
            // Forwarding by one of our aliases is ours to do, AUTH or not.
            if !expansion.remote.is_empty() && tx.forwarded_by.is_none() {
                tx.forwarded_by = Some(domain.clone());
            }
            for address in expansion.remote {
                push_remote(&mut tx.remote, address, notify, None);
            }
            tx.accepted_rcpts += 1;
            return self.reply(Reply::new(250, "2.1.5", format!("<{shown}> OK")));
        }
        let may_relay = self.account.is_some() || self.srv.smtp.may_relay(self.peer.ip());
        if !may_relay {
            return self.reply(Reply::new(
                550,
                "5.7.1",
                format!("<{shown}>: relaying denied; authenticate first"),
            ));
        }
        let Some(tx) = self.tx.as_mut() else { return };
        push_remote(&mut tx.remote, shown.clone(), notify, params.orcpt);
        tx.accepted_rcpts += 1;
        self.reply(Reply::new(
            250,
            "2.1.5",
            format!("<{shown}> OK, will relay"),
        ));
    }

    pub(super) fn temporary_failure(&mut self, doing: &str, e: impl std::fmt::Display) {
        tracing::error!("smtp {}: {doing}: {e}", self.peer);
        self.reply(Reply::new(
            451,
            "4.3.0",
            "temporary failure; try again later",
        ));
    }
}

fn push_remote(
    remote: &mut Vec<OutboundRecipient>,
    address: String,
    notify: DsnNotify,
    orcpt: Option<String>,
) {
    if !remote
        .iter()
        .any(|r| r.address.eq_ignore_ascii_case(&address))
    {
        remote.push(OutboundRecipient {
            address,
            notify,
            orcpt,
        });
    }
}
