//! QuestDB's functions over `DOUBLE[]` arrays, with QuestDB's meaning: they
//! read every element of an array of any number of dimensions (row-major), and
//! since QuestDB stores a NULL double as NaN, NULL and NaN elements count as
//! missing.
//!
//! - `array_max(a)`, `array_min(a)`: over the finite elements; NULL if none.
//! - `array_sum(a)`, `array_avg(a)`: over the elements that are not NULL or NaN;
//!   NULL if none.
//! - `array_count(a)`: how many elements are finite.
//! - `array_cum_sum(a)`: the running sums, a one-dimensional array as long as
//!   `a` has elements (a missing element adds 0).
//! - `array_stddev(a)` (= `array_stddev_samp`), `array_stddev_pop(a)`: over
//!   the finite elements; NULL below two (one for the population's).
//! - `dim_length(a, d)`: the length of dimension `d` (from 1).
//! - `insertion_point(a, v [, ahead_of_equal])`: where `v` goes in the sorted
//!   one-dimensional `a` (binary search, ascending or descending).
//! - `dot_product(a, b)`: the sum of the products of corresponding elements
//!   (row-major) of two arrays with the same dimensions and number of elements
//!   (a missing element makes it NaN, as in QuestDB).
//!
//! The functions that reshape arrays are in `questdb_array_shapes`.
//!
//! `array_max`, `array_min`, `array_sum`, `array_avg` and `flatten` are also
//! DataFusion's list functions: for a list whose elements are not numbers
//! (`array_max` of a `text[]`), DataFusion's function answers.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::double_array::{Owner, Shaped, lists_from_shaped, shape_error, shaped_rows};
use crate::error::{ExecError, sqlstate};
use crate::provider::to_df;
use crate::questdb_array_shapes as shapes;
use crate::types::list_depth as depth;

type Run = fn(&[ArrayRef]) -> DfResult<ArrayRef>;
type Returns = fn(&[DataType]) -> DfResult<DataType>;

/// Registers the functions, over DataFusion's of the same names.
pub(crate) fn register(ctx: &SessionContext) {
    let functions: [(&'static str, &'static [usize], Returns, Run); 16] = [
        ("array_max", &[1], DOUBLE, |a| reduce(a, maximum)),
        ("array_min", &[1], DOUBLE, |a| reduce(a, minimum)),
        ("array_sum", &[1], DOUBLE, |a| reduce(a, sum)),
        ("array_avg", &[1], DOUBLE, |a| reduce(a, average)),
        ("array_stddev", &[1], DOUBLE, |a| reduce(a, stddev_samp)),
        ("array_stddev_samp", &[1], DOUBLE, |a| {
            reduce(a, stddev_samp)
        }),
        ("array_stddev_pop", &[1], DOUBLE, |a| reduce(a, stddev_pop)),
        ("array_count", &[1], |_| Ok(DataType::Int64), count),
        ("array_cum_sum", &[1], ONE_DIMENSION, cumulative_sum),
        ("dim_length", &[2], dim_length_type, dim_length),
        ("dot_product", &[2], DOUBLE, dot_product),
        (
            "insertion_point",
            &[2, 3],
            insertion_point_type,
            insertion_point,
        ),
        ("flatten", &[1], ONE_DIMENSION, shapes::flatten),
        (
            "transpose",
            &[1],
            shapes::same_dimensions,
            shapes::transpose,
        ),
        ("shift", &[2, 3], shapes::shift_type, shapes::shift),
        ("matmul", &[2], shapes::matmul_type, shapes::matmul),
    ];
    for (name, arities, returns, run) in functions {
        let fallback = ctx.udf(name).ok();
        let arities = arities.iter().map(|n| TypeSignature::Any(*n)).collect();
        ctx.register_udf(ScalarUDF::from(ArrayFunction {
            name,
            signature: Signature::one_of(arities, Volatility::Immutable),
            returns,
            run,
            fallback,
        }));
    }
    shapes::register(ctx);
}

/// A DOUBLE.
const DOUBLE: Returns = |_| Ok(DataType::Float64);

/// A one-dimensional DOUBLE[].
const ONE_DIMENSION: Returns = |_| Ok(crate::double_array::arrow_type(1));

fn insertion_point_type(args: &[DataType]) -> DfResult<DataType> {
    let why = match args {
        [a, ..] if depth(a) != 1 => "the array must be one-dimensional (DOUBLE[])",
        [_, v, ..] if !numeric_or_null(v) => "the value must be a number",
        [_, _, b] if !matches!(b, DataType::Boolean | DataType::Null) => {
            "ahead_of_equal must be a boolean"
        }
        _ => return Ok(DataType::Int32),
    };
    Err(argument_error("insertion_point", args, why))
}

fn dim_length_type(args: &[DataType]) -> DfResult<DataType> {
    match args {
        [_, d] if !d.is_integer() && !d.is_null() => Err(argument_error(
            "dim_length",
            args,
            "the dimension must be an integer",
        )),
        _ => Ok(DataType::Int32),
    }
}

