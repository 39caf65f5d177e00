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
//! where `fixture` is an `async fn() -> Fixture` giving a fresh, empty store.

use crate::search::SearchKey;
use crate::types::*;
use crate::{Store, StoreError};
use std::any::Any;
use std::sync::Arc;

/// A fresh store and whatever keeps it alive (a temporary directory, a
/// scratch database); dropped at the end of the case.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub guard: Box<dyn Any + Send>,
}

/// Generates one test per conformance case for the backend whose fixture
/// constructor is given.
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::conformance_tests!(@cases $fixture;
            domains, accounts, aliases, mailbox_hierarchy, rename_inbox, mailbox_delete,
            uid_validity_is_never_reused, deliver_stores_one_blob, deliver_over_quota_fails_alone,
            append_round_trips_exactly, parsed_metadata_is_kept, keywords, conditional_keywords,
            copy, move_keeps_the_email, expunge, journal_and_tombstones, account_changes,
            search, notifications_after_commit, concurrent_deliveries, threading,
            remove_account_removes_mail, close_refuses_further_work);
    };
    (@cases $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $fixture().await;
                $crate::conformance::$case(fixture.store.clone()).await;
                drop(fixture);
            }
        )*
    };
}

/// A small RFC 5322 message.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.net>\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.net>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn account(store: &Arc<dyn Store>, address: &str) -> Account {
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("example.test");
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

async fn inbox(store: &Arc<dyn Store>, a: &Account) -> Mailbox {
    store.mailbox_by_role(a.id, Role::Inbox).await.unwrap().expect("INBOX")
}

