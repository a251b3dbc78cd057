//! System table functions: `tables()`, `table_columns('t')`,
//! `table_partitions('t')`, `wal_tables()`, `table_storage()` and
//! `memory_metrics()`; and
//! `tidemark_relation_size('t')`, what `pg_table_size`, `pg_relation_size` and
//! `pg_total_relation_size` become (`catalog_rewrite.rs`): a table's bytes on
//! disk; NULL for a catalog relation, 42P01 for a name written in the statement
//! that names no relation; `pg_database_size` and `pg_tablespace_size`: the
//! bytes of every table.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    create_udf,
};
use datafusion::sql::sqlparser::ast;
use tidemark_storage::{Snapshot, TableReader};

use crate::error::{ExecError, sqlstate};
use crate::provider::to_df;

pub(crate) fn register(ctx: &SessionContext, snapshot: Snapshot) {
    ctx.register_udtf(
        "tables",
        Arc::new(Tables {
            snapshot: snapshot.clone(),
        }),
    );
    ctx.register_udtf(
        "table_columns",
        Arc::new(TableColumns {
            snapshot: snapshot.clone(),
        }),
    );
    ctx.register_udtf(
        "table_partitions",
        Arc::new(TablePartitions {
            snapshot: snapshot.clone(),
        }),
    );
    ctx.register_udtf(
        "wal_tables",
        Arc::new(WalTables {
            snapshot: snapshot.clone(),
        }),
    );
    ctx.register_udtf(
        "table_storage",
        Arc::new(TableStorage {
            snapshot: snapshot.clone(),
        }),
    );
    ctx.register_udf(relation_size(snapshot.clone()));
    for name in ["pg_database_size", "pg_tablespace_size"] {
        ctx.register_udf(ScalarUDF::from(TotalSize {
            name,
            signature: Signature::any(1, Volatility::Stable),
            snapshot: snapshot.clone(),
        }));
    }
}

/// `pg_database_size(name or oid)` (psql's `\l+`) and `pg_tablespace_size(...)`
/// (`\db+`): the bytes on disk of every table in the statement's snapshot,
/// as the root is the one database and its one tablespace.
#[derive(Debug)]
struct TotalSize {
    name: &'static str,
    signature: Signature,
    snapshot: Snapshot,
}

impl PartialEq for TotalSize {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TotalSize {}

impl std::hash::Hash for TotalSize {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for TotalSize {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let total = self
            .snapshot
            .tables()
            .iter()
            .map(|t| t.disk_size())
            .fold(0u64, u64::saturating_add);
        let total = ScalarValue::Int64(Some(i64::try_from(total).unwrap_or(i64::MAX)));
        Ok(match args.args.first() {
            Some(ColumnarValue::Array(a)) => ColumnarValue::Array(total.to_array_of_size(a.len())?),
            _ => ColumnarValue::Scalar(total),
        })
    }
}

/// `tidemark_relation_size(name)`: the bytes on disk of the table `name` in
/// the statement's snapshot (NULL for anything else: a view of the catalog).
fn relation_size(snapshot: Snapshot) -> ScalarUDF {
    create_udf(
        RELATION_SIZE,
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let size = |name: Option<&str>| {
                name.and_then(|n| snapshot.table(n))
                    .map(|t| i64::try_from(t.disk_size()).unwrap_or(i64::MAX))
            };
            match args {
                [ColumnarValue::Array(a)] => {
                    let Some(names) = a.as_string_opt::<i32>() else {
                        return exec_err!("{RELATION_SIZE} of {}", a.data_type());
                    };
                    let sizes: Int64Array = names.iter().map(size).collect();
                    Ok(ColumnarValue::Array(Arc::new(sizes) as ArrayRef))
                }
                // A name written in the statement (`pg_relation_size('t')`)
                // must name a relation, as PostgreSQL's regclass input demands.
                [ColumnarValue::Scalar(ScalarValue::Utf8(Some(name)))] => {
                    let table = relation_name(name);
                    match size(table.as_deref()) {
                        Some(bytes) => Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(bytes)))),
                        None if is_catalog_relation(table.as_deref().unwrap_or(name)) => {
                            Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)))
                        }
                        None => Err(datafusion::error::DataFusionError::External(Box::new(
                            ExecError::new(
                                sqlstate::UNDEFINED_TABLE,
                                format!("relation \"{name}\" does not exist"),
                            ),
                        ))),
                    }
                }
                [ColumnarValue::Scalar(ScalarValue::Utf8(None))] => {
                    Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)))
                }
                other => exec_err!("{RELATION_SIZE} of {other:?}"),
            }
        }),
    )
}

pub(crate) const RELATION_SIZE: &str = "tidemark_relation_size";

