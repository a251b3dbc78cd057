//! The `TemporalJoin` plan node, and the step that puts it in place of the
//! marked LEFT JOIN DataFusion's SQL planner made (see `mod.rs`).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{
    Column, DFSchema, DFSchemaRef, Result as DfResult, ScalarValue, exec_err,
};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    Between, BinaryExpr, ColumnarValue, Expr, ExprSchemable, Extension, Filter, JoinType,
    LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    UserDefinedLogicalNodeCore, Volatility,
};

use super::MARKER;
use crate::error::{ExecError, Result, sqlstate};

/// Which right row a left row meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub(crate) enum Kind {
    /// The latest right row at or before the left row's timestamp.
    Asof,
    /// The latest right row strictly before it.
    Lt,
    /// Every row of both sides in timestamp order, each with the latest row of
    /// the other side at or before it (QuestDB's full ASOF join).
    Splice,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Asof => "ASOF",
            Kind::Lt => "LT",
            Kind::Splice => "SPLICE",
        }
    }
}

/// A temporal join of `left` and `right`: every left row (in left order) with
/// the latest right row of equal keys before its timestamp, within `tolerance`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TemporalJoin {
    pub(crate) left: LogicalPlan,
    pub(crate) right: LogicalPlan,
    pub(crate) left_keys: Vec<Expr>,
    pub(crate) right_keys: Vec<Expr>,
    pub(crate) left_ts: Expr,
    pub(crate) right_ts: Expr,
    pub(crate) kind: Kind,
    /// Microseconds a match may lie behind the left row.
    pub(crate) tolerance: Option<i64>,
    /// Whether left rows without a match are kept (with NULLs), as in QuestDB.
    pub(crate) keep_unmatched: bool,
    pub(crate) schema: DFSchemaRef,
}

/// What EXPLAIN shows of a temporal join, at either plan level: the kind, the
/// timestamps and keys matched, the tolerance, and whether unmatched left rows go.
pub(super) fn describe<T: fmt::Display>(
    f: &mut fmt::Formatter,
    kind: Kind,
    (left_ts, right_ts): (&T, &T),
    (left_keys, right_keys): (&[T], &[T]),
    tolerance: Option<i64>,
    keep_unmatched: bool,
) -> fmt::Result {
    write!(f, "{} {left_ts} <- {right_ts}", kind.name())?;
    for (l, r) in left_keys.iter().zip(right_keys) {
        write!(f, ", {l} = {r}")?;
    }
    if let Some(t) = tolerance {
        write!(f, ", tolerance {t}us")?;
    }
    if !keep_unmatched {
        write!(f, ", matched only")?;
    }
    Ok(())
}

impl PartialOrd for TemporalJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (
            &self.left,
            &self.right,
            &self.left_keys,
            &self.right_keys,
            &self.left_ts,
            &self.right_ts,
            self.kind,
            self.tolerance,
            self.keep_unmatched,
        )
            .partial_cmp(&(
                &other.left,
                &other.right,
                &other.left_keys,
                &other.right_keys,
                &other.left_ts,
                &other.right_ts,
                other.kind,
                other.tolerance,
                other.keep_unmatched,
            ))
    }
}

