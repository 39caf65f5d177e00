//! `Mailbox/get` (RFC 8621 §2.1): the account's mailboxes as JMAP sees
//! them — a tree of names (`/`-separated paths in the Store become a name
//! and a `parentId`), roles, counts, rights, subscription.

use super::{method_error, properties, Call, MethodResult};
use serde_json::{json, Map, Value};
use tern_store::{Mailbox, MailboxId, Role};

const PROPERTIES: &[&str] = &[
    "id",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
    "isSubscribed",
];

pub use super::ids::mailbox_id;

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Inbox => "inbox",
        Role::Sent => "sent",
        Role::Drafts => "drafts",
        Role::Trash => "trash",
        Role::Junk => "junk",
        Role::Archive => "archive",
        Role::All => "all",
        Role::Flagged => "flagged",
        Role::Important => "important",
    }
}

pub async fn get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let wanted = properties(&args, PROPERTIES, |_| false)?;
    let ids: Option<Vec<String>> = match args.get("ids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            if list.len() > super::MAX_OBJECTS_IN_GET {
                return Err(method_error(
                    "requestTooLarge",
                    format!("at most {} ids per get", super::MAX_OBJECTS_IN_GET),
                ));
            }
            Some(
                list.iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| method_error("invalidArguments", "ids must be strings"))?,
            )
        }
        Some(_) => {
            return Err(method_error(
                "invalidArguments",
                "ids must be an array or null",
            ))
        }
    };
    let state = super::state(cx).await?;
    let store = cx.server.mail.store();
    let mailboxes = store
        .list_mailboxes(account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let chosen: Vec<&Mailbox> = match &ids {
        None => mailboxes.iter().collect(),
        Some(ids) => {
            let mut chosen = Vec::new();
            for id in ids {
                match mailboxes.iter().find(|m| &mailbox_id(m.id) == id) {
                    Some(m) => chosen.push(m),
                    None => not_found.push(json!(id)),
                }
            }
            chosen
        }
    };
    let want_threads = wanted
        .iter()
        .any(|p| p == "totalThreads" || p == "unreadThreads");
    for m in chosen {
        let counts = store
            .mailbox_counts(account, m.id)
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?;
        // A pass over the mailbox's threads: only when asked for.
        let (threads, unread_threads) = if want_threads {
            store
                .mailbox_thread_counts(account, m.id)
                .await
                .map_err(|e| method_error("serverFail", e.to_string()))?
        } else {
            (0, 0)
        };
        let (parent, name) = match m.name.rsplit_once('/') {
            Some((parent, name)) => (
                mailboxes
                    .iter()
                    .find(|p| p.name == parent)
                    .map(|p| json!(mailbox_id(p.id)))
                    .unwrap_or(Value::Null),
                name,
            ),
            None => (Value::Null, m.name.as_str()),
        };
        let all = json!({
            "id": mailbox_id(m.id),
            "name": name,
            "parentId": parent,
            "role": m.role.map(role_name),
            "sortOrder": if m.role == Some(Role::Inbox) { 0 } else { 10 },
            "totalEmails": counts.messages,
            "unreadEmails": counts.unseen,
            "totalThreads": threads,
            "unreadThreads": unread_threads,
            "myRights": {
                "mayReadItems": true, "mayAddItems": !m.noselect, "mayRemoveItems": true,
                "maySetSeen": true, "maySetKeywords": true, "mayCreateChild": true,
                "mayRename": m.role != Some(Role::Inbox), "mayDelete": m.role != Some(Role::Inbox),
                "maySubmit": true,
            },
            "isSubscribed": m.subscribed,
        });
        let object: Map<String, Value> = wanted
            .iter()
            .filter_map(|p| all.get(p).map(|v| (p.clone(), v.clone())))
            .collect();
        list.push(Value::Object(object));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "state": state,
        "list": list,
        "notFound": not_found,
    }))
}

use super::ids::parse_mailbox_id;

/// The full `/`-separated Store name of a mailbox called `name` under
/// `parent` (none: top level).
fn full_name(
    mailboxes: &[Mailbox],
    parent: Option<MailboxId>,
    name: &str,
) -> Result<String, Value> {
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
        return Err(json!({"type": "invalidProperties", "properties": ["name"],
            "description": "a name is not empty and has no '/' or control characters"}));
    }
    match parent {
        None => Ok(name.to_string()),
        Some(p) => mailboxes
            .iter()
            .find(|m| m.id == p)
            .map(|m| format!("{}/{name}", m.name))
            .ok_or_else(|| json!({"type": "invalidProperties", "properties": ["parentId"]})),
    }
}

