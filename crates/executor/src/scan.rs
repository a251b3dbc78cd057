//! The physical scan of one storage table: the pieces of parts and buffered
//! runs a [`TableReader::scan`] chose, read lazily as Arrow batches.
//!
//! A scan is planned as one partition, so a bare scan returns its rows in
//! designated-timestamp order. [`StorageScanExec::split`] cuts it into
//! consecutive stretches of rows, one per core, for plans that do not need
//! that order (`parallel_aggregate.rs` decides where).

use std::fmt;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use tidemark_storage::{Piece, TableReader};

use crate::convert::{read_piece_array, symbol_values};
use crate::provider::to_df;

/// Rows per Arrow batch handed to DataFusion.
const BATCH_ROWS: usize = 64 * 1024;

/// A scan shorter than this stays one stream: splitting costs more than it saves.
const MIN_ROWS_PER_SPLIT: usize = 2 * BATCH_ROWS;

/// The SYMBOL dictionaries of a scan's columns (`None` for other columns), built
/// once and shared by every partition of the scan.
type Dictionaries = Arc<OnceLock<crate::error::Result<Vec<Option<ArrayRef>>>>>;

#[derive(Debug)]
pub(crate) struct StorageScanExec {
    reader: TableReader,
    schema: SchemaRef,
    /// The projected column names, in schema order.
    names: Vec<String>,
    /// The pieces each output partition reads, in timestamp order; the
    /// partitions follow each other in timestamp order too.
    partitions: Vec<Vec<Piece>>,
    dictionaries: Dictionaries,
    properties: Arc<PlanProperties>,
}

impl StorageScanExec {
    /// One partition reading `pieces` (in timestamp order).
    pub(crate) fn new(
        reader: TableReader,
        schema: SchemaRef,
        names: Vec<String>,
        pieces: Vec<Piece>,
    ) -> Self {
        Self::with_partitions(reader, schema, names, vec![pieces], Arc::default())
    }

    fn with_partitions(
        reader: TableReader,
        schema: SchemaRef,
        names: Vec<String>,
        partitions: Vec<Vec<Piece>>,
        dictionaries: Dictionaries,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        StorageScanExec {
            reader,
            schema,
            names,
            partitions,
            dictionaries,
            properties,
        }
    }

    fn rows(&self) -> usize {
        self.partitions.iter().flatten().map(|p| p.rows.len()).sum()
    }

    /// This one-partition scan cut into at most `n` partitions of about equal
    /// rows, each a consecutive stretch in timestamp order; `None` when the scan
    /// is already split or too short to gain from it.
    pub(crate) fn split(&self, n: usize) -> Option<StorageScanExec> {
        let [pieces] = self.partitions.as_slice() else {
            return None;
        };
        let rows = self.rows();
        let n = n.min(rows / MIN_ROWS_PER_SPLIT);
        if n < 2 {
            return None;
        }
        let partitions = cut_into(pieces, rows.div_ceil(n));
        Some(Self::with_partitions(
            self.reader.clone(),
            self.schema.clone(),
            self.names.clone(),
            partitions,
            self.dictionaries.clone(),
        ))
    }

    fn dictionaries(&self) -> crate::error::Result<Vec<Option<ArrayRef>>> {
        self.dictionaries
            .get_or_init(|| {
                self.schema
                    .fields()
                    .iter()
                    .zip(&self.names)
                    .map(|(f, n)| match f.data_type() {
                        DataType::Dictionary(..) => symbol_values(&self.reader, n).map(Some),
                        _ => Ok(None),
                    })
                    .collect()
            })
            .clone()
    }
}

/// `pieces` cut into groups of at most `limit` rows, in order; a piece longer
/// than what is left of a group is cut between two groups.
fn cut_into(pieces: &[Piece], limit: usize) -> Vec<Vec<Piece>> {
    let limit = limit.max(1);
    let mut out: Vec<Vec<Piece>> = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut rows = 0;
    for p in pieces {
        let mut start = p.rows.start;
        while start < p.rows.end {
            let take = (p.rows.end - start).min(limit - rows);
            current.push(Piece {
                source: p.source,
                rows: start..start + take,
            });
            rows += take;
            start += take;
            if rows == limit {
                out.push(std::mem::take(&mut current));
                rows = 0;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl DisplayAs for StorageScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StorageScanExec: table={}, partitions={}, rows={}, columns=[{}]",
            self.reader.name(),
            self.partitions.len(),
            self.rows(),
            self.names.join(", ")
        )
    }
}

impl ExecutionPlan for StorageScanExec {
    fn name(&self) -> &'static str {
        "StorageScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "StorageScanExec has no inputs".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let pieces = self.partitions.get(partition).ok_or_else(|| {
            DataFusionError::Internal(format!(
                "StorageScanExec has {} partitions, not {}",
                self.partitions.len(),
                partition + 1
            ))
        })?;
        let batches = cut_into(pieces, BATCH_ROWS);
        let dictionaries = self.dictionaries();
        let (reader, schema, names) =
            (self.reader.clone(), self.schema.clone(), self.names.clone());
        let batches = batches.into_iter().map(move |pieces| {
            let dictionaries = dictionaries.as_ref().map_err(|e| to_df(e.clone()))?;
            read_batch(&reader, &schema, &names, dictionaries, &pieces)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches),
        )))
    }
}

/// One batch: the projected columns of `pieces`, concatenated.
fn read_batch(
    reader: &TableReader,
    schema: &SchemaRef,
    names: &[String],
    dictionaries: &[Option<ArrayRef>],
    pieces: &[Piece],
) -> DfResult<RecordBatch> {
    let rows: usize = pieces.iter().map(|p| p.rows.len()).sum();
    let arrays = names
        .iter()
        .zip(dictionaries)
        .map(|(n, d)| {
            let parts = pieces
                .iter()
                .map(|p| read_piece_array(reader, p, n, d.as_ref()))
                .collect::<crate::error::Result<Vec<_>>>()
                .map_err(to_df)?;
            match parts.as_slice() {
                [one] => Ok(one.clone()),
                many => {
                    let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
                    Ok(concat(&refs)?)
                }
            }
        })
        .collect::<DfResult<Vec<_>>>()?;
    if arrays.is_empty() {
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        return Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            arrays,
            &options,
        )?);
    }
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_storage::RowSource;

    fn piece(source: RowSource, start: usize, end: usize) -> Piece {
        Piece {
            source,
            rows: start..end,
        }
    }

    #[test]
    fn cut_into_keeps_every_row_once_in_order() {
        let pieces = vec![
            piece(RowSource::Part(0), 10, 25),
            piece(RowSource::Run(0), 0, 3),
            piece(RowSource::Part(1), 0, 12),
        ];
        let groups = cut_into(&pieces, 8);
        assert_eq!(
            groups,
            vec![
                vec![piece(RowSource::Part(0), 10, 18)],
                vec![
                    piece(RowSource::Part(0), 18, 25),
                    piece(RowSource::Run(0), 0, 1)
                ],
                vec![
                    piece(RowSource::Run(0), 1, 3),
                    piece(RowSource::Part(1), 0, 6)
                ],
                vec![piece(RowSource::Part(1), 6, 12)],
            ]
        );
    }
}
