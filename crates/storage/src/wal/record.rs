//! Encoding of a commit's ops in a WAL record body (after the `seq`).
//!
//! `count u32` ops, each `tag u8` then:
//! - 1 CreateTable: `id u64 | name str | dir str | meta bytes` (meta as in `_meta`)
//! - 2 DropTable: `id u64`
//! - 3 RenameTable: `id u64 | name str`
//! - 4 AddColumn: `table u64 | column` (the column as in `_meta`)
//! - 5 DropColumn: `table u64 | column u32`
//! - 6 RenameColumn: `table u64 | column u32 | name str`
//! - 7 Truncate: `table u64`
//! - 8 DropPartitions: `table u64 | count u32 | start i64...`
//! - 9 Append: `table u64 | rows`
//! - 10 ReplacePartition: `table u64 | start i64 | rows`
//! - 11 CommitTime: `micros i64` (the first op of every record written since
//!   point-in-time restore came: when the commit was made; not an operation,
//!   replay skips it; older records have none)
//! - 12 SetTtl: `table u64 | unit u8 | count u32` (unit 0 and count 0: no TTL;
//!   unit codes as in `_meta`)
//! - 13 SetDedup: `table u64 | count u32 | column_id u32...` (count 0: dedup off)
//! - 14 AddIndex: `table u64 | column_id u32 | name str` (the index's files are
//!   named after the record's seq)
//! - 15 DropIndex: `table u64 | column_id u32`
//! - 16 PutView: `id u64 | name str | definition str` (creates the view, or
//!   replaces the definition of view `id`)
//! - 17 DropView: `id u64`
//!
//! `rows` = `count u32` columns, each `column_id u32 | column`, then `count u32`
//! symbol additions, each `column_id u32 | count u32 | str...`.
//! `column` = `type u8 | rows u64 | has_nulls bool | [null bitmap, (rows+7)/8 bytes, LSB first]`
//! then fixed-width values little-endian, or for variable-size types `rows` u32
//! lengths followed by the bytes. Symbol keys travel as INT columns.

use std::path::Path;

use crate::batch::{Column, Values, VarData};
use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::ops::{Op, RowData};
use crate::table::meta::{ColumnMeta, TableMeta, decode_ttl, encode_ttl};
use crate::types::ColumnType;

/// A WAL record's ops, encoded one operation at a time: a commit streams them
/// to the log in chunks (`wal::RecordStream`), so a large COPY is never held in
/// memory as one encoded payload.
pub(crate) struct OpsEncoder {
    e: Encoder,
    count: u32,
    /// Bytes kept free in front of the ops until the first `take` (room for
    /// the record's header, so a record written whole is one write).
    front: usize,
}

