//! QuestDB's finance functions, over DOUBLE values (other numbers are cast):
//! - `mid(bid, ask)`: the midpoint;
//! - `spread_bps(bid, ask)`: `(ask - bid) / mid(bid, ask)` in basis points;
//! - `wmid(bid_size, bid, ask, ask_size)`: the mid weighted by the sizes,
//!   `ask * i + bid * (1 - i)` with `i = bid_size / (bid_size + ask_size)`;
//! - `l2price(target, size_1, price_1, ..., size_n, price_n)` and
//!   `l2price(target, sizes[], prices[])`: the average price of a market order
//!   of `target` filled level by level against one side of an order book.
//!
//! A NULL or NaN input gives NULL, as does an order the book cannot fill.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result as DfResult, exec_err, plan_err};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::types::list_depth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    Mid,
    SpreadBps,
    Wmid,
    L2Price,
}

pub(crate) fn register(ctx: &SessionContext) {
    for function in [
        Function::Mid,
        Function::SpreadBps,
        Function::Wmid,
        Function::L2Price,
    ] {
        ctx.register_udf(ScalarUDF::from(Finance {
            function,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Finance {
    function: Function,
    signature: Signature,
}

/// Whether `t` is a number (or NULL) that casts to DOUBLE.
fn numeric(t: &DataType) -> bool {
    t.is_numeric() || t.is_null()
}

impl ScalarUDFImpl for Finance {
    fn name(&self) -> &str {
        match self.function {
            Function::Mid => "mid",
            Function::SpreadBps => "spread_bps",
            Function::Wmid => "wmid",
            Function::L2Price => "l2price",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let doubles = || vec![DataType::Float64; args.len()];
        let all_numeric = args.iter().all(numeric);
        match self.function {
            Function::Mid | Function::SpreadBps if args.len() == 2 && all_numeric => Ok(doubles()),
            Function::Wmid if args.len() == 4 && all_numeric => Ok(doubles()),
            Function::L2Price
                if args.len() == 3
                    && numeric(&args[0])
                    && list_depth(&args[1]) == 1
                    && list_depth(&args[2]) == 1 =>
            {
                let list = DataType::new_list(DataType::Float64, true);
                Ok(vec![DataType::Float64, list.clone(), list])
            }
            Function::L2Price if args.len() >= 3 && args.len() % 2 == 1 && all_numeric => {
                Ok(doubles())
            }
            _ => plan_err!(
                "{} takes {}",
                self.name(),
                match self.function {
                    Function::Mid | Function::SpreadBps => "(bid, ask) numbers",
                    Function::Wmid => "(bid_size, bid, ask, ask_size) numbers",
                    Function::L2Price =>
                        "(target, size_1, price_1, ..., size_n, price_n) numbers or \
                         (target, sizes DOUBLE[], prices DOUBLE[])",
                }
            ),
        }
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let (arrays, constant) = crate::call_args::arrays_or_constants(&args)?;
        // One row when every argument is a constant (the result is one too).
        let rows = arrays.first().map_or(args.number_rows, |a| a.len());
        let out: Float64Array = if self.function == Function::L2Price
            && matches!(
                arrays.get(1).map(|a| a.data_type()),
                Some(DataType::List(_))
            ) {
            l2price_of_arrays(&arrays, rows)?
        } else {
            let columns = arrays
                .iter()
                .map(|a| cast(a, &DataType::Float64))
                .collect::<Result<Vec<_>, _>>()?;
            let columns: Vec<&Float64Array> = columns
                .iter()
                .map(|c| c.as_primitive::<Float64Type>())
                .collect();
            let mut values = Vec::with_capacity(columns.len());
            (0..rows)
                .map(|row| {
                    values.clear();
                    for c in &columns {
                        if c.is_null(row) || c.value(row).is_nan() {
                            return None;
                        }
                        values.push(c.value(row));
                    }
                    self.compute(&values)
                })
                .collect()
        };
        crate::call_args::result_of(Arc::new(out), constant)
    }
}

impl Finance {
    /// The function of one row's values (none NULL or NaN).
    fn compute(&self, v: &[f64]) -> Option<f64> {
        let finite = |x: f64| x.is_finite().then_some(x);
        match (self.function, v) {
            (Function::Mid, [bid, ask]) => finite((bid + ask) / 2.0),
            (Function::SpreadBps, [bid, ask]) => finite((ask - bid) / ((bid + ask) / 2.0) * 1e4),
            (Function::Wmid, [bid_size, bid, ask, ask_size]) => {
                let imbalance = bid_size / (bid_size + ask_size);
                finite(ask * imbalance + bid * (1.0 - imbalance))
            }
            (Function::L2Price, [target, levels @ ..]) => l2price(
                *target,
                levels.chunks_exact(2).map(|level| (level[0], level[1])),
            ),
            _ => None,
        }
    }
}

/// The average price of filling `target` level by level; `None` when the
/// levels hold less than `target` (or `target` is not positive).
fn l2price(target: f64, levels: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    if target <= 0.0 {
        return None;
    }
    let (mut left, mut cost) = (target, 0.0);
    for (size, price) in levels {
        let take = size.min(left).max(0.0);
        cost += take * price;
        left -= take;
        if left <= 0.0 {
            return Some(cost / target);
        }
    }
    None
}

/// `l2price(target, sizes[], prices[])` per row: arrays of the same length,
/// no NULL or NaN element.
fn l2price_of_arrays(arrays: &[ArrayRef], rows: usize) -> DfResult<Float64Array> {
    let [target, sizes, prices] = arrays else {
        return exec_err!("l2price takes a target and two arrays");
    };
    let target = cast(target, &DataType::Float64)?;
    let target = target.as_primitive::<Float64Type>();
    let (sizes, prices) = (sizes.as_list::<i32>(), prices.as_list::<i32>());
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        if target.is_null(row) || sizes.is_null(row) || prices.is_null(row) {
            out.push(None);
            continue;
        }
        let (s, p) = (sizes.value(row), prices.value(row));
        let (s, p) = (
            s.as_primitive::<Float64Type>(),
            p.as_primitive::<Float64Type>(),
        );
        if s.len() != p.len() {
            return exec_err!(
                "l2price: the size and price arrays differ in length ({} and {})",
                s.len(),
                p.len()
            );
        }
        let complete = (0..s.len()).all(|i| {
            s.is_valid(i) && p.is_valid(i) && !s.value(i).is_nan() && !p.value(i).is_nan()
        });
        out.push(if complete {
            l2price(
                target.value(row),
                (0..s.len()).map(|i| (s.value(i), p.value(i))),
            )
        } else {
            None
        });
    }
    Ok(Float64Array::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_fills_level_by_level() {
        // QuestDB's example: 14 at 14.50, 16 at 14.60, 20 of 23 at 14.80.
        let ask = [(14.0, 14.50), (16.0, 14.60), (23.0, 14.80), (12.0, 15.10)];
        let price = l2price(50.0, ask.into_iter()).expect("filled");
        assert!((price - 14.652).abs() < 1e-12, "{price}");
        // More than the book holds, or nothing to fill: no price.
        assert_eq!(l2price(100.0, ask.into_iter()), None);
        assert_eq!(l2price(0.0, ask.into_iter()), None);
    }
}
