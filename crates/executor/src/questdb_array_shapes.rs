//! QuestDB's array functions that build or reshape `DOUBLE[]` values, with
//! QuestDB's meaning:
//!
//! - `flatten(a)`: every element, row-major, as a one-dimensional array
//!   (DataFusion's `flatten` removes one level only; it still answers for
//!   lists of other elements).
//! - `transpose(a)`: the coordinates reversed (rows and columns of a matrix
//!   swapped); a one-dimensional array is itself.
//! - `shift(a, distance [, fill])`: the elements of the last dimension moved
//!   from position `i` to `i + distance` (negative: to the left), the holes
//!   filled with `fill` (NULL by default).
//! - `matmul(a, b)`: the matrix product of two two-dimensional arrays (`a`'s
//!   columns must be `b`'s rows); a NULL element makes its sums NaN.
//! - `array_build(n, size, filler...)`: a new array, one-dimensional for
//!   `n = 1`, otherwise `n` rows; `size` is a length or an array whose number
//!   of elements is the length; each filler is a number repeated or an array
//!   copied position by position (NULL past its end).
//!
//! Shape errors are 2202E naming the function, as for stored arrays.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::double_array::{Owner, Shaped, arrow_type, lists_from_shaped, shape_error, shaped_rows};
use crate::error::{ExecError, sqlstate};
use crate::provider::to_df;
use crate::questdb_arrays::{argument_error, numeric_or_null};
use crate::types::list_depth as depth;

/// The rows of the array argument of `function`, rectangular.
fn rows(array: &ArrayRef, function: &'static str) -> DfResult<Vec<Option<Shaped>>> {
    shaped_rows(array, Owner::Function(function)).map_err(to_df)
}

/// Lists of `dims` levels from shaped rows.
fn lists(rows: Vec<Option<Shaped>>, dims: usize) -> DfResult<ArrayRef> {
    lists_from_shaped(rows, dims).map_err(to_df)
}

/// Casts that fail rather than give NULL (a number too large for a length).
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: datafusion::arrow::util::display::FormatOptions::new(),
};

/// The argument at `i` as one double per row (NULL where it is NULL).
fn doubles(args: &[ArrayRef], i: usize) -> DfResult<Vec<Option<f64>>> {
    let v = cast_with_options(&args[i], &DataType::Float64, &STRICT)?;
    Ok(v.as_primitive::<Float64Type>().iter().collect())
}

fn integers(args: &[ArrayRef], i: usize) -> DfResult<Vec<Option<i64>>> {
    let v = cast_with_options(&args[i], &DataType::Int64, &STRICT)?;
    Ok(v.as_primitive::<Int64Type>().iter().collect())
}

/// The return type of a function whose result has its argument's dimensions.
pub(crate) fn same_dimensions(args: &[DataType]) -> DfResult<DataType> {
    let dims = args.first().map_or(0, depth).max(1);
    Ok(arrow_type(dims))
}

pub(crate) fn shift_type(args: &[DataType]) -> DfResult<DataType> {
    let why = match args {
        [_, d, ..] if !d.is_integer() && !d.is_null() => "the distance must be an integer",
        [_, _, fill] if !numeric_or_null(fill) => "the fill value must be a number",
        _ => return same_dimensions(args),
    };
    Err(argument_error("shift", args, why))
}

pub(crate) fn flatten(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let out = rows(&args[0], "flatten")?
        .into_iter()
        .map(|r| {
            r.map(|s| Shaped {
                lens: vec![s.values.len() as u32],
                values: s.values,
            })
        })
        .collect();
    lists(out, 1)
}

pub(crate) fn transpose(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let dims = depth(args[0].data_type()).max(1);
    let out = rows(&args[0], "transpose")?
        .into_iter()
        .map(|r| r.map(transposed))
        .collect();
    lists(out, dims)
}

/// `s` with its coordinates reversed: element (i1, ..., ik) of the result is
/// element (ik, ..., i1) of `s`.
fn transposed(s: Shaped) -> Shaped {
    let lens: Vec<usize> = s.lens.iter().map(|l| *l as usize).collect();
    let k = lens.len();
    if k < 2 || s.values.is_empty() {
        let mut s = s;
        s.lens.reverse();
        return s;
    }
    // Row-major strides of the input.
    let mut strides = vec![1usize; k];
    for i in (0..k - 1).rev() {
        strides[i] = strides[i + 1] * lens[i + 1];
    }
    let out_lens: Vec<usize> = lens.iter().rev().copied().collect();
    let mut coords = vec![0usize; k];
    let mut values = Vec::with_capacity(s.values.len());
    for _ in 0..s.values.len() {
        // Output coordinate j is input coordinate k-1-j.
        let at: usize = (0..k).map(|j| coords[j] * strides[k - 1 - j]).sum();
        values.push(s.values[at]);
        // Advance the output coordinates, last fastest.
        for j in (0..k).rev() {
            coords[j] += 1;
            if coords[j] < out_lens[j] {
                break;
            }
            coords[j] = 0;
        }
    }
    Shaped {
        lens: s.lens.into_iter().rev().collect(),
        values,
    }
}

