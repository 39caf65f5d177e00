//! Emails by id: keywords, mailbox memberships, destroy, records and the
//! account-wide query (what JMAP Email/get, /set and /query stand on).

use super::*;

async fn deliver_at(
    store: &Arc<dyn Store>,
    a: &Account,
    subject: &str,
    body: &str,
    at: i64,
) -> Delivered {
    store
        .deliver(Delivery {
            message: message(subject, body).into(),
            recipients: vec![DeliveryTarget::inbox(a.id)],
            received_at: at,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap()
}

pub async fn email_keywords_by_id(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let d1 = deliver_at(&store, &a, "1", "x", 1).await;
    let d2 = deliver_at(&store, &a, "2", "x", 2).await;
    let theirs = deliver_at(&store, &b, "b", "x", 3).await;
    let before = store.highest_modseq(a.id).await.unwrap();
    let r = store
        .set_email_keywords(
            a.id,
            &[d1.email_id, d2.email_id, theirs.email_id, EmailId(999_999)],
            KeywordOp::Add,
            &["\\Seen".into(), "$label1".into()],
        )
        .await
        .unwrap();
    assert_eq!(r.changed, [d1.email_id, d2.email_id]);
    assert_eq!(r.not_found, [theirs.email_id, EmailId(999_999)]);
    // One operation, one modseq.
    assert_eq!(r.modseq.0, before.0 + 1);
    let inbox = inbox(&store, &a).await;
    let entries = store.list_messages(a.id, inbox.id).await.unwrap();
    assert!(entries
        .iter()
        .all(|e| e.has_keyword("\\Seen") && e.modseq == r.modseq));
    // IMAP's view of the change: both UIDs changed since before.
    let changes = store.mailbox_changes(a.id, inbox.id, before).await.unwrap();
    assert_eq!(changes.changed.len(), 2);
    // The other account's email is untouched.
    let theirs_now = store.email_records(b.id, &[theirs.email_id]).await.unwrap();
    assert!(theirs_now[0].as_ref().unwrap().keywords.is_empty());
    // A change to nothing takes no modseq.
    let again = store
        .set_email_keywords(a.id, &[d1.email_id], KeywordOp::Add, &["\\Seen".into()])
        .await
        .unwrap();
    assert!(again.changed.is_empty());
    assert_eq!(again.modseq, r.modseq);
    assert!(matches!(
        store
            .set_email_keywords(a.id, &[d1.email_id], KeywordOp::Add, &["bad word".into()])
            .await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn email_in_several_mailboxes(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let inbox = inbox(&store, &a).await;
    let archive = mailbox(&store, &a, Role::Archive).await;
    let d = deliver_at(&store, &a, "both", "x", 1).await;
    let used = store.quota(a.id).await.unwrap().used_bytes;
    store
        .set_email_mailboxes(a.id, d.email_id, &[inbox.id, archive.id])
        .await
        .unwrap();
    // One email, two memberships; the INBOX UID is kept, the quota counts
    // the email once.
    let rec = store.email_records(a.id, &[d.email_id]).await.unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(rec.mailboxes.len(), 2);
    assert!(rec.mailboxes.contains(&(inbox.id, d.uid)));
    let in_archive = store.list_messages(a.id, archive.id).await.unwrap();
    assert_eq!(in_archive.len(), 1);
    assert_eq!(in_archive[0].email_id, d.email_id);
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, used);
    // Keywords belong to the email: both mailboxes see them.
    store
        .set_email_keywords(a.id, &[d.email_id], KeywordOp::Add, &["$Important".into()])
        .await
        .unwrap();
    assert!(store.list_messages(a.id, archive.id).await.unwrap()[0].has_keyword("$Important"));
    // Out of INBOX: a tombstone there, still in Archive.
    let before = store.highest_modseq(a.id).await.unwrap();
    store
        .set_email_mailboxes(a.id, d.email_id, &[archive.id])
        .await
        .unwrap();
    let changes = store.mailbox_changes(a.id, inbox.id, before).await.unwrap();
    assert_eq!(changes.expunged, [d.uid]);
    assert!(store
        .list_messages(a.id, inbox.id)
        .await
        .unwrap()
        .is_empty());
    // Refused: no mailbox at all, another account's mailbox, an unknown email.
    assert!(matches!(
        store.set_email_mailboxes(a.id, d.email_id, &[]).await,
        Err(StoreError::Invalid(_))
    ));
    let theirs = mailbox(&store, &b, Role::Inbox).await;
    assert!(store
        .set_email_mailboxes(a.id, d.email_id, &[theirs.id])
        .await
        .is_err());
    assert!(matches!(
        store
            .set_email_mailboxes(a.id, EmailId(999_999), &[inbox.id])
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.email_records(a.id, &[d.email_id]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .mailboxes
            .len(),
        1
    );
}

pub async fn destroy_emails_by_id(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let inbox = inbox(&store, &a).await;
    let archive = mailbox(&store, &a, Role::Archive).await;
    let d = deliver_at(&store, &a, "doomed", "x", 1).await;
    let keep = deliver_at(&store, &a, "kept", "y", 2).await;
    store
        .set_email_mailboxes(a.id, d.email_id, &[inbox.id, archive.id])
        .await
        .unwrap();
    let blob = store.email(a.id, d.email_id).await.unwrap().blob_id;
    let before = store.highest_modseq(a.id).await.unwrap();
    let r = store
        .destroy_emails(a.id, &[d.email_id, EmailId(999_999)])
        .await
        .unwrap();
    assert_eq!(r.changed, [d.email_id]);
    assert_eq!(r.not_found, [EmailId(999_999)]);
    assert_eq!(
        store.email_records(a.id, &[d.email_id]).await.unwrap(),
        [None]
    );
    // Tombstones in both mailboxes, the bytes and the quota released.
    for mb in [inbox.id, archive.id] {
        let changes = store.mailbox_changes(a.id, mb, before).await.unwrap();
        assert_eq!(changes.expunged.len(), 1);
    }
    assert!(matches!(
        store.read_blob(a.id, &blob).await,
        Err(StoreError::NotFound { .. })
    ));
    let left = store.email(a.id, keep.email_id).await.unwrap();
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, left.size);
}

pub async fn account_wide_query_pages(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let archive = mailbox(&store, &a, Role::Archive).await;
    let mut ids = Vec::new();
    for i in 0..30i64 {
        // Arrival times out of delivery order, two with the same time.
        let at = 1_000 + (i * 7) % 30;
        let d = deliver_at(&store, &a, &format!("q{i}"), &"z".repeat(i as usize), at).await;
        ids.push((at, d.email_id, i));
    }
    deliver_at(&store, &b, "not yours", "x", 5_000).await;
    // Newest first, ties by id (descending too), paged.
    let mut expected: Vec<_> = ids.clone();
    expected.sort_by_key(|x| std::cmp::Reverse((x.0, x.1)));
    let expected: Vec<EmailId> = expected.iter().map(|x| x.1).collect();
    let mut paged = Vec::new();
    for page in 0..4 {
        let r = store
            .query_emails(
                a.id,
                &EmailQuery {
                    position: page * 10,
                    limit: 10,
                    calculate_total: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(r.total, Some(30));
        paged.extend(r.ids);
    }
    assert_eq!(paged, expected);
    // Ascending by size; a filter on keywords, size and time; a mailbox.
    let by_size = store
        .query_emails(
            a.id,
            &EmailQuery {
                sort: EmailSort::Size,
                ascending: true,
                limit: 3,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_size.ids, [ids[0].1, ids[1].1, ids[2].1]);
    store
        .set_email_keywords(
            a.id,
            &[ids[3].1, ids[4].1],
            KeywordOp::Add,
            &["\\Flagged".into()],
        )
        .await
        .unwrap();
    let flagged = store
        .query_emails(
            a.id,
            &EmailQuery {
                has_keywords: vec!["\\flagged".into()],
                ascending: true,
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut want = vec![ids[3].1, ids[4].1];
    want.sort_by_key(|id| ids.iter().find(|x| x.1 == *id).unwrap().0);
    assert_eq!(flagged.ids, want);
    // Sizes grow with i: from the tenth on, 20 emails, none flagged.
    let tenth = store.email(a.id, ids[10].1).await.unwrap().size;
    let unflagged = store
        .query_emails(
            a.id,
            &EmailQuery {
                not_keywords: vec!["\\Flagged".into()],
                min_size: Some(tenth),
                limit: 100,
                calculate_total: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unflagged.total, Some(20));
    store
        .set_email_mailboxes(a.id, ids[7].1, &[archive.id])
        .await
        .unwrap();
    let in_archive = store
        .query_emails(
            a.id,
            &EmailQuery {
                in_mailbox: Some(archive.id),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(in_archive.ids, [ids[7].1]);
    let not_archived = store
        .query_emails(
            a.id,
            &EmailQuery {
                not_in_mailboxes: vec![archive.id],
                limit: 100,
                calculate_total: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(not_archived.total, Some(29));
    // In the archive and another mailbox: "in some mailbox other than the
    // archive" (JMAP inMailboxOtherThan) still holds; ids[7] alone fails.
    let inbox = store
        .email_records(a.id, &[ids[8].1])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap()
        .mailboxes[0]
        .0;
    store
        .set_email_mailboxes(a.id, ids[8].1, &[inbox, archive.id])
        .await
        .unwrap();
    let elsewhere = store
        .query_emails(
            a.id,
            &EmailQuery {
                in_mailbox_other_than: Some(vec![archive.id]),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(elsewhere.ids.len(), 29);
    assert!(!elsewhere.ids.contains(&ids[7].1));
    assert!(elsewhere.ids.contains(&ids[8].1));
    let window = store
        .query_emails(
            a.id,
            &EmailQuery {
                after: Some(1_010),
                before: Some(1_012),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(window.ids.len(), 2);
}

pub async fn submissions_are_kept_and_journalled(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let d = deliver_at(&store, &a, "sent", "x", 1_000).await;
    let record = store
        .email_records(a.id, &[d.email_id])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    let before = store.highest_modseq(a.id).await.unwrap();
    let s = SubmissionRecord {
        id: SubmissionId(0),
        email_id: d.email_id,
        thread_id: record.thread_id,
        identity_id: "i1".into(),
        mail_from: "a@example.test".into(),
        rcpt_to: vec!["x@remote.test".into(), "b@example.test".into()],
        send_at: 1_001,
        queue_id: Some(QueueId(7)),
        delivery: Default::default(),
        canceled: false,
    };
    let first = store.record_submission(a.id, &s).await.unwrap();
    let second = store.record_submission(a.id, &s).await.unwrap();
    assert!(second > first);
    let all = store.submissions(a.id, None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, first);
    assert_eq!(all[0].rcpt_to, s.rcpt_to);
    assert_eq!(all[0].queue_id, Some(QueueId(7)));
    // No queued copy named 7 holds anyone: both count as delivered here.
    assert_eq!(all[0].delivery["b@example.test"].delivered, "yes");
    assert!(store.submissions(b.id, None).await.unwrap().is_empty());
    assert_eq!(
        store.destroy_submissions(b.id, &[first]).await.unwrap(),
        [],
        "not another account's"
    );
    assert_eq!(
        store.destroy_submissions(a.id, &[first]).await.unwrap(),
        [first]
    );
    assert_eq!(
        store
            .submissions(a.id, Some(&[first, second]))
            .await
            .unwrap()[0]
            .id,
        second
    );
    let kinds: Vec<ChangeKind> = store
        .account_changes(a.id, before, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::SubmissionCreated {
                submission_id: first
            },
            ChangeKind::SubmissionCreated {
                submission_id: second
            },
            ChangeKind::SubmissionDestroyed {
                submission_id: first
            },
        ]
    );
}
