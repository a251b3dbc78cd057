//! Column types and partition units, and the calendar arithmetic that maps a
//! timestamp (microseconds since the Unix epoch, UTC) to its partition.

use std::fmt;

use crate::codec::{Decoder, Encoder};
use crate::error::Result;

/// Microseconds in common units.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Boolean,
    SmallInt,
    Int,
    BigInt,
    Real,
    Double,
    /// Microseconds since 1970-01-01 UTC.
    Timestamp,
    /// Microseconds since 1970-01-01 UTC, like TIMESTAMP; the SQL type is PostgreSQL's
    /// `timestamp with time zone` (an instant, shown with its UTC offset).
    TimestampTz,
    /// Days since 1970-01-01.
    Date,
    Varchar,
    /// Dictionary-encoded string: the column stores `i32` keys into the table's
    /// symbol dictionary for that column.
    Symbol,
    Uuid,
    Binary,
    /// PostgreSQL's `json`: the document's text, stored as VARCHAR (checked to be
    /// valid JSON on the way in).
    Json,
    /// PostgreSQL's `jsonb`: stored as VARCHAR like JSON; only the SQL type differs.
    Jsonb,
    /// `NUMERIC(precision, scale)`: exact decimals, stored as their unscaled value
    /// (`value * 10^scale`) in a 16-byte two's-complement integer. Precision is
    /// 1..=[`MAX_DECIMAL_PRECISION`], scale 0..=precision.
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// QuestDB's `DOUBLE[]` with `dims` dimensions (1..=[`MAX_ARRAY_DIMS`]):
    /// each value an array of doubles, stored as BINARY (the encoding of a
    /// value is the executor's: shape, NULL bitmap, elements).
    DoubleArray {
        dims: u8,
    },
    /// QuestDB's `TIMESTAMP_NS`: nanoseconds since 1970-01-01 UTC, stored exactly
    /// as BIGINT. As the designated timestamp, its table's partition keys count
    /// nanoseconds too ([`Partitioning`]).
    TimestampNs,
}

/// The most dimensions a `DOUBLE[]` column has (PostgreSQL's arrays have at most 6).
pub const MAX_ARRAY_DIMS: u8 = 6;

/// The largest DECIMAL precision: what an `i128` holds (Arrow's Decimal128).
pub const MAX_DECIMAL_PRECISION: u8 = 38;

impl ColumnType {
    /// One of each type (DECIMAL with one precision and scale; all decimals share
    /// a layout).
    pub const ALL: [ColumnType; 18] = [
        ColumnType::Boolean,
        ColumnType::SmallInt,
        ColumnType::Int,
        ColumnType::BigInt,
        ColumnType::Real,
        ColumnType::Double,
        ColumnType::Timestamp,
        ColumnType::Date,
        ColumnType::Varchar,
        ColumnType::Symbol,
        ColumnType::Uuid,
        ColumnType::Binary,
        ColumnType::TimestampTz,
        ColumnType::Json,
        ColumnType::Jsonb,
        ColumnType::Decimal {
            precision: 18,
            scale: 4,
        },
        ColumnType::DoubleArray { dims: 1 },
        ColumnType::TimestampNs,
    ];

    /// The type a DECIMAL's values are decoded as when only the layout is known (in
    /// WAL row data): the widest precision, scale 0. Every DECIMAL's
    /// [`physical`](Self::physical) type is this one.
    pub const DECIMAL_STORED: ColumnType = ColumnType::Decimal {
        precision: MAX_DECIMAL_PRECISION,
        scale: 0,
    };

    /// The type a `DOUBLE[]` is decoded as when only the code is known (schemas
    /// follow the code with the dimensions).
    pub const DOUBLE_ARRAY_STORED: ColumnType = ColumnType::DoubleArray { dims: 1 };

