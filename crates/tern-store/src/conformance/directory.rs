//! Conformance cases: Domains, accounts and aliases.

use super::*;

pub async fn domains(store: Arc<dyn Store>) {
    let d = store.add_domain("Example.TEST").await.unwrap();
    assert_eq!(d.name, "example.test");
    assert!(matches!(
        store.add_domain("example.test").await,
        Err(StoreError::AlreadyExists { .. })
    ));
    store.add_domain("other.test").await.unwrap();
    let names: Vec<String> = store
        .list_domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["example.test", "other.test"]);
    account(&store, "u@example.test").await;
    assert!(matches!(
        store.remove_domain("example.test").await,
        Err(StoreError::DomainInUse { accounts: 1, .. })
    ));
    store.remove_domain("other.test").await.unwrap();
    assert!(matches!(
        store.remove_domain("other.test").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn quota_bounds(store: Arc<dyn Store>) {
    account(&store, "q@example.test").await;
    assert!(matches!(
        store.set_quota("q@example.test", Some(u64::MAX)).await,
        Err(StoreError::Invalid(_))
    ));
    store
        .set_quota("q@example.test", Some(i64::MAX as u64))
        .await
        .unwrap();
}

pub async fn accounts(store: Arc<dyn Store>) {
    assert!(matches!(
        store
            .create_account(NewAccount {
                address: "x@nowhere.test".into(),
                password_hash: "h".into(),
                quota_bytes: None
            })
            .await,
        Err(StoreError::NotFound { what: "domain", .. })
    ));
    let a = account(&store, "Bob@Example.test").await;
    assert_eq!(a.address, "bob@example.test");
    let dup = store
        .create_account(NewAccount {
            address: "BOB@example.test".into(),
            password_hash: "h".into(),
            quota_bytes: None,
        })
        .await;
    assert!(
        matches!(dup, Err(StoreError::AlreadyExists { .. })),
        "{dup:?}"
    );
    let found = store
        .account_by_address("BOB@EXAMPLE.TEST")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, a.id);
    assert!(store
        .account_by_address("nobody@example.test")
        .await
        .unwrap()
        .is_none());

    let mailboxes = store.list_mailboxes(a.id).await.unwrap();
    for (name, role) in DEFAULT_MAILBOXES {
        let m = mailboxes
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(m.role, Some(role));
        assert_eq!(m.uid_next, Uid(1));
    }

    store
        .set_password("bob@example.test", "new-hash")
        .await
        .unwrap();
    assert_eq!(store.account(a.id).await.unwrap().password_hash, "new-hash");
    store
        .set_quota("bob@example.test", Some(1000))
        .await
        .unwrap();
    assert_eq!(
        store.quota(a.id).await.unwrap(),
        Quota {
            used_bytes: 0,
            limit_bytes: Some(1000)
        }
    );
    assert!(matches!(
        store.set_password("nobody@example.test", "h").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

pub async fn aliases(store: Arc<dyn Store>) {
    account(&store, "bob@example.test").await;
    store
        .set_alias(Alias {
            address: "Sales@example.test".into(),
            targets: vec!["bob@example.test".into(), "ext@remote.test".into()],
        })
        .await
        .unwrap();
    store
        .set_alias(Alias {
            address: "@example.test".into(),
            targets: vec!["bob@example.test".into()],
        })
        .await
        .unwrap();
    let sales = store.alias("sales@example.test").await.unwrap().unwrap();
    assert_eq!(sales.targets, ["bob@example.test", "ext@remote.test"]);
    assert_eq!(store.list_aliases().await.unwrap().len(), 2);
    // Replacing keeps one row.
    store
        .set_alias(Alias {
            address: "sales@example.test".into(),
            targets: vec!["bob@example.test".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .alias("sales@example.test")
            .await
            .unwrap()
            .unwrap()
            .targets
            .len(),
        1
    );
    // An alias may not shadow an account, nor live in an unknown domain.
    assert!(store
        .set_alias(Alias {
            address: "bob@example.test".into(),
            targets: vec!["x@y.test".into()]
        })
        .await
        .is_err());
    assert!(store
        .set_alias(Alias {
            address: "a@unknown.test".into(),
            targets: vec!["x@y.test".into()]
        })
        .await
        .is_err());
    store.remove_alias("sales@example.test").await.unwrap();
    assert!(store.alias("sales@example.test").await.unwrap().is_none());
    assert!(matches!(
        store.remove_alias("sales@example.test").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn remove_account_removes_mail(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let raw = message("shared", "x");
    let results = store
        .deliver(Delivery {
            message: raw.into(),
            recipients: vec![DeliveryTarget::inbox(a.id), DeliveryTarget::inbox(b.id)],
            received_at: 1,
        })
        .await
        .unwrap();
    let eb = results[1].as_ref().unwrap().email_id;
    // Mail only `a` has, in two copies, and one with flags in another mailbox.
    let own = deliver_to(&store, &a, message("own", "only a has this")).await;
    let archive = mailbox(&store, &a, Role::Archive).await;
    store
        .copy_messages(a.id, own.mailbox_id, &[own.uid], archive.id)
        .await
        .unwrap();
    let mut rx = store.subscribe(a.id);
    rx.borrow_and_update();
    store.remove_account("a@example.test").await.unwrap();
    // Sessions of the account are told, so they can find it gone.
    assert!(rx.has_changed().unwrap());
    assert!(store
        .account_by_address("a@example.test")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.list_mailboxes(a.id).await.map(|v| v.len()),
        Ok(0) | Err(_)
    ));
    // b's copy of the shared blob survives.
    let e = store.email(b.id, eb).await.unwrap();
    assert!(!store.read_blob(b.id, &e.blob_id).await.unwrap().is_empty());
    assert!(matches!(
        store.remove_account("a@example.test").await,
        Err(StoreError::NotFound { .. })
    ));
    // The address can be used again.
    account(&store, "a@example.test").await;
}

pub async fn account_settings_and_auto_replies(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    assert_eq!(store.account_setting(a.id, "vacation").await.unwrap(), None);
    store
        .set_account_setting(a.id, "vacation", Some("{\"isEnabled\":true}"))
        .await
        .unwrap();
    assert_eq!(
        store
            .account_setting(a.id, "vacation")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"isEnabled\":true}")
    );
    // Settings by prefix: a range of names, nothing else.
    for name in ["tok:a", "tok:b", "tol", "to"] {
        store
            .set_account_setting(a.id, name, Some("1"))
            .await
            .unwrap();
    }
    let found: Vec<String> = store
        .account_settings_with_prefix(a.id, "tok:")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(found, ["tok:a", "tok:b"]);
    store
        .set_account_setting(a.id, "vacation", None)
        .await
        .unwrap();
    assert_eq!(store.account_setting(a.id, "vacation").await.unwrap(), None);
    // One automatic reply per correspondent and period.
    let week = 7 * 86_400;
    assert!(store
        .auto_reply_due(a.id, "X@remote.test", 1000, week)
        .await
        .unwrap());
    assert!(!store
        .auto_reply_due(a.id, "x@remote.test", 2000, week)
        .await
        .unwrap());
    assert!(store
        .auto_reply_due(a.id, "y@remote.test", 2000, week)
        .await
        .unwrap());
    assert!(store
        .auto_reply_due(a.id, "x@remote.test", 1000 + week, week)
        .await
        .unwrap());
    // A missing account has no settings to set.
    assert!(store
        .set_account_setting(AccountId(9999), "vacation", Some("{}"))
        .await
        .is_err());
}
