//! The statements Tidemark parses itself, and the wrapper for standard SQL.

use datafusion_sql::sqlparser::ast;

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// Anything standard SQL can say (SELECT, INSERT, UPDATE, DELETE, BEGIN, SET, ...).
    Standard(Box<ast::Statement>),
    CreateTable(Box<CreateTable>),
    DropTable {
        names: Vec<String>,
        if_exists: bool,
    },
    /// QuestDB's `DROP ALL TABLES`: every table, in one commit.
    DropAllTables,
    /// QuestDB's `VACUUM TABLE t` (and PostgreSQL's `VACUUM [t]`): housekeeping
    /// already removes files no version needs, so this checks the table and
    /// returns.
    Vacuum {
        table: Option<String>,
    },
    Truncate {
        names: Vec<String>,
    },
    RenameTable {
        from: String,
        to: String,
    },
    AlterTable {
        table: String,
        op: Box<AlterTable>,
    },
    /// A query with `SAMPLE BY ...` (the clause cut out of it).
    Sample {
        query: Box<ast::Query>,
        sample: crate::sample::SampleBy,
    },
    /// A query with `LATEST ON ts PARTITION BY ...` (the clause cut out of it).
    Latest {
        query: Box<ast::Query>,
        latest: crate::latest::LatestOn,
    },
    /// `CHECKPOINT CREATE | RELEASE` (`SNAPSHOT PREPARE | COMPLETE`), or plain
    /// `CHECKPOINT`.
    Checkpoint(CheckpointAction),
    /// `BACKUP DATABASE` or `BACKUP ABORT`.
    Backup(BackupAction),
    /// `REINDEX`: rebuild symbol indexes from the stored keys.
    Reindex(ReindexTarget),
    /// QuestDB's `CANCEL QUERY id`: stop the running statement `id` of
    /// `query_activity()`.
    CancelQuery {
        id: i64,
    },
    /// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS] name AS query` (QuestDB's
    /// `AS (query)` too) and QuestDB's `ALTER VIEW name AS (query)`.
    CreateView {
        name: String,
        /// The query's text as written (without QuestDB's enclosing
        /// parentheses); it parses as one query (`Standard`, `Sample` or
        /// `Latest`).
        definition: String,
        mode: ViewMode,
    },
    /// `PREPARE name [(types)] AS statement`.
    Prepare {
        name: String,
        /// The statement's text as written; it parses as one statement.
        statement: String,
    },
    /// QuestDB's `COMPILE VIEW name`: plan the view's query to check it.
    CompileView {
        name: String,
    },
    /// `FETCH` / `MOVE` on a cursor (the name as PostgreSQL folds it).
    Fetch {
        cursor: String,
        count: FetchCount,
        move_only: bool,
    },
}

/// How `CREATE VIEW` treats an existing view of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMode {
    Create,
    IfNotExists,
    OrReplace,
    /// `ALTER VIEW ... AS`: the view must exist.
    Alter,
}

/// What a REINDEX rebuilds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReindexTarget {
    /// QuestDB's `REINDEX TABLE t [COLUMN c] [PARTITION p] [LOCK EXCLUSIVE]`
    /// and PostgreSQL's `REINDEX TABLE t`: every index of the table, or the
    /// one of column `c`.
    Table {
        table: String,
        column: Option<String>,
    },
    /// PostgreSQL's `REINDEX INDEX name`.
    Index(String),
}