    /// A `DOUBLE[]` type, if `dims` is within bounds.
    pub fn double_array(dims: u8) -> Option<ColumnType> {
        (1..=MAX_ARRAY_DIMS)
            .contains(&dims)
            .then_some(ColumnType::DoubleArray { dims })
    }

    /// A DECIMAL type, if `precision` and `scale` are within bounds.
    pub fn decimal(precision: u8, scale: u8) -> Option<ColumnType> {
        ((1..=MAX_DECIMAL_PRECISION).contains(&precision) && scale <= precision)
            .then_some(ColumnType::Decimal { precision, scale })
    }

    /// Bytes per value in the `.d` file for fixed-width types; `None` for
    /// variable-size types (VARCHAR, BINARY), which have `.d` data and `.i` offsets.
    pub fn fixed_width(self) -> Option<usize> {
        Some(match self {
            ColumnType::Boolean => 1,
            ColumnType::SmallInt => 2,
            ColumnType::Int | ColumnType::Real | ColumnType::Date | ColumnType::Symbol => 4,
            ColumnType::BigInt
            | ColumnType::Double
            | ColumnType::Timestamp
            | ColumnType::TimestampTz
            | ColumnType::TimestampNs => 8,
            ColumnType::Uuid | ColumnType::Decimal { .. } => 16,
            ColumnType::Varchar
            | ColumnType::Binary
            | ColumnType::Json
            | ColumnType::Jsonb
            | ColumnType::DoubleArray { .. } => {
                return None;
            }
        })
    }

    /// Whether NULLs need a separate `.n` file. BOOLEAN encodes NULL as byte 2,
    /// SYMBOL as key -1 and variable-size types as a flag in the offset entry; all
    /// others need the null file, because every bit pattern of theirs is a value.
    pub fn needs_null_file(self) -> bool {
        !matches!(
            self,
            ColumnType::Boolean
                | ColumnType::Symbol
                | ColumnType::Varchar
                | ColumnType::Binary
                | ColumnType::Json
                | ColumnType::Jsonb
                | ColumnType::DoubleArray { .. }
        )
    }

    /// The type whose values (`Values` variant, file layout) this type shares:
    /// TIMESTAMPTZ is stored exactly as TIMESTAMP, JSON and JSONB as VARCHAR, every
    /// DECIMAL as [`DECIMAL_STORED`](Self::DECIMAL_STORED), `DOUBLE[]` as BINARY,
    /// TIMESTAMP_NS as BIGINT.
    pub fn physical(self) -> ColumnType {
        match self {
            ColumnType::TimestampTz => ColumnType::Timestamp,
            ColumnType::Json | ColumnType::Jsonb => ColumnType::Varchar,
            ColumnType::DoubleArray { .. } => ColumnType::Binary,
            ColumnType::TimestampNs => ColumnType::BigInt,
            ColumnType::Decimal { .. } => ColumnType::DECIMAL_STORED,
            t => t,
        }
    }

    /// Whether the type holds microseconds since the epoch (a designated timestamp
    /// may be of either).
    pub fn is_timestamp(self) -> bool {
        self.physical() == ColumnType::Timestamp
    }

