//! QuestDB's date functions, with its one-letter units (`u` microsecond, `T`
//! millisecond, `s`, `m` minute, `h`, `d`, `w` week, `M` month, `y` year):
//! - `dateadd(unit, n, ts)`: `ts` moved by n units (months and years by the
//!   calendar, the day clamped to the month's last);
//! - `datediff(unit, a, b)`: the whole units between two timestamps (absolute);
//! - `timestamp_floor('5m', ts)`: `ts` rounded down to a multiple of the interval
//!   since 1970-01-01 (weeks start on Monday, months and years on the calendar);
//!   `timestamp_ceil('h', ts)` up to the next such multiple (`ts` when on one).
//!
//! Timestamps keep their type (TIMESTAMP or TIMESTAMPTZ); arithmetic is in UTC.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result as DfResult, exec_err, plan_err};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use tidemark_storage::types::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_SECOND};

/// A QuestDB time unit letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A fixed length in microseconds.
    Fixed(i64),
    Month,
    Year,
}

/// Monday 1969-12-29, where weeks are counted from (1970-01-01 was a Thursday).
const WEEK_ORIGIN: i64 = -3 * MICROS_PER_DAY;

fn unit(letter: char) -> Option<Unit> {
    Some(match letter {
        'u' | 'U' => Unit::Fixed(1),
        'T' => Unit::Fixed(1_000),
        's' => Unit::Fixed(MICROS_PER_SECOND),
        'm' => Unit::Fixed(60 * MICROS_PER_SECOND),
        'h' => Unit::Fixed(MICROS_PER_HOUR),
        'd' => Unit::Fixed(MICROS_PER_DAY),
        'w' => Unit::Fixed(7 * MICROS_PER_DAY),
        'M' => Unit::Month,
        'y' => Unit::Year,
        _ => return None,
    })
}

/// `'5m'`, `'d'`: a multiplier (1 if absent) and a unit.
fn interval(text: &str) -> Option<(i64, Unit)> {
    let letter = text.chars().last()?;
    let digits = &text[..text.len() - letter.len_utf8()];
    let n = if digits.is_empty() {
        1
    } else {
        digits.parse::<i64>().ok().filter(|n| *n > 0)?
    };
    Some((n, unit(letter)?))
}

fn bad_unit(function: &str, text: &str) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(format!(
        "{function}: invalid unit '{text}': use u, T, s, m, h, d, w, M or y"
    ))
}

/// (year, month 1-12, day, micros into the day) of a timestamp.
fn civil(us: i64) -> (i64, u32, u32, i64) {
    let days = us.div_euclid(MICROS_PER_DAY);
    let (y, m, d) = tidemark_storage::types::civil_from_days(days);
    (y, m, d, us.rem_euclid(MICROS_PER_DAY))
}

fn from_civil(y: i64, m: u32, d: u32, in_day: i64) -> Option<i64> {
    tidemark_storage::types::days_from_civil(y, m, d)
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(in_day)
}

fn add(us: i64, n: i64, unit: Unit) -> Option<i64> {
    match unit {
        Unit::Fixed(len) => us.checked_add(n.checked_mul(len)?),
        Unit::Month => tidemark_storage::types::add_months(us, n),
        Unit::Year => tidemark_storage::types::add_months(us, n.checked_mul(12)?),
    }
}

/// Whole units from `a` to `b`, absolute.
fn diff(a: i64, b: i64, unit: Unit) -> i64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    match unit {
        Unit::Fixed(len) => ((i128::from(hi) - i128::from(lo)) / i128::from(len)) as i64,
        Unit::Month | Unit::Year => {
            let (y1, m1, d1, t1) = civil(lo);
            let (y2, m2, d2, t2) = civil(hi);
            let mut months = (y2 * 12 + i64::from(m2)) - (y1 * 12 + i64::from(m1));
            if (d2, t2) < (d1, t1) {
                months -= 1;
            }
            if unit == Unit::Year {
                months / 12
            } else {
                months
            }
        }
    }
}

