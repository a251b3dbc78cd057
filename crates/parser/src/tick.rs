//! QuestDB's TICK interval syntax, read into the `[lo, hi)` UTC ranges an
//! `IN '...'` literal names (see `interval.rs` for the plain forms):
//! `date [T time] [@zone] [#days] [;duration]`, where
//! - brackets expand a field: `'2024-01-[10,15..17]'` (values and ranges,
//!   several brackets give every combination), a list of dates
//!   `'[2024-01-15, 2024-03-20]'` (entries may hold brackets, variables and
//!   ranges), a list of times `'2024-01-15T[09:00,14:30]'`;
//! - `$today`, `$yesterday`, `$tomorrow` (UTC days) and `$now` (one
//!   microsecond), with arithmetic `$today - 5bd`, `$now - 2h` (units y M w d
//!   bd h m s T u), and ranges `'$now - 2h..$now'` (one interval from the start
//!   of the first to the end of the second); they are read when the statement
//!   is parsed;
//! - `@zone` reads the dates and times in an IANA zone or an offset (`@+02:00`,
//!   `@+0200`, `@+02`, `@UTC`), per entry or for all;
//! - `#workday` (`#wd`), `#weekend`, `#Mon,Wed,Fri` keep the days named (of
//!   the local calendar when a zone is given);
//! - `;6h30m` moves each range's last microsecond by the duration, as the plain
//!   forms' modifier does.
//!
//! Overlapping ranges are merged. ISO weeks (`2024-W01-1`) and exchange
//! calendars are not read (an error names them).

use chrono::{NaiveDateTime, Offset, TimeZone};

use crate::interval::{DAY, MAX_REPEATS, prefix, shift};

/// Whether `s` uses TICK syntax (brackets, variables, zones, day filters or a
/// duration of several units) rather than the plain forms.
pub(crate) fn is_tick(s: &str) -> bool {
    s.contains(['[', '$', '@', '#'])
        || s.split(';')
            .nth(1)
            .is_some_and(|d| duration_terms(d).is_ok_and(|t| t.len() > 1))
}

/// The merged UTC ranges `s` names, `now` (microseconds) giving the variables.
pub(crate) fn ranges(s: &str, now: i64) -> Result<Vec<(i64, i64)>, String> {
    // Each bracket is a level of recursion in `expand`.
    if s.matches('[').count() > MAX_BRACKETS {
        return Err(format!("more than {MAX_BRACKETS} brackets"));
    }
    let (head, duration) = match split_top(s, ';').as_slice() {
        [head] => (*head, None),
        [head, duration] => (*head, Some(duration.trim())),
        _ => {
            return Err(
                "a repeating interval (;interval;count) cannot be combined with TICK brackets, \
                 variables, zones or day filters"
                    .into(),
            );
        }
    };
    let (head, days) = match top_level(head, '#') {
        Some(at) => (&head[..at], Some(day_filter(&head[at + 1..])?)),
        None => (head, None),
    };
    // A zone after the whole date part applies to every entry without its own.
    let (body, zone) = match top_level(head, '@') {
        Some(at) => (&head[..at], Some(head[at + 1..].trim())),
        None => (head, None),
    };
    let mut entries = Vec::new();
    expand(body.trim(), &mut entries)?;
    let mut out = Vec::new();
    for entry in entries {
        let (entry, own_zone) = match entry.split_once('@') {
            Some((e, z)) => (e.to_string(), Some(z.trim().to_string())),
            None => (entry, zone.map(str::to_string)),
        };
        let zone = own_zone.as_deref().map(Zone::parse).transpose()?;
        for (lo, hi) in local_ranges(entry.trim(), now, days.is_some())? {
            for (lo, hi) in keep_days(lo, hi, days)? {
                let (lo, hi) = match &zone {
                    Some(z) => (z.to_utc(lo)?, z.to_utc(hi)?),
                    None => (lo, hi),
                };
                let hi = match duration {
                    Some(d) => moved_end(lo, hi, d)?,
                    None => hi,
                };
                out.push((lo, hi));
                if out.len() as i64 > MAX_REPEATS {
                    return Err(format!("names more than {MAX_REPEATS} ranges"));
                }
            }
        }
    }
    if out.is_empty() {
        return Err("no day is left by the day filter".into());
    }
    out.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
    for (lo, hi) in out {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(merged)
}

/// The most brackets a literal may hold.
const MAX_BRACKETS: usize = 32;

/// `s` split at `sep` outside brackets.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The first `c` outside brackets.
fn top_level(s: &str, c: char) -> Option<usize> {
    let first = split_top(s, c);
    (first.len() > 1).then(|| first[0].len())
}

/// Expands the first bracket of `s` and then the rest, into entries without
/// brackets (dates or variables, maybe with a time, a range `a..b` or `@zone`).
fn expand(s: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = s.find('[') else {
        out.push(s.to_string());
        return Ok(());
    };
    let mut depth = 0;
    let close = s[open..]
        .char_indices()
        .find_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(open + i)
        })
        .ok_or("a '[' without its ']'")?;
    let (before, inner, after) = (&s[..open], &s[open + 1..close], &s[close + 1..]);
    let items: Vec<&str> = split_top(inner, ',').into_iter().map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(format!("an empty entry in '[{inner}]'"));
    }
    // A list of dates (at the start) or of times (with a ':'): whole entries;
    // otherwise numbers and ranges of numbers for one field.
    let whole = before.is_empty() || inner.contains(':') || inner.contains('$');
    for item in items {
        if whole {
            expand(&format!("{before}{item}{after}"), out)?;
        } else {
            let (first, last) = match item.split_once("..") {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (item, item),
            };
            let number = |t: &str| {
                t.parse::<u32>()
                    .ok()
                    .filter(|_| t.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| format!("'{t}' in '[{inner}]' is not a number"))
            };
            let (a, b) = (number(first)?, number(last)?);
            if b < a {
                return Err(format!("the range '{item}' runs backwards"));
            }
            let width = first.len().max(2);
            for v in a..=b {
                expand(&format!("{before}{v:0width$}{after}"), out)?;
            }
        }
        if out.len() as i64 > MAX_REPEATS {
            return Err(format!("names more than {MAX_REPEATS} ranges"));
        }
    }
    Ok(())
}

