//! In-memory columnar data: what writers hand to the engine, what WAL records
//! carry, and what a partition decodes to when it is rewritten.

use crate::error::{Result, StorageError};
use crate::types::ColumnType;

/// Variable-size values (strings, byte strings, symbol text): `offsets` has
/// `len + 1` entries, value `i` is `bytes[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarData {
    pub offsets: Vec<u64>,
    pub bytes: Vec<u8>,
}

impl Default for VarData {
    fn default() -> Self {
        VarData {
            offsets: vec![0],
            bytes: Vec::new(),
        }
    }
}

impl VarData {
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
    pub fn push(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
        self.offsets.push(self.bytes.len() as u64);
    }
    pub fn from_slices<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut v = VarData::default();
        for i in items {
            v.push(i);
        }
        v
    }
    fn take(&self, idx: &[u32]) -> Self {
        let mut out = VarData {
            offsets: Vec::with_capacity(idx.len() + 1),
            bytes: Vec::new(),
        };
        out.offsets.push(0);
        for &i in idx {
            out.push(self.get(i as usize));
        }
        out
    }
    fn extend(&mut self, other: &VarData) {
        let base = self.bytes.len() as u64;
        self.bytes.extend_from_slice(&other.bytes);
        self.offsets
            .extend(other.offsets[1..].iter().map(|o| o + base));
    }
    /// Appends values `rows` of `other`.
    fn extend_range(&mut self, other: &VarData, rows: std::ops::Range<usize>) {
        let (from, to) = (other.offsets[rows.start], other.offsets[rows.end]);
        let shift = self.bytes.len() as u64;
        self.bytes
            .extend_from_slice(&other.bytes[from as usize..to as usize]);
        self.offsets.extend(
            other.offsets[rows.start + 1..=rows.end]
                .iter()
                .map(|o| o - from + shift),
        );
    }
    /// Checks the offsets are monotonic and in bounds (data from a client or a file).
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.offsets.first() != Some(&0) {
            return Err("offsets must start at 0".into());
        }
        if self.offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err("offsets must not decrease".into());
        }
        if self.offsets.last().copied() != Some(self.bytes.len() as u64) {
            return Err("offsets must end at the data length".into());
        }
        Ok(())
    }
}

/// One column's values, typed. NULL positions hold an arbitrary value (zero).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Boolean(Vec<bool>),
    SmallInt(Vec<i16>),
    Int(Vec<i32>),
    BigInt(Vec<i64>),
    Real(Vec<f32>),
    Double(Vec<f64>),
    Timestamp(Vec<i64>),
    Date(Vec<i32>),
    Varchar(VarData),
    Symbol(VarData),
    Uuid(Vec<u128>),
    Binary(VarData),
    /// DECIMAL's unscaled values (the column's type says the scale).
    Decimal(Vec<i128>),
}

macro_rules! each_values {
    ($v:expr, $x:ident => $fixed:expr, $var:ident => $varexpr:expr) => {
        match $v {
            Values::Boolean($x) => $fixed,
            Values::SmallInt($x) => $fixed,
            Values::Int($x) => $fixed,
            Values::BigInt($x) => $fixed,
            Values::Real($x) => $fixed,
            Values::Double($x) => $fixed,
            Values::Timestamp($x) => $fixed,
            Values::Date($x) => $fixed,
            Values::Uuid($x) => $fixed,
            Values::Decimal($x) => $fixed,
            Values::Varchar($var) | Values::Symbol($var) | Values::Binary($var) => $varexpr,
        }
    };
}

impl Values {
    pub fn column_type(&self) -> ColumnType {
        match self {
            Values::Boolean(_) => ColumnType::Boolean,
            Values::SmallInt(_) => ColumnType::SmallInt,
            Values::Int(_) => ColumnType::Int,
            Values::BigInt(_) => ColumnType::BigInt,
            Values::Real(_) => ColumnType::Real,
            Values::Double(_) => ColumnType::Double,
            Values::Timestamp(_) => ColumnType::Timestamp,
            Values::Date(_) => ColumnType::Date,
            Values::Varchar(_) => ColumnType::Varchar,
            Values::Symbol(_) => ColumnType::Symbol,
            Values::Uuid(_) => ColumnType::Uuid,
            Values::Binary(_) => ColumnType::Binary,
            Values::Decimal(_) => ColumnType::DECIMAL_STORED,
        }
    }

