//! The TRANSACTION state over a maildrop snapshot, and UPDATE at QUIT.
//!
//! The maildrop is INBOX as it stood at login (RFC 1939 §8: numbers are
//! fixed for the session). UIDL is the email's store id: the same message
//! keeps it in every session, across restarts, and when IMAP moves it out
//! of INBOX and back.

use super::{End, Session, State};
use crate::command::Command;
use crate::stream::{Stuffer, CHUNK};
use tern_core::config::Pop3Deleted;
use tern_store::{AccountId, EmailId, ExpungeFilter, MailboxId, Role, Store, StoreError, Uid};

/// One message of the maildrop.
struct Message {
    uid: Uid,
    email_id: EmailId,
    blob_id: tern_store::BlobId,
    /// As POP3 counts it: CRLF line ends (RFC 1939 §11).
    size: u64,
    /// As stored: where reading the blob ends.
    stored_size: u64,
    deleted: bool,
}

/// Messages read ahead of RETR, at most: clients download in order, and one
/// store round trip for many small messages beats one each.
const READ_AHEAD_BYTES: u64 = 1 << 20;
const READ_AHEAD_MESSAGES: usize = 64;
/// Larger messages are streamed in chunks instead of read whole.
const READ_AHEAD_MAX_MESSAGE: u64 = 256 * 1024;

/// The session's view of INBOX.
pub(super) struct Maildrop {
    account: AccountId,
    inbox: MailboxId,
    messages: Vec<Message>,
    /// Small messages read ahead, by index; each is sent at most once.
    ahead: std::collections::HashMap<usize, Vec<u8>>,
}

impl Maildrop {
    pub async fn open(store: &dyn Store, account: AccountId) -> Result<Maildrop, StoreError> {
        let inbox = store
            .mailbox_by_role(account, Role::Inbox)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "mailbox",
                name: "INBOX".into(),
            })?;
        let messages = store
            .list_messages(account, inbox.id)
            .await?
            .into_iter()
            .map(|e| Message {
                uid: e.uid,
                email_id: e.email_id,
                blob_id: e.blob_id,
                // RFC 1939 §11: sizes count each line end as CRLF.
                size: e.crlf_size,
                stored_size: e.size,
                deleted: false,
            })
            .collect();
        Ok(Maildrop {
            ahead: std::collections::HashMap::new(),
            account,
            inbox: inbox.id,
            messages,
        })
    }

    /// Messages not marked deleted, and their total size.
    pub fn stat(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(n, s), m| (n + 1, s + m.size))
    }

    /// The message numbered `n`, if it exists and is not deleted.
    fn get(&self, n: u32) -> Result<&Message, String> {
        match self.messages.get(n as usize - 1) {
            None => Err(format!("no message {n}")),
            Some(m) if m.deleted => Err(format!("message {n} is deleted")),
            Some(m) => Ok(m),
        }
    }
}

impl Session {
    fn maildrop(&mut self) -> Option<&mut Maildrop> {
        match &mut self.state {
            State::Transaction { maildrop, .. } => Some(maildrop),
            State::Authorization { .. } => None,
        }
    }

