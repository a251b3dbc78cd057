//! [`Database`]: opening a root, committing transactions, reading snapshots,
//! making table files durable, and running housekeeping.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};

use crate::catalog::Catalog;
use crate::checkpoint::{Cut, checkpoint_dir, cut_path};
use crate::commit::{GroupCommit, WalTail};
use crate::error::{Result, StorageError};
use crate::fsutil;
use crate::housekeeping::Garbage;
use crate::ops::{Request, Staging, apply, resolve};
use crate::options::{CommitMode, StorageOptions};
use crate::recovery;
use crate::restore::{self, RestoreReport};
use crate::root::Root;
use crate::snapshot::{Pins, PreviewFiles, Snapshot};
use crate::table::column::VerifiedFiles;
use crate::table::{META_FILE, META_PENDING_FILE, TXN_FILE, TableState};
use crate::wal::WalWriter;
use crate::wal::record::OpsEncoder;

/// A set of requests that commit together, atomically, as one WAL record.
#[derive(Debug, Default, Clone)]
pub struct Transaction {
    pub requests: Vec<Request>,
}

impl Transaction {
    pub fn new() -> Self {
        Transaction::default()
    }
    pub fn push(&mut self, r: Request) -> &mut Self {
        self.requests.push(r);
        self
    }
    pub fn with(mut self, r: Request) -> Self {
        self.requests.push(r);
        self
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The commit's sequence number; `None` when there was nothing to do.
    pub seq: Option<u64>,
    pub rows_written: u64,
}

/// Counters exposed for metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStats {
    /// WAL fsyncs performed (group commit makes this smaller than the commit count).
    pub wal_fsyncs: u64,
    pub wal_fsync_micros: u64,
    /// The newest commit whose table files are durable.
    pub durable_seq: u64,
    /// The newest commit readers see.
    pub visible_seq: u64,
}

/// What opening a root found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub tables: usize,
    pub replayed_commits: usize,
    pub cut_bytes: u64,
    pub removed_paths: usize,
    pub elapsed: Duration,
    /// Set when `_restore` was found and the root was rewound to its checkpoint.
    pub restored: Option<RestoreReport>,
    /// Whether the root is (still) in checkpoint mode.
    pub in_checkpoint: bool,
}

/// The checkpoint in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CheckpointState {
    created: SystemTime,
    seq: u64,
    tables: usize,
}

/// What `checkpoint_status()` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointStatus {
    pub in_progress: bool,
    /// When CHECKPOINT CREATE recorded the cut (None when idle).
    pub started_at: Option<SystemTime>,
    /// The commit the cut is at (None when idle).
    pub seq: Option<u64>,
    /// Tables in the cut.
    pub tables: usize,
    /// Bytes on disk kept only because housekeeping is paused for the checkpoint.
    pub held_bytes: u64,
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

#[derive(Debug)]
struct Writer {
    catalog: Arc<Catalog>,
    wal: WalWriter,
    dirty: HashSet<PathBuf>,
}

/// What is durable on disk: the catalog flushed last, per table (txn, meta_seq).
#[derive(Debug)]
struct Flushed {
    seq: u64,
    tables: BTreeMap<u64, (u64, u64)>,
}

#[derive(Debug)]
struct Inner {
    root: Root,
    options: StorageOptions,
    writer: Mutex<Writer>,
    group: GroupCommit,
    flushed: Mutex<Flushed>,
    garbage: Arc<Garbage>,
    /// Held while housekeeping deletes files, so CHECKPOINT CREATE can wait for a
    /// round in progress: once it returns, no file under the root disappears until
    /// RELEASE (`cp -a` and rsync fail on files that vanish mid-copy).
    reclaiming: Mutex<()>,
    pins: Arc<Pins>,
    verified: Arc<VerifiedFiles>,
    stop: Mutex<bool>,
    wake: Condvar,
    closed: AtomicBool,
    checkpoint: Mutex<Option<CheckpointState>>,
}

/// An open Tidemark root. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Database {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    report: OpenReport,
}

