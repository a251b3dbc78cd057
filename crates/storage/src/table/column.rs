//! Column files inside a partition directory.
//!
//! - `<stem>.d`: fixed-width little-endian values, or the bytes of a variable-size
//!   column;
//! - `<stem>.i`: for VARCHAR/BINARY, one `u64` per row: the end offset of the row's
//!   bytes in `.d`, with bit 63 set when the row is NULL;
//! - `<stem>.n`: for types whose every bit pattern is a value (integers, floats,
//!   TIMESTAMP, DATE, UUID), one byte per row: 1 = NULL, 0 = value.
//!
//! BOOLEAN stores 0, 1 and 2 (NULL); SYMBOL stores `i32` keys with -1 for NULL.
//! Files hold rows `top..rows` of the partition (see `ColumnExtent::top`).
//! Appends only ever write past the committed length, and every file's committed
//! bytes are covered by a CRC-32C kept in `_txn`, checked on first read.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::batch::{Column, Values, VarData};
use crate::error::{Result, StorageError};
use crate::fsutil;
use crate::table::files::{Mapped, MappedFiles};
use crate::table::meta::ColumnMeta;
use crate::table::symbol_index;
use crate::table::txn::ColumnExtent;
use crate::types::ColumnType;

pub(crate) const VAR_NULL_FLAG: u64 = 1 << 63;
const BOOL_NULL: u8 = 2;
pub(crate) const SYMBOL_NULL: i32 = -1;

pub(crate) fn data_path(part_dir: &Path, col: &ColumnMeta) -> PathBuf {
    part_dir.join(format!("{}.d", col.file_stem))
}

/// The `.i` or `.n` file of a column, if its type has one.
pub(crate) fn aux_path(part_dir: &Path, col: &ColumnMeta) -> Option<PathBuf> {
    if col.column_type.fixed_width().is_none() {
        Some(part_dir.join(format!("{}.i", col.file_stem)))
    } else if col.column_type.needs_null_file() && !col.not_null {
        Some(part_dir.join(format!("{}.n", col.file_stem)))
    } else {
        None
    }
}

/// The symbol index file of an indexed SYMBOL column (see `symbol_index`):
/// its committed length and CRC are the extent's `var_len` and `aux_crc`,
/// which a SYMBOL column does not otherwise use.
pub(crate) fn index_path(part_dir: &Path, col: &ColumnMeta) -> Option<PathBuf> {
    let index = col.index.as_ref()?;
    Some(part_dir.join(format!("{}.{}.k", col.file_stem, index.seq)))
}

/// The committed length of a column's index file (0 without an index).
pub(crate) fn index_len(col: &ColumnMeta, ext: &ColumnExtent) -> u64 {
    if col.index.is_some() { ext.var_len } else { 0 }
}

/// Committed lengths of a column's `.d` and aux files for `stored` rows.
pub(crate) fn committed_lengths(col: &ColumnMeta, ext: &ColumnExtent, stored: u64) -> (u64, u64) {
    match col.column_type.fixed_width() {
        Some(w) => (
            stored * w as u64,
            if aux_is_nulls(col) { ext.null_len } else { 0 },
        ),
        None => (ext.var_len, stored * 8),
    }
}

fn aux_is_nulls(col: &ColumnMeta) -> bool {
    col.column_type.needs_null_file() && !col.not_null
}