pub(crate) fn shift(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let dims = depth(args[0].data_type()).max(1);
    let distances = integers(args, 1)?;
    let fills = if args.len() > 2 {
        doubles(args, 2)?
    } else {
        vec![None; args[0].len()]
    };
    let out = rows(&args[0], "shift")?
        .into_iter()
        .zip(distances)
        .zip(fills)
        .map(|((r, d), fill)| Some(shifted(r?, d?, fill)))
        .collect();
    lists(out, dims)
}

fn shifted(s: Shaped, distance: i64, fill: Option<f64>) -> Shaped {
    let n = s.lens.last().copied().unwrap_or(0) as usize;
    if n == 0 {
        return s;
    }
    let mut values = Vec::with_capacity(s.values.len());
    for row in s.values.chunks(n) {
        for i in 0..n as i64 {
            let from = i.saturating_sub(distance);
            values.push(if (0..n as i64).contains(&from) {
                row[from as usize]
            } else {
                fill
            });
        }
    }
    Shaped {
        lens: s.lens,
        values,
    }
}

pub(crate) fn matmul_type(args: &[DataType]) -> DfResult<DataType> {
    match args {
        [a, b] if depth(a) == 2 && depth(b) == 2 => Ok(arrow_type(2)),
        _ => Err(argument_error(
            "matmul",
            args,
            "it multiplies two matrices (two-dimensional DOUBLE[][] arrays)",
        )),
    }
}

pub(crate) fn matmul(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let (a, b) = (rows(&args[0], "matmul")?, rows(&args[1], "matmul")?);
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in a.into_iter().zip(b) {
        let (Some(x), Some(y)) = (x, y) else {
            out.push(None);
            continue;
        };
        let (m, n) = (x.lens[0] as usize, x.lens[1] as usize);
        let (p, q) = (y.lens[0] as usize, y.lens[1] as usize);
        if n != p {
            return Err(to_df(shape_error(
                Owner::Function("matmul"),
                format!("the left matrix has {n} column(s) but the right matrix has {p} row(s)"),
            )));
        }
        let element = |s: &Shaped, i: usize| s.values[i].unwrap_or(f64::NAN);
        let mut values = Vec::with_capacity(m * q);
        for row in 0..m {
            for col in 0..q {
                let sum: f64 = (0..n)
                    .map(|i| element(&x, row * n + i) * element(&y, i * q + col))
                    .sum();
                values.push(Some(sum));
            }
        }
        out.push(Some(Shaped {
            lens: vec![m as u32, q as u32],
            values,
        }));
    }
    lists(out, 2)
}

/// The most elements `array_build` makes in one value (a guard against a
/// size that would exhaust memory).
const MAX_BUILT_ELEMENTS: i64 = 1 << 24;

/// `array_build`: its result's dimensions depend on its first argument, which
/// must be a literal.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayBuild {
    signature: Signature,
}

pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(ArrayBuild {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
}

impl ArrayBuild {
    fn sub_arrays(arg: Option<&ScalarValue>) -> DfResult<i64> {
        let n = match arg {
            Some(v) if v.data_type().is_integer() => {
                v.cast_to(&DataType::Int64).ok().and_then(|v| match v {
                    ScalarValue::Int64(n) => n,
                    _ => None,
                })
            }
            _ => None,
        };
        let why = match n {
            Some(n) if (1..=MAX_BUILT_ELEMENTS).contains(&n) => return Ok(n),
            Some(n) => format!("array_build: the number of sub-arrays must be at least 1, got {n}"),
            None => "array_build: the first argument (the number of sub-arrays) must be an \
                     integer literal"
                .to_string(),
        };
        Err(to_df(ExecError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            why,
        )))
    }
}

