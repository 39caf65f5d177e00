//! Mailboxes in SQLite: the hierarchy, roles, subscriptions, and the IMAP
//! bookkeeping (`uid_validity`, `uid_next`, `highest_modseq`).
//!
//! Names are full paths with `/` as separator. `INBOX` is case-insensitive
//! (RFC 9051 §5.1): any spelling of it, also as the first segment of a
//! child's name, is stored as `INBOX`.

use super::{db, journal, messages, WriteCtx};
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Longest mailbox name accepted, in bytes: generous for deep hierarchies,
/// small enough that a name never dominates a LIST response.
pub const MAX_NAME_LEN: usize = 1000;

/// Validates a mailbox name and canonicalises `INBOX`.
pub fn normalize_name(name: &str) -> Result<String> {
    let invalid = |why: &str| StoreError::Invalid(format!("invalid mailbox name {name:?}: {why}"));
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("too long"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid("control characters are not allowed"));
    }
    let mut segments: Vec<&str> = name.split(HIERARCHY_SEPARATOR).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(invalid(
            "empty hierarchy level (leading, trailing or doubled '/')",
        ));
    }
    if segments[0].eq_ignore_ascii_case("INBOX") {
        segments[0] = "INBOX";
    }
    Ok(segments.join("/"))
}

const MAILBOX_COLUMNS: &str =
    "id, account_id, name, role, uid_validity, uid_next, highest_modseq, subscribed, noselect,
     first_recent_uid FROM mailbox";

fn mailbox_row(r: &Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        id: MailboxId(r.get(0)?),
        account_id: AccountId(r.get(1)?),
        name: r.get(2)?,
        role: r
            .get::<_, Option<String>>(3)?
            .as_deref()
            .and_then(Role::parse),
        uid_validity: r.get(4)?,
        uid_next: Uid(r.get(5)?),
        highest_modseq: ModSeq(r.get::<_, i64>(6)? as u64),
        subscribed: r.get(7)?,
        noselect: r.get(8)?,
        first_recent_uid: Uid(r.get(9)?),
    })
}

pub fn list(conn: &Connection, account: AccountId) -> Result<Vec<Mailbox>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} WHERE account_id = ?1 ORDER BY name"
        ))
        .map_err(db("listing mailboxes"))?;
    let rows = stmt
        .query_map([account.0], mailbox_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing mailboxes"))?;
    Ok(rows)
}

pub fn get(conn: &Connection, account: AccountId, id: MailboxId) -> Result<Mailbox> {
    conn.prepare_cached(&format!(
        "SELECT {MAILBOX_COLUMNS} WHERE id = ?1 AND account_id = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![id.0, account.0], mailbox_row)
            .optional()
    })
    .map_err(db("looking up a mailbox"))?
    .ok_or_else(|| StoreError::not_found("mailbox", id))
}

pub fn by_name(conn: &Connection, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
    let Ok(name) = normalize_name(name) else {
        return Ok(None);
    };
    conn.prepare_cached(&format!(
        "SELECT {MAILBOX_COLUMNS} WHERE account_id = ?1 AND name = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![account.0, name], mailbox_row)
            .optional()
    })
    .map_err(db("looking up a mailbox"))
}

pub fn by_role(conn: &Connection, account: AccountId, role: Role) -> Result<Option<Mailbox>> {
    conn.prepare_cached(&format!(
        "SELECT {MAILBOX_COLUMNS} WHERE account_id = ?1 AND role = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![account.0, role.as_str()], mailbox_row)
            .optional()
    })
    .map_err(db("looking up a mailbox by role"))
}

/// A UIDVALIDITY never given out before in this store: the current time in
/// seconds, or one more than the last one if that is not larger. Using the
/// clock (not a counter from 1) keeps values distinct even from a previous
/// data directory the clients may still have cached.
fn next_uid_validity(conn: &Connection) -> Result<u32> {
    let last: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_uid_validity'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(db("reading the last UIDVALIDITY"))?;
    let now = (super::now() as u64 & 0xffff_ffff) as i64;
    let next = match last {
        Some(l) if l >= now => l + 1,
        _ => now,
    }
    .clamp(1, u32::MAX as i64);
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('last_uid_validity', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [next],
    )
    .map_err(db("recording UIDVALIDITY"))?;
    Ok(next as u32)
}

