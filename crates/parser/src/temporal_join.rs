//! Temporal joins: QuestDB's `ASOF JOIN`, `LT JOIN` and `SPLICE JOIN` (with
//! `ON (keys)` and `TOLERANCE <n><unit>`) and DuckDB's `ASOF [LEFT] JOIN ... ON
//! a.k = b.k AND a.ts >= b.ts`.
//!
//! sqlparser knows only Snowflake's spelling, `ASOF JOIN <relation>
//! MATCH_CONDITION (<expr>) ON ...`, so the tokens are rewritten into it, with
//! a marker call as the match condition:
//! `MATCH_CONDITION (__tidemark_temporal_join('<kind>', <tolerance µs | NULL>, '<outer>'))`.
//! The rest of the statement then parses as standard SQL, and the executor,
//! which knows the tables' designated timestamps, plans the join from the marker.
//! A statement that already has a MATCH_CONDITION is left as written.

use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

/// The name of the marker function the rewrite puts into MATCH_CONDITION.
pub const MARKER: &str = "__tidemark_temporal_join";

/// Why a temporal join was refused.
pub(crate) struct BadJoin {
    pub(crate) message: String,
    pub(crate) at: TokenWithSpan,
}

fn word(t: Option<&TokenWithSpan>, w: &str) -> bool {
    matches!(t.map(|t| &t.token), Some(Token::Word(x)) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// Index of the next non-whitespace token at or after `i`.
fn next_solid(tokens: &[TokenWithSpan], mut i: usize) -> usize {
    while i < tokens.len() && matches!(tokens[i].token, Token::Whitespace(_)) {
        i += 1;
    }
    i
}

/// Index just past the parenthesis that closes the one at `open`.
fn past_parens(tokens: &[TokenWithSpan], open: usize) -> usize {
    let mut depth = 0i32;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Words that end a relation's alias position or a join's ON condition.
const CLAUSE_WORDS: &[&str] = &[
    "ON",
    "USING",
    "WHERE",
    "GROUP",
    "ORDER",
    "LIMIT",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "CROSS",
    "FULL",
    "NATURAL",
    "ASOF",
    "LT",
    "SPLICE",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "SAMPLE",
    "LATEST",
    "HAVING",
    "WINDOW",
    "TOLERANCE",
    "MATCH_CONDITION",
];

fn is_clause_word(t: Option<&TokenWithSpan>) -> bool {
    CLAUSE_WORDS.iter().any(|w| word(t, w))
}

/// Index just past the relation that starts at `start`: a name (`a.b`), a
/// table function call or a parenthesised subquery, and its alias.
fn past_relation(tokens: &[TokenWithSpan], start: usize) -> usize {
    let mut i = start;
    match tokens.get(i).map(|t| &t.token) {
        Some(Token::LParen) => i = past_parens(tokens, i),
        Some(Token::Word(_)) => {
            i += 1;
            while tokens.get(next_solid(tokens, i)).map(|t| &t.token) == Some(&Token::Period) {
                i = next_solid(tokens, i) + 2;
            }
            let after = next_solid(tokens, i);
            if tokens.get(after).map(|t| &t.token) == Some(&Token::LParen) {
                i = past_parens(tokens, after);
            }
        }
        _ => return i,
    }
    let mut alias = next_solid(tokens, i);
    if word(tokens.get(alias), "AS") {
        alias = next_solid(tokens, alias + 1);
    }
    if matches!(tokens.get(alias).map(|t| &t.token), Some(Token::Word(_)))
        && !is_clause_word(tokens.get(alias))
    {
        i = alias + 1;
        // QuestDB's dynamic timestamp, `timestamp(ts)`, reads as an alias with
        // a column list.
        let list = next_solid(tokens, i);
        if tokens.get(list).map(|t| &t.token) == Some(&Token::LParen) {
            i = past_parens(tokens, list);
        }
    }
    i
}

/// Where the join condition that starts at `start` ends, and the index of a
/// TOLERANCE word inside it.
fn condition_end(tokens: &[TokenWithSpan], start: usize) -> (usize, Option<usize>) {
    let mut depth = 0i32;
    for (i, t) in tokens.iter().enumerate().skip(start) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => return (i, None),
            Token::RParen => depth -= 1,
            Token::SemiColon | Token::EOF => return (i, None),
            Token::Comma if depth == 0 => return (i, None),
            _ if depth == 0 && word(Some(t), "TOLERANCE") => return (i, Some(i)),
            _ if depth == 0 && i > start && is_clause_word(Some(t)) && !word(Some(t), "ON") => {
                return (i, None);
            }
            _ => {}
        }
    }
    (tokens.len(), None)
}

/// Microseconds in one QuestDB time unit, as TOLERANCE takes them.
fn unit_micros(unit: &str) -> Option<i64> {
    Some(match unit {
        "U" => 1,
        "T" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        "w" => 7 * 86_400_000_000,
        _ => return None,
    })
}

/// Reads `TOLERANCE <n><unit>` at `at`: the microseconds and the index past it.
fn tolerance(tokens: &[TokenWithSpan], at: usize) -> Result<(i64, usize), BadJoin> {
    let bad = |found: String, t: &TokenWithSpan| BadJoin {
        message: format!(
            "TOLERANCE takes a positive whole number and a unit (U, T, s, m, h, d or w), \
             such as 10s; found \"{found}\""
        ),
        at: t.clone(),
    };
    let n_at = next_solid(tokens, at + 1);
    let Some(n_tok) = tokens.get(n_at) else {
        return Err(bad(String::new(), &tokens[at]));
    };
    let Token::Number(n, _) = &n_tok.token else {
        return Err(bad(n_tok.token.to_string(), n_tok));
    };
    let digits: String = n.chars().take_while(|c| c.is_ascii_digit()).collect();
    let glued = &n[digits.len()..];
    let (unit, end) = if glued.is_empty() {
        let u_at = next_solid(tokens, n_at + 1);
        match tokens.get(u_at).map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() => (w.value.clone(), u_at + 1),
            _ => return Err(bad(n.clone(), n_tok)),
        }
    } else {
        (glued.to_string(), n_at + 1)
    };
    let count = digits.parse::<i64>().ok().filter(|v| *v > 0);
    count
        .zip(unit_micros(&unit))
        .and_then(|(count, micros)| count.checked_mul(micros))
        .map(|v| (v, end))
        .ok_or_else(|| bad(format!("{digits}{unit}"), n_tok))
}

