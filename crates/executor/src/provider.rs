//! DataFusion's view of storage: a schema provider over one snapshot and a table
//! provider per table that prunes partitions on the designated timestamp,
//! narrows each part to its row range by binary search, and reads only the
//! projected columns.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{
    Between, BinaryExpr, Cast, Expr, Operator, TableProviderFilterPushDown, TryCast,
};
use datafusion::physical_plan::ExecutionPlan;
use tidemark_storage::name::name_key;
use tidemark_storage::{ColumnType, RowSource, Snapshot, TableReader};

use crate::scan::{StorageScanExec, SymbolFilter};

/// All tables of one snapshot; names resolve case-insensitively.
#[derive(Debug)]
pub(crate) struct SnapshotSchema {
    pub(crate) snapshot: Snapshot,
    pub(crate) scans: Arc<ScanStats>,
    /// A statement's own intermediate table (SAMPLE BY FILL), if any.
    pub(crate) extra: Option<(String, Arc<dyn TableProvider>)>,
    /// The views the statement reads, planned for it, by name key (`views.rs`).
    pub(crate) views: std::collections::HashMap<String, Arc<dyn TableProvider>>,
}

#[async_trait]
impl SchemaProvider for SnapshotSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.snapshot.table_names();
        names.extend(self.extra.iter().map(|(n, _)| n.clone()));
        names.extend(
            self.snapshot
                .views()
                .into_iter()
                .filter(|v| self.views.contains_key(&name_key(&v.name)))
                .map(|v| v.name),
        );
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some((n, t)) = &self.extra
            && n == name
        {
            return Ok(Some(t.clone()));
        }
        if let Some(v) = self.views.get(&name_key(name)) {
            return Ok(Some(v.clone()));
        }
        Ok(self
            .snapshot
            .table(name)
            .map(|t| Arc::new(StorageTable::new(t, self.scans.clone())) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.extra.as_ref().is_some_and(|(n, _)| n == name)
            || self.views.contains_key(&name_key(name))
            || self.snapshot.table(name).is_some()
    }
}

/// What scans did, for EXPLAIN and tests: partition parts opened and pruned.
#[derive(Debug, Default)]
pub(crate) struct ScanStats {
    pub(crate) parts_scanned: AtomicUsize,
    pub(crate) parts_pruned: AtomicUsize,
    /// One line per scan planned since the last `take_log`.
    log: parking_lot::Mutex<Vec<String>>,
}

impl ScanStats {
    pub(crate) fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock())
    }
}

#[derive(Debug)]
pub(crate) struct StorageTable {
    reader: TableReader,
    schema: SchemaRef,
    scans: Arc<ScanStats>,
}

impl StorageTable {
    pub(crate) fn new(reader: TableReader, scans: Arc<ScanStats>) -> Self {
        let schema = table_schema(&reader);
        StorageTable {
            reader,
            schema,
            scans,
        }
    }

    /// The table, as of the snapshot this provider reads.
    pub(crate) fn reader(&self) -> &TableReader {
        &self.reader
    }
}

pub(crate) fn table_schema(reader: &TableReader) -> SchemaRef {
    Arc::new(Schema::new(
        reader
            .meta()
            .columns
            .iter()
            .map(|c| crate::types::column_field(&c.name, c.column_type, !c.not_null))
            .collect::<Vec<_>>(),
    ))
}

