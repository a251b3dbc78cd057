//! One table's in-memory committed state and its directory.

pub(crate) mod column;
pub(crate) mod meta;
pub(crate) mod symbol;
pub(crate) mod txn;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::Column;
use crate::error::Result;
use crate::table::column::{ColumnChunk, VerifiedFiles};
use meta::TableMeta;
use symbol::SymbolDict;
use txn::{PartitionMeta, TxnState};

pub(crate) const META_FILE: &str = "_meta";
pub(crate) const META_PENDING_FILE: &str = "_meta.pending";
pub(crate) const TXN_FILE: &str = "_txn";

/// A table as of one commit. Cheap to clone: the big parts are behind `Arc`s
/// and copied only when a commit changes them.
#[derive(Debug, Clone)]
pub(crate) struct TableState {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// Directory name under `db/` (fixed at creation).
    pub(crate) dir_name: String,
    pub(crate) dir: PathBuf,
    pub(crate) meta: Arc<TableMeta>,
    pub(crate) txn: Arc<TxnState>,
    pub(crate) symbols: BTreeMap<u32, Arc<SymbolDict>>,
}

impl TableState {
    /// Column `c` of part `p`, mapped and checked. A column added after the part
    /// was written has no extent there and reads as NULLs.
    pub(crate) fn column_chunk(
        &self,
        p: &PartitionMeta,
        c: &meta::ColumnMeta,
        verified: &VerifiedFiles,
    ) -> Result<ColumnChunk> {
        let ext = p
            .extent(c.id)
            .copied()
            .unwrap_or(txn::ColumnExtent::empty(c.id, p.rows));
        ColumnChunk::open(&self.partition_dir(p), c, &ext, p.rows, verified)
    }

    /// The number of leading rows of part `p` whose designated timestamp is below
    /// `bound` (binary search on the mapped, sorted timestamp column); all rows
    /// when the table has no designated timestamp.
    pub(crate) fn rows_before(
        &self,
        p: &PartitionMeta,
        bound: i64,
        verified: &VerifiedFiles,
    ) -> Result<u64> {
        let Some(i) = self.meta.timestamp_index() else {
            return Ok(p.rows);
        };
        let chunk = self.column_chunk(p, &self.meta.columns[i], verified)?;
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
        verified: &VerifiedFiles,
    ) -> Result<Vec<Column>> {
        self.read_rows_raw(p, 0..p.rows as usize, verified)
    }

    /// Rows `rows` of every column of part `p`, decoded (symbols as keys).
    pub(crate) fn read_rows_raw(
        &self,
        p: &PartitionMeta,
        rows: std::ops::Range<usize>,
        verified: &VerifiedFiles,
    ) -> Result<Vec<Column>> {
        let dir = self.partition_dir(p);
        self.meta
            .columns
            .iter()
            .map(|c| {
                self.column_chunk(p, c, verified)?
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
    let name = meta.partition_by.partition_name(start);
    if !table_dir.join(&name).exists() {
        return (name, 0);
    }
    let versioned = format!("{name}.{seq}");
    if !table_dir.join(&versioned).exists() {
        return (versioned, seq);
    }
    let mut n = 1u64;
    loop {
        let candidate = format!("{name}.{seq}.{n}");
        if !table_dir.join(&candidate).exists() {
            return (candidate, seq);
        }
        n += 1;
    }
}