impl OpsEncoder {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::with_front(0)
    }

    /// An encoder whose first buffer keeps `front` bytes free before the ops.
    pub(crate) fn with_front(front: usize) -> Self {
        let mut e = Encoder::with_capacity(256.max(2 * front));
        e.zeros(front);
        OpsEncoder { e, count: 0, front }
    }

    /// Bytes of ops encoded since the last `take`.
    pub(crate) fn len(&self) -> usize {
        self.e.len() - self.front
    }

    /// The ops encoded since the last `take`: a buffer whose ops start at the
    /// returned offset (the free front, the first time; 0 after), and how
    /// many there are. The encoder starts over, without a free front.
    pub(crate) fn take(&mut self) -> (Vec<u8>, usize, u32) {
        let bytes = std::mem::replace(&mut self.e, Encoder::with_capacity(256)).into_inner();
        let front = std::mem::take(&mut self.front);
        (bytes, front, std::mem::take(&mut self.count))
    }

    /// A whole payload: the op count, then the ops.
    #[cfg(test)]
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let (bytes, front, count) = self.take();
        let mut payload = count.to_le_bytes().to_vec();
        payload.extend_from_slice(&bytes[front..]);
        payload
    }

    /// The record's commit time (microseconds since the Unix epoch): the first
    /// thing in every record.
    pub(crate) fn commit_time(&mut self, micros: i64) {
        self.count += 1;
        self.e.u8(COMMIT_TIME_TAG);
        self.e.i64(micros);
    }

    pub(crate) fn push(&mut self, op: &Op) {
        self.count += 1;
        let e = &mut self.e;
        match op {
            Op::CreateTable {
                id,
                name,
                dir,
                meta,
            } => {
                e.u8(1);
                e.u64(*id);
                e.str(name);
                e.str(dir);
                e.bytes(&meta.encode());
            }
            Op::DropTable { id } => {
                e.u8(2);
                e.u64(*id);
            }
            Op::RenameTable { id, name } => {
                e.u8(3);
                e.u64(*id);
                e.str(name);
            }
            Op::AddColumn { table, column } => {
                e.u8(4);
                e.u64(*table);
                column.encode(e);
            }
            Op::DropColumn { table, column } => {
                e.u8(5);
                e.u64(*table);
                e.u32(*column);
            }
            Op::RenameColumn {
                table,
                column,
                name,
            } => {
                e.u8(6);
                e.u64(*table);
                e.u32(*column);
                e.str(name);
            }
            Op::Truncate { table } => {
                e.u8(7);
                e.u64(*table);
            }
            Op::DropPartitions { table, starts } => {
                e.u8(8);
                e.u64(*table);
                e.u32(starts.len() as u32);
                for s in starts {
                    e.i64(*s);
                }
            }
            Op::Append { table, data } => {
                e.u8(9);
                e.u64(*table);
                encode_rows(e, data);
            }
            Op::ReplacePartition { table, start, data } => {
                e.u8(10);
                e.u64(*table);
                e.i64(*start);
                encode_rows(e, data);
            }
            Op::SetTtl { table, ttl } => {
                e.u8(12);
                e.u64(*table);
                encode_ttl(e, *ttl);
            }
            Op::SetDedup { table, keys } => {
                e.u8(13);
                e.u64(*table);
                e.u32(keys.len() as u32);
                for k in keys {
                    e.u32(*k);
                }
            }
            Op::AddIndex {
                table,
                column,
                name,
            } => {
                e.u8(14);
                e.u64(*table);
                e.u32(*column);
                e.str(name);
            }
            Op::DropIndex { table, column } => {
                e.u8(15);
                e.u64(*table);
                e.u32(*column);
            }
            Op::PutView {
                id,
                name,
                definition,
            } => {
                e.u8(16);
                e.u64(*id);
                e.str(name);
                e.str(definition);
            }
            Op::DropView { id } => {
                e.u8(17);
                e.u64(*id);
            }
        }
    }
}

#[cfg(test)]
pub(crate) fn encode_ops(ops: &[Op]) -> Vec<u8> {
    let mut encoder = OpsEncoder::new();
    for op in ops {
        encoder.push(op);
    }
    encoder.finish()
}

const COMMIT_TIME_TAG: u8 = 11;

/// The commit time a record payload (`count u32 | ops`) starts with; None for
/// records written before commit times were recorded.
pub(crate) fn commit_time(payload: &[u8]) -> Option<i64> {
    match payload.get(4..13) {
        Some([COMMIT_TIME_TAG, micros @ ..]) => Some(i64::from_le_bytes(micros.try_into().ok()?)),
        _ => None,
    }
}

pub(crate) fn decode_ops(payload: &[u8], path: &Path) -> Result<Vec<Op>> {
    let mut d = Decoder::new(payload, path);
    let n = d.count(9)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = d.u8()?;
        if tag == COMMIT_TIME_TAG {
            d.i64()?;
            continue;
        }
        ops.push(match tag {
            1 => Op::CreateTable {
                id: d.u64()?,
                name: d.str()?.to_string(),
                dir: d.str()?.to_string(),
                meta: TableMeta::decode(d.bytes()?, path)?,
            },
            2 => Op::DropTable { id: d.u64()? },
            3 => Op::RenameTable {
                id: d.u64()?,
                name: d.str()?.to_string(),
            },
            4 => {
                let table = d.u64()?;
                Op::AddColumn {
                    table,
                    column: ColumnMeta::decode(&mut d)?,
                }
            }
            5 => Op::DropColumn {
                table: d.u64()?,
                column: d.u32()?,
            },
            6 => Op::RenameColumn {
                table: d.u64()?,
                column: d.u32()?,
                name: d.str()?.to_string(),
            },
            7 => Op::Truncate { table: d.u64()? },
            8 => {
                let table = d.u64()?;
                let n = d.count(8)?;
                let mut starts = Vec::with_capacity(n);
                for _ in 0..n {
                    starts.push(d.i64()?);
                }
                Op::DropPartitions { table, starts }
            }
            9 => Op::Append {
                table: d.u64()?,
                data: decode_rows(&mut d)?,
            },
            10 => Op::ReplacePartition {
                table: d.u64()?,
                start: d.i64()?,
                data: decode_rows(&mut d)?,
            },
            12 => Op::SetTtl {
                table: d.u64()?,
                ttl: decode_ttl(&mut d)?,
            },
            13 => {
                let table = d.u64()?;
                let n = d.count(4)?;
                let keys = (0..n).map(|_| d.u32()).collect::<Result<Vec<u32>>>()?;
                Op::SetDedup { table, keys }
            }
            14 => Op::AddIndex {
                table: d.u64()?,
                column: d.u32()?,
                name: d.str()?.to_string(),
            },
            15 => Op::DropIndex {
                table: d.u64()?,
                column: d.u32()?,
            },
            16 => Op::PutView {
                id: d.u64()?,
                name: d.str()?.to_string(),
                definition: d.str()?.to_string(),
            },
            17 => Op::DropView { id: d.u64()? },
            t => return Err(d.error(format!("unknown WAL op tag {t}"))),
        });
    }
    d.finish()?;
    Ok(ops)
}