impl Database {
    /// Opens (creating if needed) the root at `path`: takes the lock, recovers,
    /// and starts housekeeping.
    pub fn open(path: impl AsRef<Path>, options: StorageOptions) -> Result<Database> {
        let started = Instant::now();
        let root = Root::open(path.as_ref())?;
        tracing::info!(root = %root.path.display(), "opening storage");
        let restored = if restore::restore_requested(&root.path) {
            Some(restore::restore(&root)?)
        } else {
            None
        };
        // A checkpoint in progress survives restarts: recovery spares what its cut
        // refers to, and housekeeping stays paused until RELEASE.
        let cut = Cut::in_progress(&root.path)?;
        let protected = match &cut {
            Some(c) => c.referenced_paths(&root.db, &cut_path(&root.path))?,
            None => Default::default(),
        };
        let verified = Arc::new(VerifiedFiles::default());
        // Previews belong to sessions of an earlier process: none survives it.
        fsutil::remove_path(&root.path.join("preview"))?;
        let rec = recovery::recover(&root, &verified, options.split_min_rows, &protected)?;
        let next_seq = rec.catalog.seq + 1;
        let new_segment = crate::wal::segment_path(&root.wal, next_seq);
        let closed: Vec<_> = rec
            .segments
            .iter()
            .filter(|(_, p)| *p != new_segment)
            .cloned()
            .collect();
        let wal = WalWriter::create(&root.wal, next_seq, options.wal_segment_bytes, closed)?;
        let catalog = Arc::new(rec.catalog);
        let tail = WalTail {
            seq: catalog.seq,
            file: wal.current_file(),
        };
        let report = OpenReport {
            tables: catalog.tables.len(),
            replayed_commits: rec.replayed,
            cut_bytes: rec.cut_bytes,
            removed_paths: rec.removed_paths,
            elapsed: Duration::ZERO,
            restored,
            in_checkpoint: cut.is_some(),
        };
        let inner = Arc::new(Inner {
            group: GroupCommit::new(catalog.clone(), tail),
            writer: Mutex::new(Writer {
                catalog,
                wal,
                dirty: rec.dirty,
            }),
            // Replay wrote table files that are not durable yet: the first flush writes them all.
            flushed: Mutex::new(Flushed {
                seq: 0,
                tables: rec.durable_tables,
            }),
            garbage: Arc::new(Garbage::default()),
            reclaiming: Mutex::new(()),
            pins: Arc::new(Pins::default()),
            verified,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            checkpoint: Mutex::new(cut.as_ref().map(|c| CheckpointState {
                created: c.created,
                seq: c.seq,
                tables: c.tables.len(),
            })),
            root,
            options,
        });
        if let Some(c) = &cut {
            inner.garbage.pause();
            tracing::info!(
                seq = c.seq,
                tables = c.tables.len(),
                "the root is in checkpoint mode (CHECKPOINT RELEASE ends it): housekeeping is paused"
            );
        }
        for (seq, p) in rec.garbage {
            inner.garbage.add(seq, [p]);
        }
        inner.flush()?;
        inner.reclaim()?;
        let report = OpenReport {
            elapsed: started.elapsed(),
            ..report
        };
        tracing::info!(
            tables = report.tables,
            replayed_commits = report.replayed_commits,
            cut_bytes = report.cut_bytes,
            removed_paths = report.removed_paths,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "storage recovered"
        );
        let db = Database {
            inner,
            threads: Mutex::new(Vec::new()),
            report,
        };
        db.start_threads();
        Ok(db)
    }

    fn start_threads(&self) {
        let mut threads = self.threads.lock();
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| match std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
        {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!("cannot start thread {name}: {e}");
                None
            }
        };
        if self.inner.options.background_housekeeping {
            let inner = self.inner.clone();
            threads.extend(spawn(
                "tidemark-housekeeping",
                Box::new(move || {
                    let interval = inner.options.housekeeping_interval;
                    let mut warned_at: Option<Instant> = None;
                    while inner.sleep(interval) {
                        if let Err(e) = inner.flush().and_then(|_| inner.reclaim()) {
                            tracing::error!("housekeeping failed: {e}");
                        }
                        inner.warn_if_space_runs_low(&mut warned_at);
                    }
                }),
            ));
        }
        if self.inner.options.commit_mode == CommitMode::Async {
            let inner = self.inner.clone();
            threads.extend(spawn(
                "tidemark-wal-sync",
                Box::new(move || {
                    let interval = inner.options.async_sync_interval;
                    while inner.sleep(interval) {
                        let seq = inner.group.written_seq();
                        if let Err(e) = inner.group.wait_durable(seq) {
                            tracing::error!("background WAL sync failed: {e}");
                        }
                    }
                }),
            ));
        }
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    pub fn root(&self) -> &Path {
        &self.inner.root.path
    }

