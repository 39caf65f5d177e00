//! `tern spam stats ACCOUNT`: what an account's spam classifier has
//! learned, and how often the filter's verdict matched the user's when
//! they corrected it (moves into and out of Junk, `$Junk`/`$NotJunk`).

use super::Output;
use anyhow::{bail, Result};
use serde_json::json;
use tern_store::Store;

pub async fn spam_stats(store: &dyn Store, address: &str, out: Output) -> Result<()> {
    let Some(account) = store.account_by_address(address).await? else {
        bail!("no account {address}; `tern account list` shows them");
    };
    let stats = store.spam_stats(account.id).await?;
    let ready = stats.spam_messages >= tern_mail::spam::bayes::MIN_TRAINED
        && stats.ham_messages >= tern_mail::spam::bayes::MIN_TRAINED;
    let accuracy = (stats.recent_trained > 0)
        .then(|| stats.recent_agreed as f64 / stats.recent_trained as f64);
    match out {
        Output::Json => super::commands::print_json(json!({
            "account": account.address,
            "spam_messages": stats.spam_messages,
            "ham_messages": stats.ham_messages,
            "tokens": stats.tokens,
            "classifying": ready,
            "recent_trained": stats.recent_trained,
            "recent_agreed": stats.recent_agreed,
            "accuracy": accuracy,
        })),
        Output::Human => {
            println!("{}:", account.address);
            println!(
                "  trained: {} spam, {} not spam ({} distinct tokens)",
                stats.spam_messages, stats.ham_messages, stats.tokens
            );
            if ready {
                println!("  the classifier is scoring this account's mail");
            } else {
                println!(
                    "  the classifier starts once {} of each are trained (move spam into Junk, mail out of it)",
                    tern_mail::spam::bayes::MIN_TRAINED
                );
            }
            match accuracy {
                Some(a) => println!(
                    "  last 30 days: {} verdicts by the user, {} as the filter had judged ({:.0}%)",
                    stats.recent_trained,
                    stats.recent_agreed,
                    a * 100.0
                ),
                None => println!("  last 30 days: no verdicts by the user"),
            }
        }
    }
    Ok(())
}
