//! Temporal joins: `ASOF JOIN` (each left row with the latest right row at or
//! before its timestamp) and `LT JOIN` (strictly before), with optional
//! equality keys and a TOLERANCE.
//!
//! Three steps, one per module:
//! - here, on the AST: the parser's `ASOF JOIN ... MATCH_CONDITION (marker)` becomes a
//!   `LEFT JOIN ... ON <keys> AND __tidemark_temporal_join(kind, tolerance, mode, left ts,
//!   right ts)`, with QuestDB's `ON (sym)` spelled out and each side's designated
//!   timestamp named, so that DataFusion's SQL planner resolves every column;
//! - `logical`: right after planning, that join becomes a `TemporalJoin` plan node;
//! - `exec`: the node runs as `TemporalJoinExec`, which indexes the right side by key
//!   in timestamp order and streams the left side through it.

mod exec;
mod index;
mod logical;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, VisitMut, VisitorMut};
use tidemark_parser::TEMPORAL_JOIN_MARKER as MARKER;
use tidemark_storage::Snapshot;

use crate::error::{ExecError, Result, sqlstate};

pub(crate) use exec::TemporalJoinPlanner;
pub(crate) use logical::{plan_temporal_joins, register_marker};

/// Rewrites every temporal join in `statement` into a marked LEFT JOIN.
pub(crate) fn rewrite(statement: &mut ast::Statement, snapshot: &Snapshot) -> Result<()> {
    let mut joins = TemporalJoins {
        snapshot,
        error: None,
    };
    let _ = statement.visit(&mut joins);
    joins.error.map_or(Ok(()), Err)
}

struct TemporalJoins<'a> {
    snapshot: &'a Snapshot,
    error: Option<ExecError>,
}

impl VisitorMut for TemporalJoins<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        match self.set_expr(&mut query.body) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

impl TemporalJoins<'_> {
    fn set_expr(&self, body: &mut ast::SetExpr) -> Result<()> {
        match body {
            ast::SetExpr::Select(select) => {
                for from in &mut select.from {
                    self.table_with_joins(from)?;
                }
                Ok(())
            }
            ast::SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left)?;
                self.set_expr(right)
            }
            _ => Ok(()),
        }
    }

    fn table_with_joins(&self, from: &mut ast::TableWithJoins) -> Result<()> {
        if let ast::TableFactor::NestedJoin {
            table_with_joins, ..
        } = &mut from.relation
        {
            self.table_with_joins(table_with_joins)?;
        }
        // QuestDB joins every temporal join's keys and timestamp to the first
        // relation (the "master"), however many joins follow it.
        let master = Side::of(&mut from.relation, self.snapshot, 0);
        for (n, join) in from.joins.iter_mut().enumerate() {
            if let ast::TableFactor::NestedJoin {
                table_with_joins, ..
            } = &mut join.relation
            {
                self.table_with_joins(table_with_joins)?;
            }
            if let ast::JoinOperator::AsOf {
                match_condition,
                constraint,
            } = &join.join_operator
            {
                let right = Side::of(&mut join.relation, self.snapshot, n + 1);
                let (on, splice) = marked_condition(&master, &right, match_condition, constraint)?;
                let on = ast::JoinConstraint::On(on);
                // SPLICE JOIN returns right rows without a left partner too.
                join.join_operator = if splice {
                    ast::JoinOperator::FullOuter(on)
                } else {
                    ast::JoinOperator::LeftOuter(on)
                };
            }
        }
        Ok(())
    }
}

/// One relation of a temporal join: how its columns are qualified and its
/// designated timestamp, when it is a table.
struct Side {
    qualifier: Option<Vec<ast::Ident>>,
    timestamp: Option<String>,
}

impl Side {
    /// The side `factor` is, the `n`th relation of its FROM item. A dynamic
    /// timestamp (`(subquery) timestamp(ts)`) names a subquery's timestamp and
    /// is taken out; an unnamed subquery gets a name, so its columns (keys,
    /// timestamp) can be written qualified.
    fn of(factor: &mut ast::TableFactor, snapshot: &Snapshot, n: usize) -> Side {
        if let ast::TableFactor::Derived { alias, .. } = factor {
            let timestamp = crate::dynamic_timestamp::take(alias).map(|ts| match ts.quote_style {
                Some(_) => ts.value,
                None => ts.value.to_lowercase(),
            });
            let name = alias.get_or_insert_with(|| ast::TableAlias {
                explicit: true,
                name: ast::Ident::new(format!("__tidemark_side_{n}")),
                columns: Vec::new(),
                at: None,
            });
            return Side {
                qualifier: Some(vec![name.name.clone()]),
                timestamp,
            };
        }
        match factor {
            ast::TableFactor::Table { name, alias, .. } => {
                let timestamp = crate::ddl::object_name(name)
                    .ok()
                    .and_then(|n| snapshot.table(&n))
                    .and_then(|t| t.meta().timestamp_name().map(str::to_string));
                let qualifier = match alias {
                    Some(a) => vec![a.name.clone()],
                    None => name
                        .0
                        .iter()
                        .filter_map(|p| p.as_ident())
                        .cloned()
                        .collect(),
                };
                Side {
                    qualifier: Some(qualifier),
                    timestamp,
                }
            }
            ast::TableFactor::Function { alias, .. } | ast::TableFactor::UNNEST { alias, .. } => {
                Side {
                    qualifier: alias.as_ref().map(|a| vec![a.name.clone()]),
                    timestamp: None,
                }
            }
            _ => Side {
                qualifier: None,
                timestamp: None,
            },
        }
    }

