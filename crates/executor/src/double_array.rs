//! `DOUBLE[]` columns (QuestDB's array type): values are Arrow lists of
//! `Float64` nested once per dimension, and stored as BINARY in the encoding
//! docs/storage-format.md gives: each dimension's length (u32), a flag for NULL
//! elements and their bitmap, then the elements in row-major order (f64).
//!
//! A value must have the column's number of dimensions and be rectangular (as
//! PostgreSQL's arrays are): 2202E otherwise, naming the column.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, StringArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type};
use tidemark_storage::{Column, Values, VarData};

use crate::error::{ExecError, Result, sqlstate};
use crate::params::ParamValue;
use crate::types::list_depth as depth;

/// The Arrow type of a `DOUBLE[]` column of `dims` dimensions.
pub(crate) fn arrow_type(dims: usize) -> DataType {
    (0..dims).fold(DataType::Float64, |t, _| DataType::new_list(t, true))
}

/// One array value: the length of each dimension and the elements, row-major.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Shaped {
    pub(crate) lens: Vec<u32>,
    pub(crate) values: Vec<Option<f64>>,
}

/// An array of `lens` holding `values` (none NULL), for tests.
#[cfg(test)]
pub(crate) fn shaped_of(lens: &[u32], values: &[f64]) -> Shaped {
    Shaped {
        lens: lens.to_vec(),
        values: values.iter().map(|v| Some(*v)).collect(),
    }
}

/// Whose value an array is, for error messages: a column's or a function's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    Column(&'a str),
    Function(&'a str),
}

impl std::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Column(name) => write!(f, "column \"{name}\" (DOUBLE[])"),
            Owner::Function(name) => f.write_str(name),
        }
    }
}

impl Shaped {
    /// Records that a (sub-)array at `level` has `len` elements: the first at
    /// a level sets its length, the others must match it (rectangular arrays).
    fn measure(&mut self, level: usize, len: u32, owner: Owner) -> Result<()> {
        match self.lens.get(level) {
            None => self.lens.push(len),
            Some(l) if *l == len => {}
            Some(_) => {
                return Err(shape_error(
                    owner,
                    "multidimensional arrays must have sub-arrays with matching dimensions",
                ));
            }
        }
        Ok(())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        // Every array with a zero length is the empty array (`{}`, as PostgreSQL
        // has it): stored with all lengths 0, the one shape lists can give back.
        let empty = self.lens.contains(&0);
        for len in &self.lens {
            let len = if empty { 0 } else { *len };
            out.extend_from_slice(&len.to_le_bytes());
        }
        let has_nulls = self.values.iter().any(Option::is_none);
        out.push(u8::from(has_nulls));
        if has_nulls {
            let mut bitmap = vec![0u8; self.values.len().div_ceil(8)];
            for (i, v) in self.values.iter().enumerate() {
                if v.is_none() {
                    bitmap[i / 8] |= 1 << (i % 8);
                }
            }
            out.extend_from_slice(&bitmap);
        }
        for v in &self.values {
            out.extend_from_slice(&v.unwrap_or(0.0).to_le_bytes());
        }
    }

