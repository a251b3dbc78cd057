//! The apply: moving rows from the write buffer into the column files.
//!
//! A background task takes the newest state, *freezes* its buffered runs (no
//! commit merges them any more), and writes them into the files outside the
//! writer lock: per partition, all runs merged into one sorted batch, appended
//! in place when it is newer than the files, or merged with the overlapped tail
//! of the partition as a new part (copy-on-write, `ops::files::write_run`).
//! Then, under the writer lock for a moment, it *installs* the result into the
//! newest state: the tables' file states are replaced and the frozen runs
//! removed. Commits go on meanwhile; they only add runs.
//!
//! Commits that change more than rows (DDL, UPDATE/DELETE, dropped partitions)
//! and WAL replay use [`write_buffered`] directly, inside their own staging, so
//! their ops always meet a table whose rows are all in its files.
//!
//! The WAL is untouched: a killed apply leaves bytes past committed lengths and
//! unreferenced part directories, which recovery removes, and the rows are still
//! in the WAL after the durable `_txn`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use parking_lot::MutexGuard;

use crate::batch::Column;
use crate::buffer::Run;
use crate::db::Inner;
use crate::error::ErrorKind;
use crate::error::{Result, StorageError};
use crate::merge::{gather, merge_order};
use crate::ops::files::{timestamps, write_run};
use crate::ops::{Staging, null_column};
use crate::table::meta::TableMeta;

/// What one apply of a table moved.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Applied {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

/// Writes the buffered runs of table `id` whose commits are all at or before
/// `upto` into its column files, within staging `st`: the table's file state
/// then includes them, its dictionaries' files hold every entry its rows may
/// use, and the runs are gone from its buffer.
pub(crate) fn write_buffered(st: &mut Staging<'_>, id: u64, upto: u64) -> Result<Applied> {
    let t = st.table_by_id(id)?.clone();
    let mut applied = Applied::default();
    let mut newest_seq = t.txn.txn;
    for (start, runs) in t.buffer.partitions() {
        let runs: Vec<&Arc<Run>> = runs.iter().filter(|r| r.max_seq <= upto).collect();
        if runs.is_empty() {
            continue;
        }
        // One run with every column (a COPY, or what merging left) is written
        // as it is; several are merged into one sorted batch first.
        let merged;
        let columns: Vec<&Column> = match single_run_columns(&t.meta, &runs) {
            Some(columns) => columns,
            None => {
                merged = merge_runs(&t.meta, &runs)?;
                merged.iter().collect()
            }
        };
        let ts = match t.meta.timestamp_index() {
            Some(i) => Some(timestamps(&columns, i)?),
            None => None,
        };
        let current = st.table_by_id(id)?.clone();
        write_run(st, &current, start, &columns, ts)?;
        for r in &runs {
            applied.rows += r.rows as u64;
            applied.bytes += r.bytes as u64;
            newest_seq = newest_seq.max(r.max_seq);
        }
    }
    // Entries the rows use go to the dictionary files too (all the staged state
    // knows: a frozen state's counts cover exactly its runs).
    let t = st.table_by_id(id)?;
    let counts = t.symbol_counts.clone();
    let dicts: Vec<_> = counts
        .iter()
        .map(|(c, n)| (*c, *n, t.symbols.get(c).cloned()))
        .collect();
    for (column, count, dict) in dicts {
        let dict = dict.ok_or_else(|| {
            StorageError::InvalidState(format!(
                "symbol dictionary for column id {column} is missing"
            ))
        })?;
        dict.persist(count, &mut st.dirty)?;
    }
    let t = st.table_by_id(id)?;
    t.buffer.remove_upto(upto);
    let txn = Arc::make_mut(&mut t.txn);
    txn.symbol_counts = counts;
    txn.txn = newest_seq;
    Ok(applied)
}

