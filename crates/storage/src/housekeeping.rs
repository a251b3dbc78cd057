//! Housekeeping: making table files durable (flush) and reclaiming what no
//! commit, reader or checkpoint needs any more.
//!
//! A flush fsyncs the files written since the last one, then writes each changed
//! table's `_txn` (and `_meta`) and `_tables`, which names the newest commit
//! wholly in the files: recovery replays the WAL after it, and WAL segments
//! before it are removed.
//!
//! Superseded partition versions, dropped tables and dropped columns' files
//! become *garbage* at the state version that made them unreachable. A garbage
//! item retired at version `V` is deleted only when
//! - the durable table files on disk are from version `V` or later (recovery
//!   starts from them and must find what they reference),
//! - readers can only start snapshots at `V` or later (the published state), and
//! - no live snapshot is older than `V`,
//!
//! and never while housekeeping is paused (checkpoint mode pauses it; pauses
//! nest, each `pause` needing its `resume`).
//!
//! Reclaiming is paced (`reclaim_paths_per_second`) and goes one unlink at a
//! time, looking at the pause before each: CHECKPOINT CREATE waits for one
//! unlink, never for a round, and shutdown stops it between two files (the
//! next start finds the rest and carries on).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use crate::catalog::Catalog;
use crate::db::{Flushed, Inner};
use crate::error::{Result, StorageError};
use crate::fsutil;
use crate::table::{META_FILE, META_PENDING_FILE, TXN_FILE, TableState};

impl Inner {
    pub(crate) fn flush(&self) -> Result<u64> {
        let flushed = self.flushed.lock();
        if self.status.holds_table_files() {
            // Checkpoint mode: table states are not rewritten, because their atomic
            // replace goes through a temporary file that would vanish under a copy.
            // The WAL, kept whole until RELEASE, makes every later commit durable.
            // (Checked under the flush lock: CREATE sets the phase before its
            // own flush takes it.)
            return Ok(flushed.seq);
        }
        self.flush_locked(flushed).map(|c| c.applied_seq())
    }

    /// Makes the newest state durable: the WAL up to its commit, the table files
    /// as far as the apply has written them. Returns that state.
    pub(crate) fn flush_and_take_catalog(&self) -> Result<Arc<Catalog>> {
        self.flush_locked(self.flushed.lock())
    }

    fn flush_locked(&self, mut flushed: MutexGuard<'_, Flushed>) -> Result<Arc<Catalog>> {
        let (catalog, dirty) = {
            let mut w = self.writer.lock();
            (w.catalog.clone(), std::mem::take(&mut w.dirty))
        };
        if catalog.version == flushed.version && dirty.is_empty() {
            // Nothing changed, but commits may still wait for their WAL fsync.
            self.group.wait_durable(catalog.seq)?;
            return Ok(catalog);
        }
        let result = self
            .flush_catalog(&catalog, &dirty, &mut flushed)
            .map(|_| catalog);
        match &result {
            Err(e) if e.is_retryable_disk_full() => {
                // A write found the disk full: nothing durable changed (the WAL
                // still covers every commit), so the next flush tries again.
                self.writer.lock().dirty.extend(dirty);
            }
            Err(e) => {
                // The table files' durability is unknown now: stop taking commits
                // rather than acknowledge on top of it.
                self.group
                    .poison(format!("making table files durable failed: {e}"));
            }
            Ok(_) => {}
        }
        result
    }

    fn flush_catalog(
        &self,
        catalog: &Catalog,
        dirty: &HashSet<PathBuf>,
        flushed: &mut Flushed,
    ) -> Result<()> {
        // The WAL first: a table's `_txn` must never get ahead of the log that
        // makes its commit whole (a multi-table commit on disk in one table only).
        self.group.wait_durable(catalog.seq)?;
        // Parts retired up to this state (late rows rewrite a partition's tail)
        // are read by nothing durable: skip their fsyncs, which otherwise made
        // flushes and CHECKPOINT CREATE under such a load slow.
        let retired = self.garbage.retired_by(catalog.version);
        let mut dirty: Vec<&PathBuf> = dirty
            .iter()
            .filter(|p| !p.ancestors().any(|a| retired.contains(a)))
            .collect();
        dirty.sort();
        for p in &dirty {
            fsutil::sync_if_exists(p)?;
        }
        let mut tables = BTreeMap::new();
        for t in catalog.tables.values() {
            let now = (t.txn.txn, t.meta.seq);
            if flushed.tables.get(&t.id) != Some(&now) {
                write_table_state(
                    t,
                    flushed.tables.get(&t.id).map(|x| x.1) != Some(t.meta.seq),
                )?;
            }
            tables.insert(t.id, now);
        }
        let registry = catalog.registry();
        let reg_path = self.root.registry_path();
        fsutil::write_atomic(&reg_path, &registry.encode())?;
        flushed.tables = tables;
        flushed.seq = registry.seq;
        self.status
            .durable_seq
            .store(registry.seq, Ordering::Relaxed);
        flushed.version = catalog.version;
        Ok(())
    }

