//! Timestamps written without seconds: PostgreSQL reads `'2026-01-01 10:00'`
//! as 10:00:00, Arrow's string-to-timestamp cast refuses it ("error parsing
//! time"). [`with_seconds`] completes such text; the analyzer rule
//! [`TimestampLiterals`] applies it to string literals cast to a timestamp (an
//! explicit `::timestamp`, or the cast a comparison with a timestamp column
//! gets), and INSERT's conversion applies it to values (`convert.rs`).
//! (The other way, timestamps cast to text: `pg_casts`.)

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

/// `YYYY-MM-DD HH:MM` (or with `T`), maybe followed by a zone: the same text
/// with `:00` seconds. `None` for anything else (it needs nothing, or is not
/// a timestamp).
pub(crate) fn with_seconds(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shaped = b.len() >= 16
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16);
    // What follows the minutes is a zone (`Z`, `+02`, ` UTC`), not seconds.
    let no_seconds = b.get(16).is_none_or(|c| !c.is_ascii_digit() && *c != b':');
    (shaped && no_seconds).then(|| format!("{}:00{}", &text[..16], &text[16..]))
}

/// Completes string literals cast to a timestamp (see the module docs). Runs
/// after type coercion, which is what adds the casts of comparisons.
#[derive(Debug, Default)]
pub(crate) struct TimestampLiterals;

impl AnalyzerRule for TimestampLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            // A changed literal must not rename the column it makes.
            let names = NamePreserver::new(&p);
            p.map_expressions(|e| {
                let name = names.save(&e);
                Ok(e.transform_up(complete)?.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "tidemark_timestamp_literals"
    }
}

fn complete(e: Expr) -> Result<Transformed<Expr>> {
    let completed = |inner: &Expr, to: &DataType| match (inner, to) {
        (Expr::Literal(value, _), DataType::Timestamp(..)) => value
            .try_as_str()
            .flatten()
            .and_then(with_seconds)
            .map(|text| Box::new(Expr::Literal(ScalarValue::Utf8(Some(text)), None))),
        _ => None,
    };
    Ok(match &e {
        Expr::Cast(Cast { expr, field }) => match completed(expr, field.data_type()) {
            Some(expr) => Transformed::yes(Expr::Cast(Cast {
                expr,
                field: field.clone(),
            })),
            None => Transformed::no(e),
        },
        Expr::TryCast(TryCast { expr, field }) => match completed(expr, field.data_type()) {
            Some(expr) => Transformed::yes(Expr::TryCast(TryCast {
                expr,
                field: field.clone(),
            })),
            None => Transformed::no(e),
        },
        _ => Transformed::no(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_get_seconds_and_everything_else_is_left_alone() {
        assert_eq!(
            with_seconds("2026-01-01 10:00").as_deref(),
            Some("2026-01-01 10:00:00")
        );
        assert_eq!(
            with_seconds("2026-01-01T10:00Z").as_deref(),
            Some("2026-01-01T10:00:00Z")
        );
        assert_eq!(
            with_seconds("2026-01-01 10:00+02").as_deref(),
            Some("2026-01-01 10:00:00+02")
        );
        assert_eq!(with_seconds("2026-01-01 10:00:05"), None);
        assert_eq!(with_seconds("2026-01-01"), None);
        assert_eq!(with_seconds("2026-01-01 10:0x"), None);
        assert_eq!(with_seconds("hello world, 10:00"), None);
    }
}
