//! `Mailbox/changes` and `Email/changes` (RFC 8620 §5.2) from the Store's
//! one journal: the rows after `sinceState` (a modseq), read as JMAP
//! objects created, updated and destroyed. A change made over IMAP is a
//! row like any other, so JMAP clients see it.

use super::email::email_id;
use super::mailbox::mailbox_id;
use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use tern_store::{ChangeKind, EmailId, ModSeq, StoreError};

/// Journal rows read at most, when the client gives no `maxChanges`.
const DEFAULT_MAX_CHANGES: usize = 5000;

/// What happened to one object in the window.
#[derive(Default)]
struct Seen {
    /// The first row was an arrival (not a move's second half).
    arrived_first: bool,
    any: bool,
    /// Only its counts changed (a mailbox whose emails changed).
    counts_only: bool,
}

/// The journal rows after the state `since` (at most `max`, and one
/// more to tell that there are more), with the current state.
pub(super) async fn rows_since(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    since: &str,
    max: usize,
) -> Result<(Vec<tern_store::Change>, ModSeq), Value> {
    let since: u64 = since.parse().map_err(|_| {
        method_error(
            "cannotCalculateChanges",
            "that state is not one this server gave",
        )
    })?;
    let store = cx.server.mail.store();
    let current = store
        .highest_modseq(account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    if since > current.0 {
        return Err(method_error(
            "cannotCalculateChanges",
            "that state is in the future",
        ));
    }
    match store.account_changes(account, ModSeq(since), max).await {
        Ok(rows) => Ok((rows, current)),
        Err(StoreError::ChangesExpired { .. }) => Err(method_error(
            "cannotCalculateChanges",
            "changes that old are no longer kept; resynchronise",
        )),
        Err(e) => Err(method_error("serverFail", e.to_string())),
    }
}

/// Every email created, changed or destroyed after the state `since`
/// (for `Email/queryChanges`).
pub async fn emails_changed_since(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    since: &str,
) -> Result<Vec<EmailId>, Value> {
    let (rows, _) = rows_since(cx, account, since, usize::MAX).await?;
    let mut ids: Vec<EmailId> = rows
        .iter()
        .filter_map(|row| match &row.kind {
            ChangeKind::EmailAdded { email_id, .. }
            | ChangeKind::KeywordsChanged { email_id, .. }
            | ChangeKind::EmailExpunged { email_id, .. } => Some(*email_id),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Every mailbox created, changed or destroyed after the state `since`
/// (for `Mailbox/queryChanges`); counts are not what a query sorts or
/// filters by, so email rows do not count.
pub async fn mailboxes_changed_since(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    since: &str,
) -> Result<Vec<tern_store::MailboxId>, Value> {
    let (rows, _) = rows_since(cx, account, since, usize::MAX).await?;
    let mut ids: Vec<tern_store::MailboxId> = rows
        .iter()
        .filter_map(|row| match &row.kind {
            ChangeKind::MailboxCreated { mailbox_id }
            | ChangeKind::MailboxRenamed { mailbox_id }
            | ChangeKind::MailboxUpdated { mailbox_id }
            | ChangeKind::MailboxDeleted { mailbox_id } => Some(*mailbox_id),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The `maxChanges` argument, or ours.
pub(super) fn max_changes(args: &Map<String, Value>) -> Result<usize, Value> {
    match args.get("maxChanges") {
        None | Some(Value::Null) => Ok(DEFAULT_MAX_CHANGES),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(n as usize),
            _ => Err(method_error(
                "invalidArguments",
                "maxChanges must be positive",
            )),
        },
    }
}

fn since_arg(args: &Map<String, Value>) -> Result<&str, Value> {
    super::required_str(args, "sinceState")
}

/// `Thread/changes` (RFC 8621 §3.2) from the journal's rows for emails
/// joining or leaving a thread. A thread is new when its oldest email
/// arrived in the window, gone when no email is left in it.
pub async fn thread_changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = since_arg(&args)?;
    let max = max_changes(&args)?;
    let (rows, current) = rows_since(cx, account, since, max + 1).await?;
    let has_more = rows.len() > max;
    let rows = &rows[..rows.len().min(max)];
    let new_state = if has_more {
        rows.last().map_or(current, |r| r.modseq)
    } else {
        current
    };
    let mut threads = std::collections::BTreeSet::new();
    let mut arrived = std::collections::HashSet::new();
    for row in rows {
        match &row.kind {
            ChangeKind::ThreadChanged { thread_id } => {
                threads.insert(thread_id.0);
            }
            ChangeKind::EmailAdded { email_id, .. } => {
                arrived.insert(*email_id);
            }
            _ => {}
        }
    }
    let store = cx.server.mail.store();
    let (mut created, mut updated, mut destroyed) = (Vec::new(), Vec::new(), Vec::new());
    for thread in threads {
        let q = tern_store::EmailQuery {
            in_thread: Some(tern_store::ThreadId(thread)),
            limit: usize::MAX,
            ..Default::default()
        };
        let emails = store
            .query_emails(account, &q)
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?
            .ids;
        let id = super::ids::thread_id(tern_store::ThreadId(thread));
        match emails.iter().min() {
            None => destroyed.push(id),
            Some(oldest) if arrived.contains(oldest) => created.push(id),
            Some(_) => updated.push(id),
        }
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": since,
        "newState": new_state.0.to_string(),
        "hasMoreChanges": has_more,
        "created": created,
        "updated": updated,
        "destroyed": destroyed,
    }))
}

pub async fn changes(cx: &Call<'_>, name: &str, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = since_arg(&args)?;
    let max = max_changes(&args)?;
    let store = cx.server.mail.store();
    let (rows, current) = rows_since(cx, account, since, max + 1).await?;
    let has_more = rows.len() > max;
    let rows = &rows[..rows.len().min(max)];
    let new_state = if has_more {
        rows.last().map_or(current, |r| r.modseq)
    } else {
        current
    };
    let want_email = name == "Email/changes";
    let mut objects: BTreeMap<i64, Seen> = BTreeMap::new();
    let mut created_mailboxes = Vec::new();
    let mut destroyed_mailboxes = Vec::new();
    for row in rows {
        match (&row.kind, want_email) {
            (ChangeKind::EmailAdded { email_id, .. }, true) => {
                let seen = objects.entry(email_id.0).or_default();
                if !seen.any {
                    seen.arrived_first = true;
                }
                seen.any = true;
            }
            (
                ChangeKind::KeywordsChanged { email_id, .. }
                | ChangeKind::EmailExpunged { email_id, .. },
                true,
            ) => objects.entry(email_id.0).or_default().any = true,
            (ChangeKind::MailboxCreated { mailbox_id }, false) => {
                created_mailboxes.push(mailbox_id.0);
                objects.entry(mailbox_id.0).or_default().any = true;
            }
            (ChangeKind::MailboxDeleted { mailbox_id }, false) => {
                destroyed_mailboxes.push(mailbox_id.0);
                objects.entry(mailbox_id.0).or_default().any = true;
            }
            (
                ChangeKind::MailboxRenamed { mailbox_id }
                | ChangeKind::MailboxUpdated { mailbox_id },
                false,
            ) => {
                let seen = objects.entry(mailbox_id.0).or_default();
                seen.any = true;
                seen.counts_only = false;
            }
            // An email came, went or changed flags: its mailbox's counts.
            (
                ChangeKind::EmailAdded { mailbox_id, .. }
                | ChangeKind::KeywordsChanged { mailbox_id, .. }
                | ChangeKind::EmailExpunged { mailbox_id, .. },
                false,
            ) => {
                let seen = objects.entry(mailbox_id.0).or_default();
                if !seen.any {
                    seen.counts_only = true;
                }
                seen.any = true;
            }
            _ => {}
        }
    }
    let (mut created, mut updated, mut destroyed) = (Vec::new(), Vec::new(), Vec::new());
    let mut counts_only = true;
    if want_email {
        let ids: Vec<EmailId> = objects.keys().map(|id| EmailId(*id)).collect();
        let exists = store
            .email_records(account, &ids)
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?;
        for ((id, seen), record) in objects.iter().zip(exists) {
            let text = email_id(EmailId(*id));
            match (record.is_some(), seen.arrived_first) {
                (true, true) => created.push(text),
                (true, false) => updated.push(text),
                // Created and gone within the window: nothing to tell.
                (false, true) => {}
                (false, false) => destroyed.push(text),
            }
        }
    } else {
        for (id, seen) in &objects {
            let text = mailbox_id(tern_store::MailboxId(*id));
            let was_created = created_mailboxes.contains(id);
            let was_destroyed = destroyed_mailboxes.contains(id);
            match (was_created, was_destroyed) {
                (true, true) => {}
                (true, false) => created.push(text),
                (false, true) => destroyed.push(text),
                (false, false) => {
                    counts_only &= seen.counts_only;
                    updated.push(text);
                }
            }
        }
    }
    let mut out = json!({
        "accountId": super::account_id(account),
        "oldState": since,
        "newState": new_state.0.to_string(),
        "hasMoreChanges": has_more,
        "created": created,
        "updated": updated,
        "destroyed": destroyed,
    });
    if !want_email {
        // RFC 8621 §2.2: only counts changed, so clients fetch just those.
        out["updatedProperties"] =
            if counts_only && !out["updated"].as_array().is_some_and(Vec::is_empty) {
                json!([
                    "totalEmails",
                    "unreadEmails",
                    "totalThreads",
                    "unreadThreads"
                ])
            } else {
                Value::Null
            };
    }
    Ok(out)
}
