//! Reader snapshots: a consistent view of every table as of one commit.
//!
//! A snapshot pins its commit number; housekeeping reclaims nothing that a
//! pinned commit can still see, so a snapshot stays valid (and its mapped files
//! unchanged) however long it lives, while writers append and rewrite.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::batch::{Column, Values, VarData};
use crate::catalog::Catalog;
use crate::error::{Result, StorageError};
use crate::table::TableState;
use crate::table::column::{ColumnChunk, VerifiedFiles};
use crate::table::meta::TableMeta;
use crate::table::txn::PartitionMeta;
use crate::types::{ColumnType, PartitionBy};

/// Commit numbers pinned by live snapshots (with counts).
#[derive(Debug, Default)]
pub(crate) struct Pins {
    pub(crate) pinned: Mutex<BTreeMap<u64, usize>>,
}

#[derive(Debug)]
struct Pin {
    pins: Arc<Pins>,
    seq: u64,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut g = self.pins.pinned.lock();
        if let Some(n) = g.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                g.remove(&self.seq);
            }
        }
    }
}

/// Files a preview wrote, removed when the last view of it goes.
#[derive(Debug)]
pub(crate) struct PreviewFiles {
    pub(crate) paths: Vec<std::path::PathBuf>,
    pub(crate) verified: Arc<VerifiedFiles>,
    pub(crate) garbage: Arc<crate::housekeeping::Garbage>,
}

impl Drop for PreviewFiles {
    fn drop(&mut self) {
        if self.garbage.is_paused() {
            // Checkpoint mode: nothing under the root vanishes during a copy;
            // housekeeping removes these after RELEASE.
            self.garbage.add(0, std::mem::take(&mut self.paths));
            return;
        }
        for p in self.paths.iter().rev() {
            // Forget first: a commit may reuse the path as soon as it is free.
            self.verified.forget_under(p);
            if let Err(e) = crate::fsutil::remove_path(p) {
                tracing::warn!("could not remove preview file {}: {e}", p.display());
            }
        }
    }
}

/// A consistent, read-only view of all tables as of one commit (or, for a
/// preview, of one commit plus a transaction that has not committed).
#[derive(Debug, Clone)]
pub struct Snapshot {
    catalog: Arc<Catalog>,
    verified: Arc<VerifiedFiles>,
    _pin: Arc<Pin>,
    _preview: Option<Arc<PreviewFiles>>,
}

impl Snapshot {
    /// Pins `catalog.seq`; the caller holds the `pins` lock decision (see `Database::snapshot`).
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        verified: Arc<VerifiedFiles>,
        pins: Arc<Pins>,
        pinned: &mut BTreeMap<u64, usize>,
    ) -> Self {
        *pinned.entry(catalog.seq).or_default() += 1;
        let seq = catalog.seq;
        Snapshot {
            catalog,
            verified,
            _pin: Arc::new(Pin { pins, seq }),
            _preview: None,
        }
    }

    pub(crate) fn with_preview_files(mut self, files: PreviewFiles) -> Self {
        self._preview = Some(Arc::new(files));
        self
    }

    fn reader(&self, t: &Arc<TableState>) -> TableReader {
        TableReader {
            state: t.clone(),
            verified: self.verified.clone(),
            _pin: self._pin.clone(),
            _preview: self._preview.clone(),
        }
    }

    /// The commit this snapshot shows.
    pub fn seq(&self) -> u64 {
        self.catalog.seq
    }

    /// Table names, in creation order.
    pub fn table_names(&self) -> Vec<String> {
        self.catalog
            .tables
            .values()
            .map(|t| t.name.clone())
            .collect()
    }

    pub fn table(&self, name: &str) -> Option<TableReader> {
        self.catalog.table(name).map(|t| self.reader(t))
    }

    pub fn tables(&self) -> Vec<TableReader> {
        self.catalog
            .tables
            .values()
            .map(|t| self.reader(t))
            .collect()
    }
}

/// A partition as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Display and directory name, e.g. `2026-11-21` or `2026-11-20.57`.
    pub name: String,
    pub dir_name: String,
    pub start: i64,
    pub end: i64,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub version: u64,
}

/// One table in a snapshot. Holds the snapshot's pin, so it stays valid after
/// the `Snapshot` it came from is dropped.
#[derive(Debug, Clone)]
pub struct TableReader {
    state: Arc<TableState>,
    verified: Arc<VerifiedFiles>,
    _pin: Arc<Pin>,
    _preview: Option<Arc<PreviewFiles>>,
}

impl TableReader {
    pub fn name(&self) -> &str {
        &self.state.name
    }
    pub fn id(&self) -> u64 {
        self.state.id
    }
    pub fn meta(&self) -> &TableMeta {
        &self.state.meta
    }
    pub fn partition_by(&self) -> PartitionBy {
        self.state.meta.partition_by
    }
    pub fn row_count(&self) -> u64 {
        self.state.txn.row_count()
    }
    /// The commit that last changed this table.
    pub fn txn(&self) -> u64 {
        self.state.txn.txn
    }

