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
    StringArray, TimestampMicrosecondArray,
};
use tidemark_executor::arrow::datatypes::Decimal128Type;
use tidemark_executor::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    UInt8Type, UInt16Type, UInt32Type,
};
use tidemark_executor::error::sqlstate;
use tidemark_executor::numeric;
use tidemark_executor::text::format_value;
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
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::FixedSizeBinary(16) => Type::UUID,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Decimal128(..) => Type::NUMERIC,
        // Everything else (text, symbols, wider decimals, intervals, lists) travels as
        // its PostgreSQL text form, in both formats.
        _ => Type::TEXT,
    }
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
        Some(DataType::UInt64) => Type::INT8,
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
        DataType::UInt32 => buf.put_i64(array.as_primitive::<UInt32Type>().value(row) as i64),
        DataType::Int64 => buf.put_i64(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => buf.put_f32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => buf.put_f64(array.as_primitive::<Float64Type>().value(row)),
        DataType::Timestamp(unit, _) => {
            let micros = if *unit == TimeUnit::Microsecond {
                array
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .ok_or_else(|| internal("a timestamp"))?
                    .value(row)
            } else {
                let cast = tidemark_executor::arrow::compute::cast(
                    array,
                    &DataType::Timestamp(TimeUnit::Microsecond, None),
                )
                .map_err(|e| internal(&e.to_string()))?;
                cast.as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .ok_or_else(|| internal("a timestamp"))?
                    .value(row)
            };
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
        // Sent as TEXT: the binary form of text is its UTF-8 bytes.
        _ => match format_value(array, row)? {
            Some(s) => buf.put_slice(s.as_bytes()),
            None => return Ok(false),
        },
    }
    Ok(true)
}

/// Which result columns are `jsonb`: their binary form starts with a version byte.
pub(crate) fn jsonb_columns(schema: &tidemark_executor::arrow::datatypes::Schema) -> Vec<bool> {
    schema
        .fields()
        .iter()
        .map(|f| field_type(f) == Type::JSONB)
        .collect()
}

/// One DataRow: every column of `row`, each in the format the client asked for.
/// `jsonb` flags the columns sent as `jsonb` ([`jsonb_columns`]).
pub(crate) fn data_row(
    columns: &[ArrayRef],
    row: usize,
    formats: &Format,
    jsonb: &[bool],
) -> Result<DataRow, ExecError> {
    let mut buf = BytesMut::with_capacity(16 * columns.len());
    for (i, array) in columns.iter().enumerate() {
        let len_at = buf.len();
        buf.put_i32(-1);
        let present = if format_for(formats, i) == FieldFormat::Binary {
            if jsonb.get(i).copied().unwrap_or(false) {
                // jsonb's binary format: version 1, then the document's text.
                buf.put_u8(1);
            }
            let present = put_binary(&mut buf, array, row)?;
            if !present {
                buf.truncate(len_at + 4);
            }
            present
        } else {
            match format_value(array, row)? {
                Some(s) => {
                    buf.put_slice(s.as_bytes());
                    true
                }
                None => false,
            }
        };
        if present {
            let len = (buf.len() - len_at - 4) as i32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(DataRow::new(buf, columns.len() as i16))
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
            let v = match text.trim().to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                s => s
                    .parse()
                    .map_err(|_| bad_param(n, t, format!("\"{text}\"")))?,
            };
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
    fn rows_mix_text_and_binary_columns() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(5), None]));
        let row =
            data_row(&[a.clone(), a], 0, &Format::Individual(vec![0, 1]), &[]).expect("test value");
        assert_eq!(&row.data[..], &[0, 0, 0, 1, b'5', 0, 0, 0, 4, 0, 0, 0, 5]);
    }
}