#[async_trait]
impl TableProvider for StorageTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filter_pushdown(filters, Some(&self.reader)))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let projected = Arc::new(self.schema.project(&columns)?);
        let (lo, hi) = match self.reader.meta().timestamp_name() {
            Some(ts) => timestamp_bounds(filters, ts),
            None => (i64::MIN, i64::MAX),
        };
        let names: Vec<String> = columns
            .iter()
            .map(|&i| self.schema.field(i).name().clone())
            .collect();
        // Planning decides which rows to read, from which parts and buffered
        // runs, in timestamp order (metadata, binary searches, and a merge of the
        // timestamps where buffered rows interleave with the files); the rows
        // themselves are read when the stream is polled.
        let plan = self.reader.scan(lo, hi).map_err(|e| to_df(e.into()))?;
        self.scans
            .parts_scanned
            .fetch_add(plan.parts_scanned, Ordering::Relaxed);
        self.scans
            .parts_pruned
            .fetch_add(plan.parts_pruned, Ordering::Relaxed);
        let range = match (lo, hi) {
            (i64::MIN, i64::MAX) => String::new(),
            (lo, hi) => format!(", timestamp range [{lo}, {hi}) µs"),
        };
        let buffered: usize = plan
            .pieces
            .iter()
            .filter(|p| matches!(p.source, RowSource::Run(_)))
            .map(|p| p.rows.len())
            .sum();
        self.scans.log.lock().push(format!(
            "table={}: partitions scanned {} of {}, rows {} ({buffered} buffered), columns [{}]{range}",
            self.reader.name(),
            plan.parts_scanned,
            plan.parts_scanned + plan.parts_pruned,
            plan.rows(),
            names.join(", ")
        ));
        Ok(Arc::new(StorageScanExec::new(
            self.reader.clone(),
            projected,
            names,
            plan.pieces,
            symbol_filters(filters, &self.reader),
        )))
    }
}

pub(crate) fn to_df(e: crate::error::ExecError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The `[lo, hi)` range of designated timestamps that `filters` (ANDed) allow.
fn timestamp_bounds(filters: &[Expr], ts: &str) -> (i64, i64) {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    for f in filters {
        bound(f, ts, &mut lo, &mut hi);
    }
    (lo, hi)
}

/// Narrows `[lo, hi)` by what `e` says of the designated timestamp; true when
/// the narrowed range expresses all of `e` (the rows in it are exactly the rows
/// `e` keeps), so the filter need not be tested again row by row.
fn bound(e: &Expr, ts: &str, lo: &mut i64, hi: &mut i64) -> bool {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            // Both sides narrow the range, whatever the first one answers.
            let left = bound(left, ts, lo, hi);
            bound(right, ts, lo, hi) && left
        }
        // Either side: the range covering both (a repeating interval is an OR of
        // ranges). It keeps rows between them too, so the filter runs row by row.
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (mut left_lo, mut left_hi, mut right_lo, mut right_hi) = (*lo, *hi, *lo, *hi);
            bound(left, ts, &mut left_lo, &mut left_hi);
            bound(right, ts, &mut right_lo, &mut right_hi);
            *lo = left_lo.min(right_lo);
            *hi = left_hi.max(right_hi);
            false
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, v) = match (
                is_ts(left, ts),
                micros(right),
                is_ts(right, ts),
                micros(left),
            ) {
                (true, Some(v), _, _) => (*op, v),
                (_, _, true, Some(v)) => match op.swap() {
                    Some(o) => (o, v),
                    None => return false,
                },
                _ => return false,
            };
            // `v` is (floor, ceil) of the literal in microseconds (equal when it is
            // a whole microsecond): the bounds keep exactly the rows that can match.
            match op {
                Operator::Gt => *lo = (*lo).max(v.0.saturating_add(1)),
                Operator::GtEq => *lo = (*lo).max(v.1),
                Operator::Lt => *hi = (*hi).min(v.1),
                Operator::LtEq => *hi = (*hi).min(v.0.saturating_add(1)),
                Operator::Eq => {
                    *lo = (*lo).max(v.1);
                    *hi = (*hi).min(v.0.saturating_add(1));
                }
                _ => return false,
            }
            true
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_ts(expr, ts) => {
            let (Some(a), Some(b)) = (micros(low), micros(high)) else {
                return false;
            };
            *lo = (*lo).max(a.1);
            *hi = (*hi).min(b.0.saturating_add(1));
            true
        }
        _ => false,
    }
}

fn is_ts(e: &Expr, ts: &str) -> bool {
    matches!(e, Expr::Column(c) if c.name == ts)
}

/// A timestamp literal as (floor, ceil) microseconds.
fn micros(e: &Expr) -> Option<(i64, i64)> {
    let exact = |v: i64| Some((v, v));
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampMicrosecond(Some(v), _) => exact(*v),
            ScalarValue::TimestampNanosecond(Some(v), _) => {
                let f = v.div_euclid(1000);
                Some((f, if v.rem_euclid(1000) == 0 { f } else { f + 1 }))
            }
            ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1000).and_then(exact),
            ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000).and_then(exact),
            _ => None,
        },
        _ => None,
    }
}

