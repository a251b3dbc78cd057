//! The write buffer: committed rows that are not in the column files yet.
//!
//! A commit of INSERT or COPY rows writes its WAL record and adds its rows here,
//! sorted by the designated timestamp and split by partition, as an immutable
//! [`Run`]. Snapshots share runs (an `Arc` each, no copy per reader); the
//! background apply (`apply.rs`) moves them into the column files in large
//! sorted batches and removes them from the newest state.
//!
//! Small runs at the end of a partition are merged as they arrive, while they
//! are of similar size (a binary counter: each row is copied a logarithmic
//! number of times), so a partition holds few runs however many single-row
//! commits arrive. Runs the apply has taken ("frozen") are never merged: the
//! apply removes exactly the runs it wrote.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::batch::Column;
use crate::error::Result;
use crate::merge::{gather, merge_order};

/// Runs grow by merging only up to this many rows; larger ones stay as they are.
const MERGE_MAX_ROWS: usize = 64 * 1024;

/// Rows of one partition from one or more commits, sorted by the designated
/// timestamp (in commit order for a table without one). Immutable once made.
#[derive(Debug)]
pub(crate) struct Run {
    /// The oldest and newest commit whose rows this run holds.
    pub(crate) min_seq: u64,
    pub(crate) max_seq: u64,
    /// One column per table column it was written with, by column id; SYMBOL
    /// columns as dictionary keys. A column added later is NULL in the run.
    pub(crate) columns: Vec<(u32, Column)>,
    /// The designated timestamp's column id, if the table has one.
    pub(crate) ts_column: Option<u32>,
    pub(crate) rows: usize,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) bytes: usize,
}

impl Run {
    /// A run of `columns`, already sorted by the timestamp column `ts_column`.
    pub(crate) fn new(seq: u64, columns: Vec<(u32, Column)>, ts_column: Option<u32>) -> Run {
        let rows = columns.first().map_or(0, |(_, c)| c.len());
        let bytes = columns.iter().map(|(_, c)| c.byte_size()).sum();
        let mut run = Run {
            min_seq: seq,
            max_seq: seq,
            columns,
            ts_column,
            rows,
            min_ts: i64::MIN,
            max_ts: i64::MIN,
            bytes,
        };
        if let Some(ts) = run.timestamps()
            && let (Some(a), Some(b)) = (ts.first(), ts.last())
        {
            (run.min_ts, run.max_ts) = (*a, *b);
        }
        run
    }

    pub(crate) fn column(&self, id: u32) -> Option<&Column> {
        self.columns.iter().find(|(c, _)| *c == id).map(|(_, c)| c)
    }

    /// The designated timestamps, sorted (`None` without a designated timestamp).
    pub(crate) fn timestamps(&self) -> Option<&[i64]> {
        crate::ops::files::designated_values(&self.column(self.ts_column?)?.values).ok()
    }

    /// Runs written with the same columns can be merged into one.
    fn same_columns(&self, other: &Run) -> bool {
        self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|((a, x), (b, y))| a == b && x.values.column_type() == y.values.column_type())
    }

    /// `older` and `newer` as one sorted run (rows of `older` first among equal
    /// timestamps).
    fn merge(older: &Run, newer: &Run) -> Result<Run> {
        let order = match (older.timestamps(), newer.timestamps()) {
            (Some(a), Some(b)) => merge_order(&[a, b]),
            _ => vec![(0, 0..older.rows), (1, 0..newer.rows)],
        };
        let sources: Vec<Vec<&Column>> = [older, newer]
            .iter()
            .map(|r| r.columns.iter().map(|(_, c)| c).collect())
            .collect();
        let merged = gather(&sources, &order)?;
        let columns = older
            .columns
            .iter()
            .map(|(id, _)| *id)
            .zip(merged)
            .collect();
        let mut run = Run::new(older.min_seq, columns, older.ts_column);
        run.max_seq = newer.max_seq;
        Ok(run)
    }
}

/// A table's buffered rows as of one commit: runs per partition start, oldest
/// first. Cloned with each commit that adds rows; the runs themselves are shared.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableBuffer {
    partitions: Arc<BTreeMap<i64, Vec<Arc<Run>>>>,
    rows: u64,
    bytes: u64,
}

impl TableBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Partition starts with their runs, in time order.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = (i64, &[Arc<Run>])> {
        self.partitions.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    pub(crate) fn partition(&self, start: i64) -> &[Arc<Run>] {
        self.partitions.get(&start).map_or(&[], |v| v.as_slice())
    }

