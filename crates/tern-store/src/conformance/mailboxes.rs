//! Conformance cases: Mailbox hierarchy, renames, deletes and UIDVALIDITY.

use super::*;

pub async fn mailbox_hierarchy(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let child = store
        .create_mailbox(a.id, "Projects/2026/Tern", None)
        .await
        .unwrap();
    assert_eq!(child.name, "Projects/2026/Tern");
    assert!(store
        .mailbox_by_name(a.id, "Projects")
        .await
        .unwrap()
        .is_some());
    assert!(store
        .mailbox_by_name(a.id, "Projects/2026")
        .await
        .unwrap()
        .is_some());
    assert!(matches!(
        store.create_mailbox(a.id, "Projects", None).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.create_mailbox(a.id, "bad//name", None).await,
        Err(StoreError::Invalid(_))
    ));
    // INBOX is case-insensitive.
    assert_eq!(
        store
            .mailbox_by_name(a.id, "inbox")
            .await
            .unwrap()
            .unwrap()
            .role,
        Some(Role::Inbox)
    );
    // A second mailbox with an existing role is refused.
    assert!(store
        .create_mailbox(a.id, "Other Trash", Some(Role::Trash))
        .await
        .is_err());

    let projects = store
        .mailbox_by_name(a.id, "Projects")
        .await
        .unwrap()
        .unwrap();
    store
        .rename_mailbox(a.id, projects.id, "Work/Projects")
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_mailboxes(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for expected in [
        "Work",
        "Work/Projects",
        "Work/Projects/2026",
        "Work/Projects/2026/Tern",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with("Projects")),
        "{names:?}"
    );
    // The renamed child kept its id.
    assert_eq!(
        store.mailbox(a.id, child.id).await.unwrap().name,
        "Work/Projects/2026/Tern"
    );
    // Renaming into an existing name or under itself fails.
    let sent = store
        .mailbox_by_role(a.id, Role::Sent)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.rename_mailbox(a.id, sent.id, "Drafts").await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let work = store.mailbox_by_name(a.id, "Work").await.unwrap().unwrap();
    assert!(store
        .rename_mailbox(a.id, work.id, "Work/Inner")
        .await
        .is_err());

    store.subscribe_mailbox(a.id, sent.id, false).await.unwrap();
    assert!(!store.mailbox(a.id, sent.id).await.unwrap().subscribed);
    // Another account cannot see this mailbox.
    let other = account(&store, "v@example.test").await;
    assert!(matches!(
        store.mailbox(other.id, sent.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn non_ascii_hierarchy(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let parent = store.create_mailbox(a.id, "Entwürfe", None).await.unwrap();
    store
        .create_mailbox(a.id, "Entwürfe/2024", None)
        .await
        .unwrap();
    // The child is seen: DELETE keeps the parent as \Noselect.
    store.delete_mailbox(a.id, parent.id).await.unwrap();
    assert!(store.mailbox(a.id, parent.id).await.unwrap().noselect);
    store
        .rename_mailbox(a.id, parent.id, "Brouillons/Été")
        .await
        .unwrap();
    assert!(store
        .mailbox_by_name(a.id, "Brouillons/Été/2024")
        .await
        .unwrap()
        .is_some());
    assert!(store
        .mailbox_by_name(a.id, "Entwürfe/2024")
        .await
        .unwrap()
        .is_none());
}

pub async fn subscriptions_are_journalled(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let sent = store
        .mailbox_by_role(a.id, Role::Sent)
        .await
        .unwrap()
        .unwrap();
    let before = store.highest_modseq(a.id).await.unwrap();
    store.subscribe_mailbox(a.id, sent.id, false).await.unwrap();
    let changes = store.account_changes(a.id, before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].kind,
        ChangeKind::MailboxUpdated {
            mailbox_id: sent.id
        }
    );
    // Setting what is already set changes nothing.
    store.subscribe_mailbox(a.id, sent.id, false).await.unwrap();
    assert_eq!(store.highest_modseq(a.id).await.unwrap(), changes[0].modseq);
}

pub async fn rename_inbox(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let inbox = inbox(&store, &a).await;
    deliver_to(&store, &a, message("one", "1")).await;
    deliver_to(&store, &a, message("two", "2")).await;
    store
        .rename_mailbox(a.id, inbox.id, "Old Mail")
        .await
        .unwrap();
    let old = store
        .mailbox_by_name(a.id, "Old Mail")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.list_messages(a.id, old.id).await.unwrap().len(), 2);
    assert!(store
        .list_messages(a.id, inbox.id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.mailbox(a.id, inbox.id).await.unwrap().name, "INBOX");
}

pub async fn mailbox_delete(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let inbox = inbox(&store, &a).await;
    assert!(store.delete_mailbox(a.id, inbox.id).await.is_err());
    let parent = store.create_mailbox(a.id, "P", None).await.unwrap();
    let child = store.create_mailbox(a.id, "P/C", None).await.unwrap();
    let in_parent = store
        .append(a.id, parent.id, (message("p", "p")).into(), vec![], 1)
        .await
        .unwrap();
    // With children, DELETE empties the mailbox and keeps the name as their
    // \Noselect parent (RFC 9051 §6.3.4); the children are untouched.
    store.delete_mailbox(a.id, parent.id).await.unwrap();
    let kept = store.mailbox(a.id, parent.id).await.unwrap();
    assert!(kept.noselect);
    assert!(store
        .list_messages(a.id, parent.id)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.email(a.id, in_parent.email_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!store.mailbox(a.id, child.id).await.unwrap().noselect);
    // It holds no messages, and deleting it again while it has children fails.
    assert!(matches!(
        store
            .append(a.id, parent.id, (message("x", "x")).into(), vec![], 1)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.delete_mailbox(a.id, parent.id).await,
        Err(StoreError::HasChildren { .. })
    ));
    let d = store
        .append(a.id, child.id, (message("x", "y")).into(), vec![], 1)
        .await
        .unwrap();
    assert!(store.quota(a.id).await.unwrap().used_bytes > 0);
    store.delete_mailbox(a.id, child.id).await.unwrap();
    assert!(store.mailbox_by_name(a.id, "P/C").await.unwrap().is_none());
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, 0);
    assert!(matches!(
        store.email(a.id, d.email_id).await,
        Err(StoreError::NotFound { .. })
    ));
    // CREATE makes a \Noselect name a mailbox again.
    let again = store.create_mailbox(a.id, "P", None).await.unwrap();
    assert_eq!(again.id, parent.id);
    assert!(!again.noselect);
    store.delete_mailbox(a.id, parent.id).await.unwrap();
    assert!(store.mailbox_by_name(a.id, "P").await.unwrap().is_none());
}

pub async fn uid_validity_is_never_reused(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let first = store.create_mailbox(a.id, "Box", None).await.unwrap();
    store.delete_mailbox(a.id, first.id).await.unwrap();
    let second = store.create_mailbox(a.id, "Box", None).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_ne!(first.uid_validity, second.uid_validity);
    assert!(first.uid_validity > 0);
}
