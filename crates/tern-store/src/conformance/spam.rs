//! The spam filter's memory: training requests left by the Store
//! operations that carry a user's verdict, training and untraining, and
//! greylisting's triplets.

use super::*;

async fn junk(store: &Arc<dyn Store>, a: &Account) -> Mailbox {
    store
        .mailbox_by_role(a.id, Role::Junk)
        .await
        .unwrap()
        .expect("a Junk mailbox")
}

pub async fn moves_into_and_out_of_junk_ask_for_training(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let (inbox, junk) = (inbox(&store, &a).await, junk(&store, &a).await);
    let d1 = deliver_to(&store, &a, message("1", "cheap pills")).await;
    let d2 = deliver_to(&store, &a, message("2", "lunch")).await;
    assert!(
        store.bayes_pending(10).await.unwrap().is_empty(),
        "delivery is no verdict"
    );
    let moved = store
        .move_messages(a.id, inbox.id, &[d1.uid], junk.id)
        .await
        .unwrap();
    let pending = store.bayes_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].email_id, pending[0].spam), (d1.email_id, true));
    // Trained: counted once, however often asked.
    store
        .bayes_train(&pending[0], Some(vec![1, 2, 3]), false)
        .await
        .unwrap();
    assert!(store.bayes_pending(10).await.unwrap().is_empty());
    let counts = store.bayes_counts(a.id, &[1, 2, 9]).await.unwrap();
    assert_eq!((counts.spam_messages, counts.ham_messages), (1, 0));
    assert_eq!(counts.tokens, [(1, 1, 0), (2, 1, 0)]);
    // Moved back out: the user changed their mind; the old verdict is
    // taken back.
    store
        .move_messages(a.id, junk.id, &[moved.mapping[0].1], inbox.id)
        .await
        .unwrap();
    let pending = store.bayes_pending(10).await.unwrap();
    assert_eq!((pending[0].email_id, pending[0].spam), (d1.email_id, false));
    store
        .bayes_train(&pending[0], Some(vec![1, 2, 3]), false)
        .await
        .unwrap();
    let counts = store.bayes_counts(a.id, &[1]).await.unwrap();
    assert_eq!((counts.spam_messages, counts.ham_messages), (0, 1));
    assert_eq!(counts.tokens, [(1, 0, 1)]);
    // Keywords are verdicts too (RFC 5788 $Junk / $NotJunk), once added.
    store
        .set_keywords(
            a.id,
            inbox.id,
            &[d2.uid],
            KeywordOp::Add,
            &["$Junk".into()],
            None,
        )
        .await
        .unwrap();
    store
        .set_keywords(
            a.id,
            inbox.id,
            &[d2.uid],
            KeywordOp::Add,
            &["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    let pending = store.bayes_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1, "only the new $Junk asks: {pending:?}");
    assert_eq!((pending[0].email_id, pending[0].spam), (d2.email_id, true));
    // An email gone by the time the trainer looks: the request is dropped.
    store.bayes_train(&pending[0], None, false).await.unwrap();
    assert!(store.bayes_pending(10).await.unwrap().is_empty());
    let stats = store.spam_stats(a.id).await.unwrap();
    assert_eq!(
        (stats.spam_messages, stats.ham_messages, stats.tokens),
        (0, 1, 3)
    );
    assert_eq!(stats.recent_trained, 1);
}

pub async fn greylisting_defers_then_remembers(store: Arc<dyn Store>) {
    let t = ("192.0.2.0/24", "a@remote.test", "b@example.test");
    let (delay, ttl) = (300, 86_400);
    assert_eq!(
        store.greylist(t, 1000, delay, ttl).await.unwrap(),
        GreylistVerdict::Wait(300)
    );
    assert_eq!(
        store.greylist(t, 1100, delay, ttl).await.unwrap(),
        GreylistVerdict::Wait(200),
        "too soon"
    );
    assert_eq!(
        store.greylist(t, 1300, delay, ttl).await.unwrap(),
        GreylistVerdict::Pass
    );
    // Remembered: later mail on the triplet passes at once.
    assert_eq!(
        store.greylist(t, 1300 + ttl - 1, delay, ttl).await.unwrap(),
        GreylistVerdict::Pass
    );
    // Another sender is a new triplet.
    let other = ("192.0.2.0/24", "c@remote.test", "b@example.test");
    assert!(matches!(
        store.greylist(other, 2000, delay, ttl).await.unwrap(),
        GreylistVerdict::Wait(_)
    ));
    // Forgotten after a silence longer than the time-to-live.
    assert!(matches!(
        store.greylist(t, 1300 + 3 * ttl, delay, ttl).await.unwrap(),
        GreylistVerdict::Wait(_)
    ));
}