/// The table a relation name given as text names (`'t'`, `'public."T"'`), read
/// as PostgreSQL's regclass input reads it: as an identifier, folded unless
/// quoted. None when the text is no name of a table in `public`.
fn relation_name(text: &str) -> Option<String> {
    let parts = match crate::rewrite::parse_expr(text).ok()? {
        ast::Expr::Identifier(ident) => vec![ident],
        ast::Expr::CompoundIdentifier(parts) => parts,
        _ => return None,
    };
    crate::ddl::object_name(&ast::ObjectName::from(parts)).ok()
}

/// Whether `name` is one of the catalog's relations (`pg_class`,
/// `information_schema.columns`): they exist, but are views with no bytes on disk.
fn is_catalog_relation(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("pg_") || lower.starts_with("information_schema.")
}

fn ts_field(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
}

fn ts_or_null(v: i64) -> Option<i64> {
    (v != i64::MIN).then_some(v)
}

#[derive(Debug)]
struct Tables {
    snapshot: Snapshot,
}

impl TableFunctionImpl for Tables {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("tables() takes no arguments");
        }
        let tables = self.snapshot.tables();
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, false),
            Field::new("designated_timestamp", DataType::Utf8, true),
            Field::new("partition_by", DataType::Utf8, false),
            Field::new("row_count", DataType::Int64, false),
            Field::new("partitions", DataType::Int64, false),
            Field::new("disk_size", DataType::Int64, false),
            Field::new("buffered_rows", DataType::Int64, false),
            Field::new("ttl_value", DataType::Int64, false),
            Field::new("ttl_unit", DataType::Utf8, true),
            Field::new("dedup", DataType::Boolean, false),
            // QuestDB's names for the same facts, folded to lower case so that
            // `designatedTimestamp` written unquoted finds them; every table
            // has the write-ahead log.
            Field::new("id", DataType::Int64, false),
            Field::new("designatedtimestamp", DataType::Utf8, true),
            Field::new("partitionby", DataType::Utf8, false),
            Field::new("walenabled", DataType::Boolean, false),
            Field::new("directoryname", DataType::Utf8, false),
        ]));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            tables.iter().map(|t| t.name().to_string()),
        ));
        let designated: ArrayRef = Arc::new(StringArray::from(
            tables
                .iter()
                .map(|t| t.meta().timestamp_name().map(str::to_string))
                .collect::<Vec<_>>(),
        ));
        let partition_by: ArrayRef = Arc::new(StringArray::from_iter_values(
            tables.iter().map(|t| t.partition_by().name()),
        ));
        let columns: Vec<ArrayRef> = vec![
            names.clone(),
            designated.clone(),
            partition_by.clone(),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| t.row_count() as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(partition_count),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| t.disk_size() as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| t.buffered_rows() as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables
                    .iter()
                    .map(|t| t.meta().ttl.map_or(0, |ttl| i64::from(ttl.count))),
            )),
            Arc::new(StringArray::from(
                tables
                    .iter()
                    .map(|t| t.meta().ttl.map(|ttl| ttl.unit.name()))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from_iter(
                tables.iter().map(|t| Some(!t.meta().dedup_keys.is_empty())),
            )),
            Arc::new(Int64Array::from_iter_values(1..=tables.len() as i64)),
            designated,
            partition_by,
            Arc::new(BooleanArray::from(vec![true; tables.len()])),
            names,
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// QuestDB's `wal_tables()`: per table, whether it is suspended (never: a
/// failed apply is retried), `writerTxn` (the newest commit whose changes are
/// all in the table's files), `sequencerTxn` (the newest commit that changed
/// it) and the rows between them, still in the write buffer. Commits are
/// visible to queries as soon as they are durable, applied or not; the two
/// numbers meet once the background apply has caught up. The column names are
/// folded to lower case, so that `writerTxn` written unquoted finds them.
#[derive(Debug)]
struct WalTables {
    snapshot: Snapshot,
}

impl TableFunctionImpl for WalTables {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("wal_tables() takes no arguments");
        }
        let tables = self.snapshot.tables();
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("suspended", DataType::Boolean, false),
            Field::new("writertxn", DataType::Int64, false),
            Field::new("sequencertxn", DataType::Int64, false),
            Field::new("buffered_rows", DataType::Int64, false),
        ]));
        let seq = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                tables.iter().map(|t| t.name().to_string()),
            )),
            Arc::new(BooleanArray::from(vec![false; tables.len()])),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| seq(t.txn())),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| seq(t.newest_txn())),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| seq(t.buffered_rows())),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// QuestDB's `table_storage()`: per table, its partitioning, partitions,
