//! PostgreSQL types on the wire: the type OID each Arrow result type is sent
//! as, result values in text or binary format, and bound parameter values
//! decoded from text or binary by their type.

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldFormat;
use pgwire::messages::data::DataRow;
use tidemark_executor::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, FixedSizeBinaryArray,
    StringArray,
};
use tidemark_executor::arrow::datatypes::Decimal128Type;
use tidemark_executor::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use tidemark_executor::error::sqlstate;
use tidemark_executor::numeric;
use tidemark_executor::text::{TextColumn, format_value, list_value};
use tidemark_executor::types::innermost_element;
use tidemark_executor::{ExecError, ParamValue};

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's binary epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// The PostgreSQL type a result column of this Arrow type is sent as.
pub(crate) fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        // DataFusion's counts (`array_length`, `row_number()`) are UInt64.
        DataType::Int64 | DataType::UInt64 => Type::INT8,
        // PostgreSQL's unsigned 32-bit number is the object identifier.
        DataType::UInt32 => Type::OID,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::FixedSizeBinary(16) => Type::UUID,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Decimal128(..) => Type::NUMERIC,
        // Intervals, and durations (the difference of two timestamps).
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            array_of(&pg_type(innermost_element(t)))
        }
        // Everything else (text, symbols, wider decimals) travels as its
        // PostgreSQL text form, in both formats.
        _ => Type::TEXT,
    }
}

/// Array types: each element type, its array type, and the SQL name array
/// parameters of that type are cast to (`CAST(ARRAY[...] AS BIGINT[])`).
const ARRAY_TYPES: &[(Type, Type, &str)] = &[
    (Type::BOOL, Type::BOOL_ARRAY, "BOOLEAN"),
    (Type::INT2, Type::INT2_ARRAY, "SMALLINT"),
    (Type::INT4, Type::INT4_ARRAY, "INT"),
    (Type::INT8, Type::INT8_ARRAY, "BIGINT"),
    (Type::FLOAT4, Type::FLOAT4_ARRAY, "REAL"),
    (Type::FLOAT8, Type::FLOAT8_ARRAY, "DOUBLE"),
    (Type::NUMERIC, Type::NUMERIC_ARRAY, "NUMERIC"),
    (Type::TEXT, Type::TEXT_ARRAY, "TEXT"),
    (Type::VARCHAR, Type::VARCHAR_ARRAY, "TEXT"),
    (Type::BPCHAR, Type::BPCHAR_ARRAY, "TEXT"),
    (Type::NAME, Type::NAME_ARRAY, "TEXT"),
    (Type::TIMESTAMP, Type::TIMESTAMP_ARRAY, "TIMESTAMP"),
    (Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY, "TIMESTAMP"),
    (Type::DATE, Type::DATE_ARRAY, "DATE"),
    (Type::UUID, Type::UUID_ARRAY, "UUID"),
    (Type::BYTEA, Type::BYTEA_ARRAY, "BYTEA"),
    (Type::OID, Type::OID_ARRAY, "BIGINT"),
];

/// The array type whose elements are `element` (a list of lists is the same
/// multi-dimensional array type as a list: PostgreSQL arrays carry their
/// dimensions in the value, not the type).
fn array_of(element: &Type) -> Type {
    ARRAY_TYPES
        .iter()
        .find(|(e, ..)| e == element)
        .map_or(Type::TEXT_ARRAY, |(_, array, _)| array.clone())
}

/// The element type and its SQL name when `t` is an array type parameters can have.
fn element_of(t: &Type) -> Option<(&'static Type, &'static str)> {
    ARRAY_TYPES
        .iter()
        .find(|(_, array, _)| array == t)
        .map(|(element, _, name)| (element, *name))
}

/// The PostgreSQL type a result column is sent as: its Arrow type's, unless
/// the executor marked it as another text type (`json`).
pub(crate) fn field_type(f: &tidemark_executor::arrow::datatypes::Field) -> Type {
    match f
        .metadata()
        .get(tidemark_executor::types::PG_TYPE_METADATA)
        .map(String::as_str)
    {
        Some("json") => Type::JSON,
        Some("jsonb") => Type::JSONB,
        _ => pg_type(f.data_type()),
    }
}

