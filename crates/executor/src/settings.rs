//! Session settings: `SET`, `SHOW`, `RESET` of the parameters that drivers
//! send on connect (client_encoding, DateStyle, TimeZone, application_name,
//! search_path, extra_float_digits, standard_conforming_strings, ...) and of
//! `statement_timeout`, which the server enforces.
//!
//! Names are case-insensitive, as in PostgreSQL. A value Tidemark cannot honour
//! (an encoding other than UTF8, a non-ISO DateStyle) is refused rather than
//! silently ignored; names with a dot (`myapp.x`) are custom settings and
//! accepted as in PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::sql::sqlparser::ast;

use crate::error::{ExecError, Result, sqlstate};

/// Known parameters, their defaults, and whether SET may change them.
const KNOWN: &[(&str, &str, bool)] = &[
    ("application_name", "", true),
    ("client_encoding", "UTF8", true),
    ("client_min_messages", "notice", true),
    ("datestyle", "ISO, MDY", true),
    ("default_transaction_isolation", "read committed", true),
    ("extra_float_digits", "1", true),
    ("integer_datetimes", "on", false),
    ("intervalstyle", "postgres", true),
    ("lc_messages", "C", true),
    ("lock_timeout", "0", true),
    ("max_identifier_length", "127", false),
    ("search_path", "public", true),
    ("server_encoding", "UTF8", false),
    ("server_version", crate::PG_SERVER_VERSION, false),
    ("server_version_num", crate::PG_SERVER_VERSION_NUM, false),
    ("standard_conforming_strings", "on", true),
    ("statement_timeout", "0", true),
    ("timezone", "UTC", true),
    ("transaction_isolation", "read committed", false),
];

/// The settable parameters PostgreSQL reports with ParameterStatus when they
/// change (its GUC_REPORT ones): drivers decode text and timestamps by them.
const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "intervalstyle",
    "standard_conforming_strings",
    "timezone",
];

/// PostgreSQL's spelling of the names drivers display (SHOW DateStyle shows `DateStyle`).
fn display_name(name: &str) -> &str {
    match name {
        "datestyle" => "DateStyle",
        "timezone" => "TimeZone",
        "intervalstyle" => "IntervalStyle",
        other => other,
    }
}

/// One session's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Settings {
    changed: BTreeMap<String, String>,
    /// The default statement timeout (from the server's configuration).
    default_timeout: Option<String>,
}

impl Settings {
    pub(crate) fn with_default_timeout(timeout: Duration) -> Self {
        Settings {
            changed: BTreeMap::new(),
            default_timeout: (!timeout.is_zero()).then(|| timeout.as_millis().to_string()),
        }
    }

