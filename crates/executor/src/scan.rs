//! The physical scan of one storage table: the pieces of parts and buffered
//! runs a [`TableReader::scan`] chose, read lazily as Arrow batches.
//!
//! A scan is planned as one partition, so a bare scan returns its rows in
//! designated-timestamp order. [`StorageScanExec::split`] cuts it into
//! consecutive stretches of rows, one per core, for plans that do not need
//! that order (`parallel_aggregate.rs` decides where).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, BooleanBufferBuilder, Int32Array};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::concat;
use datafusion::arrow::compute::kernels::cmp::eq;
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
use parking_lot::Mutex;
use tidemark_storage::{PartIndex, Piece, RowSource, TableReader};

use crate::convert::{read_piece_array, read_piece_rows, symbol_keys, symbol_values};
use crate::provider::to_df;

/// Rows per Arrow batch handed to DataFusion.
const BATCH_ROWS: usize = 64 * 1024;

/// A scan shorter than this stays one stream: splitting costs more than it saves.
const MIN_ROWS_PER_SPLIT: usize = 2 * BATCH_ROWS;

/// The SYMBOL dictionaries of a scan's columns (`None` for other columns), built
/// on first use and shared by every partition of the scan, and by the plan
/// nodes above it that read SYMBOL keys (`symbol_grouping.rs`): every SYMBOL
/// array the scan yields has these values, so its keys mean the same in
/// every batch.
#[derive(Debug)]
pub(crate) struct SymbolDictionaries {
    reader: TableReader,
    schema: SchemaRef,
    names: Vec<String>,
    built: OnceLock<crate::error::Result<Vec<Option<ArrayRef>>>>,
}

impl SymbolDictionaries {
    fn all(&self) -> crate::error::Result<&[Option<ArrayRef>]> {
        self.built
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
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }

    /// The dictionary values of the scan's column `column`, a SYMBOL column.
    pub(crate) fn values(&self, column: usize) -> crate::error::Result<&ArrayRef> {
        self.all()?
            .get(column)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                crate::error::ExecError::new(
                    crate::error::sqlstate::INTERNAL_ERROR,
                    format!(
                        "scan column {column} of table {} is not a SYMBOL column",
                        self.reader.name()
                    ),
                )
            })
    }
}

type Dictionaries = Arc<SymbolDictionaries>;

/// A filter the scan applies itself: SYMBOL column `column` equal to one of
/// `values` (`sym = 'A'`, `sym IN ('A', 'B')`), tested on the stored keys
/// before any other column is read, so rows of other symbols are never
/// decoded. DataFusion still applies the filter above the scan (it is pushed
/// down as inexact): this only drops rows the filter drops anyway.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SymbolFilter {
    pub(crate) column: String,
    pub(crate) values: Vec<String>,
}

/// A [`SymbolFilter`] resolved against the snapshot's dictionary: which keys
/// it keeps.
#[derive(Debug)]
struct KeyFilter {
    column: String,
    /// The keys kept (for a short list compared with Arrow's vectorized
    /// kernel, one pass per key).
    keys: Vec<i32>,
    /// `kept[k]`: rows with key `k` pass (for a long list, one lookup a row).
    kept: Vec<bool>,
    /// The column's symbol index in each part that has one (`None`: read the
    /// keys), opened once per scan.
    indexes: Mutex<HashMap<usize, Option<Arc<PartIndex>>>>,
}

/// Up to this many wanted keys, a filter compares each row with each key.
const COMPARED_KEYS: usize = 4;

impl KeyFilter {
    fn resolve(reader: &TableReader, filter: &SymbolFilter) -> crate::error::Result<KeyFilter> {
        let (dictionary, _) = reader.symbol_dictionary(&filter.column)?;
        let wanted: HashSet<&str> = filter.values.iter().map(String::as_str).collect();
        let kept: Vec<bool> = dictionary.iter().map(|v| wanted.contains(&**v)).collect();
        let keys = (0..kept.len())
            .filter(|&k| kept[k])
            .filter_map(|k| i32::try_from(k).ok())
            .collect();
        Ok(KeyFilter {
            column: filter.column.clone(),
            keys,
            kept,
            indexes: Mutex::default(),
        })
    }

