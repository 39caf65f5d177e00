//! The spam filter's memory in SQLite (schema v16): each account's
//! Bayesian classifier and greylisting's triplets.
//!
//! Training starts inside the Store operations themselves, so every
//! protocol (IMAP now; JMAP, the webmail and ActiveSync later) trains the
//! same way: a MOVE or COPY into the Junk mailbox, or a new `$Junk` /
//! `Junk` keyword, asks for spam; out of Junk (not into Trash), or a new
//! `$NotJunk` / `NonJunk` keyword, asks for not spam. The request is a row
//! in `bayes_pending`, written in the same transaction; the trainer
//! (`tern_mail::spam::Trainer`) reads the message, tokenises it off the
//! write path and calls `bayes_train`.

use super::{db, SqliteStore};
use crate::error::Result;
use crate::store::SpamStore;
use crate::types::*;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

/// Keywords clients set for "this is spam" (RFC 5788's `$Junk`, and
/// Thunderbird's `Junk`) and "this is not".
const SPAM_KEYWORDS: &[&str] = &["$junk", "junk"];
const HAM_KEYWORDS: &[&str] = &["$notjunk", "nonjunk"];

/// Asks for `email` to be trained as spam or not.
pub(super) fn request_training(
    conn: &Connection,
    account: AccountId,
    email: EmailId,
    spam: bool,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO bayes_pending (account_id, email_id, spam) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut s| s.execute(params![account.0, email.0, spam]))
    .map_err(db("asking for spam training"))?;
    Ok(())
}

/// A keyword change: a verdict when a spam or not-spam keyword was added.
pub(super) fn keywords_changed(
    conn: &Connection,
    account: AccountId,
    email: EmailId,
    old: &[String],
    new: &[String],
) -> Result<()> {
    match verdict_of_keywords(old, new) {
        Some(spam) => request_training(conn, account, email, spam),
        None => Ok(()),
    }
}

/// The verdict a keyword change gives (every backend's): not spam when a
/// not-spam keyword was added, else spam when a spam keyword was.
pub(crate) fn verdict_of_keywords(old: &[String], new: &[String]) -> Option<bool> {
    let added = |set: &[&str]| {
        new.iter().any(|k| {
            set.iter().any(|s| k.eq_ignore_ascii_case(s))
                && !old.iter().any(|o| o.eq_ignore_ascii_case(k))
        })
    };
    if added(HAM_KEYWORDS) {
        Some(false)
    } else if added(SPAM_KEYWORDS) {
        Some(true)
    } else {
        None
    }
}

/// A move or copy between mailboxes: into Junk is spam, out of Junk (but
/// not into Trash: deleting spam says nothing new) is not.
pub(crate) fn verdict_of_move(from: Option<Role>, to: Option<Role>) -> Option<bool> {
    match (from, to) {
        (Some(Role::Junk), Some(Role::Junk)) => None,
        (_, Some(Role::Junk)) => Some(true),
        (Some(Role::Junk), Some(Role::Trash)) => None,
        (Some(Role::Junk), _) => Some(false),
        _ => None,
    }
}

/// An email put in another set of mailboxes (JMAP `mailboxIds`), given
/// the roles it was in and will be in: into Junk is spam, out of Junk (but
/// not into Trash) is not.
pub(crate) fn verdict_of_reassignment(was: &[Option<Role>], will: &[Option<Role>]) -> Option<bool> {
    let junk = |roles: &[Option<Role>]| roles.contains(&Some(Role::Junk));
    match (junk(was), junk(will)) {
        (false, true) => Some(true),
        (true, false) if !will.contains(&Some(Role::Trash)) => Some(false),
        _ => None,
    }
}

