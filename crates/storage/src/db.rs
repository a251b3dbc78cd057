//! [`Database`]: opening a root, committing transactions, reading snapshots,
//! checkpoint mode, and the threads that keep the files up to date.
//!
//! A commit that only adds rows (INSERT, COPY) writes one WAL record and puts
//! its rows in the write buffer (`ops::memory`): no column, directory or
//! dictionary file is written. A commit that changes more (DDL, UPDATE/DELETE,
//! dropped partitions) first has every buffered row written to the files
//! (`apply.rs`), then changes the files (`ops::files`). Either way the new state
//! becomes visible once its WAL record is durable (`commit.rs`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};

use crate::apply::write_all_buffered;
use crate::catalog::Catalog;
use crate::checkpoint::{Cut, cut_path};
use crate::checkpoint_mode::{CheckpointPhase, CheckpointState, StatusBoard};
use crate::commit::{GroupCommit, WalTail};
use crate::error::{Result, StorageError};
use crate::fsutil;
use crate::garbage::Garbage;
use crate::housekeeping::ReclaimProgress;
use crate::ops::request::resolve;
use crate::ops::{Request, Staging, files, memory};
use crate::options::{CommitMode, StorageOptions};
use crate::recovery;
use crate::restore::{self, RestoreReport};
use crate::root::Root;
use crate::snapshot::{Pins, Snapshot};
use crate::table::files::MappedFiles;
use crate::transaction::TxView;
use crate::wal::{RecordStream, WalWriter};

/// A set of requests that commit together, atomically, as one WAL record.
/// Inside an open transaction, [`Database::stage`] adds requests and keeps the
/// transaction's own view of them up to date.
#[derive(Debug, Default, Clone)]
pub struct Transaction {
    pub requests: Vec<Request>,
    pub(crate) view: Option<TxView>,
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

    /// Where the transaction is now, to come back to (SQL's `SAVEPOINT`).
    pub fn savepoint(&self) -> TxSavepoint {
        TxSavepoint {
            requests: self.requests.len(),
            view: self.view.clone(),
        }
    }

    /// Forgets every write since `mark` (SQL's `ROLLBACK TO SAVEPOINT`): its
    /// requests and its staged view. Cheap: the view is shared, not restaged.
    pub fn rollback_to(&mut self, mark: &TxSavepoint) {
        self.requests.truncate(mark.requests);
        self.view = mark.view.clone();
    }
}

/// A point inside an open transaction (see [`Transaction::savepoint`]).
#[derive(Debug, Clone)]
pub struct TxSavepoint {
    requests: usize,
    view: Option<TxView>,
}

impl From<Vec<Request>> for Transaction {
    fn from(requests: Vec<Request>) -> Self {
        Transaction {
            requests,
            view: None,
        }
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The commit's sequence number; `None` when there was nothing to do.
    pub seq: Option<u64>,
    pub rows_written: u64,
}

/// A commit that is decided but maybe not yet durable (see
/// [`Database::start_commit`]).
#[derive(Debug)]
pub struct PendingCommit {
    /// Set while the commit waits for its WAL fsync (`sync` mode).
    inner: Option<Arc<Inner>>,
    receipt: CommitReceipt,
}

impl PendingCommit {
    /// Blocks until the commit is durable (in `sync` mode); its receipt.
    pub fn wait(self) -> Result<CommitReceipt> {
        if let (Some(inner), Some(seq)) = (&self.inner, self.receipt.seq) {
            inner.group.wait_durable(seq)?;
        }
        Ok(self.receipt)
    }

