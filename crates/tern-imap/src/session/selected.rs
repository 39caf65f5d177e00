//! The selected state: SELECT/EXAMINE with CONDSTORE and QRESYNC (RFC
//! 7162), CLOSE/UNSELECT, EXPUNGE/UID EXPUNGE (RFC 4315), and [`sync`], which
//! tells the client what other sessions changed.
//!
//! The session keeps its own view of the mailbox: the UIDs in sequence
//! order and the highest modseq it has reported. `sync` asks the Store for
//! the changes since that modseq and reports new messages (EXISTS), flag
//! changes (FETCH) and expunges (EXPUNGE, or VANISHED under QRESYNC),
//! keeping sequence numbers consistent (RFC 9051 §7.5.1, §2.3.1.2).
//!
//! [`sync`]: Session::sync

use super::Session;
use crate::parse::{SelectParams, SequenceSet};
use std::collections::BTreeSet;
use std::fmt::Write;
use tern_store::{ExpungeFilter, Mailbox, MessageEntry, ModSeq, StoreError, Uid};
use tokio::sync::watch;

/// The keywords every mailbox announces in FLAGS: the system flags' users
/// and the registered keywords clients set without asking (RFC 9051
/// §2.3.2, the IANA IMAP keywords registry).
pub(crate) const WELL_KNOWN_KEYWORDS: &[&str] = &["$Forwarded", "$Junk", "$MDNSent", "$NotJunk"];
const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// A selected mailbox as this session sees it.
pub(crate) struct Selected {
    pub mailbox: Mailbox,
    pub read_only: bool,
    /// UIDs in sequence order: message n has UID `uids[n - 1]`.
    pub uids: Vec<Uid>,
    /// The highest modseq whose changes this session has reported.
    pub modseq: ModSeq,
    /// Expunged by others but not yet announced (a FETCH/STORE/SEARCH by
    /// sequence number was running); their numbers stay valid until then.
    pub pending_expunge: Vec<Uid>,
    /// The saved search result (SEARCHRES `$`).
    pub saved: Vec<Uid>,
    /// The account's commits as the notification hub announces them,
    /// subscribed before the mailbox was read.
    pub changes: watch::Receiver<ModSeq>,
    /// What `changes` said when the Store was last asked for changes: while
    /// it says the same, nothing was committed since, and [`Session::sync`]
    /// has nothing to ask.
    pub synced_at: ModSeq,
    /// (UID, modseq) of the flag changes the running command made and
    /// answered itself, which the sync after it must not report again.
    pub own_changes: Vec<(Uid, ModSeq)>,
    /// The UID ranges `[from, to)` whose messages are \Recent in this
    /// session (IMAP4rev1, RFC 3501 §2.3.2): claimed from the Store at
    /// SELECT and as new messages arrive; a read-only session claims
    /// nothing and sees as recent what nobody has claimed.
    pub recent: Vec<(Uid, Uid)>,
    /// The keywords announced in the last untagged FLAGS besides the
    /// system flags and [`WELL_KNOWN_KEYWORDS`]: a FETCH may show no
    /// keyword the client was not told of first (RFC 9051 §7.3.5).
    pub keywords: BTreeSet<String>,
    /// SELECT's listing, kept for the FETCH of flags that clients send
    /// right after it, while nothing has been committed since; any `sync`
    /// drops it, so it never outlives the next command that reports
    /// changes (IDLE included).
    pub listing: Option<Vec<MessageEntry>>,
}

impl Selected {
    /// True when the message is \Recent in this session.
    pub fn is_recent(&self, uid: Uid) -> bool {
        self.recent
            .iter()
            .any(|&(from, to)| uid >= from && uid < to)
    }

    /// How many of the session's messages are \Recent (the RECENT count).
    pub fn recent_count(&self) -> usize {
        if self.recent.is_empty() {
            return 0;
        }
        self.uids.iter().filter(|u| self.is_recent(**u)).count()
    }

    /// The flags a FETCH shows for a message: its keywords, and \Recent
    /// where it is recent in this session.
    pub fn shown_flags(&self, uid: Uid, keywords: &[String]) -> Vec<String> {
        let mut flags = keywords.to_vec();
        if self.is_recent(uid) {
            flags.push("\\Recent".into());
        }
        flags
    }

