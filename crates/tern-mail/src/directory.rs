//! The directory logic: who gets mail sent to one of our addresses, and
//! which addresses an account may send from. Every protocol that accepts
//! or sends mail (SMTP today; JMAP, the webmail and ActiveSync next) asks
//! here, so they all agree.
//!
//! An address at a local domain resolves, in this order, to:
//! 1. the account with that address;
//! 2. the alias with that address, expanded (targets may be accounts,
//!    other aliases, or remote addresses, which are forwarded);
//! 3. the same two for the address without its extension
//!    (`joe+lists@` → `joe@`, with the configured delimiters);
//! 4. `postmaster@` and `abuse@`, which exist for every domain (RFC 5321
//!    §4.5.1, RFC 2142): without an account or alias of that name they reach
//!    the domain's first account;
//! 5. the domain's catch-all alias `@domain`.
//!
//! Anything else is unknown, refused at RCPT with 550 5.1.1 — never
//! accepted and bounced later.

use std::collections::HashSet;
use tern_store::{Account, AccountId, Store, StoreError};

/// Alias chains longer than this are a loop or a mistake.
const MAX_ALIAS_DEPTH: usize = 8;

/// The expansion of one recipient address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Local accounts, without duplicates.
    pub accounts: Vec<AccountId>,
    /// Remote addresses an alias forwards to.
    pub remote: Vec<String>,
}

/// Looks up local domains and resolves addresses against the Store's
/// directory. Borrowed from [`crate::Mail::directory`].
pub struct Directory<'a> {
    pub store: &'a dyn Store,
    /// Characters that start an address extension (`+`).
    pub delimiters: &'a str,
}

