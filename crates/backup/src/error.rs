//! The backup crate's error. The executor maps each kind to a SQLSTATE
//! (`ErrorKind`), the CLI prints the message.

use std::path::PathBuf;

use tidemark_storage::StorageError;

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "no backup destination is configured: set `destination` in the [backup] section of \
         conf/server.toml (or TIDEMARK_BACKUP_DESTINATION), for example \
         file:///var/backups/tidemark or s3://bucket/prefix"
    )]
    NotConfigured,
    #[error("backup destination {url:?}: {reason}")]
    BadDestination { url: String, reason: String },
    #[error(
        "backup {id} is already running: backup_status() shows its progress, BACKUP ABORT stops it"
    )]
    AlreadyRunning { id: String },
    #[error(
        "a checkpoint is in progress (CHECKPOINT CREATE, {since}): BACKUP DATABASE takes a \
         checkpoint of its own; run CHECKPOINT RELEASE first"
    )]
    CheckpointInProgress { since: String },
    #[error(
        "backup {id} holds the checkpoint: BACKUP ABORT ends it, or wait for the backup to finish"
    )]
    CheckpointHeld { id: String },
    #[error("object {object}: {source}")]
    Store {
        object: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An object of the destination is not what its manifest says.
    #[error("object {object} is damaged: {reason}")]
    Corrupt { object: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be carried out as asked (a restore onto a root that
    /// is not empty, ...).
    #[error("{0}")]
    Refused(String),
    #[error("the backup was aborted (BACKUP ABORT)")]
    Aborted,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What kind of failure, for SQLSTATEs and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Configuration or state stands in the way (55000).
    InvalidState,
    /// The destination or a local file could not be read or written (58030).
    Io,
    /// Damaged data (XX001).
    Corrupted,
    /// No such backup (42704).
    NotFound,
    /// Bad configuration value (22023).
    InvalidParameter,
}

impl BackupError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackupError::NotConfigured
            | BackupError::AlreadyRunning { .. }
            | BackupError::CheckpointInProgress { .. }
            | BackupError::CheckpointHeld { .. }
            | BackupError::Refused(_)
            | BackupError::Aborted => ErrorKind::InvalidState,
            BackupError::BadDestination { .. } => ErrorKind::InvalidParameter,
            BackupError::Store { .. } | BackupError::Io { .. } => ErrorKind::Io,
            BackupError::Corrupt { .. } => ErrorKind::Corrupted,
            BackupError::NotFound(_) => ErrorKind::NotFound,
            BackupError::Storage(e) => match e.kind() {
                tidemark_storage::ErrorKind::Corrupted => ErrorKind::Corrupted,
                tidemark_storage::ErrorKind::InvalidState => ErrorKind::InvalidState,
                _ => ErrorKind::Io,
            },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BackupError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn store(object: impl std::fmt::Display, source: object_store::Error) -> Self {
        BackupError::Store {
            object: object.to_string(),
            source,
        }
    }
}