pub(crate) fn numeric_or_null(t: &DataType) -> bool {
    t.is_numeric() || t.is_null()
}

/// PostgreSQL's error for arguments a function does not take: 42883
/// `function f(types) does not exist`, saying which argument is wrong.
pub(crate) fn argument_error(
    function: &str,
    args: &[DataType],
    why: &str,
) -> datafusion::error::DataFusionError {
    let types: Vec<String> = args.iter().map(sql_type).collect();
    to_df(ExecError::new(
        sqlstate::UNDEFINED_FUNCTION,
        format!(
            "function {function}({}) does not exist: {why}",
            types.join(", ")
        ),
    ))
}

/// A type as SQL names it: `DOUBLE[][]` for arrays of numbers.
pub(crate) fn sql_type(t: &DataType) -> String {
    let dims = depth(t);
    let element = crate::types::innermost_element(t);
    let name = if dims > 0 && element.is_numeric() {
        "DOUBLE".to_string()
    } else {
        crate::pg_functions::pg_type_names(&element.to_string())
            .0
            .to_string()
    };
    name + &"[]".repeat(dims)
}

#[derive(Debug)]
struct ArrayFunction {
    name: &'static str,
    signature: Signature,
    returns: Returns,
    run: Run,
    /// DataFusion's function of the same name, for lists of other elements.
    fallback: Option<Arc<ScalarUDF>>,
}

/// One function per name: the name tells them apart.
impl PartialEq for ArrayFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ArrayFunction {}

impl std::hash::Hash for ArrayFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ArrayFunction {
    /// Whether DataFusion's function answers for these argument types.
    fn falls_back(&self, args: &[DataType]) -> bool {
        self.fallback.is_some()
            && args
                .first()
                .is_some_and(|t| depth(t) > 0 && !crate::types::innermost_element(t).is_numeric())
    }
}

impl ScalarUDFImpl for ArrayFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match &self.fallback {
            Some(f) if self.falls_back(args) => f.return_type(args),
            _ => match args.first() {
                Some(t) if depth(t) > 0 || t.is_null() => (self.returns)(args),
                _ => Err(argument_error(
                    self.name,
                    args,
                    "the first argument must be an array of numbers (DOUBLE[])",
                )),
            },
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        if let Some(f) = &self.fallback
            && self.falls_back(&types)
        {
            return f.invoke_with_args(args);
        }
        let (arrays, constant) = crate::call_args::arrays_or_constants(&args)?;
        crate::call_args::result_of((self.run)(&arrays)?, constant)
    }
}

/// The elements of each row of a list array (of any nesting), row-major, as
/// doubles; `None` for a NULL row. A ragged array is 2202E.
fn rows_of(array: &ArrayRef) -> DfResult<Vec<Option<Vec<Option<f64>>>>> {
    Ok(shaped_rows(array, Owner::Function("DOUBLE[] argument"))
        .map_err(to_df)?
        .into_iter()
        .map(|row| row.map(|s| s.values))
        .collect())
}

/// NULL and NaN are missing (QuestDB's NULL double is NaN).
fn present(v: &Option<f64>) -> Option<f64> {
    v.filter(|x| !x.is_nan())
}

fn reduce(args: &[ArrayRef], f: fn(&[Option<f64>]) -> Option<f64>) -> DfResult<ArrayRef> {
    let rows = rows_of(&args[0])?;
    Ok(Arc::new(
        rows.iter()
            .map(|r| r.as_deref().and_then(f))
            .collect::<Float64Array>(),
    ))
}

fn maximum(v: &[Option<f64>]) -> Option<f64> {
    finite(v).reduce(f64::max)
}

fn minimum(v: &[Option<f64>]) -> Option<f64> {
    finite(v).reduce(f64::min)
}

fn finite(v: &[Option<f64>]) -> impl Iterator<Item = f64> + '_ {
    v.iter().filter_map(|x| x.filter(|x| x.is_finite()))
}

fn sum(v: &[Option<f64>]) -> Option<f64> {
    v.iter().filter_map(present).reduce(|a, b| a + b)
}

fn average(v: &[Option<f64>]) -> Option<f64> {
    let (total, n) = v
        .iter()
        .filter_map(present)
        .fold((0.0, 0u64), |(t, n), x| (t + x, n + 1));
    (n > 0).then(|| total / n as f64)
}

/// The sample standard deviation of the finite elements; NULL below two.
fn stddev_samp(v: &[Option<f64>]) -> Option<f64> {
    let (n, squares) = squared_deviations(v);
    (n > 1).then(|| (squares / (n - 1) as f64).sqrt())
}

/// The population standard deviation of the finite elements; NULL if none.
fn stddev_pop(v: &[Option<f64>]) -> Option<f64> {
    let (n, squares) = squared_deviations(v);
    (n > 0).then(|| (squares / n as f64).sqrt())
}