/// The parameter type reported for an inferred Arrow type (unknown: TEXT).
pub(crate) fn param_type(t: Option<&DataType>) -> Type {
    match t {
        None => Type::TEXT,
        Some(t) => pg_type(t),
    }
}

fn internal(what: &str) -> ExecError {
    ExecError::new(sqlstate::INTERNAL_ERROR, format!("cannot encode {what}"))
}

/// Appends one value in binary format; `false` when it is NULL.
fn put_binary(buf: &mut BytesMut, array: &ArrayRef, row: usize) -> Result<bool, ExecError> {
    // A NULL literal's array (type Null) has no validity bitmap: every row is NULL.
    if array.is_null(row) || array.data_type() == &DataType::Null {
        return Ok(false);
    }
    match array.data_type() {
        DataType::Boolean => {
            let a = array
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| internal("a boolean"))?;
            buf.put_u8(a.value(row) as u8);
        }
        DataType::Int8 => buf.put_i16(array.as_primitive::<Int8Type>().value(row) as i16),
        DataType::UInt8 => buf.put_i16(array.as_primitive::<UInt8Type>().value(row) as i16),
        DataType::Int16 => buf.put_i16(array.as_primitive::<Int16Type>().value(row)),
        DataType::UInt16 => buf.put_i32(array.as_primitive::<UInt16Type>().value(row) as i32),
        DataType::Int32 => buf.put_i32(array.as_primitive::<Int32Type>().value(row)),
        DataType::UInt32 => buf.put_u32(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            buf.put_i64(i64::try_from(v).map_err(|_| {
                ExecError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("value {v} is out of range for type bigint"),
                )
            })?)
        }
        DataType::Int64 => buf.put_i64(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => buf.put_f32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => buf.put_f64(array.as_primitive::<Float64Type>().value(row)),
        DataType::Timestamp(unit, _) => {
            // PostgreSQL's binary timestamp counts microseconds: TIMESTAMP_NS
            // values lose their last three digits here, as in the text format.
            let micros = tidemark_executor::text::timestamp_micros(array, *unit, row);
            buf.put_i64(micros - PG_EPOCH_MICROS);
        }
        DataType::Date32 => {
            let a = array
                .as_any()
                .downcast_ref::<Date32Array>()
                .ok_or_else(|| internal("a date"))?;
            buf.put_i32(a.value(row) - PG_EPOCH_DAYS);
        }
        DataType::FixedSizeBinary(16) => {
            let a = array
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .ok_or_else(|| internal("a uuid"))?;
            buf.put_slice(a.value(row));
        }
        DataType::Binary => {
            let a = array
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| internal("a bytea"))?;
            buf.put_slice(a.value(row));
        }
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            let mut out = Vec::with_capacity(16);
            numeric::encode_binary(v, (*scale).max(0) as u8, &mut out);
            buf.put_slice(&out);
        }
        DataType::Utf8 => {
            let a = array
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| internal("a text"))?;
            buf.put_slice(a.value(row).as_bytes());
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let elements = list_value(array.as_ref(), row).ok_or_else(|| internal("a list"))?;
            put_binary_array(buf, elements)?;
        }
        // PostgreSQL's binary interval: microseconds, days, months (nanoseconds
        // below a microsecond are dropped, as the text format keeps them).
        DataType::Interval(_) | DataType::Duration(_) => {
            let (months, days, nanos) = tidemark_executor::text::interval_parts(array, row)
                .ok_or_else(|| internal("an interval"))?;
            buf.put_i64(nanos / 1_000);
            buf.put_i32(days);
            buf.put_i32(months);
        }
        // Sent as TEXT: the binary form of text is its UTF-8 bytes.
        _ => match format_value(array, row)? {
            Some(s) => buf.put_slice(s.as_bytes()),
            None => return Ok(false),
        },
    }
    Ok(true)
}

