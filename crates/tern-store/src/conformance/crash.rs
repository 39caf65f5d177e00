//! The two halves of every backend's crash test, which only a real process
//! can show: a child delivering from many tasks until it is killed with
//! SIGKILL, and the check of what the store holds afterwards. Each
//! backend's test binary re-executes itself as the child (its own way of
//! naming the store) and kills it.

use super::*;
use std::io::Write;

/// Delivers to the account's INBOX from 16 concurrent tasks for ever,
/// printing `ok <n>` for each delivery the store acknowledged (the subject
/// of message n is `msg-<n>`). Returns only if every task ends.
pub async fn deliver_until_killed(store: Arc<dyn Store>, account: AccountId) {
    let mut tasks = Vec::new();
    for writer in 0..16u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u32.. {
                let n = writer * 1_000_000 + i;
                let raw = message(&format!("msg-{n}"), &"body ".repeat(200));
                let d = store
                    .deliver(Delivery {
                        message: raw.into(),
                        recipients: vec![DeliveryTarget::inbox(account)],
                        received_at: 1,
                    })
                    .await;
                if matches!(d.as_deref(), Ok([Ok(_)])) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ok {n}");
                    let _ = out.flush();
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// After the kill: every acknowledged delivery is stored exactly once,
/// nothing twice, the bookkeeping (UIDNEXT, counts, quota, the journal's
/// last modseq) agrees with the rows, and the store takes a delivery.
pub async fn check_after_crash(store: &Arc<dyn Store>, address: &str, acknowledged: &[String]) {
    let a = store
        .account_by_address(address)
        .await
        .unwrap()
        .expect("the account");
    let inbox = inbox(store, &a).await;
    let entries = store.list_messages(a.id, inbox.id).await.unwrap();
    let ids: Vec<EmailId> = entries.iter().map(|e| e.email_id).collect();
    let mut subjects = std::collections::HashMap::new();
    for email in store
        .emails(a.id, &ids)
        .await
        .unwrap()
        .into_iter()
        .flatten()
    {
        *subjects.entry(email.summary.subject.clone()).or_insert(0) += 1;
    }
    for n in acknowledged {
        let count = subjects.get(&format!("msg-{n}")).copied().unwrap_or(0);
        assert_eq!(
            count, 1,
            "acknowledged delivery msg-{n} is stored {count} times"
        );
    }
    assert!(
        subjects.values().all(|&c| c == 1),
        "a delivery was stored twice"
    );
    let last = entries.last().map(|e| e.uid.0).unwrap_or(0);
    assert!(store.mailbox(a.id, inbox.id).await.unwrap().uid_next.0 > last);
    let counts = store.mailbox_counts(a.id, inbox.id).await.unwrap();
    assert_eq!(counts.messages as usize, entries.len());
    assert_eq!(store.quota(a.id).await.unwrap().used_bytes, counts.size);
    let changes = store
        .account_changes(a.id, ModSeq(0), usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        changes.last().map(|c| c.modseq),
        Some(store.highest_modseq(a.id).await.unwrap()),
        "the journal ends at the account's highest modseq"
    );
    deliver_to(store, &a, message("after", "x")).await;
}

/// Runs the child (a command that ends in [`deliver_until_killed`]) and
/// kills it with SIGKILL once it has acknowledged 300 deliveries, mid-burst
/// with no chance to clean up; the subjects' numbers it acknowledged.
pub fn kill_after_300_acknowledged(mut command: std::process::Command) -> Vec<String> {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the crash child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let mut acked = Vec::new();
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
    {
        if let Some(n) = line.strip_prefix("ok ") {
            acked.push(n.trim().to_string());
            if acked.len() == 300 {
                child.kill().expect("kill the child");
            }
        }
    }
    child.wait().expect("wait for the child");
    assert!(
        acked.len() >= 300,
        "the child acknowledged only {}",
        acked.len()
    );
    acked
}
