//! Casts that PostgreSQL does otherwise than Arrow, made to match after type
//! coercion by one analyzer rule, [`PgCasts`]:
//! - a timestamp cast to text (`ts::text`, `CAST(ts AS VARCHAR)`, the cast
//!   `'at ' || ts` gets) reads as PostgreSQL and the wire protocol print it,
//!   `2026-11-21 10:00:00.5`, not as Arrow's `2026-11-21T10:00:00.500`;
//! - a float cast to an integer is rounded to the nearest integer, ties to
//!   even (`1.5::int` is 2, `2.5::int` is 2), as PostgreSQL's `rint` does;
//!   Arrow truncates; a NUMERIC cast to an integer is rounded half away from
//!   zero (`2.5::numeric::int` is 3), as PostgreSQL rounds numerics;
//! - `instant AT TIME ZONE 'zone'` is the local time there without a zone;
//! - an integer cast to a timestamp counts microseconds since the epoch
//!   (QuestDB's meaning; PostgreSQL refuses the cast, DataFusion reads seconds);
//! - a text literal cast to an array type (`'{1,2}'::int[]`, and a text-bound
//!   array parameter `$1::text[]`) is read as PostgreSQL's array text, its
//!   elements then cast to the element type (and, before planning, given as
//!   many dimensions as the text has: `match_array_literal_dimensions`); text
//!   that is not a literal (a column) is read row by row by `tidemark_text_array_<n>`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{ExprSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarUDF, Volatility, create_udf,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct PgCasts;

impl AnalyzerRule for PgCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::expr_rules::rewrite_expressions(plan, |e, schema| rewrite(e, schema))
    }

    fn name(&self) -> &str {
        "tidemark_pg_casts"
    }
}

fn rewrite(e: Expr, schema: &dyn ExprSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr, field }) = &e else {
        return Ok(Transformed::no(e));
    };
    let to = field.data_type();
    // An expression whose type cannot be told here keeps Arrow's cast.
    let Ok(from) = expr.get_type(schema) else {
        return Ok(Transformed::no(e));
    };
    let operand = expr.as_ref().clone();
    Ok(match (&from, to) {
        (
            DataType::Timestamp(unit, zone),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8,
        ) => {
            // Both kinds are microseconds of UTC; the zone only decides the "+00".
            // TIMESTAMP_NS (nanoseconds, no zone) keeps its nine digits.
            let text = match (unit, zone) {
                (TimeUnit::Nanosecond, None) => timestamp_ns_text_udf().call(vec![operand]),
                (TimeUnit::Microsecond, None) => timestamp_text_udf().call(vec![operand]),
                (_, None) => timestamp_text_udf().call(vec![
                    operand.cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None), schema)?,
                ]),
                (_, Some(_)) => timestamptz_text_udf().call(vec![
                    operand.cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None), schema)?,
                ]),
            };
            Transformed::yes(match to {
                DataType::Utf8 => text,
                other => text.cast_to(other, schema)?,
            })
        }
        // `instant AT TIME ZONE 'zone'` (planned as a cast to a timestamp of that
        // zone) is the wall-clock time there, a plain timestamp, as in PostgreSQL.
        // A cast to the session zone itself (`::timestamptz`) stays an instant.
        (DataType::Timestamp(_, Some(_)), DataType::Timestamp(_, Some(zone)))
            if zone.as_ref() != crate::types::UTC_OFFSET =>
        {
            Transformed::yes(datafusion::functions::datetime::to_local_time().call(vec![e]))
        }
        // An integer cast to a timestamp counts microseconds since the epoch, as
        // in QuestDB (PostgreSQL has no such cast). DataFusion plans it through
        // a cast to whole seconds, which this replaces.
        (DataType::Timestamp(TimeUnit::Second, _), DataType::Timestamp(..))
            if matches!(expr.as_ref(), Expr::Cast(Cast { expr: int, .. })
                if int.get_type(schema).is_ok_and(|t| t.is_integer())) =>
        {
            let Expr::Cast(Cast { expr: int, .. }) = expr.as_ref() else {
                return Ok(Transformed::no(e));
            };
            // QuestDB's TIMESTAMP_NS counts nanoseconds the same way.
            let unit = match to {
                DataType::Timestamp(TimeUnit::Nanosecond, None) => TimeUnit::Nanosecond,
                _ => TimeUnit::Microsecond,
            };
            let counted = int
                .as_ref()
                .clone()
                .cast_to(&DataType::Int64, schema)?
                .cast_to(&DataType::Timestamp(unit, None), schema)?;
            Transformed::yes(counted.cast_to(to, schema)?)
        }
        // Arrow's scale-down of a decimal rounds half away from zero.
        (
            DataType::Decimal128(_, scale),
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64,
        ) if *scale > 0 => {
            let whole = operand.cast_to(&DataType::Decimal128(38, 0), schema)?;
            Transformed::yes(whole.cast_to(to, schema)?)
        }
        (
            DataType::Float16 | DataType::Float32 | DataType::Float64,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64,
        ) => {
            let float = operand.cast_to(&DataType::Float64, schema)?;
            let rounded = rint_udf().call(vec![float]);
            Transformed::yes(rounded.cast_to(to, schema)?)
        }
        (
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8,
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..),
        ) => match &operand {
            Expr::Literal(
                ScalarValue::Utf8(Some(text))
                | ScalarValue::Utf8View(Some(text))
                | ScalarValue::LargeUtf8(Some(text)),
                _,
            ) => {
                let array = crate::params::parse_array_text(text, "TEXT").map_err(|message| {
                    datafusion::error::DataFusionError::from(
                        datafusion::arrow::error::ArrowError::CastError(message),
                    )
                })?;
                Transformed::yes(
                    Expr::Literal(text_array_scalar(&array)?, None).cast_to(to, schema)?,
                )
            }
            // Text of each row (a column, a parameter bound late): read as it runs.
            _ => {
                let text = operand.cast_to(&DataType::Utf8, schema)?;
                let lists = text_array_udf(crate::types::list_depth(to)).call(vec![text]);
                Transformed::yes(lists.cast_to(to, schema)?)
            }
        },
        _ => Transformed::no(e),
    })
}

