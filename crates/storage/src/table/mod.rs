//! One table's in-memory committed state and its directory.

pub(crate) mod column;
pub(crate) mod files;
pub(crate) mod meta;
pub(crate) mod newest_keys;
pub(crate) mod symbol;
pub(crate) mod symbol_index;
pub(crate) mod txn;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::Column;
use crate::buffer::TableBuffer;
use crate::error::Result;
use crate::table::column::ColumnChunk;
use crate::table::files::MappedFiles;
use meta::TableMeta;
use symbol::SymbolDict;
use txn::{PartitionMeta, TxnState};

pub(crate) const META_FILE: &str = "_meta";
pub(crate) const META_PENDING_FILE: &str = "_meta.pending";
pub(crate) const TXN_FILE: &str = "_txn";

/// A table as of one commit: its column files (`txn`, exactly what `_txn`
/// records) plus the rows committed since and still in the write buffer. Cheap
/// to clone: the big parts are behind `Arc`s and copied only when changed.
#[derive(Debug, Clone)]
pub(crate) struct TableState {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// Directory name under `db/` (fixed at creation).
    pub(crate) dir_name: String,
    pub(crate) dir: PathBuf,
    pub(crate) meta: Arc<TableMeta>,
    /// The column files: every commit up to `txn.txn` that touched the table
    /// is in them, and no later one.
    pub(crate) txn: Arc<TxnState>,
    pub(crate) symbols: BTreeMap<u32, Arc<SymbolDict>>,
    /// Entries of each SYMBOL column's dictionary that committed rows may use
    /// (the files' own counts, in `txn`, may be lower until the apply).
    pub(crate) symbol_counts: Vec<(u32, u32)>,
    /// Rows committed after `txn.txn`, not in the files yet.
    pub(crate) buffer: TableBuffer,
}

impl TableState {
    /// A table as its files are, with nothing buffered.
    pub(crate) fn from_files(
        id: u64,
        name: String,
        dir_name: String,
        dir: PathBuf,
        meta: TableMeta,
        txn: TxnState,
        symbols: BTreeMap<u32, Arc<SymbolDict>>,
    ) -> TableState {
        TableState {
            id,
            name,
            dir_name,
            dir,
            meta: Arc::new(meta),
            symbol_counts: txn.symbol_counts.clone(),
            txn: Arc::new(txn),
            symbols,
            buffer: TableBuffer::default(),
        }
    }

    /// A table created by commit `seq`: empty, with one dictionary per SYMBOL
    /// column, made by `dictionary` from its path (a file, or memory only).
    pub(crate) fn created(
        id: u64,
        name: String,
        dir_name: String,
        dir: PathBuf,
        meta: TableMeta,
        seq: u64,
        mut dictionary: impl FnMut(PathBuf) -> Result<SymbolDict>,
    ) -> Result<TableState> {
        let mut txn = TxnState {
            txn: seq,
            meta_seq: seq,
            ..Default::default()
        };
        let mut symbols = BTreeMap::new();
        for c in meta
            .columns
            .iter()
            .filter(|c| c.column_type == crate::types::ColumnType::Symbol)
        {
            let path = TableState::symbol_file(&dir, &c.file_stem);
            symbols.insert(c.id, Arc::new(dictionary(path)?));
            txn.set_symbol_count(c.id, 0);
        }
        let meta = TableMeta { seq, ..meta };
        Ok(TableState::from_files(
            id, name, dir_name, dir, meta, txn, symbols,
        ))
    }

    /// Committed entries of SYMBOL column `column_id`'s dictionary.
    pub(crate) fn symbol_count(&self, column_id: u32) -> u32 {
        txn::count_of(&self.symbol_counts, column_id)
    }

    pub(crate) fn set_symbol_count(&mut self, column_id: u32, n: u32) {
        txn::set_count(&mut self.symbol_counts, column_id, n)
    }

    /// Rows in the files and the buffer.
    pub(crate) fn row_count(&self) -> u64 {
        self.txn.row_count() + self.buffer.rows()
    }

