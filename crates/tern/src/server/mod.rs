//! `tern serve`: opens the store, binds every configured listener whose
//! protocol is built, says `ready`, and runs until SIGTERM or SIGINT.
//!
//! Shutdown order matters: stop accepting first (no new sessions), give
//! running sessions a grace period to finish their command, then close the
//! store (the writer thread drains its queue and checkpoints the WAL), and
//! only then exit 0. A session cut off by the grace period loses nothing
//! acknowledged: every acknowledgement waited for a durable commit.

pub mod control;
mod listener;
pub(crate) mod lock;
mod shutdown;

pub use listener::{
    bind, bind_or_io, Accepted, BoxedSession, ConnectionLimits, ConnectionSlot, LimitExceeded,
    Listener, RefusalLog,
};
pub use shutdown::{SessionTracker, Shutdown};

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tern_core::AuthLimiter;
use tern_core::{Config, Protocol};
use tern_imap::ImapServer;
use tern_mail::{Mail, MailConfig};
use tern_pop3::Pop3Server;
use tern_smtp::{Mode, SmtpServer};
use tern_store::Store;
use tokio::sync::watch;

/// How long running sessions get to finish after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What serves one protocol on an accepted connection. Protocol crates
/// provide these as they are built.
pub type Service = Arc<dyn Fn(Accepted) -> BoxedSession + Send + Sync>;

/// Everything a protocol needs from the running server.
pub struct ServerContext {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub tls: Arc<tokio_rustls::rustls::ServerConfig>,
    pub shutdown: Shutdown,
    pub smtp: Arc<SmtpServer>,
    pub pop3: Arc<Pop3Server>,
    pub http: Arc<tern_http::HttpServer>,
    pub imap: Arc<ImapServer>,
}

/// The service for `protocol`, or `None` while that protocol is not built.
fn service_for(protocol: Protocol, ctx: &Arc<ServerContext>) -> Option<Service> {
    match protocol {
        Protocol::Smtp => Some(smtp_service(ctx, Mode::Mta)),
        Protocol::Submission => Some(smtp_service(ctx, Mode::Submission)),
        Protocol::Submissions => Some(smtp_service(ctx, Mode::Submissions)),
        Protocol::Pop3 => Some(pop3_service(ctx, tern_pop3::Mode::Plain)),
        Protocol::Pop3s => Some(pop3_service(ctx, tern_pop3::Mode::Tls)),
        Protocol::Imap => Some(imap_service(ctx, tern_imap::Mode::Plain)),
        Protocol::Imaps => Some(imap_service(ctx, tern_imap::Mode::Tls)),
        Protocol::Http => Some(http_service(ctx, tern_http::Mode::Plain)),
        Protocol::Https => Some(http_service(ctx, tern_http::Mode::Tls)),
    }
}

/// What every protocol's `handle` receives: the connection, its peer, its
/// slot (`Err` names the limit reached), and the shutdown signal.
type Connection = (
    tokio::net::TcpStream,
    std::net::SocketAddr,
    Result<ConnectionSlot, LimitExceeded>,
    watch::Receiver<bool>,
);

/// A [`Service`] that runs `session` on each accepted connection, which
/// holds its slot; the session is dropped (closing the connection) if the
/// slot is evicted to make room for another client before login.
fn service<F, Fut>(ctx: &Arc<ServerContext>, session: F) -> Service
where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let stopping = ctx.shutdown.receiver();
    let session = Arc::new(session);
    Arc::new(move |accepted: Accepted| {
        let (session, stopping) = (session.clone(), stopping.clone());
        Box::pin(async move {
            let eviction = match &accepted.admission {
                Ok(slot) => slot.eviction(),
                Err(_) => Arc::new(tokio::sync::Notify::new()),
            };
            let run = session((accepted.stream, accepted.peer, accepted.admission, stopping));
            tokio::select! {
                _ = run => {}
                _ = eviction.notified() => {}
            }
        })
    })
}

