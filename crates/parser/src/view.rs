//! Views: `CREATE [OR REPLACE] VIEW [IF NOT EXISTS] v AS query`, QuestDB's
//! `AS (query)`, `ALTER VIEW v AS (query)` and `COMPILE VIEW v`.
//!
//! They are recognised on a statement's raw tokens, before Tidemark's token
//! rewrites, and the definition is kept as the text the user wrote: a TICK
//! variable such as `$today` in it must be read when the view is queried, not
//! when it was created, and the query may end in SAMPLE BY or LATEST ON, which
//! the standard parser does not know. The definition is parsed here too, so a
//! view that could never run is refused at once, with the error's position in
//! the whole statement.

use datafusion_sql::sqlparser::ast;
use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::dialect::TidemarkDialect;
use crate::error::{ParseError, text_between};
use crate::statement::{Statement, ViewMode};

/// The view statement `tokens` (one statement, its `;` included) holds, or
/// `None` for any other statement.
pub(crate) fn parse(
    tokens: &[TokenWithSpan],
    sql: &str,
    dialect: &TidemarkDialect,
) -> Result<Option<Statement>, ParseError> {
    let significant: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let word = |i: usize| match significant.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    let verb = match (word(0).as_str(), word(1).as_str()) {
        ("CREATE", "VIEW") | ("ALTER", "VIEW") | ("COMPILE", "VIEW") => word(0),
        ("CREATE", "OR") if word(2) == "REPLACE" && word(3) == "VIEW" => word(0),
        _ => return Ok(None),
    };
    let mut with_eof = tokens.to_vec();
    with_eof.push(TokenWithSpan::wrap(Token::EOF));
    let mut p = Parser::new(dialect).with_tokens_with_locations(with_eof);
    p.next_token();
    let mode = match verb.as_str() {
        "CREATE" => {
            let or_replace = p.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
            p.next_token();
            let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            match (or_replace, if_not_exists) {
                (true, true) => {
                    return Err(ParseError::at(
                        "syntax error: CREATE OR REPLACE VIEW and IF NOT EXISTS cannot be \
                         combined"
                            .into(),
                        sql,
                        significant[0].span.start,
                    ));
                }
                (true, false) => ViewMode::OrReplace,
                (false, true) => ViewMode::IfNotExists,
                (false, false) => ViewMode::Create,
            }
        }
        "ALTER" => {
            p.next_token();
            ViewMode::Alter
        }
        _ => {
            p.next_token();
            let name = view_name(&mut p, sql)?;
            let next = p.peek_token();
            if !matches!(next.token, Token::SemiColon | Token::EOF) {
                return Err(ParseError::at(
                    format!("syntax error at or near \"{}\"", next.token),
                    sql,
                    next.span.start,
                ));
            }
            return Ok(Some(Statement::CompileView { name }));
        }
    };
    let name = view_name(&mut p, sql)?;
    let next = p.peek_token();
    if next.token == Token::LParen {
        return Err(ParseError::at(
            "a column list on CREATE VIEW is not supported: name the columns in the query \
             (SELECT a AS x, ...)"
                .into(),
            sql,
            next.span.start,
        )
        .with_sqlstate("0A000"));
    }
    if !p.parse_keyword(Keyword::AS) {
        return Err(ParseError::at(
            format!("syntax error at or near \"{}\": expected AS", next.token),
            sql,
            next.span.start,
        ));
    }
    let mut body: Vec<&TokenWithSpan> = tokens[p.index().min(tokens.len())..]
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .collect();
    while body.last().is_some_and(|t| t.token == Token::SemiColon) {
        body.pop();
    }
    if enclosed_in_parentheses(&body) {
        body = body[1..body.len() - 1].to_vec();
    }
    let (Some(first), Some(last)) = (body.first(), body.last()) else {
        return Err(ParseError::at(
            "syntax error: the view needs a query after AS".into(),
            sql,
            next.span.start,
        ));
    };
    let (definition, from) = text_between(sql, first, last, "the view's query")?;
    check_definition(&definition, from)?;
    Ok(Some(Statement::CreateView {
        name,
        definition,
        mode,
    }))
}

fn view_name(p: &mut Parser<'_>, sql: &str) -> Result<String, ParseError> {
    crate::ddl::table_name(p).map_err(|e| e.into_parse_error(sql))
}

/// Whether the tokens are `( ... )` with the first parenthesis closed by the last.
fn enclosed_in_parentheses(body: &[&TokenWithSpan]) -> bool {
    if body.len() < 2 || body[0].token != Token::LParen {
        return false;
    }
    let mut depth = 0usize;
    for (i, t) in body.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i == body.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

/// The definition must parse as one query; errors point into the whole
/// statement (`from` is the definition's 1-based character offset in it).
fn check_definition(definition: &str, from: usize) -> Result<(), ParseError> {
    let shift = |mut e: ParseError| {
        e.position = e.position.map(|p| p + from - 1);
        e
    };
    let statements = crate::parse(definition).map_err(shift)?;
    let is_query = match statements.as_slice() {
        [Statement::Standard(s)] => matches!(**s, ast::Statement::Query(_)),
        [Statement::Sample { .. } | Statement::Latest { .. }] => true,
        _ => false,
    };
    if !is_query {
        return Err(ParseError {
            message: "syntax error: a view is defined by one query (SELECT ...)".into(),
            position: Some(from),
            sqlstate: "42601",
        });
    }
    Ok(())
}
