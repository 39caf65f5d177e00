//! Administration from the command line: domains, accounts and aliases.
//!
//! Each command opens the data directory's store directly, so it works
//! whether or not the server is running. Output is for people by default
//! and JSON with `--json`; errors are one line and a non-zero exit.

mod commands;

pub use commands::*;

use anyhow::{bail, Context, Result};
use std::io::{BufRead, IsTerminal};
use std::sync::Arc;
use tern_core::Config;
use tern_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tern_store::Store;

/// The database file inside `data_dir`.
pub const STORE_FILE: &str = "tern.db";

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Human,
    Json,
}

/// Opens the store the configuration points at, with its durability.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    let path = config.data_dir.join(STORE_FILE);
    let options = SqliteOptions {
        durability: match config.store.durability {
            tern_core::Durability::Group => Durability::Group,
            tern_core::Durability::PerCommit => Durability::PerCommit,
            tern_core::Durability::Off => Durability::Off,
        },
        fsync_delay: std::time::Duration::from_millis(config.store.fsync_delay_ms),
    };
    let store = SqliteStore::open(&path, options)
        .with_context(|| format!("opening the store at {}", path.display()))?;
    Ok(Arc::new(store))
}

/// An error and its causes on one line, without repeating a cause that the
/// message above it already quotes.
pub fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Parses a size such as `500M`, `2G`, `1.5GiB`, `10k` or a plain number of
/// bytes. Units are binary (1K = 1024), as mail quotas usually are.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        anyhow::anyhow!("invalid size {text:?} (expected e.g. 500M, 2G or a number of bytes)")
    })?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => bail!("invalid size unit {other:?} in {text:?} (use K, M, G or T)"),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > i64::MAX as f64 {
        bail!("size {text:?} is out of range");
    }
    Ok(bytes as u64)
}

/// A human-readable size (`1.5 MiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Reads a new password: the first line of stdin with `--password-stdin`,
/// otherwise a prompt without echo, asked twice.
pub fn read_password(from_stdin: bool) -> Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the password on; pass it with --password-stdin");
        }
        let first = rpassword::prompt_password("New password: ").context("reading the password")?;
        let second =
            rpassword::prompt_password("Repeat password: ").context("reading the password")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("10 k").unwrap(), 10 << 10);
        for bad in ["", "M", "-5", "5X", "0", "1e400", "1.2.3"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_size(12), "12 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn describe_drops_repeated_causes() {
        let inner = std::io::Error::other("disk full");
        let e = anyhow::Error::new(inner).context("writing x: disk full");
        assert_eq!(describe(&e), "writing x: disk full");
        let e = anyhow::anyhow!("low").context("high");
        assert_eq!(describe(&e), "high: low");
    }
}
