//! `_meta`: a table's schema.
//!
//! Body: `seq u64` (the commit that last changed the schema) | `partition_by u8` |
//! `timestamp_column_id u32` (`u32::MAX` when the table has none) | `next_column_id u32` |
//! `count u32` then per column: `id u32 | name str | type | flags u8 | file_stem str`
//! `[| index_seq u64 | index_name str]`, where `type` is a code `u8`, followed for
//! DECIMAL by `precision u8 | scale u8`, and `flags` has bit 0 for NOT NULL and
//! bit 1 for a symbol index, whose commit and name then follow;
//! then, only for a table with a TTL or upsert keys, `ttl_unit u8 | ttl_count u32`
//! (unit codes: 1 hour, 2 day, 3 week, 4 month, 5 year; `0 | 0`: no TTL), and
//! only for a table with upsert keys (`DEDUP UPSERT KEYS`), `count u32` then
//! `column_id u32` per key. A table with neither keeps the bytes older versions
//! wrote.
//! Framed with magic `TMMETA01` (see `codec`).

use std::path::Path;

use crate::codec::{Decoder, Encoder, frame, unframe};
use crate::error::{Result, StorageError};
use crate::types::{ColumnType, PartitionBy, Partitioning, Ttl, TtlUnit};

pub(crate) const META_MAGIC: &[u8; 8] = b"TMMETA01";
const NO_TIMESTAMP: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMeta {
    /// Stable identity; file names use it, so renames never move files.
    pub id: u32,
    pub name: String,
    pub column_type: ColumnType,
    pub not_null: bool,
    /// File name stem in partition directories (`<fs-safe name at creation>~<id>`).
    pub file_stem: String,
    /// The symbol index of a SYMBOL column, if it has one.
    pub index: Option<SymbolIndexMeta>,
}

/// A SYMBOL column's index: its files are `<stem>.<seq>.k` in each part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolIndexMeta {
    /// The commit that created the index (a new index never reuses a dropped
    /// one's files, which a checkpoint may still need).
    pub seq: u64,
    /// `CREATE INDEX name`, or `<table>_<column>_idx` as given at creation.
    pub name: String,
}

const NOT_NULL_FLAG: u8 = 1;
const INDEXED_FLAG: u8 = 2;

