//! `PREPARE name [(type, ...)] AS statement`, taken off the raw tokens.
//!
//! The prepared statement is kept as the text the user wrote, as the
//! protocol's Parse message gives it: the standard parser cannot hold a
//! statement that ends in SAMPLE BY or LATEST ON inside its `Prepare` node,
//! and the session prepares text either way. The statement is parsed here
//! too, so a PREPARE that could never run is refused at once, with the
//! error's position in the whole statement.

use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::dialect::TidemarkDialect;
use crate::error::{ParseError, text_between};
use crate::statement::Statement;

/// The PREPARE statement `tokens` (one statement, its `;` included) holds,
/// or `None` for any other statement.
pub(crate) fn parse(
    tokens: &[TokenWithSpan],
    sql: &str,
    dialect: &TidemarkDialect,
) -> Result<Option<Statement>, ParseError> {
    let first = tokens
        .iter()
        .find(|t| !matches!(t.token, Token::Whitespace(_)));
    let Some(Token::Word(w)) = first.map(|t| &t.token) else {
        return Ok(None);
    };
    if w.quote_style.is_some() || w.keyword != Keyword::PREPARE {
        return Ok(None);
    }
    let mut with_eof = tokens.to_vec();
    with_eof.push(TokenWithSpan::wrap(Token::EOF));
    let mut p = Parser::new(dialect).with_tokens_with_locations(with_eof);
    p.next_token();
    let syntax = |e| ParseError::from_parser(e, sql);
    let name = p.parse_identifier().map_err(syntax)?.value;
    // The parameter types are checked as types; the session infers them
    // from the statement, as it does for a Parse message without types.
    if p.consume_token(&Token::LParen) {
        p.parse_comma_separated(Parser::parse_data_type)
            .map_err(syntax)?;
        p.expect_token(&Token::RParen).map_err(syntax)?;
    }
    p.expect_keyword(Keyword::AS).map_err(syntax)?;
    let body: Vec<&TokenWithSpan> = tokens[p.index().min(tokens.len())..]
        .iter()
        .filter(|t| {
            !matches!(
                t.token,
                Token::Whitespace(_) | Token::EOF | Token::SemiColon
            )
        })
        .collect();
    let (Some(first), Some(last)) = (body.first(), body.last()) else {
        return Err(ParseError::at(
            "syntax error: PREPARE needs a statement after AS".into(),
            sql,
            p.peek_token().span.start,
        ));
    };
    let (statement, from) = text_between(sql, first, last, "the prepared statement")?;
    check_statement(&statement, from)?;
    Ok(Some(Statement::Prepare { name, statement }))
}

/// The prepared text must parse as one statement other than PREPARE; errors
/// point into the whole statement (`from` is its 1-based character offset).
fn check_statement(statement: &str, from: usize) -> Result<(), ParseError> {
    let shift = |mut e: ParseError| {
        e.position = e.position.map(|p| p + from - 1);
        e
    };
    match crate::parse(statement).map_err(shift)?.as_slice() {
        [Statement::Prepare { .. }] => Err(ParseError {
            message: "syntax error: PREPARE cannot prepare another PREPARE".into(),
            position: Some(from),
            sqlstate: "42601",
        }),
        [_] => Ok(()),
        _ => Err(ParseError {
            message: "syntax error: PREPARE prepares one statement".into(),
            position: Some(from),
            sqlstate: "42601",
        }),
    }
}
