//! The vacation response (RFC 8621 §8, JMAP `VacationResponse`): while a
//! user has it on (and between its dates), mail arriving for them from
//! outside is answered automatically — at most once per correspondent a
//! week, never to a bounce, a mailing list, bulk mail or another automatic
//! message (RFC 3834 §2), and marked `Auto-Submitted: auto-replied` so
//! other responders do not answer it in turn.
//!
//! The settings are one JSON value per account in the Store
//! (`account_setting` "vacation"); the reply goes out through the one
//! submission path ([`Mail::submit`]).

use crate::delivery::{Envelope, Origin};
use crate::headers::{new_id, now, parse_utc_date, rfc5322_date};
use crate::Mail;
use serde::{Deserialize, Serialize};
use tern_store::message::PreparedMessage;
use tern_store::{AccountId, StoreError};

/// The setting's name in the Store.
pub const SETTING: &str = "vacation";
/// One reply per correspondent in this many seconds (RFC 3834 §2: "a
/// period of several days"; Sieve vacation's default is seven).
pub const PERIOD_SECS: i64 = 7 * 86_400;

/// The vacation response, as JMAP names its properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Vacation {
    pub is_enabled: bool,
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub subject: Option<String>,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
}

impl Vacation {
    /// On at `now`: enabled, and within its dates if it has them.
    pub fn active(&self, now: i64) -> bool {
        let after_start = self
            .from_date
            .as_deref()
            .and_then(parse_utc_date)
            .is_none_or(|from| now >= from);
        let before_end = self
            .to_date
            .as_deref()
            .and_then(parse_utc_date)
            .is_none_or(|to| now < to);
        self.is_enabled && after_start && before_end
    }
}

impl Mail {
    /// The account's vacation response (the default, off, when unset or
    /// unreadable).
    pub async fn vacation(&self, account: AccountId) -> Result<Vacation, StoreError> {
        let text = self.store.account_setting(account, SETTING).await?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    pub async fn set_vacation(&self, account: AccountId, v: &Vacation) -> Result<(), StoreError> {
        let text = serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.store
            .set_account_setting(account, SETTING, Some(&text))
            .await
    }

    /// Before a delivery from outside is stored: the local recipients
    /// whose vacation response is on and may answer this message, with
    /// what the replies need of it; `None` when nobody will answer.
    pub(crate) async fn vacation_responders(
        &self,
        envelope: &Envelope,
        message: &PreparedMessage,
    ) -> Option<Responders> {
        if envelope.origin != Origin::Inbound || envelope.local.is_empty() {
            return None;
        }
        let at = now();
        let mut accounts = Vec::new();
        for rcpt in &envelope.local {
            match self.vacation(rcpt.account_id).await {
                Ok(v) if v.active(at) => accounts.push((rcpt.account_id, v)),
                Ok(_) => {}
                Err(e) => tracing::warn!("vacation of {}: {e}", rcpt.account_id),
            }
        }
        if accounts.is_empty() || !may_auto_reply(envelope, message) {
            return None;
        }
        let summary = &message.parsed().summary;
        Some(Responders {
            accounts,
            subject: summary.subject.clone(),
            message_id: summary.message_id.clone(),
            references: summary.references.clone(),
            at,
        })
    }

    /// After the delivery is stored: each responder's reply. Failures are
    /// logged; the delivery stands.
    pub(crate) async fn auto_reply(&self, envelope: &Envelope, responders: Responders) {
        for (account, vacation) in &responders.accounts {
            if let Err(e) = self
                .send_auto_reply(*account, envelope, &responders, vacation)
                .await
            {
                tracing::warn!("vacation reply for {account}: {e}");
            }
        }
    }

    async fn send_auto_reply(
        &self,
        account: AccountId,
        envelope: &Envelope,
        original: &Responders,
        vacation: &Vacation,
    ) -> Result<(), String> {
        let at = original.at;
        let account = self
            .store
            .account(account)
            .await
            .map_err(|e| e.to_string())?;
        let sender = envelope.mail_from.as_str();
        if sender.eq_ignore_ascii_case(&account.address) {
            return Ok(());
        }
        if !self
            .store
            .auto_reply_due(account.id, sender, at, PERIOD_SECS)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        let subject = vacation.subject.clone().unwrap_or_else(|| {
            if original.subject.is_empty() {
                "Auto: out of office".to_string()
            } else {
                format!("Auto: {}", original.subject)
            }
        });
        let subject = subject.replace(['\r', '\n'], " ");
        let text = vacation
            .text_body
            .clone()
            .unwrap_or_else(|| "I am away and will read your message when I am back.".into());
        let mut reply = format!(
            "From: <{from}>\r\nTo: <{sender}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Message-ID: <{id}@{host}>\r\nAuto-Submitted: auto-replied\r\n",
            from = account.address,
            date = rfc5322_date(at),
            id = new_id(),
            host = self.hostname(),
        );
        if let Some(id) = &original.message_id {
            let mut references = original.references.clone();
            references.push(id.clone());
            reply.push_str(&format!("In-Reply-To: <{id}>\r\n"));
            reply.push_str(&format!("References: <{}>\r\n", references.join("> <")));
        }
        reply.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
        reply.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        for line in text.lines() {
            reply.push_str(line);
            reply.push_str("\r\n");
        }
        self.submit(
            &account,
            &account.address,
            &[sender.to_string()],
            reply.into_bytes(),
            false,
            1,
        )
        .await
        .map(|_| tracing::info!("vacation reply from {} to <{sender}>", account.address))
        .map_err(|e| e.to_string())
    }
}

/// The recipients who will answer a message, and what of it the replies
/// quote.
pub(crate) struct Responders {
    accounts: Vec<(AccountId, Vacation)>,
    subject: String,
    message_id: Option<String>,
    references: Vec<String>,
    at: i64,
}

/// RFC 3834 §2: whether a message may be answered automatically at all.
fn may_auto_reply(envelope: &Envelope, message: &PreparedMessage) -> bool {
    let sender = envelope.mail_from.to_ascii_lowercase();
    let local = sender.split('@').next().unwrap_or("");
    if sender.is_empty()
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || [
            "mailer-daemon",
            "postmaster",
            "noreply",
            "no-reply",
            "listserv",
            "majordomo",
        ]
        .contains(&local)
    {
        return false;
    }
    let header = header_section(message.raw());
    for line in unfolded(&header) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (
            name.trim().to_ascii_lowercase(),
            value.trim().to_ascii_lowercase(),
        );
        match name.as_str() {
            "auto-submitted" if value != "no" => return false,
            "precedence" if ["bulk", "list", "junk"].contains(&value.as_str()) => return false,
            n if n.starts_with("list-") => return false,
            "x-auto-response-suppress" | "x-autoreply" | "x-autorespond" => return false,
            _ => {}
        }
    }
    true
}

