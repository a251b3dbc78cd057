//! Reader snapshots: a consistent view of every table as of one state.
//!
//! A snapshot pins its state's version; housekeeping reclaims nothing that a
//! pinned version can still see, so a snapshot stays valid (and its mapped files
//! unchanged) however long it lives, while writers append and rewrite. It also
//! holds the write buffer's runs of its state (shared, never copied), so a
//! table reads as its files plus its buffered rows, merged in timestamp order
//! ([`TableReader::scan`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::batch::{Column, Values, VarData};
use crate::buffer::Run;
use crate::catalog::Catalog;
use crate::dedup::{KeyColumn, kept_rows};
use crate::error::{Result, StorageError};
use crate::merge::merge_order;
use crate::ops::null_column;
use crate::table::TableState;
use crate::table::column::{self, ColumnChunk};
use crate::table::files::MappedFiles;
use crate::table::meta::{ColumnMeta, TableMeta};
use crate::table::newest_keys::PartNewestRows;
use crate::table::symbol_index::PartIndex;
use crate::table::txn::PartitionMeta;
use crate::types::{ColumnType, PartitionBy};
use crate::view::ViewDef;

/// State versions pinned by live snapshots (with counts).
#[derive(Debug, Default)]
pub(crate) struct Pins {
    pub(crate) pinned: Mutex<BTreeMap<u64, usize>>,
}

/// One pin of a state version; unpinned when dropped.
#[derive(Debug)]
pub(crate) struct Pin {
    pins: Arc<Pins>,
    version: u64,
}

impl Pin {
    /// Pins `version`; the caller holds the pins lock (`pinned`) while it reads
    /// the state it pins, so housekeeping cannot slip in between.
    pub(crate) fn new(
        pins: Arc<Pins>,
        pinned: &mut BTreeMap<u64, usize>,
        version: u64,
    ) -> Arc<Pin> {
        *pinned.entry(version).or_default() += 1;
        Arc::new(Pin { pins, version })
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut g = self.pins.pinned.lock();
        if let Some(n) = g.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                g.remove(&self.version);
            }
        }
    }
}

/// A consistent, read-only view of all tables as of one state (or, for an
/// open transaction, of one state plus the transaction's own writes).
#[derive(Debug, Clone)]
pub struct Snapshot {
    catalog: Arc<Catalog>,
    mapped: Arc<MappedFiles>,
    pin: Arc<Pin>,
}

impl Snapshot {
    pub(crate) fn new(catalog: Arc<Catalog>, mapped: Arc<MappedFiles>, pin: Arc<Pin>) -> Self {
        Snapshot {
            catalog,
            mapped,
            pin,
        }
    }

    fn reader(&self, t: &Arc<TableState>) -> TableReader {
        TableReader {
            runs: t
                .buffer
                .partitions()
                .flat_map(|(start, runs)| runs.iter().map(move |r| (start, r.clone())))
                .collect(),
            state: t.clone(),
            mapped: self.mapped.clone(),
            _pin: self.pin.clone(),
        }
    }

    /// The commit this snapshot shows.
    pub fn seq(&self) -> u64 {
        self.catalog.seq
    }

    /// The view called `name` (names resolve as table names do).
    pub fn view(&self, name: &str) -> Option<ViewDef> {
        self.catalog.view(name).map(|v| (**v).clone())
    }

    /// Every view, by name.
    pub fn views(&self) -> Vec<ViewDef> {
        self.catalog.views().map(|v| (**v).clone()).collect()
    }

    /// A number that changes whenever a view is created, replaced or dropped
    /// (kept plans that inlined views check it).
    pub fn views_version(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for v in self.catalog.views() {
            (v.id, v.seq).hash(&mut h);
        }
        h.finish()
    }

    /// Whether any view exists (statements look for view names only then).
    pub fn has_views(&self) -> bool {
        self.catalog.views().next().is_some()
    }

