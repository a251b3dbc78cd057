//! Who is connected and what each connection runs, for `pg_stat_activity`
//! and QuestDB's `query_activity()`, and cancelling another connection's
//! statement: `CANCEL QUERY id`, `cancel_query(id)`, `pg_cancel_backend(pid)`.
//!
//! The server joins each connection to the [`ActivityBoard`] with a way to
//! cancel what it runs (the same as a protocol CancelRequest), and marks each
//! statement from its start until its last row has been sent
//! ([`RunningQuery`]). A cancel stops the statement with 57014, as a
//! CancelRequest does; nothing else of the connection changes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// What a connection tells about itself when it joins.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    pub user: String,
    pub database: String,
    pub application: String,
    pub client: Option<SocketAddr>,
}

/// Stops the statement a connection runs (if any).
pub type CancelHook = Arc<dyn Fn() + Send + Sync>;

struct Connection {
    info: ConnectionInfo,
    started: i64,
    /// The running statement's id, if one runs.
    running: Option<i64>,
    /// The last statement's text (PostgreSQL shows it while idle too),
    /// shared with the statement, not copied.
    query: Arc<str>,
    query_start: Option<i64>,
    state_change: i64,
    in_transaction: bool,
    cancelled: bool,
    cancel: CancelHook,
}

/// The server's connections and their statements.
#[derive(Default)]
pub struct ActivityBoard {
    connections: Mutex<BTreeMap<i32, Connection>>,
    next_query: AtomicI64,
}

impl std::fmt::Debug for ActivityBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityBoard").finish_non_exhaustive()
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl ActivityBoard {
    fn connections(&self) -> MutexGuard<'_, BTreeMap<i32, Connection>> {
        // A panic while the lock was held leaves plain data behind: keep going.
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lists connection `pid` until the returned membership is dropped.
    pub fn join(
        self: &Arc<Self>,
        pid: i32,
        info: ConnectionInfo,
        cancel: CancelHook,
    ) -> Membership {
        let now = now_micros();
        self.connections().insert(
            pid,
            Connection {
                info,
                started: now,
                running: None,
                query: Arc::from(""),
                query_start: None,
                state_change: now,
                in_transaction: false,
                cancelled: false,
                cancel,
            },
        );
        Membership {
            board: Arc::clone(self),
            pid,
        }
    }

    /// Marks `query` running on connection `pid` until the returned value is
    /// dropped.
    pub fn start(self: &Arc<Self>, pid: i32, query: Arc<str>) -> RunningQuery {
        let id = self.next_query.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(c) = self.connections().get_mut(&pid) {
            let now = now_micros();
            c.running = Some(id);
            c.query = query;
            c.query_start = Some(now);
            c.state_change = now;
            c.cancelled = false;
        }
        RunningQuery {
            board: Arc::clone(self),
            pid,
            id,
        }
    }

    /// Whether connection `pid` is inside a transaction between statements.
    pub fn set_in_transaction(&self, pid: i32, in_transaction: bool) {
        if let Some(c) = self.connections().get_mut(&pid) {
            c.in_transaction = in_transaction;
        }
    }

    /// Cancels running statement `id`; false when no statement of that id runs.
    /// `allowed` says whether the caller may cancel a statement of that user.
    pub fn cancel_query(&self, id: i64, allowed: impl Fn(&str) -> bool) -> bool {
        let hook = {
            let mut connections = self.connections();
            let Some(c) = connections
                .values_mut()
                .find(|c| c.running == Some(id) && allowed(&c.info.user))
            else {
                return false;
            };
            c.cancelled = true;
            c.state_change = now_micros();
            Arc::clone(&c.cancel)
        };
        hook();
        true
    }

    /// Cancels what connection `pid` runs; false when there is no such
    /// connection (PostgreSQL's `pg_cancel_backend` is true for an idle one).
    pub fn cancel_backend(&self, pid: i32, allowed: impl Fn(&str) -> bool) -> bool {
        let hook = {
            let mut connections = self.connections();
            let Some(c) = connections.get_mut(&pid).filter(|c| allowed(&c.info.user)) else {
                return false;
            };
            if c.running.is_some() {
                c.cancelled = true;
                c.state_change = now_micros();
            }
            Arc::clone(&c.cancel)
        };
        hook();
        true
    }

    fn finish(&self, pid: i32, id: i64) {
        if let Some(c) = self.connections().get_mut(&pid)
            && c.running == Some(id)
        {
            c.running = None;
            c.state_change = now_micros();
        }
    }

    fn leave(&self, pid: i32) {
        self.connections().remove(&pid);
    }
}

/// A connection's place on the board, given up when dropped.
#[derive(Debug)]
pub struct Membership {
    board: Arc<ActivityBoard>,
    pid: i32,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.board.leave(self.pid);
    }
}

/// A statement on the board, done when dropped.
#[derive(Debug)]
pub struct RunningQuery {
    board: Arc<ActivityBoard>,
    pid: i32,
    id: i64,
}

impl Drop for RunningQuery {
    fn drop(&mut self) {
        self.board.finish(self.pid, self.id);
    }
}

