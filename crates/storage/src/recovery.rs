//! Opening a root: load the durable state, cut what no commit owns, replay the WAL.
//!
//! 1. `_tables` lists the tables; each table's `_txn` (and the `_meta` it names)
//!    is its durable state. A `_meta.pending` left by a flush that crashed between
//!    writing `_txn` and renaming the new `_meta` into place is finished here.
//! 2. Everything past the committed lengths is an uncommitted tail and is cut.
//!    Partition and table directories that no committed state references become
//!    garbage for housekeeping (reclaimed paced, after the open); stray files are
//!    removed, except in checkpoint mode, where recovery deletes nothing under
//!    the root (a copy may be running across the restart). A file *shorter*
//!    than its committed length, or one that fails its checksum, is corruption:
//!    the open stops and names the file.
//! 3. WAL records after the commit `_tables` names (the newest wholly in the
//!    files) are applied again with the same code as live commits: rows go to
//!    the write buffer, other ops to the files after the buffered rows. A table
//!    whose `_txn` is newer than a record (a flush that stopped half-way) skips
//!    it. The buffer is moved to the files whenever it outgrows its limit.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::apply::write_all_buffered;
use crate::catalog::Catalog;
use crate::error::{IoContext, Result, StorageError};
use crate::fsutil;
use crate::ops::{Staging, files, memory};
use crate::options::StorageOptions;
use crate::registry::{Registry, RegistryEntry};
use crate::root::{REGISTRY_FILE, Root};
use crate::table::column;
use crate::table::files::MappedFiles;
use crate::table::meta::TableMeta;
use crate::table::symbol::SymbolDict;
use crate::table::txn::TxnState;
use crate::table::{META_FILE, META_PENDING_FILE, TXN_FILE, TableState};
use crate::wal;

#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) catalog: Catalog,
    /// Durable (txn, meta_seq) per table as found on disk.
    pub(crate) durable_tables: BTreeMap<u64, (u64, u64)>,
    /// Files written by replay, to fsync.
    pub(crate) dirty: HashSet<PathBuf>,
    /// Garbage produced by replay: (seq, path).
    pub(crate) garbage: Vec<(u64, PathBuf)>,
    /// The newest commit wholly in the files on disk (what `_tables` says).
    pub(crate) durable_seq: u64,
    pub(crate) segments: Vec<(u64, PathBuf)>,
    pub(crate) replayed: usize,
    pub(crate) cut_bytes: u64,
    pub(crate) removed_paths: usize,
}

/// What recovery does with paths that no committed state references.
#[derive(Debug)]
pub(crate) struct Leftovers<'a> {
    /// Paths the checkpoint in progress refers to (empty without one).
    pub(crate) protected: &'a HashSet<PathBuf>,
    /// A checkpoint is in progress: delete nothing under the root, since a
    /// copy may be running across this restart.
    pub(crate) in_checkpoint: bool,
}

/// Deals with `path`, which no committed state references. Directories (whole
/// partition versions and tables, possibly many files) and whatever the
/// checkpoint's cut needs become garbage, reclaimed by housekeeping, paced,
/// once nothing needs them: the open does not wait for them. A stray file is
/// removed at once, except in checkpoint mode, where it is left as it is (the
/// writers cut any file to its committed length before they write to it).
fn leave_unreferenced(path: &Path, left: &Leftovers<'_>, report: &mut Recovered) -> Result<()> {
    if left.protected.contains(path) || path.is_dir() {
        report.garbage.push((0, path.to_path_buf()));
        return Ok(());
    }
    if left.in_checkpoint {
        return Ok(());
    }
    tracing::debug!(
        "removing {} (not referenced by the committed state)",
        path.display()
    );
    fsutil::remove_path(path)?;
    report.removed_paths += 1;
    Ok(())
}

