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
            message: raw3.into(),
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
        s(SearchKey::Keyword("\\See".into())).await,
        Vec::<u32>::new(),
        "a keyword's prefix is another keyword"
    );
    assert_eq!(
        s(SearchKey::Keyword("\\Seen \\Draft".into())).await,
        Vec::<u32>::new(),
        "no keyword holds a space"
    );
    assert_eq!(
        s(SearchKey::and([
            SearchKey::Keyword("\\SEEN".into()),
            SearchKey::Larger(0)
        ]))
        .await,
        [d2.uid.0],
        "keywords beside a key that needs the size"
    );
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
        // The day of 4 Nov 2026 (SENTON: the Date's day as written).
        s(SearchKey::Sent {
            since: Some(1_793_750_400),
            before: Some(1_793_750_400 + 86_400)
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

/// SUBJECT over folded and encoded subjects, ignoring case, under NOT and
/// OR with other header keys, never leaking another account's mail.
pub async fn subject_search(store: Arc<dyn Store>) {
    let a = account(&store, "a@example.test").await;
    let b = account(&store, "b@example.test").await;
    let mb = inbox(&store, &a).await;
    let raw = |subject: &str| {
        format!("From: x@example.net\r\nSubject: {subject}\r\nX-Tag: t\r\n\r\nbody\r\n")
            .into_bytes()
    };
    let mut uids = Vec::new();
    for subject in [
        "Quarterly\r\n planning meeting",
        "=?utf-8?q?Caf=C3=A9_Planning?= notes",
        "lunch",
        "PLANNING in capitals",
    ] {
        uids.push(deliver_to(&store, &a, raw(subject)).await.uid.0);
    }
    deliver_to(&store, &b, message("planning elsewhere", "x")).await;
    let s = |key: SearchKey| {
        let store = store.clone();
        async move {
            let mut found: Vec<u32> = store
                .search(a.id, mb.id, &key)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.0)
                .collect();
            found.sort_unstable();
            found
        }
    };
    let subject = |v: &str| SearchKey::Header {
        name: "Subject".into(),
        value: v.into(),
    };
    assert_eq!(s(subject("planning")).await, [uids[0], uids[1], uids[3]]);
    assert_eq!(
        s(subject("quarterly planning")).await,
        [uids[0]],
        "unfolded"
    );
    assert_eq!(
        s(subject("café plan")).await,
        [uids[1]],
        "decoded, not ASCII"
    );
    assert_eq!(s(subject("é planning")).await, [uids[1]]);
    assert_eq!(
        s(SearchKey::Not(Box::new(subject("planning")))).await,
        [uids[2]]
    );
    assert_eq!(
        s(SearchKey::Or(
            Box::new(subject("lunch")),
            Box::new(SearchKey::Header {
                name: "X-Tag".into(),
                value: "nothing like it".into()
            })
        ))
        .await,
        [uids[2]]
    );
    assert_eq!(s(subject("no such words")).await, Vec::<u32>::new());
}
