//! Symbol indexes and primary keys as PostgreSQL's catalog shows indexes, so
//! that psql's `\d t` and `\di`, SQLAlchemy's `get_indexes` and
//! `get_pk_constraint`, and pgJDBC's `getIndexInfo` and `getPrimaryKeys` find
//! them:
//!
//! - a symbol index is a `hash` index (it answers equality and IN only) on its
//!   one column, named as it was created;
//! - a table's upsert keys (`DEDUP UPSERT KEYS`, or the `PRIMARY KEY` that
//!   declared them) are its primary key `<table>_pkey`: a unique `btree` index
//!   and a `p` constraint over the key columns, in their declared order.
//!
//! `datafusion-pg-catalog` serves `pg_index` and `pg_constraint` from static
//! files of PostgreSQL's own catalog and lists tables only in `pg_class`; the
//! schema provider here wraps it and adds the rows of this statement's
//! snapshot: index relations in `pg_class` (and `relhasindex` on their
//! tables), `pg_index`, `pg_constraint`, and the view `pg_indexes`, which the
//! crate lacks. `pg_get_indexdef` and `pg_get_constraintdef` describe them.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{cast, concat, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::SchemaProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::datasource::TableProvider;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion_pg_catalog::pg_catalog::PgCatalogTable;
use futures::TryStreamExt;
use parking_lot::Mutex;
use tidemark_storage::{ColumnType, Snapshot};

use crate::pg_catalog::Provider;

/// `pg_catalog`'s namespace OID, which no user table has.
const PG_CATALOG_NAMESPACE: i32 = 11;
/// The first OID handed to an index or constraint: far above the ones
/// `datafusion-pg-catalog` counts up from 16384 for catalogs, schemas and tables.
const FIRST_INDEX_OID: i32 = 1_000_000_000;

/// The access methods of `pg_am` the indexes are shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Btree,
    Hash,
}

impl Method {
    fn oid(self) -> i32 {
        match self {
            Method::Btree => 403,
            Method::Hash => 405,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Method::Btree => "btree",
            Method::Hash => "hash",
        }
    }
}

/// One index as the catalog shows it.
#[derive(Debug, Clone)]
pub(crate) struct CatalogIndex {
    table: String,
    name: String,
    /// The index's `pg_class` OID.
    oid: i32,
    /// The primary key's `pg_constraint` OID; `None` for a symbol index.
    constraint_oid: Option<i32>,
    method: Method,
    /// `(attnum, name, type)` of each key column, in key order.
    columns: Vec<(i16, String, ColumnType)>,
}

impl CatalogIndex {
    fn primary(&self) -> bool {
        self.constraint_oid.is_some()
    }

    /// `pg_get_indexdef(oid)`: the statement that would create the index.
    fn definition(&self) -> String {
        let columns: Vec<String> = self.columns.iter().map(|(_, n, _)| ident(n)).collect();
        format!(
            "CREATE {}INDEX {} ON public.{} USING {} ({})",
            if self.primary() { "UNIQUE " } else { "" },
            ident(&self.name),
            ident(&self.table),
            self.method.name(),
            columns.join(", ")
        )
    }

    /// `pg_get_constraintdef(oid)` of the primary key.
    fn constraint_definition(&self) -> String {
        let columns: Vec<String> = self.columns.iter().map(|(_, n, _)| ident(n)).collect();
        format!("PRIMARY KEY ({})", columns.join(", "))
    }

    /// `indkey`: the key columns' numbers, space-separated as the catalog keeps
    /// `int2vector`s.
    fn key_numbers(&self) -> String {
        let numbers: Vec<String> = self.columns.iter().map(|(n, _, _)| n.to_string()).collect();
        numbers.join(" ")
    }
}

/// An identifier as PostgreSQL prints it: quoted unless it is lower case
/// letters, digits and underscores not starting with a digit.
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        crate::rewrite::quote_ident(name)
    }
}

/// The OIDs a session has given its indexes and constraints, so that they stay
/// the same from one catalog query to the next (psql looks an index up by the
/// OID an earlier query returned).
#[derive(Debug, Default)]
pub(crate) struct IndexOids {
    given: Mutex<HashMap<(String, String, bool), i32>>,
}