    /// Part `part`'s symbol index of the column, if it has one.
    fn index(
        &self,
        reader: &TableReader,
        part: usize,
    ) -> crate::error::Result<Option<Arc<PartIndex>>> {
        if let Some(known) = self.indexes.lock().get(&part) {
            return Ok(known.clone());
        }
        let index = reader.symbol_index(part, &self.column)?.map(Arc::new);
        self.indexes.lock().insert(part, index.clone());
        Ok(index)
    }

    /// Which rows of `piece` pass, from the symbol index of its part when
    /// there is one, else from the stored keys (NULL, key -1, never passes).
    fn rows_kept(
        &self,
        reader: &TableReader,
        piece: &Piece,
    ) -> crate::error::Result<BooleanBuffer> {
        if let RowSource::Part(part) = piece.source
            && let Some(index) = self.index(reader, part)?
        {
            let mut rows = BooleanBufferBuilder::new(piece.rows.len());
            rows.append_n(piece.rows.len(), false);
            for row in index.rows_with(&self.keys, piece.rows.clone()) {
                rows.set_bit(row - piece.rows.start, true);
            }
            return Ok(rows.finish());
        }
        let keys = Int32Array::new(symbol_keys(reader, piece, &self.column)?, None);
        if self.keys.len() > COMPARED_KEYS {
            let kept =
                |k: i32| usize::try_from(k).ok().and_then(|k| self.kept.get(k)) == Some(&true);
            return Ok(BooleanBuffer::collect_bool(keys.len(), |i| {
                kept(keys.value(i))
            }));
        }
        let mut rows = BooleanBuffer::new_unset(keys.len());
        for &key in &self.keys {
            let hits = eq(&keys, &Int32Array::new_scalar(key))?;
            rows = &rows | hits.values();
        }
        Ok(rows)
    }
}

/// The rows of `pieces` that pass every filter, or `None` when there are no
/// filters.
fn rows_kept(
    reader: &TableReader,
    filters: &[KeyFilter],
    pieces: &[Piece],
) -> crate::error::Result<Option<BooleanBuffer>> {
    let mut kept: Option<BooleanBuffer> = None;
    for filter in filters {
        let mut rows = BooleanBufferBuilder::new(pieces.iter().map(|p| p.rows.len()).sum());
        for piece in pieces {
            rows.append_buffer(&filter.rows_kept(reader, piece)?);
        }
        let rows = rows.finish();
        kept = Some(match kept {
            Some(k) => &k & &rows,
            None => rows,
        });
    }
    Ok(kept)
}

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
    symbol_filters: Vec<SymbolFilter>,
    /// `symbol_filters` resolved to keys, once, for every partition.
    key_filters: Arc<OnceLock<crate::error::Result<Vec<KeyFilter>>>>,
    properties: Arc<PlanProperties>,
}

impl StorageScanExec {
    /// One partition reading `pieces` (in timestamp order), keeping the rows
    /// that pass `symbol_filters`.
    pub(crate) fn new(
        reader: TableReader,
        schema: SchemaRef,
        names: Vec<String>,
        pieces: Vec<Piece>,
        symbol_filters: Vec<SymbolFilter>,
    ) -> Self {
        let dictionaries = Arc::new(SymbolDictionaries {
            reader: reader.clone(),
            schema: schema.clone(),
            names: names.clone(),
            built: OnceLock::new(),
        });
        StorageScanExec {
            properties: plan_properties(&schema, 1),
            reader,
            schema,
            names,
            partitions: vec![pieces],
            dictionaries,
            symbol_filters,
            key_filters: Arc::default(),
        }
    }

