//! One backup run: upload the files of the held checkpoint cut, release the
//! checkpoint, write the manifest.
//!
//! Every file of the cut ends up in the upload log (`state.rs`) with the object
//! that holds it, which is one of three:
//! - already uploaded by an interrupted run of the same backup (the log says
//!   so and the object is there with that size): nothing to do;
//! - unchanged since the base backup (same size and modification time: the
//!   files are append-only or copy-on-write, so a file whose size did not
//!   change was not written): the base's object is referenced;
//! - grown since the base backup with its first bytes still the base's (the
//!   column files of the newest partition, a WAL segment: appended to): the
//!   base's parts are referenced and only the bytes after them uploaded, to
//!   `backups/<id>/data/<path>`, as one more part (at most `MAX_PARTS`, then the
//!   file goes up whole again, so a restore does not read long chains);
//! - otherwise read, checksummed and uploaded whole to `backups/<id>/data/<path>`.
//!
//! Reads and uploads are streamed in chunks, so memory is bounded by
//! `concurrency` x a few chunks whatever the file sizes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;

use tidemark_storage::sliced_io::WRITE_SLICE;

use crate::destination::Destination;
use crate::error::{BackupError, Result};
use crate::manifest::{
    FORMAT_VERSION, FileEntry, Manifest, Part, data_key, data_prefix, manifest_key, read_manifest,
};
use crate::state::{BackupState, Phase, UploadLog};
use crate::status::{BackupPhase, StatusBoard};
use crate::{BackupOptions, Checkpoints};

/// Bytes read from a file per step (and the multipart threshold is twice it).
const CHUNK: usize = 4 << 20;
/// The most objects one file is held in: a file appended to between many
/// backups is uploaded whole again after this many.
const MAX_PARTS: usize = 16;

pub(crate) struct Job {
    pub(crate) checkpoints: Arc<Checkpoints>,
    pub(crate) dest: Destination,
    pub(crate) status: Arc<StatusBoard>,
    pub(crate) abort: Arc<AtomicBool>,
    pub(crate) options: BackupOptions,
}

/// What one file's upload needs, shared by the concurrent uploads.
struct Shared<'a> {
    job: &'a Job,
    id: &'a str,
    done: HashMap<String, FileEntry>,
    base: HashMap<String, FileEntry>,
    log: Arc<Mutex<UploadLog>>,
    throttle: Throttle,
}

impl Job {
    /// Runs the backup described by `state` to its end.
    pub(crate) async fn run(&self, mut state: BackupState) -> Result<Manifest> {
        let root = self.checkpoints.root().to_path_buf();
        if state.phase == Phase::Uploading {
            self.status.set_phase(BackupPhase::Uploading);
            self.upload_files(&root, &state).await?;
            state.phase = Phase::Uploaded;
            let r = root.clone();
            let saved = state.clone();
            blocking(move || saved.save(&r)).await?;
            let cps = self.checkpoints.clone();
            let seq = state.cut_seq;
            blocking(move || cps.release_for_backup(seq)).await?;
        }
        self.status.set_phase(BackupPhase::WritingManifest);
        let r = root.clone();
        let (_, entries) = blocking(move || UploadLog::open(&r)).await?;
        let mut files: Vec<FileEntry> = entries.into_values().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let ours = data_prefix(&state.id);
        let uploaded_bytes = files.iter().map(|f| f.bytes_under(&ours)).sum();
        let manifest = Manifest {
            format: FORMAT_VERSION,
            id: state.id.clone(),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            cut_at: state.cut_at.clone(),
            cut_seq: state.cut_seq,
            base: state.base.clone(),
            completed_at: rfc3339(SystemTime::now()),
            total_bytes: files.iter().map(|f| f.size).sum(),
            uploaded_bytes,
            files,
        };
        let key = manifest_key(&state.id);
        let object = self.dest.object(&key)?;
        self.dest
            .store()
            .put(&object, manifest.encode()?.into())
            .await
            .map_err(|e| BackupError::store(self.dest.describe(&key), e))?;
        self.dest.sync_object(&key).await?;
        blocking(move || BackupState::remove(&root)).await?;
        Ok(manifest)
    }

