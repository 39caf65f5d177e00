//! The conformance suite every Store backend must pass.
//!
//! Each case is a plain async function over `Arc<dyn Store>`; the
//! [`conformance_tests!`](crate::conformance_tests) macro turns them into one
//! `#[tokio::test]` each for a backend, given one constructor. A second
//! backend (PostgreSQL) runs the very same cases by writing:
//!
//! ```text
//! tern_store::conformance_tests!(my_backend::fixture);
//! ```
//!
//! where `fixture` is an `async fn() -> Fixture` giving a fresh, empty store
//! (or `-> Option<Fixture>`, `None` skipping the case: a backend whose
//! server is not configured here).

pub mod crash;
mod directory;
mod emails;
mod journal;
mod mailboxes;
mod messages;
mod queue;
mod search;
mod spam;

pub use directory::*;
pub use emails::*;
pub use journal::*;
pub use mailboxes::*;
pub use messages::*;
pub use queue::*;
pub use search::*;
pub use spam::*;

pub(crate) use crate::query::*;
pub(crate) use crate::search::SearchKey;
pub(crate) use crate::types::*;
pub(crate) use crate::{Store, StoreError};
use std::any::Any;
use std::sync::Arc;

/// A fresh store and whatever keeps it alive (a temporary directory, a
/// scratch database); dropped at the end of the case.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    /// Opens another Store on the same data, as another process (the admin
    /// CLI, an import) or another node would: its own writer, its own hub.
    pub open_peer: Box<dyn Fn() -> Arc<dyn Store> + Send + Sync>,
    pub guard: Box<dyn Any + Send>,
}

/// Generates one test per conformance case for the backend whose fixture
/// constructor is given.
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::conformance_tests!(@cases $fixture;
            domains, accounts, quota_bounds, aliases, non_ascii_hierarchy, subscriptions_are_journalled,
            invalid_keywords_are_refused, change_pages_never_split_an_operation, mailbox_hierarchy, rename_inbox, mailbox_delete,
            uid_validity_is_never_reused, deliver_stores_one_blob, deliver_over_quota_fails_alone,
            append_round_trips_exactly, parsed_metadata_is_kept, keywords, conditional_keywords,
            copy, move_keeps_the_email, expunge, email_ids_are_never_reused, journal_and_tombstones, account_changes,
            search, subject_search, notifications_after_commit, modseqs_are_consecutive_and_announced, concurrent_deliveries, threading,
            remove_account_removes_mail, close_refuses_further_work,
            accept_queues_remote_recipients_in_the_same_commit, enqueue_blob_queues_stored_bytes,
            blob_ranges_stream_a_message, over_quota_recipients_are_queued_when_others_take_the_message,
            queue_lease_is_exclusive_and_expires, queue_records_attempts_and_frees_the_blob,
            queue_claims_hand_out_only_due_recipients,
            queue_flush_and_remove, queue_partial_records_and_dead_workers,
            email_keywords_by_id, email_in_several_mailboxes, destroy_emails_by_id, account_wide_query_pages,
            submissions_are_kept_and_journalled,
            journal_retention_has_a_floor, uploads_hold_blobs_until_they_expire,
            moves_into_and_out_of_junk_ask_for_training, greylisting_defers_then_remembers,
            account_settings_and_auto_replies, uploads_count_against_the_quota,
            held_submissions_wait_and_can_be_cancelled);
        $crate::conformance_tests!(@fixture_cases $fixture;
            another_process_wakes_subscribers, queue_claims_never_overlap);
    };
    (@fixture_cases $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = Option::<$crate::conformance::Fixture>::from($fixture().await) else {
                    return;
                };
                $crate::conformance::$case(&fixture).await;
                drop(fixture);
            }
        )*
    };
    (@cases $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = Option::<$crate::conformance::Fixture>::from($fixture().await) else {
                    return;
                };
                $crate::conformance::$case(fixture.store.clone()).await;
                drop(fixture);
            }
        )*
    };
}

/// A deterministic stream of pseudo-random numbers (xorshift64), for
/// tests that want varied input the same every run.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// A small RFC 5322 message.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.net>\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.net>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Creates the account (and its domain, if new) with the default mailboxes.
pub async fn account(store: &Arc<dyn Store>, address: &str) -> Account {
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("example.test");
    match store.add_domain(domain).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
        Err(e) => panic!("adding domain: {e}"),
    }
    store
        .create_account(NewAccount {
            address: address.into(),
            password_hash: "$argon2id$placeholder".into(),
            quota_bytes: None,
        })
        .await
        .expect("create account")
}

/// The account's mailbox with `role`; panics if there is none.
pub async fn mailbox(store: &Arc<dyn Store>, a: &Account, role: Role) -> Mailbox {
    store
        .mailbox_by_role(a.id, role)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {role:?} mailbox"))
}

pub(crate) async fn inbox(store: &Arc<dyn Store>, a: &Account) -> Mailbox {
    mailbox(store, a, Role::Inbox).await
}

/// Delivers `raw` to the account's INBOX; panics if it is refused.
pub async fn deliver_to(store: &Arc<dyn Store>, a: &Account, raw: Vec<u8>) -> Delivered {
    store
        .deliver(Delivery {
            message: raw.into(),
            recipients: vec![DeliveryTarget::inbox(a.id)],
            received_at: 1_800_000_000,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap()
}

pub(crate) fn uids(entries: &[MessageEntry]) -> Vec<u32> {
    entries.iter().map(|e| e.uid.0).collect()
}