    /// The untagged FLAGS and PERMANENTFLAGS as they stand.
    pub fn flags_lines(&self) -> String {
        let mut keywords: Vec<&str> = WELL_KNOWN_KEYWORDS.to_vec();
        keywords.extend(self.keywords.iter().map(String::as_str));
        let keywords = keywords.join(" ");
        let permanent = if self.read_only {
            String::new()
        } else {
            format!("{SYSTEM_FLAGS} {keywords} \\*")
        };
        format!(
            "* FLAGS ({SYSTEM_FLAGS} {keywords})\r\n\
             * OK [PERMANENTFLAGS ({permanent})] flags the client can change\r\n"
        )
    }

    /// Takes note of keywords about to be shown; returns FLAGS and
    /// PERMANENTFLAGS to send first when some were never announced.
    pub fn announce<'k>(
        &mut self,
        keywords: impl IntoIterator<Item = &'k String>,
    ) -> Option<String> {
        let mut new = false;
        for k in keywords {
            if k.starts_with('\\')
                || WELL_KNOWN_KEYWORDS
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(k))
            {
                continue;
            }
            new |= self.keywords.insert(k.clone());
        }
        new.then(|| self.flags_lines())
    }

    /// The sequence number of `uid`, if the session knows it.
    pub fn seq(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// For a set of message numbers, the first number beyond the mailbox
    /// (RFC 9051 §9: a seq-number must exist; UIDs and `*` need not).
    /// `*` counts too: in an empty mailbox it names no message (as Dovecot
    /// answers).
    pub fn beyond(&self, set: &SequenceSet, uid: bool) -> Option<String> {
        if uid {
            return None;
        }
        if self.uids.is_empty() && set.mentions_last() {
            return Some("*".into());
        }
        set.highest_written()
            .filter(|&n| n as usize > self.uids.len())
            .map(|n| n.to_string())
    }

    /// The UIDs named by a sequence set of message numbers or of UIDs.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<Uid> {
        if let SequenceSet::Saved = set {
            return self
                .saved
                .iter()
                .copied()
                .filter(|u| self.uids.binary_search(u).is_ok())
                .collect();
        }
        if uid {
            let max = self.uids.last().map_or(0, |u| u.0);
            let ranges = set.resolve(max).unwrap_or_default();
            self.uids
                .iter()
                .copied()
                .filter(|u| ranges.iter().any(|&(a, b)| u.0 >= a && u.0 <= b))
                .collect()
        } else {
            let n = self.uids.len() as u32;
            set.resolve(n)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|(a, b)| a.max(1)..=b.min(n))
                .map(|seq| self.uids[seq as usize - 1])
                .collect()
        }
    }
}