    async fn upload_files(&self, root: &Path, state: &BackupState) -> Result<()> {
        let cps = self.checkpoints.clone();
        let cut = blocking(move || cps.files()).await?;
        let cut = match cut {
            Some(c) if c.seq == state.cut_seq => c,
            _ => {
                return Err(BackupError::Refused(format!(
                    "the checkpoint of backup {} (commit {}) is no longer held: start a new \
                     backup (BACKUP ABORT, then BACKUP DATABASE)",
                    state.id, state.cut_seq
                )));
            }
        };
        let r = root.to_path_buf();
        let (log, done) = blocking(move || UploadLog::open(&r)).await?;
        let base = match &state.base {
            Some(b) => read_manifest(&self.dest, b)
                .await?
                .files
                .into_iter()
                .map(|f| (f.path.clone(), f))
                .collect(),
            None => HashMap::new(),
        };
        let mut files = Vec::with_capacity(cut.files.len());
        for rel in &cut.files {
            let path = root.join(rel);
            let meta = std::fs::metadata(&path).map_err(|e| BackupError::io(&path, e))?;
            // What the cut needs of it (the open WAL segment's zeros written
            // ahead are not its records yet); bytes appended later are left.
            let size = tidemark_storage::Database::copy_len(&path)?;
            let key = rel_key(rel)?;
            self.status.bytes_total.fetch_add(size, Ordering::Relaxed);
            files.push((key, path, size, mtime_ns(&meta)));
        }
        self.status
            .files_total
            .store(files.len() as u64, Ordering::Relaxed);
        tracing::info!(
            backup = %state.id,
            files = files.len(),
            bytes = self.status.bytes_total.load(Ordering::Relaxed),
            already_uploaded = done.len(),
            base = state.base.as_deref().unwrap_or("none (full backup)"),
            "backup: uploading the checkpoint's files"
        );
        let shared = Shared {
            job: self,
            id: &state.id,
            done,
            base,
            log: Arc::new(Mutex::new(log)),
            throttle: Throttle::new(self.options.max_bytes_per_second),
        };
        let progress = Progress::new(&self.status, &state.id);
        futures::stream::iter(files)
            .map(|(key, path, size, mtime)| {
                let shared = &shared;
                let progress = &progress;
                async move {
                    shared.one_file(key, path, size, mtime).await?;
                    progress.tick();
                    Ok::<(), BackupError>(())
                }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .try_collect::<()>()
            .await?;
        self.check_uploads(root).await
    }

    /// The first of `e`'s objects that the destination does not hold with its
    /// size, if any.
    async fn missing_part(&self, e: &FileEntry) -> Result<Option<String>> {
        for part in &e.parts {
            let object = self.dest.object(&part.object)?;
            match self.dest.store().head(&object).await {
                Ok(meta) if meta.size == part.size => {}
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                    return Ok(Some(part.object.clone()));
                }
                Err(err) => return Err(BackupError::store(self.dest.describe(&part.object), err)),
            }
        }
        Ok(None)
    }

    /// Whether the destination holds all of `e`'s objects.
    async fn has_objects(&self, e: &FileEntry) -> Result<bool> {
        Ok(self.missing_part(e).await?.is_none())
    }

    /// Before the checkpoint is released: every object the manifest will name
    /// is in the destination. A destination that lost objects during the run
    /// (or an earlier backup's object removed since) fails the backup while
    /// its files can still be read; the resume uploads what is missing.
    async fn check_uploads(&self, root: &Path) -> Result<()> {
        let r = root.to_path_buf();
        let (_, entries) = blocking(move || UploadLog::open(&r)).await?;
        let missing: Vec<String> = futures::stream::iter(entries.into_values())
            .map(|e| async move { self.missing_part(&e).await })
            .buffer_unordered(16)
            .try_filter_map(|m| async move { Ok(m) })
            .try_collect()
            .await?;
        match missing.first() {
            None => Ok(()),
            Some(first) => Err(BackupError::NotFound(format!(
                "{} object(s) the backup uploaded or refers to are not in the destination \
                 (first: {}): BACKUP DATABASE resumes the backup and uploads them again",
                missing.len(),
                self.dest.describe(first)
            ))),
        }
    }
}

impl Shared<'_> {
    async fn one_file(&self, key: String, path: PathBuf, size: u64, mtime_ns: u64) -> Result<()> {
        let status = &self.job.status;
        if self.job.abort.load(Ordering::Relaxed) {
            return Err(BackupError::Aborted);
        }
        if let Some(e) = self.done.get(&key)
            && self.job.has_objects(e).await?
        {
            status.files_done.fetch_add(1, Ordering::Relaxed);
            status.bytes_done.fetch_add(e.size, Ordering::Relaxed);
            return Ok(());
        }
        let base = self.base.get(&key);
        let unchanged = base.filter(|e| e.size == size && e.mtime_ns == mtime_ns);
        let entry = match unchanged {
            // Referenced only while the earlier backup's objects are there.
            Some(e) if self.job.has_objects(e).await? => {
                status.files_reused.fetch_add(1, Ordering::Relaxed);
                status.bytes_done.fetch_add(size, Ordering::Relaxed);
                e.clone()
            }
            _ => {
                let extendable = match base {
                    Some(b)
                        if b.size <= size && b.parts.len() < MAX_PARTS && b.blake3.is_some() =>
                    {
                        self.job.has_objects(b).await?.then_some(b)
                    }
                    _ => None,
                };
                self.upload(&key, &path, size, mtime_ns, extendable).await?
            }
        };
        let log = self.log.clone();
        blocking(move || log.lock().record(&entry)).await?;
        status.files_done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Streams the first `size` bytes of one file to `backups/<id>/data/<key>`:
    /// all of them, or, when its first bytes are still `base`'s, only the bytes
    /// after those. The object
    /// appears only once it is complete (`BufWriter` completes the multipart
    /// upload at shutdown, or aborts it).
    async fn upload(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        mtime_ns: u64,
        base: Option<&FileEntry>,
    ) -> Result<FileEntry> {
        let dest = &self.job.dest;
        let status = &self.job.status;
        let mut file = HashingReader::open(path, size).await?;
        let extends = match base {
            Some(b) if b.blake3.is_some() && file.hash_prefix(b.size).await? == b.blake3 => Some(b),
            _ => {
                file.rewind().await?;
                None
            }
        };
        if let Some(b) = extends {
            status.bytes_done.fetch_add(b.size, Ordering::Relaxed);
        }
        let object_key = data_key(self.id, key);
        let object = dest.object(&object_key)?;
        let mut writer = BufWriter::with_capacity(dest.store().clone(), object, 2 * CHUNK)
            .with_max_concurrency(2);
        let mut part = Part {
            object: object_key.clone(),
            size: 0,
            crc32c: 0,
        };
        let streamed: Result<()> = async {
            loop {
                if self.job.abort.load(Ordering::Relaxed) {
                    return Err(BackupError::Aborted);
                }
                let (buf, crc) = file.next_chunk(CHUNK).await?;
                let n = buf.len();
                if n == 0 {
                    return Ok(());
                }
                part.crc32c = crc32c::crc32c_combine(part.crc32c, crc, n);
                part.size += n as u64;
                // In slices: a local destination writes each as one write(2)
                // (see `sliced_io`); the bytes are not copied.
                let mut chunk = Bytes::from(buf);
                while !chunk.is_empty() {
                    let slice = chunk.split_to(chunk.len().min(WRITE_SLICE));
                    writer
                        .put(slice)
                        .await
                        .map_err(|e| BackupError::store(dest.describe(&object_key), e))?;
                }
                status.bytes_done.fetch_add(n as u64, Ordering::Relaxed);
                status.bytes_uploaded.fetch_add(n as u64, Ordering::Relaxed);
                self.throttle.spend(n as u64).await;
            }
        }
        .await;
        let nothing_new = extends.is_some() && part.size == 0;
        if streamed.is_err() || nothing_new {
            // Nothing becomes visible: the staged upload is dropped.
            let _ = writer.abort().await;
        }
        streamed?;
        let Some(base) = extends else {
            writer
                .shutdown()
                .await
                .map_err(|e| BackupError::io(PathBuf::from(dest.describe(&object_key)), e))?;
            dest.sync_object(&object_key).await?;
            let mut entry = FileEntry::whole(key, part.size, part.crc32c, mtime_ns, object_key);
            entry.blake3 = Some(file.digest());
            return Ok(entry);
        };
        let mut entry = base.clone();
        entry.mtime_ns = mtime_ns;
        if nothing_new {
            // Touched, not changed.
            status.files_reused.fetch_add(1, Ordering::Relaxed);
            return Ok(entry);
        }
        // A failed shutdown has already given up the upload (and `abort` after
        // a shutdown is not allowed).
        writer
            .shutdown()
            .await
            .map_err(|e| BackupError::io(PathBuf::from(dest.describe(&object_key)), e))?;
        dest.sync_object(&object_key).await?;
        entry.size += part.size;
        entry.crc32c = crc32c::crc32c_combine(entry.crc32c, part.crc32c, part.size as usize);
        entry.blake3 = Some(file.digest());
        entry.parts.push(part);
        Ok(entry)
    }
}

/// Reads a file in chunks on the blocking threads (hashing 4 MiB takes a few
/// milliseconds, too long for an async worker), feeding everything it reads
/// to a BLAKE3 hasher.
struct HashingReader {
    path: PathBuf,
    /// How many bytes it reads in all, and how many of them are left.
    limit: u64,
    left: u64,
    /// Lent to the blocking task while it reads.
    state: Option<(std::fs::File, blake3::Hasher)>,
}

impl HashingReader {
    /// Reads the first `limit` bytes of `path` (fewer if it is shorter).
    async fn open(path: &Path, limit: u64) -> Result<Self> {
        let p = path.to_path_buf();
        let file =
            blocking(move || std::fs::File::open(&p).map_err(|e| BackupError::io(&p, e))).await?;
        Ok(HashingReader {
            path: path.to_path_buf(),
            limit,
            left: limit,
            state: Some((file, blake3::Hasher::new())),
        })
    }