/// SMTP sessions of one kind (port 25, 587 or 465).
fn smtp_service(ctx: &Arc<ServerContext>, mode: Mode) -> Service {
    let smtp = ctx.smtp.clone();
    service(ctx, move |(stream, peer, admitted, stopping)| {
        smtp.clone().handle(stream, peer, mode, admitted, stopping)
    })
}

/// IMAP sessions on port 143 or 993.
fn imap_service(ctx: &Arc<ServerContext>, mode: tern_imap::Mode) -> Service {
    let imap = ctx.imap.clone();
    service(ctx, move |(stream, peer, admitted, stopping)| {
        imap.clone().handle(stream, peer, mode, admitted, stopping)
    })
}

/// POP3 sessions on port 110 or 995.
fn pop3_service(ctx: &Arc<ServerContext>, mode: tern_pop3::Mode) -> Service {
    let pop3 = ctx.pop3.clone();
    service(ctx, move |(stream, peer, admitted, stopping)| {
        pop3.clone().handle(stream, peer, mode, admitted, stopping)
    })
}

/// HTTP connections on port 80 or 443 (JMAP).
fn http_service(ctx: &Arc<ServerContext>, mode: tern_http::Mode) -> Service {
    let http = ctx.http.clone();
    service(ctx, move |(stream, peer, admitted, stopping)| {
        http.clone().handle(stream, peer, mode, admitted, stopping)
    })
}

/// How `serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line (timestamp, level, fields such as
    /// `client`, and the message), for log shippers.
    Json,
}

/// Sets up logging to stderr; `RUST_LOG` overrides the default `info`.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .try_init(),
    };
}

/// How often the store's housekeeping runs: retention is counted in days,
/// so an hour's delay is nothing, and each run is a few bounded writer steps.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

/// The store's housekeeping, at start and then hourly, until shutdown:
/// prunes journal changes older than `[store] journal_retention_days` (0
/// keeps them) and drops expired uploads.
/// How often IMAP's \Recent claims are written to the Store.
const RECENT_CLAIMS_INTERVAL: Duration = Duration::from_secs(5);

/// Writes IMAP's \Recent claims to the Store now and then, and once more
/// at shutdown (see `tern_imap::RecentClaims`).
async fn record_recent_claims(ctx: Arc<ServerContext>, shutdown: Shutdown) {
    let mut stopping = shutdown.receiver();
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(RECENT_CLAIMS_INTERVAL) => false,
            _ = stopping.changed() => true,
        };
        ctx.imap.recent.flush(&ctx.store).await;
        if stop {
            return;
        }
    }
}

