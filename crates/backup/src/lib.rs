//! Tidemark's built-in backups.
//!
//! `BACKUP DATABASE` takes a checkpoint cut of its own, uploads the files the
//! cut needs to a destination (`file://` or `s3://`, through `object_store`),
//! releases the checkpoint as soon as they are uploaded and writes a manifest
//! last. A file an earlier backup holds unchanged is referenced, not uploaded
//! again. A backup interrupted by a crash, a kill or a destination error keeps
//! its checkpoint and resumes on the next `BACKUP DATABASE` (and by itself when
//! the server starts), uploading only what is not there yet. `tidemark restore`
//! downloads a backup into an empty root and restores it to the cut.
//!
//! With `log_backup` on, every durable WAL record is shipped to the
//! destination's `log/` within `log_flush_interval_ms` (`log`), and
//! `tidemark restore --to-time` replays it on top of the newest backup before
//! that time: point-in-time restore.
//!
//! Module map: [`destination`] (object stores), [`manifest`] (the manifest and
//! the destination's layout), `state` (the local record that makes a backup
//! resumable), `job` (one run), `log` (the log backup), [`status`]
//! (`backup_status()`), [`restore`] (restore, verify, list), [`prune`]
//! (retention).

pub mod destination;
pub mod error;
mod job;
mod log;
pub mod manifest;
pub mod prune;
pub mod restore;
mod state;
pub mod status;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use tidemark_storage::{CheckpointFiles, Database, Released};

pub use destination::{Destination, S3Options};
pub use error::{BackupError, ErrorKind, Result};
pub use log::LogStatus;
pub use manifest::{FileEntry, Manifest};
pub use status::{BackupPhase, BackupStatus};

use crate::job::{Job, blocking, rfc3339};
use crate::log::{LogArchiver, LogBoard};
use crate::state::{BackupState, Phase};
use crate::status::StatusBoard;

/// How backups run (the `[backup]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupOptions {
    /// Files uploaded at the same time.
    pub concurrency: usize,
    /// Upload pace in bytes per second (0: no limit).
    pub max_bytes_per_second: u64,
    /// Continuous log backup: each commit is shipped within this time (None: off).
    pub log_flush_interval: Option<std::time::Duration>,
    /// After each complete backup, prune what only restores to times older
    /// than this need (None: keep everything).
    pub retention: Option<std::time::Duration>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            concurrency: 4,
            max_bytes_per_second: 0,
            log_flush_interval: None,
            retention: None,
        }
    }
}

/// Checkpoint mode has one owner at a time: the operator (`CHECKPOINT
/// CREATE`/`RELEASE`) or a backup. Both go through here, so neither ends the
/// other's checkpoint.
#[derive(Debug)]
pub struct Checkpoints {
    db: Arc<Database>,
    lifecycle: Mutex<()>,
}

impl Checkpoints {
    pub fn new(db: Arc<Database>) -> Self {
        Checkpoints {
            db,
            lifecycle: Mutex::new(()),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        self.db.root()
    }

    /// The backup whose checkpoint is in progress, if the checkpoint is one.
    pub fn holder(&self) -> Result<Option<String>> {
        let seq = self.db.checkpoint_status().seq;
        Ok(BackupState::load(self.db.root())?
            .filter(|s| s.phase == Phase::Uploading && seq == Some(s.cut_seq))
            .map(|s| s.id))
    }

    /// The operator's `CHECKPOINT CREATE`.
    pub fn create(&self) -> Result<u64> {
        let _l = self.lifecycle.lock();
        if let Some(id) = self.holder()? {
            return Err(BackupError::CheckpointHeld { id });
        }
        Ok(self.db.checkpoint_create()?)
    }

    /// The operator's `CHECKPOINT RELEASE`: refused while a backup holds the checkpoint.
    pub fn release(&self) -> Result<Released> {
        let _l = self.lifecycle.lock();
        if let Some(id) = self.holder()? {
            return Err(BackupError::CheckpointHeld { id });
        }
        Ok(self.db.checkpoint_release()?)
    }

    pub(crate) fn files(&self) -> Result<Option<CheckpointFiles>> {
        Ok(self.db.checkpoint_files()?)
    }

    /// The backup to run for `BACKUP DATABASE` to `destination`: the unfinished
    /// one recorded under the root (resumed: true), or a new one with a
    /// checkpoint taken now.
    fn prepare(&self, destination: &str, base: Option<String>) -> Result<(BackupState, bool)> {
        let _l = self.lifecycle.lock();
        let root = self.db.root();
        let held = self.db.checkpoint_status();
        if let Some(state) = BackupState::load(root)? {
            let holds = held.seq == Some(state.cut_seq);
            let resumable = match state.phase {
                Phase::Uploaded => true,
                Phase::Uploading => holds,
            };
            if resumable && state.destination == destination {
                return Ok((state, true));
            }
            tracing::warn!(
                backup = %state.id,
                "the unfinished backup to {} cannot be resumed ({}): starting a new one",
                state.destination,
                if resumable { "the destination changed" } else { "its checkpoint is gone" }
            );
            if state.phase == Phase::Uploading && holds {
                self.db.checkpoint_release()?;
            }
            BackupState::remove(root)?;
        }
        let held = self.db.checkpoint_status();
        if held.in_progress {
            return Err(BackupError::CheckpointInProgress {
                since: held.started_at.map_or_else(|| "just now".into(), rfc3339),
            });
        }
        let seq = self.db.checkpoint_create()?;
        let created = self
            .db
            .checkpoint_status()
            .started_at
            .unwrap_or_else(SystemTime::now);
        let id = chrono::DateTime::<chrono::Utc>::from(created)
            .format("%Y%m%dT%H%M%S%.3fZ")
            .to_string();
        let state = BackupState {
            id,
            cut_seq: seq,
            cut_at: rfc3339(created),
            base,
            destination: destination.to_string(),
            phase: Phase::Uploading,
        };
        if let Err(e) = state.save(root) {
            let _ = self.db.checkpoint_release();
            return Err(e);
        }
        Ok((state, false))
    }

    /// The backup's files are uploaded: its checkpoint ends.
    pub(crate) fn release_for_backup(&self, seq: u64) -> Result<()> {
        let _l = self.lifecycle.lock();
        if self.db.checkpoint_status().seq == Some(seq) {
            self.db.checkpoint_release()?;
        }
        Ok(())
    }
}

/// A backup that was started or resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub id: String,
    pub resumed: bool,
}

