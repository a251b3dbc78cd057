//! Statements Tidemark writes for itself — the rewrites of SAMPLE BY, LATEST ON,
//! UPDATE, DELETE and DROP PARTITION WHERE — are built as SQL text with quoted
//! identifiers and parsed back into an AST here, with one parser. A user's own
//! expressions are not written back as text: the skeleton names them by
//! `part(n)` and `with_parts` puts their AST in place.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, VisitMut};

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

/// Applies `rewrite_expr` to every expression of `statement` (each replaced
/// expression is not visited again). A select item it changes is aliased to the
/// text it was written as, the name a native function would have given it: two
/// items that become the same expression (`SELECT now(), systimestamp()`) stay
/// two columns instead of failing as duplicate names, and the result's names
/// (read from the statement as written) are unaffected.
pub(crate) fn rewrite_expressions(
    statement: &mut ast::Statement,
    mut rewrite_expr: impl FnMut(&ast::Expr) -> Result<Option<ast::Expr>>,
) -> Result<()> {
    let mut error = None;
    let mut items = SelectItems {
        rewrite_expr: &mut rewrite_expr,
        error: &mut error,
    };
    if statement.visit(&mut items).is_continue() {
        let _ = ast::visit_expressions_mut(statement, |e| apply(&mut rewrite_expr, &mut error, e));
    }
    error.map_or(Ok(()), Err)
}

/// Replaces `e` by its rewrite, if any; an error is kept in `error` and stops
/// the visit.
fn apply(
    rewrite_expr: &mut impl FnMut(&ast::Expr) -> Result<Option<ast::Expr>>,
    error: &mut Option<ExecError>,
    e: &mut ast::Expr,
) -> ControlFlow<()> {
    match rewrite_expr(e) {
        Ok(Some(replaced)) => *e = replaced,
        Ok(None) => {}
        Err(err) => {
            *error = Some(err);
            return ControlFlow::Break(());
        }
    }
    ControlFlow::Continue(())
}

/// Visits every query's select items for [`rewrite_expressions`].
struct SelectItems<'a, R> {
    rewrite_expr: &'a mut R,
    error: &'a mut Option<ExecError>,
}

impl<R: FnMut(&ast::Expr) -> Result<Option<ast::Expr>>> ast::VisitorMut for SelectItems<'_, R> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        let mut selects = vec![query.body.as_mut()];
        while let Some(body) = selects.pop() {
            match body {
                ast::SetExpr::Select(select) => {
                    for item in &mut select.projection {
                        self.alias_if_rewritten(item)?;
                    }
                }
                ast::SetExpr::SetOperation { left, right, .. } => {
                    selects.push(left.as_mut());
                    selects.push(right.as_mut());
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}

impl<R: FnMut(&ast::Expr) -> Result<Option<ast::Expr>>> SelectItems<'_, R> {
    fn alias_if_rewritten(&mut self, item: &mut ast::SelectItem) -> ControlFlow<()> {
        let ast::SelectItem::UnnamedExpr(e) = item else {
            return ControlFlow::Continue(());
        };
        // Most items have nothing to rewrite: look before taking their text (an
        // error counts as a rewrite, which reports it).
        let rewrites = ast::visit_expressions(e, |x| match (self.rewrite_expr)(x) {
            Ok(None) => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        })
        .is_break();
        if !rewrites {
            return ControlFlow::Continue(());
        }
        let alias = ast::Ident::with_quote('"', e.to_string());
        ast::visit_expressions_mut(e, |x| apply(self.rewrite_expr, self.error, x))?;
        let expr = std::mem::replace(e, ast::Expr::Value(ast::Value::Null.with_empty_span()));
        *item = ast::SelectItem::ExprWithAlias { expr, alias };
        ControlFlow::Continue(())
    }
}