    /// Why a column of this type, named `column`, cannot be a designated
    /// timestamp; `None` when it can (TIMESTAMP, TIMESTAMPTZ, TIMESTAMP_NS).
    pub fn designated_timestamp_problem(self, column: &str) -> Option<String> {
        if self.is_timestamp() || self == ColumnType::TimestampNs {
            return None;
        }
        Some(format!(
            "designated timestamp column \"{column}\" must be of type TIMESTAMP, \
             TIMESTAMPTZ or TIMESTAMP_NS, not {self}"
        ))
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            ColumnType::Boolean => 1,
            ColumnType::SmallInt => 2,
            ColumnType::Int => 3,
            ColumnType::BigInt => 4,
            ColumnType::Real => 5,
            ColumnType::Double => 6,
            ColumnType::Timestamp => 7,
            ColumnType::Date => 8,
            ColumnType::Varchar => 9,
            ColumnType::Symbol => 10,
            ColumnType::Uuid => 11,
            ColumnType::Binary => 12,
            ColumnType::TimestampTz => 13,
            ColumnType::Json => 14,
            ColumnType::Jsonb => 15,
            ColumnType::Decimal { .. } => 16,
            ColumnType::DoubleArray { .. } => 17,
            ColumnType::TimestampNs => 18,
        }
    }

    /// The type with code `c`; a DECIMAL comes back as
    /// [`DECIMAL_STORED`](Self::DECIMAL_STORED) (schemas follow the code with the
    /// precision and scale: see [`encode_schema`](Self::encode_schema)).
    pub(crate) fn from_code(c: u8) -> Option<Self> {
        if c == 16 {
            return Some(ColumnType::DECIMAL_STORED);
        }
        if c == 17 {
            return Some(ColumnType::DOUBLE_ARRAY_STORED);
        }
        ColumnType::ALL.into_iter().find(|t| t.code() == c)
    }

    /// A column's type in a schema (`_meta`, the WAL's ADD COLUMN): the code, and
    /// for DECIMAL then `precision u8 | scale u8`, for `DOUBLE[]` then `dims u8`.
    pub(crate) fn encode_schema(self, e: &mut Encoder) {
        e.u8(self.code());
        match self {
            ColumnType::Decimal { precision, scale } => {
                e.u8(precision);
                e.u8(scale);
            }
            ColumnType::DoubleArray { dims } => e.u8(dims),
            _ => {}
        }
    }

    /// Reads what [`encode_schema`](Self::encode_schema) wrote.
    pub(crate) fn decode_schema(d: &mut Decoder<'_>) -> Result<Self> {
        let tc = d.u8()?;
        match ColumnType::from_code(tc) {
            Some(ColumnType::Decimal { .. }) => {
                let (precision, scale) = (d.u8()?, d.u8()?);
                ColumnType::decimal(precision, scale).ok_or_else(|| {
                    d.error(format!("bad DECIMAL precision {precision} / scale {scale}"))
                })
            }
            Some(ColumnType::DoubleArray { .. }) => {
                let dims = d.u8()?;
                ColumnType::double_array(dims)
                    .ok_or_else(|| d.error(format!("bad DOUBLE[] dimensions {dims}")))
            }
            Some(t) => Ok(t),
            None => Err(d.error(format!("unknown column type {tc}"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::SmallInt => "SMALLINT",
            ColumnType::Int => "INT",
            ColumnType::BigInt => "BIGINT",
            ColumnType::Real => "REAL",
            ColumnType::Double => "DOUBLE",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Date => "DATE",
            ColumnType::Varchar => "VARCHAR",
            ColumnType::Symbol => "SYMBOL",
            ColumnType::Uuid => "UUID",
            ColumnType::Binary => "BINARY",
            ColumnType::TimestampTz => "TIMESTAMPTZ",
            ColumnType::Json => "JSON",
            ColumnType::Jsonb => "JSONB",
            ColumnType::Decimal { .. } => "DECIMAL",
            ColumnType::DoubleArray { .. } => "DOUBLE[]",
            ColumnType::TimestampNs => "TIMESTAMP_NS",
        }
    }
}

/// The type as SQL spells it: the name, with precision and scale for DECIMAL.
impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Decimal { precision, scale } => {
                write!(f, "DECIMAL({precision},{scale})")
            }
            ColumnType::DoubleArray { dims } => {
                f.write_str("DOUBLE")?;
                (0..*dims).try_for_each(|_| f.write_str("[]"))
            }
            t => f.write_str(t.name()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionBy {
    None,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl PartitionBy {
    pub(crate) fn code(self) -> u8 {
        match self {
            PartitionBy::None => 0,
            PartitionBy::Hour => 1,
            PartitionBy::Day => 2,
            PartitionBy::Week => 3,
            PartitionBy::Month => 4,
            PartitionBy::Year => 5,
        }
    }

    pub const ALL: [PartitionBy; 6] = [
        PartitionBy::None,
        PartitionBy::Hour,
        PartitionBy::Day,
        PartitionBy::Week,
        PartitionBy::Month,
        PartitionBy::Year,
    ];

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == c)
    }

    /// The unit named `name` (`DAY`, any case), as configuration spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            PartitionBy::None => "NONE",
            PartitionBy::Hour => "HOUR",
            PartitionBy::Day => "DAY",
            PartitionBy::Week => "WEEK",
            PartitionBy::Month => "MONTH",
            PartitionBy::Year => "YEAR",
        }
    }

    /// The start (inclusive) of the partition holding `ts`. For `None` every
    /// timestamp maps to `i64::MIN`, the one partition's key.
    pub fn partition_start(self, ts: i64) -> i64 {
        match self {
            PartitionBy::None => i64::MIN,
            PartitionBy::Hour => ts.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR,
            PartitionBy::Day => ts.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY,
            PartitionBy::Week => {
                // 1970-01-01 was a Thursday; ISO weeks start on Monday.
                let days = ts.div_euclid(MICROS_PER_DAY);
                (days - (days + 3).rem_euclid(7)) * MICROS_PER_DAY
            }
            PartitionBy::Month => {
                let (y, m, _) = civil_from_days(ts.div_euclid(MICROS_PER_DAY));
                days_from_civil(y, m, 1) * MICROS_PER_DAY
            }
            PartitionBy::Year => {
                let (y, _, _) = civil_from_days(ts.div_euclid(MICROS_PER_DAY));
                days_from_civil(y, 1, 1) * MICROS_PER_DAY
            }
        }
    }

    /// The end (exclusive) of the partition starting at `start`.
    pub fn partition_end(self, start: i64) -> i64 {
        match self {
            PartitionBy::None => i64::MAX,
            PartitionBy::Hour => start.saturating_add(MICROS_PER_HOUR),
            PartitionBy::Day => start.saturating_add(MICROS_PER_DAY),
            PartitionBy::Week => start.saturating_add(7 * MICROS_PER_DAY),
            PartitionBy::Month | PartitionBy::Year => {
                let (y, m, _) = civil_from_days(start.div_euclid(MICROS_PER_DAY));
                let (ny, nm) = match self {
                    PartitionBy::Month if m == 12 => (y + 1, 1),
                    PartitionBy::Month => (y, m + 1),
                    _ => (y + 1, 1),
                };
                days_from_civil(ny, nm, 1).saturating_mul(MICROS_PER_DAY)
            }
        }
    }

    /// The partition's name as used for its directory and shown to users:
    /// `default`, `2026`, `2026-11`, `2026-W47`, `2026-11-21`, `2026-11-21T10`.
    pub fn partition_name(self, start: i64) -> String {
        let days = start.div_euclid(MICROS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        match self {
            PartitionBy::None => "default".to_string(),
            PartitionBy::Year => format!("{y:04}"),
            PartitionBy::Month => format!("{y:04}-{m:02}"),
            PartitionBy::Day => format!("{y:04}-{m:02}-{d:02}"),
            PartitionBy::Hour => {
                let h = start.rem_euclid(MICROS_PER_DAY) / MICROS_PER_HOUR;
                format!("{y:04}-{m:02}-{d:02}T{h:02}")
            }
            PartitionBy::Week => {
                // The ISO week-year is the year of the week's Thursday.
                let (iy, _, _) = civil_from_days(days + 3);
                let week1_monday = {
                    let jan4 = days_from_civil(iy, 1, 4);
                    jan4 - (jan4 + 3).rem_euclid(7)
                };
                let week = (days - week1_monday) / 7 + 1;
                format!("{iy:04}-W{week:02}")
            }
        }
    }
}

/// How a table's designated timestamps fall into partitions. Partitions are
/// cut on calendar boundaries counted in microseconds; a table whose
/// designated timestamp is a TIMESTAMP_NS counts in nanoseconds, and so do its
/// partition keys (the same instants, times 1,000). Every value here, given or
/// returned, is in the table's own unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioning {
    pub by: PartitionBy,
    /// Designated timestamp units per microsecond: 1, or 1,000 for nanoseconds.
    pub per_micro: i64,
}

