//! Commands that change messages: STORE (with UNCHANGEDSINCE, RFC 7162
//! §3.1.3), COPY and MOVE (RFC 6851) with COPYUID (RFC 4315), and APPEND
//! with MULTIAPPEND (RFC 3502) and APPENDUID.

use super::selected::uid_set;
use super::Session;
use crate::parse::{AppendMessage, SequenceSet, StoreMode};
use crate::response;
use tern_store::{KeywordOp, ModSeq};

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_flags(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) {
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        if !self.check_numbers(tag, set, uid) {
            return;
        }
        let account = self.account_id();
        let Some(sel) = self.selected() else { return };
        if sel.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] the mailbox is read-only");
        }
        if flags.iter().any(|f| f == "\\Recent" || f == "\\*") {
            return self.tagged(tag, "BAD", "\\Recent and \\* cannot be stored");
        }
        let uids = sel.resolve(set, uid);
        let mailbox = sel.mailbox.id;
        let op = match mode {
            StoreMode::Add => KeywordOp::Add,
            StoreMode::Remove => KeywordOp::Remove,
            StoreMode::Replace => KeywordOp::Replace,
        };
        let result = match self
            .srv
            .store
            .set_keywords(
                account,
                mailbox,
                &uids,
                op,
                flags,
                unchanged_since.map(tern_store::ModSeq),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return self.store_error(tag, e),
        };
        let (condstore, qresync) = (self.condstore, self.qresync);
        let mut out = Vec::new();
        for e in &result.updated {
            let Some(sel) = self.selected_mut() else {
                break;
            };
            // A new keyword is announced even when the change is silent.
            if let Some(flags) = sel.announce(&e.keywords) {
                out.extend_from_slice(flags.as_bytes());
            }
            // FLAGS.SILENT still reports MODSEQ under CONDSTORE (RFC 7162 §3.1.3).
            if silent && !condstore {
                continue;
            }
            let Some(seq) = sel.seq(e.uid) else {
                continue;
            };
            out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            let mut parts = Vec::new();
            // Under QRESYNC every FETCH carries the UID (RFC 7162 §3.2.4).
            if uid || qresync {
                parts.push(format!("UID {}", e.uid));
            }
            if !silent {
                let mut f = b"FLAGS ".to_vec();
                response::flags(&mut f, &sel.shown_flags(e.uid, &e.keywords));
                parts.push(String::from_utf8_lossy(&f).into_owned());
            }
            if condstore {
                parts.push(format!("MODSEQ ({})", e.modseq));
            }
            out.extend_from_slice(parts.join(" ").as_bytes());
            out.extend_from_slice(b")\r\n");
        }
        self.conn.out.extend_from_slice(&out);
        // Answered above, or known to the client (.SILENT: it knows what
        // it set): the sync below must not repeat it. But a message that
        // another session changed meanwhile is reported, for the client
        // cannot know its flags (RFC 9051 §6.4.6): with FLAGS.SILENT the
        // new set is whole, with +FLAGS/-FLAGS only if the message's
        // prior state was one the session had reported.
        let reported = self.selected().map_or(ModSeq(0), |s| s.modseq);
        let known: Vec<_> = result
            .updated
            .iter()
            .zip(&result.prior_modseq)
            .filter(|(_, prior)| {
                !silent || matches!(mode, StoreMode::Replace) || **prior <= reported
            })
            .map(|(e, _)| e.clone())
            .collect();
        self.note_own_changes(&known, true);
        self.sync(uid).await;
        if result.modified.is_empty() {
            self.tagged(tag, "OK", "STORE completed");
        } else {
            let set = if uid {
                uid_set(&result.modified)
            } else {
                let seqs: Vec<tern_store::Uid> = result
                    .modified
                    .iter()
                    .filter_map(|u| self.selected().and_then(|s| s.seq(*u)).map(tern_store::Uid))
                    .collect();
                uid_set(&seqs)
            };
            self.tagged(
                tag,
                "OK",
                &format!("[MODIFIED {set}] some messages changed since"),
            );
        }
    }

    pub(super) async fn copy_or_move(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        name: &str,
        is_move: bool,
    ) {
        if !self.check_numbers(tag, set, uid) {
            return;
        }
        let account = self.account_id();
        let Some(sel) = self.selected() else { return };
        if is_move && sel.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] the mailbox is read-only");
        }
        let (uids, from) = (sel.resolve(set, uid), sel.mailbox.id);
        let Some(decoded) = self.decode_mailbox(name) else {
            return self.tagged(tag, "NO", "invalid mailbox name");
        };
        let target = match self.srv.store.mailbox_by_name(account, &decoded).await {
            Ok(Some(t)) => t,
            Ok(None) => return self.tagged(tag, "NO", "[TRYCREATE] no such mailbox"),
            Err(e) => return self.store_error(tag, e),
        };
        let store = self.srv.store.clone();
        let result = if is_move {
            store.move_messages(account, from, &uids, target.id).await
        } else {
            store.copy_messages(account, from, &uids, target.id).await
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return self.store_error(tag, e),
        };
        let code = if result.mapping.is_empty() {
            String::new()
        } else {
            let src: Vec<_> = result.mapping.iter().map(|(s, _)| *s).collect();
            let dst: Vec<_> = result.mapping.iter().map(|(_, d)| *d).collect();
            format!(
                "[COPYUID {} {} {}] ",
                result.uid_validity,
                uid_set(&src),
                uid_set(&dst)
            )
        };
        if is_move {
            // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges.
            if !code.is_empty() {
                self.untagged(&format!("OK {code}moved"));
            }
            self.sync(true).await;
            self.tagged(tag, "OK", "MOVE completed");
        } else {
            self.sync(uid).await;
            self.tagged(tag, "OK", &format!("{code}COPY completed"));
        }
    }

    pub(super) async fn append(&mut self, tag: &str, name: &str, messages: Vec<AppendMessage>) {
        let account = self.account_id();
        let Some(decoded) = self.decode_mailbox(name) else {
            return self.tagged(tag, "NO", "invalid mailbox name");
        };
        let mailbox = match self.srv.store.mailbox_by_name(account, &decoded).await {
            Ok(Some(m)) => m,
            Ok(None) => return self.tagged(tag, "NO", "[TRYCREATE] no such mailbox"),
            Err(e) => return self.store_error(tag, e),
        };
        // Large bodies were spooled while they arrived; their data here is
        // a placeholder (see `spooled`).
        let messages: Vec<(AppendMessage, Option<tern_core::spool::Spool>)> = messages
            .into_iter()
            .map(|m| {
                let body = self.spooled.take(&m.data);
                (m, body)
            })
            .collect();
        let size = |(m, body): &(AppendMessage, Option<tern_core::spool::Spool>)| {
            body.as_ref().map_or(m.data.len() as u64, |b| b.len())
        };
        let max = self.srv.limits.max_message_size;
        if messages.iter().any(|m| size(m) > max) {
            return self.tagged(tag, "NO", &format!("[TOOBIG] the limit is {max} bytes"));
        }
        if messages.iter().any(|m| size(m) == 0) {
            return self.tagged(tag, "NO", "an empty message cannot be appended");
        }
        if messages
            .iter()
            .flat_map(|(m, _)| &m.flags)
            .any(|f| f == "\\Recent" || f == "\\*")
        {
            return self.tagged(tag, "BAD", "\\Recent and \\* cannot be set");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): each message is
        // delivered durably in turn, and on a failure the ones already added
        // are expunged again before the NO.
        let mut added = Vec::new();
        for (m, body) in messages {
            // A spooled body comes back into memory only now, a few at a
            // time server-wide, until it is stored.
            let (data, _slot) = match body {
                None => (m.data, None),
                Some(body) => match self.srv.mail.read_body(body).await {
                    Ok(read) => read,
                    Err(e) => {
                        tracing::warn!("imap {}: reading a spooled APPEND: {e}", self.peer);
                        (Vec::new(), None)
                    }
                },
            };
            if data.is_empty() {
                // Only a spool that could not be read back gets here.
                undo_append(self.srv.store.as_ref(), account, mailbox.id, &added).await;
                return self.tagged(tag, "NO", "[UNAVAILABLE] the message could not be read back from the server's spool; try again");
            }
            // NUL (only a literal8 brings it) cannot go out in BODY[]:
            // those parts are stored base64-encoded (RFC 3516 §4.4).
            let data = super::binary::encode_binary_parts(data);
            let result = self
                .srv
                .mail
                .append(account, mailbox.id, data, m.flags, m.date.unwrap_or(now))
                .await;
            match result {
                Ok(d) => added.push(d.uid),
                Err(e) => {
                    undo_append(self.srv.store.as_ref(), account, mailbox.id, &added).await;
                    return self.store_error(tag, e);
                }
            }
        }
        self.sync(true).await;
        self.tagged(
            tag,
            "OK",
            &format!(
                "[APPENDUID {} {}] APPEND completed",
                mailbox.uid_validity,
                uid_set(&added)
            ),
        );
    }
}

/// MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): expunges the
/// messages of a failed APPEND that were already added.
async fn undo_append(
    store: &dyn tern_store::Store,
    account: tern_store::AccountId,
    mailbox: tern_store::MailboxId,
    added: &[tern_store::Uid],
) {
    if !added.is_empty() {
        let _ = store
            .expunge(
                account,
                mailbox,
                tern_store::ExpungeFilter::Uids(added.to_vec()),
            )
            .await;
    }
}
