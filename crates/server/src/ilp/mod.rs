//! Ingest over the InfluxDB line protocol (ILP): `lines` parses a body,
//! `rows` turns its lines into one transaction (creating tables and columns as
//! the data asks), and [`Ingest`] commits it. The HTTP endpoints (`/write`,
//! `/api/v2/write`) and the TCP listener (`tcp`) are the two ways in.

pub(crate) mod lines;
mod rows;
pub(crate) mod tcp;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tidemark_storage::{Database, ErrorKind, PartitionBy, PendingCommit, StorageError};

use tokio::sync::oneshot;

use crate::metrics::{IlpProtocol, Metrics, Rejection};
pub(crate) use lines::Precision;
pub(crate) use rows::SchemaRules;

/// Why a request (or a TCP batch) was not stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IlpError {
    /// A line is not line protocol, or does not fit the table it names.
    #[error("line {line}: {reason}: {text}")]
    Line {
        line: usize,
        text: String,
        reason: String,
        rejection: Rejection,
    },
    /// The engine refused the transaction.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The blocking pool went away (the server is stopping).
    #[error("the server is stopping")]
    Stopping,
    /// An earlier write this one was to follow failed (see [`Ingest::start`]).
    #[error("an earlier batch of this connection was not stored")]
    Abandoned,
}

impl IlpError {
    /// A line that is not line protocol.
    pub(crate) fn line(line: usize, text: &str, reason: impl Into<String>) -> IlpError {
        IlpError::Line {
            line,
            text: lines::quote(text),
            reason: reason.into(),
            rejection: Rejection::Parse,
        }
    }

    /// A line that does not fit the table it names (a type conflict, a missing
    /// column or table, a value out of range).
    pub(crate) fn schema(line: usize, text: &str, reason: impl Into<String>) -> IlpError {
        IlpError::Line {
            line,
            text: lines::quote(text),
            reason: reason.into(),
            rejection: Rejection::Schema,
        }
    }

    /// What `/metrics` counts this as.
    pub(crate) fn rejection(&self) -> Rejection {
        match self {
            IlpError::Line { rejection, .. } => *rejection,
            IlpError::Storage(e) if is_client_error(e) => Rejection::Schema,
            IlpError::Storage(_) | IlpError::Stopping | IlpError::Abandoned => Rejection::Storage,
        }
    }

    /// Whether the client sent something wrong (HTTP 400) rather than the
    /// server failing (HTTP 5xx).
    pub(crate) fn is_client_error(&self) -> bool {
        match self {
            IlpError::Line { .. } => true,
            IlpError::Storage(e) => is_client_error(e),
            IlpError::Stopping | IlpError::Abandoned => false,
        }
    }
}

fn is_client_error(e: &StorageError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidData
            | ErrorKind::InvalidName
            | ErrorKind::NotNullViolation
            | ErrorKind::UndefinedColumn
            | ErrorKind::UndefinedTable
            | ErrorKind::DuplicateObject
    )
}

/// The `[ilp]` settings the write path needs.
#[derive(Debug, Clone)]
pub(crate) struct IlpOptions {
    pub(crate) rules: SchemaRules,
    pub(crate) max_line_bytes: usize,
}

/// What one committed request stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) lines: u64,
    pub(crate) rows: u64,
}

/// Commits line-protocol writes: shared by every HTTP request and TCP connection.
#[derive(Debug)]
pub(crate) struct Ingest {
    db: Arc<Database>,
    options: IlpOptions,
    metrics: Arc<Metrics>,
    /// Held by writes that create tables or columns, so that two requests
    /// adding the same column one after the other see each other's change.
    schema_changes: tokio::sync::Mutex<()>,
}

/// How often a write is planned again when a concurrent DDL (a SQL `DROP`,
/// another writer's new column) got in between planning and committing.
const SCHEMA_RETRIES: usize = 5;

