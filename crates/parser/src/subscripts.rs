//! QuestDB's multi-dimensional subscripts: `arr[1, 2]` is `arr[1][2]`, and
//! `arr[1, 2:4]` is `arr[1][2:4]` (the element, or a slice of the last
//! dimension, of an n-dimensional array). PostgreSQL's grammar has only the
//! bracket-per-dimension form, so the commas become `][` before parsing.
//!
//! A slice before another subscript (`arr[1:2, 3]`) means "column 3 of rows 1
//! and 2" in QuestDB, which the bracket-per-dimension form cannot say: it is
//! refused rather than read as `arr[1:2][3]` (row 3 of the slice).
//!
//! A slice may leave out a bound, as in PostgreSQL and QuestDB: `arr[2:]`
//! runs to the end and `arr[:2]` starts at 1 (DataFusion's planner wants
//! both bounds, so the missing one is written in).
//!
//! A bracket is a subscript when it directly follows what ends an expression:
//! a name (not the keyword ARRAY), `)` or `]`. Array constructors
//! (`ARRAY[1, 2]`) and type names (`DOUBLE[]`) are left alone.

use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// Why a subscript was refused.
pub(crate) struct BadSubscript {
    pub(crate) message: String,
    pub(crate) at: TokenWithSpan,
}

/// What an open bracket or parenthesis is.
enum Open {
    /// A subscript; whether its current part has a top-level `:` (a slice).
    Subscript {
        slice: bool,
    },
    Other,
}

/// Rewrites every `[a, b, ...]` subscript in `tokens` to `[a][b]...`.
pub(crate) fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, BadSubscript> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut open: Vec<Open> = Vec::new();
    for t in tokens {
        match &t.token {
            Token::LBracket => {
                let subscript = out.last().is_some_and(|p| ends_expression(&p.token));
                open.push(if subscript {
                    Open::Subscript { slice: false }
                } else {
                    Open::Other
                });
            }
            Token::LParen => open.push(Open::Other),
            Token::RBracket | Token::RParen => {
                if matches!(t.token, Token::RBracket)
                    && matches!(open.last(), Some(Open::Subscript { .. }))
                {
                    close_open_slice(&mut out, &t);
                }
                open.pop();
            }
            Token::Colon => {
                if let Some(Open::Subscript { slice }) = open.last_mut() {
                    *slice = true;
                    if matches!(last_significant(&out), Some(Token::LBracket)) {
                        out.push(TokenWithSpan::new(Token::Number("1".into(), false), t.span));
                    }
                }
            }
            Token::Comma => {
                if let Some(Open::Subscript { slice }) = open.last_mut() {
                    close_open_slice(&mut out, &t);
                    if *slice {
                        return Err(BadSubscript {
                            message: "a slice before another subscript (arr[lo:hi, i]) is \
                                      not supported: put the slice last (arr[i, lo:hi]) or \
                                      write one subscript per dimension (arr[lo:hi][i] slices \
                                      the rows, then takes row i of the slice)"
                                .into(),
                            at: t,
                        });
                    }
                    out.push(TokenWithSpan::new(Token::RBracket, t.span));
                    out.push(TokenWithSpan::new(Token::LBracket, t.span));
                    continue;
                }
            }
            _ => {}
        }
        out.push(t);
    }
    Ok(out)
}

/// The largest upper bound of a slice: past the end of any array.
const OPEN_UPPER_BOUND: &str = "2147483647";

/// Ends a slice whose upper bound is left out (`lo:` before `]` or `,`).
fn close_open_slice(out: &mut Vec<TokenWithSpan>, at: &TokenWithSpan) {
    if matches!(last_significant(out), Some(Token::Colon)) {
        out.push(TokenWithSpan::new(
            Token::Number(OPEN_UPPER_BOUND.into(), false),
            at.span,
        ));
    }
}

/// The last token of `out` that is not white space or a comment.
fn last_significant(out: &[TokenWithSpan]) -> Option<&Token> {
    out.iter()
        .rev()
        .map(|t| &t.token)
        .find(|t| !matches!(t, Token::Whitespace(_)))
}

fn ends_expression(t: &Token) -> bool {
    match t {
        Token::Word(w) => w.quote_style.is_some() || w.keyword != Keyword::ARRAY,
        Token::RParen | Token::RBracket => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String, String> {
        crate::rewritten_by(sql, rewrite, |b| b.message)
    }

    #[test]
    fn commas_become_one_bracket_per_dimension() {
        assert_eq!(rewritten("a[1, 2]"), Ok("a[1][ 2]".to_string()));
        assert_eq!(rewritten("a[1, 2:3]"), Ok("a[1][ 2:3]".to_string()));
        assert_eq!(rewritten("ARRAY[1, 2]"), Ok("ARRAY[1, 2]".to_string()));
        assert!(rewritten("a[1:2, 3]").is_err_and(|m| m.contains("a slice before another")));
    }

    #[test]
    fn slices_may_leave_out_a_bound() {
        assert_eq!(rewritten("a[2:]"), Ok("a[2:2147483647]".to_string()));
        assert_eq!(rewritten("a[2: ]"), Ok("a[2: 2147483647]".to_string()));
        assert_eq!(rewritten("a[:2]"), Ok("a[1:2]".to_string()));
        assert_eq!(rewritten("a[1, 2:]"), Ok("a[1][ 2:2147483647]".to_string()));
        assert_eq!(rewritten("a[:]"), Ok("a[1:2147483647]".to_string()));
        // Not subscripts: left alone.
        assert_eq!(rewritten("ARRAY[1, 2]"), Ok("ARRAY[1, 2]".to_string()));
        assert_eq!(rewritten("x::int"), Ok("x::int".to_string()));
    }
}