    /// The next at most `max` bytes (empty at the end of the file or of the
    /// limit) and their CRC-32C.
    async fn next_chunk(&mut self, max: usize) -> Result<(Vec<u8>, u32)> {
        let max = usize::try_from(self.left).map_or(max, |left| left.min(max));
        let (mut file, mut hasher) = self.state.take().ok_or_else(|| self.lost())?;
        let path = self.path.clone();
        let (file, hasher, buf, crc) = blocking(move || {
            use std::io::Read;
            let mut buf = Vec::with_capacity(max);
            (&mut file)
                .take(max as u64)
                .read_to_end(&mut buf)
                .map_err(|e| BackupError::io(&path, e))?;
            hasher.update(&buf);
            let crc = crc32c::crc32c(&buf);
            Ok((file, hasher, buf, crc))
        })
        .await?;
        self.state = Some((file, hasher));
        self.left -= buf.len() as u64;
        Ok((buf, crc))
    }

    /// Reads the first `len` bytes and returns their BLAKE3 (hex; None if the
    /// file is shorter); reading goes on after them.
    async fn hash_prefix(&mut self, len: u64) -> Result<Option<String>> {
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            let n = self.next_chunk(want).await?.0.len();
            if n == 0 {
                return Ok(None);
            }
            left -= n as u64;
        }
        Ok(Some(self.digest()))
    }

