//! Interval literals on timestamps: `ts IN '2026-11'`, `'2026-11-21'`,
//! `'2026-11-21T10'`, `'2026-11-21T10:30'`, `'2026-11-21T10:30:05.25'`, and
//! `'<start>;<duration>'` (from the start of `<start>`, for `<duration>`: a number
//! and a unit of U µs, T ms, s, m, h, d, w, M months, y years).
//!
//! `IN` directly followed by a string literal is never standard SQL, so the
//! tokens `IN '<interval>'` are rewritten to
//! `BETWEEN TIMESTAMP '<first µs>' AND TIMESTAMP '<last µs>'`, which DataFusion
//! plans and the storage scan turns into partition pruning.
//!
//! QuestDB's `IN today()`, `IN yesterday()` and `IN tomorrow()` (the UTC day of
//! the statement's `now()`, or the day before or after) become a `BETWEEN` of
//! expressions on `now()` likewise, evaluated when the statement runs.

use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

const DAY: i64 = 86_400_000_000;

/// Why an interval literal was refused.
pub(crate) struct BadInterval {
    pub(crate) message: String,
    pub(crate) at: TokenWithSpan,
}

/// Rewrites every `IN '<interval>'` in `tokens`.
pub(crate) fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, BadInterval> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let is_in = matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("IN"));
        if is_in {
            let mut j = i + 1;
            while j < tokens.len() && matches!(tokens[j].token, Token::Whitespace(_)) {
                j += 1;
            }
            if let Some(days) = day_function(&tokens[j..]) {
                out.extend(day_between(days, t.span));
                // IN, the name, `(` and `)`, with any spaces between them.
                let mut k = j + 1;
                while k < tokens.len() && tokens[k].token != Token::RParen {
                    k += 1;
                }
                i = k + 1;
                continue;
            }
            if let Some(Token::SingleQuotedString(s)) = tokens.get(j).map(|x| &x.token) {
                let (lo, hi) = parse(s).map_err(|m| BadInterval {
                    message: format!("invalid interval literal '{s}': {m}"),
                    at: tokens[j].clone(),
                })?;
                let span = t.span;
                let with = |token: Token| TokenWithSpan { token, span };
                let space = || with(Token::Whitespace(Whitespace::Space));
                out.extend([
                    with(Token::make_keyword("BETWEEN")),
                    space(),
                    with(Token::make_keyword("TIMESTAMP")),
                    space(),
                    with(Token::SingleQuotedString(format_ts(lo))),
                    space(),
                    with(Token::make_keyword("AND")),
                    space(),
                    with(Token::make_keyword("TIMESTAMP")),
                    space(),
                    with(Token::SingleQuotedString(format_ts(hi - 1))),
                ]);
                i = j + 1;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

/// Days from today when `tokens` start with `today()`, `yesterday()` or
/// `tomorrow()` (spaces allowed before and inside the parentheses).
fn day_function(tokens: &[TokenWithSpan]) -> Option<i64> {
    let Token::Word(w) = &tokens.first()?.token else {
        return None;
    };
    if w.quote_style.is_some() {
        return None;
    }
    let days = match w.value.to_ascii_lowercase().as_str() {
        "yesterday" => -1,
        "today" => 0,
        "tomorrow" => 1,
        _ => return None,
    };
    let mut solid = tokens[1..]
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .map(|t| &t.token);
    (solid.next() == Some(&Token::LParen) && solid.next() == Some(&Token::RParen)).then_some(days)
}

/// `BETWEEN <day start> AND <day end - 1 µs>` for the UTC day `days` from
/// today, as tokens placed at `span`.
fn day_between(days: i64, span: datafusion_sql::sqlparser::tokenizer::Span) -> Vec<TokenWithSpan> {
    let start = format!("(CAST(date_trunc('day', now()) AS TIMESTAMP) + INTERVAL '{days} day')");
    let text = format!("BETWEEN {start} AND {start} + INTERVAL '1 day' - INTERVAL '1 microsecond'");
    let dialect = crate::dialect::TidemarkDialect::default();
    // The text is ours and tokenizes; no tokens (an impossible failure) leaves
    // the statement to fail where BETWEEN lacks its bounds.
    datafusion_sql::sqlparser::tokenizer::Tokenizer::new(&dialect, &text)
        .tokenize()
        .unwrap_or_default()
        .into_iter()
        .map(|token| TokenWithSpan { token, span })
        .collect()
}

/// `[lo, hi)` in microseconds.
pub(crate) fn parse(s: &str) -> Result<(i64, i64), String> {
    let (start, duration) = match s.split_once(';') {
        Some((a, d)) => (a.trim(), Some(d.trim())),
        None => (s.trim(), None),
    };
    // QuestDB writes UTC timestamps with a `Z`; every interval here is UTC.
    let start = start.strip_suffix('Z').unwrap_or(start);
    let (lo, hi) = prefix(start)?;
    match duration {
        None => Ok((lo, hi)),
        Some(d) => Ok((lo, add_duration(lo, d)?)),
    }
}

/// The interval a timestamp prefix covers: a year, month, day, hour, minute,
/// second or fraction of one.
fn prefix(s: &str) -> Result<(i64, i64), String> {
    let bad = || "expected YYYY[-MM[-DD[THH[:MM[:SS[.ffffff]]]]]]".to_string();
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    // Years 0000-9999, like TIMESTAMP literals: larger ones would overflow the
    // microsecond arithmetic below (found by fuzzing).
    let y: i64 = parts
        .next()
        .filter(|p| p.len() == 4)
        .and_then(|p| p.parse().ok())
        .ok_or_else(bad)?;
    let m: Option<u32> = parts
        .next()
        .map(|p| {
            p.parse()
                .ok()
                .filter(|m| (1..=12).contains(m))
                .ok_or_else(bad)
        })
        .transpose()?;
    let d: Option<u32> = parts
        .next()
        .map(|p| {
            p.parse()
                .ok()
                .filter(|d| (1..=31).contains(d))
                .ok_or_else(bad)
        })
        .transpose()?;
    if parts.next().is_some() || (time.is_some() && d.is_none()) {
        return Err(bad());
    }
    let day0 = days_from_civil(y, m.unwrap_or(1), d.unwrap_or(1)) * DAY;
    let Some(time) = time else {
        let end = match (m, d) {
            (None, _) => days_from_civil(y + 1, 1, 1) * DAY,
            (Some(12), None) => days_from_civil(y + 1, 1, 1) * DAY,
            (Some(m), None) => days_from_civil(y, m + 1, 1) * DAY,
            (Some(_), Some(_)) => day0 + DAY,
        };
        return Ok((day0, end));
    };
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (time, None),
    };
    let units: Vec<&str> = hms.split(':').collect();
    let limits = [24, 60, 60];
    let scale = [3_600_000_000i64, 60_000_000, 1_000_000];
    if units.is_empty() || units.len() > 3 || (frac.is_some() && units.len() != 3) {
        return Err(bad());
    }
    let mut lo = day0;
    for (k, u) in units.iter().enumerate() {
        let v: i64 = (u.len() == 2)
            .then(|| u.parse().ok())
            .flatten()
            .filter(|v| *v < limits[k])
            .ok_or_else(bad)?;
        lo += v * scale[k];
    }
    let mut step = scale[units.len() - 1];
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let digits: i64 = f.parse().map_err(|_| bad())?;
        step = 10i64.pow(6 - f.len() as u32);
        lo += digits * step;
    }
    Ok((lo, lo + step))
}