/// The ranges (local time) one entry names: a date with an optional time, a
/// variable, or a range `a..b` of those. A time after a date longer than a
/// day, and a range when days are filtered, give one range a day.
fn local_ranges(entry: &str, now: i64, by_day: bool) -> Result<Vec<(i64, i64)>, String> {
    if let Some((a, b)) = entry.split_once("..") {
        let (lo, _) = point(a.trim(), now)?;
        let (_, hi) = point(b.trim(), now)?;
        if hi <= lo {
            return Err(format!("the range '{entry}' ends before it starts"));
        }
        return Ok(vec![(lo, hi)]);
    }
    let (date, time) = split_time(entry);
    let (lo, hi) = point(date, now)?;
    let Some(time) = time else {
        return Ok(vec![(lo, hi)]);
    };
    if lo.rem_euclid(DAY) != 0 || (hi - lo) % DAY != 0 {
        return Err(format!(
            "a time needs a date or a day variable before it: '{entry}'"
        ));
    }
    let (t_lo, t_hi) = prefix(&format!("1970-01-01T{time}"))?;
    let days = (hi - lo) / DAY;
    if days > MAX_REPEATS || (by_day && days > 366 * 10) {
        return Err(format!("names more than {MAX_REPEATS} ranges"));
    }
    Ok((0..days)
        .map(|d| (lo + d * DAY + t_lo, lo + d * DAY + t_hi))
        .collect())
}

/// `date` and the time after its `T`, if any (`$todayT09:30`, `2024-01-15T10`).
fn split_time(entry: &str) -> (&str, Option<&str>) {
    let lower = entry.to_ascii_lowercase();
    let search_from = if lower.starts_with('$') {
        // After the variable's name and arithmetic: a `T` then a digit.
        entry
            .char_indices()
            .find(|&(i, c)| {
                c == 'T' && entry[i + 1..].starts_with(|d: char| d.is_ascii_digit()) && i > 1
            })
            .map(|(i, _)| i)
    } else {
        entry.find(['T', ' '])
    };
    match search_from {
        Some(i) => (&entry[..i], Some(&entry[i + 1..])),
        None => (entry, None),
    }
}

