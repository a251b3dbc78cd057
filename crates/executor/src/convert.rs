//! Storage columns to Arrow arrays (zero-copy where the bytes allow it) and
//! Arrow arrays to storage columns (for INSERT).

use std::ops::Range;
use std::ptr::NonNull;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, DictionaryArray, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, PrimitiveArray, StringArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use datafusion::arrow::array::{AsArray, Decimal128Array};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::{CastOptions, can_cast_types, cast_with_options, filter};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Float64Type, Int32Type,
};
use tidemark_storage::{
    Column, ColumnChunk, ColumnType, Mapped, Piece, RowSource, TableReader, Values, VarData,
};

use crate::error::{ExecError, Result, sqlstate};
use crate::numeric::{self, NumericError};
use crate::types::{arrow_type, pg_name};

/// The dictionary of SYMBOL column `name` as the snapshot sees it (the values of
/// the column's dictionary arrays; built once per scan, not per batch).
pub(crate) fn symbol_values(reader: &TableReader, name: &str) -> Result<ArrayRef> {
    let (dict, _) = reader.symbol_dictionary(name)?;
    Ok(Arc::new(StringArray::from_iter_values(
        dict.iter().map(|s| s.as_ref()),
    )))
}

/// Rows `rows` of column `name` of part `part`, as an Arrow array. For a SYMBOL
/// column, `dictionary` is its `symbol_values`.
pub(crate) fn read_array(
    reader: &TableReader,
    part: usize,
    name: &str,
    rows: Range<usize>,
    dictionary: Option<&ArrayRef>,
) -> Result<ArrayRef> {
    let chunk = reader.column_chunk(part, name)?;
    let t = chunk.column_type;
    if t == ColumnType::Symbol {
        let piece = Piece {
            source: RowSource::Part(part),
            rows,
        };
        let values = match dictionary {
            Some(d) => d.clone(),
            None => symbol_values(reader, name)?,
        };
        return symbol_array(symbol_keys(reader, &piece, name)?, values, name);
    }
    let zero_copy = rows.start >= chunk.top
        && matches!(
            t,
            ColumnType::SmallInt
                | ColumnType::Int
                | ColumnType::BigInt
                | ColumnType::Real
                | ColumnType::Double
                | ColumnType::Timestamp
                | ColumnType::TimestampTz
                | ColumnType::TimestampNs
                | ColumnType::Date
                | ColumnType::Decimal { .. }
        );
    if !zero_copy {
        let col = reader.read_column(part, name, rows)?;
        return column_to_array(&col, t);
    }
    let stored = (rows.start - chunk.top)..(rows.end - chunk.top);
    Ok(match t {
        ColumnType::SmallInt => Arc::new(
            mapped_primitive::<datafusion::arrow::datatypes::Int16Type>(&chunk, &stored),
        ),
        ColumnType::Int => Arc::new(mapped_primitive::<datafusion::arrow::datatypes::Int32Type>(
            &chunk, &stored,
        )),
        ColumnType::BigInt => Arc::new(
            mapped_primitive::<datafusion::arrow::datatypes::Int64Type>(&chunk, &stored),
        ),
        ColumnType::Real => {
            Arc::new(mapped_primitive::<datafusion::arrow::datatypes::Float32Type>(&chunk, &stored))
        }
        ColumnType::Double => {
            Arc::new(mapped_primitive::<datafusion::arrow::datatypes::Float64Type>(&chunk, &stored))
        }
        ColumnType::Timestamp => Arc::new(mapped_primitive::<
            datafusion::arrow::datatypes::TimestampMicrosecondType,
        >(&chunk, &stored)),
        ColumnType::TimestampTz => Arc::new(
            mapped_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>(
                &chunk, &stored,
            )
            .with_timezone(crate::types::UTC_OFFSET),
        ),
        ColumnType::TimestampNs => Arc::new(mapped_primitive::<
            datafusion::arrow::datatypes::TimestampNanosecondType,
        >(&chunk, &stored)),
        ColumnType::Date => {
            Arc::new(mapped_primitive::<datafusion::arrow::datatypes::Date32Type>(&chunk, &stored))
        }
        ColumnType::Decimal { .. } => Arc::new(
            mapped_primitive::<Decimal128Type>(&chunk, &stored).with_data_type(arrow_type(t)),
        ),
        _ => column_to_array(&reader.read_column(part, name, rows)?, t)?,
    })
}