/// The names of the mailboxes above `name`, outermost first (`a`, `a/b`
/// for `a/b/c`), which CREATE makes too. Every backend's.
pub(crate) fn ancestors(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let segments: Vec<&str> = name.split(HIERARCHY_SEPARATOR).collect();
    for segment in &segments[..segments.len().saturating_sub(1)] {
        let parent = match out.last() {
            Some(above) => format!("{above}{HIERARCHY_SEPARATOR}{segment}"),
            None => segment.to_string(),
        };
        out.push(parent);
    }
    out
}

/// Creates `name` and any missing parents. Fails if `name` itself exists.
pub fn create(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    name: &str,
    role: Option<Role>,
) -> Result<Mailbox> {
    let name = normalize_name(name)?;
    if let Some(existing) = by_name(ctx.conn, account, &name)? {
        if !existing.noselect || role.is_some() {
            return Err(StoreError::exists("mailbox", &name));
        }
        // A name left behind by DELETE (it had children) becomes a
        // mailbox again (RFC 9051 §6.3.3 allows creating it).
        let modseq = ctx.modseq(account)?;
        ctx.conn
            .execute(
                "UPDATE mailbox SET noselect = 0 WHERE id = ?1",
                [existing.id.0],
            )
            .map_err(db("re-creating a mailbox"))?;
        journal::record(
            ctx.conn,
            account,
            modseq,
            &ChangeKind::MailboxUpdated {
                mailbox_id: existing.id,
            },
        )?;
        return get(ctx.conn, account, existing.id);
    }
    if let Some(role) = role {
        if by_role(ctx.conn, account, role)?.is_some() {
            return Err(StoreError::Invalid(format!(
                "the account already has a mailbox with role {}",
                role.as_str()
            )));
        }
    }
    // Parents first, so that the hierarchy never has holes.
    for parent in ancestors(&name) {
        if by_name(ctx.conn, account, &parent)?.is_none() {
            insert(ctx, account, &parent, None)?;
        }
    }
    insert(ctx, account, &name, role)
}

fn insert(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    name: &str,
    role: Option<Role>,
) -> Result<Mailbox> {
    let modseq = ctx.modseq(account)?;
    let uid_validity = next_uid_validity(ctx.conn)?;
    // CREATE does not subscribe; a name subscribed before (and kept
    // through a DELETE) is subscribed again.
    ctx.conn
        .prepare_cached(
            "INSERT INTO mailbox (account_id, name, role, uid_validity, highest_modseq, subscribed)
             VALUES (?1, ?2, ?3, ?4, ?5,
                     EXISTS (SELECT 1 FROM subscription WHERE account_id = ?1 AND name = ?2))",
        )
        .and_then(|mut s| {
            s.execute(params![
                account.0,
                name,
                role.map(Role::as_str),
                uid_validity,
                modseq.0 as i64
            ])
        })
        .map_err(db("creating a mailbox"))?;
    let id = MailboxId(ctx.conn.last_insert_rowid());
    journal::record(
        ctx.conn,
        account,
        modseq,
        &ChangeKind::MailboxCreated { mailbox_id: id },
    )?;
    get(ctx.conn, account, id)
}

fn children(conn: &Connection, account: AccountId, name: &str) -> Result<Vec<Mailbox>> {
    let prefix = format!("{name}{HIERARCHY_SEPARATOR}");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} WHERE account_id = ?1 AND substr(name, 1, length(?2)) = ?2 ORDER BY name"
        ))
        .map_err(db("listing child mailboxes"))?;
    let rows = stmt
        .query_map(params![account.0, prefix], mailbox_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing child mailboxes"))?;
    Ok(rows)
}

