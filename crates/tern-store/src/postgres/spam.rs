//! The spam filter's memory in PostgreSQL: each account's Bayesian
//! classifier and greylisting's triplets, with the SQLite backend's
//! semantics (`sqlite/spam.rs` describes the model: training requests are
//! rows in `bayes_pending` written by the Store operations that carry a
//! user's verdict; the trainer reads them and calls `bayes_train`).
//!
//! Several nodes run a trainer: a request is taken by deleting its row, so
//! only the node whose DELETE removed it counts the tokens; trainings of
//! one account take its row's lock so "what was this email trained as" is
//! read and changed as one step, and `bayes_trained.seq` keeps an older
//! verdict taken late by one node from overriding a newer one another
//! node trained first. Greylisting locks the triplet's row, so two nodes
//! seeing the same retry agree.

use super::{now, PgStore, Tx};
use crate::error::Result;
use crate::store::SpamStore;
use crate::types::*;
use async_trait::async_trait;
use std::collections::HashMap;

/// Asks for `email` to be trained as spam or not (written by the Store
/// operations themselves, so every protocol trains alike).
pub async fn request_training(
    tx: &Tx<'_>,
    account: AccountId,
    email: EmailId,
    spam: bool,
) -> Result<()> {
    tx.execute(
        "INSERT INTO bayes_pending (account_id, email_id, spam) VALUES ($1, $2, $3)",
        &[&account.0, &email.0, &spam],
    )
    .await?;
    Ok(())
}

/// A keyword change: a verdict when a spam or not-spam keyword was added.
pub async fn keywords_changed(
    tx: &Tx<'_>,
    account: AccountId,
    email: EmailId,
    old: &[String],
    new: &[String],
) -> Result<()> {
    match crate::sqlite::spam::verdict_of_keywords(old, new) {
        Some(spam) => request_training(tx, account, email, spam).await,
        None => Ok(()),
    }
}

/// Messages trained as spam and as not spam.
async fn trained_counts(tx: &Tx<'_>, account: AccountId) -> Result<(u64, u64)> {
    let row = tx
        .query_one(
            "SELECT count(*) FILTER (WHERE spam), count(*) FILTER (WHERE NOT spam)
               FROM bayes_trained WHERE account_id = $1",
            &[&account.0],
        )
        .await?;
    Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
}

/// Adds `delta` (+1 or -1) to the spam or ham count of each token (sorted
/// and distinct: one statement may change a row only once, and rows are
/// locked in one order).
async fn count_tokens(
    tx: &Tx<'_>,
    account: AccountId,
    tokens: &[i64],
    spam: bool,
    delta: i64,
) -> Result<()> {
    let (ds, dh) = if spam { (delta, 0) } else { (0, delta) };
    tx.execute(
        "INSERT INTO bayes_token (account_id, token, spam, ham)
         SELECT $1, t, greatest($3::bigint, 0), greatest($4::bigint, 0)
           FROM unnest($2::bigint[]) AS t
         ON CONFLICT (account_id, token) DO UPDATE
         SET spam = greatest(bayes_token.spam + $3, 0), ham = greatest(bayes_token.ham + $4, 0)",
        &[&account.0, &tokens, &ds, &dh],
    )
    .await?;
    if delta < 0 {
        tx.execute(
            "DELETE FROM bayes_token WHERE account_id = $1 AND token = ANY($2)
                AND spam = 0 AND ham = 0",
            &[&account.0, &tokens],
        )
        .await?;
    }
    Ok(())
}

async fn train(
    tx: &mut Tx<'_>,
    request: &TrainRequest,
    tokens: Option<&[u64]>,
    agreed: bool,
) -> Result<()> {
    let account = request.account_id;
    // The account's row lock first (not its modseq: training is no change
    // a client sees): reading what the email was trained as and changing
    // it is one step against another node's trainer.
    let exists = tx
        .query_opt(
            "SELECT 1 FROM account WHERE id = $1 FOR NO KEY UPDATE",
            &[&account.0],
        )
        .await?
        .is_some();
    let taken = tx
        .execute("DELETE FROM bayes_pending WHERE seq = $1", &[&request.seq])
        .await?;
    // Another node's trainer took it first (both read the same pending
    // rows) and counts it; a removed account has nothing left to train.
    let (true, true, Some(tokens)) = (taken > 0, exists, tokens) else {
        return Ok(());
    };
    let mut tokens: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    tokens.sort_unstable();
    tokens.dedup();
    let before: Option<(bool, i64)> = tx
        .query_opt(
            "SELECT spam, seq FROM bayes_trained WHERE account_id = $1 AND email_id = $2",
            &[&account.0, &request.email_id.0],
        )
        .await?
        .map(|r| (r.get(0), r.get(1)));
    match before {
        // A later verdict on this email was trained already (by another
        // node): this older one must not override it.
        Some((_, seq)) if seq > request.seq => return Ok(()),
        Some((spam, _)) if spam == request.spam => {
            tx.execute(
                "UPDATE bayes_trained SET seq = $3 WHERE account_id = $1 AND email_id = $2",
                &[&account.0, &request.email_id.0, &request.seq],
            )
            .await?;
            return Ok(());
        }
        Some((old, _)) => count_tokens(tx, account, &tokens, old, -1).await?,
        None => {}
    }
    count_tokens(tx, account, &tokens, request.spam, 1).await?;
    tx.execute(
        "INSERT INTO bayes_trained (account_id, email_id, spam, agreed, trained_at, seq)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account_id, email_id) DO UPDATE
         SET spam = excluded.spam, agreed = excluded.agreed, trained_at = excluded.trained_at,
             seq = excluded.seq",
        &[
            &account.0,
            &request.email_id.0,
            &request.spam,
            &agreed,
            &now(),
            &request.seq,
        ],
    )
    .await?;
    Ok(())
}

