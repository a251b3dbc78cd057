//! `FETCH` and `MOVE` as PostgreSQL spells them (sqlparser's FETCH needs a
//! count and FROM, and it has no MOVE):
//!
//! ```text
//! { FETCH | MOVE } [ NEXT | PRIOR | FIRST | LAST | ABSOLUTE n | RELATIVE n | n | ALL
//!                  | FORWARD [ n | ALL ] | BACKWARD [ n | ALL ] ] [ FROM | IN ] cursor
//! ```
//!
//! Cursors only go forward: the backward and absolute forms parse, and the
//! executor refuses them by name.

use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::Token;

use crate::ddl::{Result, consume_word, syntax};
use crate::statement::{FetchCount, Statement};

pub(crate) fn parse_fetch(p: &mut Parser<'_>) -> Result<Statement> {
    let verb = p.next_token().token.to_string().to_ascii_uppercase();
    let count = if consume_word(p, "NEXT") {
        FetchCount::Rows(1)
    } else if consume_word(p, "ALL") {
        FetchCount::All
    } else if consume_word(p, "FORWARD") {
        if consume_word(p, "ALL") {
            FetchCount::All
        } else {
            number(p)?.map_or(FetchCount::Rows(1), FetchCount::Rows)
        }
    } else if consume_word(p, "RELATIVE") {
        match number(p)? {
            Some(n) => FetchCount::Relative(n),
            None => return Err(expected(p, "a count after RELATIVE")),
        }
    } else {
        let backward = ["PRIOR", "FIRST", "LAST", "ABSOLUTE", "BACKWARD"]
            .into_iter()
            .find(|w| consume_word(p, w));
        match backward {
            Some(w) => {
                // The count or ALL that may follow.
                let _ = consume_word(p, "ALL") || number(p)?.is_some();
                FetchCount::Unsupported(w)
            }
            None => number(p)?.map_or(FetchCount::Rows(1), FetchCount::Rows),
        }
    };
    let _ = consume_word(p, "FROM") || consume_word(p, "IN");
    let t = p.next_token();
    let cursor = match &t.token {
        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
        Token::Word(w) => w.value.to_ascii_lowercase(),
        other => {
            let message =
                format!("syntax error at or near \"{other}\": expected a cursor name after {verb}");
            return Err(syntax(message, t));
        }
    };
    Ok(Statement::Fetch {
        cursor,
        count,
        move_only: verb == "MOVE",
    })
}

/// A non-negative count, if one is next.
fn number(p: &mut Parser<'_>) -> Result<Option<u64>> {
    let t = p.peek_token();
    let Token::Number(n, _) = &t.token else {
        return Ok(None);
    };
    let parsed = n.parse::<u64>().map_err(|_| {
        syntax(
            format!("syntax error at or near \"{n}\": expected a row count"),
            t.clone(),
        )
    })?;
    p.next_token();
    Ok(Some(parsed))
}

fn expected(p: &Parser<'_>, what: &str) -> crate::ddl::DdlError {
    let t = p.peek_token();
    syntax(
        format!("syntax error at or near \"{}\": expected {what}", t.token),
        t,
    )
}
