//! The arguments of Tidemark's scalar functions as arrays.

use datafusion::arrow::array::ArrayRef;
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::ScalarFunctionArgs;

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
