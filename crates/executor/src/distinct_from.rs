//! `a IS [NOT] DISTINCT FROM b AND c` means `(a IS DISTINCT FROM b) AND c` in
//! PostgreSQL (IS binds tighter than AND, OR and NOT). sqlparser 0.62 parses the
//! right side of IS [NOT] DISTINCT FROM as a whole expression, giving
//! `a IS DISTINCT FROM (b AND c)`, which then fails to plan ("Cannot infer
//! common argument type for logical boolean operation"). This puts the
//! comparison back around the leftmost operand of such an unparenthesized
//! AND/OR chain, before planning. (Parenthesized right sides are `Nested` and
//! left alone.)

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, BinaryOperator, Expr};

pub(crate) fn fix_precedence(statement: &mut ast::Statement) {
    let _ = ast::visit_expressions_mut(statement, |e| {
        let (left, right, negated) = match e {
            Expr::IsDistinctFrom(l, r) => (l, r, false),
            Expr::IsNotDistinctFrom(l, r) => (l, r, true),
            _ => return ControlFlow::<()>::Continue(()),
        };
        if !is_and_or(right) {
            return ControlFlow::Continue(());
        }
        let left = std::mem::replace(left.as_mut(), Expr::value(ast::Value::Null));
        let mut chain = std::mem::replace(right.as_mut(), Expr::value(ast::Value::Null));
        // Walk down the left spine of the chain to its first operand.
        let mut first = &mut chain;
        while is_and_or(first) {
            let Expr::BinaryOp { left, .. } = first else {
                break;
            };
            first = left.as_mut();
        }
        let operand = std::mem::replace(first, Expr::value(ast::Value::Null));
        *first = if negated {
            Expr::IsNotDistinctFrom(Box::new(left), Box::new(operand))
        } else {
            Expr::IsDistinctFrom(Box::new(left), Box::new(operand))
        };
        *e = chain;
        ControlFlow::Continue(())
    });
}

fn is_and_or(e: &Expr) -> bool {
    matches!(
        e,
        Expr::BinaryOp {
            op: BinaryOperator::And | BinaryOperator::Or | BinaryOperator::Xor,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(sql: &str) -> String {
        let mut s = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .expect("parses")
        .pop()
        .expect("one statement");
        fix_precedence(&mut s);
        s.to_string()
    }

    #[test]
    fn the_comparison_binds_tighter_than_and_and_or() {
        let mut s = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT a IS NOT DISTINCT FROM b AND c OR d",
        )
        .expect("parses")
        .pop()
        .expect("one statement");
        fix_precedence(&mut s);
        let ast::Statement::Query(q) = s else {
            panic!("a query")
        };
        let ast::SetExpr::Select(select) = *q.body else {
            panic!("a select")
        };
        let Some(ast::SelectItem::UnnamedExpr(e)) = select.projection.first() else {
            panic!("one expression")
        };
        // ((a IS NOT DISTINCT FROM b) AND c) OR d
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            ..
        } = e
        else {
            panic!("OR at the top: {e:?}")
        };
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            ..
        } = left.as_ref()
        else {
            panic!("AND below it: {left:?}")
        };
        assert!(
            matches!(left.as_ref(), Expr::IsNotDistinctFrom(..)),
            "{left:?}"
        );
    }

    #[test]
    fn parenthesized_right_sides_are_left_alone() {
        assert_eq!(
            fixed("SELECT a IS DISTINCT FROM (b OR c)"),
            "SELECT a IS DISTINCT FROM (b OR c)"
        );
    }
}