fn encode_rows(e: &mut Encoder, data: &RowData) {
    e.u32(data.columns.len() as u32);
    for (id, c) in &data.columns {
        e.u32(*id);
        encode_column(e, c);
    }
    e.u32(data.new_symbols.len() as u32);
    for (id, strings) in &data.new_symbols {
        e.u32(*id);
        e.u32(strings.len() as u32);
        for s in strings {
            e.str(s);
        }
    }
}

fn decode_rows(d: &mut Decoder<'_>) -> Result<RowData> {
    let n = d.count(14)?;
    let mut columns = Vec::with_capacity(n);
    let mut rows = None;
    for _ in 0..n {
        let id = d.u32()?;
        let c = decode_column(d)?;
        if *rows.get_or_insert(c.len()) != c.len() {
            return Err(d.error("columns of one batch differ in length"));
        }
        columns.push((id, c));
    }
    let n = d.count(8)?;
    let mut new_symbols = Vec::with_capacity(n);
    for _ in 0..n {
        let id = d.u32()?;
        let m = d.count(4)?;
        let mut v = Vec::with_capacity(m);
        for _ in 0..m {
            v.push(d.str()?.to_string());
        }
        new_symbols.push((id, v));
    }
    Ok(RowData {
        columns,
        new_symbols,
    })
}

fn encode_column(e: &mut Encoder, c: &Column) {
    let n = c.len();
    e.u8(c.values.column_type().code());
    e.u64(n as u64);
    match &c.nulls {
        Some(nulls) => {
            e.bool(true);
            let mut bits = vec![0u8; n.div_ceil(8)];
            for (i, _) in nulls.iter().enumerate().filter(|(_, b)| **b) {
                bits[i / 8] |= 1 << (i % 8);
            }
            e.raw(&bits);
        }
        None => e.bool(false),
    }
    macro_rules! fixed {
        ($v:expr) => {
            for x in $v.iter() {
                e.raw(&x.to_le_bytes());
            }
        };
    }
    match &c.values {
        Values::Boolean(v) => v.iter().for_each(|b| e.u8(*b as u8)),
        Values::SmallInt(v) => fixed!(v),
        Values::Int(v) | Values::Date(v) => fixed!(v),
        Values::BigInt(v) | Values::Timestamp(v) => fixed!(v),
        Values::Real(v) => fixed!(v),
        Values::Double(v) => fixed!(v),
        Values::Uuid(v) => fixed!(v),
        Values::Decimal(v) => fixed!(v),
        Values::Varchar(v) | Values::Symbol(v) | Values::Binary(v) => {
            for w in v.offsets.windows(2) {
                e.u32((w[1] - w[0]) as u32);
            }
            e.raw(&v.bytes);
        }
    }
}

