//! One side of a temporal join read into memory and indexed: for each key,
//! its rows' (timestamp, row) in timestamp order, input order among equal
//! timestamps. The memory is reserved from the session's pool, as a hash
//! join's build side is.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{DataFusionError, HashMap, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;

#[derive(Debug)]
pub(super) struct SideIndex {
    /// Every row read, in input order.
    pub(super) rows: RecordBatch,
    pub(super) by_key: HashMap<Box<[u8]>, Vec<(i64, u32)>>,
    /// Rows with a NULL key or timestamp: they match nothing (SPLICE JOIN
    /// still returns them).
    pub(super) unindexed: Vec<(Option<i64>, u32)>,
    /// Turns key columns into the byte keys of `by_key` (None: no keys).
    pub(super) converter: Option<RowConverter>,
    _reservation: MemoryReservation,
}

/// `array` (any timestamp) as microseconds since the epoch.
pub(super) fn micros(array: ArrayRef) -> DfResult<ArrayRef> {
    Ok(cast(
        &array,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?)
}

pub(super) fn evaluate(
    exprs: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
) -> DfResult<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
        .collect()
}

/// Rows whose keys are all non-null (a NULL key matches nothing).
pub(super) fn key_validity(keys: &[ArrayRef]) -> Option<NullBuffer> {
    keys.iter().fold(None, |acc, k| {
        NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref())
    })
}

/// The latest of one key's rows at or before `ts` (strictly before with
/// `strictly`): its timestamp and row.
pub(super) fn latest(group: &[(i64, u32)], ts: i64, strictly: bool) -> Option<(i64, u32)> {
    let end = if strictly {
        group.partition_point(|(t, _)| *t < ts)
    } else {
        group.partition_point(|(t, _)| *t <= ts)
    };
    group.get(end.checked_sub(1)?).copied()
}

impl SideIndex {
    /// Reads all of `input` (one partition) and indexes it by `keys` and `ts`.
    pub(super) async fn read(
        input: Arc<dyn ExecutionPlan>,
        keys: &[Arc<dyn PhysicalExpr>],
        ts: &Arc<dyn PhysicalExpr>,
        context: Arc<TaskContext>,
    ) -> DfResult<SideIndex> {
        let reservation = MemoryConsumer::new("TemporalJoin side").register(context.memory_pool());
        let schema = input.schema();
        let mut stream = input.execute(0, context)?;
        let mut batches = Vec::new();
        let mut by_key: HashMap<Box<[u8]>, Vec<(i64, u32)>> = HashMap::new();
        let mut unindexed = Vec::new();
        let converter = if keys.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                keys.iter()
                    .map(|k| k.data_type(&schema).map(SortField::new))
                    .collect::<DfResult<Vec<_>>>()?,
            )?)
        };
        let mut row_count: usize = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            reservation.try_grow(batch.get_array_memory_size() + batch.num_rows() * 16)?;
            let times = micros(ts.evaluate(&batch)?.into_array(batch.num_rows())?)?;
            let times = times.as_primitive::<TimestampMicrosecondType>();
            let key_columns = evaluate(keys, &batch)?;
            let valid = key_validity(&key_columns);
            let key_rows: Option<Rows> = match &converter {
                Some(c) => Some(c.convert_columns(&key_columns)?),
                None => None,
            };
            for i in 0..batch.num_rows() {
                let row = u32::try_from(row_count + i).map_err(|_| {
                    DataFusionError::ResourcesExhausted(
                        "a temporal join side holds more than 4 billion rows".into(),
                    )
                })?;
                if times.is_null(i) || valid.as_ref().is_some_and(|v| v.is_null(i)) {
                    unindexed.push((times.is_valid(i).then(|| times.value(i)), row));
                    continue;
                }
                let key: &[u8] = key_rows.as_ref().map_or(&[], |r| r.row(i).data());
                match by_key.get_mut(key) {
                    Some(group) => group.push((times.value(i), row)),
                    None => {
                        reservation.try_grow(key.len() + 64)?;
                        by_key.insert(key.into(), vec![(times.value(i), row)]);
                    }
                }
            }
            row_count += batch.num_rows();
            batches.push(batch);
        }
        // Usually in order already (a table scans in timestamp order): the
        // stable sort then only checks it.
        for group in by_key.values_mut() {
            group.sort_by_key(|(ts, _)| *ts);
        }
        let rows = concat_batches(&schema, &batches)?;
        Ok(SideIndex {
            rows,
            by_key,
            unindexed,
            converter,
            _reservation: reservation,
        })
    }
}
