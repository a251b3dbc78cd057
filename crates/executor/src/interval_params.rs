//! Interval parameters: what drivers send for a `timedelta` or a Duration
//! (`ts > now() - $1`), bound as an `INTERVAL '...'` literal that DataFusion
//! reads. PostgreSQL's binary form is months, days and microseconds; its text
//! forms are unit words (`1 year 2 mons 3 days`) and a clock (`-04:05:06.5`),
//! which Python's `str(timedelta)` (`400 days, 0:00:00`) also is.

use crate::params::ParamValue;

/// The parameter for PostgreSQL's binary interval fields.
pub fn from_fields(months: i32, days: i32, micros: i64) -> ParamValue {
    ParamValue::Typed {
        type_name: "INTERVAL",
        text: literal_text(months, days, micros),
    }
}

/// The parameter for interval text: read as PostgreSQL reads its own output
/// when it can, otherwise left for DataFusion's reader (`1 day 2 hours`,
/// `P1D` fail there with the error naming the text).
pub fn from_text(text: &str) -> ParamValue {
    let text = match parse_postgres(text) {
        Some((months, days, micros)) => literal_text(months, days, micros),
        None => text.to_string(),
    };
    ParamValue::Typed {
        type_name: "INTERVAL",
        text,
    }
}

/// Text DataFusion's interval reader takes exactly: every field with its unit,
/// the time as signed seconds with six decimals.
fn literal_text(months: i32, days: i32, micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!(
        "{months} months {days} days {sign}{}.{:06} seconds",
        abs / 1_000_000,
        abs % 1_000_000
    )
}

/// PostgreSQL's interval text (IntervalStyle postgres, also Python's
/// `str(timedelta)` with its comma): `[n unit]... [[+-]h:mm[:ss[.f]]]`, units
/// year, mon/month, week, day, hour, min/minute, sec/second (plural or not).
/// `None` for anything else.
pub fn parse_postgres(text: &str) -> Option<(i32, i32, i64)> {
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: i64 = 0;
    let mut tokens = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .peekable();
    tokens.peek()?;
    while let Some(token) = tokens.next() {
        if token.contains(':') {
            micros = micros.checked_add(clock_micros(token)?)?;
            continue;
        }
        let value: f64 = token.parse().ok()?;
        let unit = tokens.next()?.to_ascii_lowercase();
        let unit = unit.strip_suffix('s').unwrap_or(&unit);
        let whole = |v: f64| (v.fract() == 0.0 && v.abs() < 1e12).then_some(v as i64);
        match unit {
            "year" => months = months.checked_add(whole(value)?.checked_mul(12)?)?,
            "mon" | "month" => months = months.checked_add(whole(value)?)?,
            "week" => days = days.checked_add(whole(value)?.checked_mul(7)?)?,
            "day" => days = days.checked_add(whole(value)?)?,
            "hour" => micros = micros.checked_add(seconds_micros(value * 3600.0)?)?,
            "min" | "minute" => micros = micros.checked_add(seconds_micros(value * 60.0)?)?,
            "sec" | "second" => micros = micros.checked_add(seconds_micros(value)?)?,
            _ => return None,
        }
    }
    Some((
        i32::try_from(months).ok()?,
        i32::try_from(days).ok()?,
        micros,
    ))
}

/// Seconds (with a fraction) as whole microseconds, rounded as PostgreSQL does.
fn seconds_micros(seconds: f64) -> Option<i64> {
    let micros = (seconds * 1e6).round();
    (micros.is_finite() && micros.abs() < 9.2e18).then_some(micros as i64)
}

/// `[+-]h:mm[:ss[.f]]` in microseconds.
fn clock_micros(token: &str) -> Option<i64> {
    let (negative, rest) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let mut parts = rest.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds: f64 = match parts.next() {
        Some(s) if !s.starts_with(['-', '+']) => s.parse().ok()?,
        Some(_) => return None,
        None => 0.0,
    };
    if parts.next().is_some() || !(0..60).contains(&minutes) || !(0.0..60.0).contains(&seconds) {
        return None;
    }
    let total = hours
        .checked_mul(3_600_000_000)?
        .checked_add(minutes * 60_000_000)?
        .checked_add(seconds_micros(seconds)?)?;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_and_python_interval_text_reads_as_fields() {
        let h = 3_600_000_000i64;
        assert_eq!(parse_postgres("1 day 02:00:00"), Some((0, 1, 2 * h)));
        assert_eq!(parse_postgres("400 days, 0:00:00"), Some((0, 400, 0)));
        assert_eq!(parse_postgres("-1 day, 23:00:00"), Some((0, -1, 23 * h)));
        assert_eq!(parse_postgres("1:00:00.000005"), Some((0, 0, h + 5)));
        assert_eq!(
            parse_postgres("1 year 2 mons -3 days +04:05:06.789"),
            Some((14, -3, 4 * h + 306_789_000))
        );
        assert_eq!(
            parse_postgres("-3 mons +00:00:01"),
            Some((-3, 0, 1_000_000))
        );
        assert_eq!(parse_postgres("-00:00:01.5"), Some((0, 0, -1_500_000)));
        assert_eq!(
            parse_postgres("2 weeks 1.5 hours"),
            Some((0, 14, 90 * 60_000_000))
        );
        assert_eq!(parse_postgres("P1D"), None);
        assert_eq!(parse_postgres(""), None);
        assert_eq!(parse_postgres("1 fortnight"), None);
        assert_eq!(parse_postgres("1.5 days"), None);
        assert_eq!(parse_postgres("10:75:00"), None);
    }

    #[test]
    fn fields_become_text_datafusion_reads_back() {
        use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
        for (months, days, micros) in [(0, 1, 7_200_000_000), (-3, 0, 1_000_000), (14, -3, -5)] {
            let ParamValue::Typed { text, .. } = from_fields(months, days, micros) else {
                panic!("typed");
            };
            let v = parse_interval_month_day_nano(&text).expect(&text);
            assert_eq!(
                (v.months, v.days, v.nanoseconds),
                (months, days, micros * 1_000),
                "{text}"
            );
        }
    }
}