impl UserDefinedLogicalNodeCore for TemporalJoin {
    fn name(&self) -> &str {
        "TemporalJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.left, &self.right]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// Keys first (left, then right), then the two timestamps.
    fn expressions(&self) -> Vec<Expr> {
        let mut exprs = self.left_keys.clone();
        exprs.extend(self.right_keys.iter().cloned());
        exprs.push(self.left_ts.clone());
        exprs.push(self.right_ts.clone());
        exprs
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "TemporalJoin: ")?;
        describe(
            f,
            self.kind,
            (&self.left_ts, &self.right_ts),
            (&self.left_keys, &self.right_keys),
            self.tolerance,
            self.keep_unmatched,
        )
    }

    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let keys = self.left_keys.len();
        let [left, right]: [LogicalPlan; 2] = match inputs.try_into() {
            Ok(inputs) => inputs,
            Err(_) => return exec_err!("TemporalJoin takes two inputs"),
        };
        if exprs.len() != 2 * keys + 2 {
            return exec_err!("TemporalJoin takes {} expressions", 2 * keys + 2);
        }
        let mut exprs = exprs.into_iter();
        let left_keys: Vec<Expr> = exprs.by_ref().take(keys).collect();
        let right_keys: Vec<Expr> = exprs.by_ref().take(keys).collect();
        let (Some(left_ts), Some(right_ts)) = (exprs.next(), exprs.next()) else {
            return exec_err!("TemporalJoin lost its timestamps");
        };
        Ok(TemporalJoin {
            left,
            right,
            left_keys,
            right_keys,
            left_ts,
            right_ts,
            ..self.clone()
        })
    }

    /// Filters never move below the join: a filter on right columns would pick
    /// other matches, and columns of the two sides may share names.
    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }
}

/// The marker function: it only carries the join's settings through the SQL
/// planner and is never evaluated.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MarkerFunction {
    signature: Signature,
}

impl ScalarUDFImpl for MarkerFunction {
    fn name(&self) -> &str {
        MARKER
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        exec_err!("{MARKER} belongs in the ON condition of an ASOF or LT JOIN")
    }
}

pub(crate) fn register_marker(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(MarkerFunction {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
}

fn not_supported(message: String) -> ExecError {
    ExecError::new(sqlstate::FEATURE_NOT_SUPPORTED, message)
}

/// Replaces every marked LEFT JOIN in `plan` (subqueries included) by a
/// `TemporalJoin`.
pub(crate) fn plan_temporal_joins(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut error = None;
    let plan = plan
        .transform_up_with_subqueries(|node| {
            if let LogicalPlan::Filter(filter) = &node {
                return Ok(filter_left_side(filter).map_or(Transformed::no(node), Transformed::yes));
            }
            let LogicalPlan::Join(join) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(filter) = &join.filter else {
                return Ok(Transformed::no(node));
            };
            if !split_conjunction(filter).iter().any(|e| is_marker(e)) {
                return Ok(Transformed::no(node));
            }
            match temporal_join(join) {
                Ok(t) => Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                    node: Arc::new(t),
                }))),
                Err(e) => {
                    error = Some(e);
                    Ok(Transformed::no(node))
                }
            }
        })?
        .data;
    error.map_or(Ok(plan), Err)
}

/// A filter over a temporal join with its conditions on left columns alone moved
/// below the join (where the scan prunes partitions by them), or `None`.
/// Each left row gives at most one output row whatever the right side holds,
/// so filtering left rows first gives the same rows. Conditions on right
/// columns stay above: below, they would pick other matches. Some left
/// conditions also bound the right side (`right_side_condition`).
fn filter_left_side(filter: &Filter) -> Option<LogicalPlan> {
    let LogicalPlan::Extension(ext) = filter.input.as_ref() else {
        return None;
    };
    let join = ext.node.as_any().downcast_ref::<TemporalJoin>()?;
    // In a SPLICE JOIN left rows are also the partners of right rows.
    if join.kind == Kind::Splice {
        return None;
    }
    let left_schema = join.left.schema();
    let (down, stay): (Vec<Expr>, Vec<Expr>) = split_conjunction(&filter.predicate)
        .into_iter()
        .cloned()
        .partition(|e| {
            let columns = e.column_refs();
            !columns.is_empty()
                && columns.iter().all(|c| left_schema.has_column(c))
                && !e
                    .exists(|e| {
                        Ok(matches!(
                            e,
                            Expr::ScalarSubquery(_)
                                | Expr::Exists(_)
                                | Expr::InSubquery(_)
                                | Expr::OuterReferenceColumn(..)
                        ))
                    })
                    .unwrap_or(true)
        });
    let right_bounds: Vec<Expr> = down
        .iter()
        .filter_map(|e| right_side_condition(e, join))
        .collect();
    let left = Filter::try_new(conjunction(down)?, Arc::new(join.left.clone())).ok()?;
    let right = match conjunction(right_bounds) {
        Some(bound) => {
            LogicalPlan::Filter(Filter::try_new(bound, Arc::new(join.right.clone())).ok()?)
        }
        None => join.right.clone(),
    };
    let pushed = LogicalPlan::Extension(Extension {
        node: Arc::new(TemporalJoin {
            left: LogicalPlan::Filter(left),
            right,
            ..join.clone()
        }),
    });
    match conjunction(stay) {
        Some(rest) => Filter::try_new(rest, Arc::new(pushed))
            .ok()
            .map(LogicalPlan::Filter),
        None => Some(pushed),
    }
}

