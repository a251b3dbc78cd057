//! QuestDB's DECLARE: `DECLARE @x := 5, @day := '2024-11-25' SELECT ... @x
//! ...` binds names to expressions, and every `@name` of the query is replaced
//! by its expression before parsing (QuestDB resolves them at parse time too,
//! so `SAMPLE BY @period` and `ts IN @day` work). A DECLARE may open any query:
//! the statement, a subquery in parentheses or a CTE body; its names hold to
//! the end of that query, and a DECLARE inside shadows an outer name there.
//! A value may use the names declared before it.
//!
//! An expression of several tokens is put in parentheses where it is used
//! (`@x := 1 + 2` in `@x * 3` is `(1 + 2) * 3`), except a parenthesized one
//! (a subquery) and a number with its unit (`1m`, for SAMPLE BY). Statements
//! without `DECLARE @` are left alone: PostgreSQL's `@` (absolute value) and
//! `DECLARE name CURSOR` keep their meaning.

use std::collections::HashMap;

use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// Why a DECLARE was refused.
pub(crate) struct BadDeclare {
    pub(crate) message: String,
    pub(crate) at: TokenWithSpan,
}

/// The names one DECLARE binds, and the parenthesis depth it opened at.
struct Scope {
    depth: usize,
    names: HashMap<String, Vec<TokenWithSpan>>,
}

