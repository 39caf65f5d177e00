//! `tern security`: the login limiter's blocked addresses, which live in the
//! running server's memory and are reached through its control socket
//! ([`crate::server::control`]).

use super::Output;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` to the server running on `data_dir`; `None` when no
/// server is running there.
async fn ask(data_dir: &Path, request: &str) -> Result<Option<serde_json::Value>> {
    let path = data_dir.join(crate::server::control::CONTROL_SOCKET);
    let mut stream = match tokio::net::UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(e).with_context(|| format!("reaching the server at {}", path.display()))
        }
    };
    stream.write_all(format!("{request}\n").as_bytes()).await?;
    let mut answer = String::new();
    stream
        .take(1 << 20)
        .read_to_string(&mut answer)
        .await
        .context("reading the server's answer")?;
    let value: serde_json::Value =
        serde_json::from_str(answer.trim()).context("the server's answer is not JSON")?;
    if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
        bail!("{error}");
    }
    Ok(Some(value))
}

/// `tern security blocked`.
pub async fn blocked(data_dir: &Path, out: Output) -> Result<()> {
    let Some(answer) = ask(data_dir, "blocked").await? else {
        match out {
            Output::Human => println!(
                "no server is running on {}; blocks live in the running server's memory, so none are in force",
                data_dir.display()
            ),
            Output::Json => println!("{}", serde_json::json!({ "blocked": [], "running": false })),
        }
        return Ok(());
    };
    let list = answer["blocked"].as_array().cloned().unwrap_or_default();
    match out {
        Output::Json => println!("{answer}"),
        Output::Human if list.is_empty() => println!("no address is blocked"),
        Output::Human => {
            for b in list {
                let prefix = if b["ipv6_prefix"].is_null() {
                    ""
                } else {
                    "/64"
                };
                println!(
                    "{}{prefix}  {} failed logins  blocked for {}s more",
                    b["address"].as_str().unwrap_or_default(),
                    b["failures"],
                    b["retry_after_secs"]
                );
            }
        }
    }
    Ok(())
}

/// `tern security unblock ADDRESS`.
pub async fn unblock(data_dir: &Path, address: &str, out: Output) -> Result<()> {
    let ip: std::net::IpAddr = address
        .trim()
        .parse()
        .with_context(|| format!("{address:?} is not an IP address"))?;
    let Some(answer) = ask(data_dir, &format!("unblock {ip}")).await? else {
        bail!(
            "no server is running on {}; blocks live in the running server's memory, so there is nothing to unblock",
            data_dir.display()
        );
    };
    match out {
        Output::Json => println!("{answer}"),
        Output::Human if answer["was_blocked"] == true => println!("unblocked {ip}"),
        Output::Human => println!("{ip} was not blocked"),
    }
    Ok(())
}
