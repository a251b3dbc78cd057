//! SAMPLE BY ... FILL: adds the buckets a key has no rows in, between the first
//! and last bucket (or FROM and TO), with each aggregate filled by NULL, the
//! previous bucket's value (PREV), a straight line between its neighbours
//! (LINEAR), or a constant.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, TimestampMicrosecondArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{cast, concat, interleave, take};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;

use crate::error::{ExecError, Result, sqlstate};
use crate::text::format_value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fill {
    Null,
    Prev,
    Linear,
    Constant(String),
}

impl Fill {
    pub(crate) fn parse(s: &str) -> Result<Fill> {
        Ok(match s {
            "NULL" => Fill::Null,
            "PREV" => Fill::Prev,
            "LINEAR" => Fill::Linear,
            other if other.parse::<f64>().is_ok() => Fill::Constant(other.to_string()),
            other => {
                return Err(ExecError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!(
                        "invalid FILL value \"{other}\": expected NONE, NULL, PREV, LINEAR or a number"
                    ),
                ));
            }
        })
    }
}

/// How buckets advance.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    Micros(i64),
    Months(i64),
}

impl Step {
    fn next(self, t: i64) -> i64 {
        match self {
            Step::Micros(us) => t + us,
            Step::Months(m) => add_months(t, m),
        }
    }
}

fn add_months(t: i64, months: i64) -> i64 {
    use tidemark_storage::types::{MICROS_PER_DAY, civil_from_days, days_from_civil};
    let (y, m, d) = civil_from_days(t.div_euclid(MICROS_PER_DAY));
    let total = y * 12 + (m as i64 - 1) + months;
    days_from_civil(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, d) * MICROS_PER_DAY
        + t.rem_euclid(MICROS_PER_DAY)
}

/// Fills the grouped, bucketed rows in `batches`. `ts` is the bucket column, `keys`
/// the grouping columns, `aggregates` the filled columns (one `Fill` each).
pub(crate) fn fill(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    ts: usize,
    keys: &[usize],
    aggregates: &[(usize, Fill)],
    step: Step,
    range: (Option<i64>, Option<i64>),
) -> Result<RecordBatch> {
    let input = datafusion::arrow::compute::concat_batches(schema, batches)?;
    let n = input.num_rows();
    let buckets = cast(
        input.column(ts),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let buckets = buckets
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| {
            ExecError::new(sqlstate::INTERNAL_ERROR, "bucket column is not a timestamp")
        })?;
    // Rows per key, in first-seen order; each key's rows by bucket.
    let mut key_order: Vec<String> = Vec::new();
    let mut by_key: HashMap<String, Vec<(i64, usize)>> = HashMap::new();
    let key_of = |r: usize| -> Result<String> {
        Ok(keys
            .iter()
            .map(|&k| {
                format_value(input.column(k), r).map(|v| v.unwrap_or_else(|| "\u{0}NULL".into()))
            })
            .collect::<Result<Vec<_>>>()?
            .join("\u{1}"))
    };
    for r in 0..n {
        if buckets.is_null(r) {
            continue;
        }
        let key = key_of(r)?;
        let rows = by_key.entry(key.clone()).or_insert_with(|| {
            key_order.push(key);
            Vec::new()
        });
        rows.push((buckets.value(r), r));
    }
    let lo = range.0.or_else(|| {
        (0..n)
            .filter(|&r| !buckets.is_null(r))
            .map(|r| buckets.value(r))
            .min()
    });
    let hi = range.1;
    let max_seen = (0..n)
        .filter(|&r| !buckets.is_null(r))
        .map(|r| buckets.value(r))
        .max();
    let Some(lo) = lo else { return Ok(input) };
    // Every bucket from the first to the last (or TO, exclusive).
    let mut all = Vec::new();
    let mut t = lo;
    while hi.map_or(max_seen.is_some_and(|m| t <= m), |h| t < h) {
        all.push(t);
        t = step.next(t);
        if all.len() > 10_000_000 {
            return Err(ExecError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                "FILL would produce more than 10 million rows",
            ));
        }
    }
    // Output rows: (bucket, Some(source row) | None with the key's representative row).
    let mut out_bucket = Vec::new();
    let mut out_source: Vec<Option<usize>> = Vec::new();
    let mut out_key_row = Vec::new();
    let mut out_group: Vec<usize> = Vec::new();
    for (g, key) in key_order.iter().enumerate() {
        let rows = &by_key[key];
        let mut present: HashMap<i64, usize> = rows.iter().copied().collect();
        let repr = rows[0].1;
        for &b in &all {
            out_bucket.push(b);
            out_source.push(present.remove(&b));
            out_key_row.push(repr);
            out_group.push(g);
        }
    }
    // Order by bucket, then key in first-seen order.
    let mut order: Vec<usize> = (0..out_bucket.len()).collect();
    order.sort_by_key(|&i| (out_bucket[i], out_group[i]));
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(input.num_columns());
    for c in 0..input.num_columns() {
        let col = input.column(c);
        let array: ArrayRef = if c == ts {
            let ts_arr = TimestampMicrosecondArray::from(
                order.iter().map(|&i| out_bucket[i]).collect::<Vec<_>>(),
            );
            cast(&ts_arr, col.data_type())?
        } else if keys.contains(&c) {
            take(
                col,
                &UInt32Array::from(
                    order
                        .iter()
                        .map(|&i| out_key_row[i] as u32)
                        .collect::<Vec<_>>(),
                ),
                None,
            )?
        } else {
            let how = aggregates
                .iter()
                .find(|(a, _)| *a == c)
                .map(|(_, f)| f.clone())
                .unwrap_or(Fill::Null);
            fill_column(col, &how, &order, &out_source, &out_group, &out_bucket)?
        };
        columns.push(array);
    }
    // A filled bucket's aggregates may be NULL (`count()` with FILL(NULL)),
    // whatever the grouped query said of them.
    let nullable = Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    );
    Ok(RecordBatch::try_new(Arc::new(nullable), columns)?)
}