impl IndexOids {
    fn oid(&self, table: &str, name: &str, constraint: bool) -> i32 {
        let mut given = self.given.lock();
        let next = FIRST_INDEX_OID.saturating_add(given.len() as i32);
        *given
            .entry((table.to_string(), name.to_string(), constraint))
            .or_insert(next)
    }
}

/// The indexes of every table in `snapshot`: its primary key (upsert keys)
/// first, then its symbol indexes in column order.
pub(crate) fn indexes_of(snapshot: &Snapshot, oids: &IndexOids) -> Vec<CatalogIndex> {
    let mut indexes = Vec::new();
    for reader in snapshot.tables() {
        let meta = reader.meta();
        let table = reader.name().to_string();
        let column = |i: usize| {
            let c = &meta.columns[i];
            (
                i16::try_from(i + 1).unwrap_or(i16::MAX),
                c.name.clone(),
                c.column_type,
            )
        };
        let keys: Vec<_> = meta
            .dedup_keys
            .iter()
            .filter_map(|id| meta.columns.iter().position(|c| c.id == *id))
            .map(column)
            .collect();
        if !keys.is_empty() {
            let name = format!("{table}_pkey");
            indexes.push(CatalogIndex {
                oid: oids.oid(&table, &name, false),
                constraint_oid: Some(oids.oid(&table, &name, true)),
                table: table.clone(),
                name,
                method: Method::Btree,
                columns: keys,
            });
        }
        for (i, c) in meta.columns.iter().enumerate() {
            if let Some(index) = &c.index {
                indexes.push(CatalogIndex {
                    oid: oids.oid(&table, &index.name, false),
                    constraint_oid: None,
                    table: table.clone(),
                    name: index.name.clone(),
                    method: Method::Hash,
                    columns: vec![column(i)],
                });
            }
        }
    }
    indexes
}

/// PostgreSQL's OID of a key column's type, for the default operator class.
fn type_oid(t: ColumnType) -> Option<i32> {
    Some(match t {
        ColumnType::Boolean => 16,
        ColumnType::SmallInt => 21,
        ColumnType::Int => 23,
        ColumnType::BigInt => 20,
        ColumnType::Real => 700,
        ColumnType::Double => 701,
        ColumnType::Timestamp | ColumnType::TimestampNs => 1114,
        ColumnType::TimestampTz => 1184,
        ColumnType::Date => 1082,
        ColumnType::Varchar | ColumnType::Symbol => 25,
        ColumnType::Uuid => 2950,
        ColumnType::Decimal { .. } => 1700,
        ColumnType::Binary
        | ColumnType::Json
        | ColumnType::Jsonb
        | ColumnType::DoubleArray { .. } => return None,
    })
}

/// `pg_catalog` with the indexes of the statement's snapshot (module docs).
#[derive(Debug)]
pub(crate) struct CatalogWithIndexes {
    inner: Arc<Provider>,
    indexes: Arc<Mutex<Arc<Vec<CatalogIndex>>>>,
    /// The views of the statement's snapshot, for `pg_views`.
    views: Mutex<CatalogViews>,
}

/// `pg_views`' rows: each view's (name, query), and their owner.
#[derive(Debug, Clone, Default)]
struct CatalogViews {
    views: Arc<Vec<(String, String)>>,
    owner: String,
}

impl CatalogWithIndexes {
    pub(crate) fn new(inner: Arc<Provider>) -> Self {
        CatalogWithIndexes {
            inner,
            indexes: Arc::default(),
            views: Mutex::default(),
        }
    }

    /// The views the next statement's `pg_views` shows: (name, query).
    pub(crate) fn set_views(&self, views: Vec<(String, String)>, owner: &str) {
        *self.views.lock() = CatalogViews {
            views: Arc::new(views),
            owner: owner.to_string(),
        };
    }

    /// `pg_views`: `schemaname`, `viewname`, `viewowner`, `definition`.
    fn pg_views(&self) -> DfResult<Arc<dyn TableProvider>> {
        use datafusion::arrow::array::StringArray;
        let CatalogViews { views, owner } = self.views.lock().clone();
        let schema = Arc::new(Schema::new(vec![
            Field::new("schemaname", DataType::Utf8, false),
            Field::new("viewname", DataType::Utf8, false),
            Field::new("viewowner", DataType::Utf8, false),
            Field::new("definition", DataType::Utf8, false),
        ]));
        let column =
            |f: &dyn Fn(&(String, String)) -> String| -> datafusion::arrow::array::ArrayRef {
                Arc::new(StringArray::from_iter_values(views.iter().map(f)))
            };
        let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![
                column(&|_| "public".to_string()),
                column(&|v| v.0.clone()),
                column(&|_| owner.clone()),
                column(&|v| v.1.clone()),
            ],
        )?;
        Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?))
    }

    /// The indexes the next statement's catalog tables and functions show.
    pub(crate) fn set_indexes(&self, indexes: Arc<Vec<CatalogIndex>>) {
        *self.indexes.lock() = indexes;
    }
}

