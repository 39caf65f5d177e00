//! `tern dkim`: DKIM signing keys of local domains (RFC 6376, RFC 8463),
//! and `tern tls-report`, what outbound TLS looked like (RFC 8460).
//! `generate` makes an Ed25519 and an RSA-2048 key, stores them, and
//! prints the TXT records to publish; outgoing mail from the domain is
//! signed with both from then on.

use super::Output;
use anyhow::{bail, Result};
use serde_json::json;
use tern_smtp::outbound::dkim;
use tern_store::Store;

/// Creates the domain's keys under `selector` (default `tYYYYMM`), `e`
/// and `r` appended for the Ed25519 and RSA key.
pub async fn dkim_generate(
    store: &dyn Store,
    domain: &str,
    selector: Option<&str>,
    out: Output,
) -> Result<()> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !store.list_domains().await?.iter().any(|d| d.name == domain) {
        bail!("{domain} is not a local domain; add it first with `tern domain add {domain}`");
    }
    let now = tern_core::time::unix_now();
    let base = match selector {
        Some(s) => s.to_string(),
        None => {
            let (y, m, _) = tern_core::time::civil_from_days(now.div_euclid(86_400));
            format!("t{y:04}{m:02}")
        }
    };
    if base.is_empty() || !base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        bail!("a selector is letters, digits and '-', e.g. mail2026");
    }
    let mut records = Vec::new();
    for (algorithm, suffix) in [("ed25519", "e"), ("rsa", "r")] {
        let selector = format!("{base}{suffix}");
        let (key, txt) = dkim::generate(&domain, &selector, algorithm, now)
            .map_err(|e| anyhow::anyhow!("generating the {algorithm} key: {e}"))?;
        match store.add_dkim_key(key).await {
            Ok(()) => {}
            Err(tern_store::StoreError::AlreadyExists { .. }) => bail!(
                "{domain} already has a key with selector {selector}; choose another with --selector"
            ),
            Err(e) => return Err(e.into()),
        }
        records.push((format!("{selector}._domainkey.{domain}"), txt));
    }
    print_records(&domain, &records, out);
    Ok(())
}

/// Prints the TXT records of the domain's stored keys again.
pub async fn dkim_show(store: &dyn Store, domain: &str, out: Output) -> Result<()> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let keys = store.dkim_keys(&domain).await?;
    if keys.is_empty() {
        bail!("{domain} has no DKIM keys; `tern dkim generate {domain}` makes them");
    }
    let mut records = Vec::new();
    for key in &keys {
        let txt = dkim::public_record(key).map_err(|e| anyhow::anyhow!("{e}"))?;
        records.push((format!("{}._domainkey.{domain}", key.selector), txt));
    }
    print_records(&domain, &records, out);
    Ok(())
}

fn print_records(domain: &str, records: &[(String, String)], out: Output) {
    match out {
        Output::Json => super::commands::print_json(json!({
            "domain": domain,
            "records": records
                .iter()
                .map(|(name, value)| json!({ "name": name, "type": "TXT", "value": value }))
                .collect::<Vec<_>>(),
        })),
        Output::Human => {
            println!("Publish these DNS records; mail from {domain} is signed with both keys:");
            for (name, value) in records {
                println!("{name}. IN TXT {}", dkim::zone_text(value));
            }
        }
    }
}

/// `tern tls-report`: the TLS sessions of the last `days` days by
/// destination, policy and result (RFC 8460 data; written by the running
/// server once a minute).
pub async fn tls_report(store: &dyn Store, days: u32, out: Output) -> Result<()> {
    let since = tern_smtp::outbound::tlsrpt::day_of(
        tern_core::time::unix_now() - i64::from(days.saturating_sub(1)) * 86_400,
    );
    let rows = store.tls_report_list(&since).await?;
    match out {
        Output::Json => super::commands::print_json(serde_json::to_value(&rows)?),
        Output::Human if rows.is_empty() => println!("no TLS sessions recorded since {since}"),
        Output::Human => {
            for r in rows {
                println!(
                    "{}  {}  {}  {}  {}  {} session(s)",
                    r.day, r.policy_domain, r.policy_type, r.mx_host, r.result_type, r.sessions
                );
            }
        }
    }
    Ok(())
}