fn fill_column(
    col: &ArrayRef,
    how: &Fill,
    order: &[usize],
    source: &[Option<usize>],
    group: &[usize],
    bucket: &[i64],
) -> Result<ArrayRef> {
    let extra: ArrayRef = match how {
        Fill::Constant(v) => {
            let s = ScalarValue::try_from_string(v.clone(), col.data_type()).map_err(|e| {
                ExecError::new(
                    sqlstate::INVALID_TEXT_REPRESENTATION,
                    format!("FILL({v}): {e}"),
                )
            })?;
            s.to_array_of_size(1)?
        }
        _ => new_null_array(col.data_type(), 1),
    };
    let base = concat(&[col.as_ref(), extra.as_ref()])?;
    let fill_row = col.len();
    // Rows in output order, per group, to find neighbours.
    let mut indices = Vec::with_capacity(order.len());
    let mut prev: HashMap<usize, usize> = HashMap::new();
    for &i in order {
        let idx = match (source[i], how) {
            (Some(r), _) => {
                prev.insert(group[i], r);
                r
            }
            (None, Fill::Prev) => prev.get(&group[i]).copied().unwrap_or(fill_row),
            (None, _) => fill_row,
        };
        indices.push((0usize, idx));
    }
    let filled = interleave(&[base.as_ref()], &indices)?;
    if *how != Fill::Linear {
        return Ok(filled);
    }
    // LINEAR: per group, interpolate filled rows between the known neighbours.
    let values = cast(&filled, &DataType::Float64).map_err(|_| {
        ExecError::new(
            sqlstate::DATATYPE_MISMATCH,
            "FILL(LINEAR) needs a numeric aggregate",
        )
    })?;
    let values = values
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| ExecError::new(sqlstate::INTERNAL_ERROR, "cast to double failed"))?;
    let mut out: Vec<Option<f64>> = (0..values.len())
        .map(|k| (!values.is_null(k)).then(|| values.value(k)))
        .collect();
    let mut per_group: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, &i) in order.iter().enumerate() {
        per_group.entry(group[i]).or_default().push(k);
    }
    for positions in per_group.values() {
        let known: Vec<usize> = positions
            .iter()
            .copied()
            .filter(|&k| source[order[k]].is_some() && out[k].is_some())
            .collect();
        for w in known.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (ta, tb) = (bucket[order[a]] as f64, bucket[order[b]] as f64);
            let (va, vb) = (out[a].unwrap_or_default(), out[b].unwrap_or_default());
            for &k in positions.iter().filter(|&&k| k > a && k < b) {
                let t = bucket[order[k]] as f64;
                out[k] = Some(va + (vb - va) * (t - ta) / (tb - ta));
            }
        }
    }
    Ok(cast(
        &(Arc::new(Float64Array::from(out)) as ArrayRef),
        col.data_type(),
    )?)
}
