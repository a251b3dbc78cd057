//! `tidemark backup --server <host:port>`: a backup from a script or cron job.
//! It sends `BACKUP DATABASE` to a running server over the PostgreSQL protocol
//! and follows `backup_status()` until the backup ends, so that its exit status
//! says whether the backup is complete (0), failed or was aborted (1), or could
//! not be asked for (2: bad arguments, no server, refused).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::backup_cli::{bytes_bar, run_with_exit_codes};
use crate::config::Config;
use crate::tls::{SslMode, client_connector};

/// How often `backup_status()` is read while waiting.
const POLL: Duration = Duration::from_millis(500);

/// The arguments of `tidemark backup --server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerBackupArgs {
    /// Configuration file: the defaults for --server and --user come from it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The server's PostgreSQL address, host:port (default: server.pg_listen; a
    /// wildcard address means this host).
    #[arg(long)]
    server: Option<String>,
    /// The user to log in as (default: $PGUSER, then auth.user). The password is
    /// $PGPASSWORD, else auth.password when it is not a verifier.
    #[arg(long)]
    user: Option<String>,
    /// Start the backup and return at once, without waiting for it to end.
    #[arg(long)]
    no_wait: bool,
    /// TLS, as libpq's sslmode (default: $PGSSLMODE, then prefer).
    #[arg(long, value_enum)]
    sslmode: Option<SslMode>,
    /// PEM file of the certificates that sslmode verify-full trusts (default:
    /// $PGSSLROOTCERT).
    #[arg(long)]
    sslrootcert: Option<PathBuf>,
}

/// One reading of `backup_status()`.
#[derive(Debug, Default)]
struct Status {
    phase: String,
    backup_id: String,
    files_total: u64,
    files_done: u64,
    files_reused: u64,
    bytes_total: u64,
    bytes_done: u64,
    bytes_uploaded: u64,
    last_error: String,
}

impl Status {
    fn ended(&self) -> bool {
        matches!(self.phase.as_str(), "done" | "failed" | "aborted")
    }
}

/// Why the command stopped: the exit status tells a script which.
enum Failure {
    /// The backup could not be asked for (exit 2).
    Request(String),
    /// The backup ran and did not complete (exit 1).
    Backup(String),
}

impl From<Failure> for (ExitCode, String) {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Request(m) => (ExitCode::from(2), m),
            Failure::Backup(m) => (ExitCode::FAILURE, m),
        }
    }
}

pub(crate) fn server_backup_command(args: ServerBackupArgs) -> ExitCode {
    let config = args.config.clone();
    run_with_exit_codes(config.as_deref(), |config| async move {
        take_backup(&config, args).await.map_err(Into::into)
    })
}