    pub fn partitions(&self) -> Vec<PartitionInfo> {
        let pb = self.state.meta.partition_by;
        self.state
            .txn
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                name: pb.partition_name(p.start),
                dir_name: p.dir_name.clone(),
                start: p.start,
                end: pb.partition_end(p.start),
                rows: p.rows,
                min_ts: p.min_ts,
                max_ts: p.max_ts,
                version: p.version,
            })
            .collect()
    }

    /// Bytes on disk of the table's committed partitions and dictionaries.
    pub fn disk_size(&self) -> u64 {
        self.state
            .txn
            .partitions
            .iter()
            .map(|p| self.partition_disk_size_of(p))
            .sum::<u64>()
            + self
                .state
                .symbols
                .values()
                .map(|d| crate::fsutil::disk_usage(d.path()))
                .sum::<u64>()
    }

    pub fn partition_disk_size(&self, partition: usize) -> u64 {
        self.state
            .txn
            .partitions
            .get(partition)
            .map_or(0, |p| self.partition_disk_size_of(p))
    }

    fn partition_disk_size_of(&self, p: &PartitionMeta) -> u64 {
        crate::fsutil::disk_usage(&self.state.partition_dir(p))
    }

    fn partition(&self, i: usize) -> Result<&PartitionMeta> {
        self.state.txn.partitions.get(i).ok_or_else(|| {
            StorageError::InvalidState(format!(
                "table \"{}\" has no partition number {i}",
                self.state.name
            ))
        })
    }

    fn column_meta(&self, name: &str) -> Result<&crate::table::meta::ColumnMeta> {
        let i = self
            .state
            .meta
            .column_index(name)
            .ok_or_else(|| StorageError::ColumnNotFound {
                table: self.state.name.clone(),
                column: name.to_string(),
            })?;
        Ok(&self.state.meta.columns[i])
    }

    /// Zero-copy access to one column of partition `partition` (index into
    /// [`TableReader::partitions`]). Checks the files' checksums on first use.
    pub fn column_chunk(&self, partition: usize, column: &str) -> Result<ColumnChunk> {
        let p = self.partition(partition)?;
        self.state
            .column_chunk(p, self.column_meta(column)?, &self.verified)
    }

    /// Rows `rows` of a column of one partition, decoded. SYMBOL values come back as text.
    pub fn read_column(
        &self,
        partition: usize,
        column: &str,
        rows: Range<usize>,
    ) -> Result<Column> {
        let chunk = self.column_chunk(partition, column)?;
        if rows.end > chunk.rows || rows.start > rows.end {
            return Err(StorageError::InvalidState(format!(
                "rows {rows:?} are outside partition {partition} of table \"{}\" ({} rows)",
                self.state.name, chunk.rows
            )));
        }
        let dir = self.state.partition_dir(self.partition(partition)?);
        let raw = chunk.decode_raw(rows, &dir)?;
        if chunk.column_type != ColumnType::Symbol {
            return Ok(raw);
        }
        let c = self.column_meta(column)?;
        let (dict, count) = self.symbol_dictionary(&c.name)?;
        let Values::Int(keys) = &raw.values else {
            return Err(StorageError::InvalidState(
                "symbol column did not decode to keys".into(),
            ));
        };
        let mut out = VarData::default();
        for (i, k) in keys.iter().enumerate() {
            if raw.is_null(i) {
                out.push(b"");
                continue;
            }
            let s = dict.get(*k as usize).ok_or_else(|| {
                StorageError::corrupted(
                    &dir,
                    format!(
                        "symbol key {k} of column \"{}\" is not below {count}",
                        c.name
                    ),
                )
            })?;
            out.push(s.as_bytes());
        }
        Ok(Column {
            values: Values::Symbol(out),
            nulls: raw.nulls,
        })
    }

    /// A symbol column's dictionary as this snapshot sees it: key `k` is entry `k`.
    pub fn symbol_dictionary(&self, column: &str) -> Result<(Vec<Arc<str>>, u32)> {
        let c = self.column_meta(column)?;
        let dict = self.state.symbols.get(&c.id).ok_or_else(|| {
            StorageError::InvalidData(format!("column \"{}\" is not a SYMBOL column", c.name))
        })?;
        let count = self.state.txn.symbol_count(c.id);
        Ok((dict.values(count), count))
    }

    /// The rows of partition `partition` whose designated timestamp lies in
    /// `[from, to)`, found by binary search on the sorted timestamp column.
    pub fn timestamp_row_range(
        &self,
        partition: usize,
        from: i64,
        to: i64,
    ) -> Result<Range<usize>> {
        let p = self.partition(partition)?;
        if self.state.meta.timestamp_index().is_none() {
            return Ok(0..p.rows as usize);
        }
        let a = self.state.rows_before(p, from, &self.verified)? as usize;
        let b = (self.state.rows_before(p, to, &self.verified)? as usize).max(a);
        Ok(a..b)
    }

    /// Every row of the table, in timestamp order, one column per table column
    /// (SYMBOL as text). Meant for tests and small tables.
    pub fn read_all(&self) -> Result<Vec<Column>> {
        let mut out: Vec<Column> = self
            .state
            .meta
            .columns
            .iter()
            .map(|c| Column::all_null(c.column_type, 0))
            .collect();
        for (i, p) in self.state.txn.partitions.iter().enumerate() {
            for (j, c) in self.state.meta.columns.iter().enumerate() {
                let col = self.read_column(i, &c.name, 0..p.rows as usize)?;
                out[j].extend(&col)?;
            }
        }
        Ok(out)
    }
}
