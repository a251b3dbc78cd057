//! What a transaction asks for ([`Request`]), what the WAL records ([`Op`]),
//! and how both become a new committed state.
//!
//! A request is *resolved* against the current state into an `Op`: names become
//! ids, new ids are assigned, symbol strings become keys, a time range becomes a
//! list of partitions. The `Op` is then *applied*, writing files. Live commits
//! and WAL replay run the same `apply`, so recovery rebuilds exactly what a
//! commit built.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::batch::{Batch, Column, Values};
use crate::catalog::Catalog;
use crate::error::{Result, StorageError};
use crate::name::{fs_name, name_key, validate_name};
use crate::table::TableState;
use crate::table::column::{self, VerifiedFiles};
use crate::table::meta::{ColumnMeta, TableMeta};
use crate::table::symbol::SymbolDict;
use crate::table::txn::{ColumnExtent, PartitionMeta, TxnState};
use crate::types::{ColumnType, PartitionBy};

/// A column in a `CREATE TABLE` or `ADD COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub column_type: ColumnType,
    pub not_null: bool,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, column_type: ColumnType) -> Self {
        ColumnDef {
            name: name.into(),
            column_type,
            not_null: false,
        }
    }
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

/// A resolved, WAL-logged operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    CreateTable {
        id: u64,
        name: String,
        dir: String,
        meta: TableMeta,
    },
    DropTable {
        id: u64,
    },
    RenameTable {
        id: u64,
        name: String,
    },
    AddColumn {
        table: u64,
        column: ColumnMeta,
    },
    DropColumn {
        table: u64,
        column: u32,
    },
    RenameColumn {
        table: u64,
        column: u32,
        name: String,
    },
    Truncate {
        table: u64,
    },
    DropPartitions {
        table: u64,
        starts: Vec<i64>,
    },
    Append {
        table: u64,
        data: RowData,
    },
    ReplacePartition {
        table: u64,
        start: i64,
        data: RowData,
    },
}

impl Op {
    /// The table whose own state (`_txn`/`_meta`) this op changes, if any;
    /// `None` for ops that change only the registry.
    pub(crate) fn table_id(&self) -> Option<u64> {
        match self {
            Op::CreateTable { .. } | Op::DropTable { .. } | Op::RenameTable { .. } => None,
            Op::AddColumn { table, .. }
            | Op::DropColumn { table, .. }
            | Op::RenameColumn { table, .. }
            | Op::Truncate { table }
            | Op::DropPartitions { table, .. }
            | Op::Append { table, .. }
            | Op::ReplacePartition { table, .. } => Some(*table),
        }
    }
}

/// Rows in resolved form: one column per table column (by id, in meta order),
/// symbols as keys, plus the symbol strings this op adds to dictionaries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowData {
    pub(crate) columns: Vec<(u32, Column)>,
    pub(crate) new_symbols: Vec<(u32, Vec<String>)>,
}

impl RowData {
    pub(crate) fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }
}

/// A commit in the making: a private copy of the catalog that ops modify, and
/// what to undo, sync or reclaim depending on how the commit ends.
#[derive(Debug)]
pub(crate) struct Staging<'a> {
    pub(crate) catalog: Catalog,
    pub(crate) seq: u64,
    pub(crate) db_dir: PathBuf,
    pub(crate) verified: &'a VerifiedFiles,
    /// Files and directories written, to fsync at the next flush.
    pub(crate) dirty: Vec<PathBuf>,
    /// Paths this commit created, removed if it fails.
    pub(crate) created: Vec<PathBuf>,
    /// Paths the commit made unreachable, reclaimed by housekeeping later.
    pub(crate) garbage: Vec<PathBuf>,
    /// Symbol dictionaries appended to, with their committed counts, for rollback.
    pub(crate) symbol_marks: Vec<(Arc<SymbolDict>, u32)>,
    pub(crate) rows_written: u64,
    pub(crate) split_min_rows: u64,
    /// Set when staging a preview (a transaction's own view before it commits):
    /// the private directory for its files. A preview writes no byte that any
    /// committed state or other commit can see: rows go to new part directories,
    /// symbol dictionaries are forked into this directory.
    pub(crate) preview: Option<PathBuf>,
    forked: std::collections::HashSet<(u64, u32)>,
}