    /// Logs a warning, at most once a minute, while a checkpoint is in progress and
    /// free space is under the configured threshold.
    pub(crate) fn warn_if_space_runs_low(&self, warned_at: &mut Option<Instant>) {
        let threshold = self.options.checkpoint_free_space_warn_bytes;
        if threshold == 0 || self.status.current().is_none() {
            return;
        }
        if warned_at.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        if let Ok(free) = fsutil::free_bytes(&self.root.path)
            && free < threshold
        {
            tracing::warn!(
                free_bytes = free,
                threshold_bytes = threshold,
                "free space is running low during checkpoint mode: finish the copy and run CHECKPOINT RELEASE"
            );
            *warned_at = Some(Instant::now());
        }
    }

    /// Deletes the garbage nothing can read any more and the WAL segments no
    /// recovery needs, paced and a path at a time; stops early (keeping the
    /// rest) when checkpoint mode pauses it, the database closes or `budget`
    /// runs out (so that the housekeeping round's flush is not held up).
    pub(crate) fn reclaim(&self, budget: Option<Duration>) -> Result<Reclaimed> {
        let deadline = budget.map(|b| Instant::now() + b);
        let (durable_seq, durable_version) = {
            let f = self.flushed.lock();
            (f.seq, f.version)
        };
        let trimmed = {
            let _deleting = self.reclaiming.lock();
            if self.garbage.is_paused() {
                // Checkpoint mode: nothing is deleted, not even WAL segments no cut
                // needs, so a copy of the root never meets a file that vanishes.
                return Ok(Reclaimed::default());
            }
            // The WAL up to the commit wholly in the durable table files is never
            // needed (a checkpoint's cut replays only what follows it), once the
            // log backup, if any, has shipped it.
            let shipped = self.log_archived.load(std::sync::atomic::Ordering::Relaxed);
            self.writer.lock().wal.trim(durable_seq.min(shipped))?
        };
        let limit = {
            let pins = self.pins.pinned.lock();
            let published = self.group.published().version;
            durable_version
                .min(published)
                .min(pins.keys().next().copied().unwrap_or(u64::MAX))
        };
        let mut items = self.garbage.take_reclaimable(limit).into_iter();
        let mut pacer = Pacer::new(self.options.reclaim_paths_per_second);
        let mut removed = 0;
        let mut unlinked = 0u64;
        let mut keep = Vec::new();
        let mut out_of_time = false;
        while let Some(item) = items.next() {
            // Forget before deleting: once the name is free a commit may create a
            // new file at the same path, and a checksum remembered for the old
            // file would then be extended over the new one (a false mismatch).
            self.mapped.forget_under(&item.path);
            let mut permit = || {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    out_of_time = true;
                    return None;
                }
                if !pacer.wait(self) {
                    return None;
                }
                let deleting = self.reclaiming.lock();
                if self.garbage.is_paused() {
                    return None;
                }
                unlinked += 1;
                Some(deleting)
            };
            match fsutil::remove_path_stepwise(&item.path, &mut permit) {
                Ok(true) => removed += 1,
                Ok(false) => {
                    // Paused by CHECKPOINT CREATE, closing, or out of time: the
                    // rest waits.
                    keep.push(item);
                    keep.extend(items);
                    break;
                }
                Err(e) => {
                    // Deletion failed: try again next round.
                    tracing::warn!("could not remove {}: {e}", item.path.display());
                    keep.push(item);
                }
            }
        }
        let stopped_early = !keep.is_empty();
        self.garbage.put_back(keep);
        self.status
            .reclaimed_paths
            .fetch_add(unlinked, Ordering::Relaxed);
        if removed + trimmed > 0 {
            tracing::debug!(
                removed,
                files_and_dirs_unlinked = unlinked,
                wal_segments_removed = trimmed,
                stopped_early,
                "housekeeping reclaimed space"
            );
        }
        Ok(Reclaimed {
            removed: removed + trimmed,
            more: out_of_time,
        })
    }

    /// Measures new garbage, publishes the backlog (every caller of `reclaim`
    /// runs this after it) and, every few seconds, measures the whole root, for
    /// status and metrics (which read the figures instead of walking the tree).
    pub(crate) fn measure(&self, disk_measured_at: &mut Option<Instant>) {
        self.garbage.measure(MEASURE_PER_ROUND);
        self.publish_backlog();
        if disk_measured_at.is_none_or(|t| t.elapsed() >= DISK_MEASURE_INTERVAL) {
            self.status
                .disk_bytes
                .store(fsutil::disk_usage(&self.root.path), Ordering::Relaxed);
            *disk_measured_at = Some(Instant::now());
        }
    }

    pub(crate) fn publish_backlog(&self) {
        let b = self.garbage.backlog();
        self.status.pending_paths.store(b.paths, Ordering::Relaxed);
        self.status.pending_bytes.store(b.bytes, Ordering::Relaxed);
    }
}