impl Partitioning {
    /// The start (inclusive) of the partition holding `ts`.
    pub fn start(self, ts: i64) -> i64 {
        match self.by {
            PartitionBy::None => i64::MIN,
            by => by
                .partition_start(ts.div_euclid(self.per_micro))
                .saturating_mul(self.per_micro),
        }
    }

    /// The end (exclusive) of the partition starting at `start`.
    pub fn end(self, start: i64) -> i64 {
        match self.by {
            PartitionBy::None => i64::MAX,
            by => by
                .partition_end(start.div_euclid(self.per_micro))
                .saturating_mul(self.per_micro),
        }
    }

    /// The partition's name (see [`PartitionBy::partition_name`]).
    pub fn name(self, start: i64) -> String {
        self.by.partition_name(start.div_euclid(self.per_micro))
    }

    /// A time in microseconds (the wall clock, a TTL's cutoff) in the table's unit.
    pub fn from_micros(self, micros: i64) -> i64 {
        micros.saturating_mul(self.per_micro)
    }
}

/// How long a table keeps its partitions (`TTL n UNIT`): housekeeping drops
/// a partition once all of its time range is older than this behind the
/// table's newest row (see `ttl.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    /// At least 1 (`TTL 0` means no TTL).
    pub count: u32,
    pub unit: TtlUnit,
}

