//! Applying ops to the in-memory state alone, writing no file.
//!
//! Every INSERT/COPY commit goes this way: its rows become runs of the write
//! buffer (sorted by the designated timestamp, split by partition), its new
//! symbols entries of the dictionaries in memory. A transaction's own view
//! (`transaction.rs`) stages all its ops this way, DDL included, on a private
//! copy of the state: a table it creates exists in memory only, a partition it
//! replaces or drops disappears from its view, not from disk.

use std::sync::Arc;

use crate::batch::Column;
use crate::buffer::Run;
use crate::error::{Result, StorageError};
use crate::ops::files::{designated_values, sort_order};
use crate::ops::{Op, RowData, Staging};
use crate::table::TableState;
use crate::table::meta::TableMeta;
use crate::table::symbol::SymbolDict;
use crate::table::txn::ColumnExtent;
use crate::types::ColumnType;

/// Applies `op` to the staged state in memory. Outside a private staging only
/// ops that add rows come here (see `Op::adds_rows_only`).
pub(crate) fn stage(op: Op, st: &mut Staging<'_>) -> Result<()> {
    let seq = st.seq;
    match op {
        Op::Append { table, data } => stage_rows(st, table, data)?,
        Op::ReplacePartition { table, start, data } => {
            let t = st.table_by_id(table)?;
            Arc::make_mut(&mut t.txn)
                .partitions
                .retain(|p| p.start != start);
            t.buffer.remove_partitions(|s| s == start);
            stage_rows(st, table, data)?;
        }
        Op::Truncate { table } => {
            let t = st.table_by_id(table)?;
            Arc::make_mut(&mut t.txn).partitions.clear();
            t.buffer.clear();
        }
        Op::DropPartitions { table, starts } => {
            let t = st.table_by_id(table)?;
            Arc::make_mut(&mut t.txn)
                .partitions
                .retain(|p| !starts.contains(&p.start));
            t.buffer.remove_partitions(|s| starts.contains(&s));
        }
        Op::CreateTable {
            id,
            name,
            dir,
            meta,
        } => {
            if st.catalog.table(&name).is_some() || st.catalog.tables.contains_key(&id) {
                return Err(StorageError::TableExists(name));
            }
            let path = st.db_dir.join(&dir);
            let state = TableState::created(id, name, dir, path, meta, seq, |p| {
                Ok(SymbolDict::in_memory(p))
            })?;
            st.catalog.add_created(state, seq);
        }
        Op::DropTable { id } => {
            st.catalog.remove(id).ok_or_else(|| {
                StorageError::InvalidState(format!("table id {id} does not exist"))
            })?;
            st.catalog.registry_seq = seq;
        }
        Op::RenameTable { id, name } => {
            let old = st.catalog.remove(id).ok_or_else(|| {
                StorageError::InvalidState(format!("table id {id} does not exist"))
            })?;
            if st.catalog.table(&name).is_some() {
                return Err(StorageError::TableExists(name));
            }
            let mut t = (*old).clone();
            t.name = name;
            st.catalog.insert(Arc::new(t));
            st.catalog.registry_seq = seq;
        }
        Op::AddColumn { table, column } => {
            let t = st.table_by_id(table)?;
            if column.column_type == ColumnType::Symbol {
                let p = TableState::symbol_file(&t.dir, &column.file_stem);
                t.symbols
                    .insert(column.id, Arc::new(SymbolDict::in_memory(p)));
                t.set_symbol_count(column.id, 0);
                Arc::make_mut(&mut t.txn).set_symbol_count(column.id, 0);
            }
            let meta = Arc::make_mut(&mut t.meta);
            meta.next_column_id = meta.next_column_id.max(column.id + 1);
            meta.columns.push(column.clone());
            meta.seq = seq;
            let txn = Arc::make_mut(&mut t.txn);
            txn.meta_seq = seq;
            for p in &mut txn.partitions {
                p.columns.push(ColumnExtent::empty(column.id, p.rows));
            }
        }
        Op::DropColumn { table, column } => {
            let t = st.table_by_id(table)?;
            let meta = Arc::make_mut(&mut t.meta);
            meta.columns.retain(|c| c.id != column);
            meta.seq = seq;
            t.symbols.remove(&column);
            t.symbol_counts.retain(|(id, _)| *id != column);
            let txn = Arc::make_mut(&mut t.txn);
            txn.meta_seq = seq;
            txn.symbol_counts.retain(|(id, _)| *id != column);
            for p in &mut txn.partitions {
                p.columns.retain(|e| e.column_id != column);
            }
        }
        Op::RenameColumn {
            table,
            column,
            name,
        } => {
            let t = st.table_by_id(table)?;
            let meta = Arc::make_mut(&mut t.meta);
            let c = meta
                .columns
                .iter_mut()
                .find(|c| c.id == column)
                .ok_or_else(|| {
                    StorageError::InvalidState(format!("column id {column} does not exist"))
                })?;
            c.name = name;
            meta.seq = seq;
            Arc::make_mut(&mut t.txn).meta_seq = seq;
        }
        Op::SetTtl { table, ttl } => st.change_meta(table, |meta| meta.ttl = ttl)?,
        Op::SetDedup { table, keys } => st.change_meta(table, |meta| meta.dedup_keys = keys)?,
        // A transaction's own view: the schema says indexed, the parts have no
        // index files, so its scans read the keys (see `PartIndex::open`).
        Op::AddIndex {
            table,
            column,
            name,
        } => st.set_index(table, column, Some(name))?,
        Op::DropIndex { table, column } => st.set_index(table, column, None)?,
        Op::PutView { .. } | Op::DropView { .. } => super::change_view(&op, st)?,
    }
    Ok(())
}

