//! QuestDB aggregate functions that are other aggregates in disguise, written
//! out before planning: `count_distinct(x)` is `count(DISTINCT x)`, and
//! `vwap(price, amount)` (volume-weighted average price) is
//! `sum(price * amount) / sum(amount)`, and `approx_percentile(x, p [,
//! precision])` is DataFusion's `approx_percentile_cont(x, p)` (a t-digest
//! where QuestDB keeps an HDR histogram: the precision has no meaning here).
//! `variance` (PostgreSQL's and QuestDB's) is `var_samp`, QuestDB's
//! `approx_count_distinct` DataFusion's `approx_distinct` (HyperLogLog both).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast;

use crate::error::Result;
use crate::rewrite::{parse_expr, part, with_parts};

/// Rewrites the calls in `statement` (window calls, `OVER`, are left alone:
/// neither has a window form in QuestDB).
pub(crate) fn rewrite(statement: &mut ast::Statement) -> Result<()> {
    let count = parse_expr(&format!("count(DISTINCT {})", part(0)))?;
    let vwap = parse_expr(&format!(
        "sum(({a}) * ({b})) / sum({b})",
        a = part(0),
        b = part(1)
    ))?;
    let percentile = parse_expr(&format!("approx_percentile_cont({}, {})", part(0), part(1)))?;
    let _ = ast::visit_expressions_mut(statement, |e| {
        let ast::Expr::Function(f) = e else {
            return ControlFlow::<()>::Continue(());
        };
        let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) else {
            return ControlFlow::Continue(());
        };
        let lower = name.value.to_ascii_lowercase();
        // Other names of DataFusion's aggregates: PostgreSQL's and QuestDB's
        // `variance`, QuestDB's `approx_count_distinct`.
        let renamed = match lower.as_str() {
            "variance" => Some("var_samp"),
            "approx_count_distinct" => Some("approx_distinct"),
            _ => None,
        };
        if let Some(datafusion_name) = renamed {
            f.name = ast::ObjectName::from(vec![ast::Ident::new(datafusion_name)]);
            return ControlFlow::Continue(());
        }
        let skeleton = match lower.as_str() {
            "count_distinct" => &count,
            "vwap" => &vwap,
            "approx_percentile" => &percentile,
            _ => return ControlFlow::Continue(()),
        };
        if f.over.is_some() {
            return ControlFlow::Continue(());
        }
        let args = plain_args(f);
        let arity_fits = if std::ptr::eq(skeleton, &count) {
            args.len() == 1
        } else if std::ptr::eq(skeleton, &percentile) {
            (2..=3).contains(&args.len())
        } else {
            args.len() == 2
        };
        if arity_fits {
            let refs: Vec<&ast::Expr> = args.iter().collect();
            *e = with_parts(skeleton.clone(), &refs);
        }
        // Another arity stays as written: the planner names the function
        // and its arguments in the error.
        ControlFlow::Continue(())
    });
    Ok(())
}

/// The call's arguments when they are all plain expressions.
fn plain_args(f: &ast::Function) -> Vec<ast::Expr> {
    let ast::FunctionArguments::List(list) = &f.args else {
        return Vec::new();
    };
    if list.duplicate_treatment.is_some() {
        return Vec::new();
    }
    list.args
        .iter()
        .map_while(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut s = ast::Statement::Query(crate::rewrite::parse_query(sql).expect(sql));
        rewrite(&mut s).expect("rewrite");
        s.to_string()
    }

    #[test]
    fn other_names_of_aggregates_become_datafusion_names() {
        assert_eq!(
            rewritten("SELECT variance(x), approx_count_distinct(sym) FROM t"),
            "SELECT var_samp(x), approx_distinct(sym) FROM t"
        );
    }

    #[test]
    fn count_distinct_and_vwap_become_standard_aggregates() {
        assert_eq!(
            rewritten("SELECT count_distinct(sym), vwap(price, amount) FROM t"),
            "SELECT count(DISTINCT sym), sum((price) * (amount)) / sum(amount) FROM t"
        );
        assert_eq!(
            rewritten("SELECT vwap(a + 1, b) FROM t"),
            "SELECT sum((a + 1) * (b)) / sum(b) FROM t"
        );
        assert_eq!(
            rewritten(
                "SELECT approx_percentile(price, 0.99, 3), approx_percentile(price, 0.5) FROM t"
            ),
            "SELECT approx_percentile_cont(price, 0.99), approx_percentile_cont(price, 0.5) FROM t"
        );
        // A wrong arity is left for the planner's error.
        assert_eq!(rewritten("SELECT vwap(a) FROM t"), "SELECT vwap(a) FROM t");
    }
}