    pub fn len(&self) -> usize {
        each_values!(self, v => v.len(), s => s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` placeholder values (zeros / empty strings) of type `t`.
    pub fn zeros(t: ColumnType, n: usize) -> Values {
        let var = || VarData {
            offsets: vec![0; n + 1],
            bytes: Vec::new(),
        };
        match t {
            ColumnType::Boolean => Values::Boolean(vec![false; n]),
            ColumnType::SmallInt => Values::SmallInt(vec![0; n]),
            ColumnType::Int => Values::Int(vec![0; n]),
            ColumnType::BigInt | ColumnType::TimestampNs => Values::BigInt(vec![0; n]),
            ColumnType::Real => Values::Real(vec![0.0; n]),
            ColumnType::Double => Values::Double(vec![0.0; n]),
            ColumnType::Timestamp | ColumnType::TimestampTz => Values::Timestamp(vec![0; n]),
            ColumnType::Json | ColumnType::Jsonb => Values::Varchar(var()),
            ColumnType::Date => Values::Date(vec![0; n]),
            ColumnType::Uuid => Values::Uuid(vec![0; n]),
            ColumnType::Decimal { .. } => Values::Decimal(vec![0; n]),
            ColumnType::Varchar => Values::Varchar(var()),
            ColumnType::Symbol => Values::Symbol(var()),
            ColumnType::Binary | ColumnType::DoubleArray { .. } => Values::Binary(var()),
        }
    }

    fn take(&self, idx: &[u32]) -> Values {
        fn t<T: Copy>(v: &[T], idx: &[u32]) -> Vec<T> {
            idx.iter().map(|&i| v[i as usize]).collect()
        }
        match self {
            Values::Boolean(v) => Values::Boolean(t(v, idx)),
            Values::SmallInt(v) => Values::SmallInt(t(v, idx)),
            Values::Int(v) => Values::Int(t(v, idx)),
            Values::BigInt(v) => Values::BigInt(t(v, idx)),
            Values::Real(v) => Values::Real(t(v, idx)),
            Values::Double(v) => Values::Double(t(v, idx)),
            Values::Timestamp(v) => Values::Timestamp(t(v, idx)),
            Values::Date(v) => Values::Date(t(v, idx)),
            Values::Uuid(v) => Values::Uuid(t(v, idx)),
            Values::Decimal(v) => Values::Decimal(t(v, idx)),
            Values::Varchar(v) => Values::Varchar(v.take(idx)),
            Values::Symbol(v) => Values::Symbol(v.take(idx)),
            Values::Binary(v) => Values::Binary(v.take(idx)),
        }
    }

    /// Appends values `rows` of `other`, which must be of the same type.
    fn extend_range(
        &mut self,
        other: &Values,
        rows: std::ops::Range<usize>,
    ) -> std::result::Result<(), String> {
        match (self, other) {
            (Values::Boolean(a), Values::Boolean(b)) => a.extend_from_slice(&b[rows]),
            (Values::SmallInt(a), Values::SmallInt(b)) => a.extend_from_slice(&b[rows]),
            (Values::Int(a), Values::Int(b)) => a.extend_from_slice(&b[rows]),
            (Values::BigInt(a), Values::BigInt(b)) => a.extend_from_slice(&b[rows]),
            (Values::Real(a), Values::Real(b)) => a.extend_from_slice(&b[rows]),
            (Values::Double(a), Values::Double(b)) => a.extend_from_slice(&b[rows]),
            (Values::Timestamp(a), Values::Timestamp(b)) => a.extend_from_slice(&b[rows]),
            (Values::Date(a), Values::Date(b)) => a.extend_from_slice(&b[rows]),
            (Values::Uuid(a), Values::Uuid(b)) => a.extend_from_slice(&b[rows]),
            (Values::Decimal(a), Values::Decimal(b)) => a.extend_from_slice(&b[rows]),
            (Values::Varchar(a), Values::Varchar(b))
            | (Values::Symbol(a), Values::Symbol(b))
            | (Values::Binary(a), Values::Binary(b)) => a.extend_range(b, rows),
            (a, b) => {
                return Err(format!(
                    "cannot append {} values to {}",
                    b.column_type(),
                    a.column_type()
                ));
            }
        }
        Ok(())
    }

    /// Bytes of memory the values take (for the write buffer's accounting).
    pub fn byte_size(&self) -> usize {
        each_values!(self, v => std::mem::size_of_val(v.as_slice()), s => s.bytes.len() + s.offsets.len() * 8)
    }

    /// Appends `other`, which must be of the same type.
    fn extend(&mut self, other: &Values) -> std::result::Result<(), String> {
        match (self, other) {
            (Values::Boolean(a), Values::Boolean(b)) => a.extend_from_slice(b),
            (Values::SmallInt(a), Values::SmallInt(b)) => a.extend_from_slice(b),
            (Values::Int(a), Values::Int(b)) => a.extend_from_slice(b),
            (Values::BigInt(a), Values::BigInt(b)) => a.extend_from_slice(b),
            (Values::Real(a), Values::Real(b)) => a.extend_from_slice(b),
            (Values::Double(a), Values::Double(b)) => a.extend_from_slice(b),
            (Values::Timestamp(a), Values::Timestamp(b)) => a.extend_from_slice(b),
            (Values::Date(a), Values::Date(b)) => a.extend_from_slice(b),
            (Values::Uuid(a), Values::Uuid(b)) => a.extend_from_slice(b),
            (Values::Decimal(a), Values::Decimal(b)) => a.extend_from_slice(b),
            (Values::Varchar(a), Values::Varchar(b))
            | (Values::Symbol(a), Values::Symbol(b))
            | (Values::Binary(a), Values::Binary(b)) => a.extend(b),
            (a, b) => {
                return Err(format!(
                    "cannot append {} values to {}",
                    b.column_type(),
                    a.column_type()
                ));
            }
        }
        Ok(())
    }
}

/// A column of values with its NULLs (`nulls[i] == true` means row `i` is NULL;
/// `None` means no NULLs).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub values: Values,
    pub nulls: Option<Vec<bool>>,
}

impl Column {
    pub fn new(values: Values) -> Self {
        Column {
            values,
            nulls: None,
        }
    }

    pub fn with_nulls(values: Values, nulls: Vec<bool>) -> Self {
        let nulls = if nulls.iter().any(|&n| n) {
            Some(nulls)
        } else {
            None
        };
        Column { values, nulls }
    }

    /// A column of `n` NULLs of type `t`.
    pub fn all_null(t: ColumnType, n: usize) -> Self {
        Column {
            values: Values::zeros(t, n),
            nulls: if n > 0 { Some(vec![true; n]) } else { None },
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_null(&self, i: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n[i])
    }

    pub fn null_count(&self) -> usize {
        self.nulls
            .as_ref()
            .map_or(0, |n| n.iter().filter(|&&b| b).count())
    }

    /// The rows at `idx`, in that order.
    pub fn take(&self, idx: &[u32]) -> Column {
        Column {
            values: self.values.take(idx),
            nulls: self
                .nulls
                .as_ref()
                .map(|n| idx.iter().map(|&i| n[i as usize]).collect::<Vec<_>>())
                .filter(|n| n.iter().any(|&b| b)),
        }
    }

    /// Appends `other`'s rows.
    pub fn extend(&mut self, other: &Column) -> Result<()> {
        let before = self.len();
        self.values
            .extend(&other.values)
            .map_err(StorageError::InvalidData)?;
        match (&mut self.nulls, &other.nulls) {
            (None, None) => {}
            (Some(a), None) => a.extend(std::iter::repeat_n(false, other.len())),
            (a, Some(b)) => {
                let n = a.get_or_insert_with(|| vec![false; before]);
                n.extend_from_slice(b);
            }
        }
        Ok(())
    }

    /// Appends rows `rows` of `other` (of the same type).
    pub fn extend_range(&mut self, other: &Column, rows: std::ops::Range<usize>) -> Result<()> {
        let before = self.len();
        let n = rows.len();
        self.values
            .extend_range(&other.values, rows.clone())
            .map_err(StorageError::InvalidData)?;
        match (&mut self.nulls, &other.nulls) {
            (None, None) => {}
            (Some(a), None) => a.extend(std::iter::repeat_n(false, n)),
            (a, Some(b)) => {
                if a.is_some() || b[rows.clone()].iter().any(|&x| x) {
                    let flags = a.get_or_insert_with(|| vec![false; before]);
                    flags.extend_from_slice(&b[rows]);
                }
            }
        }
        Ok(())
    }

    /// An empty column of the same type as `self`.
    pub fn empty_like(&self) -> Column {
        Column::new(Values::zeros(self.values.column_type(), 0))
    }

    /// Bytes of memory the column takes.
    pub fn byte_size(&self) -> usize {
        self.values.byte_size() + self.nulls.as_ref().map_or(0, |n| n.len())
    }

    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if let Some(n) = &self.nulls
            && n.len() != self.values.len()
        {
            return Err(format!(
                "{} null flags for {} values",
                n.len(),
                self.values.len()
            ));
        }
        match &self.values {
            Values::Varchar(v) | Values::Symbol(v) => {
                v.check()?;
                for i in 0..v.len() {
                    if std::str::from_utf8(v.get(i)).is_err() {
                        return Err(format!("row {i} is not valid UTF-8"));
                    }
                }
                Ok(())
            }
            Values::Binary(v) => v.check(),
            _ => Ok(()),
        }
    }
}

/// Rows for one table, one [`Column`] per named column. Columns the table has
/// but the batch does not name are NULL.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub columns: Vec<(String, Column)>,
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }

    pub fn with(mut self, name: impl Into<String>, column: Column) -> Self {
        self.columns.push((name.into(), column));
        self
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }
}

/// Convenience constructors used by tests and simple callers.
impl Column {
    pub fn timestamps(v: Vec<i64>) -> Column {
        Column::new(Values::Timestamp(v))
    }
    pub fn doubles(v: Vec<f64>) -> Column {
        Column::new(Values::Double(v))
    }
    pub fn bigints(v: Vec<i64>) -> Column {
        Column::new(Values::BigInt(v))
    }
    pub fn symbols<S: AsRef<str>>(v: &[S]) -> Column {
        Column::new(Values::Symbol(VarData::from_slices(
            v.iter().map(|s| s.as_ref().as_bytes()),
        )))
    }
    pub fn varchars<S: AsRef<str>>(v: &[S]) -> Column {
        Column::new(Values::Varchar(VarData::from_slices(
            v.iter().map(|s| s.as_ref().as_bytes()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_and_extend_keep_nulls_aligned() {
        let mut a = Column::with_nulls(
            Values::Double(vec![1.0, 0.0, f64::NAN]),
            vec![false, true, false],
        );
        let b = Column::new(Values::Double(vec![4.0]));
        a.extend(&b).expect("same type");
        assert_eq!(a.len(), 4);
        assert!(a.is_null(1) && !a.is_null(2) && !a.is_null(3));
        let t = a.take(&[3, 1, 2]);
        assert!(!t.is_null(0) && t.is_null(1));
        match t.values {
            Values::Double(v) => assert!(v[2].is_nan()),
            _ => unreachable!(),
        }
        let mut c = Column::new(Values::Int(vec![1]));
        assert!(c.extend(&b).is_err());
    }

    #[test]
    fn extend_range_copies_values_and_nulls() {
        let src = Column::with_nulls(
            Values::Varchar(VarData::from_slices([&b"ab"[..], b"", b"cde", b"f"])),
            vec![false, true, false, false],
        );
        let mut out = src.empty_like();
        out.extend_range(&src, 2..4).expect("same type");
        assert_eq!(out, Column::varchars(&["cde", "f"]));
        out.extend_range(&src, 0..2).expect("same type");
        assert_eq!(out.len(), 4);
        assert!(out.is_null(3) && !out.is_null(2));
        let Values::Varchar(v) = &out.values else {
            panic!("varchar")
        };
        assert_eq!(v.get(2), b"ab");
        assert!(v.check().is_ok());
    }

    #[test]
    fn var_data_checks_offsets_and_utf8() {
        let bad = Column::new(Values::Varchar(VarData {
            offsets: vec![0, 2],
            bytes: vec![0xff, 0xfe],
        }));
        assert!(bad.check().is_err());
        let bad = Column::new(Values::Binary(VarData {
            offsets: vec![0, 5],
            bytes: vec![1],
        }));
        assert!(bad.check().is_err());
        let ok = Column::varchars(&["a", "ünï"]);
        assert!(ok.check().is_ok());
    }
}
