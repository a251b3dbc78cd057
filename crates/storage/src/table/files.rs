//! The column files this process reads: how much of each was checked against
//! its CRC, and a read-only mapping of each, kept for the next query.
//!
//! Mapping a file costs an `open`, an `mmap`, page faults on the first touch of
//! every page and a `munmap` when the last reader lets go: for a one-row lookup
//! that was most of the kernel's share of the query. Column files are
//! append-only (invariant 1 of docs/architecture.md), so a mapping stays valid
//! for every later snapshot that needs no more than its length; a snapshot that
//! needs more maps the file again. The number of kept mappings is bounded
//! (`storage.mapped_files`): each is one entry in the process's memory map.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::Mutex;

use crate::error::{IoContext, Result, StorageError};
use crate::table::newest_keys::{MAX_SUMMARY_SLOTS, NewestPerKey};

/// A read-only, zero-copy view of the committed bytes of a file.
#[derive(Clone, Default)]
pub struct Mapped {
    map: Option<Arc<Mmap>>,
    len: usize,
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapped({} bytes)", self.len)
    }
}

impl Mapped {
    pub fn as_slice(&self) -> &[u8] {
        match &self.map {
            Some(m) => &m[..self.len],
            None => &[],
        }
    }
    /// The mapping itself, for handing to Arrow as a zero-copy buffer owner.
    pub fn mmap(&self) -> Option<&Arc<Mmap>> {
        self.map.as_ref()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What is known of one file.
#[derive(Debug, Clone)]
struct FileEntry {
    /// The file's first `checked` bytes have the CRC-32C `crc`.
    checked: usize,
    crc: u32,
    /// A mapping of the file (of its length when it was mapped), if kept.
    map: Option<Arc<Mmap>>,
    /// For a SYMBOL key file: the newest row of each key, if worked out.
    newest_keys: Option<Arc<NewestPerKey>>,
}

#[derive(Debug, Default)]
struct Entries {
    /// Ordered by path, so the files under one directory are one contiguous range.
    by_path: BTreeMap<PathBuf, FileEntry>,
    /// How many entries hold a mapping.
    mappings: usize,
    /// Key slots held by all `newest_keys` summaries.
    summary_slots: usize,
}

/// The checked prefixes and kept mappings of the column files, per process:
/// each file's bytes are checksummed once (appends only extend the check) and
/// mapped once while it stays among the kept mappings.
#[derive(Debug)]
pub(crate) struct MappedFiles {
    entries: Mutex<Entries>,
    /// The most mappings kept between queries (0: none are kept).
    max_mappings: usize,
}

impl Default for MappedFiles {
    fn default() -> Self {
        MappedFiles::new(crate::StorageOptions::default().mapped_files)
    }
}

impl MappedFiles {
    pub(crate) fn new(max_mappings: usize) -> Self {
        MappedFiles {
            entries: Mutex::default(),
            max_mappings,
        }
    }

    /// Forgets files under `prefix` (called before their removal, so a later
    /// file at the same path is checked and mapped afresh).
    pub(crate) fn forget_under(&self, prefix: &Path) {
        // A range, not a scan: housekeeping forgets a directory per retired part, and
        // scanning every known file each time made commits with late rows slow.
        let mut entries = self.entries.lock();
        let under: Vec<PathBuf> = entries
            .by_path
            .range(prefix.to_path_buf()..)
            .map(|(p, _)| p)
            .take_while(|p| p.starts_with(prefix))
            .cloned()
            .collect();
        for p in under {
            if let Some(e) = entries.by_path.remove(&p) {
                entries.mappings -= usize::from(e.map.is_some());
                entries.summary_slots -= e.newest_keys.map_or(0, |s| s.slots());
            }
        }
    }

    /// The first `len` bytes of `path`, checked against `crc`: from the kept
    /// mapping when it covers them, else from a new mapping (then kept).
    pub(crate) fn map(&self, path: &Path, len: u64, crc: u32) -> Result<Mapped> {
        if len == 0 {
            return Ok(Mapped::default());
        }
        let len = usize::try_from(len).map_err(|_| {
            StorageError::corrupted(
                path,
                format!("committed length {len} exceeds the address space"),
            )
        })?;
        let known = self.entries.lock().by_path.get(path).cloned();
        let kept = known
            .as_ref()
            .and_then(|e| e.map.clone())
            .filter(|m| m.len() >= len);
        let is_new = kept.is_none();
        let map = match kept {
            Some(m) => m,
            None => Arc::new(map_file(path, len)?),
        };
        let actual = match &known {
            Some(e) if e.checked == len => e.crc,
            Some(e) if e.checked < len => crc32c::crc32c_append(e.crc, &map[e.checked..len]),
            _ => crc32c::crc32c(&map[..len]),
        };
        if actual != crc {
            return Err(StorageError::corrupted(
                path,
                format!(
                    "checksum mismatch over the first {len} bytes: stored {crc:08x}, computed {actual:08x}"
                ),
            ));
        }
        // A kept mapping whose bytes were checked this far leaves nothing to
        // record (the common case of a repeated query: one lock, not two).
        if is_new || known.is_none_or(|e| e.checked < len) {
            self.remember(path, len, crc, is_new.then(|| map.clone()));
        }
        Ok(Mapped {
            map: Some(map),
            len,
        })
    }

    /// Records that `path`'s first `len` bytes have `crc`, and keeps `new_map`
    /// if it is longer than the kept one.
    fn remember(&self, path: &Path, len: usize, crc: u32, new_map: Option<Arc<Mmap>>) {
        let mut entries = self.entries.lock();
        let new_map = new_map.filter(|_| self.max_mappings > 0);
        let adds_mapping =
            new_map.is_some() && entries.by_path.get(path).is_none_or(|e| e.map.is_none());
        if adds_mapping && entries.mappings >= self.max_mappings {
            // At the bound every kept mapping is let go (mappings in use stay
            // until their readers finish): simple, and a working set within
            // the bound is mapped once.
            tracing::debug!(
                kept = entries.mappings,
                "releasing the kept column file mappings (storage.mapped_files reached)"
            );
            for e in entries.by_path.values_mut() {
                e.map = None;
            }
            entries.mappings = 0;
        }
        let entry = entries
            .by_path
            .entry(path.to_path_buf())
            .or_insert(FileEntry {
                checked: len,
                crc,
                map: None,
                newest_keys: None,
            });
        if len >= entry.checked {
            entry.checked = len;
            entry.crc = crc;
        }
        let kept_len = entry.map.as_ref().map_or(0, |m| m.len());
        let counted = entry.map.is_some();
        if let Some(m) = new_map.filter(|m| m.len() > kept_len) {
            entry.map = Some(m);
            if !counted {
                entries.mappings += 1;
            }
        }
    }
}

impl MappedFiles {
    /// The newest row of each key among `stored`, the committed stored keys of
    /// the SYMBOL key file `path` (as [`MappedFiles::map`] gave them): the kept
    /// summary, extended by the rows appended since it was made. `None` when
    /// the kept summary covers more rows than `stored` (a snapshot older than
    /// the summary) or a key is too large to summarize.
    pub(crate) fn newest_per_key(&self, path: &Path, stored: &[u8]) -> Option<Arc<NewestPerKey>> {
        let rows = stored.len() / 4;
        let kept = self
            .entries
            .lock()
            .by_path
            .get(path)
            .and_then(|e| e.newest_keys.clone())
            .unwrap_or_default();
        if kept.rows() == rows {
            return Some(kept);
        }
        if kept.rows() > rows {
            return None;
        }
        // Outside the lock: the first summary of a part reads all its keys.
        let fresh = Arc::new(kept.extended(&stored[kept.rows() * 4..rows * 4])?);
        let mut entries = self.entries.lock();
        let Entries {
            by_path,
            summary_slots,
            ..
        } = &mut *entries;
        let Some(entry) = by_path.get_mut(path) else {
            return Some(fresh);
        };
        if entry.newest_keys.as_ref().is_some_and(|k| k.rows() >= rows) {
            return Some(fresh);
        }
        let previous = entry.newest_keys.as_ref().map_or(0, |k| k.slots());
        if *summary_slots - previous + fresh.slots() > MAX_SUMMARY_SLOTS {
            // At the bound every summary is let go, as the mappings are.
            tracing::debug!(
                slots = *summary_slots,
                "releasing the kept newest-row-per-key summaries"
            );
            for e in by_path.values_mut() {
                e.newest_keys = None;
            }
            *summary_slots = 0;
        } else {
            *summary_slots -= previous;
        }
        if let Some(entry) = by_path.get_mut(path)
            && fresh.slots() <= MAX_SUMMARY_SLOTS
        {
            *summary_slots += fresh.slots();
            entry.newest_keys = Some(fresh.clone());
        }
        Some(fresh)
    }
}

/// Maps `path`, which must hold at least `len` bytes.
fn map_file(path: &Path, len: usize) -> Result<Mmap> {
    let file = File::open(path).at(path)?;
    let actual = file.metadata().at(path)?.len();
    if actual < len as u64 {
        return Err(StorageError::corrupted(
            path,
            format!("file is truncated: {actual} bytes, the committed state needs {len}"),
        ));
    }
    // SAFETY: Tidemark never modifies a file below a committed length (invariant 1
    // of docs/architecture.md: appends write past it, a failed append is cut back
    // to it) and holds an exclusive lock on the root, so every prefix a snapshot
    // reads stays valid and unchanged for as long as the mapping lives; a file is
    // unlinked only after `forget_under`, and unlinking leaves a mapping intact.
    unsafe { Mmap::map(&file) }.at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    #[test]
    fn forgetting_a_directory_keeps_its_siblings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = MappedFiles::new(16);
        for d in ["2026-11-21", "2026-11-21.5", "2026-11-22"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        for p in [
            "2026-11-21/a.d",
            "2026-11-21/b.d",
            "2026-11-21.5/a.d",
            "2026-11-22/a.d",
        ] {
            let p = write(dir.path(), p, b"x");
            files.map(&p, 1, crc32c::crc32c(b"x")).expect("crc matches");
        }
        files.forget_under(&dir.path().join("2026-11-21"));
        let entries = files.entries.lock();
        let left: Vec<PathBuf> = entries.by_path.keys().cloned().collect();
        assert_eq!(
            left,
            [
                dir.path().join("2026-11-21.5/a.d"),
                dir.path().join("2026-11-22/a.d")
            ]
        );
        assert_eq!(entries.mappings, 2);
    }

    #[test]
    fn a_kept_mapping_serves_later_reads_and_a_longer_read_maps_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = MappedFiles::new(16);
        let p = write(dir.path(), "a.d", b"abc");
        let first = files.map(&p, 3, crc32c::crc32c(b"abc")).expect("map");
        let again = files.map(&p, 2, crc32c::crc32c(b"ab")).expect("prefix");
        let (Some(m1), Some(m2)) = (first.mmap(), again.mmap()) else {
            panic!("both mapped");
        };
        assert!(Arc::ptr_eq(m1, m2), "the kept mapping is reused");
        assert_eq!(again.as_slice(), b"ab");

        // An append: the kept mapping is too short, the file is mapped again.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| f.write_all(b"def"))
            .expect("append");
        let longer = files.map(&p, 6, crc32c::crc32c(b"abcdef")).expect("map");
        assert_eq!(longer.as_slice(), b"abcdef");
        assert!(!Arc::ptr_eq(m1, longer.mmap().expect("mapped")));
        assert_eq!(files.entries.lock().mappings, 1, "one file, one mapping");

        // A damaged committed prefix is still refused through a kept mapping.
        let e = files.map(&p, 6, 0).expect_err("wrong crc");
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
    }

    #[test]
    fn kept_mappings_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = MappedFiles::new(3);
        let mut read = Vec::new();
        for i in 0..10u8 {
            let p = write(dir.path(), &format!("{i}.d"), &[i; 4]);
            read.push(files.map(&p, 4, crc32c::crc32c(&[i; 4])).expect("map"));
            let entries = files.entries.lock();
            assert!(entries.mappings <= 3, "{} mappings kept", entries.mappings);
            let counted = entries.by_path.values().filter(|e| e.map.is_some()).count();
            assert_eq!(counted, entries.mappings);
        }
        // Mappings let go by the cache stay valid for their readers.
        for (i, m) in read.iter().enumerate() {
            assert_eq!(m.as_slice(), &[i as u8; 4]);
        }
        // With the bound at 0 nothing is kept, and reads still work.
        let none = MappedFiles::new(0);
        let p = dir.path().join("0.d");
        assert_eq!(
            none.map(&p, 4, crc32c::crc32c(&[0; 4])).expect("map").len(),
            4
        );
        assert_eq!(none.entries.lock().mappings, 0);
    }