/// The unit of a [`Ttl`]: hours, days and weeks are fixed lengths, months
/// and years calendar ones (a month back from March 31 is February's last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlUnit {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl TtlUnit {
    pub const ALL: [TtlUnit; 5] = [
        TtlUnit::Hour,
        TtlUnit::Day,
        TtlUnit::Week,
        TtlUnit::Month,
        TtlUnit::Year,
    ];

    pub(crate) fn code(self) -> u8 {
        match self {
            TtlUnit::Hour => 1,
            TtlUnit::Day => 2,
            TtlUnit::Week => 3,
            TtlUnit::Month => 4,
            TtlUnit::Year => 5,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.code() == c)
    }

    /// `HOUR`, `DAY`, ... as SQL spells it (singular).
    pub fn name(self) -> &'static str {
        match self {
            TtlUnit::Hour => "HOUR",
            TtlUnit::Day => "DAY",
            TtlUnit::Week => "WEEK",
            TtlUnit::Month => "MONTH",
            TtlUnit::Year => "YEAR",
        }
    }
}

impl Ttl {
    /// `at` moved back by the TTL (months and years as [`add_months`] counts
    /// them), saturating at the range of i64.
    pub fn before(self, at: i64) -> i64 {
        let count = i64::from(self.count);
        let fixed = |unit: i64| at.saturating_sub(count.saturating_mul(unit));
        let months = match self.unit {
            TtlUnit::Hour => return fixed(MICROS_PER_HOUR),
            TtlUnit::Day => return fixed(MICROS_PER_DAY),
            TtlUnit::Week => return fixed(7 * MICROS_PER_DAY),
            TtlUnit::Month => count,
            TtlUnit::Year => count * 12,
        };
        add_months(at, -months).unwrap_or(i64::MIN)
    }

