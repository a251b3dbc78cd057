//! QuestDB's aggregates over a series in time order, where each row counts
//! against the one before it:
//! - `twap(price, ts)`: the time-weighted average price, each price held until
//!   the next observation (the area under that step function over the time from
//!   the first to the last observation; the plain mean when they all share one
//!   instant);
//! - `haversine_dist_deg(lat, lon, ts)`: the distance travelled along the
//!   points, in kilometres (great circles on a sphere of QuestDB's radius,
//!   6371.088 km);
//! - `is_ordered(x, ts)`: whether `x` never decreases in time order (QuestDB's
//!   `isOrdered(x)`, written with the table's designated timestamp by
//!   `sample::rewrite_first_last`).
//!
//! The calls are planned with `ORDER BY ts` inside them (`questdb_functions`),
//! and `crate::path_order` makes DataFusion keep it, so each partial aggregate
//! sees its rows in time order and folds them into one run: its first and last observation and the sum of the steps between.
//! Partial results from other streams are runs too: merged, they are put in
//! time order and the step between each pair is added, so the state of a group
//! is a few numbers whatever its size. Runs that overlap in time cannot be
//! joined exactly (the steps inside them would interleave), and are refused
//! rather than answered wrongly; rows with a NULL (or NaN) value or time are
//! skipped, as QuestDB skips them.

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::error::{ExecError, sqlstate};

/// The aggregates of this module, which `crate::path_order` gives their rows in
/// time order.
pub(crate) const PATH_AGGREGATES: [&str; 3] = [Twap::NAME, Haversine::NAME, Ordered::NAME];

pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::from(PathAggregate::<Twap>::new()));
    ctx.register_udaf(AggregateUDF::from(PathAggregate::<Haversine>::new()));
    ctx.register_udaf(AggregateUDF::from(PathAggregate::<Ordered>::new()));
}

/// What one of these aggregates adds up along the series.
trait Path: Debug + Default + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// What is observed at one instant.
    type Point: Copy + Debug + Send + Sync;
    /// What a run of observations adds up to.
    type Sum: Copy + Debug + Send + Sync;

    const NAME: &'static str;
    /// The arguments, the time last.
    const ARITY: usize;
    /// How the call is written, for errors.
    const SIGNATURE: &'static str;
    const RESULT: DataType;

    /// Whether the arguments (the time last) have types this aggregate reads.
    fn accepts(args: &[DataType]) -> bool;
    /// The arguments of a batch as the arrays `point` reads.
    fn columns(args: &[ArrayRef]) -> DfResult<Vec<ArrayRef>>;
    /// The point of `row`, `None` when a value is missing.
    fn point(columns: &[ArrayRef], row: usize) -> Option<Self::Point>;
    /// A point's own share of the sum.
    fn at(point: &Self::Point) -> Self::Sum;
    /// The share of the step from one observation to the next.
    fn between(from: (i64, &Self::Point), to: (i64, &Self::Point)) -> Self::Sum;
    fn join(a: &mut Self::Sum, b: &Self::Sum);
    fn result(run: &Run<Self>) -> ScalarValue;

    fn put_point(point: &Self::Point, out: &mut Vec<u8>);
    fn take_point(input: &mut &[u8]) -> Option<Self::Point>;
    fn put_sum(sum: &Self::Sum, out: &mut Vec<u8>);
    fn take_sum(input: &mut &[u8]) -> Option<Self::Sum>;
}

/// Observations in time order, summed up.
#[derive(Debug)]
struct Run<P: Path> {
    first: (i64, P::Point),
    last: (i64, P::Point),
    sum: P::Sum,
}

impl<P: Path> Clone for Run<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Path> Copy for Run<P> {}

impl<P: Path> Run<P> {
    fn start(time: i64, point: P::Point) -> Self {
        Run {
            first: (time, point),
            last: (time, point),
            sum: P::at(&point),
        }
    }

    /// Appends `other`, which starts no earlier than this run ends.
    fn append(&mut self, other: &Run<P>) {
        let step = P::between((self.last.0, &self.last.1), (other.first.0, &other.first.1));
        P::join(&mut self.sum, &step);
        P::join(&mut self.sum, &other.sum);
        self.last = other.last;
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.first.0.to_le_bytes());
        P::put_point(&self.first.1, out);
        out.extend_from_slice(&self.last.0.to_le_bytes());
        P::put_point(&self.last.1, out);
        P::put_sum(&self.sum, out);
    }

    fn take(input: &mut &[u8]) -> Option<Self> {
        let first = (take_i64(input)?, P::take_point(input)?);
        let last = (take_i64(input)?, P::take_point(input)?);
        Some(Run {
            first,
            last,
            sum: P::take_sum(input)?,
        })
    }
}