/// A list in PostgreSQL's binary array format: the number of dimensions, whether any
/// element is NULL, the element type, each dimension's length and lower bound (1),
/// then every element (length-prefixed, -1 for NULL) in row-major order. A list of
/// lists must be rectangular, as PostgreSQL's arrays are.
fn put_binary_array(buf: &mut BytesMut, elements: ArrayRef) -> Result<(), ExecError> {
    let element_type = pg_type(innermost_element(elements.data_type()));
    let mut dims = Vec::new();
    let mut leaves = Vec::new();
    array_shape(elements, 0, &mut dims, &mut leaves)?;
    if dims.contains(&0) {
        // An empty array has no dimensions.
        buf.put_i32(0);
        buf.put_i32(0);
        buf.put_u32(element_type.oid());
        return Ok(());
    }
    let has_null = leaves.iter().any(|leaf| leaf.null_count() > 0);
    buf.put_i32(dims.len() as i32);
    buf.put_i32(has_null as i32);
    buf.put_u32(element_type.oid());
    for d in &dims {
        buf.put_i32(*d);
        buf.put_i32(1);
    }
    for leaf in &leaves {
        for i in 0..leaf.len() {
            let len_at = buf.len();
            buf.put_i32(-1);
            if put_binary(buf, leaf, i)? {
                let len = (buf.len() - len_at - 4) as i32;
                buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            } else {
                buf.truncate(len_at + 4);
            }
        }
    }
    Ok(())
}

/// Walks a (nested) list value: the length of each dimension into `dims` and the
/// innermost element arrays, in order, into `leaves`. Errors on sub-lists of unequal
/// length or NULL sub-lists, which a PostgreSQL array cannot hold.
fn array_shape(
    elements: ArrayRef,
    depth: usize,
    dims: &mut Vec<i32>,
    leaves: &mut Vec<ArrayRef>,
) -> Result<(), ExecError> {
    let len = i32::try_from(elements.len()).map_err(|_| internal("an array this long"))?;
    match dims.get(depth) {
        None => dims.push(len),
        Some(d) if *d == len => {}
        Some(_) => return Err(ragged_array()),
    }
    if !matches!(
        elements.data_type(),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    ) {
        leaves.push(elements);
        return Ok(());
    }
    for i in 0..elements.len() {
        match list_value(elements.as_ref(), i) {
            Some(inner) if !elements.is_null(i) => array_shape(inner, depth + 1, dims, leaves)?,
            _ => return Err(ragged_array()),
        }
    }
    Ok(())
}

fn ragged_array() -> ExecError {
    ExecError::new(
        sqlstate::ARRAY_SUBSCRIPT_ERROR,
        "multidimensional arrays must have sub-arrays with matching dimensions \
         (a list of lists of unequal lengths or with NULL lists has no binary array form; \
         request the column in text format)",
    )
}

/// Which result columns are `jsonb`: their binary form starts with a version byte.
pub(crate) fn jsonb_columns(schema: &tidemark_executor::arrow::datatypes::Schema) -> Vec<bool> {
    schema
        .fields()
        .iter()
        .map(|f| field_type(f) == Type::JSONB)
        .collect()
}

/// Encodes the rows of one batch as DataRow messages, each column in the
/// format the client asked for. Each column is taken apart once per batch (its
/// type is not matched again for every value), and the rows are written one
/// after another into a shared buffer: a row is a slice of it, not an
/// allocation of its own.
pub(crate) struct RowEncoder<'a> {
    columns: Vec<ColumnEncoding<'a>>,
    buf: BytesMut,
}

enum ColumnEncoding<'a> {
    Text(TextColumn<'a>),
    /// `jsonb`: the column is sent as `jsonb`, whose binary form starts with
    /// a version byte.
    Binary {
        array: &'a ArrayRef,
        jsonb: bool,
    },
}

/// The most buffer taken at once for the rows of a batch.
const ROWS_BUFFER_BYTES: usize = 32 * 1024;