    /// The commit's receipt once it is durable, as a future that blocks no
    /// thread: the WAL sync thread fsyncs for it and wakes it.
    pub fn durable(self) -> DurableCommit {
        DurableCommit { pending: self }
    }
}

/// The future of [`PendingCommit::durable`].
#[derive(Debug)]
pub struct DurableCommit {
    pending: PendingCommit,
}

impl std::future::Future for DurableCommit {
    type Output = Result<CommitReceipt>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let p = &self.get_mut().pending;
        if let (Some(inner), Some(seq)) = (&p.inner, p.receipt.seq) {
            match inner.group.poll_durable(seq, cx) {
                std::task::Poll::Ready(Ok(())) => {}
                std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
        std::task::Poll::Ready(Ok(p.receipt.clone()))
    }
}

/// Counters exposed for metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStats {
    /// WAL fsyncs performed (group commit makes this smaller than the commit count).
    pub wal_fsyncs: u64,
    pub wal_fsync_micros: u64,
    /// The newest commit whose rows are all in durable table files (recovery
    /// replays the WAL after it).
    pub durable_seq: u64,
    /// The newest commit readers see.
    pub visible_seq: u64,
    /// Rows and bytes in the write buffer (committed, not yet in the files).
    pub buffered_rows: u64,
    pub buffered_bytes: u64,
    /// Applies of the write buffer done, and the rows they moved to the files.
    pub applies: u64,
    pub applied_rows: u64,
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

#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) wal: WalWriter,
    /// Files written since the last flush, to fsync before `_txn` refers to them.
    pub(crate) dirty: HashSet<PathBuf>,
    /// Buffered runs of commits up to here are being written by the apply.
    pub(crate) frozen: u64,
}

/// What is durable on disk: the state flushed last.
#[derive(Debug)]
pub(crate) struct Flushed {
    /// Its applied commit (what `_tables` records; the WAL before it is not needed).
    pub(crate) seq: u64,
    /// Its version: garbage retired up to here is referenced by no durable file.
    pub(crate) version: u64,
    /// Per table: (txn, meta_seq) of its `_txn` on disk.
    pub(crate) tables: BTreeMap<u64, (u64, u64)>,
}

/// How the background apply is doing, and whether someone asked for a round.
#[derive(Debug, Default)]
pub(crate) struct ApplyState {
    pub(crate) requested: bool,
    /// Why the last round failed (cleared by the next that succeeds).
    pub(crate) failure: Option<(String, bool)>,
    pub(crate) rounds: u64,
    pub(crate) rows: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) root: Root,
    pub(crate) options: StorageOptions,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) group: GroupCommit,
    pub(crate) flushed: Mutex<Flushed>,
    pub(crate) garbage: Arc<Garbage>,
    /// Held by housekeeping across each single unlink (it checks the pause
    /// first), so CHECKPOINT CREATE waits for at most one: once it returns, no
    /// file under the root disappears until RELEASE (`cp -a` and rsync fail on
    /// files that vanish mid-copy).
    pub(crate) reclaiming: Mutex<()>,
    /// Held while buffered rows are written to the files: by the apply, and by
    /// commits that change more than rows (they need the files complete).
    /// Taken before the writer lock, never after it.
    pub(crate) applying: Mutex<()>,
    pub(crate) apply_state: Mutex<ApplyState>,
    /// Wakes the apply thread (a full buffer, shutdown).
    pub(crate) apply_wake: Condvar,
    /// Wakes writers waiting for room in the buffer.
    pub(crate) buffer_space: Condvar,
    pub(crate) buffered_bytes: AtomicU64,
    pub(crate) pins: Arc<Pins>,
    pub(crate) mapped: Arc<MappedFiles>,
    pub(crate) stop: Mutex<bool>,
    pub(crate) wake: Condvar,
    pub(crate) closed: AtomicBool,
    /// Serialises CHECKPOINT CREATE and RELEASE (status never takes it).
    pub(crate) checkpoint_lifecycle: Mutex<()>,
    pub(crate) status: StatusBoard,
    /// The newest commit the log backup has shipped: WAL segments with later
    /// commits are kept (u64::MAX when there is no log backup).
    pub(crate) log_archived: AtomicU64,
}

/// An open Tidemark root. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    report: OpenReport,
}