/// Adds rows to the table's write buffer: new symbols to the dictionaries in
/// memory, then one run per partition the rows fall in.
fn stage_rows(st: &mut Staging<'_>, table: u64, data: RowData) -> Result<()> {
    let rows = data.rows() as u64;
    for (col, strings) in &data.new_symbols {
        st.add_symbols(table, *col, strings)?;
    }
    let (seq, frozen) = (st.seq, st.frozen);
    let t = st.table_by_id(table)?;
    let ts_column = t.meta.timestamp_column;
    for (start, columns) in split_by_partition(&t.meta, data.columns)? {
        t.buffer
            .push(start, Run::new(seq, columns, ts_column), frozen)?;
    }
    st.rows_written += rows;
    Ok(())
}

/// One column per table column, by column id.
pub(crate) type ColumnsById = Vec<(u32, Column)>;

/// Rows (one column per table column, in meta order) sorted by the designated
/// timestamp and cut into partitions, in time order. Without a designated
/// timestamp the rows stay in their order, in the one partition.
pub(crate) fn split_by_partition(
    meta: &TableMeta,
    mut columns: Vec<(u32, Column)>,
) -> Result<Vec<(i64, ColumnsById)>> {
    let rows = columns.first().map_or(0, |(_, c)| c.len());
    if rows == 0 {
        return Ok(Vec::new());
    }
    let Some(ts_index) = meta.timestamp_index() else {
        return Ok(vec![(i64::MIN, columns)]);
    };
    let timestamps = |columns: &[(u32, Column)]| -> Result<Vec<i64>> {
        designated_values(&columns[ts_index].1.values).map(<[i64]>::to_vec)
    };
    if let Some(order) = sort_order(&timestamps(&columns)?) {
        for (_, c) in &mut columns {
            *c = c.take(&order);
        }
    }
    let ts = timestamps(&columns)?;
    let partitioning = meta.partitioning();
    let mut cuts = Vec::new();
    let mut start = 0;
    while start < ts.len() {
        let key = partitioning.start(ts[start]);
        let end = partitioning.end(key);
        let stop = start + ts[start..].partition_point(|&x| x < end);
        cuts.push((key, start..stop));
        start = stop;
    }
    if let [(key, _)] = cuts.as_slice() {
        return Ok(vec![(*key, columns)]);
    }
    let mut out = Vec::with_capacity(cuts.len());
    for (key, range) in cuts {
        let mut part = Vec::with_capacity(columns.len());
        for (id, c) in &columns {
            let mut piece = c.empty_like();
            piece.extend_range(c, range.clone())?;
            part.push((*id, piece));
        }
        out.push((key, part));
    }
    Ok(out)
}
