//! `tern store migrate --from sqlite:DIR --to postgres://…` (issue 16):
//! moves a deployment from the embedded SQLite store to PostgreSQL, for
//! running several nodes on one database. The copy itself is
//! `tern_store::postgres::migrate`; this is the command around it: the
//! data directory held so no server writes the store meanwhile, progress
//! on stderr, Ctrl-C stopping after the batch in flight, the summary.

use super::Output;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tern_store::postgres::migrate::{self, Flow, Progress, Report};

/// Width of the progress bar, in characters.
const BAR_WIDTH: usize = 30;

/// Exit status of a process ended by a second Ctrl-C (128 + SIGINT).
const INTERRUPTED: i32 = 130;

/// `tern store migrate`.
/// `tls_ca_file` checks the database's certificate (`[store] tls_ca_file`).
pub async fn store_migrate(
    from: &str,
    to: &str,
    tls_ca_file: Option<&Path>,
    out: Output,
) -> Result<()> {
    let (data_dir, db) = source(from)?;
    let target = super::pg_options(target(to)?, tls_ca_file)?;
    if !db.is_file() {
        bail!(
            "no SQLite store at {} (--from names a data directory holding tern.db, or the file)",
            db.display()
        );
    }
    // Held until the copy ends: a server started meanwhile is refused, and
    // one running now refuses the copy (its writes would be half copied).
    let _lock = match crate::server::lock::try_lock_data_dir(&data_dir, "tern store migrate")
        .context("taking the data directory, so no server writes the store while it is copied")?
    {
        Ok(lock) => lock,
        Err(who) => bail!(
            "{who} is using the data directory {}: stop it first, so nothing changes while the store is copied",
            data_dir.display()
        ),
    };

    // Ctrl-C stops after the batch in flight (committed, so the next run
    // continues from it); a second one ends the process at once.
    let stop = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Release);
                eprintln!("\nstopping after the batch in flight (Ctrl-C again to quit at once)");
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(INTERRUPTED);
                }
            }
        }
    });
    let mut shown = Shown::new(out);
    let result = migrate::from_sqlite(&db, &target, |p| {
        shown.progress(p);
        if stop.load(Ordering::Acquire) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .await;
    signals.abort();
    shown.finish();
    let report = result.with_context(|| format!("copying {} into PostgreSQL", db.display()))?;
    if !report.complete {
        bail!("stopped; run the same command again to continue where it stopped");
    }
    let mismatches: Vec<String> = report
        .mismatches()
        .map(|c| {
            format!(
                "{}: {} in SQLite, {} in PostgreSQL",
                c.table, c.source, c.target
            )
        })
        .collect();
    if !mismatches.is_empty() {
        bail!(
            "the copy does not match its source ({}); was the store changed while it was copied?",
            mismatches.join("; ")
        );
    }
    summary(&db, &report, out);
    Ok(())
}

/// The data directory and database file `--from` names.
fn source(from: &str) -> Result<(PathBuf, PathBuf)> {
    let Some(path) = from.strip_prefix("sqlite:") else {
        bail!("--from must be sqlite:DIR (a data directory, or its tern.db), not {from:?}");
    };
    let path = Path::new(path);
    let db = migrate::sqlite_file(path);
    let data_dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        db.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    Ok((data_dir, db))
}

/// The PostgreSQL URL `--to` names.
fn target(to: &str) -> Result<String> {
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a PostgreSQL URL, postgres://user:password@host:port/database");
    }
    Ok(to.to_string())
}

/// How progress is shown: a bar redrawn in place on a terminal, a line
/// per table otherwise, nothing for `--json` (stdout is the JSON).
struct Shown {
    bar: bool,
    lines: bool,
    /// A bar is drawn and needs a newline before anything else.
    open: bool,
}

impl Shown {
    fn new(out: Output) -> Shown {
        let terminal = std::io::stderr().is_terminal();
        Shown {
            bar: terminal,
            lines: !terminal && out == Output::Human,
            open: false,
        }
    }

    fn progress(&mut self, p: &Progress<'_>) {
        let mut err = std::io::stderr().lock();
        if self.bar {
            let share = if p.total == 0 {
                1.0
            } else {
                p.done.min(p.total) as f64 / p.total as f64
            };
            let filled = (share * BAR_WIDTH as f64).round() as usize;
            let _ = write!(
                err,
                "\r{:>2}/{} {:<16} [{}{}] {}/{} rows {:>3}%\x1b[K",
                p.index,
                p.tables,
                p.table,
                "#".repeat(filled),
                ".".repeat(BAR_WIDTH - filled),
                p.done,
                p.total,
                (share * 100.0).floor() as u32
            );
            self.open = !p.finished;
            if p.finished {
                let _ = writeln!(err);
            }
            let _ = err.flush();
        } else if self.lines && p.finished {
            let _ = writeln!(err, "{}: {} rows", p.table, p.done);
        }
    }

    fn finish(&mut self) {
        if self.open {
            eprintln!();
            self.open = false;
        }
    }
}

fn summary(db: &Path, report: &Report, out: Output) {
    match out {
        Output::Json => super::commands::print_json(json!({
            "source": db,
            "complete": report.complete,
            "resumed": report.resumed,
            "tables": report.counts,
        })),
        Output::Human => {
            println!(
                "copied {} into PostgreSQL{}; every table has as many rows as its source:",
                db.display(),
                if report.resumed {
                    " (continuing an earlier run)"
                } else {
                    ""
                }
            );
            let empty = report.counts.iter().filter(|c| c.target == 0).count();
            for c in report.counts.iter().filter(|c| c.target > 0) {
                println!("  {:<18} {:>12}", c.table, c.target);
            }
            if empty > 0 {
                println!("  ({empty} tables empty in both)");
            }
            println!(
                "next: set [store] backend = \"postgres\" and its url in tern.toml (or TERN_STORE_URL) and start tern serve"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_names_a_data_directory_or_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let given = format!("sqlite:{}", dir.path().display());
        let (data_dir, db) = source(&given).unwrap();
        assert_eq!(data_dir, dir.path());
        assert_eq!(db, dir.path().join("tern.db"));
        let file = dir.path().join("tern.db");
        std::fs::write(&file, b"").unwrap();
        let (data_dir, db) = source(&format!("sqlite:{}", file.display())).unwrap();
        assert_eq!(
            (data_dir.as_path(), db.as_path()),
            (dir.path(), file.as_path())
        );
        assert!(source(dir.path().to_str().unwrap()).is_err());
        assert!(target("sqlite:/x").is_err());
        assert!(target("postgres://u@h/db").is_ok());
    }
}
