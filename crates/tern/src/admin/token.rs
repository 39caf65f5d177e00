//! `tern token`: API tokens for programs that send `Authorization: Bearer`
//! instead of a password (JMAP clients such as jmap-jam).

use super::Output;
use anyhow::{bail, Result};
use serde_json::json;
use tern_store::Store;

/// `tern token create ADDRESS`: an API token for programs (JMAP clients
/// that send `Authorization: Bearer`), printed once.
pub async fn token_create(store: &dyn Store, address: &str, days: u32, out: Output) -> Result<()> {
    let Some(account) = store.account_by_address(address).await? else {
        bail!("no account {address}; `tern account list` shows them");
    };
    let token = tern_mail::tokens::create(store, &account, days).await?;
    match out {
        Output::Json => super::commands::print_json(json!({
            "account": account.address, "token": token, "days": days,
        })),
        Output::Human => {
            println!("{token}");
            eprintln!(
                "an API token for {}, valid {days} days; it is not shown again (send it as `Authorization: Bearer ...`)",
                account.address
            );
        }
    }
    Ok(())
}

/// `tern token revoke ADDRESS TOKEN`.
pub async fn token_revoke(
    store: &dyn Store,
    address: &str,
    token: &str,
    out: Output,
) -> Result<()> {
    let Some(account) = store.account_by_address(address).await? else {
        bail!("no account {address}; `tern account list` shows them");
    };
    if !tern_mail::tokens::revoke(store, &account, token).await? {
        bail!("that is not a token of {address}");
    }
    match out {
        Output::Json => {
            super::commands::print_json(json!({ "account": account.address, "revoked": true }))
        }
        Output::Human => println!("revoked"),
    }
    Ok(())
}
