//! Interval literals on timestamps, as QuestDB reads them: `ts IN '2026-11'`,
//! `'2026-11-21'`, `'2026-11-21T10'`, `'2026-11-21T10:30'`,
//! `'2026-11-21T10:30:05.25'`; `'<range>;<modifier>'`, whose modifier (a signed
//! number and a unit of U µs, T ms, s, m, h, d, w, M months, y years) moves the
//! range's end (`'2018;1M'` is 2018 and January 2019); and
//! `'<range>;<modifier>;<interval>;<count>'`, that range and `count - 1` more,
//! each `interval` after the one before (`'2026-01-05T09:30;6h;1d;5'`: five
//! trading sessions). QuestDB's TICK forms (brackets, `$today`, `@zone`,
//! `#workday`, `;6h30m`) are read by `tick.rs` into ranges the same way.
//!
//! `IN` directly followed by a string literal is never standard SQL, so the
//! tokens `x IN '<interval>'` are rewritten to `(x >= TIMESTAMP '<start>' AND x <
//! TIMESTAMP '<end>')` when `x` is a column (a repeating interval to an OR of
//! such ranges), and otherwise to `BETWEEN TIMESTAMP '<first µs>' AND TIMESTAMP
//! '<last µs>'`; DataFusion plans them and the storage scan turns them into
//! partition pruning. The half-open form keeps a TIMESTAMP_NS column's values in
//! the last microsecond of the range.
//!
//! QuestDB's `IN today()`, `IN yesterday()` and `IN tomorrow()` (the UTC day of
//! the statement's `now()`, or the day before or after; with a zone argument,
//! that zone's day) become a `BETWEEN` of expressions on `now()` likewise,
//! evaluated when the statement runs.

use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

pub(crate) const DAY: i64 = 86_400_000_000;

/// Why an interval literal was refused.
pub(crate) struct BadInterval {
    pub(crate) message: String,
    pub(crate) at: TokenWithSpan,
}