/// The SYMBOL keys of the rows of `piece` (-1 for NULL): the mapped key file
/// itself for rows of a part, a copy for buffered rows and for rows stored
/// before the column existed (NULL, not stored).
pub(crate) fn symbol_keys(
    reader: &TableReader,
    piece: &Piece,
    name: &str,
) -> Result<ScalarBuffer<i32>> {
    let rows = piece.rows.clone();
    match piece.source {
        RowSource::Part(part) => {
            let chunk = reader.column_chunk(part, name)?;
            let first = rows.start.max(chunk.top).min(rows.end);
            let stored = first.saturating_sub(chunk.top)..rows.end.saturating_sub(chunk.top);
            let nulls_before = first - rows.start;
            if stored.is_empty() {
                return Ok(vec![-1; nulls_before].into());
            }
            let bytes = stored.start * 4..stored.end * 4;
            if chunk.data.as_slice().len() < bytes.end {
                return Err(ExecError::new(
                    sqlstate::DATA_CORRUPTED,
                    format!(
                        "column \"{name}\" of table {}: the SYMBOL key file is shorter than its {} rows",
                        reader.name(),
                        chunk.rows
                    ),
                ));
            }
            let keys = ScalarBuffer::<i32>::new(mapped_buffer(&chunk.data, bytes), 0, stored.len());
            if nulls_before == 0 {
                return Ok(keys);
            }
            let mut all = vec![-1; nulls_before];
            all.extend_from_slice(&keys);
            Ok(all.into())
        }
        RowSource::Run(run) => {
            let raw = reader.run_column_raw(run, name, rows)?;
            let Values::Int(keys) = &raw.values else {
                return Err(ExecError::new(
                    sqlstate::INTERNAL_ERROR,
                    format!("buffered SYMBOL column \"{name}\" holds no keys"),
                ));
            };
            Ok(keys
                .iter()
                .enumerate()
                .map(|(i, &k)| if raw.is_null(i) { -1 } else { k })
                .collect::<Vec<i32>>()
                .into())
        }
    }
}

/// Stored SYMBOL keys (-1 is NULL) as a dictionary array over `values`. One
/// pass finds the smallest and largest key: it says whether a null bitmap is
/// needed at all and proves every key lies in the dictionary, so Arrow's own
/// key-by-key validation (a second pass over every row) is skipped.
fn symbol_array(keys: ScalarBuffer<i32>, values: ArrayRef, name: &str) -> Result<ArrayRef> {
    let (lowest, highest) = keys
        .iter()
        .fold((0i32, -1i32), |(lo, hi), &k| (lo.min(k), hi.max(k)));
    let in_dictionary = usize::try_from(highest).map_or(true, |h| h < values.len());
    if lowest < -1 || !in_dictionary {
        let key = if lowest < -1 { lowest } else { highest };
        return Err(ExecError::new(
            sqlstate::DATA_CORRUPTED,
            format!(
                "column \"{name}\": stored SYMBOL key {key} is outside its dictionary of {} values",
                values.len()
            ),
        ));
    }
    let nulls = (lowest < 0).then(|| NullBuffer::from_iter(keys.iter().map(|&k| k >= 0)));
    let keys = PrimitiveArray::<Int32Type>::new(keys, nulls);
    // SAFETY: every key is -1 (a NULL slot) or in 0..values.len(), checked
    // above, which is all `DictionaryArray::try_new` verifies.
    Ok(Arc::new(unsafe {
        DictionaryArray::<Int32Type>::new_unchecked(keys, values)
    }))
}

