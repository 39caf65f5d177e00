//! The SQLite backend's implementation of each Store facet: thin async
//! wrappers that send writes to the writer thread and reads to the pool,
//! delegating the SQL to the module of each concern.

use super::*;
use crate::store::*;

#[async_trait]
impl DirectoryStore for SqliteStore {
    async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = name.to_ascii_lowercase();
        self.write(move |ctx| directory::add_domain(ctx.conn, &name))
            .await
    }

    async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.read(directory::list_domains).await
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        self.write(move |ctx| directory::remove_domain(ctx.conn, &name))
            .await
    }

    async fn create_account(&self, account: NewAccount) -> Result<Account> {
        self.write(move |ctx| directory::create_account(ctx, account))
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(directory::list_accounts).await
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        let address = address.to_lowercase();
        self.read(move |c| directory::account_by_address(c, &address))
            .await
    }

    async fn account(&self, id: AccountId) -> Result<Account> {
        self.read(move |c| directory::account(c, id)).await
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let (address, hash) = (address.to_lowercase(), password_hash.to_string());
        self.write(move |ctx| directory::set_password(ctx.conn, &address, &hash))
            .await
    }

    async fn set_quota(&self, address: &str, quota_bytes: Option<u64>) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| directory::set_quota(ctx.conn, &address, quota_bytes))
            .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| directory::remove_account(ctx, &address))
            .await
    }

    async fn set_alias(&self, alias: Alias) -> Result<()> {
        self.write(move |ctx| directory::set_alias(ctx.conn, alias))
            .await
    }

    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        self.read(directory::list_aliases).await
    }

    async fn alias(&self, address: &str) -> Result<Option<Alias>> {
        let address = address.to_lowercase();
        self.read(move |c| directory::alias(c, &address)).await
    }

    async fn remove_alias(&self, address: &str) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |ctx| directory::remove_alias(ctx.conn, &address))
            .await
    }

    async fn add_dkim_key(&self, key: DkimKey) -> Result<()> {
        self.write(move |ctx| directory::add_dkim_key(ctx.conn, key))
            .await
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let domain = domain.to_ascii_lowercase();
        self.read(move |c| directory::dkim_keys(c, &domain)).await
    }

    async fn account_setting(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        let name = name.to_string();
        self.read(move |c| super::settings::get(c, account, &name))
            .await
    }

    async fn account_settings_with_prefix(
        &self,
        account: AccountId,
        prefix: &str,
    ) -> Result<Vec<(String, String)>> {
        let prefix = prefix.to_string();
        self.read(move |c| settings::with_prefix(c, account, &prefix))
            .await
    }

    async fn set_account_setting(
        &self,
        account: AccountId,
        name: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let (name, value) = (name.to_string(), value.map(String::from));
        self.write(move |ctx| super::settings::set(ctx.conn, account, &name, value.as_deref()))
            .await
    }

    async fn auto_reply_due(
        &self,
        account: AccountId,
        correspondent: &str,
        now: i64,
        period: i64,
    ) -> Result<bool> {
        let correspondent = correspondent.to_string();
        self.write(move |ctx| {
            super::settings::auto_reply_due(ctx.conn, account, &correspondent, now, period)
        })
        .await
    }
}