/// The tables this module adds rows to (or, for `pg_indexes`, provides).
#[derive(Debug, Clone, Copy)]
enum Table {
    Class,
    Index,
    Constraint,
    Indexes,
}

impl Table {
    fn named(name: &str) -> Option<Table> {
        Some(match name.to_ascii_lowercase().as_str() {
            "pg_class" => Table::Class,
            "pg_index" => Table::Index,
            "pg_constraint" => Table::Constraint,
            "pg_indexes" => Table::Indexes,
            _ => return None,
        })
    }
}

#[async_trait]
impl SchemaProvider for CatalogWithIndexes {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.push("pg_indexes".to_string());
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if name.eq_ignore_ascii_case("pg_views") {
            return self.pg_views().map(Some);
        }
        let Some(table) = Table::named(name) else {
            return self.inner.table(name).await;
        };
        let stream = Arc::new(IndexRows {
            table,
            schema: schema_of(&self.inner, table)?,
            inner: self.inner.clone(),
            indexes: self.indexes.lock().clone(),
        });
        Ok(Some(Arc::new(StreamingTable::try_new(
            stream.schema.clone(),
            vec![stream],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("pg_indexes") || self.inner.table_exist(name)
    }
}

fn pg_indexes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schemaname", DataType::Utf8, false),
        Field::new("tablename", DataType::Utf8, false),
        Field::new("indexname", DataType::Utf8, false),
        Field::new("tablespace", DataType::Utf8, true),
        Field::new("indexdef", DataType::Utf8, false),
    ]))
}

fn schema_of(inner: &Provider, table: Table) -> DfResult<SchemaRef> {
    let name = match table {
        Table::Class => "pg_class",
        Table::Index => "pg_index",
        Table::Constraint => "pg_constraint",
        Table::Indexes => return Ok(pg_indexes_schema()),
    };
    Ok(match inner.build_table_by_name(name)? {
        Some(PgCatalogTable::Static(t)) => t.schema(),
        Some(PgCatalogTable::Dynamic(s)) => s.schema().clone(),
        _ => return exec_err!("pg_catalog has no {name}"),
    })
}

/// One of the tables above for one statement: the crate's rows plus ours.
#[derive(Debug)]
struct IndexRows {
    table: Table,
    schema: SchemaRef,
    inner: Arc<Provider>,
    indexes: Arc<Vec<CatalogIndex>>,
}

impl PartitionStream for IndexRows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (table, schema, inner, indexes) = (
            self.table,
            self.schema.clone(),
            self.inner.clone(),
            self.indexes.clone(),
        );
        let rows = async move { rows(table, &schema, &inner, &indexes, ctx).await };
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::once(rows),
        ))
    }
}

/// The crate's rows of catalog table `name`, as one batch.
async fn crate_rows(inner: &Provider, name: &str, ctx: Arc<TaskContext>) -> DfResult<RecordBatch> {
    match inner.build_table_by_name(name)? {
        Some(PgCatalogTable::Static(t)) => Ok(concat_batches(&t.schema(), t.data())?),
        Some(PgCatalogTable::Dynamic(s)) => {
            let schema = s.schema().clone();
            let batches: Vec<RecordBatch> = s.execute(ctx).try_collect().await?;
            Ok(concat_batches(&schema, &batches)?)
        }
        _ => exec_err!("pg_catalog has no {name}"),
    }
}

/// Where a user table is in `pg_class`: its OID and namespace.
#[derive(Debug, Clone, Copy)]
struct TableOid {
    oid: i32,
    namespace: i32,
}