/// Rows `rows` of column `name` of buffered run `run`, as an Arrow array of the
/// column's scan type. For a SYMBOL column, `dictionary` is its `symbol_values`.
pub(crate) fn read_run_array(
    reader: &TableReader,
    run: usize,
    name: &str,
    rows: Range<usize>,
    dictionary: Option<&ArrayRef>,
) -> Result<ArrayRef> {
    let t = reader
        .meta()
        .column_index(name)
        .map(|i| reader.meta().columns[i].column_type)
        .ok_or_else(|| {
            ExecError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{name}\" does not exist"),
            )
        })?;
    if t != ColumnType::Symbol {
        return column_to_array(&reader.run_column_raw(run, name, rows)?, t);
    }
    let values = match dictionary {
        Some(d) => d.clone(),
        None => symbol_values(reader, name)?,
    };
    let piece = Piece {
        source: RowSource::Run(run),
        rows,
    };
    symbol_array(symbol_keys(reader, &piece, name)?, values, name)
}

/// Rows of column `name` of one scan piece, as an Arrow array.
pub(crate) fn read_piece_array(
    reader: &TableReader,
    piece: &Piece,
    name: &str,
    dictionary: Option<&ArrayRef>,
) -> Result<ArrayRef> {
    match piece.source {
        RowSource::Part(p) => read_array(reader, p, name, piece.rows.clone(), dictionary),
        RowSource::Run(r) => read_run_array(reader, r, name, piece.rows.clone(), dictionary),
    }
}

/// The rows of column `name` of one scan piece that `kept` marks (one flag per
/// row of the piece). A SYMBOL column's keys are filtered before its
/// dictionary array is built, so rows not kept are never checked or copied.
pub(crate) fn read_piece_rows(
    reader: &TableReader,
    piece: &Piece,
    name: &str,
    dictionary: Option<&ArrayRef>,
    kept: &BooleanBuffer,
) -> Result<ArrayRef> {
    let kept = BooleanArray::new(kept.clone(), None);
    match dictionary {
        Some(values) => {
            let keys = Int32Array::new(symbol_keys(reader, piece, name)?, None);
            let keys = filter(&keys, &kept)?;
            symbol_array(
                keys.as_primitive::<Int32Type>().values().clone(),
                values.clone(),
                name,
            )
        }
        None => Ok(filter(
            &read_piece_array(reader, piece, name, None)?,
            &kept,
        )?),
    }
}

/// A primitive array whose values buffer is the mapped column file itself.
fn mapped_primitive<T: ArrowPrimitiveType>(
    chunk: &ColumnChunk,
    stored: &Range<usize>,
) -> PrimitiveArray<T> {
    let w = std::mem::size_of::<T::Native>();
    let values = ScalarBuffer::<T::Native>::new(
        mapped_buffer(&chunk.data, stored.start * w..stored.end * w),
        0,
        stored.len(),
    );
    // The null file covers stored rows up to its last NULL; rows past it are values.
    let nulls = chunk
        .aux
        .as_ref()
        .filter(|m| m.len() > stored.start)
        .map(|m| {
            let flags = m.as_slice();
            NullBuffer::from_iter(stored.clone().map(|i| flags.get(i).is_none_or(|&b| b == 0)))
        });
    PrimitiveArray::<T>::new(values, nulls.filter(|n| n.null_count() > 0))
}

fn mapped_buffer(m: &Mapped, bytes: Range<usize>) -> Buffer {
    match m.mmap() {
        Some(map) if !bytes.is_empty() => {
            let base = map.as_ptr();
            // SAFETY: `bytes` lies within the committed prefix of the mapping (the
            // caller derives it from the partition's committed row count), the
            // mapping stays alive as long as the buffer holds the `Arc`, and the
            // committed bytes of a Tidemark file are never modified.
            unsafe {
                let ptr = NonNull::new_unchecked(base.add(bytes.start) as *mut u8);
                Buffer::from_custom_allocation(ptr, bytes.len(), map.clone())
            }
        }
        _ => Buffer::from(Vec::<u8>::new()),
    }
}

