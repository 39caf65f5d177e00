//! Mailbox commands of the authenticated state: CREATE (with
//! CREATE-SPECIAL-USE, RFC 6154), DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE,
//! LIST (with LIST-EXTENDED, RFC 5258, LIST-STATUS, RFC 5819, and
//! SPECIAL-USE attributes), LSUB, STATUS (with STATUS=SIZE, RFC 8438) and
//! QUOTA (RFC 9208).

use super::Session;
use crate::parse::{ListReturn, StatusItem};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tern_store::{Mailbox, Role, HIERARCHY_SEPARATOR};

/// The messages of `m` no session has claimed as \Recent: the Store's
/// count, unless a claim here is newer than what it has recorded.
async fn unclaimed(
    srv: &crate::ImapServer,
    account: tern_store::AccountId,
    m: &Mailbox,
    stored_count: u32,
) -> u32 {
    let first = srv.recent.first_unclaimed(m.id, m.first_recent_uid);
    if first <= m.first_recent_uid {
        return stored_count;
    }
    let key = tern_store::SearchKey::Uids(vec![(first, tern_store::Uid(u32::MAX))]);
    match srv.store.search(account, m.id, &key).await {
        Ok(found) => found.len() as u32,
        Err(_) => stored_count,
    }
}

fn children_attr(has: bool) -> &'static str {
    if has {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    }
}

impl Session {
    pub(super) async fn create(&mut self, tag: &str, name: &str, special_use: &[String]) {
        let Some(decoded) = self.decode_mailbox(name) else {
            return self.tagged(tag, "NO", "invalid mailbox name (modified UTF-7 expected)");
        };
        // RFC 9051 §6.3.4: a trailing separator only says a child is coming.
        let decoded = decoded.trim_end_matches(HIERARCHY_SEPARATOR).to_string();
        let role = match special_use {
            [] => None,
            [one] => match Role::ALL.into_iter().find(|r| {
                r.imap_attribute()
                    .is_some_and(|a| a.eq_ignore_ascii_case(one))
            }) {
                Some(r) => Some(r),
                None => {
                    return self.tagged(tag, "NO", "[USEATTR] unsupported special-use attribute")
                }
            },
            _ => return self.tagged(tag, "NO", "[USEATTR] one special-use attribute at a time"),
        };
        match self
            .srv
            .store
            .create_mailbox(self.account_id(), &decoded, role)
            .await
        {
            Ok(_) => self.ok_synced(tag, "CREATE completed").await,
            Err(tern_store::StoreError::Invalid(why)) if role.is_some() => {
                self.tagged(tag, "NO", &format!("[USEATTR] {why}"))
            }
            Err(e) => self.store_error(tag, e),
        }
    }

    pub(super) async fn delete(&mut self, tag: &str, name: &str) {
        let Some(mailbox) = self.find_mailbox(tag, name).await else {
            return;
        };
        if self.selected().is_some_and(|s| s.mailbox.id == mailbox.id) {
            self.state = super::State::Authenticated;
        }
        match self
            .srv
            .store
            .delete_mailbox(self.account_id(), mailbox.id)
            .await
        {
            Ok(()) => self.ok_synced(tag, "DELETE completed").await,
            Err(e) => self.store_error(tag, e),
        }
    }

    pub(super) async fn rename(&mut self, tag: &str, from: &str, to: &str) {
        let Some(mailbox) = self.find_mailbox(tag, from).await else {
            return;
        };
        let Some(to) = self.decode_mailbox(to) else {
            return self.tagged(tag, "NO", "invalid mailbox name (modified UTF-7 expected)");
        };
        match self
            .srv
            .store
            .rename_mailbox(self.account_id(), mailbox.id, &to)
            .await
        {
            Ok(()) => self.ok_synced(tag, "RENAME completed").await,
            Err(e) => self.store_error(tag, e),
        }
    }