/// The range a date or a variable (with its arithmetic) covers.
fn point(s: &str, now: i64) -> Result<(i64, i64), String> {
    let Some(var) = s.strip_prefix('$') else {
        if s.contains("-W") {
            return Err(format!("ISO week dates ('{s}') are not supported"));
        }
        return prefix(s.strip_suffix('Z').unwrap_or(s));
    };
    let lower = var.to_ascii_lowercase();
    let today = now.div_euclid(DAY) * DAY;
    let (name, (lo, hi)) = [
        ("yesterday", (today - DAY, today)),
        ("tomorrow", (today + DAY, today + 2 * DAY)),
        ("today", (today, today + DAY)),
        ("now", (now, now + 1)),
    ]
    .into_iter()
    .find(|(n, _)| lower.starts_with(n))
    .ok_or_else(|| {
        format!("unknown variable '${var}': expected $today, $yesterday, $tomorrow or $now")
    })?;
    let mut rest = var[name.len()..].trim_start();
    let (mut lo, mut hi) = (lo, hi);
    while !rest.is_empty() {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(format!("expected + or - in '{s}' at '{rest}'")),
        };
        let term = rest[1..].trim_start();
        let digits = term.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = term[..digits]
            .parse()
            .map_err(|_| format!("expected a number in '{s}' at '{term}'"))?;
        let unit_len = term[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let unit = &term[digits..digits + unit_len];
        rest = term[digits + unit_len..].trim_start();
        if unit == "bd" {
            let days = business_days(lo.div_euclid(DAY), sign * n);
            let moved = days * DAY - lo.div_euclid(DAY) * DAY;
            (lo, hi) = (lo + moved, hi + moved);
        } else {
            let step = format!("{}{n}{}", if sign < 0 { "-" } else { "" }, tick_unit(unit)?);
            let moved_lo = shift(lo, &step, 1)?;
            (lo, hi) = (moved_lo, moved_lo + (hi - lo));
        }
    }
    Ok((lo, hi))
}

/// The day `n` business days (Monday to Friday) from `day` (days since 1970).
fn business_days(mut day: i64, n: i64) -> i64 {
    let step = n.signum();
    let mut left = n.abs();
    while left > 0 {
        day += step;
        if weekday(day) < 5 {
            left -= 1;
        }
    }
    day
}

/// 0 Monday .. 6 Sunday (1970-01-01 was a Thursday).
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// A TICK unit as `interval::shift` spells it.
fn tick_unit(unit: &str) -> Result<&str, String> {
    match unit {
        "y" | "M" | "w" | "d" | "h" | "m" | "s" | "T" => Ok(unit),
        "u" | "U" => Ok("U"),
        "" => Err("a number without a unit".into()),
        other => Err(format!(
            "unknown unit '{other}': expected y, M, w, d, bd, h, m, s, T or u"
        )),
    }
}

/// The terms of a duration such as `6h30m` or `-1d` (the sign applies to all).
fn duration_terms(d: &str) -> Result<Vec<String>, String> {
    let d = d.trim();
    let (sign, mut rest) = match d.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", d.strip_prefix('+').unwrap_or(d)),
    };
    let mut terms = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .count();
        if digits == 0 || unit_len == 0 {
            return Err(format!("bad duration '{d}'"));
        }
        let unit = tick_unit(&rest[digits..digits + unit_len])?;
        terms.push(format!("{sign}{}{unit}", &rest[..digits]));
        rest = &rest[digits + unit_len..];
    }
    if terms.is_empty() {
        return Err(format!("bad duration '{d}'"));
    }
    Ok(terms)
}

/// `hi` after moving the range's last microsecond by the duration `d`.
pub(crate) fn moved_end(lo: i64, hi: i64, d: &str) -> Result<i64, String> {
    let mut last = hi - 1;
    for term in duration_terms(d)? {
        last = shift(last, &term, 1)?;
    }
    if last < lo {
        return Err(format!("duration '{d}' ends the range before it starts"));
    }
    Ok(last + 1)
}

/// `#workday`, `#wd`, `#weekend` or day names (`#Mon,Wed`): which weekdays
/// (0 Monday .. 6 Sunday) are kept.
fn day_filter(s: &str) -> Result<[bool; 7], String> {
    let mut keep = [false; 7];
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    for word in s.split(',').map(|w| w.trim().to_ascii_lowercase()) {
        match word.as_str() {
            "workday" | "wd" => keep[..5].fill(true),
            "weekend" => keep[5..].fill(true),
            w => {
                let day = NAMES
                    .iter()
                    .position(|n| w.len() >= 3 && n.starts_with(w))
                    .ok_or_else(|| {
                        format!(
                            "unknown day filter '#{w}': expected workday, wd, weekend or day names"
                        )
                    })?;
                keep[day] = true;
            }
        }
    }
    Ok(keep)
}