/// A session's view of the board: its own connection and user.
#[derive(Clone, Debug)]
pub(crate) struct SessionActivity {
    pub(crate) board: Arc<ActivityBoard>,
    pub(crate) pid: i32,
    pub(crate) user: String,
    /// A read-only user may cancel only its own statements.
    pub(crate) read_only: bool,
}

impl SessionActivity {
    pub(crate) fn may_cancel(&self, owner: &str) -> bool {
        !self.read_only || owner == self.user
    }
}

/// The table function `pg_stat_activity` is read from (`catalog_rewrite.rs`).
pub(crate) const PG_STAT_ACTIVITY: &str = "tidemark_pg_stat_activity";

/// Registers `pg_backend_pid()`, `query_activity()`, `cancel_query(id)`,
/// `pg_cancel_backend(pid)` and [`PG_STAT_ACTIVITY`] for a session.
pub(crate) fn register(ctx: &SessionContext, activity: &SessionActivity) {
    ctx.register_udf(ScalarUDF::from(BackendPid {
        pid: activity.pid,
        signature: Signature::exact(vec![], Volatility::Stable),
    }));
    ctx.register_udtf(
        "query_activity",
        Arc::new(QueryActivity(Arc::clone(&activity.board))),
    );
    ctx.register_udtf(
        PG_STAT_ACTIVITY,
        Arc::new(PgStatActivity(Arc::clone(&activity.board))),
    );
    for (name, target) in [
        ("cancel_query", CancelTarget::Query),
        ("pg_cancel_backend", CancelTarget::Backend),
    ] {
        ctx.register_udf(ScalarUDF::from(Cancel {
            name,
            target,
            activity: activity.clone(),
            signature: Signature::exact(vec![DataType::Int64], Volatility::Volatile),
        }));
    }
}

/// `pg_backend_pid()`: the connection's process id as the protocol gave it
/// to the client (BackendKeyData), the one `pg_stat_activity.pid` shows.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BackendPid {
    pid: i32,
    signature: Signature,
}

impl ScalarUDFImpl for BackendPid {
    fn name(&self) -> &str {
        "pg_backend_pid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(self.pid))))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CancelTarget {
    Query,
    Backend,
}

/// `cancel_query(query_id)` (QuestDB) and `pg_cancel_backend(pid)`: true
/// when the statement or connection was found and told to stop.
struct Cancel {
    name: &'static str,
    target: CancelTarget,
    activity: SessionActivity,
    signature: Signature,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel").field("name", &self.name).finish()
    }
}

impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.activity.pid == other.activity.pid
    }
}

impl Eq for Cancel {}

impl std::hash::Hash for Cancel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.activity.pid.hash(state);
    }
}

impl ScalarUDFImpl for Cancel {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let ids = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(ids) = ids.first() else {
            return plan_err!("{}() takes one argument", self.name);
        };
        let ids = datafusion::arrow::compute::cast(ids, &DataType::Int64)?;
        let ids = ids
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("ids".into()))?;
        let board = &self.activity.board;
        let allowed = |owner: &str| self.activity.may_cancel(owner);
        let done: BooleanArray = ids
            .iter()
            .map(|id| {
                id.map(|id| match self.target {
                    CancelTarget::Query => board.cancel_query(id, allowed),
                    CancelTarget::Backend => {
                        i32::try_from(id).is_ok_and(|pid| board.cancel_backend(pid, allowed))
                    }
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(done)))
    }
}

/// One connection as the table functions show it.
struct Row {
    pid: i32,
    info: ConnectionInfo,
    started: i64,
    running: Option<i64>,
    query: Arc<str>,
    query_start: Option<i64>,
    state_change: i64,
    state: &'static str,
}

fn rows(board: &ActivityBoard) -> Vec<Row> {
    board
        .connections()
        .iter()
        .map(|(pid, c)| Row {
            pid: *pid,
            info: c.info.clone(),
            started: c.started,
            running: c.running,
            query: c.query.clone(),
            query_start: c.query_start,
            state_change: c.state_change,
            state: match (c.running, c.cancelled, c.in_transaction) {
                (Some(_), true, _) => "cancelled",
                (Some(_), false, _) => "active",
                (None, _, true) => "idle in transaction",
                (None, _, false) => "idle",
            },
        })
        .collect()
}

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values.collect::<Vec<_>>()).with_timezone("+00:00"))
}

fn timestamp_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        true,
    )
}

fn table(fields: Vec<Field>, columns: Vec<ArrayRef>) -> DfResult<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// QuestDB's `query_activity()`: the running statements, this one included,
/// with QuestDB's columns (`worker_id` is NULL: a statement runs on the
/// server's shared tokio workers) and the connection's `pid`.
#[derive(Debug)]
struct QueryActivity(Arc<ActivityBoard>);

