//! `Email/query` and `Email/queryChanges` (RFC 8621 §4.4–4.5, RFC 8620
//! §5.5–5.6): filters of conditions and operators, sorted and paged.
//!
//! A condition, or an `AND` of conditions, is one account-wide query in
//! the Store, which sorts and stops at the page (the common case: a
//! mailbox's newest fifty). `OR` and `NOT` are answered from the sets of
//! ids each part matches, then ordered by one sorted pass over the
//! account. Conditions the Store cannot answer (`hasAttachment`, the
//! thread keyword conditions) are checked on each candidate.

use super::email::email_id;
use super::email_filter::{fold_and, parse_filter, Condition, Filter, Residual, ThreadRule};
use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use tern_store::{
    EmailId, EmailQuery, EmailQueryResult, EmailSort, MailboxId, SearchKey, StoreError,
};

/// Most ids one query page returns.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// Emails whose summaries are read per batch when checking conditions.
const BATCH: usize = 500;

fn store_fail(e: StoreError) -> Value {
    method_error("serverFail", e.to_string())
}

/// The arguments of a query that are not the filter.
struct Page {
    sort: EmailSort,
    ascending: bool,
    /// Negative: from the end (RFC 8620 §5.5).
    position: i64,
    /// Ids from `anchor` on, offset by `anchorOffset` (RFC 8620 §5.5).
    anchor: Option<(EmailId, i64)>,
    limit: usize,
    limited: bool,
    calculate_total: bool,
    collapse_threads: bool,
}

fn parse_page(args: &Map<String, Value>) -> Result<Page, Value> {
    let mut page = Page {
        sort: EmailSort::ReceivedAt,
        ascending: true,
        position: 0,
        anchor: None,
        limit: 50,
        limited: false,
        calculate_total: args
            .get("calculateTotal")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        collapse_threads: args
            .get("collapseThreads")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    match args.get("sort") {
        None | Some(Value::Null) => {}
        Some(Value::Array(sort)) => {
            if let Some(first) = sort.first() {
                page.sort = match first.get("property").and_then(Value::as_str) {
                    Some("receivedAt") => EmailSort::ReceivedAt,
                    Some("sentAt") => EmailSort::SentAt,
                    Some("size") => EmailSort::Size,
                    other => {
                        return Err(method_error(
                            "unsupportedSort",
                            format!("cannot sort by {}", other.unwrap_or("that")),
                        ))
                    }
                };
                page.ascending = first
                    .get("isAscending")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
            }
        }
        Some(_) => return Err(method_error("invalidArguments", "sort is an array")),
    }
    if let Some(p) = args.get("position").filter(|v| !v.is_null()) {
        let p = p
            .as_i64()
            .ok_or_else(|| method_error("invalidArguments", "position must be a number"))?;
        page.position = p;
    }
    if let Some(anchor) = args.get("anchor").and_then(Value::as_str) {
        let id = super::email::parse_email_id(anchor)
            .ok_or_else(|| method_error("anchorNotFound", "no such email"))?;
        let offset = args
            .get("anchorOffset")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        page.anchor = Some((id, offset));
    }
    if let Some(l) = args.get("limit").filter(|v| !v.is_null()) {
        page.limit = l.as_u64().ok_or_else(|| {
            method_error("invalidArguments", "limit must be a non-negative number")
        })? as usize;
    }
    page.limited = page.limit > MAX_QUERY_LIMIT;
    page.limit = page.limit.min(MAX_QUERY_LIMIT);
    Ok(page)
}

pub async fn query(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let filter = match args.get("filter") {
        None | Some(Value::Null) => Filter::Condition(Box::default()),
        Some(f) => parse_filter(f, 0)?,
    };
    let page = parse_page(&args)?;
    let state = super::state(cx).await?;
    let (ids, total, position) = run(cx, account, &filter, &page).await?;
    let mut out = json!({
        "accountId": super::account_id(account),
        "queryState": state,
        "canCalculateChanges": true,
        "position": position,
        "ids": ids.iter().map(|id| email_id(*id)).collect::<Vec<_>>(),
    });
    if let Some(total) = total {
        out["total"] = json!(total);
    }
    if page.limited {
        out["limit"] = json!(MAX_QUERY_LIMIT);
    }
    Ok(out)
}

/// The page of ids the filter matches, the total when asked for, and the
/// position of the first.
async fn run(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    filter: &Filter,
    page: &Page,
) -> Result<(Vec<EmailId>, Option<u64>, usize), Value> {
    let simple = match filter {
        Filter::Condition(c) => Some((**c).clone()),
        Filter::And(parts) => fold_and(parts),
        _ => None,
    };
    // The Store pages by itself when nothing is left to check per email.
    if let Some(c) = &simple {
        let plain = c.residual.is_empty()
            && !c.nothing
            && page.anchor.is_none()
            && !page.collapse_threads
            && page.position >= 0;
        if plain {
            let q = EmailQuery {
                sort: page.sort,
                ascending: page.ascending,
                position: page.position as usize,
                limit: page.limit,
                calculate_total: page.calculate_total,
                ..c.query.clone()
            };
            let result = condition_page(cx, account, c, q).await?;
            return Ok((result.ids, result.total, page.position as usize));
        }
    }
    // Otherwise: every match in order, then the page.
    let all = ordered_matches(cx, account, filter, page).await?;
    let total = all.len();
    let mut position = if page.position < 0 {
        total.saturating_sub(page.position.unsigned_abs() as usize)
    } else {
        page.position as usize
    };
    if let Some((anchor, offset)) = page.anchor {
        let at = all
            .iter()
            .position(|id| *id == anchor)
            .ok_or_else(|| method_error("anchorNotFound", "the anchor is not in the results"))?;
        position = (at as i64).saturating_add(offset).max(0) as usize;
    }
    let ids = all.into_iter().skip(position).take(page.limit).collect();
    Ok((ids, page.calculate_total.then_some(total as u64), position))
}

/// Every email the filter matches, in the page's sort order (threads
/// collapsed when asked).
async fn ordered_matches(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    filter: &Filter,
    page: &Page,
) -> Result<Vec<EmailId>, Value> {
    let store = cx.server.mail.store();
    let matching = matches(cx, account, filter).await?;
    let everything = EmailQuery {
        sort: page.sort,
        ascending: page.ascending,
        limit: usize::MAX,
        ..EmailQuery::default()
    };
    let ordered = store
        .query_emails(account, &everything)
        .await
        .map_err(store_fail)?
        .ids;
    let mut ids: Vec<EmailId> = ordered
        .into_iter()
        .filter(|id| matching.contains(id))
        .collect();
    if page.collapse_threads {
        let mut seen = HashSet::new();
        let mut kept = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            let records = store
                .email_records(account, chunk)
                .await
                .map_err(store_fail)?;
            for (id, record) in chunk.iter().zip(records) {
                if let Some(r) = record {
                    if seen.insert(r.thread_id) {
                        kept.push(*id);
                    }
                }
            }
        }
        ids = kept;
    }
    Ok(ids)
}

