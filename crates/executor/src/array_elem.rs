//! QuestDB's element-wise array aggregates `array_elem_min`, `array_elem_max`,
//! `array_elem_sum` and `array_elem_avg`: position by position over arrays,
//! either across the rows of a group (`array_elem_sum(bids)` with GROUP BY or
//! SAMPLE BY) or across the arguments of one row (`array_elem_sum(a, b, c)`).
//! Arrays of different lengths combine into the per-dimension largest shape;
//! NULL arrays and elements that are not finite (NULL, NaN, infinities) are
//! skipped, and a position that received no finite element is NULL. Sums and
//! averages are Kahan-compensated.
//!
//! DataFusion resolves a name to a scalar function before an aggregate, so the
//! aggregates own the names and a call with two or more arguments is renamed
//! to its row form (`array_elem_sum_of_arguments`) before planning
//! (`questdb_functions.rs`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};

use crate::double_array::{Owner, Shaped, arrow_type, lists_from_shaped, shaped_rows};
use crate::provider::to_df;
use crate::questdb_arrays::argument_error;
use crate::types::list_depth as depth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Min,
    Max,
    Sum,
    Avg,
}

const FUNCTIONS: [(&str, Op); 4] = [
    ("array_elem_min", Op::Min),
    ("array_elem_max", Op::Max),
    ("array_elem_sum", Op::Sum),
    ("array_elem_avg", Op::Avg),
];

/// The suffix of a row form's name: `array_elem_sum` of two or more arguments
/// is planned as `array_elem_sum_of_arguments`.
pub(crate) const ROW_FORM_SUFFIX: &str = "_of_arguments";

/// Whether `name` is one of the aggregates here.
pub(crate) fn is_element_wise(name: &str) -> bool {
    FUNCTIONS.iter().any(|(n, _)| *n == name)
}

pub(crate) fn register(ctx: &SessionContext) {
    for (name, op) in FUNCTIONS {
        ctx.register_udaf(AggregateUDF::from(ElementWiseAggregate {
            name,
            op,
            signature: Signature::any(1, Volatility::Immutable),
        }));
        ctx.register_udf(ScalarUDF::from(ElementWiseOfArguments {
            name: format!("{name}{ROW_FORM_SUFFIX}"),
            op,
            signature: Signature::variadic_any(Volatility::Immutable),
        }));
    }
}

/// The result type: the arrays' own, with DOUBLE elements.
fn result_type(function: &str, args: &[DataType]) -> DfResult<DataType> {
    let dims = args.iter().map(depth).max().unwrap_or(0);
    let same = args.iter().all(|t| t.is_null() || depth(t) == dims);
    let numbers = args
        .iter()
        .all(|t| t.is_null() || crate::types::innermost_element(t).is_numeric());
    if dims == 0 || !same || !numbers {
        return Err(argument_error(
            function,
            args,
            "the arguments must be DOUBLE[] arrays of the same number of dimensions",
        ));
    }
    Ok(arrow_type(dims))
}

/// The running state of one position-by-position aggregate.
#[derive(Debug, Default, Clone, PartialEq)]
struct Elementwise {
    /// The largest length per dimension seen so far (empty: nothing yet).
    shape: Vec<usize>,
    /// Per position: the min, max or (compensated) sum.
    value: Vec<f64>,
    /// Per position: what the last Kahan addition lost, negated.
    compensation: Vec<f64>,
    /// Per position: how many finite elements it received.
    count: Vec<u64>,
}

impl Elementwise {
    /// Grows the state to the per-dimension largest of its shape and `lens`,
    /// moving every position to its place in the new shape.
    fn grow(&mut self, lens: &[usize]) {
        if self.shape.is_empty() {
            self.shape = lens.to_vec();
            let n = lens.iter().product();
            self.value = vec![0.0; n];
            self.compensation = vec![0.0; n];
            self.count = vec![0; n];
            return;
        }
        let shape: Vec<usize> = self
            .shape
            .iter()
            .zip(lens)
            .map(|(a, b)| *a.max(b))
            .collect();
        if shape == self.shape {
            return;
        }
        let n = shape.iter().product();
        let mut grown = Elementwise {
            shape,
            value: vec![0.0; n],
            compensation: vec![0.0; n],
            count: vec![0; n],
        };
        for (from, to) in positions(&self.shape, &grown.shape).enumerate() {
            grown.value[to] = self.value[from];
            grown.compensation[to] = self.compensation[from];
            grown.count[to] = self.count[from];
        }
        *self = grown;
    }