    /// Reads one stored value of `dims` dimensions; `Err` names what is wrong.
    fn decode(bytes: &[u8], dims: usize) -> std::result::Result<Shaped, String> {
        let mut rest = bytes;
        let mut take = |n: usize| -> std::result::Result<&[u8], String> {
            if rest.len() < n {
                return Err(format!(
                    "a stored DOUBLE[] value of {} bytes is truncated",
                    bytes.len()
                ));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let mut lens = Vec::with_capacity(dims);
        let mut n: usize = 1;
        for _ in 0..dims {
            let b = take(4)?;
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            n = n
                .checked_mul(len as usize)
                .ok_or("a stored DOUBLE[] value's shape overflows")?;
            lens.push(len);
        }
        let has_nulls = take(1)?[0] == 1;
        let bitmap = if has_nulls {
            Some(take(n.div_ceil(8))?.to_vec())
        } else {
            None
        };
        let elements = take(
            n.checked_mul(8)
                .ok_or("a stored DOUBLE[] value overflows")?,
        )?;
        let values = elements
            .chunks_exact(8)
            .enumerate()
            .map(|(i, c)| {
                let null = bitmap
                    .as_ref()
                    .is_some_and(|b| b[i / 8] & (1 << (i % 8)) != 0);
                let mut word = [0u8; 8];
                word.copy_from_slice(c);
                (!null).then(|| f64::from_le_bytes(word))
            })
            .collect();
        Ok(Shaped { lens, values })
    }
}

pub(crate) fn shape_error(owner: Owner, detail: impl std::fmt::Display) -> ExecError {
    ExecError::new(
        sqlstate::ARRAY_SUBSCRIPT_ERROR,
        format!("{owner}: {detail}"),
    )
}

/// Values for a `DOUBLE[]` column of `dims` dimensions from any Arrow array a
/// statement gives it: lists (of numbers), array text (`'{1,2}'`), or NULLs.
pub(crate) fn column_from_array(array: &ArrayRef, dims: u8, name: &str) -> Result<Column> {
    let n = array.len();
    let mut shaped: Vec<Option<Shaped>> = Vec::with_capacity(n);
    match array.data_type() {
        DataType::Null => shaped.extend((0..n).map(|_| None)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = cast(array, &DataType::Utf8)?;
            let text: &StringArray = text.as_string();
            for i in 0..n {
                shaped.push(if text.is_null(i) {
                    None
                } else {
                    Some(from_text(text.value(i), dims, name)?)
                });
            }
        }
        t if depth(t) == dims as usize => shaped = shaped_rows(array, Owner::Column(name))?,
        t if depth(t) > 0 => {
            return Err(shape_error(
                Owner::Column(name),
                format!(
                    "an array of {} dimension(s) cannot be stored in a column of {dims}",
                    depth(t)
                ),
            ));
        }
        other => {
            return Err(ExecError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("column \"{name}\" is of type DOUBLE[] but expression is of type {other}"),
            ));
        }
    }
    let mut data = VarData::default();
    let mut nulls = Vec::with_capacity(n);
    let mut bytes = Vec::new();
    for value in &shaped {
        bytes.clear();
        if let Some(s) = value {
            s.encode(&mut bytes);
        }
        data.push(&bytes);
        nulls.push(value.is_none());
    }
    Ok(Column::with_nulls(Values::Binary(data), nulls))
}

/// Each row of a list array (of numbers, any nesting) as a rectangular array
/// of doubles; `None` for a NULL row. 2202E names `owner` when a row is ragged.
pub(crate) fn shaped_rows(array: &ArrayRef, owner: Owner) -> Result<Vec<Option<Shaped>>> {
    let dims = depth(array.data_type());
    if array.data_type().is_null() || dims == 0 {
        return Ok((0..array.len()).map(|_| None).collect());
    }
    let lists = cast(array, &arrow_type(dims)).map_err(|e| shape_error(owner, e))?;
    let lists = lists.as_list::<i32>();
    let mut rows = Vec::with_capacity(lists.len());
    for i in 0..lists.len() {
        rows.push(if lists.is_null(i) {
            None
        } else {
            let mut s = Shaped::default();
            walk(&lists.value(i), 0, &mut s, owner)?;
            // Below an empty level there is nothing to measure: length 0.
            s.lens.resize(dims, 0);
            Some(s)
        });
    }
    Ok(rows)
}

/// Appends the elements of one (sub-)array at `level` to `s`, checking that
/// every sub-array of a level has the same length.
fn walk(elements: &ArrayRef, level: usize, s: &mut Shaped, owner: Owner) -> Result<()> {
    let len =
        u32::try_from(elements.len()).map_err(|_| shape_error(owner, "an array this long"))?;
    s.measure(level, len, owner)?;
    match elements.data_type() {
        DataType::List(_) => {
            let lists = elements.as_list::<i32>();
            for i in 0..lists.len() {
                if lists.is_null(i) {
                    return Err(shape_error(
                        owner,
                        "a sub-array is NULL (multidimensional arrays must be rectangular)",
                    ));
                }
                walk(&lists.value(i), level + 1, s, owner)?;
            }
        }
        _ => {
            let values = elements.as_primitive::<Float64Type>();
            s.values.extend(values.iter());
        }
    }
    Ok(())
}

/// A value from PostgreSQL's array text (`{1.5,NaN,NULL}`, `{{1,2},{3,4}}`).
fn from_text(text: &str, dims: u8, name: &str) -> Result<Shaped> {
    let parsed = crate::params::parse_array_text(text, "DOUBLE").map_err(|message| {
        ExecError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("column \"{name}\": {message}"),
        )
    })?;
    let mut s = Shaped::default();
    // `{}` is an empty array of any number of dimensions.
    if matches!(&parsed, ParamValue::Array { items, .. } if items.is_empty()) {
        s.lens = vec![0; dims as usize];
        return Ok(s);
    }
    walk_text(&parsed, 0, dims as usize, &mut s, name)?;
    Ok(s)
}

