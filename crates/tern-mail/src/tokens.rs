//! API tokens: a secret a program sends as `Authorization: Bearer` (JMAP
//! clients such as jmap-jam take no password) instead of the account's
//! password. `tern token create ADDRESS` makes one; the webmail will make
//! them at login. The token is `tern_<account id>_<secret>`; the Store
//! keeps only the SHA-256 of the secret, with its expiry, as an account
//! setting — so a leaked database gives no usable token.

use crate::Mail;
use base64::Engine;
use sha2::{Digest, Sha256};
use tern_store::{Account, AccountId, Store, StoreError};

const PREFIX: &str = "api-token:";

fn setting_name(secret: &[u8]) -> String {
    format!("{PREFIX}{}", hex::encode(Sha256::digest(secret)))
}

/// The account and secret a token names.
fn parse(token: &str) -> Option<(AccountId, Vec<u8>)> {
    let rest = token.strip_prefix("tern_")?;
    let (id, secret) = rest.split_once('_')?;
    let id = AccountId(id.parse().ok()?);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .ok()?;
    (secret.len() == 32).then_some((id, secret))
}

/// A new token for `account`, valid for `days`.
pub async fn create(store: &dyn Store, account: &Account, days: u32) -> Result<String, StoreError> {
    // Every webmail login makes one: the expired ones go first, so they
    // do not pile up.
    let now = crate::headers::now();
    for (name, expires) in store
        .account_settings_with_prefix(account.id, PREFIX)
        .await?
    {
        if expires.parse::<i64>().map_or(true, |e| e <= now) {
            store.set_account_setting(account.id, &name, None).await?;
        }
    }
    let secret = tern_core::password::random_bytes(32);
    let expires_at = now + i64::from(days) * 86_400;
    store
        .set_account_setting(
            account.id,
            &setting_name(&secret),
            Some(&expires_at.to_string()),
        )
        .await?;
    Ok(format!(
        "tern_{}_{}",
        account.id.0,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret)
    ))
}

/// Revokes `token`; false if it was not one of the account's.
pub async fn revoke(store: &dyn Store, account: &Account, token: &str) -> Result<bool, StoreError> {
    let Some((id, secret)) = parse(token).filter(|(id, _)| *id == account.id) else {
        return Ok(false);
    };
    let name = setting_name(&secret);
    let known = store.account_setting(id, &name).await?.is_some();
    store.set_account_setting(id, &name, None).await?;
    Ok(known)
}

/// Revokes every token of `account` but `keep` (the session that asks):
/// after a password change no other session or program stays logged in.
pub async fn revoke_all_but(
    store: &dyn Store,
    account: &Account,
    keep: Option<&str>,
) -> Result<usize, StoreError> {
    let kept = keep
        .and_then(parse)
        .filter(|(id, _)| *id == account.id)
        .map(|(_, secret)| setting_name(&secret));
    let mut revoked = 0;
    for (name, _) in store
        .account_settings_with_prefix(account.id, PREFIX)
        .await?
    {
        if Some(&name) != kept.as_ref() {
            store.set_account_setting(account.id, &name, None).await?;
            revoked += 1;
        }
    }
    Ok(revoked)
}

impl Mail {
    /// The account a bearer token belongs to, if it is valid and unexpired.
    pub async fn account_for_token(&self, token: &str) -> Result<Option<Account>, StoreError> {
        let Some((id, secret)) = parse(token) else {
            return Ok(None);
        };
        let Some(expires) = self
            .store
            .account_setting(id, &setting_name(&secret))
            .await?
        else {
            return Ok(None);
        };
        if expires
            .parse::<i64>()
            .map_or(true, |e| e <= crate::headers::now())
        {
            return Ok(None);
        }
        match self.store.account(id).await {
            Ok(a) => Ok(Some(a)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_syntax() {
        let secret =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
        assert_eq!(
            super::parse(&format!("tern_12_{secret}")).map(|(a, _)| a.0),
            Some(12)
        );
        assert!(super::parse("tern_x_abc").is_none());
        assert!(super::parse("bearer").is_none());
        assert!(super::parse(&format!("tern_1_{}", &secret[..10])).is_none());
    }

    #[tokio::test]
    async fn expired_tokens_are_cleared_when_the_next_is_made() {
        let (mail, joe, _dir) = crate::test_support::mail_with_joe("x", 5).await;
        let store = mail.store().as_ref();
        // A token of no days is expired at once.
        let old = super::create(store, &joe, 0).await.unwrap();
        assert!(mail.account_for_token(&old).await.unwrap().is_none());
        let kept = super::create(store, &joe, 1).await.unwrap();
        let left = store
            .account_settings_with_prefix(joe.id, super::PREFIX)
            .await
            .unwrap();
        assert_eq!(left.len(), 1, "only the new token is kept: {left:?}");
        assert_eq!(
            mail.account_for_token(&kept).await.unwrap().map(|a| a.id),
            Some(joe.id)
        );
    }
}