/// rows and bytes on disk (`walEnabled` always true: every table commits
/// through the one write-ahead log). Names folded to lower case, as in
/// `tables()`, so that `tableName` written unquoted finds them.
#[derive(Debug)]
struct TableStorage {
    snapshot: Snapshot,
}

impl TableFunctionImpl for TableStorage {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("table_storage() takes no arguments");
        }
        let tables = self.snapshot.tables();
        let schema = Arc::new(Schema::new(vec![
            Field::new("tablename", DataType::Utf8, false),
            Field::new("walenabled", DataType::Boolean, false),
            Field::new("partitionby", DataType::Utf8, false),
            Field::new("partitioncount", DataType::Int64, false),
            Field::new("rowcount", DataType::Int64, false),
            Field::new("disksize", DataType::Int64, false),
        ]));
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                tables.iter().map(|t| t.name().to_string()),
            )),
            Arc::new(BooleanArray::from(vec![true; tables.len()])),
            Arc::new(StringArray::from_iter_values(
                tables.iter().map(|t| t.partition_by().name()),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(partition_count),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| count(t.row_count())),
            )),
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|t| count(t.disk_size())),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// QuestDB's `memory_metrics()`: what the server holds, by tag: `RSS` (the
/// process's resident memory), `WRITE_BUFFER` (committed rows not yet in the
/// column files; `storage.write_buffer_mb` bounds it) and `QUERY_POOL` (what
/// running queries have reserved; `server.query_memory_mb` bounds it).
#[derive(Debug)]
pub(crate) struct MemoryMetrics {
    pub(crate) db: Arc<tidemark_storage::Database>,
    pub(crate) runtime: Option<Arc<datafusion::execution::runtime_env::RuntimeEnv>>,
}

impl TableFunctionImpl for MemoryMetrics {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("memory_metrics() takes no arguments");
        }
        let bytes = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let query_pool = self
            .runtime
            .as_ref()
            .map_or(0, |r| r.memory_pool.reserved());
        let rows: [(&str, Option<i64>); 3] = [
            ("RSS", resident_bytes().map(bytes)),
            ("WRITE_BUFFER", Some(bytes(self.db.stats().buffered_bytes))),
            (
                "QUERY_POOL",
                Some(i64::try_from(query_pool).unwrap_or(i64::MAX)),
            ),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("memory_tag", DataType::Utf8, false),
            Field::new("bytes", DataType::Int64, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// The process's resident memory (`VmRSS`), where `/proc` tells it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// A table's partitions (a partition of several parts counted once).
fn partition_count(t: &TableReader) -> i64 {
    let mut names: Vec<String> = t.partitions().into_iter().map(|p| p.name).collect();
    names.dedup();
    i64::try_from(names.len()).unwrap_or(i64::MAX)
}

/// The table named by the one text argument of a table function.
fn table_argument(snapshot: &Snapshot, function: &str, args: &[Expr]) -> DfResult<TableReader> {
    let name = match args {
        [
            Expr::Literal(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
                _,
            ),
        ] => s.clone(),
        _ => return plan_err!("{function}() takes one argument: a table name as text"),
    };
    snapshot.table(&name).ok_or_else(|| {
        to_df(ExecError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ))
    })
}

/// A table's columns as QuestDB's `table_columns('t')` and `SHOW COLUMNS` list them:
/// name, type as Tidemark's SQL spells it, whether it has a symbol index, whether
/// the designated timestamp, whether a deduplication key (`DEDUP UPSERT KEYS`),
/// and NOT NULL.
pub(crate) fn columns_batch(table: &TableReader) -> DfResult<RecordBatch> {
    let meta = table.meta();
    let designated = meta.timestamp_column;
    let schema = Arc::new(Schema::new(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("indexed", DataType::Boolean, false),
        Field::new("designated", DataType::Boolean, false),
        // Lower case, so that QuestDB's `upsertKey` written unquoted finds it.
        Field::new("upsertkey", DataType::Boolean, false),
        Field::new("not_null", DataType::Boolean, false),
    ]));
    let c = &meta.columns;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            c.iter().map(|c| c.name.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            c.iter().map(|c| c.column_type.to_string()),
        )),
        Arc::new(BooleanArray::from_iter(
            c.iter().map(|c| Some(c.index.is_some())),
        )),
        Arc::new(BooleanArray::from_iter(
            c.iter().map(|c| Some(designated == Some(c.id))),
        )),
        Arc::new(BooleanArray::from_iter(
            c.iter().map(|c| Some(meta.dedup_keys.contains(&c.id))),
        )),
        Arc::new(BooleanArray::from_iter(c.iter().map(|c| Some(c.not_null)))),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[derive(Debug)]
