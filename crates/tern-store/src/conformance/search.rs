//! Conformance cases: Search keys, full-text included.

use super::*;

pub async fn search(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let mb = inbox(&store, &a).await;
    let d1 = deliver_to(
        &store,
        &a,
        message("Quarterly report", "Revenue grew in the north region"),
    )
    .await;
    let d2 = deliver_to(&store, &a, message("Lunch", "Shall we meet at noon? ok")).await;
    let raw3 = b"From: x@example.net\r\nSubject: =?utf-8?q?Caf=C3=A9_news?=\r\nX-Priority: 1\r\nDate: Wed, 4 Nov 2026 10:00:00 +0000\r\n\r\n<p>see the <b>menu</b></p>\r\n".to_vec();
    let d3 = store
        .deliver(Delivery {
            raw: raw3,
            recipients: vec![DeliveryTarget::inbox(a.id)],
            received_at: 1_900_000_000,
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    // The same words in another account never leak into this one's results.
    deliver_to(&store, &b, message("Quarterly report", "Revenue grew")).await;
    store
        .set_keywords(
            a.id,
            mb.id,
            &[d2.uid],
            KeywordOp::Add,
            &["\\Seen".into()],
            None,
        )
        .await
        .unwrap();

    let s = |key: SearchKey| {
        let store = store.clone();
        async move {
            store
                .search(a.id, mb.id, &key)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.0)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(s(SearchKey::All).await, [1, 2, 3]);
    assert_eq!(s(SearchKey::Body("north REG".into())).await, [d1.uid.0]);
    assert_eq!(
        s(SearchKey::Body("ok".into())).await,
        [d2.uid.0],
        "short strings fall back to LIKE"
    );
    assert_eq!(s(SearchKey::Text("quarterly".into())).await, [d1.uid.0]);
    assert_eq!(
        s(SearchKey::Text("café".into())).await,
        [d3.uid.0],
        "decoded subject is searchable"
    );
    assert_eq!(
        s(SearchKey::Body("quarterly".into())).await,
        Vec::<u32>::new(),
        "BODY excludes headers"
    );
    assert_eq!(s(SearchKey::Body("menu".into())).await, [d3.uid.0]);
    assert_eq!(s(SearchKey::Keyword("\\seen".into())).await, [d2.uid.0]);
    assert_eq!(
        s(SearchKey::Not(Box::new(SearchKey::Keyword(
            "\\Seen".into()
        ))))
        .await,
        [1, 3]
    );
    assert_eq!(
        s(SearchKey::Or(
            Box::new(SearchKey::Uids(vec![(Uid(1), Uid(1))])),
            Box::new(SearchKey::Uids(vec![(Uid(3), Uid(9))]))
        ))
        .await,
        [1, 3]
    );
    assert_eq!(
        s(SearchKey::Header {
            name: "x-priority".into(),
            value: "".into()
        })
        .await,
        [d3.uid.0]
    );
    assert_eq!(
        s(SearchKey::Header {
            name: "subject".into(),
            value: "LUNCH".into()
        })
        .await,
        [d2.uid.0]
    );
    assert_eq!(
        s(SearchKey::Received {
            since: Some(1_850_000_000),
            before: None
        })
        .await,
        [d3.uid.0]
    );
    assert_eq!(
        s(SearchKey::Sent {
            since: Some(1_793_786_000),
            before: Some(1_793_787_000)
        })
        .await,
        [d3.uid.0]
    );
    let size1 = store.email(a.id, d1.email_id).await.unwrap().size;
    assert!(!s(SearchKey::Larger(size1)).await.contains(&d1.uid.0));
    assert!(s(SearchKey::Smaller(size1 + 1)).await.contains(&d1.uid.0));
    assert_eq!(
        s(SearchKey::and([
            SearchKey::Text("e".into()),
            SearchKey::Keyword("\\Seen".into())
        ]))
        .await,
        [d2.uid.0]
    );
    assert_eq!(
        s(SearchKey::ModSeqAtLeast(d3.modseq)).await,
        [d2.uid.0, d3.uid.0]
    );
    assert_eq!(
        s(SearchKey::Body("quote\"d".into())).await,
        Vec::<u32>::new(),
        "quotes are escaped, not parsed"
    );
    assert_eq!(s(SearchKey::Body("100%".into())).await, Vec::<u32>::new());
}