/// The filters among `filters` that keep rows whose SYMBOL column equals one
/// of some strings (`sym = 'A'`, `sym IN ('A', 'B')`): the scan tests those on
/// the stored keys (`scan.rs`).
fn symbol_filters(filters: &[Expr], reader: &TableReader) -> Vec<SymbolFilter> {
    filters
        .iter()
        .filter_map(|f| symbol_filter(f, reader))
        .collect()
}

/// `f` as a filter the scan applies to a SYMBOL column's stored keys:
/// `sym = 'A'`, `sym IN (...)`, and ORs of them (DataFusion writes a short IN
/// list as ORs). The scan applies it exactly (a row passes when its key is
/// one of the values' keys; NULL never does), so DataFusion need not test it
/// again.
fn symbol_filter(f: &Expr, reader: &TableReader) -> Option<SymbolFilter> {
    let symbol_column = |e: &Expr| -> Option<String> {
        let name = column_name(e)?;
        let meta = reader.meta();
        let i = meta.column_index(name)?;
        (meta.columns[i].column_type == ColumnType::Symbol).then(|| meta.columns[i].name.clone())
    };
    fn wanted(
        e: &Expr,
        symbol_column: &dyn Fn(&Expr) -> Option<String>,
    ) -> Option<(String, Vec<String>)> {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => match (symbol_column(left), string(right)) {
                (Some(c), Some(v)) => Some((c, vec![v])),
                _ => Some((symbol_column(right)?, vec![string(left)?])),
            },
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => Some((
                symbol_column(expr)?,
                list.iter().map(string).collect::<Option<Vec<_>>>()?,
            )),
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                let (column, mut values) = wanted(left, symbol_column)?;
                let (other, more) = wanted(right, symbol_column)?;
                (column == other).then(|| {
                    values.extend(more);
                    (column, values)
                })
            }
            _ => None,
        }
    }
    wanted(f, &symbol_column).map(|(column, values)| SymbolFilter { column, values })
}

/// The column `e` reads, through casts to text.
fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(&c.name),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if matches!(
                field.data_type(),
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Dictionary(..)
            ) =>
        {
            column_name(expr)
        }
        _ => None,
    }
}

/// A non-NULL text literal.
fn string(e: &Expr) -> Option<String> {
    fn text(v: &ScalarValue) -> Option<String> {
        match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
            ScalarValue::Dictionary(_, v) => text(v),
            _ => None,
        }
    }
    match e {
        Expr::Literal(v, _) => text(v),
        _ => None,
    }
}

/// How a storage table takes filters: a comparison of the designated
/// timestamp with a timestamp literal (or an AND or BETWEEN of such) is exact,
/// because the scan reads exactly the rows of the `[lo, hi)` range it gives
/// (`TableReader::scan` cuts every part and buffered run by binary search), so
/// DataFusion need not test it again row by row; so is a filter on a SYMBOL
/// column's values that the scan tests on the stored keys ([`symbol_filter`]).
/// Every other filter is applied by DataFusion to what the scan returns.
/// `reader` is `None` where the table is not known yet (a kept plan's unbound
/// table): then nothing is exact.
pub(crate) fn filter_pushdown(
    filters: &[&Expr],
    reader: Option<&TableReader>,
) -> Vec<TableProviderFilterPushDown> {
    let ts = reader.and_then(|r| r.meta().timestamp_name());
    filters
        .iter()
        .map(|f| {
            let (mut lo, mut hi) = (i64::MIN, i64::MAX);
            let by_range = ts.is_some_and(|ts| bound(f, ts, &mut lo, &mut hi));
            let by_keys = reader.is_some_and(|r| symbol_filter(f, r).is_some());
            if by_range || by_keys {
                TableProviderFilterPushDown::Exact
            } else {
                TableProviderFilterPushDown::Inexact
            }
        })
        .collect()
}