fn parent_arg(v: Option<&Value>) -> Result<Option<Option<MailboxId>>, Value> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(id)) => parse_mailbox_id(id)
            .map(|m| Some(Some(m)))
            .ok_or_else(|| json!({"type": "invalidProperties", "properties": ["parentId"]})),
        Some(_) => Err(json!({"type": "invalidProperties", "properties": ["parentId"]})),
    }
}

fn store_error(e: tern_store::StoreError) -> Value {
    use tern_store::StoreError;
    match e {
        StoreError::AlreadyExists { .. } => {
            json!({"type": "invalidProperties", "properties": ["name"],
            "description": "a mailbox of that name exists"})
        }
        StoreError::Invalid(why) => json!({"type": "forbidden", "description": why}),
        StoreError::NotFound { .. } => json!({"type": "notFound"}),
        other => json!({"type": "serverFail", "description": other.to_string()}),
    }
}

/// One `Mailbox/set` create; `Err` only for a server failure, the inner
/// result is the created object or its SetError. `#id` parents are looked
/// up among `created`.
async fn create_one(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    spec: &Value,
    created: &Map<String, Value>,
) -> Result<Result<Value, Value>, Value> {
    let store = cx.server.mail.store();
    let mailboxes = store
        .list_mailboxes(account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    Ok(async {
        let spec = spec
            .as_object()
            .ok_or_else(|| json!({"type": "invalidProperties"}))?;
        let name = spec.get("name").and_then(Value::as_str).unwrap_or("");
        let parent_value = match spec.get("parentId").and_then(Value::as_str) {
            Some(p) if p.starts_with('#') => created
                .get(&p[1..])
                .and_then(|c| c.get("id"))
                .cloned()
                .ok_or_else(|| json!({"type": "invalidProperties", "properties": ["parentId"]}))
                .map(Some)?,
            _ => spec.get("parentId").cloned(),
        };
        let parent = parent_arg(parent_value.as_ref())?.flatten();
        if spec.get("role").is_some_and(|r| !r.is_null()) {
            return Err(json!({"type": "invalidProperties", "properties": ["role"],
                "description": "roles are given by the server"}));
        }
        let full = full_name(&mailboxes, parent, name)?;
        let m = store
            .create_mailbox(account, &full, None)
            .await
            .map_err(store_error)?;
        if spec.get("isSubscribed") == Some(&Value::Bool(false)) {
            store
                .subscribe_mailbox(account, m.id, false)
                .await
                .map_err(store_error)?;
        }
        Ok(
            json!({"id": mailbox_id(m.id), "totalEmails": 0, "unreadEmails": 0,
                  "totalThreads": 0, "unreadThreads": 0}),
        )
    }
    .await)
}

/// `Mailbox/set` (RFC 8621 §2.5): create (name, parentId, isSubscribed),
/// update (rename, move, subscribe) and destroy (empty ones, or with
/// `onDestroyRemoveEmails`; never INBOX or a mailbox with children).
pub async fn set(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let store = cx.server.mail.store();
    let old_state = super::state(cx).await?;
    if let Some(expected) = args.get("ifInState").and_then(Value::as_str) {
        if expected != old_state {
            return Err(method_error("stateMismatch", "the state has moved on"));
        }
    }
    let fail = |e| method_error("serverFail", format!("{e}"));
    let (mut created, mut not_created) = (Map::new(), Map::new());
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    if let Some(Value::Object(create)) = args.get("create") {
        // A parent may be another creation of this call (`#id`, RFC 8620
        // §5.3), in any order: each pass creates those whose parent
        // exists, until a pass makes no progress.
        let mut pending: Vec<(&String, &Value)> = create.iter().collect();
        loop {
            let waiting_for = |spec: &Value, created: &Map<String, Value>| {
                spec.get("parentId")
                    .and_then(Value::as_str)
                    .and_then(|p| p.strip_prefix('#'))
                    .filter(|c| create.contains_key(*c) && !created.contains_key(*c))
                    .is_some()
            };
            let before = pending.len();
            let (ready, later): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(_, spec)| !waiting_for(spec, &created));
            pending = later;
            if ready.is_empty() {
                break;
            }
            for (creation_id, spec) in ready {
                let result = create_one(cx, account, spec, &created).await?;
                match result {
                    Ok(v) => {
                        created.insert(creation_id.clone(), v);
                    }
                    Err(e) => {
                        not_created.insert(creation_id.clone(), e);
                    }
                }
            }
            if pending.len() == before {
                break;
            }
        }
        // Parents that failed, or a cycle.
        for (creation_id, _) in pending {
            not_created.insert(
                creation_id.clone(),
                json!({"type": "invalidProperties", "properties": ["parentId"],
                       "description": "the parent was not created"}),
            );
        }
    }
    if let Some(Value::Object(update)) = args.get("update") {
        for (id, patch) in update {
            let mailboxes = store.list_mailboxes(account).await.map_err(fail)?;
            let result: Result<(), Value> = async {
                let m = parse_mailbox_id(id)
                    .and_then(|m| mailboxes.iter().find(|x| x.id == m))
                    .ok_or_else(|| json!({"type": "notFound"}))?;
                let patch = patch.as_object().ok_or_else(|| json!({"type": "invalidPatch"}))?;
                let (old_parent, old_leaf) = match m.name.rsplit_once('/') {
                    Some((p, leaf)) => (mailboxes.iter().find(|x| x.name == p).map(|x| x.id), leaf),
                    None => (None, m.name.as_str()),
                };
                let name = patch.get("name").and_then(Value::as_str).unwrap_or(old_leaf);
                let parent = parent_arg(patch.get("parentId"))?.unwrap_or(old_parent);
                let full = full_name(&mailboxes, parent, name)?;
                if full != m.name {
                    store.rename_mailbox(account, m.id, &full).await.map_err(store_error)?;
                }
                if let Some(sub) = patch.get("isSubscribed").and_then(Value::as_bool) {
                    store.subscribe_mailbox(account, m.id, sub).await.map_err(store_error)?;
                }
                if patch.keys().any(|k| !["name", "parentId", "isSubscribed", "sortOrder"].contains(&k.as_str())) {
                    return Err(json!({"type": "invalidProperties",
                        "description": "only name, parentId, isSubscribed and sortOrder can change"}));
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) => {
                    updated.insert(id.clone(), Value::Null);
                }
                Err(e) => {
                    not_updated.insert(id.clone(), e);
                }
            }
        }
    }
    if let Some(Value::Array(destroy)) = args.get("destroy") {
        let remove_emails = args
            .get("onDestroyRemoveEmails")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for id in destroy.iter().filter_map(Value::as_str) {
            let result: Result<(), Value> = async {
                let m = parse_mailbox_id(id).ok_or_else(|| json!({"type": "notFound"}))?;
                let counts = store
                    .mailbox_counts(account, m)
                    .await
                    .map_err(store_error)?;
                if counts.messages > 0 && !remove_emails {
                    return Err(json!({"type": "mailboxHasEmail"}));
                }
                let mailboxes = store.list_mailboxes(account).await.map_err(store_error)?;
                let this = mailboxes
                    .iter()
                    .find(|x| x.id == m)
                    .ok_or_else(|| json!({"type": "notFound"}))?;
                let prefix = format!("{}/", this.name);
                if mailboxes.iter().any(|x| x.name.starts_with(&prefix)) {
                    return Err(json!({"type": "mailboxHasChild"}));
                }
                store.delete_mailbox(account, m).await.map_err(store_error)
            }
            .await;
            match result {
                Ok(()) => destroyed.push(json!(id)),
                Err(e) => {
                    not_destroyed.insert(id.to_string(), e);
                }
            }
        }
    }
    let new_state = super::state(cx).await?;
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": old_state,
        "newState": new_state,
        "created": super::map_or_null(created),
        "updated": super::map_or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { Value::Array(destroyed) },
        "notCreated": super::map_or_null(not_created),
        "notUpdated": super::map_or_null(not_updated),
        "notDestroyed": super::map_or_null(not_destroyed),
    }))
}