    /// Why a table partitioned by `by` cannot keep this TTL, if it cannot:
    /// partitions are dropped whole, so the TTL is a whole number of them.
    pub fn misfit(self, by: PartitionBy) -> Option<String> {
        let hours_per = |unit: TtlUnit| match unit {
            TtlUnit::Hour => Some(1),
            TtlUnit::Day => Some(24),
            TtlUnit::Week => Some(168),
            TtlUnit::Month | TtlUnit::Year => None,
        };
        let fits = match by {
            PartitionBy::None => {
                return Some("TTL needs a table partitioned by time (PARTITION BY ...)".into());
            }
            PartitionBy::Hour => true,
            PartitionBy::Day | PartitionBy::Week => {
                let partition_hours = if by == PartitionBy::Day { 24 } else { 168 };
                match hours_per(self.unit) {
                    Some(h) => (u64::from(self.count) * h).is_multiple_of(partition_hours),
                    // A month is whole days, not whole weeks.
                    None => by == PartitionBy::Day,
                }
            }
            PartitionBy::Month => matches!(self.unit, TtlUnit::Month | TtlUnit::Year),
            PartitionBy::Year => {
                self.unit == TtlUnit::Year
                    || (self.unit == TtlUnit::Month && self.count.is_multiple_of(12))
            }
        };
        (!fits).then(|| {
            format!(
                "TTL {self} is not a whole number of the table's {} partitions",
                by.name()
            )
        })
    }
}

/// `us` moved by `months` calendar months, keeping the time of day and
/// clamping the day to the month's length (January 31 plus a month is the
/// end of February); None past the range of i64.
pub fn add_months(us: i64, months: i64) -> Option<i64> {
    let (y, m, d) = civil_from_days(us.div_euclid(MICROS_PER_DAY));
    let total = (y * 12 + i64::from(m) - 1).checked_add(months)?;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    days_from_civil(ny, nm, d.min(days_in_month(ny, nm)))
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(us.rem_euclid(MICROS_PER_DAY))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as u32
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.count == 1 { "" } else { "S" };
        write!(f, "{} {}{plural}", self.count, self.unit.name())
    }
}