fn add_duration(lo: i64, d: &str) -> Result<i64, String> {
    let bad =
        || format!("bad duration '{d}': expected a number and one of U, T, s, m, h, d, w, M, y");
    let unit = d.chars().last().ok_or_else(bad)?;
    let n: i64 = d[..d.len() - unit.len_utf8()]
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(bad)?;
    let micros = |per: i64| {
        n.checked_mul(per)
            .and_then(|x| lo.checked_add(x))
            .ok_or_else(bad)
    };
    match unit {
        'U' => micros(1),
        'T' => micros(1_000),
        's' => micros(1_000_000),
        'm' => micros(60_000_000),
        'h' => micros(3_600_000_000),
        'd' => micros(DAY),
        'w' => micros(7 * DAY),
        'M' | 'y' => {
            let months = if unit == 'y' {
                n.checked_mul(12)
            } else {
                Some(n)
            };
            let days = lo.div_euclid(DAY);
            let (y, m, dd) = civil_from_days(days);
            let total = months
                .and_then(|months| (y * 12 + (m as i64 - 1)).checked_add(months))
                .ok_or_else(bad)?;
            let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
            if !(0..=9999).contains(&ny) {
                return Err(format!("duration '{d}' ends past the year 9999"));
            }
            Ok(days_from_civil(ny, nm, dd) * DAY + lo.rem_euclid(DAY))
        }
        _ => Err(bad()),
    }
}

