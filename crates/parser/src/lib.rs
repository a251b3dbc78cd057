//! Tidemark's SQL parser.
//!
//! Standard SQL is parsed by sqlparser (the copy DataFusion re-exports, so the
//! versions cannot drift) with a PostgreSQL-flavoured dialect. Tidemark's own
//! statements — `CREATE TABLE ... TIMESTAMP(ts) PARTITION BY DAY`, `RENAME TABLE`,
//! `ALTER TABLE ... DROP PARTITION`, QuestDB type names — are recognised by their
//! first tokens and parsed with sqlparser's parser primitives, so they share its
//! tokenizer, identifier rules and error positions.

mod backup;
mod checkpoint;
mod cursor;
mod ddl;
mod declare;
mod dialect;
mod error;
mod interval;
mod latest;
mod nesting;
mod prepare;
mod sample;
mod statement;
mod subscripts;
mod temporal_join;
mod tick;
mod view;

pub use datafusion_sql::sqlparser;
pub use ddl::normalize as normalize_ident;
pub use dialect::TidemarkDialect;
pub use error::ParseError;
pub use latest::LatestOn;
pub use temporal_join::MARKER as TEMPORAL_JOIN_MARKER;

/// The `[start, end)` microseconds an interval literal such as `'2026-11'` or
/// `'2026-11-21T10:00;6h'` covers (what `ts IN '...'` means).
pub fn interval_bounds(literal: &str) -> Result<(i64, i64), String> {
    interval::parse(literal)
}
pub use sample::{Align, SampleBy, SampleUnit};
pub use statement::{
    AlterTable, BackupAction, CheckpointAction, ColumnSpec, CreateTable, FetchCount, PartitionUnit,
    ReindexTarget, SqlType, Statement, TtlSpec, TtlUnit, ViewMode,
};

use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Parses `sql`, which may hold several statements separated by `;`.
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParseError> {
    let dialect = TidemarkDialect::default();
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| ParseError::from_tokenizer(e, sql))?;
    if let Some(at) = nesting::too_deep(&tokens) {
        return Err(ParseError::at(
            format!(
                "statement is too complex: more than {} nested calls of POSITION, SUBSTRING, \
                 EXTRACT, TRIM, OVERLAY, INTERVAL, CEIL, FLOOR or CONVERT",
                nesting::MAX_SPECIAL_CALLS
            ),
            sql,
            at.span.start,
        )
        .with_sqlstate("54001"));
    }
    // View and PREPARE statements keep their query's text as written, so they
    // are taken out before the rewrites below change the tokens.
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for stmt in split_statements(tokens) {
        let kept_as_written = match view::parse(&stmt, sql, &dialect)? {
            Some(v) => Some(v),
            None => prepare::parse(&stmt, sql, &dialect)?,
        };
        match kept_as_written {
            Some(v) => {
                if !pending.is_empty() {
                    out.extend(parse_rewritten(
                        std::mem::take(&mut pending),
                        &dialect,
                        sql,
                    )?);
                }
                out.push(v);
            }
            None => pending.extend(stmt),
        }
    }
    if !pending.is_empty() {
        out.extend(parse_rewritten(pending, &dialect, sql)?);
    }
    Ok(out)
}

/// Parses statements after Tidemark's token rewrites (interval literals,
/// temporal joins, subscripts), cutting out top-level LATEST ON / SAMPLE BY.
fn parse_rewritten(
    tokens: Vec<sqlparser::tokenizer::TokenWithSpan>,
    dialect: &TidemarkDialect,
    sql: &str,
) -> Result<Vec<Statement>, ParseError> {
    let tokens =
        declare::rewrite(tokens).map_err(|b| ParseError::at(b.message, sql, b.at.span.start))?;
    let tokens = interval::rewrite(tokens)
        .map_err(|b| ParseError::at(b.message, sql, b.at.span.start).with_sqlstate("22007"))?;
    let tokens = temporal_join::rewrite(tokens)
        .map_err(|b| ParseError::at(b.message, sql, b.at.span.start))?;
    let tokens = subscripts::rewrite(tokens)
        .map_err(|b| ParseError::at(b.message, sql, b.at.span.start).with_sqlstate("0A000"))?;
    // Statements with a top-level LATEST ON or SAMPLE BY are cut out and parsed on their own.
    let mut out = Vec::new();
    let mut rest = Vec::new();
    for stmt in split_statements(tokens) {
        match latest::split(&stmt, dialect).map_err(|e| ParseError::from_parser(e, sql))? {
            Some((query, clause)) => {
                if !rest.is_empty() {
                    out.extend(parse_standard_run(std::mem::take(&mut rest), dialect, sql)?);
                }
                let query = latest::parse_query(query, dialect)
                    .map_err(|e| ParseError::from_parser(e, sql))?;
                out.push(match clause {
                    latest::Clause::Latest(latest) => Statement::Latest { query, latest },
                    latest::Clause::Sample(sample) => Statement::Sample { query, sample },
                });
            }
            None => rest.extend(stmt),
        }
    }
    if !rest.is_empty() {
        out.extend(parse_standard_run(rest, dialect, sql)?);
    }
    Ok(out)
}