async fn deliver_to(store: &Arc<dyn Store>, a: &Account, raw: Vec<u8>) -> Delivered {
    store
        .deliver(Delivery {
            raw,
            recipients: vec![DeliveryTarget::inbox(a.id)],
            received_at: 1_800_000_000,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap()
}

fn uids(entries: &[MessageEntry]) -> Vec<u32> {
    entries.iter().map(|e| e.uid.0).collect()
}

pub async fn domains(store: Arc<dyn Store>) {
    let d = store.add_domain("Example.TEST").await.unwrap();
    assert_eq!(d.name, "example.test");
    assert!(matches!(store.add_domain("example.test").await, Err(StoreError::AlreadyExists { .. })));
    store.add_domain("other.test").await.unwrap();
    let names: Vec<String> = store.list_domains().await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["example.test", "other.test"]);
    account(&store, "u@example.test").await;
    assert!(matches!(store.remove_domain("example.test").await, Err(StoreError::DomainInUse { accounts: 1, .. })));
    store.remove_domain("other.test").await.unwrap();
    assert!(matches!(store.remove_domain("other.test").await, Err(StoreError::NotFound { .. })));
}

pub async fn accounts(store: Arc<dyn Store>) {
    assert!(matches!(
        store
            .create_account(NewAccount { address: "x@nowhere.test".into(), password_hash: "h".into(), quota_bytes: None })
            .await,
        Err(StoreError::NotFound { what: "domain", .. })
    ));
    let a = account(&store, "Bob@Example.test").await;
    assert_eq!(a.address, "bob@example.test");
    let dup = store
        .create_account(NewAccount { address: "BOB@example.test".into(), password_hash: "h".into(), quota_bytes: None })
        .await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists { .. })), "{dup:?}");
    let found = store.account_by_address("BOB@EXAMPLE.TEST").await.unwrap().unwrap();
    assert_eq!(found.id, a.id);
    assert!(store.account_by_address("nobody@example.test").await.unwrap().is_none());

    let mailboxes = store.list_mailboxes(a.id).await.unwrap();
    for (name, role) in DEFAULT_MAILBOXES {
        let m = mailboxes.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(m.role, Some(role));
        assert_eq!(m.uid_next, Uid(1));
    }

    store.set_password("bob@example.test", "new-hash").await.unwrap();
    assert_eq!(store.account(a.id).await.unwrap().password_hash, "new-hash");
    store.set_quota("bob@example.test", Some(1000)).await.unwrap();
    assert_eq!(store.quota(a.id).await.unwrap(), Quota { used_bytes: 0, limit_bytes: Some(1000) });
    assert!(matches!(store.set_password("nobody@example.test", "h").await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

pub async fn aliases(store: Arc<dyn Store>) {
    account(&store, "bob@example.test").await;
    store
        .set_alias(Alias { address: "Sales@example.test".into(), targets: vec!["bob@example.test".into(), "ext@remote.test".into()] })
        .await
        .unwrap();
    store.set_alias(Alias { address: "@example.test".into(), targets: vec!["bob@example.test".into()] }).await.unwrap();
    let sales = store.alias("sales@example.test").await.unwrap().unwrap();
    assert_eq!(sales.targets, ["bob@example.test", "ext@remote.test"]);
    assert_eq!(store.list_aliases().await.unwrap().len(), 2);
    // Replacing keeps one row.
    store.set_alias(Alias { address: "sales@example.test".into(), targets: vec!["bob@example.test".into()] }).await.unwrap();
    assert_eq!(store.alias("sales@example.test").await.unwrap().unwrap().targets.len(), 1);
    // An alias may not shadow an account, nor live in an unknown domain.
    assert!(store.set_alias(Alias { address: "bob@example.test".into(), targets: vec!["x@y.test".into()] }).await.is_err());
    assert!(store.set_alias(Alias { address: "a@unknown.test".into(), targets: vec!["x@y.test".into()] }).await.is_err());
    store.remove_alias("sales@example.test").await.unwrap();
    assert!(store.alias("sales@example.test").await.unwrap().is_none());
    assert!(matches!(store.remove_alias("sales@example.test").await, Err(StoreError::NotFound { .. })));
}

pub async fn mailbox_hierarchy(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let child = store.create_mailbox(a.id, "Projects/2026/Tern", None).await.unwrap();
    assert_eq!(child.name, "Projects/2026/Tern");
    assert!(store.mailbox_by_name(a.id, "Projects").await.unwrap().is_some());
    assert!(store.mailbox_by_name(a.id, "Projects/2026").await.unwrap().is_some());
    assert!(matches!(store.create_mailbox(a.id, "Projects", None).await, Err(StoreError::AlreadyExists { .. })));
    assert!(matches!(store.create_mailbox(a.id, "bad//name", None).await, Err(StoreError::Invalid(_))));
    // INBOX is case-insensitive.
    assert_eq!(store.mailbox_by_name(a.id, "inbox").await.unwrap().unwrap().role, Some(Role::Inbox));
    // A second mailbox with an existing role is refused.
    assert!(store.create_mailbox(a.id, "Other Trash", Some(Role::Trash)).await.is_err());

    let projects = store.mailbox_by_name(a.id, "Projects").await.unwrap().unwrap();
    store.rename_mailbox(a.id, projects.id, "Work/Projects").await.unwrap();
    let names: Vec<String> = store.list_mailboxes(a.id).await.unwrap().into_iter().map(|m| m.name).collect();
    for expected in ["Work", "Work/Projects", "Work/Projects/2026", "Work/Projects/2026/Tern"] {
        assert!(names.contains(&expected.to_string()), "{expected} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("Projects")), "{names:?}");
    // The renamed child kept its id.
    assert_eq!(store.mailbox(a.id, child.id).await.unwrap().name, "Work/Projects/2026/Tern");
    // Renaming into an existing name or under itself fails.
    let sent = store.mailbox_by_role(a.id, Role::Sent).await.unwrap().unwrap();
    assert!(matches!(store.rename_mailbox(a.id, sent.id, "Drafts").await, Err(StoreError::AlreadyExists { .. })));
    let work = store.mailbox_by_name(a.id, "Work").await.unwrap().unwrap();
    assert!(store.rename_mailbox(a.id, work.id, "Work/Inner").await.is_err());

    store.subscribe_mailbox(a.id, sent.id, false).await.unwrap();
    assert!(!store.mailbox(a.id, sent.id).await.unwrap().subscribed);
    // Another account cannot see this mailbox.
    let other = account(&store, "v@example.test").await;
    assert!(matches!(store.mailbox(other.id, sent.id).await, Err(StoreError::NotFound { .. })));
}

pub async fn rename_inbox(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let inbox = inbox(&store, &a).await;
    deliver_to(&store, &a, message("one", "1")).await;
    deliver_to(&store, &a, message("two", "2")).await;
    store.rename_mailbox(a.id, inbox.id, "Old Mail").await.unwrap();
    let old = store.mailbox_by_name(a.id, "Old Mail").await.unwrap().unwrap();
    assert_eq!(store.list_messages(a.id, old.id).await.unwrap().len(), 2);
    assert!(store.list_messages(a.id, inbox.id).await.unwrap().is_empty());
    assert_eq!(store.mailbox(a.id, inbox.id).await.unwrap().name, "INBOX");
}

pub async fn mailbox_delete(store: Arc<dyn Store>) {
    let a = account(&store, "u@example.test").await;
    let inbox = inbox(&store, &a).await;
    assert!(store.delete_mailbox(a.id, inbox.id).await.is_err());
    let parent = store.create_mailbox(a.id, "P", None).await.unwrap();
    let child = store.create_mailbox(a.id, "P/C", None).await.unwrap();
    assert!(matches!(store.delete_mailbox(a.id, parent.id).await, Err(StoreError::HasChildren { .. })));
    let d = store.append(a.id, child.id, message("x", "y"), vec![], 1).await.unwrap();
    let used = store.quota(a.id).await.unwrap().used_bytes;
    assert!(used > 0);
    store.delete_mailbox(a.id, child.id).await.unwrap();
    assert!(store.mailbox_by_name(a.id, "P/C").await.unwrap().is_none());
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, 0);
    assert!(matches!(store.email(a.id, d.email_id).await, Err(StoreError::NotFound { .. })));
    store.delete_mailbox(a.id, parent.id).await.unwrap();
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

pub async fn deliver_stores_one_blob(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let raw = message("hello", "the body");
    let results = store
        .deliver(Delivery {
            raw: raw.clone(),
            recipients: vec![DeliveryTarget::inbox(a.id), DeliveryTarget::inbox(b.id)],
            received_at: 1_800_000_000,
        })
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    let da = results[0].as_ref().unwrap();
    let db = results[1].as_ref().unwrap();
    assert_eq!((da.account_id, db.account_id), (a.id, b.id));
    assert_eq!(da.uid, Uid(1));
    let ea = store.email(a.id, da.email_id).await.unwrap();
    let eb = store.email(b.id, db.email_id).await.unwrap();
    assert_eq!(ea.blob_id, eb.blob_id, "one blob for both recipients");
    assert_ne!(ea.id, eb.id);
    assert_eq!(store.read_blob(a.id, &ea.blob_id).await.unwrap(), raw);
    let second = deliver_to(&store, &a, message("again", "x")).await;
    assert_eq!(second.uid, Uid(2));
    let mb = inbox(&store, &a).await;
    assert_eq!(mb.uid_next, Uid(3));
    let counts = store.mailbox_counts(a.id, mb.id).await.unwrap();
    assert_eq!((counts.messages, counts.unseen, counts.deleted), (2, 2, 0));
    assert_eq!(counts.size, ea.size + store.email(a.id, second.email_id).await.unwrap().size);
    // Another account cannot read the blob, even knowing its id.
    let c = account(&store, "c@example.test").await;
    assert!(matches!(store.read_blob(c.id, &ea.blob_id).await, Err(StoreError::NotFound { .. })));
}

pub async fn deliver_over_quota_fails_alone(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    store.set_quota("b@example.test", Some(10)).await.unwrap();
    let results = store
        .deliver(Delivery {
            raw: message("big", &"x".repeat(100)),
            recipients: vec![DeliveryTarget::inbox(b.id), DeliveryTarget::inbox(a.id)],
            received_at: 1,
        })
        .await
        .unwrap();
    assert!(matches!(results[0], Err(StoreError::OverQuota { limit: 10, .. })), "{:?}", results[0]);
    assert!(results[1].is_ok());
    assert_eq!(store.quota(b.id).await.unwrap().used_bytes, 0);
    assert!(store.list_messages(b.id, inbox(&store, &b).await.id).await.unwrap().is_empty());
    // The failed recipient's modseq bookkeeping stayed consistent.
    let m = store.highest_modseq(b.id).await.unwrap();
    let later = deliver_to(&store, &a, message("later", "y")).await;
    assert!(later.modseq > results[1].as_ref().unwrap().modseq);
    store.set_quota("b@example.test", None).await.unwrap();
    let ok = deliver_to(&store, &b, message("small", "z")).await;
    assert!(ok.modseq > m);
}

pub async fn append_round_trips_exactly(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let drafts = store.mailbox_by_role(a.id, Role::Drafts).await.unwrap().unwrap();
    // Bytes that must survive untouched: bare LF, 8-bit, NUL, no final newline.
    let mut raw = b"Subject: =?utf-8?q?caf=C3=A9?=\nX: y\r\n\r\nbody \xff\x00 \xc3\xa9".to_vec();
    raw.extend_from_slice(&[b'z'; 3]);
    let d = store
        .append(a.id, drafts.id, raw.clone(), vec!["\\Draft".into(), "\\Seen".into()], 1_700_000_000)
        .await
        .unwrap();
    assert_eq!(d.mailbox_id, drafts.id);
    let e = store.email(a.id, d.email_id).await.unwrap();
    assert_eq!(store.read_blob(a.id, &e.blob_id).await.unwrap(), raw);
    assert_eq!(e.size, raw.len() as u64);
    assert_eq!(e.received_at, 1_700_000_000);
    assert_eq!(e.keywords, ["\\Draft", "\\Seen"]);
    let list = store.list_messages(a.id, drafts.id).await.unwrap();
    assert_eq!(list[0].keywords, ["\\Draft", "\\Seen"]);
    // Garbage is stored too: a mail store never refuses bytes it cannot parse.
    store.append(a.id, drafts.id, vec![0xff; 64], vec![], 1).await.unwrap();
    store.append(a.id, drafts.id, Vec::new(), vec![], 1).await.unwrap();
}

pub async fn parsed_metadata_is_kept(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let raw = b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.net>\r\nTo: a@example.test\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m1@example.net>\r\n\
Date: Tue, 3 Nov 2026 08:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n\r\nPDF\r\n--b--\r\n"
        .to_vec();
    let d = deliver_to(&store, &a, raw).await;
    let e = store.email(a.id, d.email_id).await.unwrap();
    assert_eq!(e.summary.subject, "Grüße");
    assert_eq!(e.envelope.subject.as_deref(), Some("=?utf-8?q?Gr=C3=BC=C3=9Fe?="));
    assert_eq!(e.summary.message_id.as_deref(), Some("m1@example.net"));
    assert_eq!(e.summary.sent_at, Some(1_793_689_200));
    assert_eq!(e.structure.media_type, "multipart");
    assert_eq!(e.structure.children.len(), 2);
    assert!(e.summary.has_attachment);
}

pub async fn keywords(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    let all = [d1.uid, d2.uid];
    let r = store
        .set_keywords(a.id, mb.id, &all, KeywordOp::Add, &["\\Seen".into(), "$Work".into()], None)
        .await
        .unwrap();
    assert_eq!(r.updated.len(), 2);
    assert!(r.updated.iter().all(|e| e.modseq > d2.modseq));
    let m1 = r.updated[0].modseq;
    let r = store.set_keywords(a.id, mb.id, &[d1.uid], KeywordOp::Remove, &["\\SEEN".into()], None).await.unwrap();
    assert_eq!(r.updated[0].keywords, ["$Work"]);
    assert!(r.updated[0].modseq > m1);
    let r = store.set_keywords(a.id, mb.id, &[d2.uid], KeywordOp::Replace, &["\\Flagged".into()], None).await.unwrap();
    assert_eq!(r.updated[0].keywords, ["\\Flagged"]);
    // No change, no new modseq.
    let before = store.highest_modseq(a.id).await.unwrap();
    let r = store.set_keywords(a.id, mb.id, &[d2.uid], KeywordOp::Add, &["\\flagged".into()], None).await.unwrap();
    assert!(r.updated.is_empty());
    assert_eq!(store.highest_modseq(a.id).await.unwrap(), before);
    let entries = store.list_messages(a.id, mb.id).await.unwrap();
    assert_eq!(entries[0].keywords, ["$Work"]);
    assert_eq!(entries[1].keywords, ["\\Flagged"]);
    let counts = store.mailbox_counts(a.id, mb.id).await.unwrap();
    assert_eq!(counts.unseen, 2);
    // UIDs that do not exist are ignored.
    let r = store.set_keywords(a.id, mb.id, &[Uid(99)], KeywordOp::Add, &["x".into()], None).await.unwrap();
    assert!(r.updated.is_empty() && r.modified.is_empty());
}

pub async fn conditional_keywords(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    // d2 was added after d1's modseq: UNCHANGEDSINCE d1 protects it.
    let r = store
        .set_keywords(a.id, mb.id, &[d1.uid, d2.uid], KeywordOp::Add, &["\\Seen".into()], Some(d1.modseq))
        .await
        .unwrap();
    assert_eq!(uids(&r.updated), [d1.uid.0]);
    assert_eq!(r.modified, [d2.uid]);
}

pub async fn copy(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let archive = store.mailbox_by_role(a.id, Role::Archive).await.unwrap().unwrap();
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    store.set_keywords(a.id, mb.id, &[d1.uid], KeywordOp::Add, &["\\Seen".into()], None).await.unwrap();
    let used = store.quota(a.id).await.unwrap().used_bytes;
    let r = store.copy_messages(a.id, mb.id, &[d2.uid, d1.uid, Uid(77)], archive.id).await.unwrap();
    assert_eq!(r.uid_validity, archive.uid_validity);
    assert_eq!(r.mapping, vec![(d1.uid, Uid(1)), (d2.uid, Uid(2))]);
    let copies = store.list_messages(a.id, archive.id).await.unwrap();
    assert_eq!(copies.len(), 2);
    assert_ne!(copies[0].email_id, d1.email_id, "a copy is a new email");
    assert_eq!(copies[0].keywords, ["\\Seen"]);
    assert_eq!(store.list_messages(a.id, mb.id).await.unwrap().len(), 2);
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, used * 2);
    // Copies diverge: a flag on the copy leaves the original alone.
    store.set_keywords(a.id, archive.id, &[Uid(2)], KeywordOp::Add, &["$X".into()], None).await.unwrap();
    assert!(store.list_messages(a.id, mb.id).await.unwrap()[1].keywords.is_empty());
}

pub async fn move_keeps_the_email(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let trash = store.mailbox_by_role(a.id, Role::Trash).await.unwrap().unwrap();
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    let used = store.quota(a.id).await.unwrap().used_bytes;
    let r = store.move_messages(a.id, mb.id, &[d1.uid], trash.id).await.unwrap();
    assert_eq!(r.mapping, vec![(d1.uid, Uid(1))]);
    let moved = store.list_messages(a.id, trash.id).await.unwrap();
    assert_eq!(moved[0].email_id, d1.email_id, "a move keeps the email id");
    assert_eq!(uids(&store.list_messages(a.id, mb.id).await.unwrap()), [d2.uid.0]);
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, used);
    let changes = store.mailbox_changes(a.id, mb.id, d2.modseq).await.unwrap();
    assert_eq!(changes.expunged, [d1.uid]);
    assert!(store.move_messages(a.id, trash.id, &[Uid(1)], trash.id).await.is_err());
}

pub async fn expunge(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let mut ds = Vec::new();
    for i in 0..4 {
        ds.push(deliver_to(&store, &a, message(&format!("m{i}"), "x")).await);
    }
    let blob = store.email(a.id, ds[0].email_id).await.unwrap().blob_id;
    let deleted: Vec<Uid> = vec![ds[0].uid, ds[1].uid, ds[2].uid];
    store.set_keywords(a.id, mb.id, &deleted, KeywordOp::Add, &["\\Deleted".into()], None).await.unwrap();
    // UID EXPUNGE: only the listed ones that are \Deleted.
    let gone = store.expunge(a.id, mb.id, ExpungeFilter::DeletedAmong(vec![ds[0].uid, ds[3].uid])).await.unwrap();
    assert_eq!(gone, [ds[0].uid]);
    assert!(matches!(store.read_blob(a.id, &blob).await, Err(StoreError::NotFound { .. })));
    // EXPUNGE: every \Deleted one.
    let gone = store.expunge(a.id, mb.id, ExpungeFilter::Deleted).await.unwrap();
    assert_eq!(gone, [ds[1].uid, ds[2].uid]);
    // By UID regardless of flags.
    let gone = store.expunge(a.id, mb.id, ExpungeFilter::Uids(vec![ds[3].uid, Uid(1000)])).await.unwrap();
    assert_eq!(gone, [ds[3].uid]);
    assert!(store.list_messages(a.id, mb.id).await.unwrap().is_empty());
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, 0);
    // Nothing to expunge takes no modseq.
    let m = store.highest_modseq(a.id).await.unwrap();
    assert!(store.expunge(a.id, mb.id, ExpungeFilter::Deleted).await.unwrap().is_empty());
    assert_eq!(store.highest_modseq(a.id).await.unwrap(), m);
    // UIDs are never reused after expunge.
    assert_eq!(deliver_to(&store, &a, message("new", "x")).await.uid, Uid(5));
}

pub async fn journal_and_tombstones(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    let d3 = deliver_to(&store, &a, message("3", "3")).await;
    assert!(d1.modseq < d2.modseq && d2.modseq < d3.modseq);
    let mark = d3.modseq;
    store.set_keywords(a.id, mb.id, &[d1.uid], KeywordOp::Add, &["\\Seen".into()], None).await.unwrap();
    store.expunge(a.id, mb.id, ExpungeFilter::Uids(vec![d2.uid])).await.unwrap();
    let d4 = deliver_to(&store, &a, message("4", "4")).await;
    let changes = store.mailbox_changes(a.id, mb.id, mark).await.unwrap();
    assert_eq!(uids(&changes.changed), [d1.uid.0, d4.uid.0]);
    assert_eq!(changes.expunged, [d2.uid]);
    assert_eq!(changes.highest_modseq, d4.modseq);
    assert_eq!(store.mailbox(a.id, mb.id).await.unwrap().highest_modseq, d4.modseq);
    // Since the start: everything present, tombstone included.
    let all = store.mailbox_changes(a.id, mb.id, ModSeq(0)).await.unwrap();
    assert_eq!(uids(&all.changed), [d1.uid.0, d3.uid.0, d4.uid.0]);
    assert_eq!(all.expunged, [d2.uid]);
    // Nothing since now.
    let none = store.mailbox_changes(a.id, mb.id, d4.modseq).await.unwrap();
    assert!(none.changed.is_empty() && none.expunged.is_empty());
    // A change in another mailbox does not move this one's highest modseq.
    let sent = store.mailbox_by_role(a.id, Role::Sent).await.unwrap().unwrap();
    store.append(a.id, sent.id, message("s", "s"), vec![], 1).await.unwrap();
    assert_eq!(store.mailbox(a.id, mb.id).await.unwrap().highest_modseq, d4.modseq);
    assert!(store.highest_modseq(a.id).await.unwrap() > d4.modseq);
}

pub async fn account_changes(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let start = store.highest_modseq(a.id).await.unwrap();
    let mb = store.create_mailbox(a.id, "Lists", None).await.unwrap();
    let d = store.append(a.id, mb.id, message("1", "1"), vec![], 1).await.unwrap();
    store.set_keywords(a.id, mb.id, &[d.uid], KeywordOp::Add, &["\\Seen".into()], None).await.unwrap();
    store.rename_mailbox(a.id, mb.id, "Lists2").await.unwrap();
    store.expunge(a.id, mb.id, ExpungeFilter::Uids(vec![d.uid])).await.unwrap();
    store.delete_mailbox(a.id, mb.id).await.unwrap();
    let changes = store.account_changes(a.id, start, 100).await.unwrap();
    let kinds: Vec<&ChangeKind> = changes.iter().map(|c| &c.kind).collect();
    assert_eq!(
        kinds,
        [
            &ChangeKind::MailboxCreated { mailbox_id: mb.id },
            &ChangeKind::EmailAdded { mailbox_id: mb.id, uid: d.uid, email_id: d.email_id },
            &ChangeKind::KeywordsChanged { mailbox_id: mb.id, uid: d.uid, email_id: d.email_id },
            &ChangeKind::MailboxRenamed { mailbox_id: mb.id },
            &ChangeKind::EmailExpunged { mailbox_id: mb.id, uid: d.uid, email_id: d.email_id },
            &ChangeKind::MailboxDeleted { mailbox_id: mb.id },
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].modseq < w[1].modseq), "one modseq per operation");
    assert_eq!(changes.last().unwrap().modseq, store.highest_modseq(a.id).await.unwrap());
    assert_eq!(store.account_changes(a.id, start, 2).await.unwrap().len(), 2);
    let other = account(&store, "b@example.test").await;
    let ob = store.account_changes(other.id, ModSeq(0), 100).await.unwrap();
    assert!(ob.iter().all(|c| matches!(c.kind, ChangeKind::MailboxCreated { .. })));
}

