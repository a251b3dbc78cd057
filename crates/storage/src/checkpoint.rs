//! The checkpoint's cut: what `CHECKPOINT CREATE` records in `<root>/.checkpoint/cut`.
//!
//! The cut is one commit `seq`, taken from one state, so a multi-table commit is
//! wholly in it or wholly out. For every table it keeps the `_meta` and `_txn` bytes
//! of that state's column files, plus the `_tables` registry, whose own `seq` is the
//! newest commit wholly in those files (the *applied* commit). Commits after it
//! up to the cut's `seq` have rows in the write buffer: they are in the WAL, which
//! checkpoint mode keeps whole. With those, restore rewinds a copy of the root to
//! the files (the column files hold at least the committed bytes, since they are
//! append-only), cuts the copied WAL after `seq`, and recovery replays the rest;
//! recovery can also tell which files the cut still needs.
//!
//! File: a frame (magic `TMCHKCUT`, format version, length, crc32c) around
//! `seq u64 | created_micros u64 | registry bytes | n u32 | n x (id u64, dir str,
//! meta bytes, txn bytes)`. It is written to `cut.tmp`, fsynced and renamed, so a
//! `.checkpoint/` without `cut` is a CREATE that never finished.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::catalog::Catalog;
use crate::codec::{Decoder, Encoder, frame, unframe};
use crate::error::{Result, StorageError};
use crate::fsutil;
use crate::registry::Registry;
use crate::table::column;
use crate::table::meta::TableMeta;
use crate::table::txn::TxnState;
use crate::table::{META_FILE, TXN_FILE, TableState};

pub(crate) const CHECKPOINT_DIR: &str = ".checkpoint";
const CUT_FILE: &str = "cut";
/// Written by restore once the rewind is durable: a `.checkpoint/` holding it is
/// left over from a finished restore, not a checkpoint in progress.
pub(crate) const RESTORED_MARKER: &str = "restored";
const CUT_MAGIC: &[u8; 8] = b"TMCHKCUT";

