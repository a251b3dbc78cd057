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

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::catalog::Catalog;
use crate::db::{Flushed, Inner};
use crate::error::{Result, StorageError};
use crate::fsutil;
use crate::table::{META_FILE, META_PENDING_FILE, TXN_FILE, TableState};

#[derive(Debug, Default)]
pub(crate) struct Garbage {
    items: Mutex<Vec<(u64, PathBuf)>>,
    pauses: AtomicUsize,
}

impl Garbage {
    pub(crate) fn add(&self, seq: u64, paths: impl IntoIterator<Item = PathBuf>) {
        self.items
            .lock()
            .extend(paths.into_iter().map(|p| (seq, p)));
    }

    /// Takes the items retired at or before version `limit`.
    pub(crate) fn take_reclaimable(&self, limit: u64) -> Vec<PathBuf> {
        let mut g = self.items.lock();
        let (ready, keep): (Vec<_>, Vec<_>) = g.drain(..).partition(|(s, _)| *s <= limit);
        *g = keep;
        ready.into_iter().map(|(_, p)| p).collect()
    }

    /// The paths retired up to version `version`: nothing from it on refers to them.
    pub(crate) fn retired_by(&self, version: u64) -> HashSet<PathBuf> {
        self.items
            .lock()
            .iter()
            .filter(|(s, _)| *s <= version)
            .map(|(_, p)| p.clone())
            .collect()
    }

    pub(crate) fn pending(&self) -> Vec<PathBuf> {
        self.items.lock().iter().map(|(_, p)| p.clone()).collect()
    }

    pub(crate) fn pause(&self) -> usize {
        self.pauses.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn resume(&self) -> usize {
        let mut cur = self.pauses.load(Ordering::SeqCst);
        loop {
            let next = cur.saturating_sub(1);
            match self
                .pauses
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(c) => cur = c,
            }
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.pauses.load(Ordering::SeqCst) > 0
    }
}

impl Inner {
    pub(crate) fn flush(&self) -> Result<u64> {
        if self.checkpoint.lock().is_some() {
            // Checkpoint mode: table states are not rewritten, because their atomic
            // replace goes through a temporary file that would vanish under a copy.
            // The WAL, kept whole until RELEASE, makes every later commit durable.
            return Ok(self.flushed.lock().seq);
        }
        self.flush_and_take_catalog().map(|c| c.applied_seq())
    }

    /// Makes the newest state durable: the WAL up to its commit, the table files
    /// as far as the apply has written them. Returns that state.
    pub(crate) fn flush_and_take_catalog(&self) -> Result<Arc<Catalog>> {
        let mut flushed = self.flushed.lock();
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
        flushed.version = catalog.version;
        Ok(())
    }

    /// Logs a warning, at most once a minute, while a checkpoint is in progress and
    /// free space is under the configured threshold.
    pub(crate) fn warn_if_space_runs_low(&self, warned_at: &mut Option<Instant>) {
        let threshold = self.options.checkpoint_free_space_warn_bytes;
        if threshold == 0 || self.checkpoint.lock().is_none() {
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

    pub(crate) fn reclaim(&self) -> Result<usize> {
        let _deleting = self.reclaiming.lock();
        if self.garbage.is_paused() {
            // Checkpoint mode: nothing is deleted, not even WAL segments no cut
            // needs, so a copy of the root never meets a file that vanishes.
            return Ok(0);
        }
        let (durable_seq, durable_version) = {
            let f = self.flushed.lock();
            (f.seq, f.version)
        };
        // The WAL up to the commit wholly in the durable table files is never
        // needed (a checkpoint's cut replays only what follows it).
        let trimmed = self.writer.lock().wal.trim(durable_seq)?;
        let limit = {
            let pins = self.pins.pinned.lock();
            let published = self.group.published().version;
            durable_version
                .min(published)
                .min(pins.keys().next().copied().unwrap_or(u64::MAX))
        };
        let paths = self.garbage.take_reclaimable(limit);
        let mut removed = 0;
        let mut failed = Vec::new();
        for p in paths {
            // Forget before deleting: once the name is free a commit may create a
            // new file at the same path, and a checksum remembered for the old
            // file would then be extended over the new one (a false mismatch).
            self.mapped.forget_under(&p);
            match fsutil::remove_path(&p) {
                Ok(()) => {
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!("could not remove {}: {e}", p.display());
                    failed.push(p);
                }
            }
        }
        if !failed.is_empty() {
            // Deletion failed: try again next round.
            self.garbage.add(limit, failed);
        }
        if removed + trimmed > 0 {
            tracing::debug!(
                removed,
                wal_segments_removed = trimmed,
                "housekeeping reclaimed space"
            );
        }
        Ok(removed + trimmed)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_nest_and_reclaim_respects_the_limit() {
        let g = Garbage::default();
        assert_eq!(g.pause(), 1);
        assert_eq!(g.pause(), 2);
        assert_eq!(g.resume(), 1);
        assert!(g.is_paused());
        assert_eq!(g.resume(), 0);
        assert_eq!(g.resume(), 0);
        assert!(!g.is_paused());
        g.add(5, [PathBuf::from("a")]);
        g.add(9, [PathBuf::from("b")]);
        assert_eq!(g.take_reclaimable(7), vec![PathBuf::from("a")]);
        assert_eq!(g.pending(), vec![PathBuf::from("b")]);
    }
}
