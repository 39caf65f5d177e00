//! PostgreSQL SpamStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

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
