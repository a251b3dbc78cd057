//! Reading backups back: `tidemark restore`, `tidemark backup list|verify`.
//!
//! Restore downloads every file of a backup's manifest into an empty root,
//! checking each against its size and CRC-32C (a mismatch stops the restore
//! and names the object), then has the storage engine restore the root to the
//! backup's checkpoint cut (the `_restore` boot step) and closes it: the result
//! is an ordinary root that `tidemark serve` opens. A restore that was stopped
//! half-way is finished by running it again on the same root.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use parking_lot::Mutex;
use tidemark_storage::{Database, RESTORE_TRIGGER, StorageOptions};
use tokio::io::AsyncWriteExt;

use crate::destination::Destination;
use crate::error::{BackupError, Result};
use crate::job::blocking;
use crate::manifest::{FileEntry, Manifest, backup_ids, read_manifest};

/// Marks a root that a restore is filling: a rerun may continue on it.
const RESTORING_MARKER: &str = "_restoring_backup";

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub backup_id: String,
    pub cut_seq: u64,
    pub cut_at: String,
    pub files: usize,
    pub bytes: u64,
    pub tables: usize,
    pub elapsed: Duration,
}

/// The backup to restore: `id`, or the newest complete one.
pub async fn choose(dest: &Destination, id: Option<&str>) -> Result<Manifest> {
    match id {
        Some(id) => read_manifest(dest, id).await,
        None => {
            let (ids, _) = backup_ids(dest).await?;
            match ids.last() {
                Some(id) => read_manifest(dest, id).await,
                None => Err(BackupError::NotFound(format!(
                    "there is no complete backup at {}",
                    dest.url()
                ))),
            }
        }
    }
}

/// Restores backup `id` (default: the newest) from `dest` into `root`, which
/// must be empty, missing, or a root an earlier restore of the same backup left
/// unfinished.
pub async fn restore(
    dest: &Destination,
    root: &Path,
    id: Option<&str>,
    concurrency: usize,
) -> Result<RestoreSummary> {
    let started = Instant::now();
    let manifest = choose(dest, id).await?;
    prepare_root(root, &manifest.id)?;
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    tracing::info!(
        backup = %manifest.id,
        files = manifest.files.len(),
        bytes = total,
        root = %root.display(),
        "restore: downloading"
    );
    let progress = Mutex::new((0u64, Instant::now()));
    futures::stream::iter(manifest.files.iter())
        .map(|f| {
            let progress = &progress;
            async move {
                download(dest, f, &root.join(&f.path)).await?;
                let mut p = progress.lock();
                p.0 += f.size;
                if p.1.elapsed() >= Duration::from_secs(5) {
                    p.1 = Instant::now();
                    tracing::info!(
                        done_bytes = p.0,
                        total_bytes = total,
                        "restore: {}% downloaded",
                        p.0 * 100 / total.max(1)
                    );
                }
                Ok::<(), BackupError>(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await?;
    let root_buf = root.to_path_buf();
    let tables = blocking(move || {
        let trigger = root_buf.join(RESTORE_TRIGGER);
        std::fs::write(&trigger, b"").map_err(|e| BackupError::io(&trigger, e))?;
        tracing::info!("restore: files downloaded and verified; rewinding to the backup's cut");
        let db = Database::open(&root_buf, StorageOptions::default())?;
        let tables = db.open_report().tables;
        db.close()?;
        let marker = root_buf.join(RESTORING_MARKER);
        std::fs::remove_file(&marker).map_err(|e| BackupError::io(&marker, e))?;
        Ok(tables)
    })
    .await?;
    Ok(RestoreSummary {
        backup_id: manifest.id.clone(),
        cut_seq: manifest.cut_seq,
        cut_at: manifest.cut_at.clone(),
        files: manifest.files.len(),
        bytes: total,
        tables,
        elapsed: started.elapsed(),
    })
}

/// Refuses a root that holds anything but an unfinished restore of `id`.
fn prepare_root(root: &Path, id: &str) -> Result<()> {
    let marker = root.join(RESTORING_MARKER);
    match std::fs::read_dir(root) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                let previous = std::fs::read_to_string(&marker).ok();
                if previous.as_deref().map(str::trim) != Some(id) {
                    return Err(BackupError::Refused(format!(
                        "{} is not empty: restore writes a new root; give it an empty or new directory",
                        root.display()
                    )));
                }
                tracing::info!("restore: continuing the unfinished restore of backup {id}");
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io(root, e)),
    }
    std::fs::create_dir_all(root).map_err(|e| BackupError::io(root, e))?;
    std::fs::write(&marker, id).map_err(|e| BackupError::io(&marker, e))
}

/// Downloads one file to `target` through a temporary name, checking its size
/// and checksum before the rename.
async fn download(dest: &Destination, f: &FileEntry, target: &Path) -> Result<()> {
    let object = dest.object(&f.object)?;
    let named = dest.describe(&f.object);
    if let Some(dir) = target.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| BackupError::io(dir, e))?;
    }
    let tmp = PathBuf::from(format!("{}.download", target.display()));
    let mut out = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| BackupError::io(&tmp, e))?;
    let (size, crc) = read_object(dest, &object, &named, Some((&mut out, &tmp))).await?;
    check(f, &named, size, crc)?;
    out.sync_all().await.map_err(|e| BackupError::io(&tmp, e))?;
    drop(out);
    tokio::fs::rename(&tmp, target)
        .await
        .map_err(|e| BackupError::io(target, e))
}