/// How far a FETCH or MOVE goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchCount {
    Rows(u64),
    All,
    /// `RELATIVE n`: skips n - 1 rows and returns the nth.
    Relative(u64),
    /// A backward or absolute motion (its keyword).
    Unsupported(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupAction {
    /// Start a backup to the configured destination, or resume the unfinished one.
    Database,
    /// Stop the running (or failed) backup and release its checkpoint.
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointAction {
    Create,
    Release,
    /// Plain `CHECKPOINT` (PostgreSQL's): every committed row into the table
    /// files, made durable.
    Flush,
}

/// Column types as Tidemark knows them; PostgreSQL and QuestDB spellings map here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Boolean,
    SmallInt,
    Int,
    BigInt,
    Real,
    Double,
    Timestamp,
    /// `timestamptz`, `timestamp with time zone`.
    TimestampTz,
    Date,
    Varchar,
    Symbol,
    Uuid,
    Binary,
    Json,
    Jsonb,
    /// `NUMERIC(precision, scale)` / `DECIMAL(...)`; bare `NUMERIC` is
    /// [`SqlType::DEFAULT_NUMERIC`].
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// QuestDB's array type: `DOUBLE[]`, `DOUBLE[][]`, ... (`dims` pairs of brackets).
    DoubleArray {
        dims: u8,
    },
    /// QuestDB's `TIMESTAMP_NS`: a timestamp with nanoseconds.
    TimestampNs,
}

impl SqlType {
    /// The largest NUMERIC precision: 38 digits fit the 16 bytes a value is stored in.
    pub const MAX_NUMERIC_PRECISION: u8 = 38;
    /// The most dimensions of a `DOUBLE[]` column (PostgreSQL's limit for arrays).
    pub const MAX_ARRAY_DIMS: u8 = 6;
    /// `NUMERIC` without a precision: PostgreSQL's is unbounded; Tidemark's is the
    /// widest precision with 10 decimals, the type DataFusion gives `::numeric`.
    pub const DEFAULT_NUMERIC: SqlType = SqlType::Decimal {
        precision: 38,
        scale: 10,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionUnit {
    None,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// `TTL n UNIT`: `count` 0 means no TTL (`SET TTL 0` removes one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlSpec {
    pub count: u32,
    pub unit: TtlUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlUnit {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub data_type: SqlType,
    pub not_null: bool,
    /// Declared `PRIMARY KEY` on the column itself.
    pub primary_key: bool,
    /// QuestDB's `SYMBOL INDEX`: the column gets a symbol index.
    pub indexed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub name: String,
    pub if_not_exists: bool,
    /// Empty for `CREATE TABLE ... AS (query)`.
    pub columns: Vec<ColumnSpec>,
    pub as_query: Option<Box<ast::Query>>,
    pub timestamp: Option<String>,
    pub partition_by: Option<PartitionUnit>,
    pub ttl: Option<TtlSpec>,
    /// `DEDUP UPSERT KEYS (ts, k, ...)`; empty without.
    pub dedup_keys: Vec<String>,
    /// The table constraint `[CONSTRAINT name] PRIMARY KEY (a, b, ...)`, or the
    /// columns declared `PRIMARY KEY` (more than one is refused when executed).
    pub primary_key: Vec<String>,
    /// `CREATE TABLE t (LIKE other)`: the table whose definition is copied.
    pub like: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlterTable {
    /// `ADD COLUMN a T [, b T ...]` (QuestDB's list; PostgreSQL's
    /// `ADD COLUMN a T, ADD COLUMN b T` too): one commit.
    AddColumn {
        columns: Vec<ColumnSpec>,
        if_not_exists: bool,
    },
    DropColumn {
        name: String,
        if_exists: bool,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTo {
        to: String,
    },
    /// `DROP PARTITION LIST '2026-11-20', ...`
    DropPartitionList {
        names: Vec<String>,
    },
    /// `DROP PARTITION WHERE <condition on the designated timestamp>`
    DropPartitionWhere {
        condition: Box<ast::Expr>,
    },
    /// `SET TTL n UNIT`
    SetTtl {
        ttl: TtlSpec,
    },
    /// `DEDUP ENABLE UPSERT KEYS (ts, k, ...)`, or with no keys `DEDUP DISABLE`.
    SetDedup {
        keys: Vec<String>,
    },
    /// QuestDB's `ALTER COLUMN c ADD INDEX [CAPACITY n]`.
    AddIndex {
        column: String,
    },
    /// QuestDB's `ALTER COLUMN c DROP INDEX`.
    DropIndex {
        column: String,
    },
    /// QuestDB's table settings that mean nothing here (`SET PARAM
    /// maxUncommittedRows = n`, `SET TYPE [BYPASS] WAL`, `RESUME WAL`): the
    /// table must exist; nothing changes.
    Accepted,
}
