//! `tidemark`: the Tidemark database server.
//!
//! Boot: configuration -> HTTP (`/health` says 503 until serving) -> root lock
//! and recovery (storage) -> serve the PostgreSQL protocol. SIGTERM/SIGINT stop
//! accepting, give running statements a bounded time to finish, make
//! everything durable, release the root, exit 0.

mod backup_cli;
mod backup_client;
mod config;
mod http;
mod ilp;
mod metrics;
mod pg;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tidemark_storage::{Database, StorageOptions};

#[derive(Debug, Parser)]
#[command(
    name = "tidemark",
    version,
    about = "Tidemark: a time-series SQL database speaking the PostgreSQL protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// Configuration file (default: conf/server.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Root directory (overrides server.root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Address for the PostgreSQL protocol (overrides server.pg_listen).
        #[arg(long)]
        pg_listen: Option<String>,
        /// Address for HTTP /health and /metrics (overrides server.http_listen).
        #[arg(long)]
        http_listen: Option<String>,
        /// Address for line protocol over TCP, "" for off (overrides ilp.listen).
        #[arg(long)]
        ilp_listen: Option<String>,
    },
    /// Read a password on standard input and print its SCRAM-SHA-256 verifier, to put
    /// in auth.password instead of the password itself.
    HashPassword,
    /// Restore a built-in backup into a new root (then `tidemark serve --root <dir>`).
    Restore {
        /// Configuration file (its [backup] S3 settings are used).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the backups are (default: backup.destination).
        #[arg(long)]
        from: Option<String>,
        /// The root to create: an empty or new directory.
        #[arg(long)]
        root: PathBuf,
        /// The backup to restore (default: the newest complete one).
        #[arg(long = "backup", alias = "to-backup", conflicts_with = "to_time")]
        backup: Option<String>,
        /// Point-in-time restore: the state after the last commit at or before
        /// this RFC 3339 time (the newest backup before it, then the log backup).
        #[arg(long = "to-time")]
        to_time: Option<String>,
    },
    /// Take a backup of a running server (`tidemark backup --server host:port`:
    /// BACKUP DATABASE, then wait until it ends; exit 0 when it is complete), or
    /// list, verify or prune the backups at a destination.
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        #[command(subcommand)]
        action: Option<BackupCommand>,
        #[command(flatten)]
        take: backup_client::ServerBackupArgs,
    },
    /// Ask the server configured here for GET /health: exit 0 when it serves (for
    /// container health checks; the slim image has no curl).
    Health {
        /// Configuration file (default: conf/server.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address of the HTTP listener (overrides server.http_listen).
        #[arg(long)]
        http_listen: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// The complete backups, oldest first (tab-separated).
    List {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the backups are (default: backup.destination).
        #[arg(long)]
        from: Option<String>,
    },
    /// Read every object of a backup and check it against the manifest.
    Verify {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        from: Option<String>,
        /// The backup to check (default: the newest complete one).
        #[arg(long)]
        backup: Option<String>,
    },
    /// Remove what only restores to times before --before need: older backups
    /// (the newest one before the time stays) and the log before the oldest kept.
    Prune {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        from: Option<String>,
        /// An RFC 3339 time: restores to it and later stay possible.
        #[arg(long)]
        before: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (config, root, pg_listen, http_listen, ilp_listen) = match cli.command {
        Command::Serve {
            config,
            root,
            pg_listen,
            http_listen,
            ilp_listen,
        } => (config, root, pg_listen, http_listen, ilp_listen),
        Command::HashPassword => return hash_password(),
        Command::Restore {
            config,
            from,
            root,
            backup,
            to_time,
        } => return backup_cli::restore_command(config.as_deref(), from, &root, backup, to_time),
        Command::Backup { action, take } => {
            return match action {
                None => backup_client::server_backup_command(take),
                Some(BackupCommand::List { config, from }) => {
                    backup_cli::list_command(config.as_deref(), from)
                }
                Some(BackupCommand::Verify {
                    config,
                    from,
                    backup,
                }) => backup_cli::verify_command(config.as_deref(), from, backup),
                Some(BackupCommand::Prune {
                    config,
                    from,
                    before,
                }) => backup_cli::prune_command(config.as_deref(), from, &before),
            };
        }
        Command::Health {
            config,
            http_listen,
        } => return health(config.as_deref(), http_listen),
    };
    let mut config = match config::Config::load(config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(r) = root {
        config.server.root = r;
        config.origins.insert("server.root".into(), "command line");
    }
    if let Some(l) = pg_listen {
        config.server.pg_listen = l;
        config
            .origins
            .insert("server.pg_listen".into(), "command line");
    }
    if let Some(l) = http_listen {
        config.server.http_listen = l;
        config
            .origins
            .insert("server.http_listen".into(), "command line");
    }
    if let Some(l) = ilp_listen {
        config.ilp.listen = Some(l);
        config.origins.insert("ilp.listen".into(), "command line");
    }
    // The level was checked with the configuration.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        // One JSON object a line, for log collectors.
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    // Statements are planned and run on the worker threads: DataFusion's planner
    // and optimizer recurse over deep plans, so give them more than 2 MiB.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tidemark: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidemark: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tidemark health`: exit 0 when /health answers 200, 1 otherwise (the reason on stderr).
fn health(config: Option<&std::path::Path>, http_listen: Option<String>) -> std::process::ExitCode {
    let listen = match http_listen {
        Some(l) => l,
        None => match config::Config::load(config, std::env::vars()) {
            Ok(c) => c.server.http_listen,
            Err(e) => {
                eprintln!("tidemark: {e}");
                return std::process::ExitCode::from(2);
            }
        },
    };
    match http::probe(&listen) {
        Ok(body) => {
            println!("{body}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tidemark: not healthy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tidemark hash-password`: one line of standard input -> its verifier on stdout.
fn hash_password() -> std::process::ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("tidemark: cannot read the password: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("tidemark: no password on standard input");
        return std::process::ExitCode::from(2);
    }
    let salt: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
    println!(
        "{}",
        pg::password::Credential::verifier(password, &salt, pg::password::SCRAM_ITERATIONS)
    );
    std::process::ExitCode::SUCCESS
}

async fn serve(config: config::Config) -> Result<(), String> {
    let started = Instant::now();
    let users = Arc::new(pg::Users::new(&config.auth)?);
    let query_memory = match config.server.query_memory_mb {
        0 => None,
        mb => Some(
            usize::try_from(mb)
                .unwrap_or(usize::MAX)
                .saturating_mul(1 << 20),
        ),
    };
    let query_runtime = tidemark_executor::query_runtime(query_memory)
        .map_err(|e| format!("the query memory pool: {e}"))?;
    let parameters = Arc::new(config.parameters());
    let status = Arc::new(http::Status::new(
        parameters.clone(),
        Arc::new(metrics::Metrics::default()),
        users.clone(),
        Duration::from_millis(config.server.statement_timeout_ms),
        usize::try_from(config.ilp.max_request_mb)
            .unwrap_or(usize::MAX)
            .saturating_mul(1 << 20),
        query_runtime.clone(),
    ));
    // HTTP first, so that /health answers 503 while the root is recovered.
    let http_listener = tokio::net::TcpListener::bind(&config.server.http_listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} (server.http_listen): {e}",
                config.server.http_listen
            )
        })?;
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(addr = %http_addr, "serving HTTP (/health, /metrics, line protocol /write)");
    let http_task = tokio::spawn(http::serve(http_listener, status.clone()));
    let tls = if config.tls.enabled || config.tls.required {
        Some(tls::acceptor(&config.tls.cert_file, &config.tls.key_file)?)
    } else {
        None
    };

    let options = StorageOptions {
        commit_mode: config.storage.commit_mode.parse().map_err(|e: String| e)?,
        wal_segment_bytes: config.storage.wal_segment_mb << 20,
        housekeeping_interval: Duration::from_millis(config.storage.housekeeping_interval_ms),
        reclaim_paths_per_second: config.storage.reclaim_paths_per_second,
        checkpoint_free_space_warn_bytes: config
            .storage
            .checkpoint_free_space_warn_mb
            .saturating_mul(1 << 20),
        write_buffer_bytes: config.storage.write_buffer_mb.saturating_mul(1 << 20),
        apply_interval: Duration::from_millis(config.storage.apply_interval_ms),
        mapped_files: config.storage.mapped_files,
        keep_wal_for_log_backup: config.backup.log_backup,
        ..Default::default()
    };
    let root = config.server.root.clone();
    if root.join(tidemark_storage::RESTORE_TRIGGER).exists() {
        status.set_phase(http::Phase::Restoring);
        tracing::info!(root = %root.display(), "found _restore: restoring the checkpoint before serving");
    }
    tracing::info!(root = %root.display(), "opening the root: lock, restore if asked, recovery");
    let db = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || Database::open(&root, options))
    }
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| match e.is_permission_denied() {
        true => format!("{e}\n{}", ownership_hint(&root)),
        false => e.to_string(),
    })?;
    let report = db.open_report().clone();
    if let Some(r) = &report.restored {
        tracing::info!(
            seq = r.seq,
            tables = r.tables,
            elapsed_ms = r.elapsed.as_millis() as u64,
            "restore done: the root holds exactly the checkpoint's cut"
        );
    }
    if report.in_checkpoint {
        tracing::warn!(
            "the root is in checkpoint mode (housekeeping paused): run CHECKPOINT RELEASE once the copy is done"
        );
    }
    tracing::info!(
        root = %db.root().display(),
        tables = report.tables,
        replayed_commits = report.replayed_commits,
        cut_bytes = report.cut_bytes,
        removed_paths = report.removed_paths,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "recovery done"
    );
    let db = Arc::new(db);
    let _ = status.db.set(db.clone());
    let backups = Arc::new(backup_cli::server_backups(&config.backup, db.clone())?);
    let _ = status.backups.set(backups.clone());
    let ingest = Arc::new(ilp::Ingest::new(
        db.clone(),
        ilp_options(&config.ilp),
        status.metrics.clone(),
    ));
    let _ = status.ingest.set(ingest.clone());
    let (stop_ilp, ilp_stopped) = tokio::sync::watch::channel(false);
    let ilp_task = match ilp_listener(&config.ilp).await? {
        Some(listener) => Some(tokio::spawn(ilp::tcp::serve(
            listener,
            ingest.clone(),
            ilp::tcp::Batching {
                batch_bytes: usize::try_from(config.ilp.tcp_batch_kb)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(1024),
                commit_interval: Duration::from_millis(config.ilp.tcp_commit_interval_ms),
            },
            ilp_stopped,
        ))),
        None => None,
    };
    drop(ingest);
    let listener = tokio::net::TcpListener::bind(&config.server.pg_listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} (server.pg_listen): {e}",
                config.server.pg_listen
            )
        })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let default_password = pg::password::Credential::parse(&config.auth.password)
        .is_ok_and(|c| c.matches(&config::AuthSection::default().password));
    if !addr.ip().is_loopback() && default_password {
        tracing::warn!(
            "listening on {addr} with the default password: set auth.password (TIDEMARK_AUTH_PASSWORD)"
        );
    }
    let shared = Arc::new(pg::Shared {
        db: db.clone(),
        backups: backups.clone(),
        users,
        auth_method: config.auth.method.clone(),
        max_connections: config.server.max_connections,
        statement_timeout: Duration::from_millis(config.server.statement_timeout_ms),
        max_message_bytes: usize::try_from(config.server.max_message_mb)
            .unwrap_or(usize::MAX)
            .saturating_mul(1 << 20),
        tls_required: config.tls.required,
        metrics: status.metrics.clone(),
        manager: Arc::new(pgwire::api::ConnectionManager::new()),
        query_runtime,
        parameters,
        activity: Default::default(),
        pids: Arc::new(pgwire::api::RandomPidSecretKeyGenerator::default()),
    });
    status.set_phase(http::Phase::Serving);
    backups.start_log_backup();
    // A backup a crash or a stop interrupted goes on by itself.
    {
        let backups = backups.clone();
        tokio::spawn(async move { backups.resume_unfinished().await });
    }
    tracing::info!(%addr, tls = tls.is_some(), boot_ms = started.elapsed().as_millis() as u64, "serving the PostgreSQL protocol");
    let mut connections = tokio::task::JoinSet::new();
    let drained = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shutdown = shutdown_signal(drained.clone());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let shared = shared.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        use futures::FutureExt;
                        let _open = metrics::OpenConnection::new(shared.metrics.clone());
                        let handlers = pg::ConnectionHandlers::new(shared.clone());
                        // pgwire can panic decoding some malformed messages (a
                        // truncated Execute, found by fuzzing): that ends this
                        // connection only, and its slot is released by the guard.
                        let served = std::panic::AssertUnwindSafe(pgwire::tokio::process_socket(
                            socket, tls, handlers,
                        ))
                        .catch_unwind()
                        .await;
                        match served {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::debug!(%peer, "connection ended: {e}"),
                            Err(_) => tracing::warn!(
                                %peer,
                                "connection closed: the protocol library panicked on a malformed message"
                            ),
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    status.set_phase(http::Phase::Stopping);
    tracing::info!(
        open = connections.len(),
        "shutting down: no new connections"
    );
    drop(listener);
    // Running statements get a bounded time to finish; then connections are dropped.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    drained.store(true, std::sync::atomic::Ordering::SeqCst);
    // Line protocol over TCP: each connection commits the lines it has.
    let _ = stop_ilp.send(true);
    if let Some(task) = ilp_task
        && tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
    {
        tracing::warn!("line protocol connections did not finish committing within 5 s");
    }
    http_task.abort();
    let _ = http_task.await;
    backups.stop().await;
    drop(backups);
    drop(shared);
    drop(status);
    let db = Arc::try_unwrap(db).map_err(|_| "connections still hold the database".to_string());
    match db {
        Ok(db) => tokio::task::spawn_blocking(move || db.close())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?,
        Err(e) => tracing::warn!("{e}; closing when they finish"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The line-protocol settings as the write path takes them.
fn ilp_options(c: &config::IlpSection) -> ilp::IlpOptions {
    ilp::IlpOptions {
        rules: ilp::SchemaRules {
            auto_create_tables: c.auto_create_tables,
            auto_create_columns: c.auto_create_columns,
            // Checked with the configuration.
            partition_by: ilp::parse_partition_by(&c.partition_by)
                .unwrap_or(tidemark_storage::PartitionBy::Day),
        },
        max_line_bytes: usize::try_from(c.max_line_kb)
            .unwrap_or(usize::MAX)
            .saturating_mul(1024),
    }
}

/// The TCP listener for line protocol: `None` when `ilp.listen` is "" or when
/// the default address is taken (another server on this host).
async fn ilp_listener(c: &config::IlpSection) -> Result<Option<tokio::net::TcpListener>, String> {
    let (addr, explicit) = match c.listen.as_deref() {
        Some("") => return Ok(None),
        Some(a) => (a, true),
        None => (config::DEFAULT_ILP_LISTEN, false),
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            if !local.ip().is_loopback() {
                tracing::warn!(
                    addr = %local,
                    "line protocol over TCP has no authentication: anyone who reaches this address can write"
                );
            }
            tracing::info!(addr = %local, "serving line protocol over TCP");
            Ok(Some(listener))
        }
        Err(e) if !explicit => {
            tracing::warn!(
                "cannot listen on {addr} for line protocol over TCP ({e}): it is off; set ilp.listen to another address"
            );
            Ok(None)
        }
        Err(e) => Err(format!("cannot listen on {addr} (ilp.listen): {e}")),
    }
}

/// Resolves on SIGTERM or SIGINT. The signals are watched on a thread of their
/// own: tokio notices a signal when a worker thread polls its I/O driver, and
/// with a worker busy planning a statement (CPU work with no await in it) the
/// driver and the timers can wait for the statement, so the stop would not even
/// be noticed. The same thread bounds the stop: when the connections have not
/// all ended (`drained`) [`STOP_DEADLINE`] after the signal, the process exits
/// without them; the database is then not closed, which costs only the replay
/// of the write-ahead log at the next start (what a SIGKILL costs).
async fn shutdown_signal(drained: Arc<std::sync::atomic::AtomicBool>) {
    let (received, signalled) = tokio::sync::oneshot::channel();
    let watcher = std::thread::Builder::new()
        .name("tidemark-signals".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(wait_for_stop_signal()),
                Err(e) => {
                    tracing::warn!("cannot watch for SIGTERM on a thread of its own: {e}");
                    // Keep the sender: the server runs until killed.
                    loop {
                        std::thread::park();
                    }
                }
            }
            let _ = received.send(());
            std::thread::sleep(STOP_DEADLINE);
            if !drained.load(std::sync::atomic::Ordering::SeqCst) {
                tracing::warn!(
                    deadline_s = STOP_DEADLINE.as_secs(),
                    "statements still running past the stop deadline (planning cannot be \
                     interrupted): exiting without them; the next start replays the write-ahead log"
                );
                std::process::exit(0);
            }
        });
    match watcher {
        Ok(_) => {
            if signalled.await.is_err() {
                std::future::pending::<()>().await
            }
        }
        Err(e) => {
            tracing::warn!("cannot start the signal thread ({e}): watching on the runtime");
            wait_for_stop_signal().await
        }
    }
}

/// How long after SIGTERM the connections may take to end (running statements
/// get 5 s, then they are aborted) before the process exits without them.
const STOP_DEADLINE: Duration = Duration::from_secs(8);

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// What to do when the root is not writable for this process: which user the
/// server runs as and who owns the directory (a bind mount of a host directory
/// owned by root is the usual case in containers).
fn ownership_hint(root: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user and group.
    let (uid, gid) = std::fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()));
    let owner = std::fs::metadata(root).map_or("unknown".into(), |m| format!("uid {}", m.uid()));
    format!(
        "the server runs as uid {uid} (gid {gid}) and may not write to {root} (owned by {owner}): \
         make the directory and everything in it that user's, e.g. `chown -R {uid}:{gid} {root}` \
         (the container image runs as uid 10001: for a bind mount, run that chown on the host)",
        root = root.display()
    )
}
