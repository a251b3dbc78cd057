//! Engine options (the server maps its configuration onto these).

use std::str::FromStr;
use std::time::Duration;

/// When a commit is acknowledged relative to the WAL reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Acknowledge after the commit's WAL record is fsynced (concurrent commits
    /// share one fsync). Nothing acknowledged is lost on power failure.
    #[default]
    Sync,
    /// Acknowledge after the WAL write; a background task fsyncs every
    /// `async_sync_interval`. A power failure loses at most that much; a process
    /// crash loses nothing.
    Async,
    /// Never fsync the WAL on commit; table files are synced only by housekeeping.
    /// A process crash loses nothing, a power failure may lose recent commits.
    NoSync,
}

impl FromStr for CommitMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sync" => Ok(CommitMode::Sync),
            "async" => Ok(CommitMode::Async),
            "nosync" => Ok(CommitMode::NoSync),
            other => Err(format!(
                "unknown commit mode {other:?}: expected sync, async or nosync"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StorageOptions {
    pub commit_mode: CommitMode,
    /// A WAL segment is closed and a new one started past this size.
    pub wal_segment_bytes: u64,
    /// How often housekeeping makes table files durable, recycles WAL segments
    /// and removes files nothing needs any more.
    pub housekeeping_interval: Duration,
    /// How often the WAL is fsynced in `async` mode.
    pub async_sync_interval: Duration,
    /// Run the housekeeping thread (tests turn it off to drive it by hand).
    pub background_housekeeping: bool,
    /// Housekeeping unlinks at most this many files and directories a second
    /// when it deletes what nothing needs any more (after a long checkpoint
    /// mode, hundreds of thousands), so it does not starve the foreground
    /// load (0: no limit).
    pub reclaim_paths_per_second: u64,
    /// Out-of-order rows rewrite the tail of a partition part; the untouched head
    /// is kept in place as its own part when it has at least this many rows
    /// (otherwise it is rewritten too). Smaller means less copying, more parts.
    pub split_min_rows: u64,
    /// During checkpoint mode, housekeeping logs a warning when free space on the
    /// root's file system is below this (0: never).
    pub checkpoint_free_space_warn_bytes: u64,
    /// The write buffer (rows committed but not yet in the column files) holds
    /// at most about this many bytes: past half of it the apply runs at once,
    /// past all of it writers wait for the apply.
    pub write_buffer_bytes: u64,
    /// How often the apply moves buffered rows into the column files. Longer
    /// means larger, better sorted writes and fewer rewrites for late rows;
    /// shorter means fewer rows for readers to merge and recovery to replay.
    pub apply_interval: Duration,
    /// Run the apply thread (tests turn it off to drive it by hand).
    pub background_apply: bool,
    /// The most column file mappings kept between queries (each is one entry in
    /// the process's memory map; 0 keeps none: every query maps its files).
    pub mapped_files: usize,
    /// A log backup ships the WAL: no segment is recycled before it has been
    /// shipped (see [`crate::Database::set_log_archived`]).
    pub keep_wal_for_log_backup: bool,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            commit_mode: CommitMode::Sync,
            wal_segment_bytes: 64 << 20,
            housekeeping_interval: Duration::from_millis(1000),
            async_sync_interval: Duration::from_millis(10),
            background_housekeeping: true,
            reclaim_paths_per_second: 5_000,
            split_min_rows: 16_384,
            checkpoint_free_space_warn_bytes: 1 << 30,
            write_buffer_bytes: 256 << 20,
            apply_interval: Duration::from_millis(500),
            background_apply: true,
            mapped_files: 4096,
            keep_wal_for_log_backup: false,
        }
    }
}