    /// Takes one array in, position by position.
    fn add(&mut self, op: Op, s: &Shaped) {
        let lens: Vec<usize> = s.lens.iter().map(|l| *l as usize).collect();
        self.grow(&lens);
        let targets: Vec<usize> = positions(&lens, &self.shape).collect();
        for (x, at) in s.values.iter().zip(targets) {
            if let Some(x) = x.filter(|x| x.is_finite()) {
                self.put(op, at, x, 0.0, 1);
            }
        }
    }

    /// Folds `x` (with its own compensation and count) into position `at`.
    fn put(&mut self, op: Op, at: usize, x: f64, compensation: f64, count: u64) {
        let first = self.count[at] == 0;
        self.count[at] += count;
        match op {
            Op::Min if first || x < self.value[at] => self.value[at] = x,
            Op::Max if first || x > self.value[at] => self.value[at] = x,
            Op::Min | Op::Max => {}
            Op::Sum | Op::Avg => {
                for part in [x, -compensation] {
                    let y = part - self.compensation[at];
                    let t = self.value[at] + y;
                    self.compensation[at] = (t - self.value[at]) - y;
                    self.value[at] = t;
                }
            }
        }
    }

    fn merge(&mut self, op: Op, other: &Elementwise) {
        if other.shape.is_empty() {
            return;
        }
        self.grow(&other.shape);
        let targets: Vec<usize> = positions(&other.shape, &self.shape).collect();
        for (from, at) in targets.into_iter().enumerate() {
            if other.count[from] > 0 {
                self.put(
                    op,
                    at,
                    other.value[from],
                    other.compensation[from],
                    other.count[from],
                );
            }
        }
    }

    /// The result array; `None` when no array was seen.
    fn result(&self, op: Op) -> Option<Shaped> {
        if self.shape.is_empty() {
            return None;
        }
        let values = (0..self.value.len())
            .map(|i| {
                (self.count[i] > 0).then(|| match op {
                    Op::Avg => self.value[i] / self.count[i] as f64,
                    _ => self.value[i],
                })
            })
            .collect();
        Some(Shaped {
            lens: self.shape.iter().map(|l| *l as u32).collect(),
            values,
        })
    }

    /// The state as bytes (for partial aggregates): the number of dimensions
    /// and each length (u64), then value, compensation and count per position.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.shape.len() * 8 + self.value.len() * 24);
        out.extend_from_slice(&(self.shape.len() as u64).to_le_bytes());
        for l in &self.shape {
            out.extend_from_slice(&(*l as u64).to_le_bytes());
        }
        for i in 0..self.value.len() {
            out.extend_from_slice(&self.value[i].to_le_bytes());
            out.extend_from_slice(&self.compensation[i].to_le_bytes());
            out.extend_from_slice(&self.count[i].to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> DfResult<Elementwise> {
        let mut words = bytes
            .chunks_exact(8)
            .map(|c| <[u8; 8]>::try_from(c).unwrap_or_default());
        let mut next = || words.next();
        let bad = || exec_err!("element-wise aggregate: a damaged partial state");
        let Some(dims) = next().map(u64::from_le_bytes) else {
            return bad();
        };
        let mut s = Elementwise::default();
        if dims == 0 {
            // Nothing was seen.
            return if bytes.len() == 8 { Ok(s) } else { bad() };
        }
        for _ in 0..dims {
            let Some(l) = next().map(u64::from_le_bytes) else {
                return bad();
            };
            s.shape.push(l as usize);
        }
        let n: usize = s.shape.iter().product();
        if bytes.len() != 8 * (1 + dims as usize) + 24 * n {
            return bad();
        }
        for _ in 0..n {
            match (next(), next(), next()) {
                (Some(v), Some(c), Some(k)) => {
                    s.value.push(f64::from_le_bytes(v));
                    s.compensation.push(f64::from_le_bytes(c));
                    s.count.push(u64::from_le_bytes(k));
                }
                _ => return bad(),
            }
        }
        Ok(s)
    }
}

/// For each position of an array of shape `from`, row-major, its index in an
/// array of shape `to` (at least as large in every dimension).
fn positions<'a>(from: &'a [usize], to: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let total: usize = from.iter().product();
    let mut coords = vec![0usize; from.len()];
    (0..total).map(move |_| {
        let at = coords
            .iter()
            .zip(to)
            .fold(0usize, |index, (c, len)| index * len + c);
        for d in (0..coords.len()).rev() {
            coords[d] += 1;
            if coords[d] < from[d] {
                break;
            }
            coords[d] = 0;
        }
        at
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ElementWiseAggregate {
    name: &'static str,
    op: Op,
    signature: Signature,
}

impl AggregateUDFImpl for ElementWiseAggregate {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        result_type(self.name, args)
    }
    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(ElementWiseAccumulator {
            op: self.op,
            dims: depth(args.return_field.data_type()),
            state: Elementwise::default(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[state]", args.name),
            DataType::Binary,
            true,
        ))])
    }
}

#[derive(Debug)]
struct ElementWiseAccumulator {
    op: Op,
    dims: usize,
    state: Elementwise,
}

impl Accumulator for ElementWiseAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let Some(arrays) = values.first() else {
            return exec_err!("an element-wise aggregate takes one array");
        };
        let rows = shaped_rows(arrays, Owner::Function("array_elem")).map_err(to_df)?;
        for s in rows.iter().flatten() {
            self.state.add(self.op, s);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let array =
            lists_from_shaped(vec![self.state.result(self.op)], self.dims).map_err(to_df)?;
        ScalarValue::try_from_array(&array, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.state.value.len() * 24 + self.state.shape.len() * 8
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.state.encode()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(states) = states.first().and_then(|s| s.as_binary_opt::<i32>()) else {
            return exec_err!("an element-wise aggregate's state is one binary value");
        };
        let states: &BinaryArray = states;
        for i in 0..states.len() {
            if states.is_valid(i) {
                self.state
                    .merge(self.op, &Elementwise::decode(states.value(i))?);
            }
        }
        Ok(())
    }
}

/// The row form: position by position over the arguments of one row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ElementWiseOfArguments {
    name: String,
    op: Op,
    signature: Signature,
}

