//! QuestDB's dynamic timestamp: `FROM (subquery) timestamp(ts)` (or
//! `FROM t timestamp(ts)`) names the column that orders the relation's rows,
//! for SAMPLE BY over a subquery. PostgreSQL's grammar reads the clause as an
//! alias `timestamp` renaming the first column to `ts`; it is taken out before
//! planning (`strip`), so it never renames anything.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, VisitMut, VisitorMut};

/// The column `alias` designates when it is a dynamic timestamp, which is then
/// removed (the relation keeps no alias).
pub(crate) fn take(alias: &mut Option<ast::TableAlias>) -> Option<ast::Ident> {
    let a = alias.as_ref()?;
    let designates = a.name.quote_style.is_none()
        && a.name.value.eq_ignore_ascii_case("timestamp")
        && matches!(a.columns.as_slice(), [c] if c.data_type.is_none());
    if !designates {
        return None;
    }
    alias.take()?.columns.pop().map(|c| c.name)
}

/// Removes every dynamic timestamp from `statement`: where nothing reads it,
/// it only marks an order QuestDB would check.
pub(crate) fn strip(statement: &mut ast::Statement) {
    struct Strip;
    impl VisitorMut for Strip {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut ast::TableFactor) -> ControlFlow<()> {
            match factor {
                ast::TableFactor::Table { alias, .. } | ast::TableFactor::Derived { alias, .. } => {
                    take(alias);
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Strip);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_alias_with_one_column_is_taken_out() {
        let mut s = ast::Statement::Query(
            crate::rewrite::parse_query(
                "SELECT * FROM (SELECT * FROM t ORDER BY ts) timestamp(ts) JOIN u timestamp(k) ON true, v AS w(a), x \"timestamp\"(b)",
            )
            .expect("parse"),
        );
        strip(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT * FROM (SELECT * FROM t ORDER BY ts) JOIN u ON true, v AS w (a), x \"timestamp\" (b)"
        );
    }
}