fn take_word(input: &mut &[u8]) -> Option<[u8; 8]> {
    let (word, rest) = input.split_first_chunk::<8>()?;
    *input = rest;
    Some(*word)
}

fn take_i64(input: &mut &[u8]) -> Option<i64> {
    take_word(input).map(i64::from_le_bytes)
}

fn take_f64(input: &mut &[u8]) -> Option<f64> {
    take_word(input).map(f64::from_le_bytes)
}

/// `Some(x)` for a value that is set and not NaN.
fn number(array: &ArrayRef, row: usize) -> Option<f64> {
    let values = array.as_primitive_opt::<Float64Type>()?;
    (values.is_valid(row) && !values.value(row).is_nan()).then(|| values.value(row))
}

fn integer(array: &ArrayRef, row: usize) -> Option<i64> {
    let values = array.as_primitive_opt::<Int64Type>()?;
    values.is_valid(row).then(|| values.value(row))
}

fn is_number(t: &DataType) -> bool {
    t.is_numeric() || t.is_null()
}

/// A type whose values order rows in time: timestamps of any unit, dates and
/// integers (their raw counts are compared, so the unit does not matter).
fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Null
    ) || t.is_integer()
}

fn as_f64(array: &ArrayRef) -> DfResult<ArrayRef> {
    Ok(cast(array, &DataType::Float64)?)
}

