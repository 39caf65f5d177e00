//! `tern queue list|show|flush|remove|hold|release`: what waits to leave, from the Store
//! beside the running server, whose worker sees a flush or a hold at its
//! next look (issue 12).

use super::Output;
use anyhow::{bail, Result};
use serde_json::json;
use tern_store::{QueueId, QueuedMessage, Store};

fn entry_json(m: &QueuedMessage) -> serde_json::Value {
    json!({
        "id": m.id.0,
        "sender": m.outbound.mail_from,
        "size": m.size,
        "created_at": m.created_at,
        "held": m.held,
        "recipients": m.recipients.iter().map(|r| json!({
            "address": r.address,
            "status": format!("{:?}", r.status).to_lowercase(),
            "attempts": r.attempts,
            "next_attempt": r.next_attempt,
            "last_error": r.last_error,
        })).collect::<Vec<_>>(),
    })
}

/// A time as people read it: UTC, to the second.
fn when(unix: i64) -> String {
    let (y, m, d) = tern_core::time::civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

pub async fn queue_list(store: &dyn Store, out: Output) -> Result<()> {
    let queue = store.queue_list().await?;
    match out {
        Output::Json => {
            super::commands::print_json(json!(queue.iter().map(entry_json).collect::<Vec<_>>()))
        }
        Output::Human if queue.is_empty() => println!("the queue is empty"),
        Output::Human => {
            for m in &queue {
                let sender = if m.outbound.mail_from.is_empty() {
                    "<>".to_string()
                } else {
                    m.outbound.mail_from.clone()
                };
                println!(
                    "{}  from {sender}, {} bytes, queued {}{}",
                    m.id.0,
                    m.size,
                    when(m.created_at),
                    if m.held { ", HELD" } else { "" }
                );
                for r in &m.recipients {
                    let status = format!("{:?}", r.status).to_lowercase();
                    print!("    {}  {status}, {} attempts", r.address, r.attempts);
                    if r.status == tern_store::RecipientStatus::Pending {
                        print!(", next {}", when(r.next_attempt));
                    }
                    println!();
                    if let Some(e) = &r.last_error {
                        println!("        last error: {e}");
                    }
                }
            }
        }
    }
    Ok(())
}

pub async fn queue_show(store: &dyn Store, id: i64, out: Output) -> Result<()> {
    let queue = store.queue_list().await?;
    let Some(m) = queue.iter().find(|m| m.id == QueueId(id)) else {
        bail!("no queue entry {id}; `tern queue list` shows what is queued");
    };
    match out {
        Output::Json => super::commands::print_json(entry_json(m)),
        Output::Human => {
            let head = store.queue_read(m.id, 0, 64 * 1024).await?;
            let end = head
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(head.len(), |i| i + 2);
            println!("{}", serde_json::to_string_pretty(&entry_json(m))?);
            println!();
            print!("{}", String::from_utf8_lossy(&head[..end]));
        }
    }
    Ok(())
}

pub async fn queue_flush(store: &dyn Store, id: Option<i64>, out: Output) -> Result<()> {
    let n = store.queue_flush(id.map(QueueId)).await?;
    match out {
        Output::Json => super::commands::print_json(json!({ "flushed": n })),
        Output::Human => println!("{n} pending recipient(s) due now"),
    }
    Ok(())
}

/// Makes every message with a pending recipient in `domain` due now.
pub async fn queue_flush_domain(store: &dyn Store, domain: &str, out: Output) -> Result<()> {
    let suffix = format!("@{}", domain.trim_end_matches('.').to_ascii_lowercase());
    let mut n = 0;
    for m in store.queue_list().await? {
        let waiting = m.recipients.iter().any(|r| {
            r.status == tern_store::RecipientStatus::Pending
                && r.address.to_ascii_lowercase().ends_with(&suffix)
        });
        if waiting {
            n += store.queue_flush(Some(m.id)).await?;
        }
    }
    match out {
        Output::Json => super::commands::print_json(json!({ "flushed": n })),
        Output::Human => println!("{n} pending recipient(s) due now"),
    }
    Ok(())
}

pub async fn queue_remove(store: &dyn Store, id: i64, out: Output) -> Result<()> {
    match store.queue_remove(QueueId(id)).await {
        Ok(()) => {}
        Err(tern_store::StoreError::NotFound { .. }) => {
            bail!("no queue entry {id}; `tern queue list` shows what is queued")
        }
        Err(e) => return Err(e.into()),
    }
    match out {
        Output::Json => super::commands::print_json(json!({ "removed": id })),
        Output::Human => {
            println!("removed queue entry {id}; its recipients get nothing, nobody is told")
        }
    }
    Ok(())
}

pub async fn queue_hold(store: &dyn Store, id: i64, on: bool, out: Output) -> Result<()> {
    match store.queue_hold(QueueId(id), on).await {
        Ok(()) => {}
        Err(tern_store::StoreError::NotFound { .. }) => {
            bail!("no queue entry {id}; `tern queue list` shows what is queued")
        }
        Err(e) => return Err(e.into()),
    }
    match out {
        Output::Json => super::commands::print_json(json!({ "id": id, "held": on })),
        Output::Human if on => {
            println!("holding queue entry {id}; `tern queue release {id}` lets it go")
        }
        Output::Human => println!("released queue entry {id}"),
    }
    Ok(())
}