/// What one reclaim did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Reclaimed {
    /// Paths and WAL segments removed.
    pub(crate) removed: usize,
    /// It ran out of time with reclaimable garbage left: go on without a pause.
    pub(crate) more: bool,
}

/// Logs a long reclaim's progress every few seconds (after a long checkpoint
/// mode it can take minutes, paced).
#[derive(Debug, Default)]
pub(crate) struct ReclaimProgress {
    /// When the backlog started, and the unlink count then.
    started: Option<(Instant, u64)>,
    logged: Option<Instant>,
}

impl ReclaimProgress {
    pub(crate) fn log(&mut self, inner: &Inner, more: bool) {
        let unlinked = inner.status.reclaimed_paths.load(Ordering::Relaxed);
        let remaining = inner.status.pending_paths.load(Ordering::Relaxed);
        match (self.started, more) {
            (None, true) => {
                self.started = Some((Instant::now(), unlinked));
                self.logged = Some(Instant::now());
                tracing::info!(
                    remaining_paths = remaining,
                    "housekeeping: reclaiming unneeded files"
                );
            }
            (Some((since, at)), true) => {
                if self
                    .logged
                    .is_none_or(|t| t.elapsed() >= PROGRESS_LOG_INTERVAL)
                {
                    tracing::info!(
                        remaining_paths = remaining,
                        unlinked = unlinked - at,
                        elapsed_s = since.elapsed().as_secs(),
                        "housekeeping: reclaiming unneeded files"
                    );
                    self.logged = Some(Instant::now());
                }
            }
            (Some((since, at)), false) => {
                tracing::info!(
                    unlinked = unlinked - at,
                    elapsed_ms = since.elapsed().as_millis() as u64,
                    "housekeeping: reclaim done"
                );
                *self = ReclaimProgress::default();
            }
            (None, false) => {}
        }
    }
}

const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Garbage items measured per housekeeping round (each a directory walk).
const MEASURE_PER_ROUND: usize = 20_000;
/// How often housekeeping measures the whole root for `/metrics`.
const DISK_MEASURE_INTERVAL: Duration = Duration::from_secs(10);

/// Spaces unlinks out to at most `rate` a second (0: no limit).
struct Pacer {
    rate: u64,
    started: Instant,
    done: u64,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        Pacer {
            rate,
            started: Instant::now(),
            done: 0,
        }
    }

    /// Waits until the next unlink is due; false when the database closes.
    fn wait(&mut self, inner: &Inner) -> bool {
        self.done += 1;
        if self.rate == 0 {
            return !inner.closed.load(Ordering::SeqCst);
        }
        let due = Duration::from_secs_f64(self.done as f64 / self.rate as f64);
        match due.checked_sub(self.started.elapsed()) {
            Some(ahead) if ahead > Duration::from_millis(1) => inner.sleep(ahead),
            _ => !inner.closed.load(Ordering::SeqCst),
        }
    }
}

/// Writes a table's `_txn` (and `_meta` when the schema changed) durably. The new
/// `_meta` goes to `_meta.pending` first and is renamed into place after `_txn`,
/// so that recovery always finds the schema that goes with `_txn`.
fn write_table_state(t: &TableState, meta_changed: bool) -> Result<()> {
    let pending = t.dir.join(META_PENDING_FILE);
    if meta_changed {
        fsutil::write_synced(&pending, &t.meta.encode())?;
    }
    fsutil::write_atomic(&t.dir.join(TXN_FILE), &t.txn.encode())?;
    if meta_changed {
        let meta = t.dir.join(META_FILE);
        std::fs::rename(&pending, &meta).map_err(|e| StorageError::io(&meta, e))?;
        fsutil::sync_dir(&t.dir)?;
    }
    Ok(())
}