/// Rewrites every `IN '<interval>'` in `tokens`.
pub(crate) fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, BadInterval> {
    let in_position = position_ins(&tokens);
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let is_in = matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("IN"))
            && !in_position.contains(&i);
        if is_in {
            let mut j = i + 1;
            while j < tokens.len() && matches!(tokens[j].token, Token::Whitespace(_)) {
                j += 1;
            }
            // QuestDB's `IN interval(lo, hi)`: both bounds included.
            if let Some((lo, hi, end)) = interval_call(&tokens, j) {
                let with = |token: Token| TokenWithSpan {
                    token,
                    span: t.span,
                };
                let space = || with(Token::Whitespace(Whitespace::Space));
                out.extend([
                    with(Token::make_keyword("BETWEEN")),
                    space(),
                    with(Token::LParen),
                ]);
                out.extend_from_slice(lo);
                out.extend([
                    with(Token::RParen),
                    space(),
                    with(Token::make_keyword("AND")),
                    space(),
                    with(Token::LParen),
                ]);
                out.extend_from_slice(hi);
                out.push(with(Token::RParen));
                i = end + 1;
                continue;
            }
            if let Some((days, zone)) = day_function(&tokens[j..]) {
                out.extend(day_between(days, zone.as_deref(), t.span));
                // IN, the name, `(` and `)`, with any spaces between them.
                let mut k = j + 1;
                while k < tokens.len() && tokens[k].token != Token::RParen {
                    k += 1;
                }
                i = k + 1;
                continue;
            }
            if let Some(Token::SingleQuotedString(s)) = tokens.get(j).map(|x| &x.token) {
                let bad = |m: String| BadInterval {
                    message: format!("invalid interval literal '{s}': {m}"),
                    at: tokens[j].clone(),
                };
                let ranges = parse_all(s).map_err(bad)?;
                // Over a column: `x >= lo AND x < hi` (exact for nanoseconds too).
                let mut before = out.clone();
                if let Some((operand, negated)) = take_operand(&mut before) {
                    out = before;
                    out.extend(any_of(&operand, negated, &ranges, t.span));
                    i = j + 1;
                    continue;
                }
                if let [_, _, ..] = ranges.as_slice() {
                    return Err(bad(
                        "a repeating interval needs a column name left of IN".into()
                    ));
                }
                // Over another expression: BETWEEN the first and last microsecond.
                let (lo, hi) = ranges[0];
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

/// The indexes of the `IN` tokens of SQL's `position(substring IN string)`:
/// those directly inside the parentheses of a `position` call.
fn position_ins(tokens: &[TokenWithSpan]) -> Vec<usize> {
    let mut ins = Vec::new();
    // The depths (open parentheses) at which a `position(` call's own
    // parentheses hold its arguments.
    let mut calls: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut previous_word_is_position = false;
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::Whitespace(_) => continue,
            Token::LParen => {
                depth += 1;
                if previous_word_is_position {
                    calls.push(depth);
                }
            }
            Token::RParen => {
                if calls.last() == Some(&depth) {
                    calls.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Token::Word(w)
                if w.quote_style.is_none()
                    && w.value.eq_ignore_ascii_case("IN")
                    && calls.last() == Some(&depth) =>
            {
                ins.push(i);
            }
            _ => {}
        }
        previous_word_is_position = matches!(&t.token,
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("POSITION"));
    }
    ins
}

/// The bounds of `interval(lo, hi)` starting at `tokens[start]`, and the
/// index of its closing parenthesis; `None` for anything else (left for the
/// parser to name).
fn interval_call(
    tokens: &[TokenWithSpan],
    start: usize,
) -> Option<(&[TokenWithSpan], &[TokenWithSpan], usize)> {
    let is_interval = matches!(&tokens.get(start)?.token,
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("interval"));
    let open =
        (start + 1..tokens.len()).find(|&k| !matches!(tokens[k].token, Token::Whitespace(_)))?;
    if !is_interval || tokens[open].token != Token::LParen {
        return None;
    }
    let mut depth = 0usize;
    let mut comma = None;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => {
                depth -= 1;
                if depth == 0 {
                    let comma = comma?;
                    let (lo, hi) = (&tokens[open + 1..comma], &tokens[comma + 1..k]);
                    let solid = |part: &[TokenWithSpan]| {
                        part.iter()
                            .any(|t| !matches!(t.token, Token::Whitespace(_)))
                    };
                    return (solid(lo) && solid(hi)).then_some((lo, hi, k));
                }
            }
            // A second comma: not the two-bound form.
            Token::Comma if depth == 1 => {
                if comma.is_some() {
                    return None;
                }
                comma = Some(k);
            }
            _ => {}
        }
    }
    None
}

/// `today()`, `yesterday()`, `tomorrow()` (the day's offset from today) and
/// QuestDB's forms with a time zone, `today('Europe/London')` (the zone).
fn day_function(tokens: &[TokenWithSpan]) -> Option<(i64, Option<String>)> {
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
    if solid.next() != Some(&Token::LParen) {
        return None;
    }
    match solid.next()? {
        Token::RParen => Some((days, None)),
        Token::SingleQuotedString(zone) => {
            (solid.next() == Some(&Token::RParen)).then(|| (days, Some(zone.clone())))
        }
        _ => None,
    }
}

/// `BETWEEN <day start> AND <day end - 1 µs>` for the day `days` from today,
/// UTC's or that of `zone` (its wall clock's day, as instants), as tokens placed
/// at `span`. The zone is checked where `to_timezone` is planned (22023).
fn day_between(
    days: i64,
    zone: Option<&str>,
    span: datafusion_sql::sqlparser::tokenizer::Span,
) -> Vec<TokenWithSpan> {
    let text = match zone {
        None => {
            let start =
                format!("(CAST(date_trunc('day', now()) AS TIMESTAMP) + INTERVAL '{days} day')");
            format!("BETWEEN {start} AND {start} + INTERVAL '1 day' - INTERVAL '1 microsecond'")
        }
        Some(zone) => {
            let zone = zone.replace('\'', "''");
            let local = format!(
                "(date_trunc('day', to_timezone(now(), '{zone}')) + INTERVAL '{days} day')"
            );
            format!(
                "BETWEEN to_utc({local}, '{zone}') \
                 AND to_utc({local} + INTERVAL '1 day', '{zone}') - INTERVAL '1 microsecond'"
            )
        }
    };
    tokens_at(&text, span)
}

