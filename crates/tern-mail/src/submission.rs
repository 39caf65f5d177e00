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

use crate::headers::{has_header, rfc5322_date};
use crate::Mail;
use tern_store::{Account, StoreError};

impl Mail {
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