fn format_ts(us: i64) -> String {
    let (y, m, d) = civil_from_days(us.div_euclid(DAY));
    let r = us.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}",
        r / 3_600_000_000,
        r / 60_000_000 % 60,
        r / 1_000_000 % 60,
        r % 1_000_000
    )
}

// Proleptic Gregorian calendar (Howard Hinnant's algorithms), as in tidemark-storage.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(s: &str) -> (String, String) {
        let (a, b) = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (format_ts(a), format_ts(b))
    }

    #[test]
    fn out_of_range_years_and_durations_are_errors_not_overflows() {
        // Found by the fuzz targets: these overflowed the microsecond arithmetic.
        for bad in [
            "77777777777",
            "12345",
            "2026;9223372036854775807M",
            "2026;999999999999y",
            "9999-12;1M",
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
        }
        assert!(parse("9999-11;1M").is_ok());
        assert!(parse("0001").is_ok());
    }

    #[test]
    fn a_trailing_z_means_utc_as_everywhere() {
        assert_eq!(
            iv("2024-01-01T00:00:00.000000Z"),
            (
                "2024-01-01 00:00:00.000000".into(),
                "2024-01-01 00:00:00.000001".into()
            )
        );
        assert_eq!(iv("2024-01-01Z;1h"), iv("2024-01-01;1h"));
        assert!(parse("Z").is_err());
    }

    #[test]
    fn prefixes_and_durations() {
        assert_eq!(
            iv("2026"),
            (
                "2026-01-01 00:00:00.000000".into(),
                "2027-01-01 00:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11"),
            (
                "2026-11-01 00:00:00.000000".into(),
                "2026-12-01 00:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-12"),
            (
                "2026-12-01 00:00:00.000000".into(),
                "2027-01-01 00:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11-21"),
            (
                "2026-11-21 00:00:00.000000".into(),
                "2026-11-22 00:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11-21T10"),
            (
                "2026-11-21 10:00:00.000000".into(),
                "2026-11-21 11:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11-21T10:30"),
            (
                "2026-11-21 10:30:00.000000".into(),
                "2026-11-21 10:31:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11-21T10:30:05.25"),
            (
                "2026-11-21 10:30:05.250000".into(),
                "2026-11-21 10:30:05.260000".into()
            )
        );
        assert_eq!(
            iv("2026-11-21T10:00;1h"),
            (
                "2026-11-21 10:00:00.000000".into(),
                "2026-11-21 11:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11-21;2d"),
            (
                "2026-11-21 00:00:00.000000".into(),
                "2026-11-23 00:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11-30;3M"),
            (
                "2026-11-30 00:00:00.000000".into(),
                "2027-02-30 00:00:00.000000".replace("02-30", "03-02")
            )
        );
        for bad in [
            "26-11",
            "2026-13",
            "2026-11-21T25",
            "2026-11-21T10:7",
            "2026;1x",
            "2026;0h",
            "2026-11-21T10:00:00.1234567",
            "x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
