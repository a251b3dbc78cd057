//! What `backup_status()` and `/metrics` show: written by the backup job,
//! read without waiting for it (counters are atomics, the rest a short lock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupPhase {
    /// No backup since the server started.
    Idle,
    /// Taking the checkpoint cut.
    Starting,
    /// Uploading the cut's files (the checkpoint is held).
    Uploading,
    /// Files uploaded, checkpoint released; writing the manifest.
    WritingManifest,
    Done,
    /// Stopped by an error: the next BACKUP DATABASE resumes it.
    Failed,
    /// Stopped by BACKUP ABORT.
    Aborted,
}

impl BackupPhase {
    pub const ALL: [BackupPhase; 7] = [
        BackupPhase::Idle,
        BackupPhase::Starting,
        BackupPhase::Uploading,
        BackupPhase::WritingManifest,
        BackupPhase::Done,
        BackupPhase::Failed,
        BackupPhase::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackupPhase::Idle => "idle",
            BackupPhase::Starting => "starting",
            BackupPhase::Uploading => "uploading",
            BackupPhase::WritingManifest => "writing_manifest",
            BackupPhase::Done => "done",
            BackupPhase::Failed => "failed",
            BackupPhase::Aborted => "aborted",
        }
    }
}

/// One backup's progress, as `backup_status()` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStatus {
    pub phase: BackupPhase,
    pub backup_id: Option<String>,
    pub destination: Option<String>,
    /// The backup an incremental one builds on.
    pub base: Option<String>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub files_total: u64,
    /// Files in the destination (uploaded now, by an interrupted run, or reused).
    pub files_done: u64,
    /// Files not uploaded because an earlier backup holds them unchanged.
    pub files_reused: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    /// Bytes this run sent.
    pub bytes_uploaded: u64,
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Labels {
    phase: BackupPhase,
    backup_id: Option<String>,
    destination: Option<String>,
    base: Option<String>,
    started_at: Option<SystemTime>,
    finished_at: Option<SystemTime>,
    last_error: Option<String>,
}

#[derive(Debug)]
pub(crate) struct StatusBoard {
    labels: Mutex<Labels>,
    pub(crate) files_total: AtomicU64,
    pub(crate) files_done: AtomicU64,
    pub(crate) files_reused: AtomicU64,
    pub(crate) bytes_total: AtomicU64,
    pub(crate) bytes_done: AtomicU64,
    pub(crate) bytes_uploaded: AtomicU64,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard {
            labels: Mutex::new(Labels {
                phase: BackupPhase::Idle,
                backup_id: None,
                destination: None,
                base: None,
                started_at: None,
                finished_at: None,
                last_error: None,
            }),
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            files_reused: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            bytes_uploaded: AtomicU64::new(0),
        }
    }
}

impl StatusBoard {
    /// A new run of backup `id` begins (a resumed backup starts its counts again).
    pub(crate) fn begin(&self, id: &str, destination: &str, base: Option<&str>) {
        for c in [
            &self.files_total,
            &self.files_done,
            &self.files_reused,
            &self.bytes_total,
            &self.bytes_done,
            &self.bytes_uploaded,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        let mut l = self.labels.lock();
        *l = Labels {
            phase: BackupPhase::Starting,
            backup_id: Some(id.to_string()),
            destination: Some(destination.to_string()),
            base: base.map(str::to_string),
            started_at: Some(SystemTime::now()),
            finished_at: None,
            last_error: None,
        };
    }

    pub(crate) fn set_phase(&self, phase: BackupPhase) {
        self.labels.lock().phase = phase;
    }

    /// The run ended (done, failed or aborted).
    pub(crate) fn finish(&self, phase: BackupPhase, error: Option<String>) {
        let mut l = self.labels.lock();
        l.phase = phase;
        l.finished_at = Some(SystemTime::now());
        l.last_error = error;
    }

    pub(crate) fn snapshot(&self) -> BackupStatus {
        let l = self.labels.lock();
        BackupStatus {
            phase: l.phase,
            backup_id: l.backup_id.clone(),
            destination: l.destination.clone(),
            base: l.base.clone(),
            started_at: l.started_at,
            finished_at: l.finished_at,
            files_total: self.files_total.load(Ordering::Relaxed),
            files_done: self.files_done.load(Ordering::Relaxed),
            files_reused: self.files_reused.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
            last_error: l.last_error.clone(),
        }
    }
}