pub(crate) fn recover(
    root: &Root,
    mapped: &MappedFiles,
    options: &StorageOptions,
    left: &Leftovers<'_>,
) -> Result<Recovered> {
    let reg_path = root.registry_path();
    let registry = match fsutil::file_len(&reg_path)? {
        Some(_) => Registry::decode(&fsutil::read_file(&reg_path)?, &reg_path)?,
        None => {
            let has_tables = fs::read_dir(&root.db)
                .at(&root.db)?
                .flatten()
                .any(|e| e.path().is_dir());
            if has_tables {
                return Err(StorageError::corrupted(
                    &reg_path,
                    "the table registry is missing but table directories exist",
                ));
            }
            let fresh = Registry {
                seq: 0,
                next_table_id: 1,
                tables: Vec::new(),
                views: Vec::new(),
            };
            fsutil::write_atomic(&reg_path, &fresh.encode())?;
            fresh
        }
    };
    let mut report = Recovered {
        catalog: Catalog::default(),
        durable_tables: BTreeMap::new(),
        dirty: HashSet::new(),
        garbage: Vec::new(),
        durable_seq: registry.seq,
        segments: Vec::new(),
        replayed: 0,
        cut_bytes: 0,
        removed_paths: 0,
    };
    let mut catalog = Catalog::default();
    catalog.seq = registry.seq;
    catalog.registry_seq = registry.seq;
    catalog.next_table_id = registry.next_table_id;
    let mut known_dirs = HashSet::new();
    for entry in &registry.tables {
        let t = load_table(&root.db, entry, left, &mut report)?;
        report.durable_tables.insert(t.id, (t.txn.txn, t.meta.seq));
        catalog.seq = catalog.seq.max(t.txn.txn);
        known_dirs.insert(entry.dir.clone());
        catalog.insert(Arc::new(t));
    }
    for v in &registry.views {
        catalog.put_view(v.clone(), registry.seq);
    }
    for e in fs::read_dir(&root.db).at(&root.db)? {
        let e = e.at(&root.db)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == REGISTRY_FILE || known_dirs.contains(&name) {
            continue;
        }
        leave_unreferenced(&e.path(), left, &mut report)?;
    }
    // A flush writes every table's `_txn` before `_tables`, and `_tables` records
    // the commit the flush was at: every commit up to `registry.seq` is on disk.
    let durable_seq = registry.seq;
    // One staging state for the whole replay: nothing else sees it, so no
    // table's state is copied per commit (a live commit copies what it changes,
    // since readers may hold the state before it).
    let mut st = Staging::new(
        catalog,
        durable_seq,
        root.db.clone(),
        mapped,
        options.split_min_rows,
    );
    let mut buffered_bytes = 0u64;
    let started = std::time::Instant::now();
    let mut last_log = started;
    let mut seen_any = false;
    let segments = wal::replay_segments(&root.wal, durable_seq, |path, seq, payload| {
        if !seen_any && seq > durable_seq + 1 {
            return Err(StorageError::corrupted(
                &root.wal,
                format!(
                    "the WAL starts at commit {seq} but the tables are durable only up to {durable_seq}: segments are missing"
                ),
            ));
        }
        seen_any = true;
        if seq <= durable_seq {
            return Ok(());
        }
        replay_record(&mut st, path, seq, payload, &mut buffered_bytes, options).map_err(|e| {
            StorageError::corrupted(path, format!("replaying commit {seq} failed: {e}"))
        })?;
        report.replayed += 1;
        report.dirty.extend(st.dirty.drain(..));
        report
            .garbage
            .extend(st.garbage.drain(..).map(|p| (seq, p)));
        if last_log.elapsed() > std::time::Duration::from_secs(2) {
            tracing::info!(
                replayed = report.replayed,
                seq,
                buffered_rows = st.catalog.buffered_rows(),
                "recovery: replaying the WAL"
            );
            last_log = std::time::Instant::now();
        }
        Ok(())
    })?;
    report.segments = segments;
    report.catalog = st.catalog;
    Ok(report)
}

/// Applies WAL record `seq` to the replay's staging state. `buffered_bytes`
/// tracks the write buffer's size without summing every table per record.
fn replay_record(
    st: &mut Staging<'_>,
    path: &Path,
    seq: u64,
    payload: &[u8],
    buffered_bytes: &mut u64,
    options: &StorageOptions,
) -> Result<()> {
    let ops = wal::record::decode_ops(payload, path)?;
    // A flush that stopped half-way may have written some tables' `_txn` past
    // the registry's commit: those tables skip what they already have. The
    // decision uses each table's state from before this record, since the
    // record's own ops move it forward.
    let mut before: Vec<(u64, Option<u64>, u64)> = Vec::with_capacity(ops.len());
    for id in ops.iter().filter_map(|op| op.table_id()) {
        if before.iter().all(|(seen, _, _)| *seen != id) {
            let t = st.catalog.tables.get(&id);
            before.push((id, t.map(|t| t.txn.txn), t.map_or(0, |t| t.buffer.bytes())));
        }
    }
    st.seq = seq;
    let rows_only = ops.iter().all(|op| op.adds_rows_only());
    if !rows_only {
        write_all_buffered(st)?;
        *buffered_bytes = 0;
        for b in &mut before {
            b.2 = 0;
        }
    }
    for op in ops {
        let wanted = match op.table_id() {
            None => true,
            Some(id) => match before.iter().find(|(seen, _, _)| *seen == id) {
                Some((_, Some(txn), _)) => seq > *txn,
                // Created earlier in this same record.
                _ if st.catalog.tables.contains_key(&id) => true,
                _ => {
                    return Err(StorageError::corrupted(
                        path,
                        format!("commit {seq} refers to table id {id}, which does not exist"),
                    ));
                }
            },
        };
        if !wanted {
            continue;
        }
        if rows_only {
            memory::stage(op, st)?;
        } else {
            files::apply(&op, st)?;
        }
    }
    for (id, _, was) in &before {
        let now = st.catalog.tables.get(id).map_or(0, |t| t.buffer.bytes());
        *buffered_bytes = (*buffered_bytes + now).saturating_sub(*was);
    }
    // The buffer stays within its limit during replay too.
    if *buffered_bytes > options.write_buffer_bytes {
        write_all_buffered(st)?;
        *buffered_bytes = 0;
    }
    st.catalog.seq = seq;
    // What a live commit keeps to undo a failure; a failed replay stops the open.
    st.created.clear();
    st.symbol_marks.clear();
    Ok(())
}

