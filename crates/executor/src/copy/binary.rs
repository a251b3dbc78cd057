//! `COPY ... FROM STDIN (FORMAT binary)`: PostgreSQL's binary copy format,
//! decoded straight into column values.
//!
//! The stream is a header (`PGCOPY\n\377\r\n\0`, flags `i32`, extension length
//! `i32` and the extension), then tuples: a field count `i16` (-1 ends the
//! data) and per field a length `i32` (-1 for NULL) and the value in the
//! type's binary send format (big-endian integers and floats, timestamps as
//! microseconds and dates as days since 2000-01-01, text as UTF-8, UUID as 16
//! bytes). Integer and float columns take any width a client sends (2, 4 or 8
//! bytes; 4 or 8), checked against the column's range.

use tidemark_storage::{Column, ColumnType, Values};

use crate::error::{ExecError, Result, sqlstate};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds and days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

/// One column's values as they are decoded.
#[derive(Debug)]
pub(crate) struct ColumnBuilder {
    name: String,
    /// The column's type (JSON and JSONB are checked, JSONB has a version byte).
    column_type: ColumnType,
    values: Values,
    nulls: Vec<bool>,
}

impl ColumnBuilder {
    pub(crate) fn new(name: &str, t: ColumnType) -> Self {
        ColumnBuilder {
            name: name.to_string(),
            column_type: t,
            values: Values::zeros(t, 0),
            nulls: Vec::new(),
        }
    }

    /// The column decoded so far; the builder starts over.
    pub(crate) fn finish(&mut self) -> Column {
        let t = self.values.column_type();
        let values = std::mem::replace(&mut self.values, Values::zeros(t, 0));
        Column::with_nulls(values, std::mem::take(&mut self.nulls))
    }

    fn push_null(&mut self) {
        match &mut self.values {
            Values::Boolean(v) => v.push(false),
            Values::SmallInt(v) => v.push(0),
            Values::Int(v) | Values::Date(v) => v.push(0),
            Values::BigInt(v) | Values::Timestamp(v) => v.push(0),
            Values::Real(v) => v.push(0.0),
            Values::Double(v) => v.push(0.0),
            Values::Uuid(v) => v.push(0),
            Values::Decimal(v) => v.push(0),
            Values::Varchar(v) | Values::Symbol(v) | Values::Binary(v) => v.push(b""),
        }
        self.nulls.push(true);
    }