/// The parts of `[lo, hi)` on kept days (all of it without a filter).
fn keep_days(lo: i64, hi: i64, days: Option<[bool; 7]>) -> Result<Vec<(i64, i64)>, String> {
    let Some(keep) = days else {
        return Ok(vec![(lo, hi)]);
    };
    let (first, last) = (lo.div_euclid(DAY), (hi - 1).div_euclid(DAY));
    if last - first > MAX_REPEATS * 7 {
        return Err(format!("names more than {MAX_REPEATS} ranges"));
    }
    Ok((first..=last)
        .filter(|d| keep[weekday(*d) as usize])
        .map(|d| (lo.max(d * DAY), hi.min((d + 1) * DAY)))
        .collect())
}

/// The zone after `@`: an IANA name or a fixed offset.
enum Zone {
    Fixed(i64),
    Named(chrono_tz::Tz),
}

impl Zone {
    fn parse(s: &str) -> Result<Zone, String> {
        if ["utc", "gmt", "z"].contains(&s.to_ascii_lowercase().as_str()) {
            return Ok(Zone::Fixed(0));
        }
        if let Some(sign) = s
            .strip_prefix(['+', '-'])
            .map(|_| if s.starts_with('-') { -1 } else { 1 })
        {
            let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bad offset '@{s}': expected +HH, +HHMM or +HH:MM"));
            }
            let (h, m) = match digits.len() {
                2 => (&digits[..2], "0"),
                4 => (&digits[..2], &digits[2..]),
                _ => return Err(format!("bad offset '@{s}': expected +HH, +HHMM or +HH:MM")),
            };
            let (h, m): (i64, i64) = (
                h.parse().map_err(|_| format!("bad offset '@{s}'"))?,
                m.parse().map_err(|_| format!("bad offset '@{s}'"))?,
            );
            if h > 18 || m > 59 {
                return Err(format!("bad offset '@{s}'"));
            }
            return Ok(Zone::Fixed(sign * (h * 3_600 + m * 60) * 1_000_000));
        }
        s.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| format!("unknown time zone '@{s}'"))
    }

    /// The UTC instant of the local wall-clock time `local` (in a gap of a
    /// DST change, the first valid instant after; in an overlap, the earlier).
    fn to_utc(&self, local: i64) -> Result<i64, String> {
        match self {
            Zone::Fixed(offset) => Ok(local - offset),
            Zone::Named(tz) => {
                let naive: NaiveDateTime = chrono::DateTime::from_timestamp_micros(local)
                    .ok_or("a local time out of range")?
                    .naive_utc();
                let offset = tz
                    .offset_from_local_datetime(&naive)
                    .earliest()
                    .or_else(|| {
                        tz.offset_from_local_datetime(&(naive + chrono::TimeDelta::hours(1)))
                            .earliest()
                    })
                    .ok_or("a local time the zone skips")?;
                Ok(local - i64::from(offset.fix().local_minus_utc()) * 1_000_000)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interval::format_ts;

    /// 2026-01-22 14:35:22.123456 UTC, a Thursday.
    const NOW: i64 = 1_769_092_522_123_456;

    fn ranges_of(s: &str) -> Vec<(String, String)> {
        ranges(s, NOW)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .into_iter()
            .map(|(a, b)| (format_ts(a), format_ts(b)))
            .collect()
    }

    fn r(a: &str, b: &str) -> (String, String) {
        (format!("{a}.000000"), format!("{b}.000000"))
    }

    #[test]
    fn brackets_expand_fields_lists_and_times() {
        assert_eq!(
            ranges_of("2024-01-[10,15..16]"),
            vec![
                r("2024-01-10 00:00:00", "2024-01-11 00:00:00"),
                // 15 and 16 touch: merged.
                r("2024-01-15 00:00:00", "2024-01-17 00:00:00"),
            ]
        );
        assert_eq!(ranges_of("2024-[01,06]-[10,15]").len(), 4);
        assert_eq!(
            ranges_of("[2024-12-31, 2025-01-[02..03]]T09:30;1h"),
            vec![
                r("2024-12-31 09:30:00", "2024-12-31 10:31:00"),
                r("2025-01-02 09:30:00", "2025-01-02 10:31:00"),
                r("2025-01-03 09:30:00", "2025-01-03 10:31:00"),
            ]
        );
        assert_eq!(
            ranges_of("2024-01-15T[09:00,10:30];2h"),
            vec![r("2024-01-15 09:00:00", "2024-01-15 12:31:00")]
        );
        assert_eq!(
            ranges_of("2024-01-10T[09,14]:30"),
            vec![
                r("2024-01-10 09:30:00", "2024-01-10 09:31:00"),
                r("2024-01-10 14:30:00", "2024-01-10 14:31:00"),
            ]
        );
    }

    #[test]
    fn variables_arithmetic_and_ranges() {
        assert_eq!(
            ranges_of("$today"),
            vec![r("2026-01-22 00:00:00", "2026-01-23 00:00:00")]
        );
        assert_eq!(
            ranges_of("$now - 2h..$now"),
            vec![(
                "2026-01-22 12:35:22.123456".to_string(),
                "2026-01-22 14:35:22.123457".to_string()
            )]
        );
        // Thursday minus 5 business days is the Thursday before; minus 1 is Wednesday.
        assert_eq!(
            ranges_of("$today - 5bd..$today - 1bd"),
            vec![r("2026-01-15 00:00:00", "2026-01-22 00:00:00")]
        );
        assert_eq!(
            ranges_of("[$yesterday, $TOMORROW]T10:00"),
            vec![
                r("2026-01-21 10:00:00", "2026-01-21 10:01:00"),
                r("2026-01-23 10:00:00", "2026-01-23 10:01:00"),
            ]
        );
        assert_eq!(
            ranges_of("$todayT09:30;30m"),
            vec![r("2026-01-22 09:30:00", "2026-01-22 10:01:00")]
        );
        assert_eq!(
            ranges_of("$today + 1M"),
            vec![r("2026-02-22 00:00:00", "2026-02-23 00:00:00")]
        );
    }

    #[test]
    fn zones_and_day_filters() {
        // New York is 5 hours behind UTC in January.
        assert_eq!(
            ranges_of("2024-01-15T09:30@America/New_York;6h30m"),
            vec![r("2024-01-15 14:30:00", "2024-01-15 21:01:00")]
        );
        assert_eq!(
            ranges_of("2024-07-15T09:30@America/New_York"),
            vec![r("2024-07-15 13:30:00", "2024-07-15 13:31:00")]
        );
        assert_eq!(
            ranges_of("2024-01-15T10:00@+02:00"),
            ranges_of("2024-01-15T08:00")
        );
        assert_eq!(
            ranges_of("2024-01-15T10:00@+0200"),
            ranges_of("2024-01-15T08:00@UTC")
        );
        // January 2024 starts on a Monday: 23 workdays, 8 weekend days.
        assert_eq!(ranges_of("2024-01-[01..31]T09:00#workday;1h").len(), 23);
        assert_eq!(ranges_of("2024-01#weekend").len(), 4);
        assert_eq!(
            ranges_of("2024-01-[01..07]#Mon,wed"),
            vec![
                r("2024-01-01 00:00:00", "2024-01-02 00:00:00"),
                r("2024-01-03 00:00:00", "2024-01-04 00:00:00"),
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (s, says) in [
            ("2024-01-[10", "without its ']'"),
            ("2024-01-[12..10]", "runs backwards"),
            ("2024-01-[a]", "not a number"),
            ("$later", "unknown variable"),
            ("$today + 1q", "unknown unit"),
            ("2024-01-15@Mars/Base", "unknown time zone"),
            ("2024-01-15#holiday", "unknown day filter"),
            ("2024-W01-1#wd", "ISO week"),
            ("[2024-01-15];1h;1d;5", "repeating interval"),
            ("2024-01-[01..31]T[00..23]:[00..59]", "more than 1000"),
            ("2024-01-06#workday", "no day is left"),
            ("2024-01-15T10:00@+1éa", "bad offset"),
            (
                &format!("{}2024{}", "[".repeat(10_000), "]".repeat(10_000)),
                "brackets",
            ),
        ] {
            let e = ranges(s, NOW).expect_err(s);
            assert!(e.contains(says), "{s}: {e}");
        }
    }
}
