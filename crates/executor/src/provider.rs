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
        let meta = self.reader.meta();
        let (lo, hi) = match meta.timestamp_name() {
            Some(ts) => timestamp_bounds(filters, ts, unit_nanos(meta)),
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
            (lo, hi) if unit_nanos(meta) == 1 => format!(", timestamp range [{lo}, {hi}) ns"),
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

/// Nanoseconds per unit of a table's designated timestamp.
fn unit_nanos(meta: &tidemark_storage::TableMeta) -> i64 {
    1_000 / meta.partitioning().per_micro
}

/// The `[lo, hi)` range of designated timestamps that `filters` (ANDed) allow,
/// in the timestamp's unit (`unit_nanos` nanoseconds).
fn timestamp_bounds(filters: &[Expr], ts: &str, unit_nanos: i64) -> (i64, i64) {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    for f in filters {
        bound(f, ts, unit_nanos, &mut lo, &mut hi);
    }
    (lo, hi)
}

/// Narrows `[lo, hi)` by what `e` says of the designated timestamp; true when
/// the narrowed range expresses all of `e` (the rows in it are exactly the rows
/// `e` keeps), so the filter need not be tested again row by row.
fn bound(e: &Expr, ts: &str, unit_nanos: i64, lo: &mut i64, hi: &mut i64) -> bool {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            // Both sides narrow the range, whatever the first one answers.
            let left = bound(left, ts, unit_nanos, lo, hi);
            bound(right, ts, unit_nanos, lo, hi) && left
        }
        // Either side: the range covering both (a repeating interval is an OR of
        // ranges). It keeps rows between them too, so the filter runs row by row.
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (mut left_lo, mut left_hi, mut right_lo, mut right_hi) = (*lo, *hi, *lo, *hi);
            bound(left, ts, unit_nanos, &mut left_lo, &mut left_hi);
            bound(right, ts, unit_nanos, &mut right_lo, &mut right_hi);
            *lo = left_lo.min(right_lo);
            *hi = left_hi.max(right_hi);
            false
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, v) = match (
                is_ts(left, ts),
                in_unit(right, unit_nanos),
                is_ts(right, ts),
                in_unit(left, unit_nanos),
            ) {
                (true, Some(v), _, _) => (*op, v),
                (_, _, true, Some(v)) => match op.swap() {
                    Some(o) => (o, v),
                    None => return false,
                },
                _ => return false,
            };
            // `v` is (floor, ceil) of the literal in the timestamp's unit (equal
            // when it is a whole unit): the bounds keep exactly the rows that can match.
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
            let (Some(a), Some(b)) = (in_unit(low, unit_nanos), in_unit(high, unit_nanos)) else {
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

/// A timestamp literal as (floor, ceil) in the designated timestamp's unit,
/// `unit_nanos` nanoseconds (1,000 for microseconds, 1 for nanoseconds).
fn in_unit(e: &Expr, unit_nanos: i64) -> Option<(i64, i64)> {
    let (v, nanos) = match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampNanosecond(Some(v), _) => (*v, 1),
            ScalarValue::TimestampMicrosecond(Some(v), _) => (*v, 1_000),
            ScalarValue::TimestampMillisecond(Some(v), _) => (*v, 1_000_000),
            ScalarValue::TimestampSecond(Some(v), _) => (*v, 1_000_000_000),
            _ => return None,
        },
        _ => return None,
    };
    if nanos >= unit_nanos {
        let exact = v.checked_mul(nanos / unit_nanos)?;
        return Some((exact, exact));
    }
    let per = unit_nanos / nanos;
    let floor = v.div_euclid(per);
    Some((
        floor,
        if v.rem_euclid(per) == 0 {
            floor
        } else {
            floor + 1
        },
    ))
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
    let ts = reader.and_then(|r| Some((r.meta().timestamp_name()?, unit_nanos(r.meta()))));
    filters
        .iter()
        .map(|f| {
            let (mut lo, mut hi) = (i64::MIN, i64::MAX);
            let by_range = ts.is_some_and(|(ts, unit)| bound(f, ts, unit, &mut lo, &mut hi));
            let by_keys = reader.is_some_and(|r| symbol_filter(f, r).is_some());
            if by_range || by_keys {
                TableProviderFilterPushDown::Exact
            } else {
                TableProviderFilterPushDown::Inexact
            }
        })
        .collect()
}