    /// Commits `tx` atomically. In `sync` mode returns once the commit is durable.
    pub fn commit(&self, tx: Transaction) -> Result<CommitReceipt> {
        if let Some(f) = self.inner.group.failure() {
            return Err(StorageError::Poisoned(f));
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(StorageError::InvalidState("the database is closed".into()));
        }
        let mode = self.inner.options.commit_mode;
        let (seq, rows) = {
            let mut w = self.inner.writer.lock();
            let seq = w.catalog.seq + 1;
            let mut st = Staging::new(
                (*w.catalog).clone(),
                seq,
                self.inner.root.db.clone(),
                &self.inner.verified,
                self.inner.options.split_min_rows,
            );
            // Each operation is encoded for the WAL as soon as it is applied and
            // then dropped: a large COPY never holds its rows twice over.
            let mut ops = OpsEncoder::new();
            let mut outcome = Ok(());
            for req in tx.requests {
                match resolve(req, &mut st).and_then(|op| match op {
                    Some(op) => apply(&op, &mut st).map(|_| Some(op)),
                    None => Ok(None),
                }) {
                    Ok(Some(op)) => ops.push(&op),
                    Ok(None) => {}
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            let empty = ops.is_empty();
            if outcome.is_ok() && !empty {
                outcome = w.wal.append(seq, &ops.finish());
            }
            if let Err(e) = outcome {
                self.inner.abort(st);
                if matches!(e, StorageError::Sync { .. }) {
                    self.inner.group.poison(format!("{e}"));
                }
                return Err(e);
            }
            if empty {
                return Ok(CommitReceipt {
                    seq: None,
                    rows_written: 0,
                });
            }
            let rows = st.rows_written;
            let garbage = std::mem::take(&mut st.garbage);
            w.dirty.extend(st.dirty.drain(..));
            let mut catalog = std::mem::take(&mut st.catalog);
            catalog.seq = seq;
            let catalog = Arc::new(catalog);
            w.catalog = catalog.clone();
            self.inner.garbage.add(seq, garbage);
            let tail = WalTail {
                seq,
                file: w.wal.current_file(),
            };
            self.inner
                .group
                .enqueue(catalog, tail, mode != CommitMode::Sync);
            (seq, rows)
        };
        if mode == CommitMode::Sync {
            self.inner.group.wait_durable(seq)?;
        }
        Ok(CommitReceipt {
            seq: Some(seq),
            rows_written: rows,
        })
    }

    /// What the database would look like if `tx` committed now: a snapshot of
    /// the newest commit with `tx` applied on top, for a transaction to read its
    /// own writes. Nothing is committed or logged, and no byte that another reader
    /// or commit can see is written: new rows go to new part directories, symbol
    /// dictionaries are copied, new tables live under `<root>/preview/`. The files
    /// are removed when the snapshot (and every reader from it) is dropped.
    pub fn preview(&self, tx: &Transaction) -> Result<Snapshot> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let area = self.inner.root.path.join("preview").join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&area).map_err(|e| StorageError::io(&area, e))?;
        // Under the writer lock, so new part directories never race with a commit's.
        let w = self.inner.writer.lock();
        let base = w.catalog.clone();
        let mut st = Staging::new(
            (*base).clone(),
            base.seq + 1,
            area.clone(),
            &self.inner.verified,
            self.inner.options.split_min_rows,
        );
        st.preview = Some(area.clone());
        let mut outcome = Ok(());
        for req in tx.requests.iter().cloned() {
            if let Err(e) = resolve(req, &mut st).and_then(|op| match op {
                Some(op) => apply(&op, &mut st),
                None => Ok(()),
            }) {
                outcome = Err(e);
                break;
            }
        }
        drop(w);
        if let Err(e) = outcome {
            self.inner.abort(st);
            self.inner.remove_or_defer(vec![area]);
            return Err(e);
        }
        let mut paths = std::mem::take(&mut st.created);
        paths.insert(0, area);
        let mut catalog = std::mem::take(&mut st.catalog);
        // Pinned at the base commit: what the preview shares with it stays on disk.
        catalog.seq = base.seq;
        let files = PreviewFiles {
            paths,
            verified: self.inner.verified.clone(),
            garbage: self.inner.garbage.clone(),
        };
        let mut pinned = self.inner.pins.pinned.lock();
        Ok(Snapshot::new(
            Arc::new(catalog),
            self.inner.verified.clone(),
            self.inner.pins.clone(),
            &mut pinned,
        )
        .with_preview_files(files))
    }

    /// A consistent view of all tables as of the newest visible commit.
    pub fn snapshot(&self) -> Snapshot {
        let mut pinned = self.inner.pins.pinned.lock();
        Snapshot::new(
            self.inner.group.published(),
            self.inner.verified.clone(),
            self.inner.pins.clone(),
            &mut pinned,
        )
    }

    /// Makes every committed change durable in the table files (fsync), so that
    /// recovery need not replay the WAL up to here. Returns the durable commit.
    pub fn flush(&self) -> Result<u64> {
        self.inner.flush()
    }

