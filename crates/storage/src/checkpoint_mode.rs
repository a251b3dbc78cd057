//! Checkpoint mode's lifecycle: `CHECKPOINT CREATE`, `CHECKPOINT RELEASE` and
//! what `checkpoint_status()` reports.
//!
//! CREATE never waits for housekeeping: it pauses reclaiming, then waits only
//! for the one unlink in flight (housekeeping deletes a file at a time and looks
//! at the pause before each), makes the data written since the last flush
//! durable, and writes the cut (`checkpoint.rs`). What an earlier mode left to
//! delete simply stays garbage until the next RELEASE.
//!
//! Status is read from [`StatusBoard`], which no long operation locks: the
//! phase, the cut's summary, and the sizes housekeeping measured last. A
//! monitor polling during a slow CREATE or a long reclaim is answered at once.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;

use crate::checkpoint::{Cut, checkpoint_dir};
use crate::db::{Database, humane_time};
use crate::error::{Result, StorageError};
use crate::fsutil;

/// Where the checkpoint lifecycle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointPhase {
    /// No checkpoint, and no garbage from an earlier one waiting.
    Idle,
    /// CHECKPOINT CREATE is capturing the cut.
    Creating,
    /// The cut is recorded: the root can be copied.
    InProgress,
    /// CHECKPOINT RELEASE is ending the mode.
    Releasing,
    /// No checkpoint; housekeeping is deleting what nothing needs any more
    /// (what an earlier mode held, superseded files).
    Reclaiming,
}

impl CheckpointPhase {
    pub const ALL: [CheckpointPhase; 5] = [
        CheckpointPhase::Idle,
        CheckpointPhase::Creating,
        CheckpointPhase::InProgress,
        CheckpointPhase::Releasing,
        CheckpointPhase::Reclaiming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointPhase::Idle => "idle",
            CheckpointPhase::Creating => "creating",
            CheckpointPhase::InProgress => "in_progress",
            CheckpointPhase::Releasing => "releasing",
            CheckpointPhase::Reclaiming => "reclaiming",
        }
    }

    fn from_u8(v: u8) -> CheckpointPhase {
        match v {
            1 => CheckpointPhase::Creating,
            2 => CheckpointPhase::InProgress,
            3 => CheckpointPhase::Releasing,
            _ => CheckpointPhase::Idle,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            CheckpointPhase::Idle | CheckpointPhase::Reclaiming => 0,
            CheckpointPhase::Creating => 1,
            CheckpointPhase::InProgress => 2,
            CheckpointPhase::Releasing => 3,
        }
    }
}

/// The checkpoint in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckpointState {
    pub(crate) created: SystemTime,
    pub(crate) seq: u64,
    pub(crate) tables: usize,
}

/// What `checkpoint_status()` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointStatus {
    pub in_progress: bool,
    pub phase: CheckpointPhase,
    /// When CHECKPOINT CREATE recorded the cut (None when idle).
    pub started_at: Option<SystemTime>,
    /// The commit the cut is at (None when idle).
    pub seq: Option<u64>,
    /// Tables in the cut.
    pub tables: usize,
    /// Bytes on disk kept only because housekeeping is paused for the checkpoint
    /// (as housekeeping last measured them; 0 outside checkpoint mode).
    pub held_bytes: u64,
    /// Paths (files and directories) waiting to be reclaimed.
    pub reclaim_pending_paths: u64,
    /// Their bytes, as housekeeping last measured them.
    pub reclaim_pending_bytes: u64,
    /// Free bytes on the root's file system (for unprivileged users).
    pub free_bytes: u64,
}

/// What `CHECKPOINT RELEASE` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The checkpoint that was in progress, now ended.
    Ended { seq: u64 },
    /// There was no checkpoint.
    NoCheckpoint,
}

/// What a copy of the root needs for the checkpoint in progress (see
/// [`Database::checkpoint_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFiles {
    /// The commit the cut is at.
    pub seq: u64,
    /// When CHECKPOINT CREATE recorded it.
    pub created: SystemTime,
    /// Files relative to the root, sorted. A copy of these files, taken while
    /// the checkpoint is in progress, restores to the cut (`_restore`).
    pub files: Vec<std::path::PathBuf>,
}