pub async fn search(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let mb = inbox(&store, &a).await;
    let d1 = deliver_to(&store, &a, message("Quarterly report", "Revenue grew in the north region")).await;
    let d2 = deliver_to(&store, &a, message("Lunch", "Shall we meet at noon? ok")).await;
    let raw3 = b"From: x@example.net\r\nSubject: =?utf-8?q?Caf=C3=A9_news?=\r\nX-Priority: 1\r\nDate: Wed, 4 Nov 2026 10:00:00 +0000\r\n\r\n<p>see the <b>menu</b></p>\r\n".to_vec();
    let d3 = store
        .deliver(Delivery { raw: raw3, recipients: vec![DeliveryTarget::inbox(a.id)], received_at: 1_900_000_000 })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    // The same words in another account never leak into this one's results.
    deliver_to(&store, &b, message("Quarterly report", "Revenue grew")).await;
    store.set_keywords(a.id, mb.id, &[d2.uid], KeywordOp::Add, &["\\Seen".into()], None).await.unwrap();

    let s = |key: SearchKey| {
        let store = store.clone();
        async move { store.search(a.id, mb.id, &key).await.unwrap().into_iter().map(|u| u.0).collect::<Vec<_>>() }
    };
    assert_eq!(s(SearchKey::All).await, [1, 2, 3]);
    assert_eq!(s(SearchKey::Body("north REG".into())).await, [d1.uid.0]);
    assert_eq!(s(SearchKey::Body("ok".into())).await, [d2.uid.0], "short strings fall back to LIKE");
    assert_eq!(s(SearchKey::Text("quarterly".into())).await, [d1.uid.0]);
    assert_eq!(s(SearchKey::Text("café".into())).await, [d3.uid.0], "decoded subject is searchable");
    assert_eq!(s(SearchKey::Body("quarterly".into())).await, Vec::<u32>::new(), "BODY excludes headers");
    assert_eq!(s(SearchKey::Body("menu".into())).await, [d3.uid.0]);
    assert_eq!(s(SearchKey::Keyword("\\seen".into())).await, [d2.uid.0]);
    assert_eq!(s(SearchKey::Not(Box::new(SearchKey::Keyword("\\Seen".into())))).await, [1, 3]);
    assert_eq!(
        s(SearchKey::Or(Box::new(SearchKey::Uids(vec![(Uid(1), Uid(1))])), Box::new(SearchKey::Uids(vec![(Uid(3), Uid(9))])))).await,
        [1, 3]
    );
    assert_eq!(s(SearchKey::Header { name: "x-priority".into(), value: "".into() }).await, [d3.uid.0]);
    assert_eq!(s(SearchKey::Header { name: "subject".into(), value: "LUNCH".into() }).await, [d2.uid.0]);
    assert_eq!(s(SearchKey::Received { since: Some(1_850_000_000), before: None }).await, [d3.uid.0]);
    assert_eq!(s(SearchKey::Sent { since: Some(1_793_786_000), before: Some(1_793_787_000) }).await, [d3.uid.0]);
    let size1 = store.email(a.id, d1.email_id).await.unwrap().size;
    assert_eq!(s(SearchKey::Larger(size1)).await.contains(&d1.uid.0), false);
    assert_eq!(s(SearchKey::Smaller(size1 + 1)).await.contains(&d1.uid.0), true);
    assert_eq!(s(SearchKey::and([SearchKey::Text("e".into()), SearchKey::Keyword("\\Seen".into())])).await, [d2.uid.0]);
    assert_eq!(s(SearchKey::ModSeqAtLeast(d3.modseq)).await, [d2.uid.0, d3.uid.0]);
    assert_eq!(s(SearchKey::Body("quote\"d".into())).await, Vec::<u32>::new(), "quotes are escaped, not parsed");
    assert_eq!(s(SearchKey::Body("100%".into())).await, Vec::<u32>::new());
}