/// `Mailbox/query` (RFC 8621 §2.3): the account's mailboxes, filtered by
/// `parentId`, `name`, `role`, `hasAnyRole`, `isSubscribed`, sorted by
/// `name` or `sortOrder` (tree order otherwise).
pub async fn query(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let state = super::state(cx).await?;
    let all = matching(cx, account, &args).await?;
    let total = all.len();
    let (position, page) = super::page_of(&args, &all);
    let ids: Vec<String> = all[page].iter().map(|m| mailbox_id(*m)).collect();
    Ok(json!({
        "accountId": super::account_id(account),
        "queryState": state,
        "canCalculateChanges": true,
        "position": position,
        "ids": ids,
        "total": total,
    }))
}

/// `Mailbox/queryChanges` (RFC 8620 §5.6): every mailbox created, renamed,
/// changed or destroyed since the old state is given as removed, and
/// those in the results now as added at their index (a rename may move a
/// mailbox; nothing else does).
pub async fn query_changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = super::required_str(&args, "sinceQueryState")?;
    let changed = super::changes::mailboxes_changed_since(cx, account, since).await?;
    super::within_max_changes(&args, changed.len())?;
    let state = super::state(cx).await?;
    let all = matching(cx, account, &args).await?;
    let added: Vec<Value> = all
        .iter()
        .enumerate()
        .filter(|(_, m)| changed.contains(m))
        .map(|(i, m)| json!({ "id": mailbox_id(*m), "index": i }))
        .collect();
    Ok(json!({
        "accountId": super::account_id(account),
        "oldQueryState": since,
        "newQueryState": state,
        "removed": changed.iter().map(|m| mailbox_id(*m)).collect::<Vec<_>>(),
        "added": added,
        "total": all.len(),
    }))
}

