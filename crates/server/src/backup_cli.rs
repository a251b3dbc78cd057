//! The server's side of built-in backups: the destination from `[backup]`,
//! and the commands `tidemark restore` and `tidemark backup list|verify`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use std::io::IsTerminal;

use tidemark_backup::restore::{self, RestoreProgress, RestoreTarget};
use tidemark_backup::{Backups, Destination};
use tidemark_storage::Database;

use crate::config::{BackupSection, Config};

/// The backups of the served database (no destination: BACKUP DATABASE says
/// how to configure one).
pub(crate) fn server_backups(c: &BackupSection, db: Arc<Database>) -> Result<Backups, String> {
    let dest = if c.destination.is_empty() {
        None
    } else {
        let d = Destination::open(&c.destination, &c.s3()).map_err(|e| e.to_string())?;
        tracing::info!(destination = %c.destination, "backups go to the configured destination");
        Some(d)
    };
    Ok(Backups::new(db, dest, c.options()))
}

fn destination(c: &BackupSection, from: Option<&str>) -> Result<Destination, String> {
    let url = match from {
        Some(f) => f,
        None if !c.destination.is_empty() => &c.destination,
        None => {
            return Err(
                "no backup destination: give --from <file:///dir | s3://bucket/prefix> \
                 or set backup.destination"
                    .into(),
            );
        }
    };
    Destination::open(url, &c.s3()).map_err(|e| e.to_string())
}

/// What the commands share: configuration, logs to stderr, a runtime. An
/// error is printed and exits 1.
pub(crate) fn run<F>(config: Option<&Path>, work: impl FnOnce(Config) -> F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    run_with_exit_codes(config, |config| async move {
        work(config).await.map_err(|e| (ExitCode::FAILURE, e))
    })
}

/// `run` for a command whose errors carry their own exit status.
pub(crate) fn run_with_exit_codes<F>(
    config: Option<&Path>,
    work: impl FnOnce(Config) -> F,
) -> ExitCode
where
    F: std::future::Future<Output = Result<(), (ExitCode, String)>>,
{
    let config = match Config::load(config, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return ExitCode::from(2);
        }
    };
    let mut filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The notices of a server we talk to (`tidemark backup --server`) are not news.
    if let Ok(quiet) = "tokio_postgres=warn".parse() {
        filter = filter.add_directive(quiet);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tidemark: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("tidemark: {e}");
            code
        }
    }
}

/// `tidemark restore --from <destination> --root <dir> [--backup <id> | --to-time <time>]`.
pub(crate) fn restore_command(
    config: Option<&Path>,
    from: Option<String>,
    root: &Path,
    backup: Option<String>,
    to_time: Option<String>,
) -> ExitCode {
    run(config, |config| async move {
        let target = match (backup, to_time) {
            (Some(id), _) => RestoreTarget::Backup(id),
            (None, Some(t)) => RestoreTarget::at_time(&t)?,
            (None, None) => RestoreTarget::Newest,
        };
        let dest = destination(&config.backup, from.as_deref())?;
        let concurrency = config.backup.options().concurrency;
        let progress = Arc::new(RestoreProgress::default());
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| progress_bar(progress.clone()));
        let restored =
            restore::restore_with_progress(&dest, root, &target, concurrency, &progress).await;
        if let Some((bar, ticker)) = bar {
            ticker.abort();
            bar.finish_and_clear();
        }
        let s = restored.map_err(|e| e.to_string())?;
        println!(
            "restored backup {} (commit {}, cut at {}): {} tables, {} files, {} bytes in {:.1} s into {}",
            s.backup_id,
            s.cut_seq,
            s.cut_at,
            s.tables,
            s.files,
            s.bytes,
            s.elapsed.as_secs_f64(),
            root.display()
        );
        if let Some(log) = &s.log {
            println!(
                "replayed {} commits of the log backup after the cut: the root is at commit {}, committed at {}",
                log.commits,
                log.last_seq,
                log.last_commit_at.as_deref().unwrap_or(&s.cut_at)
            );
            if log.log_ends_before_target {
                println!(
                    "note: the log backup ends there; commits after it, if any, were not shipped"
                );
            }
        }
        Ok(())
    })
}

/// A progress bar on the terminal (stderr) following `progress`: bytes
/// downloaded, then commits of the log replayed.
fn progress_bar(
    progress: Arc<RestoreProgress>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    use std::sync::atomic::Ordering::Relaxed;
    let bar = bytes_bar("downloading");
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                bar.set_length(progress.bytes_total.load(Relaxed));
                bar.set_position(progress.bytes_done.load(Relaxed));
                let commits = progress.log_commits.load(Relaxed);
                if commits > 0 {
                    bar.set_message(format!("replaying the log: {commits} commits"));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
    };
    (bar, ticker)
}

/// A terminal progress bar counting bytes, with `message` before it.
pub(crate) fn bytes_bar(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// `tidemark backup list --from <destination>`.
pub(crate) fn list_command(config: Option<&Path>, from: Option<String>) -> ExitCode {
    run(config, |config| async move {
        let dest = destination(&config.backup, from.as_deref())?;
        let (backups, incomplete) = restore::list(&dest).await.map_err(|e| e.to_string())?;
        println!("id\tcut_at\tcut_seq\tfiles\ttotal_bytes\tuploaded_bytes\tbase");
        for m in &backups {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                m.id,
                m.cut_at,
                m.cut_seq,
                m.files.len(),
                m.total_bytes,
                m.uploaded_bytes,
                m.base.as_deref().unwrap_or("-")
            );
        }
        if incomplete > 0 {
            eprintln!(
                "{incomplete} incomplete backup(s) (under way, interrupted or aborted) not listed"
            );
        }
        Ok(())
    })
}

/// `tidemark backup verify --from <destination> [--backup <id>]`.
pub(crate) fn verify_command(
    config: Option<&Path>,
    from: Option<String>,
    backup: Option<String>,
) -> ExitCode {
    run(config, |config| async move {
        let dest = destination(&config.backup, from.as_deref())?;
        let s = restore::verify(&dest, backup.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "backup {}: {} files, {} bytes, every object matches its size and CRC-32C",
            s.backup_id, s.files, s.bytes
        );
        Ok(())
    })
}

/// `tidemark backup prune --from <destination> --before <time>`.
pub(crate) fn prune_command(config: Option<&Path>, from: Option<String>, before: &str) -> ExitCode {
    let before = match restore::parse_time("--before", before) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return ExitCode::from(2);
        }
    };
    run(config, |config| async move {
        let dest = destination(&config.backup, from.as_deref())?;
        let s = tidemark_backup::prune::prune(&dest, before)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "removed {} backup(s) ({} objects, {} bytes) and {} log run(s); the oldest backup kept is {}",
            s.backups_removed.len(),
            s.objects_removed,
            s.bytes_removed,
            s.log_runs_removed,
            s.oldest_kept
                .as_deref()
                .unwrap_or("none (there is no backup)")
        );
        Ok(())
    })
}
