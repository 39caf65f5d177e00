//! The content rules of the spam score: what a message's header and body
//! say about it, each rule a name (as SpamAssassin names them, for the
//! `X-Spam-Status` field) and its points. Pure functions of the parsed
//! message and the envelope; the DNS block lists are in [`super::lists`].

use crate::delivery::Envelope;
use crate::sender_auth::AuthResult;
use mail_parser::{Message, MimeHeaders, PartType};

/// The Generic Test for Unsolicited Bulk Email: a message carrying it is
/// spam by definition (SpamAssassin's GTUBE), for testing a setup.
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// Phrases common in spam and rare in mail people want; each found adds
/// [`PHRASE_POINTS`], up to [`PHRASES_MAX`].
const SPAM_PHRASES: &[&str] = &[
    "100% free",
    "act now",
    "apply now",
    "best price",
    "bitcoin investment",
    "cash bonus",
    "cheap viagra",
    "claim your prize",
    "click here",
    "congratulations, you",
    "double your",
    "earn extra cash",
    "exclusive deal",
    "get rich",
    "guaranteed income",
    "increase your sales",
    "limited time offer",
    "lose weight",
    "lottery winner",
    "million dollars",
    "no credit check",
    "once in a lifetime",
    "risk-free",
    "special promotion",
    "this is not spam",
    "unsubscribe here",
    "urgent response",
    "viagra",
    "wire transfer",
    "you have been selected",
    "you have won",
];
const PHRASE_POINTS: f64 = 0.7;
const PHRASES_MAX: f64 = 3.5;

/// The rules that fire for `message`, with their points.
pub fn content_rules(
    message: &Message<'_>,
    raw: &[u8],
    envelope: &Envelope,
) -> Vec<(&'static str, f64)> {
    let mut hits = Vec::new();
    let body = body_text(message);
    if memfind(raw, GTUBE.as_bytes()) {
        hits.push(("GTUBE", 1000.0));
    }
    authentication(envelope, &mut hits);
    header_rules(message, envelope, &mut hits);
    html_rules(message, &mut hits);
    let subject = message.subject().unwrap_or_default();
    let haystack = format!("{subject}\n{body}").to_lowercase();
    let phrases = SPAM_PHRASES
        .iter()
        .filter(|p| haystack.contains(*p))
        .count() as f64;
    if phrases > 0.0 {
        hits.push(("SPAM_PHRASES", (phrases * PHRASE_POINTS).min(PHRASES_MAX)));
    }
    hits
}

/// What sender authentication found, in points.
fn authentication(envelope: &Envelope, hits: &mut Vec<(&'static str, f64)>) {
    let Some(auth) = &envelope.sender_auth else {
        return;
    };
    match auth.spf {
        AuthResult::Fail => hits.push(("SPF_FAIL", 3.0)),
        AuthResult::SoftFail => hits.push(("SPF_SOFTFAIL", 1.5)),
        AuthResult::Pass => hits.push(("SPF_PASS", -0.5)),
        _ => {}
    }
    match auth.dkim {
        AuthResult::Pass => hits.push(("DKIM_VALID", -0.5)),
        AuthResult::Fail | AuthResult::Neutral | AuthResult::PermError => {
            hits.push(("DKIM_INVALID", 1.0))
        }
        _ => {}
    }
    match auth.dmarc {
        AuthResult::Fail => hits.push(("DMARC_FAIL", 3.5)),
        AuthResult::Pass => hits.push(("DMARC_PASS", -1.0)),
        _ => {}
    }
    if auth.spf != AuthResult::Pass && auth.dkim != AuthResult::Pass {
        hits.push(("NO_AUTHENTICATION", 1.0));
    }
}

fn header_rules(message: &Message<'_>, envelope: &Envelope, hits: &mut Vec<(&'static str, f64)>) {
    if message.date().is_none() {
        hits.push(("MISSING_DATE", 1.0));
    }
    match message.message_id() {
        None => hits.push(("MISSING_MID", 1.5)),
        Some(id) => match id.rsplit_once('@') {
            None => hits.push(("INVALID_MSGID", 1.5)),
            // Spammers write Message-IDs in the recipient's domain, which
            // the recipient's own servers never give to mail from outside.
            Some((_, domain)) => {
                let domain = domain.trim_end_matches('>').to_ascii_lowercase();
                let recipient_domain = envelope.local.iter().any(|r| {
                    r.address
                        .rsplit_once('@')
                        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain))
                });
                let sender_domain = envelope
                    .mail_from
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain));
                if recipient_domain && !sender_domain {
                    hits.push(("FORGED_MSGID", 2.0));
                }
            }
        },
    }
    let from_domain = first_address(message.from()).and_then(domain_of);
    let reply_domain = first_address(message.reply_to()).and_then(domain_of);
    if let (Some(from), Some(reply)) = (&from_domain, &reply_domain) {
        if !from.eq_ignore_ascii_case(reply) {
            hits.push(("FREEMAIL_REPLYTO_DIFFERS", 1.0));
        }
    }
    if from_domain.is_none() {
        hits.push(("MISSING_FROM", 1.5));
    }
    match message.subject() {
        None => hits.push(("MISSING_SUBJECT", 0.5)),
        Some(subject) => {
            let letters: Vec<char> = subject.chars().filter(|c| c.is_alphabetic()).collect();
            if letters.len() >= 10 && letters.iter().all(|c| c.is_uppercase()) {
                hits.push(("SUBJ_ALL_CAPS", 1.0));
            }
            if subject.contains("!!") {
                hits.push(("SUBJ_EXCLAIM", 0.5));
            }
        }
    }
}