fn load_table(
    db: &Path,
    entry: &RegistryEntry,
    left: &Leftovers<'_>,
    report: &mut Recovered,
) -> Result<TableState> {
    let dir = db.join(&entry.dir);
    if !dir.is_dir() {
        return Err(StorageError::corrupted(
            &dir,
            format!("directory of table \"{}\" is missing", entry.name),
        ));
    }
    let txn_path = dir.join(TXN_FILE);
    let txn = TxnState::decode(&fsutil::read_file(&txn_path)?, &txn_path)?;
    let meta_path = dir.join(META_FILE);
    let pending_path = dir.join(META_PENDING_FILE);
    if fsutil::file_len(&pending_path)?.is_some() {
        let pending = TableMeta::decode(&fsutil::read_file(&pending_path)?, &pending_path);
        match pending {
            Ok(m) if m.seq == txn.meta_seq => {
                fs::rename(&pending_path, &meta_path).at(&meta_path)?;
                fsutil::sync_dir(&dir)?;
            }
            // A schema the flush never committed; in checkpoint mode it stays
            // (nothing is deleted), and the next flush writes over it.
            Ok(_) | Err(_) if !left.in_checkpoint => fsutil::remove_path(&pending_path)?,
            Ok(_) | Err(_) => {}
        }
    }
    let meta = TableMeta::decode(&fsutil::read_file(&meta_path)?, &meta_path)?;
    if meta.seq != txn.meta_seq {
        return Err(StorageError::corrupted(
            &meta_path,
            format!(
                "schema is at commit {} but _txn expects commit {}",
                meta.seq, txn.meta_seq
            ),
        ));
    }
    let mut keep: HashSet<String> = [META_FILE, TXN_FILE]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut symbols = BTreeMap::new();
    for c in meta
        .columns
        .iter()
        .filter(|c| c.column_type == crate::types::ColumnType::Symbol)
    {
        let p = TableState::symbol_file(&dir, &c.file_stem);
        let (dict, len) = SymbolDict::load(p.clone(), txn.symbol_count(c.id))?;
        report.cut_bytes += fsutil::truncate_to(&p, len)?;
        keep.insert(format!("{}.sym", c.file_stem));
        symbols.insert(c.id, Arc::new(dict));
    }
    let state = TableState::from_files(
        entry.id,
        entry.name.clone(),
        entry.dir.clone(),
        dir.clone(),
        meta,
        txn,
        symbols,
    );
    for p in &state.txn.partitions {
        let pdir = state.partition_dir(p);
        if !pdir.is_dir() {
            return Err(StorageError::corrupted(
                &pdir,
                format!("partition directory of table \"{}\" is missing", state.name),
            ));
        }
        keep.insert(p.dir_name.clone());
        let mut files = HashSet::new();
        for c in &state.meta.columns {
            let ext = p.extent(c.id).ok_or_else(|| {
                StorageError::corrupted(
                    &pdir,
                    format!("_txn has no extent for column \"{}\"", c.name),
                )
            })?;
            let (dlen, alen) = column::committed_lengths(c, ext, p.rows - ext.top);
            let mut check = |path: PathBuf, need: u64| -> Result<()> {
                match fsutil::file_len(&path)? {
                    None if need == 0 => {}
                    None => {
                        return Err(StorageError::corrupted(
                            &path,
                            format!("file is missing (committed length {need})"),
                        ));
                    }
                    Some(len) if len < need => {
                        return Err(StorageError::corrupted(
                            &path,
                            format!("file is truncated: {len} bytes, committed length {need}"),
                        ));
                    }
                    Some(_) => report.cut_bytes += fsutil::truncate_to(&path, need)?,
                }
                files.insert(
                    path.file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
                Ok(())
            };
            check(column::data_path(&pdir, c), dlen)?;
            if let Some(a) = column::aux_path(&pdir, c) {
                check(a, alen)?;
            }
            if let Some(i) = column::index_path(&pdir, c) {
                check(i, column::index_len(c, ext))?;
            }
        }
        for e in fs::read_dir(&pdir).at(&pdir)? {
            let e = e.at(&pdir)?;
            if !files.contains(&*e.file_name().to_string_lossy()) {
                leave_unreferenced(&e.path(), left, report)?;
            }
        }
    }
    for e in fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        if !keep.contains(&*e.file_name().to_string_lossy()) {
            leave_unreferenced(&e.path(), left, report)?;
        }
    }
    Ok(state)
}
