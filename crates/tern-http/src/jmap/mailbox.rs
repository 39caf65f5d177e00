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

pub fn mailbox_id(id: MailboxId) -> String {
    format!("m{}", id.0)
}

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
    let wanted = properties(&args, PROPERTIES)?;
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
    for m in chosen {
        let counts = store
            .mailbox_counts(account, m.id)
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?;
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
            // Threads are counted as emails until the Store counts them.
            "totalThreads": counts.messages,
            "unreadThreads": counts.unseen,
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