/// Writes every table's buffered rows into its files (see [`write_buffered`]).
pub(crate) fn write_all_buffered(st: &mut Staging<'_>) -> Result<Applied> {
    let ids = st.catalog.buffered_table_ids();
    let mut total = Applied::default();
    for id in ids {
        let a = write_buffered(st, id, u64::MAX)?;
        total.rows += a.rows;
        total.bytes += a.bytes;
    }
    Ok(total)
}

/// The columns of a lone run in `meta` order, when it has them all.
fn single_run_columns<'r>(meta: &TableMeta, runs: &[&'r Arc<Run>]) -> Option<Vec<&'r Column>> {
    let [run] = runs else {
        return None;
    };
    meta.columns.iter().map(|c| run.column(c.id)).collect()
}

/// The rows of `runs` (one partition, oldest first) as one sorted batch, one
/// column per table column in `meta` order.
fn merge_runs(meta: &TableMeta, runs: &[&Arc<Run>]) -> Result<Vec<Column>> {
    // A column added after a run was written is NULL in it.
    let fillers: Vec<Vec<Column>> = runs
        .iter()
        .map(|r| {
            meta.columns
                .iter()
                .filter(|c| r.column(c.id).is_none())
                .map(|c| null_column(c, r.rows))
                .collect()
        })
        .collect();
    let sources: Vec<Vec<&Column>> = runs
        .iter()
        .zip(&fillers)
        .map(|(r, fill)| {
            let mut fill = fill.iter();
            meta.columns
                .iter()
                .map(|c| {
                    r.column(c.id).or_else(|| fill.next()).ok_or_else(|| {
                        StorageError::InvalidState(format!(
                            "buffered rows lack column \"{}\"",
                            c.name
                        ))
                    })
                })
                .collect::<Result<Vec<&Column>>>()
        })
        .collect::<Result<_>>()?;
    let order = match runs
        .iter()
        .map(|r| r.timestamps())
        .collect::<Option<Vec<&[i64]>>>()
    {
        Some(ts) if meta.timestamp_index().is_some() => merge_order(&ts),
        _ => runs
            .iter()
            .enumerate()
            .map(|(i, r)| (i, 0..r.rows))
            .collect(),
    };
    gather(&sources, &order)
}

