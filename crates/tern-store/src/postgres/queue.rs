//! PostgreSQL QueueStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

#[async_trait]
impl QueueStore for PgStore {
    async fn enqueue_blob(
        &self,
        account: AccountId,
        blob_id: &BlobId,
        outbound: Outbound,
    ) -> Result<QueueId> {
        Err(StoreError::Invalid(
            "enqueue_blob: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        Err(StoreError::Invalid(
            "queue_list: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_claim(
        &self,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueClaim>> {
        Err(StoreError::Invalid(
            "queue_claim: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_record(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<QueueState> {
        Err(StoreError::Invalid(
            "queue_record: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_record_part(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<()> {
        Err(StoreError::Invalid(
            "queue_record_part: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_read(&self, id: QueueId, offset: u64, len: usize) -> Result<Vec<u8>> {
        Err(StoreError::Invalid(
            "queue_read: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_remove(&self, id: QueueId) -> Result<()> {
        Err(StoreError::Invalid(
            "queue_remove: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_flush(&self, id: Option<QueueId>) -> Result<usize> {
        Err(StoreError::Invalid(
            "queue_flush: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_flush_count(&self) -> Result<u64> {
        Err(StoreError::Invalid(
            "queue_flush_count: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_hold(&self, id: QueueId, on: bool) -> Result<()> {
        Err(StoreError::Invalid(
            "queue_hold: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_release_leases(&self) -> Result<usize> {
        Err(StoreError::Invalid(
            "queue_release_leases: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_sweep(&self, now: i64) -> Result<usize> {
        Err(StoreError::Invalid(
            "queue_sweep: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_postpone_domain(&self, domain: &str, until: i64) -> Result<usize> {
        Err(StoreError::Invalid(
            "queue_postpone_domain: not yet on PostgreSQL".into(),
        ))
    }

    async fn tls_report_add(&self, rows: Vec<TlsReportRow>) -> Result<()> {
        Err(StoreError::Invalid(
            "tls_report_add: not yet on PostgreSQL".into(),
        ))
    }

    async fn tls_report_list(&self, since_day: &str) -> Result<Vec<TlsReportRow>> {
        Err(StoreError::Invalid(
            "tls_report_list: not yet on PostgreSQL".into(),
        ))
    }

    async fn queue_delay_notified(&self, id: QueueId) -> Result<()> {
        Err(StoreError::Invalid(
            "queue_delay_notified: not yet on PostgreSQL".into(),
        ))
    }
}

/// Queues `outbound` for the blob `hash`, already stored by the caller
/// (this adds the queue entry's hold on it). Interface used by messages.rs
/// (`accept`).
pub async fn enqueue(
    tx: &mut Tx<'_>,
    hash: &BlobId,
    size: u64,
    outbound: &Outbound,
) -> Result<QueueId> {
    Err(StoreError::Invalid(
        "queue::enqueue: not yet on PostgreSQL".into(),
    ))
}

/// Removes a queue entry and its hold on the blob (interface used by
/// submissions: cancelling a message sent later).
pub async fn remove_entry(tx: &mut Tx<'_>, id: QueueId) -> Result<()> {
    Err(StoreError::Invalid(
        "queue::remove_entry: not yet on PostgreSQL".into(),
    ))
}