    /// `<qualifier>.<column>`, or the bare column when the side has no name.
    fn column(&self, column: ast::Ident) -> ast::Expr {
        match &self.qualifier {
            Some(q) => {
                let mut parts = q.clone();
                parts.push(column);
                ast::Expr::CompoundIdentifier(parts)
            }
            None => ast::Expr::Identifier(column),
        }
    }

    /// The side's timestamp column, or NULL to let the planner pick the one
    /// timestamp column the side has.
    fn timestamp_expr(&self) -> ast::Expr {
        match &self.timestamp {
            Some(ts) => self.column(ast::Ident::with_quote('"', ts)),
            None => null(),
        }
    }

    /// Whether `expr` is a column of this side, written with its qualifier.
    fn owns(&self, expr: &ast::Expr) -> bool {
        let (Some(q), ast::Expr::CompoundIdentifier(parts)) = (&self.qualifier, expr) else {
            return false;
        };
        parts.len() == q.len() + 1
            && q.iter()
                .zip(parts)
                .all(|(a, b)| a.value.eq_ignore_ascii_case(&b.value))
    }
}

fn null() -> ast::Expr {
    ast::Expr::Value(ast::Value::Null.into())
}

fn string(s: &str) -> ast::Expr {
    crate::rewrite::string_literal(s)
}

/// What the parser's marker says: the kind, the tolerance and whether
/// unmatched left rows are kept.
struct Marker {
    kind: String,
    tolerance: ast::Expr,
    outer_written: bool,
}

fn read_marker(match_condition: &ast::Expr) -> Option<Marker> {
    let ast::Expr::Function(f) = match_condition else {
        return None;
    };
    if !f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| i.value.eq_ignore_ascii_case(MARKER))
    {
        return None;
    }
    let args = crate::rewrite::unnamed_args(f)?;
    let text = |e: &ast::Expr| match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    match args.as_slice() {
        [kind, tolerance, outer] => Some(Marker {
            kind: text(kind)?,
            tolerance: (*tolerance).clone(),
            outer_written: text(outer)? == "left",
        }),
        _ => None,
    }
}

/// A timestamp condition between the two sides (`a.ts >= b.ts`, `b.ts < a.ts`):
/// the left and right timestamp and the kind it asks for.
fn timestamp_condition(
    expr: &ast::Expr,
    right: &Side,
) -> Option<(ast::Expr, ast::Expr, &'static str)> {
    let ast::Expr::BinaryOp { left, op, right: r } = expr else {
        return None;
    };
    let column = |e: &ast::Expr| matches!(e, ast::Expr::CompoundIdentifier(_));
    if !column(left) || !column(r) {
        return None;
    }
    // Normalise to `<left side> op <right side>`.
    let (l, rr, op) = if right.owns(left) && !right.owns(r) {
        let flipped = match op {
            ast::BinaryOperator::LtEq => ast::BinaryOperator::GtEq,
            ast::BinaryOperator::Lt => ast::BinaryOperator::Gt,
            ast::BinaryOperator::GtEq => ast::BinaryOperator::LtEq,
            ast::BinaryOperator::Gt => ast::BinaryOperator::Lt,
            _ => return None,
        };
        (r.as_ref(), left.as_ref(), flipped)
    } else if right.owns(r) {
        (left.as_ref(), r.as_ref(), op.clone())
    } else {
        return None;
    };
    match op {
        ast::BinaryOperator::GtEq => Some((l.clone(), rr.clone(), "asof")),
        ast::BinaryOperator::Gt => Some((l.clone(), rr.clone(), "lt")),
        _ => None,
    }
}