/// HTML without a plain-text alternative, and remote images in it (the
/// mark of bulk mail tracking its readers).
fn html_rules(message: &Message<'_>, hits: &mut Vec<(&'static str, f64)>) {
    let mut has_text = false;
    let mut html_remote_image = false;
    let mut has_html = false;
    for part in &message.parts {
        match &part.body {
            PartType::Text(_) if !part.is_content_type("text", "calendar") => has_text = true,
            PartType::Html(html) => {
                has_html = true;
                let lower = html.to_lowercase();
                html_remote_image |= lower.contains("<img")
                    && ["src=\"http", "src='http", "src=http"]
                        .iter()
                        .any(|s| lower.contains(s));
            }
            _ => {}
        }
    }
    if has_html && !has_text {
        hits.push(("MIME_HTML_ONLY", 1.0));
        if html_remote_image {
            hits.push(("HTML_REMOTE_IMAGE", 1.5));
        }
    }
}

/// The text of the message's body parts, HTML included, for phrase and
/// link searches (bounded: the first 256 KiB).
pub fn body_text(message: &Message<'_>) -> String {
    const MAX: usize = 256 * 1024;
    let mut text = String::new();
    for part in &message.parts {
        let piece = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.as_ref(),
            _ => continue,
        };
        let room = MAX.saturating_sub(text.len());
        if room == 0 {
            break;
        }
        let mut cut = piece.len().min(room);
        while !piece.is_char_boundary(cut) {
            cut -= 1;
        }
        text.push_str(&piece[..cut]);
        text.push('\n');
    }
    text
}

fn first_address<'a>(address: Option<&'a mail_parser::Address<'a>>) -> Option<&'a str> {
    address?.first()?.address.as_deref()
}

fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

fn memfind(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::LocalRecipient;
    use mail_parser::MessageParser;

    fn fired(raw: &str) -> Vec<&'static str> {
        let mut envelope = crate::test_support::inbound_envelope();
        envelope.local.push(LocalRecipient {
            account_id: tern_store::AccountId(1),
            address: "bob@example.test".into(),
        });
        let message = MessageParser::default().parse(raw.as_bytes()).unwrap();
        content_rules(&message, raw.as_bytes(), &envelope)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    #[test]
    fn a_plain_personal_message_fires_nothing() {
        let raw = "From: Ann <ann@remote.test>\r\nTo: bob@example.test\r\nSubject: lunch?\r\n\
                   Date: Sun, 6 Dec 2026 12:00:00 +0000\r\nMessage-ID: <1@remote.test>\r\n\r\n\
                   Shall we meet at noon?\r\n";
        assert!(fired(raw).is_empty(), "{:?}", fired(raw));
    }

    #[test]
    fn gtube_and_the_usual_signs() {
        let raw = format!(
            "From: <promo@remote.test>\r\nReply-To: <x@other.test>\r\nSubject: YOU HAVE WON A PRIZE!!\r\n\
             Message-ID: <abc@example.test>\r\nContent-Type: text/html\r\n\r\n\
             <p>Click here <img src=\"http://t.test/p.gif\"> {GTUBE}</p>\r\n"
        );
        let hits = fired(&raw);
        for rule in [
            "GTUBE",
            "MISSING_DATE",
            "FORGED_MSGID",
            "FREEMAIL_REPLYTO_DIFFERS",
            "SUBJ_ALL_CAPS",
            "SUBJ_EXCLAIM",
            "MIME_HTML_ONLY",
            "HTML_REMOTE_IMAGE",
            "SPAM_PHRASES",
        ] {
            assert!(hits.contains(&rule), "{rule} in {hits:?}");
        }
    }
}