/// State that status, metrics and health read; written by the lifecycle and
/// by housekeeping, each lock held only to copy a few words.
#[derive(Debug, Default)]
pub(crate) struct StatusBoard {
    phase: AtomicU8,
    /// The checkpoint in progress (set once its cut is durable).
    current: Mutex<Option<CheckpointState>>,
    pub(crate) pending_paths: AtomicU64,
    pub(crate) pending_bytes: AtomicU64,
    /// Bytes of all files under the root, measured by housekeeping now and then.
    pub(crate) disk_bytes: AtomicU64,
    pub(crate) reclaimed_paths: AtomicU64,
    /// The newest commit wholly in the durable table files (set by each flush).
    pub(crate) durable_seq: AtomicU64,
}

impl StatusBoard {
    pub(crate) fn phase(&self) -> CheckpointPhase {
        CheckpointPhase::from_u8(self.phase.load(Ordering::SeqCst))
    }

    pub(crate) fn set_phase(&self, p: CheckpointPhase) {
        self.phase.store(p.to_u8(), Ordering::SeqCst);
    }

    /// Whether table states must be left alone: a checkpoint is being created
    /// or is in progress (its copy must not meet a replaced `_txn`).
    pub(crate) fn holds_table_files(&self) -> bool {
        matches!(
            self.phase(),
            CheckpointPhase::Creating | CheckpointPhase::InProgress
        )
    }

    pub(crate) fn current(&self) -> Option<CheckpointState> {
        *self.current.lock()
    }

    pub(crate) fn set_current(&self, s: Option<CheckpointState>) {
        *self.current.lock() = s;
    }
}

