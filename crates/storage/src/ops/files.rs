//! Applying ops to the column files: what the WAL replay and commits that
//! change more than rows (DDL, UPDATE/DELETE, dropped partitions) do, and what
//! the apply of the write buffer runs (`write_run`). Committed bytes are never
//! modified: rows are appended past the committed length, or a partition's
//! overlapped tail is rewritten as a new part (copy-on-write).

use std::borrow::Borrow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::batch::{Column, Values};
use crate::dedup;
use crate::error::{Result, StorageError};
use crate::ops::memory::split_by_partition;
use crate::ops::{Op, RowData, Staging};
use crate::table::TableState;
use crate::table::column;
use crate::table::symbol::SymbolDict;
use crate::table::txn::{ColumnExtent, PartitionMeta};
use crate::types::ColumnType;

/// Applies a resolved op to the staged state, writing files. The table's
/// buffered rows must be in its files first (`apply::write_buffered`): the op
/// works on the files alone.
pub(crate) fn apply(op: &Op, st: &mut Staging<'_>) -> Result<()> {
    let seq = st.seq;
    if let Some(id) = op.table_id()
        && !st.table_by_id(id)?.buffer.is_empty()
    {
        return Err(StorageError::InvalidState(format!(
            "commit {seq} changes the files of table id {id} while it has buffered rows"
        )));
    }
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
            // A directory of that name left by a crash is garbage that recovery
            // handed to housekeeping (and may be under a checkpoint's copy):
            // the table takes another name rather than deleting it now.
            let dir = &crate::fsutil::free_name(&st.db_dir, dir);
            let path = st.db_dir.join(dir);
            std::fs::create_dir(&path).map_err(|e| StorageError::io(&path, e))?;
            st.created.push(path.clone());
            st.dirty.push(path.clone());
            st.dirty.push(st.db_dir.clone());
            let mut dictionaries = Vec::new();
            let state = TableState::created(
                *id,
                name.clone(),
                dir.clone(),
                path,
                meta.clone(),
                seq,
                |p| {
                    dictionaries.push(p.clone());
                    SymbolDict::create(p)
                },
            )?;
            st.dirty.extend(dictionaries);
            st.catalog.add_created(state, seq);
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
            let t = st.table_by_id(*table)?;
            let symbol_path = TableState::symbol_file(&t.dir, &column.file_stem);
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
                t.set_symbol_count(column.id, 0);
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
                garbage.extend(column::index_path(&dir, &c));
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
            t.symbol_counts.retain(|(id, _)| *id != c.id);
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
        Op::SetTtl { table, ttl } => st.change_meta(*table, |meta| meta.ttl = *ttl)?,
        Op::SetDedup { table, keys } => {
            st.change_meta(*table, |meta| meta.dedup_keys = keys.clone())?
        }
        Op::AddIndex {
            table,
            column,
            name,
        } => add_index(st, *table, *column, name)?,
        Op::DropIndex { table, column } => drop_index(st, *table, *column)?,
        Op::PutView { .. } | Op::DropView { .. } => super::change_view(op, st)?,
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
                        partition: t.meta.partitioning().name(*s),
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

/// Indexes column `column` as of this commit: writes the index file of every
/// part from its stored keys.
fn add_index(st: &mut Staging<'_>, table: u64, column: u32, name: &str) -> Result<()> {
    st.set_index(table, column, Some(name.to_string()))?;
    let t = st.table_by_id(table)?;
    let col = column_of(t, column)?;
    let dirs: Vec<PathBuf> = t
        .txn
        .partitions
        .iter()
        .map(|p| t.partition_dir(p))
        .collect();
    let mut partitions = t.txn.partitions.clone();
    let mut dirty = Vec::new();
    for (p, dir) in partitions.iter_mut().zip(&dirs) {
        let rows = p.rows;
        let ext = p.extent_mut(column).ok_or_else(|| {
            StorageError::InvalidState(format!(
                "partition has no extent for column \"{}\"",
                col.name
            ))
        })?;
        column::build_index(dir, &col, ext, rows, st.mapped, &mut dirty)?;
    }
    st.created.extend(dirty.iter().cloned());
    st.dirty.extend(dirty);
    let t = st.table_by_id(table)?;
    Arc::make_mut(&mut t.txn).partitions = partitions;
    Ok(())
}

/// Drops column `column`'s index: its files become garbage (a checkpoint may
/// still need them), or go at once when this same commit wrote them
/// (`retire_path`).
fn drop_index(st: &mut Staging<'_>, table: u64, column: u32) -> Result<()> {
    let t = st.table_by_id(table)?;
    let col = column_of(t, column)?;
    let files: Vec<PathBuf> = t
        .txn
        .partitions
        .iter()
        .filter_map(|p| column::index_path(&t.partition_dir(p), &col))
        .collect();
    st.set_index(table, column, None)?;
    for f in files {
        retire_path(st, f)?;
    }
    Ok(())
}

/// The schema of column id `column` of table `t`.
fn column_of(t: &TableState, column: u32) -> Result<crate::table::meta::ColumnMeta> {
    t.meta
        .column_by_id(column)
        .cloned()
        .ok_or_else(|| StorageError::InvalidState(format!("column id {column} does not exist")))
}

/// Adds an op's new symbols to the dictionaries and writes them to the files
/// (the rows that use them go straight to the column files).
fn add_symbols(st: &mut Staging<'_>, table: u64, data: &RowData) -> Result<()> {
    for (col, strings) in &data.new_symbols {
        let dict = st.add_symbols(table, *col, strings)?;
        let t = st.table_by_id(table)?;
        let count = t.symbol_count(*col);
        Arc::make_mut(&mut t.txn).set_symbol_count(*col, count);
        dict.persist(count, &mut st.dirty)?;
    }
    Ok(())
}

/// The permutation that sorts `ts` (stable: equal timestamps keep their order).
pub(crate) fn sort_order(ts: &[i64]) -> Option<Vec<u32>> {
    if ts.windows(2).all(|w| w[0] <= w[1]) {
        return None;
    }
    let mut idx: Vec<u32> = (0..ts.len() as u32).collect();
    idx.sort_by_key(|&i| ts[i as usize]);
    Some(idx)
}

pub(crate) fn timestamps<C: Borrow<Column>>(cols: &[C], ts_index: usize) -> Result<&[i64]> {
    designated_values(&cols[ts_index].borrow().values)
}

/// The values of a designated timestamp column: microseconds (TIMESTAMP,
/// TIMESTAMPTZ) or nanoseconds (TIMESTAMP_NS, stored as BIGINT).
pub(crate) fn designated_values(values: &Values) -> Result<&[i64]> {
    match values {
        Values::Timestamp(v) | Values::BigInt(v) => Ok(v),
        _ => Err(StorageError::InvalidState(
            "designated timestamp column is not a TIMESTAMP".into(),
        )),
    }
}

fn append_rows(st: &mut Staging<'_>, table: u64, data: &RowData) -> Result<()> {
    let meta = st.table_by_id(table)?.meta.clone();
    for (key, columns) in split_by_partition(&meta, data.columns.clone())? {
        let cols: Vec<Column> = columns.into_iter().map(|(_, c)| c).collect();
        let ts = match meta.timestamp_index() {
            Some(i) => Some(timestamps(&cols, i)?),
            None => None,
        };
        let current = st.table_by_id(table)?.clone();
        write_run(st, &current, key, &cols, ts)?;
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
///
/// A table with upsert keys (`DEDUP`) keeps the last of the rows with equal
/// keys, among the new rows and against the stored ones: rows at the newest
/// stored timestamp are then merged rather than appended.
pub(crate) fn write_run<C: Borrow<Column>>(
    st: &mut Staging<'_>,
    t: &TableState,
    key: i64,
    run: &[C],
    ts: Option<&[i64]>,
) -> Result<()> {
    if let (Some(ts), Some(tsi)) = (ts, t.meta.timestamp_index())
        && !t.meta.dedup_keys.is_empty()
        && let Some(keep) = dedup::kept_rows(ts, &dedup::key_columns(&t.meta, run))
    {
        let run: Vec<Column> = run.iter().map(|c| c.borrow().take(&keep)).collect();
        return write_unique_run(st, t, key, &run, Some(timestamps(&run, tsi)?));
    }
    write_unique_run(st, t, key, run, ts)
}

/// [`write_run`] of rows without duplicate upsert keys among themselves.
fn write_unique_run<C: Borrow<Column>>(
    st: &mut Staging<'_>,
    t: &TableState,
    key: i64,
    run: &[C],
    ts: Option<&[i64]>,
) -> Result<()> {
    let dedup = !t.meta.dedup_keys.is_empty();
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
    // The first part holding a row newer than the oldest new row (or as new,
    // with dedup): it and what follows it within the run's range must be merged.
    let first = if ts.is_none() {
        None
    } else if dedup {
        parts.iter().position(|p| p.max_ts >= rmin)
    } else {
        parts.iter().position(|p| p.max_ts > rmin)
    };
    let Some(j) = first else {
        let mut kept = parts.clone();
        if last.read_only {
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
    // Rows of the head part up to (and including, without dedup) the oldest new
    // timestamp stay first.
    let k = match rmin.checked_add(1) {
        _ if dedup => t.rows_before(head, rmin, st.mapped)?,
        Some(bound) => t.rows_before(head, bound, st.mapped)?,
        None => head.rows,
    };
    let run_rows = run.first().map_or(0, |c| c.borrow().len()) as u64;
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
        append_columns(&mut merged, t.read_partition_raw(p, st.mapped)?)?;
    }
    append_columns(
        &mut merged,
        t.read_rows_raw(head, from..head.rows as usize, st.mapped)?,
    )?;
    for p in &parts[j + 1..=l] {
        append_columns(&mut merged, t.read_partition_raw(p, st.mapped)?)?;
    }
    append_columns(
        &mut merged,
        run.iter().map(|c| c.borrow().clone()).collect(),
    )?;
    if let Some(order) = sort_order(timestamps(&merged, tsi)?) {
        merged = merged.iter().map(|c| c.take(&order)).collect();
    }
    if dedup
        && let Some(keep) = dedup::kept_rows(
            timestamps(&merged, tsi)?,
            &dedup::key_columns(&t.meta, &merged),
        )
    {
        merged = merged.iter().map(|c| c.take(&keep)).collect();
    }
    let mut replacement = Vec::new();
    for p in &parts[i..j] {
        retire_part(st, t, p)?;
    }
    if keep_prefix {
        let head_max = t.read_rows_raw(head, k as usize - 1..k as usize, st.mapped)?;
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

fn append_in_place<C: Borrow<Column>>(
    st: &mut Staging<'_>,
    t: &TableState,
    p: &mut PartitionMeta,
    run: &[C],
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
        column::append(&dir, c, ext, stored, col.borrow(), &mut st.dirty)?;
    }
    if p.rows == 0 {
        p.min_ts = rmin;
    }
    p.rows += run.first().map_or(0, |c| c.borrow().len()) as u64;
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
        columns.push(column::prefix_extent(&dir, c, &ext, p.rows, k, st.mapped)?);
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
fn write_new_part<C: Borrow<Column>>(
    st: &mut Staging<'_>,
    t: &TableState,
    key: i64,
    cols: &[C],
) -> Result<PartitionMeta> {
    let (dir_name, version) = crate::table::new_part_dir_name(&t.dir, &t.meta, key, st.seq);
    let dir = t.dir.join(&dir_name);
    std::fs::create_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
    st.created.push(dir.clone());
    st.dirty.push(dir.clone());
    st.dirty.push(t.dir.clone());
    let rows = cols.first().map_or(0, |c| c.borrow().len()) as u64;
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
        column::append(&dir, c, &mut ext, 0, col.borrow(), &mut st.dirty)?;
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
            partition: t.meta.partitioning().name(start),
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
    retire_path(st, t.partition_dir(old))
}

/// A file or directory leaves the committed state: garbage for housekeeping
/// when an earlier commit wrote it, removed at once when this one did.
fn retire_path(st: &mut Staging<'_>, path: PathBuf) -> Result<()> {
    if st.created.contains(&path) {
        st.remove_now(&path)?;
        st.created.retain(|p| p != &path);
    } else {
        st.garbage.push(path);
    }
    Ok(())
}