/// Splits a token stream into statements at top-level `;` (each keeps its `;`).
fn split_statements(
    tokens: Vec<sqlparser::tokenizer::TokenWithSpan>,
) -> Vec<Vec<sqlparser::tokenizer::TokenWithSpan>> {
    let mut out = vec![Vec::new()];
    for t in tokens {
        let end = t.token == Token::SemiColon;
        if t.token != Token::EOF
            && let Some(current) = out.last_mut()
        {
            current.push(t);
        }
        if end {
            out.push(Vec::new());
        }
    }
    out.retain(|s| {
        s.iter()
            .any(|t| !matches!(t.token, Token::Whitespace(_) | Token::SemiColon))
    });
    out
}

/// Parses statements that need no Tidemark clause splicing.
fn parse_standard_run(
    mut tokens: Vec<sqlparser::tokenizer::TokenWithSpan>,
    dialect: &TidemarkDialect,
    sql: &str,
) -> Result<Vec<Statement>, ParseError> {
    tokens.push(sqlparser::tokenizer::TokenWithSpan::wrap(Token::EOF));
    let mut parser = Parser::new(dialect).with_tokens_with_locations(tokens);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        out.push(parse_one(&mut parser).map_err(|e| e.into_parse_error(sql))?);
        let next = parser.peek_token();
        if next.token != Token::SemiColon && next.token != Token::EOF {
            return Err(ParseError::at(
                format!("syntax error at or near \"{}\"", next.token),
                sql,
                next.span.start,
            ));
        }
    }
    Ok(out)
}

fn parse_one(p: &mut Parser<'_>) -> Result<Statement, ddl::DdlError> {
    let first = p.peek_token();
    let word = match &first.token {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    match word.as_str() {
        "CREATE" if ddl::peek_keywords(p, &["CREATE", "TABLE"]) => ddl::parse_create_table(p),
        "CREATE" if ddl::peek_keywords(p, &["CREATE", "MATERIALIZED", "VIEW"]) => {
            ddl::refuse_materialized_view(p)
        }
        "DROP" if ddl::peek_keywords(p, &["DROP", "TABLE"]) => ddl::parse_drop_table(p),
        "DROP" if ddl::peek_keywords(p, &["DROP", "ALL", "TABLES"]) => {
            for _ in 0..3 {
                p.next_token();
            }
            Ok(Statement::DropAllTables)
        }
        "TRUNCATE" => ddl::parse_truncate(p),
        "VACUUM" => ddl::parse_vacuum(p),
        "CANCEL" if ddl::peek_keywords(p, &["CANCEL", "QUERY"]) => ddl::parse_cancel_query(p),
        "REINDEX" => ddl::parse_reindex(p),
        "RENAME" => ddl::parse_rename_table(p),
        "ALTER" if ddl::peek_keywords(p, &["ALTER", "TABLE"]) => ddl::parse_alter_table(p),
        "CHECKPOINT" | "SNAPSHOT" => checkpoint::parse_checkpoint(p),
        "BACKUP" => backup::parse_backup(p),
        "FETCH" | "MOVE" => cursor::parse_fetch(p),
        _ => Ok(Statement::Standard(Box::new(p.parse_statement()?))),
    }
}

#[cfg(test)]
mod tests;

/// The text of `sql` after the token rewrite `rewrite`, or its refusal's
/// message (`message` reads it): the unit tests of the rewrites.
#[cfg(test)]
fn rewritten_by<E>(
    sql: &str,
    rewrite: impl Fn(
        Vec<sqlparser::tokenizer::TokenWithSpan>,
    ) -> Result<Vec<sqlparser::tokenizer::TokenWithSpan>, E>,
    message: impl Fn(E) -> String,
) -> Result<String, String> {
    let tokens = Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| e.to_string())?;
    let out = rewrite(tokens).map_err(message)?;
    Ok(out.iter().map(|t| t.token.to_string()).collect())
}
