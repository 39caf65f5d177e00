//! Checks of a whole message, once, before it is stored or queued: a virus
//! scanner, the spam rules. Where a [`crate::filter::Filter`] decides per
//! recipient on the prepared message, a [`Screen`] sees the raw bytes once
//! per message and may refuse the message outright (for every recipient,
//! at SMTP time) or add header fields (`X-Spam-Status`), which go in front
//! of the message before it is prepared, so the stored copy carries them.
//! `Mail::screen` (below) runs them in order for `Mail::deliver`.

use crate::delivery::{DeliveryError, Envelope, Trace};
use crate::Mail;
use async_trait::async_trait;

/// What a screen is shown.
pub struct ScreenInput<'a> {
    /// The message as the client sent it (with our
    /// `Authentication-Results` in front when sender authentication ran).
    pub raw: &'a [u8],
    pub envelope: &'a Envelope,
    /// How it reached us, when it came over the network.
    pub trace: Option<&'a Trace>,
}

/// What one screen found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Screening {
    /// Refuse the message: a reply code, an RFC 3463 status and a text.
    pub refuse: Option<(u16, String, String)>,
    /// Header fields to add, each a complete `Name: value\r\n`.
    pub fields: Vec<String>,
    /// Header fields to remove from the message as it arrived first (the
    /// ones this screen writes, which only it may write).
    pub remove_fields: Vec<&'static str>,
    /// A spam score and the rules that made it, for the filters after.
    pub spam: Option<SpamScore>,
    /// The whole message, changed (a milter's header and body changes);
    /// later screens and the Store see this instead.
    pub rewrite: Option<Vec<u8>>,
    /// Accept the message and store it nowhere (a milter's discard).
    pub discard: bool,
    /// Deliver it into every recipient's Junk (a milter's quarantine).
    pub quarantine: bool,
}

/// A message's spam score, as the rules saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpamScore {
    pub score: f64,
    /// The rules that fired, with their points.
    pub rules: Vec<(String, f64)>,
    /// The message's tokens, for each recipient's classifier.
    pub tokens: Vec<u64>,
}

impl Screening {
    pub fn pass() -> Screening {
        Screening::default()
    }

    pub fn refuse(code: u16, status: &str, text: impl Into<String>) -> Screening {
        Screening {
            refuse: Some((code, status.into(), text.into())),
            ..Screening::default()
        }
    }
}

/// A whole-message check of the delivery pipeline.
#[async_trait]
pub trait Screen: Send + Sync {
    /// For logs: which screen decided.
    fn name(&self) -> &str;
    async fn screen(&self, input: &ScreenInput<'_>) -> Screening;
}

/// What the screens made of a message.
#[derive(Default)]
pub(crate) struct Screened {
    /// The message to store: changed by filters, with their fields.
    pub body: Vec<u8>,
    pub spam: Option<SpamScore>,
    pub discard: bool,
    pub quarantine: bool,
}

impl Mail {
    /// Runs the screens over the whole message: a refusal ends delivery
    /// for everyone; a screen may change the message (later screens see
    /// the change), add fields in front of it, discard it or send it to
    /// Junk.
    pub(crate) async fn screen(
        &self,
        envelope: &Envelope,
        trace: Option<&Trace>,
        mut body: Vec<u8>,
    ) -> Result<Screened, DeliveryError> {
        let mut screened = Screened::default();
        let mut fields = String::new();
        let mut remove: Vec<&str> = Vec::new();
        for screen in &self.screens {
            let input = ScreenInput {
                raw: &body,
                envelope,
                trace,
            };
            let found = screen.screen(&input).await;
            if let Some((code, status, text)) = found.refuse {
                tracing::info!(
                    "screen {} refused a message: {code} {status} {text}",
                    screen.name()
                );
                return Err(DeliveryError::Rejected { code, status, text });
            }
            if found.discard {
                screened.discard = true;
                break;
            }
            if let Some(changed) = found.rewrite {
                body = changed;
            }
            screened.quarantine |= found.quarantine;
            found.fields.iter().for_each(|f| fields.push_str(f));
            remove.extend(found.remove_fields);
            screened.spam = found.spam.or(screened.spam);
        }
        if !remove.is_empty() {
            let doomed = |name: &[u8], _: &[u8]| {
                remove
                    .iter()
                    .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
            };
            if let Some(kept) = crate::fields::without_fields(&body, doomed) {
                body = kept;
            }
        }
        if fields.is_empty() {
            screened.body = body;
        } else {
            screened.body = Vec::with_capacity(fields.len() + body.len());
            screened.body.extend_from_slice(fields.as_bytes());
            screened.body.extend_from_slice(&body);
        }
        Ok(screened)
    }
}