/// The mailboxes a query's filter matches, in its order.
async fn matching(
    cx: &Call<'_>,
    account: tern_store::AccountId,
    args: &Map<String, Value>,
) -> Result<Vec<MailboxId>, Value> {
    let mut mailboxes = cx
        .server
        .mail
        .store()
        .list_mailboxes(account)
        .await
        .map_err(|e| method_error("serverFail", e.to_string()))?;
    let parent_of =
        |m: &Mailbox| -> Option<String> { m.name.rsplit_once('/').map(|(p, _)| p.to_string()) };
    let names: Vec<(MailboxId, String)> =
        mailboxes.iter().map(|m| (m.id, m.name.clone())).collect();
    if let Some(Value::Object(filter)) = args.get("filter") {
        for (key, value) in filter {
            let keep: Box<dyn Fn(&Mailbox) -> bool> = match (key.as_str(), value) {
                ("parentId", Value::Null) => Box::new(|m| parent_of(m).is_none()),
                ("parentId", Value::String(id)) => {
                    let parent = names
                        .iter()
                        .find(|(i, _)| mailbox_id(*i) == *id)
                        .map(|(_, n)| n.clone());
                    Box::new(move |m| parent.is_some() && parent_of(m) == parent)
                }
                ("name", Value::String(n)) => {
                    let n = n.to_lowercase();
                    Box::new(move |m| {
                        m.name
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_lowercase()
                            .contains(&n)
                    })
                }
                ("role", Value::Null) => Box::new(|m| m.role.is_none()),
                ("role", Value::String(r)) => {
                    let r = r.clone();
                    Box::new(move |m| m.role.map(role_name) == Some(r.as_str()))
                }
                ("hasAnyRole", Value::Bool(b)) => {
                    let b = *b;
                    Box::new(move |m| m.role.is_some() == b)
                }
                ("isSubscribed", Value::Bool(b)) => {
                    let b = *b;
                    Box::new(move |m| m.subscribed == b)
                }
                (other, _) => {
                    return Err(method_error(
                        "unsupportedFilter",
                        format!("{other} is not supported"),
                    ))
                }
            };
            mailboxes.retain(|m| keep(m));
        }
    }
    let by_name = args
        .get("sort")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .and_then(|c| c.get("property"))
        .and_then(Value::as_str)
        == Some("name");
    if by_name {
        mailboxes.sort_by_key(|m| m.name.rsplit('/').next().unwrap_or("").to_lowercase());
    } else {
        // Tree order: INBOX first, then by path.
        mailboxes.sort_by_key(|m| (m.role != Some(Role::Inbox), m.name.to_lowercase()));
    }
    Ok(mailboxes.iter().map(|m| m.id).collect())
}