/// PostgreSQL's array types do not count dimensions (`'{{1,2},{3,4}}'::int[]`
/// is a two-dimensional `integer[]`); Arrow's list types do. A text literal cast
/// to an array type gets as many `[]` as the literal has dimensions, before
/// planning (the analyzer rule above cannot change a type).
pub(crate) fn match_array_literal_dimensions(statement: &mut ast::Statement) {
    let _ = ast::visit_expressions_mut(statement, |e| {
        if let ast::Expr::Cast {
            expr, data_type, ..
        } = e
            && let ast::Expr::Value(v) = expr.as_ref()
            && let ast::Value::SingleQuotedString(text) | ast::Value::EscapedStringLiteral(text) =
                &v.value
            && matches!(data_type, ast::DataType::Array(_))
        {
            let dimensions = text
                .trim_start()
                .chars()
                .take_while(|c| *c == '{' || c.is_whitespace())
                .filter(|c| *c == '{')
                .count();
            while array_depth(data_type) < dimensions {
                let inner = std::mem::replace(data_type, ast::DataType::Text);
                *data_type = ast::DataType::Array(ast::ArrayElemTypeDef::SquareBracket(
                    Box::new(inner),
                    None,
                ));
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// PostgreSQL gives an untyped literal in a VALUES column the type of the
/// column's typed rows (`VALUES ('a0ee...'), ('b0ee...'::uuid)` is a uuid
/// column); DataFusion refuses text beside another type there. Where every
/// row of a column is a plain string literal, NULL or a cast to one type, the
/// string literals get that cast too, before planning.
pub(crate) fn type_values_literals(statement: &mut ast::Statement) {
    struct TypeLiterals;
    impl ast::VisitorMut for TypeLiterals {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut ast::Query) -> std::ops::ControlFlow<()> {
            if let ast::SetExpr::Values(values) = query.body.as_mut() {
                let columns = values.rows.first().map_or(0, |r| r.len());
                for c in 0..columns {
                    type_column(&mut values.rows, c);
                }
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let _ = ast::VisitMut::visit(statement, &mut TypeLiterals);
}

fn type_column(rows: &mut [ast::Parens<Vec<ast::Expr>>], column: usize) {
    let is_text = |e: &ast::Expr| {
        matches!(e, ast::Expr::Value(v) if matches!(
            v.value,
            ast::Value::SingleQuotedString(_) | ast::Value::EscapedStringLiteral(_)
        ))
    };
    let mut cast_to: Option<ast::DataType> = None;
    let mut has_text = false;
    for row in rows.iter() {
        match row.get(column) {
            Some(ast::Expr::Cast {
                kind: ast::CastKind::DoubleColon | ast::CastKind::Cast,
                data_type,
                array: false,
                format: None,
                ..
            }) => match &cast_to {
                None => cast_to = Some(data_type.clone()),
                Some(t) if t == data_type => {}
                Some(_) => return,
            },
            Some(ast::Expr::Value(v)) if matches!(v.value, ast::Value::Null) => {}
            Some(e) if is_text(e) => has_text = true,
            _ => return,
        }
    }
    let (Some(data_type), true) = (cast_to, has_text) else {
        return;
    };
    for row in rows.iter_mut() {
        if let Some(e) = row.get_mut(column)
            && is_text(e)
        {
            let literal = std::mem::replace(e, ast::Expr::value(ast::Value::Null));
            *e = ast::Expr::Cast {
                kind: ast::CastKind::DoubleColon,
                expr: Box::new(literal),
                data_type: data_type.clone(),
                array: false,
                format: None,
            };
        }
    }
}

/// PostgreSQL's TIMESTAMP holds microseconds; DataFusion plans a bare
/// `TIMESTAMP` (in a cast or a typed literal) as nanoseconds. Spelled
/// `TIMESTAMP(6)` before planning, `x::timestamp` of a TIMESTAMP_NS value drops
/// the last three digits, as a cast to PostgreSQL's type does, and casts reach
/// the years PostgreSQL reaches (nanoseconds end in 2262).
pub(crate) fn timestamps_in_microseconds(statement: &mut ast::Statement) {
    fn micros(t: &mut ast::DataType) {
        match t {
            ast::DataType::Timestamp(precision @ None, _) => *precision = Some(6),
            ast::DataType::Array(
                ast::ArrayElemTypeDef::SquareBracket(inner, _)
                | ast::ArrayElemTypeDef::AngleBracket(inner)
                | ast::ArrayElemTypeDef::Parenthesis(inner),
            ) => micros(inner),
            _ => {}
        }
    }
    let _ = ast::visit_expressions_mut(statement, |e| {
        match e {
            ast::Expr::Cast { data_type, .. } => micros(data_type),
            ast::Expr::TypedString(typed) => micros(&mut typed.data_type),
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

fn array_depth(mut t: &ast::DataType) -> usize {
    let mut depth = 0;
    while let ast::DataType::Array(
        ast::ArrayElemTypeDef::SquareBracket(inner, _)
        | ast::ArrayElemTypeDef::AngleBracket(inner)
        | ast::ArrayElemTypeDef::Parenthesis(inner),
    ) = t
    {
        depth += 1;
        t = inner;
    }
    depth
}

/// `tidemark_text_array_<depth>(text)`: each row's PostgreSQL array text as a
/// list of text nested `depth` deep (NULL text is a NULL array). A row whose
/// array has another number of dimensions fails (22P02): an Arrow list type has
/// one depth, and the cast's type gave it.
fn text_array_udf(depth: usize) -> ScalarUDF {
    let list_type = (0..depth).fold(DataType::Utf8, |t, _| DataType::new_list(t, true));
    let returns = list_type.clone();
    create_udf(
        &format!("tidemark_text_array_{depth}"),
        vec![DataType::Utf8],
        returns,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let text = ColumnarValue::values_to_arrays(args)?;
            let Some(text) = text.first().and_then(|a| a.as_string_opt::<i32>()) else {
                return exec_err!("tidemark_text_array takes text");
            };
            let null = ScalarValue::try_from(&list_type)?;
            let mut rows = Vec::with_capacity(text.len());
            for value in text.iter() {
                let Some(value) = value else {
                    rows.push(null.clone());
                    continue;
                };
                let parsed = crate::params::parse_array_text(value, "TEXT").map_err(|m| {
                    datafusion::error::DataFusionError::from(
                        datafusion::arrow::error::ArrowError::CastError(m),
                    )
                })?;
                let empty = matches!(&parsed, crate::params::ParamValue::Array { items, .. } if items.is_empty());
                let row = if empty {
                    ScalarValue::List(ScalarValue::new_list_nullable(
                        &[],
                        match &list_type {
                            DataType::List(f) => f.data_type(),
                            other => other,
                        },
                    ))
                } else {
                    text_array_scalar(&parsed)?
                };
                if row.data_type() != list_type {
                    return Err(datafusion::error::DataFusionError::from(
                        datafusion::arrow::error::ArrowError::CastError(format!(
                            "malformed array literal: \"{value}\": it has {} dimension(s), the \
                             cast's type {depth}",
                            crate::types::list_depth(&row.data_type())
                        )),
                    ));
                }
                rows.push(row);
            }
            Ok(ColumnarValue::Array(ScalarValue::iter_to_array(rows)?))
        }),
    )
}

/// An array read from text as a list of text (of lists of text, for more
/// dimensions), for a cast to give the element type.
fn text_array_scalar(array: &crate::params::ParamValue) -> Result<ScalarValue> {
    use crate::params::ParamValue;
    let ParamValue::Array { items, .. } = array else {
        return exec_err!("not an array");
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        values.push(match item {
            ParamValue::Array { .. } => text_array_scalar(item)?,
            ParamValue::Text(t) => ScalarValue::Utf8(Some(t.clone())),
            _ => ScalarValue::Utf8(None),
        });
    }
    // Sub-arrays make this a list of lists; a NULL beside them is a NULL list.
    let element = values
        .iter()
        .find(|v| !matches!(v, ScalarValue::Utf8(_)))
        .map_or(DataType::Utf8, ScalarValue::data_type);
    let values = values
        .into_iter()
        .map(|v| match v {
            ScalarValue::Utf8(None) => ScalarValue::try_from(&element),
            v if v.data_type() == element => Ok(v),
            _ => exec_err!("multidimensional arrays must have sub-arrays with matching dimensions"),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(
        &values, &element,
    )))
}

/// `tidemark_timestamp_text(ts)`: a microsecond timestamp as PostgreSQL's text.
fn timestamp_text_udf() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> = LazyLock::new(|| {
        timestamp_text_udf_of(
            "tidemark_timestamp_text",
            TimeUnit::Microsecond,
            crate::text::timestamp,
        )
    });
    UDF.clone()
}

/// `tidemark_timestamptz_text(ts)`: the microseconds of a `timestamp with time zone`
/// (as a plain timestamp of UTC) as PostgreSQL's text, with its `+00`.
fn timestamptz_text_udf() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> = LazyLock::new(|| {
        timestamp_text_udf_of(
            "tidemark_timestamptz_text",
            TimeUnit::Microsecond,
            crate::text::timestamptz,
        )
    });
    UDF.clone()
}

/// `tidemark_timestamp_ns_text(ts)`: a TIMESTAMP_NS value as text with its nanoseconds.
fn timestamp_ns_text_udf() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> = LazyLock::new(|| {
        timestamp_text_udf_of(
            "tidemark_timestamp_ns_text",
            TimeUnit::Nanosecond,
            crate::text::timestamp_nanos,
        )
    });
    UDF.clone()
}

/// A UDF formatting timestamps of unit `unit` (no zone) with `format`, which
/// takes the stored number.
fn timestamp_text_udf_of(
    name: &'static str,
    unit: TimeUnit,
    format: fn(i64) -> String,
) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Timestamp(unit, None)],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| match args {
            [ColumnarValue::Array(a)] => {
                if a.data_type() != &DataType::Timestamp(unit, None) {
                    return exec_err!("{name} of {}", a.data_type());
                }
                // A timestamp cast to Int64 is its stored number.
                let numbers = datafusion::arrow::compute::cast(a, &DataType::Int64)?;
                let text: StringArray = numbers
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .iter()
                    .map(|v| v.map(format))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(text) as ArrayRef))
            }
            [ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(v, None))]
                if unit == TimeUnit::Microsecond =>
            {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(v.map(format))))
            }
            [ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(v, None))]
                if unit == TimeUnit::Nanosecond =>
            {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(v.map(format))))
            }
            other => exec_err!("{name} of {other:?}"),
        }),
    )
}

/// `tidemark_rint(x)`: the nearest integer, ties to even (C's `rint`).
fn rint_udf() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> = LazyLock::new(|| {
        create_udf(
            "tidemark_rint",
            vec![DataType::Float64],
            DataType::Float64,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| match args {
                [ColumnarValue::Array(a)] => {
                    let Some(x) = a.as_primitive_opt::<Float64Type>() else {
                        return exec_err!("tidemark_rint of {}", a.data_type());
                    };
                    let rounded: Float64Array = x.unary(f64::round_ties_even);
                    Ok(ColumnarValue::Array(Arc::new(rounded) as ArrayRef))
                }
                [ColumnarValue::Scalar(ScalarValue::Float64(v))] => Ok(ColumnarValue::Scalar(
                    ScalarValue::Float64(v.map(f64::round_ties_even)),
                )),
                other => exec_err!("tidemark_rint of {other:?}"),
            }),
        )
    });
    UDF.clone()
}
