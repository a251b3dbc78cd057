//! The arguments of Tidemark's scalar functions as arrays.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

/// Every argument as an array of `args.number_rows` rows, a constant repeated.
/// (DataFusion's `ColumnarValue::values_to_arrays` gives one row when every
/// argument is a constant, as when they come from scalar subqueries, however
/// many rows the batch has: a function that walks `number_rows` rows needs
/// them all.)
pub(crate) fn arrays_of(args: &ScalarFunctionArgs) -> DfResult<Vec<ArrayRef>> {
    args.args
        .iter()
        .map(|a| a.to_array(args.number_rows))
        .collect()
}

/// A call's arguments as arrays of one length, and whether they are all
/// constants: then the arrays have one row and so must the result
/// ([`result_of`]), else the batch's rows.
pub(crate) fn arrays_or_constants(args: &ScalarFunctionArgs) -> DfResult<(Vec<ArrayRef>, bool)> {
    let constant = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    Ok((ColumnarValue::values_to_arrays(&args.args)?, constant))
}

/// A function's result: a constant when its arguments all were (`out` then
/// has one row), the array otherwise.
pub(crate) fn result_of(out: ArrayRef, constant: bool) -> DfResult<ColumnarValue> {
    Ok(if constant && out.len() == 1 {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}
