//! QuestDB aggregate functions that are other aggregates in disguise, written
//! out before planning:
//! - `count_distinct(x)` is `count(DISTINCT x)`, `string_distinct_agg(x, d)`
//!   `string_agg(DISTINCT x, d)`;
//! - `vwap(price, amount)` (volume-weighted average price) and
//!   `weighted_avg(x, w)` are `sum(x * w) / sum(w)` over the rows where both are
//!   set (a weight sum of zero gives NULL); `weighted_stddev_rel(x, w)` (also
//!   `weighted_stddev`) and `weighted_stddev_freq(x, w)` are QuestDB's formulas
//!   over sums of `w`, `w x`, `w x²` and `w²`, NULL below two observations;
//! - `geomean(x)` is `exp(avg(ln(x)))`, NULL when a value is zero or negative;
//! - `arg_min(v, k)` / `arg_max(v, k)` are `first_value(v ORDER BY k [DESC])`
//!   over the rows whose `k` is set;
//! - `approx_percentile(x, p [, precision])` is DataFusion's
//!   `approx_percentile_cont(x, p)` (a t-digest where QuestDB keeps an HDR
//!   histogram: the precision has no meaning here), `approx_median(x,
//!   precision)` DataFusion's `approx_median(x)`;
//! - `twap(price, ts)` and `haversine_dist_deg(lat, lon, ts)` are the same
//!   calls ordered by their time, `twap(price, ts ORDER BY ts)`
//!   (`crate::path_aggregates`);
//! - `array_elem_sum(a, b, ...)` (and `_min`, `_max`, `_avg`) of two or more
//!   arrays is the row form `array_elem_sum_of_arguments` (`crate::array_elem`);
//! - `variance` (PostgreSQL's and QuestDB's) is `var_samp`, QuestDB's
//!   `approx_count_distinct(x [, precision])` DataFusion's `approx_distinct`
//!   over the values' text (HyperLogLog both).

use datafusion::sql::sqlparser::ast;

use crate::error::Result;
use crate::rewrite::{parse_expr, part, with_parts};

/// Rewrites the calls in `statement` (window calls, `OVER`, are left alone:
/// neither has a window form in QuestDB).
pub(crate) fn rewrite(statement: &mut ast::Statement) -> Result<()> {
    crate::rewrite::rewrite_expressions(statement, standard_form)
}

/// QuestDB's aggregates DataFusion does not know by these names: those this
/// module writes out, and `mode` (`crate::mode`). SAMPLE BY sorts a select list
/// into keys and aggregates before they are written out.
pub(crate) const QUESTDB_AGGREGATES: [&str; 18] = [
    "count_distinct",
    "string_distinct_agg",
    "vwap",
    "weighted_avg",
    "weighted_stddev",
    "weighted_stddev_rel",
    "weighted_stddev_freq",
    "geomean",
    "arg_min",
    "arg_max",
    "approx_percentile",
    "approx_count_distinct",
    "variance",
    "mode",
    "twap",
    "haversine_dist_deg",
    "isordered",
    "is_ordered",
];

/// `e` in standard terms, or `None` when it is no call of these functions (or
/// one of another arity, left for the planner to name in its error).
fn standard_form(e: &ast::Expr) -> Result<Option<ast::Expr>> {
    let ast::Expr::Function(f) = e else {
        return Ok(None);
    };
    let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) else {
        return Ok(None);
    };
    let lower = name.value.to_ascii_lowercase();
    // Another name of DataFusion's aggregate: PostgreSQL's and QuestDB's
    // `variance`.
    let renamed = match lower.as_str() {
        "variance" => Some("var_samp".to_string()),
        // The row form of an element-wise aggregate (`crate::array_elem`).
        name if crate::array_elem::is_element_wise(name) && plain_args(f).len() > 1 => {
            Some(format!("{name}{}", crate::array_elem::ROW_FORM_SUFFIX))
        }
        _ => None,
    };
    if let Some(datafusion_name) = renamed {
        let mut f = f.clone();
        f.name = ast::ObjectName::from(vec![ast::Ident::new(datafusion_name)]);
        return Ok(Some(ast::Expr::Function(f)));
    }
    if f.over.is_some() {
        return Ok(None);
    }
    let args = plain_args(f);
    let Some(skeleton) = skeleton(&lower, args.len()) else {
        return Ok(None);
    };
    let mut skeleton = parse_expr(&skeleton)?;
    if let Some(filter) = &f.filter {
        filter_aggregates(&mut skeleton, filter);
    }
    Ok(Some(with_parts(skeleton, &args)))
}

