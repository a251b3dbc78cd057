//! Continuous log backup: every durable WAL record goes to the destination, in
//! order, within `log_flush_interval_ms` of its commit.
//!
//! The archiver polls the WAL (a few times per interval), and once records have
//! waited half the interval, or a run reaches [`MAX_RUN_BYTES`], it reads them
//! as one [`LogRun`] and puts it at `log/<first seq>-<last seq>` (20 digits
//! each, so names sort in commit order). An object exists only complete, and
//! its run checks itself (header CRC, each record's CRC, consecutive commits).
//! While the log backup runs, the storage engine recycles no WAL segment the
//! archiver has not shipped, so an unreachable destination costs local disk,
//! never commits: the run is retried with back-off and the log catches up.
//!
//! Where to go on after a restart: `<root>/.backup/log` records the newest
//! shipped commit (and the destination it went to); without it the newest
//! object in `log/` tells. A destination whose log is ahead of this root's
//! commits belongs to another history (a restored copy): it is refused, and the
//! refusal is recorded there too, so that it stands after the copy's own
//! commits have passed the log's end (shipping them would splice two
//! histories). A root rewound from a copy (`_restore`) forgets the state it
//! was copied with: it is another history from then on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tidemark_storage::{Database, LogReader, LogRun, StorageError};

use crate::destination::Destination;
use crate::error::{BackupError, Result};
use crate::job::blocking;
use crate::state::state_dir;

pub(crate) const LOG_DIR: &str = "log";
/// A run is cut at about this size (a single larger commit goes whole).
pub(crate) const MAX_RUN_BYTES: usize = 16 << 20;
const LOG_STATE_FILE: &str = "log";
/// The longest wait between two tries of an upload that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The object holding commits `first..=last`.
pub(crate) fn log_key(first: u64, last: u64) -> String {
    format!("{LOG_DIR}/{first:020}-{last:020}")
}

/// The commits an object of `log/` holds, from its name (None: not a log run).
pub(crate) fn parse_log_key(name: &str) -> Option<(u64, u64)> {
    let (first, last) = name.rsplit('/').next()?.split_once('-')?;
    if first.len() != 20 || last.len() != 20 {
        return None;
    }
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some((first, last))
}

/// The runs in the destination's `log/`, ordered by their first commit.
pub(crate) async fn list_runs(dest: &Destination) -> Result<Vec<(u64, u64, String)>> {
    let prefix = dest.object(LOG_DIR)?;
    let mut runs: Vec<(u64, u64, String)> = dest
        .store()
        .list(Some(&prefix))
        .map_err(|e| BackupError::store(dest.describe(LOG_DIR), e))
        .try_filter_map(|meta| async move {
            let name = meta.location.to_string();
            Ok(parse_log_key(&name).map(|(f, l)| (f, l, log_key(f, l))))
        })
        .try_collect()
        .await?;
    runs.sort();
    Ok(runs)
}

/// How the log backup is doing, for `backup_status()` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStatus {
    /// Whether a log backup is configured and running.
    pub enabled: bool,
    /// The newest commit shipped (0: none yet).
    pub archived_seq: u64,
    /// Its commit time.
    pub archived_commit_at: Option<SystemTime>,
    /// How long the oldest commit not yet shipped has waited (zero when the
    /// destination has every durable commit).
    pub lag: Duration,
    pub objects_uploaded: u64,
    pub bytes_uploaded: u64,
    /// Why the last upload failed (cleared by the next that succeeds).
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Board {
    status: LogStatus,
    /// When the oldest unshipped commit was first seen (or committed).
    pending_since: Option<Instant>,
}

/// Shared between the archiver task and whoever reads its status.
#[derive(Debug, Default)]
pub(crate) struct LogBoard(Mutex<Board>);

