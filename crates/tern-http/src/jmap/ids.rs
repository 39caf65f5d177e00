//! JMAP ids of the Store's objects (RFC 8620 §1.2: letters, digits, `-`
//! and `_`). Emails, threads and mailboxes carry the ids IMAP shows for
//! them (OBJECTID, RFC 8474: `EMAILID (M1)`, `THREADID (T1)`, `MAILBOXID
//! (M1)`), so a client speaking both protocols sees one object under
//! one name.

use tern_store::{EmailId, MailboxId, ThreadId};

pub fn email_id(id: EmailId) -> String {
    format!("M{}", id.0)
}

pub fn parse_email_id(id: &str) -> Option<EmailId> {
    number(id, 'M').map(EmailId)
}

pub fn mailbox_id(id: MailboxId) -> String {
    format!("M{}", id.0)
}

pub fn parse_mailbox_id(id: &str) -> Option<MailboxId> {
    number(id, 'M').map(MailboxId)
}

pub fn thread_id(id: ThreadId) -> String {
    format!("T{}", id.0)
}

pub fn parse_thread_id(id: &str) -> Option<ThreadId> {
    number(id, 'T').map(ThreadId)
}

/// The number after `prefix`: digits only (no sign, no spaces), so one
/// object has one id.
fn number(id: &str, prefix: char) -> Option<i64> {
    let digits = id.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_forms() {
        assert_eq!(parse_email_id(&email_id(EmailId(42))), Some(EmailId(42)));
        assert_eq!(parse_thread_id("T7"), Some(ThreadId(7)));
        for bad in [
            "M",
            "M-1",
            "M+1",
            "m1",
            "M1 ",
            "T1",
            "M99999999999999999999",
        ] {
            assert_eq!(parse_email_id(bad), None, "{bad}");
        }
    }
}