impl<'a> Staging<'a> {
    pub(crate) fn new(
        catalog: Catalog,
        seq: u64,
        db_dir: PathBuf,
        verified: &'a VerifiedFiles,
        split_min_rows: u64,
    ) -> Self {
        Staging {
            catalog,
            seq,
            db_dir,
            verified,
            dirty: Vec::new(),
            created: Vec::new(),
            garbage: Vec::new(),
            symbol_marks: Vec::new(),
            rows_written: 0,
            split_min_rows,
            preview: None,
            forked: std::collections::HashSet::new(),
        }
    }

    /// Undoes the side effects of a failed commit on the symbol dictionaries, and
    /// returns the paths it created (unreferenced: the caller removes them, or
    /// defers that in checkpoint mode; recovery removes leftovers too).
    pub(crate) fn abort_keeping_files(mut self) -> Vec<PathBuf> {
        for (dict, count) in &self.symbol_marks {
            dict.rollback(*count);
        }
        std::mem::take(&mut self.created)
    }

    /// Removes a path this commit is about to write again, and forgets its
    /// checksum cache entry (the new file at that path has other bytes).
    fn remove_now(&self, path: &std::path::Path) -> Result<()> {
        self.verified.forget_under(path);
        crate::fsutil::remove_path(path)
    }

    /// Where a new symbol dictionary goes: the table directory, or the preview's own.
    fn symbol_path(&self, table: u64, table_dir: &std::path::Path, stem: &str) -> PathBuf {
        match &self.preview {
            Some(area) => area.join(format!("{table}-{stem}.sym")),
            None => TableState::symbol_file(table_dir, stem),
        }
    }

    fn table(&self, name: &str) -> Result<&Arc<TableState>> {
        self.catalog
            .table(name)
            .ok_or_else(|| StorageError::TableNotFound(name.to_string()))
    }

    fn table_by_id(&mut self, id: u64) -> Result<&mut TableState> {
        self.catalog
            .tables
            .get_mut(&id)
            .map(Arc::make_mut)
            .ok_or_else(|| StorageError::InvalidState(format!("table id {id} does not exist")))
    }
}

fn column_index(t: &TableState, name: &str) -> Result<usize> {
    t.meta
        .column_index(name)
        .ok_or_else(|| StorageError::ColumnNotFound {
            table: t.name.clone(),
            column: name.to_string(),
        })
}