/// The set of emails a filter matches.
async fn matches(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    filter: &Filter,
) -> Result<HashSet<EmailId>, Value> {
    // Box::pin: the recursion of an async fn.
    Box::pin(async move {
        match filter {
            Filter::Condition(c) => condition_set(cx, account, c).await,
            Filter::And(parts) => {
                if let Some(c) = fold_and(parts) {
                    return condition_set(cx, account, &c).await;
                }
                let mut out: Option<HashSet<EmailId>> = None;
                for part in parts {
                    let set = matches(cx, account, part).await?;
                    out = Some(match out {
                        None => set,
                        Some(o) => o.intersection(&set).copied().collect(),
                    });
                }
                match out {
                    Some(set) => Ok(set),
                    None => condition_set(cx, account, &Condition::default()).await,
                }
            }
            Filter::Or(parts) => {
                let mut out = HashSet::new();
                for part in parts {
                    out.extend(matches(cx, account, part).await?);
                }
                Ok(out)
            }
            Filter::Not(parts) => {
                let mut all = condition_set(cx, account, &Condition::default()).await?;
                for part in parts {
                    for id in matches(cx, account, part).await? {
                        all.remove(&id);
                    }
                }
                Ok(all)
            }
        }
    })
    .await
}

async fn condition_set(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    c: &Condition,
) -> Result<HashSet<EmailId>, Value> {
    let q = EmailQuery {
        limit: usize::MAX,
        ..c.query.clone()
    };
    let found = condition_page(cx, account, c, q).await?;
    Ok(found.ids.into_iter().collect())
}

