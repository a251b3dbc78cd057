//! Symbol dictionaries: `<stem>.sym` in the table directory, one per SYMBOL column.
//!
//! Header (16 bytes): magic `TMSYM001` | major u16 | minor u16 | crc32c of those 12 bytes.
//! Then entries, append-only: `len u32 | UTF-8 bytes | crc32c(len ++ bytes) u32`.
//! Key `k` is the `k`-th entry. `_txn` records how many entries are committed;
//! anything after them is an uncommitted tail that recovery cuts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::codec::{FORMAT_MAJOR, FORMAT_MINOR};
use crate::error::{Result, StorageError};
use crate::fsutil;

const SYM_MAGIC: &[u8; 8] = b"TMSYM001";
const HEADER_LEN: u64 = 16;

fn header() -> Vec<u8> {
    let mut h = Vec::with_capacity(16);
    h.extend_from_slice(SYM_MAGIC);
    h.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    h.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Symbol lookups hash every string a writer sends: a fast keyed hash
/// (foldhash's quality variant, seeded per map) instead of SipHash.
type SymbolHasher = foldhash::quality::RandomState;

#[derive(Debug, Default)]
struct Entries {
    values: Vec<Arc<str>>,
    index: HashMap<Arc<str>, i32, SymbolHasher>,
    /// Entries written to the file (a prefix of `values`); entries past it live
    /// in memory until the apply persists them.
    persisted: usize,
    /// The file's length after each persisted entry.
    ends: Vec<u64>,
}

impl Entries {
    fn file_len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(HEADER_LEN)
    }
}

/// An append-only dictionary shared by every snapshot of a table: a snapshot
/// only looks at the first `count` entries its state committed. Commits add
/// entries in memory; [`SymbolDict::persist`] writes them to the file, which
/// the apply does before any row that uses them reaches a column file.
#[derive(Debug)]
pub(crate) struct SymbolDict {
    path: PathBuf,
    /// `false` for a transaction's private copy, which is never written.
    has_file: bool,
    entries: RwLock<Entries>,
}

impl SymbolDict {
    /// A new, empty dictionary file at `path`.
    pub(crate) fn create(path: PathBuf) -> Result<Self> {
        fsutil::write_at(&path, 0, &header())?;
        Ok(SymbolDict {
            path,
            has_file: true,
            entries: RwLock::new(Entries::default()),
        })
    }