/// The user tables of a `pg_class` batch by name.
fn table_oids(class: &RecordBatch) -> DfResult<HashMap<String, TableOid>> {
    let oid = int_column(class, "oid")?;
    let namespace = int_column(class, "relnamespace")?;
    let name = text_column(class, "relname")?;
    let kind = text_column(class, "relkind")?;
    Ok((0..class.num_rows())
        .filter(|&i| kind.value(i) == "r" && namespace.value(i) != PG_CATALOG_NAMESPACE)
        .map(|i| {
            let at = TableOid {
                oid: oid.value(i),
                namespace: namespace.value(i),
            };
            (name.value(i).to_string(), at)
        })
        .collect())
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> DfResult<&'a ArrayRef> {
    match batch.schema().index_of(name) {
        Ok(i) => Ok(batch.column(i)),
        Err(_) => exec_err!("pg_catalog: no column {name}"),
    }
}

fn int_column<'a>(batch: &'a RecordBatch, name: &str) -> DfResult<&'a Int32Array> {
    match column(batch, name)?.as_primitive_opt::<Int32Type>() {
        Some(a) => Ok(a),
        None => exec_err!("pg_catalog: {name} is not int4"),
    }
}

fn text_column<'a>(batch: &'a RecordBatch, name: &str) -> DfResult<&'a StringArray> {
    match column(batch, name)?.as_string_opt::<i32>() {
        Some(a) => Ok(a),
        None => exec_err!("pg_catalog: {name} is not text"),
    }
}

/// The crate's `pg_class` rows and the indexes of the tables it lists, each with
/// where its table is.
async fn located<'a>(
    inner: &Provider,
    indexes: &'a [CatalogIndex],
    ctx: Arc<TaskContext>,
) -> DfResult<(RecordBatch, Vec<(&'a CatalogIndex, TableOid)>)> {
    let class = crate_rows(inner, "pg_class", ctx).await?;
    let tables = table_oids(&class)?;
    let shown = indexes
        .iter()
        .filter_map(|x| tables.get(&x.table).map(|t| (x, *t)))
        .collect();
    Ok((class, shown))
}

async fn rows(
    table: Table,
    schema: &SchemaRef,
    inner: &Provider,
    indexes: &[CatalogIndex],
    ctx: Arc<TaskContext>,
) -> DfResult<RecordBatch> {
    match table {
        Table::Class => {
            let (class, shown) = located(inner, indexes, ctx).await?;
            let class = with_index_flags(class, &shown)?;
            let rows = shown.iter().map(|(x, t)| class_row(x, *t)).collect();
            append_rows(&class, rows)
        }
        Table::Index => {
            let (_, shown) = located(inner, indexes, ctx.clone()).await?;
            let opclasses = crate_rows(inner, "pg_opclass", ctx.clone()).await?;
            let opclasses = default_opclasses(&opclasses)?;
            let base = crate_rows(inner, "pg_index", ctx).await?;
            let rows = shown
                .iter()
                .map(|(x, t)| index_row(x, *t, &opclasses))
                .collect();
            append_rows(&base, rows)
        }
        Table::Constraint => {
            let (_, shown) = located(inner, indexes, ctx.clone()).await?;
            let base = crate_rows(inner, "pg_constraint", ctx).await?;
            let rows = shown
                .iter()
                .filter_map(|(x, t)| constraint_row(x, *t))
                .collect();
            append_rows(&base, rows)
        }
        // Named by table name only: no pg_class OIDs needed.
        Table::Indexes => {
            let empty = RecordBatch::new_empty(schema.clone());
            append_rows(&empty, indexes.iter().map(pg_indexes_row).collect())
        }
    }
}

/// Rows to append: values by column name; the others get their default.
type Row = Vec<(&'static str, ScalarValue)>;

fn int(v: i32) -> ScalarValue {
    ScalarValue::Int32(Some(v))
}

fn text(v: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(v.into()))
}

fn boolean(v: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(v))
}

