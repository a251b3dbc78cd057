//! Restore: the boot step that rewinds a copy of the root to its checkpoint's cut.
//!
//! Runs when `<root>/_restore` exists, after the root lock and before recovery:
//! 1. read and check `.checkpoint/cut` (refuse without one, or when damaged);
//! 2. put every cut table's `_meta` and `_txn` back (a table dropped after the cut
//!    comes back: housekeeping kept its directory), then the cut's `_tables`;
//! 3. cut the copy's WAL right after the cut's commit: the records after the
//!    commit the cut's files hold (its rows in the write buffer at CREATE) stay,
//!    to be replayed; every later record is a commit after the cut and goes;
//! 4. mark `.checkpoint/restored`, remove `_restore`, then `.checkpoint/`.
//!
//! Recovery then does the rest with its ordinary rules: files are cut to the
//! committed lengths of the restored `_txn`, partition versions, columns and
//! tables the cut does not know are removed, and the WAL is replayed up to the
//! cut. Every step rewrites whole files from the cut or is idempotent, so a
//! restore killed half-way is finished by the next start.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::checkpoint::{Cut, RESTORED_MARKER, checkpoint_dir, cut_path};
use crate::error::{Result, StorageError};
use crate::fsutil;
use crate::root::Root;
use crate::table::{META_FILE, META_PENDING_FILE, TXN_FILE};

/// The file an operator creates on a copy to have it restored at the next start.
pub const RESTORE_TRIGGER: &str = "_restore";

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The commit the root was rewound to.
    pub seq: u64,
    pub tables: usize,
    pub wal_segments_removed: usize,
    /// Commits the WAL replays on top of the cut's files (their rows were in
    /// the write buffer when the checkpoint was created).
    pub wal_commits_to_replay: u64,
    pub elapsed: Duration,
}

pub(crate) fn restore_requested(root: &Path) -> bool {
    root.join(RESTORE_TRIGGER).exists()
}

pub(crate) fn restore(root: &Root) -> Result<RestoreReport> {
    let started = Instant::now();
    let trigger = root.path.join(RESTORE_TRIGGER);
    // Cut::load, not Cut::in_progress: a run killed after writing `restored` but
    // before removing `_restore` still finds the cut and finishes.
    let cut = match Cut::load(&root.path)? {
        Some(cut) => cut,
        None => {
            return Err(StorageError::InvalidState(format!(
                "{} exists but there is no checkpoint to restore ({} is missing): this copy \
                 was not taken in checkpoint mode, or not completely. Remove {} to start it \
                 with ordinary crash recovery instead (not a consistent backup)",
                trigger.display(),
                cut_path(&root.path).display(),
                trigger.display()
            )));
        }
    };
    let applied = cut.applied_seq();
    tracing::info!(
        root = %root.path.display(),
        seq = cut.seq,
        files_at = applied,
        tables = cut.tables.len(),
        "restore: rewinding to the checkpoint's cut"
    );
    // The WAL first: a copy without the records the cut needs is refused before
    // anything is rewritten.
    let (newest, wal_segments_removed) = crate::wal::truncate_after(&root.wal, cut.seq)?;
    if cut.seq > applied && newest.is_none_or(|n| n < cut.seq) {
        return Err(StorageError::InvalidState(format!(
            "the checkpoint's cut is at commit {} and needs the WAL from commit {}, but the \
             copy's WAL ends at commit {}: {} was not copied completely (copy the whole \
             root after CHECKPOINT CREATE returned)",
            cut.seq,
            applied + 1,
            newest.unwrap_or(0),
            root.wal.display()
        )));
    }
    let mut last_log = Instant::now();
    for (i, t) in cut.tables.iter().enumerate() {
        let dir = root.db.join(&t.dir);
        if !dir.is_dir() {
            return Err(StorageError::corrupted(
                &dir,
                "a table of the checkpoint is missing from the copy (was the whole root copied?)",
            ));
        }
        // The bytes were checked when the cut was read; they are written as recorded.
        fsutil::remove_path(&dir.join(META_PENDING_FILE))?;
        fsutil::write_atomic(&dir.join(META_FILE), &t.meta)?;
        fsutil::write_atomic(&dir.join(TXN_FILE), &t.txn)?;
        if last_log.elapsed() > Duration::from_secs(1) {
            tracing::info!("restore: {} of {} tables rewound", i + 1, cut.tables.len());
            last_log = Instant::now();
        }
    }
    fsutil::write_atomic(&root.registry_path(), &cut.registry)?;
    let marker = checkpoint_dir(&root.path).join(RESTORED_MARKER);
    fsutil::write_synced(&marker, b"")?;
    fsutil::sync_parent(&marker)?;
    fsutil::remove_path(&trigger)?;
    fsutil::sync_dir(&root.path)?;
    fsutil::remove_path(&checkpoint_dir(&root.path))?;
    fsutil::sync_dir(&root.path)?;
    let report = RestoreReport {
        seq: cut.seq,
        tables: cut.tables.len(),
        wal_segments_removed,
        wal_commits_to_replay: cut.seq - applied,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        seq = report.seq,
        tables = report.tables,
        wal_segments_removed,
        wal_commits_to_replay = report.wal_commits_to_replay,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "restore: done; recovery now removes what the cut does not know and replays the WAL up to the cut"
    );
    Ok(report)
}
