//! JMAP EmailSubmission records in PostgreSQL (being written).
#![allow(unused_variables)]

use super::Tx;
use crate::error::{Result, StoreError};
use crate::types::*;

/// The queue's final word on one recipient of message `queue_id`, written
/// into the submissions that sent it, in the queue's transaction
/// (interface used by queue.rs).
pub async fn record_outcome(
    tx: &Tx<'_>,
    queue_id: QueueId,
    address: &str,
    delivered: bool,
    reply: Option<&str>,
) -> Result<()> {
    Err(StoreError::Invalid(
        "submissions::record_outcome: not yet on PostgreSQL".into(),
    ))
}
