//! Element-wise arithmetic on `DOUBLE[]` values, as QuestDB has it: `a + b`,
//! `a - b`, `a * b`, `a / b` of two arrays of the same shape apply the
//! operator to the elements at the same coordinates; with a number on one
//! side, to every element and that number. A NULL element gives NULL.
//!
//! DataFusion refuses arithmetic on lists at type coercion, so the operators
//! are planned as calls of [`ArrayArithmetic`] when an operand is an array of
//! numbers (from the expression planner in `json.rs`, which sees every binary
//! operator first).

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{DFSchema, Result as DfResult};
use datafusion::logical_expr::planner::RawBinaryExpr;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use crate::double_array::{Owner, Shaped, arrow_type, lists_from_shaped, shape_error, shaped_rows};
use crate::error::{ExecError, sqlstate};
use crate::provider::to_df;
use crate::questdb_arrays::sql_type;
use crate::types::{innermost_element, list_depth as depth};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
}

impl Op {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Op::Add => a + b,
            Op::Subtract => a - b,
            Op::Multiply => a * b,
            Op::Divide => a / b,
        }
    }
}

/// `left op right` as an element-wise call when either side is an array of
/// numbers; `None` for every other operator or operand type.
pub(crate) fn plan(expr: &RawBinaryExpr, schema: &DFSchema) -> Option<Expr> {
    let op = match expr.op {
        BinaryOperator::Plus => Op::Add,
        BinaryOperator::Minus => Op::Subtract,
        BinaryOperator::Multiply => Op::Multiply,
        BinaryOperator::Divide => Op::Divide,
        _ => return None,
    };
    let numeric_array = |e: &Expr| {
        e.get_type(schema)
            .is_ok_and(|t| depth(&t) > 0 && innermost_element(&t).is_numeric())
    };
    if !numeric_array(&expr.left) && !numeric_array(&expr.right) {
        return None;
    }
    let udf = ScalarUDF::from(ArrayArithmetic {
        op,
        signature: Signature::any(2, Volatility::Immutable),
    });
    Some(udf.call(vec![expr.left.clone(), expr.right.clone()]))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayArithmetic {
    op: Op,
    signature: Signature,
}

impl ArrayArithmetic {
    fn symbol(&self) -> &'static str {
        match self.op {
            Op::Add => "+",
            Op::Subtract => "-",
            Op::Multiply => "*",
            Op::Divide => "/",
        }
    }
}

impl ScalarUDFImpl for ArrayArithmetic {
    fn name(&self) -> &str {
        match self.op {
            Op::Add => "array_add",
            Op::Subtract => "array_subtract",
            Op::Multiply => "array_multiply",
            Op::Divide => "array_divide",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let operand = |t: &DataType| t.is_numeric() || t.is_null() || depth(t) > 0;
        match args {
            [a, b] if depth(a) > 0 && depth(b) > 0 && depth(a) != depth(b) => {}
            [a, b] if operand(a) && operand(b) => {
                let dims = depth(a).max(depth(b));
                return Ok(arrow_type(dims));
            }
            _ => {}
        }
        let types: Vec<String> = args.iter().map(sql_type).collect();
        Err(to_df(ExecError::new(
            sqlstate::UNDEFINED_FUNCTION,
            format!(
                "operator does not exist: {}: arrays combine with arrays of the same \
                 dimensions or with numbers",
                types.join(&format!(" {} ", self.symbol()))
            ),
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let (arrays, constant) = crate::call_args::arrays_or_constants(&args)?;
        let dims = depth(arrays[0].data_type()).max(depth(arrays[1].data_type()));
        let (left, right) = (Operand::of(&arrays[0])?, Operand::of(&arrays[1])?);
        // One row when both sides are constants (the result is one too).
        let rows = arrays[0].len();
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            out.push(self.combine(left.at(row), right.at(row))?);
        }
        let result = lists_from_shaped(out, dims).map_err(to_df)?;
        crate::call_args::result_of(result, constant)
    }
}

impl ArrayArithmetic {
    fn combine(&self, left: Value, right: Value) -> DfResult<Option<Shaped>> {
        let op = self.op;
        let element = |a: Option<f64>, b: Option<f64>| Some(op.apply(a?, b?));
        Ok(match (left, right) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Array(a), Value::Array(b)) => {
                if a.lens != b.lens {
                    return Err(to_df(shape_error(
                        Owner::Function(&format!("operator {}", self.symbol())),
                        format!(
                            "the arrays have different shapes ({} and {})",
                            shape(a),
                            shape(b)
                        ),
                    )));
                }
                Some(Shaped {
                    lens: a.lens.clone(),
                    values: a
                        .values
                        .iter()
                        .zip(&b.values)
                        .map(|(x, y)| element(*x, *y))
                        .collect(),
                })
            }
            (Value::Array(a), Value::Number(n)) => Some(Shaped {
                lens: a.lens.clone(),
                values: a.values.iter().map(|x| element(*x, Some(n))).collect(),
            }),
            (Value::Number(n), Value::Array(b)) => Some(Shaped {
                lens: b.lens.clone(),
                values: b.values.iter().map(|y| element(Some(n), *y)).collect(),
            }),
            (Value::Number(_), Value::Number(_)) => None,
        })
    }
}

/// `[2][3]`: an array's shape for messages.
fn shape(s: &Shaped) -> String {
    s.lens.iter().map(|l| format!("[{l}]")).collect()
}

/// One side of the operator: arrays per row, or numbers per row.
enum Operand {
    Arrays(Vec<Option<Shaped>>),
    Numbers(Vec<Option<f64>>),
}

enum Value<'a> {
    Null,
    Array(&'a Shaped),
    Number(f64),
}

impl Operand {
    fn of(array: &ArrayRef) -> DfResult<Operand> {
        if depth(array.data_type()) > 0 {
            return Ok(Operand::Arrays(
                shaped_rows(array, Owner::Function("array arithmetic")).map_err(to_df)?,
            ));
        }
        let numbers = cast(array, &DataType::Float64)?;
        Ok(Operand::Numbers(
            numbers.as_primitive::<Float64Type>().iter().collect(),
        ))
    }

    fn at(&self, row: usize) -> Value<'_> {
        match self {
            Operand::Arrays(a) => a[row].as_ref().map_or(Value::Null, Value::Array),
            Operand::Numbers(n) => n[row].map_or(Value::Null, Value::Number),
        }
    }
}
