//! Tidemark's storage engine.
//!
//! Tables live in a root directory as time-partitioned, append-only column
//! files. A commit (one or more tables, data and DDL) is one checksummed WAL
//! record, fsynced before it is acknowledged (group commit shares fsyncs), and
//! one atomic switch of the committed state. Rows of INSERT and COPY commits
//! go to an in-memory write buffer first; a background apply moves them into
//! the column files in large sorted batches. Readers take snapshots (files plus
//! buffer) that stay valid while writers go on. See `docs/storage-format.md`
//! for the bytes on disk and `docs/architecture.md` for the invariants.
//!
//! Module map:
//! - [`db`]: `Database` — open/recover, commit, snapshot, checkpoint mode;
//! - `ops`: requests, resolved WAL ops, applying them in memory or to files;
//! - `buffer`: the write buffer's runs; `merge`: merging sorted runs;
//! - `apply`: moving buffered rows into the column files;
//! - [`transaction`]: an open transaction's own view of its writes;
//! - `commit`: group commit and publication of durable states;
//! - `recovery`: loading the durable state and replaying the WAL;
//! - `housekeeping`: flushing table files, garbage and the pause switch;
//! - `checkpoint`: the cut that `CHECKPOINT CREATE` records; [`restore`]: the boot
//!   step that rewinds a copy to it;
//! - `wal`: segments and record encoding; `table`: `_meta`, `_txn`, column and
//!   symbol files; `registry`: `_tables`; `root`: layout and lock;
//! - `batch`: in-memory columns; `types`: column types and partitioning; `name`:
//!   name rules; `codec`/`fsutil`: file framing and durable file operations;
//!   [`sliced_io`]: bulk writes in slices the kernel copies fast.

mod apply;
pub mod batch;
mod buffer;
mod catalog;
mod checkpoint;
pub mod checkpoint_mode;
pub mod codec;
mod commit;
pub mod db;
mod dedup;
pub mod error;
mod fsutil;
#[doc(hidden)]
pub mod fuzz;
mod garbage;
mod housekeeping;
pub mod merge;
pub mod name;
mod ops;
pub mod options;
mod recovery;
mod registry;
pub mod restore;
mod root;
pub mod sliced_io;
pub mod snapshot;
mod table;
pub mod transaction;
mod ttl;
pub mod types;
pub mod view;
mod wal;

pub use batch::{Batch, Column, Values, VarData};
pub use checkpoint_mode::{CheckpointFiles, CheckpointPhase, CheckpointStatus, Released};
pub use db::{
    CommitReceipt, Database, DurableCommit, OpenReport, PendingCommit, StorageStats, Transaction,
    TxSavepoint,
};
pub use error::{ErrorKind, Result, StorageError};
pub use ops::{ColumnDef, IndexTarget, PartitionSelector, Request, TableDef};
pub use options::{CommitMode, StorageOptions};
pub use restore::{RESTORE_TRIGGER, RestoreReport};
pub use snapshot::{PartInfo, PartitionInfo, Piece, RowSource, ScanPlan, Snapshot, TableReader};
pub use table::column::ColumnChunk;
pub use table::files::Mapped;
pub use table::meta::{ColumnMeta, SymbolIndexMeta, TableMeta};
pub use table::newest_keys::PartNewestRows;
pub use table::symbol_index::PartIndex;
pub use types::{ColumnType, PartitionBy, Partitioning, Ttl, TtlUnit};
pub use view::{ViewDef, ViewMode};
pub use wal::archive::{LogReader, LogRecord, LogRun, LogSegmentWriter};
