//! Small file-system helpers with the durability steps spelled out once.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use crate::error::{IoContext, Result, StorageError};
use crate::sliced_io;

/// fsyncs `f`; a failure is a [`StorageError::Sync`].
pub(crate) fn sync_file(f: &File, path: &Path) -> Result<()> {
    f.sync_all().map_err(|e| StorageError::sync(path, e))
}

/// Replaces `path` atomically and durably: write `path.tmp`, fsync it, rename
/// over `path`, fsync the directory. A crash leaves either the old or the new file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write_synced(&tmp, data)?;
    fs::rename(&tmp, path).at(path)?;
    sync_parent(path)
}

/// Writes `data` to a new file at `path` (replacing any) and fsyncs the file.
pub(crate) fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = File::create(path).at(path)?;
    sliced_io::write_all(&mut f, data).at(path)?;
    sync_file(&f, path)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    sync_file(&File::open(dir).at(dir)?, dir)
}

pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// fsyncs a file if it still exists (it may have been removed as garbage since).
pub(crate) fn sync_if_exists(path: &Path) -> Result<()> {
    match File::open(path) {
        Ok(f) => sync_file(&f, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(path),
    }
}

/// Writes `data` at byte `offset` of `path`, creating the file if needed. The file
/// is first cut to `offset`, so bytes left by a failed earlier attempt past the
/// committed length never survive behind new data.
pub(crate) fn write_at(path: &Path, offset: u64, data: &[u8]) -> Result<()> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .at(path)?;
    let len = f.metadata().at(path)?.len();
    if len != offset {
        f.set_len(offset).at(path)?;
    }
    sliced_io::write_all_at(&f, data, offset).at(path)
}

/// Cuts `path` to `len` bytes if it is longer. Returns the bytes removed.
pub(crate) fn truncate_to(path: &Path, len: u64) -> Result<u64> {
    let f = OpenOptions::new().write(true).open(path).at(path)?;
    let cur = f.metadata().at(path)?.len();
    if cur > len {
        f.set_len(len).at(path)?;
        sync_file(&f, path)?;
        return Ok(cur - len);
    }
    Ok(0)
}

pub(crate) fn file_len(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(path),
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).at(path)
}

pub(crate) fn remove_path(path: &Path) -> Result<()> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

/// Removes `path` (a file, or a directory and everything under it) one entry
/// at a time, asking `permit` before each unlink and holding what it returns
/// across that unlink. Returns false when `permit` says stop: what is left is
/// removed by a later call, so a long removal can be interrupted between any
/// two files.
pub(crate) fn remove_path_stepwise<G>(
    path: &Path,
    permit: &mut impl FnMut() -> Option<G>,
) -> Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).at(path),
    };
    if meta.is_dir() {
        let entries = match fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e).at(path),
        };
        for e in entries {
            if !remove_path_stepwise(&e.at(path)?.path(), permit)? {
                return Ok(false);
            }
        }
    }
    let Some(_held) = permit() else {
        return Ok(false);
    };
    let r = if meta.is_dir() {
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(true),
    }
}

/// `wanted`, or `wanted.N` for the first N = 1, 2, ... that names nothing in
/// `dir`: a new directory never takes the name of one left on disk (garbage
/// that housekeeping deletes later, perhaps under a checkpoint's copy).
pub(crate) fn free_name(dir: &Path, wanted: &str) -> String {
    if !dir.join(wanted).exists() {
        return wanted.to_string();
    }
    (1u64..)
        .map(|n| format!("{wanted}.{n}"))
        .find(|name| !dir.join(name).exists())
        .unwrap_or_else(|| wanted.to_string())
}

/// Total size in bytes of the regular files under `path`.
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

/// Free bytes on the file system holding `path`, as an unprivileged user may use them.
pub(crate) fn free_bytes(path: &Path) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(path)
        .map_err(|e| crate::error::StorageError::io(path, e.into()))?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepwise_removal_stops_when_told_and_finishes_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("t");
        std::fs::create_dir_all(tree.join("p")).expect("mkdir");
        for name in ["a", "b", "p/c", "p/d"] {
            std::fs::write(tree.join(name), b"x").expect("write");
        }
        let mut allowed = 2;
        let mut permit = || {
            if allowed == 0 {
                return None;
            }
            allowed -= 1;
            Some(())
        };
        assert!(!remove_path_stepwise(&tree, &mut permit).expect("removes"));
        assert!(tree.exists(), "stopped after two unlinks");
        assert!(remove_path_stepwise(&tree, &mut || Some(())).expect("removes"));
        assert!(!tree.exists());
        assert!(remove_path_stepwise(&tree, &mut || Some(())).expect("a missing path is removed"));
    }
}