struct TableColumns {
    snapshot: Snapshot,
}

impl TableFunctionImpl for TableColumns {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let table = table_argument(&self.snapshot, "table_columns", args)?;
        let batch = columns_batch(&table)?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

#[derive(Debug)]
struct TablePartitions {
    snapshot: Snapshot,
}

impl TableFunctionImpl for TablePartitions {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let table = table_argument(&self.snapshot, "table_partitions", args)?;
        let batch = partitions_batch(&table)?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

/// A table's partitions as `table_partitions('t')` and `SHOW PARTITIONS FROM t`
/// list them: one row per partition, its parts and buffered rows shown whole.
pub(crate) fn partitions_batch(table: &TableReader) -> DfResult<RecordBatch> {
    struct Row {
        min: i64,
        max: i64,
        rows: i64,
        size: i64,
        version: i64,
        parts: i64,
        buffered: i64,
    }
    let parts = table.parts();
    // Shown as TIMESTAMPs: a TIMESTAMP_NS table's bounds are nanoseconds.
    let per_micro = table.meta().partitioning().per_micro;
    let micros = |t: i64| {
        if t == i64::MIN {
            t
        } else {
            t.div_euclid(per_micro)
        }
    };
    let rows: BTreeMap<i64, (String, Row)> = table
        .partitions()
        .into_iter()
        .map(|p| {
            let size = parts
                .iter()
                .enumerate()
                .filter(|(_, part)| part.start == p.start)
                .map(|(i, _)| table.part_disk_size(i) as i64)
                .sum();
            (
                p.start,
                (
                    p.name,
                    Row {
                        min: micros(p.min_ts),
                        max: micros(p.max_ts),
                        rows: p.rows as i64,
                        size,
                        version: p.version as i64,
                        parts: p.parts as i64,
                        buffered: p.buffered_rows as i64,
                    },
                ),
            )
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        ts_field("min_timestamp"),
        ts_field("max_timestamp"),
        Field::new("row_count", DataType::Int64, false),
        Field::new("disk_size", DataType::Int64, false),
        Field::new("version", DataType::Int64, false),
        Field::new("parts", DataType::Int64, false),
        Field::new("buffered_rows", DataType::Int64, false),
        // QuestDB's columns, folded to lower case so that `minTimestamp`
        // written unquoted finds them. Every partition is attached and
        // writable; the newest one is the active one.
        Field::new("index", DataType::Int64, false),
        Field::new("partitionby", DataType::Utf8, false),
        ts_field("mintimestamp"),
        ts_field("maxtimestamp"),
        Field::new("numrows", DataType::Int64, false),
        Field::new("disksize", DataType::Int64, false),
        Field::new("disksizehuman", DataType::Utf8, false),
        Field::new("readonly", DataType::Boolean, false),
        Field::new("active", DataType::Boolean, false),
        Field::new("attached", DataType::Boolean, false),
        Field::new("detached", DataType::Boolean, false),
        Field::new("attachable", DataType::Boolean, false),
    ]));
    let r: Vec<&(String, Row)> = rows.values().collect();
    let n = r.len();
    let all = |value: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![value; n])) };
    let min: ArrayRef = Arc::new(TimestampMicrosecondArray::from(
        r.iter().map(|(_, x)| ts_or_null(x.min)).collect::<Vec<_>>(),
    ));
    let max: ArrayRef = Arc::new(TimestampMicrosecondArray::from(
        r.iter().map(|(_, x)| ts_or_null(x.max)).collect::<Vec<_>>(),
    ));
    let row_count: ArrayRef = Arc::new(Int64Array::from_iter_values(r.iter().map(|(_, x)| x.rows)));
    let size: ArrayRef = Arc::new(Int64Array::from_iter_values(r.iter().map(|(_, x)| x.size)));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            r.iter().map(|(n, _)| n.clone()),
        )),
        min.clone(),
        max.clone(),
        row_count.clone(),
        size.clone(),
        Arc::new(Int64Array::from_iter_values(
            r.iter().map(|(_, x)| x.version),
        )),
        Arc::new(Int64Array::from_iter_values(r.iter().map(|(_, x)| x.parts))),
        Arc::new(Int64Array::from_iter_values(
            r.iter().map(|(_, x)| x.buffered),
        )),
        Arc::new(Int64Array::from_iter_values(0..n as i64)),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            table.partition_by().name(),
            n,
        ))),
        min,
        max,
        row_count,
        size,
        Arc::new(StringArray::from_iter_values(
            r.iter()
                .map(|(_, x)| crate::pg_functions::size_pretty(x.size)),
        )),
        all(false),
        Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i + 1 == n)))),
        all(true),
        all(false),
        all(false),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