    /// Runs one round of housekeeping now: flush, then reclaim what nothing needs.
    /// Returns the number of paths removed.
    pub fn run_housekeeping(&self) -> Result<usize> {
        self.inner.flush()?;
        self.inner.reclaim()
    }

    /// `CHECKPOINT CREATE`: records the cut (the newest commit, across all tables)
    /// in `.checkpoint/`, with every byte it refers to durable, and pauses
    /// housekeeping until [`Database::checkpoint_release`]. Commits are held only
    /// while the newest catalog is taken, not while files are synced. Returns the
    /// commit the cut is at ([`Database::checkpoint_status`] has the rest).
    pub fn checkpoint_create(&self) -> Result<u64> {
        let started = Instant::now();
        let mut state = self.inner.checkpoint.lock();
        if let Some(cp) = *state {
            return Err(StorageError::CheckpointInProgress {
                since: humane_time(cp.created),
            });
        }
        self.inner.garbage.pause();
        drop(self.inner.reclaiming.lock());
        let outcome = self.inner.flush_and_take_catalog().and_then(|catalog| {
            let cut = Cut::capture(&catalog, SystemTime::now());
            cut.write(&self.inner.root.path)?;
            Ok(cut)
        });
        let cut = match outcome {
            Ok(cut) => cut,
            Err(e) => {
                let _ = fsutil::remove_path(&checkpoint_dir(&self.inner.root.path));
                self.resume_housekeeping();
                return Err(e);
            }
        };
        *state = Some(CheckpointState {
            created: cut.created,
            seq: cut.seq,
            tables: cut.tables.len(),
        });
        drop(state);
        tracing::info!(
            seq = cut.seq,
            tables = cut.tables.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "checkpoint created: the root can be copied; housekeeping is paused until CHECKPOINT RELEASE"
        );
        Ok(cut.seq)
    }

    /// `CHECKPOINT RELEASE`: leaves checkpoint mode and lets housekeeping reclaim
    /// what the cut held.
    pub fn checkpoint_release(&self) -> Result<Released> {
        let mut state = self.inner.checkpoint.lock();
        let Some(cp) = *state else {
            return Ok(Released::NoCheckpoint);
        };
        let dir = checkpoint_dir(&self.inner.root.path);
        fsutil::remove_path(&dir)?;
        fsutil::sync_dir(&self.inner.root.path)?;
        *state = None;
        drop(state);
        self.resume_housekeeping();
        tracing::info!(
            seq = cp.seq,
            held_for_s = cp.created.elapsed().unwrap_or_default().as_secs(),
            "checkpoint released: housekeeping resumes"
        );
        Ok(Released::Ended { seq: cp.seq })
    }

    /// The checkpoint state, for `checkpoint_status()` and metrics.
    pub fn checkpoint_status(&self) -> CheckpointStatus {
        let state = *self.inner.checkpoint.lock();
        let held_bytes = match state {
            Some(_) => self
                .inner
                .garbage
                .pending()
                .iter()
                .map(|p| fsutil::disk_usage(p))
                .sum(),
            None => 0,
        };
        CheckpointStatus {
            in_progress: state.is_some(),
            started_at: state.map(|s| s.created),
            seq: state.map(|s| s.seq),
            tables: state.map_or(0, |s| s.tables),
            held_bytes,
            free_bytes: fsutil::free_bytes(&self.inner.root.path).unwrap_or(0),
        }
    }

    /// Pauses reclaiming files and WAL segments (nests; see [`Database::resume_housekeeping`]).
    pub fn pause_housekeeping(&self) -> usize {
        self.inner.garbage.pause()
    }

    pub fn resume_housekeeping(&self) -> usize {
        let n = self.inner.garbage.resume();
        self.inner.wake.notify_all();
        n
    }

    pub fn housekeeping_paused(&self) -> bool {
        self.inner.garbage.is_paused()
    }

    /// Paths waiting to be reclaimed (superseded partition versions, dropped tables and columns).
    pub fn pending_garbage(&self) -> Vec<PathBuf> {
        self.inner.garbage.pending()
    }

