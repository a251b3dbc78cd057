//! Changing the committed state, one transaction at a time.
//!
//! - [`request`]: what a caller asks for ([`Request`]) and how it is *resolved*
//!   against the staged state into an [`Op`], the unit the WAL records;
//! - `memory`: applying ops to the in-memory state alone: rows go to the write
//!   buffer (every INSERT/COPY commit), and a transaction's own view stages all
//!   its ops this way;
//! - `files`: applying ops to the column files: DDL, UPDATE/DELETE and dropped
//!   partitions, and the buffer's apply (`write_run`).
//!
//! Live commits and WAL replay run the same code, so recovery rebuilds exactly
//! what a commit built.

pub(crate) mod files;
pub(crate) mod memory;
pub(crate) mod request;

use std::path::PathBuf;
use std::sync::Arc;

use crate::batch::Column;
use crate::catalog::Catalog;
use crate::error::{Result, StorageError};
use crate::table::TableState;
use crate::table::files::MappedFiles;
use crate::table::meta::{ColumnMeta, SymbolIndexMeta, TableMeta};
use crate::table::symbol::SymbolDict;

pub use request::{ColumnDef, IndexTarget, PartitionSelector, Request, TableDef};

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
    SetTtl {
        table: u64,
        ttl: Option<crate::types::Ttl>,
    },
    /// Upsert keys by column id (empty: dedup off).
    SetDedup {
        table: u64,
        keys: Vec<u32>,
    },
    /// Indexes SYMBOL column `column`; the index's files are named after the
    /// op's commit.
    AddIndex {
        table: u64,
        column: u32,
        name: String,
    },
    DropIndex {
        table: u64,
        column: u32,
    },
    /// Creates view `id`, or gives the existing view `id` a new definition.
    PutView {
        id: u64,
        name: String,
        definition: String,
    },
    DropView {
        id: u64,
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
            Op::CreateTable { .. }
            | Op::DropTable { .. }
            | Op::RenameTable { .. }
            | Op::PutView { .. }
            | Op::DropView { .. } => None,
            Op::AddColumn { table, .. }
            | Op::DropColumn { table, .. }
            | Op::RenameColumn { table, .. }
            | Op::Truncate { table }
            | Op::DropPartitions { table, .. }
            | Op::SetTtl { table, .. }
            | Op::SetDedup { table, .. }
            | Op::AddIndex { table, .. }
            | Op::DropIndex { table, .. }
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

impl Op {
    /// Whether the op only adds rows (then it commits to the write buffer).
    pub(crate) fn adds_rows_only(&self) -> bool {
        matches!(self, Op::Append { .. })
    }
}

/// A commit in the making: a private copy of the catalog that ops modify, and
/// what to undo, sync or reclaim depending on how the commit ends.
#[derive(Debug)]
pub(crate) struct Staging<'a> {
    pub(crate) catalog: Catalog,
    pub(crate) seq: u64,
    pub(crate) db_dir: PathBuf,
    pub(crate) mapped: &'a MappedFiles,
    /// Files and directories written, to fsync at the next flush.
    pub(crate) dirty: Vec<PathBuf>,
    /// Paths this commit created, removed if it fails.
    pub(crate) created: Vec<PathBuf>,
    /// Paths the commit made unreachable, reclaimed by housekeeping later.
    pub(crate) garbage: Vec<PathBuf>,
    /// Symbol dictionaries added to, with their committed counts, for rollback.
    pub(crate) symbol_marks: Vec<(Arc<SymbolDict>, u32)>,
    pub(crate) rows_written: u64,
    pub(crate) split_min_rows: u64,
    /// Buffered runs of commits up to here are being written by the apply: they
    /// are never merged with newer runs (the apply removes exactly what it wrote).
    pub(crate) frozen: u64,
    /// Staging a transaction's own view: symbol dictionaries are private copies,
    /// and nothing is shared with any commit.
    pub(crate) private: bool,
}

impl<'a> Staging<'a> {
    pub(crate) fn new(
        catalog: Catalog,
        seq: u64,
        db_dir: PathBuf,
        mapped: &'a MappedFiles,
        split_min_rows: u64,
    ) -> Self {
        Staging {
            catalog,
            seq,
            db_dir,
            mapped,
            dirty: Vec::new(),
            created: Vec::new(),
            garbage: Vec::new(),
            symbol_marks: Vec::new(),
            rows_written: 0,
            split_min_rows,
            frozen: 0,
            private: false,
        }
    }

    /// Undoes the side effects of a failed commit on the symbol dictionaries, and
    /// returns the paths it created (unreferenced: the caller removes them;
    /// recovery removes leftovers too).
    pub(crate) fn abort_keeping_files(mut self) -> Vec<PathBuf> {
        for (dict, count) in &self.symbol_marks {
            dict.rollback(*count);
        }
        std::mem::take(&mut self.created)
    }