async fn take_backup(config: &Config, args: ServerBackupArgs) -> Result<(), Failure> {
    let address = args
        .server
        .clone()
        .unwrap_or_else(|| config.server.pg_listen.clone());
    let client = connect(config, &address, &args).await?;
    client
        .simple_query("BACKUP DATABASE")
        .await
        .map_err(|e| Failure::Request(format!("BACKUP DATABASE on {address}: {}", describe(&e))))?;
    let started = status(&client).await.map_err(Failure::Request)?;
    let id = started.backup_id.clone();
    println!("backup {id} started on {address}");
    if args.no_wait {
        return Ok(());
    }
    let began = Instant::now();
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| bytes_bar("uploading"));
    let mut last = started;
    while !last.ended() {
        tokio::time::sleep(POLL).await;
        last = status(&client).await.map_err(|e| {
            Failure::Backup(format!(
                "lost the server while backup {id} ran ({e}); the next BACKUP DATABASE resumes it"
            ))
        })?;
        if let Some(bar) = &bar {
            bar.set_length(last.bytes_total);
            bar.set_position(last.bytes_done);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if last.backup_id != id {
        return Err(Failure::Backup(format!(
            "backup_status() now follows backup {} instead of {id}",
            last.backup_id
        )));
    }
    match last.phase.as_str() {
        "done" => {
            println!(
                "backup {id} done in {:.1} s: {} files ({} reused from the previous backup), \
                 {} of {} bytes uploaded",
                began.elapsed().as_secs_f64(),
                last.files_total,
                last.files_reused,
                last.bytes_uploaded,
                last.bytes_total
            );
            Ok(())
        }
        "aborted" => Err(Failure::Backup(format!(
            "backup {id} was aborted (BACKUP ABORT)"
        ))),
        _ => Err(Failure::Backup(format!(
            "backup {id} failed after {} of {} files: {}; the next BACKUP DATABASE resumes it",
            last.files_done, last.files_total, last.last_error
        ))),
    }
}

/// Logs in at `address` as the user and password, with the TLS, that the
/// arguments, the environment or the configuration give.
async fn connect(
    config: &Config,
    address: &str,
    args: &ServerBackupArgs,
) -> Result<Client, Failure> {
    let (host, port) = split_address(address).map_err(Failure::Request)?;
    let sslmode = match (args.sslmode, std::env::var("PGSSLMODE")) {
        (Some(mode), _) => mode,
        (None, Ok(name)) if !name.is_empty() => SslMode::from_str(&name, true).map_err(|_| {
            Failure::Request(format!(
                "PGSSLMODE={name:?}: expected disable, prefer, require or verify-full"
            ))
        })?,
        (None, _) => SslMode::Prefer,
    };
    let root_cert = args.sslrootcert.clone().or_else(|| {
        std::env::var_os("PGSSLROOTCERT")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
    });
    let tls = client_connector(sslmode, root_cert.as_deref()).map_err(Failure::Request)?;
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("PGUSER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| config.auth.user.clone());
    let password = match std::env::var("PGPASSWORD") {
        Ok(p) => p,
        Err(_) if !config.auth.password.starts_with("SCRAM-SHA-256$") => {
            config.auth.password.clone()
        }
        Err(_) => {
            return Err(Failure::Request(
                "no password: auth.password holds a verifier; set PGPASSWORD".into(),
            ));
        }
    };
    let mut pg = tokio_postgres::Config::new();
    pg.host(&host)
        .port(port)
        .user(&user)
        .password(password)
        .dbname("tidemark")
        .application_name("tidemark backup")
        .ssl_mode(sslmode.negotiation())
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = pg.connect(tls).await.map_err(|e| {
        Failure::Request(format!(
            "cannot log in to {address} as {user}: {}",
            describe(&e)
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "the connection to the server ended");
        }
    });
    Ok(client)
}

/// `host:port` (or `[v6]:port`) -> its parts; a wildcard host means this host.
fn split_address(address: &str) -> Result<(String, u16), String> {
    let bad = || format!("--server \"{address}\": expected host:port");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host {
        "" => return Err(bad()),
        "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        h => h,
    };
    Ok((host.to_string(), port))
}

/// A server error as psql prints it: severity, SQLSTATE and message.
/// Other errors with their causes (a TLS handshake's says what was wrong with
/// the certificate).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

async fn status(client: &Client) -> Result<Status, String> {
    let sql = "SELECT phase, backup_id, files_total, files_done, files_reused, bytes_total, \
               bytes_done, bytes_uploaded, last_error FROM backup_status()";
    let messages = client.simple_query(sql).await.map_err(|e| describe(&e))?;
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .ok_or("backup_status() returned no row")?;
    let text = |i: usize| row.get(i).unwrap_or_default().to_string();
    let number = |i: usize| row.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Status {
        phase: text(0),
        backup_id: text(1),
        files_total: number(2),
        files_done: number(3),
        files_reused: number(4),
        bytes_total: number(5),
        bytes_done: number(6),
        bytes_uploaded: number(7),
        last_error: text(8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port_and_wildcards_mean_this_host() {
        assert_eq!(
            split_address("db.internal:8812").expect("ok"),
            ("db.internal".to_string(), 8812)
        );
        assert_eq!(
            split_address("0.0.0.0:5432").expect("ok"),
            ("127.0.0.1".to_string(), 5432)
        );
        assert_eq!(split_address("[::]:1").expect("ok"), ("::1".to_string(), 1));
        for bad in ["db.internal", ":8812", "db:port", "db:70000"] {
            let e = split_address(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }
}
