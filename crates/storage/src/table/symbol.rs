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

#[derive(Debug, Default)]
struct Entries {
    values: Vec<Arc<str>>,
    index: HashMap<Arc<str>, i32>,
    /// File length after each entry (`ends[k]` = end of entry k).
    ends: Vec<u64>,
}

/// An append-only dictionary shared by every snapshot of a table: a snapshot
/// only looks at the first `count` entries its `_txn` committed.
#[derive(Debug)]
pub(crate) struct SymbolDict {
    path: PathBuf,
    entries: RwLock<Entries>,
}

impl SymbolDict {
    pub(crate) fn create(path: PathBuf) -> Result<Self> {
        fsutil::write_at(&path, 0, &header())?;
        Ok(SymbolDict {
            path,
            entries: RwLock::new(Entries::default()),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
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
        Ok((
            SymbolDict {
                path,
                entries: RwLock::new(e),
            },
            pos as u64,
        ))
    }

    /// A private copy of the first `count` entries in a new file at `path`.
    pub(crate) fn fork(&self, count: u32, path: PathBuf) -> Result<SymbolDict> {
        let copy = SymbolDict::create(path)?;
        let values: Vec<String> = self.values(count).iter().map(|s| s.to_string()).collect();
        copy.append(0, &values)?;
        Ok(copy)
    }

    pub(crate) fn lookup(&self, s: &str) -> Option<i32> {
        self.entries.read().index.get(s).copied()
    }

    /// Appends new entries at the end of the first `count` committed ones (cutting
    /// anything left past them by a failed commit); returns the files touched.
    pub(crate) fn append(&self, count: u32, new: &[String]) -> Result<()> {
        let mut e = self.entries.write();
        Self::truncate_entries(&mut e, count);
        let mut buf = Vec::new();
        let mut end = e.ends.last().copied().unwrap_or(HEADER_LEN);
        let mut ends = Vec::with_capacity(new.len());
        for s in new {
            let start = buf.len();
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            let crc = crc32c::crc32c(&buf[start..]);
            buf.extend_from_slice(&crc.to_le_bytes());
            end += (buf.len() - start) as u64;
            ends.push(end);
        }
        let base = e.ends.last().copied().unwrap_or(HEADER_LEN);
        fsutil::write_at(&self.path, base, &buf)?;
        for (s, end) in new.iter().zip(ends) {
            let s: Arc<str> = Arc::from(s.as_str());
            let k = e.values.len() as i32;
            e.index.insert(s.clone(), k);
            e.values.push(s);
            e.ends.push(end);
        }
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
        d.append(0, &["AAPL".into(), "MSFT".into()])
            .expect("append");
        d.append(2, &["uncommitted".into()]).expect("append");
        d.rollback(2);
        d.append(2, &["GOOG".into()]).expect("append");
        assert_eq!(d.lookup("GOOG"), Some(2));
        assert_eq!(d.lookup("uncommitted"), None);
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