/// Encodes `column` (symbols already as keys) and appends it to the column's files
/// in `part_dir`, after `stored` rows. Updates `ext` (var length, checksums) and
/// records the files touched in `dirty`.
pub(crate) fn append(
    part_dir: &Path,
    col: &ColumnMeta,
    ext: &mut ColumnExtent,
    stored: u64,
    column: &Column,
    dirty: &mut Vec<PathBuf>,
) -> Result<()> {
    let (data_off, aux_off) = committed_lengths(col, ext, stored);
    let data_path = data_path(part_dir, col);
    let aux_path = aux_path(part_dir, col);
    let (data, mut aux) = encode(col, column, ext.var_len)?;
    fsutil::write_at(&data_path, data_off, &data)?;
    ext.data_crc = crc32c::crc32c_append(ext.data_crc, &data);
    dirty.push(data_path);
    if aux_is_nulls(col) {
        // The null file only reaches as far as the last NULL: a batch without NULLs
        // writes nothing, one with NULLs first fills the gap with "not NULL".
        match aux.as_mut() {
            Some(flags) => {
                let gap = (stored - ext.null_len) as usize;
                flags.splice(0..0, std::iter::repeat_n(0u8, gap));
                ext.null_len = stored + column.len() as u64;
            }
            None => return Ok(()),
        }
    }
    if let (Some(path), Some(aux)) = (aux_path, aux) {
        fsutil::write_at(&path, aux_off, &aux)?;
        ext.aux_crc = crc32c::crc32c_append(ext.aux_crc, &aux);
        dirty.push(path);
    }
    if col.column_type.fixed_width().is_none() {
        ext.var_len += data.len() as u64;
    }
    if let Some(path) = index_path(part_dir, col) {
        // The keys as just written, NULL as -1.
        append_index(&path, ext, ext.top + stored, &stored_keys(&data), dirty)?;
    }
    Ok(())
}

/// The `i32` keys of a SYMBOL column's `.d` bytes.
fn stored_keys(data: &[u8]) -> Vec<i32> {
    data.chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Appends the index block of rows `first_row..` (stored keys `keys`) to an
/// indexed column's index file.
fn append_index(
    path: &Path,
    ext: &mut ColumnExtent,
    first_row: u64,
    keys: &[i32],
    dirty: &mut Vec<PathBuf>,
) -> Result<()> {
    let block = symbol_index::encode(first_row, keys);
    fsutil::write_at(path, ext.var_len, &block)?;
    ext.aux_crc = crc32c::crc32c_append(ext.aux_crc, &block);
    ext.var_len += block.len() as u64;
    dirty.push(path.to_path_buf());
    Ok(())
}

/// Writes the index file of column `col` of a part as a whole, from its
/// stored keys (rows `top..`), and records it in `ext`. For `ADD INDEX` on a
/// column with rows.
pub(crate) fn build_index(
    part_dir: &Path,
    col: &ColumnMeta,
    ext: &mut ColumnExtent,
    rows: u64,
    mapped: &MappedFiles,
    dirty: &mut Vec<PathBuf>,
) -> Result<()> {
    let Some(path) = index_path(part_dir, col) else {
        return Ok(());
    };
    ext.var_len = 0;
    ext.aux_crc = 0;
    let chunk = ColumnChunk::open(part_dir, col, ext, rows, mapped)?;
    let keys = stored_keys(chunk.data.as_slice());
    if keys.is_empty() {
        return Ok(());
    }
    let block = symbol_index::encode(ext.top, &keys);
    // Anything at that path is a crashed attempt at this same commit.
    fsutil::write_at(&path, 0, &block)?;
    ext.aux_crc = crc32c::crc32c(&block);
    ext.var_len = block.len() as u64;
    dirty.push(path);
    Ok(())
}

/// The extent of a column of a part cut to its first `k` rows (of `rows`): lengths
/// and checksums of the kept prefix of each file. Verifies the whole files first,
/// so a damaged file is never vouched for by a fresh checksum.
pub(crate) fn prefix_extent(
    part_dir: &Path,
    col: &ColumnMeta,
    ext: &ColumnExtent,
    rows: u64,
    k: u64,
    mapped: &MappedFiles,
) -> Result<ColumnExtent> {
    let chunk = ColumnChunk::open(part_dir, col, ext, rows, mapped)?;
    let top = ext.top.min(k);
    let stored = (k - top) as usize;
    let data = chunk.data.as_slice();
    let aux = chunk.aux.as_ref().map(|m| m.as_slice()).unwrap_or(&[]);
    let (data_len, aux_len, var_len) = match col.column_type.fixed_width() {
        Some(w) => (
            stored * w,
            if aux_is_nulls(col) {
                (ext.null_len as usize).min(stored)
            } else {
                0
            },
            0,
        ),
        None => {
            let end = if stored == 0 {
                0
            } else {
                let b = &aux[(stored - 1) * 8..stored * 8];
                u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) & !VAR_NULL_FLAG
            };
            (end as usize, stored * 8, end)
        }
    };
    if data_len > data.len() || aux_len > aux.len() {
        return Err(StorageError::corrupted(
            part_dir,
            format!("column \"{}\" is shorter than its rows", col.name),
        ));
    }
    // An index is kept whole: its blocks past the prefix are not read.
    let (var_len, aux_crc) = if col.index.is_some() {
        (ext.var_len, ext.aux_crc)
    } else if chunk.aux.is_some() {
        (var_len, crc32c::crc32c(&aux[..aux_len]))
    } else {
        (var_len, 0)
    };
    Ok(ColumnExtent {
        column_id: ext.column_id,
        top,
        var_len,
        null_len: if aux_is_nulls(col) { aux_len as u64 } else { 0 },
        data_crc: crc32c::crc32c(&data[..data_len]),
        aux_crc,
    })
}

