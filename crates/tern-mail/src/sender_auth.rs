//! What sender authentication concluded about an inbound message, in the
//! terms of RFC 8601 result values, for the filters after it: the spam
//! score reads it, and a DMARC `quarantine` sends the message to Junk.
//!
//! The checks themselves run where the facts are (the SMTP session knows
//! the client's address, its HELO and the envelope); this is their summary.

/// One method's result (RFC 8601 §2.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthResult {
    /// Not checked, or nothing to check (no record, no signature).
    #[default]
    None,
    Pass,
    Fail,
    /// SPF `~all`.
    SoftFail,
    Neutral,
    /// A DNS failure: the answer may differ later.
    TempError,
    /// A broken record or signature.
    PermError,
}

impl AuthResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::None => "none",
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }
}

/// The results for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderAuth {
    /// SPF of the MAIL FROM identity (of the HELO one for `<>`).
    pub spf: AuthResult,
    /// The best of the DKIM signatures.
    pub dkim: AuthResult,
    /// The `d=` domains of the signatures that passed.
    pub dkim_domains: Vec<String>,
    pub dmarc: AuthResult,
    pub arc: AuthResult,
    /// The author domain (`From:`) DMARC was evaluated for.
    pub from_domain: String,
    /// The author domain's DMARC policy asked for quarantine: the message
    /// goes to Junk.
    pub quarantine: bool,
}
