//! Administration from the command line: domains, accounts and aliases.
//!
//! Each command opens the data directory's store directly, so it works
//! whether or not the server is running. Output is for people by default
//! and JSON with `--json`; errors are one line and a non-zero exit.

mod commands;
mod dkim;
mod dns;
mod queue;
pub mod security;
mod spam;
mod store;
mod token;

pub use commands::*;
pub use dkim::{dkim_generate, dkim_show, tls_report};
pub use dns::dns_records;
pub use queue::{
    queue_flush, queue_flush_domain, queue_hold, queue_list, queue_remove, queue_show,
};
pub use spam::spam_stats;
pub use store::store_migrate;
pub use token::{token_create, token_revoke};

use anyhow::{bail, Context, Result};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tern_core::Config;
use tern_store::postgres::{PgOptions, PgStore};
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

/// Where the data directory of a command came from, to say so when there
/// is none.
pub struct DataDirSource {
    described: String,
}

impl DataDirSource {
    /// `config` as given on the command line (or by `TERN_CONFIG`);
    /// `flag` when `--data-dir` was given.
    pub fn new(config: Option<&Path>, flag: bool) -> DataDirSource {
        let described = if flag {
            "given with --data-dir".to_string()
        } else if let Some(path) = config {
            format!("the data_dir of {}", path.display())
        } else if Path::new(Config::DEFAULT_FILE).exists() {
            format!("the data_dir of ./{}", Config::DEFAULT_FILE)
        } else {
            format!(
                "the default, as there is no --config, no TERN_CONFIG and no {} in {}",
                Config::DEFAULT_FILE,
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|_| "the working directory".into())
            )
        };
        DataDirSource { described }
    }
}

/// The absolute form of `path`, for messages.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Checks that `data_dir`, if it exists, is a directory this process may
/// write in, and its store file one it may open: SQLite's own message for
/// these ("unable to open database file", code 14) names neither the cause
/// nor the path.
pub fn check_data_dir(data_dir: &Path) -> Result<()> {
    let shown = absolute(data_dir);
    let Ok(meta) = std::fs::metadata(data_dir) else {
        return Ok(());
    };
    if !meta.is_dir() {
        bail!(
            "data_dir {} is a file, not a directory; point data_dir at a directory (tern creates it if missing)",
            shown.display()
        );
    }
    let probe = data_dir.join(".tern-write-check");
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            bail!(
                "permission denied: cannot write in the data directory {} ({}); run tern as the user that owns it, or give this user write access",
                shown.display(),
                ownership(&meta)
            );
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot write in the data directory {}", shown.display())
            });
        }
    }
    let store_file = data_dir.join(STORE_FILE);
    if let Ok(file_meta) = std::fs::metadata(&store_file) {
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&store_file)
        {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                bail!(
                    "permission denied: cannot open the store {} for writing ({}); run tern as the user that owns it",
                    absolute(&store_file).display(),
                    ownership(&file_meta)
                );
            }
        }
    }
    Ok(())
}

/// "owned by uid 999, mode 700", where the system says.
fn ownership(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!(
            "owned by uid {}, mode {:o}; this process runs as uid {}",
            meta.uid(),
            meta.mode() & 0o7777,
            current_uid()
        )
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        "see its permissions".into()
    }
}

#[cfg(unix)]
fn current_uid() -> String {
    // /proc/self is Linux's; elsewhere the uid is left out.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m).to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Opens the store of an existing data directory; never creates one.
pub async fn open_existing_store(
    config: &Config,
    source: &DataDirSource,
) -> Result<Arc<dyn Store>> {
    let shown = absolute(&config.data_dir);
    // A PostgreSQL store is the database the configuration names: there is
    // no file to look for, and the server creates the schema.
    if config.store.backend == tern_core::StoreBackend::Sqlite
        && !config.data_dir.join(STORE_FILE).exists()
    {
        check_data_dir(&config.data_dir)?;
        bail!(
            "no Tern data directory at {} ({}); run this where the server's tern.toml is, or point it there with --config FILE (or TERN_CONFIG=FILE), or give --data-dir DIR; `tern init` or `tern serve` creates a new one",
            shown.display(),
            source.described
        );
    }
    open_store(config).await
}

/// `tern init`: creates the data directory and its store.
pub async fn init(config: &Config, out: Output) -> Result<()> {
    check_data_dir(&config.data_dir)?;
    let existed = config.data_dir.join(STORE_FILE).exists()
        && config.store.backend == tern_core::StoreBackend::Sqlite;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            absolute(&config.data_dir).display()
        )
    })?;
    let store = open_store(config).await?;
    store.close().await?;
    let shown = absolute(&config.data_dir);
    match out {
        Output::Human if existed => println!("data directory {} already set up", shown.display()),
        Output::Human => println!(
            "created the data directory {}; next: tern domain add example.com",
            shown.display()
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({ "data_dir": shown, "created": !existed })
        ),
    }
    Ok(())
}

/// The PostgreSQL database at `url`, its certificate checked against the
/// CA certificates in `tls_ca_file` when one is given.
pub fn pg_options(url: String, tls_ca_file: Option<&Path>) -> Result<PgOptions> {
    let mut options = PgOptions::new(url);
    if let Some(path) = tls_ca_file {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(
            tern_core::tls::load_certs(path).context("reading store.tls_ca_file")?,
        );
        if added == 0 {
            bail!(
                "store.tls_ca_file: no CA certificate in {} is usable",
                path.display()
            );
        }
        options.tls_roots = Some(roots);
    }
    Ok(options)
}

/// Opens the store the configuration points at: the SQLite file with its
/// durability, or the PostgreSQL database (migrating its schema).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    if config.store.backend == tern_core::StoreBackend::Postgres {
        let url = config
            .store
            .postgres_url()
            .context("backend = \"postgres\" needs store.url or TERN_STORE_URL")?;
        let mut options = pg_options(url, config.store.tls_ca_file.as_deref())?;
        options.pool_size = config.store.pool_size as usize;
        options.blob_dir = config.store.blob_dir.clone();
        let store = PgStore::open(options)
            .await
            .context("opening the PostgreSQL store")?;
        return Ok(Arc::new(store));
    }
    check_data_dir(&config.data_dir)?;
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

/// Parses a size such as `500M` (see [`tern_core::size`]).
pub fn parse_size(text: &str) -> Result<u64> {
    Ok(tern_core::size::parse_size(text)?)
}

pub use tern_core::size::format_size;

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
    fn describe_drops_repeated_causes() {
        let inner = std::io::Error::other("disk full");
        let e = anyhow::Error::new(inner).context("writing x: disk full");
        assert_eq!(describe(&e), "writing x: disk full");
        let e = anyhow::anyhow!("low").context("high");
        assert_eq!(describe(&e), "high: low");
    }
}
