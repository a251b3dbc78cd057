//! What a transaction asks for ([`Request`]) and how a request is *resolved*
//! against the staged state into an [`Op`]: names become ids, new ids are
//! assigned, symbol strings become dictionary keys, a time range becomes a list
//! of partitions. Resolving checks everything a client can get wrong, so the
//! op that follows cannot fail for the client's reasons.

use std::collections::HashMap;

use crate::batch::{Batch, Column, Values};
use crate::error::{Result, StorageError};
use crate::name::{fs_name, name_key, validate_name};
use crate::ops::files::designated_values;
use crate::ops::{Op, RowData, Staging};
use crate::table::TableState;
use crate::table::column;
use crate::table::meta::{ColumnMeta, SymbolIndexMeta, TableMeta};
use crate::types::{ColumnType, PartitionBy};
use crate::view::ViewMode;

/// A column in a `CREATE TABLE` or `ADD COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub column_type: ColumnType,
    pub not_null: bool,
    /// A SYMBOL column created with a symbol index (QuestDB's `SYMBOL INDEX`).
    pub indexed: bool,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, column_type: ColumnType) -> Self {
        ColumnDef {
            name: name.into(),
            column_type,
            not_null: false,
            indexed: false,
        }
    }
}

/// Which symbol index a `DropIndex` request removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexTarget {
    /// `ALTER TABLE t ALTER COLUMN c DROP INDEX`.
    Column { table: String, column: String },
    /// `DROP INDEX name`.
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// The designated timestamp column, which must be a TIMESTAMP column.
    pub timestamp: Option<String>,
    pub partition_by: PartitionBy,
}

/// Which partitions `DropPartitions` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSelector {
    /// The partitions containing these timestamps; each must exist.
    List(Vec<i64>),
    /// Every partition whose rows all lie in `[from, to)` (either bound open).
    TimeRange { from: Option<i64>, to: Option<i64> },
}

/// One step of a transaction, as a caller describes it.
#[derive(Debug, Clone)]
pub enum Request {
    CreateTable {
        def: TableDef,
        if_not_exists: bool,
    },
    DropTable {
        name: String,
        if_exists: bool,
    },
    RenameTable {
        from: String,
        to: String,
    },
    AddColumn {
        table: String,
        column: ColumnDef,
    },
    DropColumn {
        table: String,
        column: String,
    },
    RenameColumn {
        table: String,
        from: String,
        to: String,
    },
    Truncate {
        table: String,
    },
    DropPartitions {
        table: String,
        which: PartitionSelector,
    },
    /// Sets (or with `None` removes) the table's TTL.
    SetTtl {
        table: String,
        ttl: Option<crate::types::Ttl>,
    },
    /// `DEDUP UPSERT KEYS (...)` (empty `keys`: `DEDUP DISABLE`): from then
    /// on a row whose keys equal a stored row's replaces it. The keys must
    /// include the designated timestamp.
    SetDedup {
        table: String,
        keys: Vec<String>,
    },
    /// Indexes SYMBOL column `column`: the rows of each key, per part, kept
    /// from then on. `name` defaults to `<table>_<column>_idx`.
    AddIndex {
        table: String,
        column: String,
        name: Option<String>,
        if_not_exists: bool,
    },
    DropIndex {
        target: IndexTarget,
        if_exists: bool,
    },
    /// `CREATE [OR REPLACE] VIEW` / `ALTER VIEW ... AS`: `definition` is the
    /// query's text, kept as given.
    CreateView {
        name: String,
        definition: String,
        mode: ViewMode,
    },
    DropView {
        name: String,
        if_exists: bool,
    },
    /// Adds rows; out-of-order rows are merged into the partitions they belong to.
    Append {
        table: String,
        batch: Batch,
    },
    /// Replaces all rows of the partition containing `at` (UPDATE and DELETE write
    /// whole partitions this way); an empty batch removes the partition.
    ReplacePartition {
        table: String,
        at: i64,
        batch: Batch,
    },
}

fn column_index(t: &TableState, name: &str) -> Result<usize> {
    t.meta
        .column_index(name)
        .ok_or_else(|| StorageError::ColumnNotFound {
            table: t.name.clone(),
            column: name.to_string(),
        })
}

