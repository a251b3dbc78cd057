//! `tidemark`: the Tidemark database server.
//!
//! Boot: configuration -> root lock and recovery (storage) -> serve the
//! PostgreSQL protocol. SIGTERM/SIGINT stop accepting, give running statements a
//! bounded time to finish, make everything durable, release the root, exit 0.

mod config;
mod pg;

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
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let Command::Serve {
        config,
        root,
        pg_listen,
    } = cli.command;
    let mut config = match config::Config::load(config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(r) = root {
        config.server.root = r;
    }
    if let Some(l) = pg_listen {
        config.server.pg_listen = l;
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
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

async fn serve(config: config::Config) -> Result<(), String> {
    let started = Instant::now();
    let options = StorageOptions {
        commit_mode: config.storage.commit_mode.parse().map_err(|e: String| e)?,
        wal_segment_bytes: config.storage.wal_segment_mb << 20,
        housekeeping_interval: Duration::from_millis(config.storage.housekeeping_interval_ms),
        ..Default::default()
    };
    let root = config.server.root.clone();
    let db = tokio::task::spawn_blocking(move || Database::open(&root, options))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let report = db.open_report().clone();
    tracing::info!(
        root = %db.root().display(),
        tables = report.tables,
        replayed_commits = report.replayed_commits,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "recovery done"
    );
    let db = Arc::new(db);
    let listener = tokio::net::TcpListener::bind(&config.server.pg_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.pg_listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if !addr.ip().is_loopback() && config.auth.password == "quest" {
        tracing::warn!(
            "listening on {addr} with the default password: set auth.password (TIDEMARK_AUTH_PASSWORD)"
        );
    }
    let handlers = Arc::new(pg::Handlers {
        db: db.clone(),
        users: Arc::new(pg::Users::new(&config.auth)),
        scram: config.auth.method == "scram-sha-256",
    });
    tracing::info!(%addr, boot_ms = started.elapsed().as_millis() as u64, "serving the PostgreSQL protocol");
    let mut connections = tokio::task::JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    connections.spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
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
    drop(handlers);
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

async fn shutdown_signal() {
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
