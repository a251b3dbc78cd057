//! QuestDB's implicit GROUP BY: `SELECT sym, count() FROM t` groups by every
//! selected expression that is not an aggregate, where PostgreSQL would refuse
//! the query (42803). A SELECT without GROUP BY whose list mixes aggregates with
//! other expressions of the rows gets those expressions as its GROUP BY; every
//! other SELECT is left as written.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, Visit, VisitMut, Visitor, VisitorMut};

/// Adds the implicit GROUP BY to every SELECT of `statement` (subqueries and
/// set operations included); `is_aggregate` says whether a function name
/// (lower case) is an aggregate function.
pub(crate) fn rewrite(statement: &mut ast::Statement, is_aggregate: &dyn Fn(&str) -> bool) {
    let _ = VisitMut::visit(statement, &mut Queries { is_aggregate });
}

struct Queries<'a> {
    is_aggregate: &'a dyn Fn(&str) -> bool,
}

impl VisitorMut for Queries<'_> {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        self.set_expr(&mut query.body);
        ControlFlow::Continue(())
    }
}

impl Queries<'_> {
    fn set_expr(&self, body: &mut ast::SetExpr) {
        match body {
            ast::SetExpr::Select(select) => self.select(select),
            ast::SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            // A nested query's own SELECTs were handled when it was visited.
            _ => {}
        }
    }

    fn select(&self, select: &mut ast::Select) {
        let ast::GroupByExpr::Expressions(group_by, modifiers) = &select.group_by else {
            return;
        };
        if !group_by.is_empty() || !modifiers.is_empty() {
            return;
        }
        let mut keys = Vec::new();
        let mut aggregates = 0;
        for item in &select.projection {
            let expr = match item {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
                // `*` beside an aggregate stays an error, as in QuestDB.
                _ => return,
            };
            if self.has_aggregate(expr) {
                aggregates += 1;
            } else if reads_columns(expr) {
                keys.push(expr.clone());
            }
        }
        if aggregates > 0 && !keys.is_empty() {
            select.group_by = ast::GroupByExpr::Expressions(keys, Vec::new());
        }
    }

    /// Whether `expr` calls an aggregate function, outside window calls and
    /// subqueries (those aggregate rows of their own).
    fn has_aggregate(&self, expr: &ast::Expr) -> bool {
        let mut finder = AggregateFinder {
            is_aggregate: self.is_aggregate,
            subqueries: 0,
        };
        expr.visit(&mut finder).is_break()
    }
}

struct AggregateFinder<'a> {
    is_aggregate: &'a dyn Fn(&str) -> bool,
    subqueries: usize,
}

impl Visitor for AggregateFinder<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
        self.subqueries += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
        self.subqueries -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &ast::Expr) -> ControlFlow<()> {
        if self.subqueries > 0 {
            return ControlFlow::Continue(());
        }
        if let ast::Expr::Function(f) = expr
            && f.over.is_none()
            && let Some(name) = f.name.0.last().and_then(|p| p.as_ident())
            && (self.is_aggregate)(&name.value.to_lowercase())
        {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Whether `expr` reads a column (a constant is no grouping key).
fn reads_columns(expr: &ast::Expr) -> bool {
    struct Columns;
    impl Visitor for Columns {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &ast::Expr) -> ControlFlow<()> {
            match expr {
                ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    expr.visit(&mut Columns).is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut s = crate::rewrite::parse_query(sql)
            .map(ast::Statement::Query)
            .expect(sql);
        rewrite(&mut s, &|name| {
            matches!(
                name,
                "count" | "sum" | "avg" | "min" | "max" | "first" | "last"
            )
        });
        s.to_string()
    }

    #[test]
    fn non_aggregates_beside_aggregates_become_the_group_by() {
        assert_eq!(
            rewritten("SELECT sym, count() FROM t"),
            "SELECT sym, count() FROM t GROUP BY sym"
        );
        assert_eq!(
            rewritten("SELECT upper(sym) AS s, side, sum(x) + 1 AS total, 'k' FROM t WHERE x > 0"),
            "SELECT upper(sym) AS s, side, sum(x) + 1 AS total, 'k' FROM t WHERE x > 0 GROUP BY upper(sym), side"
        );
        // Inside subqueries and set operations too.
        assert_eq!(
            rewritten("SELECT * FROM (SELECT a, max(b) FROM t) UNION ALL SELECT a, min(b) FROM u"),
            "SELECT * FROM (SELECT a, max(b) FROM t GROUP BY a) UNION ALL SELECT a, min(b) FROM u GROUP BY a"
        );
    }

    #[test]
    fn other_selects_are_left_as_written() {
        for sql in [
            "SELECT sym, count(*) FROM t GROUP BY sym",
            "SELECT count(*), max(x) FROM t",
            "SELECT sym, x FROM t",
            "SELECT sym, row_number() OVER (ORDER BY x) FROM t",
            "SELECT sym, (SELECT max(x) FROM u) FROM t",
            "SELECT *, count(*) FROM t",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
