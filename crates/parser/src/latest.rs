//! `SELECT ... FROM t [WHERE ...] LATEST ON ts PARTITION BY k1[, k2] [ORDER BY ...] [LIMIT ...]`:
//! the last row (by `ts`) of each `k1, k2` group among the rows the WHERE keeps.
//! QuestDB's older `LATEST BY k1[, k2]` is the same on the designated timestamp.
//!
//! The clause is cut out of the top-level token stream (outside parentheses);
//! the rest is parsed as a standard query, and the executor, which knows the
//! table's columns, rewrites it into a `row_number()` window.

use datafusion_sql::sqlparser::ast;
use datafusion_sql::sqlparser::dialect::Dialect;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// `LATEST ON <timestamp> PARTITION BY <columns>`, or `LATEST BY <columns>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestOn {
    /// `None` for `LATEST BY`: the table's designated timestamp.
    pub timestamp: Option<String>,
    pub partition_by: Vec<String>,
}

fn word(t: &TokenWithSpan, w: &str) -> bool {
    matches!(&t.token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// Index of the next non-whitespace token at or after `i`.
fn next_solid(tokens: &[TokenWithSpan], mut i: usize) -> usize {
    while i < tokens.len() && matches!(tokens[i].token, Token::Whitespace(_)) {
        i += 1;
    }
    i
}

/// A Tidemark clause cut out of a query.
#[derive(Debug)]
pub(crate) enum Clause {
    Latest(LatestOn),
    Sample(crate::sample::SampleBy),
}

/// Splits `LATEST ON ...` or `SAMPLE BY ...` out of one statement's tokens
/// (`tokens` ends at the statement's `;` or EOF). Returns the query tokens without
/// the clause and the clause, or `None` when the statement has neither at top level.
pub(crate) fn split(
    tokens: &[TokenWithSpan],
    dialect: &dyn Dialect,
) -> Result<Option<(Vec<TokenWithSpan>, Clause)>, ParserError> {
    let mut depth = 0i32;
    let mut start = None;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        let next = tokens.get(next_solid(tokens, i + 1));
        if depth == 0
            && ((word(t, "LATEST") && next.is_some_and(|n| word(n, "ON") || word(n, "BY")))
                || (word(t, "SAMPLE") && next.is_some_and(|n| word(n, "BY"))))
        {
            start = Some(i);
            break;
        }
    }
    let Some(start) = start else { return Ok(None) };
    let sample = word(&tokens[start], "SAMPLE");
    // The clause runs until ORDER BY, LIMIT or the end.
    let mut end = tokens.len();
    for (i, t) in tokens.iter().enumerate().skip(start) {
        if word(t, "ORDER")
            || word(t, "LIMIT")
            || t.token == Token::SemiColon
            || t.token == Token::EOF
        {
            end = i;
            break;
        }
    }
    let mut clause: Vec<TokenWithSpan> = tokens[start..end]
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .cloned()
        .collect();
    // The end of the clause, located where it ends, so errors there have a position.
    let end_at = tokens[start..end]
        .last()
        .map_or(tokens[start].span.end, |t| t.span.end);
    clause.push(TokenWithSpan::new(
        Token::EOF,
        datafusion_sql::sqlparser::tokenizer::Span::new(end_at, end_at),
    ));
    let mut query = tokens[..start].to_vec();
    query.extend_from_slice(&tokens[end..]);
    if sample {
        return Ok(Some((
            query,
            Clause::Sample(crate::sample::parse_clause(clause, dialect)?),
        )));
    }
    let mut p = Parser::new(dialect).with_tokens_with_locations(clause);
    let ident = |p: &mut Parser<'_>| -> Result<String, ParserError> {
        let i = p.parse_identifier()?;
        Ok(if i.quote_style.is_some() {
            i.value
        } else {
            i.value.to_lowercase()
        })
    };
    p.next_token(); // LATEST
    let timestamp = if word(&p.next_token(), "ON") {
        let timestamp = ident(&mut p)?;
        let by = p.next_token();
        if !word(&by, "PARTITION") || !word(&p.next_token(), "BY") {
            return p.expected("PARTITION BY", by);
        }
        Some(timestamp)
    } else {
        None
    };
    let mut partition_by = vec![ident(&mut p)?];
    while p.consume_token(&Token::Comma) {
        partition_by.push(ident(&mut p)?);
    }
    let rest = p.peek_token();
    if rest.token != Token::EOF {
        return p.expected("ORDER BY, LIMIT or the end of the statement", rest);
    }
    Ok(Some((
        query,
        Clause::Latest(LatestOn {
            timestamp,
            partition_by,
        }),
    )))
}

/// Parses the query part (a SELECT) of a LATEST ON statement.
pub(crate) fn parse_query(
    tokens: Vec<TokenWithSpan>,
    dialect: &dyn Dialect,
) -> Result<Box<ast::Query>, ParserError> {
    let mut p = Parser::new(dialect).with_tokens_with_locations(tokens);
    let q = p.parse_query()?;
    let rest = p.peek_token();
    if rest.token != Token::EOF && rest.token != Token::SemiColon {
        return p.expected("end of statement", rest);
    }
    Ok(q)
}