    /// The newest commit whose WAL record is on disk.
    pub fn durable_wal_seq(&self) -> u64 {
        self.inner.group.synced_seq()
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> StorageStats {
        let (wal_fsyncs, wal_fsync_micros) = self.inner.group.fsync_stats();
        StorageStats {
            wal_fsyncs,
            wal_fsync_micros,
            durable_seq: self.inner.flushed.lock().seq,
            visible_seq: self.inner.group.published().seq,
        }
    }

    /// Number of WAL segment files.
    pub fn wal_segments(&self) -> usize {
        self.inner.writer.lock().wal.segment_count()
    }

    /// Stops housekeeping, makes everything durable and releases the root.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// Drops the database the way a killed process would: no final flush, table
    /// files left as they are, WAL as written. For tests of recovery.
    #[doc(hidden)]
    pub fn simulate_crash(self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        *self.inner.stop.lock() = true;
        self.inner.wake.notify_all();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }

    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        *self.inner.stop.lock() = true;
        self.inner.wake.notify_all();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
        // Commits that raced with close have finished under the writer lock.
        drop(self.inner.writer.lock());
        self.inner.flush()?;
        self.inner.reclaim()?;
        tracing::info!(root = %self.inner.root.path.display(), "storage closed");
        Ok(())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!("closing storage failed: {e}");
        }
    }
}

impl Inner {
    /// Sleeps up to `d`; false when asked to stop.
    fn sleep(&self, d: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop {
            self.wake.wait_for(&mut stop, d);
        }
        !*stop
    }

    fn flush(&self) -> Result<u64> {
        if self.checkpoint.lock().is_some() {
            // Checkpoint mode: table states are not rewritten, because their atomic
            // replace goes through a temporary file that would vanish under a copy.
            // The WAL, kept whole until RELEASE, makes every later commit durable.
            return Ok(self.flushed.lock().seq);
        }
        self.flush_and_take_catalog().map(|c| c.seq)
    }

    /// Undoes a failed commit's staging and removes the files it created, at once
    /// even in checkpoint mode: a retried CREATE TABLE reuses the table's id and
    /// directory, which a removal deferred to RELEASE would then delete.
    fn abort(&self, st: Staging<'_>) {
        let created = st.abort_keeping_files();
        self.remove_now(created);
    }

    /// Deletes unreferenced `paths` now, or at RELEASE when in checkpoint mode.
    /// Only for paths no later commit can reuse (a preview's private area).
    fn remove_or_defer(&self, paths: Vec<PathBuf>) {
        if self.garbage.is_paused() {
            self.garbage.add(0, paths);
            return;
        }
        self.remove_now(paths);
    }

    fn remove_now(&self, paths: Vec<PathBuf>) {
        for p in paths.iter().rev() {
            self.verified.forget_under(p);
            if let Err(e) = fsutil::remove_path(p) {
                tracing::warn!("could not remove {}: {e}", p.display());
            }
        }
    }

    /// Makes the newest commit durable in the table files; that commit's catalog.
    fn flush_and_take_catalog(&self) -> Result<Arc<Catalog>> {
        let mut flushed = self.flushed.lock();
        let (catalog, dirty) = {
            let mut w = self.writer.lock();
            (w.catalog.clone(), std::mem::take(&mut w.dirty))
        };
        if catalog.seq == flushed.seq && dirty.is_empty() {
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
    ) -> Result<u64> {
        // The WAL first: a table's `_txn` must never get ahead of the log that
        // makes its commit whole (a multi-table commit on disk in one table only).
        self.group.wait_durable(catalog.seq)?;
        // Parts retired by a commit up to this one (late rows rewrite a partition's
        // tail on every commit) are read by nothing durable: skip their fsyncs,
        // which otherwise made flushes and CHECKPOINT CREATE under such a load slow.
        let retired = self.garbage.retired_by(catalog.seq);
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
        let reg_path = self.root.registry_path();
        fsutil::write_atomic(&reg_path, &catalog.registry().encode())?;
        flushed.tables = tables;
        flushed.seq = catalog.seq;
        Ok(catalog.seq)
    }

    /// Logs a warning, at most once a minute, while a checkpoint is in progress and
    /// free space is under the configured threshold.
    fn warn_if_space_runs_low(&self, warned_at: &mut Option<Instant>) {
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

    fn reclaim(&self) -> Result<usize> {
        let _deleting = self.reclaiming.lock();
        if self.garbage.is_paused() {
            // Checkpoint mode: nothing is deleted, not even WAL segments no cut
            // needs, so a copy of the root never meets a file that vanishes.
            return Ok(0);
        }
        let durable = self.flushed.lock().seq;
        // The WAL below the durable table files is never needed, not even by a
        // checkpoint's cut (CHECKPOINT CREATE makes the cut's table files durable).
        let trimmed = self.writer.lock().wal.trim(durable)?;
        let limit = {
            let pins = self.pins.pinned.lock();
            let published = self.group.published().seq;
            durable
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
            self.verified.forget_under(&p);
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

/// A time for messages: RFC 3339 in UTC, to the second.
fn humane_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::types::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