fn walk_text(
    value: &ParamValue,
    level: usize,
    dims: usize,
    s: &mut Shaped,
    name: &str,
) -> Result<()> {
    let ParamValue::Array { items, .. } = value else {
        return Err(shape_error(Owner::Column(name), "expected a sub-array"));
    };
    if level >= dims {
        return Err(shape_error(
            Owner::Column(name),
            format!("the array has more than the column's {dims} dimension(s)"),
        ));
    }
    let len = u32::try_from(items.len())
        .map_err(|_| shape_error(Owner::Column(name), "an array this long"))?;
    s.measure(level, len, Owner::Column(name))?;
    for item in items {
        if level + 1 < dims {
            walk_text(item, level + 1, dims, s, name)?;
            continue;
        }
        s.values.push(match item {
            ParamValue::Null => None,
            ParamValue::Text(t) => Some(crate::text::parse_float8(t).ok_or_else(|| {
                ExecError::new(
                    sqlstate::INVALID_TEXT_REPRESENTATION,
                    format!("invalid input syntax for type double precision: \"{t}\" (column \"{name}\")"),
                )
            })?),
            ParamValue::Array { .. } => {
                return Err(shape_error(
                    Owner::Column(name),
                    format!("the array has more than the column's {dims} dimension(s)"),
                ));
            }
            other => {
                return Err(ExecError::new(
                    sqlstate::INVALID_TEXT_REPRESENTATION,
                    format!("invalid array element {other:?} (column \"{name}\")"),
                ));
            }
        });
    }
    if s.lens.len() < dims && level == 0 {
        return Err(shape_error(
            Owner::Column(name),
            format!("the array has fewer than the column's {dims} dimension(s)"),
        ));
    }
    Ok(())
}

/// A value in PostgreSQL's binary array format (binary COPY): `float8`
/// elements, the column's number of dimensions; the stored encoding.
pub(crate) fn from_pg_binary(field: &[u8], dims: u8, name: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| {
        ExecError::new(
            sqlstate::INVALID_BINARY_REPRESENTATION,
            format!("column \"{name}\" (DOUBLE[]): {why} in a binary array"),
        )
    };
    fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
        let (head, tail) = rest.split_first_chunk::<N>()?;
        *rest = tail;
        Some(*head)
    }
    let mut rest = field;
    let word = |rest: &mut &[u8]| take::<4>(rest).ok_or_else(|| bad("truncated data"));
    let ndim = i32::from_be_bytes(word(&mut rest)?);
    let _has_nulls = word(&mut rest)?;
    let element = u32::from_be_bytes(word(&mut rest)?);
    if element != 701 {
        return Err(bad(&format!(
            "element type OID {element} (expected float8, 701)"
        )));
    }
    let mut s = Shaped::default();
    if ndim == 0 {
        s.lens = vec![0; dims as usize];
    } else {
        if ndim != i32::from(dims) {
            return Err(shape_error(
                Owner::Column(name),
                format!("an array of {ndim} dimension(s) cannot be stored in a column of {dims}"),
            ));
        }
        for _ in 0..ndim {
            let len = i32::from_be_bytes(word(&mut rest)?);
            let _lower_bound = word(&mut rest)?;
            s.lens
                .push(u32::try_from(len).map_err(|_| bad("a negative length"))?);
        }
    }
    let n = s
        .lens
        .iter()
        .try_fold(1usize, |n, l| n.checked_mul(*l as usize))
        .ok_or_else(|| bad("a shape too large"))?;
    // Every element takes at least its 4-byte length: a lying shape fails here.
    if n > rest.len() / 4 {
        return Err(bad("more elements than data"));
    }
    s.values.reserve(n);
    for _ in 0..n {
        let len = i32::from_be_bytes(word(&mut rest)?);
        if len == -1 {
            s.values.push(None);
            continue;
        }
        if len != 8 {
            return Err(bad("an element that is not 8 bytes"));
        }
        let value = take::<8>(&mut rest).ok_or_else(|| bad("truncated data"))?;
        s.values.push(Some(f64::from_be_bytes(value)));
    }
    if !rest.is_empty() {
        return Err(bad("data after the last element"));
    }
    let mut out = Vec::new();
    s.encode(&mut out);
    Ok(out)
}

