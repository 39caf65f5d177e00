//! The directory commands themselves: each validates its input with
//! `tern-core`'s rules, asks the Store, and prints for people or as JSON.

use super::{format_size, parse_size, read_password, Output};
use anyhow::{bail, Context, Result};
use serde_json::json;
use tern_core::password::hash_password;
use tern_core::{parse_domain, Address};
use tern_store::{Alias, NewAccount, Store, DEFAULT_MAILBOXES};

pub(super) fn print_json(value: serde_json::Value) {
    println!("{value}");
}

pub async fn domain_add(store: &dyn Store, domain: &str, out: Output) -> Result<()> {
    let name = parse_domain(domain)?;
    let d = store.add_domain(&name).await?;
    match out {
        Output::Human => println!("added domain {}", d.name),
        Output::Json => print_json(json!({ "domain": d.name, "created_at": d.created_at })),
    }
    Ok(())
}

pub async fn domain_list(store: &dyn Store, out: Output) -> Result<()> {
    let domains = store.list_domains().await?;
    match out {
        Output::Human if domains.is_empty() => {
            println!("no domains yet; add one with: tern domain add example.com")
        }
        Output::Human => domains.iter().for_each(|d| println!("{}", d.name)),
        Output::Json => print_json(json!(domains
            .iter()
            .map(|d| json!({ "domain": d.name, "created_at": d.created_at }))
            .collect::<Vec<_>>())),
    }
    Ok(())
}

pub async fn domain_remove(store: &dyn Store, domain: &str, out: Output) -> Result<()> {
    let name = parse_domain(domain)?;
    store.remove_domain(&name).await?;
    match out {
        Output::Human => println!("removed domain {name}"),
        Output::Json => print_json(json!({ "removed": name })),
    }
    Ok(())
}

/// Where a new password comes from, and whether a weak one is kept anyway.
#[derive(Debug, Clone, Copy)]
pub struct PasswordInput {
    pub from_stdin: bool,
    pub allow_weak: bool,
}

/// Reads a new password for `address` and refuses a weak one unless told.
fn new_password(address: &str, input: PasswordInput) -> Result<String> {
    let password = read_password(input.from_stdin)?;
    if let Some(why) = tern_core::password_strength::weakness(&password, address) {
        if !input.allow_weak {
            bail!(
                "password refused: {why}; choose another, or pass --allow-weak to keep it anyway"
            );
        }
        eprintln!("warning: weak password kept (--allow-weak): {why}");
    }
    Ok(password)
}

pub async fn account_add(
    store: &dyn Store,
    address: &str,
    password: PasswordInput,
    quota: Option<&str>,
    out: Output,
) -> Result<()> {
    let address = Address::parse(address)?.canonical();
    let quota_bytes = quota.map(parse_size).transpose()?;
    // Check what we can before asking for a password nobody will use.
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if !store.list_domains().await?.iter().any(|d| d.name == domain) {
        bail!("domain {domain} does not exist; add it first with: tern domain add {domain}");
    }
    if store.account_by_address(&address).await?.is_some() {
        bail!("account {address} already exists");
    }
    let password = new_password(&address, password)?;
    let password_hash = hash_password(&password).context("hashing the password")?;
    let account = store
        .create_account(NewAccount {
            address,
            password_hash,
            quota_bytes,
        })
        .await?;
    let mailboxes: Vec<&str> = DEFAULT_MAILBOXES.iter().map(|(name, _)| *name).collect();
    match out {
        Output::Human => println!(
            "added account {} ({}; quota {})",
            account.address,
            mailboxes.join(", "),
            account
                .quota_bytes
                .map(format_size)
                .unwrap_or_else(|| "none".into())
        ),
        Output::Json => print_json(json!({
            "address": account.address,
            "quota_bytes": account.quota_bytes,
            "mailboxes": mailboxes,
        })),
    }
    Ok(())
}

pub async fn account_list(store: &dyn Store, out: Output) -> Result<()> {
    let accounts = store.list_accounts().await?;
    match out {
        Output::Human if accounts.is_empty() => {
            println!("no accounts yet; add one with: tern account add user@example.com")
        }
        Output::Human => {
            let width = accounts
                .iter()
                .map(|a| a.address.len())
                .max()
                .unwrap_or(0)
                .max(7);
            println!("{:width$}  {:>10}  {:>10}", "ADDRESS", "USED", "QUOTA");
            for a in &accounts {
                println!(
                    "{:width$}  {:>10}  {:>10}",
                    a.address,
                    format_size(a.used_bytes),
                    a.quota_bytes
                        .map(format_size)
                        .unwrap_or_else(|| "none".into())
                );
            }
        }
        Output::Json => print_json(json!(accounts
            .iter()
            .map(|a| json!({
                "address": a.address,
                "used_bytes": a.used_bytes,
                "quota_bytes": a.quota_bytes,
                "created_at": a.created_at,
            }))
            .collect::<Vec<_>>())),
    }
    Ok(())
}