impl Directory<'_> {
    /// True when `domain` (lowercase) is one of ours.
    pub async fn is_local_domain(&self, domain: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .list_domains()
            .await?
            .iter()
            .any(|d| d.name == domain))
    }

    /// The domain whose postmaster a bare `<Postmaster>` (RFC 5321 §4.1.1.3)
    /// reaches: the first domain added.
    pub async fn postmaster_domain(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .list_domains()
            .await?
            .into_iter()
            .next()
            .map(|d| d.name))
    }

    /// Resolves `local@domain` at a local domain; `None` if nobody is there.
    pub async fn resolve(
        &self,
        local: &str,
        domain: &str,
    ) -> Result<Option<Expansion>, StoreError> {
        let mut out = Expansion::default();
        let mut seen = HashSet::new();
        let found = self
            .expand(
                &format!("{local}@{domain}").to_lowercase(),
                0,
                &mut seen,
                &mut out,
            )
            .await?;
        Ok(found.then_some(out))
    }

    /// Adds what `address` (at a local domain) reaches to `out`; false if
    /// it reaches nobody.
    async fn expand(
        &self,
        address: &str,
        depth: usize,
        seen: &mut HashSet<String>,
        out: &mut Expansion,
    ) -> Result<bool, StoreError> {
        if depth > MAX_ALIAS_DEPTH || !seen.insert(address.to_string()) {
            return Ok(false);
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Ok(false);
        };
        let mut candidates = vec![address.to_string()];
        if let Some(base) = self.base_local(local) {
            candidates.push(format!("{base}@{domain}"));
        }
        for candidate in &candidates {
            if self.expand_exact(candidate, depth, seen, out).await? {
                return Ok(true);
            }
        }
        let base = self.base_local(local).unwrap_or(local);
        if base == "postmaster" || base == "abuse" {
            if let Some(first) = self.first_account_of(domain).await? {
                push_account(out, first.id);
                return Ok(true);
            }
        }
        self.expand_exact(&format!("@{domain}"), depth, seen, out)
            .await
    }

    /// An account or alias with exactly this address.
    async fn expand_exact(
        &self,
        address: &str,
        depth: usize,
        seen: &mut HashSet<String>,
        out: &mut Expansion,
    ) -> Result<bool, StoreError> {
        if let Some(account) = self.store.account_by_address(address).await? {
            push_account(out, account.id);
            return Ok(true);
        }
        let Some(alias) = self.store.alias(address).await? else {
            return Ok(false);
        };
        let mut reached = false;
        for target in alias.targets {
            let target_domain = target.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            if self.is_local_domain(target_domain).await? {
                // Boxed: the recursion is bounded by MAX_ALIAS_DEPTH and `seen`.
                reached |= Box::pin(self.expand(&target, depth + 1, seen, out)).await?;
            } else {
                if !out.remote.contains(&target) {
                    out.remote.push(target);
                }
                reached = true;
            }
        }
        Ok(reached)
    }

    /// The local part without its extension, if it has one.
    fn base_local<'s>(&self, local: &'s str) -> Option<&'s str> {
        let i = local.find(|c| self.delimiters.contains(c))?;
        (i > 0).then(|| &local[..i])
    }

    async fn first_account_of(&self, domain: &str) -> Result<Option<Account>, StoreError> {
        let suffix = format!("@{domain}");
        Ok(self
            .store
            .list_accounts()
            .await?
            .into_iter()
            .filter(|a| a.address.ends_with(&suffix))
            .min_by_key(|a| a.id))
    }

    /// True when `account` may use `sender` as MAIL FROM: its own address
    /// (with any extension), or an alias that reaches it.
    pub async fn may_send_as(&self, account: &Account, sender: &str) -> Result<bool, StoreError> {
        let sender = sender.to_lowercase();
        if sender == account.address {
            return Ok(true);
        }
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return Ok(false);
        };
        if let Some(base) = self.base_local(local) {
            // joe+x@ is joe's, unless "joe+x" (or, with "-" as a delimiter,
            // "mary-ann") is itself someone else's address.
            let taken = self.store.account_by_address(&sender).await?.is_some()
                || self.store.alias(&sender).await?.is_some();
            if !taken && format!("{base}@{domain}") == account.address {
                return Ok(true);
            }
        }
        if !self.is_local_domain(domain).await? {
            return Ok(false);
        }
        let mut expansion = Expansion::default();
        let mut seen = HashSet::new();
        // Only an alias (or catch-all) of the exact address counts, not the
        // postmaster fallback: a domain's first account is not everyone.
        let mut reached = self
            .expand_exact(&sender, 0, &mut seen, &mut expansion)
            .await?;
        if !reached {
            if let Some(base) = self.base_local(local) {
                reached = self
                    .expand_exact(&format!("{base}@{domain}"), 0, &mut seen, &mut expansion)
                    .await?;
            }
        }
        if !reached {
            reached = self
                .expand_exact(&format!("@{domain}"), 0, &mut seen, &mut expansion)
                .await?;
        }
        Ok(reached && expansion.accounts.contains(&account.id))
    }
}

