//! UUID columns (Arrow `FixedSizeBinary(16)`) in expressions as PostgreSQL
//! reads them, which Arrow's coercion cannot: a string literal compared with a
//! UUID (`id = 'a0eebc99-...'`, `id IN ('...', '...')`) is that UUID, text
//! cast to `uuid` (`'a0eebc99-...'::uuid`, `$1::uuid`) is read as one, and a
//! UUID cast to text (`id::text`) is its canonical text. The analyzer rule
//! [`UuidValues`] runs before type coercion (which would refuse both).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ExprSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::{Cast, InList};
use datafusion::logical_expr::planner::{PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarUDF, Volatility, create_udf,
};
use datafusion::optimizer::AnalyzerRule;

/// A UUID's Arrow type (UUID columns, `::uuid` casts).
pub(crate) const UUID: DataType = DataType::FixedSizeBinary(16);

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct UuidValues;

impl AnalyzerRule for UuidValues {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::expr_rules::rewrite_expressions(plan, |e, schema| rewrite(e, schema))
    }

    fn name(&self) -> &str {
        "tidemark_uuid_values"
    }
}

fn is_uuid(e: &Expr, schema: &dyn ExprSchema) -> bool {
    e.get_type(schema).is_ok_and(|t| t == UUID)
}

fn is_text(e: &Expr, schema: &dyn ExprSchema) -> bool {
    e.get_type(schema)
        .is_ok_and(|t| matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8))
}

/// A string literal as a UUID literal, another text expression (`$1::uuid`,
/// planned as text) parsed as a UUID when it runs; others unchanged.
fn as_uuid(e: Expr, schema: &dyn ExprSchema) -> Result<Expr> {
    let Expr::Literal(value, meta) = &e else {
        return Ok(if is_text(&e, schema) {
            text_uuid_udf().call(vec![e])
        } else {
            e
        });
    };
    let Some(Some(text)) = value.try_as_str() else {
        return Ok(e);
    };
    match crate::convert::parse_uuid(text) {
        Some(u) => Ok(Expr::Literal(
            ScalarValue::FixedSizeBinary(16, Some(u.to_be_bytes().to_vec())),
            meta.clone(),
        )),
        None => Err(invalid_uuid(text)),
    }
}

/// 22P02 for text that is no UUID.
fn invalid_uuid(text: &str) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(crate::error::ExecError::new(
        crate::error::sqlstate::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type uuid: \"{text}\""),
    )))
}

/// The operands of a binary operator, with text on one side made a UUID when
/// the other side is one (unchanged unless exactly one side is a UUID).
fn uuid_operands(
    left: Expr,
    right: Expr,
    schema: &dyn ExprSchema,
) -> Result<Transformed<(Expr, Expr)>> {
    Ok(match (is_uuid(&left, schema), is_uuid(&right, schema)) {
        (true, false) => Transformed::yes((left, as_uuid(right, schema)?)),
        (false, true) => Transformed::yes((as_uuid(left, schema)?, right)),
        _ => Transformed::no((left, right)),
    })
}

/// A comparison of a UUID with text, as the SQL planner meets it: the text
/// becomes a UUID here already, because expressions built around the
/// comparison (`coalesce(id = '...', false)`) need its type before the
/// analyzer rule runs.
pub(crate) fn plan_comparison(
    expr: RawBinaryExpr,
    schema: &DFSchema,
) -> Result<PlannerResult<RawBinaryExpr>> {
    use datafusion::sql::sqlparser::ast::BinaryOperator as Op;
    let comparison = matches!(
        expr.op,
        Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq
    );
    if !comparison {
        return Ok(PlannerResult::Original(expr));
    }
    let RawBinaryExpr { op, left, right } = expr;
    let (left, right) = uuid_operands(left, right, schema)?.data;
    Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
}

fn rewrite(e: Expr, schema: &dyn ExprSchema) -> Result<Transformed<Expr>> {
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => uuid_operands(*left, *right, schema)?
            .update_data(|(left, right)| {
                Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
            }),
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) if is_uuid(&expr, schema) => {
            let list = list
                .into_iter()
                .map(|e| as_uuid(e, schema))
                .collect::<Result<Vec<_>>>()?;
            Transformed::yes(Expr::InList(InList {
                expr,
                list,
                negated,
            }))
        }
        Expr::Cast(Cast { expr, field })
            if is_uuid(&expr, schema)
                && matches!(
                    field.data_type(),
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                ) =>
        {
            let text = uuid_text_udf().call(vec![*expr]);
            Transformed::yes(match field.data_type() {
                DataType::Utf8 => text,
                other => text.cast_to(other, schema)?,
            })
        }
        // `x::uuid`: a UUID is one already, text is read as one (Arrow has
        // no such cast); other types keep the cast, which refuses them.
        Expr::Cast(Cast { expr, field }) if field.data_type() == &UUID => {
            if is_uuid(&expr, schema) {
                Transformed::yes(*expr)
            } else if is_text(&expr, schema) {
                Transformed::yes(as_uuid(*expr, schema)?)
            } else {
                Transformed::no(Expr::Cast(Cast { expr, field }))
            }
        }
        e => Transformed::no(e),
    })
}

/// `tidemark_uuid_text(u)`: a UUID as PostgreSQL writes it.
fn uuid_text_udf() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> = LazyLock::new(|| {
        create_udf(
            "tidemark_uuid_text",
            vec![UUID],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                let arrays = ColumnarValue::values_to_arrays(args)?;
                let [a] = arrays.as_slice() else {
                    return exec_err!("tidemark_uuid_text takes one argument");
                };
                let Some(ids) = a.as_fixed_size_binary_opt() else {
                    return exec_err!("tidemark_uuid_text of {}", a.data_type());
                };
                let text: StringArray = (0..ids.len())
                    .map(|i| (!ids.is_null(i)).then(|| crate::text::uuid(ids.value(i))))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(text) as ArrayRef))
            }),
        )
    });
    UDF.clone()
}

/// `tidemark_text_uuid(t)`: text parsed as a UUID (22P02 when it is none).
fn text_uuid_udf() -> ScalarUDF {
    static UDF: LazyLock<ScalarUDF> = LazyLock::new(|| {
        create_udf(
            "tidemark_text_uuid",
            vec![DataType::Utf8],
            UUID,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                let arrays = ColumnarValue::values_to_arrays(args)?;
                let [a] = arrays.as_slice() else {
                    return exec_err!("tidemark_text_uuid takes one argument");
                };
                let texts = a.as_string::<i32>();
                let ids = (0..texts.len())
                    .map(|i| {
                        if texts.is_null(i) {
                            return Ok(None);
                        }
                        let text = texts.value(i);
                        match crate::convert::parse_uuid(text) {
                            Some(u) => Ok(Some(u.to_be_bytes())),
                            None => Err(invalid_uuid(text)),
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                let array =
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(ids.into_iter(), 16)?;
                Ok(ColumnarValue::Array(Arc::new(array) as ArrayRef))
            }),
        )
    });
    UDF.clone()
}