    /// A command in the TRANSACTION state.
    pub(super) async fn transaction(&mut self, cmd: Command) -> Result<(), End> {
        let Some(md) = self.maildrop() else {
            return Ok(());
        };
        let reply: Result<Reply, String> = match cmd {
            Command::Stat => {
                let (n, size) = md.stat();
                Ok(Reply::Line(format!("{n} {size}")))
            }
            Command::List(Some(n)) => md.get(n).map(|m| Reply::Line(format!("{n} {}", m.size))),
            Command::List(None) => Ok(listing(md, |i, m| format!("{i} {}", m.size))),
            Command::Uidl(Some(n)) => md
                .get(n)
                .map(|m| Reply::Line(format!("{n} {}", m.email_id))),
            Command::Uidl(None) => Ok(listing(md, |i, m| format!("{i} {}", m.email_id))),
            Command::Dele(n) => match md.get(n) {
                Ok(_) => {
                    md.messages[n as usize - 1].deleted = true;
                    Ok(Reply::Line(format!("message {n} deleted")))
                }
                Err(e) => Err(e),
            },
            Command::Rset => {
                md.messages.iter_mut().for_each(|m| m.deleted = false);
                let (n, size) = md.stat();
                Ok(Reply::Line(format!(
                    "maildrop has {n} messages ({size} octets)"
                )))
            }
            Command::Retr(n) => return self.send_message(n, None).await,
            Command::Top { msg, lines } => return self.send_message(msg, Some(lines)).await,
            _ => Err("already logged in".to_string()),
        };
        match reply {
            Ok(Reply::Line(text)) => self.ok(&text),
            Ok(Reply::Lines(first, lines)) => {
                let mut out = format!("+OK {first}\r\n");
                for line in &lines {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
                out.push_str(".\r\n");
                self.conn.out.extend_from_slice(out.as_bytes());
            }
            Err(e) => self.err(&e),
        }
        Ok(())
    }

    /// RETR (whole message) or TOP (header and `top` body lines), streamed
    /// from the Store in chunks.
    async fn send_message(&mut self, n: u32, top: Option<u32>) -> Result<(), End> {
        let Some(md) = self.maildrop() else {
            return Ok(());
        };
        let (account, blob, size, stored_size) = match md.get(n) {
            Ok(m) => (md.account, m.blob_id.clone(), m.size, m.stored_size),
            Err(e) => {
                self.err(&e);
                return Ok(());
            }
        };
        // Small messages come from the read-ahead, filled for this one and
        // the ones after it in one round trip.
        if stored_size <= READ_AHEAD_MAX_MESSAGE {
            self.read_ahead(n as usize - 1).await;
            if let Some(data) = self
                .maildrop()
                .and_then(|md| md.ahead.remove(&(n as usize - 1)))
            {
                match top {
                    None => self.ok(&format!("{size} octets")),
                    Some(_) => self.ok("top of message follows"),
                }
                let mut stuffer = Stuffer::new(top);
                stuffer.push(&data, &mut self.conn.out);
                stuffer.finish(&mut self.conn.out);
                return Ok(());
            }
        }
        // The first chunk decides between +OK and -ERR: a message another
        // client removed since login is reported before anything is sent.
        let first = match self
            .srv
            .store
            .read_blob_range(account, &blob, 0, CHUNK)
            .await
        {
            Ok(chunk) => chunk,
            Err(StoreError::NotFound { .. }) => {
                self.err(&format!("message {n} was removed by another client"));
                return Ok(());
            }
            Err(e) => {
                tracing::error!("pop3 {}: reading message {n}: {e}", self.peer);
                self.temp_err("[SYS/TEMP] cannot read the message; try again later");
                return Ok(());
            }
        };
        match top {
            None => self.ok(&format!("{size} octets")),
            Some(_) => self.ok("top of message follows"),
        }
        let mut stuffer = Stuffer::new(top);
        let mut offset = first.len() as u64;
        stuffer.push(&first, &mut self.conn.out);
        // The size is known: no extra round trip to discover the end.
        while offset < stored_size && !stuffer.is_done() {
            if self.conn.out.len() >= CHUNK {
                self.flush().await?;
            }
            let chunk = match self
                .srv
                .store
                .read_blob_range(account, &blob, offset, CHUNK)
                .await
            {
                Ok(c) if !c.is_empty() => c,
                Ok(_) => break,
                Err(e) => {
                    // Halfway through a multi-line response there is no way
                    // to say -ERR: the connection is closed instead.
                    tracing::warn!(
                        "pop3 {}: message {n} vanished while being sent: {e}",
                        self.peer
                    );
                    return Err(End::Gone);
                }
            };
            offset += chunk.len() as u64;
            stuffer.push(&chunk, &mut self.conn.out);
        }
        // The terminator goes out with the rest: one write for a small message.
        stuffer.finish(&mut self.conn.out);
        Ok(())
    }

    /// Reads message `index` and the small ones after it in one round trip,
    /// unless it is already read.
    async fn read_ahead(&mut self, index: usize) {
        let Some(md) = self.maildrop() else { return };
        if md.ahead.contains_key(&index) {
            return;
        }
        let account = md.account;
        let mut batch = Vec::new();
        let mut total = 0u64;
        for (i, m) in md.messages.iter().enumerate().skip(index) {
            if m.deleted || m.stored_size > READ_AHEAD_MAX_MESSAGE {
                continue;
            }
            if batch.len() >= READ_AHEAD_MESSAGES || total + m.stored_size > READ_AHEAD_BYTES {
                break;
            }
            total += m.stored_size;
            batch.push((i, m.blob_id.clone()));
        }
        let ids: Vec<tern_store::BlobId> = batch.iter().map(|(_, b)| b.clone()).collect();
        // A failure here only means each message is read on its own below.
        let Ok(blobs) = self.srv.store.read_blobs(account, &ids).await else {
            return;
        };
        if let Some(md) = self.maildrop() {
            md.ahead.clear();
            for ((i, _), blob) in batch.into_iter().zip(blobs) {
                if let Some(data) = blob {
                    md.ahead.insert(i, data);
                }
            }
        }
    }

    /// QUIT: in TRANSACTION, the UPDATE state removes what DELE marked.
    pub(super) async fn quit(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Authorization { user: None });
        let State::Transaction {
            maildrop,
            _lock: lock,
        } = state
        else {
            self.ok(&format!("{} signing off", self.srv.hostname));
            return;
        };
        if lock.is_lost() {
            // Another session (on another node) may have read and deleted
            // meanwhile: this one's view is stale, so it removes nothing.
            self.err(
                "[SYS/TEMP] the maildrop lock was lost during the session; nothing was deleted",
            );
            return;
        }
        let doomed: Vec<Uid> = maildrop
            .messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect();
        if doomed.is_empty() {
            self.ok(&format!("{} signing off", self.srv.hostname));
            return;
        }
        let store = self.srv.store.as_ref();
        let result = match self.srv.config.deleted {
            Pop3Deleted::Expunge => store
                .expunge(
                    maildrop.account,
                    maildrop.inbox,
                    ExpungeFilter::Uids(doomed.clone()),
                )
                .await
                .map(|gone| gone.len()),
            Pop3Deleted::Trash => {
                match store.mailbox_by_role(maildrop.account, Role::Trash).await {
                    Ok(Some(trash)) => store
                        .move_messages(maildrop.account, maildrop.inbox, &doomed, trash.id)
                        .await
                        .map(|moved| moved.mapping.len()),
                    Ok(None) => Err(StoreError::NotFound {
                        what: "mailbox",
                        name: "Trash".into(),
                    }),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(n) => self.ok(&format!(
                "{} signing off ({n} messages deleted)",
                self.srv.hostname
            )),
            Err(e) => {
                tracing::error!("pop3 {}: removing deleted messages: {e}", self.peer);
                self.err("[SYS/TEMP] some deleted messages were not removed");
            }
        }
        // `lock` drops here, after the update: the next session sees it done.
        drop(lock);
    }
}

/// A positive reply: one line, or a multi-line listing ended by ".".
enum Reply {
    Line(String),
    Lines(String, Vec<String>),
}

/// One line per undeleted message, always multi-line (even when empty).
fn listing(md: &Maildrop, line: impl Fn(usize, &Message) -> String) -> Reply {
    let (n, size) = md.stat();
    let lines = md
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.deleted)
        .map(|(i, m)| line(i + 1, m))
        .collect();
    Reply::Lines(format!("{n} messages ({size} octets)"), lines)
}
