//! `[spam]`: the built-in spam filter for mail from other servers — a
//! score from rules (sender authentication, DNS block lists, header and
//! body heuristics, GTUBE) plus each user's own Bayesian classifier, and
//! what each score means.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `[spam]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamConfig {
    /// Score mail from other servers at all.
    pub enabled: bool,
    /// From this score a message is marked: `X-Spam-Flag: YES` and the
    /// `$Junk` keyword.
    pub tag_score: Points,
    /// From this score it is delivered into the recipient's Junk mailbox.
    pub junk_score: Points,
    /// From this score it is refused at SMTP time (550 5.7.1); rules only,
    /// before any user's classifier.
    pub reject_score: Points,
    /// DNS block lists the client's address is looked up in (RFC 5782),
    /// e.g. `zen.spamhaus.org`; each listing adds `dnsbl_points`.
    pub dnsbl: Vec<String>,
    pub dnsbl_points: Points,
    /// Domain block lists the domains of links in the body are looked up
    /// in, e.g. `dbl.spamhaus.org`; each listed domain adds `uribl_points`.
    pub uribl: Vec<String>,
    pub uribl_points: Points,
    /// Each user's classifier, trained by what they move into and out of
    /// Junk (and the `$Junk` / `$NotJunk` keywords).
    pub bayes: bool,
    /// Greylisting (a first delivery attempt from an unknown client,
    /// sender and recipient is deferred for `greylist_delay_secs`).
    pub greylisting: bool,
    pub greylist_delay_secs: u64,
}

impl Default for SpamConfig {
    fn default() -> SpamConfig {
        SpamConfig {
            enabled: true,
            tag_score: Points(5.0),
            junk_score: Points(8.0),
            reject_score: Points(15.0),
            dnsbl: Vec::new(),
            dnsbl_points: Points(3.0),
            uribl: Vec::new(),
            uribl_points: Points(2.5),
            bayes: true,
            greylisting: false,
            greylist_delay_secs: 300,
        }
    }
}

/// A spam score, e.g. `5.0`: a number, compared and printed as one.
#[derive(Debug, Clone, Copy, Default, PartialOrd)]
pub struct Points(pub f64);

impl PartialEq for Points {
    fn eq(&self, other: &Points) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Points {}

impl Serialize for Points {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Points, D::Error> {
        // Whole numbers are written without a point (`tag_score = 5`).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            Float(f64),
            Int(i64),
        }
        let value = match Number::deserialize(d)? {
            Number::Float(f) => f,
            Number::Int(i) => i as f64,
        };
        if !value.is_finite() {
            return Err(serde::de::Error::custom("a score is a finite number"));
        }
        Ok(Points(value))
    }
}