fn push_account(out: &mut Expansion, id: AccountId) {
    if !out.accounts.contains(&id) {
        out.accounts.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tern_store::prelude::*;
    use tern_store::sqlite::{SqliteOptions, SqliteStore};
    use tern_store::{Alias, NewAccount};

    async fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default()).unwrap(),
        );
        store.add_domain("example.test").await.unwrap();
        store.add_domain("other.test").await.unwrap();
        for a in ["first@example.test", "joe@example.test", "ann@other.test"] {
            store
                .create_account(NewAccount {
                    address: a.into(),
                    password_hash: "x".into(),
                    quota_bytes: None,
                })
                .await
                .unwrap();
        }
        (store, dir)
    }

    async fn alias(store: &SqliteStore, address: &str, targets: &[&str]) {
        store
            .set_alias(Alias {
                address: address.into(),
                targets: targets.iter().map(|t| t.to_string()).collect(),
            })
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resolution_order() {
        let (store, _dir) = store().await;
        let r = Directory {
            store: store.as_ref(),
            delimiters: "+",
        };
        let id = |a: &str| {
            let store = store.clone();
            let a = a.to_string();
            async move { store.account_by_address(&a).await.unwrap().unwrap().id }
        };
        let joe = id("joe@example.test").await;
        let first = id("first@example.test").await;
        let ann = id("ann@other.test").await;
        assert_eq!(
            r.resolve("Joe", "example.test")
                .await
                .unwrap()
                .unwrap()
                .accounts,
            [joe]
        );
        assert_eq!(
            r.resolve("joe+lists", "example.test")
                .await
                .unwrap()
                .unwrap()
                .accounts,
            [joe]
        );
        assert_eq!(r.resolve("nobody", "example.test").await.unwrap(), None);
        assert_eq!(r.resolve("+x", "example.test").await.unwrap(), None);
        // postmaster and abuse exist for every domain.
        assert_eq!(
            r.resolve("postmaster", "example.test")
                .await
                .unwrap()
                .unwrap()
                .accounts,
            [first]
        );
        assert_eq!(
            r.resolve("abuse", "other.test")
                .await
                .unwrap()
                .unwrap()
                .accounts,
            [ann]
        );

        alias(
            &store,
            "team@example.test",
            &[
                "joe@example.test",
                "ann@other.test",
                "ext@remote.test",
                "team@example.test",
            ],
        )
        .await;
        let team = r.resolve("team", "example.test").await.unwrap().unwrap();
        assert_eq!(team.accounts, [joe, ann]);
        assert_eq!(team.remote, ["ext@remote.test"]);
        // Loops end.
        alias(&store, "a@example.test", &["b@example.test"]).await;
        alias(&store, "b@example.test", &["a@example.test"]).await;
        assert_eq!(r.resolve("a", "example.test").await.unwrap(), None);
        // Catch-all last.
        alias(&store, "@other.test", &["ann@other.test"]).await;
        assert_eq!(
            r.resolve("whoever", "other.test")
                .await
                .unwrap()
                .unwrap()
                .accounts,
            [ann]
        );
        // An alias for postmaster wins over the fallback.
        alias(&store, "postmaster@example.test", &["joe@example.test"]).await;
        assert_eq!(
            r.resolve("postmaster", "example.test")
                .await
                .unwrap()
                .unwrap()
                .accounts,
            [joe]
        );
        // Without delimiters there are no extensions.
        let strict = Directory {
            store: store.as_ref(),
            delimiters: "",
        };
        assert_eq!(
            strict.resolve("joe+lists", "example.test").await.unwrap(),
            None
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn senders_an_account_may_use() {
        let (store, _dir) = store().await;
        let r = Directory {
            store: store.as_ref(),
            delimiters: "+",
        };
        let joe = store
            .account_by_address("joe@example.test")
            .await
            .unwrap()
            .unwrap();
        alias(&store, "sales@example.test", &["joe@example.test"]).await;
        alias(&store, "info@example.test", &["first@example.test"]).await;
        assert!(r.may_send_as(&joe, "JOE@example.test").await.unwrap());
        assert!(r.may_send_as(&joe, "joe+x@example.test").await.unwrap());
        assert!(r.may_send_as(&joe, "sales@example.test").await.unwrap());
        assert!(!r.may_send_as(&joe, "info@example.test").await.unwrap());
        assert!(!r.may_send_as(&joe, "first@example.test").await.unwrap());
        assert!(!r
            .may_send_as(&joe, "postmaster@example.test")
            .await
            .unwrap());
        assert!(!r.may_send_as(&joe, "joe@remote.test").await.unwrap());
        // With "-" as a delimiter, joe-ann@ is not joe's when it is an account.
        let dashes = Directory {
            store: store.as_ref(),
            delimiters: "+-",
        };
        store
            .create_account(NewAccount {
                address: "joe-ann@example.test".into(),
                password_hash: "x".into(),
                quota_bytes: None,
            })
            .await
            .unwrap();
        assert!(!dashes
            .may_send_as(&joe, "joe-ann@example.test")
            .await
            .unwrap());
        assert!(dashes
            .may_send_as(&joe, "joe-lists@example.test")
            .await
            .unwrap());
    }
}