/// A new column `def` with id `id` of table `table`, made by commit `seq`.
fn new_column_meta(
    st: &Staging<'_>,
    table: &str,
    id: u32,
    def: &ColumnDef,
    taken: &[String],
) -> Result<ColumnMeta> {
    validate_name(&def.name)?;
    let index = if def.indexed {
        symbol_only(table, &def.name, def.column_type)?;
        Some(SymbolIndexMeta {
            seq: st.seq,
            name: free_index_name(st, table, &def.name, taken),
        })
    } else {
        None
    };
    Ok(ColumnMeta {
        id,
        name: def.name.clone(),
        column_type: def.column_type,
        not_null: def.not_null,
        file_stem: format!("{}~{id}", fs_name(&def.name)),
        index,
    })
}

/// Only SYMBOL columns have indexes.
fn symbol_only(table: &str, column: &str, t: ColumnType) -> Result<()> {
    if t == ColumnType::Symbol {
        return Ok(());
    }
    Err(StorageError::NotIndexable {
        table: table.to_string(),
        column: column.to_string(),
        column_type: t.to_string(),
    })
}

/// The (table id, column) of the index called `name`, if one is.
fn index_named<'s>(st: &'s Staging<'_>, name: &str) -> Option<(&'s TableState, &'s ColumnMeta)> {
    st.catalog.tables.values().find_map(|t| {
        t.meta
            .columns
            .iter()
            .find(|c| {
                c.index
                    .as_ref()
                    .is_some_and(|i| name_key(&i.name) == name_key(name))
            })
            .map(|c| (&**t, c))
    })
}

/// `<table>_<column>_idx`, with a number after it when that name is taken
/// (by an existing index or one of `taken`), as PostgreSQL names indexes.
fn free_index_name(st: &Staging<'_>, table: &str, column: &str, taken: &[String]) -> String {
    let base = format!("{table}_{column}_idx");
    let free =
        |n: &str| index_named(st, n).is_none() && !taken.iter().any(|t| name_key(t) == name_key(n));
    (0..)
        .map(|i| {
            if i == 0 {
                base.clone()
            } else {
                format!("{base}{i}")
            }
        })
        .find(|n| free(n))
        .unwrap_or(base)
}

