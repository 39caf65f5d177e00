//! Who owns a message's `\Recent` (RFC 3501 §2.3.2): the first IMAP4rev1
//! session that selects the mailbox read-write after it arrived, or is
//! told of it while selected. Claims are decided here, in memory, under
//! one lock, so two sessions never claim the same message and a SELECT
//! does not wait for a disk commit. The new bounds are written to the Store
//! (`first_recent_uid`) by [`RecentClaims::flush`], which the server runs
//! every few seconds and at shutdown (one write per mailbox that changed,
//! not one per SELECT), so a restarted server does not hand out the same
//! messages again. After a crash a few messages may be recent once more,
//! which the RFC tolerates better than a slow SELECT.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tern_store::{AccountId, MailboxId, Store, Uid};

#[derive(Default)]
pub struct RecentClaims {
    /// Per mailbox, the first UID not yet claimed by a session here.
    first_unclaimed: Mutex<HashMap<MailboxId, Uid>>,
    /// Bounds not yet written to the Store.
    unrecorded: Mutex<HashMap<(AccountId, MailboxId), Uid>>,
}

impl RecentClaims {
    /// Claims the messages below `upto` that nobody claimed for one
    /// session: `[from, upto)`, empty when there are none. `stored` is the
    /// mailbox's `first_recent_uid` as the session read it.
    pub(crate) fn claim(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        stored: Uid,
        upto: Uid,
    ) -> (Uid, Uid) {
        let mut map = self
            .first_unclaimed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let first = map.get(&mailbox).copied().unwrap_or(stored).max(stored);
        if first >= upto {
            return (upto, upto);
        }
        map.insert(mailbox, upto);
        // Under the same lock, so a smaller claim cannot overwrite a
        // larger one before it is recorded.
        self.unrecord(account, mailbox, upto);
        drop(map);
        (first, upto)
    }

    fn unrecord(&self, account: AccountId, mailbox: MailboxId, upto: Uid) {
        let mut due = self.unrecorded.lock().unwrap_or_else(|e| e.into_inner());
        let entry = due.entry((account, mailbox)).or_insert(upto);
        *entry = (*entry).max(upto);
    }

    /// Writes the claims made since the last flush to the Store.
    pub async fn flush(&self, store: &Arc<dyn Store>) {
        let due = std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|e| e.into_inner()));
        for ((account, mailbox), upto) in due {
            match store.mark_recent_claimed(account, mailbox, upto).await {
                Ok(()) => {}
                // The mailbox is gone: nothing to record.
                Err(tern_store::StoreError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::debug!("imap: recording recent messages as claimed: {e}");
                    self.unrecord(account, mailbox, upto);
                }
            }
        }
    }

    /// The first unclaimed UID as this process knows it (for a read-only
    /// session, which sees what nobody claimed).
    pub(crate) fn first_unclaimed(&self, mailbox: MailboxId, stored: Uid) -> Uid {
        self.first_unclaimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&mailbox)
            .copied()
            .unwrap_or(stored)
            .max(stored)
    }
}