/// Streams an object (into `sink` when given), returning its size and CRC-32C.
async fn read_object(
    dest: &Destination,
    object: &object_store::path::Path,
    named: &str,
    mut sink: Option<(&mut tokio::fs::File, &Path)>,
) -> Result<(u64, u32)> {
    let got = match dest.store().get(object).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(BackupError::NotFound(format!(
                "object {named} is missing from the destination"
            )));
        }
        Err(e) => return Err(BackupError::store(named, e)),
    };
    let mut stream = got.into_stream();
    let (mut size, mut crc) = (0u64, 0u32);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BackupError::store(named, e))?;
        size += chunk.len() as u64;
        crc = crc32c::crc32c_append(crc, &chunk);
        if let Some((out, path)) = sink.as_mut() {
            out.write_all(&chunk)
                .await
                .map_err(|e| BackupError::io(*path, e))?;
        }
    }
    Ok((size, crc))
}

fn check(f: &FileEntry, named: &str, size: u64, crc: u32) -> Result<()> {
    if size != f.size {
        return Err(BackupError::Corrupt {
            object: named.to_string(),
            reason: format!("{size} bytes, the manifest says {}", f.size),
        });
    }
    if crc != f.crc32c {
        return Err(BackupError::Corrupt {
            object: named.to_string(),
            reason: format!(
                "CRC-32C {crc:08x}, the manifest says {:08x} (file {})",
                f.crc32c, f.path
            ),
        });
    }
    Ok(())
}

/// What `tidemark backup verify` checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    pub backup_id: String,
    pub files: usize,
    pub bytes: u64,
}

/// Reads every object of backup `id` (default: the newest) and checks it
/// against the manifest.
pub async fn verify(dest: &Destination, id: Option<&str>) -> Result<VerifySummary> {
    let manifest = choose(dest, id).await?;
    futures::stream::iter(manifest.files.iter())
        .map(|f| async move {
            let object = dest.object(&f.object)?;
            let named = dest.describe(&f.object);
            let (size, crc) = read_object(dest, &object, &named, None).await?;
            check(f, &named, size, crc)
        })
        .buffer_unordered(4)
        .try_collect::<()>()
        .await?;
    Ok(VerifySummary {
        backup_id: manifest.id.clone(),
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
    })
}

/// Every complete backup at `dest`, oldest first, and how many are incomplete.
pub async fn list(dest: &Destination) -> Result<(Vec<Manifest>, usize)> {
    let (ids, incomplete) = backup_ids(dest).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(read_manifest(dest, &id).await?);
    }
    Ok((out, incomplete))
}