pub async fn notifications_after_commit(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let mut rx = store.subscribe(a.id);
    let mut rx_b = store.subscribe(b.id);
    let waiter = tokio::spawn(async move {
        rx.changed().await.expect("hub alive");
        let seen = *rx.borrow_and_update();
        seen
    });
    let d = deliver_to(&store, &a, message("ping", "x")).await;
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.expect("woken").unwrap();
    assert!(seen >= d.modseq);
    // By the time the subscriber is woken, the change is readable.
    assert!(store.mailbox_changes(a.id, d.mailbox_id, ModSeq(0)).await.unwrap().changed.iter().any(|e| e.uid == d.uid));
    assert!(!rx_b.has_changed().unwrap(), "other accounts are not woken");
    let _ = rx_b.borrow_and_update();
}

pub async fn concurrent_deliveries(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        let id = a.id;
        tasks.push(tokio::spawn(async move {
            store
                .deliver(Delivery { raw: message(&format!("c{i}"), "x"), recipients: vec![DeliveryTarget::inbox(id)], received_at: 1 })
                .await
                .unwrap()
                .pop()
                .unwrap()
                .unwrap()
        }));
    }
    let mut uids = Vec::new();
    let mut modseqs = Vec::new();
    for t in tasks {
        let d = t.await.unwrap();
        uids.push(d.uid.0);
        modseqs.push(d.modseq.0);
    }
    uids.sort_unstable();
    modseqs.sort_unstable();
    assert_eq!(uids, (1..=64).collect::<Vec<_>>());
    modseqs.dedup();
    assert_eq!(modseqs.len(), 64, "each delivery has its own modseq");
    assert_eq!(store.list_messages(a.id, inbox(&store, &a).await.id).await.unwrap().len(), 64);
}