/// One table as of the cut.
#[derive(Debug, Clone)]
pub(crate) struct CutTable {
    pub(crate) id: u64,
    pub(crate) dir: String,
    pub(crate) meta: Vec<u8>,
    pub(crate) txn: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cut {
    pub(crate) seq: u64,
    pub(crate) created: SystemTime,
    pub(crate) registry: Vec<u8>,
    pub(crate) tables: Vec<CutTable>,
}

pub(crate) fn checkpoint_dir(root: &Path) -> PathBuf {
    root.join(CHECKPOINT_DIR)
}

pub(crate) fn cut_path(root: &Path) -> PathBuf {
    checkpoint_dir(root).join(CUT_FILE)
}

impl Cut {
    /// The cut of `catalog`, whose table files the caller has made durable.
    pub(crate) fn capture(catalog: &Catalog, created: SystemTime) -> Cut {
        Cut {
            seq: catalog.seq,
            created,
            registry: catalog.registry().encode(),
            tables: catalog
                .tables
                .values()
                .map(|t| CutTable {
                    id: t.id,
                    dir: t.dir_name.clone(),
                    meta: t.meta.encode(),
                    txn: t.txn.encode(),
                })
                .collect(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u64(self.seq);
        let micros = self
            .created
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        e.u64(u64::try_from(micros).unwrap_or(u64::MAX));
        e.bytes(&self.registry);
        e.u32(self.tables.len() as u32);
        for t in &self.tables {
            e.u64(t.id);
            e.str(&t.dir);
            e.bytes(&t.meta);
            e.bytes(&t.txn);
        }
        frame(CUT_MAGIC, &e.into_inner())
    }

    /// Decodes and checks a cut file: its frame and checksum, and every table
    /// state and the registry inside it (each has its own checksum too).
    pub(crate) fn decode(data: &[u8], path: &Path) -> Result<Cut> {
        let body = unframe(CUT_MAGIC, data, path)?;
        let mut d = Decoder::new(body, path);
        let seq = d.u64()?;
        let created = UNIX_EPOCH + Duration::from_micros(d.u64()?);
        let registry = d.bytes()?.to_vec();
        let n = d.u32()?;
        let mut tables = Vec::new();
        for _ in 0..n {
            tables.push(CutTable {
                id: d.u64()?,
                dir: d.str()?.to_string(),
                meta: d.bytes()?.to_vec(),
                txn: d.bytes()?.to_vec(),
            });
        }
        d.finish()?;
        let cut = Cut {
            seq,
            created,
            registry,
            tables,
        };
        let reg = cut.registry(path)?;
        if reg.seq > cut.seq {
            return Err(StorageError::corrupted(
                path,
                format!(
                    "the cut is at commit {} but its files claim commit {}",
                    cut.seq, reg.seq
                ),
            ));
        }
        if reg.tables.len() != cut.tables.len() {
            return Err(StorageError::corrupted(
                path,
                format!(
                    "the registry lists {} tables but the cut holds {}",
                    reg.tables.len(),
                    cut.tables.len()
                ),
            ));
        }
        for t in &cut.tables {
            t.states(path)?;
            if !reg.tables.iter().any(|e| e.id == t.id && e.dir == t.dir) {
                return Err(StorageError::corrupted(
                    path,
                    format!("table directory {} is not in the registry", t.dir),
                ));
            }
        }
        Ok(cut)
    }

    /// The newest commit wholly in the cut's table files; restore replays the
    /// WAL from after it up to `seq`. (0 when the registry cannot be read: the
    /// cut was checked when it was read, so only a cut made here can get here.)
    pub(crate) fn applied_seq(&self) -> u64 {
        Registry::decode(&self.registry, Path::new(CUT_FILE))
            .map(|r| r.seq)
            .unwrap_or(0)
    }

    pub(crate) fn registry(&self, path: &Path) -> Result<Registry> {
        Registry::decode(&self.registry, path)
    }

    /// Writes the cut durably under `root/.checkpoint/`.
    pub(crate) fn write(&self, root: &Path) -> Result<()> {
        let dir = checkpoint_dir(root);
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        fsutil::sync_parent(&dir)?;
        fsutil::write_atomic(&cut_path(root), &self.encode())
    }

    /// The cut of the checkpoint in progress at `root`, if any. A `.checkpoint/`
    /// without a cut (a CREATE that crashed) or left by a finished restore is
    /// removed. A damaged cut is an error: nobody can tell what it protects.
    pub(crate) fn in_progress(root: &Path) -> Result<Option<Cut>> {
        let dir = checkpoint_dir(root);
        if !dir.exists() {
            return Ok(None);
        }
        if dir.join(RESTORED_MARKER).exists() || fsutil::file_len(&cut_path(root))?.is_none() {
            tracing::info!(
                "removing {} (an unfinished CHECKPOINT CREATE or a finished restore)",
                dir.display()
            );
            fsutil::remove_path(&dir)?;
            fsutil::sync_dir(root)?;
            return Ok(None);
        }
        Cut::load(root)
    }

    /// The cut file at `root`, checked, whatever else `.checkpoint/` holds (restore
    /// reads it even after it marked the rewind done, to finish an interrupted run).
    pub(crate) fn load(root: &Path) -> Result<Option<Cut>> {
        let path = cut_path(root);
        if fsutil::file_len(&path)?.is_none() {
            return Ok(None);
        }
        Cut::decode(&fsutil::read_file(&path)?, &path).map(Some)
    }

    /// Every path under `db` that the cut refers to: table and partition
    /// directories, column, index and symbol files, `_meta` and `_txn`.
    pub(crate) fn referenced_paths(&self, db: &Path, path: &Path) -> Result<HashSet<PathBuf>> {
        let mut out = HashSet::new();
        for t in &self.tables {
            let dir = db.join(&t.dir);
            let (meta, txn) = t.states(path)?;
            out.insert(dir.join(META_FILE));
            out.insert(dir.join(TXN_FILE));
            for c in &meta.columns {
                out.insert(TableState::symbol_file(&dir, &c.file_stem));
            }
            for p in &txn.partitions {
                let pdir = dir.join(&p.dir_name);
                for c in &meta.columns {
                    out.insert(column::data_path(&pdir, c));
                    out.extend(column::aux_path(&pdir, c));
                    out.extend(column::index_path(&pdir, c));
                }
                out.insert(pdir);
            }
            out.insert(dir);
        }
        Ok(out)
    }
}

impl Cut {
    /// Every file a copy of the root needs to be restored to this cut, relative
    /// to the root: the cut itself, the files of its tables it refers to (those
    /// that exist: a symbol file only where the column has one), and the WAL
    /// segments from the one holding the first commit to replay on. What else
    /// lies under the root is left over or newer than the cut: restore and
    /// recovery would remove it.
    pub(crate) fn needed_files(&self, root: &Path, db: &Path, wal: &Path) -> Result<Vec<PathBuf>> {
        let cut_file = cut_path(root);
        let mut files: Vec<PathBuf> = self
            .referenced_paths(db, &cut_file)?
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
        files.push(cut_file);
        let mut segments = crate::wal::list_segments(wal)?;
        segments.sort();
        let first_replayed = self.applied_seq() + 1;
        let start = segments
            .iter()
            .rposition(|(first, _)| *first <= first_replayed)
            .unwrap_or(0);
        files.extend(segments.into_iter().skip(start).map(|(_, p)| p));
        let mut relative = Vec::with_capacity(files.len());
        for f in files {
            match f.strip_prefix(root) {
                Ok(r) => relative.push(r.to_path_buf()),
                Err(_) => {
                    return Err(StorageError::InvalidState(format!(
                        "{} is not under the root {}",
                        f.display(),
                        root.display()
                    )));
                }
            }
        }
        relative.sort();
        Ok(relative)
    }
}

impl CutTable {
    pub(crate) fn states(&self, path: &Path) -> Result<(TableMeta, TxnState)> {
        let meta = TableMeta::decode(&self.meta, path)?;
        let txn = TxnState::decode(&self.txn, path)?;
        if meta.seq != txn.meta_seq {
            return Err(StorageError::corrupted(
                path,
                format!(
                    "table directory {}: schema at commit {}, _txn expects {}",
                    self.dir, meta.seq, txn.meta_seq
                ),
            ));
        }
        Ok((meta, txn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cut {
        Cut {
            seq: 42,
            created: UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456),
            registry: Registry {
                seq: 42,
                next_table_id: 1,
                tables: Vec::new(),
                views: Vec::new(),
            }
            .encode(),
            tables: Vec::new(),
        }
    }

    #[test]
    fn cut_round_trips_and_damage_is_detected() {
        let cut = sample();
        let bytes = cut.encode();
        let back = Cut::decode(&bytes, Path::new("cut")).expect("decodes");
        assert_eq!(back.seq, 42);
        assert_eq!(back.created, cut.created);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(
                Cut::decode(&bad, Path::new("cut")).is_err(),
                "flipping a bit of byte {i} went unnoticed"
            );
        }
        assert!(Cut::decode(&bytes[..bytes.len() - 1], Path::new("cut")).is_err());
    }
}