impl ColumnMeta {
    /// The column as `_meta` and the WAL's AddColumn op write it.
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u32(self.id);
        e.str(&self.name);
        self.column_type.encode_schema(e);
        let flags = if self.not_null { NOT_NULL_FLAG } else { 0 }
            | if self.index.is_some() {
                INDEXED_FLAG
            } else {
                0
            };
        e.u8(flags);
        e.str(&self.file_stem);
        if let Some(index) = &self.index {
            e.u64(index.seq);
            e.str(&index.name);
        }
    }

    /// Reads what [`ColumnMeta::encode`] wrote.
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<ColumnMeta> {
        let id = d.u32()?;
        let name = d.str()?.to_string();
        let column_type = ColumnType::decode_schema(d)?;
        let flags = d.u8()?;
        if flags & !(NOT_NULL_FLAG | INDEXED_FLAG) != 0 {
            return Err(d.error(format!("unknown column flags {flags:#04x}")));
        }
        let file_stem = d.str()?.to_string();
        if file_stem.is_empty() || file_stem.contains('/') || file_stem.starts_with('.') {
            return Err(d.error(format!("unsafe column file name {file_stem:?}")));
        }
        let index = if flags & INDEXED_FLAG != 0 {
            if column_type != ColumnType::Symbol {
                return Err(d.error(format!("column \"{name}\" is indexed but not a SYMBOL")));
            }
            Some(SymbolIndexMeta {
                seq: d.u64()?,
                name: d.str()?.to_string(),
            })
        } else {
            None
        };
        Ok(ColumnMeta {
            id,
            name,
            column_type,
            not_null: flags & NOT_NULL_FLAG != 0,
            file_stem,
            index,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    pub seq: u64,
    pub partition_by: PartitionBy,
    pub timestamp_column: Option<u32>,
    pub next_column_id: u32,
    pub columns: Vec<ColumnMeta>,
    /// Partitions older than this behind the newest row are dropped.
    pub ttl: Option<Ttl>,
    /// `DEDUP UPSERT KEYS`: column ids (the designated timestamp among them);
    /// a row whose keys equal a stored row's replaces it. Empty: no dedup.
    pub dedup_keys: Vec<u32>,
}

impl TableMeta {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| crate::name::same_name(&c.name, name))
    }

    pub fn column_by_id(&self, id: u32) -> Option<&ColumnMeta> {
        self.columns.iter().find(|c| c.id == id)
    }

    pub fn timestamp_index(&self) -> Option<usize> {
        let id = self.timestamp_column?;
        self.columns.iter().position(|c| c.id == id)
    }

    /// The designated timestamp's type (TIMESTAMP, TIMESTAMPTZ or TIMESTAMP_NS).
    pub fn timestamp_type(&self) -> Option<ColumnType> {
        self.timestamp_index().map(|i| self.columns[i].column_type)
    }

    /// How the designated timestamps fall into partitions, in their own unit.
    pub fn partitioning(&self) -> Partitioning {
        let per_micro = match self.timestamp_type() {
            Some(ColumnType::TimestampNs) => 1_000,
            _ => 1,
        };
        Partitioning {
            by: self.partition_by,
            per_micro,
        }
    }

    pub fn timestamp_name(&self) -> Option<&str> {
        self.timestamp_index()
            .map(|i| self.columns[i].name.as_str())
    }

    /// The positions of the upsert keys in `columns` (empty without dedup).
    pub fn dedup_key_indexes(&self) -> Vec<usize> {
        self.dedup_keys
            .iter()
            .filter_map(|id| self.columns.iter().position(|c| c.id == *id))
            .collect()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u64(self.seq);
        e.u8(self.partition_by.code());
        e.u32(self.timestamp_column.unwrap_or(NO_TIMESTAMP));
        e.u32(self.next_column_id);
        e.u32(self.columns.len() as u32);
        for c in &self.columns {
            c.encode(&mut e);
        }
        if self.ttl.is_some() || !self.dedup_keys.is_empty() {
            encode_ttl(&mut e, self.ttl);
        }
        if !self.dedup_keys.is_empty() {
            e.u32(self.dedup_keys.len() as u32);
            for id in &self.dedup_keys {
                e.u32(*id);
            }
        }
        frame(META_MAGIC, &e.into_inner())
    }

    pub(crate) fn decode(data: &[u8], path: &Path) -> Result<Self> {
        let body = unframe(META_MAGIC, data, path)?;
        let mut d = Decoder::new(body, path);
        let seq = d.u64()?;
        let pb = d.u8()?;
        let partition_by = PartitionBy::from_code(pb)
            .ok_or_else(|| d.error(format!("unknown partition unit {pb}")))?;
        let ts = d.u32()?;
        let next_column_id = d.u32()?;
        let n = d.count(10)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            columns.push(ColumnMeta::decode(&mut d)?);
        }
        let has_trailer = d.remaining() > 0;
        let ttl = if has_trailer {
            decode_ttl(&mut d)?
        } else {
            None
        };
        let mut dedup_keys = Vec::new();
        if d.remaining() > 0 {
            let n = d.count(4)?;
            for _ in 0..n {
                dedup_keys.push(d.u32()?);
            }
            if dedup_keys.is_empty() {
                return Err(d.error("an empty list of upsert keys"));
            }
        } else if has_trailer && ttl.is_none() {
            // Written only for a table with a TTL or upsert keys.
            return Err(d.error("a TTL of 0"));
        }
        d.finish()?;
        let meta = TableMeta {
            seq,
            partition_by,
            timestamp_column: (ts != NO_TIMESTAMP).then_some(ts),
            next_column_id,
            columns,
            ttl,
            dedup_keys,
        };
        if meta.timestamp_column.is_some() && meta.timestamp_index().is_none() {
            return Err(StorageError::corrupted(
                path,
                "designated timestamp column is not among the columns",
            ));
        }
        if !meta.dedup_keys.is_empty()
            && (meta.dedup_key_indexes().len() != meta.dedup_keys.len()
                || meta
                    .timestamp_column
                    .is_none_or(|ts| !meta.dedup_keys.contains(&ts)))
        {
            return Err(StorageError::corrupted(
                path,
                "upsert keys are not columns of the table, or lack the designated timestamp",
            ));
        }
        if meta.columns.iter().any(|c| c.id >= next_column_id) {
            return Err(StorageError::corrupted(
                path,
                "a column id is not below next_column_id",
            ));
        }
        Ok(meta)
    }
}

/// A TTL as `_meta` and the WAL's SetTtl op write it: `unit u8 | count u32`,
/// `0 | 0` for none.
pub(crate) fn encode_ttl(e: &mut Encoder, ttl: Option<Ttl>) {
    e.u8(ttl.map_or(0, |t| t.unit.code()));
    e.u32(ttl.map_or(0, |t| t.count));
}