/// `rows` after the rows of `batch`, each value cast to its column's type; a
/// column a row does not name is NULL where it may be, else zero, false or
/// empty text.
fn append_rows(batch: &RecordBatch, rows: Vec<Row>) -> DfResult<RecordBatch> {
    if rows.is_empty() {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let values = rows
            .iter()
            .map(|row| match row.iter().find(|(n, _)| *n == field.name()) {
                Some((_, v)) => v.cast_to(field.data_type()),
                None => default_value(field),
            })
            .collect::<DfResult<Vec<_>>>()?;
        let added = cast(&ScalarValue::iter_to_array(values)?, field.data_type())?;
        columns.push(concat(&[batch.column(i).as_ref(), added.as_ref()])?);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn default_value(field: &Field) -> DfResult<ScalarValue> {
    let t = field.data_type();
    if field.is_nullable() {
        ScalarValue::try_from(t)
    } else if matches!(t, DataType::Utf8) {
        Ok(text(""))
    } else {
        ScalarValue::new_zero(t)
    }
}

/// `pg_class` with `relhasindex` set on the tables that have an index.
fn with_index_flags(
    class: RecordBatch,
    shown: &[(&CatalogIndex, TableOid)],
) -> DfResult<RecordBatch> {
    let at = match class.schema().index_of("relhasindex") {
        Ok(at) => at,
        Err(_) => return exec_err!("pg_catalog: no column relhasindex"),
    };
    let oids = int_column(&class, "oid")?;
    let kinds = text_column(&class, "relkind")?;
    let old = class.column(at).as_boolean();
    let flags: BooleanArray = (0..class.num_rows())
        .map(|i| {
            let indexed =
                kinds.value(i) == "r" && shown.iter().any(|(_, t)| t.oid == oids.value(i));
            Some(indexed || old.value(i))
        })
        .collect();
    let mut columns = class.columns().to_vec();
    columns[at] = Arc::new(flags);
    Ok(RecordBatch::try_new(class.schema(), columns)?)
}

fn class_row(index: &CatalogIndex, table: TableOid) -> Row {
    vec![
        ("oid", int(index.oid)),
        ("relname", text(&index.name)),
        ("relnamespace", int(table.namespace)),
        ("relam", int(index.method.oid())),
        ("relfilenode", int(index.oid)),
        ("relpages", int(1)),
        ("relpersistence", text("p")),
        ("relkind", text("i")),
        (
            "relnatts",
            ScalarValue::Int16(Some(index.columns.len() as i16)),
        ),
        ("relispopulated", boolean(true)),
        ("relreplident", text("n")),
        ("relpartbound", ScalarValue::Utf8(None)),
    ]
}

/// `(access method, type) -> default operator class` from `pg_opclass`.
fn default_opclasses(opclass: &RecordBatch) -> DfResult<HashMap<(i32, i32), i32>> {
    let oid = int_column(opclass, "oid")?;
    let method = int_column(opclass, "opcmethod")?;
    let input = int_column(opclass, "opcintype")?;
    let default = match column(opclass, "opcdefault")?.as_boolean_opt() {
        Some(d) => d,
        None => return exec_err!("pg_catalog: opcdefault is not bool"),
    };
    Ok((0..opclass.num_rows())
        .filter(|&i| default.value(i))
        .map(|i| ((method.value(i), input.value(i)), oid.value(i)))
        .collect())
}

fn index_row(index: &CatalogIndex, table: TableOid, opclasses: &HashMap<(i32, i32), i32>) -> Row {
    let per_column = |value: &dyn Fn(ColumnType) -> i32| {
        let values: Vec<String> = index
            .columns
            .iter()
            .map(|(_, _, t)| value(*t).to_string())
            .collect();
        text(values.join(" "))
    };
    let count = ScalarValue::Int16(Some(index.columns.len() as i16));
    let method = index.method.oid();
    vec![
        ("indexrelid", int(index.oid)),
        ("indrelid", int(table.oid)),
        ("indnatts", count.clone()),
        ("indnkeyatts", count),
        ("indisunique", boolean(index.primary())),
        ("indisprimary", boolean(index.primary())),
        ("indimmediate", boolean(true)),
        ("indisvalid", boolean(true)),
        ("indisready", boolean(true)),
        ("indislive", boolean(true)),
        ("indkey", text(index.key_numbers())),
        // Text keys sort by the database's default collation (100).
        (
            "indcollation",
            per_column(&|t| if type_oid(t) == Some(25) { 100 } else { 0 }),
        ),
        (
            "indclass",
            per_column(&|t| {
                type_oid(t)
                    .and_then(|t| opclasses.get(&(method, t)).copied())
                    .unwrap_or(0)
            }),
        ),
        ("indoption", per_column(&|_| 0)),
    ]
}

fn constraint_row(index: &CatalogIndex, table: TableOid) -> Option<Row> {
    Some(vec![
        ("oid", int(index.constraint_oid?)),
        ("conname", text(&index.name)),
        ("connamespace", int(table.namespace)),
        ("contype", text("p")),
        ("convalidated", boolean(true)),
        ("conrelid", int(table.oid)),
        ("conindid", int(index.oid)),
        ("confupdtype", text(" ")),
        ("confdeltype", text(" ")),
        ("confmatchtype", text(" ")),
        ("conislocal", boolean(true)),
        ("connoinherit", boolean(true)),
        ("conkey", text(index.key_numbers())),
    ])
}

fn pg_indexes_row(index: &CatalogIndex) -> Row {
    vec![
        ("schemaname", text("public")),
        ("tablename", text(&index.table)),
        ("indexname", text(&index.name)),
        ("indexdef", text(index.definition())),
    ]
}

/// `pg_get_indexdef(oid [, column, pretty])` and `pg_get_constraintdef(oid [,
/// pretty])` over the statement's indexes: PostgreSQL's text for ours, and for
/// other OIDs what the functions answered before (NULL and empty text).
#[derive(Debug)]
struct Definition {
    name: &'static str,
    signature: Signature,
    indexes: Arc<Vec<CatalogIndex>>,
}

impl PartialEq for Definition {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.indexes, &other.indexes)
    }
}