    fn push(&mut self, field: &[u8]) -> Result<()> {
        let bad = |what: &str| {
            ExecError::new(
                sqlstate::INVALID_BINARY_REPRESENTATION,
                format!(
                    "incorrect binary data format for column \"{}\": {what}",
                    self.name
                ),
            )
        };
        let int = |field: &[u8]| -> Result<i64> {
            Ok(match field.len() {
                2 => i16::from_be_bytes([field[0], field[1]]) as i64,
                4 => i32::from_be_bytes(field.try_into().map_err(|_| bad("length"))?) as i64,
                8 => i64::from_be_bytes(field.try_into().map_err(|_| bad("length"))?),
                n => return Err(bad(&format!("{n} bytes for an integer"))),
            })
        };
        let range = |v: i64, t: &str| {
            ExecError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                format!(
                    "value {v} is out of range for type {t} (column \"{}\")",
                    self.name
                ),
            )
        };
        let fixed = |n: usize| -> Result<&[u8]> {
            if field.len() == n {
                Ok(field)
            } else {
                Err(bad(&format!("{} bytes, expected {n}", field.len())))
            }
        };
        match &mut self.values {
            Values::Boolean(v) => v.push(fixed(1)?[0] != 0),
            Values::SmallInt(v) => {
                let x = int(field)?;
                v.push(i16::try_from(x).map_err(|_| range(x, "smallint"))?)
            }
            Values::Int(v) => {
                let x = int(field)?;
                v.push(i32::try_from(x).map_err(|_| range(x, "integer"))?)
            }
            // A TIMESTAMP_NS column takes PostgreSQL's binary timestamp
            // (microseconds since 2000-01-01), as a client sends it.
            Values::BigInt(v) if self.column_type == ColumnType::TimestampNs => {
                let pg = i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad("length"))?);
                v.push(
                    pg.checked_add(PG_EPOCH_MICROS)
                        .and_then(|us| us.checked_mul(1_000))
                        .ok_or_else(|| range(pg, "timestamp_ns"))?,
                )
            }
            Values::BigInt(v) => v.push(int(field)?),
            Values::Real(v) => v.push(match field.len() {
                4 => f32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad("length"))?),
                8 => f64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad("length"))?) as f32,
                n => return Err(bad(&format!("{n} bytes for a float"))),
            }),
            Values::Double(v) => v.push(match field.len() {
                4 => f32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad("length"))?) as f64,
                8 => f64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad("length"))?),
                n => return Err(bad(&format!("{n} bytes for a float"))),
            }),
            Values::Timestamp(v) => {
                let pg = i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad("length"))?);
                v.push(
                    pg.checked_add(PG_EPOCH_MICROS)
                        .ok_or_else(|| range(pg, "timestamp"))?,
                )
            }
            Values::Date(v) => {
                let pg = i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad("length"))?);
                v.push(
                    pg.checked_add(PG_EPOCH_DAYS)
                        .ok_or_else(|| range(pg as i64, "date"))?,
                )
            }
            Values::Uuid(v) => v.push(u128::from_be_bytes(
                fixed(16)?.try_into().map_err(|_| bad("length"))?,
            )),
            Values::Varchar(v) | Values::Symbol(v) => {
                let field = match self.column_type {
                    ColumnType::Jsonb => match field.split_first() {
                        Some((1, text)) => text,
                        _ => return Err(bad("unsupported jsonb version")),
                    },
                    _ => field,
                };
                if matches!(self.column_type, ColumnType::Json | ColumnType::Jsonb) {
                    crate::json::check_value(field, self.column_type, &self.name)?;
                }
                std::str::from_utf8(field).map_err(|e| {
                    ExecError::new(
                        sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                        format!(
                            "invalid byte sequence for encoding \"UTF8\" in column \"{}\": {e}",
                            self.name
                        ),
                    )
                })?;
                v.push(field)
            }
            Values::Binary(v) => match self.column_type {
                ColumnType::DoubleArray { dims } => v.push(&crate::double_array::from_pg_binary(
                    field, dims, &self.name,
                )?),
                _ => v.push(field),
            },
            Values::Decimal(v) => {
                let ColumnType::Decimal { precision, scale } = self.column_type else {
                    return Err(bad("decimal values for a column of another type"));
                };
                v.push(
                    crate::numeric::decode_binary(field, precision, scale).map_err(
                        |e| match e {
                            crate::numeric::NumericError::Syntax => bad("not a binary numeric"),
                            e => crate::convert::numeric_error(e, "", &self.name),
                        },
                    )?,
                )
            }
        }
        self.nulls.push(false);
        Ok(())
    }
}

/// Where the binary stream is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    #[default]
    Header,
    Tuples,
    /// The trailer (-1) was read: nothing more may follow.
    Ended,
}

/// Decodes the whole tuples at the front of `data` into `columns` (one per
/// field); returns how many bytes it consumed and how many rows it added. A
/// partial tuple at the end is left for the next call.
pub(crate) fn decode(
    data: &[u8],
    stage: &mut Stage,
    columns: &mut [ColumnBuilder],
) -> Result<(usize, usize)> {
    let bad = |what: String| ExecError::new(sqlstate::BAD_COPY_FILE_FORMAT, what);
    let mut pos = 0;
    let mut rows = 0;
    if *stage == Stage::Header {
        if data.len() < SIGNATURE.len() + 8 {
            if !SIGNATURE.starts_with(&data[..data.len().min(SIGNATURE.len())]) {
                return Err(bad("COPY file signature not recognized".into()));
            }
            return Ok((0, 0));
        }
        if &data[..SIGNATURE.len()] != SIGNATURE {
            return Err(bad("COPY file signature not recognized".into()));
        }
        let flags = i32::from_be_bytes(read4(data, 11));
        if flags & (1 << 16) != 0 {
            return Err(bad("COPY with OIDs is not supported".into()));
        }
        if flags & !0xffff & !(1 << 16) != 0 {
            return Err(bad("unrecognized critical flags in COPY file header".into()));
        }
        let extension = i32::from_be_bytes(read4(data, 15));
        let extension = usize::try_from(extension)
            .map_err(|_| bad("invalid COPY file header (negative extension length)".into()))?;
        let start = SIGNATURE.len() + 8 + extension;
        if data.len() < start {
            return Ok((0, 0));
        }
        pos = start;
        *stage = Stage::Tuples;
    }
    while pos < data.len() {
        if *stage == Stage::Ended {
            return Err(bad("data after the end of binary COPY data".into()));
        }
        let Some(count) = data.get(pos..pos + 2) else {
            break;
        };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            *stage = Stage::Ended;
            pos += 2;
            continue;
        }
        if count as usize != columns.len() {
            return Err(bad(format!(
                "row field count is {count}, expected {}",
                columns.len()
            )));
        }
        // Check the whole tuple is here before decoding any of it.
        let mut end = pos + 2;
        let mut complete = true;
        for _ in 0..count {
            let Some(len) = data.get(end..end + 4) else {
                complete = false;
                break;
            };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            end += 4;
            if len > 0 {
                end += len as usize;
            } else if len < -1 {
                return Err(bad(format!("invalid field length {len}")));
            }
            if end > data.len() {
                complete = false;
                break;
            }
        }
        if !complete {
            break;
        }
        let mut at = pos + 2;
        for column in columns.iter_mut() {
            let len = i32::from_be_bytes(read4(data, at));
            at += 4;
            if len == -1 {
                column.push_null();
            } else {
                let len = len as usize;
                column.push(&data[at..at + len])?;
                at += len;
            }
        }
        pos = end;
        rows += 1;
    }
    Ok((pos, rows))
}