/// Reads what [`encode_ttl`] wrote; a unit without a count, or the reverse,
/// is damage.
pub(crate) fn decode_ttl(d: &mut Decoder<'_>) -> Result<Option<Ttl>> {
    let code = d.u8()?;
    let count = d.u32()?;
    match (code, count) {
        (0, 0) => Ok(None),
        (_, 0) => Err(d.error("a TTL of 0")),
        (code, count) => {
            let unit = TtlUnit::from_code(code)
                .ok_or_else(|| d.error(format!("unknown TTL unit {code}")))?;
            Ok(Some(Ttl { count, unit }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_roundtrip() {
        let m = TableMeta {
            seq: 7,
            partition_by: PartitionBy::Day,
            timestamp_column: Some(0),
            next_column_id: 2,
            columns: vec![
                ColumnMeta {
                    id: 0,
                    name: "ts".into(),
                    column_type: ColumnType::Timestamp,
                    not_null: true,
                    file_stem: "ts~0".into(),
                    index: None,
                },
                ColumnMeta {
                    id: 1,
                    name: "Sym ✓".into(),
                    column_type: ColumnType::Symbol,
                    not_null: false,
                    file_stem: "sym%20~1".into(),
                    index: Some(SymbolIndexMeta {
                        seq: 3,
                        name: "t_sym_idx".into(),
                    }),
                },
            ],
            ttl: None,
            dedup_keys: Vec::new(),
        };
        let p = Path::new("_meta");
        assert_eq!(TableMeta::decode(&m.encode(), p).expect("roundtrip"), m);
        assert_eq!(m.column_index("sym ✓"), Some(1));
        // A TTL is written after the columns; a table without one keeps the
        // bytes it always had.
        let with_ttl = TableMeta {
            ttl: Some(Ttl {
                count: 3,
                unit: TtlUnit::Month,
            }),
            ..m.clone()
        };
        let bytes = with_ttl.encode();
        assert_eq!(bytes.len(), m.encode().len() + 5);
        assert_eq!(TableMeta::decode(&bytes, p).expect("ttl"), with_ttl);
        // Upsert keys follow the TTL (none written as 0 | 0).
        for ttl in [None, with_ttl.ttl] {
            let dedup = TableMeta {
                ttl,
                dedup_keys: vec![0, 1],
                ..m.clone()
            };
            assert_eq!(TableMeta::decode(&dedup.encode(), p).expect("dedup"), dedup);
            assert_eq!(dedup.dedup_key_indexes(), vec![0, 1]);
        }
        // Keys without the designated timestamp, or naming no column, are damage.
        for keys in [vec![1], vec![0, 9]] {
            let bad = TableMeta {
                dedup_keys: keys,
                ..m.clone()
            };
            let err = TableMeta::decode(&bad.encode(), p).expect_err("refused");
            assert!(err.to_string().contains("upsert keys"), "{err}");
        }
        // An index on a column that is not a SYMBOL is damage.
        let mut bad = m.clone();
        bad.columns[0].index = bad.columns[1].index.clone();
        let err = TableMeta::decode(&bad.encode(), p).expect_err("refused");
        assert!(
            err.to_string().contains("indexed but not a SYMBOL"),
            "{err}"
        );
    }

    #[test]
    fn decimal_precision_and_scale_roundtrip_and_bad_ones_are_corruption() {
        let column = |column_type| ColumnMeta {
            id: 0,
            name: "price".into(),
            column_type,
            not_null: false,
            file_stem: "price~0".into(),
            index: None,
        };
        let meta = |column_type| TableMeta {
            seq: 1,
            partition_by: PartitionBy::None,
            timestamp_column: None,
            next_column_id: 1,
            columns: vec![column(column_type)],
            ttl: None,
            dedup_keys: Vec::new(),
        };
        let p = Path::new("_meta");
        for (precision, scale) in [(1, 0), (10, 2), (38, 38)] {
            let m = meta(ColumnType::decimal(precision, scale).expect("in range"));
            assert_eq!(TableMeta::decode(&m.encode(), p).expect("roundtrip"), m);
        }
        // Precision 39 cannot be held in 16 bytes; scale above precision is no type.
        for (precision, scale) in [(39, 0), (5, 6), (0, 0)] {
            let m = meta(ColumnType::Decimal { precision, scale });
            let err = TableMeta::decode(&m.encode(), p).expect_err("refused");
            assert!(err.to_string().contains("DECIMAL"), "{err}");
        }
    }
}