fn trained_counts(conn: &Connection, account: AccountId) -> Result<(u64, u64)> {
    let mut counts = (0, 0);
    let mut stmt = conn
        .prepare_cached(
            "SELECT spam, count(*) FROM bayes_trained WHERE account_id = ?1 GROUP BY spam",
        )
        .map_err(db("counting trained messages"))?;
    let rows = stmt
        .query_map([account.0], |r| {
            Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(db("counting trained messages"))?;
    for row in rows {
        let (spam, n) = row.map_err(db("counting trained messages"))?;
        if spam {
            counts.0 = n as u64;
        } else {
            counts.1 = n as u64;
        }
    }
    Ok(counts)
}

/// Adds `delta` (+1 or -1) to the spam or ham count of each token.
fn count_tokens(
    conn: &Connection,
    account: AccountId,
    tokens: &[u64],
    spam: bool,
    delta: i64,
) -> Result<()> {
    let (ds, dh) = if spam { (delta, 0) } else { (0, delta) };
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO bayes_token (account_id, token, spam, ham) VALUES (?1, ?2, max(?3, 0), max(?4, 0))
             ON CONFLICT (account_id, token) DO UPDATE
             SET spam = max(spam + ?3, 0), ham = max(ham + ?4, 0)",
        )
        .map_err(db("counting tokens"))?;
    for &token in tokens {
        upsert
            .execute(params![account.0, token as i64, ds, dh])
            .map_err(db("counting tokens"))?;
    }
    if delta < 0 {
        conn.prepare_cached(
            "DELETE FROM bayes_token WHERE account_id = ?1 AND spam = 0 AND ham = 0",
        )
        .and_then(|mut s| s.execute([account.0]))
        .map_err(db("pruning tokens"))?;
    }
    Ok(())
}

fn train(
    conn: &Connection,
    request: &TrainRequest,
    tokens: Option<Vec<u64>>,
    agreed: bool,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM bayes_pending WHERE seq = ?1")
        .and_then(|mut s| s.execute([request.seq]))
        .map_err(db("taking a training request"))?;
    let Some(mut tokens) = tokens else {
        return Ok(());
    };
    tokens.sort_unstable();
    tokens.dedup();
    let account = request.account_id;
    let before: Option<bool> = conn
        .prepare_cached("SELECT spam FROM bayes_trained WHERE account_id = ?1 AND email_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![account.0, request.email_id.0], |r| r.get(0))
                .optional()
        })
        .map_err(db("reading a training"))?;
    if before == Some(request.spam) {
        return Ok(());
    }
    if let Some(old) = before {
        count_tokens(conn, account, &tokens, old, -1)?;
    }
    count_tokens(conn, account, &tokens, request.spam, 1)?;
    conn.prepare_cached(
        "INSERT INTO bayes_trained (account_id, email_id, spam, agreed, trained_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account_id, email_id) DO UPDATE
         SET spam = excluded.spam, agreed = excluded.agreed, trained_at = excluded.trained_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            account.0,
            request.email_id.0,
            request.spam,
            agreed,
            super::now()
        ])
    })
    .map_err(db("recording a training"))?;
    Ok(())
}