pub fn rename(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    id: MailboxId,
    new_name: &str,
) -> Result<()> {
    let mailbox = get(ctx.conn, account, id)?;
    let new_name = normalize_name(new_name)?;
    if new_name == mailbox.name {
        return Ok(());
    }
    if by_name(ctx.conn, account, &new_name)?.is_some() {
        return Err(StoreError::exists("mailbox", &new_name));
    }
    if new_name == "INBOX" || new_name.starts_with(&format!("{}/", mailbox.name)) {
        return Err(StoreError::Invalid(format!(
            "cannot rename {} to {new_name}",
            mailbox.name
        )));
    }
    if mailbox.name == "INBOX" {
        // RFC 9051 §6.3.6: renaming INBOX moves its messages to a new
        // mailbox and leaves INBOX in place, empty. Its children stay.
        let target = create(ctx, account, &new_name, None)?;
        let uids: Vec<Uid> = messages::list(ctx.conn, account, id, None)?
            .into_iter()
            .map(|m| m.uid)
            .collect();
        messages::copy(ctx, account, id, &uids, target.id, true)?;
        return Ok(());
    }
    // Missing parents of the new name come first.
    if let Some((parent, _)) = new_name.rsplit_once(HIERARCHY_SEPARATOR) {
        if by_name(ctx.conn, account, parent)?.is_none() {
            create(ctx, account, parent, None)?;
        }
    }
    let modseq = ctx.modseq(account)?;
    let mut renamed = vec![(mailbox.id, new_name.clone())];
    for child in children(ctx.conn, account, &mailbox.name)? {
        let suffix = &child.name[mailbox.name.len()..];
        renamed.push((child.id, format!("{new_name}{suffix}")));
    }
    for (mailbox_id, name) in renamed {
        if by_name(ctx.conn, account, &name)?.is_some() {
            return Err(StoreError::exists("mailbox", &name));
        }
        let old = get(ctx.conn, account, mailbox_id)?.name;
        ctx.conn
            .execute(
                "UPDATE mailbox SET name = ?1, highest_modseq = ?2 WHERE id = ?3",
                params![name, modseq.0 as i64, mailbox_id.0],
            )
            .map_err(db("renaming a mailbox"))?;
        // The subscription follows the mailbox, as Dovecot's does, and
        // the mailbox's flag mirrors the table under its new name.
        ctx.conn
            .execute(
                "UPDATE OR REPLACE subscription SET name = ?1 WHERE account_id = ?2 AND name = ?3",
                params![name, account.0, old],
            )
            .map_err(db("renaming a subscription"))?;
        ctx.conn
            .execute(
                "UPDATE mailbox SET subscribed =
                   EXISTS (SELECT 1 FROM subscription WHERE account_id = ?1 AND name = ?2)
                 WHERE id = ?3",
                params![account.0, name, mailbox_id.0],
            )
            .map_err(db("renaming a subscription"))?;
        journal::record(
            ctx.conn,
            account,
            modseq,
            &ChangeKind::MailboxRenamed { mailbox_id },
        )?;
    }
    Ok(())
}

pub fn delete(ctx: &mut WriteCtx<'_>, account: AccountId, id: MailboxId) -> Result<()> {
    let mailbox = get(ctx.conn, account, id)?;
    if mailbox.name == "INBOX" {
        return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
    }
    let has_children = !children(ctx.conn, account, &mailbox.name)?.is_empty();
    if has_children && mailbox.noselect {
        // RFC 9051 §6.3.4: an error for a \Noselect name with inferiors.
        return Err(StoreError::HasChildren { name: mailbox.name });
    }
    messages::expunge(
        ctx,
        account,
        id,
        ExpungeFilter::Uids(all_uids(ctx.conn, account, id)?),
    )?;
    let modseq = ctx.modseq(account)?;
    if has_children {
        // The children stay; the name stays as their \Noselect parent,
        // holding no messages (RFC 9051 §6.3.4).
        ctx.conn
            .execute("UPDATE mailbox SET noselect = 1 WHERE id = ?1", [id.0])
            .map_err(db("deleting a mailbox"))?;
        return journal::record(
            ctx.conn,
            account,
            modseq,
            &ChangeKind::MailboxUpdated { mailbox_id: id },
        );
    }
    ctx.conn
        .execute("DELETE FROM mailbox WHERE id = ?1", [id.0])
        .map_err(db("deleting a mailbox"))?;
    journal::record(
        ctx.conn,
        account,
        modseq,
        &ChangeKind::MailboxDeleted { mailbox_id: id },
    )?;
    Ok(())
}

fn all_uids(conn: &Connection, account: AccountId, id: MailboxId) -> Result<Vec<Uid>> {
    Ok(messages::list(conn, account, id, None)?
        .into_iter()
        .map(|m| m.uid)
        .collect())
}

pub fn subscribe(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    id: MailboxId,
    on: bool,
) -> Result<()> {
    let mailbox = get(ctx.conn, account, id)?;
    set_subscription_row(ctx.conn, account, &mailbox.name, on)?;
    if mailbox.subscribed == on {
        return Ok(());
    }
    // A property of the mailbox changed: JMAP's Mailbox state must move.
    let modseq = ctx.modseq(account)?;
    ctx.conn
        .execute(
            "UPDATE mailbox SET subscribed = ?1 WHERE id = ?2",
            params![on, id.0],
        )
        .map_err(db("changing a subscription"))?;
    journal::record(
        ctx.conn,
        account,
        modseq,
        &ChangeKind::MailboxUpdated { mailbox_id: id },
    )
}