/// Turns a request into an op against the staged state; `None` when there is
/// nothing to do (IF EXISTS / IF NOT EXISTS, empty batches).
pub(crate) fn resolve(req: Request, st: &mut Staging<'_>) -> Result<Option<Op>> {
    Ok(Some(match req {
        Request::CreateTable { def, if_not_exists } => {
            validate_name(&def.name)?;
            if st.catalog.table(&def.name).is_some() {
                if if_not_exists {
                    return Ok(None);
                }
                return Err(StorageError::TableExists(def.name));
            }
            if st.catalog.view(&def.name).is_some() {
                return Err(StorageError::ViewExists(def.name));
            }
            if def.columns.is_empty() {
                return Err(StorageError::InvalidData(format!(
                    "table \"{}\" needs at least one column",
                    def.name
                )));
            }
            let mut columns: Vec<ColumnMeta> = Vec::with_capacity(def.columns.len());
            for (i, c) in def.columns.iter().enumerate() {
                if columns
                    .iter()
                    .any(|x| name_key(&x.name) == name_key(&c.name))
                {
                    return Err(StorageError::ColumnExists {
                        table: def.name.clone(),
                        column: c.name.clone(),
                    });
                }
                let taken: Vec<String> = columns
                    .iter()
                    .filter_map(|c| c.index.as_ref().map(|i| i.name.clone()))
                    .collect();
                let column = new_column_meta(st, &def.name, i as u32, c, &taken)?;
                columns.push(column);
            }
            let timestamp_column = match &def.timestamp {
                None if def.partition_by != PartitionBy::None => {
                    return Err(StorageError::InvalidData(format!(
                        "table \"{}\": PARTITION BY {} needs a designated timestamp column",
                        def.name, def.partition_by
                    )));
                }
                None => None,
                Some(ts) => {
                    let key = name_key(ts);
                    let c = columns
                        .iter_mut()
                        .find(|c| name_key(&c.name) == key)
                        .ok_or_else(|| StorageError::ColumnNotFound {
                            table: def.name.clone(),
                            column: ts.clone(),
                        })?;
                    if let Some(problem) = c.column_type.designated_timestamp_problem(&c.name) {
                        return Err(StorageError::InvalidData(problem));
                    }
                    c.not_null = true;
                    Some(c.id)
                }
            };
            let id = st.catalog.next_table_id;
            let meta = TableMeta {
                seq: st.seq,
                partition_by: def.partition_by,
                timestamp_column,
                next_column_id: columns.len() as u32,
                columns,
                ttl: None,
                dedup_keys: Vec::new(),
            };
            Op::CreateTable {
                id,
                dir: format!("{}~{id}", fs_name(&def.name)),
                name: def.name,
                meta,
            }
        }
        Request::DropTable { name, if_exists } => match st.catalog.table(&name) {
            Some(t) => Op::DropTable { id: t.id },
            None if st.catalog.view(&name).is_some() => {
                return Err(StorageError::WrongObjectType {
                    name,
                    is: "a view",
                    hint: "DROP VIEW",
                });
            }
            None if if_exists => return Ok(None),
            None => return Err(StorageError::TableNotFound(name)),
        },
        Request::RenameTable { from, to } => {
            validate_name(&to)?;
            if st.catalog.table(&from).is_none() && st.catalog.view(&from).is_some() {
                return Err(StorageError::WrongObjectType {
                    name: from,
                    is: "a view",
                    hint: "DROP VIEW and CREATE VIEW",
                });
            }
            let id = st.table(&from)?.id;
            if let Some(other) = st.catalog.table(&to)
                && other.id != id
            {
                return Err(StorageError::TableExists(to));
            }
            if st.catalog.view(&to).is_some() {
                return Err(StorageError::ViewExists(to));
            }
            Op::RenameTable { id, name: to }
        }
        Request::CreateView {
            name,
            definition,
            mode,
        } => {
            validate_name(&name)?;
            if st.catalog.table(&name).is_some() {
                return Err(StorageError::TableExists(name));
            }
            let (id, name) = match (st.catalog.view(&name), mode) {
                (Some(_), ViewMode::Create) => return Err(StorageError::ViewExists(name)),
                (Some(_), ViewMode::IfNotExists) => return Ok(None),
                // A replaced view keeps its name as first written.
                (Some(v), ViewMode::OrReplace | ViewMode::Alter) => (v.id, v.name.clone()),
                (None, ViewMode::Alter) => return Err(StorageError::ViewNotFound(name)),
                (None, _) => (st.catalog.next_table_id, name),
            };
            Op::PutView {
                id,
                name,
                definition,
            }
        }
        Request::DropView { name, if_exists } => match st.catalog.view(&name) {
            Some(v) => Op::DropView { id: v.id },
            None if st.catalog.table(&name).is_some() => {
                return Err(StorageError::WrongObjectType {
                    name,
                    is: "a table",
                    hint: "DROP TABLE",
                });
            }
            None if if_exists => return Ok(None),
            None => return Err(StorageError::ViewNotFound(name)),
        },
        Request::AddColumn { table, column } => {
            let t = st.table(&table)?;
            if t.meta.column_index(&column.name).is_some() {
                return Err(StorageError::ColumnExists {
                    table: t.name.clone(),
                    column: column.name,
                });
            }
            if column.not_null && t.row_count() > 0 {
                return Err(StorageError::InvalidData(format!(
                    "cannot add NOT NULL column \"{}\" to table \"{}\", which has rows",
                    column.name, t.name
                )));
            }
            Op::AddColumn {
                table: t.id,
                column: new_column_meta(st, &t.name, t.meta.next_column_id, &column, &[])?,
            }
        }
        Request::DropColumn { table, column } => {
            let t = st.table(&table)?;
            let i = column_index(t, &column)?;
            let c = &t.meta.columns[i];
            if Some(c.id) == t.meta.timestamp_column {
                return Err(StorageError::InvalidData(format!(
                    "cannot drop the designated timestamp column \"{}\" of table \"{}\"",
                    c.name, t.name
                )));
            }
            if t.meta.dedup_keys.contains(&c.id) {
                return Err(StorageError::InvalidData(format!(
                    "cannot drop column \"{}\": it is an upsert key of table \"{}\" (ALTER TABLE {} DEDUP DISABLE first)",
                    c.name, t.name, t.name
                )));
            }
            if t.meta.columns.len() == 1 {
                return Err(StorageError::InvalidData(format!(
                    "cannot drop the only column of table \"{}\"",
                    t.name
                )));
            }
            Op::DropColumn {
                table: t.id,
                column: c.id,
            }
        }
        Request::RenameColumn { table, from, to } => {
            validate_name(&to)?;
            let t = st.table(&table)?;
            let i = column_index(t, &from)?;
            if let Some(j) = t.meta.column_index(&to)
                && j != i
            {
                return Err(StorageError::ColumnExists {
                    table: t.name.clone(),
                    column: to,
                });
            }
            Op::RenameColumn {
                table: t.id,
                column: t.meta.columns[i].id,
                name: to,
            }
        }
        Request::Truncate { table } => Op::Truncate {
            table: st.table(&table)?.id,
        },
        Request::DropPartitions { table, which } => {
            let t = st.table(&table)?;
            let partitioning = t.meta.partitioning();
            let starts: Vec<i64> = match which {
                PartitionSelector::List(ts) => {
                    let mut out = Vec::new();
                    let existing = t.partition_starts();
                    for x in ts {
                        let s = partitioning.start(x);
                        if !existing.contains(&s) {
                            return Err(StorageError::PartitionNotFound {
                                table: t.name.clone(),
                                partition: partitioning.name(s),
                            });
                        }
                        if !out.contains(&s) {
                            out.push(s);
                        }
                    }
                    out
                }
                PartitionSelector::TimeRange { from, to } => t
                    .partition_starts()
                    .into_iter()
                    .filter(|&s| {
                        t.partition_bounds(s).is_some_and(|(min, max)| {
                            from.is_none_or(|f| min >= f) && to.is_none_or(|e| max < e)
                        })
                    })
                    .collect(),
            };
            if starts.is_empty() {
                return Ok(None);
            }
            Op::DropPartitions {
                table: t.id,
                starts,
            }
        }
        Request::AddIndex {
            table,
            column,
            name,
            if_not_exists,
        } => {
            let t = st.table(&table)?;
            let c = &t.meta.columns[column_index(t, &column)?];
            symbol_only(&t.name, &c.name, c.column_type)?;
            if let Some(existing) = &c.index {
                if if_not_exists {
                    return Ok(None);
                }
                return Err(StorageError::AlreadyIndexed {
                    table: t.name.clone(),
                    column: c.name.clone(),
                    index: existing.name.clone(),
                });
            }
            let name = match name {
                Some(n) => {
                    validate_name(&n)?;
                    if index_named(st, &n).is_some() {
                        if if_not_exists {
                            return Ok(None);
                        }
                        return Err(StorageError::IndexExists(n));
                    }
                    n
                }
                None => free_index_name(st, &t.name, &c.name, &[]),
            };
            Op::AddIndex {
                table: t.id,
                column: c.id,
                name,
            }
        }
        Request::DropIndex { target, if_exists } => {
            let found = match &target {
                IndexTarget::Name(n) => index_named(st, n),
                IndexTarget::Column { table, column } => {
                    let t = st.table(table)?;
                    let c = &t.meta.columns[column_index(t, column)?];
                    if c.index.is_none() && !if_exists {
                        return Err(StorageError::NotIndexed {
                            table: t.name.clone(),
                            column: c.name.clone(),
                        });
                    }
                    c.index.is_some().then_some((&**t, c))
                }
            };
            match found {
                Some((t, c)) => Op::DropIndex {
                    table: t.id,
                    column: c.id,
                },
                None if if_exists => return Ok(None),
                None => {
                    let IndexTarget::Name(n) = target else {
                        return Ok(None);
                    };
                    return Err(StorageError::IndexNotFound(n));
                }
            }
        }
        Request::SetTtl { table, ttl } => {
            let t = st.table(&table)?;
            // A table without a designated timestamp is not partitioned (see
            // CreateTable; it cannot be dropped), so `misfit` covers it too.
            if let Some(why) = ttl.and_then(|ttl| ttl.misfit(t.meta.partition_by)) {
                return Err(StorageError::InvalidData(format!(
                    "table \"{}\": {why}",
                    t.name
                )));
            }
            Op::SetTtl { table: t.id, ttl }
        }
        Request::SetDedup { table, keys } => {
            let t = st.table(&table)?;
            let mut ids = Vec::with_capacity(keys.len());
            for k in &keys {
                let id = t.meta.columns[column_index(t, k)?].id;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            if !ids.is_empty() {
                let Some(ts) = t.meta.timestamp_column else {
                    return Err(StorageError::InvalidData(format!(
                        "table \"{}\" has no designated timestamp: DEDUP needs one",
                        t.name
                    )));
                };
                if !ids.contains(&ts) {
                    return Err(StorageError::InvalidData(format!(
                        "the upsert keys of table \"{}\" must include its designated timestamp \"{}\"",
                        t.name,
                        t.meta.timestamp_name().unwrap_or_default()
                    )));
                }
            }
            Op::SetDedup {
                table: t.id,
                keys: ids,
            }
        }
        Request::Append { table, batch } => {
            let t = st.table(&table)?.clone();
            let data = resolve_rows(&t, batch)?;
            if data.rows() == 0 {
                return Ok(None);
            }
            Op::Append { table: t.id, data }
        }
        Request::ReplacePartition { table, at, batch } => {
            let t = st.table(&table)?.clone();
            let partitioning = t.meta.partitioning();
            let start = partitioning.start(at);
            if !t.partition_starts().contains(&start) {
                return Err(StorageError::PartitionNotFound {
                    table: t.name.clone(),
                    partition: partitioning.name(start),
                });
            }
            let data = resolve_rows(&t, batch)?;
            if let Some(ts) = t.meta.timestamp_index()
                && let Ok(v) = designated_values(&data.columns[ts].1.values)
                && let Some(bad) = v.iter().find(|&&x| partitioning.start(x) != start)
            {
                return Err(StorageError::InvalidData(format!(
                    "timestamp {bad} does not belong to partition {} of table \"{}\"",
                    partitioning.name(start),
                    t.name
                )));
            }
            Op::ReplacePartition {
                table: t.id,
                start,
                data,
            }
        }
    }))
}

/// Matches a batch to the table's columns, checks types and NOT NULL, fills
/// missing columns with NULLs and encodes symbols.
fn resolve_rows(t: &TableState, batch: Batch) -> Result<RowData> {
    let rows = batch.rows();
    let mut given: Vec<Option<Column>> = vec![None; t.meta.columns.len()];
    for (name, col) in batch.columns {
        let i = column_index(t, &name)?;
        let c = &t.meta.columns[i];
        if given[i].is_some() {
            return Err(StorageError::InvalidData(format!(
                "column \"{}\" is given twice",
                c.name
            )));
        }
        if col.len() != rows {
            return Err(StorageError::InvalidData(format!(
                "column \"{}\" has {} values, the first column has {rows}",
                c.name,
                col.len()
            )));
        }
        col.check()
            .map_err(|e| StorageError::InvalidData(format!("column \"{}\": {e}", c.name)))?;
        let vt = col.values.column_type();
        let compatible = vt == c.column_type.physical()
            || matches!(
                (c.column_type.physical(), vt),
                (ColumnType::Symbol, ColumnType::Varchar)
                    | (ColumnType::Varchar, ColumnType::Symbol)
            );
        if !compatible {
            return Err(StorageError::InvalidData(format!(
                "column \"{}\" is of type {}, but the value is of type {vt}",
                c.name, c.column_type
            )));
        }
        given[i] = Some(col);
    }
    let mut columns = Vec::with_capacity(given.len());
    let mut new_symbols = Vec::new();
    for (c, g) in t.meta.columns.iter().zip(given) {
        let col = g.unwrap_or_else(|| Column::all_null(c.column_type, rows));
        if c.not_null && col.null_count() > 0 {
            let what = if Some(c.id) == t.meta.timestamp_column {
                "designated timestamp column"
            } else {
                "column"
            };
            return Err(StorageError::NotNull {
                what,
                column: c.name.clone(),
                table: t.name.clone(),
            });
        }
        let col = match (c.column_type, col.values) {
            (ColumnType::Symbol, Values::Symbol(v) | Values::Varchar(v)) => {
                let dict = t.symbols.get(&c.id).ok_or_else(|| {
                    StorageError::InvalidState(format!(
                        "symbol dictionary of column \"{}\" is missing",
                        c.name
                    ))
                })?;
                let base = t.symbol_count(c.id);
                let mut fresh: HashMap<&str, i32, foldhash::quality::RandomState> =
                    HashMap::default();
                let mut added: Vec<String> = Vec::new();
                let mut keys = Vec::with_capacity(rows);
                for i in 0..rows {
                    if col.nulls.as_ref().is_some_and(|n| n[i]) {
                        keys.push(column::SYMBOL_NULL);
                        continue;
                    }
                    // Checked UTF-8 above.
                    let s = std::str::from_utf8(v.get(i)).unwrap_or_default();
                    let k = match dict.lookup(s).filter(|&k| (k as u32) < base) {
                        Some(k) => k,
                        None => *fresh.entry(s).or_insert_with(|| {
                            added.push(s.to_string());
                            (base as usize + added.len() - 1) as i32
                        }),
                    };
                    keys.push(k);
                }
                if !added.is_empty() {
                    if (base as u64 + added.len() as u64) > i32::MAX as u64 {
                        return Err(StorageError::InvalidData(format!(
                            "symbol column \"{}\" is full",
                            c.name
                        )));
                    }
                    new_symbols.push((c.id, added));
                }
                Column {
                    values: Values::Int(keys),
                    nulls: col.nulls,
                }
            }
            (t, Values::Symbol(v)) if t.physical() == ColumnType::Varchar => Column {
                values: Values::Varchar(v),
                nulls: col.nulls,
            },
            (_, values) => Column {
                values,
                nulls: col.nulls,
            },
        };
        columns.push((c.id, col));
    }
    Ok(RowData {
        columns,
        new_symbols,
    })
}