async fn housekeeping_hourly(store: Arc<dyn Store>, retention_days: u32, shutdown: Shutdown) {
    let mut stopping = shutdown.receiver();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if retention_days > 0 {
            let before = now - i64::from(retention_days) * 86_400;
            match store.prune_journal(before).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!("journal: pruned {n} changes older than {retention_days} days")
                }
                Err(e) => tracing::warn!("journal: pruning old changes: {e}"),
            }
        }
        match store.expire_uploads(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("uploads: dropped {n} expired"),
            Err(e) => tracing::warn!("uploads: dropping expired ones: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// Runs the server until a stop signal.
pub async fn serve(config: Config, log_format: LogFormat) -> Result<()> {
    init_logging(log_format);
    crate::admin::check_data_dir(&config.data_dir)?;
    let data_dir = config.data_dir.clone();
    let created = !data_dir.exists();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let mut ready = false;
    let result = serve_until_stopped(config, &mut ready).await;
    // A server that never came up leaves no half-made data directory
    // behind for the next attempt (or an admin command) to trip over.
    if result.is_err() && created && !ready {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

/// [`serve`] in a data directory that exists; sets `ready` once serving.
async fn serve_until_stopped(config: Config, ready: &mut bool) -> Result<()> {
    // Held until the process ends: one server per data directory.
    let _data_dir_lock = lock::lock_data_dir(&config.data_dir)?;
    let store = crate::admin::open_store(&config).await?;
    let tls = tern_core::tls::server_config(
        &config.tls,
        &config.hostname,
        &config
            .listeners()
            .iter()
            .map(|(_, a)| a.ip())
            .collect::<Vec<_>>(),
        &config.data_dir,
    )
    .context("setting up TLS")?;
    let shutdown = Shutdown::new();
    let limiter = Arc::new(AuthLimiter::from_limits(&config.limits));
    control::start(
        &config.data_dir,
        limiter.clone(),
        store.clone(),
        shutdown.clone(),
    );
    let spool = tern_core::spool::SpoolConfig::in_data_dir(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.join("spool").display()))?;
    let mut mail = Mail::new(
        store.clone(),
        MailConfig {
            hostname: config.hostname.clone(),
            recipient_delimiter: config.smtp.recipient_delimiter.clone(),
            check_header_from: config.smtp.check_header_from,
        },
        limiter,
    )
    .with_spool(spool);
    if !config.virus.clamd.is_empty() {
        tracing::info!("virus scanning with clamd at {}", config.virus.clamd);
        mail = mail.with_screen(Arc::new(tern_mail::virus::Clamd::new(config.virus.clone())));
    }
    for server in &config.milter.servers {
        tracing::info!("mail filter (milter) at {server}");
        mail = mail.with_screen(Arc::new(tern_mail::milter::Milter::new(
            server.clone(),
            config.milter.clone(),
            config.hostname.clone(),
        )));
    }
    // One resolver (and its cache) for sender authentication and the
    // spam filter's block lists.
    let resolver = Arc::new(
        tern_smtp::dns::Resolver::new(&config.dns)
            .map_err(|e| anyhow::anyhow!("setting up DNS for inbound checks: {e}"))?,
    );
    if config.spam.enabled {
        let lists: Arc<dyn tern_mail::spam::lists::DnsLookup> = resolver.clone();
        mail = mail
            .with_screen(Arc::new(
                tern_mail::spam::SpamRules::new(config.spam.clone(), Some(lists))
                    .trusting(config.smtp.relay_networks.clone()),
            ))
            .with_filter(Arc::new(tern_mail::spam::SpamFilter::new(
                config.spam.clone(),
                store.clone(),
            )));
    }
    let mail = Arc::new(mail);
    let mut smtp_server = SmtpServer::new(
        mail.clone(),
        tls.clone(),
        config.smtp.clone(),
        config.limits.clone(),
    );
    if config.spam.enabled && config.spam.greylisting {
        smtp_server = smtp_server.with_greylisting(config.spam.greylist_delay_secs);
    }
    if config.inbound.any() {
        smtp_server = smtp_server.with_trust(Arc::new(tern_smtp::trust::Trust::new(
            resolver.hickory(),
            config.inbound.clone(),
            config.hostname.clone(),
        )));
    }
    let tracer = Arc::new(tern_core::trace::Tracer::new(
        config.trace.clone(),
        &config.data_dir,
    ));
    let imap = Arc::new(ImapServer {
        hostname: config.hostname.clone(),
        store: store.clone(),
        mail: mail.clone(),
        tls: tls.clone(),
        limits: config.limits.clone(),
        tracer: tracer.clone(),
        recent: Default::default(),
    });
    let http = Arc::new(tern_http::HttpServer::new(
        mail.clone(),
        tls.clone(),
        config.limits.clone(),
        &config.jmap,
    ));
    let smtp = Arc::new(smtp_server.with_tracer(tracer.clone()));
    let pop3 = Arc::new(
        Pop3Server::new(
            mail,
            tls.clone(),
            config.pop3.clone(),
            config.limits.clone(),
        )
        .with_tracer(tracer),
    );
    let ctx = Arc::new(ServerContext {
        config,
        store,
        tls,
        shutdown: shutdown.clone(),
        smtp,
        pop3,
        imap,
        http,
    });
    let recent_recorder = tokio::spawn(record_recent_claims(ctx.clone(), shutdown.clone()));
    // JMAP push to the URLs of verified push subscriptions.
    {
        let (http, stopping) = (ctx.http.clone(), shutdown.receiver());
        tokio::spawn(async move { http.start(stopping).await });
    }
    let outbound = {
        let worker = Arc::new(tern_smtp::outbound::Worker::new(
            ctx.smtp.mail.clone(),
            ctx.config.outbound.clone(),
            &ctx.config.dns,
        ));
        tokio::spawn(worker.run_until(shutdown.receiver()))
    };
    // Each user's spam classifier learns from what they move into and out
    // of Junk.
    let trainer = (ctx.config.spam.enabled && ctx.config.spam.bayes).then(|| {
        let trainer = tern_mail::spam::bayes::Trainer::new(ctx.store.clone());
        tokio::spawn(trainer.run_until(shutdown.receiver()))
    });
    let pruner = tokio::spawn(housekeeping_hourly(
        ctx.store.clone(),
        ctx.config.store.journal_retention_days,
        shutdown.clone(),
    ));
    let limits = ConnectionLimits::new(
        ctx.config.limits.max_connections,
        ctx.config.limits.max_connections_per_ip,
        ctx.config.limits.max_unauthenticated,
    );
    let refusals = RefusalLog::default();
    tokio::spawn(refusals.clone().summarise_until(shutdown.clone()));
    let sessions = SessionTracker::new();

    let mut signals = shutdown::Signals::install().context("installing signal handlers")?;
    let mut accept_loops = Vec::new();
    for (protocol, addr) in ctx.config.listeners() {
        let Some(service) = service_for(protocol, &ctx) else {
            tracing::info!("{protocol} on {addr}: skipped, {protocol} is not built yet");
            continue;
        };
        let listener = match listener::bind_or_io(protocol, addr) {
            Ok(listener) => listener,
            // `[::]` is in the defaults; a machine without IPv6 serves IPv4.
            Err((e, message))
                if addr.ip().is_unspecified() && listener::is_ipv6_unavailable(addr, &e) =>
            {
                tracing::warn!("{message}: {e}; this machine has no IPv6, serving IPv4 only");
                continue;
            }
            Err((e, message)) => return Err(anyhow::Error::new(e).context(message)),
        };
        tracing::info!("{protocol} listening on {}", listener.local_addr());
        accept_loops.push(tokio::spawn(listener.run(
            service,
            limits.clone(),
            sessions.clone(),
            shutdown.clone(),
            refusals.clone(),
        )));
    }
    tracing::info!(
        hostname = %ctx.config.hostname,
        data_dir = %ctx.config.data_dir.display(),
        "tern ready: {} listener(s) serving",
        accept_loops.len()
    );
    *ready = true;

    let signal = signals.recv().await;
    tracing::info!("{signal} received: no new connections, finishing sessions");
    // A second signal means the operator will not wait: exit at once. Every
    // acknowledged write is already durable, so this loses nothing promised.
    tokio::spawn(async move {
        let signal = signals.recv().await;
        tracing::warn!("{signal} received again: exiting without waiting");
        std::process::exit(1);
    });
    shutdown.trigger();
    for l in accept_loops {
        let _ = l.await;
    }
    if !sessions.wait_idle(SHUTDOWN_GRACE).await {
        tracing::warn!(
            "{} session(s) still running after {SHUTDOWN_GRACE:?}; closing anyway",
            sessions.active()
        );
    }
    let _ = pruner.await;
    if let Some(trainer) = trainer {
        let _ = trainer.await;
    }
    let _ = recent_recorder.await;
    // A delivery in progress gets the grace period to record what the
    // next hop took; after that it is dropped, and the lease lets the next
    // start send it again.
    let outbound_abort = outbound.abort_handle();
    if tokio::time::timeout(SHUTDOWN_GRACE, outbound)
        .await
        .is_err()
    {
        outbound_abort.abort();
    }
    // Claims made by sessions that ran on into the grace period.
    ctx.imap.recent.flush(&ctx.store).await;
    ctx.store.close().await.context("closing the store")?;
    tracing::info!("tern stopped cleanly");
    Ok(())
}