pub(super) fn set_subscription_row(
    conn: &Connection,
    account: AccountId,
    name: &str,
    on: bool,
) -> Result<()> {
    let sql = if on {
        "INSERT OR IGNORE INTO subscription (account_id, name) VALUES (?1, ?2)"
    } else {
        "DELETE FROM subscription WHERE account_id = ?1 AND name = ?2"
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params![account.0, name]))
        .map_err(db("changing a subscription"))?;
    Ok(())
}

/// Subscribes or unsubscribes a name, whether or not a mailbox has it
/// (UNSUBSCRIBE of a deleted mailbox's name). False when nothing changed.
pub fn set_subscription(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    name: &str,
    on: bool,
) -> Result<bool> {
    let name = normalize_name(name)?;
    if let Some(mailbox) = by_name(ctx.conn, account, &name)? {
        let changed = mailbox.subscribed != on;
        subscribe(ctx, account, mailbox.id, on)?;
        return Ok(changed);
    }
    let had = subscriptions(ctx.conn, account)?.contains(&name);
    set_subscription_row(ctx.conn, account, &name, on)?;
    Ok(had != on)
}

/// The account's subscribed names, mailboxes or not, in name order.
pub fn subscriptions(conn: &Connection, account: AccountId) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM subscription WHERE account_id = ?1 ORDER BY name")
        .map_err(db("listing subscriptions"))?;
    let rows = stmt
        .query_map([account.0], |r| r.get(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(db("listing subscriptions"))?;
    Ok(rows)
}

pub fn counts(conn: &Connection, account: AccountId, id: MailboxId) -> Result<MailboxCounts> {
    get(conn, account, id)?;
    conn.prepare_cached(
        "SELECT count(*),
                coalesce(sum(instr(lower(e.keywords), ' \\seen ') = 0), 0),
                coalesce(sum(instr(lower(e.keywords), ' \\deleted ') > 0), 0),
                coalesce(sum(e.size), 0),
                coalesce(sum(m.uid >= b.first_recent_uid), 0)
           FROM mailbox b JOIN mailbox_email m ON m.mailbox_id = b.id
           JOIN email e ON e.id = m.email_id
          WHERE b.id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([id.0], |r| {
            Ok(MailboxCounts {
                messages: r.get(0)?,
                unseen: r.get(1)?,
                deleted: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                recent: r.get(4)?,
            })
        })
    })
    .map_err(db("counting a mailbox"))
}

/// Distinct threads in the mailbox, and those with an unseen email there.
pub fn thread_counts(conn: &Connection, account: AccountId, id: MailboxId) -> Result<(u32, u32)> {
    get(conn, account, id)?;
    conn.prepare_cached(
        "SELECT count(DISTINCT e.thread_id),
                count(DISTINCT CASE WHEN instr(lower(e.keywords), ' \\seen ') = 0 THEN e.thread_id END)
           FROM mailbox_email m JOIN email e ON e.id = m.email_id
          WHERE m.mailbox_id = ?1",
    )
    .and_then(|mut s| s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?))))
    .map_err(db("counting a mailbox's threads"))
}

/// `first_recent_uid` rises to `upto` (never falls): IMAP sessions have
/// claimed the messages below it as \Recent (RFC 3501 §2.3.2). No
/// journal: \Recent is not a change other sessions are told of.
pub fn mark_recent_claimed(
    conn: &Connection,
    account: AccountId,
    id: MailboxId,
    upto: Uid,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE mailbox SET first_recent_uid = max(first_recent_uid, ?1)
          WHERE id = ?2 AND account_id = ?3",
    )
    .and_then(|mut s| s.execute(params![upto.0, id.0, account.0]))
    .map_err(db("recording recent messages as claimed"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_and_inbox_canonicalised() {
        assert_eq!(normalize_name("inbox").unwrap(), "INBOX");
        assert_eq!(normalize_name("Inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(normalize_name("Archive/2024").unwrap(), "Archive/2024");
        assert_eq!(normalize_name("Inboxes").unwrap(), "Inboxes");
        for bad in ["", "/a", "a/", "a//b", "a\u{0}b", "x\r\ny"] {
            assert!(normalize_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn ancestors_are_listed_outermost_first() {
        assert_eq!(ancestors("a/b/c"), ["a", "a/b"]);
        assert!(ancestors("a").is_empty());
    }
}