    fn default_of(&self, name: &str) -> Option<String> {
        if name == "statement_timeout"
            && let Some(t) = &self.default_timeout
        {
            return Some(t.clone());
        }
        KNOWN
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, d, _)| d.to_string())
    }

    /// Whether no parameter was set since the session started.
    pub(crate) fn unchanged(&self) -> bool {
        self.changed.is_empty()
    }

    /// The current value of `name`, or 42704 for an unknown parameter.
    pub(crate) fn get(&self, name: &str) -> Result<String> {
        let name = name.to_ascii_lowercase();
        if let Some(v) = self.changed.get(&name) {
            return Ok(v.clone());
        }
        self.default_of(&name).ok_or_else(|| unknown(&name))
    }

    /// Sets `name` (checked), as `SET name = value` does.
    pub(crate) fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        let custom = name.contains('.');
        match KNOWN.iter().find(|(n, _, _)| *n == name) {
            None if !custom => return Err(unknown(&name)),
            Some((_, _, false)) => {
                return Err(ExecError::new(
                    sqlstate::CANT_CHANGE_RUNTIME_PARAM,
                    format!("parameter \"{name}\" cannot be changed"),
                ));
            }
            _ => {}
        }
        let value = normalise(&name, value)?;
        self.changed.insert(name, value);
        Ok(())
    }

    pub(crate) fn reset(&mut self, name: Option<&str>) -> Result<()> {
        match name {
            None => self.changed.clear(),
            Some(n) => {
                let n = n.to_ascii_lowercase();
                if self.default_of(&n).is_none() && !n.contains('.') {
                    return Err(unknown(&n));
                }
                self.changed.remove(&n);
            }
        }
        Ok(())
    }

    /// The parameters PostgreSQL reports to the client (ParameterStatus) at
    /// start and whenever they change, with their values.
    pub(crate) fn reported(&self) -> Vec<(String, String)> {
        REPORTED
            .iter()
            .map(|n| (display_name(n).to_string(), self.get(n).unwrap_or_default()))
            .collect()
    }

    /// Every known parameter with its value (SHOW ALL).
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = KNOWN
            .iter()
            .map(|(n, _, _)| (display_name(n).to_string(), self.get(n).unwrap_or_default()))
            .collect();
        for (n, v) in &self.changed {
            if n.contains('.') {
                out.push((n.clone(), v.clone()));
            }
        }
        out
    }

    /// `statement_timeout`, when one is set (0 means none).
    pub(crate) fn statement_timeout(&self) -> Option<Duration> {
        let v = self.get("statement_timeout").ok()?;
        let ms = parse_duration_ms(&v).ok()?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    pub(crate) fn column_name(name: &str) -> String {
        display_name(&name.to_ascii_lowercase()).to_string()
    }
}

fn unknown(name: &str) -> ExecError {
    ExecError::new(
        sqlstate::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

fn invalid(name: &str, value: &str, hint: &str) -> ExecError {
    ExecError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"{name}\": \"{value}\" ({hint})"),
    )
}

/// Checks a value and brings it to the form SHOW prints.
fn normalise(name: &str, value: &str) -> Result<String> {
    let lower = value.trim().to_ascii_lowercase();
    match name {
        // Like PostgreSQL's encoding lookup, ignore everything but letters and
        // digits: asyncpg sends `'utf-8'`, quotes included, in its startup packet.
        "client_encoding" => match lower
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .as_str()
        {
            "utf8" | "unicode" => Ok("UTF8".into()),
            // PostgreSQL's "no conversion": psql in the C locale asks for it. Bytes
            // pass through as they are; text must still be valid UTF-8 where
            // Tidemark reads it (SQL, text parameters, COPY), as in a UTF8 database.
            "sqlascii" => Ok("SQL_ASCII".into()),
            _ => Err(ExecError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "client_encoding \"{value}\" is not supported: Tidemark speaks UTF8 (and accepts SQL_ASCII, which passes bytes through)"
                ),
            )),
        },
        "datestyle" => {
            let parts: Vec<&str> = lower.split(',').map(str::trim).collect();
            let ok = parts.iter().all(|p| {
                matches!(
                    *p,
                    "iso" | "mdy" | "dmy" | "ymd" | "us" | "euro" | "european" | "default"
                )
            });
            if !ok
                || parts
                    .iter()
                    .any(|p| matches!(*p, "us" | "euro" | "european"))
            {
                return Err(invalid(name, value, "only ISO output is supported"));
            }
            Ok("ISO, MDY".into())
        }
        "standard_conforming_strings" => match lower.as_str() {
            "on" | "true" | "1" | "yes" => Ok("on".into()),
            _ => Err(invalid(name, value, "only on is supported")),
        },
        "extra_float_digits" => match lower.parse::<i32>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid(name, value, "an integer from -15 to 3")),
        },
        "statement_timeout" | "lock_timeout" => parse_duration_ms(&lower)
            .map(|ms| ms.to_string())
            .map_err(|()| invalid(name, value, "milliseconds, or a number with ms, s, min, h")),
        // A zone name Arrow's zone database knows, or an offset spelling
        // (`+02:00`, `UTC+3`, `GMT+03:00`, `-5`); instants show in named zones and
        // in `+hh:mm` offsets, in UTC otherwise (`text::display_zone`).
        "timezone" => {
            let v = value.trim();
            let offset_like = !v.is_empty()
                && v.trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ':'));
            if v.parse::<datafusion::arrow::array::timezone::Tz>().is_err() && !offset_like {
                return Err(invalid(
                    name,
                    value,
                    "a time zone name such as UTC or Europe/Paris",
                ));
            }
            Ok(v.to_string())
        }
        _ => Ok(value.to_string()),
    }
}