    /// Starts of the partitions that hold rows, in the files or the buffer.
    pub(crate) fn partition_starts(&self) -> Vec<i64> {
        let mut starts: Vec<i64> = self.txn.partitions.iter().map(|p| p.start).collect();
        starts.extend(self.buffer.partitions().map(|(s, _)| s));
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// The oldest and newest designated timestamp of partition `start`, over
    /// files and buffer (`None` when it has no rows).
    pub(crate) fn partition_bounds(&self, start: i64) -> Option<(i64, i64)> {
        let files = self
            .txn
            .partitions
            .iter()
            .filter(|p| p.start == start && p.rows > 0)
            .map(|p| (p.min_ts, p.max_ts));
        let runs = self
            .buffer
            .partition(start)
            .iter()
            .filter(|r| r.rows > 0)
            .map(|r| (r.min_ts, r.max_ts));
        files
            .chain(runs)
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    }

    /// Column `c` of part `p`, mapped and checked. A column added after the part
    /// was written has no extent there and reads as NULLs.
    pub(crate) fn column_chunk(
        &self,
        p: &PartitionMeta,
        c: &meta::ColumnMeta,
        mapped: &MappedFiles,
    ) -> Result<ColumnChunk> {
        let ext = p
            .extent(c.id)
            .copied()
            .unwrap_or(txn::ColumnExtent::empty(c.id, p.rows));
        ColumnChunk::open(&self.partition_dir(p), c, &ext, p.rows, mapped)
    }

    /// The number of leading rows of part `p` whose designated timestamp is below
    /// `bound` (binary search on the mapped, sorted timestamp column); all rows
    /// when the table has no designated timestamp.
    pub(crate) fn rows_before(
        &self,
        p: &PartitionMeta,
        bound: i64,
        mapped: &MappedFiles,
    ) -> Result<u64> {
        let Some(i) = self.meta.timestamp_index() else {
            return Ok(p.rows);
        };
        let chunk = self.column_chunk(p, &self.meta.columns[i], mapped)?;
        if chunk.top != 0 {
            return Err(crate::error::StorageError::InvalidState(format!(
                "designated timestamp of table \"{}\" is missing rows in {}",
                self.name, p.dir_name
            )));
        }
        let bytes = chunk.data.as_slice();
        let at =
            |r: usize| i64::from_le_bytes(bytes[r * 8..r * 8 + 8].try_into().unwrap_or([0; 8]));
        let (mut lo, mut hi) = (0usize, p.rows as usize);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if at(mid) < bound {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        Ok(lo as u64)
    }

    pub(crate) fn partition_dir(&self, p: &PartitionMeta) -> PathBuf {
        self.dir.join(&p.dir_name)
    }

    pub(crate) fn symbol_file(dir: &Path, stem: &str) -> PathBuf {
        dir.join(format!("{stem}.sym"))
    }

    /// All columns of partition `p`, decoded (symbols as keys), in meta order.
    pub(crate) fn read_partition_raw(
        &self,
        p: &PartitionMeta,
        mapped: &MappedFiles,
    ) -> Result<Vec<Column>> {
        self.read_rows_raw(p, 0..p.rows as usize, mapped)
    }

    /// Rows `rows` of every column of part `p`, decoded (symbols as keys).
    pub(crate) fn read_rows_raw(
        &self,
        p: &PartitionMeta,
        rows: std::ops::Range<usize>,
        mapped: &MappedFiles,
    ) -> Result<Vec<Column>> {
        let dir = self.partition_dir(p);
        self.meta
            .columns
            .iter()
            .map(|c| {
                self.column_chunk(p, c, mapped)?
                    .decode_raw(rows.clone(), &dir)
            })
            .collect()
    }
}

/// A directory name for a new part of the partition starting at `start`, written
/// by commit `seq`: `<name>` when free, else `<name>.<seq>`, else `<name>.<seq>.<n>`.
/// Returns (name, version).
pub(crate) fn new_part_dir_name(
    table_dir: &Path,
    meta: &TableMeta,
    start: i64,
    seq: u64,
) -> (String, u64) {
    let name = meta.partitioning().name(start);
    if !table_dir.join(&name).exists() {
        return (name, 0);
    }
    (
        crate::fsutil::free_name(table_dir, &format!("{name}.{seq}")),
        seq,
    )
}