/// A decoded storage column (SYMBOL as text) as an Arrow array of the column's scan type.
pub(crate) fn column_to_array(col: &Column, t: ColumnType) -> Result<ArrayRef> {
    let n = col.len();
    let valid = |i: usize| !col.is_null(i);
    Ok(match (&col.values, t) {
        (Values::Boolean(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<BooleanArray>(),
        ),
        (Values::SmallInt(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<Int16Array>(),
        ),
        (Values::Int(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<Int32Array>(),
        ),
        (Values::BigInt(v), ColumnType::TimestampNs) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<TimestampNanosecondArray>(),
        ),
        (Values::BigInt(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<Int64Array>(),
        ),
        (Values::Real(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<Float32Array>(),
        ),
        (Values::Double(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<Float64Array>(),
        ),
        (Values::Timestamp(v), ColumnType::TimestampTz) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone(crate::types::UTC_OFFSET),
        ),
        (Values::Timestamp(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<TimestampMicrosecondArray>(),
        ),
        (Values::Date(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<Date32Array>(),
        ),
        (Values::Uuid(v), _) => Arc::new(FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            (0..n).map(|i| valid(i).then(|| v[i].to_be_bytes())),
            16,
        )?),
        (Values::Binary(v), ColumnType::DoubleArray { dims }) => {
            crate::double_array::array_from_stored(v, valid, dims)?
        }
        (Values::Binary(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then(|| v.get(i)))
                .collect::<BinaryArray>(),
        ),
        (Values::Decimal(v), t) => Arc::new(
            (0..n)
                .map(|i| valid(i).then_some(v[i]))
                .collect::<Decimal128Array>()
                .with_data_type(arrow_type(t)),
        ),
        (Values::Varchar(v) | Values::Symbol(v), ColumnType::Symbol) => {
            let strings: StringArray = (0..n)
                .map(|i| valid(i).then(|| std::str::from_utf8(v.get(i)).unwrap_or_default()))
                .collect();
            Arc::new(datafusion::arrow::compute::cast(
                &strings,
                &arrow_type(ColumnType::Symbol),
            )?)
        }
        (Values::Varchar(v) | Values::Symbol(v), _) => Arc::new(
            (0..n)
                .map(|i| valid(i).then(|| std::str::from_utf8(v.get(i)).unwrap_or_default()))
                .collect::<StringArray>(),
        ),
    })
}

/// A string array's values as storage text: one copy of the bytes, offsets
/// rebased (NULL entries hold whatever bytes the array has for them: none).
fn var_data(a: &StringArray) -> VarData {
    let offsets = a.value_offsets();
    let base = offsets.first().copied().unwrap_or(0);
    let end = offsets.last().copied().unwrap_or(0);
    VarData {
        offsets: offsets.iter().map(|o| (o - base) as u64).collect(),
        bytes: a.values()[base as usize..end as usize].to_vec(),
    }
}

/// `YYYY-MM-DD[T| ]HH:MM:SS[.f]` with up to 6 fractional digits, as UTC
/// microseconds; `None` for anything else (the general parser decides then).
pub(crate) fn iso_timestamp_micros(s: &str) -> Option<i64> {
    let (seconds, nanos, digits) = iso_timestamp(s)?;
    (digits <= 6).then(|| seconds * 1_000_000 + nanos / 1_000)
}

/// As [`iso_timestamp_micros`] with up to 9 fractional digits, as UTC
/// nanoseconds (`None` also outside TIMESTAMP_NS's range, years 1677..=2262).
pub(crate) fn iso_timestamp_nanos(s: &str) -> Option<i64> {
    let (seconds, nanos, _) = iso_timestamp(s)?;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Seconds since the epoch, the fraction in nanoseconds and its digit count of
/// `YYYY-MM-DD[T| ]HH:MM:SS[.f]` (1..=9 fractional digits).
fn iso_timestamp(s: &str) -> Option<(i64, i64, usize)> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b' ' && b[10] != b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let month_days = [
        31,
        if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
            29
        } else {
            28
        },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m)
        || d == 0
        || d > month_days[m as usize - 1]
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    let mut nanos = 0i64;
    let mut digits = 0;
    if b.len() > 19 {
        let frac = &b[20..];
        if b[19] != b'.'
            || frac.is_empty()
            || frac.len() > 9
            || !frac.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        for (i, c) in frac.iter().enumerate() {
            nanos += (c - b'0') as i64 * 10i64.pow(8 - i as u32);
        }
        digits = frac.len();
    }
    let days = tidemark_storage::types::days_from_civil(y as i64, m, d);
    Some((
        days * 86_400 + hh as i64 * 3600 + mm as i64 * 60 + ss as i64,
        nanos,
        digits,
    ))
}

/// Converts `array` (any Arrow type) into a storage column of type `t` for column
/// `name`, casting as PostgreSQL's assignment rules would: text parses into
/// numbers, timestamps, dates and UUIDs; numbers must fit.
pub(crate) fn array_to_column(array: &ArrayRef, t: ColumnType, name: &str) -> Result<Column> {
    let column = convert_array(array, t, name)?;
    if matches!(t, ColumnType::Json | ColumnType::Jsonb) {
        crate::json::check_column(&column, t, name)?;
    }
    Ok(column)
}

/// [`array_to_column`] without the check of JSON documents.
fn convert_array(array: &ArrayRef, t: ColumnType, name: &str) -> Result<Column> {
    let target = match t {
        ColumnType::Symbol => DataType::Utf8,
        other => arrow_type(other),
    };
    let source = array.data_type();
    if let ColumnType::Decimal { precision, scale } = t {
        return decimal_from_array(array, precision, scale, name);
    }
    if let ColumnType::DoubleArray { dims } = t {
        return crate::double_array::column_from_array(array, dims, name);
    }
    if t == ColumnType::Binary
        && matches!(
            source,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    {
        return bytea_from_text(array, name);
    }
    if t == ColumnType::Uuid
        && matches!(
            source,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    {
        return uuid_from_text(array, name);
    }
    let mismatch = || {
        ExecError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!(
                "column \"{name}\" is of type {} but expression is of type {source}",
                pg_name(t)
            ),
        )
    };
    // Booleans and numbers do not become timestamps, nor text become booleans
    // implicitly in PostgreSQL; arrow would allow some of these, so refuse them here.
    let allowed = match (source, t) {
        (DataType::Null, _) => true,
        (DataType::Boolean, ColumnType::Boolean) => true,
        (DataType::Boolean, _) | (_, ColumnType::Boolean) => matches!(
            source,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        ),
        (
            s,
            ColumnType::Timestamp
            | ColumnType::TimestampTz
            | ColumnType::TimestampNs
            | ColumnType::Date,
        ) => !s.is_floating(),
        _ => can_cast_types(source, &target),
    };
    if !allowed || !can_cast_types(source, &target) {
        return Err(mismatch());
    }
    // Text the common way round goes straight to storage values: timestamps in
    // ISO form (what COPY and text parameters carry) and strings themselves.
    // Timestamps in other forms take the general cast, minutes-only ones
    // completed with seconds first (which Arrow's parser needs).
    let mut completed: Option<ArrayRef> = None;
    if let Some(strings) = array.as_any().downcast_ref::<StringArray>() {
        let nulls = || (0..strings.len()).map(|i| strings.is_null(i)).collect();
        match t {
            ColumnType::Timestamp | ColumnType::TimestampTz => {
                if let Some(v) = (0..strings.len())
                    .map(|i| {
                        if strings.is_null(i) {
                            Some(0)
                        } else {
                            let text = strings.value(i);
                            iso_timestamp_micros(text).or_else(|| {
                                crate::timestamp_text::completed(text)
                                    .and_then(|t| iso_timestamp_micros(&t))
                            })
                        }
                    })
                    .collect::<Option<Vec<i64>>>()
                {
                    return Ok(Column::with_nulls(Values::Timestamp(v), nulls()));
                }
                completed = Some(Arc::new(
                    strings
                        .iter()
                        .map(|text| {
                            text.map(|text| {
                                crate::timestamp_text::completed(text)
                                    .unwrap_or_else(|| text.to_string())
                            })
                        })
                        .collect::<StringArray>(),
                ));
            }
            ColumnType::TimestampNs => {
                if let Some(v) = (0..strings.len())
                    .map(|i| {
                        if strings.is_null(i) {
                            Some(0)
                        } else {
                            iso_timestamp_nanos(strings.value(i))
                        }
                    })
                    .collect::<Option<Vec<i64>>>()
                {
                    return Ok(Column::with_nulls(Values::BigInt(v), nulls()));
                }
            }
            ColumnType::Varchar | ColumnType::Json | ColumnType::Jsonb => {
                return Ok(Column::with_nulls(
                    Values::Varchar(var_data(strings)),
                    nulls(),
                ));
            }
            ColumnType::Symbol => {
                return Ok(Column::with_nulls(
                    Values::Symbol(var_data(strings)),
                    nulls(),
                ));
            }
            _ => {}
        }
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let array = completed.as_ref().unwrap_or(array);
    let cast = cast_with_options(array, &target, &options).map_err(|e| {
        let mut err = ExecError::from(e);
        err.message = format!("column \"{name}\" ({}): {}", pg_name(t), err.message);
        err
    })?;
    let n = cast.len();
    let nulls: Vec<bool> = (0..n).map(|i| cast.is_null(i)).collect();
    macro_rules! prim {
        ($arr:ty, $variant:ident) => {{
            let a = cast.as_any().downcast_ref::<$arr>().ok_or_else(|| {
                ExecError::new(
                    sqlstate::INTERNAL_ERROR,
                    "cast produced an unexpected array",
                )
            })?;
            Values::$variant(a.values().to_vec())
        }};
    }
    let values = match t {
        ColumnType::Decimal { .. } | ColumnType::DoubleArray { .. } => {
            return Err(ExecError::new(
                sqlstate::INTERNAL_ERROR,
                "DECIMAL and DOUBLE[] columns convert before the cast",
            ));
        }
        ColumnType::Boolean => {
            let a = cast
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| {
                    ExecError::new(
                        sqlstate::INTERNAL_ERROR,
                        "cast produced an unexpected array",
                    )
                })?;
            Values::Boolean((0..n).map(|i| a.value(i)).collect())
        }
        ColumnType::SmallInt => prim!(Int16Array, SmallInt),
        ColumnType::Int => prim!(Int32Array, Int),
        ColumnType::BigInt => prim!(Int64Array, BigInt),
        ColumnType::Real => prim!(Float32Array, Real),
        ColumnType::Double => prim!(Float64Array, Double),
        ColumnType::Timestamp | ColumnType::TimestampTz => {
            prim!(TimestampMicrosecondArray, Timestamp)
        }
        ColumnType::TimestampNs => prim!(TimestampNanosecondArray, BigInt),
        ColumnType::Date => prim!(Date32Array, Date),
        ColumnType::Varchar | ColumnType::Json | ColumnType::Jsonb | ColumnType::Symbol => {
            let a = cast.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                ExecError::new(
                    sqlstate::INTERNAL_ERROR,
                    "cast produced an unexpected array",
                )
            })?;
            let v = VarData::from_slices((0..n).map(|i| {
                if a.is_null(i) {
                    &b""[..]
                } else {
                    a.value(i).as_bytes()
                }
            }));
            if t == ColumnType::Symbol {
                Values::Symbol(v)
            } else {
                Values::Varchar(v)
            }
        }
        ColumnType::Binary => {
            let a = cast.as_any().downcast_ref::<BinaryArray>().ok_or_else(|| {
                ExecError::new(
                    sqlstate::INTERNAL_ERROR,
                    "cast produced an unexpected array",
                )
            })?;
            Values::Binary(VarData::from_slices(
                (0..n).map(|i| if a.is_null(i) { &b""[..] } else { a.value(i) }),
            ))
        }
        ColumnType::Uuid => {
            let a = cast
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .ok_or_else(|| {
                    ExecError::new(
                        sqlstate::INTERNAL_ERROR,
                        "cast produced an unexpected array",
                    )
                })?;
            Values::Uuid(
                (0..n)
                    .map(|i| {
                        if a.is_null(i) {
                            0
                        } else {
                            u128::from_be_bytes(a.value(i).try_into().unwrap_or([0; 16]))
                        }
                    })
                    .collect(),
            )
        }
    };
    Ok(Column::with_nulls(values, nulls))
}

/// The 22P02/22003 error for a value that cannot be a NUMERIC of column `name`.
pub(crate) fn numeric_error(e: NumericError, text: &str, name: &str) -> ExecError {
    match e {
        NumericError::Syntax => ExecError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type numeric: \"{text}\" (column \"{name}\")"),
        ),
        other => ExecError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("{other} (column \"{name}\")"),
        ),
    }
}