/// `(data, aux)` bytes for `column`. `var_base` is the `.d` length the offsets start from.
fn encode(col: &ColumnMeta, column: &Column, var_base: u64) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let n = column.len();
    let null = |i: usize| column.is_null(i);
    macro_rules! fixed {
        ($v:expr) => {{
            let mut out = Vec::with_capacity(n * std::mem::size_of_val(&$v[0]).max(1));
            for x in $v.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
            out
        }};
    }
    let data = match &column.values {
        Values::Boolean(v) => (0..n)
            .map(|i| if null(i) { BOOL_NULL } else { v[i] as u8 })
            .collect(),
        Values::SmallInt(v) => fixed!(v),
        Values::Int(v) if col.column_type == ColumnType::Symbol => {
            let mut out = Vec::with_capacity(n * 4);
            for (i, k) in v.iter().enumerate() {
                out.extend_from_slice(&(if null(i) { SYMBOL_NULL } else { *k }).to_le_bytes());
            }
            out
        }
        Values::Int(v) | Values::Date(v) => fixed!(v),
        Values::BigInt(v) | Values::Timestamp(v) => fixed!(v),
        Values::Real(v) => fixed!(v),
        Values::Double(v) => fixed!(v),
        Values::Uuid(v) => fixed!(v),
        Values::Decimal(v) => fixed!(v),
        Values::Varchar(v) | Values::Binary(v) => {
            let mut offsets = Vec::with_capacity(n * 8);
            let mut data = Vec::with_capacity(v.bytes.len());
            for i in 0..n {
                if null(i) {
                    offsets.extend_from_slice(
                        &((var_base + data.len() as u64) | VAR_NULL_FLAG).to_le_bytes(),
                    );
                } else {
                    data.extend_from_slice(v.get(i));
                    offsets.extend_from_slice(&(var_base + data.len() as u64).to_le_bytes());
                }
            }
            return Ok((data, Some(offsets)));
        }
        Values::Symbol(_) => {
            return Err(StorageError::InvalidData(format!(
                "internal: symbol column \"{}\" was not encoded to keys",
                col.name
            )));
        }
    };
    let aux = (aux_is_nulls(col) && column.null_count() > 0)
        .then(|| (0..n).map(|i| null(i) as u8).collect());
    Ok((data, aux))
}

/// One column of one partition, as committed: zero-copy views of its files.
#[derive(Debug, Clone)]
pub struct ColumnChunk {
    pub column_type: ColumnType,
    /// Rows in the partition.
    pub rows: usize,
    /// Rows `0..top` are NULL and not stored; the files hold rows `top..rows`.
    pub top: usize,
    /// `.d`: fixed-width values, or variable-size bytes.
    pub data: Mapped,
    /// `.i` offsets (variable-size types) or `.n` null flags (one byte per row), if any.
    pub aux: Option<Mapped>,
}

impl ColumnChunk {
    pub(crate) fn open(
        part_dir: &Path,
        col: &ColumnMeta,
        ext: &ColumnExtent,
        rows: u64,
        mapped: &MappedFiles,
    ) -> Result<ColumnChunk> {
        let stored = rows - ext.top;
        let (data_len, aux_len) = committed_lengths(col, ext, stored);
        let data = mapped.map(&data_path(part_dir, col), data_len, ext.data_crc)?;
        let aux = match aux_path(part_dir, col) {
            Some(p) => Some(mapped.map(&p, aux_len, ext.aux_crc)?),
            None => None,
        };
        Ok(ColumnChunk {
            column_type: col.column_type,
            rows: rows as usize,
            top: ext.top as usize,
            data,
            aux,
        })
    }

