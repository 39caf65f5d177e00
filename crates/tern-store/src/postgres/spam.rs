//! PostgreSQL SpamStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

/// Asks for `email` to be trained as spam or not (written by the Store
/// operations themselves, so every protocol trains alike).
pub async fn request_training(
    tx: &Tx<'_>,
    account: AccountId,
    email: EmailId,
    spam: bool,
) -> Result<()> {
    tx.execute(
        "INSERT INTO bayes_pending (account_id, email_id, spam) VALUES ($1, $2, $3)",
        &[&account.0, &email.0, &spam],
    )
    .await?;
    Ok(())
}

/// A keyword change: a verdict when a spam or not-spam keyword was added.
pub async fn keywords_changed(
    tx: &Tx<'_>,
    account: AccountId,
    email: EmailId,
    old: &[String],
    new: &[String],
) -> Result<()> {
    use crate::sqlite::spam::{HAM_KEYWORDS, SPAM_KEYWORDS};
    let added = |set: &[&str]| {
        new.iter().any(|k| {
            set.iter().any(|s| k.eq_ignore_ascii_case(s))
                && !old.iter().any(|o| o.eq_ignore_ascii_case(k))
        })
    };
    if added(HAM_KEYWORDS) {
        request_training(tx, account, email, false).await?;
    } else if added(SPAM_KEYWORDS) {
        request_training(tx, account, email, true).await?;
    }
    Ok(())
}

#[async_trait]
impl SpamStore for PgStore {
    async fn bayes_counts(&self, account: AccountId, tokens: &[u64]) -> Result<BayesCounts> {
        Err(StoreError::Invalid(
            "bayes_counts: not yet on PostgreSQL".into(),
        ))
    }

    async fn bayes_pending(&self, limit: usize) -> Result<Vec<TrainRequest>> {
        Err(StoreError::Invalid(
            "bayes_pending: not yet on PostgreSQL".into(),
        ))
    }

    async fn bayes_train(
        &self,
        request: &TrainRequest,
        tokens: Option<Vec<u64>>,
        agreed: bool,
    ) -> Result<()> {
        Err(StoreError::Invalid(
            "bayes_train: not yet on PostgreSQL".into(),
        ))
    }

    async fn spam_stats(&self, account: AccountId) -> Result<SpamStats> {
        Err(StoreError::Invalid(
            "spam_stats: not yet on PostgreSQL".into(),
        ))
    }

    async fn greylist(
        &self,
        triplet: (&str, &str, &str),
        now: i64,
        delay: i64,
        ttl: i64,
    ) -> Result<GreylistVerdict> {
        Err(StoreError::Invalid(
            "greylist: not yet on PostgreSQL".into(),
        ))
    }
}
