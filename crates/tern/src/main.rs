//! `tern`: the command line of the Tern mail server.
//!
//! `tern serve` runs the server; every other command administers the same
//! data directory, and works while the server runs (SQLite orders the two
//! processes' writes). `--config FILE` (or `TERN_CONFIG`), `--data-dir DIR`
//! and `--json` are global: they may stand before or after the command.
//!
//! Only `serve` and `init` create a data directory. Any other command run
//! where there is none says where it looked and how to point it elsewhere,
//! instead of quietly starting an empty one.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tern::admin::{self, Output};

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: a complete mail server in one binary"
)]
struct Cli {
    /// Configuration file [default: tern.toml in the working directory, if present]
    #[arg(long, global = true, value_name = "FILE", env = "TERN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory, instead of the configuration's `data_dir`
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print results as JSON, for scripts
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the mail server with every configured listener
    Serve {
        /// How log lines are written to stderr: text for people, json (one
        /// object per line) for log shippers
        #[arg(long, value_enum, default_value = "text")]
        log_format: tern::server::LogFormat,
    },
    /// Create the data directory and its store, for administering before the first `serve`
    Init,
    /// Manage the domains Tern receives mail for
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage accounts (mail users)
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage aliases: addresses that forward to accounts or elsewhere
    #[command(subcommand)]
    Alias(AliasCommand),
    /// See and lift the running server's login blocks
    #[command(subcommand)]
    Security(SecurityCommand),
    /// See the mail waiting to leave
    #[command(subcommand)]
    Queue(QueueCommand),
    /// DKIM signing keys of local domains
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// API tokens: what programs send as `Authorization: Bearer` instead of a password
    #[command(subcommand)]
    Token(TokenCommand),
    /// The spam filter: what each account's classifier has learned
    #[command(subcommand)]
    Spam(SpamCommand),
    /// Move the mail store to another backend
    #[command(subcommand)]
    Store(StoreCommand),
    /// The DNS records DOMAIN should publish: MX, SPF, DKIM, DMARC and client SRV records
    Dns { domain: String },
    /// Outbound TLS sessions by destination, policy and result (RFC 8460 data)
    TlsReport {
        /// How many days back, today included
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a whole SQLite deployment into an empty PostgreSQL database
    ///
    /// Everything is copied: domains, accounts, aliases, mailboxes and
    /// subscriptions, messages with their flags, the change journal, the
    /// outbound queue, submissions, uploads, DKIM keys, settings and the
    /// spam filter's memory. Ids, UIDs, UIDVALIDITY and modseqs are kept, so
    /// IMAP and JMAP clients carry on without downloading anything again.
    ///
    /// Stop `tern serve` first (the copy refuses to start while a server
    /// holds the data directory, and holds it until done). The copy goes in
    /// batches, each committed with its progress: after Ctrl-C, a kill or a
    /// lost connection, run the same command again to continue where it
    /// stopped. At the end the row counts of every table are compared.
    /// Then set `[store] backend = "postgres"` and `url` in tern.toml and
    /// start the server (or several nodes) on the database.
    Migrate {
        /// The SQLite store: sqlite:DIR for a data directory, or sqlite:FILE for its tern.db
        #[arg(long, value_name = "sqlite:DIR")]
        from: String,
        /// The PostgreSQL database, postgres://user:password@host:port/database; it must hold no deployment yet (its certificate is checked with the configuration's [store] tls_ca_file)
        #[arg(
            long,
            value_name = "URL",
            env = "TERN_STORE_URL",
            hide_env_values = true
        )]
        to: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token for ACCOUNT and print it (it is not shown again)
    Create {
        account: String,
        /// Days it is valid
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Revoke one of ACCOUNT's tokens
    Revoke { account: String, token: String },
}

#[derive(Subcommand)]
enum SpamCommand {
    /// Messages trained as spam and not spam, and the filter's accuracy on the user's recent corrections
    Stats { account: String },
}

#[derive(Subcommand)]
enum DkimCommand {
    /// Make an Ed25519 and an RSA-2048 key for DOMAIN and print the DNS records to publish
    Generate {
        domain: String,
        /// Selector base; "e" and "r" are appended (default tYYYYMM)
        #[arg(long)]
        selector: Option<String>,
    },
    /// Print the DNS records of DOMAIN's keys again
    Show { domain: String },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Every queued message: sender, recipients with status, attempts, next attempt, last error
    List,
    /// One queued message, with its header
    Show { id: i64 },
    /// Try the pending recipients of ID (of every message without one) now
    Flush {
        id: Option<i64>,
        /// Only messages with recipients in this domain
        #[arg(long, conflicts_with = "id")]
        domain: Option<String>,
    },
    /// Drop queued message ID: its recipients get nothing and nobody is told
    Remove { id: i64 },
    /// Keep queued message ID from being delivered until released
    Hold { id: i64 },
    /// Let a held message be delivered again
    Release { id: i64 },
}

#[derive(Subcommand)]
enum SecurityCommand {
    /// List the client addresses refused after too many failed logins
    Blocked,
    /// Let ADDRESS log in again at once
    Unblock { address: String },
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Start receiving mail for DOMAIN
    Add { domain: String },
    /// List the domains
    List,
    /// Stop receiving mail for DOMAIN (its accounts must be removed first)
    Remove { domain: String },
}

#[derive(Args)]
struct PasswordSource {
    /// Read the password from the first line of standard input instead of prompting
    #[arg(long)]
    password_stdin: bool,
    /// Keep a password that would be refused as too easy to guess
    #[arg(long)]
    allow_weak: bool,
}

impl PasswordSource {
    fn input(&self) -> admin::PasswordInput {
        admin::PasswordInput {
            from_stdin: self.password_stdin,
            allow_weak: self.allow_weak,
        }
    }
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account with INBOX, Sent, Drafts, Trash, Junk and Archive
    Add {
        /// The address, which is also the login name
        address: String,
        #[command(flatten)]
        password: PasswordSource,
        /// Storage limit, e.g. 500M, 2G, 1073741824 (bytes); none by default
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
    },
    /// List the accounts with their storage use
    List,
    /// Remove an account and ALL its mail
    Remove { address: String },
    /// Set a new password
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

#[derive(Subcommand)]
enum AliasCommand {
    /// Forward ALIAS to every TARGET (added to its targets if it exists); "@domain" catches all
    Add {
        alias: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List the aliases
    List,
    /// Remove an alias
    Remove { alias: String },
}

/// Makes glibc return large freed blocks to the system at once. Its default
/// threshold adapts upwards after a large block is freed, so after one Argon2
/// verification (19 MiB) every later buffer comes from arenas that are never
/// trimmed, and the resident size of each thread's arena grows with the
/// connections it served: 2 MiB per idle IMAP connection where 16 KiB is
/// live (BENCHMARKS.md, issue 4). Fixing the threshold stops the adapting.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_retention() {
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_retention() {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = if cli.json {
        Output::Json
    } else {
        Output::Human
    };
    limit_malloc_retention();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking threads run store reads and Argon2; past a few per core
        // they only contend for the CPU (and each holds a read connection),
        // so further work queues instead. Tokio's default is 512.
        .max_blocking_threads(64)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole chain of causes: what failed and why.
            match output {
                Output::Human => eprintln!("error: {}", admin::describe(&e)),
                // Scripts read stdout as JSON, errors included.
                Output::Json => {
                    println!("{}", serde_json::json!({ "error": admin::describe(&e) }))
                }
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, out: Output) -> Result<()> {
    let mut config = tern_core::Config::load(cli.config.as_deref())?;
    let source = admin::DataDirSource::new(cli.config.as_deref(), cli.data_dir.is_some());
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Serve { log_format } => return tern::server::serve(config, log_format).await,
        Command::Init => return admin::init(&config, out).await,
        // Not the configured store: the two named on the command line.
        Command::Store(StoreCommand::Migrate { from, to }) => {
            let tls_ca_file = config.store.tls_ca_file.as_deref();
            return admin::store_migrate(&from, &to, tls_ca_file, out).await;
        }
        Command::Security(command) => {
            admin::check_data_dir(&config.data_dir)?;
            return match command {
                SecurityCommand::Blocked => admin::security::blocked(&config.data_dir, out).await,
                SecurityCommand::Unblock { address } => {
                    admin::security::unblock(&config.data_dir, &address, out).await
                }
            };
        }
        _ => {}
    }
    let store = admin::open_existing_store(&config, &source).await?;
    let result = match cli.command {
        Command::Serve { .. } | Command::Init | Command::Security(_) | Command::Store(_) => {
            unreachable!("handled above")
        }
        Command::Domain(DomainCommand::Add { domain }) => {
            admin::domain_add(&*store, &domain, out).await
        }
        Command::Domain(DomainCommand::List) => admin::domain_list(&*store, out).await,
        Command::Domain(DomainCommand::Remove { domain }) => {
            admin::domain_remove(&*store, &domain, out).await
        }
        Command::Account(AccountCommand::Add {
            address,
            password,
            quota,
        }) => admin::account_add(&*store, &address, password.input(), quota.as_deref(), out).await,
        Command::Account(AccountCommand::List) => admin::account_list(&*store, out).await,
        Command::Account(AccountCommand::Remove { address }) => {
            admin::account_remove(&*store, &address, out).await
        }
        Command::Account(AccountCommand::Passwd { address, password }) => {
            admin::account_passwd(&*store, &address, password.input(), out).await
        }
        Command::Alias(AliasCommand::Add { alias, targets }) => {
            admin::alias_add(&*store, &alias, &targets, out).await
        }
        Command::Alias(AliasCommand::List) => admin::alias_list(&*store, out).await,
        Command::Queue(QueueCommand::List) => admin::queue_list(&*store, out).await,
        Command::Queue(QueueCommand::Show { id }) => admin::queue_show(&*store, id, out).await,
        Command::Queue(QueueCommand::Flush {
            domain: Some(domain),
            ..
        }) => admin::queue_flush_domain(&*store, &domain, out).await,
        Command::Queue(QueueCommand::Flush { id, .. }) => {
            admin::queue_flush(&*store, id, out).await
        }
        Command::Dkim(DkimCommand::Generate { domain, selector }) => {
            admin::dkim_generate(&*store, &domain, selector.as_deref(), out).await
        }
        Command::Dkim(DkimCommand::Show { domain }) => {
            admin::dkim_show(&*store, &domain, out).await
        }
        Command::TlsReport { days } => admin::tls_report(&*store, days, out).await,
        Command::Token(TokenCommand::Create { account, days }) => {
            admin::token_create(&*store, &account, days, out).await
        }
        Command::Token(TokenCommand::Revoke { account, token }) => {
            admin::token_revoke(&*store, &account, &token, out).await
        }
        Command::Spam(SpamCommand::Stats { account }) => {
            admin::spam_stats(&*store, &account, out).await
        }
        Command::Dns { domain } => admin::dns_records(&*store, &config, &domain, out).await,
        Command::Queue(QueueCommand::Remove { id }) => admin::queue_remove(&*store, id, out).await,
        Command::Queue(QueueCommand::Hold { id }) => {
            admin::queue_hold(&*store, id, true, out).await
        }
        Command::Queue(QueueCommand::Release { id }) => {
            admin::queue_hold(&*store, id, false, out).await
        }
        Command::Alias(AliasCommand::Remove { alias }) => {
            admin::alias_remove(&*store, &alias, out).await
        }
    };
    // Close cleanly whatever happened; the command's own error comes first.
    let closed = store.close().await;
    result?;
    Ok(closed?)
}