fn decode_column(d: &mut Decoder<'_>) -> Result<Column> {
    let tc = d.u8()?;
    let t =
        ColumnType::from_code(tc).ok_or_else(|| d.error(format!("unknown column type {tc}")))?;
    let n = d.u64()? as usize;
    if n > d.remaining() {
        return Err(d.error(format!("column of {n} rows exceeds the record")));
    }
    let nulls = if d.bool()? {
        let bits = d.take(n.div_ceil(8))?;
        Some(
            (0..n)
                .map(|i| bits[i / 8] & (1 << (i % 8)) != 0)
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    macro_rules! fixed {
        ($ty:ty, $variant:ident) => {{
            const W: usize = std::mem::size_of::<$ty>();
            let bytes = d.take(
                n.checked_mul(W)
                    .ok_or_else(|| d.error("column too large"))?,
            )?;
            Values::$variant(
                bytes
                    .chunks_exact(W)
                    .map(|c| <$ty>::from_le_bytes(c.try_into().unwrap_or([0; W])))
                    .collect(),
            )
        }};
    }
    let values = match t {
        ColumnType::Boolean => Values::Boolean(d.take(n)?.iter().map(|&b| b != 0).collect()),
        ColumnType::SmallInt => fixed!(i16, SmallInt),
        ColumnType::Int => fixed!(i32, Int),
        ColumnType::Date => fixed!(i32, Date),
        ColumnType::BigInt | ColumnType::TimestampNs => fixed!(i64, BigInt),
        ColumnType::Timestamp | ColumnType::TimestampTz => fixed!(i64, Timestamp),
        ColumnType::Real => fixed!(f32, Real),
        ColumnType::Double => fixed!(f64, Double),
        ColumnType::Uuid => fixed!(u128, Uuid),
        ColumnType::Decimal { .. } => fixed!(i128, Decimal),
        ColumnType::Varchar
        | ColumnType::Json
        | ColumnType::Jsonb
        | ColumnType::Symbol
        | ColumnType::Binary
        | ColumnType::DoubleArray { .. } => {
            let lens = d.take(
                n.checked_mul(4)
                    .ok_or_else(|| d.error("column too large"))?,
            )?;
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0u64);
            let mut total = 0u64;
            for c in lens.chunks_exact(4) {
                total += u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64;
                offsets.push(total);
            }
            let bytes = d
                .take(usize::try_from(total).map_err(|_| d.error("column too large"))?)?
                .to_vec();
            let v = VarData { offsets, bytes };
            match t.physical() {
                ColumnType::Varchar => Values::Varchar(v),
                ColumnType::Symbol => Values::Symbol(v),
                _ => Values::Binary(v),
            }
        }
    };
    let c = Column { values, nulls };
    c.check().map_err(|e| d.error(e))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PartitionBy, Ttl, TtlUnit};

    #[test]
    fn ops_roundtrip() {
        let meta = TableMeta {
            seq: 1,
            partition_by: PartitionBy::Day,
            timestamp_column: Some(0),
            next_column_id: 1,
            columns: vec![ColumnMeta {
                id: 0,
                name: "ts".into(),
                column_type: ColumnType::Timestamp,
                not_null: true,
                file_stem: "ts~0".into(),
                index: None,
            }],
            ttl: None,
            dedup_keys: vec![0],
        };
        let ops = vec![
            Op::CreateTable {
                id: 1,
                name: "t".into(),
                dir: "t~1".into(),
                meta,
            },
            Op::Append {
                table: 1,
                data: RowData {
                    columns: vec![
                        (0, Column::timestamps(vec![1, 2, 3])),
                        (
                            1,
                            Column::with_nulls(
                                Values::Varchar(VarData::from_slices([&b"a"[..], b"", b"c"])),
                                vec![false, true, false],
                            ),
                        ),
                        (2, Column::new(Values::Int(vec![0, -1, 1]))),
                    ],
                    new_symbols: vec![(2, vec!["x".into(), "y".into()])],
                },
            },
            Op::DropPartitions {
                table: 1,
                starts: vec![0, 86_400_000_000],
            },
            Op::RenameColumn {
                table: 1,
                column: 0,
                name: "when".into(),
            },
            Op::SetTtl {
                table: 1,
                ttl: Some(Ttl {
                    count: 7,
                    unit: TtlUnit::Day,
                }),
            },
            Op::SetTtl {
                table: 1,
                ttl: None,
            },
            Op::SetDedup {
                table: 1,
                keys: vec![0, 2],
            },
            Op::SetDedup {
                table: 1,
                keys: Vec::new(),
            },
            Op::PutView {
                id: 2,
                name: "hourly".into(),
                definition: "(SELECT ts, count() FROM t SAMPLE BY 1h)".into(),
            },
            Op::DropView { id: 2 },
            Op::AddIndex {
                table: 1,
                column: 2,
                name: "t_sym_idx".into(),
            },
            Op::DropIndex {
                table: 1,
                column: 2,
            },
            Op::AddColumn {
                table: 1,
                column: ColumnMeta {
                    id: 3,
                    name: "venue".into(),
                    column_type: ColumnType::Symbol,
                    not_null: false,
                    file_stem: "venue~3".into(),
                    index: Some(crate::table::meta::SymbolIndexMeta {
                        seq: 9,
                        name: "t_venue_idx".into(),
                    }),
                },
            },
        ];
        let enc = encode_ops(&ops);
        assert_eq!(decode_ops(&enc, Path::new("w")).expect("decode"), ops);
        for cut in 0..enc.len() {
            assert!(decode_ops(&enc[..cut], Path::new("w")).is_err());
        }
    }
}