    /// Table names, in creation order.
    pub fn table_names(&self) -> Vec<String> {
        self.catalog
            .tables
            .values()
            .map(|t| t.name.clone())
            .collect()
    }

    pub fn table(&self, name: &str) -> Option<TableReader> {
        self.catalog.table(name).map(|t| self.reader(t))
    }

    pub fn tables(&self) -> Vec<TableReader> {
        self.catalog
            .tables
            .values()
            .map(|t| self.reader(t))
            .collect()
    }
}

/// A partition as a reader sees it: its rows in the files and in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Display name, e.g. `2026-11-21`.
    pub name: String,
    pub start: i64,
    pub end: i64,
    /// All rows, files and buffer.
    pub rows: u64,
    /// Rows committed but not yet in the files.
    pub buffered_rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Parts in the files (copy-on-write versions and kept prefixes).
    pub parts: usize,
    /// The newest part's version (0: the plain directory name).
    pub version: u64,
}

/// A part of a partition in the column files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// The partition's display name, e.g. `2026-11-21`.
    pub name: String,
    /// Directory name, e.g. `2026-11-21` or `2026-11-20.57`.
    pub dir_name: String,
    pub start: i64,
    pub end: i64,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub version: u64,
}

/// Where a piece of a scan reads its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSource {
    /// A part in the column files (index into [`TableReader::parts`]).
    Part(usize),
    /// A run of the write buffer (index into the reader's runs, see
    /// [`TableReader::run_count`]).
    Run(usize),
}

/// Consecutive rows of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub source: RowSource,
    pub rows: Range<usize>,
}

/// What [`TableReader::scan`] found: the pieces in timestamp order, and how
/// many file parts the timestamp range kept and pruned.
#[derive(Debug, Clone, Default)]
pub struct ScanPlan {
    pub pieces: Vec<Piece>,
    pub parts_scanned: usize,
    pub parts_pruned: usize,
}

impl ScanPlan {
    pub fn rows(&self) -> usize {
        self.pieces.iter().map(|p| p.rows.len()).sum()
    }
}

/// One table in a snapshot. Holds the snapshot's pin, so it stays valid after
/// the `Snapshot` it came from is dropped.
#[derive(Debug, Clone)]
pub struct TableReader {
    state: Arc<TableState>,
    /// The buffered runs with their partition starts, in partition order.
    runs: Vec<(i64, Arc<Run>)>,
    mapped: Arc<MappedFiles>,
    _pin: Arc<Pin>,
}

impl TableReader {
    pub fn name(&self) -> &str {
        &self.state.name
    }
    pub fn id(&self) -> u64 {
        self.state.id
    }
    pub fn meta(&self) -> &TableMeta {
        &self.state.meta
    }
    pub fn partition_by(&self) -> PartitionBy {
        self.state.meta.partition_by
    }
    /// Rows in the files and the buffer. With upsert keys, buffered rows that
    /// replace others are counted once (found by planning a scan; should that
    /// fail, the count includes them).
    pub fn row_count(&self) -> u64 {
        if !self.state.meta.dedup_keys.is_empty()
            && !self.runs.is_empty()
            && let Ok(plan) = self.scan(i64::MIN, i64::MAX)
        {
            return plan.rows() as u64;
        }
        self.state.row_count()
    }
    /// Rows committed but not yet in the column files.
    pub fn buffered_rows(&self) -> u64 {
        self.state.buffer.rows()
    }
    /// The newest commit whose changes to this table are all in its files.
    pub fn txn(&self) -> u64 {
        self.state.txn.txn
    }

    /// The newest commit that changed this table: [`TableReader::txn`], or a
    /// later one whose rows are still in the write buffer.
    pub fn newest_txn(&self) -> u64 {
        self.runs
            .iter()
            .map(|(_, r)| r.max_seq)
            .fold(self.txn(), u64::max)
    }