/// A constant as far as one execution goes: a literal or a bound parameter.
fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Literal(..) | Expr::Placeholder(_) => true,
        Expr::Cast(c) => is_constant(&c.expr),
        Expr::TryCast(c) => is_constant(&c.expr),
        _ => false,
    }
}

/// What a condition on left rows says about the right rows they can meet:
/// a key equal to a constant (or in a list of them) means the same of the
/// right key, and a timestamp below a bound means the match is below it too
/// (it is at or before the left row's). `None` when it says nothing.
fn right_side_condition(e: &Expr, join: &TemporalJoin) -> Option<Expr> {
    let right_key = |left: &Expr| {
        join.left_keys
            .iter()
            .position(|k| k == left)
            .and_then(|i| join.right_keys.get(i).cloned())
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (column, op, value) = if is_constant(right) {
                (left.as_ref(), *op, right.as_ref())
            } else if is_constant(left) {
                (right.as_ref(), op.swap()?, left.as_ref())
            } else {
                return None;
            };
            match op {
                Operator::Eq => Some(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(right_key(column)?),
                    Operator::Eq,
                    Box::new(value.clone()),
                ))),
                Operator::Lt | Operator::LtEq if column == &join.left_ts => Some(Expr::BinaryExpr(
                    BinaryExpr::new(Box::new(join.right_ts.clone()), op, Box::new(value.clone())),
                )),
                _ => None,
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if list.iter().all(is_constant) => Some(Expr::InList(InList::new(
            Box::new(right_key(expr)?),
            list.clone(),
            false,
        ))),
        Expr::Between(Between {
            expr,
            negated: false,
            high,
            ..
        }) if expr.as_ref() == &join.left_ts && is_constant(high) => {
            Some(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(join.right_ts.clone()),
                Operator::LtEq,
                high.clone(),
            )))
        }
        _ => None,
    }
}

fn is_marker(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.func.name() == MARKER)
}

fn text(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) => Some(s),
        _ => None,
    }
}