/// Times as their raw counts (microseconds, nanoseconds, days...).
fn as_i64(array: &ArrayRef) -> DfResult<ArrayRef> {
    let raw = match array.data_type() {
        DataType::Date32 => cast(array, &DataType::Int32)?,
        _ => Arc::clone(array),
    };
    Ok(cast(&raw, &DataType::Int64)?)
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct Twap;

/// The area under the step function, and the plain sum and count of the
/// prices for a series whose observations share one instant.
#[derive(Debug, Clone, Copy)]
struct TwapSum {
    area: f64,
    total: f64,
    count: f64,
}

impl Path for Twap {
    type Point = f64;
    type Sum = TwapSum;
    const NAME: &'static str = "twap";
    const ARITY: usize = 2;
    const SIGNATURE: &'static str = "twap(price, timestamp)";
    const RESULT: DataType = DataType::Float64;

    fn accepts(args: &[DataType]) -> bool {
        matches!(args, [price, time] if is_number(price) && is_time(time))
    }

    fn columns(args: &[ArrayRef]) -> DfResult<Vec<ArrayRef>> {
        Ok(vec![as_f64(&args[0])?])
    }

    fn point(columns: &[ArrayRef], row: usize) -> Option<f64> {
        number(&columns[0], row)
    }

    fn at(price: &f64) -> TwapSum {
        TwapSum {
            area: 0.0,
            total: *price,
            count: 1.0,
        }
    }

    fn between(from: (i64, &f64), to: (i64, &f64)) -> TwapSum {
        TwapSum {
            area: from.1 * (to.0 as f64 - from.0 as f64),
            total: 0.0,
            count: 0.0,
        }
    }

    fn join(a: &mut TwapSum, b: &TwapSum) {
        a.area += b.area;
        a.total += b.total;
        a.count += b.count;
    }

    fn result(run: &Run<Self>) -> ScalarValue {
        let span = run.last.0 as f64 - run.first.0 as f64;
        let twap = if span > 0.0 {
            run.sum.area / span
        } else {
            run.sum.total / run.sum.count
        };
        ScalarValue::Float64(Some(twap))
    }

    fn put_point(price: &f64, out: &mut Vec<u8>) {
        out.extend_from_slice(&price.to_le_bytes());
    }

    fn take_point(input: &mut &[u8]) -> Option<f64> {
        take_f64(input)
    }

    fn put_sum(sum: &TwapSum, out: &mut Vec<u8>) {
        for x in [sum.area, sum.total, sum.count] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn take_sum(input: &mut &[u8]) -> Option<TwapSum> {
        Some(TwapSum {
            area: take_f64(input)?,
            total: take_f64(input)?,
            count: take_f64(input)?,
        })
    }
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct Haversine;

/// QuestDB's radius of the Earth, in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.088;

/// The great-circle distance between two points given in degrees, in kilometres.
fn haversine_km(from: &(f64, f64), to: &(f64, f64)) -> f64 {
    let (lat1, lon1) = (from.0.to_radians(), from.1.to_radians());
    let (lat2, lon2) = (to.0.to_radians(), to.1.to_radians());
    let half_lat = ((lat2 - lat1) / 2.0).sin();
    let half_lon = ((lon2 - lon1) / 2.0).sin();
    let a = half_lat * half_lat + lat1.cos() * lat2.cos() * half_lon * half_lon;
    2.0 * EARTH_RADIUS_KM * a.sqrt().atan2((1.0 - a).sqrt())
}

impl Path for Haversine {
    type Point = (f64, f64);
    type Sum = f64;
    const NAME: &'static str = "haversine_dist_deg";
    const ARITY: usize = 3;
    const SIGNATURE: &'static str = "haversine_dist_deg(lat, lon, timestamp)";
    const RESULT: DataType = DataType::Float64;

    fn accepts(args: &[DataType]) -> bool {
        matches!(args, [lat, lon, time] if is_number(lat) && is_number(lon) && is_time(time))
    }

    fn columns(args: &[ArrayRef]) -> DfResult<Vec<ArrayRef>> {
        Ok(vec![as_f64(&args[0])?, as_f64(&args[1])?])
    }

    fn point(columns: &[ArrayRef], row: usize) -> Option<(f64, f64)> {
        Some((number(&columns[0], row)?, number(&columns[1], row)?))
    }

    fn at(_: &(f64, f64)) -> f64 {
        0.0
    }

    fn between(from: (i64, &(f64, f64)), to: (i64, &(f64, f64))) -> f64 {
        haversine_km(from.1, to.1)
    }

    fn join(a: &mut f64, b: &f64) {
        *a += b;
    }

    fn result(run: &Run<Self>) -> ScalarValue {
        ScalarValue::Float64(Some(run.sum))
    }

    fn put_point(point: &(f64, f64), out: &mut Vec<u8>) {
        out.extend_from_slice(&point.0.to_le_bytes());
        out.extend_from_slice(&point.1.to_le_bytes());
    }

    fn take_point(input: &mut &[u8]) -> Option<(f64, f64)> {
        Some((take_f64(input)?, take_f64(input)?))
    }

    fn put_sum(sum: &f64, out: &mut Vec<u8>) {
        out.extend_from_slice(&sum.to_le_bytes());
    }

    fn take_sum(input: &mut &[u8]) -> Option<f64> {
        take_f64(input)
    }
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct Ordered;

/// A float as an integer of the same order (`f64::total_cmp`'s), so that
/// integers, times and floats compare as one kind of key.
fn float_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

impl Path for Ordered {
    type Point = i64;
    type Sum = bool;
    const NAME: &'static str = "is_ordered";
    const ARITY: usize = 2;
    const SIGNATURE: &'static str = "isOrdered(column)";
    const RESULT: DataType = DataType::Boolean;

    fn accepts(args: &[DataType]) -> bool {
        matches!(args, [value, time] if (is_number(value) || is_time(value)) && is_time(time))
    }

    fn columns(args: &[ArrayRef]) -> DfResult<Vec<ArrayRef>> {
        let value = &args[0];
        let keys = if !value.data_type().is_integer() && !is_time(value.data_type()) {
            let floats = as_f64(value)?;
            let floats = floats.as_primitive::<Float64Type>();
            let keys: datafusion::arrow::array::Int64Array =
                floats.iter().map(|x| x.map(float_key)).collect();
            Arc::new(keys) as ArrayRef
        } else {
            as_i64(value)?
        };
        Ok(vec![keys])
    }

    fn point(columns: &[ArrayRef], row: usize) -> Option<i64> {
        integer(&columns[0], row)
    }

    fn at(_: &i64) -> bool {
        true
    }

    fn between(from: (i64, &i64), to: (i64, &i64)) -> bool {
        from.1 <= to.1
    }

    fn join(a: &mut bool, b: &bool) {
        *a = *a && *b;
    }

    fn result(run: &Run<Self>) -> ScalarValue {
        ScalarValue::Boolean(Some(run.sum))
    }

    fn put_point(key: &i64, out: &mut Vec<u8>) {
        out.extend_from_slice(&key.to_le_bytes());
    }

    fn take_point(input: &mut &[u8]) -> Option<i64> {
        take_i64(input)
    }

    fn put_sum(ordered: &bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&i64::from(*ordered).to_le_bytes());
    }

    fn take_sum(input: &mut &[u8]) -> Option<bool> {
        take_i64(input).map(|x| x != 0)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PathAggregate<P: Path> {
    signature: Signature,
    path: PhantomData<P>,
}

impl<P: Path> PathAggregate<P> {
    fn new() -> Self {
        PathAggregate {
            signature: Signature::variadic_any(Volatility::Immutable),
            path: PhantomData,
        }
    }
}

fn error(code: &'static str, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(ExecError::new(code, message)))
}

impl<P: Path> AggregateUDFImpl for PathAggregate<P> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        if P::accepts(arg_types) {
            return Ok(P::RESULT);
        }
        let given: Vec<String> = arg_types.iter().map(|t| t.to_string()).collect();
        Err(error(
            sqlstate::UNDEFINED_FUNCTION,
            format!(
                "function {}({}) does not exist: it is {}, with numbers for the values and a \
                 timestamp for the time",
                P::NAME,
                given.join(", "),
                P::SIGNATURE
            ),
        ))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(PathAccumulator::<P> { runs: Vec::new() }))
    }

    /// A partial result: its runs, encoded one after the other.
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[runs]", args.name),
            DataType::Binary,
            true,
        ))])
    }
}

