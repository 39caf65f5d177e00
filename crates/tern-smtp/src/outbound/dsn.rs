//! Delivery status notifications (RFC 3464): the bounce a sender gets for
//! recipients that could not be delivered — a `multipart/report` with a
//! human explanation, the machine-readable `message/delivery-status` and
//! the original message's header (or all of it with `RET=FULL`, RFC 3461
//! §4.3). Sent with the null sender, so nothing bounces a bounce.

use tern_store::DsnReturn;

/// One recipient the notification is about: failed, or delivered when
/// the sender asked to hear of it (NOTIFY=SUCCESS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `failed` or `relayed`/`delivered` (RFC 3464 §2.3.3 Action).
    pub action: &'static str,
    /// The submitter's ORCPT, as given (`rfc822;user@example.com`, RFC
    /// 3461 §4.2), reported as Original-Recipient.
    pub original_recipient: Option<String>,
    pub recipient: String,
    /// `5.1.1`: the remote server's enhanced status, or ours.
    pub status: String,
    /// What the remote server said (`smtp; 550 ...`), or why we gave up.
    pub diagnostic: String,
    /// The host that refused, if one did.
    pub remote_mta: Option<String>,
}

/// The whole notification message for `sender` about `failures` (and
/// successes asked for) of the message `original`.
pub fn failure_report(
    hostname: &str,
    sender: &str,
    failures: &[Notice],
    original: &[u8],
    ret: Option<DsnReturn>,
    env_id: Option<&str>,
    now: i64,
) -> Vec<u8> {
    let boundary = format!("tern-dsn-{}", tern_mail::headers::new_id());
    let all_good = failures.iter().all(|f| f.action != "failed");
    let delayed = all_good && failures.iter().any(|f| f.action == "delayed");
    let subject = if delayed {
        "Delayed Mail (still being retried)"
    } else if all_good {
        "Successful Mail Delivery Report"
    } else {
        "Undelivered Mail Returned to Sender"
    };
    let date = tern_mail::headers::rfc5322_date(now);
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{sender}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{}@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\r\n\
         This is a delivery status notification in MIME format.\r\n\r\n",
        tern_mail::headers::new_id()
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         This is the mail system at {hostname}.\r\n\r\n{}\r\n\r\n",
        if delayed {
            "Your message has not been delivered to these recipients yet.\r\n\
             Delivery is still being tried; you will be told if it fails for good."
        } else if all_good {
            "Your message was passed on to these recipients, as you asked to be told:"
        } else {
            "Your message could not be delivered to these recipients:"
        }
    ));
    for f in failures {
        out.push_str(&format!(
            "  <{}>: {}: {}\r\n",
            f.recipient,
            f.action,
            one_line(&f.diagnostic)
        ));
    }
    out.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; {hostname}\r\n"
    ));
    if let Some(id) = env_id {
        out.push_str(&format!("Original-Envelope-Id: {}\r\n", one_line(id)));
    }
    out.push_str(&format!("Arrival-Date: {date}\r\n"));
    for f in failures {
        out.push_str("\r\n");
        if let Some(orcpt) = &f.original_recipient {
            out.push_str(&format!("Original-Recipient: {}\r\n", one_line(orcpt)));
        }
        out.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            f.recipient, f.action, f.status
        ));
        if let Some(mta) = &f.remote_mta {
            out.push_str(&format!("Remote-MTA: dns; {}\r\n", one_line(mta)));
        }
        out.push_str(&format!("Diagnostic-Code: {}\r\n", one_line(&f.diagnostic)));
    }
    let mut bytes = out.into_bytes();
    let full = ret == Some(DsnReturn::Full);
    bytes.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: {}\r\n\r\n",
            if full {
                "message/rfc822"
            } else {
                "text/rfc822-headers"
            }
        )
        .as_bytes(),
    );
    if full {
        bytes.extend_from_slice(original);
    } else {
        bytes.extend_from_slice(header_of(original));
    }
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    bytes
}

/// The header block of a message (up to its blank line, included).
fn header_of(message: &[u8]) -> &[u8] {
    for (i, w) in message.windows(4).enumerate() {
        if w == b"\r\n\r\n" {
            return &message[..i + 4];
        }
    }
    message
}

/// A value on one line: line breaks become spaces (a peer's reply text
/// must not add header fields).
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_parses_as_multipart_report() {
        let original = b"From: ann@a.test\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let failures = [Notice {
            action: "failed",
            original_recipient: Some("rfc822;Nobody@B.test".into()),
            recipient: "nobody@b.test".into(),
            status: "5.1.1".into(),
            diagnostic: "smtp; 550 5.1.1 no such user\r\nInjected: header".into(),
            remote_mta: Some("relay.example".into()),
        }];
        let dsn = failure_report(
            "mx.a.test",
            "ann@a.test",
            &failures,
            original,
            None,
            Some("env1"),
            0,
        );
        let text = String::from_utf8(dsn.clone()).unwrap();
        assert!(text.contains(
            "Original-Recipient: rfc822;Nobody@B.test\r\nFinal-Recipient: rfc822; nobody@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ), "{text}");
        assert!(text.contains("Original-Envelope-Id: env1"));
        assert!(!text.contains("\r\nInjected: header"), "{text}");
        assert!(
            text.contains("Subject: hi"),
            "the original header is returned"
        );
        assert!(
            !text.contains("secret body"),
            "not the body without RET=FULL"
        );
        let parsed = tern_store::message::parse_message(&dsn);
        assert_eq!(parsed.structure.media_subtype, "report");
        assert_eq!(parsed.structure.children.len(), 3);
        let full = failure_report(
            "mx.a.test",
            "ann@a.test",
            &failures,
            original,
            Some(DsnReturn::Full),
            None,
            0,
        );
        assert!(String::from_utf8(full).unwrap().contains("secret body"));
    }
}