/// `text` (SQL of ours) as tokens placed at `span`. It tokenizes; no tokens (an
/// impossible failure) would leave the statement to fail to parse there.
fn tokens_at(text: &str, span: datafusion_sql::sqlparser::tokenizer::Span) -> Vec<TokenWithSpan> {
    let dialect = crate::dialect::TidemarkDialect::default();
    datafusion_sql::sqlparser::tokenizer::Tokenizer::new(&dialect, text)
        .tokenize()
        .unwrap_or_default()
        .into_iter()
        .map(|token| TokenWithSpan { token, span })
        .collect()
}

/// The most ranges a repeating interval may name (each is a predicate to plan).
pub(crate) const MAX_REPEATS: i64 = 1_000;

/// `[lo, hi)` in microseconds of an interval naming one range.
pub(crate) fn parse(s: &str) -> Result<(i64, i64), String> {
    match parse_all(s)?.as_slice() {
        [one] => Ok(*one),
        _ => Err("a repeating interval names several ranges".into()),
    }
}

/// Every `[lo, hi)` range, in microseconds, an interval literal names.
pub(crate) fn parse_all(s: &str) -> Result<Vec<(i64, i64)>, String> {
    if crate::tick::is_tick(s) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        return crate::tick::ranges(s, now);
    }
    let parts: Vec<&str> = s.split(';').map(str::trim).collect();
    // QuestDB writes UTC timestamps with a `Z`; every interval here is UTC.
    let start = parts[0].strip_suffix('Z').unwrap_or(parts[0]);
    let (lo, hi) = prefix(start)?;
    let (lo, hi) = match parts.get(1) {
        None => (lo, hi),
        // The modifier moves the last microsecond of the range, as QuestDB's does.
        Some(m) => {
            let last = shift(hi - 1, m, 1)?;
            if last < lo {
                return Err(format!("modifier '{m}' ends the range before it starts"));
            }
            (lo, last + 1)
        }
    };
    match parts.as_slice() {
        [_] | [_, _] => Ok(vec![(lo, hi)]),
        [_, _, step, count] => {
            let count: i64 = count
                .parse()
                .ok()
                .filter(|n| (1..=MAX_REPEATS).contains(n))
                .ok_or_else(|| format!("count '{count}': expected 1 to {MAX_REPEATS}"))?;
            (0..count)
                .map(|k| Ok((shift(lo, step, k)?, shift(hi - 1, step, k)? + 1)))
                .collect()
        }
        _ => Err("expected <range>[;<modifier>[;<interval>;<count>]]".into()),
    }
}

/// Which tokens at the end of `out` are the column left of `IN` (a name, maybe
/// qualified: `ts`, `t.ts`, `"Time"`), taken off `out`; and whether a `NOT`
/// stood between it and `IN`. `None` when something else is there, and when
/// the name is only the end of a larger operand (`a + ts`, `x::timestamp`):
/// what comes before it must start an expression.
fn take_operand(out: &mut Vec<TokenWithSpan>) -> Option<(Vec<TokenWithSpan>, bool)> {
    let trim = |out: &mut Vec<TokenWithSpan>| {
        while matches!(out.last().map(|t| &t.token), Some(Token::Whitespace(_))) {
            out.pop();
        }
    };
    trim(out);
    let negated = matches!(out.last().map(|t| &t.token),
        Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("NOT"));
    if negated {
        out.pop();
        trim(out);
    }
    let mut operand = vec![];
    loop {
        let word = out.pop()?;
        if !matches!(word.token, Token::Word(_)) {
            return None;
        }
        operand.insert(0, word);
        if out.last().map(|t| &t.token) != Some(&Token::Period) {
            break;
        }
        operand.insert(0, out.pop()?);
    }
    trim(out);
    let starts_expression = match out.last().map(|t| &t.token) {
        None | Some(Token::LParen | Token::Comma) => true,
        Some(Token::Word(w)) if w.quote_style.is_none() => [
            "WHERE", "AND", "OR", "NOT", "ON", "WHEN", "THEN", "ELSE", "HAVING", "SELECT",
        ]
        .iter()
        .any(|k| w.value.eq_ignore_ascii_case(k)),
        _ => false,
    };
    starts_expression.then_some((operand, negated))
}