fn read4(data: &[u8], at: usize) -> [u8; 4] {
    [data[at], data[at + 1], data[at + 2], data[at + 3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        for r in rows {
            out.extend_from_slice(&(r.len() as i16).to_be_bytes());
            for f in r {
                match f {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        out.extend_from_slice(b);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn tuples_decode_in_any_chunking() {
        let rows = vec![
            vec![
                Some(0i64.to_be_bytes().to_vec()),
                Some(b"AAPL".to_vec()),
                Some(1.5f64.to_be_bytes().to_vec()),
                Some(7i32.to_be_bytes().to_vec()),
            ],
            vec![
                Some(1_000_000i64.to_be_bytes().to_vec()),
                None,
                Some(2.5f32.to_be_bytes().to_vec()),
                None,
            ],
        ];
        let data = stream(&rows);
        for chunk in 1..data.len() {
            let mut columns = vec![
                ColumnBuilder::new("ts", ColumnType::Timestamp),
                ColumnBuilder::new("sym", ColumnType::Symbol),
                ColumnBuilder::new("price", ColumnType::Double),
                ColumnBuilder::new("n", ColumnType::BigInt),
            ];
            let mut stage = Stage::Header;
            let mut pending = Vec::new();
            let mut total = 0;
            for piece in data.chunks(chunk) {
                pending.extend_from_slice(piece);
                let (used, rows) = decode(&pending, &mut stage, &mut columns).expect("decode");
                pending.drain(..used);
                total += rows;
            }
            assert!(
                stage == Stage::Ended && pending.is_empty() && total == 2,
                "chunk {chunk}"
            );
            let ts = columns[0].finish();
            assert_eq!(
                ts.values,
                Values::Timestamp(vec![PG_EPOCH_MICROS, PG_EPOCH_MICROS + 1_000_000])
            );
            let sym = columns[1].finish();
            assert!(sym.is_null(1) && !sym.is_null(0));
            assert_eq!(columns[2].finish().values, Values::Double(vec![1.5, 2.5]));
            let n = columns[3].finish();
            assert_eq!(n.values, Values::BigInt(vec![7, 0]));
            assert!(n.is_null(1));
        }
    }

    #[test]
    fn bad_streams_are_refused_with_the_reason() {
        let mut columns = vec![ColumnBuilder::new("n", ColumnType::SmallInt)];
        let mut stage = Stage::Header;
        let e = decode(
            b"PGCOPX\n\xff\r\n\0\0\0\0\0\0\0\0\0",
            &mut stage,
            &mut columns,
        )
        .expect_err("signature");
        assert_eq!(e.sqlstate, "22P04");
        let data = stream(&[vec![Some(70_000i32.to_be_bytes().to_vec())]]);
        let e = decode(&data, &mut Stage::Header, &mut columns).expect_err("range");
        assert_eq!(e.sqlstate, "22003", "{e}");
        let data = stream(&[vec![Some(vec![1, 2, 3])]]);
        let e = decode(&data, &mut Stage::Header, &mut columns).expect_err("width");
        assert_eq!(e.sqlstate, "22P03", "{e}");
        let data = stream(&[vec![None, None]]);
        let e = decode(&data, &mut Stage::Header, &mut columns).expect_err("field count");
        assert!(e.message.contains("field count is 2"), "{e}");
    }
}