async fn bayes_counts(tx: &Tx<'_>, account: AccountId, tokens: &[u64]) -> Result<BayesCounts> {
    let (spam_messages, ham_messages) = trained_counts(tx, account).await?;
    let mut counts = BayesCounts {
        spam_messages,
        ham_messages,
        tokens: Vec::new(),
    };
    if spam_messages == 0 && ham_messages == 0 {
        return Ok(counts);
    }
    let wanted: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let found: HashMap<i64, (i64, i64)> = tx
        .query(
            "SELECT token, spam, ham FROM bayes_token WHERE account_id = $1 AND token = ANY($2)",
            &[&account.0, &wanted],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    // In the order asked, as SQLite answers.
    for &token in tokens {
        if let Some(&(s, h)) = found.get(&(token as i64)) {
            counts
                .tokens
                .push((token, s.max(0) as u64, h.max(0) as u64));
        }
    }
    Ok(counts)
}

async fn bayes_pending(tx: &Tx<'_>, limit: usize) -> Result<Vec<TrainRequest>> {
    let rows = tx
        .query(
            "SELECT seq, account_id, email_id, spam FROM bayes_pending ORDER BY seq LIMIT $1",
            &[&(limit.min(i64::MAX as usize) as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TrainRequest {
            seq: r.get(0),
            account_id: AccountId(r.get(1)),
            email_id: EmailId(r.get(2)),
            spam: r.get(3),
        })
        .collect())
}

/// How far back `recent_trained` and `recent_agreed` look, as in SQLite.
const RECENT: i64 = 30 * 86_400;

async fn spam_stats(tx: &Tx<'_>, account: AccountId) -> Result<SpamStats> {
    let (spam_messages, ham_messages) = trained_counts(tx, account).await?;
    let tokens: i64 = tx
        .query_one(
            "SELECT count(*) FROM bayes_token WHERE account_id = $1",
            &[&account.0],
        )
        .await?
        .get(0);
    let recent = tx
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE agreed) FROM bayes_trained
              WHERE account_id = $1 AND trained_at >= $2",
            &[&account.0, &(now() - RECENT)],
        )
        .await?;
    Ok(SpamStats {
        spam_messages,
        ham_messages,
        tokens: tokens as u64,
        recent_trained: recent.get::<_, i64>(0) as u64,
        recent_agreed: recent.get::<_, i64>(1) as u64,
    })
}

/// Greylisting's triplets older than twice the time-to-live forgotten per
/// passing check: a few at a time, so the table does not grow for ever
/// and no check waits long.
const FORGET_STEP: i64 = 100;

async fn greylist(
    tx: &mut Tx<'_>,
    (network, sender, recipient): (&str, &str, &str),
    now: i64,
    delay: i64,
    ttl: i64,
) -> Result<GreylistVerdict> {
    // FOR UPDATE: a retry seen by two nodes at once is judged once.
    let known: Option<(i64, Option<i64>)> = tx
        .query_opt(
            "SELECT first_seen, passed_at FROM greylist
              WHERE network = $1 AND sender = $2 AND recipient = $3 FOR UPDATE",
            &[&network, &sender, &recipient],
        )
        .await?
        .map(|r| (r.get(0), r.get(1)));
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
            tx.execute(
                "INSERT INTO greylist (network, sender, recipient, first_seen, passed_at)
                 VALUES ($1, $2, $3, $4, NULL)
                 ON CONFLICT (network, sender, recipient) DO UPDATE
                 SET first_seen = excluded.first_seen, passed_at = NULL",
                &[&network, &sender, &recipient, &now],
            )
            .await?;
            return Ok(GreylistVerdict::Wait(delay));
        }
    }
    tx.execute(
        "UPDATE greylist SET passed_at = $4 WHERE network = $1 AND sender = $2 AND recipient = $3",
        &[&network, &sender, &recipient, &now],
    )
    .await?;
    // SKIP LOCKED: rows another node is judging right now are left for
    // a later sweep instead of waited for.
    tx.execute(
        "DELETE FROM greylist WHERE (network, sender, recipient) IN
         (SELECT network, sender, recipient FROM greylist
           WHERE coalesce(passed_at, first_seen) < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&(now - 2 * ttl), &FORGET_STEP],
    )
    .await?;
    Ok(GreylistVerdict::Pass)
}

#[async_trait]
impl SpamStore for PgStore {
    async fn bayes_counts(&self, account: AccountId, tokens: &[u64]) -> Result<BayesCounts> {
        self.read(move |tx| Box::pin(bayes_counts(tx, account, tokens)))
            .await
    }

    async fn bayes_pending(&self, limit: usize) -> Result<Vec<TrainRequest>> {
        self.read(move |tx| Box::pin(bayes_pending(tx, limit)))
            .await
    }

    async fn bayes_train(
        &self,
        request: &TrainRequest,
        tokens: Option<Vec<u64>>,
        agreed: bool,
    ) -> Result<()> {
        let tokens = &tokens;
        self.write(move |tx| Box::pin(train(tx, request, tokens.as_deref(), agreed)))
            .await
    }

    async fn spam_stats(&self, account: AccountId) -> Result<SpamStats> {
        self.read(move |tx| Box::pin(spam_stats(tx, account))).await
    }

    async fn greylist(
        &self,
        triplet: (&str, &str, &str),
        now: i64,
        delay: i64,
        ttl: i64,
    ) -> Result<GreylistVerdict> {
        self.write(move |tx| Box::pin(greylist(tx, triplet, now, delay, ttl)))
            .await
    }
}
