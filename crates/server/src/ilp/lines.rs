//! Splitting a body of InfluxDB line protocol into parsed lines, each with its
//! number, and converting timestamps to the engine's microseconds. The grammar
//! itself (escaping, quoting, field types) is `influxdb_line_protocol`'s.

use influxdb_line_protocol::ParsedLine;

use super::IlpError;
use crate::metrics::Rejection;

/// The unit of the timestamps in a request (`precision=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    Nanos,
    Micros,
    Millis,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// InfluxDB's names: `ns`, `u`/`us`, `ms`, `s`, `m`, `h` (v1 also `n`).
    pub(crate) fn parse(text: &str) -> Result<Precision, String> {
        Ok(match text {
            "" | "ns" | "n" => Precision::Nanos,
            "u" | "us" | "µ" => Precision::Micros,
            "ms" => Precision::Millis,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            other => {
                return Err(format!(
                    "precision \"{other}\" is not one of ns, u, ms, s, m, h"
                ));
            }
        })
    }

    /// `ts` in this unit as microseconds since the epoch; `None` when out of range.
    pub(crate) fn to_micros(self, ts: i64) -> Option<i64> {
        match self {
            Precision::Nanos => Some(ts.div_euclid(1_000)),
            Precision::Micros => Some(ts),
            Precision::Millis => ts.checked_mul(1_000),
            Precision::Seconds => ts.checked_mul(1_000_000),
            Precision::Minutes => ts.checked_mul(60_000_000),
            Precision::Hours => ts.checked_mul(3_600_000_000),
        }
    }
}

/// A parsed line and where it was.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    /// 1-based, counting every line of the body (blank and comment lines too).
    pub(crate) number: usize,
    pub(crate) text: &'a str,
    pub(crate) parsed: ParsedLine<'a>,
}

/// The most of a bad line an error message quotes.
const QUOTED_CHARS: usize = 200;

/// The first `QUOTED_CHARS` characters of `text`, for error messages.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// `body` as text; an error names the first line that is not UTF-8.
pub(crate) fn utf8(body: &[u8]) -> Result<&str, IlpError> {
    std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        let start = body[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let end = body[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |p| at + p);
        let number = body[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        IlpError::line(
            number,
            &String::from_utf8_lossy(&body[start..end]),
            "the line is not valid UTF-8",
        )
    })
}

/// Parses every line of `body`; the first bad line is the error. Lines longer
/// than `max_line_bytes` are refused before they are parsed.
pub(crate) fn parse_body(body: &str, max_line_bytes: usize) -> Result<Vec<Line<'_>>, IlpError> {
    let mut lines = Vec::new();
    for (i, raw) in influxdb_line_protocol::split_lines(body).enumerate() {
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        let number = i + 1;
        if text.len() > max_line_bytes {
            return Err(IlpError::Line {
                line: number,
                text: quote(text),
                reason: format!(
                    "the line has {} bytes, more than ilp.max_line_kb allows ({max_line_bytes} bytes)",
                    text.len()
                ),
                rejection: Rejection::Size,
            });
        }
        match parse_one(text) {
            None => {}
            Some(Ok(parsed)) => lines.push(Line {
                number,
                text,
                parsed,
            }),
            Some(Err(reason)) => return Err(IlpError::line(number, text, reason)),
        }
    }
    Ok(lines)
}

/// One line: `None` for a blank or comment line.
fn parse_one(text: &str) -> Option<Result<ParsedLine<'_>, String>> {
    // The parser is not expected to panic; if it ever does on some input, that
    // line is refused instead of the connection being dropped.
    match std::panic::catch_unwind(|| influxdb_line_protocol::parse_lines(text).next()) {
        Ok(None) => None,
        Ok(Some(Ok(line))) => Some(Ok(line)),
        Ok(Some(Err(e))) => Some(Err(e.to_string())),
        Err(_) => Some(Err("the line cannot be parsed".into())),
    }
}

#[cfg(test)]
mod tests {
    use influxdb_line_protocol::FieldValue;

    use super::*;

    #[test]
    fn lines_are_numbered_across_blank_and_comment_lines() {
        let body = "cpu,host=a usage=1.5 10\n\n# a comment\r\ncpu,host=b usage=2i\r\n";
        let lines = parse_body(body, 1024).expect("parses");
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].number, lines[1].number), (1, 4));
        assert_eq!(lines[1].parsed.field_set[0].1, FieldValue::I64(2));
        assert_eq!(lines[1].parsed.timestamp, None);
    }

    #[test]
    fn escapes_in_names_and_values() {
        let body = r#"my\ table,tag\,key=va\ l\=ue field\=name="say \"hi\" \\ there",b=t 1"#;
        let lines = parse_body(body, 1024).expect("parses");
        let p = &lines[0].parsed;
        assert_eq!(p.series.measurement.as_str(), "my table");
        let tags = p.series.tag_set.as_ref().expect("tags");
        assert_eq!(
            (tags[0].0.as_str(), tags[0].1.as_str()),
            ("tag,key", "va l=ue")
        );
        assert_eq!(p.field_set[0].0.as_str(), "field=name");
        assert_eq!(
            p.field_set[0].1,
            FieldValue::String(r#"say "hi" \ there"#.into())
        );
        assert_eq!(p.field_set[1].1, FieldValue::Boolean(true));
    }

    #[test]
    fn a_bad_line_is_named_with_its_number_and_text() {
        let body = "cpu usage=1\ncpu usage=oops\ncpu usage=3";
        let err = parse_body(body, 1024).expect_err("bad line");
        match err {
            IlpError::Line { line, text, .. } => {
                assert_eq!((line, text.as_str()), (2, "cpu usage=oops"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_lines_are_refused() {
        let body = format!("cpu s=\"{}\"", "x".repeat(100));
        let err = parse_body(&body, 50).expect_err("too long");
        assert!(err.to_string().contains("ilp.max_line_kb"), "{err}");
    }

    #[test]
    fn precisions_convert_to_micros() {
        assert_eq!(
            Precision::parse("ns").map(|p| p.to_micros(1_500)),
            Ok(Some(1))
        );
        assert_eq!(
            Precision::parse("ns").map(|p| p.to_micros(-1)),
            Ok(Some(-1))
        );
        assert_eq!(
            Precision::parse("s").map(|p| p.to_micros(2)),
            Ok(Some(2_000_000))
        );
        assert_eq!(
            Precision::parse("h").map(|p| p.to_micros(i64::MAX)),
            Ok(None)
        );
        assert!(Precision::parse("d").is_err());
    }
}
