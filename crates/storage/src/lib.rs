//! Tidemark's storage engine.
//!
//! Tables live in a root directory as time-partitioned, append-only column
//! files. A commit (one or more tables, data and DDL) is one checksummed WAL
//! record, fsynced before it is acknowledged (group commit shares fsyncs), and
//! one atomic switch of each table's committed state. Readers take snapshots
//! that stay valid while writers go on. See `docs/storage-format.md` for the
//! bytes on disk and `docs/architecture.md` for the invariants.
//!
//! Module map:
//! - [`db`]: `Database` — open/recover, commit, snapshot, flush, housekeeping;
//! - `ops`: requests, resolved WAL ops, and applying them to files;
//! - `commit`: group commit and publication of durable states;
//! - `recovery`: loading the durable state and replaying the WAL;
//! - `housekeeping`: garbage and the pause switch;
//! - `checkpoint`: the cut that `CHECKPOINT CREATE` records; [`restore`]: the boot
//!   step that rewinds a copy to it;
//! - `wal`: segments and record encoding; `table`: `_meta`, `_txn`, column and
//!   symbol files; `registry`: `_tables`; `root`: layout and lock;
//! - `batch`: in-memory columns; `types`: column types and partitioning; `name`:
//!   name rules; `codec`/`fsutil`: file framing and durable file operations.

pub mod batch;
mod catalog;
mod checkpoint;
pub mod codec;
mod commit;
pub mod db;
pub mod error;
mod fsutil;
#[doc(hidden)]
pub mod fuzz;
mod housekeeping;
pub mod name;
mod ops;
pub mod options;
mod recovery;
mod registry;
pub mod restore;
mod root;
pub mod snapshot;
mod table;
pub mod types;
mod wal;

pub use batch::{Batch, Column, Values, VarData};
pub use db::{
    CheckpointStatus, CommitReceipt, Database, OpenReport, Released, StorageStats, Transaction,
};
pub use error::{ErrorKind, Result, StorageError};
pub use ops::{ColumnDef, PartitionSelector, Request, TableDef};
pub use options::{CommitMode, StorageOptions};
pub use restore::{RESTORE_TRIGGER, RestoreReport};
pub use snapshot::{PartitionInfo, Snapshot, TableReader};
pub use table::column::{ColumnChunk, Mapped};
pub use table::meta::{ColumnMeta, TableMeta};
pub use types::{ColumnType, PartitionBy};
