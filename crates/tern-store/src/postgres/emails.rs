//! PostgreSQL EmailStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

#[async_trait]
impl EmailStore for PgStore {
    async fn email_records(
        &self,
        account: AccountId,
        ids: &[EmailId],
    ) -> Result<Vec<Option<EmailRecord>>> {
        Err(StoreError::Invalid(
            "email_records: not yet on PostgreSQL".into(),
        ))
    }

    async fn set_email_keywords(
        &self,
        account: AccountId,
        ids: &[EmailId],
        op: KeywordOp,
        keywords: &[String],
    ) -> Result<EmailsChanged> {
        Err(StoreError::Invalid(
            "set_email_keywords: not yet on PostgreSQL".into(),
        ))
    }

    async fn set_email_mailboxes(
        &self,
        account: AccountId,
        id: EmailId,
        mailboxes: &[MailboxId],
    ) -> Result<ModSeq> {
        Err(StoreError::Invalid(
            "set_email_mailboxes: not yet on PostgreSQL".into(),
        ))
    }

    async fn destroy_emails(&self, account: AccountId, ids: &[EmailId]) -> Result<EmailsChanged> {
        Err(StoreError::Invalid(
            "destroy_emails: not yet on PostgreSQL".into(),
        ))
    }

    async fn query_emails(
        &self,
        account: AccountId,
        query: &EmailQuery,
    ) -> Result<EmailQueryResult> {
        Err(StoreError::Invalid(
            "query_emails: not yet on PostgreSQL".into(),
        ))
    }

    async fn emails_with_blob(&self, account: AccountId, blob: &BlobId) -> Result<Vec<EmailId>> {
        Err(StoreError::Invalid(
            "emails_with_blob: not yet on PostgreSQL".into(),
        ))
    }

    async fn record_submission(
        &self,
        account: AccountId,
        submission: &SubmissionRecord,
    ) -> Result<SubmissionId> {
        Err(StoreError::Invalid(
            "record_submission: not yet on PostgreSQL".into(),
        ))
    }

    async fn submissions(
        &self,
        account: AccountId,
        ids: Option<&[SubmissionId]>,
    ) -> Result<Vec<SubmissionRecord>> {
        Err(StoreError::Invalid(
            "submissions: not yet on PostgreSQL".into(),
        ))
    }

    async fn cancel_submission(&self, account: AccountId, id: SubmissionId) -> Result<bool> {
        Err(StoreError::Invalid(
            "cancel_submission: not yet on PostgreSQL".into(),
        ))
    }

    async fn destroy_submissions(
        &self,
        account: AccountId,
        ids: &[SubmissionId],
    ) -> Result<Vec<SubmissionId>> {
        Err(StoreError::Invalid(
            "destroy_submissions: not yet on PostgreSQL".into(),
        ))
    }
}