pub async fn account_remove(store: &dyn Store, address: &str, out: Output) -> Result<()> {
    let address = Address::parse(address)?.canonical();
    store.remove_account(&address).await?;
    match out {
        Output::Human => println!("removed account {address} and all its mail"),
        Output::Json => print_json(json!({ "removed": address })),
    }
    Ok(())
}

pub async fn account_passwd(
    store: &dyn Store,
    address: &str,
    password: PasswordInput,
    out: Output,
) -> Result<()> {
    let address = Address::parse(address)?.canonical();
    if store.account_by_address(&address).await?.is_none() {
        bail!("account {address} does not exist");
    }
    let password = new_password(&address, password)?;
    let hash = hash_password(&password).context("hashing the password")?;
    store.set_password(&address, &hash).await?;
    match out {
        Output::Human => println!("changed the password of {address}"),
        Output::Json => print_json(json!({ "address": address, "password_changed": true })),
    }
    Ok(())
}

/// An alias is `local@domain` or `@domain` (catch-all).
fn parse_alias(alias: &str) -> Result<String> {
    match alias.strip_prefix('@') {
        Some(domain) => Ok(format!("@{}", parse_domain(domain)?)),
        None => Ok(Address::parse(alias)?.canonical()),
    }
}

pub async fn alias_add(
    store: &dyn Store,
    alias: &str,
    targets: &[String],
    out: Output,
) -> Result<()> {
    let address = parse_alias(alias)?;
    let mut all: Vec<String> = store
        .alias(&address)
        .await?
        .map(|a| a.targets)
        .unwrap_or_default();
    for t in targets {
        let t = Address::parse(t)
            .with_context(|| format!("alias target {t:?}"))?
            .canonical();
        if t == address {
            bail!("alias {address} cannot point at itself");
        }
        check_alias_target(store, &address, &t).await?;
        if !all.contains(&t) {
            all.push(t);
        }
    }
    store
        .set_alias(Alias {
            address: address.clone(),
            targets: all.clone(),
        })
        .await?;
    match out {
        Output::Human => println!("{address} -> {}", all.join(", ")),
        Output::Json => print_json(json!({ "alias": address, "targets": all })),
    }
    Ok(())
}

/// Refuses a target at one of our domains that reaches nobody (no account,
/// alias or catch-all), and one that leads back to `alias` (a loop that would
/// otherwise be found only when mail arrives). Remote targets are the
/// remote server's business.
async fn check_alias_target(store: &dyn Store, alias: &str, target: &str) -> Result<()> {
    let domains: Vec<String> = store
        .list_domains()
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect();
    let is_local = |address: &str| {
        address
            .rsplit_once('@')
            .is_some_and(|(_, d)| domains.iter().any(|name| name == d))
    };
    if !is_local(target) {
        return Ok(());
    }
    // Walk what `target` leads to; every local address must exist.
    let mut pending = vec![target.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(address) = pending.pop() {
        if address == alias {
            bail!("alias {alias} -> {target} would make a loop: {target} leads back to {alias}");
        }
        if !seen.insert(address.clone()) || !is_local(&address) {
            continue;
        }
        if let Some(next) = store.alias(&address).await? {
            pending.extend(next.targets);
            continue;
        }
        if store.account_by_address(&address).await?.is_some() {
            continue;
        }
        let (local, domain) = address.rsplit_once('@').unwrap_or_default();
        // user+tag@ reaches user@, whatever the delimiter configured; be
        // lenient and try the usual ones.
        let base = local.split(['+', '-']).next().unwrap_or(local);
        if base != local {
            pending.push(format!("{base}@{domain}"));
            continue;
        }
        let catch_all_key = format!("@{domain}");
        if catch_all_key == alias {
            bail!("catch-all {alias} -> {target} would make a loop: {address} does not exist, so it would be caught by {alias} again");
        }
        if let Some(catch_all) = store.alias(&catch_all_key).await? {
            pending.extend(catch_all.targets);
            continue;
        }
        if address == target {
            bail!(
                "alias target {target} does not exist: no account or alias has that address; add it first with: tern account add {target}"
            );
        }
        bail!("alias target {target} leads to {address}, which does not exist");
    }
    Ok(())
}

pub async fn alias_list(store: &dyn Store, out: Output) -> Result<()> {
    let aliases = store.list_aliases().await?;
    match out {
        Output::Human if aliases.is_empty() => println!(
            "no aliases yet; add one with: tern alias add sales@example.com user@example.com"
        ),
        Output::Human => aliases
            .iter()
            .for_each(|a| println!("{} -> {}", a.address, a.targets.join(", "))),
        Output::Json => print_json(json!(aliases
            .iter()
            .map(|a| json!({ "alias": a.address, "targets": a.targets }))
            .collect::<Vec<_>>())),
    }
    Ok(())
}

pub async fn alias_remove(store: &dyn Store, alias: &str, out: Output) -> Result<()> {
    let address = parse_alias(alias)?;
    store.remove_alias(&address).await?;
    match out {
        Output::Human => println!("removed alias {address}"),
        Output::Json => print_json(json!({ "removed": address })),
    }
    Ok(())
}