#[async_trait]
impl MailboxStore for SqliteStore {
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.read(move |c| mailboxes::list(c, account)).await
    }

    async fn mailbox(&self, account: AccountId, id: MailboxId) -> Result<Mailbox> {
        self.read(move |c| mailboxes::get(c, account, id)).await
    }

    async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let name = name.to_string();
        self.read(move |c| mailboxes::by_name(c, account, &name))
            .await
    }

    async fn mailbox_by_role(&self, account: AccountId, role: Role) -> Result<Option<Mailbox>> {
        self.read(move |c| mailboxes::by_role(c, account, role))
            .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        role: Option<Role>,
    ) -> Result<Mailbox> {
        let name = name.to_string();
        self.write(move |ctx| mailboxes::create(ctx, account, &name, role))
            .await
    }

    async fn rename_mailbox(
        &self,
        account: AccountId,
        id: MailboxId,
        new_name: &str,
    ) -> Result<()> {
        let new_name = new_name.to_string();
        self.write(move |ctx| mailboxes::rename(ctx, account, id, &new_name))
            .await
    }

    async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()> {
        self.write(move |ctx| mailboxes::delete(ctx, account, id))
            .await
    }

    async fn subscribe_mailbox(&self, account: AccountId, id: MailboxId, on: bool) -> Result<()> {
        self.write(move |ctx| mailboxes::subscribe(ctx, account, id, on))
            .await
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.read(move |c| mailboxes::subscriptions(c, account))
            .await
    }

    async fn set_subscription(&self, account: AccountId, name: &str, on: bool) -> Result<bool> {
        let name = name.to_string();
        self.write(move |ctx| mailboxes::set_subscription(ctx, account, &name, on))
            .await
    }

    async fn mailbox_counts(&self, account: AccountId, id: MailboxId) -> Result<MailboxCounts> {
        self.read(move |c| mailboxes::counts(c, account, id)).await
    }

    async fn mailbox_thread_counts(&self, account: AccountId, id: MailboxId) -> Result<(u32, u32)> {
        self.read(move |c| mailboxes::thread_counts(c, account, id))
            .await
    }

    async fn mark_recent_claimed(
        &self,
        account: AccountId,
        id: MailboxId,
        upto: Uid,
    ) -> Result<()> {
        self.write(move |ctx| mailboxes::mark_recent_claimed(ctx.conn, account, id, upto))
            .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn accept(&self, delivery: Delivery, outbound: Option<Outbound>) -> Result<Accepted> {
        // Encode the parse outside the writer: the writer's time is the
        // server's scarcest resource.
        if delivery.recipients.is_empty() {
            // Only relayed: nothing to parse, encode or compress (it leaves
            // within seconds), so no trip to a thread either.
            let prepared = messages::prepare(delivery)?;
            return self
                .write(move |ctx| messages::deliver(ctx, prepared, outbound))
                .await;
        }
        let prepared = tokio::task::spawn_blocking(move || {
            let mut prepared = messages::prepare(delivery)?;
            prepared.compressed = super::blob_codec::encode(&prepared.raw);
            prepared.columns.pack();
            Ok::<_, StoreError>(prepared)
        })
        .await
        .map_err(|e| StoreError::backend("parsing a message", e))??;
        self.write(move |ctx| messages::deliver(ctx, prepared, outbound))
            .await
    }

    async fn list_messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageEntry>> {
        self.read(move |c| messages::list(c, account, mailbox, None))
            .await
    }

    async fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageEntry>> {
        let uids = uids.to_vec();
        self.read(move |c| messages::list(c, account, mailbox, Some(&uids)))
            .await
    }

    async fn email(&self, account: AccountId, id: EmailId) -> Result<Email> {
        self.read(move |c| messages::email(c, account, id)).await
    }

    async fn emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<Option<Email>>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            ids.iter()
                .map(|id| match messages::email(c, account, *id) {
                    Ok(e) => Ok(Some(e)),
                    Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                })
                .collect()
        })
        .await
    }

    async fn set_keywords(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: KeywordOp,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<KeywordsResult> {
        let (uids, keywords) = (uids.to_vec(), keywords.to_vec());
        self.write(move |ctx| {
            messages::set_keywords(ctx, account, mailbox, &uids, op, &keywords, unchanged_since)
        })
        .await
    }

    async fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        let uids = uids.to_vec();
        self.write(move |ctx| messages::copy(ctx, account, from, &uids, to, false))
            .await
    }

    async fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        let uids = uids.to_vec();
        self.write(move |ctx| messages::copy(ctx, account, from, &uids, to, true))
            .await
    }

    async fn expunge(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        filter: ExpungeFilter,
    ) -> Result<Vec<Uid>> {
        self.write(move |ctx| messages::expunge(ctx, account, mailbox, filter))
            .await
    }

    async fn quota(&self, account: AccountId) -> Result<Quota> {
        self.read(move |c| {
            let a = directory::account(c, account)?;
            Ok(Quota {
                used_bytes: a.used_bytes,
                limit_bytes: a.quota_bytes,
            })
        })
        .await
    }

    async fn search(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        key: &SearchKey,
    ) -> Result<Vec<Uid>> {
        let key = key.clone();
        let progress = self.indexer.progress.clone();
        self.read(move |c| search::search(c, account, mailbox, &key, &progress))
            .await
    }
}

#[async_trait]
impl EmailStore for SqliteStore {
    async fn email_records(
        &self,
        account: AccountId,
        ids: &[EmailId],
    ) -> Result<Vec<Option<EmailRecord>>> {
        let ids = ids.to_vec();
        self.read(move |c| emails::records(c, account, &ids)).await
    }