fn new_column_meta(id: u32, def: &ColumnDef) -> Result<ColumnMeta> {
    validate_name(&def.name)?;
    Ok(ColumnMeta {
        id,
        name: def.name.clone(),
        column_type: def.column_type,
        not_null: def.not_null,
        file_stem: format!("{}~{id}", fs_name(&def.name)),
    })
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
                columns.push(new_column_meta(i as u32, c)?);
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
                    if c.column_type != ColumnType::Timestamp {
                        return Err(StorageError::InvalidData(format!(
                            "designated timestamp column \"{}\" must be of type TIMESTAMP, not {}",
                            c.name, c.column_type
                        )));
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
            None if if_exists => return Ok(None),
            None => return Err(StorageError::TableNotFound(name)),
        },
        Request::RenameTable { from, to } => {
            validate_name(&to)?;
            let id = st.table(&from)?.id;
            if let Some(other) = st.catalog.table(&to)
                && other.id != id
            {
                return Err(StorageError::TableExists(to));
            }
            Op::RenameTable { id, name: to }
        }
        Request::AddColumn { table, column } => {
            let t = st.table(&table)?;
            if t.meta.column_index(&column.name).is_some() {
                return Err(StorageError::ColumnExists {
                    table: t.name.clone(),
                    column: column.name,
                });
            }
            if column.not_null && t.txn.row_count() > 0 {
                return Err(StorageError::InvalidData(format!(
                    "cannot add NOT NULL column \"{}\" to table \"{}\", which has rows",
                    column.name, t.name
                )));
            }
            Op::AddColumn {
                table: t.id,
                column: new_column_meta(t.meta.next_column_id, &column)?,
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
            let pb = t.meta.partition_by;
            let starts: Vec<i64> = match which {
                PartitionSelector::List(ts) => {
                    let mut out = Vec::new();
                    for x in ts {
                        let s = pb.partition_start(x);
                        if !t.txn.partitions.iter().any(|p| p.start == s) {
                            return Err(StorageError::PartitionNotFound {
                                table: t.name.clone(),
                                partition: pb.partition_name(s),
                            });
                        }
                        if !out.contains(&s) {
                            out.push(s);
                        }
                    }
                    out
                }
                PartitionSelector::TimeRange { from, to } => t
                    .txn
                    .partitions
                    .iter()
                    .filter(|p| {
                        from.is_none_or(|f| p.min_ts >= f) && to.is_none_or(|e| p.max_ts < e)
                    })
                    .map(|p| p.start)
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
            let start = t.meta.partition_by.partition_start(at);
            if !t.txn.partitions.iter().any(|p| p.start == start) {
                return Err(StorageError::PartitionNotFound {
                    table: t.name.clone(),
                    partition: t.meta.partition_by.partition_name(start),
                });
            }
            let data = resolve_rows(&t, batch)?;
            if let Some(ts) = t.meta.timestamp_index()
                && let (
                    _,
                    Column {
                        values: Values::Timestamp(v),
                        ..
                    },
                ) = &data.columns[ts]
                && let Some(bad) = v
                    .iter()
                    .find(|&&x| t.meta.partition_by.partition_start(x) != start)
            {
                return Err(StorageError::InvalidData(format!(
                    "timestamp {bad} does not belong to partition {} of table \"{}\"",
                    t.meta.partition_by.partition_name(start),
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
        let compatible = vt == c.column_type
            || matches!(
                (c.column_type, vt),
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
            return Err(StorageError::InvalidData(format!(
                "null value in {what} \"{}\" of table \"{}\" violates not-null constraint",
                c.name, t.name
            )));
        }
        let col = match (c.column_type, col.values) {
            (ColumnType::Symbol, Values::Symbol(v) | Values::Varchar(v)) => {
                let dict = t.symbols.get(&c.id).ok_or_else(|| {
                    StorageError::InvalidState(format!(
                        "symbol dictionary of column \"{}\" is missing",
                        c.name
                    ))
                })?;
                let base = t.txn.symbol_count(c.id);
                let mut fresh: HashMap<&str, i32> = HashMap::new();
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
            (ColumnType::Varchar, Values::Symbol(v)) => Column {
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

/// Applies a resolved op to the staged state, writing files.
pub(crate) fn apply(op: &Op, st: &mut Staging<'_>) -> Result<()> {
    let seq = st.seq;
    match op {
        Op::CreateTable {
            id,
            name,
            dir,
            meta,
        } => {
            if st.catalog.table(name).is_some() || st.catalog.tables.contains_key(id) {
                return Err(StorageError::TableExists(name.clone()));
            }
            let path = st.db_dir.join(dir);
            if path.exists() {
                st.remove_now(&path)?;
            }
            std::fs::create_dir(&path).map_err(|e| StorageError::io(&path, e))?;
            st.created.push(path.clone());
            st.dirty.push(path.clone());
            st.dirty.push(st.db_dir.clone());
            let mut symbols = std::collections::BTreeMap::new();
            let mut txn = TxnState {
                txn: seq,
                meta_seq: seq,
                ..Default::default()
            };
            for c in meta
                .columns
                .iter()
                .filter(|c| c.column_type == ColumnType::Symbol)
            {
                let p = st.symbol_path(*id, &path, &c.file_stem);
                symbols.insert(c.id, Arc::new(SymbolDict::create(p.clone())?));
                st.dirty.push(p);
                txn.set_symbol_count(c.id, 0);
            }
            let state = TableState {
                id: *id,
                name: name.clone(),
                dir_name: dir.clone(),
                dir: path,
                meta: Arc::new(TableMeta {
                    seq,
                    ..meta.clone()
                }),
                txn: Arc::new(txn),
                symbols,
            };
            st.catalog.insert(Arc::new(state));
            st.catalog.next_table_id = st.catalog.next_table_id.max(id + 1);
            st.catalog.registry_seq = seq;
        }
        Op::DropTable { id } => {
            let t = st.catalog.remove(*id).ok_or_else(|| {
                StorageError::InvalidState(format!("table id {id} does not exist"))
            })?;
            st.garbage.push(t.dir.clone());
            st.catalog.registry_seq = seq;
        }
        Op::RenameTable { id, name } => {
            let old = st.catalog.remove(*id).ok_or_else(|| {
                StorageError::InvalidState(format!("table id {id} does not exist"))
            })?;
            if st.catalog.table(name).is_some() {
                return Err(StorageError::TableExists(name.clone()));
            }
            let mut t = (*old).clone();
            t.name = name.clone();
            st.catalog.insert(Arc::new(t));
            st.catalog.registry_seq = seq;
        }
        Op::AddColumn { table, column } => {
            let dir = st.table_by_id(*table)?.dir.clone();
            let symbol_path = st.symbol_path(*table, &dir, &column.file_stem);
            let t = st.table_by_id(*table)?;
            let meta = Arc::make_mut(&mut t.meta);
            meta.columns.push(column.clone());
            meta.next_column_id = meta.next_column_id.max(column.id + 1);
            meta.seq = seq;
            let txn = Arc::make_mut(&mut t.txn);
            txn.meta_seq = seq;
            for p in &mut txn.partitions {
                p.columns.push(ColumnExtent::empty(column.id, p.rows));
            }
            if column.column_type == ColumnType::Symbol {
                let p = symbol_path;
                t.symbols
                    .insert(column.id, Arc::new(SymbolDict::create(p.clone())?));
                Arc::make_mut(&mut t.txn).set_symbol_count(column.id, 0);
                st.created.push(p.clone());
                st.dirty.push(p);
            }
        }
        Op::DropColumn { table, column } => {
            let t = st.table_by_id(*table)?;
            let i = t
                .meta
                .columns
                .iter()
                .position(|c| c.id == *column)
                .ok_or_else(|| {
                    StorageError::InvalidState(format!(
                        "column id {column} of table \"{}\" does not exist",
                        t.name
                    ))
                })?;
            let c = t.meta.columns[i].clone();
            let mut garbage = Vec::new();
            for p in &t.txn.partitions {
                let dir = t.partition_dir(p);
                garbage.push(column::data_path(&dir, &c));
                garbage.extend(column::aux_path(&dir, &c));
            }
            if let Some(d) = t.symbols.remove(&c.id) {
                garbage.push(d.path().to_path_buf());
            }
            let meta = Arc::make_mut(&mut t.meta);
            meta.columns.remove(i);
            meta.seq = seq;
            let txn = Arc::make_mut(&mut t.txn);
            txn.meta_seq = seq;
            txn.symbol_counts.retain(|(id, _)| *id != c.id);
            for p in &mut txn.partitions {
                p.columns.retain(|e| e.column_id != c.id);
            }
            st.garbage.extend(garbage);
        }
        Op::RenameColumn {
            table,
            column,
            name,
        } => {
            let t = st.table_by_id(*table)?;
            let meta = Arc::make_mut(&mut t.meta);
            let c = meta
                .columns
                .iter_mut()
                .find(|c| c.id == *column)
                .ok_or_else(|| {
                    StorageError::InvalidState(format!("column id {column} does not exist"))
                })?;
            c.name = name.clone();
            meta.seq = seq;
            Arc::make_mut(&mut t.txn).meta_seq = seq;
        }
        Op::Truncate { table } => {
            let t = st.table_by_id(*table)?;
            let dirs: Vec<PathBuf> = t
                .txn
                .partitions
                .iter()
                .map(|p| t.partition_dir(p))
                .collect();
            Arc::make_mut(&mut t.txn).partitions.clear();
            st.garbage.extend(dirs);
        }
        Op::DropPartitions { table, starts } => {
            let t = st.table_by_id(*table)?;
            let mut dirs = Vec::new();
            for s in starts {
                if !t.txn.partitions.iter().any(|p| p.start == *s) {
                    return Err(StorageError::PartitionNotFound {
                        table: t.name.clone(),
                        partition: t.meta.partition_by.partition_name(*s),
                    });
                }
                dirs.extend(
                    t.txn
                        .partitions
                        .iter()
                        .filter(|p| p.start == *s)
                        .map(|p| t.partition_dir(p)),
                );
                Arc::make_mut(&mut t.txn)
                    .partitions
                    .retain(|p| p.start != *s);
            }
            st.garbage.extend(dirs);
        }
        Op::Append { table, data } => {
            let rows = data.rows() as u64;
            add_symbols(st, *table, data)?;
            append_rows(st, *table, data)?;
            st.rows_written += rows;
        }
        Op::ReplacePartition { table, start, data } => {
            let rows = data.rows() as u64;
            add_symbols(st, *table, data)?;
            replace_partition(st, *table, *start, data)?;
            st.rows_written += rows;
        }
    }
    if let Some(id) = op.table_id() {
        Arc::make_mut(&mut st.table_by_id(id)?.txn).txn = seq;
    }
    Ok(())
}

fn add_symbols(st: &mut Staging<'_>, table: u64, data: &RowData) -> Result<()> {
    for (col, strings) in &data.new_symbols {
        if let Some(area) = st.preview.clone()
            && st.forked.insert((table, *col))
        {
            // A preview appends to its own copy of the dictionary, never the shared one.
            let t = st.table_by_id(table)?;
            let shared = t.symbols.get(col).cloned().ok_or_else(|| {
                StorageError::InvalidState(format!(
                    "symbol dictionary for column id {col} is missing"
                ))
            })?;
            let path = area.join(format!("{table}-{col}-fork.sym"));
            let fork = shared.fork(t.txn.symbol_count(*col), path.clone())?;
            t.symbols.insert(*col, Arc::new(fork));
            st.created.push(path);
        }
        let t = st.table_by_id(table)?;
        let dict = t.symbols.get(col).cloned().ok_or_else(|| {
            StorageError::InvalidState(format!("symbol dictionary for column id {col} is missing"))
        })?;
        let count = t.txn.symbol_count(*col);
        Arc::make_mut(&mut t.txn).set_symbol_count(*col, count + strings.len() as u32);
        st.symbol_marks.push((dict.clone(), count));
        dict.append(count, strings)?;
        st.dirty.push(dict.path().to_path_buf());
    }
    Ok(())
}

/// The permutation that sorts `ts` (stable: equal timestamps keep their order).
fn sort_order(ts: &[i64]) -> Option<Vec<u32>> {
    if ts.windows(2).all(|w| w[0] <= w[1]) {
        return None;
    }
    let mut idx: Vec<u32> = (0..ts.len() as u32).collect();
    idx.sort_by_key(|&i| ts[i as usize]);
    Some(idx)
}

fn timestamps(cols: &[Column], ts_index: usize) -> Result<&[i64]> {
    match &cols[ts_index].values {
        Values::Timestamp(v) => Ok(v),
        _ => Err(StorageError::InvalidState(
            "designated timestamp column is not a TIMESTAMP".into(),
        )),
    }
}

fn append_rows(st: &mut Staging<'_>, table: u64, data: &RowData) -> Result<()> {
    let t = st.table_by_id(table)?.clone();
    let mut cols: Vec<Column> = data.columns.iter().map(|(_, c)| c.clone()).collect();
    let Some(ts_index) = t.meta.timestamp_index() else {
        // No designated timestamp: rows keep their insertion order in one partition.
        return write_run(st, &t, i64::MIN, &cols, None);
    };
    if let Some(order) = sort_order(timestamps(&cols, ts_index)?) {
        cols = cols.iter().map(|c| c.take(&order)).collect();
    }
    let ts = timestamps(&cols, ts_index)?.to_vec();
    let pb = t.meta.partition_by;
    let mut start = 0;
    while start < ts.len() {
        let key = pb.partition_start(ts[start]);
        let end = pb.partition_end(key);
        let stop = start + ts[start..].partition_point(|&x| x < end);
        let run: Vec<Column> = if start == 0 && stop == ts.len() {
            cols.clone()
        } else {
            let idx: Vec<u32> = (start as u32..stop as u32).collect();
            cols.iter().map(|c| c.take(&idx)).collect()
        };
        let current = st.table_by_id(table)?.clone();
        write_run(st, &current, key, &run, Some(&ts[start..stop]))?;
        start = stop;
    }
    Ok(())
}

/// Writes rows that all belong to the partition starting at `key` (`run` sorted
/// by timestamp). A partition is a list of *parts*, ordered and non-overlapping in
/// time. Rows not older than the last part's newest row are appended to it in
/// place. Older rows are merged: the parts they overlap are rewritten as one new
/// part, except for the untouched prefix of the first one, which stays where it
/// is as a read-only view of its directory when it has at least
/// `split_min_rows` rows or twice the rows rewritten; a head rewritten whole takes
/// small neighbours before it along (fewer, larger parts). Committed bytes are
/// never modified.
fn write_run(
    st: &mut Staging<'_>,
    t: &TableState,
    key: i64,
    run: &[Column],
    ts: Option<&[i64]>,
) -> Result<()> {
    let parts: Vec<PartitionMeta> = t
        .txn
        .partitions
        .iter()
        .filter(|p| p.start == key)
        .cloned()
        .collect();
    let Some(last) = parts.last() else {
        let p = write_new_part(st, t, key, run)?;
        return set_parts(st, t.id, key, vec![p]);
    };
    let (rmin, rmax) = match ts {
        Some(ts) => (ts[0], ts[ts.len() - 1]),
        None => (i64::MIN, i64::MIN),
    };
    // The first part holding a row newer than the oldest new row: it and what
    // follows it within the run's range must be merged.
    let first = if ts.is_none() {
        None
    } else {
        parts.iter().position(|p| p.max_ts > rmin)
    };
    let Some(j) = first else {
        let mut kept = parts.clone();
        if last.read_only || st.preview.is_some() {
            kept.push(write_new_part(st, t, key, run)?);
        } else {
            let n = kept.len() - 1;
            append_in_place(st, t, &mut kept[n], run, rmin, rmax)?;
        }
        return set_parts(st, t.id, key, kept);
    };
    let mut l = j;
    while l + 1 < parts.len() && parts[l + 1].min_ts <= rmax {
        l += 1;
    }
    let head = &parts[j];
    let tsi = t
        .meta
        .timestamp_index()
        .ok_or_else(|| StorageError::InvalidState("merge without a timestamp".into()))?;
    // Rows of the head part up to (and including) the oldest new timestamp stay first.
    let k = match rmin.checked_add(1) {
        Some(bound) => t.rows_before(head, bound, st.verified)?,
        None => head.rows,
    };
    let run_rows = run.first().map_or(0, |c| c.len()) as u64;
    let later_rows: u64 = parts[j + 1..=l].iter().map(|p| p.rows).sum();
    // Rows the new part gets when the head's prefix stays in place.
    let tail_rows = head.rows - k + later_rows + run_rows;
    // Keep the prefix when it is large, or large next to what is rewritten: rows a
    // little late (concurrent writers) then cost a rewrite of the few rows they
    // overtake instead of the whole small tail part.
    let keep_prefix = k > 0 && (k >= st.split_min_rows || k >= 2 * tail_rows);
    let from = if keep_prefix { k as usize } else { 0 };
    // When the whole head is rewritten, small parts before it join the rewrite while
    // they are no larger than twice what is being written: small parts then shrink
    // geometrically towards the newest, so they stay few and each row is rewritten
    // a logarithmic number of times.
    let mut i = j;
    if !keep_prefix {
        let mut size = head.rows + later_rows + run_rows;
        while i > 0 && parts[i - 1].rows < st.split_min_rows && parts[i - 1].rows <= 2 * size {
            i -= 1;
            size += parts[i].rows;
        }
    }
    let mut merged: Vec<Column> = Vec::new();
    for p in &parts[i..j] {
        append_columns(&mut merged, t.read_partition_raw(p, st.verified)?)?;
    }
    append_columns(
        &mut merged,
        t.read_rows_raw(head, from..head.rows as usize, st.verified)?,
    )?;
    for p in &parts[j + 1..=l] {
        append_columns(&mut merged, t.read_partition_raw(p, st.verified)?)?;
    }
    append_columns(&mut merged, run.to_vec())?;
    if let Some(order) = sort_order(timestamps(&merged, tsi)?) {
        merged = merged.iter().map(|c| c.take(&order)).collect();
    }
    let mut replacement = Vec::new();
    for p in &parts[i..j] {
        retire_part(st, t, p)?;
    }
    if keep_prefix {
        let head_max = t.read_rows_raw(head, k as usize - 1..k as usize, st.verified)?;
        replacement.push(prefix_view(st, t, head, k, timestamps(&head_max, tsi)?[0])?);
    } else {
        retire_part(st, t, head)?;
    }
    for p in &parts[j + 1..=l] {
        retire_part(st, t, p)?;
    }
    replacement.push(write_new_part(st, t, key, &merged)?);
    let mut all = parts[..i].to_vec();
    all.extend(replacement);
    all.extend(parts[l + 1..].iter().cloned());
    set_parts(st, t.id, key, all)
}

/// Appends `more` column by column to `merged` (taken as is when `merged` is empty).
fn append_columns(merged: &mut Vec<Column>, more: Vec<Column>) -> Result<()> {
    if merged.is_empty() {
        *merged = more;
        return Ok(());
    }
    for (m, c) in merged.iter_mut().zip(&more) {
        m.extend(c)?;
    }
    Ok(())
}

fn append_in_place(
    st: &mut Staging<'_>,
    t: &TableState,
    p: &mut PartitionMeta,
    run: &[Column],
    rmin: i64,
    rmax: i64,
) -> Result<()> {
    let dir = t.partition_dir(p);
    let rows_before = p.rows;
    for (c, col) in t.meta.columns.iter().zip(run) {
        let ext = p.extent_mut(c.id).ok_or_else(|| {
            StorageError::InvalidState(format!("partition has no extent for column \"{}\"", c.name))
        })?;
        let stored = rows_before - ext.top;
        column::append(&dir, c, ext, stored, col, &mut st.dirty)?;
    }
    if p.rows == 0 {
        p.min_ts = rmin;
    }
    p.rows += run.first().map_or(0, |c| c.len()) as u64;
    p.max_ts = p.max_ts.max(rmax);
    Ok(())
}

/// The first `k` rows of `p`, kept in place as a read-only part.
fn prefix_view(
    st: &Staging<'_>,
    t: &TableState,
    p: &PartitionMeta,
    k: u64,
    max_ts: i64,
) -> Result<PartitionMeta> {
    let dir = t.partition_dir(p);
    let mut columns = Vec::with_capacity(p.columns.len());
    for c in &t.meta.columns {
        let ext = p.extent(c.id).copied().ok_or_else(|| {
            StorageError::InvalidState(format!("partition has no extent for column \"{}\"", c.name))
        })?;
        columns.push(column::prefix_extent(
            &dir,
            c,
            &ext,
            p.rows,
            k,
            st.verified,
        )?);
    }
    Ok(PartitionMeta {
        rows: k,
        max_ts,
        read_only: true,
        columns,
        ..p.clone()
    })
}

/// Writes `cols` (sorted) as a new part in a fresh directory.
fn write_new_part(
    st: &mut Staging<'_>,
    t: &TableState,
    key: i64,
    cols: &[Column],
) -> Result<PartitionMeta> {
    let (dir_name, version) = crate::table::new_part_dir_name(&t.dir, &t.meta, key, st.seq);
    let dir = t.dir.join(&dir_name);
    std::fs::create_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
    st.created.push(dir.clone());
    st.dirty.push(dir.clone());
    st.dirty.push(t.dir.clone());
    let rows = cols.first().map_or(0, |c| c.len()) as u64;
    let mut p = PartitionMeta {
        start: key,
        version,
        dir_name,
        read_only: false,
        rows,
        min_ts: i64::MIN,
        max_ts: i64::MIN,
        columns: Vec::new(),
    };
    for (c, col) in t.meta.columns.iter().zip(cols) {
        let mut ext = ColumnExtent::empty(c.id, 0);
        column::append(&dir, c, &mut ext, 0, col, &mut st.dirty)?;
        p.columns.push(ext);
    }
    if let Some(tsi) = t.meta.timestamp_index() {
        let ts = timestamps(cols, tsi)?;
        if let (Some(a), Some(b)) = (ts.first(), ts.last()) {
            p.min_ts = *a;
            p.max_ts = *b;
        }
    }
    Ok(p)
}

/// Replaces every part of partition `key` with `parts` (empty removes the partition).
fn set_parts(st: &mut Staging<'_>, table: u64, key: i64, parts: Vec<PartitionMeta>) -> Result<()> {
    let t = st.table_by_id(table)?;
    let all = &mut Arc::make_mut(&mut t.txn).partitions;
    all.retain(|p| p.start != key);
    let at = all.partition_point(|p| p.start < key);
    all.splice(at..at, parts);
    Ok(())
}

fn replace_partition(st: &mut Staging<'_>, table: u64, start: i64, data: &RowData) -> Result<()> {
    let t = st.table_by_id(table)?.clone();
    let parts: Vec<PartitionMeta> = t
        .txn
        .partitions
        .iter()
        .filter(|p| p.start == start)
        .cloned()
        .collect();
    if parts.is_empty() {
        return Err(StorageError::PartitionNotFound {
            table: t.name.clone(),
            partition: t.meta.partition_by.partition_name(start),
        });
    }
    for p in &parts {
        retire_part(st, &t, p)?;
    }
    if data.rows() == 0 {
        return set_parts(st, table, start, Vec::new());
    }
    let mut cols: Vec<Column> = data.columns.iter().map(|(_, c)| c.clone()).collect();
    if let Some(tsi) = t.meta.timestamp_index()
        && let Some(order) = sort_order(timestamps(&cols, tsi)?)
    {
        cols = cols.iter().map(|c| c.take(&order)).collect();
    }
    let p = write_new_part(st, &t, start, &cols)?;
    set_parts(st, table, start, vec![p])
}

/// A part leaves the committed state. A directory committed earlier stays on
/// disk as garbage (readers and checkpoints may still need it); one written
/// earlier in this same commit is removed at once.
fn retire_part(st: &mut Staging<'_>, t: &TableState, old: &PartitionMeta) -> Result<()> {
    let dir = t.partition_dir(old);
    if st.created.contains(&dir) {
        st.remove_now(&dir)?;
        st.created.retain(|p| p != &dir);
    } else {
        st.garbage.push(dir);
    }
    Ok(())
}