#[derive(Debug)]
struct Running {
    id: String,
    abort: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

/// The server's backups: starts, resumes, aborts and reports them.
#[derive(Debug)]
pub struct Backups {
    checkpoints: Arc<Checkpoints>,
    dest: Option<Destination>,
    options: BackupOptions,
    status: Arc<StatusBoard>,
    running: tokio::sync::Mutex<Option<Running>>,
    log_board: Arc<LogBoard>,
    log: Mutex<Option<Arc<LogArchiver>>>,
}

impl Backups {
    /// `dest` None: no destination configured (BACKUP DATABASE says so).
    pub fn new(db: Arc<Database>, dest: Option<Destination>, options: BackupOptions) -> Self {
        Backups {
            checkpoints: Arc::new(Checkpoints::new(db)),
            dest,
            options,
            status: Arc::new(StatusBoard::default()),
            running: tokio::sync::Mutex::new(None),
            log_board: Arc::new(LogBoard::default()),
            log: Mutex::new(None),
        }
    }

    /// Starts the log backup when it is configured (at server start; the
    /// database must have been opened with `keep_wal_for_log_backup`).
    pub fn start_log_backup(&self) {
        let (Some(interval), Some(dest)) = (self.options.log_flush_interval, self.dest.clone())
        else {
            return;
        };
        let mut log = self.log.lock();
        if log.is_none() {
            *log = Some(Arc::new(LogArchiver::start(
                self.checkpoints.db.clone(),
                dest,
                interval,
                self.log_board.clone(),
            )));
        }
    }

    /// The log backup's progress.
    pub fn log_status(&self) -> LogStatus {
        self.log_board.snapshot()
    }

    pub fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    pub fn status(&self) -> BackupStatus {
        self.status.snapshot()
    }

    /// `BACKUP DATABASE`: resumes the unfinished backup or starts a new one, and
    /// returns once its checkpoint is held; the upload runs in the background.
    pub async fn start(&self) -> Result<Started> {
        let dest = self.dest.clone().ok_or(BackupError::NotConfigured)?;
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_ref()
            && !r.handle.is_finished()
        {
            return Err(BackupError::AlreadyRunning { id: r.id.clone() });
        }
        let base = manifest::latest(&dest).await?.map(|m| m.id);
        let cps = self.checkpoints.clone();
        let url = dest.url().to_string();
        let (state, resumed) = blocking(move || cps.prepare(&url, base)).await?;
        self.status
            .begin(&state.id, dest.url(), state.base.as_deref());
        tracing::info!(
            backup = %state.id,
            destination = dest.url(),
            cut_seq = state.cut_seq,
            resumed,
            "backup started"
        );
        let abort = Arc::new(AtomicBool::new(false));
        let retention = self.options.retention.map(|keep| (dest.clone(), keep));
        let job = Job {
            checkpoints: self.checkpoints.clone(),
            dest,
            status: self.status.clone(),
            abort: abort.clone(),
            options: self.options,
        };
        let status = self.status.clone();
        let id = state.id.clone();
        let handle = tokio::spawn(async move {
            let id = state.id.clone();
            // A panic in the job (a bug) still ends the backup as failed.
            let outcome = match tokio::spawn(async move { job.run(state).await }).await {
                Ok(r) => r,
                Err(e) => Err(BackupError::Refused(format!("the backup task failed: {e}"))),
            };
            match outcome {
                Ok(m) => {
                    status.finish(BackupPhase::Done, None);
                    tracing::info!(
                        backup = %m.id,
                        files = m.files.len(),
                        total_bytes = m.total_bytes,
                        uploaded_bytes = m.uploaded_bytes,
                        "backup complete"
                    );
                    if let Some((dest, keep)) = retention {
                        apply_retention(&dest, keep).await;
                    }
                }
                Err(BackupError::Aborted) => status.finish(BackupPhase::Aborted, None),
                Err(e) => {
                    tracing::error!(
                        backup = %id,
                        "backup failed: {e}; its checkpoint stays held until BACKUP DATABASE resumes it or BACKUP ABORT ends it"
                    );
                    status.finish(BackupPhase::Failed, Some(e.to_string()));
                }
            }
        });
        *running = Some(Running {
            id: id.clone(),
            abort,
            handle,
        });
        Ok(Started { id, resumed })
    }

