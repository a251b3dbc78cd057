//! QuestDB's row generators and its `LIMIT lo, hi`, rewritten into SQL DataFusion
//! plans (applied to every statement before planning, `Session::adapt`):
//! - `FROM long_sequence(n)`: the rows 1..=n in a BIGINT column `x`, streamed by
//!   DataFusion's `generate_series` (nothing is materialised);
//! - `timestamp_sequence(start, step)`: `start` for the first row, then `step`
//!   microseconds more for each following row (a row number over the result);
//! - `LIMIT lo, hi`: the rows `lo + 1 ..= hi` (QuestDB's bounds, not MySQL's offset
//!   and count). QuestDB's `LIMIT -n` (the last n rows) is refused with the
//!   spelling that reads only n rows.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, VisitMut, VisitorMut};

use crate::error::{ExecError, Result, sqlstate};
use crate::rewrite::{parse_expr, parse_query, part, with_parts};

/// Applies the rewrites above to `statement`.
pub(crate) fn rewrite(statement: &mut ast::Statement) -> Result<()> {
    let mut generators = Generators { error: None };
    let _ = statement.visit(&mut generators);
    if let Some(e) = generators.error {
        return Err(e);
    }
    let mut error = None;
    let _ = ast::visit_expressions_mut(statement, |e| {
        match timestamp_sequence(e) {
            Ok(Some(replaced)) => *e = replaced,
            Ok(None) => {}
            Err(err) => {
                error = Some(err);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    error.map_or(Ok(()), Err)
}

struct Generators {
    error: Option<ExecError>,
}

impl VisitorMut for Generators {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut ast::TableFactor) -> ControlFlow<()> {
        match long_sequence(factor) {
            Ok(Some(replaced)) => *factor = replaced,
            Ok(None) => {}
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        if let Err(e) = questdb_limit(query) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn is_function(name: &ast::ObjectName, wanted: &str) -> bool {
    name.0.len() == 1
        && name.0[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case(wanted))
}

fn unnamed_args(args: &[ast::FunctionArg], function: &str) -> Result<Vec<ast::Expr>> {
    args.iter()
        .map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e.clone()),
            _ => Err(ExecError::new(
                sqlstate::SYNTAX_ERROR,
                format!("{function} takes positional arguments only"),
            )),
        })
        .collect()
}

/// `long_sequence(n) [alias]` as a derived table of `generate_series(1, n)`.
fn long_sequence(factor: &ast::TableFactor) -> Result<Option<ast::TableFactor>> {
    let ast::TableFactor::Table {
        name,
        alias,
        args: Some(args),
        ..
    } = factor
    else {
        return Ok(None);
    };
    if !is_function(name, "long_sequence") {
        return Ok(None);
    }
    let args = unnamed_args(&args.args, "long_sequence")?;
    let [count] = args.as_slice() else {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "long_sequence takes one argument, the row count (got {}); seeded \
                 (reproducible) random values are not supported",
                args.len()
            ),
        ));
    };
    let skeleton = parse_query(&format!(
        "SELECT * FROM (SELECT value AS x FROM generate_series(1, {})) AS long_sequence",
        part(0)
    ))?;
    let ast::SetExpr::Select(select) = *with_parts(skeleton, &[count]).body else {
        return Err(internal());
    };
    let Some(mut derived) = select.from.into_iter().next().map(|t| t.relation) else {
        return Err(internal());
    };
    if let (ast::TableFactor::Derived { alias: a, .. }, Some(given)) = (&mut derived, alias) {
        *a = Some(given.clone());
    }
    Ok(Some(derived))
}

/// `timestamp_sequence(start, step)` as the start plus `step` microseconds per row
/// before this one. A numeric start is microseconds since the epoch.
fn timestamp_sequence(e: &ast::Expr) -> Result<Option<ast::Expr>> {
    let ast::Expr::Function(f) = e else {
        return Ok(None);
    };
    if !is_function(&f.name, "timestamp_sequence") {
        return Ok(None);
    }
    let ast::FunctionArguments::List(list) = &f.args else {
        return Err(arguments());
    };
    let args = unnamed_args(&list.args, "timestamp_sequence")?;
    let [start, step] = args.as_slice() else {
        return Err(arguments());
    };
    let numeric_start =
        matches!(start, ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)));
    let start_micros = if numeric_start {
        format!("CAST({} AS BIGINT)", part(0))
    } else {
        format!(
            "CAST(arrow_cast({}, 'Timestamp(Microsecond, None)') AS BIGINT)",
            part(0)
        )
    };
    let skeleton = parse_expr(&format!(
        "arrow_cast(to_timestamp_micros({start_micros} + (row_number() OVER () - 1) * \
         CAST({} AS BIGINT)), 'Timestamp(Microsecond, None)')",
        part(1)
    ))?;
    Ok(Some(with_parts(skeleton, &[start, step])))
}

fn arguments() -> ExecError {
    ExecError::new(
        sqlstate::UNDEFINED_FUNCTION,
        "timestamp_sequence takes two arguments: the first timestamp and the step in \
         microseconds",
    )
}

fn internal() -> ExecError {
    ExecError::new(
        sqlstate::INTERNAL_ERROR,
        "the long_sequence rewrite produced no table",
    )
}

/// An integer literal (with its sign), if `e` is one.
fn integer(e: &ast::Expr) -> Option<i64> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => integer(expr).and_then(i64::checked_neg),
        _ => None,
    }
}

/// QuestDB's `LIMIT lo, hi` (rows lo+1 through hi); `LIMIT -n` is refused.
fn questdb_limit(query: &mut ast::Query) -> Result<()> {
    let Some(clause) = &query.limit_clause else {
        return Ok(());
    };
    match clause {
        ast::LimitClause::OffsetCommaLimit { offset, limit } => {
            let (lo, hi) = (offset.clone(), limit.clone());
            if integer(&lo).is_some_and(|v| v < 0) || integer(&hi).is_some_and(|v| v < 0) {
                return Err(ExecError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "LIMIT lo, hi with negative bounds is not supported; use LIMIT -n for the \
                     last n rows",
                ));
            }
            // The row count is hi - lo, never below zero.
            let count = with_parts(
                parse_expr(&format!("greatest({} - {}, 0)", part(1), part(0)))?,
                &[&lo, &hi],
            );
            query.limit_clause = Some(ast::LimitClause::LimitOffset {
                limit: Some(count),
                offset: Some(ast::Offset {
                    value: lo,
                    rows: ast::OffsetRows::None,
                }),
                limit_by: Vec::new(),
            });
        }
        // The last n rows would need the whole result counted or held; refused
        // with the way to say it that reads only n rows.
        ast::LimitClause::LimitOffset {
            limit: Some(limit), ..
        } if integer(limit).is_some_and(|v| v < 0) => {
            return Err(ExecError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "LIMIT {limit} (QuestDB's last rows) is not supported: use ORDER BY the \
                     designated timestamp DESC LIMIT {}",
                    integer(limit).map_or(0, |v| v.unsigned_abs())
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}
