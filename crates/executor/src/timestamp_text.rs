//! Timestamps written without seconds: PostgreSQL reads `'2026-01-01 10:00'`
//! as 10:00:00 (and QuestDB `'2026-01-01T10'` as 10:00:00 and `'2026-01'` as
//! its first day), Arrow's string-to-timestamp cast refuses them ("error
//! parsing time"). [`completed`] completes such text; the analyzer rule
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

/// Timestamp text Arrow's cast refuses but PostgreSQL or QuestDB read,
/// completed so that the cast takes it: `YYYY-MM-DD HH:MM` (or with `T`, maybe
/// followed by a zone) gets `:00` seconds, QuestDB's `YYYY-MM-DDTHH` gets
/// `:00:00`, and QuestDB's `YYYY-MM` becomes the first of the month. `None` for
/// anything else (it needs nothing, or is not a timestamp).
pub(crate) fn completed(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let month = b.len() >= 7 && b[4] == b'-' && digits(0..4) && digits(5..7);
    if month && b.len() == 7 {
        return Some(format!("{text}-01"));
    }
    let hour = month
        && b.len() >= 13
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && digits(8..10)
        && digits(11..13);
    if !hour {
        return None;
    }
    // What follows the hours or minutes is a zone (`Z`, `+02`, ` UTC`), not
    // more of the time.
    let zone_at = |i: usize| {
        b.get(i)
            .is_none_or(|c| !c.is_ascii_digit() && *c != b':' && *c != b'.')
    };
    if zone_at(13) {
        return Some(format!("{}:00:00{}", &text[..13], &text[13..]));
    }
    let minutes = b.len() >= 16 && b[13] == b':' && digits(14..16);
    (minutes && zone_at(16)).then(|| format!("{}:00{}", &text[..16], &text[16..]))
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
            .and_then(completed)
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
    fn partial_times_are_completed_and_everything_else_is_left_alone() {
        let c = |text| completed(text);
        assert_eq!(
            c("2026-01-01 10:00").as_deref(),
            Some("2026-01-01 10:00:00")
        );
        assert_eq!(
            c("2026-01-01T10:00Z").as_deref(),
            Some("2026-01-01T10:00:00Z")
        );
        assert_eq!(
            c("2026-01-01 10:00+02").as_deref(),
            Some("2026-01-01 10:00:00+02")
        );
        assert_eq!(c("2026-01-01T10").as_deref(), Some("2026-01-01T10:00:00"));
        assert_eq!(c("2026-01-01 10Z").as_deref(), Some("2026-01-01 10:00:00Z"));
        assert_eq!(c("2026-03").as_deref(), Some("2026-03-01"));
        assert_eq!(c("2026-01-01 10:00:05"), None);
        assert_eq!(c("2026-01-01 10:00:05.5"), None);
        assert_eq!(c("2026-01-01"), None);
        assert_eq!(c("2026-01-01 10:0x"), None);
        assert_eq!(c("2026-01-01 1"), None);
        assert_eq!(c("2026-0x"), None);
        assert_eq!(c("hello world, 10:00"), None);
        assert_eq!(c("2026-01-01 10:"), None);
    }
}
