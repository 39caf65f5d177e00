//! The outbound queue as work: claims with a lease, attempts recorded per
//! recipient, entries and their blobs gone when nobody is left pending.

use super::*;

/// Queues a message with `subject` from nobody local for `recipients`,
/// nothing delivered.
async fn queue_for(store: &Arc<dyn Store>, subject: &str, recipients: &[&str]) -> QueueId {
    queue_raw(store, message(subject, "x"), recipients).await
}

/// Queues `raw` from nobody local for `recipients`, nothing delivered
/// (mail that is only relayed).
pub async fn queue_raw(store: &Arc<dyn Store>, raw: Vec<u8>, recipients: &[&str]) -> QueueId {
    let accepted = store
        .accept(
            Delivery {
                message: raw.into(),
                recipients: vec![],
                received_at: 1,
            },
            Some(Outbound {
                mail_from: "a@example.test".into(),
                recipients: recipients
                    .iter()
                    .map(|r| OutboundRecipient {
                        address: r.to_string(),
                        notify: DsnNotify::default(),
                        orcpt: None,
                    })
                    .collect(),
                env_id: None,
                ret: None,
                account_id: None,
                require_tls: false,
                release_at: None,
            }),
        )
        .await
        .unwrap();
    accepted.queued.expect("queued")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub async fn queue_lease_is_exclusive_and_expires(store: Arc<dyn Store>) {
    let id = queue_for(&store, "lease", &["x@remote.test", "y@remote.test"]).await;
    let t = now();
    let first = store.queue_claim(t, 60, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].message.id, id);
    assert_eq!(first[0].message.recipients.len(), 2);
    assert_eq!(first[0].lease_until, t + 60);
    // Held: nobody else gets it, until the lease runs out.
    assert!(store.queue_claim(t + 59, 60, 10).await.unwrap().is_empty());
    let again = store.queue_claim(t + 60, 60, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].lease, first[0].lease);
    // The first worker's lease is worth nothing now.
    let late = store
        .queue_record(
            id,
            first[0].lease,
            vec![RecipientAttempt {
                address: "x@remote.test".into(),
                outcome: AttemptOutcome::Delivered,
            }],
        )
        .await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
    assert_eq!(
        store.queue_list().await.unwrap()[0].recipients[0].status,
        RecipientStatus::Pending
    );
    // The bytes are readable by the queue, without an email owning them.
    let head = store.queue_read(id, 0, 5).await.unwrap();
    assert_eq!(head, b"From:");
}