    /// At server start: resumes a backup a crash or a stop interrupted.
    pub async fn resume_unfinished(&self) {
        let root = self.checkpoints.root().to_path_buf();
        match BackupState::load(&root) {
            Ok(None) => {}
            Ok(Some(state)) => match self.start().await {
                Ok(s) => {
                    tracing::info!(backup = %s.id, "resuming the backup interrupted by the last stop")
                }
                Err(e) => {
                    tracing::error!(backup = %state.id, "the interrupted backup cannot be resumed: {e}");
                    self.status
                        .begin(&state.id, &state.destination, state.base.as_deref());
                    self.status.finish(BackupPhase::Failed, Some(e.to_string()));
                }
            },
            Err(e) => tracing::error!("cannot read the state of an unfinished backup: {e}"),
        }
    }

    /// Server shutdown: the log backup ships what is durable (one try) and
    /// stops; the running backup stops where it is. Its checkpoint and local
    /// state stay, so the next start resumes it.
    pub async fn stop(&self) {
        let log = self.log.lock().take();
        if let Some(log) = log {
            log.stop().await;
        }
        let mut running = self.running.lock().await;
        if let Some(r) = running.take()
            && !r.handle.is_finished()
        {
            r.abort.store(true, Ordering::Relaxed);
            let _ = r.handle.await;
            tracing::info!(backup = %r.id, "backup stopped by the shutdown: it resumes at the next start");
        }
    }

    /// `BACKUP ABORT`: stops the running backup (or forgets a failed one),
    /// releases its checkpoint and removes what it uploaded. Returns the
    /// backup's id, or None when there was none.
    pub async fn abort(&self) -> Result<Option<String>> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.take() {
            r.abort.store(true, Ordering::Relaxed);
            let _ = r.handle.await;
        }
        let root = self.checkpoints.root().to_path_buf();
        let Some(state) = blocking(move || BackupState::load(&root)).await? else {
            return Ok(None);
        };
        let cps = self.checkpoints.clone();
        let (seq, phase) = (state.cut_seq, state.phase);
        blocking(move || {
            if phase == Phase::Uploading {
                cps.release_for_backup(seq)?;
            }
            BackupState::remove(cps.root())
        })
        .await?;
        if let Some(dest) = self.dest.as_ref().filter(|d| d.url() == state.destination) {
            // Aborted after its manifest was written: the backup is complete; keep it.
            if manifest::read_manifest(dest, &state.id).await.is_ok() {
                self.status.finish(BackupPhase::Done, None);
                return Ok(None);
            }
            match manifest::remove_backup_objects(dest, &state.id, &Default::default()).await {
                Ok((n, _)) => {
                    tracing::info!(backup = %state.id, objects = n, "backup aborted; its uploads removed")
                }
                Err(e) => {
                    tracing::warn!(backup = %state.id, "backup aborted; its uploads could not all be removed: {e}")
                }
            }
        }
        self.status.finish(BackupPhase::Aborted, None);
        Ok(Some(state.id))
    }
}

/// `retention_days`: after a backup, prune what only older restores need.
async fn apply_retention(dest: &Destination, keep: std::time::Duration) {
    let Some(before) = chrono::Duration::from_std(keep)
        .ok()
        .and_then(|keep| chrono::Utc::now().checked_sub_signed(keep))
    else {
        return;
    };
    match prune::prune(dest, before).await {
        Ok(s) => tracing::info!(
            backups_removed = s.backups_removed.len(),
            objects_removed = s.objects_removed,
            bytes_removed = s.bytes_removed,
            log_runs_removed = s.log_runs_removed,
            oldest_kept = s.oldest_kept.as_deref().unwrap_or("-"),
            "retention: pruned backups older than {}",
            before.to_rfc3339()
        ),
        Err(e) => tracing::warn!(
            "retention: pruning the destination failed (the next backup tries again): {e}"
        ),
    }
}