/// The ON condition of the LEFT JOIN (FULL JOIN for SPLICE, the second
/// value) a temporal join becomes.
fn marked_condition(
    master: &Side,
    right: &Side,
    match_condition: &ast::Expr,
    constraint: &ast::JoinConstraint,
) -> Result<(ast::Expr, bool)> {
    let not_supported = |what: String| ExecError::new(sqlstate::FEATURE_NOT_SUPPORTED, what);
    // The parser's marker, or Snowflake's own MATCH_CONDITION (a.ts >= b.ts).
    let marker = read_marker(match_condition);
    let parser_marked = marker.is_some();
    let (mut kind, tolerance, outer_written, mut timestamps) = match marker {
        Some(m) => (m.kind, m.tolerance, m.outer_written, None),
        None => match timestamp_condition(match_condition, right) {
            Some((l, r, kind)) => (kind.to_string(), null(), true, Some((l, r))),
            None => {
                return Err(not_supported(format!(
                    "MATCH_CONDITION takes a comparison of the two sides' timestamps \
                     (left.ts >= right.ts or left.ts > right.ts), not {match_condition}"
                )));
            }
        },
    };
    let mut conditions = Vec::new();
    let key = |name: &ast::Ident| ast::Expr::BinaryOp {
        left: Box::new(master.column(name.clone())),
        op: ast::BinaryOperator::Eq,
        right: Box::new(right.column(name.clone())),
    };
    match constraint {
        ast::JoinConstraint::None => {}
        ast::JoinConstraint::Using(names) => {
            for name in names {
                match name.0.as_slice() {
                    [part] if part.as_ident().is_some() => {
                        if let Some(ident) = part.as_ident() {
                            conditions.push(key(ident));
                        }
                    }
                    _ => {
                        return Err(ExecError::new(
                            sqlstate::SYNTAX_ERROR,
                            format!("USING takes column names, not {name}"),
                        ));
                    }
                }
            }
        }
        ast::JoinConstraint::Natural => {
            return Err(not_supported(
                "NATURAL temporal joins are not supported".into(),
            ));
        }
        ast::JoinConstraint::On(on) => {
            let mut conjuncts = Vec::new();
            split_and(on, &mut conjuncts);
            for c in conjuncts {
                match c {
                    // QuestDB's ON (sym) and ON (sym1, sym2): the same column on both sides.
                    ast::Expr::Identifier(i) => conditions.push(key(i)),
                    ast::Expr::Tuple(items)
                        if items.iter().all(|e| matches!(e, ast::Expr::Identifier(_))) =>
                    {
                        for item in items {
                            if let ast::Expr::Identifier(i) = item {
                                conditions.push(key(i));
                            }
                        }
                    }
                    other => match timestamp_condition(other, right) {
                        Some((l, r, condition_kind)) if timestamps.is_none() => {
                            kind = condition_kind.to_string();
                            timestamps = Some((l, r));
                        }
                        Some(_) => {
                            return Err(not_supported(format!(
                                "a temporal join takes one timestamp condition; \
                                 found a second one, {other}"
                            )));
                        }
                        None => conditions.push(other.clone()),
                    },
                }
            }
        }
    }
    if kind == "splice" && timestamps.is_some() {
        return Err(not_supported(
            "SPLICE JOIN joins on the designated timestamps and takes no timestamp condition"
                .into(),
        ));
    }
    if kind == "splice"
        && !matches!(tolerance, ast::Expr::Value(ref v) if v.value == ast::Value::Null)
    {
        return Err(not_supported("SPLICE JOIN takes no TOLERANCE".into()));
    }
    // DuckDB's `ASOF JOIN ... ON ... AND a.ts >= b.ts` drops unmatched left rows
    // unless written `ASOF LEFT JOIN`; QuestDB's ASOF JOIN always keeps them.
    let keep_unmatched = !(timestamps.is_some() && parser_marked) || outer_written;
    let (left_ts, right_ts) =
        timestamps.unwrap_or_else(|| (master.timestamp_expr(), right.timestamp_expr()));
    let marker = crate::rewrite::parse_expr(&format!(
        "{MARKER}({}, {}, {}, {}, {})",
        crate::rewrite::part(0),
        crate::rewrite::part(1),
        crate::rewrite::part(2),
        crate::rewrite::part(3),
        crate::rewrite::part(4),
    ))?;
    let mode = string(if keep_unmatched { "left" } else { "inner" });
    let splice = kind == "splice";
    let kind = string(&kind);
    conditions.push(crate::rewrite::with_parts(
        marker,
        &[&kind, &tolerance, &mode, &left_ts, &right_ts],
    ));
    let mut on = conditions.remove(0);
    for c in conditions {
        on = ast::Expr::BinaryOp {
            left: Box::new(on),
            op: ast::BinaryOperator::And,
            right: Box::new(c),
        };
    }
    Ok((on, splice))
}

/// The conjuncts of `expr`, looking through parentheses around ANDs.
fn split_and<'a>(expr: &'a ast::Expr, out: &mut Vec<&'a ast::Expr>) {
    match expr {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        ast::Expr::Nested(inner) if !matches!(inner.as_ref(), ast::Expr::Identifier(_)) => {
            split_and(inner, out)
        }
        ast::Expr::Nested(inner) => out.push(inner),
        other => out.push(other),
    }
}