    /// The same scan reading `partitions`.
    fn with_partitions(&self, partitions: Vec<Vec<Piece>>) -> Self {
        StorageScanExec {
            properties: plan_properties(&self.schema, partitions.len()),
            reader: self.reader.clone(),
            schema: self.schema.clone(),
            names: self.names.clone(),
            partitions,
            dictionaries: self.dictionaries.clone(),
            symbol_filters: self.symbol_filters.clone(),
            key_filters: self.key_filters.clone(),
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
        Some(self.with_partitions(cut_into(pieces, rows.div_ceil(n))))
    }

    /// Whether output column `column` is the table's designated timestamp,
    /// by which every partition of this scan is in ascending order.
    pub(crate) fn ordered_by(&self, column: usize) -> bool {
        let designated = self.reader.meta().timestamp_name();
        designated.is_some() && self.names.get(column).map(String::as_str) == designated
    }

    /// The SYMBOL dictionaries this scan's arrays are built on.
    pub(crate) fn dictionaries(&self) -> &Dictionaries {
        &self.dictionaries
    }
}

/// A scan of `partitions` unordered streams (`EXPLAIN` and DataFusion's
/// planning read these).
fn plan_properties(schema: &SchemaRef, partitions: usize) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema.clone()),
        Partitioning::UnknownPartitioning(partitions),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
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
        )?;
        let meta = self.reader.meta();
        for filter in &self.symbol_filters {
            let indexed = meta
                .column_index(&filter.column)
                .is_some_and(|i| meta.columns[i].index.is_some());
            write!(
                f,
                ", symbol filter: {} IN ({} values){}",
                filter.column,
                filter.values.len(),
                if indexed { " by index" } else { "" }
            )?;
        }
        Ok(())
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
        let dictionaries = self.dictionaries.clone();
        let key_filters = self.key_filters.clone();
        let symbol_filters = self.symbol_filters.clone();
        let (reader, schema, names) =
            (self.reader.clone(), self.schema.clone(), self.names.clone());
        let batches = batches.into_iter().filter_map(move |pieces| {
            let key_filters = key_filters
                .get_or_init(|| {
                    symbol_filters
                        .iter()
                        .map(|f| KeyFilter::resolve(&reader, f))
                        .collect()
                })
                .as_ref()
                .map_err(|e| to_df(e.clone()));
            let kept = match key_filters.and_then(|f| rows_kept(&reader, f, &pieces).map_err(to_df))
            {
                Ok(kept) => kept,
                Err(e) => return Some(Err(e)),
            };
            let kept = match kept.as_ref().map(|k| (k.count_set_bits(), k.len())) {
                // A batch without a row of the wanted symbols reads nothing more.
                Some((0, _)) => return None,
                // Every row kept: no filtering to do.
                Some((n, len)) if n == len => None,
                _ => kept,
            };
            Some(
                dictionaries
                    .all()
                    .map_err(to_df)
                    .and_then(|d| read_batch(&reader, &schema, &names, d, &pieces, kept.as_ref())),
            )
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches),
        )))
    }
}

/// One batch: the projected columns of `pieces`, concatenated; only the rows
/// `kept` marks, when given (one flag per row of `pieces`).
fn read_batch(
    reader: &TableReader,
    schema: &SchemaRef,
    names: &[String],
    dictionaries: &[Option<ArrayRef>],
    pieces: &[Piece],
    kept: Option<&BooleanBuffer>,
) -> DfResult<RecordBatch> {
    let rows = match kept {
        Some(k) => k.count_set_bits(),
        None => pieces.iter().map(|p| p.rows.len()).sum(),
    };
    let arrays = names
        .iter()
        .zip(dictionaries)
        .map(|(n, d)| {
            let mut offset = 0;
            let parts = pieces
                .iter()
                .map(|p| {
                    let rows_of_piece = kept.map(|k| k.slice(offset, p.rows.len()));
                    offset += p.rows.len();
                    match rows_of_piece {
                        Some(k) => read_piece_rows(reader, p, n, d.as_ref(), &k),
                        None => read_piece_array(reader, p, n, d.as_ref()),
                    }
                })
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