/// Replaces every DECLARE clause of `tokens` by nothing and every use of its
/// names by their expressions.
pub(crate) fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, BadDeclare> {
    if !has_declare(&tokens) {
        return Ok(tokens);
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut scopes: Vec<Scope> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match &t.token {
            Token::Word(w)
                if w.keyword == Keyword::DECLARE
                    && variable_at(&tokens, next(&tokens, i + 1)).is_some() =>
            {
                let (names, end) = declarations(&tokens, i + 1, &scopes)?;
                scopes.push(Scope { depth, names });
                i = end;
                continue;
            }
            Token::AtSign if !scopes.is_empty() => {
                if let Some(name) = variable_at(&tokens, i) {
                    out.extend(lookup(&scopes, &name, t)?);
                    i += 2;
                    continue;
                }
            }
            Token::LParen => depth += 1,
            Token::RParen => {
                scopes.retain(|s| s.depth < depth);
                depth = depth.saturating_sub(1);
            }
            Token::SemiColon => {
                scopes.clear();
                depth = 0;
            }
            _ => {}
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

fn has_declare(tokens: &[TokenWithSpan]) -> bool {
    tokens.iter().enumerate().any(|(i, t)| {
        matches!(&t.token, Token::Word(w) if w.keyword == Keyword::DECLARE)
            && variable_at(tokens, next(tokens, i + 1)).is_some()
    })
}

/// The index of the first token at or after `i` that is not white space.
fn next(tokens: &[TokenWithSpan], mut i: usize) -> usize {
    while matches!(tokens.get(i).map(|t| &t.token), Some(Token::Whitespace(_))) {
        i += 1;
    }
    i
}

/// The name of a variable `@name` starting at `i` (the `@` directly followed
/// by a word), lower-cased.
fn variable_at(tokens: &[TokenWithSpan], i: usize) -> Option<String> {
    match (
        tokens.get(i).map(|t| &t.token),
        tokens.get(i + 1).map(|t| &t.token),
    ) {
        (Some(Token::AtSign), Some(Token::Word(w))) if w.quote_style.is_none() => {
            Some(w.value.to_lowercase())
        }
        _ => None,
    }
}

/// The expression bound to `name`, innermost scope first.
fn lookup(
    scopes: &[Scope],
    name: &str,
    at: &TokenWithSpan,
) -> Result<Vec<TokenWithSpan>, BadDeclare> {
    scopes
        .iter()
        .rev()
        .find_map(|s| s.names.get(name))
        .cloned()
        .ok_or_else(|| BadDeclare {
            message: format!("variable @{name} is not declared"),
            at: at.clone(),
        })
}

/// Reads `@a := expr, @b := expr ...` from `i` up to the query it opens:
/// the names with their expressions (names already bound substituted), and
/// the index where the query starts.
fn declarations(
    tokens: &[TokenWithSpan],
    mut i: usize,
    outer: &[Scope],
) -> Result<(HashMap<String, Vec<TokenWithSpan>>, usize), BadDeclare> {
    let mut names: HashMap<String, Vec<TokenWithSpan>> = HashMap::new();
    loop {
        i = next(tokens, i);
        let at = tokens
            .get(i)
            .cloned()
            .unwrap_or_else(|| TokenWithSpan::wrap(Token::EOF));
        let Some(name) = variable_at(tokens, i) else {
            return Err(BadDeclare {
                message: "expected a variable (@name) after DECLARE or a comma".into(),
                at,
            });
        };
        i = next(tokens, i + 2);
        if !matches!(tokens.get(i).map(|t| &t.token), Some(Token::Assignment)) {
            return Err(BadDeclare {
                message: format!("expected variable assignment operator `:=` after @{name}"),
                at: tokens.get(i).cloned().unwrap_or(at),
            });
        }
        // The expression: up to a comma or the query's first keyword, outside
        // parentheses and brackets.
        let start = i + 1;
        let mut nesting = 0usize;
        let mut end = start;
        while let Some(t) = tokens.get(end) {
            match &t.token {
                Token::LParen | Token::LBracket => nesting += 1,
                Token::RParen | Token::RBracket if nesting == 0 => break,
                Token::RParen | Token::RBracket => nesting -= 1,
                Token::Comma | Token::SemiColon | Token::EOF if nesting == 0 => break,
                Token::Word(w) if nesting == 0 && starts_query(w.keyword) => break,
                _ => {}
            }
            end += 1;
        }
        let value = substitute(trimmed(&tokens[start..end]), outer, &names)?;
        if value
            .iter()
            .all(|t| matches!(t.token, Token::Whitespace(_)))
        {
            return Err(BadDeclare {
                message: format!("@{name} := needs an expression"),
                at,
            });
        }
        names.insert(name, wrapped(value));
        i = end;
        match tokens.get(i).map(|t| &t.token) {
            Some(Token::Comma) => i += 1,
            Some(Token::Word(_)) => return Ok((names, i)),
            _ => {
                return Err(BadDeclare {
                    message: "expected a query (SELECT or WITH) after the declarations".into(),
                    at: tokens.get(i).cloned().unwrap_or(at),
                });
            }
        }
    }
}

/// `tokens` without white space at either end.
fn trimmed(tokens: &[TokenWithSpan]) -> &[TokenWithSpan] {
    let blank = |t: &TokenWithSpan| matches!(t.token, Token::Whitespace(_));
    let start = tokens
        .iter()
        .position(|t| !blank(t))
        .unwrap_or(tokens.len());
    let end = tokens
        .iter()
        .rposition(|t| !blank(t))
        .map_or(start, |e| e + 1);
    &tokens[start..end]
}

fn starts_query(k: Keyword) -> bool {
    matches!(k, Keyword::SELECT | Keyword::WITH)
}

/// `value` with the variables it uses replaced: those of this DECLARE
/// (`names`, bound before it) and of the enclosing ones.
fn substitute(
    value: &[TokenWithSpan],
    outer: &[Scope],
    names: &HashMap<String, Vec<TokenWithSpan>>,
) -> Result<Vec<TokenWithSpan>, BadDeclare> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if let Some(name) = variable_at(value, i) {
            match names.get(&name) {
                Some(v) => out.extend(v.iter().cloned()),
                None => out.extend(lookup(outer, &name, &value[i])?),
            }
            i += 2;
            continue;
        }
        out.push(value[i].clone());
        i += 1;
    }
    Ok(out)
}

/// The expression as it is put in place of its name: in parentheses unless
/// it is one token, already parenthesized, or a number with its unit.
fn wrapped(value: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant: Vec<&Token> = value
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let whole_parenthesized = one_group(&significant);
    // `1m`: two tokens with nothing between them.
    let number_with_unit =
        value.len() == 2 && matches!(significant.as_slice(), [Token::Number(..), Token::Word(_)]);
    if significant.len() <= 1 || whole_parenthesized || number_with_unit {
        return value;
    }
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(TokenWithSpan::wrap(Token::LParen));
    out.extend(value);
    out.push(TokenWithSpan::wrap(Token::RParen));
    out
}

/// Whether `tokens` is one parenthesized group: it opens with `(` and that
/// parenthesis closes at its last token.
fn one_group(tokens: &[&Token]) -> bool {
    if !matches!(tokens.first(), Some(Token::LParen)) {
        return false;
    }
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate() {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1 == tokens.len();
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String, String> {
        crate::rewritten_by(sql, rewrite, |b| b.message)
    }

    #[test]
    fn names_are_replaced_by_their_expressions() {
        assert_eq!(
            rewritten("DECLARE @x := 5, @y := 2 SELECT @x + @y"),
            Ok("SELECT 5 + 2".to_string())
        );
        assert_eq!(
            rewritten("DECLARE @x := 1 + 2 SELECT @x * 3"),
            Ok("SELECT (1 + 2) * 3".to_string())
        );
        assert_eq!(
            rewritten(
                "DECLARE @p := 1m, @d := '2024-11-25' SELECT 1 FROM t WHERE ts IN @d SAMPLE BY @p"
            ),
            Ok("SELECT 1 FROM t WHERE ts IN '2024-11-25' SAMPLE BY 1m".to_string())
        );
        // A value may use an earlier name; a subquery value keeps its parentheses.
        assert_eq!(
            rewritten("DECLARE @c := price, @q := (SELECT @c FROM t) SELECT * FROM @q"),
            Ok("SELECT * FROM (SELECT price FROM t)".to_string())
        );
        // Two groups side by side are not one: parenthesized again.
        assert_eq!(
            rewritten("DECLARE @x := (1) + (2) SELECT @x * 3"),
            Ok("SELECT ((1) + (2)) * 3".to_string())
        );
    }

    #[test]
    fn inner_declarations_shadow_outer_ones_inside_their_parentheses() {
        assert_eq!(
            rewritten("DECLARE @x := 5 SELECT @x + y FROM (DECLARE @x := 10 SELECT @x AS y)"),
            Ok("SELECT 5 + y FROM (SELECT 10 AS y)".to_string())
        );
        // Names end with their statement.
        assert_eq!(
            rewritten("DECLARE @x := 1 SELECT @x; SELECT @ -5"),
            Ok("SELECT 1; SELECT @ -5".to_string())
        );
    }

    #[test]
    fn statements_without_declare_are_left_alone() {
        assert_eq!(rewritten("SELECT @ -5"), Ok("SELECT @ -5".to_string()));
        assert_eq!(
            rewritten("DECLARE c CURSOR FOR SELECT 1"),
            Ok("DECLARE c CURSOR FOR SELECT 1".to_string())
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(rewritten("DECLARE @x = 5 SELECT @x").is_err_and(|m| m.contains(":=")));
        assert!(
            rewritten("DECLARE @x := 5 SELECT @y")
                .is_err_and(|m| m == "variable @y is not declared")
        );
        assert!(rewritten("DECLARE @x := 5").is_err_and(|m| m.contains("expected a query")));
        assert!(
            rewritten("DECLARE @x := SELECT 1").is_err_and(|m| m.contains("needs an expression"))
        );
    }
}