    /// A new, empty dictionary that lives in memory only (a transaction's view
    /// of a table it created); `path` names it in messages.
    pub(crate) fn in_memory(path: PathBuf) -> Self {
        SymbolDict {
            path,
            has_file: false,
            entries: RwLock::new(Entries::default()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the dictionary has a file (else it is a transaction's private copy).
    pub(crate) fn has_file(&self) -> bool {
        self.has_file
    }

    /// Loads the first `count` entries, checking each; returns the dictionary and
    /// the committed byte length of the file.
    pub(crate) fn load(path: PathBuf, count: u32) -> Result<(Self, u64)> {
        let data = fsutil::read_file(&path)?;
        Self::parse(path, &data, count)
    }

    /// [`SymbolDict::load`] on the file's bytes.
    pub(crate) fn parse(path: PathBuf, data: &[u8], count: u32) -> Result<(Self, u64)> {
        let bad = |reason: String| StorageError::corrupted(&path, reason);
        if data.len() < HEADER_LEN as usize || data[..16] != header()[..] {
            if data.len() >= 10 && &data[..8] == SYM_MAGIC {
                let major = u16::from_le_bytes([data[8], data[9]]);
                if major != FORMAT_MAJOR {
                    return Err(StorageError::UnsupportedVersion {
                        path,
                        found: major,
                        supported: FORMAT_MAJOR,
                    });
                }
            }
            return Err(bad("bad symbol file header".into()));
        }
        let mut e = Entries::default();
        let mut pos = HEADER_LEN as usize;
        for k in 0..count {
            if data.len() < pos + 4 {
                return Err(bad(format!(
                    "file is truncated: entry {k} of {count} is missing"
                )));
            }
            let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]])
                as usize;
            let end = pos + 4 + len + 4;
            if data.len() < end {
                return Err(bad(format!(
                    "file is truncated inside entry {k} of {count}"
                )));
            }
            let stored =
                u32::from_le_bytes([data[end - 4], data[end - 3], data[end - 2], data[end - 1]]);
            if crc32c::crc32c(&data[pos..end - 4]) != stored {
                return Err(bad(format!(
                    "checksum mismatch in entry {k} (at byte {pos})"
                )));
            }
            let s = std::str::from_utf8(&data[pos + 4..end - 4])
                .map_err(|_| bad(format!("entry {k} is not valid UTF-8")))?;
            let s: Arc<str> = Arc::from(s);
            e.index.insert(s.clone(), k as i32);
            e.values.push(s);
            e.ends.push(end as u64);
            pos = end;
        }
        e.persisted = count as usize;
        Ok((
            SymbolDict {
                path,
                has_file: true,
                entries: RwLock::new(e),
            },
            pos as u64,
        ))
    }

    /// A private, memory-only copy of the first `count` entries.
    pub(crate) fn private_copy(&self, count: u32) -> SymbolDict {
        let copy = SymbolDict::in_memory(self.path.clone());
        let values: Vec<String> = self.values(count).iter().map(|s| s.to_string()).collect();
        copy.add(0, &values);
        copy
    }

    pub(crate) fn lookup(&self, s: &str) -> Option<i32> {
        self.entries.read().index.get(s).copied()
    }

    /// Adds entries in memory after the first `count` committed ones (dropping
    /// anything left past them by a failed commit).
    pub(crate) fn add(&self, count: u32, new: &[String]) {
        let mut e = self.entries.write();
        Self::truncate_entries(&mut e, count);
        for s in new {
            let s: Arc<str> = Arc::from(s.as_str());
            let k = e.values.len() as i32;
            e.index.insert(s.clone(), k);
            e.values.push(s);
        }
    }

    /// Writes the entries up to `count` that are not in the file yet; records
    /// the file in `dirty` when it wrote. A memory-only dictionary is refused.
    pub(crate) fn persist(&self, count: u32, dirty: &mut Vec<PathBuf>) -> Result<()> {
        let count = count as usize;
        if self.entries.read().persisted >= count {
            return Ok(());
        }
        if !self.has_file {
            return Err(StorageError::InvalidState(format!(
                "{} is a transaction's private dictionary and has no file",
                self.path.display()
            )));
        }
        let mut e = self.entries.write();
        if count > e.values.len() {
            return Err(StorageError::InvalidState(format!(
                "{}: {count} entries to persist, {} known",
                self.path.display(),
                e.values.len()
            )));
        }
        let base = e.file_len();
        let mut buf = Vec::new();
        let mut ends = Vec::with_capacity(count - e.persisted);
        for s in &e.values[e.persisted..count] {
            let start = buf.len();
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            let crc = crc32c::crc32c(&buf[start..]);
            buf.extend_from_slice(&crc.to_le_bytes());
            ends.push(base + buf.len() as u64);
        }
        fsutil::write_at(&self.path, base, &buf)?;
        e.ends.extend(ends);
        e.persisted = count;
        dirty.push(self.path.clone());
        Ok(())
    }

    /// Forgets entries past `count` (a commit that added them failed).
    pub(crate) fn rollback(&self, count: u32) {
        Self::truncate_entries(&mut self.entries.write(), count);
    }

    fn truncate_entries(e: &mut Entries, count: u32) {
        let count = count as usize;
        if e.values.len() > count {
            for s in e.values.drain(count..) {
                e.index.remove(&s);
            }
        }
        // A failed commit may have written its entries already (commits that
        // change the files write their dictionary at once): they are past the
        // committed length now, and the next entries overwrite them.
        if e.persisted > count {
            e.persisted = count;
            e.ends.truncate(count);
        }
    }

    /// The first `count` entries, in key order.
    pub(crate) fn values(&self, count: u32) -> Vec<Arc<str>> {
        let e = self.entries.read();
        e.values[..(count as usize).min(e.values.len())].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_load_rollback_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.sym");
        let d = SymbolDict::create(p.clone()).expect("create");
        let mut dirty = Vec::new();
        d.add(0, &["AAPL".into(), "MSFT".into()]);
        d.persist(2, &mut dirty).expect("persist");
        d.add(2, &["uncommitted".into()]);
        d.rollback(2);
        d.add(2, &["GOOG".into()]);
        assert_eq!(d.lookup("GOOG"), Some(2));
        assert_eq!(d.lookup("uncommitted"), None);
        assert_eq!(
            SymbolDict::load(p.clone(), 2)
                .expect("load")
                .0
                .values(3)
                .len(),
            2
        );
        // Entries of a failed commit that were written already are overwritten.
        d.persist(3, &mut dirty).expect("persist");
        d.rollback(2);
        d.add(2, &["GOOG".into()]);
        d.persist(3, &mut dirty).expect("persist");
        let (l, len) = SymbolDict::load(p.clone(), 3).expect("load");
        assert_eq!(
            l.values(3)
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            ["AAPL", "MSFT", "GOOG"]
        );
        assert_eq!(len, std::fs::metadata(&p).expect("meta").len());
        assert!(SymbolDict::load(p.clone(), 4).is_err());
        let mut b = std::fs::read(&p).expect("read");
        b[22] ^= 1;
        std::fs::write(&p, b).expect("write");
        let e = SymbolDict::load(p, 3).expect_err("flip");
        assert!(
            e.to_string().contains("s.sym") && e.to_string().contains("entry 0"),
            "{e}"
        );
    }
}