/// Any array as NUMERIC(precision, scale) values, as PostgreSQL assigns them:
/// decimals rescale, integers and text convert exactly, floats by their
/// shortest text (so `12.345::float8` is 12.35 at scale 2, as in PostgreSQL, not
/// the 12.34 its binary fraction would give); every value rounds half away from
/// zero and must fit the precision.
fn decimal_from_array(array: &ArrayRef, precision: u8, scale: u8, name: &str) -> Result<Column> {
    let n = array.len();
    let nulls: Vec<bool> = (0..n).map(|i| array.is_null(i)).collect();
    // Every non-NULL row through `convert`; NULL rows hold 0.
    let each = |convert: &dyn Fn(usize) -> Result<i128>| -> Result<Vec<i128>> {
        (0..n)
            .map(|i| if nulls[i] { Ok(0) } else { convert(i) })
            .collect()
    };
    let from_text = |text: &str| {
        numeric::parse(text, precision, scale).map_err(|e| numeric_error(e, text, name))
    };
    let values = match array.data_type() {
        DataType::Null => vec![0; n],
        DataType::Decimal128(_, from) => {
            let a = array.as_primitive::<Decimal128Type>();
            each(&|i| {
                let v = a.value(i);
                numeric::rescale(v, *from, precision, scale)
                    .map_err(|e| numeric_error(e, &numeric::to_text(v, (*from).max(0) as u8), name))
            })?
        }
        DataType::Float32 | DataType::Float64 => {
            let a = datafusion::arrow::compute::cast(array, &DataType::Float64)?;
            let a = a.as_primitive::<Float64Type>();
            each(&|i| from_text(&a.value(i).to_string()))?
        }
        source
            if source.is_integer()
                || matches!(
                    source,
                    DataType::Utf8
                        | DataType::LargeUtf8
                        | DataType::Utf8View
                        | DataType::Decimal256(..)
                )
                || matches!(source, DataType::Dictionary(_, v) if v.as_ref() == &DataType::Utf8) =>
        {
            let text = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            each(&|i| from_text(text.value(i)))?
        }
        source => {
            return Err(ExecError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("column \"{name}\" is of type numeric but expression is of type {source}"),
            ));
        }
    };
    Ok(Column::with_nulls(Values::Decimal(values), nulls))
}