/// One condition through the Store: its query (text through the index, or
/// mailbox by mailbox), then what is checked per email.
async fn condition_page(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    c: &Condition,
    q: EmailQuery,
) -> Result<EmailQueryResult, Value> {
    if c.nothing {
        return Ok(EmailQueryResult {
            ids: Vec::new(),
            total: q.calculate_total.then_some(0),
        });
    }
    let needs_checks = !c.residual.is_empty();
    // With checks left, the Store returns every candidate and the page is
    // cut here.
    let (position, limit) = (q.position, q.limit);
    let q = if needs_checks {
        EmailQuery {
            position: 0,
            limit: usize::MAX,
            calculate_total: false,
            ..q
        }
    } else {
        q
    };
    let mut result = store_query(cx, account, &q, &c.text).await?;
    if needs_checks {
        let kept = check(cx, account, c, result.ids).await?;
        let total = kept.len() as u64;
        result = EmailQueryResult {
            ids: kept.into_iter().skip(position).take(limit).collect(),
            total: q.calculate_total.then_some(total),
        };
    }
    Ok(result)
}

async fn store_query(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    q: &EmailQuery,
    text: &[SearchKey],
) -> Result<EmailQueryResult, Value> {
    let store = cx.server.mail.store();
    if text.is_empty() {
        return store.query_emails(account, q).await.map_err(store_fail);
    }
    // Text and body alone go to the Store's indexed query, which stops at
    // the page; header conditions (and an index that cannot answer yet)
    // take the mailbox-by-mailbox search.
    let indexed: Option<Vec<(bool, String)>> = text
        .iter()
        .map(|k| match k {
            SearchKey::Text(t) => Some((false, t.clone())),
            SearchKey::Body(t) => Some((true, t.clone())),
            _ => None,
        })
        .collect();
    if let Some(needles) = indexed {
        let q = EmailQuery {
            text: needles,
            ..q.clone()
        };
        match store.query_emails(account, &q).await {
            Ok(result) => return Ok(result),
            Err(StoreError::Invalid(_)) => {}
            Err(e) => return Err(store_fail(e)),
        }
    }
    text_query(cx, account, q, text.to_vec()).await
}

/// The candidates that pass the per-email checks, in their order.
async fn check(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    c: &Condition,
    candidates: Vec<EmailId>,
) -> Result<Vec<EmailId>, Value> {
    let store = cx.server.mail.store();
    let has = |keywords: &[String], k: &str| keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
    let mut threads: HashMap<tern_store::ThreadId, Vec<Vec<String>>> = HashMap::new();
    let mut kept = Vec::new();
    for chunk in candidates.chunks(BATCH) {
        let records = store
            .email_records(account, chunk)
            .await
            .map_err(store_fail)?;
        let attachments = if c
            .residual
            .iter()
            .any(|r| matches!(r, Residual::HasAttachment(_)))
        {
            store
                .emails(account, chunk)
                .await
                .map_err(store_fail)?
                .into_iter()
                .map(|e| e.map(|e| e.summary.has_attachment))
                .collect()
        } else {
            vec![None; chunk.len()]
        };
        for ((id, record), attached) in chunk.iter().zip(records).zip(attachments) {
            let Some(r) = record else { continue };
            let mut ok = true;
            for rule in &c.residual {
                ok &= match rule {
                    Residual::HasAttachment(want) => attached == Some(*want),
                    Residual::InThread(how, k) => {
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            threads.entry(r.thread_id)
                        {
                            e.insert(thread_keywords(cx, account, r.thread_id).await?);
                        }
                        let members = &threads[&r.thread_id];
                        match how {
                            ThreadRule::All => members.iter().all(|m| has(m, k)),
                            ThreadRule::Some => members.iter().any(|m| has(m, k)),
                            ThreadRule::None => !members.iter().any(|m| has(m, k)),
                        }
                    }
                };
            }
            if ok {
                kept.push(*id);
            }
        }
    }
    Ok(kept)
}

/// The keywords of each email of a thread.
async fn thread_keywords(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    thread: tern_store::ThreadId,
) -> Result<Vec<Vec<String>>, Value> {
    let store = cx.server.mail.store();
    let q = EmailQuery {
        in_thread: Some(thread),
        limit: MAX_QUERY_LIMIT,
        ..EmailQuery::default()
    };
    let ids = store
        .query_emails(account, &q)
        .await
        .map_err(store_fail)?
        .ids;
    Ok(store
        .email_records(account, &ids)
        .await
        .map_err(store_fail)?
        .into_iter()
        .flatten()
        .map(|r| r.keywords)
        .collect())
}