/// How many finite elements there are, and the sum of their squared
/// deviations from their mean.
fn squared_deviations(v: &[Option<f64>]) -> (u64, f64) {
    let (total, n) = finite(v).fold((0.0, 0u64), |(t, n), x| (t + x, n + 1));
    if n == 0 {
        return (0, 0.0);
    }
    let mean = total / n as f64;
    (n, finite(v).map(|x| (x - mean) * (x - mean)).sum())
}

/// `insertion_point(a, value [, ahead_of_equal])`: the 1-based position at
/// which `value` would be inserted into the sorted one-dimensional `a`
/// (ascending, or descending when its first element is above its last),
/// after equal elements unless `ahead_of_equal`.
fn insertion_point(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let rows = rows_of(&args[0])?;
    let values = cast(&args[1], &DataType::Float64)?;
    let values = values.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let ahead = match args.get(2) {
        Some(a) => Some(cast(a, &DataType::Boolean)?),
        None => None,
    };
    let mut out = Vec::with_capacity(rows.len());
    for (row, elements) in rows.iter().enumerate() {
        let (Some(elements), false) = (elements, values.is_null(row)) else {
            out.push(None);
            continue;
        };
        let v = values.value(row);
        let ahead = ahead
            .as_ref()
            .is_some_and(|a| a.as_boolean().is_valid(row) && a.as_boolean().value(row));
        let x = |e: &Option<f64>| e.unwrap_or(f64::NAN);
        let descending = matches!(
            (elements.first(), elements.last()),
            (Some(first), Some(last)) if x(first) > x(last)
        );
        let before = elements.partition_point(|e| match (descending, ahead) {
            (false, false) => x(e) <= v,
            (false, true) => x(e) < v,
            (true, false) => x(e) >= v,
            (true, true) => x(e) > v,
        });
        out.push(Some(i32::try_from(before + 1).unwrap_or(i32::MAX)));
    }
    Ok(Arc::new(Int32Array::from(out)))
}

fn count(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let rows = rows_of(&args[0])?;
    Ok(Arc::new(
        rows.iter()
            .map(|r| r.as_ref().map(|v| finite(v).count() as i64))
            .collect::<Int64Array>(),
    ))
}

fn cumulative_sum(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let sums = rows_of(&args[0])?
        .into_iter()
        .map(|row| {
            row.map(|elements| {
                let mut running = 0.0;
                let values: Vec<Option<f64>> = elements
                    .iter()
                    .map(|x| {
                        running += present(x).unwrap_or(0.0);
                        Some(running)
                    })
                    .collect();
                Shaped {
                    lens: vec![values.len() as u32],
                    values,
                }
            })
        })
        .collect();
    lists_from_shaped(sums, 1).map_err(to_df)
}

fn dim_length(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let dims = depth(args[0].data_type());
    let which = cast(&args[1], &DataType::Int64)?;
    let which = which.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let mut out = Vec::with_capacity(args[0].len());
    for row in 0..args[0].len() {
        if args[0].is_null(row) || which.is_null(row) {
            out.push(None);
            continue;
        }
        let d = which.value(row);
        if d < 1 || d as usize > dims {
            return Err(to_df(shape_error(
                Owner::Function("dim_length"),
                format!("dimension {d} is out of range (the array has {dims})"),
            )));
        }
        // Walk down the first element of each level to the asked dimension.
        let mut level: ArrayRef = args[0].slice(row, 1);
        let mut len = 0usize;
        for _ in 0..d {
            let lists = level.as_list_opt::<i32>();
            let Some(lists) = lists else {
                return exec_err!("dim_length of a non-array");
            };
            let inner = lists.value(0);
            len = inner.len();
            if inner.is_empty() {
                break;
            }
            level = inner.slice(0, 1);
        }
        out.push(Some(i32::try_from(len).unwrap_or(i32::MAX)));
    }
    Ok(Arc::new(Int32Array::from(out)))
}

fn dot_product(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    if depth(args[0].data_type()) != depth(args[1].data_type()) {
        return Err(to_df(shape_error(
            Owner::Function("dot_product"),
            "the arrays have different numbers of dimensions",
        )));
    }
    let (a, b) = (rows_of(&args[0])?, rows_of(&args[1])?);
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(&b) {
        out.push(match (x, y) {
            (Some(x), Some(y)) if x.len() == y.len() => Some(
                x.iter()
                    .zip(y)
                    .map(|(p, q)| p.unwrap_or(f64::NAN) * q.unwrap_or(f64::NAN))
                    .sum(),
            ),
            (Some(_), Some(_)) => {
                return Err(to_df(shape_error(
                    Owner::Function("dot_product"),
                    "the arrays have different shapes",
                )));
            }
            _ => None,
        });
    }
    Ok(Arc::new(Float64Array::from(out)))
}
