//! `tern store migrate` (issue 16): a SQLite store filled through the Store
//! API, copied into PostgreSQL, answers every question exactly as the
//! SQLite store does — ids, UIDs, UIDVALIDITY, modseqs, keywords, the
//! change journal, blobs, search, the queue and the quota — so clients do
//! not resynchronise; an interrupted copy resumed gives the same result.

use super::{server_url, ScratchDb};
use std::path::Path;
use std::sync::Arc;
use tern_store::conformance::message;
use tern_store::postgres::migrate::{self, Flow, Report};
use tern_store::postgres::{PgOptions, PgStore};
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::*;

/// Rows of TLS report added in one call: more than two batches, with a
/// key of five text columns, so pages of a composite key are resumed.
const TLS_ROWS: usize = 1_200;

/// The accounts the filled store has.
const ACCOUNTS: &[&str] = &["a@example.test", "b@other.test"];

/// Fills a store with one of everything the schema holds.
async fn fill(store: &Arc<dyn Store>) {
    store.add_domain("example.test").await.unwrap();
    store.add_domain("other.test").await.unwrap();
    let mut accounts = Vec::new();
    for address in ACCOUNTS {
        accounts.push(
            store
                .create_account(NewAccount {
                    address: address.to_string(),
                    password_hash: "$argon2id$placeholder".into(),
                    quota_bytes: Some(50_000_000),
                })
                .await
                .unwrap(),
        );
    }
    let (a, b) = (&accounts[0], &accounts[1]);
    store
        .set_alias(Alias {
            address: "team@example.test".into(),
            targets: vec![a.address.clone(), b.address.clone()],
        })
        .await
        .unwrap();
    let inbox = store
        .mailbox_by_role(a.id, Role::Inbox)
        .await
        .unwrap()
        .unwrap();
    let junk = store
        .mailbox_by_role(a.id, Role::Junk)
        .await
        .unwrap()
        .unwrap();
    let projects = store
        .create_mailbox(a.id, "Projects/2026", None)
        .await
        .unwrap();

    // Six messages, one larger than a blob chunk; one to both accounts.
    let mut uids = Vec::new();
    for i in 0..6 {
        let body = if i == 3 {
            "large quarterly report ".repeat(30_000)
        } else {
            format!("note {i} about the northern needle{i}")
        };
        let recipients = if i == 1 {
            vec![DeliveryTarget::inbox(a.id), DeliveryTarget::inbox(b.id)]
        } else {
            vec![DeliveryTarget::inbox(a.id)]
        };
        let delivered = store
            .deliver(Delivery {
                message: message(&format!("msg-{i}"), &body).into(),
                recipients,
                received_at: 1_800_000_000 + i,
            })
            .await
            .unwrap();
        uids.push(delivered[0].as_ref().unwrap().uid);
    }
    let flags = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    store
        .set_keywords(
            a.id,
            inbox.id,
            &uids[..3],
            KeywordOp::Add,
            &flags(&["\\Seen", "$Label1"]),
            None,
        )
        .await
        .unwrap();
    store
        .set_keywords(
            a.id,
            inbox.id,
            &[uids[2]],
            KeywordOp::Add,
            &flags(&["\\Deleted"]),
            None,
        )
        .await
        .unwrap();
    // A move and an expunge leave tombstones; a move into Junk leaves a
    // training request; a copy makes a new email of the same blob.
    store
        .move_messages(a.id, inbox.id, &[uids[1]], projects.id)
        .await
        .unwrap();
    store
        .expunge(a.id, inbox.id, ExpungeFilter::Deleted)
        .await
        .unwrap();
    store
        .move_messages(a.id, inbox.id, &[uids[4]], junk.id)
        .await
        .unwrap();
    store
        .copy_messages(a.id, inbox.id, &[uids[0]], projects.id)
        .await
        .unwrap();
    // The newest email destroyed: the next id must still be past it.
    let last = store.messages(a.id, inbox.id, &[uids[5]]).await.unwrap();
    store
        .destroy_emails(a.id, &[last[0].email_id])
        .await
        .unwrap();
    store
        .set_subscription(a.id, "Gone/But/Subscribed", true)
        .await
        .unwrap();
    store
        .subscribe_mailbox(a.id, projects.id, false)
        .await
        .unwrap();

    // The spam filter's memory.
    let pending = store.bayes_pending(10).await.unwrap();
    assert!(!pending.is_empty());
    store
        .bayes_train(&pending[0], Some((1..200).collect()), false)
        .await
        .unwrap();
    store
        .greylist(
            ("192.0.2.0/24", "x@remote.test", "a@example.test"),
            1_000,
            300,
            86_400,
        )
        .await
        .unwrap();

    // The queue, a submission, an upload, settings and DKIM.
    let accepted = store
        .accept(
            Delivery {
                message: message("outbound", "to the world").into(),
                recipients: vec![],
                received_at: 1_800_000_100,
            },
            Some(Outbound {
                mail_from: a.address.clone(),
                recipients: vec![OutboundRecipient {
                    address: "x@remote.test".into(),
                    notify: DsnNotify::default(),
                    orcpt: None,
                }],
                env_id: Some("env-1".into()),
                ret: None,
                account_id: Some(a.id),
                require_tls: true,
                release_at: None,
            }),
        )
        .await
        .unwrap();
    let queued = accepted.queued.unwrap();
    store.queue_hold(queued, true).await.unwrap();
    let sent = store.messages(a.id, inbox.id, &[uids[0]]).await.unwrap();
    let record = store.email(a.id, sent[0].email_id).await.unwrap();
    store
        .record_submission(
            a.id,
            &SubmissionRecord {
                id: SubmissionId(0),
                email_id: record.id,
                thread_id: record.thread_id,
                identity_id: "i1".into(),
                mail_from: a.address.clone(),
                rcpt_to: vec!["x@remote.test".into()],
                send_at: 1_800_000_200,
                queue_id: Some(queued),
                delivery: Default::default(),
                canceled: false,
            },
        )
        .await
        .unwrap();
    store
        .upload_blob(a.id, b"an attachment\0with a NUL".to_vec(), 4_000_000_000)
        .await
        .unwrap();
    store
        .set_account_setting(a.id, "vacation", Some(r#"{"isEnabled":true}"#))
        .await
        .unwrap();
    assert!(store
        .auto_reply_due(a.id, "x@remote.test", 1_800_000_000, 86_400)
        .await
        .unwrap());
    store
        .add_dkim_key(DkimKey {
            domain: "example.test".into(),
            selector: "e202601".into(),
            algorithm: "ed25519".into(),
            private_key: vec![0, 1, 2, 255],
            created_at: 1_800_000_000,
        })
        .await
        .unwrap();
    let rows = (0..TLS_ROWS)
        .map(|i| TlsReportRow {
            day: format!("2026-01-{:02}", 1 + i % 28),
            policy_domain: format!("d{}.test", i % 7),
            policy_type: "sts".into(),
            result_type: if i % 3 == 0 {
                "success"
            } else {
                "starttls-not-supported"
            }
            .into(),
            mx_host: format!("mx{i}.d.test"),
            sessions: i as u64 + 1,
        })
        .collect();
    store.tls_report_add(rows).await.unwrap();
}

/// Everything a client could ask of the filled store, as text to compare.
async fn answers(store: &Arc<dyn Store>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut put = |what: String, value: String| out.push((what, value));
    put(
        "domains".into(),
        format!("{:?}", store.list_domains().await.unwrap()),
    );
    put(
        "aliases".into(),
        format!("{:?}", store.list_aliases().await.unwrap()),
    );
    put(
        "dkim".into(),
        format!("{:?}", store.dkim_keys("example.test").await.unwrap()),
    );
    put(
        "queue".into(),
        format!("{:?}", store.queue_list().await.unwrap()),
    );
    put(
        "tls report".into(),
        format!("{:?}", store.tls_report_list("2000-01-01").await.unwrap()),
    );
    for address in ACCOUNTS {
        let a = store.account_by_address(address).await.unwrap().unwrap();
        let id = a.id;
        put(format!("{address} account"), format!("{a:?}"));
        let highest = store.highest_modseq(id).await.unwrap();
        put(format!("{address} highest modseq"), format!("{highest:?}"));
        let mid = ModSeq(highest.0 / 2);
        put(
            format!("{address} quota"),
            format!("{:?}", store.quota(id).await.unwrap()),
        );
        put(
            format!("{address} changes"),
            format!(
                "{:?}",
                store
                    .account_changes(id, ModSeq(0), usize::MAX)
                    .await
                    .unwrap()
            ),
        );
        put(
            format!("{address} changes since {mid:?}"),
            format!(
                "{:?}",
                store.account_changes(id, mid, usize::MAX).await.unwrap()
            ),
        );
        put(
            format!("{address} subscriptions"),
            format!("{:?}", store.subscriptions(id).await.unwrap()),
        );
        put(
            format!("{address} submissions"),
            format!("{:?}", store.submissions(id, None).await.unwrap()),
        );
        put(
            format!("{address} settings"),
            format!(
                "{:?}",
                store.account_settings_with_prefix(id, "").await.unwrap()
            ),
        );
        put(
            format!("{address} spam"),
            format!("{:?}", store.spam_stats(id).await.unwrap()),
        );
        put(
            format!("{address} bayes"),
            format!(
                "{:?}",
                store.bayes_counts(id, &[1, 2, 150, 500]).await.unwrap()
            ),
        );
        for mailbox in store.list_mailboxes(id).await.unwrap() {
            let name = format!("{address} {}", mailbox.name);
            put(format!("{name} mailbox"), format!("{mailbox:?}"));
            put(
                format!("{name} counts"),
                format!("{:?}", store.mailbox_counts(id, mailbox.id).await.unwrap()),
            );
            put(
                format!("{name} changes since {mid:?}"),
                format!(
                    "{:?}",
                    store.mailbox_changes(id, mailbox.id, mid).await.unwrap()
                ),
            );
            for key in [
                SearchKey::Text("NEEDLE1".into()),
                SearchKey::Text("northern".into()),
                SearchKey::Body("quarterly".into()),
                SearchKey::Keyword("$Label1".into()),
                // SQLite keeps header blocks packed; PostgreSQL as text.
                SearchKey::Header {
                    name: "subject".into(),
                    value: "1".into(),
                },
            ] {
                put(
                    format!("{name} search {key:?}"),
                    format!("{:?}", store.search(id, mailbox.id, &key).await.unwrap()),
                );
            }
            let entries = store.list_messages(id, mailbox.id).await.unwrap();
            put(format!("{name} messages"), format!("{entries:?}"));
            for entry in entries {
                let email = store.email(id, entry.email_id).await.unwrap();
                let raw = store.read_blob(id, &email.blob_id).await.unwrap();
                put(
                    format!("{name} uid {} blob", entry.uid.0),
                    format!(
                        "{} bytes, {:x?}",
                        raw.len(),
                        &raw[raw.len().saturating_sub(40)..]
                    ),
                );
                put(
                    format!("{name} uid {} email", entry.uid.0),
                    format!("{email:?}"),
                );
            }
        }
    }
    out
}

/// What the next delivery to each account gets: ids and UIDs continue
/// where the SQLite store left off, past the destroyed email's id.
async fn next_delivery(store: &Arc<dyn Store>) -> Vec<String> {
    let mut out = Vec::new();
    for address in ACCOUNTS {
        let a = store.account_by_address(address).await.unwrap().unwrap();
        let d = store
            .deliver(Delivery {
                message: message("after the move", "hello").into(),
                recipients: vec![DeliveryTarget::inbox(a.id)],
                received_at: 1_900_000_000,
            })
            .await
            .unwrap();
        out.push(format!("{d:?}"));
        let m = store.create_mailbox(a.id, "New", None).await.unwrap();
        out.push(format!("{:?} {:?}", m.id, m.uid_validity > 0));
    }
    out
}

fn assert_same(sqlite: &[(String, String)], postgres: &[(String, String)]) {
    assert_eq!(sqlite.len(), postgres.len(), "the same number of answers");
    for ((what, s), (what_pg, p)) in sqlite.iter().zip(postgres) {
        assert_eq!(what, what_pg);
        assert_eq!(
            s, p,
            "{what}: SQLite answered the first, PostgreSQL the second"
        );
    }
}

async fn open_pg(url: &str) -> Arc<dyn Store> {
    Arc::new(PgStore::open(PgOptions::new(url)).await.unwrap())
}

fn assert_verified(report: &Report) {
    assert!(report.complete);
    assert!(report.counts.len() > 20, "{:?}", report.counts);
    let bad: Vec<_> = report.mismatches().collect();
    assert!(bad.is_empty(), "counts differ: {bad:?}");
}

async fn filled_sqlite(dir: &Path) -> Arc<dyn Store> {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join("tern.db"), SqliteOptions::default()).unwrap());
    fill(&store).await;
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_store_answers_as_the_sqlite_store_did() {
    let Some(admin) = server_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = filled_sqlite(dir.path()).await;
    let expected = answers(&sqlite).await;
    sqlite.close().await.unwrap();
    drop(sqlite);

    let db = ScratchDb::create(&admin).await;
    let mut tables = Vec::new();
    let report = migrate::from_sqlite(
        &dir.path().join("tern.db"),
        &PgOptions::new(db.url.clone()),
        |p| {
            if p.finished {
                tables.push(p.table.to_string());
            }
            Flow::Continue
        },
    )
    .await
    .unwrap();
    assert_verified(&report);
    assert!(!report.resumed);
    assert!(tables.contains(&"email_text".to_string()), "{tables:?}");
    let tls = report
        .counts
        .iter()
        .find(|c| c.table == "tls_report")
        .unwrap();
    assert_eq!(tls.source, TLS_ROWS as u64);

    let pg = open_pg(&db.url).await;
    assert_same(&expected, &answers(&pg).await);

    // A second run of the same copy changes nothing and verifies again.
    let again = migrate::from_sqlite(
        &dir.path().join("tern.db"),
        &PgOptions::new(db.url.clone()),
        |_| Flow::Continue,
    )
    .await
    .unwrap();
    assert_verified(&again);
    assert!(again.resumed);
    assert_same(&expected, &answers(&pg).await);

    // Both stores go on from the same place.
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("tern.db"), SqliteOptions::default()).unwrap());
    let (from_sqlite, from_pg) = (next_delivery(&sqlite).await, next_delivery(&pg).await);
    assert_eq!(from_sqlite, from_pg);
    sqlite.close().await.unwrap();
    pg.close().await.unwrap();

    // Another deployment is not poured into this one.
    let other = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&other.path().join("tern.db"), SqliteOptions::default()).unwrap(),
    );
    store.close().await.unwrap();
    let err = migrate::from_sqlite(
        &other.path().join("tern.db"),
        &PgOptions::new(db.url.clone()),
        |_| Flow::Continue,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("must be empty"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_migration_resumes_where_it_stopped() {
    let Some(admin) = server_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = filled_sqlite(dir.path()).await;
    let expected = answers(&sqlite).await;
    sqlite.close().await.unwrap();
    drop(sqlite);
    let source = dir.path().join("tern.db");
    let db = ScratchDb::create(&admin).await;

    // Stopped after a few committed batches, then in the middle of the
    // TLS report (after its first batch of 500), then run to the end.
    let mut calls = 0;
    let first = migrate::from_sqlite(&source, &PgOptions::new(db.url.clone()), |_| {
        calls += 1;
        if calls == 6 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .await
    .unwrap();
    assert!(!first.complete && !first.resumed);
    // No node starts on half a copy.
    let refused = PgStore::open(PgOptions::new(db.url.clone())).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(m)) if m.contains("has not finished")),
        "{:?}",
        refused.as_ref().err()
    );
    let mut seen = None;
    let second = migrate::from_sqlite(&source, &PgOptions::new(db.url.clone()), |p| {
        if p.table == "tls_report" && p.done > 0 && !p.finished {
            seen = Some(p.done);
            return Flow::Stop;
        }
        Flow::Continue
    })
    .await
    .unwrap();
    assert!(!second.complete && second.resumed);
    assert_eq!(seen, Some(migrate::BATCH_ROWS as u64));
    let mut resumed_at = None;
    let last = migrate::from_sqlite(&source, &PgOptions::new(db.url.clone()), |p| {
        if p.table == "tls_report" && resumed_at.is_none() {
            resumed_at = Some(p.done);
        }
        Flow::Continue
    })
    .await
    .unwrap();
    assert_eq!(
        resumed_at,
        Some(migrate::BATCH_ROWS as u64),
        "continued after its first batch"
    );
    assert_verified(&last);
    assert!(last.resumed);

    let pg = open_pg(&db.url).await;
    assert_same(&expected, &answers(&pg).await);
    pg.close().await.unwrap();
}

/// A copy stopped half-way is not resumed over a source written since:
/// the tables already copied would be of another state than the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_changed_since_an_interrupted_copy_is_refused() {
    let Some(admin) = server_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = filled_sqlite(dir.path()).await;
    let source = dir.path().join("tern.db");
    let db = ScratchDb::create(&admin).await;
    let mut calls = 0;
    let first = migrate::from_sqlite(&source, &PgOptions::new(db.url.clone()), |_| {
        calls += 1;
        if calls == 3 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .await
    .unwrap();
    assert!(!first.complete);
    let a = sqlite
        .account_by_address("a@example.test")
        .await
        .unwrap()
        .expect("the filled store's first account");
    tern_store::conformance::deliver_to(&sqlite, &a, tern_store::conformance::message("late", "x"))
        .await;
    sqlite.close().await.unwrap();
    let refused =
        migrate::from_sqlite(&source, &PgOptions::new(db.url.clone()), |_| Flow::Continue).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(m)) if m.contains("changed since")),
        "{:?}",
        refused.as_ref().err()
    );
}
