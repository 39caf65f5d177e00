//! The notification hub: sessions that wait for news of an account (IMAP
//! IDLE, JMAP push, ActiveSync Ping) subscribe here and are woken after
//! every commit that changed the account.
//!
//! A subscriber receives the account's highest modseq rather than the change
//! itself, and then asks the Store for "changes since": a slow subscriber can
//! never fall behind or miss a change, it only sees several commits at once.
//! The hub is told only after the commit is durable, so nothing a subscriber
//! reads can later vanish.

use crate::types::{AccountId, ModSeq};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// Per-account watch channels, created on first subscription and dropped
/// when the last subscriber leaves.
#[derive(Default)]
pub struct NotificationHub {
    channels: Mutex<HashMap<AccountId, watch::Sender<ModSeq>>>,
}

impl NotificationHub {
    pub fn new() -> NotificationHub {
        NotificationHub::default()
    }

    /// A receiver that changes whenever the account's modseq advances.
    /// `current` seeds a channel created by this call.
    pub fn subscribe(&self, account: AccountId, current: ModSeq) -> watch::Receiver<ModSeq> {
        let mut channels = self.lock();
        channels
            .entry(account)
            .or_insert_with(|| watch::channel(current).0)
            .subscribe()
    }

    /// Called by a backend after a durable commit.
    pub fn notify(&self, account: AccountId, modseq: ModSeq) {
        let mut channels = self.lock();
        if let Some(sender) = channels.get(&account) {
            if sender.receiver_count() == 0 {
                channels.remove(&account);
            } else {
                sender.send_if_modified(|current| {
                    if modseq > *current {
                        *current = modseq;
                        true
                    } else {
                        false
                    }
                });
            }
        }
    }

    /// The accounts someone is subscribed to: what a backend that may have
    /// missed notifications (a lost connection) must look at again.
    pub fn subscribed_accounts(&self) -> Vec<AccountId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, watch::Sender<ModSeq>>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (each operation is one insert or remove), so poisoning is ignored.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_are_woken_with_the_latest_modseq() {
        let hub = NotificationHub::new();
        let mut rx = hub.subscribe(AccountId(1), ModSeq(5));
        hub.notify(AccountId(2), ModSeq(9));
        hub.notify(AccountId(1), ModSeq(6));
        hub.notify(AccountId(1), ModSeq(7));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), ModSeq(7));
        // An older modseq (a late notification) never moves it backwards.
        hub.notify(AccountId(1), ModSeq(3));
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn channels_without_subscribers_are_dropped() {
        let hub = NotificationHub::new();
        drop(hub.subscribe(AccountId(1), ModSeq(0)));
        hub.notify(AccountId(1), ModSeq(1));
        assert!(hub.lock().is_empty());
    }
}