    async fn set_email_keywords(
        &self,
        account: AccountId,
        ids: &[EmailId],
        op: KeywordOp,
        keywords: &[String],
    ) -> Result<EmailsChanged> {
        let (ids, keywords) = (ids.to_vec(), keywords.to_vec());
        self.write(move |ctx| emails::set_keywords(ctx, account, &ids, op, &keywords))
            .await
    }

    async fn set_email_mailboxes(
        &self,
        account: AccountId,
        id: EmailId,
        mailboxes: &[MailboxId],
    ) -> Result<ModSeq> {
        let mailboxes = mailboxes.to_vec();
        self.write(move |ctx| emails::set_mailboxes(ctx, account, id, &mailboxes))
            .await
    }

    async fn destroy_emails(&self, account: AccountId, ids: &[EmailId]) -> Result<EmailsChanged> {
        let ids = ids.to_vec();
        self.write(move |ctx| emails::destroy(ctx, account, &ids))
            .await
    }

    async fn emails_with_blob(&self, account: AccountId, blob: &BlobId) -> Result<Vec<EmailId>> {
        let blob = blob.clone();
        self.read(move |c| emails::with_blob(c, account, &blob))
            .await
    }

    async fn record_submission(
        &self,
        account: AccountId,
        submission: &SubmissionRecord,
    ) -> Result<SubmissionId> {
        let submission = submission.clone();
        self.write(move |ctx| submissions::record(ctx, account, &submission))
            .await
    }

    async fn submissions(
        &self,
        account: AccountId,
        ids: Option<&[SubmissionId]>,
    ) -> Result<Vec<SubmissionRecord>> {
        let ids = ids.map(<[SubmissionId]>::to_vec);
        self.read(move |c| submissions::list(c, account, ids.as_deref()))
            .await
    }

    async fn cancel_submission(&self, account: AccountId, id: SubmissionId) -> Result<bool> {
        self.write(move |ctx| submissions::cancel(ctx, account, id))
            .await
    }

    async fn destroy_submissions(
        &self,
        account: AccountId,
        ids: &[SubmissionId],
    ) -> Result<Vec<SubmissionId>> {
        let ids = ids.to_vec();
        self.write(move |ctx| submissions::destroy(ctx, account, &ids))
            .await
    }

    async fn query_emails(
        &self,
        account: AccountId,
        query: &EmailQuery,
    ) -> Result<EmailQueryResult> {
        let query = query.clone();
        if !query.text.is_empty() {
            // Text is answered from the index: let it take in what was
            // written before this query, as IMAP SEARCH does.
            let progress = self.indexer.progress.clone();
            let _ = tokio::task::spawn_blocking(move || {
                progress.wait_caught_up(super::indexer::SEARCH_WAIT)
            })
            .await;
        }
        self.read(move |c| emails::query(c, account, &query)).await
    }
}

#[async_trait]
impl BlobStore for SqliteStore {
    async fn upload_blob(
        &self,
        account: AccountId,
        bytes: Vec<u8>,
        expires_at: i64,
    ) -> Result<BlobId> {
        self.write(move |ctx| uploads::upload(ctx.conn, account, &bytes, expires_at))
            .await
    }

    async fn expire_uploads(&self, now: i64) -> Result<u64> {
        self.write(move |ctx| uploads::expire(ctx.conn, now)).await
    }

    async fn read_blob(&self, account: AccountId, blob_id: &BlobId) -> Result<Vec<u8>> {
        let blob_id = blob_id.clone();
        self.read(move |c| blobs::read_blob(c, account, &blob_id))
            .await
    }

    async fn read_blobs(
        &self,
        account: AccountId,
        blob_ids: &[BlobId],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let blob_ids = blob_ids.to_vec();
        self.read(move |c| {
            blob_ids
                .iter()
                .map(|id| match blobs::read_blob(c, account, id) {
                    Ok(data) => Ok(Some(data)),
                    Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                })
                .collect()
        })
        .await
    }

    async fn read_blob_range(
        &self,
        account: AccountId,
        blob_id: &BlobId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        let blob_id = blob_id.clone();
        self.read(move |c| blobs::read_blob_range(c, account, &blob_id, offset, len))
            .await
    }
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue_blob(
        &self,
        account: AccountId,
        blob_id: &BlobId,
        outbound: Outbound,
    ) -> Result<QueueId> {
        let blob_id = blob_id.clone();
        self.write(move |ctx| queue::enqueue_existing(ctx.conn, account, &blob_id, &outbound))
            .await
    }

