//! Statements Tidemark writes for itself — the rewrites of SAMPLE BY, LATEST ON,
//! UPDATE, DELETE and DROP PARTITION WHERE — are built as SQL text with quoted
//! identifiers and parsed back into an AST here, with one parser. A user's own
//! expressions are not written back as text: the skeleton names them by
//! `part(n)` and `with_parts` puts their AST in place.

use datafusion::sql::sqlparser::ast;

use crate::error::{ExecError, Result, sqlstate};

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn internal(what: &str) -> ExecError {
    ExecError::new(
        sqlstate::INTERNAL_ERROR,
        format!("an internal rewrite {what}"),
    )
}

/// Parses a query written by Tidemark.
pub(crate) fn parse_query(sql: &str) -> Result<Box<ast::Query>> {
    match tidemark_parser::parse(sql)?.pop() {
        Some(tidemark_parser::Statement::Standard(s)) => match *s {
            ast::Statement::Query(q) => Ok(q),
            _ => Err(internal("is not a query")),
        },
        _ => Err(internal("did not parse")),
    }
}

/// Parses an expression written by Tidemark.
pub(crate) fn parse_expr(sql: &str) -> Result<ast::Expr> {
    match *parse_query(&format!("SELECT {sql}"))?.body {
        ast::SetExpr::Select(s) => match s.projection.into_iter().next() {
            Some(ast::SelectItem::UnnamedExpr(e)) => Ok(e),
            _ => Err(internal("produced no expression")),
        },
        _ => Err(internal("produced no SELECT")),
    }
}

/// The identifier standing for the `n`-th user expression in a skeleton.
pub(crate) fn part(n: usize) -> String {
    format!("\"__tidemark_part_{n}\"")
}

/// A query or expression with every `part(n)` identifier replaced by `parts[n]`.
pub(crate) fn with_parts<T: ast::VisitMut>(mut node: T, parts: &[&ast::Expr]) -> T {
    use std::ops::ControlFlow;
    let _ = ast::visit_expressions_mut(&mut node, |e| {
        if let ast::Expr::Identifier(i) = e
            && i.quote_style == Some('"')
            && let Some(n) = i.value.strip_prefix("__tidemark_part_")
            && let Some(part) = n.parse::<usize>().ok().and_then(|n| parts.get(n))
        {
            *e = (*part).clone();
        }
        ControlFlow::<()>::Continue(())
    });
    node
}

/// A string literal, to put into a skeleton with `with_parts` (its text is never
/// spliced into SQL).
pub(crate) fn string_literal(s: &str) -> ast::Expr {
    ast::Expr::Value(ast::Value::SingleQuotedString(s.to_string()).into())
}

/// The arguments of a call when they are all plain, unnamed expressions
/// (`f(a, b)`; not `f(*)`, `f(x => 1)` or `f()` without a list).
pub(crate) fn unnamed_args(f: &ast::Function) -> Option<Vec<&ast::Expr>> {
    let ast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    Some(
        list.args
            .iter()
            .filter_map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
    )
}