    /// Decodes rows `range` (partition row numbers). Symbol columns come back as
    /// `Values::Int` keys.
    pub(crate) fn decode_raw(&self, range: Range<usize>, path_hint: &Path) -> Result<Column> {
        let n = range.len();
        let t = self.column_type;
        // Rows before `top` are NULL; the rest come from the files.
        let leading = self.top.saturating_sub(range.start).min(n);
        let stored = (range.start.max(self.top) - self.top)..(range.end.max(self.top) - self.top);
        // Symbols decode to their keys, so their placeholder NULLs are INT too.
        let placeholder = if t == ColumnType::Symbol {
            ColumnType::Int
        } else {
            t
        };
        let mut col = Column::all_null(placeholder, leading);
        if stored.is_empty() {
            return Ok(col);
        }
        let data = self.data.as_slice();
        let null_flags = self
            .aux
            .as_ref()
            .filter(|_| t.fixed_width().is_some())
            .map(|m| m.as_slice());
        let mut nulls: Vec<bool> = match null_flags {
            // Rows past the end of the null file are not NULL.
            Some(f) => stored
                .clone()
                .map(|i| f.get(i).is_some_and(|&b| b != 0))
                .collect(),
            None => vec![false; stored.len()],
        };
        macro_rules! fixed {
            ($ty:ty, $variant:ident) => {{
                const W: usize = std::mem::size_of::<$ty>();
                let bytes = &data[stored.start * W..stored.end * W];
                Values::$variant(
                    bytes
                        .chunks_exact(W)
                        .map(|c| <$ty>::from_le_bytes(c.try_into().unwrap_or([0; W])))
                        .collect(),
                )
            }};
        }
        let values = match t {
            ColumnType::Boolean => {
                let b = &data[stored.clone()];
                for (i, &x) in b.iter().enumerate() {
                    nulls[i] = x == BOOL_NULL;
                }
                Values::Boolean(b.iter().map(|&x| x == 1).collect())
            }
            ColumnType::SmallInt => fixed!(i16, SmallInt),
            ColumnType::Int => fixed!(i32, Int),
            ColumnType::Symbol => {
                let v = fixed!(i32, Int);
                if let Values::Int(keys) = &v {
                    for (i, k) in keys.iter().enumerate() {
                        nulls[i] = *k == SYMBOL_NULL;
                    }
                }
                v
            }
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
            | ColumnType::Binary
            | ColumnType::DoubleArray { .. } => {
                let offs = self.aux.as_ref().map(|m| m.as_slice()).unwrap_or(&[]);
                let entry = |i: usize| -> u64 {
                    let b = &offs[i * 8..i * 8 + 8];
                    u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
                };
                let mut out = VarData {
                    offsets: Vec::with_capacity(stored.len() + 1),
                    bytes: Vec::new(),
                };
                out.offsets.push(0);
                let mut start = if stored.start == 0 {
                    0
                } else {
                    entry(stored.start - 1) & !VAR_NULL_FLAG
                };
                for (k, i) in stored.clone().enumerate() {
                    let e = entry(i);
                    let end = e & !VAR_NULL_FLAG;
                    if end < start || end as usize > data.len() {
                        return Err(StorageError::corrupted(
                            path_hint,
                            format!("offset of row {i} is out of bounds"),
                        ));
                    }
                    nulls[k] = e & VAR_NULL_FLAG != 0;
                    out.push(&data[start as usize..end as usize]);
                    start = end;
                }
                if t.physical() == ColumnType::Varchar {
                    Values::Varchar(out)
                } else {
                    Values::Binary(out)
                }
            }
        };
        col.extend(&Column::with_nulls(values, nulls))?;
        Ok(col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(t: ColumnType) -> ColumnMeta {
        ColumnMeta {
            id: 1,
            name: "c".into(),
            column_type: t,
            not_null: false,
            file_stem: "c~1".into(),
            index: None,
        }
    }

    #[test]
    fn every_type_roundtrips_with_nulls_across_two_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: Vec<Values> = vec![
            Values::Boolean(vec![true, false, true]),
            Values::SmallInt(vec![i16::MIN, 0, i16::MAX]),
            Values::Int(vec![i32::MIN, 0, i32::MAX]),
            Values::BigInt(vec![i64::MIN, 0, i64::MAX]),
            Values::Real(vec![f32::NAN, 0.0, f32::INFINITY]),
            Values::Double(vec![f64::NAN, -0.0, f64::MAX]),
            Values::Timestamp(vec![i64::MIN, 0, 1]),
            Values::Date(vec![-1, 0, 1]),
            Values::Uuid(vec![u128::MAX, 0, 7]),
            Values::Decimal(vec![i128::MIN, 0, i128::MAX]),
            Values::Varchar(VarData::from_slices([&b"a"[..], b"", "ü".as_bytes()])),
            Values::Binary(VarData::from_slices([&[0u8, 255][..], b"", b"x"])),
        ];
        for v in cases {
            let mapped = MappedFiles::default();
            let t = v.column_type();
            let m = meta(t);
            let mut ext = ColumnExtent::empty(1, 0);
            let c = Column::with_nulls(v.clone(), vec![false, true, false]);
            let mut dirty = Vec::new();
            append(dir.path(), &m, &mut ext, 0, &c, &mut dirty).expect("append 1");
            append(dir.path(), &m, &mut ext, 3, &c, &mut dirty).expect("append 2");
            let chunk = ColumnChunk::open(dir.path(), &m, &ext, 6, &mapped).expect("open");
            let back = chunk.decode_raw(2..6, dir.path()).expect("decode");
            assert_eq!(back.len(), 4);
            let nulls: Vec<bool> = (0..4).map(|i| back.is_null(i)).collect();
            assert_eq!(nulls, vec![false, false, true, false], "{t}");
            // A value that is stored must come back bit for bit (NaN included).
            let again = chunk.decode_raw(0..3, dir.path()).expect("decode");
            assert_eq!(
                format!("{:?}", again.take(&[0, 2]).values),
                format!("{:?}", c.take(&[0, 2]).values),
                "{t}"
            );
            for p in &dirty {
                std::fs::remove_file(p).ok();
            }
        }
    }

    #[test]
    fn null_file_is_written_only_up_to_the_last_null() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = meta(ColumnType::BigInt);
        let mut ext = ColumnExtent::empty(1, 0);
        let mut dirty = Vec::new();
        let plain = Column::new(Values::BigInt(vec![1, 2, 3]));
        append(dir.path(), &m, &mut ext, 0, &plain, &mut dirty).expect("append");
        let n_path = aux_path(dir.path(), &m).expect("nullable column");
        assert!(!n_path.exists(), "no NULL yet, no null file");
        let with_null = Column::with_nulls(Values::BigInt(vec![4, 0]), vec![false, true]);
        append(dir.path(), &m, &mut ext, 3, &with_null, &mut dirty).expect("append");
        assert_eq!(std::fs::read(&n_path).expect("read"), vec![0, 0, 0, 0, 1]);
        append(dir.path(), &m, &mut ext, 5, &plain, &mut dirty).expect("append");
        assert_eq!(ext.null_len, 5, "rows after the last NULL are not covered");
        let chunk =
            ColumnChunk::open(dir.path(), &m, &ext, 8, &MappedFiles::default()).expect("open");
        let back = chunk.decode_raw(0..8, dir.path()).expect("decode");
        let nulls: Vec<bool> = (0..8).map(|i| back.is_null(i)).collect();
        assert_eq!(
            nulls,
            [false, false, false, false, true, false, false, false]
        );
    }

    #[test]
    fn a_flipped_byte_is_reported_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = meta(ColumnType::Double);
        let mut ext = ColumnExtent::empty(1, 0);
        let c = Column::new(Values::Double(vec![1.0, 2.0]));
        append(dir.path(), &m, &mut ext, 0, &c, &mut Vec::new()).expect("append");
        let p = data_path(dir.path(), &m);
        let mut b = std::fs::read(&p).expect("read");
        b[3] ^= 1;
        std::fs::write(&p, b).expect("write");
        let e =
            ColumnChunk::open(dir.path(), &m, &ext, 2, &MappedFiles::default()).expect_err("flip");
        assert!(
            e.to_string().contains("c~1.d") && e.to_string().contains("checksum"),
            "{e}"
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(8))
            .expect("truncate");
        let e =
            ColumnChunk::open(dir.path(), &m, &ext, 2, &MappedFiles::default()).expect_err("short");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