/// The aggregates the standard forms are made of.
const STANDARD_AGGREGATES: [&str; 10] = [
    "sum",
    "count",
    "min",
    "avg",
    "first_value",
    "string_agg",
    "approx_percentile_cont",
    "approx_median",
    "twap",
    "haversine_dist_deg",
];

/// Puts `agg(x) FILTER (WHERE filter)` on every aggregate of a standard form,
/// so that the filter of the call it stands for applies to each.
fn filter_aggregates(skeleton: &mut ast::Expr, filter: &ast::Expr) {
    let _ = ast::visit_expressions_mut(skeleton, |e| {
        if let ast::Expr::Function(f) = e
            && f.name.0.len() == 1
            && f.name.0[0].as_ident().is_some_and(|i| {
                STANDARD_AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())
            })
        {
            f.filter = Some(Box::new(match f.filter.take() {
                Some(own) => ast::Expr::BinaryOp {
                    left: Box::new(ast::Expr::Nested(own)),
                    op: ast::BinaryOperator::And,
                    right: Box::new(ast::Expr::Nested(Box::new(filter.clone()))),
                },
                None => filter.clone(),
            }));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// The standard form of QuestDB's aggregate `name` called with `arity`
/// arguments, `part(n)` standing for the n-th.
fn skeleton(name: &str, arity: usize) -> Option<String> {
    let (x, w) = (part(0), part(1));
    let sql = match (name, arity) {
        ("count_distinct", 1) => format!("count(DISTINCT {x})"),
        ("string_distinct_agg", 2) => format!("string_agg(DISTINCT {x}, {w})"),
        ("vwap" | "weighted_avg", 2) => {
            let s = WeightedSums::new();
            format!("({}) / nullif({}, 0)", s.wx, s.w)
        }
        ("weighted_stddev" | "weighted_stddev_rel", 2) => {
            let s = WeightedSums::new();
            format!(
                "CASE WHEN {} >= 2 AND {} > 0 THEN \
                 sqrt(greatest(({}) / (({}) - ({}) / ({})), 0)) END",
                s.observations, s.w, s.spread, s.w, s.ww, s.w
            )
        }
        ("weighted_stddev_freq", 2) => {
            let s = WeightedSums::new();
            format!(
                "CASE WHEN {} >= 2 AND {} > 1 THEN sqrt(greatest(({}) / (({}) - 1), 0)) END",
                s.observations, s.w, s.spread, s.w
            )
        }
        ("geomean", 1) => {
            format!("CASE WHEN min({x}) > 0 THEN exp(avg(ln(CAST(({x}) AS DOUBLE)))) END")
        }
        ("arg_min", 2) => {
            format!("first_value({x} ORDER BY {w} ASC) FILTER (WHERE ({w}) IS NOT NULL)")
        }
        ("arg_max", 2) => {
            format!("first_value({x} ORDER BY {w} DESC) FILTER (WHERE ({w}) IS NOT NULL)")
        }
        // Over the values' text: DataFusion's HyperLogLog takes no dictionary
        // (SYMBOL) values; the precision has no meaning here.
        ("approx_count_distinct", 1 | 2) => format!("approx_distinct(CAST({x} AS VARCHAR))"),
        ("approx_percentile", 2 | 3) => format!("approx_percentile_cont({x}, {w})"),
        // The one-argument form is DataFusion's own.
        ("approx_median", 2) => format!("approx_median({x})"),
        // Each partial aggregate reads its rows in time order.
        ("twap", 2) => format!("twap({x}, {w} ORDER BY {w})"),
        ("haversine_dist_deg", 3) => {
            let t = part(2);
            format!("haversine_dist_deg({x}, {w}, {t} ORDER BY {t})")
        }
        _ => return None,
    };
    Some(sql)
}

/// The sums of a weighted statistic of `part(0)` weighted by `part(1)`, over
/// the rows where both are set (a weight of zero adds nothing to any of them),
/// as SQL: `sum(w)`, `sum(w x)`, `sum(w²)`, the spread `sum(w x²) - sum(w x)² /
/// sum(w)`, and how many rows have a value and a weight other than 0.
struct WeightedSums {
    w: String,
    wx: String,
    ww: String,
    spread: String,
    observations: String,
}

impl WeightedSums {
    fn new() -> Self {
        let (x, w) = (part(0), part(1));
        let weight = format!("CASE WHEN ({x}) IS NOT NULL THEN CAST(({w}) AS DOUBLE) END");
        let sum_w = format!("sum({weight})");
        let sum_wx = format!("sum(({weight}) * ({x}))");
        let sum_wxx = format!("sum(({weight}) * ({x}) * ({x}))");
        WeightedSums {
            spread: format!("({sum_wxx}) - ({sum_wx}) * ({sum_wx}) / ({sum_w})"),
            ww: format!("sum(({weight}) * ({weight}))"),
            observations: format!("count(CASE WHEN ({x}) IS NOT NULL AND ({w}) <> 0 THEN 1 END)"),
            w: sum_w,
            wx: sum_wx,
        }
    }
}

/// The call's arguments when they are all plain expressions.
fn plain_args(f: &ast::Function) -> Vec<&ast::Expr> {
    let ast::FunctionArguments::List(list) = &f.args else {
        return Vec::new();
    };
    // DISTINCT or ORDER BY inside the call: not one of the forms rewritten.
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return Vec::new();
    }
    list.args
        .iter()
        .map_while(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e),
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
            rewritten("SELECT 1 FROM t HAVING variance(x) > approx_count_distinct(sym, 5)"),
            "SELECT 1 FROM t HAVING var_samp(x) > approx_distinct(CAST(sym AS VARCHAR))"
        );
        // A select item keeps the name it was written with.
        assert_eq!(
            rewritten("SELECT variance(x) FROM t"),
            "SELECT var_samp(x) AS \"variance(x)\" FROM t"
        );
    }

    #[test]
    fn questdb_aggregates_become_standard_aggregates() {
        assert_eq!(
            rewritten("SELECT 1 FROM t HAVING count_distinct(sym) > 1"),
            "SELECT 1 FROM t HAVING count(DISTINCT sym) > 1"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM t HAVING approx_percentile(price, 0.99, 3) > 1"),
            "SELECT 1 FROM t HAVING approx_percentile_cont(price, 0.99) > 1"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM t HAVING arg_max(a + 1, b) > 1"),
            "SELECT 1 FROM t HAVING first_value(a + 1 ORDER BY b DESC) FILTER (WHERE (b) IS NOT NULL) > 1"
        );
        // The call's FILTER applies to every aggregate of the standard form.
        assert_eq!(
            rewritten("SELECT 1 FROM t HAVING vwap(p, a) FILTER (WHERE s = 'x') > 1"),
            "SELECT 1 FROM t HAVING (sum((CASE WHEN (p) IS NOT NULL THEN CAST((a) AS DOUBLE) END) * (p)) \
             FILTER (WHERE s = 'x')) / nullif(sum(CASE WHEN (p) IS NOT NULL THEN CAST((a) AS DOUBLE) END) \
             FILTER (WHERE s = 'x'), 0) > 1"
        );
        // Order-dependent aggregates read their rows in time order.
        assert_eq!(
            rewritten("SELECT 1 FROM t HAVING twap(p, ts) FILTER (WHERE s = 'x') > 1"),
            "SELECT 1 FROM t HAVING twap(p, ts ORDER BY ts) FILTER (WHERE s = 'x') > 1"
        );
        // A wrong arity, or DISTINCT and ORDER BY inside the call, are left for
        // the planner's error.
        for sql in [
            "SELECT 1 FROM t HAVING vwap(a) > 1",
            "SELECT 1 FROM t HAVING geomean(DISTINCT a) > 1",
            "SELECT 1 FROM t HAVING string_distinct_agg(a, ',' ORDER BY a) > ''",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