fn temporal_join(join: &datafusion::logical_expr::Join) -> Result<TemporalJoin> {
    let internal = |what: &str| {
        ExecError::new(
            sqlstate::INTERNAL_ERROR,
            format!("temporal join marker: {what}"),
        )
    };
    if join.join_type != JoinType::Left && join.join_type != JoinType::Full {
        return Err(internal("not on a LEFT or FULL JOIN"));
    }
    let left_schema = join.left.schema();
    let right_schema = join.right.schema();
    let mut left_keys = Vec::new();
    let mut right_keys = Vec::new();
    for (l, r) in &join.on {
        left_keys.push(l.clone());
        right_keys.push(r.clone());
    }
    let mut marker = None;
    let conjuncts = join
        .filter
        .as_ref()
        .map(split_conjunction)
        .unwrap_or_default();
    for c in conjuncts {
        if let Expr::ScalarFunction(f) = c
            && f.func.name() == MARKER
        {
            marker = Some(f.args.clone());
            continue;
        }
        let side_of = |e: &Expr| {
            let columns = e.column_refs();
            if !columns.is_empty() && columns.iter().all(|c| left_schema.has_column(c)) {
                Some(true)
            } else if !columns.is_empty() && columns.iter().all(|c| right_schema.has_column(c)) {
                Some(false)
            } else {
                None
            }
        };
        match c {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => match (side_of(left), side_of(right)) {
                (Some(true), Some(false)) => {
                    left_keys.push(left.as_ref().clone());
                    right_keys.push(right.as_ref().clone());
                }
                (Some(false), Some(true)) => {
                    left_keys.push(right.as_ref().clone());
                    right_keys.push(left.as_ref().clone());
                }
                _ => {
                    return Err(not_supported(format!(
                        "a temporal join's ON takes equalities between a column of each \
                         side (and the timestamp condition); {c} compares columns of one side"
                    )));
                }
            },
            other => {
                return Err(not_supported(format!(
                    "a temporal join's ON takes equalities between the two sides' columns \
                     (and the timestamp condition), not {other}"
                )));
            }
        }
    }
    let Some(args) = marker else {
        return Err(internal("missing"));
    };
    let [kind, tolerance, mode, left_ts, right_ts] = args.as_slice() else {
        return Err(internal("wrong arguments"));
    };
    let kind = match text(kind) {
        Some("asof") => Kind::Asof,
        Some("lt") => Kind::Lt,
        Some("splice") => Kind::Splice,
        _ => return Err(internal("unknown kind")),
    };
    let tolerance = match tolerance {
        Expr::Literal(ScalarValue::Int64(v), _) => *v,
        Expr::Literal(ScalarValue::Null, _) => None,
        Expr::Literal(v, _) => v
            .clone()
            .cast_to(&DataType::Int64)
            .ok()
            .and_then(|v| match v {
                ScalarValue::Int64(v) => v,
                _ => None,
            }),
        _ => return Err(internal("tolerance is no constant")),
    };
    let keep_unmatched = text(mode) != Some("inner");
    let left_ts = timestamp_of(left_ts, left_schema, "left")?;
    let right_ts = timestamp_of(right_ts, right_schema, "right")?;
    // Keys of different types meet as the left key's type.
    for (l, r) in left_keys.iter().zip(right_keys.iter_mut()) {
        let lt = l.get_type(left_schema)?;
        let rt = r.get_type(right_schema)?;
        if lt != rt {
            if !datafusion::arrow::compute::can_cast_types(&rt, &lt) {
                return Err(ExecError::new(
                    sqlstate::DATATYPE_MISMATCH,
                    format!("temporal join keys {l} ({lt}) and {r} ({rt}) cannot be compared"),
                ));
            }
            *r = r.clone().cast_to(&lt, right_schema)?;
        }
    }
    Ok(TemporalJoin {
        left: join.left.as_ref().clone(),
        right: join.right.as_ref().clone(),
        left_keys,
        right_keys,
        left_ts,
        right_ts,
        kind,
        tolerance,
        keep_unmatched,
        schema: join.schema.clone(),
    })
}

/// A side's timestamp: the column the statement or the table named, or the
/// one timestamp column a subquery returns.
fn timestamp_of(named: &Expr, schema: &DFSchema, side: &str) -> Result<Expr> {
    let expr = match named {
        Expr::Literal(ScalarValue::Null, _) => {
            let candidates: Vec<Column> = schema
                .iter()
                .filter(|(_, f)| matches!(f.data_type(), DataType::Timestamp(_, _)))
                .map(|(q, f)| Column::new(q.cloned(), f.name()))
                .collect();
            match candidates.as_slice() {
                [one] => Expr::Column(one.clone()),
                [] => {
                    return Err(not_supported(format!(
                        "the {side} side of a temporal join has no timestamp column: \
                         join a table with a designated timestamp or select one"
                    )));
                }
                _ => {
                    return Err(not_supported(format!(
                        "the {side} side of a temporal join has several timestamp columns \
                         ({}); name the one to join on with (subquery) timestamp(col), or with \
                         ON ... AND left.ts >= right.ts",
                        candidates
                            .iter()
                            .map(|c| c.flat_name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        other => other.clone(),
    };
    match expr.get_type(schema)? {
        DataType::Timestamp(_, _) => Ok(expr),
        other => Err(ExecError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!("a temporal join's {side} timestamp {expr} is {other}, not a timestamp"),
        )),
    }
}