impl Ingest {
    pub(crate) fn new(db: Arc<Database>, options: IlpOptions, metrics: Arc<Metrics>) -> Self {
        Ingest {
            db,
            options,
            metrics,
            schema_changes: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn options(&self) -> &IlpOptions {
        &self.options
    }

    /// Parses `body` and commits all of its lines as one transaction, or none of
    /// them; returns once the commit is durable.
    pub(crate) async fn write(
        &self,
        protocol: IlpProtocol,
        body: &[u8],
        precision: Precision,
    ) -> Result<Stored, IlpError> {
        let started = self.start(protocol, body, precision, &mut None).await?;
        self.finish(protocol, started).await
    }

    /// Parses `body` and decides its commit (all of its lines or none); the
    /// rows are stored once [`Ingest::finish`] says the commit is durable.
    /// A connection can read and parse its next lines meanwhile.
    ///
    /// With `after`, the commit is decided only after that earlier write's
    /// commit was (`true`), so that one connection's writes commit in order;
    /// when the earlier write failed (`false`), this one is abandoned. The
    /// lines are parsed before waiting, in parallel with the earlier commit.
    pub(crate) async fn start(
        &self,
        protocol: IlpProtocol,
        body: &[u8],
        precision: Precision,
        after: &mut Option<oneshot::Receiver<bool>>,
    ) -> Result<Started, IlpError> {
        self.metrics.ilp_received(protocol, body.len() as u64);
        let result = match lines::utf8(body) {
            Ok(text) => self.start_commit(text, precision, after).await,
            Err(e) => Err(e),
        };
        match &result {
            Err(IlpError::Abandoned) | Ok(_) => {}
            Err(e) => self.metrics.ilp_rejected(protocol, e.rejection()),
        }
        result
    }

    /// Waits until the commit of `started` is durable.
    pub(crate) async fn finish(
        &self,
        protocol: IlpProtocol,
        started: Started,
    ) -> Result<Stored, IlpError> {
        let result = match started.pending {
            Some(pending) => pending.durable().await.map(|_| ()).map_err(IlpError::from),
            None => Ok(()),
        };
        match result {
            Ok(_) => {
                let stored = started.stored;
                self.metrics.ilp_stored(protocol, stored.lines, stored.rows);
                Ok(stored)
            }
            Err(e) => {
                self.metrics.ilp_rejected(protocol, e.rejection());
                Err(e)
            }
        }
    }

    async fn start_commit(
        &self,
        body: &str,
        precision: Precision,
        after: &mut Option<oneshot::Receiver<bool>>,
    ) -> Result<Started, IlpError> {
        let now = now_micros();
        let mut schema_guard = None;
        let mut attempt = 0;
        loop {
            let planned = rows::plan(
                body,
                self.options.max_line_bytes,
                &self.db.snapshot(),
                &self.options.rules,
                precision,
                now,
            )?;
            if let Some(earlier) = after.take()
                && !earlier.await.unwrap_or(false)
            {
                return Err(IlpError::Abandoned);
            }
            let stored = Stored {
                lines: planned.lines,
                rows: planned.rows,
            };
            if planned.lines == 0 {
                return Ok(Started {
                    pending: None,
                    stored,
                });
            }
            if planned.changes_schema && schema_guard.is_none() {
                // Plan again under the lock: another writer may have just added
                // what this one was about to add.
                schema_guard = Some(self.schema_changes.lock().await);
                continue;
            }
            let db = self.db.clone();
            let committed = tokio::task::spawn_blocking(move || db.start_commit(planned.tx))
                .await
                .map_err(|_| IlpError::Stopping)?;
            match committed {
                Ok(pending) => {
                    return Ok(Started {
                        pending: Some(pending),
                        stored,
                    });
                }
                Err(e)
                    if attempt < SCHEMA_RETRIES
                        && matches!(
                            e.kind(),
                            ErrorKind::DuplicateObject
                                | ErrorKind::UndefinedTable
                                | ErrorKind::UndefinedColumn
                        ) =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(1 << attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A write whose commit is decided but maybe not yet durable.
#[derive(Debug)]
pub(crate) struct Started {
    /// `None` when the body held no data lines.
    pending: Option<PendingCommit>,
    stored: Stored,
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// `ilp.partition_by` (and `/imp`'s `partitionBy`): NONE, HOUR, DAY, WEEK,
/// MONTH or YEAR.
pub(crate) fn parse_partition_by(text: &str) -> Option<PartitionBy> {
    PartitionBy::from_name(text)
}
