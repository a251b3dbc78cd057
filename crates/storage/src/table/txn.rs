//! `_txn`: a table's committed state. Readers and recovery trust exactly what it says.
//!
//! Body: `txn u64` (the commit this state is as of) | `meta_seq u64` (the `_meta`
//! it goes with) | `count u32` of symbol counts, each `column_id u32 | count u32` |
//! `count u32` of partitions, each:
//! `start i64 | version u64 | dir_name str | read_only bool | rows u64 | min_ts i64 | max_ts i64 | count u32` of
//! column extents, each `column_id u32 | top u64 | var_len u64 | null_len u64 | data_crc u32 | aux_crc u32`.
//! Framed with magic `TMTXN001`.

use std::path::Path;

use crate::codec::{Decoder, Encoder, frame, unframe};
use crate::error::{Result, StorageError};

pub(crate) const TXN_MAGIC: &[u8; 8] = b"TMTXN001";

/// Per column, per partition: where the column's data starts and how long its
/// variable-size data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnExtent {
    pub(crate) column_id: u32,
    /// Rows `0..top` are NULL without being stored: the column was added after
    /// those rows were written. The files hold rows `top..rows`.
    pub(crate) top: u64,
    /// Committed length of the `.d` file of a variable-size column (0 otherwise).
    pub(crate) var_len: u64,
    /// Committed length of the `.n` file of a nullable fixed-width column: the
    /// file covers stored rows up to its last NULL; rows past it are not NULL.
    pub(crate) null_len: u64,
    /// CRC-32C of the committed bytes of the `.d` file.
    pub(crate) data_crc: u32,
    /// CRC-32C of the committed bytes of the `.i` (offsets) or `.n` (nulls) file.
    pub(crate) aux_crc: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionMeta {
    /// Inclusive start of the partition's time range (µs); `i64::MIN` for `NONE`.
    pub(crate) start: i64,
    /// The commit that wrote this part's directory; 0 for the plain name `<key>`.
    pub(crate) version: u64,
    /// Directory name under the table directory (`2026-11-21`, `2026-11-21.57`, ...).
    pub(crate) dir_name: String,
    /// The part is a prefix of its directory's rows (the rest belongs to an older
    /// version): it is read but never appended to.
    pub(crate) read_only: bool,
    pub(crate) rows: u64,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) columns: Vec<ColumnExtent>,
}

impl ColumnExtent {
    /// A column with nothing stored yet: rows `0..top` are NULL.
    pub(crate) fn empty(column_id: u32, top: u64) -> Self {
        ColumnExtent {
            column_id,
            top,
            var_len: 0,
            null_len: 0,
            data_crc: 0,
            aux_crc: 0,
        }
    }
}

