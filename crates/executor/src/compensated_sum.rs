//! QuestDB's compensated sums of DOUBLE values: `ksum(x)` (Kahan) and
//! `nsum(x)` (Neumaier). They carry the low-order bits that a plain running
//! sum drops, so a sum of many values of different magnitudes stays exact
//! where `sum` drifts. NULLs are skipped; no values give NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Accumulator, Volatility, create_udaf};
use datafusion::prelude::SessionContext;

#[derive(Debug, Clone, Copy)]
enum Method {
    Kahan,
    Neumaier,
}

pub(crate) fn register(ctx: &SessionContext) {
    for (name, method) in [("ksum", Method::Kahan), ("nsum", Method::Neumaier)] {
        ctx.register_udaf(create_udaf(
            name,
            vec![DataType::Float64],
            Arc::new(DataType::Float64),
            Volatility::Immutable,
            Arc::new(move |_| Ok(Box::new(CompensatedSum::new(method)))),
            // The running sum, its compensation, and whether any value was seen.
            Arc::new(vec![
                DataType::Float64,
                DataType::Float64,
                DataType::Boolean,
            ]),
        ));
    }
}

#[derive(Debug)]
struct CompensatedSum {
    method: Method,
    sum: f64,
    compensation: f64,
    seen: bool,
}

impl CompensatedSum {
    fn new(method: Method) -> Self {
        CompensatedSum {
            method,
            sum: 0.0,
            compensation: 0.0,
            seen: false,
        }
    }

    fn add(&mut self, x: f64) {
        match self.method {
            Method::Kahan => {
                // The compensation holds what the last addition lost (negated).
                let y = x - self.compensation;
                let t = self.sum + y;
                self.compensation = (t - self.sum) - y;
                self.sum = t;
            }
            Method::Neumaier => {
                // Whichever operand is smaller in magnitude lost its low bits.
                let t = self.sum + x;
                self.compensation += if self.sum.abs() >= x.abs() {
                    (self.sum - t) + x
                } else {
                    (x - t) + self.sum
                };
                self.sum = t;
            }
        }
        self.seen = true;
    }

    /// The sum with the compensation applied.
    fn total(&self) -> f64 {
        self.sum + correction(self.method, self.compensation)
    }
}

/// What a sum's `compensation` adds to its running `sum`: Kahan keeps the
/// lost bits negated, Neumaier as they are.
fn correction(method: Method, compensation: f64) -> f64 {
    match method {
        Method::Kahan => -compensation,
        Method::Neumaier => compensation,
    }
}

impl Accumulator for CompensatedSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let values = values
            .first()
            .ok_or_else(|| DataFusionError::Internal("a compensated sum takes one value".into()))?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| DataFusionError::Internal("a compensated sum adds DOUBLE".into()))?;
        for x in values.iter().flatten() {
            self.add(x);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Float64(self.seen.then(|| self.total())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(Some(self.sum)),
            ScalarValue::Float64(Some(self.compensation)),
            ScalarValue::Boolean(Some(self.seen)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let [sums, compensations, seen] = states else {
            return Err(DataFusionError::Internal(
                "a compensated sum's state has three fields".into(),
            ));
        };
        let (Some(sums), Some(compensations), Some(seen)) = (
            sums.as_primitive_opt::<Float64Type>(),
            compensations.as_primitive_opt::<Float64Type>(),
            seen.as_boolean_opt(),
        ) else {
            return Err(DataFusionError::Internal(
                "a compensated sum's state has the wrong types".into(),
            ));
        };
        for i in 0..seen.len() {
            if seen.is_valid(i) && seen.value(i) {
                // Both parts of the other sum, each added with compensation
                // (the correction taken as stored, not as a difference of
                // totals, which would round it away next to a large sum).
                self.add(sums.value(i));
                self.add(correction(self.method, compensations.value(i)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(method: Method, values: &[f64]) -> f64 {
        let mut s = CompensatedSum::new(method);
        for &v in values {
            s.add(v);
        }
        s.total()
    }

    #[test]
    fn compensated_sums_keep_what_a_plain_sum_drops() {
        // 1 + 1e100 + 1 - 1e100 is 2; a plain running sum says 0.
        let values = [1.0, 1e100, 1.0, -1e100];
        assert_eq!(values.iter().sum::<f64>(), 0.0);
        assert_eq!(sum_of(Method::Neumaier, &values), 2.0);
        // Ten million times 0.1: Kahan lands on the nearest double to 1e6.
        let tenths = vec![0.1; 10_000_000];
        assert_ne!(tenths.iter().sum::<f64>(), 1_000_000.0);
        assert_eq!(sum_of(Method::Kahan, &tenths), 1_000_000.0);
        assert_eq!(sum_of(Method::Neumaier, &tenths), 1_000_000.0);
    }

    /// A partial sum's state as the arrays a merge receives.
    fn state_arrays(partial: &mut CompensatedSum) -> Vec<ArrayRef> {
        partial
            .state()
            .expect("state")
            .into_iter()
            .map(|v| v.to_array().expect("array"))
            .collect()
    }

    #[test]
    fn a_merge_keeps_a_correction_far_below_the_sum() {
        for method in [Method::Kahan, Method::Neumaier] {
            let mut left = CompensatedSum::new(method);
            let mut right = CompensatedSum::new(method);
            right.add(1e6);
            right.add(1e-12);
            right.add(1e-12);
            left.merge_batch(&state_arrays(&mut right)).expect("merge");
            // The bits 1e6 could not hold arrive with the merged sum.
            assert_eq!(correction(method, left.compensation), 2e-12, "{method:?}");
        }
        // Neumaier's correction also survives a large addend that cancels the sum.
        let mut merged = CompensatedSum::new(Method::Neumaier);
        merged
            .merge_batch(&[
                Arc::new(datafusion::arrow::array::Float64Array::from(vec![1e6])) as ArrayRef,
                Arc::new(datafusion::arrow::array::Float64Array::from(vec![2e-12])),
                Arc::new(datafusion::arrow::array::BooleanArray::from(vec![true])),
            ])
            .expect("merge");
        merged.add(-1e6);
        assert_eq!(merged.total(), 2e-12);
    }

    #[test]
    fn merged_partial_sums_agree_with_one_pass() {
        for method in [Method::Kahan, Method::Neumaier] {
            let values: Vec<f64> = (0..10_000).map(|i| 0.1 + f64::from(i) * 1e-3).collect();
            let whole = sum_of(method, &values);
            let mut left = CompensatedSum::new(method);
            let mut right = CompensatedSum::new(method);
            for (i, &v) in values.iter().enumerate() {
                if i % 2 == 0 {
                    left.add(v)
                } else {
                    right.add(v)
                }
            }
            left.merge_batch(&state_arrays(&mut right)).expect("merge");
            assert!((left.total() - whole).abs() <= whole * 1e-15, "{method:?}");
        }
    }
}