impl TableFunctionImpl for QueryActivity {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("query_activity() takes no arguments");
        }
        let running: Vec<Row> = rows(&self.0)
            .into_iter()
            .filter(|r| r.running.is_some())
            .collect();
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        table(
            vec![
                Field::new("query_id", DataType::Int64, true),
                Field::new("worker_id", DataType::Int32, true),
                text("worker_pool"),
                text("username"),
                timestamp_field("query_start"),
                timestamp_field("state_change"),
                text("state"),
                text("query"),
                Field::new("pid", DataType::Int32, true),
            ],
            vec![
                Arc::new(Int64Array::from_iter(running.iter().map(|r| r.running))),
                Arc::new(Int32Array::from(vec![None; running.len()])),
                Arc::new(StringArray::from_iter_values(
                    running.iter().map(|_| "shared"),
                )),
                Arc::new(StringArray::from_iter_values(
                    running.iter().map(|r| r.info.user.as_str()),
                )),
                timestamps(running.iter().map(|r| r.query_start)),
                timestamps(running.iter().map(|r| Some(r.state_change))),
                Arc::new(StringArray::from_iter_values(
                    running.iter().map(|r| r.state),
                )),
                Arc::new(StringArray::from_iter_values(
                    running.iter().map(|r| &*r.query),
                )),
                Arc::new(Int32Array::from_iter_values(running.iter().map(|r| r.pid))),
            ],
        )
    }
}

/// PostgreSQL's `pg_stat_activity`: one row per connection, with the
/// columns tools read (what Tidemark does not have, such as wait events and
/// transaction ids, is NULL).
#[derive(Debug)]
struct PgStatActivity(Arc<ActivityBoard>);

impl TableFunctionImpl for PgStatActivity {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("{PG_STAT_ACTIVITY}() takes no arguments");
        }
        let rows = rows(&self.0);
        let n = rows.len();
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let int = |name: &str| Field::new(name, DataType::Int32, true);
        let strings = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let nulls_text = || -> ArrayRef { Arc::new(StringArray::from(vec![None::<&str>; n])) };
        let nulls_int = || -> ArrayRef { Arc::new(Int32Array::from(vec![None; n])) };
        table(
            vec![
                int("datid"),
                text("datname"),
                int("pid"),
                int("leader_pid"),
                int("usesysid"),
                text("usename"),
                text("application_name"),
                text("client_addr"),
                text("client_hostname"),
                int("client_port"),
                timestamp_field("backend_start"),
                timestamp_field("xact_start"),
                timestamp_field("query_start"),
                timestamp_field("state_change"),
                text("wait_event_type"),
                text("wait_event"),
                text("state"),
                text("backend_xid"),
                text("backend_xmin"),
                Field::new("query_id", DataType::Int64, true),
                text("query"),
                text("backend_type"),
            ],
            vec![
                nulls_int(),
                strings(&|r| Some(r.info.database.clone())),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.pid))),
                nulls_int(),
                nulls_int(),
                strings(&|r| Some(r.info.user.clone())),
                strings(&|r| Some(r.info.application.clone())),
                strings(&|r| r.info.client.map(|a| a.ip().to_string())),
                nulls_text(),
                Arc::new(Int32Array::from(
                    rows.iter()
                        .map(|r| r.info.client.map(|a| i32::from(a.port())))
                        .collect::<Vec<_>>(),
                )),
                timestamps(rows.iter().map(|r| Some(r.started))),
                timestamps(rows.iter().map(|_| None)),
                timestamps(rows.iter().map(|r| r.query_start)),
                timestamps(rows.iter().map(|r| Some(r.state_change))),
                nulls_text(),
                nulls_text(),
                strings(&|r| Some(r.state.to_string())),
                nulls_text(),
                nulls_text(),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.running))),
                strings(&|r| Some(r.query.to_string())),
                strings(&|_| Some("client backend".to_string())),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counter() -> (Arc<AtomicUsize>, CancelHook) {
        let count = Arc::new(AtomicUsize::new(0));
        let hook_count = Arc::clone(&count);
        let hook: CancelHook = Arc::new(move || {
            hook_count.fetch_add(1, Ordering::Relaxed);
        });
        (count, hook)
    }

    #[test]
    fn a_statement_is_cancelled_only_while_it_runs() {
        let board = Arc::new(ActivityBoard::default());
        let (cancels, hook) = counter();
        let member = board.join(7, ConnectionInfo::default(), hook);
        let running = board.start(7, Arc::from("SELECT 1"));
        let id = running.id;
        assert_eq!(rows(&board)[0].state, "active");
        assert!(board.cancel_query(id, |_| true));
        assert_eq!(rows(&board)[0].state, "cancelled");
        drop(running);
        assert_eq!(rows(&board)[0].state, "idle");
        assert_eq!(&*rows(&board)[0].query, "SELECT 1");
        // Done: its id cancels nothing any more.
        assert!(!board.cancel_query(id, |_| true));
        assert_eq!(cancels.load(Ordering::Relaxed), 1);
        // A later statement has another id; a refused caller cancels nothing.
        let next = board.start(7, Arc::from("SELECT 2"));
        assert_ne!(next.id, id);
        assert!(!board.cancel_query(next.id, |_| false));
        drop(member);
        assert!(rows(&board).is_empty());
        assert!(!board.cancel_backend(7, |_| true));
    }
}