/// The stored values of a `DOUBLE[]` column as nested Arrow lists (`valid(i)`:
/// whether row `i` is not NULL).
pub(crate) fn array_from_stored(
    data: &VarData,
    valid: impl Fn(usize) -> bool,
    dims: u8,
) -> Result<ArrayRef> {
    let rows = (0..data.len())
        .map(|row| {
            valid(row)
                .then(|| {
                    Shaped::decode(data.get(row), dims as usize)
                        .map_err(|e| ExecError::new(sqlstate::DATA_CORRUPTED, e))
                })
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    lists_from_shaped(rows, dims as usize)
}

/// Nested Arrow lists of `dims` levels from array values (`None`: a NULL row);
/// every value must have `dims` lengths.
pub(crate) fn lists_from_shaped(rows: Vec<Option<Shaped>>, dims: usize) -> Result<ArrayRef> {
    // Offsets per level: level 0's are per row, level k's per item of level k-1.
    let mut offsets: Vec<Vec<i32>> = vec![vec![0]; dims];
    let mut values: Vec<Option<f64>> = Vec::new();
    let mut row_valid = Vec::with_capacity(rows.len());
    let overflow = || {
        ExecError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            "DOUBLE[] values of this batch exceed 2^31 elements",
        )
    };
    for shaped in rows {
        row_valid.push(shaped.is_some());
        let Some(shaped) = shaped else {
            for level_offsets in offsets.iter_mut().take(1) {
                let last = *level_offsets.last().unwrap_or(&0);
                level_offsets.push(last);
            }
            continue;
        };
        // Items at level k: the product of the lengths of levels 0..k.
        let mut items: usize = 1;
        for (level, len) in shaped.lens.iter().enumerate().take(dims) {
            let len = i32::try_from(*len).map_err(|_| overflow())?;
            for _ in 0..items {
                let last = *offsets[level].last().unwrap_or(&0);
                let next = last.checked_add(len).ok_or_else(overflow)?;
                offsets[level].push(next);
            }
            items = items.saturating_mul(len as usize);
        }
        values.extend(shaped.values);
    }
    let mut array: ArrayRef = Arc::new(values.into_iter().collect::<Float64Array>());
    for level in (0..dims).rev() {
        let field = Arc::new(Field::new_list_field(array.data_type().clone(), true));
        let nulls = (level == 0).then(|| NullBuffer::from(row_valid.clone()));
        let level_offsets = std::mem::take(&mut offsets[level]);
        array = Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::new(level_offsets.into()),
            array,
            nulls,
        )?);
    }
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stored(column: &Column, dims: u8) -> ArrayRef {
        let Values::Binary(v) = &column.values else {
            panic!("DOUBLE[] is stored as BINARY");
        };
        array_from_stored(v, |i| !column.is_null(i), dims).expect("decodes")
    }

    #[test]
    fn text_values_round_trip_with_nulls_nan_and_empty_arrays() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("{{1.5,NULL},{NaN,-Infinity}}"),
            None,
            Some("{}"),
        ]));
        let column = column_from_array(&text, 2, "m").expect("stored");
        let back = stored(&column, 2);
        let shown: Vec<Option<String>> = (0..back.len())
            .map(|i| crate::text::format_value(&back, i).expect("formats"))
            .collect();
        assert_eq!(
            shown,
            [
                Some("{{1.5,NULL},{NaN,-Infinity}}".to_string()),
                None,
                Some("{}".to_string())
            ]
        );
    }

    #[test]
    fn lists_must_have_the_columns_dimensions_and_be_rectangular() {
        let one_dim: ArrayRef =
            Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
                Some(vec![Some(1.0)]),
            ]));
        let err = column_from_array(&one_dim, 2, "m").expect_err("wrong dimensions");
        assert_eq!(err.sqlstate, sqlstate::ARRAY_SUBSCRIPT_ERROR);
        assert!(err.message.contains("\"m\""), "{err}");
        let text: ArrayRef = Arc::new(StringArray::from(vec!["{{1,2},{3}}"]));
        let err = column_from_array(&text, 2, "m").expect_err("ragged");
        assert_eq!(err.sqlstate, sqlstate::ARRAY_SUBSCRIPT_ERROR);
        let text: ArrayRef = Arc::new(StringArray::from(vec!["{1,x}"]));
        let err = column_from_array(&text, 1, "m").expect_err("not a number");
        assert_eq!(err.sqlstate, sqlstate::INVALID_TEXT_REPRESENTATION);
    }

    #[test]
    fn empty_arrays_keep_their_dimensions_through_a_rewrite() {
        let text: ArrayRef = Arc::new(StringArray::from(vec!["{}", "{{}}"]));
        let column = column_from_array(&text, 2, "m").expect("stored");
        let read = stored(&column, 2);
        let again = column_from_array(&read, 2, "m").expect("stored again");
        assert_eq!(stored(&again, 2).as_ref(), read.as_ref());
        let Values::Binary(v) = &again.values else {
            panic!("BINARY");
        };
        assert_eq!(v.get(0), &[0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(v.get(1), &[0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    /// An array value of `dims` dimensions: its lengths and row-major elements.
    fn shaped(dims: usize) -> impl Strategy<Value = (Vec<u32>, Vec<Option<f64>>)> {
        proptest::collection::vec(0u32..4, dims).prop_flat_map(|lens| {
            let n = lens.iter().product::<u32>() as usize;
            let element = prop_oneof![
                1 => Just(None),
                1 => Just(Some(f64::NAN)),
                8 => any::<f64>().prop_map(Some),
            ];
            (Just(lens), proptest::collection::vec(element, n))
        })
    }

    proptest! {
        /// Stored and read back (also through a second write, as UPDATE
        /// rewrites do), every value keeps its shape and its elements' bits.
        #[test]
        fn stored_values_read_back_exactly(
            dims in 1usize..=4,
            rows in proptest::collection::vec(proptest::option::of(shaped(4)), 1..6),
        ) {
            let rows: Vec<Option<Shaped>> = rows
                .into_iter()
                .map(|r| r.map(|(lens, values)| {
                    let lens: Vec<u32> = lens[..dims].to_vec();
                    let n = lens.iter().product::<u32>() as usize;
                    Shaped { lens, values: values.into_iter().cycle().take(n).collect() }
                }))
                .map(|r| r.filter(|s| s.values.len() == s.lens.iter().product::<u32>() as usize))
                .collect();
            let mut data = VarData::default();
            for r in &rows {
                let mut bytes = Vec::new();
                if let Some(s) = r {
                    s.encode(&mut bytes);
                }
                data.push(&bytes);
            }
            let read = array_from_stored(&data, |i| rows[i].is_some(), dims as u8)
                .expect("decodes");
            let again = column_from_array(&read, dims as u8, "m").expect("stored again");
            let Values::Binary(again) = &again.values else {
                panic!("BINARY");
            };
            for (i, r) in rows.iter().enumerate() {
                match r {
                    Some(s) => {
                        let back = Shaped::decode(again.get(i), dims).expect("decodes");
                        let expected: Vec<u32> = if s.lens.contains(&0) {
                            vec![0; dims]
                        } else {
                            s.lens.clone()
                        };
                        prop_assert_eq!(&back.lens, &expected);
                        let bits = |v: &[Option<f64>]| v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
                        prop_assert_eq!(bits(&back.values), bits(&s.values));
                    }
                    None => prop_assert!(read.is_null(i)),
                }
            }
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let mut data = VarData::default();
        data.push(&[2, 0, 0, 0, 0, 1]);
        let err = array_from_stored(&data, |_| true, 1).expect_err("truncated");
        assert_eq!(err.sqlstate, sqlstate::DATA_CORRUPTED);
        let mut data = VarData::default();
        data.push(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        assert!(array_from_stored(&data, |_| true, 2).is_err());
    }
}