pub async fn threading(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let first = deliver_to(&store, &a, message("topic", "first")).await;
    let reply = b"From: b@example.net\r\nSubject: Re: topic\r\nMessage-ID: <r1@example.net>\r\nIn-Reply-To: <topic@example.net>\r\n\r\nreply\r\n".to_vec();
    let reply = deliver_to(&store, &a, reply).await;
    let other = deliver_to(&store, &a, message("unrelated", "x")).await;
    let t1 = store.email(a.id, first.email_id).await.unwrap().thread_id;
    let t2 = store.email(a.id, reply.email_id).await.unwrap().thread_id;
    let t3 = store.email(a.id, other.email_id).await.unwrap().thread_id;
    assert_eq!(t1, t2);
    assert_ne!(t1, t3);
}

pub async fn remove_account_removes_mail(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let raw = message("shared", "x");
    let results = store
        .deliver(Delivery { raw, recipients: vec![DeliveryTarget::inbox(a.id), DeliveryTarget::inbox(b.id)], received_at: 1 })
        .await
        .unwrap();
    let eb = results[1].as_ref().unwrap().email_id;
    store.remove_account("a@example.test").await.unwrap();
    assert!(store.account_by_address("a@example.test").await.unwrap().is_none());
    assert!(matches!(store.list_mailboxes(a.id).await.map(|v| v.len()), Ok(0) | Err(_)));
    // b's copy of the shared blob survives.
    let e = store.email(b.id, eb).await.unwrap();
    assert!(!store.read_blob(b.id, &e.blob_id).await.unwrap().is_empty());
    assert!(matches!(store.remove_account("a@example.test").await, Err(StoreError::NotFound { .. })));
    // The address can be used again.
    account(&store, "a@example.test").await;
}

pub async fn close_refuses_further_work(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    deliver_to(&store, &a, message("before", "x")).await;
    store.close().await.unwrap();
    assert!(matches!(store.list_domains().await, Err(StoreError::Closed)));
    assert!(matches!(store.add_domain("late.test").await, Err(StoreError::Closed)));
}
