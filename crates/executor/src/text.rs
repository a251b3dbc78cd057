//! PostgreSQL's text representation of values (what psql shows and what the
//! wire protocol's text format carries).

use bytes::BufMut;
use chrono::{Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, FixedSizeBinaryArray,
    StringArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use tidemark_storage::types::{MICROS_PER_DAY, civil_from_days};

use crate::error::Result;

/// The value at `row` as a result row carries it in the wire protocol's text
/// format: [`format_value`], except that a TIMESTAMP_NS value (nanoseconds, no
/// zone) is written with microseconds, as a PostgreSQL `timestamp` always is, and
/// an interval likewise. Python's drivers (psycopg 2 and 3) refuse more than six
/// fractional digits, and the binary format carries microseconds too; `::text`,
/// COPY TO and the HTTP API keep the nanoseconds.
pub fn format_result_value(array: &ArrayRef, row: usize) -> Result<Option<String>> {
    if array.is_null(row) {
        return Ok(None);
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, None) => Ok(Some(timestamp(timestamp_micros(
            array,
            TimeUnit::Nanosecond,
            row,
        )))),
        DataType::Interval(_) | DataType::Duration(_) => Ok(interval_parts(array, row)
            .map(|(months, days, nanos)| interval(months, days, nanos - nanos % 1_000))),
        _ => format_value(array, row),
    }
}

/// The value at `row` as PostgreSQL text, `None` for NULL.
pub fn format_value(array: &ArrayRef, row: usize) -> Result<Option<String>> {
    // A NULL literal's array (type Null) has no validity bitmap: every row is NULL.
    if array.is_null(row) || array.data_type() == &DataType::Null {
        return Ok(None);
    }
    macro_rules! prim {
        ($t:ty) => {
            array.as_primitive::<$t>().value(row).to_string()
        };
    }
    Ok(Some(match array.data_type() {
        DataType::Boolean => {
            let a = array.as_any().downcast_ref::<BooleanArray>();
            if a.is_some_and(|a| a.value(row)) {
                "t"
            } else {
                "f"
            }
            .to_string()
        }
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => float(array.as_primitive::<Float32Type>().value(row) as f64, true),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row), false),
        DataType::Utf8 => array
            .as_any()
            .downcast_ref::<StringArray>()
            .map(|a| a.value(row).to_string())
            .unwrap_or_default(),
        DataType::Timestamp(unit, zone) => {
            let raw = stored_i64(array, row).unwrap_or_default();
            match (zone, unit) {
                // An instant: PostgreSQL shows it in the session time zone with its
                // offset (results carry that zone: `Output::in_time_zone`).
                (Some(zone), _) => timestamptz_in(micros_of(raw, *unit), zone),
                // TIMESTAMP_NS keeps its nanoseconds (as QuestDB sends them).
                (None, TimeUnit::Nanosecond) => timestamp_nanos(raw),
                (None, _) => timestamp(micros_of(raw, *unit)),
            }
        }
        DataType::Interval(_) | DataType::Duration(_) => match interval_parts(array, row) {
            Some((months, days, nanos)) => interval(months, days, nanos),
            None => return Ok(None),
        },
        DataType::Date32 => {
            let d = array
                .as_any()
                .downcast_ref::<Date32Array>()
                .map(|a| a.value(row))
                .unwrap_or_default();
            date(d as i64)
        }
        DataType::FixedSizeBinary(16) => uuid(
            array
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .map(|a| a.value(row))
                .unwrap_or_default(),
        ),
        DataType::Binary => {
            let b = array
                .as_any()
                .downcast_ref::<BinaryArray>()
                .map(|a| a.value(row).to_vec())
                .unwrap_or_default();
            format!(
                "\\x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            )
        }
        // Look the one key up: casting the whole dictionary array per row made
        // every result with a SYMBOL column quadratic in its batch size.
        DataType::Dictionary(..) => {
            let dictionary = array.as_any_dictionary();
            return match dictionary_key(dictionary.keys(), row) {
                Some(key) if key < dictionary.values().len() => {
                    format_value(dictionary.values(), key)
                }
                _ => Ok(None),
            };
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let mut out = String::new();
            match list_value(array, row) {
                Some(elements) => write_array_literal(&elements, &mut out)?,
                None => return Ok(None),
            }
            out
        }
        _ => {
            let a = cast(array, &DataType::Utf8)?;
            a.as_any()
                .downcast_ref::<StringArray>()
                .map(|a| a.value(row).to_string())
                .unwrap_or_default()
        }
    }))
}

