//! `EXISTS (subquery)` in a select list (SQLAlchemy's `select(exists().where(...))`
//! writes `SELECT EXISTS (SELECT * FROM t WHERE ...) AS anon_1`): DataFusion
//! plans EXISTS only as a filter ("Physical plan does not support logical
//! expression Exists"). A subquery that is one plain SELECT (no grouping,
//! aggregate, DISTINCT or LIMIT) becomes `(SELECT count(*) FROM ... WHERE
//! ...) > 0` (`= 0` for NOT EXISTS), a scalar subquery DataFusion runs
//! correlated or not; other subqueries are left as written. EXISTS in WHERE is
//! left to DataFusion's semi join.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast;

pub(crate) fn rewrite(statement: &mut ast::Statement) {
    struct SelectLists;
    impl ast::VisitorMut for SelectLists {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
            if let ast::SetExpr::Select(select) = query.body.as_mut() {
                for item in select.projection.iter_mut() {
                    if let ast::SelectItem::UnnamedExpr(e)
                    | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
                    {
                        let _ = ast::visit_expressions_mut(e, |e| {
                            if let Some(count) = counted(e) {
                                *e = count;
                            }
                            ControlFlow::<()>::Continue(())
                        });
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = ast::VisitMut::visit(statement, &mut SelectLists);
}

/// `EXISTS (SELECT ... FROM f WHERE c)` as `((SELECT count(*) FROM f WHERE c) > 0)`.
fn counted(e: &ast::Expr) -> Option<ast::Expr> {
    let ast::Expr::Exists { subquery, negated } = e else {
        return None;
    };
    if subquery.limit_clause.is_some() || subquery.fetch.is_some() || subquery.with.is_some() {
        return None;
    }
    let ast::SetExpr::Select(select) = subquery.body.as_ref() else {
        return None;
    };
    let grouped = !matches!(&select.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty());
    if grouped || select.having.is_some() || select.distinct.is_some() || has_aggregate(select) {
        return None;
    }
    let mut select = select.clone();
    select.projection = vec![ast::SelectItem::UnnamedExpr(
        crate::rewrite::parse_expr("count(*)").ok()?,
    )];
    let mut count = subquery.clone();
    count.body = Box::new(ast::SetExpr::Select(select));
    count.order_by = None;
    let op = if *negated {
        ast::BinaryOperator::Eq
    } else {
        ast::BinaryOperator::Gt
    };
    Some(ast::Expr::Nested(Box::new(ast::Expr::BinaryOp {
        left: Box::new(ast::Expr::Subquery(count)),
        op,
        right: Box::new(ast::Expr::value(ast::Value::Number("0".into(), false))),
    })))
}

/// Whether the select list calls a function with an aggregate's usual name
/// (`count(*)` of an aggregated subquery would count its one row).
fn has_aggregate(select: &ast::Select) -> bool {
    const AGGREGATES: [&str; 8] = [
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "array_agg",
        "first",
        "last",
    ];
    let mut found = false;
    for item in &select.projection {
        let _ = ast::visit_expressions(item, |e| {
            if let ast::Expr::Function(f) = e
                && let Some(name) = f.name.0.last().and_then(|p| p.as_ident())
                && AGGREGATES
                    .iter()
                    .any(|a| name.value.eq_ignore_ascii_case(a))
            {
                found = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::ast;

    fn rewritten(sql: &str) -> String {
        let mut s = ast::Statement::Query(crate::rewrite::parse_query(sql).expect(sql));
        super::rewrite(&mut s);
        s.to_string()
    }

    #[test]
    fn exists_in_a_select_list_counts_the_rows_of_its_subquery() {
        assert_eq!(
            rewritten("SELECT EXISTS (SELECT * FROM t WHERE t.x = 1) AS anon_1"),
            "SELECT ((SELECT count(*) FROM t WHERE t.x = 1) > 0) AS anon_1"
        );
        assert_eq!(
            rewritten("SELECT a.k, NOT EXISTS (SELECT 1 FROM b WHERE b.k = a.k) FROM a"),
            "SELECT a.k, ((SELECT count(*) FROM b WHERE b.k = a.k) = 0) FROM a"
        );
        // In WHERE, and over an aggregated or limited subquery: as written.
        for sql in [
            "SELECT x FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k = a.k)",
            "SELECT EXISTS (SELECT max(x) FROM b)",
            "SELECT EXISTS (SELECT k FROM b GROUP BY k)",
            "SELECT EXISTS (SELECT 1 FROM b LIMIT 1)",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
