//! `Identity/get` and `Identity/changes` (RFC 8621 §6): the addresses an
//! account sends as — its own, and every alias it may send as by the
//! same rule submission applies (`Mail::may_send_as`).

use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The identity of an account's own address.
pub fn identity_id(account: tern_store::AccountId) -> String {
    format!("i{}", account.0)
}

/// The identity of an alias: stable for as long as the alias exists.
fn alias_identity_id(account: tern_store::AccountId, address: &str) -> String {
    let digest = Sha256::digest(address.to_ascii_lowercase().as_bytes());
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("i{}-{short}", account.0)
}

/// The account's identities, as (id, address), its own first.
pub async fn identities(cx: &Call<'_>) -> Result<Vec<(String, String)>, Value> {
    let fail = |e: tern_store::StoreError| method_error("serverFail", e.to_string());
    let store = cx.server.mail.store();
    let account = store.account(cx.account).await.map_err(fail)?;
    let mut out = vec![(identity_id(account.id), account.address.clone())];
    let mut aliases = store.list_aliases().await.map_err(fail)?;
    aliases.sort_by(|a, b| a.address.cmp(&b.address));
    for alias in aliases {
        // A catch-all (`@domain`) is not an address to send from.
        if alias.address.starts_with('@') {
            continue;
        }
        if cx
            .server
            .mail
            .may_send_as(&account, &alias.address)
            .await
            .map_err(fail)?
        {
            out.push((alias_identity_id(account.id, &alias.address), alias.address));
        }
    }
    Ok(out)
}

/// The identities' state: it moves when the list does.
fn state(list: &[(String, String)]) -> String {
    let joined: Vec<&str> = list.iter().map(|(_, a)| a.as_str()).collect();
    let digest = Sha256::digest(joined.join("\n").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn identity_get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let all = identities(cx).await?;
    let state = state(&all);
    let (chosen, not_found) = super::pick(&args, all, |(id, _)| id.clone())?;
    let list: Vec<Value> = chosen
        .iter()
        .map(|(id, address)| identity(id, address))
        .collect();
    Ok(json!({
        "accountId": super::account_id(account),
        "state": state,
        "list": list,
        "notFound": not_found,
    }))
}

fn identity(id: &str, address: &str) -> Value {
    // Neither the account's own address nor an alias (the administrator's)
    // is the user's to delete.
    json!({
        "id": id, "name": "", "email": address, "replyTo": null, "bcc": null,
        "textSignature": "", "htmlSignature": "", "mayDelete": false,
    })
}

/// `Identity/changes`: from the current state nothing changed; from an
/// older one the client gets the whole list again (the server keeps no
/// history of aliases).
pub async fn identity_changes(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let since = super::required_str(&args, "sinceState")?;
    let current = state(&identities(cx).await?);
    if since != current {
        return Err(method_error(
            "cannotCalculateChanges",
            "the identities changed; get them again",
        ));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "oldState": since,
        "newState": current,
        "hasMoreChanges": false,
        "created": [],
        "updated": [],
        "destroyed": [],
    }))
}
