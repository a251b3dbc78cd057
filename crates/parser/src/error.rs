//! Parse errors with the position (1-based character offset) PostgreSQL clients show.

use datafusion_sql::sqlparser::parser::ParserError;
use datafusion_sql::sqlparser::tokenizer::{Location, TokenWithSpan, TokenizerError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    /// 1-based character offset into the statement text, when known.
    pub position: Option<usize>,
    /// The SQLSTATE: 42601 (syntax error) unless something more precise applies.
    pub sqlstate: &'static str,
}

impl ParseError {
    pub(crate) fn at(message: String, sql: &str, loc: Location) -> Self {
        ParseError {
            message,
            position: offset(sql, loc.line, loc.column),
            sqlstate: "42601",
        }
    }

    pub(crate) fn with_sqlstate(mut self, sqlstate: &'static str) -> Self {
        self.sqlstate = sqlstate;
        self
    }

    pub(crate) fn from_tokenizer(e: TokenizerError, sql: &str) -> Self {
        ParseError {
            message: format!("syntax error: {}", e.message),
            position: offset(sql, e.location.line, e.location.column),
            sqlstate: "42601",
        }
    }

    /// sqlparser puts the location into its message ("... at Line: 1, Column: 8");
    /// lift it out into `position` and keep the message clean.
    pub(crate) fn from_parser(e: ParserError, sql: &str) -> Self {
        let raw = match e {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
            ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
        };
        let (message, position) = match raw.rfind(" at Line: ") {
            Some(i) => {
                let loc = &raw[i + " at Line: ".len()..];
                let mut parts = loc.split(", Column: ");
                let line = parts.next().and_then(|l| l.trim().parse().ok());
                let col = parts.next().and_then(|c| c.trim().parse().ok());
                let pos = match (line, col) {
                    (Some(l), Some(c)) => offset(sql, l, c),
                    _ => None,
                };
                (raw[..i].to_string(), pos)
            }
            None => (raw, None),
        };
        let message = message
            .strip_prefix("sql parser error: ")
            .unwrap_or(&message)
            .to_string();
        let message = if message.starts_with("syntax error") {
            message
        } else {
            format!("syntax error: {message}")
        };
        ParseError {
            message,
            position,
            sqlstate: "42601",
        }
    }
}

/// The text of `sql` from the start of `first` to the end of `last`, and its
/// 1-based character offset in `sql`; `what` names it in the error when the
/// tokens cannot be located.
pub(crate) fn text_between(
    sql: &str,
    first: &TokenWithSpan,
    last: &TokenWithSpan,
    what: &str,
) -> Result<(String, usize), ParseError> {
    let (Some(from), Some(to)) = (
        offset(sql, first.span.start.line, first.span.start.column),
        offset(sql, last.span.end.line, last.span.end.column),
    ) else {
        return Err(ParseError::at(
            format!("syntax error: {what} could not be located"),
            sql,
            first.span.start,
        ));
    };
    Ok((sql.chars().skip(from - 1).take(to - from).collect(), from))
}

/// Converts a 1-based line/column to a 1-based character offset.
pub(crate) fn offset(sql: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut pos = 0usize;
    for (i, l) in sql.split('\n').enumerate() {
        if i as u64 + 1 == line {
            return Some(pos + column as usize);
        }
        pos += l.chars().count() + 1;
    }
    None
}
