//! Reading backups back: `tidemark restore`, `tidemark backup list|verify`.
//!
//! Restore downloads every file of a backup's manifest into an empty root,
//! checking each against its size and CRC-32C (a mismatch stops the restore
//! and names the object), then has the storage engine restore the root to the
//! backup's checkpoint cut (the `_restore` boot step) and closes it: the result
//! is an ordinary root that `tidemark serve` opens. A restore that was stopped
//! half-way is finished by running it again on the same root.
//!
//! Point-in-time restore (`--to-time`) starts from the newest backup whose cut
//! is at or before the time, then takes the log backup's runs that follow the
//! cut, checks each (a missing run or a damaged one stops the restore, naming
//! the object), writes the records committed at or before the time into the
//! root's WAL and lets recovery replay them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::{GetResultPayload, ObjectStoreExt};
use parking_lot::Mutex;
use tidemark_storage::{
    Database, LogRun, LogSegmentWriter, RESTORE_TRIGGER, StorageOptions, sliced_io,
};

use crate::destination::Destination;
use crate::error::{BackupError, Result};
use crate::job::{blocking, fsync};
use crate::log::list_runs;
use crate::manifest::{FileEntry, Manifest, backup_ids, read_manifest};

/// Marks a root that a restore is filling: a rerun may continue on it.
const RESTORING_MARKER: &str = "_restoring_backup";

/// What a restore restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// The newest complete backup.
    Newest,
    /// This backup, to its cut.
    Backup(String),
    /// The last commit at or before this time: the newest backup before it,
    /// then the log backup up to it.
    Time(chrono::DateTime<chrono::Utc>),
}

impl RestoreTarget {
    /// `--to-time`: an RFC 3339 time.
    pub fn at_time(text: &str) -> std::result::Result<RestoreTarget, String> {
        parse_time("--to-time", text).map(RestoreTarget::Time)
    }
}

/// A command-line time (`flag` names it in the error): RFC 3339.
pub fn parse_time(
    flag: &str,
    text: &str,
) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|e| {
            format!("{flag} {text:?}: {e} (an RFC 3339 time such as 2026-12-05T10:30:00Z)")
        })
}

/// A restore's progress as it goes, for a progress bar.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    pub bytes_total: std::sync::atomic::AtomicU64,
    pub bytes_done: std::sync::atomic::AtomicU64,
    /// Commits of the log replayed so far (point-in-time restore).
    pub log_commits: std::sync::atomic::AtomicU64,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub backup_id: String,
    pub cut_seq: u64,
    pub cut_at: String,
    pub files: usize,
    pub bytes: u64,
    pub tables: usize,
    /// Point-in-time restore: what the log added after the cut.
    pub log: Option<LogReplay>,
    pub elapsed: Duration,
}

/// The log replayed on top of a backup's cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReplay {
    /// Commits after the cut that were replayed.
    pub commits: u64,
    /// The newest commit restored, and when it was committed (RFC 3339).
    pub last_seq: u64,
    pub last_commit_at: Option<String>,
    /// Set when the log ends before the target time: the newest commit it
    /// holds (later commits, if there were any, were not shipped).
    pub log_ends_before_target: bool,
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
    target: &RestoreTarget,
    concurrency: usize,
) -> Result<RestoreSummary> {
    restore_with_progress(dest, root, target, concurrency, &RestoreProgress::default()).await
}