impl<'a> RowEncoder<'a> {
    /// For the `rows` rows of `columns`; `jsonb` flags the columns sent as
    /// `jsonb` ([`jsonb_columns`]).
    pub(crate) fn new(
        columns: &'a [ArrayRef],
        formats: &Format,
        jsonb: &[bool],
        rows: usize,
    ) -> Self {
        let columns: Vec<ColumnEncoding<'a>> = columns
            .iter()
            .enumerate()
            .map(|(i, array)| match format_for(formats, i) {
                FieldFormat::Binary => ColumnEncoding::Binary {
                    array,
                    jsonb: jsonb.get(i).copied().unwrap_or(false),
                },
                FieldFormat::Text => ColumnEncoding::Text(TextColumn::for_result(array)),
            })
            .collect();
        let estimate = rows.saturating_mul(Self::row_estimate(columns.len()));
        RowEncoder {
            buf: BytesMut::with_capacity(estimate.min(ROWS_BUFFER_BYTES)),
            columns,
        }
    }

    /// A guess at the bytes of a row of `columns` columns, to size the buffer.
    fn row_estimate(columns: usize) -> usize {
        16 * columns + 16
    }

    /// Row `row` as a DataRow.
    pub(crate) fn row(&mut self, row: usize) -> Result<DataRow, ExecError> {
        if self.buf.capacity() - self.buf.len() < Self::row_estimate(self.columns.len()) {
            self.buf.reserve(ROWS_BUFFER_BYTES);
        }
        let buf = &mut self.buf;
        for column in &self.columns {
            let len_at = buf.len();
            buf.put_i32(-1);
            let present = match column {
                ColumnEncoding::Text(text) => text.write(buf, row)?,
                ColumnEncoding::Binary { array, jsonb } => {
                    if *jsonb {
                        buf.put_u8(1);
                    }
                    let present = put_binary(buf, array, row)?;
                    if !present {
                        buf.truncate(len_at + 4);
                    }
                    present
                }
            };
            if present {
                let len = (buf.len() - len_at - 4) as i32;
                buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        Ok(DataRow::new(buf.split(), self.columns.len() as i16))
    }
}

/// One DataRow: every column of `row`, each in the format the client asked for
/// ([`RowEncoder`] for the rows of a batch).
#[cfg(test)]
pub(crate) fn data_row(
    columns: &[ArrayRef],
    row: usize,
    formats: &Format,
    jsonb: &[bool],
) -> Result<DataRow, ExecError> {
    RowEncoder::new(columns, formats, jsonb, 1).row(row)
}

/// The format of column `i` (a format list shorter than the columns is a client error
/// that pgwire would panic on; treat missing entries as text).
pub(crate) fn format_for(formats: &Format, i: usize) -> FieldFormat {
    match formats {
        Format::Individual(v) if i >= v.len() => FieldFormat::Text,
        f => f.format_for(i),
    }
}

fn bad_param(n: usize, t: &Type, detail: impl std::fmt::Display) -> ExecError {
    ExecError::new(
        sqlstate::INVALID_TEXT_REPRESENTATION,
        format!(
            "invalid value for parameter ${n} of type {}: {detail}",
            t.name()
        ),
    )
}

/// Decodes bound parameter `n` (1-based) of type `t` from the wire.
pub(crate) fn decode_param(
    n: usize,
    t: &Type,
    bytes: Option<&[u8]>,
    binary: bool,
) -> Result<ParamValue, ExecError> {
    let Some(b) = bytes else {
        return Ok(ParamValue::Null);
    };
    if binary {
        return decode_binary(n, t, b);
    }
    let text = std::str::from_utf8(b).map_err(|e| bad_param(n, t, e))?;
    if let Some((_, element_type)) = element_of(t) {
        return tidemark_executor::params::parse_array_text(text, element_type)
            .map_err(|e| bad_param(n, t, e));
    }
    Ok(match *t {
        Type::BOOL => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" | "y" => ParamValue::Bool(true),
            "f" | "false" | "no" | "off" | "0" | "n" => ParamValue::Bool(false),
            _ => return Err(bad_param(n, t, format!("\"{text}\""))),
        },
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => ParamValue::Int(
            text.trim()
                .parse()
                .map_err(|_| bad_param(n, t, format!("\"{text}\"")))?,
        ),
        Type::FLOAT4 | Type::FLOAT8 => {
            let v = tidemark_executor::text::parse_float8(text)
                .ok_or_else(|| bad_param(n, t, format!("\"{text}\"")))?;
            ParamValue::Float(v)
        }
        Type::NUMERIC => numeric_param(text.to_string()),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => ParamValue::Typed {
            type_name: "TIMESTAMP",
            text: text.to_string(),
        },
        Type::DATE => ParamValue::Typed {
            type_name: "DATE",
            text: text.to_string(),
        },
        Type::INTERVAL => tidemark_executor::interval_params::from_text(text),
        Type::BYTEA => match text.strip_prefix("\\x") {
            Some(hex) => ParamValue::Bytes(
                (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or(""), 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| bad_param(n, t, "bad hex digits"))?,
            ),
            None => ParamValue::Bytes(text.as_bytes().to_vec()),
        },
        _ => ParamValue::Text(text.to_string()),
    })
}

/// A NUMERIC parameter: read as SQL's NUMERIC where that is exact, as DOUBLE for
/// NaN and the infinities (which only a float holds).
fn numeric_param(text: String) -> ParamValue {
    let finite = !matches!(
        text.trim()
            .trim_start_matches(['+', '-'])
            .to_ascii_lowercase()
            .as_str(),
        "nan" | "infinity" | "inf"
    );
    ParamValue::Typed {
        type_name: if finite { "NUMERIC" } else { "DOUBLE" },
        text,
    }
}

fn fixed<const N: usize>(n: usize, t: &Type, b: &[u8]) -> Result<[u8; N], ExecError> {
    b.try_into()
        .map_err(|_| bad_param(n, t, format!("{} bytes, expected {N}", b.len())))
}

fn decode_binary(n: usize, t: &Type, b: &[u8]) -> Result<ParamValue, ExecError> {
    if let Some((element, element_type)) = element_of(t) {
        return decode_binary_array(n, t, element, element_type, b);
    }
    Ok(match *t {
        Type::BOOL => ParamValue::Bool(fixed::<1>(n, t, b)?[0] != 0),
        Type::INT2 => ParamValue::Int(i16::from_be_bytes(fixed(n, t, b)?) as i64),
        Type::INT4 => ParamValue::Int(i32::from_be_bytes(fixed(n, t, b)?) as i64),
        Type::OID => ParamValue::Int(u32::from_be_bytes(fixed(n, t, b)?) as i64),
        Type::INT8 => ParamValue::Int(i64::from_be_bytes(fixed(n, t, b)?)),
        Type::FLOAT4 => ParamValue::Float(f32::from_be_bytes(fixed(n, t, b)?) as f64),
        Type::FLOAT8 => ParamValue::Float(f64::from_be_bytes(fixed(n, t, b)?)),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let v = i64::from_be_bytes(fixed(n, t, b)?);
            ParamValue::Timestamp(
                v.checked_add(PG_EPOCH_MICROS)
                    .ok_or_else(|| bad_param(n, t, "out of range"))?,
            )
        }
        Type::DATE => ParamValue::Date(
            i32::from_be_bytes(fixed(n, t, b)?)
                .checked_add(PG_EPOCH_DAYS)
                .ok_or_else(|| bad_param(n, t, "out of range"))?,
        ),
        Type::UUID => ParamValue::Uuid(fixed(n, t, b)?),
        // Microseconds, days, months (big-endian, in that order).
        Type::INTERVAL => {
            let v = u128::from_be_bytes(fixed(n, t, b)?);
            tidemark_executor::interval_params::from_fields(
                v as u32 as i32,
                (v >> 32) as u32 as i32,
                (v >> 64) as u64 as i64,
            )
        }
        Type::BYTEA => ParamValue::Bytes(b.to_vec()),
        Type::NUMERIC => {
            numeric_param(numeric::binary_to_text(b).map_err(|_| bad_param(n, t, "not a numeric"))?)
        }
        // jsonb's binary format: a version byte (1), then the document's text.
        Type::JSONB => match b.split_first() {
            Some((1, text)) => ParamValue::Text(
                std::str::from_utf8(text)
                    .map_err(|e| bad_param(n, t, e))?
                    .to_string(),
            ),
            _ => return Err(bad_param(n, t, "unsupported jsonb version")),
        },
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            ParamValue::Text(
                std::str::from_utf8(b)
                    .map_err(|e| bad_param(n, t, e))?
                    .to_string(),
            )
        }
        _ => {
            return Err(ExecError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "parameter ${n}: binary format of type {} is not supported; send it as text",
                    t.name()
                ),
            ));
        }
    })
}