fn header_section(raw: &[u8]) -> String {
    let end = crate::fields::header_fields(raw)
        .last()
        .map_or(0, |(r, _)| r.end);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn unfolded(header: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in header.lines() {
        match (line.starts_with([' ', '\t']), out.last_mut()) {
            (true, Some(last)) => last.push_str(line),
            _ => out.push(line.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(from: &str) -> Envelope {
        let mut e = crate::test_support::inbound_envelope();
        e.mail_from = from.into();
        e
    }

    fn message(header: &str) -> PreparedMessage {
        PreparedMessage::new(format!("{header}Subject: hi\r\n\r\nbody\r\n").into_bytes())
    }

    #[test]
    fn who_may_be_answered() {
        assert!(may_auto_reply(&envelope("ann@remote.test"), &message("")));
        assert!(!may_auto_reply(&envelope(""), &message("")));
        assert!(!may_auto_reply(
            &envelope("owner-list@remote.test"),
            &message("")
        ));
        assert!(!may_auto_reply(
            &envelope("list-request@remote.test"),
            &message("")
        ));
        assert!(!may_auto_reply(
            &envelope("MAILER-DAEMON@remote.test"),
            &message("")
        ));
        assert!(!may_auto_reply(
            &envelope("ann@remote.test"),
            &message("Auto-Submitted: auto-replied\r\n")
        ));
        assert!(may_auto_reply(
            &envelope("ann@remote.test"),
            &message("Auto-Submitted: no\r\n")
        ));
        assert!(!may_auto_reply(
            &envelope("ann@remote.test"),
            &message("Precedence: bulk\r\n")
        ));
        assert!(!may_auto_reply(
            &envelope("ann@remote.test"),
            &message("List-Id: <l.remote.test>\r\n")
        ));
    }

    #[test]
    fn dates_bound_the_response() {
        let mut v = Vacation {
            is_enabled: true,
            from_date: Some("2026-12-01T00:00:00Z".into()),
            to_date: Some("2026-12-10T00:00:00Z".into()),
            ..Vacation::default()
        };
        let dec = |d: i64| 1_796_083_200 + (d - 1) * 86_400; // 2026-12-d
        assert!(!v.active(dec(1) - 1));
        assert!(v.active(dec(5)));
        assert!(!v.active(dec(10)));
        v.is_enabled = false;
        assert!(!v.active(dec(5)));
    }
}
