//! `SELECT ... FROM t [WHERE ...] LATEST ON ts PARTITION BY k1[, k2] [ORDER BY ...] [LIMIT ...]`:
//! the last row (by `ts`) of each `k1, k2` group among the rows the WHERE keeps.
//!
//! The clause is cut out of the top-level token stream (outside parentheses);
//! the rest is parsed as a standard query, and the executor, which knows the
//! table's columns, rewrites it into a `row_number()` window.

use datafusion_sql::sqlparser::ast;
use datafusion_sql::sqlparser::dialect::Dialect;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// `LATEST ON <timestamp> PARTITION BY <columns>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestOn {
    pub timestamp: String,
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

/// Splits `LATEST ON ...` out of one statement's tokens (`tokens` ends at the
/// statement's `;` or EOF). Returns the query tokens without the clause and the
/// clause, or `None` when the statement has no top-level LATEST ON.
pub(crate) fn split(
    tokens: &[TokenWithSpan],
    dialect: &dyn Dialect,
) -> Result<Option<(Vec<TokenWithSpan>, LatestOn)>, ParserError> {
    let mut depth = 0i32;
    let mut start = None;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0
            && word(t, "LATEST")
            && tokens
                .get(next_solid(tokens, i + 1))
                .is_some_and(|n| word(n, "ON"))
        {
            start = Some(i);
            break;
        }
    }
    let Some(start) = start else { return Ok(None) };
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
    let mut clause: Vec<TokenWithSpan> = tokens[start..end].to_vec();
    clause.push(TokenWithSpan::wrap(Token::EOF));
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
    p.next_token(); // ON
    let timestamp = ident(&mut p)?;
    let by = p.next_token();
    if !word(&by, "PARTITION") || !word(&p.next_token(), "BY") {
        return p.expected("PARTITION BY", by);
    }
    let mut partition_by = vec![ident(&mut p)?];
    while p.consume_token(&Token::Comma) {
        partition_by.push(ident(&mut p)?);
    }
    let rest = p.peek_token();
    if rest.token != Token::EOF {
        return p.expected("ORDER BY, LIMIT or the end of the statement", rest);
    }
    let mut query = tokens[..start].to_vec();
    query.extend_from_slice(&tokens[end..]);
    Ok(Some((
        query,
        LatestOn {
            timestamp,
            partition_by,
        },
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