    /// Removes a path this commit is about to write again, and forgets its
    /// checksum cache entry (the new file at that path has other bytes).
    fn remove_now(&self, path: &std::path::Path) -> Result<()> {
        self.mapped.forget_under(path);
        crate::fsutil::remove_path(path)
    }

    fn table(&self, name: &str) -> Result<&Arc<TableState>> {
        self.catalog
            .table(name)
            .ok_or_else(|| match self.catalog.view(name) {
                Some(_) => StorageError::WrongObjectType {
                    name: name.to_string(),
                    is: "a view",
                    hint: "the tables its query reads",
                },
                None => StorageError::TableNotFound(name.to_string()),
            })
    }

    /// Changes table `id`'s schema (`_meta`) with `change`, as of this commit.
    pub(crate) fn change_meta(
        &mut self,
        id: u64,
        change: impl FnOnce(&mut TableMeta),
    ) -> Result<()> {
        let seq = self.seq;
        let t = self.table_by_id(id)?;
        let meta = Arc::make_mut(&mut t.meta);
        change(meta);
        meta.seq = seq;
        Arc::make_mut(&mut t.txn).meta_seq = seq;
        Ok(())
    }

    /// Gives column `column` of table `table` the index `name` as of this
    /// commit (`None` removes it), and forgets every part's index file length
    /// and CRC: a new index's files are written after this, a dropped one's are
    /// no longer read.
    pub(crate) fn set_index(
        &mut self,
        table: u64,
        column: u32,
        name: Option<String>,
    ) -> Result<()> {
        let seq = self.seq;
        self.change_meta(table, |meta| {
            if let Some(c) = meta.columns.iter_mut().find(|c| c.id == column) {
                c.index = name.map(|name| SymbolIndexMeta { seq, name });
            }
        })?;
        for p in &mut Arc::make_mut(&mut self.table_by_id(table)?.txn).partitions {
            if let Some(ext) = p.extent_mut(column) {
                ext.var_len = 0;
                ext.aux_crc = 0;
            }
        }
        Ok(())
    }

    pub(crate) fn table_by_id(&mut self, id: u64) -> Result<&mut TableState> {
        self.catalog
            .tables
            .get_mut(&id)
            .map(Arc::make_mut)
            .ok_or_else(|| StorageError::InvalidState(format!("table id {id} does not exist")))
    }

    /// Adds `strings` to a symbol column's dictionary in memory, after the
    /// entries the staged state sees; returns the dictionary. In a private
    /// staging the table's dictionary is first copied, so the shared one never
    /// holds a transaction's uncommitted strings.
    pub(crate) fn add_symbols(
        &mut self,
        table: u64,
        column: u32,
        strings: &[String],
    ) -> Result<Arc<SymbolDict>> {
        let private = self.private;
        let t = self.table_by_id(table)?;
        let shared = t.symbols.get(&column).cloned().ok_or_else(|| {
            StorageError::InvalidState(format!(
                "symbol dictionary for column id {column} is missing"
            ))
        })?;
        let fork = private && shared.has_file();
        let count = t.symbol_count(column);
        let dict = if fork {
            let copy = Arc::new(shared.private_copy(count));
            t.symbols.insert(column, copy.clone());
            copy
        } else {
            shared
        };
        t.set_symbol_count(column, count + strings.len() as u32);
        dict.add(count, strings);
        self.symbol_marks.push((dict.clone(), count));
        Ok(dict)
    }
}

/// Creates, replaces or drops a view: a change of the registry alone, the same
/// in memory and on disk (the registry is written by the next flush).
pub(crate) fn change_view(op: &Op, st: &mut Staging<'_>) -> Result<()> {
    let seq = st.seq;
    match op {
        Op::PutView {
            id,
            name,
            definition,
        } => {
            if st.catalog.table(name).is_some() {
                return Err(StorageError::TableExists(name.clone()));
            }
            if let Some(other) = st.catalog.view(name)
                && other.id != *id
            {
                return Err(StorageError::ViewExists(name.clone()));
            }
            st.catalog.remove_view(*id, seq);
            st.catalog.put_view(
                crate::view::ViewDef {
                    id: *id,
                    name: name.clone(),
                    definition: definition.clone(),
                    seq,
                },
                seq,
            );
        }
        Op::DropView { id } => {
            st.catalog.remove_view(*id, seq).ok_or_else(|| {
                StorageError::InvalidState(format!("view id {id} does not exist"))
            })?;
        }
        _ => {
            return Err(StorageError::InvalidState(
                "a view change was expected".into(),
            ));
        }
    }
    Ok(())
}

/// The placeholder of a column's values before its type is known to the
/// buffer: SYMBOL columns hold dictionary keys, so their NULLs are INT.
pub(crate) fn null_column(c: &ColumnMeta, rows: usize) -> Column {
    let t = match c.column_type {
        crate::types::ColumnType::Symbol => crate::types::ColumnType::Int,
        other => other,
    };
    Column::all_null(t, rows)
}