/// `500`, `500ms`, `5s`, `2min`, `1h` -> milliseconds.
fn parse_duration_ms(v: &str) -> std::result::Result<u64, ()> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| ())?;
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(()),
    };
    n.checked_mul(factor).ok_or(())
}

/// The value a SET statement assigns, as text: `SET x = 'a'`, `SET x TO a`,
/// `SET x = 5`, `SET search_path = a, b`, `SET x TO DEFAULT` (`None`).
pub(crate) fn value_text(values: &[ast::Expr]) -> Option<String> {
    let parts: Vec<String> = values
        .iter()
        .map(|e| match e {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            ast::Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect();
    if parts.len() == 1 && parts[0].eq_ignore_ascii_case("default") {
        return None;
    }
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_connect_settings_are_accepted() {
        let mut s = Settings::default();
        s.set("extra_float_digits", "3").expect("test value");
        s.set("DateStyle", "ISO").expect("test value");
        s.set("client_encoding", "utf-8").expect("test value");
        s.set("application_name", "PostgreSQL JDBC Driver")
            .expect("test value");
        assert_eq!(s.get("DATESTYLE").expect("test value"), "ISO, MDY");
        assert_eq!(s.get("client_encoding").expect("test value"), "UTF8");
        // asyncpg's startup packet quotes the value.
        s.set("client_encoding", "'utf-8'").expect("test value");
        assert_eq!(s.get("client_encoding").expect("test value"), "UTF8");
        s.set("client_encoding", "LATIN1")
            .expect_err("only UTF8 is spoken");
        // psql in the C locale.
        s.set("client_encoding", "SQL_ASCII").expect("test value");
        assert_eq!(s.get("client_encoding").expect("test value"), "SQL_ASCII");
        assert_eq!(
            s.get("application_name").expect("test value"),
            "PostgreSQL JDBC Driver"
        );
        s.reset(Some("application_name")).expect("test value");
        assert_eq!(s.get("application_name").expect("test value"), "");
    }

    #[test]
    fn bad_settings_are_refused_with_their_sqlstate() {
        let mut s = Settings::default();
        assert_eq!(
            s.set("no_such", "1").expect_err("must fail").sqlstate,
            "42704"
        );
        assert_eq!(
            s.set("client_encoding", "LATIN1")
                .expect_err("must fail")
                .sqlstate,
            "0A000"
        );
        assert_eq!(
            s.set("statement_timeout", "soon")
                .expect_err("must fail")
                .sqlstate,
            "22023"
        );
        assert_eq!(
            s.set("server_version", "9")
                .expect_err("must fail")
                .sqlstate,
            "55P02"
        );
        s.set("myapp.tenant", "7").expect("test value");
        assert_eq!(s.get("myapp.tenant").expect("test value"), "7");
    }

    #[test]
    fn statement_timeout_units() {
        let mut s = Settings::default();
        assert_eq!(s.statement_timeout(), None);
        s.set("statement_timeout", "2s").expect("test value");
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(2)));
        s.set("statement_timeout", "150").expect("test value");
        assert_eq!(s.statement_timeout(), Some(Duration::from_millis(150)));
        let d = Settings::with_default_timeout(Duration::from_secs(30));
        assert_eq!(d.statement_timeout(), Some(Duration::from_secs(30)));
    }
}
