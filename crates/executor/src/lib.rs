//! Tidemark's statement executor.
//!
//! A [`Session`] parses SQL with `tidemark-parser`, turns DDL and INSERT into
//! storage requests (committed at once, or at COMMIT inside a transaction), and
//! runs queries on Apache DataFusion over a snapshot of the storage engine: a
//! table provider per table prunes partitions on the designated timestamp,
//! binary-searches row ranges inside them, reads only projected columns and
//! hands fixed-width columns to Arrow without copying (memory-mapped buffers).
//!
//! Modules: `session` (statement dispatch, transactions), `ddl`, `dml` (UPDATE,
//! DELETE as copy-on-write of partitions), `provider`
//! (DataFusion catalog and scans), `convert` (storage <-> Arrow), `system`
//! (`tables()`, `table_partitions()`), `types`, `error` (SQLSTATE mapping),
//! `stream` (query results as streams the server sends as they come),
//! `plan_cache` (prepared queries planned once, bound at every execution),
//! `temporal_join` (ASOF and LT JOIN: AST rewrite, plan node, operator).

pub mod activity;
mod array_arithmetic;
mod array_elem;
mod backup;
mod call_args;
mod catalog_indexes;
mod catalog_replacements;
mod catalog_rewrite;
mod catalog_types;
mod checkpoint;
mod column_names;
mod compensated_sum;
mod convert;
pub mod copy;
mod cursor;
mod ddl;
mod distinct_from;
mod dml;
mod double_array;
mod dynamic_timestamp;
pub mod error;
mod expr_rules;
mod fill;
mod finance;
mod float_compare;
mod generators;
mod heavy_planning;
mod implicit_group_by;
mod index_ddl;
mod insert;
pub mod interval_params;
pub mod json;
mod json_edit;
mod latest;
mod mode;
pub mod numeric;
mod parallel_aggregate;
pub mod params;
mod partition_query;
mod path_aggregates;
mod path_order;
mod pg_casts;
pub mod pg_catalog;
mod pg_functions;
mod pg_settings;
mod plan_cache;
mod prepare_sql;
mod provider;
mod questdb_array_shapes;
mod questdb_arrays;
mod questdb_functions;
mod questdb_time;
mod questdb_types;
mod rewrite;
mod rnd;
mod sample;
mod scan;
mod select_exists;
mod session;
mod set_config;
mod settings;
mod show;
mod stream;
mod symbol_grouping;
mod system;
mod temporal_join;
pub mod text;
mod timestamp_text;
pub mod types;
mod undefined;
mod uuid_values;
mod values;
mod views;

pub use copy::CopyOut;
pub use cursor::Motion;
pub use datafusion::arrow;
/// The query runtime type sessions share (see [`query_runtime`]).
pub use datafusion::execution::runtime_env::RuntimeEnv;
pub use error::{ExecError, Result};
pub use params::ParamValue;
pub use session::{Output, Prepared, Session, TxStatus, query_runtime};
pub use show::ServerParameter;
pub use stream::RowStream;
pub use tidemark_parser::Statement;

/// The PostgreSQL version Tidemark reports (`server_version`, `version()`):
/// drivers pick protocol features by it.
pub const PG_SERVER_VERSION: &str = "15.0";

/// The same version as a number (`server_version_num`: 15.0 is 150000).
pub const PG_SERVER_VERSION_NUM: &str = "150000";