impl PartitionMeta {
    pub(crate) fn extent(&self, column_id: u32) -> Option<&ColumnExtent> {
        self.columns.iter().find(|c| c.column_id == column_id)
    }
    pub(crate) fn extent_mut(&mut self, column_id: u32) -> Option<&mut ColumnExtent> {
        self.columns.iter_mut().find(|c| c.column_id == column_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TxnState {
    pub(crate) txn: u64,
    pub(crate) meta_seq: u64,
    pub(crate) symbol_counts: Vec<(u32, u32)>,
    pub(crate) partitions: Vec<PartitionMeta>,
}

/// The count of `column_id` in a list of (column id, dictionary entries).
pub(crate) fn count_of(counts: &[(u32, u32)], column_id: u32) -> u32 {
    counts
        .iter()
        .find(|(c, _)| *c == column_id)
        .map_or(0, |(_, n)| *n)
}

pub(crate) fn set_count(counts: &mut Vec<(u32, u32)>, column_id: u32, n: u32) {
    match counts.iter_mut().find(|(c, _)| *c == column_id) {
        Some(e) => e.1 = n,
        None => counts.push((column_id, n)),
    }
}

impl TxnState {
    pub(crate) fn symbol_count(&self, column_id: u32) -> u32 {
        count_of(&self.symbol_counts, column_id)
    }

    pub(crate) fn set_symbol_count(&mut self, column_id: u32, n: u32) {
        set_count(&mut self.symbol_counts, column_id, n)
    }

    pub(crate) fn row_count(&self) -> u64 {
        self.partitions.iter().map(|p| p.rows).sum()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(64 + self.partitions.len() * 64);
        e.u64(self.txn);
        e.u64(self.meta_seq);
        e.u32(self.symbol_counts.len() as u32);
        for (c, n) in &self.symbol_counts {
            e.u32(*c);
            e.u32(*n);
        }
        e.u32(self.partitions.len() as u32);
        for p in &self.partitions {
            e.i64(p.start);
            e.u64(p.version);
            e.str(&p.dir_name);
            e.bool(p.read_only);
            e.u64(p.rows);
            e.i64(p.min_ts);
            e.i64(p.max_ts);
            e.u32(p.columns.len() as u32);
            for c in &p.columns {
                e.u32(c.column_id);
                e.u64(c.top);
                e.u64(c.var_len);
                e.u64(c.null_len);
                e.u32(c.data_crc);
                e.u32(c.aux_crc);
            }
        }
        frame(TXN_MAGIC, &e.into_inner())
    }

    pub(crate) fn decode(data: &[u8], path: &Path) -> Result<Self> {
        let body = unframe(TXN_MAGIC, data, path)?;
        let mut d = Decoder::new(body, path);
        let txn = d.u64()?;
        let meta_seq = d.u64()?;
        let n = d.count(8)?;
        let mut symbol_counts = Vec::with_capacity(n);
        for _ in 0..n {
            symbol_counts.push((d.u32()?, d.u32()?));
        }
        let n = d.count(50)?;
        let mut partitions: Vec<PartitionMeta> = Vec::with_capacity(n);
        for _ in 0..n {
            let start = d.i64()?;
            let version = d.u64()?;
            let dir_name = d.str()?.to_string();
            if dir_name.is_empty() || dir_name.contains('/') || dir_name.starts_with('.') {
                return Err(d.error(format!("unsafe partition directory name {dir_name:?}")));
            }
            let read_only = d.bool()?;
            let rows = d.u64()?;
            let min_ts = d.i64()?;
            let max_ts = d.i64()?;
            let nc = d.count(36)?;
            let mut columns = Vec::with_capacity(nc);
            for _ in 0..nc {
                columns.push(ColumnExtent {
                    column_id: d.u32()?,
                    top: d.u64()?,
                    var_len: d.u64()?,
                    null_len: d.u64()?,
                    data_crc: d.u32()?,
                    aux_crc: d.u32()?,
                });
            }
            if let Some(prev) = partitions.last()
                && (prev.start > start || (prev.start == start && prev.max_ts > min_ts))
            {
                return Err(StorageError::corrupted(
                    path,
                    "partitions are not in ascending time order",
                ));
            }
            if columns.iter().any(|c| c.top > rows) {
                return Err(StorageError::corrupted(
                    path,
                    "a column top exceeds the partition's rows",
                ));
            }
            partitions.push(PartitionMeta {
                start,
                version,
                dir_name,
                read_only,
                rows,
                min_ts,
                max_ts,
                columns,
            });
        }
        d.finish()?;
        Ok(TxnState {
            txn,
            meta_seq,
            symbol_counts,
            partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_roundtrip_and_damage() {
        let t = TxnState {
            txn: 42,
            meta_seq: 3,
            symbol_counts: vec![(1, 100)],
            partitions: vec![PartitionMeta {
                start: 0,
                version: 41,
                dir_name: "1970-01-01.41".into(),
                read_only: true,
                rows: 10,
                min_ts: 0,
                max_ts: 9,
                columns: vec![ColumnExtent {
                    column_id: 1,
                    top: 2,
                    var_len: 0,
                    null_len: 0,
                    data_crc: 5,
                    aux_crc: 6,
                }],
            }],
        };
        let p = Path::new("_txn");
        let enc = t.encode();
        assert_eq!(TxnState::decode(&enc, p).expect("roundtrip"), t);
        let mut bad = enc.clone();
        bad[30] ^= 1;
        let e = TxnState::decode(&bad, p).expect_err("flip");
        assert!(e.to_string().contains("_txn: checksum mismatch"), "{e}");
    }
}
