//! Each user's Bayesian classifier: tokens of a message, the probability
//! that it is spam given what the user taught (Robinson's per-token
//! estimate combined with Fisher's chi-square, as SpamBayes and
//! SpamAssassin do), and the [`Trainer`] that teaches it from the verdicts
//! the Store records when mail moves into or out of Junk.

use mail_parser::{Message, MessageParser, MimeHeaders};
use std::sync::Arc;
use std::time::Duration;
use tern_store::{StoreError, TrainRequest};

/// Messages of each class an account must have taught before its
/// classifier speaks.
pub const MIN_TRAINED: u64 = 5;
/// Tokens kept per message.
const MAX_TOKENS: usize = 3000;
/// The most telling tokens a verdict is made of.
const MAX_CLUES: usize = 150;

/// FNV-1a, 64 bits: stable across builds and platforms (tokens are stored
/// as hashes, so the hash must never change).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The tokens of a message: words of the subject and the body, the
/// author's domain, the domains of links, the kinds of parts.
pub fn tokens(message: &Message<'_>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let mut push = |prefix: &str, word: &str| {
        if out.len() < MAX_TOKENS {
            out.push(fnv1a(format!("{prefix}{word}").as_bytes()));
        }
    };
    for w in words(message.subject().unwrap_or_default()) {
        push("s:", &w);
    }
    if let Some(from) = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address.as_deref())
    {
        if let Some((_, domain)) = from.rsplit_once('@') {
            push("from:", &domain.to_ascii_lowercase());
        }
    }
    for part in &message.parts {
        if let Some(ct) = part.content_type() {
            let sub = ct.subtype().unwrap_or_default();
            push("ct:", &format!("{}/{sub}", ct.ctype()).to_ascii_lowercase());
        }
    }
    let body = super::rules::body_text(message);
    for domain in super::lists::link_domains(&body, 50) {
        push("url:", &domain);
    }
    for w in words(&body) {
        push("", &w);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Lower-case words of 3 to 30 characters.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '$' || c == '\''))
        .filter(|w| (3..=30).contains(&w.chars().count()))
        .map(str::to_lowercase)
}

/// The probability that a message with these token counts is spam; `None`
/// until the account has taught [`MIN_TRAINED`] of each kind.
pub fn classify(counts: &tern_store::BayesCounts) -> Option<f64> {
    let (nspam, nham) = (counts.spam_messages, counts.ham_messages);
    if nspam < MIN_TRAINED || nham < MIN_TRAINED {
        return None;
    }
    // Robinson's f(w): the token's spam probability, pulled towards 0.5
    // when it has been seen rarely (strength 1, prior 0.5).
    let mut clues: Vec<f64> = counts
        .tokens
        .iter()
        .map(|&(_, s, h)| {
            let spam_ratio = s as f64 / nspam as f64;
            let ham_ratio = h as f64 / nham as f64;
            let p = spam_ratio / (spam_ratio + ham_ratio);
            let n = (s + h) as f64;
            (0.5 + n * p) / (1.0 + n)
        })
        .filter(|f| (f - 0.5).abs() >= 0.1)
        .collect();
    if clues.is_empty() {
        return Some(0.5);
    }
    clues.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    clues.truncate(MAX_CLUES);
    let clues: Vec<f64> = clues.into_iter().map(|f| f.clamp(0.01, 0.99)).collect();
    let n = clues.len();
    let spamminess = 1.0
        - chi2q(
            -2.0 * clues.iter().map(|f| (1.0 - f).ln()).sum::<f64>(),
            2 * n,
        );
    let hamminess = 1.0 - chi2q(-2.0 * clues.iter().map(|f| f.ln()).sum::<f64>(), 2 * n);
    Some((1.0 + spamminess - hamminess) / 2.0)
}

/// The chance a chi-square variable with `v` (even) degrees of freedom
/// exceeds `x2`.
fn chi2q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// What a probability adds to the score, and the rule's name.
pub fn points(probability: f64) -> (&'static str, f64) {
    match probability {
        p if p >= 0.99 => ("BAYES_99", 5.0),
        p if p >= 0.95 => ("BAYES_95", 3.5),
        p if p >= 0.80 => ("BAYES_80", 2.0),
        p if p <= 0.01 => ("BAYES_00", -3.0),
        p if p <= 0.05 => ("BAYES_05", -1.5),
        _ => ("BAYES_50", 0.0),
    }
}

/// Teaches each account's classifier from the verdicts its user gave
/// (`bayes_pending`), reading each message once, off the write path.
pub struct Trainer {
    store: Arc<dyn tern_store::Store>,
}

impl Trainer {
    pub fn new(store: Arc<dyn tern_store::Store>) -> Trainer {
        Trainer { store }
    }

    /// Trains until `stop` turns true, looking for new verdicts every two
    /// seconds when there are none.
    pub async fn run_until(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let trained = match self.train_pending().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("spam training: {e}");
                    0
                }
            };
            if trained == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    }

    /// Trains what is waiting (a batch); how many requests were taken.
    pub async fn train_pending(&self) -> Result<usize, StoreError> {
        let pending = self.store.bayes_pending(50).await?;
        for request in &pending {
            self.train(request).await?;
        }
        Ok(pending.len())
    }

    async fn train(&self, request: &TrainRequest) -> Result<(), StoreError> {
        let email = match self.store.email(request.account_id, request.email_id).await {
            Ok(email) => email,
            Err(StoreError::NotFound { .. }) => {
                return self.store.bayes_train(request, None, false).await;
            }
            Err(e) => return Err(e),
        };
        let raw = self
            .store
            .read_blob(request.account_id, &email.blob_id)
            .await?;
        let tokens = MessageParser::default()
            .parse(&raw[..])
            .map(|m| tokens(&m))
            .unwrap_or_default();
        // The filter had said the same if it marked the message as it
        // arrived ($Junk) and the user now calls it spam, or did not and
        // the user calls it mail.
        let marked = email
            .keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case("$Junk"));
        let agreed = marked == request.spam;
        self.store.bayes_train(request, Some(tokens), agreed).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_store::BayesCounts;

    #[test]
    fn untrained_says_nothing_and_clear_clues_decide() {
        let mut counts = BayesCounts {
            spam_messages: 10,
            ham_messages: 10,
            tokens: vec![(1, 10, 0), (2, 9, 0), (3, 10, 1)],
        };
        let p = classify(&counts).unwrap();
        assert!(p > 0.99, "spammy tokens: {p}");
        counts.tokens = vec![(1, 0, 10), (2, 0, 9), (3, 1, 10)];
        let p = classify(&counts).unwrap();
        assert!(p < 0.01, "hammy tokens: {p}");
        counts.tokens = vec![];
        assert_eq!(classify(&counts), Some(0.5));
        counts.ham_messages = 2;
        assert_eq!(classify(&counts), None);
    }

    #[test]
    fn tokens_are_stable_hashes_of_words() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let m = MessageParser::default()
            .parse(&b"From: a@spam.test\r\nSubject: Cheap pills\r\n\r\nBuy cheap pills at http://pills.test now\r\n"[..])
            .unwrap();
        let t = tokens(&m);
        assert!(t.contains(&fnv1a(b"s:cheap")));
        assert!(t.contains(&fnv1a(b"cheap")));
        assert!(t.contains(&fnv1a(b"from:spam.test")));
        assert!(t.contains(&fnv1a(b"url:pills.test")));
        assert!(!t.contains(&fnv1a(b"at")), "short words are skipped");
    }
}
