//! QuestDB's `mode(x)`: the most frequent value of a group, of any type, NULLs
//! skipped. Of values equally frequent the greatest wins, so the answer does
//! not depend on the order rows arrive in (QuestDB documents `true` for a tie
//! of booleans, which this rule gives, and leaves other ties unspecified).
//!
//! Written here because the `datafusion-extra-functions` crate that has one
//! pins another DataFusion release than ours. The counts are kept per distinct
//! value, so memory grows with the distinct values of a group, as for
//! `count(DISTINCT x)`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::from(Mode {
        signature: Signature::any(1, Volatility::Immutable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Mode {
    signature: Signature,
}

impl AggregateUDFImpl for Mode {
    fn name(&self) -> &str {
        "mode"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        arg_types
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan("mode takes one argument".into()))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(ModeAccumulator {
            data_type: args.return_field.data_type().clone(),
            counts: HashMap::new(),
        }))
    }

    /// A partial result: the distinct values seen and how often each was.
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let item = |t: DataType| Arc::new(Field::new_list_field(t, true));
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[values]", args.name),
                DataType::List(item(args.return_type().clone())),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[counts]", args.name),
                DataType::List(item(DataType::UInt64)),
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct ModeAccumulator {
    data_type: DataType,
    counts: HashMap<ScalarValue, u64>,
}

impl ModeAccumulator {
    fn count(&mut self, values: &ArrayRef, times: impl Fn(usize) -> u64) -> DfResult<()> {
        for i in 0..values.len() {
            if values.is_valid(i) {
                *self
                    .counts
                    .entry(ScalarValue::try_from_array(values, i)?)
                    .or_default() += times(i);
            }
        }
        Ok(())
    }
}

fn state_error() -> DataFusionError {
    DataFusionError::Internal("mode's state is a list of values and a list of counts".into())
}

impl Accumulator for ModeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let values = values
            .first()
            .ok_or_else(|| DataFusionError::Internal("mode takes one value".into()))?;
        self.count(values, |_| 1)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let mut best: Option<(&ScalarValue, u64)> = None;
        for (value, &count) in &self.counts {
            let better = best.is_none_or(|(b, c)| {
                count > c
                    || (count == c && value.partial_cmp(b) == Some(std::cmp::Ordering::Greater))
            });
            if better {
                best = Some((value, count));
            }
        }
        match best {
            Some((value, _)) => Ok(value.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .counts
                .keys()
                .map(|k| k.size() + std::mem::size_of::<u64>())
                .sum::<usize>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let (values, counts): (Vec<ScalarValue>, Vec<ScalarValue>) = self
            .counts
            .iter()
            .map(|(v, &c)| (v.clone(), ScalarValue::UInt64(Some(c))))
            .unzip();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.data_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::UInt64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let [values, counts] = states else {
            return Err(state_error());
        };
        let (Some(values), Some(counts)) =
            (values.as_list_opt::<i32>(), counts.as_list_opt::<i32>())
        else {
            return Err(state_error());
        };
        for row in 0..values.len() {
            if !values.is_valid(row) || !counts.is_valid(row) {
                continue;
            }
            let row_counts = counts.value(row);
            let row_counts = row_counts
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(state_error)?;
            self.count(&values.value(row), |i| row_counts.value(i))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int64Array, StringArray};

    fn mode_of(data_type: DataType, batches: &[ArrayRef]) -> ScalarValue {
        let mut acc = ModeAccumulator {
            data_type,
            counts: HashMap::new(),
        };
        for b in batches {
            acc.update_batch(std::slice::from_ref(b)).expect("update");
        }
        acc.evaluate().expect("evaluate")
    }

    #[test]
    fn the_most_frequent_value_wins_and_ties_go_to_the_greatest() {
        let words: ArrayRef = Arc::new(StringArray::from(vec![
            Some("beta"),
            None,
            Some("alpha"),
            Some("beta"),
            None,
            None,
        ]));
        assert_eq!(mode_of(DataType::Utf8, &[words]), ScalarValue::from("beta"));
        let flags: ArrayRef = Arc::new(BooleanArray::from(vec![false, true, true, false]));
        assert_eq!(
            mode_of(DataType::Boolean, &[flags]),
            ScalarValue::Boolean(Some(true))
        );
        let none: ArrayRef = Arc::new(Int64Array::from(vec![None, None]));
        assert_eq!(mode_of(DataType::Int64, &[none]), ScalarValue::Int64(None));
    }

    #[test]
    fn merged_partial_counts_agree_with_one_pass() {
        // 7 is most frequent only when both halves are counted together.
        let left: ArrayRef = Arc::new(Int64Array::from(vec![7, 7, 1, 1, 1]));
        let right: ArrayRef = Arc::new(Int64Array::from(vec![7, 7, 2]));
        let mut partial = ModeAccumulator {
            data_type: DataType::Int64,
            counts: HashMap::new(),
        };
        partial.update_batch(&[right]).expect("update");
        let state: Vec<ArrayRef> = partial
            .state()
            .expect("state")
            .into_iter()
            .map(|v| v.to_array().expect("array"))
            .collect();
        let mut merged = ModeAccumulator {
            data_type: DataType::Int64,
            counts: HashMap::new(),
        };
        merged.update_batch(&[left]).expect("update");
        assert_eq!(
            merged.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(1))
        );
        merged.merge_batch(&state).expect("merge");
        assert_eq!(
            merged.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(7))
        );
    }
}