/// PostgreSQL's bytea input: `\x` then hex digits, or the escape form where
/// `\\` is a backslash and `\ooo` an octal byte; anything else is the text's bytes.
fn bytea_from_text(array: &ArrayRef, name: &str) -> Result<Column> {
    let strings = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
    let a = strings
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| {
            ExecError::new(
                sqlstate::INTERNAL_ERROR,
                "cast produced an unexpected array",
            )
        })?;
    let bad = |s: &str| {
        ExecError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type bytea: \"{s}\" (column \"{name}\")"),
        )
    };
    let mut values: Vec<Vec<u8>> = Vec::with_capacity(a.len());
    let mut nulls = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        nulls.push(a.is_null(i));
        if a.is_null(i) {
            values.push(Vec::new());
            continue;
        }
        let s = a.value(i);
        let bytes = if let Some(hex) = s.strip_prefix("\\x") {
            let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            if !digits.len().is_multiple_of(2) {
                return Err(bad(s));
            }
            digits
                .chunks(2)
                .map(|p| {
                    std::str::from_utf8(p)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| bad(s))?
        } else {
            let raw = s.as_bytes();
            let mut out = Vec::with_capacity(raw.len());
            let mut k = 0;
            while k < raw.len() {
                if raw[k] != b'\\' {
                    out.push(raw[k]);
                    k += 1;
                } else if raw.get(k + 1) == Some(&b'\\') {
                    out.push(b'\\');
                    k += 2;
                } else {
                    let octal = raw
                        .get(k + 1..k + 4)
                        .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
                    let v = octal
                        .and_then(|d| std::str::from_utf8(d).ok())
                        .and_then(|d| u8::from_str_radix(d, 8).ok())
                        .ok_or_else(|| bad(s))?;
                    out.push(v);
                    k += 4;
                }
            }
            out
        };
        values.push(bytes);
    }
    let values = Values::Binary(VarData::from_slices(values.iter().map(|v| v.as_slice())));
    Ok(Column::with_nulls(values, nulls))
}