/// `[NOT] ((x >= .. AND x < ..) OR ..)` over `ranges`, the ORs nested as a
/// balanced tree (a chain of a thousand would be a thousand levels deep), as
/// tokens placed at `span`.
fn any_of(
    operand: &[TokenWithSpan],
    negated: bool,
    ranges: &[(i64, i64)],
    span: datafusion_sql::sqlparser::tokenizer::Span,
) -> Vec<TokenWithSpan> {
    fn tree(x: &str, ranges: &[(i64, i64)]) -> String {
        match ranges {
            [(lo, hi)] => format!(
                "({x} >= TIMESTAMP '{}' AND {x} < TIMESTAMP '{}')",
                format_ts(*lo),
                format_ts(*hi)
            ),
            _ => {
                let (a, b) = ranges.split_at(ranges.len() / 2);
                format!("({} OR {})", tree(x, a), tree(x, b))
            }
        }
    }
    let x: String = operand.iter().map(|t| t.token.to_string()).collect();
    // `tree` is parenthesized whatever the number of ranges.
    let text = format!(" {}{}", if negated { "NOT " } else { "" }, tree(&x, ranges));
    // The operand's tokens print back as they were read.
    tokens_at(&text, span)
}

/// The interval a timestamp prefix covers: a year, month, day, hour, minute,
/// second or fraction of one.
pub(crate) fn prefix(s: &str) -> Result<(i64, i64), String> {
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

/// `ts` moved by `times` times the duration `d` (a signed number and a unit of
/// U, T, s, m, h, d, w, M, y; months and years by the calendar, the day of the
/// month clamped to the month's last, as QuestDB's `addMonths`).
pub(crate) fn shift(ts: i64, d: &str, times: i64) -> Result<i64, String> {
    let bad = || {
        format!("bad duration '{d}': expected a signed number and one of U, T, s, m, h, d, w, M, y")
    };
    let unit = d.chars().last().ok_or_else(bad)?;
    let n: i64 = d[..d.len() - unit.len_utf8()]
        .parse()
        .ok()
        .filter(|n| *n != 0)
        .ok_or_else(bad)?;
    let n = n.checked_mul(times).ok_or_else(bad)?;
    let micros = |per: i64| {
        n.checked_mul(per)
            .and_then(|x| ts.checked_add(x))
            .filter(|t| t.abs() < 253_402_300_800_000_000)
            .ok_or_else(|| format!("duration '{d}' goes past the year 9999"))
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
            let days = ts.div_euclid(DAY);
            let (y, m, dd) = civil_from_days(days);
            let total = months
                .and_then(|months| (y * 12 + (m as i64 - 1)).checked_add(months))
                .ok_or_else(bad)?;
            let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
            if !(0..=9999).contains(&ny) {
                return Err(format!("duration '{d}' goes past the year 9999"));
            }
            let last_day =
                civil_from_days(days_from_civil(ny + nm as i64 / 12, nm % 12 + 1, 1) - 1).2;
            Ok(days_from_civil(ny, nm, dd.min(last_day)) * DAY + ts.rem_euclid(DAY))
        }
        _ => Err(bad()),
    }
}