pub async fn queue_records_attempts_and_frees_the_blob(store: Arc<dyn Store>) {
    let id = queue_for(
        &store,
        "attempts",
        &["x@remote.test", "y@remote.test", "z@remote.test"],
    )
    .await;
    // A JMAP submission that sent it (with a local recipient besides).
    let a = account(&store, "a@example.test").await;
    let submission = store
        .record_submission(
            a.id,
            &SubmissionRecord {
                id: SubmissionId(0),
                email_id: EmailId(1),
                thread_id: ThreadId(1),
                identity_id: "i1".into(),
                mail_from: "a@example.test".into(),
                rcpt_to: [
                    "x@remote.test",
                    "y@remote.test",
                    "z@remote.test",
                    "b@example.test",
                ]
                .map(String::from)
                .to_vec(),
                send_at: 1,
                queue_id: Some(id),
                delivery: Default::default(),
                canceled: false,
            },
        )
        .await
        .unwrap();
    let t = now();
    let claim = store.queue_claim(t, 60, 10).await.unwrap().remove(0);
    let state = store
        .queue_record(
            id,
            claim.lease,
            vec![
                RecipientAttempt {
                    address: "x@remote.test".into(),
                    outcome: AttemptOutcome::Delivered,
                },
                RecipientAttempt {
                    address: "y@remote.test".into(),
                    outcome: AttemptOutcome::Deferred {
                        next_attempt: t + 300,
                        error: "451 try later".into(),
                    },
                },
                RecipientAttempt {
                    address: "z@remote.test".into(),
                    outcome: AttemptOutcome::Failed {
                        error: "550 no such user".into(),
                    },
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(state, QueueState::Pending);
    // The submission shows each recipient as the queue settled it.
    let sent = store.submissions(a.id, Some(&[submission])).await.unwrap();
    let delivered = |r: &str| sent[0].delivery[r].delivered.clone();
    assert_eq!(delivered("x@remote.test"), "yes");
    assert_eq!(delivered("y@remote.test"), "queued");
    assert_eq!(delivered("z@remote.test"), "no");
    assert_eq!(
        sent[0].delivery["z@remote.test"].reply.as_deref(),
        Some("550 no such user")
    );
    assert_eq!(delivered("b@example.test"), "yes", "delivered locally");
    let q = store.queue_list().await.unwrap().remove(0);
    let by = |a: &str| {
        q.recipients
            .iter()
            .find(|r| r.address == a)
            .unwrap()
            .clone()
    };
    assert_eq!(by("x@remote.test").status, RecipientStatus::Delivered);
    let y = by("y@remote.test");
    assert_eq!(
        (y.status, y.attempts, y.next_attempt),
        (RecipientStatus::Pending, 1, t + 300)
    );
    assert_eq!(y.last_error.as_deref(), Some("451 try later"));
    assert_eq!(by("z@remote.test").status, RecipientStatus::Failed);
    // The lease was released, but y is not due before its next attempt;
    // then only y is handed out.
    assert!(store.queue_claim(t + 299, 60, 10).await.unwrap().is_empty());
    let claim = store.queue_claim(t + 300, 60, 10).await.unwrap().remove(0);
    let pending: Vec<_> = claim
        .message
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(pending, ["y@remote.test"]);
    let state = store
        .queue_record(
            id,
            claim.lease,
            vec![RecipientAttempt {
                address: "y@remote.test".into(),
                outcome: AttemptOutcome::Delivered,
            }],
        )
        .await
        .unwrap();
    assert_eq!(state, QueueState::Done);
    assert!(store.queue_list().await.unwrap().is_empty());
    // Nothing else held the bytes: they are gone.
    assert!(matches!(
        store.queue_read(id, 0, 5).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Two workers on two Stores over the same data (two processes, two
/// nodes) claiming at once never hold the same message.
pub async fn queue_claims_never_overlap(fixture: &Fixture) {
    let store = fixture.store.clone();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(queue_for(&store, &format!("m{i}"), &["x@remote.test"]).await);
    }
    let peer = (fixture.open_peer)();
    let t = now();
    let mut tasks = Vec::new();
    for s in [store.clone(), peer.clone(), store.clone(), peer.clone()] {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claims = s.queue_claim(t, 600, 3).await.unwrap();
                if claims.is_empty() {
                    return got;
                }
                got.extend(claims.into_iter().map(|c| c.message.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    ids.sort();
    assert_eq!(all, ids, "every message claimed exactly once");
    peer.close().await.unwrap();
}

/// A claim hands out only the recipients due now: one deferred for an hour
/// is not tried early (and its attempts do not grow early) because another
/// recipient of the same message fell due.
pub async fn queue_claims_hand_out_only_due_recipients(store: Arc<dyn Store>) {
    let id = queue_for(&store, "due", &["early@remote.test", "late@remote.test"]).await;
    let t = now();
    let claim = store.queue_claim(t, 60, 10).await.unwrap().remove(0);
    store
        .queue_record(
            id,
            claim.lease,
            vec![
                RecipientAttempt {
                    address: "early@remote.test".into(),
                    outcome: AttemptOutcome::Deferred {
                        next_attempt: t + 60,
                        error: "421 busy".into(),
                    },
                },
                RecipientAttempt {
                    address: "late@remote.test".into(),
                    outcome: AttemptOutcome::Deferred {
                        next_attempt: t + 3600,
                        error: "451 greylisted".into(),
                    },
                },
            ],
        )
        .await
        .unwrap();
    let claim = store.queue_claim(t + 60, 60, 10).await.unwrap().remove(0);
    let handed: Vec<_> = claim
        .message
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(handed, ["early@remote.test"]);
}

/// An administrator's flush makes deferred recipients due at once; a
/// removal drops the entry (and its hold on the blob) whatever is pending.
pub async fn queue_flush_and_remove(store: Arc<dyn Store>) {
    let id = queue_for(&store, "flush", &["x@remote.test"]).await;
    let t = now();
    let claim = store.queue_claim(t, 60, 10).await.unwrap().remove(0);
    store
        .queue_record(
            id,
            claim.lease,
            vec![RecipientAttempt {
                address: "x@remote.test".into(),
                outcome: AttemptOutcome::Deferred {
                    next_attempt: t + 3600,
                    error: "later".into(),
                },
            }],
        )
        .await
        .unwrap();
    assert!(store.queue_claim(t, 60, 10).await.unwrap().is_empty());
    assert_eq!(store.queue_flush(Some(id)).await.unwrap(), 1);
    assert_eq!(
        store.queue_flush(Some(QueueId(id.0 + 1000))).await.unwrap(),
        0
    );
    // Held, nobody takes it; released, it is due again.
    store.queue_hold(id, true).await.unwrap();
    assert!(store.queue_list().await.unwrap()[0].held);
    assert!(store
        .queue_claim(now() + 1, 60, 10)
        .await
        .unwrap()
        .is_empty());
    store.queue_hold(id, false).await.unwrap();
    assert!(matches!(
        store.queue_hold(QueueId(id.0 + 1000), true).await,
        Err(StoreError::NotFound { .. })
    ));
    let due = store.queue_claim(now() + 1, 60, 10).await.unwrap();
    assert_eq!(due.len(), 1, "flushed and released: due now");
    let blob = due[0].message.blob_id.clone();
    store.queue_remove(id).await.unwrap();
    assert!(store.queue_list().await.unwrap().is_empty());
    assert!(
        store.queue_read(id, 0, 10).await.is_err(),
        "its blob is gone: {blob}"
    );
    assert!(matches!(
        store.queue_remove(id).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Partial records keep the lease; an entry whose every recipient was
/// recorded by a worker that then died is removed by the next claim
/// after its lease, and `queue_release_leases` frees what a dead
/// process held.
pub async fn queue_partial_records_and_dead_workers(store: Arc<dyn Store>) {
    let id = queue_for(&store, "partial", &["x@remote.test", "y@remote.test"]).await;
    let t = now();
    let claim = store.queue_claim(t, 60, 10).await.unwrap().remove(0);
    store
        .queue_record_part(
            id,
            claim.lease,
            vec![RecipientAttempt {
                address: "x@remote.test".into(),
                outcome: AttemptOutcome::Delivered,
            }],
        )
        .await
        .unwrap();
    // Still ours: nobody else may claim it.
    assert!(store.queue_claim(t, 60, 10).await.unwrap().is_empty());
    store
        .queue_record_part(
            id,
            claim.lease,
            vec![RecipientAttempt {
                address: "y@remote.test".into(),
                outcome: AttemptOutcome::Delivered,
            }],
        )
        .await
        .unwrap();
    // The worker dies here, before its final record. After the lease the
    // finished entry is swept away.
    assert_eq!(store.queue_sweep(t + 30).await.unwrap(), 0, "still leased");
    assert_eq!(store.queue_list().await.unwrap().len(), 1);
    assert!(store.queue_claim(t + 61, 60, 10).await.unwrap().is_empty());
    assert_eq!(store.queue_sweep(t + 61).await.unwrap(), 1);
    assert!(store.queue_list().await.unwrap().is_empty());

    // A claim held by a dead process is freed at once on request.
    // Claimed at the clock's now: enqueued after `t`, it may be due only
    // a second later (a loaded machine).
    let id = queue_for(&store, "held", &["z@remote.test"]).await;
    let first = store.queue_claim(now(), 600, 10).await.unwrap().remove(0);
    assert_eq!(first.message.id, id);
    assert_eq!(store.queue_release_leases().await.unwrap(), 1);
    let again = store.queue_claim(now(), 600, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].lease, first.lease);

    // A whole destination postponed: only its pending recipients move.
    let other = queue_for(&store, "other", &["q@Other.test", "r@elsewhere.test"]).await;
    assert_eq!(
        store
            .queue_postpone_domain("other.test", t + 500)
            .await
            .unwrap(),
        1
    );
    let listed = store.queue_list().await.unwrap();
    let entry = listed.iter().find(|m| m.id == other).unwrap();
    let due = |a: &str| {
        entry
            .recipients
            .iter()
            .find(|r| r.address == a)
            .unwrap()
            .next_attempt
    };
    assert_eq!(due("q@Other.test"), t + 500);
    assert!(due("r@elsewhere.test") < t + 500);
    store.queue_remove(other).await.unwrap();

    // Postponed: due later, no attempt counted, no error recorded.
    store
        .queue_record(
            id,
            again[0].lease,
            vec![RecipientAttempt {
                address: "z@remote.test".into(),
                outcome: AttemptOutcome::Postponed {
                    next_attempt: t + 15,
                },
            }],
        )
        .await
        .unwrap();
    let z = store
        .queue_list()
        .await
        .unwrap()
        .remove(0)
        .recipients
        .remove(0);
    assert_eq!(
        (z.status, z.attempts, z.next_attempt, z.last_error),
        (RecipientStatus::Pending, 0, t + 15, None)
    );
}

pub async fn held_submissions_wait_and_can_be_cancelled(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let t = now();
    let enqueue = |release_at: Option<i64>| {
        let store = store.clone();
        async move {
            store
                .accept(
                    Delivery {
                        message: message("later", "x").into(),
                        recipients: vec![],
                        received_at: 1,
                    },
                    Some(Outbound {
                        mail_from: "a@example.test".into(),
                        recipients: vec![OutboundRecipient {
                            address: "x@remote.test".into(),
                            notify: DsnNotify::default(),
                            orcpt: None,
                        }],
                        env_id: None,
                        ret: None,
                        account_id: Some(a.id),
                        require_tls: false,
                        release_at,
                    }),
                )
                .await
                .unwrap()
                .queued
                .unwrap()
        }
    };
    let submit = |queue_id: QueueId| {
        let store = store.clone();
        async move {
            store
                .record_submission(
                    a.id,
                    &SubmissionRecord {
                        id: SubmissionId(0),
                        email_id: EmailId(1),
                        thread_id: ThreadId(1),
                        identity_id: "i1".into(),
                        mail_from: "a@example.test".into(),
                        rcpt_to: vec!["x@remote.test".into()],
                        send_at: t + 3600,
                        queue_id: Some(queue_id),
                        delivery: Default::default(),
                        canceled: false,
                    },
                )
                .await
                .unwrap()
        }
    };
    // Held an hour: nothing to claim now, everything at the release.
    let later = enqueue(Some(t + 3600)).await;
    let held = submit(later).await;
    assert!(store.queue_claim(t, 60, 10).await.unwrap().is_empty());
    assert!(store.cancel_submission(a.id, held).await.unwrap());
    assert!(
        store.queue_list().await.unwrap().is_empty(),
        "the queued copy went"
    );
    let s = store.submissions(a.id, Some(&[held])).await.unwrap();
    assert!(s[0].canceled && s[0].queue_id.is_none());
    assert!(!store.cancel_submission(a.id, held).await.unwrap(), "once");
    // Once the queue has a message in hand, it is too late.
    let now_ = enqueue(None).await;
    let sent = submit(now_).await;
    // Claimed at the clock's now: enqueued after `t`, it may be due only
    // a second later.
    let claim = store.queue_claim(now(), 60, 10).await.unwrap();
    assert_eq!(claim.len(), 1);
    assert!(!store.cancel_submission(a.id, sent).await.unwrap());
    assert_eq!(store.queue_list().await.unwrap().len(), 1);
}
