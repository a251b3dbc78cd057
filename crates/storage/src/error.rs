//! The storage engine's one error type.
//!
//! Every variant says *what* went wrong and *where* (file, table, column), so
//! that an operator reading a log line or a client reading an error message
//! can act on it. The executor maps these to SQLSTATEs with [`StorageError::kind`].

use std::path::PathBuf;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A coarse classification that upper layers map to protocol error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named table does not exist.
    UndefinedTable,
    /// The named column does not exist.
    UndefinedColumn,
    /// Another named object (an index) does not exist.
    UndefinedObject,
    /// A table (or column) with that name already exists.
    DuplicateObject,
    /// A name that cannot be used for a table or column.
    InvalidName,
    /// A request that contradicts the schema (types, designated timestamp).
    InvalidData,
    /// A NULL for a NOT NULL column (the designated timestamp among them).
    NotNullViolation,
    /// A request that is not allowed in the current state.
    InvalidState,
    /// The disk is full.
    DiskFull,
    /// A file on disk is damaged or not what it should be.
    Corrupted,
    /// Any other I/O failure.
    Io,
    /// Another process holds the root.
    Locked,
    /// The name is of another kind of object (a view where a table was meant).
    WrongObjectType,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An fsync failed. Unlike a failed write, this cannot be retried: the kernel
    /// may have dropped the dirty pages, so nothing written since can be trusted.
    #[error("fsync failed on {path}: {source}")]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {reason}")]
    Corrupted { path: PathBuf, reason: String },

    #[error(
        "{path}: storage format version {found}.x is not supported by this build (it reads {supported}.x)"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },

    #[error("root {root} is in use by another Tidemark process (pid {pid})")]
    Locked { root: PathBuf, pid: String },

    #[error("table \"{0}\" does not exist")]
    TableNotFound(String),

    #[error("table \"{0}\" already exists")]
    TableExists(String),

    #[error("view \"{0}\" does not exist")]
    ViewNotFound(String),

    #[error("view \"{0}\" already exists")]
    ViewExists(String),

    #[error("\"{name}\" is {is}: use {hint}")]
    WrongObjectType {
        name: String,
        is: &'static str,
        hint: &'static str,
    },

    #[error("column \"{column}\" of table \"{table}\" does not exist")]
    ColumnNotFound { table: String, column: String },

    #[error("column \"{column}\" of table \"{table}\" already exists")]
    ColumnExists { table: String, column: String },

    #[error("index \"{0}\" already exists")]
    IndexExists(String),

    #[error("index \"{0}\" does not exist")]
    IndexNotFound(String),

    #[error("column \"{column}\" of table \"{table}\" is already indexed (index \"{index}\")")]
    AlreadyIndexed {
        table: String,
        column: String,
        index: String,
    },

    #[error("column \"{column}\" of table \"{table}\" has no index")]
    NotIndexed { table: String, column: String },

    #[error(
        "column \"{column}\" of table \"{table}\" is {column_type}: only SYMBOL columns can be indexed"
    )]
    NotIndexable {
        table: String,
        column: String,
        column_type: String,
    },

    #[error("invalid name \"{name}\": {reason}")]
    InvalidName { name: String, reason: String },

    #[error("{0}")]
    InvalidData(String),
    #[error("null value in {what} \"{column}\" of table \"{table}\" violates not-null constraint")]
    NotNull {
        /// "column" or "designated timestamp column".
        what: &'static str,
        column: String,
        table: String,
    },

    #[error("{0}")]
    InvalidState(String),

    #[error("partition {partition} of table \"{table}\" does not exist")]
    PartitionNotFound { table: String, partition: String },

    #[error("the database is closed after an earlier write failure: {0}")]
    Poisoned(String),

    #[error("a checkpoint is already in progress (created {since}); CHECKPOINT RELEASE ends it")]
    CheckpointInProgress { since: String },

    /// The write buffer is full and moving it into the column files fails: the
    /// writer is refused instead of waiting without end.
    #[error("the write buffer is full and writing it to the table files fails: {reason}")]
    ApplyFailed { reason: String, disk_full: bool },

    /// The log backup asked for commits the WAL no longer holds.
    #[error(
        "the WAL no longer holds commit {wanted} (its oldest is {oldest}): those commits were recycled before the log backup took them"
    )]
    LogGap { wanted: u64, oldest: u64 },
}

impl StorageError {
    pub(crate) fn sync(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Sync {
            path: path.into(),
            source,
        }
    }

    /// A write that failed for want of space: nothing was lost, and the same work
    /// can succeed once space is freed.
    pub fn is_retryable_disk_full(&self) -> bool {
        matches!(self, StorageError::Io { source, .. } if is_disk_full(source))
    }

    /// The process may not read or write a file or directory of the root
    /// (typically a bind-mounted directory owned by another user).
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            StorageError::Io { source, .. } | StorageError::Sync { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupted(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        StorageError::Corrupted {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::Io { source, .. } | StorageError::Sync { source, .. }
                if is_disk_full(source) =>
            {
                ErrorKind::DiskFull
            }
            StorageError::ApplyFailed {
                disk_full: true, ..
            } => ErrorKind::DiskFull,
            StorageError::Io { .. }
            | StorageError::Sync { .. }
            | StorageError::Poisoned(_)
            | StorageError::ApplyFailed { .. } => ErrorKind::Io,
            StorageError::Corrupted { .. } | StorageError::UnsupportedVersion { .. } => {
                ErrorKind::Corrupted
            }
            StorageError::Locked { .. } => ErrorKind::Locked,
            StorageError::TableNotFound(_)
            | StorageError::ViewNotFound(_)
            | StorageError::PartitionNotFound { .. } => ErrorKind::UndefinedTable,
            StorageError::WrongObjectType { .. } => ErrorKind::WrongObjectType,
            StorageError::TableExists(_)
            | StorageError::ViewExists(_)
            | StorageError::ColumnExists { .. }
            | StorageError::IndexExists(_)
            | StorageError::AlreadyIndexed { .. } => ErrorKind::DuplicateObject,
            StorageError::IndexNotFound(_) | StorageError::NotIndexed { .. } => {
                ErrorKind::UndefinedObject
            }
            StorageError::ColumnNotFound { .. } => ErrorKind::UndefinedColumn,
            StorageError::InvalidName { .. } => ErrorKind::InvalidName,
            StorageError::InvalidData(_) | StorageError::NotIndexable { .. } => {
                ErrorKind::InvalidData
            }
            StorageError::NotNull { .. } => ErrorKind::NotNullViolation,
            StorageError::InvalidState(_)
            | StorageError::CheckpointInProgress { .. }
            | StorageError::LogGap { .. } => ErrorKind::InvalidState,
        }
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(nix::libc::ENOSPC)
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