    /// The partitions that hold rows, in time order.
    pub fn partitions(&self) -> Vec<PartitionInfo> {
        let partitioning = self.state.meta.partitioning();
        self.state
            .partition_starts()
            .into_iter()
            .map(|start| {
                let parts: Vec<&PartitionMeta> = self
                    .state
                    .txn
                    .partitions
                    .iter()
                    .filter(|p| p.start == start)
                    .collect();
                let buffered_rows = self
                    .state
                    .buffer
                    .partition(start)
                    .iter()
                    .map(|r| r.rows as u64)
                    .sum::<u64>();
                let (min_ts, max_ts) = self
                    .state
                    .partition_bounds(start)
                    .unwrap_or((i64::MIN, i64::MIN));
                PartitionInfo {
                    name: partitioning.name(start),
                    start,
                    end: partitioning.end(start),
                    rows: parts.iter().map(|p| p.rows).sum::<u64>() + buffered_rows,
                    buffered_rows,
                    min_ts,
                    max_ts,
                    parts: parts.len(),
                    version: parts.iter().map(|p| p.version).max().unwrap_or(0),
                }
            })
            .collect()
    }

    /// The parts in the column files, in time order.
    pub fn parts(&self) -> Vec<PartInfo> {
        let partitioning = self.state.meta.partitioning();
        self.state
            .txn
            .partitions
            .iter()
            .map(|p| PartInfo {
                name: partitioning.name(p.start),
                dir_name: p.dir_name.clone(),
                start: p.start,
                end: partitioning.end(p.start),
                rows: p.rows,
                min_ts: p.min_ts,
                max_ts: p.max_ts,
                version: p.version,
            })
            .collect()
    }

    /// Bytes on disk of the table's committed parts and dictionaries.
    pub fn disk_size(&self) -> u64 {
        self.state
            .txn
            .partitions
            .iter()
            .map(|p| crate::fsutil::disk_usage(&self.state.partition_dir(p)))
            .sum::<u64>()
            + self
                .state
                .symbols
                .values()
                .map(|d| crate::fsutil::disk_usage(d.path()))
                .sum::<u64>()
    }

    /// Bytes on disk of part `part` (index into [`TableReader::parts`]).
    pub fn part_disk_size(&self, part: usize) -> u64 {
        self.state.txn.partitions.get(part).map_or(0, |p| {
            crate::fsutil::disk_usage(&self.state.partition_dir(p))
        })
    }

    fn part(&self, i: usize) -> Result<&PartitionMeta> {
        self.state.txn.partitions.get(i).ok_or_else(|| {
            StorageError::InvalidState(format!(
                "table \"{}\" has no part number {i}",
                self.state.name
            ))
        })
    }

    fn run(&self, i: usize) -> Result<&Run> {
        self.runs.get(i).map(|(_, r)| r.as_ref()).ok_or_else(|| {
            StorageError::InvalidState(format!(
                "table \"{}\" has no buffered run number {i}",
                self.state.name
            ))
        })
    }