fn floor(us: i64, n: i64, unit: Unit) -> Option<i64> {
    match unit {
        Unit::Fixed(len) => {
            let step = len.checked_mul(n)?;
            // Weeks count from a Monday; everything else from the epoch.
            let origin = if len == 7 * MICROS_PER_DAY {
                WEEK_ORIGIN
            } else {
                0
            };
            let since = us.checked_sub(origin)?;
            since
                .div_euclid(step)
                .checked_mul(step)?
                .checked_add(origin)
        }
        Unit::Month | Unit::Year => {
            let (y, m, _, _) = civil(us);
            let months = if unit == Unit::Year { 12 * n } else { n };
            let index = (y - 1970) * 12 + i64::from(m) - 1;
            let floored = index.div_euclid(months) * months;
            from_civil(
                1970 + floored.div_euclid(12),
                (floored.rem_euclid(12) + 1) as u32,
                1,
                0,
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    DateAdd,
    DateDiff,
    TimestampFloor,
    TimestampCeil,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct QuestDbTime {
    function: Function,
    signature: Signature,
}

/// Registers `dateadd`, `datediff`, `timestamp_floor` and `timestamp_ceil` in `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    for function in [
        Function::DateAdd,
        Function::DateDiff,
        Function::TimestampFloor,
        Function::TimestampCeil,
    ] {
        ctx.register_udf(ScalarUDF::from(QuestDbTime {
            function,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

/// The microsecond timestamp type a timestamp-like argument is taken as.
fn timestamp_of(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(_, tz) => Some(DataType::Timestamp(TimeUnit::Microsecond, tz.clone())),
        DataType::Date32
        | DataType::Date64
        | DataType::Utf8
        | DataType::Utf8View
        | DataType::LargeUtf8
        | DataType::Null => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        _ => None,
    }
}

impl ScalarUDFImpl for QuestDbTime {
    fn name(&self) -> &str {
        match self.function {
            Function::DateAdd => "dateadd",
            Function::DateDiff => "datediff",
            Function::TimestampFloor => "timestamp_floor",
            Function::TimestampCeil => "timestamp_ceil",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let ts = |t: &DataType| {
            timestamp_of(t).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!(
                    "{}: {t} is not a timestamp",
                    self.name()
                ))
            })
        };
        match (self.function, args) {
            // A TIMESTAMP_NS stays nanoseconds (the units add to its microseconds).
            (Function::DateAdd, [_, _, t @ DataType::Timestamp(TimeUnit::Nanosecond, None)]) => {
                Ok(vec![DataType::Utf8, DataType::Int64, t.clone()])
            }
            (Function::DateAdd, [_, _, t]) => Ok(vec![DataType::Utf8, DataType::Int64, ts(t)?]),
            (Function::DateDiff, [_, a, b]) => Ok(vec![DataType::Utf8, ts(a)?, ts(b)?]),
            (Function::TimestampFloor | Function::TimestampCeil, [_, t]) => {
                Ok(vec![DataType::Utf8, ts(t)?])
            }
            _ => plan_err!(
                "{} takes {}",
                self.name(),
                match self.function {
                    Function::DateAdd => "(unit, count, timestamp)",
                    Function::DateDiff => "(unit, timestamp, timestamp)",
                    Function::TimestampFloor | Function::TimestampCeil => "(interval, timestamp)",
                }
            ),
        }
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.function {
            Function::DateDiff => DataType::Int64,
            Function::DateAdd
                if args.last() == Some(&DataType::Timestamp(TimeUnit::Nanosecond, None)) =>
            {
                DataType::Timestamp(TimeUnit::Nanosecond, None)
            }
            _ => args
                .last()
                .and_then(timestamp_of)
                .unwrap_or(DataType::Timestamp(TimeUnit::Microsecond, None)),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = crate::call_args::arrays_of(&args)?;
        let name = self.name();
        let units = arrays[0].as_string::<i32>();
        let parse = |i: usize| -> DfResult<Option<(i64, Unit)>> {
            if units.is_null(i) {
                return Ok(None);
            }
            let text = units.value(i);
            let parsed = match self.function {
                Function::TimestampFloor | Function::TimestampCeil => interval(text),
                _ => {
                    let mut chars = text.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => unit(c).map(|u| (1, u)),
                        _ => None,
                    }
                }
            };
            parsed.map(Some).ok_or_else(|| bad_unit(name, text))
        };
        let out: ArrayRef = match self.function {
            Function::DateAdd => {
                // The stored numbers (microseconds, or a TIMESTAMP_NS's nanoseconds,
                // whose last three digits ride along), then back to the input's type.
                let ts_type = arrays[2].data_type().clone();
                let per_micro = match ts_type {
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => 1_000,
                    _ => 1,
                };
                let n = arrays[1].as_primitive::<Int64Type>();
                let raw = cast(&arrays[2], &DataType::Int64)?;
                let ts = raw.as_primitive::<Int64Type>();
                let values = (0..rows)
                    .map(|i| {
                        let Some((_, u)) = parse(i)? else {
                            return Ok(None);
                        };
                        if n.is_null(i) || ts.is_null(i) {
                            return Ok(None);
                        }
                        let (us, rest) = (
                            ts.value(i).div_euclid(per_micro),
                            ts.value(i).rem_euclid(per_micro),
                        );
                        match add(us, n.value(i), u)
                            .and_then(|us| us.checked_mul(per_micro))
                            .and_then(|v| v.checked_add(rest))
                        {
                            Some(v) => Ok(Some(v)),
                            None => exec_err!("{name}: timestamp out of range"),
                        }
                    })
                    .collect::<DfResult<Int64Array>>()?;
                cast(&values, &ts_type)?
            }
            Function::DateDiff => {
                let a = arrays[1].as_primitive::<TimestampMicrosecondType>();
                let b = arrays[2].as_primitive::<TimestampMicrosecondType>();
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let Some((_, u)) = parse(i)? else {
                                return Ok(None);
                            };
                            Ok((!a.is_null(i) && !b.is_null(i))
                                .then(|| diff(a.value(i), b.value(i), u)))
                        })
                        .collect::<DfResult<Int64Array>>()?,
                )
            }
            Function::TimestampFloor | Function::TimestampCeil => {
                let ceil = self.function == Function::TimestampCeil;
                let ts = arrays[1].as_primitive::<TimestampMicrosecondType>();
                let values = (0..rows)
                    .map(|i| {
                        let Some((n, u)) = parse(i)? else {
                            return Ok(None);
                        };
                        if ts.is_null(i) {
                            return Ok(None);
                        }
                        let us = ts.value(i);
                        // The ceiling: the floor, or the next bucket's start when
                        // the timestamp is not on a boundary.
                        let rounded = floor(us, n, u).and_then(|f| {
                            if ceil && f != us {
                                add(f, n, u)
                            } else {
                                Some(f)
                            }
                        });
                        match rounded {
                            Some(v) => Ok(Some(v)),
                            None => exec_err!("{name}: timestamp out of range"),
                        }
                    })
                    .collect::<DfResult<TimestampMicrosecondArray>>()?;
                Arc::new(values.with_timezone_opt(ts.timezone()))
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_706_745_600_000_000; // 2024-02-01 00:00:00

    #[test]
    fn months_add_by_the_calendar_and_clamp_the_day() {
        let jan31 = T0 - MICROS_PER_DAY; // 2024-01-31
        let feb29 = from_civil(2024, 2, 29, 0).expect("date");
        assert_eq!(add(jan31, 1, Unit::Month), Some(feb29));
        assert_eq!(add(feb29, 1, Unit::Year), from_civil(2025, 2, 28, 0));
        assert_eq!(add(T0, -2, Unit::Month), from_civil(2023, 12, 1, 0));
        assert_eq!(
            add(T0, 3, Unit::Fixed(MICROS_PER_HOUR)),
            Some(T0 + 3 * MICROS_PER_HOUR)
        );
    }

    #[test]
    fn differences_count_whole_units_either_way() {
        let later = from_civil(2024, 5, 1, 0).expect("date");
        assert_eq!(diff(T0, later, Unit::Month), 3);
        assert_eq!(diff(later, T0, Unit::Month), 3);
        assert_eq!(diff(T0, later - 1, Unit::Month), 2);
        assert_eq!(
            diff(T0, T0 + 36 * MICROS_PER_HOUR, Unit::Fixed(MICROS_PER_DAY)),
            1
        );
        assert_eq!(
            diff(T0, from_civil(2026, 1, 31, 0).expect("date"), Unit::Year),
            1
        );
    }

    #[test]
    fn floors_count_from_the_epoch_monday_and_the_calendar() {
        let t = T0 + 7 * 60 * MICROS_PER_SECOND + 5; // 00:07:00.000005
        assert_eq!(
            floor(t, 5, Unit::Fixed(60 * MICROS_PER_SECOND)),
            Some(T0 + 5 * 60 * MICROS_PER_SECOND)
        );
        // 2024-02-01 is a Thursday: its week began on Monday 2024-01-29.
        assert_eq!(
            floor(t, 1, Unit::Fixed(7 * MICROS_PER_DAY)),
            from_civil(2024, 1, 29, 0)
        );
        assert_eq!(floor(t, 1, Unit::Month), Some(T0));
        assert_eq!(floor(t, 1, Unit::Year), from_civil(2024, 1, 1, 0));
        assert_eq!(floor(t, 3, Unit::Month), from_civil(2024, 1, 1, 0));
        assert_eq!(
            floor(-1, 1, Unit::Fixed(MICROS_PER_DAY)),
            Some(-MICROS_PER_DAY)
        );
        assert_eq!(
            interval("5m"),
            Some((5, Unit::Fixed(60 * MICROS_PER_SECOND)))
        );
        assert_eq!(interval("0d"), None);
        assert_eq!(interval("x"), None);
    }
}