impl ScalarUDFImpl for ArrayBuild {
    fn name(&self) -> &str {
        "array_build"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(arrow_type(1))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let n = Self::sub_arrays(args.scalar_arguments.first().copied().flatten())?;
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let fillers = types.len().saturating_sub(2) as i64;
        let why = match types.get(1) {
            _ if fillers != n => Some(format!("it takes {n} filler(s) after the size")),
            Some(size) if !size.is_integer() && !size.is_null() && depth(size) == 0 => {
                Some("the size must be an integer or a DOUBLE[] array".to_string())
            }
            _ if types[2..]
                .iter()
                .any(|t| depth(t) == 0 && !numeric_or_null(t)) =>
            {
                Some("a filler must be a number or a DOUBLE[] array".to_string())
            }
            _ => None,
        };
        if let Some(why) = why {
            return Err(argument_error(self.name(), &types, &why));
        }
        let dims = if n == 1 { 1 } else { 2 };
        Ok(Arc::new(Field::new(self.name(), arrow_type(dims), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let (arrays, constant) = crate::call_args::arrays_or_constants(&args)?;
        let n = match arrays.first() {
            Some(a) if !a.is_empty() => integers(&arrays, 0)?[0].unwrap_or(0),
            _ => 0,
        };
        let sizes = lengths(&arrays[1])?;
        let fillers = arrays[2..]
            .iter()
            .map(Filler::of)
            .collect::<DfResult<Vec<_>>>()?;
        let mut out = Vec::with_capacity(args.number_rows);
        for (row, size) in sizes.iter().enumerate() {
            let Some(size) = *size else {
                out.push(None);
                continue;
            };
            if !(0..=MAX_BUILT_ELEMENTS / n.max(1)).contains(&size) {
                return Err(to_df(ExecError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!(
                        "array_build: size {size} is out of range (0 to {})",
                        MAX_BUILT_ELEMENTS / n.max(1)
                    ),
                )));
            }
            let size = size as usize;
            let mut values = Vec::with_capacity(size * fillers.len());
            for filler in &fillers {
                filler.fill(row, size, &mut values);
            }
            let lens = if n == 1 {
                vec![size as u32]
            } else {
                vec![n as u32, size as u32]
            };
            out.push(Some(Shaped { lens, values }));
        }
        crate::call_args::result_of(lists(out, if n == 1 { 1 } else { 2 })?, constant)
    }
}

/// `array_build`'s size per row: the number, or the number of elements of an
/// array.
fn lengths(arg: &ArrayRef) -> DfResult<Vec<Option<i64>>> {
    if depth(arg.data_type()) > 0 {
        return Ok(rows(arg, "array_build")?
            .into_iter()
            .map(|r| r.map(|s| s.values.len() as i64))
            .collect());
    }
    integers(std::slice::from_ref(arg), 0)
}

/// One filler of `array_build`: a number per row, or an array per row.
enum Filler {
    Number(Vec<Option<f64>>),
    Array(Vec<Option<Shaped>>),
}

impl Filler {
    fn of(arg: &ArrayRef) -> DfResult<Filler> {
        if depth(arg.data_type()) > 0 {
            Ok(Filler::Array(rows(arg, "array_build")?))
        } else {
            Ok(Filler::Number(doubles(std::slice::from_ref(arg), 0)?))
        }
    }

    fn fill(&self, row: usize, size: usize, out: &mut Vec<Option<f64>>) {
        match self {
            Filler::Number(v) => out.extend(std::iter::repeat_n(v[row], size)),
            Filler::Array(a) => {
                let values = a[row].as_ref().map_or(&[][..], |s| &s.values[..]);
                out.extend((0..size).map(|i| values.get(i).copied().flatten()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::double_array::shaped_of as shaped;

    #[test]
    fn transposing_reverses_coordinates() {
        // [[1,2,3],[4,5,6]] -> [[1,4],[2,5],[3,6]]
        let t = transposed(shaped(&[2, 3], &[1., 2., 3., 4., 5., 6.]));
        assert_eq!(t, shaped(&[3, 2], &[1., 4., 2., 5., 3., 6.]));
        // A 2x1x3 array: element (i, j, k) moves to (k, j, i).
        let t = transposed(shaped(&[2, 1, 3], &[1., 2., 3., 4., 5., 6.]));
        assert_eq!(t, shaped(&[3, 1, 2], &[1., 4., 2., 5., 3., 6.]));
        // Twice is the identity.
        let values: Vec<f64> = (1..=12).map(f64::from).collect();
        let again = transposed(transposed(shaped(&[2, 3, 2], &values)));
        assert_eq!(again, shaped(&[2, 3, 2], &values));
    }

    #[test]
    fn shifting_moves_the_last_dimension_and_fills_holes() {
        let s = shifted(shaped(&[2, 2], &[1., 2., 3., 4.]), 1, None);
        assert_eq!(s.values, vec![None, Some(1.), None, Some(3.)]);
        let s = shifted(shaped(&[2, 2], &[1., 2., 3., 4.]), -1, Some(10.));
        assert_eq!(s.values, vec![Some(2.), Some(10.), Some(4.), Some(10.)]);
        let s = shifted(shaped(&[3], &[1., 2., 3.]), i64::MAX, Some(0.));
        assert_eq!(s.values, vec![Some(0.); 3]);
        let s = shifted(shaped(&[3], &[1., 2., 3.]), i64::MIN, Some(0.));
        assert_eq!(s.values, vec![Some(0.); 3]);
    }
}