    /// Buffered runs this reader sees.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    fn column_meta(&self, name: &str) -> Result<&ColumnMeta> {
        let i = self
            .state
            .meta
            .column_index(name)
            .ok_or_else(|| StorageError::ColumnNotFound {
                table: self.state.name.clone(),
                column: name.to_string(),
            })?;
        Ok(&self.state.meta.columns[i])
    }

    /// Zero-copy access to one column of part `part` (index into
    /// [`TableReader::parts`]). Checks the files' checksums on first use.
    pub fn column_chunk(&self, part: usize, column: &str) -> Result<ColumnChunk> {
        let p = self.part(part)?;
        self.state
            .column_chunk(p, self.column_meta(column)?, &self.mapped)
    }

    /// The symbol index of SYMBOL column `column` in part `part`, when the
    /// column is indexed and the part's index covers its rows (a transaction's
    /// own view of a new index has no files yet). Checks the file's checksum
    /// on first use.
    pub fn symbol_index(&self, part: usize, column: &str) -> Result<Option<PartIndex>> {
        let p = self.part(part)?;
        let c = self.column_meta(column)?;
        let dir = self.state.partition_dir(p);
        let Some(path) = column::index_path(&dir, c) else {
            return Ok(None);
        };
        let ext = p.extent(c.id).ok_or_else(|| {
            StorageError::corrupted(
                &dir,
                format!("_txn has no extent for column \"{}\"", c.name),
            )
        })?;
        let data = self
            .mapped
            .map(&path, column::index_len(c, ext), ext.aux_crc)?;
        PartIndex::open(data, ext.top, p.rows, &path)
    }

    /// The newest row of each key of SYMBOL column `column` in part `part`
    /// (kept in memory between queries, see `table/newest_keys.rs`); `None`
    /// when this snapshot's rows of the part cannot be summarized (a later
    /// snapshot's summary covers more rows, or the column has too many keys).
    pub fn newest_rows_per_key(&self, part: usize, column: &str) -> Result<Option<PartNewestRows>> {
        let p = self.part(part)?;
        let c = self.column_meta(column)?;
        if c.column_type != ColumnType::Symbol {
            return Err(StorageError::InvalidState(format!(
                "column \"{column}\" of table \"{}\" is not a SYMBOL column",
                self.state.name
            )));
        }
        let chunk = self.state.column_chunk(p, c, &self.mapped)?;
        let dir = self.state.partition_dir(p);
        let stored = (chunk.rows - chunk.top) * 4;
        let Some(keys) = chunk.data.as_slice().get(..stored) else {
            return Err(StorageError::corrupted(
                &dir,
                format!("the keys of column \"{column}\" are shorter than its rows"),
            ));
        };
        Ok(self
            .mapped
            .newest_per_key(&column::data_path(&dir, c), keys)
            .map(|summary| PartNewestRows {
                summary,
                top: chunk.top,
            }))
    }

    /// Rows `rows` of a column of one part, decoded. SYMBOL values come back as text.
    pub fn read_column(&self, part: usize, column: &str, rows: Range<usize>) -> Result<Column> {
        let chunk = self.column_chunk(part, column)?;
        if rows.end > chunk.rows || rows.start > rows.end {
            return Err(StorageError::InvalidState(format!(
                "rows {rows:?} are outside part {part} of table \"{}\" ({} rows)",
                self.state.name, chunk.rows
            )));
        }
        let dir = self.state.partition_dir(self.part(part)?);
        let raw = chunk.decode_raw(rows, &dir)?;
        self.symbols_as_text(column, raw)
    }

    /// Rows `rows` of a column of buffered run `run`, as stored: SYMBOL values
    /// as dictionary keys (an INT column, -1 or NULL for NULL), see
    /// [`TableReader::symbol_dictionary`]. A column added after the run was
    /// written is NULL.
    pub fn run_column_raw(&self, run: usize, column: &str, rows: Range<usize>) -> Result<Column> {
        let r = self.run(run)?;
        if rows.end > r.rows || rows.start > rows.end {
            return Err(StorageError::InvalidState(format!(
                "rows {rows:?} are outside buffered run {run} of table \"{}\" ({} rows)",
                self.state.name, r.rows
            )));
        }
        let c = self.column_meta(column)?;
        match r.column(c.id) {
            Some(values) => {
                let mut out = values.empty_like();
                out.extend_range(values, rows)?;
                Ok(out)
            }
            None => Ok(null_column(c, rows.len())),
        }
    }

    /// The rows of `piece` of column `column`, decoded (SYMBOL as text).
    pub fn read_piece(&self, piece: &Piece, column: &str) -> Result<Column> {
        match piece.source {
            RowSource::Part(p) => self.read_column(p, column, piece.rows.clone()),
            RowSource::Run(r) => {
                let raw = self.run_column_raw(r, column, piece.rows.clone())?;
                self.symbols_as_text(column, raw)
            }
        }
    }

    fn symbols_as_text(&self, column: &str, raw: Column) -> Result<Column> {
        let c = self.column_meta(column)?;
        if c.column_type != ColumnType::Symbol {
            return Ok(raw);
        }
        let (dict, count) = self.symbol_dictionary(&c.name)?;
        let Values::Int(keys) = &raw.values else {
            return Err(StorageError::InvalidState(
                "symbol column did not decode to keys".into(),
            ));
        };
        let mut out = VarData::default();
        for (i, k) in keys.iter().enumerate() {
            if raw.is_null(i) || *k < 0 {
                out.push(b"");
                continue;
            }
            let s = dict.get(*k as usize).ok_or_else(|| {
                StorageError::corrupted(
                    &self.state.dir,
                    format!(
                        "symbol key {k} of column \"{}\" is not below {count}",
                        c.name
                    ),
                )
            })?;
            out.push(s.as_bytes());
        }
        let nulls: Vec<bool> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| raw.is_null(i) || *k < 0)
            .collect();
        Ok(Column::with_nulls(Values::Symbol(out), nulls))
    }

    /// A symbol column's dictionary as this snapshot sees it: key `k` is entry `k`.
    pub fn symbol_dictionary(&self, column: &str) -> Result<(Vec<Arc<str>>, u32)> {
        let c = self.column_meta(column)?;
        let dict = self.state.symbols.get(&c.id).ok_or_else(|| {
            StorageError::InvalidData(format!("column \"{}\" is not a SYMBOL column", c.name))
        })?;
        let count = self.state.symbol_count(c.id);
        Ok((dict.values(count), count))
    }

    /// The rows of part `part` whose designated timestamp lies in `[from, to)`,
    /// found by binary search on the sorted timestamp column.
    pub fn timestamp_row_range(&self, part: usize, from: i64, to: i64) -> Result<Range<usize>> {
        let p = self.part(part)?;
        if self.state.meta.timestamp_index().is_none() {
            return Ok(0..p.rows as usize);
        }
        let a = self.state.rows_before(p, from, &self.mapped)? as usize;
        let b = (self.state.rows_before(p, to, &self.mapped)? as usize).max(a);
        Ok(a..b)
    }

    /// Every row whose designated timestamp lies in `[lo, hi)` (all rows of a
    /// table without one), as pieces of parts and buffered runs that, read in
    /// order, give the rows in timestamp order. Equal timestamps keep commit
    /// order. File rows older than everything buffered in their partition are
    /// whole pieces; where buffered rows interleave with them, the pieces are
    /// as long as the interleaving allows.
    pub fn scan(&self, lo: i64, hi: i64) -> Result<ScanPlan> {
        let mut plan = ScanPlan::default();
        let has_ts = self.state.meta.timestamp_index().is_some();
        let (lo, hi) = if has_ts {
            (lo, hi)
        } else {
            (i64::MIN, i64::MAX)
        };
        let starts: BTreeSet<i64> = self
            .state
            .txn
            .partitions
            .iter()
            .map(|p| p.start)
            .chain(self.runs.iter().map(|(s, _)| *s))
            .collect();
        for start in starts {
            // File parts of the partition, narrowed to [lo, hi).
            let mut parts: Vec<(usize, Range<usize>)> = Vec::new();
            for (i, p) in self.state.txn.partitions.iter().enumerate() {
                if p.start != start {
                    continue;
                }
                if lo >= hi || p.rows == 0 || (has_ts && (p.max_ts < lo || p.min_ts >= hi)) {
                    plan.parts_pruned += 1;
                    continue;
                }
                plan.parts_scanned += 1;
                let rows = if lo == i64::MIN && hi == i64::MAX {
                    0..p.rows as usize
                } else {
                    self.timestamp_row_range(i, lo, hi)?
                };
                if !rows.is_empty() {
                    parts.push((i, rows));
                }
            }
            // Buffered runs of the partition, narrowed the same way.
            let mut runs: Vec<(usize, Range<usize>)> = Vec::new();
            for (i, (s, r)) in self.runs.iter().enumerate() {
                if *s != start || r.rows == 0 {
                    continue;
                }
                let rows = match r.timestamps() {
                    Some(ts) if has_ts => {
                        let a = ts.partition_point(|&x| x < lo);
                        a..ts.partition_point(|&x| x < hi).max(a)
                    }
                    _ => 0..r.rows,
                };
                if !rows.is_empty() {
                    runs.push((i, rows));
                }
            }
            self.plan_partition(&parts, &runs, has_ts, &mut plan.pieces)?;
        }
        Ok(plan)
    }

    /// The pieces of one partition: file parts (ordered, not overlapping) and
    /// buffered runs (each sorted), merged by timestamp.
    fn plan_partition(
        &self,
        parts: &[(usize, Range<usize>)],
        runs: &[(usize, Range<usize>)],
        has_ts: bool,
        out: &mut Vec<Piece>,
    ) -> Result<()> {
        let piece = |source, rows| Piece { source, rows };
        if !has_ts || runs.is_empty() {
            out.extend(
                parts
                    .iter()
                    .map(|(i, r)| piece(RowSource::Part(*i), r.clone())),
            );
            out.extend(
                runs.iter()
                    .map(|(i, r)| piece(RowSource::Run(*i), r.clone())),
            );
            return Ok(());
        }
        let run_ts: Vec<&[i64]> = runs
            .iter()
            .map(|(i, rows)| {
                self.run(*i)?
                    .timestamps()
                    .map(|ts| &ts[rows.clone()])
                    .ok_or_else(|| {
                        StorageError::InvalidState("buffered run without timestamps".into())
                    })
            })
            .collect::<Result<_>>()?;
        // File rows up to the oldest buffered row come first, as they are (at equal
        // timestamps the files hold the older commits).
        let cut = run_ts
            .iter()
            .filter_map(|ts| ts.first())
            .min()
            .copied()
            .unwrap_or(i64::MAX);
        // With upsert keys, file rows at the oldest buffered timestamp may be
        // replaced by buffered ones, so they join the merge.
        let dedup = !self.state.meta.dedup_keys.is_empty();
        let mut tails: Vec<(usize, Range<usize>, Vec<i64>)> = Vec::new();
        for (i, rows) in parts {
            let p = self.part(*i)?;
            let before = match cut.checked_add(1) {
                _ if dedup => self.state.rows_before(p, cut, &self.mapped)? as usize,
                Some(bound) => self.state.rows_before(p, bound, &self.mapped)? as usize,
                None => p.rows as usize,
            };
            let split = before.clamp(rows.start, rows.end);
            if split > rows.start {
                out.push(piece(RowSource::Part(*i), rows.start..split));
            }
            if split < rows.end {
                let ts = self.part_timestamps(*i, split..rows.end)?;
                tails.push((*i, split..rows.end, ts));
            }
        }
        let mut sources: Vec<&[i64]> = tails.iter().map(|(_, _, ts)| ts.as_slice()).collect();
        sources.extend(run_ts.iter().copied());
        let mut order = merge_order(&sources);
        if dedup {
            order = self.without_replaced_rows(&tails, runs, &sources, order)?;
        }
        for (s, rows) in order {
            out.push(if s < tails.len() {
                let (part, range, _) = &tails[s];
                piece(
                    RowSource::Part(*part),
                    range.start + rows.start..range.start + rows.end,
                )
            } else {
                let (run, range) = &runs[s - tails.len()];
                piece(
                    RowSource::Run(*run),
                    range.start + rows.start..range.start + rows.end,
                )
            });
        }
        Ok(())
    }

    /// `order` (see [`merge_order`]) without the rows that newer rows with the
    /// same upsert keys replace (see `dedup`). Sources are the file tails, then
    /// the buffered runs, as in `plan_partition`.
    fn without_replaced_rows(
        &self,
        tails: &[(usize, Range<usize>, Vec<i64>)],
        runs: &[(usize, Range<usize>)],
        ts_sources: &[&[i64]],
        order: Vec<(usize, Range<usize>)>,
    ) -> Result<Vec<(usize, Range<usize>)>> {
        let meta = &self.state.meta;
        let keys: Vec<&ColumnMeta> = crate::dedup::key_indexes(meta)
            .into_iter()
            .map(|i| &meta.columns[i])
            .collect();
        // Each source's key values (SYMBOL as dictionary keys), then in merged order.
        let mut per_source: Vec<Vec<Column>> = Vec::with_capacity(ts_sources.len());
        for (part, rows, _) in tails {
            let p = self.part(*part)?;
            let dir = self.state.partition_dir(p);
            per_source.push(
                keys.iter()
                    .map(|c| {
                        self.state
                            .column_chunk(p, c, &self.mapped)?
                            .decode_raw(rows.clone(), &dir)
                    })
                    .collect::<Result<_>>()?,
            );
        }
        for (run, rows) in runs {
            per_source.push(
                keys.iter()
                    .map(|c| self.run_column_raw(*run, &c.name, rows.clone()))
                    .collect::<Result<_>>()?,
            );
        }
        let refs: Vec<Vec<&Column>> = per_source.iter().map(|s| s.iter().collect()).collect();
        let merged_keys = crate::merge::gather(&refs, &order)?;
        let key_columns: Vec<KeyColumn<'_>> = merged_keys
            .iter()
            .zip(&keys)
            .map(|(column, c)| KeyColumn {
                column,
                symbol_keys: c.column_type == ColumnType::Symbol,
            })
            .collect();
        let ts: Vec<i64> = order
            .iter()
            .flat_map(|(s, rows)| ts_sources[*s][rows.clone()].iter().copied())
            .collect();
        let Some(keep) = kept_rows(&ts, &key_columns) else {
            return Ok(order);
        };
        // Cut each stretch of `order` into the stretches of rows it keeps.
        let mut out = Vec::with_capacity(order.len());
        let mut kept = keep.iter().map(|&k| k as usize).peekable();
        let mut at = 0;
        for (s, rows) in order {
            let end = at + rows.len();
            let mut stretch: Option<Range<usize>> = None;
            while let Some(k) = kept.next_if(|&k| k < end) {
                let row = rows.start + (k - at);
                match &mut stretch {
                    Some(r) if r.end == row => r.end += 1,
                    _ => {
                        if let Some(r) = stretch.replace(row..row + 1) {
                            out.push((s, r));
                        }
                    }
                }
            }
            if let Some(r) = stretch {
                out.push((s, r));
            }
            at = end;
        }
        Ok(out)
    }

    /// The designated timestamps of rows `rows` of part `part`.
    fn part_timestamps(&self, part: usize, rows: Range<usize>) -> Result<Vec<i64>> {
        let ts = self
            .state
            .meta
            .timestamp_name()
            .ok_or_else(|| StorageError::InvalidState("no designated timestamp".into()))?
            .to_string();
        let values = self.read_column(part, &ts, rows)?.values;
        crate::ops::files::designated_values(&values).map(<[i64]>::to_vec)
    }

    /// Every row of the table, in timestamp order, one column per table column
    /// (SYMBOL as text). Meant for tests and small tables.
    pub fn read_all(&self) -> Result<Vec<Column>> {
        let plan = self.scan(i64::MIN, i64::MAX)?;
        self.state
            .meta
            .columns
            .iter()
            .map(|c| {
                let mut out = Column::new(Values::zeros(c.column_type, 0));
                for p in &plan.pieces {
                    out.extend(&self.read_piece(p, &c.name)?)?;
                }
                Ok(out)
            })
            .collect()
    }
}