impl Inner {
    /// One round of the apply (see the module documentation): every buffered
    /// run of the newest state goes to the files. `_applying` proves the caller
    /// holds the apply lock.
    pub(crate) fn apply_buffer(&self, _applying: &MutexGuard<'_, ()>) -> Result<Applied> {
        let (catalog, frozen) = {
            let mut w = self.writer.lock();
            if w.catalog.tables.values().all(|t| t.buffer.is_empty()) {
                return Ok(Applied::default());
            }
            // Commits from now on leave these runs as they are.
            w.frozen = w.catalog.seq;
            (w.catalog.clone(), w.frozen)
        };
        let started = Instant::now();
        let mut st = Staging::new(
            (*catalog).clone(),
            catalog.seq,
            self.root.db.clone(),
            &self.mapped,
            self.options.split_min_rows,
        );
        let ids = catalog.buffered_table_ids();
        let mut applied = Applied::default();
        let written = ids.iter().try_for_each(|id| {
            let a = write_buffered(&mut st, *id, frozen)?;
            applied.rows += a.rows;
            applied.bytes += a.bytes;
            failpoint("apply::after_table")
        });
        if let Err(e) = written.and_then(|()| failpoint("apply::before_install")) {
            self.abort(st);
            return Err(e);
        }
        let mut w = self.writer.lock();
        let mut newest = (*w.catalog).clone();
        for id in &ids {
            let (Some(staged), Some(t)) = (st.catalog.tables.get(id), newest.tables.get_mut(id))
            else {
                // Tables are created and dropped only under the apply lock.
                return Err(StorageError::InvalidState(format!(
                    "table id {id} changed while its buffered rows were applied"
                )));
            };
            let t = Arc::make_mut(t);
            t.txn = staged.txn.clone();
            t.buffer.remove_upto(frozen);
        }
        let Staging { dirty, garbage, .. } = st;
        newest.version = w.catalog.version + 1;
        w.dirty.extend(dirty);
        self.garbage.add(newest.version, garbage);
        self.buffered_bytes
            .store(newest.buffered_bytes(), Ordering::Relaxed);
        let newest = Arc::new(newest);
        w.catalog = newest.clone();
        self.group.publish_if_caught_up(newest);
        drop(w);
        {
            let mut s = self.apply_state.lock();
            s.rounds += 1;
            s.rows += applied.rows;
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if elapsed_ms >= 1000 {
            // A long apply (a large COPY) is worth a line in the ordinary log.
            tracing::info!(
                rows = applied.rows,
                bytes = applied.bytes,
                upto_seq = frozen,
                elapsed_ms,
                "applied buffered rows to the table files"
            );
        } else {
            tracing::debug!(
                rows = applied.rows,
                bytes = applied.bytes,
                upto_seq = frozen,
                elapsed_ms,
                "applied buffered rows to the table files"
            );
        }
        Ok(applied)
    }

    /// The apply thread: a round every `apply_interval`, or sooner when the
    /// buffer fills; writers waiting for room are woken after each round.
    pub(crate) fn run_apply_loop(&self) {
        loop {
            {
                let mut s = self.apply_state.lock();
                if !s.requested && !self.closed.load(Ordering::SeqCst) {
                    self.apply_wake
                        .wait_for(&mut s, self.options.apply_interval);
                }
                s.requested = false;
            }
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let result = {
                let guard = self.applying.lock();
                self.apply_buffer(&guard)
            };
            let mut s = self.apply_state.lock();
            match result {
                Ok(_) => s.failure = None,
                Err(e) => {
                    tracing::error!(
                        "applying buffered rows to the table files failed (retrying): {e}"
                    );
                    s.failure = Some((e.to_string(), e.kind() == ErrorKind::DiskFull));
                }
            }
            self.buffer_space.notify_all();
        }
    }

    /// Backpressure: while the buffer holds more than its limit, a writer that
    /// adds rows waits for the apply (it fails only when the apply fails).
    pub(crate) fn wait_for_buffer_space(&self) -> Result<()> {
        let limit = self.options.write_buffer_bytes;
        if self.buffered_bytes.load(Ordering::Relaxed) <= limit {
            return Ok(());
        }
        let mut s = self.apply_state.lock();
        while self.buffered_bytes.load(Ordering::Relaxed) > limit {
            if let Some((reason, disk_full)) = &s.failure {
                return Err(StorageError::ApplyFailed {
                    reason: reason.clone(),
                    disk_full: *disk_full,
                });
            }
            if self.closed.load(Ordering::SeqCst) {
                return Err(StorageError::InvalidState("the database is closed".into()));
            }
            if !self.options.background_apply {
                // Nobody else would make room: apply here.
                drop(s);
                let guard = self.applying.lock();
                self.apply_buffer(&guard)?;
                return Ok(());
            }
            s.requested = true;
            self.apply_wake.notify_all();
            self.buffer_space
                .wait_for(&mut s, std::time::Duration::from_millis(100));
        }
        Ok(())
    }

    /// Asks for an apply round ahead of time once the buffer is half full.
    pub(crate) fn request_apply_if_filling(&self) {
        if self.buffered_bytes.load(Ordering::Relaxed) > self.options.write_buffer_bytes / 2 {
            let mut s = self.apply_state.lock();
            if !s.requested {
                s.requested = true;
                self.apply_wake.notify_all();
            }
        }
    }
}

/// A fault injected at a named step of the apply, for tests (`fail` crate,
/// compiled in only with the `failpoints` feature).
#[cfg(feature = "failpoints")]
fn failpoint(name: &str) -> Result<()> {
    fail::fail_point!(name, |arg| Err(StorageError::io(
        name,
        std::io::Error::other(format!("failpoint {name}: {}", arg.unwrap_or_default()))
    )));
    Ok(())
}

#[cfg(not(feature = "failpoints"))]
fn failpoint(_name: &str) -> Result<()> {
    Ok(())
}
