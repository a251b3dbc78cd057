//! A bound on how deeply the calls with special syntax nest (`POSITION(a IN
//! b)`, `SUBSTRING(x FROM 1)`, `EXTRACT(YEAR FROM ts)`, `TRIM(...)`, ...),
//! checked on the tokens before sqlparser sees them.
//!
//! When such a call fails to parse, sqlparser tries its keyword again as an
//! ordinary name (`position` is a common column name) and re-parses everything
//! inside, so a statement of n nested calls with a mistake at the bottom costs
//! 2^n or more parses: 16 levels took minutes (found by fuzzing). No query
//! nests these calls deeply; past [`MAX_SPECIAL_CALLS`] the statement is
//! refused (54001, PostgreSQL's code for a statement too complex to handle),
//! whatever else it nests.

use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// The most calls with special syntax one may nest inside another.
pub(crate) const MAX_SPECIAL_CALLS: usize = 6;

/// The words whose calls have a syntax of their own (and are re-read as names).
const SPECIAL: [&str; 10] = [
    "POSITION",
    "SUBSTRING",
    "EXTRACT",
    "TRIM",
    "OVERLAY",
    "INTERVAL",
    "CEIL",
    "FLOOR",
    "CONVERT",
    "TRY_CONVERT",
];

/// The token at which the special calls nest deeper than allowed, if any.
pub(crate) fn too_deep(tokens: &[TokenWithSpan]) -> Option<&TokenWithSpan> {
    // For each open parenthesis or bracket: whether it opens a special call.
    let mut open: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    let mut previous_special = false;
    for t in tokens {
        match &t.token {
            Token::Whitespace(_) => continue,
            Token::LParen | Token::LBracket => {
                open.push(previous_special);
                if previous_special {
                    depth += 1;
                    if depth > MAX_SPECIAL_CALLS {
                        return Some(t);
                    }
                }
            }
            // The guard pops whichever parenthesis closes.
            Token::RParen | Token::RBracket if open.pop() == Some(true) => depth -= 1,
            _ => {}
        }
        previous_special = matches!(&t.token, Token::Word(w)
            if w.quote_style.is_none() && SPECIAL.iter().any(|s| w.value.eq_ignore_ascii_case(s)));
    }
    None
}
