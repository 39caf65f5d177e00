//! Conformance cases: Delivery, append, keywords, copy, move, expunge, concurrency and threads.

use super::*;

pub async fn deliver_stores_one_blob(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let raw = message("hello", "the body");
    let results = store
        .deliver(Delivery {
            message: raw.clone().into(),
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
    assert_eq!(
        counts.size,
        ea.size + store.email(a.id, second.email_id).await.unwrap().size
    );
    // Another account cannot read the blob, even knowing its id.
    let c = account(&store, "c@example.test").await;
    assert!(matches!(
        store.read_blob(c.id, &ea.blob_id).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn deliver_over_quota_fails_alone(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    store.set_quota("b@example.test", Some(10)).await.unwrap();
    let results = store
        .deliver(Delivery {
            message: (message("big", &"x".repeat(100))).into(),
            recipients: vec![DeliveryTarget::inbox(b.id), DeliveryTarget::inbox(a.id)],
            received_at: 1,
        })
        .await
        .unwrap();
    assert!(
        matches!(results[0], Err(StoreError::OverQuota { limit: 10, .. })),
        "{:?}",
        results[0]
    );
    assert!(results[1].is_ok());
    assert_eq!(store.quota(b.id).await.unwrap().used_bytes, 0);
    assert!(store
        .list_messages(b.id, inbox(&store, &b).await.id)
        .await
        .unwrap()
        .is_empty());
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
    let drafts = store
        .mailbox_by_role(a.id, Role::Drafts)
        .await
        .unwrap()
        .unwrap();
    // Bytes that must survive untouched: bare LF, 8-bit, NUL, no final newline.
    let mut raw = b"Subject: =?utf-8?q?caf=C3=A9?=\nX: y\r\n\r\nbody \xff\x00 \xc3\xa9".to_vec();
    raw.extend_from_slice(&[b'z'; 3]);
    let d = store
        .append(
            a.id,
            drafts.id,
            raw.clone().into(),
            vec!["\\Draft".into(), "\\Seen".into()],
            1_700_000_000,
        )
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
    store
        .append(a.id, drafts.id, (vec![0xff; 64]).into(), vec![], 1)
        .await
        .unwrap();
    store
        .append(a.id, drafts.id, (Vec::new()).into(), vec![], 1)
        .await
        .unwrap();
}

pub async fn blob_ranges_stream_a_message(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let raw: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let inbox = inbox(&store, &a).await;
    let d = store
        .append(a.id, inbox.id, raw.clone().into(), vec![], 1)
        .await
        .unwrap();
    let blob = store.email(a.id, d.email_id).await.unwrap().blob_id;
    let mut streamed = Vec::new();
    let mut offset = 0u64;
    loop {
        let chunk = store
            .read_blob_range(a.id, &blob, offset, 7_000)
            .await
            .unwrap();
        if chunk.is_empty() {
            break;
        }
        assert!(chunk.len() <= 7_000);
        offset += chunk.len() as u64;
        streamed.extend(chunk);
    }
    assert_eq!(streamed, raw);
    assert!(store
        .read_blob_range(a.id, &blob, 1 << 40, 10)
        .await
        .unwrap()
        .is_empty());
    let both = store
        .read_blobs(a.id, &[blob.clone(), BlobId("0000".into())])
        .await
        .unwrap();
    assert_eq!(both, vec![Some(raw.clone()), None]);
    let emails = store
        .emails(a.id, &[d.email_id, EmailId(999_999)])
        .await
        .unwrap();
    assert_eq!(emails[0].as_ref().map(|e| e.id), Some(d.email_id));
    assert!(emails[1].is_none());
    let other = account(&store, "b@example.test").await;
    assert!(matches!(
        store.read_blob_range(other.id, &blob, 0, 10).await,
        Err(StoreError::NotFound { .. })
    ));
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
    assert_eq!(
        e.envelope.subject.as_deref(),
        Some("=?utf-8?q?Gr=C3=BC=C3=9Fe?=")
    );
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
        .set_keywords(
            a.id,
            mb.id,
            &all,
            KeywordOp::Add,
            &["\\Seen".into(), "$Work".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated.len(), 2);
    assert!(r.updated.iter().all(|e| e.modseq > d2.modseq));
    let m1 = r.updated[0].modseq;
    let r = store
        .set_keywords(
            a.id,
            mb.id,
            &[d1.uid],
            KeywordOp::Remove,
            &["\\SEEN".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated[0].keywords, ["$Work"]);
    assert!(r.updated[0].modseq > m1);
    let r = store
        .set_keywords(
            a.id,
            mb.id,
            &[d2.uid],
            KeywordOp::Replace,
            &["\\Flagged".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated[0].keywords, ["\\Flagged"]);
    // No change, no new modseq.
    let before = store.highest_modseq(a.id).await.unwrap();
    let r = store
        .set_keywords(
            a.id,
            mb.id,
            &[d2.uid],
            KeywordOp::Add,
            &["\\flagged".into()],
            None,
        )
        .await
        .unwrap();
    assert!(r.updated.is_empty());
    assert_eq!(store.highest_modseq(a.id).await.unwrap(), before);
    let entries = store.list_messages(a.id, mb.id).await.unwrap();
    assert_eq!(entries[0].keywords, ["$Work"]);
    assert_eq!(entries[1].keywords, ["\\Flagged"]);
    let counts = store.mailbox_counts(a.id, mb.id).await.unwrap();
    assert_eq!(counts.unseen, 2);
    // UIDs that do not exist are ignored.
    let r = store
        .set_keywords(a.id, mb.id, &[Uid(99)], KeywordOp::Add, &["x".into()], None)
        .await
        .unwrap();
    assert!(r.updated.is_empty() && r.modified.is_empty());
}

pub async fn invalid_keywords_are_refused(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let d = deliver_to(&store, &a, message("1", "1")).await;
    for bad in ["x \\Deleted", "", "a(b", "caf\u{e9}"] {
        let r = store
            .set_keywords(
                a.id,
                mb.id,
                &[d.uid],
                KeywordOp::Add,
                &[bad.to_string()],
                None,
            )
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
        let r = store
            .append(
                a.id,
                mb.id,
                (message("2", "2")).into(),
                vec![bad.to_string()],
                1,
            )
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
    }
    assert!(store.list_messages(a.id, mb.id).await.unwrap()[0]
        .keywords
        .is_empty());
    assert_eq!(store.mailbox_counts(a.id, mb.id).await.unwrap().deleted, 0);
}

pub async fn conditional_keywords(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    // d2 was added after d1's modseq: UNCHANGEDSINCE d1 protects it.
    let r = store
        .set_keywords(
            a.id,
            mb.id,
            &[d1.uid, d2.uid],
            KeywordOp::Add,
            &["\\Seen".into()],
            Some(d1.modseq),
        )
        .await
        .unwrap();
    assert_eq!(uids(&r.updated), [d1.uid.0]);
    assert_eq!(r.modified, [d2.uid]);
}

pub async fn copy(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let archive = store
        .mailbox_by_role(a.id, Role::Archive)
        .await
        .unwrap()
        .unwrap();
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    store
        .set_keywords(
            a.id,
            mb.id,
            &[d1.uid],
            KeywordOp::Add,
            &["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    let used = store.quota(a.id).await.unwrap().used_bytes;
    let r = store
        .copy_messages(a.id, mb.id, &[d2.uid, d1.uid, Uid(77)], archive.id)
        .await
        .unwrap();
    assert_eq!(r.uid_validity, archive.uid_validity);
    assert_eq!(r.mapping, vec![(d1.uid, Uid(1)), (d2.uid, Uid(2))]);
    let copies = store.list_messages(a.id, archive.id).await.unwrap();
    assert_eq!(copies.len(), 2);
    assert_ne!(copies[0].email_id, d1.email_id, "a copy is a new email");
    assert_eq!(copies[0].keywords, ["\\Seen"]);
    assert_eq!(store.list_messages(a.id, mb.id).await.unwrap().len(), 2);
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, used * 2);
    // Copies diverge: a flag on the copy leaves the original alone.
    store
        .set_keywords(
            a.id,
            archive.id,
            &[Uid(2)],
            KeywordOp::Add,
            &["$X".into()],
            None,
        )
        .await
        .unwrap();
    assert!(store.list_messages(a.id, mb.id).await.unwrap()[1]
        .keywords
        .is_empty());
}

pub async fn move_keeps_the_email(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let trash = store
        .mailbox_by_role(a.id, Role::Trash)
        .await
        .unwrap()
        .unwrap();
    let d1 = deliver_to(&store, &a, message("1", "1")).await;
    let d2 = deliver_to(&store, &a, message("2", "2")).await;
    let used = store.quota(a.id).await.unwrap().used_bytes;
    let r = store
        .move_messages(a.id, mb.id, &[d1.uid], trash.id)
        .await
        .unwrap();
    assert_eq!(r.mapping, vec![(d1.uid, Uid(1))]);
    let moved = store.list_messages(a.id, trash.id).await.unwrap();
    assert_eq!(moved[0].email_id, d1.email_id, "a move keeps the email id");
    assert_eq!(
        uids(&store.list_messages(a.id, mb.id).await.unwrap()),
        [d2.uid.0]
    );
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, used);
    let changes = store.mailbox_changes(a.id, mb.id, d2.modseq).await.unwrap();
    assert_eq!(changes.expunged, [d1.uid]);
    // Into the mailbox it is in: the same email under a new UID (RFC 6851
    // does not forbid it).
    let again = store
        .move_messages(a.id, trash.id, &[moved[0].uid], trash.id)
        .await
        .unwrap();
    assert_eq!(again.mapping.len(), 1);
    assert!(again.mapping[0].1 > moved[0].uid);
    let now = store.list_messages(a.id, trash.id).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].email_id, d1.email_id);
}

pub async fn expunge(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mb = inbox(&store, &a).await;
    let mut ds = Vec::new();
    for i in 0..4 {
        ds.push(deliver_to(&store, &a, message(&format!("m{i}"), "x")).await);
    }
    let blob = store.email(a.id, ds[0].email_id).await.unwrap().blob_id;
    let deleted: Vec<Uid> = vec![ds[0].uid, ds[1].uid];
    store
        .set_keywords(
            a.id,
            mb.id,
            &deleted,
            KeywordOp::Add,
            &["\\Deleted".into()],
            None,
        )
        .await
        .unwrap();
    // Flags are case-insensitive (RFC 9051 §2.3.2): a client's spelling counts.
    store
        .set_keywords(
            a.id,
            mb.id,
            &[ds[2].uid],
            KeywordOp::Add,
            &["\\deleted".into()],
            None,
        )
        .await
        .unwrap();
    // UID EXPUNGE: only the listed ones that are \Deleted.
    let gone = store
        .expunge(
            a.id,
            mb.id,
            ExpungeFilter::DeletedAmong(vec![ds[0].uid, ds[3].uid]),
        )
        .await
        .unwrap();
    assert_eq!(gone, [ds[0].uid]);
    assert!(matches!(
        store.read_blob(a.id, &blob).await,
        Err(StoreError::NotFound { .. })
    ));
    // EXPUNGE: every \Deleted one.
    let gone = store
        .expunge(a.id, mb.id, ExpungeFilter::Deleted)
        .await
        .unwrap();
    assert_eq!(gone, [ds[1].uid, ds[2].uid]);
    // By UID regardless of flags.
    let gone = store
        .expunge(a.id, mb.id, ExpungeFilter::Uids(vec![ds[3].uid, Uid(1000)]))
        .await
        .unwrap();
    assert_eq!(gone, [ds[3].uid]);
    assert!(store.list_messages(a.id, mb.id).await.unwrap().is_empty());
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, 0);
    // Nothing to expunge takes no modseq.
    let m = store.highest_modseq(a.id).await.unwrap();
    assert!(store
        .expunge(a.id, mb.id, ExpungeFilter::Deleted)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.highest_modseq(a.id).await.unwrap(), m);
    // UIDs are never reused after expunge.
    assert_eq!(
        deliver_to(&store, &a, message("new", "x")).await.uid,
        Uid(5)
    );
}

pub async fn concurrent_deliveries(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        let id = a.id;
        tasks.push(tokio::spawn(async move {
            store
                .deliver(Delivery {
                    message: (message(&format!("c{i}"), "x")).into(),
                    recipients: vec![DeliveryTarget::inbox(id)],
                    received_at: 1,
                })
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
    assert_eq!(
        store
            .list_messages(a.id, inbox(&store, &a).await.id)
            .await
            .unwrap()
            .len(),
        64
    );
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
    // A thread's emails, oldest first (JMAP Thread/get).
    let in_thread = store
        .query_emails(
            a.id,
            &EmailQuery {
                in_thread: Some(t1),
                ascending: true,
                limit: 10,
                ..EmailQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(in_thread.ids, [first.email_id, reply.email_id]);
    // Three emails, two threads; reading the reply leaves its thread
    // unread through the first.
    let inbox = store
        .mailbox_by_role(a.id, Role::Inbox)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.mailbox_thread_counts(a.id, inbox.id).await.unwrap(),
        (2, 2)
    );
    store
        .set_email_keywords(
            a.id,
            &[reply.email_id, other.email_id],
            KeywordOp::Add,
            &["\\Seen".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        store.mailbox_thread_counts(a.id, inbox.id).await.unwrap(),
        (2, 1)
    );
    // Text through the index, newest first, stopping at the page; a
    // needle the index cannot answer is refused, not guessed.
    let text = |needle: &str, body_only: bool| EmailQuery {
        text: vec![(body_only, needle.to_string())],
        limit: 10,
        ..EmailQuery::default()
    };
    let found = store
        .query_emails(a.id, &text("reply", true))
        .await
        .unwrap();
    assert_eq!(found.ids, [reply.email_id]);
    let found = store
        .query_emails(a.id, &text("unrelated", false))
        .await
        .unwrap();
    assert_eq!(found.ids, [other.email_id], "the subject is in the headers");
    assert!(store
        .query_emails(a.id, &text("unrelated", true))
        .await
        .unwrap()
        .ids
        .is_empty());
    assert!(matches!(
        store.query_emails(a.id, &text("ab", false)).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn accept_queues_remote_recipients_in_the_same_commit(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let raw = message("out", "to the world");
    let outbound = Outbound {
        mail_from: "a@example.test".into(),
        recipients: vec![
            OutboundRecipient {
                address: "x@remote.test".into(),
                notify: DsnNotify {
                    success: true,
                    failure: true,
                    delay: false,
                },
                orcpt: Some("rfc822;x@remote.test".into()),
            },
            OutboundRecipient {
                address: "y@remote.test".into(),
                notify: DsnNotify::default(),
                orcpt: None,
            },
        ],
        env_id: Some("env-1".into()),
        ret: Some(DsnReturn::Headers),
        account_id: Some(a.id),
        require_tls: false,
        release_at: None,
    };
    let accepted = store
        .accept(
            Delivery {
                message: raw.clone().into(),
                recipients: vec![DeliveryTarget::inbox(a.id)],
                received_at: 1,
            },
            Some(outbound.clone()),
        )
        .await
        .unwrap();
    let local = accepted.local[0].as_ref().unwrap();
    let id = accepted.queued.expect("queued");
    let queue = store.queue_list().await.unwrap();
    assert_eq!(queue.len(), 1);
    let q = &queue[0];
    assert_eq!(q.id, id);
    assert_eq!(q.outbound, outbound);
    assert_eq!(q.size, raw.len() as u64);
    assert!(q
        .recipients
        .iter()
        .all(|r| r.status == RecipientStatus::Pending && r.attempts == 0));
    // The local copy and the queue share one blob.
    assert_eq!(
        store.email(a.id, local.email_id).await.unwrap().blob_id,
        q.blob_id
    );
    // Expunging the local copy leaves the queued message's bytes in place.
    store
        .expunge(a.id, local.mailbox_id, ExpungeFilter::Uids(vec![local.uid]))
        .await
        .unwrap();
    assert_eq!(store.queue_list().await.unwrap()[0].blob_id, q.blob_id);
    // With only remote recipients there are no local results, only the queue.
    let only_remote = store
        .accept(
            Delivery {
                message: (message("out2", "x")).into(),
                recipients: vec![],
                received_at: 1,
            },
            Some(outbound),
        )
        .await
        .unwrap();
    assert!(only_remote.local.is_empty() && only_remote.queued.is_some());
    assert_eq!(store.queue_list().await.unwrap().len(), 2);
}

pub async fn enqueue_blob_queues_stored_bytes(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let accepted = store
        .accept(
            Delivery {
                message: (message("q", "x")).into(),
                recipients: vec![DeliveryTarget::inbox(a.id)],
                received_at: 1,
            },
            None,
        )
        .await
        .unwrap();
    assert!(accepted.queued.is_none());
    let outbound = Outbound {
        mail_from: "s@remote.test".into(),
        recipients: vec![OutboundRecipient {
            address: "a@example.test".into(),
            notify: DsnNotify::default(),
            orcpt: None,
        }],
        env_id: None,
        ret: None,
        account_id: None,
        require_tls: false,
        release_at: None,
    };
    // Only an account holding the bytes may queue them.
    let b = account(&store, "b@example.test").await;
    assert!(matches!(
        store
            .enqueue_blob(b.id, &accepted.blob_id, outbound.clone())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .enqueue_blob(a.id, &accepted.blob_id, outbound.clone())
        .await
        .unwrap();
    let queue = store.queue_list().await.unwrap();
    assert_eq!(queue[0].blob_id, accepted.blob_id);
    assert_eq!(queue[0].size, message("q", "x").len() as u64);
    assert!(matches!(
        store
            .enqueue_blob(a.id, &BlobId("0000".into()), outbound)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn over_quota_recipients_are_queued_when_others_take_the_message(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    store.set_quota("b@example.test", Some(10)).await.unwrap();
    let outbound = Outbound {
        mail_from: "s@remote.test".into(),
        recipients: vec![],
        env_id: None,
        ret: None,
        account_id: None,
        require_tls: false,
        release_at: None,
    };
    let delivery = |targets: Vec<DeliveryTarget>| Delivery {
        message: (message("q", "x")).into(),
        recipients: targets,
        received_at: 1,
    };
    // b alone is over quota: nothing is queued, the caller is told.
    let alone = store
        .accept(
            delivery(vec![DeliveryTarget::inbox(b.id)]),
            Some(outbound.clone()),
        )
        .await
        .unwrap();
    assert!(alone.local[0].is_err() && alone.deferred.is_empty() && alone.queued.is_none());
    assert!(store.queue_list().await.unwrap().is_empty());
    // With a, the message is accepted, and b's copy waits in the queue.
    let both = store
        .accept(
            delivery(vec![
                DeliveryTarget::inbox(a.id),
                DeliveryTarget::inbox(b.id),
            ]),
            Some(outbound),
        )
        .await
        .unwrap();
    assert!(both.local[0].is_ok());
    assert!(matches!(both.local[1], Err(StoreError::OverQuota { .. })));
    assert_eq!(both.deferred, [1]);
    let queue = store.queue_list().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].recipients[0].address, "b@example.test");
    assert_eq!(queue[0].blob_id, both.blob_id);
}

/// Email ids are never reused, even once the newest email is gone (JMAP
/// ids are forever, RFC 8620 §1.2), and a new thread takes its first
/// email's id.
pub async fn email_ids_are_never_reused(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let first = deliver_to(&store, &a, message("one", "x")).await;
    let second = deliver_to(&store, &a, message("two", "x")).await;
    assert!(second.email_id.0 > first.email_id.0);
    store
        .expunge(
            a.id,
            second.mailbox_id,
            ExpungeFilter::Uids(vec![second.uid]),
        )
        .await
        .unwrap();
    let third = deliver_to(&store, &a, message("three", "x")).await;
    assert!(
        third.email_id.0 > second.email_id.0,
        "{third:?} after {second:?}"
    );
    let email = store.email(a.id, third.email_id).await.unwrap();
    assert_eq!(email.thread_id.0, third.email_id.0);
}

/// Uploads hold bytes no email owns yet: readable by their account only,
/// kept alive by an email with the same bytes, freed when nothing holds
/// them (expiry, account removal).
pub async fn uploads_hold_blobs_until_they_expire(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let lonely = store
        .upload_blob(a.id, b"an attachment".to_vec(), 100)
        .await
        .unwrap();
    let raw = message("uploaded", "then imported");
    let kept = store.upload_blob(a.id, raw.clone(), 100).await.unwrap();
    assert_eq!(
        store.read_blob(a.id, &lonely).await.unwrap(),
        b"an attachment"
    );
    assert_eq!(
        store.read_blob_range(a.id, &lonely, 3, 6).await.unwrap(),
        b"attach"
    );
    assert!(matches!(
        store.read_blob(b.id, &lonely).await,
        Err(StoreError::NotFound { .. })
    ));
    // The upload becomes an email (JMAP Email/import).
    let mb = inbox(&store, &a).await;
    let d = store
        .append(a.id, mb.id, raw.clone().into(), vec![], 1)
        .await
        .unwrap();
    assert_eq!(store.email(a.id, d.email_id).await.unwrap().blob_id, kept);
    assert_eq!(
        store.emails_with_blob(a.id, &kept).await.unwrap(),
        [d.email_id]
    );
    assert!(store
        .emails_with_blob(b.id, &kept)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .emails_with_blob(a.id, &lonely)
        .await
        .unwrap()
        .is_empty());
    // Not yet expired at 99; at 100 both uploads go.
    assert_eq!(store.expire_uploads(99).await.unwrap(), 0);
    assert_eq!(store.expire_uploads(100).await.unwrap(), 2);
    assert!(matches!(
        store.read_blob(a.id, &lonely).await,
        Err(StoreError::NotFound { .. })
    ));
    // The email still holds its bytes.
    assert_eq!(store.read_blob(a.id, &kept).await.unwrap(), raw);
    // An account's uploads go with it.
    let c = account(&store, "c@example.test").await;
    store
        .upload_blob(c.id, b"c's file".to_vec(), i64::MAX)
        .await
        .unwrap();
    store.remove_account("c@example.test").await.unwrap();
    assert!(store.upload_blob(c.id, b"x".to_vec(), 1).await.is_err());
}

pub async fn uploads_count_against_the_quota(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    store.set_quota("a@example.test", Some(1000)).await.unwrap();
    store.upload_blob(a.id, vec![b'x'; 600], 100).await.unwrap();
    // 600 waiting; 500 more would pass the 1000.
    assert!(matches!(
        store.upload_blob(a.id, vec![b'y'; 500], 100).await,
        Err(StoreError::OverQuota {
            used: 600,
            limit: 1000,
            needed: 500
        })
    ));
    store.upload_blob(a.id, vec![b'z'; 300], 100).await.unwrap();
    // Expired uploads free their share.
    store.expire_uploads(100).await.unwrap();
    store.upload_blob(a.id, vec![b'y'; 500], 200).await.unwrap();
}