/// The most dimensions an array parameter may have (PostgreSQL's MAXDIM).
const MAX_ARRAY_DIMENSIONS: usize = 6;

/// An array parameter in binary format (the layout [`put_binary_array`] writes):
/// each element decoded as `element`, sub-arrays for every dimension after the first.
fn decode_binary_array(
    n: usize,
    t: &Type,
    element: &Type,
    element_type: &'static str,
    mut b: &[u8],
) -> Result<ParamValue, ExecError> {
    let truncated = || bad_param(n, t, "truncated array");
    let word = |b: &mut &[u8]| -> Result<i32, ExecError> {
        let (head, rest) = b.split_first_chunk::<4>().ok_or_else(truncated)?;
        *b = rest;
        Ok(i32::from_be_bytes(*head))
    };
    let dimensions = usize::try_from(word(&mut b)?)
        .ok()
        .filter(|d| *d <= MAX_ARRAY_DIMENSIONS)
        .ok_or_else(|| bad_param(n, t, "invalid number of array dimensions"))?;
    let _has_nulls = word(&mut b)?;
    if word(&mut b)? as u32 != element.oid() {
        return Err(bad_param(n, t, "wrong element type"));
    }
    let mut lengths = Vec::with_capacity(dimensions);
    for _ in 0..dimensions {
        let length =
            usize::try_from(word(&mut b)?).map_err(|_| bad_param(n, t, "negative length"))?;
        let _lower_bound = word(&mut b)?;
        lengths.push(length);
    }
    let empty = ParamValue::Array {
        element_type,
        items: Vec::new(),
    };
    // Every element takes at least its 4-byte length: a count beyond that is a lie
    // (checked before anything is sized by it).
    let count = match lengths
        .iter()
        .try_fold(1usize, |acc, l| acc.checked_mul(*l))
    {
        _ if dimensions == 0 => return Ok(empty),
        Some(0) => return Ok(empty),
        Some(count) if count.saturating_mul(4) <= b.len() => count,
        _ => return Err(bad_param(n, t, "array larger than its message")),
    };
    let mut elements = Vec::with_capacity(count);
    for _ in 0..count {
        let Ok(length) = usize::try_from(word(&mut b)?) else {
            elements.push(ParamValue::Null);
            continue;
        };
        let (value, rest) = b
            .split_at_checked(length)
            .ok_or_else(|| bad_param(n, t, "truncated array element"))?;
        b = rest;
        elements.push(decode_binary(n, element, value)?);
    }
    if !b.is_empty() {
        return Err(bad_param(n, t, "bytes after the last array element"));
    }
    // Group the row-major elements into sub-arrays, innermost dimension first
    // (no length is 0 here: the count would be).
    for length in lengths.iter().skip(1).rev() {
        elements = elements
            .chunks(*length)
            .map(|chunk| ParamValue::Array {
                element_type,
                items: chunk.to_vec(),
            })
            .collect();
    }
    Ok(ParamValue::Array {
        element_type,
        items: elements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tidemark_executor::arrow::array::Int32Array;

    #[test]
    fn binary_params_decode_by_type() {
        let ts = (PG_EPOCH_MICROS + 1_500_000 - PG_EPOCH_MICROS).to_be_bytes();
        assert_eq!(
            decode_param(1, &Type::TIMESTAMP, Some(&ts), true).expect("test value"),
            ParamValue::Timestamp(PG_EPOCH_MICROS + 1_500_000)
        );
        assert_eq!(
            decode_param(1, &Type::INT4, Some(&7i32.to_be_bytes()), true).expect("test value"),
            ParamValue::Int(7)
        );
        assert_eq!(
            decode_param(2, &Type::INT4, Some(&[1, 2]), true)
                .expect_err("must fail")
                .sqlstate,
            "22P02"
        );
        assert_eq!(
            decode_param(1, &Type::INT8, Some(b"x"), false)
                .expect_err("must fail")
                .sqlstate,
            "22P02"
        );
        assert_eq!(
            decode_param(1, &Type::TEXT, None, true).expect("test value"),
            ParamValue::Null
        );
    }

    #[test]
    fn interval_params_decode_in_both_formats() {
        let mut b = Vec::new();
        b.extend_from_slice(&(-1_500_000i64).to_be_bytes());
        b.extend_from_slice(&400i32.to_be_bytes());
        b.extend_from_slice(&(-3i32).to_be_bytes());
        let typed = |text: &str| ParamValue::Typed {
            type_name: "INTERVAL",
            text: text.into(),
        };
        assert_eq!(
            decode_param(1, &Type::INTERVAL, Some(&b), true).expect("binary"),
            typed("-3 months 400 days -1.500000 seconds")
        );
        assert_eq!(
            decode_param(1, &Type::INTERVAL, Some(b"-1 day, 23:00:00"), false).expect("text"),
            typed("0 months -1 days 82800.000000 seconds")
        );
        assert_eq!(
            decode_param(1, &Type::INTERVAL, Some(&b[..8]), true)
                .expect_err("short")
                .sqlstate,
            "22P02"
        );
    }

    #[test]
    fn rows_mix_text_and_binary_columns() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(5), None]));
        let row =
            data_row(&[a.clone(), a], 0, &Format::Individual(vec![0, 1]), &[]).expect("test value");
        assert_eq!(&row.data[..], &[0, 0, 0, 1, b'5', 0, 0, 0, 4, 0, 0, 0, 5]);
    }

    #[test]
    fn intervals_and_durations_are_postgres_intervals() {
        use tidemark_executor::arrow::array::{
            DurationMicrosecondArray, IntervalMonthDayNanoArray,
        };
        use tidemark_executor::arrow::datatypes::IntervalMonthDayNano;
        // `ts - ts` of 1 day 2 hours 0.5 s: whole days and the rest, as PostgreSQL.
        let micros = 26 * 3_600_000_000i64 + 500_000;
        let d: ArrayRef = Arc::new(DurationMicrosecondArray::from(vec![micros]));
        assert_eq!(pg_type(d.data_type()), Type::INTERVAL);
        let text = data_row(std::slice::from_ref(&d), 0, &Format::UnifiedText, &[]).expect("text");
        assert_eq!(&text.data[4..], b"1 day 02:00:00.5");
        let binary = data_row(&[d], 0, &Format::UnifiedBinary, &[]).expect("binary");
        let mut want = vec![0, 0, 0, 16];
        want.extend_from_slice(&(2 * 3_600_000_000i64 + 500_000).to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(&binary.data[..], &want[..]);
        let i: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(-3, 0, 1_000_000_000),
        ]));
        let text = data_row(&[i], 0, &Format::UnifiedText, &[]).expect("text");
        assert_eq!(&text.data[4..], b"-3 mons +00:00:01");
    }

    #[test]
    fn unsigned_32_bit_numbers_are_oids() {
        use tidemark_executor::arrow::array::{ListArray, UInt32Array};
        assert_eq!(pg_type(&DataType::UInt32), Type::OID);
        let oids: ArrayRef = Arc::new(UInt32Array::from(vec![3_000_000_000u32]));
        let row = data_row(&[oids], 0, &Format::UnifiedBinary, &[]).expect("test value");
        assert_eq!(&row.data[..], &[0, 0, 0, 4, 0xB2, 0xD0, 0x5E, 0x00]);
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<UInt32Type, _, _>(vec![
            Some(vec![Some(20)]),
        ]));
        assert_eq!(pg_type(list.data_type()), Type::OID_ARRAY);
        assert_eq!(param_type(Some(list.data_type())), Type::OID_ARRAY);
    }

    #[test]
    fn lists_are_postgres_arrays_in_both_formats() {
        use tidemark_executor::arrow::array::{ListArray, ListBuilder, StringBuilder};
        let ints: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(7), None]),
            Some(vec![]),
        ]));
        assert_eq!(pg_type(ints.data_type()), Type::INT4_ARRAY);
        let row =
            data_row(std::slice::from_ref(&ints), 0, &Format::UnifiedBinary, &[]).expect("encodes");
        let mut expected = vec![0, 0, 0, 32];
        for word in [1i32, 1, 23, 2, 1, 4, 7, -1] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(&row.data[..], &expected[..]);
        // The empty array: no dimensions, the element type still named.
        let row =
            data_row(std::slice::from_ref(&ints), 1, &Format::UnifiedBinary, &[]).expect("encodes");
        let mut expected = vec![0, 0, 0, 12];
        for word in [0i32, 0, 23] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(&row.data[..], &expected[..]);
        let row = data_row(&[ints], 0, &Format::UnifiedText, &[]).expect("encodes");
        assert_eq!(&row.data[4..], b"{7,NULL}");

        // Text arrays (what array_agg of names gives).
        let mut names = ListBuilder::new(StringBuilder::new());
        names.values().append_value("ts");
        names.values().append_value("id");
        names.append(true);
        let names: ArrayRef = Arc::new(names.finish());
        assert_eq!(pg_type(names.data_type()), Type::TEXT_ARRAY);

        // A list of lists is one two-dimensional array; a ragged one has no binary form.
        let mut nested = ListBuilder::new(ListBuilder::new(
            tidemark_executor::arrow::array::Int64Builder::new(),
        ));
        for row in [vec![vec![1i64, 2], vec![3, 4]], vec![vec![1], vec![2, 3]]] {
            for inner in row {
                for v in inner {
                    nested.values().values().append_value(v);
                }
                nested.values().append(true);
            }
            nested.append(true);
        }
        let nested: ArrayRef = Arc::new(nested.finish());
        assert_eq!(pg_type(nested.data_type()), Type::INT8_ARRAY);
        let row = data_row(
            std::slice::from_ref(&nested),
            0,
            &Format::UnifiedBinary,
            &[],
        )
        .expect("encodes");
        let mut expected = Vec::new();
        for word in [2i32, 0, 20, 2, 1, 2, 1] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        for v in [1i64, 2, 3, 4] {
            expected.extend_from_slice(&8i32.to_be_bytes());
            expected.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(&row.data[4..], &expected[..]);
        let err = data_row(&[nested], 1, &Format::UnifiedBinary, &[]).expect_err("ragged");
        assert_eq!(err.sqlstate, "2202E");
    }

    #[test]
    fn array_params_decode_from_text_and_binary() {
        let text = decode_param(1, &Type::INT8_ARRAY, Some(b"{1,NULL}"), false).expect("valid");
        let expected = ParamValue::Array {
            element_type: "BIGINT",
            items: vec![ParamValue::Text("1".into()), ParamValue::Null],
        };
        assert_eq!(text, expected);

        let mut binary = Vec::new();
        for word in [2i32, 0, 23, 2, 1, 1, 1, 4, 1, 4, 2] {
            binary.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(
            decode_param(1, &Type::INT4_ARRAY, Some(&binary), true).expect("valid"),
            ParamValue::Array {
                element_type: "INT",
                items: vec![
                    ParamValue::Array {
                        element_type: "INT",
                        items: vec![ParamValue::Int(1)]
                    },
                    ParamValue::Array {
                        element_type: "INT",
                        items: vec![ParamValue::Int(2)]
                    },
                ]
            }
        );
        // Lengths that promise more than the message holds, a truncated element,
        // and malformed text are errors naming the parameter, not panics.
        let mut lying = Vec::new();
        for word in [1i32, 0, 23, i32::MAX, 1] {
            lying.extend_from_slice(&word.to_be_bytes());
        }
        for bad in [&lying[..], &binary[..binary.len() - 1], &binary[..6]] {
            let e = decode_param(3, &Type::INT4_ARRAY, Some(bad), true).expect_err("invalid");
            assert_eq!(e.sqlstate, "22P02");
            assert!(e.message.contains("$3"), "{}", e.message);
        }
        let e = decode_param(1, &Type::TEXT_ARRAY, Some(b"{a"), false).expect_err("invalid");
        assert_eq!(e.sqlstate, "22P02");
    }
}