/// `Email/query` with header conditions: each candidate mailbox searched
/// through the Store's IMAP SEARCH, the matches checked against the other
/// conditions, sorted and paged here. Costs in proportion to the matches,
/// not to the account.
async fn text_query(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    q: &EmailQuery,
    text: Vec<SearchKey>,
) -> Result<EmailQueryResult, Value> {
    let store = cx.server.mail.store();
    let key = SearchKey::And(text);
    let mailboxes: Vec<MailboxId> = match q.in_mailbox {
        Some(m) => vec![m],
        None => store
            .list_mailboxes(account)
            .await
            .map_err(store_fail)?
            .into_iter()
            .filter(|m| !m.noselect)
            .map(|m| m.id)
            .collect(),
    };
    let mut found: Vec<tern_store::MessageEntry> = Vec::new();
    for mailbox in mailboxes {
        let uids = match store.search(account, mailbox, &key).await {
            Ok(uids) => uids,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(store_fail(e)),
        };
        if uids.is_empty() {
            continue;
        }
        found.extend(
            store
                .messages(account, mailbox, &uids)
                .await
                .map_err(store_fail)?,
        );
    }
    found.sort_by_key(|e| e.email_id);
    found.dedup_by_key(|e| e.email_id);
    let ids: Vec<EmailId> = found.iter().map(|e| e.email_id).collect();
    let records = store
        .email_records(account, &ids)
        .await
        .map_err(store_fail)?;
    let has = |keywords: &[String], k: &str| keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
    let mut matched: Vec<tern_store::EmailRecord> = records
        .into_iter()
        .flatten()
        .filter(|r| {
            q.in_thread.is_none_or(|t| r.thread_id == t)
                && q.not_in_mailboxes
                    .iter()
                    .all(|m| !r.mailboxes.iter().any(|(x, _)| x == m))
                && q.in_mailbox_other_than
                    .as_ref()
                    .is_none_or(|o| r.mailboxes.iter().any(|(x, _)| !o.contains(x)))
                && q.has_keywords.iter().all(|k| has(&r.keywords, k))
                && q.not_keywords.iter().all(|k| !has(&r.keywords, k))
                && q.after.is_none_or(|a| r.received_at >= a)
                && q.before.is_none_or(|b| r.received_at < b)
                && q.min_size.is_none_or(|s| r.size >= s)
                && q.max_size.is_none_or(|s| r.size <= s)
        })
        .collect();
    matched.sort_by_key(|r| {
        let v = match q.sort {
            EmailSort::ReceivedAt => r.received_at,
            EmailSort::SentAt => r.sent_at.unwrap_or(r.received_at),
            EmailSort::Size => r.size as i64,
        };
        (v, r.id)
    });
    if !q.ascending {
        matched.reverse();
    }
    let total = matched.len() as u64;
    Ok(EmailQueryResult {
        ids: matched
            .into_iter()
            .skip(q.position)
            .take(q.limit)
            .map(|r| r.id)
            .collect(),
        total: q.calculate_total.then_some(total),
    })
}

/// `Email/queryChanges` (RFC 8620 §5.6). Every sort property is one that
/// never changes (`receivedAt`, `sentAt`, `size`), so an email moves in
/// the results only by joining or leaving them, and each such email is
/// in the journal since the old state. Those are all given as removed,
/// and those in the results now as added at their index: what §5.6
/// allows a server that does not keep old results.
pub async fn query_changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = super::required_str(&args, "sinceQueryState")?;
    let filter = match args.get("filter") {
        None | Some(Value::Null) => Filter::Condition(Box::default()),
        Some(f) => parse_filter(f, 0)?,
    };
    let mut page = parse_page(&args)?;
    // Which email stands for a thread, and what its thread holds, change
    // with emails the journal does not name for this email: RFC 8620 §5.6
    // lets the server say it cannot tell.
    if page.collapse_threads || filter.looks_at_threads() {
        return Err(method_error(
            "cannotCalculateChanges",
            "a query over threads is run again, not updated",
        ));
    }
    let changed: BTreeSet<EmailId> = super::changes::emails_changed_since(cx, account, since)
        .await?
        .into_iter()
        .collect();
    super::within_max_changes(&args, changed.len())?;
    let new_state = super::state(cx).await?;
    page.position = 0;
    page.anchor = None;
    page.limit = usize::MAX;
    let all = ordered_matches(cx, account, &filter, &page).await?;
    let added: Vec<Value> = all
        .iter()
        .enumerate()
        .filter(|(_, id)| changed.contains(id))
        .map(|(i, id)| json!({ "id": email_id(*id), "index": i }))
        .collect();
    let mut out = json!({
        "accountId": super::account_id(account),
        "oldQueryState": since,
        "newQueryState": new_state,
        "removed": changed.iter().map(|id| email_id(*id)).collect::<Vec<_>>(),
        "added": added,
    });
    if page.calculate_total {
        out["total"] = json!(all.len());
    }
    Ok(out)
}