/// The elements of the list at `row` of a list array (any of Arrow's three list
/// layouts), `None` when the array is not a list.
pub fn list_value(array: &dyn Array, row: usize) -> Option<ArrayRef> {
    match array.data_type() {
        DataType::List(_) => Some(array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => Some(array.as_list::<i64>().value(row)),
        DataType::FixedSizeList(..) => Some(array.as_fixed_size_list().value(row)),
        _ => None,
    }
}

/// PostgreSQL's array literal of `elements`: `{1,2,NULL}`, `{{1,2},{3,4}}` for a
/// list of lists, `{"a b","x\"y"}` with the elements array_out quotes.
fn write_array_literal(elements: &ArrayRef, out: &mut String) -> Result<()> {
    out.push('{');
    for i in 0..elements.len() {
        if i > 0 {
            out.push(',');
        }
        if elements.is_null(i) || elements.data_type() == &DataType::Null {
            out.push_str("NULL");
        } else if let Some(inner) = list_value(elements.as_ref(), i) {
            write_array_literal(&inner, out)?;
        } else {
            let text = format_value(elements, i)?.unwrap_or_default();
            push_array_element(&text, out);
        }
    }
    out.push('}');
    Ok(())
}

/// One element of an array literal, double-quoted (with `"` and `\` escaped) where
/// array_out quotes it: empty, `NULL` in any case, or holding a delimiter, brace,
/// quote, backslash or white space.
pub(crate) fn push_array_element(text: &str, out: &mut String) {
    let quote = text.is_empty()
        || text.eq_ignore_ascii_case("NULL")
        || text.chars().any(|c| {
            matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace() || c == '\x0b'
        });
    if !quote {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The dictionary key at `row`, whatever integer type the keys have.
fn dictionary_key(keys: &dyn Array, row: usize) -> Option<usize> {
    macro_rules! key {
        ($t:ty) => {
            usize::try_from(keys.as_primitive::<$t>().value(row)).ok()
        };
    }
    match keys.data_type() {
        DataType::Int8 => key!(Int8Type),
        DataType::Int16 => key!(Int16Type),
        DataType::Int32 => key!(Int32Type),
        DataType::Int64 => key!(Int64Type),
        DataType::UInt8 => key!(UInt8Type),
        DataType::UInt16 => key!(UInt16Type),
        DataType::UInt32 => key!(UInt32Type),
        DataType::UInt64 => key!(UInt64Type),
        _ => None,
    }
}

/// A `double precision` read from PostgreSQL's text form (what `float` writes):
/// `NaN`, `Infinity` and `-Infinity` in any case, `inf` too, or a number.
pub fn parse_float8(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "inf" | "+infinity" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn float(v: f64, single: bool) -> String {
    let mut out = Vec::with_capacity(24);
    write_float(&mut out, v, single);
    String::from_utf8(out).unwrap_or_default()
}

/// PostgreSQL's float output: the shortest digits that read back exactly, written
/// with an exponent (`1e+15`, `3.4e+38`, `1e-05`) when it is below -4 or at least
/// the type's decimal precision (15 for DOUBLE, 6 for REAL), plainly otherwise.
/// The digits come from `ryu` (float formatting was the largest item of
/// encoding a result as text), in whichever form it writes them.
fn write_float(out: &mut impl BufMut, v: f64, single: bool) {
    if v.is_nan() {
        return out.put_slice(b"NaN");
    }
    if v.is_infinite() {
        return out.put_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
    }
    let mut buffer = ryu::Buffer::new();
    let (text, precision) = if single {
        (buffer.format_finite(v as f32), 6)
    } else {
        (buffer.format_finite(v), 15)
    };
    let (negative, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The significant digits, and the power of ten of the first one.
    let mut digits = [0u8; 40];
    let mut n = 0;
    for &d in whole.as_bytes().iter().chain(fraction.as_bytes()).take(40) {
        digits[n] = d;
        n += 1;
    }
    let mut exp = exp + whole.len() as i32 - 1;
    let leading = digits[..n].iter().take_while(|&&d| d == b'0').count();
    let digits = &digits[leading..n];
    exp -= leading as i32;
    let digits = &digits[..digits.len() - digits.iter().rev().take_while(|&&d| d == b'0').count()];
    let mut text = Piece::default();
    if negative {
        text.push(b'-');
    }
    if digits.is_empty() {
        text.push(b'0');
    } else if exp < -4 || exp >= precision {
        text.push(digits[0]);
        if digits.len() > 1 {
            text.push(b'.');
            text.extend(&digits[1..]);
        }
        text.extend(if exp < 0 { b"e-" } else { b"e+" });
        let e = exp.unsigned_abs();
        text.digits(e, if e < 100 { 2 } else { 3 });
    } else {
        // Digits before the decimal point (0 or fewer: a leading "0.").
        match usize::try_from(exp + 1) {
            Err(_) | Ok(0) => {
                text.extend(b"0.");
                text.zeros((-exp - 1) as usize);
                text.extend(digits);
            }
            Ok(p) if p >= digits.len() => {
                text.extend(digits);
                text.zeros(p - digits.len());
            }
            Ok(p) => {
                text.extend(&digits[..p]);
                text.push(b'.');
                text.extend(&digits[p..]);
            }
        }
    }
    out.put_slice(text.as_bytes());
}

/// A value's text gathered on the stack and written to the output in one
/// piece: a timestamp or a float is a dozen small writes, and each write to a
/// `BufMut` checks (and may grow) the output. Long enough for any value
/// written through it (a timestamp is at most 26 bytes, a float 32).
struct Piece {
    bytes: [u8; 48],
    len: usize,
}

impl Default for Piece {
    fn default() -> Self {
        Piece {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl Piece {
    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn zeros(&mut self, count: usize) {
        self.bytes[self.len..self.len + count].fill(b'0');
        self.len += count;
    }

    /// `v` in decimal, zero-padded to `width` digits (`v` has at most `width`).
    fn digits(&mut self, mut v: u32, width: usize) {
        let end = self.len + width;
        for at in (self.len..end).rev() {
            self.bytes[at] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len = end;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `v` in decimal, with its sign.
fn write_signed(out: &mut impl BufMut, v: i64) {
    let mut text = [0u8; 20];
    let mut at = text.len();
    let mut rest = v.unsigned_abs();
    loop {
        at -= 1;
        text[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        text[at] = b'-';
    }
    out.put_slice(&text[at..]);
}

/// `YYYY-MM-DD`.
pub(crate) fn date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The 8-4-4-4-12 hex form of a UUID.
pub(crate) fn uuid(bytes: &[u8]) -> String {
    let h: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
    if h.len() != 32 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A `timestamp with time zone` as PostgreSQL prints it with `TimeZone` UTC:
/// `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
pub(crate) fn timestamptz(us: i64) -> String {
    let mut s = timestamp(us);
    s.push_str("+00");
    s
}

/// The zone a TimeZone setting names, for showing instants in it: UTC (as
/// `+00:00`, the zone of TIMESTAMPTZ columns) for UTC's spellings and for names no
/// zone database entry matches (`UTC+3`: POSIX spellings are accepted, shown in UTC).
pub(crate) fn display_zone(setting: &str) -> std::sync::Arc<str> {
    let name = setting.trim();
    let utc = [
        "UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "+00:00", "UCT", "Zulu", "",
    ]
    .iter()
    .any(|u| u.eq_ignore_ascii_case(name));
    if utc || name.parse::<Tz>().is_err() {
        return crate::types::UTC_OFFSET.into();
    }
    name.into()
}

/// The zone named `name`, parsed once per thread while the name stays the same:
/// results are formatted a value at a time, all in the session's zone.
fn parsed_zone(name: &str) -> Option<Tz> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, Option<Tz>)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((cached, tz)) = last.as_ref()
            && cached == name
        {
            return *tz;
        }
        let tz = name.parse::<Tz>().ok();
        *last = Some((name.to_string(), tz));
        tz
    })
}

/// An instant as PostgreSQL shows it in `zone`: the local time there and its
/// offset (`2026-11-21 11:00:00+01`, `+05:30`). A zone Arrow cannot read is UTC.
fn timestamptz_in(us: i64, zone: &str) -> String {
    if zone == crate::types::UTC_OFFSET {
        return timestamptz(us);
    }
    let offset = parsed_zone(zone)
        .and_then(|tz| {
            let utc = chrono::DateTime::from_timestamp_micros(us)?.naive_utc();
            Some(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
        })
        .unwrap_or(0);
    let mut s = timestamp(us.saturating_add(i64::from(offset) * 1_000_000));
    let (sign, abs) = if offset < 0 {
        ('-', -offset)
    } else {
        ('+', offset)
    };
    s.push_str(&format!("{sign}{:02}", abs / 3600));
    if abs % 3600 != 0 {
        s.push_str(&format!(":{:02}", abs / 60 % 60));
    }
    if abs % 60 != 0 {
        s.push_str(&format!(":{:02}", abs % 60));
    }
    s
}

const NANOS_PER_DAY: i128 = 86_400_000_000_000;

/// Row `row` of an interval or duration array as PostgreSQL's interval fields:
/// months, days and the time in nanoseconds. A duration (the difference of two
/// timestamps) gives whole days of 24 hours and the rest, as PostgreSQL's
/// `timestamp - timestamp` does.
pub fn interval_parts(array: &ArrayRef, row: usize) -> Option<(i32, i32, i64)> {
    use datafusion::arrow::datatypes::{
        IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType,
    };
    let duration = |nanos: i128| {
        let days = i32::try_from(nanos / NANOS_PER_DAY).ok()?;
        Some((0, days, (nanos % NANOS_PER_DAY) as i64))
    };
    match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => Some((
            array
                .as_primitive_opt::<IntervalYearMonthType>()?
                .value(row),
            0,
            0,
        )),
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive_opt::<IntervalDayTimeType>()?.value(row);
            Some((0, v.days, i64::from(v.milliseconds) * 1_000_000))
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array
                .as_primitive_opt::<IntervalMonthDayNanoType>()?
                .value(row);
            Some((v.months, v.days, v.nanoseconds))
        }
        DataType::Duration(unit) => {
            let per_nano: i128 = match unit {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            };
            duration(i128::from(stored_i64(array, row)?) * per_nano)
        }
        _ => None,
    }
}

/// An interval as PostgreSQL writes it (IntervalStyle `postgres`): `1 year 2 mons
/// -3 days +04:05:06.789`, `23:59:58.5`, `00:00:00`. A field after a negative one
/// carries its sign; the time shows nanoseconds only when it has some below a
/// microsecond (PostgreSQL's resolution).
pub(crate) fn interval(months: i32, days: i32, nanos: i64) -> String {
    let mut out = String::new();
    let mut after_negative = false;
    let years = months / 12;
    for (value, unit) in [
        (i64::from(years), "year"),
        (i64::from(months % 12), "mon"),
        (i64::from(days), "day"),
    ] {
        if value == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if after_negative && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value != 1 { "s" } else { "" }
        ));
        after_negative = value < 0;
    }
    if out.is_empty() || nanos != 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        if nanos < 0 {
            out.push('-');
        } else if after_negative {
            out.push('+');
        }
        let abs = nanos.unsigned_abs();
        let secs = abs / 1_000_000_000;
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ));
        let frac = abs % 1_000_000_000;
        if frac != 0 {
            let digits = if frac.is_multiple_of(1_000) {
                format!("{:06}", frac / 1_000)
            } else {
                format!("{frac:09}")
            };
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
    }
    out
}

/// The stored number of row `row` of a timestamp or duration array (any unit);
/// `None` for another type.
fn stored_i64(array: &ArrayRef, row: usize) -> Option<i64> {
    use datafusion::arrow::datatypes::{
        ArrowPrimitiveType, DurationMicrosecondType, DurationMillisecondType,
        DurationNanosecondType, DurationSecondType, TimestampMicrosecondType,
        TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    };
    fn value<T: ArrowPrimitiveType<Native = i64>>(array: &ArrayRef, row: usize) -> Option<i64> {
        array.as_primitive_opt::<T>().map(|a| a.value(row))
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => value::<TimestampSecondType>(array, row),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            value::<TimestampMillisecondType>(array, row)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            value::<TimestampMicrosecondType>(array, row)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            value::<TimestampNanosecondType>(array, row)
        }
        DataType::Duration(TimeUnit::Second) => value::<DurationSecondType>(array, row),
        DataType::Duration(TimeUnit::Millisecond) => value::<DurationMillisecondType>(array, row),
        DataType::Duration(TimeUnit::Microsecond) => value::<DurationMicrosecondType>(array, row),
        DataType::Duration(TimeUnit::Nanosecond) => value::<DurationNanosecondType>(array, row),
        _ => None,
    }
}

/// Row `row` of a timestamp array of unit `unit`, in microseconds (what
/// PostgreSQL's binary format carries).
pub fn timestamp_micros(array: &ArrayRef, unit: TimeUnit, row: usize) -> i64 {
    micros_of(stored_i64(array, row).unwrap_or_default(), unit)
}

/// A timestamp of unit `unit` in microseconds (nanoseconds rounded down;
/// coarser units saturate at the ends of time).
fn micros_of(value: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(1_000_000),
        TimeUnit::Millisecond => value.saturating_mul(1_000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value.div_euclid(1_000),
    }
}

/// A TIMESTAMP_NS value (nanoseconds since the epoch) as text: PostgreSQL's
/// timestamp form with up to nine fractional digits, trailing zeros trimmed.
pub(crate) fn timestamp_nanos(ns: i64) -> String {
    let mut s = timestamp(ns.div_euclid(1_000_000_000) * 1_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    if frac != 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` with trailing zeros of the fraction trimmed.
pub(crate) fn timestamp(us: i64) -> String {
    let mut out = Vec::with_capacity(26);
    write_timestamp(&mut out, us);
    String::from_utf8(out).unwrap_or_default()
}

/// [`timestamp`] written to `out` in one piece: every result row's
/// timestamps pass here, and `format!` cost several times more.
fn write_timestamp(out: &mut impl BufMut, us: i64) {
    let days = us.div_euclid(MICROS_PER_DAY);
    let rem = us.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = (rem / 1_000_000) as u32;
    let frac = (rem % 1_000_000) as u32;
    let mut text = Piece::default();
    match u32::try_from(y).ok().filter(|&y| y <= 9999) {
        Some(y) => text.digits(y, 4),
        None => out.put_slice(format!("{y:04}").as_bytes()),
    }
    text.push(b'-');
    text.digits(m, 2);
    text.push(b'-');
    text.digits(d, 2);
    text.push(b' ');
    text.digits(secs / 3600, 2);
    text.push(b':');
    text.digits(secs / 60 % 60, 2);
    text.push(b':');
    text.digits(secs % 60, 2);
    if frac != 0 {
        text.push(b'.');
        let mut frac = frac;
        let mut width = 6;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        text.digits(frac, width);
    }
    out.put_slice(text.as_bytes());
}

/// A column of one batch taken apart once, to write its values as text row
/// after row: the types of a typical time-series result (DOUBLE, BIGINT,
/// TIMESTAMP, text, SYMBOL) are matched once per batch instead of once per
/// value. NULL writes nothing.
#[derive(Debug)]
pub struct TextColumn<'a> {
    array: &'a ArrayRef,
    nulls: Option<&'a NullBuffer>,
    result: bool,
    values: TextValues<'a>,
}

#[derive(Debug)]
enum TextValues<'a> {
    Double(&'a [f64]),
    Long(&'a [i64]),
    Timestamp(&'a [i64], TimeUnit),
    Text(&'a StringArray),
    Symbol(&'a [i32], Box<TextColumn<'a>>),
    Other,
}

impl<'a> TextColumn<'a> {
    /// Values as a result row carries them in the wire protocol's text format
    /// ([`format_result_value`]).
    pub fn for_result(array: &'a ArrayRef) -> Self {
        Self::new(array, true)
    }

    /// Values as [`format_value`] gives them (TIMESTAMP_NS with its
    /// nanoseconds): for COPY TO.
    pub fn for_copy(array: &'a ArrayRef) -> Self {
        Self::new(array, false)
    }

    fn new(array: &'a ArrayRef, result: bool) -> Self {
        use datafusion::arrow::datatypes::{
            TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
            TimestampSecondType,
        };
        let values = match array.data_type() {
            DataType::Float64 => TextValues::Double(array.as_primitive::<Float64Type>().values()),
            DataType::Int64 => TextValues::Long(array.as_primitive::<Int64Type>().values()),
            DataType::Timestamp(unit, None) if result || *unit != TimeUnit::Nanosecond => {
                let values = match unit {
                    TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                    TimeUnit::Millisecond => {
                        array.as_primitive::<TimestampMillisecondType>().values()
                    }
                    TimeUnit::Microsecond => {
                        array.as_primitive::<TimestampMicrosecondType>().values()
                    }
                    TimeUnit::Nanosecond => {
                        array.as_primitive::<TimestampNanosecondType>().values()
                    }
                };
                TextValues::Timestamp(values, *unit)
            }
            DataType::Utf8 => match array.as_any().downcast_ref::<StringArray>() {
                Some(text) => TextValues::Text(text),
                None => TextValues::Other,
            },
            DataType::Dictionary(key, _) if **key == DataType::Int32 => {
                let dictionary = array.as_dictionary::<Int32Type>();
                TextValues::Symbol(
                    dictionary.keys().values(),
                    Box::new(Self::new(dictionary.values(), result)),
                )
            }
            _ => TextValues::Other,
        };
        TextColumn {
            array,
            nulls: array.nulls(),
            result,
            values,
        }
    }

    /// Appends the text of row `row` to `out`; `false` (nothing written) for NULL.
    pub fn write(&self, out: &mut impl BufMut, row: usize) -> Result<bool> {
        if self.nulls.is_some_and(|nulls| nulls.is_null(row)) {
            return Ok(false);
        }
        match &self.values {
            TextValues::Double(values) => write_float(out, values[row], false),
            TextValues::Long(values) => write_signed(out, values[row]),
            TextValues::Timestamp(values, unit) => {
                write_timestamp(out, micros_of(values[row], *unit))
            }
            TextValues::Text(text) => out.put_slice(text.value(row).as_bytes()),
            TextValues::Symbol(keys, values) => {
                return match usize::try_from(keys[row]) {
                    Ok(key) if key < values.array.len() => values.write(out, key),
                    _ => Ok(false),
                };
            }
            TextValues::Other => return write_other(out, self.array, row, self.result),
        }
        Ok(true)
    }
}

/// [`TextColumn::write`] for the types it does not take apart: row `row` of
/// `array`, which is not NULL. `result`: as a result row carries it
/// ([`format_result_value`]), else as [`format_value`]. REAL and the smaller
/// integers are written without a `String` per value.
fn write_other(out: &mut impl BufMut, array: &ArrayRef, row: usize, result: bool) -> Result<bool> {
    match array.data_type() {
        DataType::Float32 => write_float(
            out,
            f64::from(array.as_primitive::<Float32Type>().value(row)),
            true,
        ),
        DataType::Int32 => {
            write_signed(out, i64::from(array.as_primitive::<Int32Type>().value(row)))
        }
        DataType::Int16 => {
            write_signed(out, i64::from(array.as_primitive::<Int16Type>().value(row)))
        }
        // A dictionary with keys other than SYMBOL's `Int32`.
        DataType::Dictionary(..) => {
            let dictionary = array.as_any_dictionary();
            return match dictionary_key(dictionary.keys(), row) {
                Some(key) if key < dictionary.values().len() => {
                    TextColumn::new(dictionary.values(), result).write(out, key)
                }
                _ => Ok(false),
            };
        }
        _ => {
            let text = if result {
                format_result_value(array, row)?
            } else {
                format_value(array, row)?
            };
            match text {
                Some(text) => out.put_slice(text.as_bytes()),
                None => return Ok(false),
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's float text from Rust's own shortest digits, the way it was
    /// written before `ryu`: the reference the fast writer must match.
    fn reference_float(v: f64, single: bool) -> String {
        let (plain, exponent, precision) = if single {
            ((v as f32).to_string(), format!("{:e}", v as f32), 6)
        } else {
            (v.to_string(), format!("{v:e}"), 15)
        };
        let Some((mantissa, exp)) = exponent.split_once('e') else {
            return plain;
        };
        let exp: i32 = exp.parse().expect("exponent");
        if exp < -4 || exp >= precision {
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.abs())
        } else {
            plain
        }
    }

    proptest::proptest! {
        #[test]
        fn floats_match_the_reference(bits in proptest::prelude::any::<u64>(), small in -1e7f64..1e7) {
            // The same value in as many characters: where two shortest digit
            // strings are equally near (a tie), ryu rounds half to even as
            // PostgreSQL's own Ryu does, and Rust's formatter may round up.
            for v in [f64::from_bits(bits), small, small.round(), small / 1e9] {
                if v.is_finite() {
                    let (ours, reference) = (float(v, false), reference_float(v, false));
                    proptest::prop_assert_eq!(ours.len(), reference.len(), "{} {}", ours, reference);
                    proptest::prop_assert_eq!(ours.parse::<f64>().ok(), Some(v), "{}", ours);
                    let single = f64::from(v as f32);
                    if single.is_finite() {
                        let (ours, reference) = (float(single, true), reference_float(single, true));
                        proptest::prop_assert_eq!(ours.len(), reference.len(), "{} {}", ours, reference);
                        proptest::prop_assert_eq!(ours.parse::<f32>().ok(), Some(v as f32), "{}", ours);
                    }
                }
            }
        }
    }

    #[test]
    fn result_values_are_written_as_formatted() {
        use datafusion::arrow::array::{
            DictionaryArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
            Int64Array, TimestampMicrosecondArray, TimestampNanosecondArray,
        };
        use datafusion::arrow::datatypes::{Int8Type, Int32Type};
        use std::sync::Arc;
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(-0.0),
                Some(1e20),
            ])),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(0),
                None,
                Some(42),
            ])),
            Arc::new(Int32Array::from(vec![
                Some(-7),
                None,
                Some(i32::MAX),
                Some(0),
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_795_219_200_123_400),
                Some(-1),
                None,
                Some(253_402_300_800_000_000),
            ])),
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(1_500),
                None,
                Some(-1),
                Some(0),
            ])),
            Arc::new(StringArray::from(vec![
                Some("a b"),
                Some(""),
                None,
                Some("é"),
            ])),
            Arc::new(DictionaryArray::<Int32Type>::new(
                Int32Array::from(vec![Some(1), None, Some(0), Some(1)]),
                Arc::new(StringArray::from(vec!["S0", "S1"])),
            )),
            Arc::new(DictionaryArray::<Int8Type>::new(
                Int8Array::from(vec![Some(0), Some(1), None, Some(0)]),
                Arc::new(Float64Array::from(vec![Some(2.5), None])),
            )),
            Arc::new(Float32Array::from(vec![
                Some(0.1),
                None,
                Some(-1e20),
                Some(f32::NAN),
            ])),
            Arc::new(Int16Array::from(vec![
                Some(i16::MIN),
                None,
                Some(7),
                Some(0),
            ])),
        ];
        for array in &arrays {
            for row in 0..array.len() {
                let mut out = Vec::new();
                let written = TextColumn::for_result(array)
                    .write(&mut out, row)
                    .expect("writes");
                let expected = format_result_value(array, row).expect("formats");
                assert_eq!(
                    written.then(|| String::from_utf8(out).expect("utf-8")),
                    expected,
                    "{:?} row {row}",
                    array.data_type()
                );
                let mut out = Vec::new();
                let written = TextColumn::for_copy(array)
                    .write(&mut out, row)
                    .expect("writes");
                let expected = format_value(array, row).expect("formats");
                assert_eq!(
                    written.then(|| String::from_utf8(out).expect("utf-8")),
                    expected,
                    "COPY text of {:?} row {row}",
                    array.data_type()
                );
            }
        }
    }

    #[test]
    fn floats_like_postgres() {
        // What PostgreSQL 15 prints (extra_float_digits 1, the default).
        for (v, text) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.5, "1.5"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (1234.5678, "1234.5678"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1e+15"),
            (-1.5e15, "-1.5e+15"),
            (0.0001, "0.0001"),
            (0.000123, "0.000123"),
            (0.00001, "1e-05"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(float(v, false), text, "{v:e}");
        }
        for (v, text) in [
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (3.4028235e38, "3.4028235e+38"),
            (0.1, "0.1"),
            // A tie between two shortest forms: PostgreSQL 15 prints 3.0653822e+06.
            (3065382.25, "3.0653822e+06"),
        ] {
            assert_eq!(float(v, true), text, "{v:e}");
        }
    }

    #[test]
    fn timestamps_like_postgres() {
        assert_eq!(timestamp(1), "1970-01-01 00:00:00.000001");
        assert_eq!(timestamp(10), "1970-01-01 00:00:00.00001");
        assert_eq!(timestamp(1_795_219_200_123_400), "2026-11-21 00:00:00.1234");
        assert_eq!(timestamp(-62_135_596_800_000_000), "0001-01-01 00:00:00");
        assert_eq!(timestamp(253_402_300_800_000_000), "10000-01-01 00:00:00");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_500_000), "1970-01-01 00:00:01.5");
        assert_eq!(timestamp(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(timestamp_nanos(0), "1970-01-01 00:00:00");
        // What PostgreSQL 15 prints for the same intervals.
        let h = 3_600_000_000_000i64;
        assert_eq!(interval(0, 1, 2 * h), "1 day 02:00:00");
        assert_eq!(interval(0, 0, 24 * h - 1_500_000_000), "23:59:58.5");
        assert_eq!(interval(-3, 0, 1_000_000_000), "-3 mons +00:00:01");
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(13, 1, 0), "1 year 1 mon 1 day");
        assert_eq!(
            interval(14, -3, 4 * h + 306_789_000_000),
            "1 year 2 mons -3 days +04:05:06.789"
        );
        assert_eq!(interval(0, -1, -1_000_000_000), "-1 days -00:00:01");
        assert_eq!(interval(0, 2, 0), "2 days");
        assert_eq!(interval(0, 0, -1_500_000_000), "-00:00:01.5");
        assert_eq!(interval(0, 0, 100 * h), "100:00:00");
        assert_eq!(interval(-24, 0, 0), "-2 years");
        assert_eq!(interval(0, 0, 3_000_000_007), "00:00:03.000000007");
        assert_eq!(
            timestamp_nanos(1_123_456_789),
            "1970-01-01 00:00:01.123456789"
        );
        assert_eq!(timestamp_nanos(1_500_000_000), "1970-01-01 00:00:01.5");
        assert_eq!(timestamp_nanos(-1), "1969-12-31 23:59:59.999999999");
        assert_eq!(micros_of(-1, TimeUnit::Nanosecond), -1);
        assert_eq!(micros_of(1_999, TimeUnit::Nanosecond), 1);
        let ns: ArrayRef =
            std::sync::Arc::new(datafusion::arrow::array::TimestampNanosecondArray::from(
                vec![Some(1_123_456_789), None],
            ));
        assert_eq!(
            format_result_value(&ns, 0).expect("text").as_deref(),
            Some("1970-01-01 00:00:01.123456")
        );
        assert_eq!(format_result_value(&ns, 1).expect("text"), None);
        assert_eq!(
            format_value(&ns, 0).expect("text").as_deref(),
            Some("1970-01-01 00:00:01.123456789")
        );
        assert_eq!(timestamptz(1_500_000), "1970-01-01 00:00:01.5+00");
        assert_eq!(float(f64::NAN, false), "NaN");
        assert_eq!(float(0.1, false), "0.1");
        // As PostgreSQL prints them.
        assert_eq!(float(f64::MAX, false), "1.7976931348623157e+308");
        assert_eq!(float(1e15, false), "1e+15");
        assert_eq!(float(123456789012345.0, false), "123456789012345");
        assert_eq!(float(0.0001, false), "0.0001");
        assert_eq!(float(0.00001, false), "1e-05");
        assert_eq!(float(-2.5e-300, false), "-2.5e-300");
        assert_eq!(float(-0.0, false), "-0");
        assert_eq!(float(3.4e38, true), "3.4e+38");
        assert_eq!(float(123456.0, true), "123456");
        assert_eq!(float(1234567.0, true), "1.234567e+06");
    }

    #[test]
    fn lists_format_as_postgres_arrays() {
        use datafusion::arrow::array::{ListArray, ListBuilder, StringBuilder};
        use datafusion::arrow::datatypes::Int64Type as I64;
        use std::sync::Arc;
        let ints: ArrayRef = Arc::new(ListArray::from_iter_primitive::<I64, _, _>(vec![
            Some(vec![Some(1), None, Some(-3)]),
            Some(vec![]),
            None,
        ]));
        let texts: Vec<Option<String>> = (0..3)
            .map(|r| format_value(&ints, r).expect("formats"))
            .collect();
        assert_eq!(texts, [Some("{1,NULL,-3}".into()), Some("{}".into()), None]);

        let mut strings = ListBuilder::new(StringBuilder::new());
        for s in ["plain", "", "null", "a b", "x\"y", "back\\slash", "{c,d}"] {
            strings.values().append_value(s);
        }
        strings.append(true);
        let strings: ArrayRef = Arc::new(strings.finish());
        assert_eq!(
            format_value(&strings, 0).expect("formats").as_deref(),
            Some(r#"{plain,"","null","a b","x\"y","back\\slash","{c,d}"}"#)
        );

        let mut nested = ListBuilder::new(ListBuilder::new(
            datafusion::arrow::array::Float64Builder::new(),
        ));
        for row in [[1.5, 2.0], [3.0, f64::NAN]] {
            for v in row {
                nested.values().values().append_value(v);
            }
            nested.values().append(true);
        }
        nested.append(true);
        let nested: ArrayRef = Arc::new(nested.finish());
        assert_eq!(
            format_value(&nested, 0).expect("formats").as_deref(),
            Some("{{1.5,2},{3,NaN}}")
        );
    }

    #[test]
    fn symbols_format_their_dictionary_value() {
        use datafusion::arrow::array::{DictionaryArray, Int32Array};
        use std::sync::Arc;
        let values = Arc::new(StringArray::from(vec!["buy", "sell"]));
        let keys = Int32Array::from(vec![Some(1), None, Some(0)]);
        let a: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys, values).expect("valid dictionary"),
        );
        let texts: Vec<Option<String>> = (0..3)
            .map(|r| format_value(&a, r).expect("formats"))
            .collect();
        assert_eq!(texts, [Some("sell".into()), None, Some("buy".into())]);
    }
}
