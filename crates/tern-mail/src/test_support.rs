//! What this crate's tests share: a mail layer over a fresh SQLite store
//! in a temporary directory, with one domain and one account.

use crate::{Mail, MailConfig};
use std::sync::Arc;
use std::time::Duration;
use tern_core::AuthLimiter;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::{Account, NewAccount, Store};

/// `joe@example.test` with `password_hash`, on `mx.example.test`, with a
/// login limiter of `max_failures`; the directory keeps the store alive.
pub async fn mail_with_joe(
    password_hash: &str,
    max_failures: u32,
) -> (Mail, Account, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default()).unwrap());
    store.add_domain("example.test").await.unwrap();
    let joe = store
        .create_account(NewAccount {
            address: "joe@example.test".into(),
            password_hash: password_hash.into(),
            quota_bytes: None,
        })
        .await
        .unwrap();
    let mail = Mail::new(
        store,
        MailConfig {
            hostname: "mx.example.test".into(),
            recipient_delimiter: "+".into(),
            check_header_from: true,
        },
        Arc::new(AuthLimiter::new(max_failures, Duration::from_secs(60))),
    );
    (mail, joe, dir)
}

/// An inbound envelope from `ann@remote.test` with no recipients.
pub fn inbound_envelope() -> crate::Envelope {
    crate::Envelope {
        mail_from: "ann@remote.test".into(),
        local: vec![],
        remote: vec![],
        env_id: None,
        ret: None,
        require_tls: false,
        sender_auth: None,
        origin: crate::Origin::Inbound,
        release_at: None,
    }
}