    /// SUBSCRIBE names a mailbox that exists; UNSUBSCRIBE takes any
    /// subscribed name, also one whose mailbox was deleted (RFC 9051
    /// §6.3.8: subscriptions outlive mailboxes).
    pub(super) async fn subscribe(&mut self, tag: &str, name: &str, on: bool) {
        let done = if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        };
        if on {
            let Some(mailbox) = self.find_mailbox(tag, name).await else {
                return;
            };
            return match self
                .srv
                .store
                .subscribe_mailbox(self.account_id(), mailbox.id, true)
                .await
            {
                Ok(()) => self.ok_synced(tag, done).await,
                Err(e) => self.store_error(tag, e),
            };
        }
        let Some(decoded) = self.decode_mailbox(name) else {
            return self.tagged(tag, "NO", "invalid mailbox name (modified UTF-7 expected)");
        };
        match self
            .srv
            .store
            .set_subscription(self.account_id(), &decoded, false)
            .await
        {
            Ok(true) => self.ok_synced(tag, done).await,
            // Not subscribed: fine for a mailbox, an error for a name
            // that is neither.
            Ok(false) => match self
                .srv
                .store
                .mailbox_by_name(self.account_id(), &decoded)
                .await
            {
                Ok(Some(_)) => self.ok_synced(tag, done).await,
                Ok(None) => self.tagged(tag, "NO", "[NONEXISTENT] that name is not subscribed"),
                Err(e) => self.store_error(tag, e),
            },
            Err(e) => self.store_error(tag, e),
        }
    }

    /// LIST and LSUB.
    pub(super) async fn list(
        &mut self,
        tag: &str,
        reference: &str,
        patterns: &[String],
        select: &[String],
        ret: ListReturn,
        lsub: bool,
    ) {
        let command = if lsub { "LSUB" } else { "LIST" };
        if !lsub && patterns.len() == 1 && patterns[0].is_empty() {
            // The hierarchy separator and root (RFC 9051 §6.3.9).
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return self.ok_synced(tag, "LIST completed").await;
        }
        // Selection options (RFC 5258 §3.1, RFC 6154 §3): an unknown one is
        // BAD, and RECURSIVEMATCH only refines another.
        if let Some(unknown) = select.iter().find(|s| {
            !matches!(
                s.as_str(),
                "SUBSCRIBED" | "REMOTE" | "RECURSIVEMATCH" | "SPECIAL-USE"
            )
        }) {
            return self.tagged(
                tag,
                "BAD",
                &format!("unknown LIST selection option {unknown}"),
            );
        }
        let subscribed_only = select.iter().any(|s| s == "SUBSCRIBED");
        let special_only = select.iter().any(|s| s == "SPECIAL-USE");
        let recursive = select.iter().any(|s| s == "RECURSIVEMATCH");
        if recursive && !subscribed_only {
            return self.tagged(
                tag,
                "BAD",
                "RECURSIVEMATCH needs another selection option, such as SUBSCRIBED",
            );
        }
        let account = self.account_id();
        let mailboxes = match self.srv.store.list_mailboxes(account).await {
            Ok(m) => m,
            Err(e) => return self.store_error(tag, e),
        };
        let subscriptions: BTreeSet<String> = match self.srv.store.subscriptions(account).await {
            Ok(s) => s.into_iter().collect(),
            Err(e) => return self.store_error(tag, e),
        };
        let Some(reference) = self.decode_mailbox(reference) else {
            return self.tagged(tag, "NO", "invalid reference");
        };
        let mut patterns_utf8 = Vec::new();
        for p in patterns {
            match self.decode_mailbox(p) {
                Some(p) => patterns_utf8.push(format!("{reference}{p}")),
                None => return self.tagged(tag, "NO", "invalid pattern"),
            }
        }
        let matching = |name: &str| patterns_utf8.iter().any(|p| matches_pattern(p, name));
        let by_name: HashMap<&str, &Mailbox> =
            mailboxes.iter().map(|m| (m.name.as_str(), m)).collect();
        let has_children = |name: &str| {
            let prefix = format!("{name}{HIERARCHY_SEPARATOR}");
            mailboxes.iter().any(|c| c.name.starts_with(&prefix))
        };
        // Names with a subscribed descendant (RFC 5258 §3.5 CHILDINFO;
        // LSUB's \Noselect parents, RFC 3501 §6.3.9).
        let mut parents_of_subscribed: BTreeSet<String> = BTreeSet::new();
        for name in &subscriptions {
            let mut at = name.as_str();
            while let Some((parent, _)) = at.rsplit_once(HIERARCHY_SEPARATOR) {
                parents_of_subscribed.insert(parent.to_string());
                at = parent;
            }
        }

        // The names to answer with, in order, and their attributes.
        let mut rows: BTreeMap<String, (Vec<&'static str>, bool)> = BTreeMap::new();
        if lsub {
            for name in subscriptions.iter().filter(|n| matching(n)) {
                let mut attrs = Vec::new();
                if let Some(m) = by_name.get(name.as_str()) {
                    if m.noselect {
                        attrs.push("\\Noselect");
                    }
                    attrs.extend(m.role.and_then(Role::imap_attribute));
                }
                rows.insert(name.clone(), (attrs, false));
            }
            // A `%` that stops above a subscribed name lists its parent,
            // \Noselect when it is not subscribed itself (RFC 3501 §6.3.9).
            for name in parents_of_subscribed.iter().filter(|n| matching(n)) {
                let prefix = format!("{name}{HIERARCHY_SEPARATOR}");
                let hidden = subscriptions
                    .iter()
                    .any(|s| s.starts_with(&prefix) && !matching(s));
                if hidden {
                    rows.entry(name.clone())
                        .or_insert_with(|| (vec!["\\Noselect"], false));
                }
            }
        } else if subscribed_only {
            for name in subscriptions.iter().filter(|n| matching(n)) {
                // Selection options combine (RFC 5258 §3.1).
                let special = by_name
                    .get(name.as_str())
                    .and_then(|m| m.role)
                    .and_then(Role::imap_attribute);
                if special_only && special.is_none() {
                    continue;
                }
                let mut attrs = vec!["\\Subscribed"];
                match by_name.get(name.as_str()) {
                    None => attrs.push("\\NonExistent"),
                    Some(m) => {
                        attrs.push(children_attr(has_children(name)));
                        if m.noselect {
                            attrs.push("\\Noselect");
                        }
                        attrs.extend(m.role.and_then(Role::imap_attribute));
                    }
                }
                rows.insert(name.clone(), (attrs, false));
            }
            if recursive {
                for name in parents_of_subscribed.iter().filter(|n| matching(n)) {
                    let row = rows.entry(name.clone()).or_insert_with(|| {
                        let attrs = match by_name.get(name.as_str()) {
                            None => vec!["\\NonExistent"],
                            Some(m) => {
                                let mut a = vec![children_attr(true)];
                                a.extend(m.role.and_then(Role::imap_attribute));
                                a
                            }
                        };
                        (attrs, false)
                    });
                    row.1 = true;
                }
            }
        } else {
            for m in mailboxes.iter().filter(|m| matching(&m.name)) {
                if special_only && m.role.and_then(Role::imap_attribute).is_none() {
                    continue;
                }
                let mut attrs = vec![children_attr(has_children(&m.name))];
                if m.noselect {
                    attrs.push("\\Noselect");
                }
                if ret.subscribed && subscriptions.contains(&m.name) {
                    attrs.push("\\Subscribed");
                }
                attrs.extend(m.role.and_then(Role::imap_attribute));
                rows.insert(m.name.clone(), (attrs, false));
            }
        }
        for (name, (attrs, childinfo)) in rows {
            let mut line = format!("* {command} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            line.extend_from_slice(&self.encode_mailbox(&name));
            if childinfo {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            line.extend_from_slice(b"\r\n");
            self.conn.out.extend_from_slice(&line);
            if let (false, Some(items), Some(m)) = (lsub, &ret.status, by_name.get(name.as_str())) {
                if !m.noselect {
                    self.status_line(m, items).await;
                }
            }
        }
        self.ok_synced(tag, &format!("{command} completed")).await;
    }

    pub(super) async fn status(&mut self, tag: &str, name: &str, items: &[StatusItem]) {
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
        self.status_line(&mailbox, items).await;
        self.ok_synced(tag, "STATUS completed").await;
    }

    async fn status_line(&mut self, m: &Mailbox, items: &[StatusItem]) {
        let counts = self
            .srv
            .store
            .mailbox_counts(self.account_id(), m.id)
            .await
            .unwrap_or_default();
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", counts.messages),
                // The selected mailbox's recent messages are this
                // session's; another's are those nobody has claimed.
                StatusItem::Recent => match self.selected().filter(|s| s.mailbox.id == m.id) {
                    Some(sel) => format!("RECENT {}", sel.recent_count()),
                    None => format!(
                        "RECENT {}",
                        unclaimed(&self.srv, self.account_id(), m, counts.recent).await
                    ),
                },
                StatusItem::UidNext => format!("UIDNEXT {}", m.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", m.uid_validity),
                StatusItem::Unseen => format!("UNSEEN {}", counts.unseen),
                StatusItem::Deleted => format!("DELETED {}", counts.deleted),
                StatusItem::Size => format!("SIZE {}", counts.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", m.highest_modseq),
                StatusItem::MailboxId => format!("MAILBOXID (M{})", m.id),
                StatusItem::AppendLimit => {
                    format!("APPENDLIMIT {}", self.srv.limits.max_message_size)
                }
            });
        }
        let mut line = b"* STATUS ".to_vec();
        line.extend_from_slice(&self.encode_mailbox(&m.name));
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.conn.out.extend_from_slice(&line);
    }

    /// GETQUOTA / GETQUOTAROOT: one root, "", holding the account's storage
    /// (RFC 9208 §4.2), in KiB. An account without a limit has no quota
    /// root: a QUOTA response needs at least one resource with its limit
    /// (RFC 9208 §5), so none is invented (as Dovecot does).
    pub(super) async fn get_quota(&mut self, tag: &str, root: &str, mailbox: Option<&str>) {
        let command = if mailbox.is_some() {
            "GETQUOTAROOT"
        } else {
            "GETQUOTA"
        };
        if let Some(name) = mailbox {
            if self.find_mailbox(tag, name).await.is_none() {
                return;
            }
        }
        let quota = match self.srv.store.quota(self.account_id()).await {
            Ok(q) => q,
            Err(e) => return self.store_error(tag, e),
        };
        if let Some(name) = mailbox {
            let mut line = b"* QUOTAROOT ".to_vec();
            line.extend_from_slice(&self.encode_mailbox(name));
            if quota.limit_bytes.is_some() {
                line.extend_from_slice(b" \"\"");
            }
            line.extend_from_slice(b"\r\n");
            self.conn.out.extend_from_slice(&line);
        } else if !root.is_empty() || quota.limit_bytes.is_none() {
            return self.tagged(tag, "NO", "[NONEXISTENT] no such quota root");
        }
        if let Some(limit) = quota.limit_bytes {
            self.untagged(&format!(
                "QUOTA \"\" (STORAGE {} {})",
                quota.used_bytes.div_ceil(1024),
                limit / 1024
            ));
        }
        self.ok_synced(tag, &format!("{command} completed")).await;
    }
}

/// LIST wildcards (RFC 9051 §6.3.9): `*` matches anything, `%` anything but
/// the separator. INBOX matches in any case.
pub(crate) fn matches_pattern(pattern: &str, name: &str) -> bool {
    let pattern = match pattern.get(..5) {
        Some(p)
            if p.eq_ignore_ascii_case("inbox")
                && (pattern.len() == 5 || pattern[5..].starts_with('/')) =>
        {
            format!("INBOX{}", &pattern[5..])
        }
        _ => pattern.to_string(),
    };
    glob(pattern.as_bytes(), name.as_bytes())
}

fn glob(p: &[u8], n: &[u8]) -> bool {
    // Dynamic programming over (pattern, name) positions: linear in their
    // product, so no pattern of many wildcards can take exponential time.
    // can[j] = the pattern consumed so far matches name[..j].
    let mut can = vec![false; n.len() + 1];
    can[0] = true;
    for &c in p {
        let mut next = vec![false; n.len() + 1];
        match c {
            b'*' | b'%' => {
                for j in 0..=n.len() {
                    // The wildcard matches nothing more, or one more character.
                    next[j] = can[j] || (j > 0 && next[j - 1] && (c == b'*' || n[j - 1] != b'/'));
                }
            }
            _ => {
                for j in 1..=n.len() {
                    next[j] = can[j - 1] && n[j - 1] == c;
                }
            }
        }
        can = next;
    }
    can[n.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_wildcards() {
        assert!(matches_pattern("*", "Archive/2026/Q1"));
        assert!(matches_pattern("%", "Archive"));
        assert!(!matches_pattern("%", "Archive/2026"));
        assert!(matches_pattern("Archive/%", "Archive/2026"));
        assert!(!matches_pattern("Archive/%", "Archive/2026/Q1"));
        assert!(matches_pattern("inbox", "INBOX"));
        assert!(matches_pattern("Inbox/*", "INBOX/x"));
        assert!(!matches_pattern("Inboxes", "INBOXes"));
        assert!(matches_pattern("A*c", "Abc"));
        assert!(!matches_pattern("A*c", "Abd"));
        assert!(!matches_pattern(&"*a".repeat(30), &"b".repeat(60)));
        assert!(matches_pattern("*/%", "a/b/c"));
        assert!(!matches_pattern("%/%", "a/b/c"));
    }
}