/// Rewrites every temporal join in `tokens` into sqlparser's ASOF JOIN with a
/// marker match condition.
pub(crate) fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, BadJoin> {
    // Edits by token index: what replaces a token, what goes before one.
    let mut replace: Vec<Option<Vec<TokenWithSpan>>> = vec![None; tokens.len()];
    let mut insert_before: Vec<Vec<TokenWithSpan>> = vec![Vec::new(); tokens.len() + 1];
    let mut i = 0;
    while i < tokens.len() {
        let kind = ["ASOF", "LT", "SPLICE"]
            .into_iter()
            .find(|k| word(tokens.get(i), k));
        let Some(kind) = kind else {
            i += 1;
            continue;
        };
        let mut join_at = next_solid(&tokens, i + 1);
        let mut outer = "";
        if kind == "ASOF" && word(tokens.get(join_at), "LEFT") {
            outer = "left";
            join_at = next_solid(&tokens, join_at + 1);
        }
        if !word(tokens.get(join_at), "JOIN") {
            i += 1;
            continue;
        }
        let relation_end = past_relation(&tokens, next_solid(&tokens, join_at + 1));
        let after_relation = next_solid(&tokens, relation_end);
        if word(tokens.get(after_relation), "MATCH_CONDITION") {
            // Snowflake's own spelling: sqlparser reads it as written.
            i = join_at + 1;
            continue;
        }
        let (_, tolerance_at) = condition_end(&tokens, after_relation);
        let mut tolerance_sql = Token::make_keyword("NULL");
        if let Some(at) = tolerance_at {
            let (micros, end) = tolerance(&tokens, at)?;
            tolerance_sql = Token::Number(micros.to_string(), false);
            for slot in replace.iter_mut().take(end).skip(at) {
                *slot = Some(Vec::new());
            }
        }
        let span = tokens[i].span;
        let with = |token: Token| TokenWithSpan { token, span };
        let space = || with(Token::Whitespace(Whitespace::Space));
        replace[i] = Some(vec![
            with(Token::make_keyword("ASOF")),
            space(),
            with(Token::make_keyword("JOIN")),
        ]);
        for slot in replace.iter_mut().take(join_at + 1).skip(i + 1) {
            *slot = Some(Vec::new());
        }
        insert_before[relation_end].extend([
            space(),
            with(Token::make_keyword("MATCH_CONDITION")),
            with(Token::LParen),
            with(Token::make_word(MARKER, None)),
            with(Token::LParen),
            with(Token::SingleQuotedString(kind.to_ascii_lowercase())),
            with(Token::Comma),
            with(tolerance_sql),
            with(Token::Comma),
            with(Token::SingleQuotedString(outer.to_string())),
            with(Token::RParen),
            with(Token::RParen),
            space(),
        ]);
        // Go on inside the relation: a subquery may hold temporal joins too.
        i = join_at + 1;
    }
    let mut out = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.into_iter().enumerate() {
        out.append(&mut insert_before[i]);
        match replace[i].take() {
            Some(tokens) => out.extend(tokens),
            None => out.push(t),
        }
    }
    if let Some(last) = insert_before.last_mut() {
        out.append(last);
    }
    Ok(out)
}
