//! Search on PostgreSQL (being written).
#![allow(unused_variables)]

use super::Tx;
use crate::error::{Result, StoreError};
use crate::search::SearchKey;
use crate::types::*;

/// UIDs of the mailbox's messages matching `key`, ascending (interface
/// used by messages.rs for `MessageStore::search`).
pub async fn search(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    key: &SearchKey,
) -> Result<Vec<Uid>> {
    Err(StoreError::Invalid("search: not yet on PostgreSQL".into()))
}

/// A SQL condition on `e.id` (an alias of `email`) for one JMAP text
/// needle, with the LIKE pattern as parameter `$param`; `body_only` looks
/// in the body alone, otherwise in the headers and the body. Interface
/// used by emails.rs (`query_emails`), which pushes [`like_pattern`] as
/// that parameter.
pub fn text_condition(body_only: bool, param: usize) -> String {
    let _ = (body_only, param);
    "FALSE".to_string()
}

/// The ILIKE pattern that finds `needle` as a substring (`%` `_` `\`
/// escaped, NULs dropped: the stored text has none).
pub fn like_pattern(needle: &str) -> String {
    let _ = needle;
    String::new()
}
