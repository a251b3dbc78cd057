//! Filters that compare a floating-point column with a constant, in one pass.
//!
//! DataFusion compares floats with Arrow's kernels, which order by IEEE 754
//! totalOrder, and before that scans every batch for a `-0.0` to rewrite (SQL
//! wants `-0.0 = 0.0`): two passes over the column, the second one through
//! `total_cmp`. A filter such as `price > 200` over a table is bound by memory
//! bandwidth on this kind of machine, so the extra pass is most of the cost.
//! This rule, run after DataFusion's own, replaces such a comparison in a
//! filter by one pass of plain IEEE comparisons, in which `-0.0 = 0.0` already
//! holds, noting whether a NaN went by; only a stretch of 64 values that held
//! one is looked at again, to give each NaN its totalOrder answer (a NaN above
//! every number, as PostgreSQL orders it). Same answers, NULL stays NULL.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::internal_datafusion_err;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

#[derive(Debug, Default)]
pub(crate) struct FloatLiteralComparisons;

impl PhysicalOptimizerRule for FloatLiteralComparisons {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let predicate = filter.predicate().clone().transform_up(|e| {
                Ok(rewritten(&e, &schema).map_or(Transformed::no(e), Transformed::yes))
            })?;
            if !predicate.transformed {
                return Ok(Transformed::no(node));
            }
            let rebuilt = FilterExecBuilder::from(filter)
                .with_predicate(predicate.data)
                .build()?;
            Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "tidemark_float_literal_comparisons"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` as a [`FloatComparison`] when it compares a DOUBLE or REAL column
/// with a constant of the same type.
fn rewritten(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let binary = expr.downcast_ref::<BinaryExpr>()?;
    let op = Comparison::of(*binary.op())?;
    let (column, literal, op) = match (
        binary.left().downcast_ref::<Column>(),
        binary.right().downcast_ref::<Literal>(),
    ) {
        (Some(column), Some(literal)) => (column, literal, op),
        _ => (
            binary.right().downcast_ref::<Column>()?,
            binary.left().downcast_ref::<Literal>()?,
            op.swapped(),
        ),
    };
    let field = schema.fields().get(column.index())?;
    // A NaN constant is left to DataFusion: rare, and its answers depend on
    // the NaNs' payloads.
    let constant = match (field.data_type(), literal.value()) {
        (DataType::Float64, ScalarValue::Float64(Some(v))) if !v.is_nan() => Constant::Double(*v),
        (DataType::Float32, ScalarValue::Float32(Some(v))) if !v.is_nan() => Constant::Real(*v),
        _ => return None,
    };
    Some(Arc::new(FloatComparison {
        column: column.clone(),
        op,
        constant,
        original: expr.clone(),
    }))
}

/// The comparisons the rule replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Comparison {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl Comparison {
    fn of(op: Operator) -> Option<Self> {
        Some(match op {
            Operator::Eq => Comparison::Eq,
            Operator::NotEq => Comparison::NotEq,
            Operator::Lt => Comparison::Lt,
            Operator::LtEq => Comparison::LtEq,
            Operator::Gt => Comparison::Gt,
            Operator::GtEq => Comparison::GtEq,
            _ => return None,
        })
    }

    /// The comparison with its sides exchanged: `c < x` is `x > c`.
    fn swapped(self) -> Self {
        match self {
            Comparison::Lt => Comparison::Gt,
            Comparison::LtEq => Comparison::GtEq,
            Comparison::Gt => Comparison::Lt,
            Comparison::GtEq => Comparison::LtEq,
            same => same,
        }
    }
}

/// The constant, in the width of the column (never NaN).
#[derive(Debug, Clone, Copy)]
enum Constant {
    Double(f64),
    Real(f32),
}

impl Constant {
    fn bits(self) -> u64 {
        match self {
            Constant::Double(v) => v.to_bits(),
            Constant::Real(v) => u64::from(v.to_bits()),
        }
    }
}

/// `column op constant` for a DOUBLE or REAL column; displays as the
/// comparison it replaced, so plans read the same.
#[derive(Debug)]
struct FloatComparison {
    column: Column,
    op: Comparison,
    constant: Constant,
    original: Arc<dyn PhysicalExpr>,
}

impl FloatComparison {
    fn compare(&self, values: &dyn Array) -> DfResult<BooleanArray> {
        let bits = match self.constant {
            Constant::Double(c) => {
                let values = values.as_primitive_opt::<Float64Type>().ok_or_else(|| {
                    internal_datafusion_err!("a DOUBLE comparison read another type")
                })?;
                packed(values.values(), c, self.op)
            }
            Constant::Real(c) => {
                let values = values.as_primitive_opt::<Float32Type>().ok_or_else(|| {
                    internal_datafusion_err!("a REAL comparison read another type")
                })?;
                packed(values.values(), c, self.op)
            }
        };
        Ok(BooleanArray::new(bits, values.nulls().cloned()))
    }
}

/// What [`packed`] needs of `f64` and `f32`.
trait Float: Copy + PartialOrd {
    fn is_nan(self) -> bool;
    fn is_sign_negative(self) -> bool;
}

impl Float for f64 {
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn is_sign_negative(self) -> bool {
        f64::is_sign_negative(self)
    }
}

impl Float for f32 {
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn is_sign_negative(self) -> bool {
        f32::is_sign_negative(self)
    }
}

/// The bits of `v op constant` for every value, 64 to a word; the operator
/// is chosen outside the loop so that each loop is one comparison.
fn packed<F: Float>(values: &[F], constant: F, op: Comparison) -> BooleanBuffer {
    match op {
        Comparison::Eq => pack(values, op, move |v| v == constant),
        Comparison::NotEq => pack(values, op, move |v| v != constant),
        Comparison::Lt => pack(values, op, move |v| v < constant),
        Comparison::LtEq => pack(values, op, move |v| v <= constant),
        Comparison::Gt => pack(values, op, move |v| v > constant),
        Comparison::GtEq => pack(values, op, move |v| v >= constant),
    }
}

fn pack<F: Float>(values: &[F], op: Comparison, holds: impl Fn(F) -> bool) -> BooleanBuffer {
    let word = |chunk: &[F]| {
        let mut word = 0u64;
        let mut nan = false;
        for (bit, v) in chunk.iter().enumerate() {
            word |= u64::from(holds(*v)) << bit;
            nan |= v.is_nan();
        }
        if nan {
            with_nans(chunk, word, op)
        } else {
            word
        }
    };
    let chunks = values.chunks_exact(64);
    let tail = chunks.remainder();
    let mut words: Vec<u64> = chunks.map(word).collect();
    if !tail.is_empty() {
        words.push(word(tail));
    }
    BooleanBuffer::new(Buffer::from_vec(words), 0, values.len())
}

/// `word` with the bits of `chunk`'s NaNs set as totalOrder answers, where
/// IEEE said no to every comparison but `<>`: a NaN whose sign bit is clear is
/// above every number, one whose sign bit is set below.
fn with_nans<F: Float>(chunk: &[F], mut word: u64, op: Comparison) -> u64 {
    for (bit, v) in chunk.iter().enumerate().filter(|(_, v)| v.is_nan()) {
        let holds = match op {
            Comparison::Eq => false,
            Comparison::NotEq => true,
            Comparison::Gt | Comparison::GtEq => !v.is_sign_negative(),
            Comparison::Lt | Comparison::LtEq => v.is_sign_negative(),
        };
        word = (word & !(1 << bit)) | (u64::from(holds) << bit);
    }
    word
}

impl PhysicalExpr for FloatComparison {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.column.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        let values = batch.columns().get(self.column.index()).ok_or_else(|| {
            internal_datafusion_err!("a float comparison's column is not in the batch")
        })?;
        Ok(ColumnarValue::Array(Arc::new(
            self.compare(values.as_ref())?,
        )))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(internal_datafusion_err!(
                "a float comparison takes no children"
            ))
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt_sql(f)
    }
}

impl fmt::Display for FloatComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt(f)
    }
}

impl PartialEq for FloatComparison {
    fn eq(&self, other: &Self) -> bool {
        self.column == other.column
            && self.op == other.op
            && self.constant.bits() == other.constant.bits()
    }
}

impl Eq for FloatComparison {}

impl Hash for FloatComparison {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.column.hash(state);
        self.op.hash(state);
        self.constant.bits().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float32Array, Float64Array};
    use datafusion::arrow::compute::kernels::cmp;
    use proptest::prelude::*;

    const OPS: [Comparison; 6] = [
        Comparison::Eq,
        Comparison::NotEq,
        Comparison::Lt,
        Comparison::LtEq,
        Comparison::Gt,
        Comparison::GtEq,
    ];

    /// What DataFusion answers: `-0.0` made `+0.0` on both sides, then
    /// Arrow's kernel.
    fn arrow_answer(values: &Float64Array, constant: f64, op: Comparison) -> BooleanArray {
        let normalize = |v: f64| if v == 0.0 { 0.0 } else { v };
        let values: Float64Array = values.unary(normalize);
        let constant = Float64Array::new_scalar(normalize(constant));
        match op {
            Comparison::Eq => cmp::eq(&values, &constant),
            Comparison::NotEq => cmp::neq(&values, &constant),
            Comparison::Lt => cmp::lt(&values, &constant),
            Comparison::LtEq => cmp::lt_eq(&values, &constant),
            Comparison::Gt => cmp::gt(&values, &constant),
            Comparison::GtEq => cmp::gt_eq(&values, &constant),
        }
        .expect("the kernel compares two DOUBLE arrays")
    }

    fn comparison(op: Comparison, constant: f64) -> FloatComparison {
        let column = Column::new("x", 0);
        FloatComparison {
            column: column.clone(),
            op,
            constant: Constant::Double(constant),
            original: Arc::new(column),
        }
    }

    fn special() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(200.0),
            (-3i32..3).prop_map(f64::from),
        ]
    }

    proptest! {
        #[test]
        fn answers_as_datafusion_does(
            values in proptest::collection::vec(proptest::option::of(special()), 0..200),
            constant in special().prop_filter("a NaN constant is not rewritten", |c| !c.is_nan()),
        ) {
            let array = Float64Array::from(values);
            for op in OPS {
                let ours = comparison(op, constant)
                    .compare(&array)
                    .expect("a DOUBLE array compares");
                prop_assert_eq!(&ours, &arrow_answer(&array, constant, op), "{:?} {}", op, constant);
            }
        }
    }

    #[test]
    fn zeros_are_equal_and_nan_is_above_every_number() {
        let array = Float64Array::from(vec![Some(-0.0), Some(f64::NAN), None, Some(1e308)]);
        let eq_zero = comparison(Comparison::Eq, 0.0)
            .compare(&array)
            .expect("compares");
        assert_eq!(
            eq_zero,
            BooleanArray::from(vec![Some(true), Some(false), None, Some(false)])
        );
        let above = comparison(Comparison::Gt, f64::INFINITY)
            .compare(&array)
            .expect("compares");
        assert_eq!(
            above,
            BooleanArray::from(vec![Some(false), Some(true), None, Some(false)])
        );
    }

    #[test]
    fn a_constant_on_either_side_is_rewritten_but_not_nan() {
        use datafusion::arrow::datatypes::Field;
        let schema = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("x", 0));
        let constant = |v: f64| Arc::new(Literal::new(ScalarValue::Float64(Some(v))));
        let left: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(constant(2.0), Operator::Lt, column.clone()));
        let rewritten_left = rewritten(&left, &schema).expect("a constant on the left");
        let swapped = rewritten_left
            .downcast_ref::<FloatComparison>()
            .expect("a float comparison");
        assert_eq!(swapped.op, Comparison::Gt);
        assert_eq!(rewritten_left.to_string(), left.to_string());
        let nan: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(column, Operator::Gt, constant(f64::NAN)));
        assert!(rewritten(&nan, &schema).is_none());
    }

    #[test]
    fn real_columns_compare_in_their_own_width() {
        let column = Column::new("x", 0);
        let below = FloatComparison {
            column: column.clone(),
            op: Comparison::Lt,
            constant: Constant::Real(1.5),
            original: Arc::new(column),
        };
        let array = Float32Array::from(vec![1.0, 1.5, -0.0, f32::NAN]);
        assert_eq!(
            below.compare(&array).expect("compares"),
            BooleanArray::from(vec![true, false, true, false])
        );
    }
}