impl LogBoard {
    pub(crate) fn snapshot(&self) -> LogStatus {
        let b = self.0.lock();
        let mut s = b.status.clone();
        s.lag = b.pending_since.map_or(Duration::ZERO, |t| t.elapsed());
        s
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct LogState {
    destination: String,
    archived_seq: u64,
    /// Why this root may not ship to `destination` (another history's log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

/// What `<root>/.backup/log` says about a destination.
enum Recorded {
    Shipped(u64),
    Refused(String),
}

fn log_state_path(root: &Path) -> PathBuf {
    state_dir(root).join(LOG_STATE_FILE)
}

fn load_log_state(root: &Path, destination: &str) -> Option<Recorded> {
    let data = std::fs::read(log_state_path(root)).ok()?;
    let state: LogState = serde_json::from_slice(&data).ok()?;
    let recorded = match state.refused {
        Some(why) => Recorded::Refused(why),
        None => Recorded::Shipped(state.archived_seq),
    };
    (state.destination == destination).then_some(recorded)
}

/// Not fsynced: after a power loss the archiver may ship a few commits again,
/// in a run that overlaps the last one, which restore takes in its stride.
fn save_log_state(
    root: &Path,
    destination: &str,
    archived_seq: u64,
    refused: Option<String>,
) -> Result<()> {
    let dir = state_dir(root);
    std::fs::create_dir_all(&dir).map_err(|e| BackupError::io(&dir, e))?;
    let path = log_state_path(root);
    let tmp = path.with_extension("tmp");
    let data = serde_json::to_vec(&LogState {
        destination: destination.to_string(),
        archived_seq,
        refused,
    })
    .map_err(|e| BackupError::Refused(format!("cannot encode the log backup state: {e}")))?;
    std::fs::write(&tmp, data).map_err(|e| BackupError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| BackupError::io(&path, e))
}

/// The running log backup (see the module documentation).
#[derive(Debug)]
pub(crate) struct LogArchiver {
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    handle: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct Shipper {
    db: Arc<Database>,
    dest: Destination,
    interval: Duration,
    board: Arc<LogBoard>,
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
}

impl LogArchiver {
    pub(crate) fn start(
        db: Arc<Database>,
        dest: Destination,
        interval: Duration,
        board: Arc<LogBoard>,
    ) -> LogArchiver {
        board.0.lock().status.enabled = true;
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(tokio::sync::Notify::new());
        let shipper = Shipper {
            db,
            dest,
            interval,
            board,
            stop: stop.clone(),
            wake: wake.clone(),
        };
        let handle = tokio::spawn(async move { shipper.run().await });
        LogArchiver {
            stop,
            wake,
            handle: Mutex::new(Some(handle)),
        }
    }

    /// Ships what is durable now, then stops (server shutdown).
    pub(crate) async fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        let handle = self.handle.lock().take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

impl Shipper {
    async fn run(self) {
        let mut backoff = Duration::from_millis(500);
        let mut reader = loop {
            match self.position().await {
                Ok(r) => break r,
                Err(e @ BackupError::Refused(_)) => {
                    tracing::error!(
                        destination = self.dest.url(),
                        "the log backup cannot run: {e}"
                    );
                    // Nothing will ship: the WAL is recycled as without a log backup.
                    self.db.set_log_archived(u64::MAX);
                    let mut b = self.board.0.lock();
                    b.status.enabled = false;
                    b.status.last_error = Some(e.to_string());
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        destination = self.dest.url(),
                        "the log backup cannot reach its destination, retrying in {} ms: {e}",
                        backoff.as_millis()
                    );
                    self.board.0.lock().status.last_error = Some(e.to_string());
                    if self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::info!(
            destination = self.dest.url(),
            from_commit = reader.next_seq(),
            interval_ms = self.interval.as_millis() as u64,
            "log backup running"
        );
        let tick = (self.interval / 10).clamp(Duration::from_millis(5), Duration::from_millis(100));
        loop {
            let stopping = self.stop.load(Ordering::Relaxed);
            let waiting = reader.has_more();
            let due = {
                let mut b = self.board.0.lock();
                if !waiting {
                    b.pending_since = None;
                } else if b.pending_since.is_none() {
                    b.pending_since = Some(Instant::now());
                }
                b.pending_since
                    .is_some_and(|t| t.elapsed() >= self.interval / 2)
            };
            if waiting && (due || stopping) {
                reader = match self.ship(reader).await {
                    Some(r) => r,
                    None => return,
                };
                continue;
            }
            if stopping {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Where shipping goes on: after the commit recorded locally, else after
    /// the destination's newest run, else from the oldest commit the WAL holds.
    async fn position(&self) -> Result<LogReader> {
        let root = self.db.root().to_path_buf();
        let url = self.dest.url().to_string();
        let rewound = self.db.open_report().restored.is_some();
        let local = blocking(move || {
            if rewound {
                let path = log_state_path(&root);
                if let Err(e) = std::fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(BackupError::io(&path, e));
                }
            }
            Ok(load_log_state(&root, &url))
        })
        .await?;
        let newest_commit = self.db.stats().visible_seq;
        let after = match local {
            Some(Recorded::Shipped(seq)) => seq,
            Some(Recorded::Refused(why)) => return Err(BackupError::Refused(why)),
            None => {
                let runs = list_runs(&self.dest).await?;
                match runs.iter().map(|r| r.1).max() {
                    Some(last) if last > newest_commit => {
                        let why = format!(
                            "the log in {} reaches commit {last}, past this database's newest \
                             commit {newest_commit} when the log backup first started here: it is \
                             another database's log (a restored copy?); give this server a \
                             destination of its own (the refusal is kept in {})",
                            self.dest.url(),
                            log_state_path(self.db.root()).display()
                        );
                        let (root, url, kept) = (
                            self.db.root().to_path_buf(),
                            self.dest.url().to_string(),
                            why.clone(),
                        );
                        blocking(move || save_log_state(&root, &url, 0, Some(kept))).await?;
                        return Err(BackupError::Refused(why));
                    }
                    Some(last) => last,
                    None => 0,
                }
            }
        };
        self.db.set_log_archived(after);
        self.board.0.lock().status.archived_seq = after;
        let mut reader = self.db.log_reader(after);
        if after == 0 {
            // A new log: it starts with the oldest commit the WAL still holds.
            reader.skip_to_oldest()?;
        }
        Ok(reader)
    }

    /// Reads and uploads a run, and more while they come full (a backlog);
    /// retries a failed upload with back-off until it succeeds or the server
    /// stops (None: stopped with commits unshipped).
    async fn ship(&self, mut reader: LogReader) -> Option<LogReader> {
        loop {
            let read_at = Instant::now();
            let (back, read) = match tokio::task::spawn_blocking(move || {
                let r = reader.read(MAX_RUN_BYTES);
                (reader, r)
            })
            .await
            {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("the log backup's reader failed: {e}");
                    return None;
                }
            };
            reader = back;
            let run = match read {
                Ok(Some(run)) => run,
                Ok(None) => return Some(reader),
                Err(StorageError::LogGap { wanted, oldest }) => {
                    tracing::error!(
                        "the log backup misses commits {wanted} to {}: they were recycled before \
                         it shipped them; point-in-time restore cannot cross them (a BACKUP \
                         DATABASE taken now starts a restorable history again)",
                        oldest.saturating_sub(1)
                    );
                    self.board.0.lock().status.last_error = Some(format!(
                        "commits {wanted} to {} were never shipped",
                        oldest.saturating_sub(1)
                    ));
                    let _ = reader.skip_to_oldest();
                    continue;
                }
                Err(e) => {
                    tracing::error!("the log backup cannot read the WAL: {e}");
                    self.board.0.lock().status.last_error = Some(e.to_string());
                    return if self.pause(Duration::from_secs(1)).await {
                        None
                    } else {
                        Some(reader)
                    };
                }
            };
            if !self.upload(&run).await {
                return None;
            }
            // Commits that came after this run was read have waited since then at
            // most: they go when due, in one run, unless a backlog fills runs.
            self.board.0.lock().pending_since = reader.has_more().then_some(read_at);
            if run.bytes().len() < MAX_RUN_BYTES {
                return Some(reader);
            }
        }
    }

    /// Puts `run`, retrying with back-off; false when the server stopped first.
    async fn upload(&self, run: &LogRun) -> bool {
        let key = log_key(run.first_seq(), run.last_seq());
        let mut backoff = Duration::from_millis(200);
        let mut tries = 0u32;
        loop {
            let put = match self.dest.object(&key) {
                Ok(object) => self
                    .dest
                    .store()
                    .put(&object, bytes::Bytes::copy_from_slice(run.bytes()).into())
                    .await
                    .map(|_| ())
                    .map_err(|e| BackupError::store(self.dest.describe(&key), e)),
                Err(e) => Err(e),
            };
            // Shipped once durable: only then may the WAL it holds be recycled.
            let put = match put {
                Ok(()) => self.dest.sync_object(&key).await,
                Err(e) => Err(e),
            };
            match put {
                Ok(()) => {
                    self.shipped(run);
                    if tries > 0 {
                        tracing::info!(
                            object = key,
                            tries,
                            "log backup caught up with the destination"
                        );
                    }
                    return true;
                }
                Err(e) => {
                    tries += 1;
                    if tries == 1 || tries.is_multiple_of(10) {
                        tracing::warn!(
                            tries,
                            "log backup upload failed, retrying in {} ms: {e}",
                            backoff.as_millis()
                        );
                    }
                    self.board.0.lock().status.last_error = Some(e.to_string());
                    // On shutdown one more try is all that is left.
                    if self.stop.load(Ordering::Relaxed) && tries > 1 {
                        tracing::warn!(
                            "log backup stopped with commits {} to {} not shipped: they go at the next start",
                            run.first_seq(),
                            run.last_seq()
                        );
                        return false;
                    }
                    if self.pause(backoff).await && tries > 1 {
                        return false;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Waits `d` or until woken; whether the server is stopping.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.wake.notified() => {}
        }
        self.stop.load(Ordering::Relaxed)
    }

    fn shipped(&self, run: &LogRun) {
        let last = run.last_seq();
        self.db.set_log_archived(last);
        if let Err(e) = save_log_state(self.db.root(), self.dest.url(), last, None) {
            tracing::warn!("cannot record the log backup's progress: {e}");
        }
        let mut b = self.board.0.lock();
        b.status.archived_seq = last;
        b.status.archived_commit_at = run
            .last_commit_micros()
            .and_then(|m| u64::try_from(m).ok())
            .map(|m| UNIX_EPOCH + Duration::from_micros(m));
        b.status.objects_uploaded += 1;
        b.status.bytes_uploaded += run.bytes().len() as u64;
        b.status.last_error = None;
    }
}