    /// The oldest commit with rows here.
    pub(crate) fn min_seq(&self) -> Option<u64> {
        self.partitions
            .values()
            .flat_map(|runs| runs.iter().map(|r| r.min_seq))
            .min()
    }

    /// Adds `run` to partition `start`, merging small runs newer than `frozen`
    /// at the end of the partition while they are of similar size.
    pub(crate) fn push(&mut self, start: i64, run: Run, frozen: u64) -> Result<()> {
        self.rows += run.rows as u64;
        self.bytes += run.bytes as u64;
        let runs = Arc::make_mut(&mut self.partitions)
            .entry(start)
            .or_default();
        runs.push(Arc::new(run));
        while let [.., a, b] = runs.as_slice() {
            let mergeable = a.min_seq > frozen
                && a.rows <= 2 * b.rows
                && a.rows + b.rows <= MERGE_MAX_ROWS
                && a.same_columns(b);
            if !mergeable {
                break;
            }
            let merged = Run::merge(a, b)?;
            self.bytes = self.bytes - (a.bytes + b.bytes) as u64 + merged.bytes as u64;
            runs.truncate(runs.len() - 2);
            runs.push(Arc::new(merged));
        }
        Ok(())
    }

    /// Removes the runs whose every commit is at or before `upto`.
    pub(crate) fn remove_upto(&mut self, upto: u64) {
        self.retain_runs(|_, r| r.max_seq > upto);
    }

    /// Removes the partitions whose start `drop` accepts.
    pub(crate) fn remove_partitions(&mut self, mut drop: impl FnMut(i64) -> bool) {
        self.retain_runs(|start, _| !drop(start));
    }

    pub(crate) fn clear(&mut self) {
        *self = TableBuffer::default();
    }

    fn retain_runs(&mut self, mut keep: impl FnMut(i64, &Run) -> bool) {
        if self.is_empty() {
            return;
        }
        let mut partitions = BTreeMap::new();
        let (mut rows, mut bytes) = (0, 0);
        for (start, runs) in self.partitions.iter() {
            let kept: Vec<Arc<Run>> = runs.iter().filter(|r| keep(*start, r)).cloned().collect();
            rows += kept.iter().map(|r| r.rows as u64).sum::<u64>();
            bytes += kept.iter().map(|r| r.bytes as u64).sum::<u64>();
            if !kept.is_empty() {
                partitions.insert(*start, kept);
            }
        }
        *self = TableBuffer {
            partitions: Arc::new(partitions),
            rows,
            bytes,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seq: u64, ts: Vec<i64>) -> Run {
        let v: Vec<i64> = ts.iter().map(|t| t * 10).collect();
        Run::new(
            seq,
            vec![(0, Column::timestamps(ts)), (1, Column::bigints(v))],
            Some(0),
        )
    }

    #[test]
    fn single_row_commits_collapse_into_few_sorted_runs() {
        let mut b = TableBuffer::default();
        for seq in 1..=1000u64 {
            // A little out of order, as concurrent writers deliver rows.
            let ts = (seq as i64) * 10 - (seq as i64 % 3) * 15;
            b.push(0, run(seq, vec![ts]), 0).expect("push");
        }
        let runs = b.partition(0);
        assert!(runs.len() <= 12, "{} runs", runs.len());
        assert_eq!(b.rows(), 1000);
        let mut all = Vec::new();
        for r in runs {
            let ts = r.timestamps().expect("ts");
            assert!(ts.windows(2).all(|w| w[0] <= w[1]), "each run is sorted");
            all.extend_from_slice(ts);
        }
        assert_eq!(all.len(), 1000);
        assert_eq!(
            b.bytes(),
            runs.iter().map(|r| r.bytes as u64).sum::<u64>(),
            "byte accounting follows merges"
        );
    }

    #[test]
    fn frozen_runs_keep_their_identity_and_are_removed_exactly() {
        let mut b = TableBuffer::default();
        b.push(0, run(1, vec![5]), 0).expect("push");
        b.push(0, run(2, vec![6]), 2).expect("push");
        // Run 1 is frozen (an apply took it), so 2 did not merge into it.
        assert_eq!(b.partition(0).len(), 2);
        b.push(7, run(3, vec![1]), 2).expect("push");
        b.remove_upto(2);
        assert_eq!(b.partition(0).len(), 0);
        assert_eq!(b.partition(7).len(), 1);
        assert_eq!(b.rows(), 1);
        assert_eq!(b.min_seq(), Some(3));
        b.remove_partitions(|s| s == 7);
        assert!(b.is_empty());
    }
}