impl ScalarUDFImpl for ElementWiseOfArguments {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        result_type(self.name.trim_end_matches(ROW_FORM_SUFFIX), args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let dims = depth(args.return_field.data_type());
        let arrays = crate::call_args::arrays_of(&args)?;
        let owner = Owner::Function(self.name.trim_end_matches(ROW_FORM_SUFFIX));
        let inputs = arrays
            .iter()
            .map(|a| shaped_rows(a, owner).map_err(to_df))
            .collect::<DfResult<Vec<_>>>()?;
        let rows = (0..args.number_rows)
            .map(|row| {
                let mut state = Elementwise::default();
                for s in inputs.iter().filter_map(|input| input[row].as_ref()) {
                    state.add(self.op, s);
                }
                state.result(self.op)
            })
            .collect();
        let out = lists_from_shaped(rows, dims).map_err(to_df)?;
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::double_array::shaped_of as shaped;

    #[test]
    fn shapes_grow_to_the_largest_length_per_dimension() {
        let mut s = Elementwise::default();
        s.add(Op::Sum, &shaped(&[1, 2], &[1., 2.]));
        s.add(Op::Sum, &shaped(&[2, 1], &[10., 20.]));
        // [[1, 2]] + [[10], [20]] = [[11, 2], [20, NULL]]
        let r = s.result(Op::Sum).expect("a result");
        assert_eq!(r.lens, vec![2, 2]);
        assert_eq!(r.values, vec![Some(11.), Some(2.), Some(20.), None]);
    }

    #[test]
    fn non_finite_elements_are_skipped() {
        let mut s = Elementwise::default();
        s.add(Op::Avg, &shaped(&[3], &[1., f64::NAN, f64::INFINITY]));
        s.add(Op::Avg, &shaped(&[3], &[3., 5., f64::NAN]));
        let r = s.result(Op::Avg).expect("a result");
        assert_eq!(r.values, vec![Some(2.), Some(5.), None]);
    }

    #[test]
    fn partial_states_merge_to_the_whole() {
        let arrays = [
            shaped(&[2], &[1., 5.]),
            shaped(&[3], &[4., 2., 7.]),
            shaped(&[1], &[-1.]),
        ];
        for op in [Op::Min, Op::Max, Op::Sum, Op::Avg] {
            let mut whole = Elementwise::default();
            arrays.iter().for_each(|a| whole.add(op, a));
            let (mut left, mut right) = (Elementwise::default(), Elementwise::default());
            left.add(op, &arrays[0]);
            right.add(op, &arrays[1]);
            right.add(op, &arrays[2]);
            let decoded = Elementwise::decode(&right.encode()).expect("decodes");
            assert_eq!(decoded, right);
            left.merge(op, &decoded);
            assert_eq!(left.result(op), whole.result(op), "{op:?}");
        }
        assert!(Elementwise::decode(&[1, 2, 3]).is_err());
        let nothing = Elementwise::default();
        assert_eq!(Elementwise::decode(&nothing.encode()).ok(), Some(nothing));
    }
}