/// [`restore`], reporting its progress in `progress` as it goes.
pub async fn restore_with_progress(
    dest: &Destination,
    root: &Path,
    target: &RestoreTarget,
    concurrency: usize,
    progress_out: &RestoreProgress,
) -> Result<RestoreSummary> {
    use std::sync::atomic::Ordering::Relaxed;
    let started = Instant::now();
    let manifest = match target {
        RestoreTarget::Newest => choose(dest, None).await?,
        RestoreTarget::Backup(id) => choose(dest, Some(id)).await?,
        RestoreTarget::Time(t) => newest_before(dest, *t).await?,
    };
    prepare_root(root, &manifest.id)?;
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    progress_out.bytes_total.store(total, Relaxed);
    tracing::info!(
        backup = %manifest.id,
        files = manifest.files.len(),
        bytes = total,
        root = %root.display(),
        "restore: downloading"
    );
    let last_log = Mutex::new(Instant::now());
    futures::stream::iter(manifest.files.iter())
        .map(|f| {
            let last_log = &last_log;
            async move {
                download(dest, f, &root.join(&f.path)).await?;
                let done = progress_out.bytes_done.fetch_add(f.size, Relaxed) + f.size;
                let mut last = last_log.lock();
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    tracing::info!(
                        done_bytes = done,
                        total_bytes = total,
                        "restore: {}% downloaded",
                        done * 100 / total.max(1)
                    );
                }
                Ok::<(), BackupError>(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await?;
    let root_buf = root.to_path_buf();
    // Each file was fsynced before its rename; the renames are durable once
    // their directories are.
    let dirs: std::collections::BTreeSet<PathBuf> = manifest
        .files
        .iter()
        .filter_map(|f| root.join(&f.path).parent().map(Path::to_path_buf))
        .collect();
    let tables = blocking(move || {
        for dir in &dirs {
            fsync(dir)?;
        }
        let trigger = root_buf.join(RESTORE_TRIGGER);
        std::fs::write(&trigger, b"").map_err(|e| BackupError::io(&trigger, e))?;
        tracing::info!("restore: files downloaded and verified; rewinding to the backup's cut");
        let db = Database::open(&root_buf, StorageOptions::default())?;
        let tables = db.open_report().tables;
        db.close()?;
        Ok(tables)
    })
    .await?;
    let log = match target {
        RestoreTarget::Time(t) => {
            Some(replay_log(dest, root, manifest.cut_seq, *t, &progress_out.log_commits).await?)
        }
        _ => None,
    };
    let marker = root.join(RESTORING_MARKER);
    std::fs::remove_file(&marker).map_err(|e| BackupError::io(&marker, e))?;
    Ok(RestoreSummary {
        backup_id: manifest.id.clone(),
        cut_seq: manifest.cut_seq,
        cut_at: manifest.cut_at.clone(),
        files: manifest.files.len(),
        bytes: total,
        tables,
        log,
        elapsed: started.elapsed(),
    })
}

/// The newest complete backup whose cut is at or before `t`.
async fn newest_before(dest: &Destination, t: chrono::DateTime<chrono::Utc>) -> Result<Manifest> {
    let (manifests, _) = list(dest).await?;
    let oldest = manifests.first().map(|m| m.cut_at.clone());
    manifests
        .into_iter()
        .rev()
        .find(|m| m.cut_time().is_some_and(|c| c <= t))
        .ok_or_else(|| {
            BackupError::NotFound(match oldest {
                Some(o) => format!(
                    "no backup at {} was taken at or before {}: the oldest is from {o}",
                    dest.url(),
                    t.to_rfc3339()
                ),
                None => format!("there is no complete backup at {}", dest.url()),
            })
        })
}

/// Replays the log backup after commit `cut` up to the last commit at or
/// before `t` into the restored root at `root`.
async fn replay_log(
    dest: &Destination,
    root: &Path,
    cut: u64,
    t: chrono::DateTime<chrono::Utc>,
    commits_out: &std::sync::atomic::AtomicU64,
) -> Result<LogReplay> {
    let until = t.timestamp_micros();
    let runs: Vec<_> = list_runs(dest)
        .await?
        .into_iter()
        .filter(|(_, last, _)| *last > cut)
        .collect();
    tracing::info!(
        runs = runs.len(),
        after_commit = cut,
        to_time = %t.to_rfc3339(),
        "restore: replaying the log backup"
    );
    let root_buf = root.to_path_buf();
    let mut writer = blocking(move || Ok(LogSegmentWriter::create(&root_buf, cut)?)).await?;
    let mut replay = LogReplay {
        commits: 0,
        last_seq: cut,
        last_commit_at: None,
        log_ends_before_target: true,
    };
    let mut last_log = Instant::now();
    'runs: for (first, last, key) in runs {
        let next = writer.next_seq();
        if last < next {
            // Shipped again after a restart (its commits are already in).
            continue;
        }
        if first > next {
            return Err(BackupError::NotFound(format!(
                "the log backup at {} misses commits {next} to {}: the run after the gap is {}                  (restore to a time before commit {next}, or from a backup taken after the gap)",
                dest.url(),
                first - 1,
                dest.describe(&key)
            )));
        }
        let named = dest.describe(&key);
        let object = dest.object(&key)?;
        let bytes = match dest.store().get(&object).await {
            Ok(g) => g.bytes().await.map_err(|e| BackupError::store(&named, e))?,
            Err(e) => return Err(BackupError::store(&named, e)),
        };
        let run = LogRun::decode(bytes.to_vec(), &named).map_err(|e| BackupError::Corrupt {
            object: named.clone(),
            reason: e.to_string(),
        })?;
        if (run.first_seq(), run.last_seq()) != (first, last) {
            return Err(BackupError::Corrupt {
                object: named,
                reason: format!(
                    "it holds commits {} to {}, its name says {first} to {last}",
                    run.first_seq(),
                    run.last_seq()
                ),
            });
        }
        for r in run.records() {
            if r.seq < writer.next_seq() {
                continue;
            }
            let Some(at) = r.commit_micros else {
                return Err(BackupError::Refused(format!(
                    "commit {} in {named} has no commit time (written by a Tidemark older than                      point-in-time restore): restore a backup instead",
                    r.seq
                )));
            };
            if at > until {
                replay.log_ends_before_target = false;
                break 'runs;
            }
            writer.append(&r)?;
            replay.commits += 1;
            commits_out.store(replay.commits, std::sync::atomic::Ordering::Relaxed);
            replay.last_seq = r.seq;
            replay.last_commit_at = chrono::DateTime::from_timestamp_micros(at)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
        if last_log.elapsed() >= Duration::from_secs(5) {
            last_log = Instant::now();
            tracing::info!(
                commits = replay.commits,
                at_commit = replay.last_seq,
                "restore: log replay"
            );
        }
    }
    let root_buf = root.to_path_buf();
    blocking(move || {
        writer.finish()?;
        // Recovery replays the records now, and checks they apply.
        let db = Database::open(&root_buf, StorageOptions::default())?;
        db.close()?;
        Ok(())
    })
    .await?;
    tracing::info!(
        commits = replay.commits,
        last_seq = replay.last_seq,
        last_commit_at = replay.last_commit_at.as_deref().unwrap_or("-"),
        "restore: log replayed"
    );
    Ok(replay)
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
    let tmp = PathBuf::from(format!("{}.download", target.display()));
    let (t, dir) = (tmp.clone(), target.parent().map(Path::to_path_buf));
    let file = blocking(move || {
        if let Some(dir) = dir {
            std::fs::create_dir_all(&dir).map_err(|e| BackupError::io(&dir, e))?;
        }
        std::fs::File::create(&t).map_err(|e| BackupError::io(&t, e))
    })
    .await?;
    let mut sink = Sink {
        file: Some(file),
        path: tmp.clone(),
    };
    read_file(dest, f, Some(&mut sink)).await?;
    let file = sink.take()?;
    let target = target.to_path_buf();
    blocking(move || {
        file.sync_all().map_err(|e| BackupError::io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &target).map_err(|e| BackupError::io(&target, e))
    })
    .await
}

/// Reads a file's parts in order (into `sink` when given), checking each
/// object and then the whole file against the manifest.
async fn read_file(dest: &Destination, f: &FileEntry, mut sink: Option<&mut Sink>) -> Result<()> {
    let (mut size, mut crc) = (0u64, 0u32);
    for part in &f.parts {
        let named = dest.describe(&part.object);
        let object = dest.object(&part.object)?;
        let (got_size, got_crc) = read_object(dest, &object, &named, sink.as_deref_mut()).await?;
        check(
            &named,
            &f.path,
            (got_size, got_crc),
            (part.size, part.crc32c),
        )?;
        size += got_size;
        crc = crc32c::crc32c_combine(crc, got_crc, got_size as usize);
    }
    // The parts are right one by one; together they must be the file.
    let named = match f.parts.as_slice() {
        [one] => dest.describe(&one.object),
        parts => format!("the {} parts of {}", parts.len(), f.path),
    };
    check(&named, &f.path, (size, crc), (f.size, f.crc32c))
}

/// Bytes per read of a local object.
const LOCAL_READ: usize = 1 << 20;
/// Bytes of a streamed object gathered before one write.
const WRITE_BATCH: usize = 4 << 20;

/// A file being written on the blocking threads, a large piece at a time
/// (lent to the blocking task while it writes).
struct Sink {
    file: Option<std::fs::File>,
    path: PathBuf,
}

impl Sink {
    fn take(&mut self) -> Result<std::fs::File> {
        self.file.take().ok_or_else(|| {
            BackupError::Refused(format!(
                "writing {} failed earlier in this restore",
                self.path.display()
            ))
        })
    }

    async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        let mut file = self.take()?;
        let path = self.path.clone();
        self.file = Some(
            blocking(move || {
                sliced_io::write_all(&mut file, &data).map_err(|e| BackupError::io(&path, e))?;
                Ok(file)
            })
            .await?,
        );
        Ok(())
    }
}

/// Reads an object (into `sink` when given), returning its size and CRC-32C.
async fn read_object(
    dest: &Destination,
    object: &object_store::path::Path,
    named: &str,
    mut sink: Option<&mut Sink>,
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
    let (mut size, mut crc) = (0u64, 0u32);
    match got.payload {
        // A local object: copied in large reads on one blocking thread
        // (object_store would stream it 8 KiB at a time).
        GetResultPayload::File(mut source, source_path) => {
            let mut out = match sink.as_deref_mut() {
                Some(s) => Some((s.take()?, s.path.clone())),
                None => None,
            };
            let (size, crc, out) = blocking(move || {
                use std::io::Read;
                let mut buf = vec![0u8; LOCAL_READ];
                loop {
                    let n = source
                        .read(&mut buf)
                        .map_err(|e| BackupError::io(&source_path, e))?;
                    if n == 0 {
                        return Ok((size, crc, out));
                    }
                    size += n as u64;
                    crc = crc32c::crc32c_append(crc, &buf[..n]);
                    if let Some((file, path)) = out.as_mut() {
                        sliced_io::write_all(file, &buf[..n])
                            .map_err(|e| BackupError::io(&*path, e))?;
                    }
                }
            })
            .await?;
            if let (Some(s), Some((file, _))) = (sink, out) {
                s.file = Some(file);
            }
            Ok((size, crc))
        }
        GetResultPayload::Stream(mut stream) => {
            let mut pending = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| BackupError::store(named, e))?;
                size += chunk.len() as u64;
                crc = crc32c::crc32c_append(crc, &chunk);
                if let Some(s) = sink.as_deref_mut() {
                    pending.extend_from_slice(&chunk);
                    if pending.len() >= WRITE_BATCH {
                        s.write(std::mem::take(&mut pending)).await?;
                    }
                }
            }
            if let Some(s) = sink
                && !pending.is_empty()
            {
                s.write(pending).await?;
            }
            Ok((size, crc))
        }
    }
}

/// `(size, crc)` read from `named` against what the manifest says for it.
fn check(named: &str, path: &str, got: (u64, u32), expected: (u64, u32)) -> Result<()> {
    if got.0 != expected.0 {
        return Err(BackupError::Corrupt {
            object: named.to_string(),
            reason: format!("{} bytes, the manifest says {}", got.0, expected.0),
        });
    }
    if got.1 != expected.1 {
        return Err(BackupError::Corrupt {
            object: named.to_string(),
            reason: format!(
                "CRC-32C {:08x}, the manifest says {:08x} (file {path})",
                got.1, expected.1
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
        .map(|f| read_file(dest, f, None))
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