impl Session {
    pub(crate) fn selected(&self) -> Option<&Selected> {
        match &self.state {
            super::State::Selected(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn selected_mut(&mut self) -> Option<&mut Selected> {
        match &mut self.state {
            super::State::Selected(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn account_id(&self) -> tern_store::AccountId {
        self.account
            .as_ref()
            .map(|a| a.id)
            .unwrap_or(tern_store::AccountId(0))
    }

    /// Enables CONDSTORE for the session, as a CONDSTORE-enabling command
    /// does (RFC 7162 §3.1): with a mailbox selected, the first such
    /// command is answered with its HIGHESTMODSEQ as well.
    pub(crate) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(highest) = self.selected().map(|s| s.modseq) {
            self.untagged(&format!("OK [HIGHESTMODSEQ {highest}] CONDSTORE enabled"));
        }
    }

    /// BAD for a message number beyond the mailbox; true when the set is
    /// fine (or names UIDs).
    pub(crate) fn check_numbers(&mut self, tag: &str, set: &SequenceSet, uid: bool) -> bool {
        let Some(sel) = self.selected() else {
            return true;
        };
        match sel.beyond(set, uid) {
            None => true,
            Some(n) => {
                let have = sel.uids.len();
                self.tagged(
                    tag,
                    "BAD",
                    &format!("no message {n}: the mailbox has {have} (message numbers must exist)"),
                );
                false
            }
        }
    }

    /// Finds a mailbox by the client's name; NO with [NONEXISTENT] if absent.
    pub(crate) async fn find_mailbox(&mut self, tag: &str, name: &str) -> Option<Mailbox> {
        let Some(decoded) = self.decode_mailbox(name) else {
            self.tagged(tag, "NO", "invalid mailbox name (modified UTF-7 expected)");
            return None;
        };
        match self
            .srv
            .store
            .mailbox_by_name(self.account_id(), &decoded)
            .await
        {
            Ok(Some(m)) => Some(m),
            Ok(None) => {
                self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
                None
            }
            Err(e) => {
                self.store_error(tag, e);
                None
            }
        }
    }

    pub(crate) fn store_error(&mut self, tag: &str, e: StoreError) {
        match e {
            StoreError::NotFound { .. } => self.tagged(tag, "NO", &format!("[NONEXISTENT] {e}")),
            StoreError::AlreadyExists { .. } => {
                self.tagged(tag, "NO", &format!("[ALREADYEXISTS] {e}"))
            }
            StoreError::OverQuota { .. } => self.tagged(tag, "NO", &format!("[OVERQUOTA] {e}")),
            e if e.is_storage_full() => {
                tracing::warn!("imap {}: {e}", self.peer);
                self.tagged(
                    tag,
                    "NO",
                    "[OVERQUOTA] the server is out of storage space; try again later",
                );
            }
            StoreError::Invalid(_)
            | StoreError::HasChildren { .. }
            | StoreError::DomainInUse { .. } => self.tagged(tag, "NO", &format!("[CANNOT] {e}")),
            e => {
                tracing::error!("imap {}: {e}", self.peer);
                self.tagged(
                    tag,
                    "NO",
                    "[SERVERBUG] the server could not do that; try again later",
                );
            }
        }
    }

    /// SELECT and EXAMINE (RFC 9051 §6.3.2, RFC 7162 §3.1.8 and §3.2.5).
    pub(super) async fn select(
        &mut self,
        tag: &str,
        name: &str,
        params: SelectParams,
        read_only: bool,
    ) {
        // Selecting, even failing, ends the current selection (RFC 9051 §6.3.2).
        if matches!(self.state, super::State::Selected(_)) {
            self.state = super::State::Authenticated;
            self.untagged("OK [CLOSED] previous mailbox closed");
        }
        if params.condstore || params.qresync.is_some() {
            self.condstore = true;
        }
        if params.qresync.is_some() && !self.qresync {
            self.tagged(tag, "BAD", "QRESYNC must be ENABLEd first");
            return;
        }
        // Subscribed before anything is read: a commit after the reads
        // below then always moves `changes` (see `sync`).
        let mut changes = self.srv.store.subscribe(self.account_id());
        let synced_at = *changes.borrow_and_update();
        let Some(mailbox) = self.find_mailbox(tag, name).await else {
            return;
        };
        if mailbox.noselect {
            return self.tagged(
                tag,
                "NO",
                "[NONEXISTENT] that name holds no messages, only other mailboxes",
            );
        }
        let account = self.account_id();
        let store = self.srv.store.clone();
        let entries = match store.list_messages(account, mailbox.id).await {
            Ok(e) => e,
            Err(e) => return self.store_error(tag, e),
        };
        // IMAP4rev1 only: a read-write SELECT takes the recent messages
        // for this session; EXAMINE sees what nobody has taken, and takes
        // nothing (RFC 3501 §6.3.2).
        let claims = &self.srv.recent;
        let recent = if self.rev2 {
            Vec::new()
        } else if read_only {
            let first = claims.first_unclaimed(mailbox.id, mailbox.first_recent_uid);
            vec![(first, Uid(u32::MAX))]
        } else {
            // Up to what was listed too: a message delivered between
            // reading the mailbox and listing it is in EXISTS.
            let listed_next = Uid(entries.last().map_or(0, |e| e.uid.0).saturating_add(1));
            let (from, to) = claims.claim(
                account,
                mailbox.id,
                mailbox.first_recent_uid,
                mailbox.uid_next.max(listed_next),
            );
            if from < to {
                vec![(from, to)]
            } else {
                Vec::new()
            }
        };
        let highest = mailbox.highest_modseq;
        let mut selected = Selected {
            uids: entries.iter().map(|e| e.uid).collect(),
            listing: None,
            mailbox,
            read_only,
            modseq: highest,
            pending_expunge: Vec::new(),
            saved: Vec::new(),
            changes,
            synced_at,
            own_changes: Vec::new(),
            recent,
            keywords: BTreeSet::new(),
        };
        selected.announce(entries.iter().flat_map(|e| e.keywords.iter()));
        let mut out = selected.flags_lines();
        let _ = write!(out, "* {} EXISTS\r\n", entries.len());
        if !self.rev2 {
            let _ = write!(out, "* {} RECENT\r\n", selected.recent_count());
            if let Some(i) = entries.iter().position(|e| !e.has_keyword("\\Seen")) {
                let _ = write!(out, "* OK [UNSEEN {}] first unseen\r\n", i + 1);
            }
        }
        let m = &selected.mailbox;
        let _ = write!(
            out,
            "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] predicted next UID\r\n\
             * OK [HIGHESTMODSEQ {}] highest\r\n* OK [MAILBOXID (M{})] mailbox id\r\n",
            m.uid_validity, m.uid_next, m.highest_modseq, m.id
        );
        self.conn.out.extend_from_slice(out.as_bytes());
        selected.listing = Some(entries);
        let uid_validity = selected.mailbox.uid_validity;
        self.state = super::State::Selected(Box::new(selected));
        if let Some(q) = params.qresync {
            if q.uid_validity == uid_validity {
                if let Err(e) = self.qresync_resync(q.modseq, q.known_uids.as_ref()).await {
                    // Without its VANISHED the client would keep messages
                    // that are gone: refuse the SELECT instead.
                    self.state = super::State::Authenticated;
                    return self.store_error(tag, e);
                }
            }
        }
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.tagged(
            tag,
            "OK",
            &format!(
                "[{mode}] {} completed",
                if read_only { "EXAMINE" } else { "SELECT" }
            ),
        );
    }

    /// QRESYNC's resynchronisation at SELECT: VANISHED (EARLIER) for what was
    /// expunged since `modseq`, then FETCH for what changed.
    async fn qresync_resync(
        &mut self,
        modseq: u64,
        known: Option<&SequenceSet>,
    ) -> Result<(), StoreError> {
        let account = self.account_id();
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let mailbox = sel.mailbox.id;
        let changes = self
            .srv
            .store
            .mailbox_changes(account, mailbox, ModSeq(modseq))
            .await?;
        if changes.incomplete {
            // Below the retention floor: the tombstones are gone; report
            // every UID below UIDNEXT the client may know that is not here.
            if let Some(sel) = self.selected() {
                let max = sel.mailbox.uid_next.0.saturating_sub(1);
                let ranges = known
                    .and_then(|k| k.resolve(max))
                    .unwrap_or_else(|| vec![(1, max)]);
                if let Some(set) = absent_uids(&ranges, &sel.uids, max) {
                    self.untagged(&format!("VANISHED (EARLIER) {set}"));
                }
            }
        }
        let max_known = changes.expunged.iter().map(|u| u.0).max().unwrap_or(0);
        let known_ranges = known.and_then(|k| k.resolve(max_known));
        let vanished: Vec<Uid> = changes
            .expunged
            .iter()
            .copied()
            .filter(|u| {
                known_ranges
                    .as_ref()
                    .is_none_or(|r| r.iter().any(|&(a, b)| u.0 >= a && u.0 <= b))
            })
            .collect();
        if !vanished.is_empty() {
            self.untagged(&format!("VANISHED (EARLIER) {}", uid_set(&vanished)));
        }
        let mut out = Vec::new();
        for e in &changes.changed {
            let Some(sel) = self.selected_mut() else {
                break;
            };
            let Some(seq) = sel.seq(e.uid) else {
                continue;
            };
            if let Some(flags) = sel.announce(&e.keywords) {
                out.extend_from_slice(flags.as_bytes());
            }
            let flags = sel.shown_flags(e.uid, &e.keywords);
            out.extend_from_slice(format!("* {seq} FETCH (UID {} FLAGS (", e.uid).as_bytes());
            out.extend_from_slice(flags.join(" ").as_bytes());
            out.extend_from_slice(format!(") MODSEQ ({}))\r\n", e.modseq).as_bytes());
        }
        self.conn.out.extend_from_slice(&out);
        Ok(())
    }

    /// CLOSE (expunging \Deleted messages unless read-only) or UNSELECT.
    pub(super) async fn close(&mut self, tag: &str, expunge: bool) {
        let Some(sel) = self.selected() else { return };
        let (mailbox, read_only) = (sel.mailbox.id, sel.read_only);
        if expunge && !read_only {
            // CLOSE reports nothing of what it removes (RFC 9051 §6.4.1).
            if let Err(e) = self
                .srv
                .store
                .expunge(self.account_id(), mailbox, ExpungeFilter::Deleted)
                .await
            {
                return self.store_error(tag, e);
            }
        }
        self.state = super::State::Authenticated;
        self.tagged(
            tag,
            "OK",
            if expunge {
                "CLOSE completed"
            } else {
                "UNSELECT completed"
            },
        );
    }

    /// EXPUNGE and UID EXPUNGE.
    pub(super) async fn expunge(&mut self, tag: &str, uids: Option<SequenceSet>) {
        let Some(sel) = self.selected() else { return };
        if sel.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] the mailbox is read-only");
        }
        let filter = match &uids {
            None => ExpungeFilter::Deleted,
            Some(set) => ExpungeFilter::DeletedAmong(sel.resolve(set, true)),
        };
        let mailbox = sel.mailbox.id;
        if let Err(e) = self
            .srv
            .store
            .expunge(self.account_id(), mailbox, filter)
            .await
        {
            return self.store_error(tag, e);
        }
        // The removal reaches this session like anyone else's: through sync.
        self.sync(true).await;
        // Under CONDSTORE the tagged OK carries the mailbox's new
        // HIGHESTMODSEQ (RFC 7162 §3.1.10).
        match self.selected().filter(|_| self.condstore) {
            Some(sel) => {
                let text = format!("[HIGHESTMODSEQ {}] EXPUNGE completed", sel.modseq);
                self.tagged(tag, "OK", &text);
            }
            None => self.tagged(tag, "OK", "EXPUNGE completed"),
        }
    }

    /// The entries of `uids` from SELECT's listing, if it is still exact:
    /// nothing committed to the account since it was read.
    pub(crate) fn listed_entries(&mut self, uids: &[Uid]) -> Option<Vec<MessageEntry>> {
        let sel = self.selected_mut()?;
        let listing = sel.listing.take()?;
        if *sel.changes.borrow() != sel.synced_at {
            return None;
        }
        // A sequence set need not be in order ("5,1:3"); the listing is.
        let mut wanted = uids.to_vec();
        wanted.sort_unstable();
        let mut wanted = wanted.iter().peekable();
        Some(
            listing
                .into_iter()
                .filter(|e| {
                    while wanted.next_if(|u| **u < e.uid).is_some() {}
                    wanted.next_if(|u| **u == e.uid).is_some()
                })
                .collect(),
        )
    }

    /// Notes flag changes this session just made (STORE, the implicit
    /// `\Seen` of FETCH). When it `reported` their flags itself, the next
    /// [`Session::sync`] skips them. An account's modseqs are consecutive
    /// (`Store::subscribe`): when the change's modseq is the next after
    /// what the last sync saw and the latest commit announced, nothing else
    /// changed anywhere, and that sync need not ask the Store at all.
    pub(crate) fn note_own_changes(
        &mut self,
        updated: &[tern_store::MessageEntry],
        reported: bool,
    ) {
        let Some(sel) = self.selected_mut() else {
            return;
        };
        sel.own_changes = if reported {
            updated.iter().map(|e| (e.uid, e.modseq)).collect()
        } else {
            Vec::new()
        };
        if let Some(m) = updated.iter().map(|e| e.modseq).max() {
            if sel.synced_at.0 + 1 == m.0 && *sel.changes.borrow() == m {
                sel.synced_at = m;
                sel.modseq = sel.modseq.max(m);
            }
        }
    }

    /// Reports what changed in the selected mailbox since the last report.
    /// With `allow_expunge` false (a FETCH, STORE or SEARCH by sequence
    /// number), expunges wait, so message numbers keep their meaning.
    ///
    /// Asks the Store only when the notification hub announced a commit to
    /// the account since the last time (or expunges wait to be announced):
    /// most commands follow no change at all.
    pub(crate) async fn sync(&mut self, allow_expunge: bool) {
        let account = self.account_id();
        let srv = self.srv.clone();
        let Some(sel) = self.selected_mut() else {
            return;
        };
        // Read before the Store is asked: a commit the answer misses comes
        // after this value, so it moves `changes` again.
        sel.listing = None;
        let latest = *sel.changes.borrow_and_update();
        let expunges_due = allow_expunge && !sel.pending_expunge.is_empty();
        let own_changes = std::mem::take(&mut sel.own_changes);
        if latest == sel.synced_at && !expunges_due {
            return;
        }
        let (mailbox, since) = (sel.mailbox.id, sel.modseq);
        let changes = match self
            .srv
            .store
            .mailbox_changes(account, mailbox, since)
            .await
        {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => {
                // Deleted by another session: nothing is left to show.
                self.state = super::State::Authenticated;
                self.untagged("BYE the selected mailbox was deleted");
                // BYE means the connection ends (RFC 9051 §7.1.5).
                self.closing = true;
                return;
            }
            Err(e) => {
                tracing::warn!("imap {}: reading changes: {e}", self.peer);
                return;
            }
        };
        // Below the retention floor (a session open longer than the journal
        // keeps changes): the tombstones are gone, so what is gone is found
        // by comparing with the mailbox as it is.
        let gone_unrecorded = if changes.incomplete {
            match self.srv.store.list_messages(account, mailbox).await {
                Ok(now) => {
                    let now: Vec<Uid> = now.iter().map(|e| e.uid).collect();
                    self.selected()
                        .map(|sel| {
                            sel.uids
                                .iter()
                                .copied()
                                .filter(|u| now.binary_search(u).is_err())
                                .collect()
                        })
                        .unwrap_or_default()
                }
                Err(e) => {
                    tracing::warn!("imap {}: reading changes: {e}", self.peer);
                    return;
                }
            }
        } else {
            Vec::new()
        };
        let (qresync, condstore, rev1) = (self.qresync, self.condstore, !self.rev2);
        let Some(sel) = self.selected_mut() else {
            return;
        };
        sel.synced_at = latest;
        sel.pending_expunge.extend(gone_unrecorded);
        sel.pending_expunge.extend(
            changes
                .expunged
                .iter()
                .copied()
                .filter(|u| sel.uids.binary_search(u).is_ok()),
        );
        let recent_before = sel.recent_count();
        let mut gone = Vec::new();
        if allow_expunge && !sel.pending_expunge.is_empty() {
            gone = std::mem::take(&mut sel.pending_expunge);
            gone.sort_unstable();
            gone.dedup();
        }
        // Flag changes first, numbered as the client knows the mailbox
        // (before the expunges below), as Dovecot orders them; none for a
        // message about to be expunged.
        let mut out = String::new();
        let last = sel.uids.last().copied().unwrap_or(Uid(0));
        let mut added = Vec::new();
        for e in &changes.changed {
            if e.uid > last {
                // A new message's keywords are announced with it.
                if let Some(flags) = sel.announce(&e.keywords) {
                    out.push_str(&flags);
                }
                added.push(e.uid);
                continue;
            }
            if own_changes.contains(&(e.uid, e.modseq)) || gone.binary_search(&e.uid).is_ok() {
                continue;
            }
            if let Ok(i) = sel.uids.binary_search(&e.uid) {
                if let Some(flags) = sel.announce(&e.keywords) {
                    out.push_str(&flags);
                }
                let _ = write!(out, "* {} FETCH (", i + 1);
                if qresync {
                    let _ = write!(out, "UID {} ", e.uid);
                }
                let flags = sel.shown_flags(e.uid, &e.keywords);
                let _ = write!(out, "FLAGS ({})", flags.join(" "));
                if condstore {
                    let _ = write!(out, " MODSEQ ({})", e.modseq);
                }
                out.push_str(")\r\n");
            }
        }
        if !gone.is_empty() {
            if qresync {
                let _ = write!(out, "* VANISHED {}\r\n", uid_set(&gone));
                sel.uids.retain(|u| gone.binary_search(u).is_err());
            } else {
                // Highest first: each EXPUNGE renumbers only what follows it.
                for uid in gone.iter().rev() {
                    if let Ok(i) = sel.uids.binary_search(uid) {
                        sel.uids.remove(i);
                        let _ = write!(out, "* {} EXPUNGE\r\n", i + 1);
                    }
                }
            }
        }
        added.sort_unstable();
        added.dedup();
        sel.uids.extend(&added);
        sel.modseq = sel.modseq.max(changes.highest_modseq);
        // New messages are recent for the first read-write session told
        // of them (RFC 3501 §2.3.2): claim what nobody took yet.
        let claim = rev1 && !sel.read_only && added.iter().any(|u| !sel.is_recent(*u));
        let (mailbox_id, stored_first) = (sel.mailbox.id, sel.mailbox.first_recent_uid);
        // A read-only session sees as recent what nobody claimed: another
        // session may have claimed the new messages already.
        if rev1 && sel.read_only && !added.is_empty() {
            let first = srv.recent.first_unclaimed(mailbox_id, stored_first);
            sel.recent = vec![(first, Uid(u32::MAX))];
        }
        if claim {
            let upto = Uid(added.last().map_or(0, |u| u.0).saturating_add(1));
            let (from, to) = srv.recent.claim(account, mailbox_id, stored_first, upto);
            if from < to {
                // Claims are usually contiguous: extend the last range, so
                // a session idling on busy mail keeps one or a few.
                match sel.recent.last_mut() {
                    Some(last) if last.1 == from => last.1 = to,
                    _ => sel.recent.push((from, to)),
                }
            }
        }
        if !added.is_empty() {
            let _ = write!(out, "* {} EXISTS\r\n", sel.uids.len());
        }
        let recent = sel.recent_count();
        // Sent when the number changes (RFC 3501 §7.3.2), as Dovecot does.
        if rev1 && recent != recent_before {
            let _ = write!(out, "* {recent} RECENT\r\n");
        }
        self.conn.out.extend_from_slice(out.as_bytes());
    }
}

/// The UIDs of `ranges` (inclusive, from `SequenceSet::resolve`), up to
/// `max`, that are not in `present` (ascending), as a compact UID set;
/// `None` when there are none. For a client whose modseq is below the
/// journal's retention floor: its tombstones are gone, so every UID it may
/// know of that is not in the mailbox now is reported VANISHED (RFC 7162
/// §3.2.10 allows reporting UIDs the client never saw). Works on ranges,
/// never one entry per UID, whatever the UIDs' magnitude.
pub(crate) fn absent_uids(ranges: &[(u32, u32)], present: &[Uid], max: u32) -> Option<String> {
    let mut out = String::new();
    let mut push = |a: u32, b: u32| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b {
            let _ = write!(out, "{a}");
        } else {
            let _ = write!(out, "{a}:{b}");
        }
    };
    for &(start, end) in ranges {
        let (start, end) = (start.max(1), end.min(max));
        if start > end {
            continue;
        }
        let mut next = start;
        let from = present.partition_point(|u| u.0 < start);
        for u in present[from..].iter().take_while(|u| u.0 <= end) {
            if u.0 > next {
                push(next, u.0 - 1);
            }
            next = u.0 + 1;
        }
        if next <= end {
            push(next, end);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A compact UID set: `1:3,7,9:10`.
pub(crate) fn uid_set(uids: &[Uid]) -> String {
    let mut sorted: Vec<u32> = uids.iter().map(|u| u.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_uids_are_the_gaps_in_ranges() {
        let present = [Uid(2), Uid(3), Uid(7)];
        assert_eq!(
            absent_uids(&[(1, 10)], &present, 8).as_deref(),
            Some("1,4:6,8")
        );
        assert_eq!(absent_uids(&[(2, 3)], &present, 8), None);
        assert_eq!(
            absent_uids(&[(1, 1), (5, u32::MAX)], &present, 4_000_000_000).as_deref(),
            Some("1,5:6,8:4000000000")
        );
        assert_eq!(absent_uids(&[(9, 20)], &present, 8), None);
    }

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(
            uid_set(&[Uid(3), Uid(1), Uid(2), Uid(7), Uid(9), Uid(10)]),
            "1:3,7,9:10"
        );
        assert_eq!(uid_set(&[Uid(5)]), "5");
    }
}