impl Database {
    /// Opens (creating if needed) the root at `path`: takes the lock, recovers,
    /// and starts housekeeping and the apply.
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
        let mapped = Arc::new(MappedFiles::new(options.mapped_files));
        // Earlier versions kept transactions' previews here; none survives a restart.
        fsutil::remove_path(&root.path.join("preview"))?;
        let rec = recovery::recover(
            &root,
            &mapped,
            &options,
            &recovery::Leftovers {
                protected: &protected,
                in_checkpoint: cut.is_some(),
            },
        )?;
        let next_seq = rec.catalog.seq + 1;
        let new_segment = crate::wal::segment_path(&root.wal, next_seq);
        let closed: Vec<_> = rec
            .segments
            .iter()
            .filter(|(_, p)| *p != new_segment)
            .cloned()
            .collect();
        let wal = WalWriter::create(&root.wal, next_seq, options.wal_segment_bytes, closed)?;
        let mut catalog = rec.catalog;
        // Version 1, so that the first flush (below) writes what replay changed.
        catalog.version = 1;
        let catalog = Arc::new(catalog);
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
            buffered_bytes: AtomicU64::new(catalog.buffered_bytes()),
            writer: Mutex::new(Writer {
                catalog: catalog.clone(),
                wal,
                dirty: rec.dirty,
                frozen: 0,
            }),
            // Replay wrote table files that are not durable yet: the first flush writes them all.
            flushed: Mutex::new(Flushed {
                seq: rec.durable_seq,
                version: 0,
                tables: rec.durable_tables,
            }),
            garbage: Arc::new(Garbage::default()),
            reclaiming: Mutex::new(()),
            applying: Mutex::new(()),
            apply_state: Mutex::new(ApplyState::default()),
            apply_wake: Condvar::new(),
            buffer_space: Condvar::new(),
            pins: Arc::new(Pins::default()),
            mapped,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            checkpoint_lifecycle: Mutex::new(()),
            status: StatusBoard::default(),
            log_archived: AtomicU64::new(if options.keep_wal_for_log_backup {
                0
            } else {
                u64::MAX
            }),
            root,
            options,
        });
        let durable_seq = inner.flushed.lock().seq;
        inner
            .status
            .durable_seq
            .store(durable_seq, Ordering::Relaxed);
        if let Some(c) = &cut {
            inner.status.set_current(Some(CheckpointState {
                created: c.created,
                seq: c.seq,
                tables: c.tables.len(),
            }));
            inner.status.set_phase(CheckpointPhase::InProgress);
            inner.garbage.pause();
            tracing::info!(
                seq = c.seq,
                tables = c.tables.len(),
                "the root is in checkpoint mode (CHECKPOINT RELEASE ends it): housekeeping is paused"
            );
        }
        inner
            .garbage
            .add(catalog.version, rec.garbage.into_iter().map(|(_, p)| p));
        // What recovery left to delete is measured and reclaimed by housekeeping,
        // paced, not here: a start after a long checkpoint mode does not wait for it.
        inner.flush()?;
        inner.publish_backlog();
        let report = OpenReport {
            elapsed: started.elapsed(),
            ..report
        };
        tracing::info!(
            tables = report.tables,
            replayed_commits = report.replayed_commits,
            buffered_rows = catalog.buffered_rows(),
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
                    let mut measured_disk_at: Option<Instant> = None;
                    let mut progress = ReclaimProgress::default();
                    let mut ttl_failed_at: Option<Instant> = None;
                    let mut pause = interval;
                    while inner.sleep(pause) {
                        // A round reclaims for at most an interval, so the flush
                        // keeps its pace; with more to delete the next round
                        // follows at once (the pacing is per unlink).
                        pause = interval;
                        // After a failed drop (a full disk, say) the next try
                        // waits a minute, rather than logging every round.
                        if ttl_failed_at.is_none_or(|t| t.elapsed() >= TTL_RETRY) {
                            ttl_failed_at = None;
                            if let Err(e) = inner.drop_expired_partitions(now_micros()) {
                                tracing::error!(
                                    "TTL: dropping expired partitions failed (retried in {}s): {e}",
                                    TTL_RETRY.as_secs()
                                );
                                ttl_failed_at = Some(Instant::now());
                            }
                        }
                        match inner.flush().and_then(|_| inner.reclaim(Some(interval))) {
                            Ok(r) if r.more => pause = Duration::ZERO,
                            Ok(_) => {}
                            Err(e) => tracing::error!("housekeeping failed: {e}"),
                        }
                        inner.measure(&mut measured_disk_at);
                        progress.log(&inner, pause.is_zero());
                        inner.warn_if_space_runs_low(&mut warned_at);
                    }
                }),
            ));
        }
        if self.inner.options.background_apply {
            let inner = self.inner.clone();
            threads.extend(spawn(
                "tidemark-apply",
                Box::new(move || inner.run_apply_loop()),
            ));
        }
        {
            let inner = self.inner.clone();
            threads.extend(spawn(
                "tidemark-wal-sync",
                Box::new(move || {
                    inner
                        .group
                        .serve_sync_requests(|| inner.closed.load(Ordering::SeqCst))
                }),
            ));
        }
        if self.inner.options.commit_mode == CommitMode::Async {
            let inner = self.inner.clone();
            threads.extend(spawn(
                "tidemark-wal-sync-interval",
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
        self.start_commit(tx)?.wait()
    }

    /// Commits `tx` atomically without waiting for its WAL record to become
    /// durable: the commit is decided (or refused) here, and acknowledged by
    /// [`PendingCommit::wait`] or awaited with [`PendingCommit::durable`] (what
    /// async callers use: no thread blocks on the fsync).
    ///
    /// A commit of rows only (INSERT, COPY) does nothing here but memory work
    /// and one WAL write, unless the write buffer is full: then it waits for
    /// the apply (see [`Database::write_buffer_full`]). Other commits first move
    /// buffered rows to the files.
    pub fn start_commit(&self, tx: Transaction) -> Result<PendingCommit> {
        self.inner.start_commit(tx)
    }

    /// Whether the write buffer is over its limit: a commit of rows would wait
    /// for the apply (async callers run such commits off their runtime).
    pub fn write_buffer_full(&self) -> bool {
        self.inner.buffered_bytes.load(Ordering::Relaxed) > self.inner.options.write_buffer_bytes
    }

    /// A consistent view of all tables as of the newest visible commit.
    pub fn snapshot(&self) -> Snapshot {
        let (catalog, pin) = self.inner.pin_published();
        Snapshot::new(catalog, self.inner.mapped.clone(), pin)
    }

    /// Moves every buffered row into the column files now (the apply thread
    /// does this on its own; tests and shutdown call it). Returns the rows moved.
    pub fn apply_buffer(&self) -> Result<u64> {
        let guard = self.inner.applying.lock();
        Ok(self.inner.apply_buffer(&guard)?.rows)
    }

    /// Makes every committed change durable: the WAL, and the table files as far
    /// as the apply has gone. Returns the newest commit wholly in durable files.
    pub fn flush(&self) -> Result<u64> {
        self.inner.flush()
    }

    /// Runs one round of housekeeping now: flush, then reclaim what nothing needs.
    /// Returns the number of paths removed.
    pub fn run_housekeeping(&self) -> Result<usize> {
        self.inner.flush()?;
        let removed = self.inner.reclaim(None)?.removed;
        self.inner.measure(&mut None);
        Ok(removed)
    }

    /// Drops the partitions past their table's TTL now (housekeeping does
    /// this every round); returns how many went. Does nothing in checkpoint mode.
    pub fn drop_expired_partitions(&self) -> Result<usize> {
        self.inner.drop_expired_partitions(now_micros())
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

    /// Counters for monitoring. Takes no lock that a commit, flush or
    /// checkpoint holds for long (a scrape must answer while they run).
    pub fn stats(&self) -> StorageStats {
        let (wal_fsyncs, wal_fsync_micros) = self.inner.group.fsync_stats();
        let newest = self.inner.group.published();
        let apply = self.inner.apply_state.lock();
        StorageStats {
            wal_fsyncs,
            wal_fsync_micros,
            durable_seq: self.inner.status.durable_seq.load(Ordering::Relaxed),
            visible_seq: newest.seq,
            buffered_rows: newest.buffered_rows(),
            buffered_bytes: newest.buffered_bytes(),
            applies: apply.rounds,
            applied_rows: apply.rows,
        }
    }

    /// Reads the durable WAL after commit `after`, for a log backup.
    pub fn log_reader(&self, after: u64) -> crate::wal::archive::LogReader {
        crate::wal::archive::LogReader::new(self.inner.clone(), after)
    }

    /// The log backup has shipped every commit up to `seq`: WAL segments
    /// holding only those may be recycled (with
    /// [`StorageOptions::keep_wal_for_log_backup`], none is before this says so).
    pub fn set_log_archived(&self, seq: u64) {
        self.inner.log_archived.store(seq, Ordering::Relaxed);
    }

    /// Number of WAL segment files.
    pub fn wal_segments(&self) -> usize {
        self.inner.writer.lock().wal.segment_count()
    }

    /// Stops the threads, moves buffered rows to the files, makes everything
    /// durable and releases the root.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// Drops the database the way a killed process would: no apply, no final
    /// flush, table files left as they are, WAL as written. For tests of recovery.
    #[doc(hidden)]
    pub fn simulate_crash(self) {
        self.stop_threads();
    }

    fn stop_threads(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        *self.inner.stop.lock() = true;
        self.inner.wake.notify_all();
        {
            let _s = self.inner.apply_state.lock();
            self.inner.apply_wake.notify_all();
            self.inner.buffer_space.notify_all();
        }
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
        // Commits still waiting for their fsync (asynchronously) get it here, as
        // the sync thread is gone.
        let written = self.inner.group.written_seq();
        if let Err(e) = self.inner.group.wait_durable(written) {
            tracing::warn!("final WAL sync failed: {e}");
        }
        self.inner.group.wake_all();
    }

    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.stop_threads();
        // Commits that raced with close have finished under the writer lock.
        drop(self.inner.writer.lock());
        if self.inner.group.failure().is_none() {
            let guard = self.inner.applying.lock();
            self.inner.apply_buffer(&guard)?;
        }
        // Garbage is left for the next start's housekeeping: deleting what a
        // long checkpoint mode held could outlast a container's stop timeout.
        self.inner.flush()?;
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

/// Resolves `requests` against the staged state and applies them: to the
/// write buffer when they only add rows, else to the files, after the buffered
/// rows of every table (a table creation, drop or rename then never has
/// buffered rows behind it: see `Catalog::applied_seq`).
fn stage_requests(
    requests: Vec<Request>,
    st: &mut Staging<'_>,
    wal: &mut WalWriter,
    record: &mut RecordStream,
    rows_only: bool,
) -> Result<()> {
    if !rows_only {
        write_all_buffered(st)?;
    }
    for req in requests {
        let Some(op) = resolve(req, st)? else {
            continue;
        };
        record.push(wal, &op)?;
        if rows_only {
            memory::stage(op, st)?;
        } else {
            files::apply(&op, st)?;
        }
    }
    Ok(())
}

impl Inner {
    /// See [`Database::start_commit`] (housekeeping commits TTL drops with it).
    pub(crate) fn start_commit(self: &Arc<Self>, tx: Transaction) -> Result<PendingCommit> {
        self.check_open()?;
        let rows_only = tx
            .requests
            .iter()
            .all(|r| matches!(r, Request::Append { .. }));
        let applying = if rows_only {
            self.wait_for_buffer_space()?;
            None
        } else {
            // The files must hold every committed row before this commit changes
            // them. Most buffered rows go there before the writer lock is taken,
            // so that other commits wait only for the few that arrive meanwhile.
            let guard = self.applying.lock();
            self.apply_buffer(&guard)?;
            Some(guard)
        };
        let mode = self.options.commit_mode;
        let (seq, rows) = {
            let mut w = self.writer.lock();
            let seq = w.catalog.seq + 1;
            let mut st = self.staging(&w, seq);
            // Each operation is encoded for the WAL as soon as it is resolved,
            // and written in chunks: a large COPY never holds its rows twice over.
            let commit_micros = w.wal.commit_time();
            let mut record = RecordStream::new(seq, commit_micros);
            let outcome = stage_requests(tx.requests, &mut st, &mut w.wal, &mut record, rows_only);
            let outcome = match outcome {
                Ok(()) => record.finish(&mut w.wal),
                Err(e) => {
                    record.abandon(&mut w.wal);
                    Err(e)
                }
            };
            let empty = !matches!(outcome, Ok(true));
            if let Err(e) = outcome {
                self.abort(st);
                if matches!(e, StorageError::Sync { .. }) {
                    self.group.poison(format!("{e}"));
                }
                return Err(e);
            }
            if empty {
                self.abort(st);
                return Ok(PendingCommit {
                    inner: None,
                    receipt: CommitReceipt {
                        seq: None,
                        rows_written: 0,
                    },
                });
            }
            let rows = st.rows_written;
            let catalog = self.install(&mut w, st, seq);
            let tail = WalTail {
                seq,
                file: w.wal.current_file(),
            };
            self.group.enqueue(catalog, tail, mode != CommitMode::Sync);
            (seq, rows)
        };
        drop(applying);
        self.request_apply_if_filling();
        Ok(PendingCommit {
            inner: Some(self.clone()).filter(|_| mode == CommitMode::Sync),
            receipt: CommitReceipt {
                seq: Some(seq),
                rows_written: rows,
            },
        })
    }

    /// Sleeps up to `d`; false when asked to stop.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop {
            self.wake.wait_for(&mut stop, d);
        }
        !*stop
    }

    fn check_open(&self) -> Result<()> {
        if let Some(f) = self.group.failure() {
            return Err(StorageError::Poisoned(f));
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(StorageError::InvalidState("the database is closed".into()));
        }
        Ok(())
    }

    /// A staging for commit `seq` on the newest state.
    pub(crate) fn staging(&self, w: &Writer, seq: u64) -> Staging<'_> {
        let mut st = Staging::new(
            (*w.catalog).clone(),
            seq,
            self.root.db.clone(),
            &self.mapped,
            self.options.split_min_rows,
        );
        st.frozen = w.frozen;
        st
    }

    /// Makes the staged state the newest one (as commit `seq`): its files to
    /// sync, its garbage to reclaim once nothing sees it.
    pub(crate) fn install(&self, w: &mut Writer, st: Staging<'_>, seq: u64) -> Arc<Catalog> {
        let Staging {
            mut catalog,
            dirty,
            garbage,
            ..
        } = st;
        catalog.seq = seq;
        catalog.version = w.catalog.version + 1;
        w.dirty.extend(dirty);
        self.garbage.add(catalog.version, garbage);
        self.buffered_bytes
            .store(catalog.buffered_bytes(), Ordering::Relaxed);
        let catalog = Arc::new(catalog);
        w.catalog = catalog.clone();
        catalog
    }

    /// Undoes a failed staging and removes the files it created, at once even in
    /// checkpoint mode: a retried CREATE TABLE reuses the table's id and
    /// directory, which a removal deferred to RELEASE would then delete.
    pub(crate) fn abort(&self, st: Staging<'_>) {
        let created = st.abort_keeping_files();
        for p in created.iter().rev() {
            self.mapped.forget_under(p);
            if let Err(e) = fsutil::remove_path(p) {
                tracing::warn!("could not remove {}: {e}", p.display());
            }
        }
    }

    /// The newest visible state, pinned so that nothing it refers to is reclaimed.
    pub(crate) fn pin_published(&self) -> (Arc<Catalog>, Arc<crate::snapshot::Pin>) {
        // Under the pins lock, so housekeeping cannot compute its limit between
        // reading the state and pinning it.
        let mut pinned = self.pins.pinned.lock();
        let catalog = self.group.published();
        let pin = crate::snapshot::Pin::new(self.pins.clone(), &mut pinned, catalog.version);
        (catalog, pin)
    }
}

/// A time for messages: RFC 3339 in UTC, to the second.
pub(crate) fn humane_time(t: SystemTime) -> String {
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

/// How long housekeeping waits after a failed TTL drop before trying again.
const TTL_RETRY: Duration = Duration::from_secs(60);

/// The wall clock in microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
