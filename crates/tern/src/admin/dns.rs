//! `tern dns DOMAIN`: every DNS record a local domain should publish for
//! mail to reach it and for its own mail to be believed — MX (RFC 5321
//! §5), SPF (RFC 7208), DKIM (RFC 6376, the stored keys), DMARC (RFC 7489)
//! and the SRV records mail clients find the server by (RFC 6186, RFC
//! 8314).

use super::Output;
use anyhow::{bail, Result};
use serde_json::json;
use tern_core::config::Config;
use tern_smtp::outbound::dkim;
use tern_store::Store;

/// One record to publish.
struct Record {
    name: String,
    kind: &'static str,
    value: String,
    why: &'static str,
}

pub async fn dns_records(
    store: &dyn Store,
    config: &Config,
    domain: &str,
    out: Output,
) -> Result<()> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !store.list_domains().await?.iter().any(|d| d.name == domain) {
        bail!("{domain} is not a local domain; add it first with `tern domain add {domain}`");
    }
    let host = config.hostname.trim_end_matches('.');
    let mut records = vec![
        Record {
            name: domain.clone(),
            kind: "MX",
            value: format!("10 {host}."),
            why: "mail for the domain comes to this server",
        },
        Record {
            name: domain.clone(),
            kind: "TXT",
            value: spf_value(config),
            why: "SPF: only this server (or the relay) sends the domain's mail",
        },
    ];
    let keys = store.dkim_keys(&domain).await?;
    for key in &keys {
        records.push(Record {
            name: format!("{}._domainkey.{domain}", key.selector),
            kind: "TXT",
            value: dkim::public_record(key).map_err(|e| anyhow::anyhow!("{e}"))?,
            why: "DKIM: the key outgoing mail is signed with",
        });
    }
    records.push(Record {
        name: format!("_dmarc.{domain}"),
        kind: "TXT",
        value: format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"),
        why: "DMARC: receivers file mail failing SPF and DKIM as junk; \
              raise to p=reject once all your mail passes",
    });
    for (service, port, why) in [
        (
            "_submissions._tcp",
            465,
            "mail clients find submission over TLS",
        ),
        ("_submission._tcp", 587, "mail clients find submission"),
        ("_imaps._tcp", 993, "mail clients find IMAP over TLS"),
        ("_pop3s._tcp", 995, "mail clients find POP3 over TLS"),
    ] {
        records.push(Record {
            name: format!("{service}.{domain}"),
            kind: "SRV",
            value: format!("0 1 {port} {host}."),
            why,
        });
    }
    match out {
        Output::Json => super::commands::print_json(json!({
            "domain": domain,
            "records": records
                .iter()
                .map(|r| json!({ "name": r.name, "type": r.kind, "value": r.value, "why": r.why }))
                .collect::<Vec<_>>(),
        })),
        Output::Human => {
            println!(
                "Publish these DNS records for {domain} ({host} must resolve to this server):"
            );
            for r in &records {
                let value = if r.kind == "TXT" {
                    dkim::zone_text(&r.value)
                } else {
                    r.value.clone()
                };
                println!("; {}\n{}. IN {} {value}", r.why, r.name, r.kind);
            }
            if keys.is_empty() {
                println!(
                    "; no DKIM keys yet: `tern dkim generate {domain}` makes them and prints their records"
                );
            }
        }
    }
    Ok(())
}

/// SPF: the domain's MX hosts (this server) send its mail; with a
/// smarthost, the relay's own SPF is included instead (its domain).
fn spf_value(config: &Config) -> String {
    let relay_host = config.outbound.relay.rsplit_once(':').map(|(h, _)| h);
    match relay_host {
        Some(host) if !host.is_empty() => {
            // smtp.provider.example → provider.example publishes the SPF.
            let parent = host.split_once('.').map_or(host, |(_, p)| p);
            format!("v=spf1 mx include:{parent} -all")
        }
        _ => "v=spf1 mx -all".to_string(),
    }
}