pub(crate) fn format_ts(us: i64) -> String {
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
        // The modifier moves the range's end (its last microsecond), as QuestDB's.
        assert_eq!(
            iv("2026-11-21T10:00;1h"),
            (
                "2026-11-21 10:00:00.000000".into(),
                "2026-11-21 11:01:00.000000".into()
            )
        );
        assert_eq!(
            iv("2026-11-21T10:00:00.000000;1h"),
            (
                "2026-11-21 10:00:00.000000".into(),
                "2026-11-21 11:00:00.000001".into()
            )
        );
        assert_eq!(
            iv("2026-11-21;2d"),
            (
                "2026-11-21 00:00:00.000000".into(),
                "2026-11-24 00:00:00.000000".into()
            )
        );
        // QuestDB's documented examples: 2018 and January 2019; January less 3 days.
        assert_eq!(
            iv("2018;1M"),
            (
                "2018-01-01 00:00:00.000000".into(),
                "2019-02-01 00:00:00.000000".into()
            )
        );
        assert_eq!(
            iv("2018-01;-3d"),
            (
                "2018-01-01 00:00:00.000000".into(),
                "2018-01-29 00:00:00.000000".into()
            )
        );
        // Months by the calendar, the day clamped to the month's last.
        assert_eq!(
            iv("2026-11-30;3M"),
            (
                "2026-11-30 00:00:00.000000".into(),
                "2027-03-01 00:00:00.000000".into()
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
            "2026-01;-2M",
            "2026-01-05;6h;1d",
            "2026-01-05;6h;1d;0",
            "2026-01-05;6h;1d;1001",
            "2026-01-05;6h;1x;2",
            "2026-01-05;6h;1d;2;3",
        ] {
            assert!(parse_all(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_column_left_of_in_gets_half_open_ranges_and_other_operands_between() {
        let rewritten = |sql: &str| -> String {
            let dialect = crate::dialect::TidemarkDialect::default();
            let tokens = datafusion_sql::sqlparser::tokenizer::Tokenizer::new(&dialect, sql)
                .tokenize_with_location()
                .expect(sql);
            let out = rewrite(tokens).unwrap_or_else(|b| panic!("{sql}: {}", b.message));
            out.iter().map(|t| t.token.to_string()).collect()
        };
        assert_eq!(
            rewritten("SELECT 1 WHERE t.ts IN '2026-11-21'"),
            "SELECT 1 WHERE (t.ts >= TIMESTAMP '2026-11-21 00:00:00.000000' \
             AND t.ts < TIMESTAMP '2026-11-22 00:00:00.000000')"
        );
        assert_eq!(
            rewritten("SELECT 1 WHERE a AND ts NOT IN '2026'"),
            "SELECT 1 WHERE a AND NOT (ts >= TIMESTAMP '2026-01-01 00:00:00.000000' \
             AND ts < TIMESTAMP '2027-01-01 00:00:00.000000')"
        );
        // Not a plain column: the whole left side stays whole.
        for sql in [
            "SELECT 1 WHERE x::timestamp IN '2026'",
            "SELECT 1 WHERE a + ts IN '2026'",
        ] {
            assert!(
                rewritten(sql).contains(" BETWEEN TIMESTAMP '2026-01-01 00:00:00.000000' AND"),
                "{sql}: {}",
                rewritten(sql)
            );
        }
    }

    #[test]
    fn repeating_intervals_repeat_the_range() {
        let all = |s: &str| -> Vec<(String, String)> {
            parse_all(s)
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .into_iter()
                .map(|(a, b)| (format_ts(a), format_ts(b)))
                .collect()
        };
        // QuestDB's own example: 10:30 to 11:00 every second day, twice.
        assert_eq!(
            all("2018-01-10T10:30:00.000Z;30m;2d;2"),
            [
                (
                    "2018-01-10 10:30:00.000000".into(),
                    "2018-01-10 11:00:00.001000".into()
                ),
                (
                    "2018-01-12 10:30:00.000000".into(),
                    "2018-01-12 11:00:00.001000".into()
                ),
            ]
        );
        // Months by the calendar; a negative interval counts back.
        assert_eq!(
            all("2026-01-31;1h;1M;2")
                .iter()
                .map(|r| r.0.clone())
                .collect::<Vec<_>>(),
            ["2026-01-31 00:00:00.000000", "2026-02-28 00:00:00.000000"]
        );
        assert_eq!(
            all("2026-01-10;-12h;-1d;2"),
            [
                (
                    "2026-01-10 00:00:00.000000".into(),
                    "2026-01-10 12:00:00.000000".into()
                ),
                (
                    "2026-01-09 00:00:00.000000".into(),
                    "2026-01-09 12:00:00.000000".into()
                ),
            ]
        );
        assert!(parse("2026-01-10;1h;1d;2").is_err());
        assert_eq!(
            parse_all("2026-01-10;1h;1d;1000").map(|r| r.len()),
            Ok(1000)
        );
    }
}