fn greylist(
    conn: &Connection,
    (network, sender, recipient): (&str, &str, &str),
    now: i64,
    delay: i64,
    ttl: i64,
) -> Result<GreylistVerdict> {
    let known: Option<(i64, Option<i64>)> = conn
        .prepare_cached(
            "SELECT first_seen, passed_at FROM greylist
             WHERE network = ?1 AND sender = ?2 AND recipient = ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![network, sender, recipient], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(db("reading greylisting"))?;
    match known {
        // Passed before and not forgotten: pass again, and remember longer.
        Some((_, Some(passed))) if now - passed <= ttl => {}
        // Retried after the delay (and not so late it was forgotten).
        Some((first, _)) if now - first >= delay && now - first <= ttl => {}
        Some((first, None)) if now - first < delay => {
            return Ok(GreylistVerdict::Wait(delay - (now - first)))
        }
        // Unknown, or forgotten: start again.
        _ => {
            conn.prepare_cached(
                "INSERT INTO greylist (network, sender, recipient, first_seen, passed_at)
                 VALUES (?1, ?2, ?3, ?4, NULL)
                 ON CONFLICT (network, sender, recipient) DO UPDATE
                 SET first_seen = excluded.first_seen, passed_at = NULL",
            )
            .and_then(|mut s| s.execute(params![network, sender, recipient, now]))
            .map_err(db("recording greylisting"))?;
            return Ok(GreylistVerdict::Wait(delay));
        }
    }
    conn.prepare_cached(
        "UPDATE greylist SET passed_at = ?4 WHERE network = ?1 AND sender = ?2 AND recipient = ?3",
    )
    .and_then(|mut s| s.execute(params![network, sender, recipient, now]))
    .map_err(db("recording greylisting"))?;
    // Forget triplets nobody has used for twice the time-to-live, a few at
    // a time, so the table does not grow for ever.
    conn.prepare_cached(
        "DELETE FROM greylist WHERE (network, sender, recipient) IN
         (SELECT network, sender, recipient FROM greylist
          WHERE coalesce(passed_at, first_seen) < ?1 LIMIT 100)",
    )
    .and_then(|mut s| s.execute([now - 2 * ttl]))
    .map_err(db("forgetting greylisting"))?;
    Ok(GreylistVerdict::Pass)
}

#[async_trait]
impl SpamStore for SqliteStore {
    async fn bayes_counts(&self, account: AccountId, tokens: &[u64]) -> Result<BayesCounts> {
        let tokens = tokens.to_vec();
        self.read(move |conn| {
            let (spam_messages, ham_messages) = trained_counts(conn, account)?;
            let mut counts = BayesCounts {
                spam_messages,
                ham_messages,
                tokens: Vec::new(),
            };
            if spam_messages == 0 && ham_messages == 0 {
                return Ok(counts);
            }
            let mut stmt = conn
                .prepare_cached(
                    "SELECT spam, ham FROM bayes_token WHERE account_id = ?1 AND token = ?2",
                )
                .map_err(db("reading tokens"))?;
            for token in tokens {
                let found: Option<(i64, i64)> = stmt
                    .query_row(params![account.0, token as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                    .map_err(db("reading tokens"))?;
                if let Some((s, h)) = found {
                    counts.tokens.push((token, s as u64, h as u64));
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn bayes_pending(&self, limit: usize) -> Result<Vec<TrainRequest>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, account_id, email_id, spam FROM bayes_pending ORDER BY seq LIMIT ?1",
                )
                .map_err(db("reading training requests"))?;
            let rows = stmt
                .query_map([limit as i64], |r| {
                    Ok(TrainRequest {
                        seq: r.get(0)?,
                        account_id: AccountId(r.get(1)?),
                        email_id: EmailId(r.get(2)?),
                        spam: r.get(3)?,
                    })
                })
                .map_err(db("reading training requests"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db("reading training requests"))
        })
        .await
    }

    async fn bayes_train(
        &self,
        request: &TrainRequest,
        tokens: Option<Vec<u64>>,
        agreed: bool,
    ) -> Result<()> {
        let request = request.clone();
        self.write(move |ctx| train(ctx.conn, &request, tokens, agreed))
            .await
    }

    async fn spam_stats(&self, account: AccountId) -> Result<SpamStats> {
        self.read(move |conn| {
            let (spam_messages, ham_messages) = trained_counts(conn, account)?;
            let tokens: i64 = conn
                .prepare_cached("SELECT count(*) FROM bayes_token WHERE account_id = ?1")
                .and_then(|mut s| s.query_row([account.0], |r| r.get(0)))
                .map_err(db("counting tokens"))?;
            let (recent_trained, recent_agreed): (i64, i64) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(agreed), 0) FROM bayes_trained
                     WHERE account_id = ?1 AND trained_at >= ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![account.0, super::now() - 30 * 86_400], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                })
                .map_err(db("counting trainings"))?;
            Ok(SpamStats {
                spam_messages,
                ham_messages,
                tokens: tokens as u64,
                recent_trained: recent_trained as u64,
                recent_agreed: recent_agreed as u64,
            })
        })
        .await
    }

    async fn greylist(
        &self,
        triplet: (&str, &str, &str),
        now: i64,
        delay: i64,
        ttl: i64,
    ) -> Result<GreylistVerdict> {
        let (n, s, r) = (
            triplet.0.to_string(),
            triplet.1.to_string(),
            triplet.2.to_string(),
        );
        self.write(move |ctx| greylist(ctx.conn, (&n, &s, &r), now, delay, ttl))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_that_are_verdicts() {
        use Role::*;
        assert_eq!(verdict_of_move(Some(Inbox), Some(Junk)), Some(true));
        assert_eq!(verdict_of_move(None, Some(Junk)), Some(true));
        assert_eq!(verdict_of_move(Some(Junk), Some(Inbox)), Some(false));
        assert_eq!(verdict_of_move(Some(Junk), None), Some(false));
        assert_eq!(verdict_of_move(Some(Junk), Some(Trash)), None);
        assert_eq!(verdict_of_move(Some(Junk), Some(Junk)), None);
        assert_eq!(verdict_of_move(Some(Inbox), Some(Archive)), None);
    }
}