/// A UUID as PostgreSQL reads it: 32 hex digits, hyphens anywhere between
/// groups of four, optionally in braces.
pub(crate) fn parse_uuid(s: &str) -> Option<u128> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(s);
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(&hex, 16).ok())
        .flatten()
}

fn uuid_from_text(array: &ArrayRef, name: &str) -> Result<Column> {
    let strings = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
    let a = strings
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| {
            ExecError::new(
                sqlstate::INTERNAL_ERROR,
                "cast produced an unexpected array",
            )
        })?;
    let mut values = Vec::with_capacity(a.len());
    let mut nulls = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        if a.is_null(i) {
            values.push(0);
            nulls.push(true);
            continue;
        }
        let s = a.value(i);
        let v = parse_uuid(s).ok_or_else(|| {
            ExecError::new(
                sqlstate::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type uuid: \"{s}\" (column \"{name}\")"),
            )
        })?;
        values.push(v);
        nulls.push(false);
    }
    Ok(Column::with_nulls(Values::Uuid(values), nulls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_symbol_keys_become_a_dictionary_and_bad_keys_an_error() {
        let values: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        let array = symbol_array(ScalarBuffer::from(vec![1, -1, 0]), values.clone(), "s")
            .expect("valid keys");
        let text =
            cast_with_options(&array, &DataType::Utf8, &CastOptions::default()).expect("cast");
        let text = text.as_string::<i32>();
        assert_eq!(
            (0..3)
                .map(|i| text.is_valid(i).then(|| text.value(i)))
                .collect::<Vec<_>>(),
            vec![Some("b"), None, Some("a")]
        );
        assert_eq!(array.null_count(), 1);
        let no_nulls =
            symbol_array(ScalarBuffer::from(vec![0, 1]), values.clone(), "s").expect("valid keys");
        assert!(no_nulls.nulls().is_none());
        for bad in [vec![0, 2], vec![-2, 0]] {
            let e = symbol_array(ScalarBuffer::from(bad), values.clone(), "s")
                .expect_err("a key outside the dictionary is corruption");
            assert_eq!(e.sqlstate, sqlstate::DATA_CORRUPTED, "{e}");
        }
    }

    #[test]
    fn iso_timestamps_parse_as_the_general_parser_does() {
        for s in [
            "2026-11-21 10:00:00",
            "2026-11-21T10:00:00.5",
            "2000-02-29 23:59:59.999999",
            "1969-12-31 23:59:59.000001",
            "1970-01-01 00:00:00",
        ] {
            let general = cast_with_options(
                &(Arc::new(StringArray::from(vec![s])) as ArrayRef),
                &arrow_type(ColumnType::Timestamp),
                &CastOptions::default(),
            )
            .expect("cast");
            let general = general
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .expect("µs")
                .value(0);
            assert_eq!(iso_timestamp_micros(s), Some(general), "{s}");
        }
        for s in [
            "2026-02-29 10:00:00",
            "2026-11-21",
            "2026-11-21 24:00:00",
            "2026-11-21 10:00:00Z",
            "2026-11-21 10:00:00.1234567",
            "2026-11-21 10:00:00.",
            "20261121 10:00:00",
        ] {
            assert_eq!(iso_timestamp_micros(s), None, "{s}");
        }
    }

    #[test]
    fn strings_become_storage_text_in_one_copy() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("ab"), None, Some("ü")]));
        let sliced = a.slice(1, 2);
        let c = array_to_column(&sliced, ColumnType::Varchar, "c").expect("text");
        assert_eq!(c.len(), 2);
        assert!(c.is_null(0) && !c.is_null(1));
        let Values::Varchar(v) = &c.values else {
            panic!("varchar")
        };
        assert_eq!(v.get(1), "ü".as_bytes());
    }
}