#[derive(Debug)]
struct PathAccumulator<P: Path> {
    /// Runs that do not overlap, in time order once `settle` has run; while
    /// rows are added there is one.
    runs: Vec<Run<P>>,
}

impl<P: Path> PathAccumulator<P> {
    fn out_of_order(&self) -> DataFusionError {
        error(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "{}: the rows of a group reached it out of time order; it reads the rows of \
                 one table by its designated timestamp (over a join or subquery, order its \
                 rows by the timestamp given to it)",
                P::SIGNATURE
            ),
        )
    }

    /// Puts the runs in time order and joins them into one.
    fn settle(&mut self) -> DfResult<()> {
        if self.runs.len() < 2 {
            return Ok(());
        }
        self.runs.sort_by_key(|r| (r.first.0, r.last.0));
        let mut joined = self.runs[0];
        for next in &self.runs[1..] {
            if next.first.0 < joined.last.0 {
                return Err(self.out_of_order());
            }
            joined.append(next);
        }
        self.runs = vec![joined];
        Ok(())
    }
}

impl<P: Path> Accumulator for PathAccumulator<P> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        // The call's arguments, then the ORDER BY's columns.
        let (Some(args), Some(times)) = (values.get(..P::ARITY), values.get(P::ARITY - 1)) else {
            return Err(DataFusionError::Internal(format!(
                "{} takes {} arguments",
                P::NAME,
                P::ARITY
            )));
        };
        let columns = P::columns(args)?;
        let times = as_i64(times)?;
        let times = times.as_primitive::<Int64Type>();
        self.settle()?;
        for row in 0..times.len() {
            let (true, Some(point)) = (times.is_valid(row), P::point(&columns, row)) else {
                continue;
            };
            let time = times.value(row);
            let observed = Run::start(time, point);
            match self.runs.last_mut() {
                None => self.runs.push(observed),
                Some(run) if time >= run.last.0 => run.append(&observed),
                Some(_) => return Err(self.out_of_order()),
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        self.settle()?;
        match self.runs.first() {
            Some(run) => Ok(P::result(run)),
            None => ScalarValue::try_from(&P::RESULT),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.runs.capacity() * std::mem::size_of::<Run<P>>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        self.settle()?;
        let mut bytes = Vec::new();
        for run in &self.runs {
            run.put(&mut bytes);
        }
        Ok(vec![ScalarValue::Binary(Some(bytes))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let state_error =
            || DataFusionError::Internal(format!("{}'s partial result is not its runs", P::NAME));
        let runs: &BinaryArray = states
            .first()
            .and_then(|s| s.as_binary_opt::<i32>())
            .ok_or_else(state_error)?;
        for row in 0..runs.len() {
            if !runs.is_valid(row) {
                continue;
            }
            let mut input = runs.value(row);
            while !input.is_empty() {
                self.runs
                    .push(Run::take(&mut input).ok_or_else(state_error)?);
            }
        }
        // Joined as they come, so a group's state stays one run.
        self.settle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, TimestampMicrosecondArray};

    fn prices(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn times(values: &[i64]) -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(values.to_vec()))
    }

    fn twap_of(batches: &[(ArrayRef, ArrayRef)]) -> DfResult<ScalarValue> {
        let mut acc = PathAccumulator::<Twap> { runs: Vec::new() };
        for (p, t) in batches {
            acc.update_batch(&[Arc::clone(p), Arc::clone(t), Arc::clone(t)])?;
        }
        acc.evaluate()
    }

    #[test]
    fn twap_holds_each_price_until_the_next_observation() {
        // 10 for 1 s, 20 for 3 s, then 40 at the end: (10 + 60) / 4.
        let value = twap_of(&[(
            prices(&[Some(10.0), Some(20.0), None, Some(40.0)]),
            times(&[0, 1_000_000, 2_000_000, 4_000_000]),
        )]);
        assert_eq!(value.ok(), Some(ScalarValue::Float64(Some(17.5))));
        // One instant: the plain mean; no rows: NULL.
        let value = twap_of(&[(prices(&[Some(1.0), Some(2.0)]), times(&[5, 5]))]);
        assert_eq!(value.ok(), Some(ScalarValue::Float64(Some(1.5))));
        let value = twap_of(&[(prices(&[None]), times(&[5]))]);
        assert_eq!(value.ok(), Some(ScalarValue::Float64(None)));
    }

    #[test]
    fn rows_out_of_time_order_are_refused_not_answered_wrongly() {
        let value = twap_of(&[(prices(&[Some(1.0), Some(2.0)]), times(&[10, 5]))]);
        assert!(value.is_err());
    }

    /// Partial results of any split of a series, merged in any order, give
    /// what one pass over it gives.
    #[test]
    fn partial_runs_merge_to_the_whole_series() {
        let p = [3.0, 7.0, 1.0, 9.0, 4.0, 4.0, 8.0];
        let t = [0, 2, 3, 3, 10, 11, 20];
        let whole = twap_of(&[(prices(&p.map(Some)), times(&t))]).ok();
        for split in 1..p.len() {
            let part = |range: std::ops::Range<usize>| {
                let mut acc = PathAccumulator::<Twap> { runs: Vec::new() };
                let times = times(&t[range.clone()]);
                acc.update_batch(&[
                    prices(&p[range].iter().copied().map(Some).collect::<Vec<_>>()),
                    Arc::clone(&times),
                    times,
                ])
                .ok();
                acc.state().ok()
            };
            let (Some(a), Some(b)) = (part(0..split), part(split..p.len())) else {
                panic!("partial states");
            };
            let mut merged = PathAccumulator::<Twap> { runs: Vec::new() };
            for state in [b, a] {
                let array = ScalarValue::iter_to_array(state).ok();
                merged.merge_batch(&[array.expect("state array")]).ok();
            }
            assert_eq!(merged.evaluate().ok(), whole, "split at {split}");
        }
    }

    #[test]
    fn haversine_adds_the_great_circle_legs() {
        // One degree of longitude on the equator, twice.
        let mut acc = PathAccumulator::<Haversine> { runs: Vec::new() };
        let lat: ArrayRef = Arc::new(Float64Array::from(vec![0.0, 0.0, 0.0]));
        let lon: ArrayRef = Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0]));
        let t = times(&[1, 2, 3]);
        acc.update_batch(&[lat, lon, Arc::clone(&t), t]).ok();
        let expected = 2.0 * EARTH_RADIUS_KM * 1f64.to_radians();
        match acc.evaluate() {
            Ok(ScalarValue::Float64(Some(km))) => assert!((km - expected).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn is_ordered_compares_floats_and_integers_in_time_order() {
        let ordered = |values: ArrayRef| {
            let mut acc = PathAccumulator::<Ordered> { runs: Vec::new() };
            let t = times(&(0..values.len() as i64).collect::<Vec<_>>());
            acc.update_batch(&[values, Arc::clone(&t), t]).ok();
            acc.evaluate().ok()
        };
        let yes = Some(ScalarValue::Boolean(Some(true)));
        let no = Some(ScalarValue::Boolean(Some(false)));
        assert_eq!(ordered(Arc::new(Int64Array::from(vec![1, 2, 2, 3]))), yes);
        assert_eq!(ordered(Arc::new(Int64Array::from(vec![1, 2, 3, 2]))), no);
        assert_eq!(ordered(prices(&[Some(-2.5), Some(-1.0), Some(0.5)])), yes);
        assert_eq!(ordered(prices(&[Some(-1.0), Some(-2.5)])), no);
    }
}