    async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        self.read(queue::list).await
    }

    async fn queue_claim(
        &self,
        now: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<QueueClaim>> {
        self.write(move |ctx| queue::claim(ctx.conn, now, lease_secs, limit))
            .await
    }

    async fn queue_record(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<QueueState> {
        self.write(move |ctx| queue::record(ctx.conn, id, lease, &attempts, true))
            .await
    }

    async fn queue_record_part(
        &self,
        id: QueueId,
        lease: LeaseId,
        attempts: Vec<RecipientAttempt>,
    ) -> Result<()> {
        self.write(move |ctx| queue::record(ctx.conn, id, lease, &attempts, false))
            .await
            .map(|_| ())
    }

    async fn queue_read(&self, id: QueueId, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.read(move |c| queue::read(c, id, offset, len)).await
    }

    async fn queue_remove(&self, id: QueueId) -> Result<()> {
        self.write(move |ctx| queue::remove_entry(ctx.conn, id))
            .await
    }

    async fn queue_flush(&self, id: Option<QueueId>) -> Result<usize> {
        self.write(move |ctx| queue::flush(ctx.conn, id)).await
    }

    async fn queue_flush_count(&self) -> Result<u64> {
        self.read(queue::flush_count).await
    }

    async fn queue_hold(&self, id: QueueId, on: bool) -> Result<()> {
        self.write(move |ctx| queue::hold(ctx.conn, id, on)).await
    }

    async fn queue_release_leases(&self) -> Result<usize> {
        self.write(|ctx| queue::release_leases(ctx.conn)).await
    }

    async fn queue_postpone_domain(&self, domain: &str, until: i64) -> Result<usize> {
        let domain = domain.to_ascii_lowercase();
        self.write(move |ctx| queue::postpone_domain(ctx.conn, &domain, until))
            .await
    }

    async fn queue_sweep(&self, now: i64) -> Result<usize> {
        self.write(move |ctx| queue::sweep(ctx.conn, now)).await
    }

    async fn tls_report_add(&self, rows: Vec<TlsReportRow>) -> Result<()> {
        self.write(move |ctx| queue::tls_report_add(ctx.conn, &rows))
            .await
    }

    async fn tls_report_list(&self, since_day: &str) -> Result<Vec<TlsReportRow>> {
        let since = since_day.to_string();
        self.read(move |c| queue::tls_report_list(c, &since)).await
    }

    async fn queue_delay_notified(&self, id: QueueId) -> Result<()> {
        self.write(move |ctx| queue::delay_notified(ctx.conn, id))
            .await
    }
}

#[async_trait]
impl ChangeStore for SqliteStore {
    async fn highest_modseq(&self, account: AccountId) -> Result<ModSeq> {
        self.read(move |c| journal::highest_modseq(c, account))
            .await
    }

    async fn mailbox_changes(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<MailboxChanges> {
        self.read(move |c| journal::mailbox_changes(c, account, mailbox, since))
            .await
    }

    async fn account_changes(
        &self,
        account: AccountId,
        since: ModSeq,
        limit: usize,
    ) -> Result<Vec<Change>> {
        self.read(move |c| journal::account_changes(c, account, since, limit))
            .await
    }

    async fn prune_journal(&self, before: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self
                .write(move |ctx| journal::prune_step(ctx.conn, before))
                .await?;
            total += n;
            if n < journal::PRUNE_STEP as u64 {
                return Ok(total);
            }
        }
    }

    fn subscribe(&self, account: AccountId) -> watch::Receiver<ModSeq> {
        // Seeded with 0: the first commit after subscribing always wakes the
        // subscriber, and it asks for changes since what it has seen.
        self.hub.subscribe(account, ModSeq(0))
    }
}

/// One server per data directory: its in-memory maildrop lock and login
/// limiter see everything (the trait's defaults).
impl ClusterStore for SqliteStore {}

#[async_trait]
impl Store for SqliteStore {
    async fn close(&self) -> Result<()> {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        // Joining the writer thread blocks; keep it off the async threads.
        // The writer first: its last batch hands index jobs to the indexer.
        let (writer, indexer) = (self.writer.clone(), self.indexer.clone());
        let checkpointer = self.checkpointer.clone();
        let watcher = self.watcher.clone();
        tokio::task::spawn_blocking(move || {
            watcher.shutdown();
            // The checkpointer first, so the writer's final TRUNCATE
            // checkpoint does not wait on it.
            checkpointer.shutdown();
            writer.shutdown();
            indexer.shutdown();
        })
        .await
        .map_err(|e| StoreError::backend("stopping the writer", e))?;
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }
}