    #[test]
    fn newest_rows_per_key_are_kept_and_extended_but_never_served_to_an_older_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = MappedFiles::new(4);
        let keys = |k: &[i32]| -> Vec<u8> { k.iter().flat_map(|k| k.to_le_bytes()).collect() };
        let all = keys(&[0, 1, 0, -1, 2, 1]);
        let p = write(dir.path(), "sym.d", &all);
        files.map(&p, 16, crc32c::crc32c(&all[..16])).expect("map");
        let first = files.newest_per_key(&p, &all[..16]).expect("summarized");
        assert_eq!(first.rows(), 4);
        // The same rows again: the kept summary itself.
        let again = files.newest_per_key(&p, &all[..16]).expect("kept");
        assert!(Arc::ptr_eq(&first, &again));
        // Two rows appended: extended, and kept in its place.
        let longer = files.newest_per_key(&p, &all).expect("extended");
        assert_eq!(longer.rows(), 6);
        assert_eq!(files.entries.lock().summary_slots, 3);
        // A reader that sees only the first four rows gets no answer now.
        assert!(files.newest_per_key(&p, &all[..16]).is_none());
        // Retiring the file lets its summary go.
        files.forget_under(dir.path());
        assert_eq!(files.entries.lock().summary_slots, 0);
    }

    #[test]
    fn a_file_shorter_than_its_committed_length_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "a.d", b"ab");
        let e = MappedFiles::new(4)
            .map(&p, 3, crc32c::crc32c(b"abc"))
            .expect_err("truncated");
        assert!(e.to_string().contains("file is truncated"), "{e}");
    }
}