impl Eq for Definition {}

impl std::hash::Hash for Definition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Definition {
    fn text_of(&self, oid: Option<i64>, column: Option<i64>) -> Option<String> {
        // Strict, as PostgreSQL's: NULL in, NULL out.
        let oid = i32::try_from(oid?).ok();
        if self.name == "pg_get_constraintdef" {
            let found = self
                .indexes
                .iter()
                .find(|x| x.constraint_oid.is_some() && x.constraint_oid == oid);
            return Some(
                found
                    .map(CatalogIndex::constraint_definition)
                    .unwrap_or_default(),
            );
        }
        let index = self.indexes.iter().find(|x| Some(x.oid) == oid)?;
        match column.unwrap_or(0) {
            0 => Some(index.definition()),
            k => {
                let k = usize::try_from(k).ok()?;
                let (_, name, _) = index.columns.get(k.checked_sub(1)?)?;
                Some(ident(name))
            }
        }
    }
}

impl ScalarUDFImpl for Definition {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let args = crate::call_args::arrays_of(&args)?;
        let integers = |i: usize| -> DfResult<Option<ArrayRef>> {
            match args.get(i) {
                Some(a) if a.data_type().is_integer() || a.data_type().is_null() => {
                    Ok(Some(cast(a, &DataType::Int64)?))
                }
                // pg_get_constraintdef(oid, pretty): the flag changes nothing here.
                Some(_) if i == 1 && self.name == "pg_get_constraintdef" => Ok(None),
                Some(a) => exec_err!("{}: argument {} is {}", self.name, i + 1, a.data_type()),
                None => Ok(None),
            }
        };
        let (oids, columns) = (integers(0)?, integers(1)?);
        let value = |a: &Option<ArrayRef>, row: usize| {
            a.as_ref().and_then(|a| {
                let a = a.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                (!a.is_null(row)).then(|| a.value(row))
            })
        };
        let texts: StringArray = (0..rows)
            .map(|row| self.text_of(value(&oids, row), value(&columns, row)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(texts)))
    }
}

/// Registers `pg_get_indexdef` and `pg_get_constraintdef` over `indexes`
/// (after the catalog's own, which they replace).
pub(crate) fn register_functions(
    ctx: &datafusion::execution::context::SessionContext,
    indexes: &Arc<Vec<CatalogIndex>>,
) {
    for name in ["pg_get_indexdef", "pg_get_constraintdef"] {
        ctx.register_udf(ScalarUDF::from(Definition {
            name,
            signature: Signature::variadic_any(Volatility::Stable),
            indexes: indexes.clone(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OID that is no index of the snapshot: NULL, as PostgreSQL answers for
    /// an object without a definition.
    #[tokio::test]
    async fn definitions_of_other_oids_are_null() {
        let ctx = datafusion::execution::context::SessionContext::new();
        register_functions(&ctx, &Arc::new(Vec::new()));
        let batches = ctx
            .sql("SELECT pg_get_indexdef(1, 1, true), pg_get_constraintdef(NULL)")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        assert!(batches[0].column(0).is_null(0));
        assert!(batches[0].column(1).is_null(0));
    }
}