    /// Back to the start, with a new hasher.
    async fn rewind(&mut self) -> Result<()> {
        let (mut file, _) = self.state.take().ok_or_else(|| self.lost())?;
        let path = self.path.clone();
        let file = blocking(move || {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0))
                .map_err(|e| BackupError::io(&path, e))?;
            Ok(file)
        })
        .await?;
        self.state = Some((file, blake3::Hasher::new()));
        self.left = self.limit;
        Ok(())
    }

    /// BLAKE3 (hex) of what was read since the start.
    fn digest(&self) -> String {
        self.state
            .as_ref()
            .map(|(_, h)| h.finalize().to_hex().to_string())
            .unwrap_or_default()
    }

    fn lost(&self) -> BackupError {
        BackupError::Refused(format!(
            "reading {} failed earlier in this backup",
            self.path.display()
        ))
    }
}

/// Logs progress about every ten seconds, so a long backup shows it is moving.
struct Progress<'a> {
    status: &'a StatusBoard,
    id: &'a str,
    last: Mutex<Instant>,
}

impl<'a> Progress<'a> {
    fn new(status: &'a StatusBoard, id: &'a str) -> Self {
        Progress {
            status,
            id,
            last: Mutex::new(Instant::now()),
        }
    }

    fn tick(&self) {
        let mut last = self.last.lock();
        if last.elapsed() < Duration::from_secs(10) {
            return;
        }
        *last = Instant::now();
        let s = self.status.snapshot();
        tracing::info!(
            backup = self.id,
            files_done = s.files_done,
            files_total = s.files_total,
            bytes_done = s.bytes_done,
            bytes_total = s.bytes_total,
            "backup: progress"
        );
    }
}

/// Paces uploads to `max_bytes_per_second` (0: as fast as they go).
struct Throttle {
    rate: u64,
    started: Instant,
    sent: AtomicU64,
}

impl Throttle {
    fn new(rate: u64) -> Self {
        Throttle {
            rate,
            started: Instant::now(),
            sent: AtomicU64::new(0),
        }
    }

    async fn spend(&self, bytes: u64) {
        if self.rate == 0 {
            return;
        }
        let sent = self.sent.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let due = Duration::from_secs_f64(sent as f64 / self.rate as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// A root-relative path as an object key (`/`-separated, UTF-8).
fn rel_key(rel: &Path) -> Result<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    match parts {
        Some(p) => Ok(p.join("/")),
        None => Err(BackupError::Refused(format!(
            "{} is not a UTF-8 path and cannot be an object name",
            rel.display()
        ))),
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// fsyncs a file or directory (blocking).
pub(crate) fn fsync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| BackupError::io(path, e))
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(BackupError::Refused(format!("a backup task failed: {e}"))),
    }
}