impl fmt::Display for PartitionBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Days since 1970-01-01 -> (year, month 1..=12, day 1..=31), proleptic Gregorian.
/// (Howard Hinnant's algorithm.)
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01, proleptic Gregorian.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * MICROS_PER_DAY + h * MICROS_PER_HOUR
    }

    #[test]
    fn a_ttl_goes_back_in_fixed_or_calendar_units() {
        let ttl = |count, unit| Ttl { count, unit };
        let at = ts(2026, 3, 31, 10) + 7;
        assert_eq!(ttl(36, TtlUnit::Hour).before(at), ts(2026, 3, 29, 22) + 7);
        assert_eq!(ttl(2, TtlUnit::Week).before(at), ts(2026, 3, 17, 10) + 7);
        // A month back from March 31 is February's last day, time kept.
        assert_eq!(ttl(1, TtlUnit::Month).before(at), ts(2026, 2, 28, 10) + 7);
        assert_eq!(ttl(13, TtlUnit::Month).before(at), ts(2025, 2, 28, 10) + 7);
        assert_eq!(
            ttl(2, TtlUnit::Year).before(ts(2028, 2, 29, 0)),
            ts(2026, 2, 28, 0)
        );
        assert_eq!(ttl(1, TtlUnit::Day).before(i64::MIN + 1), i64::MIN);
        assert_eq!(ttl(1, TtlUnit::Day).to_string(), "1 DAY");
        assert_eq!(ttl(3, TtlUnit::Month).to_string(), "3 MONTHS");
    }

    #[test]
    fn a_ttl_must_be_whole_partitions() {
        let ttl = |count, unit| Ttl { count, unit };
        let fits = |t: Ttl, by| t.misfit(by).is_none();
        assert!(fits(ttl(36, TtlUnit::Hour), PartitionBy::Hour));
        assert!(fits(ttl(48, TtlUnit::Hour), PartitionBy::Day));
        assert!(!fits(ttl(36, TtlUnit::Hour), PartitionBy::Day));
        assert!(fits(ttl(3, TtlUnit::Month), PartitionBy::Day));
        assert!(fits(ttl(14, TtlUnit::Day), PartitionBy::Week));
        assert!(!fits(ttl(10, TtlUnit::Day), PartitionBy::Week));
        assert!(!fits(ttl(1, TtlUnit::Month), PartitionBy::Week));
        assert!(!fits(ttl(30, TtlUnit::Day), PartitionBy::Month));
        assert!(fits(ttl(2, TtlUnit::Year), PartitionBy::Month));
        assert!(fits(ttl(24, TtlUnit::Month), PartitionBy::Year));
        assert!(!fits(ttl(18, TtlUnit::Month), PartitionBy::Year));
        assert!(!fits(ttl(1, TtlUnit::Year), PartitionBy::None));
    }

    #[test]
    fn partition_names() {
        let t = ts(2026, 11, 21, 10) + 123;
        assert_eq!(
            PartitionBy::Day.partition_name(PartitionBy::Day.partition_start(t)),
            "2026-11-21"
        );
        assert_eq!(
            PartitionBy::Hour.partition_name(PartitionBy::Hour.partition_start(t)),
            "2026-11-21T10"
        );
        assert_eq!(
            PartitionBy::Month.partition_name(PartitionBy::Month.partition_start(t)),
            "2026-11"
        );
        assert_eq!(
            PartitionBy::Year.partition_name(PartitionBy::Year.partition_start(t)),
            "2026"
        );
        assert_eq!(
            PartitionBy::Week.partition_name(PartitionBy::Week.partition_start(t)),
            "2026-W47"
        );
        assert_eq!(
            PartitionBy::None.partition_name(PartitionBy::None.partition_start(t)),
            "default"
        );
        // ISO week-year differs from the calendar year around New Year.
        let d = ts(2021, 1, 3, 0);
        assert_eq!(
            PartitionBy::Week.partition_name(PartitionBy::Week.partition_start(d)),
            "2020-W53"
        );
        let d = ts(2024, 12, 30, 0);
        assert_eq!(
            PartitionBy::Week.partition_name(PartitionBy::Week.partition_start(d)),
            "2025-W01"
        );
        // Before the epoch.
        let d = ts(1969, 12, 31, 23) + 5;
        assert_eq!(
            PartitionBy::Hour.partition_name(PartitionBy::Hour.partition_start(d)),
            "1969-12-31T23"
        );
    }

    proptest! {
        #[test]
        fn civil_roundtrip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn partition_bounds_contain_the_timestamp(t in -4_000_000_000_000_000i64..4_000_000_000_000_000) {
            for p in [PartitionBy::Hour, PartitionBy::Day, PartitionBy::Week, PartitionBy::Month, PartitionBy::Year] {
                let s = p.partition_start(t);
                prop_assert!(s <= t && t < p.partition_end(s), "{p} {t} {s}");
                prop_assert_eq!(p.partition_start(s), s);
                prop_assert_eq!(p.partition_start(p.partition_end(s)), p.partition_end(s));
            }
        }

        /// Nanoseconds fall into the partition of their microsecond, and the
        /// bounds are those of microseconds, times 1,000.
        #[test]
        fn nanosecond_partitions_are_microsecond_partitions(t in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000) {
            for by in PartitionBy::ALL {
                let nanos = Partitioning { by, per_micro: 1_000 };
                let micros = Partitioning { by, per_micro: 1 };
                let s = nanos.start(t);
                prop_assert!(s <= t && t < nanos.end(s), "{by} {t} {s}");
                prop_assert_eq!(nanos.start(s), s);
                let us = micros.start(t.div_euclid(1_000));
                if by != PartitionBy::None {
                    prop_assert_eq!(s, us.saturating_mul(1_000));
                    prop_assert_eq!(nanos.end(s), micros.end(us).saturating_mul(1_000));
                }
                prop_assert_eq!(nanos.name(s), micros.name(us));
            }
        }
    }
}