impl Database {
    /// `CHECKPOINT CREATE`: records the cut (the newest commit, across all tables)
    /// in `.checkpoint/`, and pauses housekeeping until
    /// [`Database::checkpoint_release`]. The cut is the table files as far as
    /// the apply has gone (made durable here) plus the WAL up to the newest
    /// commit, which restore replays. Commits are held only while the newest
    /// state is taken. Returns the commit the cut is at.
    pub fn checkpoint_create(&self) -> Result<u64> {
        let started = Instant::now();
        let inner = &self.inner;
        let _lifecycle = inner.checkpoint_lifecycle.lock();
        if let Some(cp) = inner.status.current() {
            return Err(StorageError::CheckpointInProgress {
                since: humane_time(cp.created),
            });
        }
        // Before the flush below takes its lock: a housekeeping flush that
        // starts later sees the phase and leaves the table states alone.
        inner.status.set_phase(CheckpointPhase::Creating);
        inner.garbage.pause();
        // Housekeeping checks the pause before each unlink under this lock:
        // once it is taken here, nothing under the root is deleted until RELEASE.
        drop(inner.reclaiming.lock());
        let outcome = inner.flush_and_take_catalog().and_then(|catalog| {
            let cut = Cut::capture(&catalog, SystemTime::now());
            cut.write(&inner.root.path)?;
            Ok(cut)
        });
        let cut = match outcome {
            Ok(cut) => cut,
            Err(e) => {
                let _ = fsutil::remove_path(&checkpoint_dir(&inner.root.path));
                inner.status.set_phase(CheckpointPhase::Idle);
                self.resume_housekeeping();
                return Err(e);
            }
        };
        inner.status.set_current(Some(CheckpointState {
            created: cut.created,
            seq: cut.seq,
            tables: cut.tables.len(),
        }));
        inner.status.set_phase(CheckpointPhase::InProgress);
        tracing::info!(
            seq = cut.seq,
            tables = cut.tables.len(),
            wal_replay_from = cut.applied_seq(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "checkpoint created: the root can be copied; housekeeping is paused until CHECKPOINT RELEASE"
        );
        Ok(cut.seq)
    }

    /// `CHECKPOINT RELEASE`: leaves checkpoint mode and lets housekeeping reclaim
    /// what the cut held (paced: `StorageOptions::reclaim_paths_per_second`).
    pub fn checkpoint_release(&self) -> Result<Released> {
        let inner = &self.inner;
        let _lifecycle = inner.checkpoint_lifecycle.lock();
        let Some(cp) = inner.status.current() else {
            return Ok(Released::NoCheckpoint);
        };
        inner.status.set_phase(CheckpointPhase::Releasing);
        let dir = checkpoint_dir(&inner.root.path);
        let removed = fsutil::remove_path(&dir).and_then(|_| fsutil::sync_dir(&inner.root.path));
        if let Err(e) = removed {
            inner.status.set_phase(CheckpointPhase::InProgress);
            return Err(e);
        }
        inner.status.set_current(None);
        inner.status.set_phase(CheckpointPhase::Idle);
        self.resume_housekeeping();
        tracing::info!(
            seq = cp.seq,
            held_for_s = cp.created.elapsed().unwrap_or_default().as_secs(),
            reclaim_pending_paths = inner.status.pending_paths.load(Ordering::Relaxed),
            "checkpoint released: housekeeping resumes"
        );
        Ok(Released::Ended { seq: cp.seq })
    }

    /// The checkpoint state, for `checkpoint_status()` and metrics. Takes no
    /// lock that CREATE, RELEASE or housekeeping hold for long.
    pub fn checkpoint_status(&self) -> CheckpointStatus {
        let board = &self.inner.status;
        let state = board.current();
        let pending_paths = board.pending_paths.load(Ordering::Relaxed);
        let pending_bytes = board.pending_bytes.load(Ordering::Relaxed);
        let phase = match board.phase() {
            CheckpointPhase::Idle if pending_paths > 0 && !self.inner.garbage.is_paused() => {
                CheckpointPhase::Reclaiming
            }
            p => p,
        };
        CheckpointStatus {
            in_progress: state.is_some(),
            phase,
            started_at: state.map(|s| s.created),
            seq: state.map(|s| s.seq),
            tables: state.map_or(0, |s| s.tables),
            held_bytes: if state.is_some() { pending_bytes } else { 0 },
            reclaim_pending_paths: pending_paths,
            reclaim_pending_bytes: pending_bytes,
            free_bytes: fsutil::free_bytes(&self.inner.root.path).unwrap_or(0),
        }
    }

    /// The files that a copy must hold to be restored to the checkpoint in
    /// progress (None outside checkpoint mode). Built-in backups copy these
    /// instead of the whole root: partition versions, tables and WAL segments
    /// the cut does not need are left behind. A file's bytes past its committed
    /// length (appended after the cut) are harmless: restore cuts them off.
    pub fn checkpoint_files(&self) -> Result<Option<CheckpointFiles>> {
        let inner = &self.inner;
        let _lifecycle = inner.checkpoint_lifecycle.lock();
        if inner.status.current().is_none() {
            return Ok(None);
        }
        let Some(cut) = Cut::load(&inner.root.path)? else {
            return Ok(None);
        };
        let files = cut.needed_files(&inner.root.path, &inner.root.db, &inner.root.wal)?;
        Ok(Some(CheckpointFiles {
            seq: cut.seq,
            created: cut.created,
            files,
        }))
    }

    /// How many bytes of `path`, a file of [`Database::checkpoint_files`], a
    /// copy needs: its length, but for a WAL segment only its records (the
    /// open segment has zeros written ahead that records later overwrite, so
    /// its bytes past them are not yet what they will be).
    pub fn copy_len(path: &std::path::Path) -> Result<u64> {
        if path.extension().is_some_and(|x| x == "wal") {
            return crate::wal::records_end(path);
        }
        fsutil::file_len(path)?
            .ok_or_else(|| StorageError::InvalidState(format!("{} is gone", path.display())))
    }

    /// Bytes of the files under the root, as housekeeping last measured them
    /// (it walks the tree every few seconds, not per request).
    pub fn disk_bytes(&self) -> u64 {
        self.inner.status.disk_bytes.load(Ordering::Relaxed)
    }

    /// Paths housekeeping has removed since start.
    pub fn reclaimed_paths(&self) -> u64 {
        self.inner.status.reclaimed_paths.load(Ordering::Relaxed)
    }
}
