//! A client session: runs statements, keeps the open transaction.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList};
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast;
use tidemark_parser::Statement;
use tidemark_storage::{Database, Request, Snapshot, Transaction};

use crate::column_names::ColumnNames;
use crate::copy::{CopyFormat, CopyIn, CopyOut};
use crate::cursor::Motion;
use crate::ddl;
use crate::error::{ExecError, Result, sqlstate};
use crate::plan_cache::PlanRunner;
use crate::provider::{ScanStats, SnapshotSchema};
use crate::settings::{self, Settings};
use crate::stream::RowStream;
use crate::system;

mod prepared;
mod savepoints;
mod simple_plans;
pub use prepared::Prepared;

/// `t` in `zone` if it is an instant type (TIMESTAMPTZ) in another zone.
fn zoned(t: &DataType, zone: &Arc<str>) -> Option<DataType> {
    match t {
        DataType::Timestamp(unit, Some(z)) if z != zone => {
            Some(DataType::Timestamp(*unit, Some(zone.clone())))
        }
        _ => None,
    }
}

/// `schema` with its instant columns in `zone`.
fn zoned_schema(
    schema: &datafusion::arrow::datatypes::Schema,
    zone: &Arc<str>,
) -> datafusion::arrow::datatypes::Schema {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match zoned(f.data_type(), zone) {
            Some(t) => Arc::new(f.as_ref().clone().with_data_type(t)),
            None => f.clone(),
        })
        .collect();
    datafusion::arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// The result of one statement.
#[derive(Debug)]
pub enum Output {
    /// A result set.
    Rows { schema: SchemaRef, rows: RowStream },
    /// A command's completion tag, as PostgreSQL sends it (`INSERT 0 3`, `CREATE TABLE`, ...),
    /// and a NOTICE to send before it.
    Command { tag: String, notice: Option<String> },
    /// `COPY ... FROM STDIN` started: the client now sends the data, which goes
    /// to [`CopyIn::feed`], and the copy ends with [`Session::finish_copy`].
    CopyIn(Box<CopyIn>),
    /// `COPY ... TO STDOUT`: the rows, encoded line by line as they are read.
    CopyOut(CopyOut),
}

impl Output {
    /// A result already in memory.
    pub(crate) fn rows(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Output::Rows {
            schema,
            rows: RowStream::from_batches(batches),
        }
    }

    /// This output with a result's rows read into memory (each statement of a
    /// script is finished before the next one runs).
    async fn materialized(self) -> Result<Self> {
        match self {
            Output::Rows { schema, rows } => Ok(Output::Rows {
                schema,
                rows: rows.into_memory().await?,
            }),
            other => Ok(other),
        }
    }

    /// A result's TIMESTAMPTZ columns in `zone` (the session's TimeZone): the same
    /// instants, which text output then shows with that zone's offset (also those
    /// DataFusion typed in another zone: `naive AT TIME ZONE 'Europe/Berlin'`).
    pub(crate) fn in_time_zone(self, zone: Arc<str>) -> Self {
        let Output::Rows { schema, rows } = self else {
            return self;
        };
        if !schema
            .fields()
            .iter()
            .any(|f| zoned(f.data_type(), &zone).is_some())
        {
            return Output::Rows { schema, rows };
        }
        let schema = Arc::new(zoned_schema(&schema, &zone));
        // Each batch by its own types (which may differ from the planned schema's
        // in a time zone).
        let rows = rows.map_batches(move |batch| {
            let columns = batch
                .columns()
                .iter()
                .map(|c| match zoned(c.data_type(), &zone) {
                    Some(t) => Ok(datafusion::arrow::compute::cast(c, &t)?),
                    None => Ok(c.clone()),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(
                Arc::new(zoned_schema(&batch.schema(), &zone)),
                columns,
            )?)
        });
        Output::Rows { schema, rows }
    }

    /// A result's columns named as PostgreSQL names them (see `column_names`).
    pub(crate) fn named(self, names: Option<&ColumnNames>) -> Self {
        match (self, names) {
            (Output::Rows { schema, rows }, Some(names)) => Output::Rows {
                schema: names.apply(&schema),
                rows,
            },
            (other, _) => other,
        }
    }

    pub(crate) fn command(tag: impl Into<String>) -> Self {
        Output::Command {
            tag: tag.into(),
            notice: None,
        }
    }
}

/// Transaction state, as ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    /// An error happened inside the transaction: everything until ROLLBACK fails.
    Failed,
}

/// One client's session over a shared database.
#[derive(Debug)]
pub struct Session {
    db: Arc<Database>,
    /// The server's backups (and the arbiter of checkpoint mode).
    backups: Arc<tidemark_backup::Backups>,
    tx: Option<Transaction>,
    /// The open transaction's savepoints, oldest first.
    savepoints: Vec<(String, tidemark_storage::TxSavepoint)>,
    failed: bool,
    /// Set by a result stream of the open transaction that failed after its
    /// statement returned (a new flag per transaction).
    stream_failed: Arc<std::sync::atomic::AtomicBool>,
    /// Prepared statements by name (SQL PREPARE, and the protocol's names).
    prepared: crate::prepare_sql::PreparedStatements,
    cursors: crate::cursor::Cursors,
    scans: Arc<ScanStats>,
    settings: Settings,
    /// The reported settings as the client was last told them (ParameterStatus).
    reported: Vec<(String, String)>,
    user: String,
    read_only: bool,
    /// Whether the statements being run refer to `pg_catalog` (see `pg_catalog`).
    wants_catalog: bool,
    /// The views being planned, outermost first (`views.rs`: a view that
    /// reads itself is refused).
    expanding_views: parking_lot::Mutex<Vec<String>>,
    /// This session's `pg_catalog`, made when first needed.
    catalog: std::sync::OnceLock<crate::pg_catalog::SessionCatalog>,
    /// The users the server lets in, for `pg_roles` (None: this session's user).
    roles: Option<Arc<Vec<crate::pg_catalog::CatalogRole>>>,
    /// The server's configuration, for SHOW PARAMETERS.
    parameters: Arc<Vec<crate::show::ServerParameter>>,
    /// DataFusion's context for this session's queries, made once: making one
    /// registers some hundreds of functions, which was most of what a narrow
    /// query cost. It holds no tables: each statement plans on a copy given
    /// the snapshot it reads (`context_over`), so an idle session pins nothing.
    context: std::sync::OnceLock<QueryContext>,
    /// Runs kept plans on a copy of `context`'s state, made once.
    plan_runner: Option<PlanRunner>,
    /// Plans of the simple-protocol queries this session repeats.
    simple_plans: simple_plans::SimplePlans,
    /// The text of the script `parse_script` last returned, when it was one
    /// statement: `execute_one` looks its plan up by it.
    script_text: Option<Arc<str>>,
    /// The server's board of connections, and this session's place on it
    /// (`None` outside the server: a board of its own, with no one on it).
    activity: Option<crate::activity::SessionActivity>,
    /// The server's query memory pool and spill files, shared by all sessions
    /// (`query_runtime`); `None`: DataFusion's own, unbounded.
    runtime: Option<Arc<datafusion::execution::runtime_env::RuntimeEnv>>,
}

/// The runtime all sessions' queries share: a memory pool of `limit_bytes`
/// (`None`: unbounded) divided fairly among the operators that can spill
/// (sorts, aggregations spill to temporary files past their share); operators
/// that cannot (a hash join's build side, a temporal join's right side) fail
/// with SQLSTATE 53200 past it, and the server goes on.
pub fn query_runtime(
    limit_bytes: Option<usize>,
) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    let builder = RuntimeEnvBuilder::new();
    let builder = match limit_bytes {
        Some(limit) => builder.with_memory_pool(Arc::new(FairSpillPool::new(limit))),
        None => builder,
    };
    Ok(builder.build_arc()?)
}

/// The session's DataFusion context (which has no `Debug` of its own).
struct QueryContext(SessionContext);

impl std::fmt::Debug for QueryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryContext")
    }
}

impl Session {
    pub fn new(db: Arc<Database>) -> Self {
        Session {
            backups: Arc::new(tidemark_backup::Backups::new(
                db.clone(),
                None,
                Default::default(),
            )),
            db,
            tx: None,
            savepoints: Vec::new(),
            failed: false,
            stream_failed: Default::default(),
            prepared: Default::default(),
            cursors: Default::default(),
            scans: Arc::new(ScanStats::default()),
            settings: Settings::default(),
            reported: Settings::default().reported(),
            user: "admin".into(),
            read_only: false,
            wants_catalog: false,
            expanding_views: Default::default(),
            catalog: std::sync::OnceLock::new(),
            roles: None,
            parameters: Arc::default(),
            context: std::sync::OnceLock::new(),
            plan_runner: None,
            simple_plans: Default::default(),
            script_text: None,
            runtime: None,
            activity: None,
        }
    }

    /// Runs this session's queries in `runtime` (see [`query_runtime`]).
    pub fn set_query_runtime(
        &mut self,
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ) {
        self.runtime = Some(runtime);
    }

    /// A session for `user`; a read-only user may only query (42501 otherwise).
    pub fn for_user(
        db: Arc<Database>,
        user: &str,
        read_only: bool,
        default_statement_timeout: std::time::Duration,
    ) -> Self {
        let mut s = Session::new(db);
        s.user = user.to_string();
        s.read_only = read_only;
        s.settings = Settings::with_default_timeout(default_statement_timeout);
        s
    }

    /// The server's backups: BACKUP DATABASE, backup_status() and checkpoint
    /// mode go through them (a session made without has no destination).
    pub fn set_backups(&mut self, backups: Arc<tidemark_backup::Backups>) {
        self.backups = backups;
    }

    pub(crate) fn backups(&self) -> &Arc<tidemark_backup::Backups> {
        &self.backups
    }

    /// Puts this session on the server's board of connections as `pid` (the
    /// process id its client was given), for `pg_stat_activity`,
    /// `query_activity()`, `pg_backend_pid()` and cancelling statements of
    /// other connections. Call before the first statement.
    pub fn set_activity(&mut self, board: Arc<crate::activity::ActivityBoard>, pid: i32) {
        self.activity = Some(crate::activity::SessionActivity {
            board,
            pid,
            user: self.user.clone(),
            read_only: self.read_only,
        });
    }

    fn activity(&self) -> crate::activity::SessionActivity {
        self.activity
            .clone()
            .unwrap_or_else(|| crate::activity::SessionActivity {
                board: Default::default(),
                pid: std::process::id() as i32,
                user: self.user.clone(),
                read_only: self.read_only,
            })
    }

    /// The users the server lets in, as `pg_catalog.pg_roles` lists them.
    pub fn set_roles(&mut self, roles: Arc<Vec<crate::pg_catalog::CatalogRole>>) {
        self.roles = Some(roles);
    }

    /// The server's configuration, as SHOW PARAMETERS lists it.
    pub fn set_parameters(&mut self, parameters: Arc<Vec<crate::show::ServerParameter>>) {
        self.parameters = parameters;
    }

    /// The statement timeout in force (SET statement_timeout), if any.
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        self.settings.statement_timeout()
    }

    /// Applies a startup-packet option (`options=-c statement_timeout=100`, ...).
    /// A setting from the startup packet (the client knows its value).
    pub fn set_startup_option(&mut self, name: &str, value: &str) -> Result<()> {
        self.settings.set(name, value)?;
        self.reported = self.settings.reported();
        Ok(())
    }

    pub(crate) fn cursors(&mut self) -> &mut crate::cursor::Cursors {
        &mut self.cursors
    }

    /// The columns of SQL cursor `name` (it is also a portal of that name to
    /// the extended protocol's Describe).
    pub fn cursor_schema(&self, name: &str) -> Option<SchemaRef> {
        self.cursors.schema(name)
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    pub(crate) fn prepared_mut(&mut self) -> &mut crate::prepare_sql::PreparedStatements {
        &mut self.prepared
    }

    pub(crate) fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// Whether the open transaction failed (a statement, or a result stream
    /// after its statement returned): everything until ROLLBACK fails.
    fn in_failed_tx(&self) -> bool {
        self.tx.is_some()
            && (self.failed || self.stream_failed.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// A new transaction starts clean; streams of an earlier one set a flag
    /// nothing reads any more.
    fn clear_failure(&mut self) {
        self.failed = false;
        self.stream_failed = Default::default();
    }

    /// Ends the open transaction's bookkeeping (its savepoints go with it).
    fn end_transaction(&mut self) -> Option<Transaction> {
        self.savepoints.clear();
        self.tx.take()
    }

    /// The flag a result stream sets when it fails, inside a transaction.
    fn stream_failure_flag(&self) -> Option<Arc<std::sync::atomic::AtomicBool>> {
        self.tx.as_ref().map(|_| self.stream_failed.clone())
    }

    /// Whether the session is as its user's new session would be, but for
    /// what it keeps to run faster (its DataFusion context, kept plans): no
    /// transaction, its settings as they started, no prepared statements or
    /// cursors. The HTTP API reuses such sessions from one request to the next.
    pub fn is_pristine(&self) -> bool {
        self.tx.is_none()
            && self.settings.unchanged()
            && self.prepared.is_empty()
            && self.cursors.is_empty()
    }

    /// The user the session runs as, and whether it is read-only.
    pub fn user(&self) -> (&str, bool) {
        (&self.user, self.read_only)
    }

    pub fn tx_status(&self) -> TxStatus {
        match (&self.tx, self.in_failed_tx()) {
            (None, _) => TxStatus::Idle,
            (Some(_), false) => TxStatus::InTransaction,
            (Some(_), true) => TxStatus::Failed,
        }
    }

    /// Partition parts opened and pruned by this session's scans so far.
    pub fn scan_stats(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering;
        (
            self.scans.parts_scanned.load(Ordering::Relaxed),
            self.scans.parts_pruned.load(Ordering::Relaxed),
        )
    }

    /// Runs the statements in `sql` until one fails: the outputs of those that
    /// ran, and the error that stopped the rest (what the simple query protocol sends).
    /// Results are read into memory (see [`Session::parse_script`] for streaming).
    pub async fn execute_script(&mut self, sql: &str) -> (Vec<Output>, Option<ExecError>) {
        let mut out = Vec::new();
        let statements = match self.parse_script(sql) {
            Ok(statements) => statements,
            Err(e) => return (out, Some(e)),
        };
        for s in statements {
            // A result that fails while it is read marks the transaction
            // failed itself (its stream holds the flag).
            let output = match self.execute_one(s).await {
                Ok(o) => o.materialized().await,
                Err(e) => Err(e),
            };
            match output {
                Ok(o) => out.push(o),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    /// The statements of a simple-query script, to run one by one with
    /// [`Session::execute_one`], each result read to its end before the next
    /// statement runs.
    pub fn parse_script(&mut self, sql: &str) -> Result<Vec<Statement>> {
        // A query whose plan the session keeps is not parsed again.
        if let Some(statement) = self.simple_plans.kept_statement(sql, &self.settings) {
            self.wants_catalog = false;
            self.script_text = Some(Arc::from(sql));
            return Ok(vec![statement]);
        }
        self.script_text = None;
        let parsed = parse(sql).and_then(|(statements, wants_catalog)| {
            self.wants_catalog = wants_catalog;
            let copy_in = |s: &Statement| {
                matches!(s, Statement::Standard(s) if matches!(
                    s.as_ref(),
                    ast::Statement::Copy { to: false, target: ast::CopyTarget::Stdin, .. }
                ))
            };
            // The data of a COPY FROM STDIN follows the whole query string.
            let n = statements.len();
            match statements
                .iter()
                .take(n.saturating_sub(1))
                .find(|s| copy_in(s))
            {
                Some(_) => Err(ExecError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "COPY FROM STDIN must be the last statement of a query string",
                )),
                None => Ok(statements),
            }
        });
        if let Ok([_]) = parsed.as_deref() {
            self.script_text = Some(Arc::from(sql));
        }
        self.abort_tx_on_error(parsed)
    }

    /// `Some` for a FETCH or MOVE of a script that names no cursor of this
    /// session but a portal of the extended protocol (`is_portal`), which the
    /// protocol front end then moves (see `cursor::portal_motion`).
    pub fn portal_motion(
        &mut self,
        statement: &Statement,
        is_portal: impl Fn(&str) -> bool,
    ) -> Option<Result<Motion>> {
        let motion = crate::cursor::portal_motion(&self.cursors, statement, is_portal)?;
        Some(self.abort_tx_on_error(motion))
    }

    /// Runs one statement of a script. A query's rows stream: they are read
    /// as the client takes them.
    pub async fn execute_one(&mut self, s: Statement) -> Result<Output> {
        let script = self.script_text.take();
        // A simple query binds no values (node-postgres sends a query without
        // values that way): PostgreSQL refuses its `$n` at once.
        let n = crate::params::count(&s);
        if n > 0 {
            return self.abort_tx_on_error(Err(ExecError::new(
                sqlstate::UNDEFINED_PARAMETER,
                format!("there is no parameter ${n}"),
            )));
        }
        // A query this session ran before runs from its kept plan (`simple_plans`).
        if let Some(text) = script
            && let Some(prepared) = self.simple_plan(&text, &s).await
        {
            return self.execute_prepared(&prepared, &[]).await;
        }
        if !simple_plans::is_query(&s) && transaction_control(&s).is_none() {
            self.simple_plans.forget_unplanned();
        }
        let result = self.execute_statement(s).await;
        self.abort_tx_on_error(result)
    }

    /// Runs every query of simple-query scripts from a kept plan from its first
    /// execution on, rather than its second (for tests that run whole suites
    /// through kept plans).
    #[doc(hidden)]
    pub fn keep_simple_plans_at_first_sight(&mut self) {
        self.simple_plans.prepare_at_first_sight();
    }

    /// Runs every statement in `sql`, stopping at the first error.
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<Output>> {
        match self.execute_script(sql).await {
            (_, Some(e)) => Err(e),
            (out, None) => Ok(out),
        }
    }

    /// Ends a COPY FROM STDIN: commits every row it carried (or adds them to
    /// the open transaction). Returns the number of rows.
    pub async fn finish_copy(&mut self, mut copy: CopyIn) -> Result<u64> {
        let result = match copy.finish() {
            Ok(()) => self
                .submit(std::mem::take(&mut copy.requests))
                .await
                .map(|_| copy.row_count),
            Err(e) => Err(e),
        };
        self.abort_tx_on_error(result)
    }

    /// An error inside a transaction aborts it until ROLLBACK.
    fn abort_tx_on_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() && self.tx.is_some() {
            self.failed = true;
        }
        result
    }

    async fn plan_schema(&self, s: ast::Statement) -> Result<SchemaRef> {
        self.schema_over(s, None).await
    }

    /// The columns a statement returns, planned but not run; `extra` is an empty
    /// in-memory table of the given columns visible to it (see `run_query_over`).
    pub(crate) async fn schema_over(
        &self,
        s: ast::Statement,
        extra: Option<(&str, SchemaRef)>,
    ) -> Result<SchemaRef> {
        let extra = extra.map(|(name, schema)| {
            (
                name.to_string(),
                Arc::new(datafusion::datasource::empty::EmptyTable::new(schema))
                    as Arc<dyn datafusion::catalog::TableProvider>,
            )
        });
        let (_, plan) = self.plan(s, &self.view()?, extra).await?;
        Ok(Arc::new(plan.schema().as_arrow().clone()))
    }

    /// A standard statement's logical plan over `view` (placeholders left
    /// unbound), and the context that planned it.
    pub(crate) async fn plan(
        &self,
        s: ast::Statement,
        view: &Snapshot,
        extra: Option<(String, Arc<dyn datafusion::catalog::TableProvider>)>,
    ) -> Result<(SessionContext, LogicalPlan)> {
        let views = crate::views::for_statement(self, &s, view).await?;
        let ctx = self.context_over(view, extra, views)?;
        let state = ctx.state();
        let mut s = self.adapt(s, view)?;
        crate::implicit_group_by::rewrite(&mut s, &|name| {
            datafusion::execution::FunctionRegistry::udaf(&state, name).is_ok()
        });
        // Kept to name what is missing should planning fail (see `undefined.rs`).
        let statement = s.clone();
        let plan = match state
            .statement_to_plan(DfStatement::Statement(Box::new(s)))
            .await
        {
            Ok(plan) => plan,
            Err(e) => {
                return Err(crate::undefined::first_undefined(&state, statement)
                    .unwrap_or_else(|| e.into()));
            }
        };
        let plan = crate::temporal_join::plan_temporal_joins(plan)?;
        Ok((ctx, plan))
    }

    /// Rewrites client catalog queries for DataFusion (when they mention it) and
    /// QuestDB's generators (`generators.rs`).
    fn adapt(&self, s: ast::Statement, view: &Snapshot) -> Result<ast::Statement> {
        let mut s = if self.wants_catalog {
            let s = crate::pg_catalog::rewrite(s);
            tracing::debug!(statement = %s, "catalog query as planned");
            s
        } else {
            s
        };
        crate::pg_catalog::call_session_functions(&mut s);
        crate::distinct_from::fix_precedence(&mut s);
        crate::select_exists::rewrite(&mut s);
        // The session applies the changes after planning (see `dispatch`).
        crate::set_config::resolve(&mut s, &self.settings)?;
        crate::pg_casts::match_array_literal_dimensions(&mut s);
        crate::pg_casts::type_values_literals(&mut s);
        crate::pg_casts::timestamps_in_microseconds(&mut s);
        crate::generators::rewrite(&mut s, view)?;
        crate::questdb_functions::rewrite(&mut s)?;
        crate::temporal_join::rewrite(&mut s, view)?;
        crate::dynamic_timestamp::strip(&mut s);
        Ok(s)
    }

    /// Whether this session may run `s` now: not in a failed transaction, and
    /// no writes for a read-only user.
    fn may_run(&self, s: &Statement) -> Result<()> {
        if self.in_failed_tx() {
            return Err(ExecError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if self.read_only && writes(s) {
            return Err(ExecError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("permission denied: user \"{}\" is read-only", self.user),
            ));
        }
        Ok(())
    }

    async fn execute_statement(&mut self, mut s: Statement) -> Result<Output> {
        let names = crate::column_names::name_columns(&mut s)?;
        let output = self.dispatch(s).await?;
        Ok(output
            .named(names.as_ref())
            .in_time_zone(self.display_zone()))
    }

    /// The zone TIMESTAMPTZ results are shown in (`SET TimeZone`; UTC for a
    /// setting that names no zone Tidemark knows).
    pub(crate) fn display_zone(&self) -> Arc<str> {
        let zone = self.settings.get("timezone").unwrap_or_default();
        crate::text::display_zone(&zone)
    }

    async fn dispatch(&mut self, s: Statement) -> Result<Output> {
        if let Some(end) = transaction_control(&s) {
            return self.transaction_control(end).await;
        }
        self.may_run(&s)?;
        match s {
            Statement::CreateTable(c) => {
                let (requests, tag) = ddl::create_table(self, *c).await?;
                self.submit(requests).await?;
                Ok(Output::command(tag))
            }
            Statement::DropTable { names, if_exists } => {
                self.submit(
                    names
                        .into_iter()
                        .map(|name| Request::DropTable { name, if_exists })
                        .collect(),
                )
                .await?;
                Ok(Output::command("DROP TABLE"))
            }
            Statement::DropAllTables => {
                let names = self.view()?.table_names();
                self.submit(
                    names
                        .into_iter()
                        .map(|name| Request::DropTable {
                            name,
                            if_exists: true,
                        })
                        .collect(),
                )
                .await?;
                Ok(Output::command("DROP TABLE"))
            }
            Statement::Truncate { names } => {
                self.submit(
                    names
                        .into_iter()
                        .map(|table| Request::Truncate { table })
                        .collect(),
                )
                .await?;
                Ok(Output::command("TRUNCATE TABLE"))
            }
            Statement::RenameTable { from, to } => {
                self.submit(vec![Request::RenameTable { from, to }]).await?;
                Ok(Output::command("RENAME TABLE"))
            }
            Statement::AlterTable { table, op } => {
                let requests = ddl::alter_table(self, table, *op).await?;
                if !requests.is_empty() {
                    self.submit(requests).await?;
                }
                Ok(Output::command("ALTER TABLE"))
            }
            Statement::Vacuum { table } => {
                if let Some(table) = table {
                    self.table(&table)?;
                }
                Ok(Output::command("VACUUM"))
            }
            Statement::Reindex(target) => {
                let requests = crate::index_ddl::reindex(&self.view()?, target)?;
                if !requests.is_empty() {
                    self.submit(requests).await?;
                }
                Ok(Output::command("REINDEX"))
            }
            Statement::CancelQuery { id } => {
                let activity = self.activity();
                if !activity
                    .board
                    .cancel_query(id, |owner| activity.may_cancel(owner))
                {
                    return Err(ExecError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("no running query has query_id {id} (see query_activity())"),
                    ));
                }
                Ok(Output::command("CANCEL QUERY"))
            }
            Statement::CreateView {
                name,
                definition,
                mode,
            } => crate::views::create(self, name, definition, mode).await,
            Statement::CompileView { name } => crate::views::compile(self, &name).await,
            Statement::Prepare { name, statement } => {
                crate::prepare_sql::prepare(self, name, &statement).await
            }
            Statement::Latest { query, latest } => crate::latest::run(self, query, latest).await,
            Statement::Sample { query, sample } => crate::sample::run(self, query, sample).await,
            Statement::Checkpoint(action) => crate::checkpoint::run(self, action).await,
            Statement::Backup(action) => crate::backup::run(self, action).await,
            Statement::Fetch {
                cursor,
                count,
                move_only,
            } => crate::cursor::fetch(self, &cursor, count, move_only).await,
            Statement::Standard(s) => match *s {
                ast::Statement::CreateIndex(c) => {
                    self.submit(vec![crate::index_ddl::create_index(&c)?])
                        .await?;
                    Ok(Output::command("CREATE INDEX"))
                }
                ast::Statement::Drop {
                    object_type: ast::ObjectType::Index,
                    names,
                    if_exists,
                    ..
                } => {
                    self.submit(crate::index_ddl::drop_index(&names, if_exists)?)
                        .await?;
                    Ok(Output::command("DROP INDEX"))
                }
                ast::Statement::Drop {
                    object_type: ast::ObjectType::View,
                    names,
                    if_exists,
                    ..
                } => crate::views::drop(self, &names, if_exists).await,
                ast::Statement::ShowCreate {
                    obj_type: ast::ShowCreateObject::View,
                    obj_name,
                } => crate::views::show_create(&self.view()?, &obj_name),
                ast::Statement::Insert(insert) => crate::insert::run(self, insert).await,
                ast::Statement::Update(u) => crate::dml::update(self, u).await,
                ast::Statement::Delete(d) => crate::dml::delete(self, d).await,
                ast::Statement::Set(set) => self.set(set),
                ast::Statement::Savepoint { name } => self.savepoint(name),
                ast::Statement::ReleaseSavepoint { name } => self.release_savepoint(&name),
                ast::Statement::Execute {
                    name,
                    parameters,
                    immediate: false,
                    ..
                } => crate::prepare_sql::execute(self, name, parameters).await,
                ast::Statement::Deallocate { name, .. } => {
                    crate::prepare_sql::deallocate(self, name)
                }
                ast::Statement::Declare { stmts } => crate::cursor::declare(self, stmts).await,
                ast::Statement::Close { cursor } => crate::cursor::close(self, cursor),
                // LISTEN is refused (no notifications), so the session listens on
                // no channel and UNLISTEN has nothing to stop (asyncpg's pool
                // sends `UNLISTEN *` when it takes a connection back).
                ast::Statement::UNLISTEN { .. } => Ok(Output::command("UNLISTEN")),
                ast::Statement::ShowVariable { variable } => {
                    if let Some(output) = crate::show::parameters(&variable, &self.parameters) {
                        return output;
                    }
                    match crate::show::partitions(&variable, &self.view()?) {
                        Some(output) => output,
                        None => self.show(&variable),
                    }
                }
                ast::Statement::Reset(r) => {
                    match r.reset {
                        ast::Reset::ALL => self.settings.reset(None)?,
                        ast::Reset::ConfigurationParameter(p) => {
                            self.settings.reset(Some(&p.to_string()))?
                        }
                    }
                    Ok(Output::command("RESET"))
                }
                ast::Statement::Copy {
                    source,
                    to,
                    target,
                    options,
                    legacy_options,
                    ..
                } => {
                    self.copy(source, to, target, &options, &legacy_options)
                        .await
                }
                other => {
                    // The SHOW statements read the snapshot, which is let go
                    // before any query runs.
                    let shown = crate::show::run(&other, &self.view()?);
                    if let Some(output) = shown {
                        return output;
                    }
                    // `set_config(...)` calls change the session once the
                    // statement is planned and started.
                    let changes = if crate::set_config::calls_set_config(&other) {
                        crate::set_config::resolve(&mut other.clone(), &self.settings)?
                    } else {
                        Vec::new()
                    };
                    let output = self.query(other).await?;
                    for change in changes {
                        self.settings.set(&change.name, &change.value)?;
                    }
                    Ok(output)
                }
            },
        }
    }

    /// The reported settings (name, value) whose values changed since the
    /// client was last told (by SET, RESET or `set_config`), to send as
    /// ParameterStatus before ReadyForQuery, as PostgreSQL does.
    pub fn take_changed_reports(&mut self) -> Vec<(String, String)> {
        let now = self.settings.reported();
        let changed = now
            .iter()
            .filter(|setting| !self.reported.contains(setting))
            .cloned()
            .collect();
        self.reported = now;
        changed
    }

    fn set(&mut self, set: ast::Set) -> Result<Output> {
        match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string();
                match settings::value_text(&values) {
                    Some(v) => self.settings.set(&name, &v)?,
                    None => self.settings.reset(Some(&name))?,
                }
            }
            ast::Set::SetTimeZone { value, .. } => {
                let v = settings::value_text(std::slice::from_ref(&value));
                match v {
                    Some(v) => self.settings.set("timezone", &v)?,
                    None => self.settings.reset(Some("timezone"))?,
                }
            }
            ast::Set::SetNames { charset_name, .. } => {
                self.settings.set("client_encoding", &charset_name.value)?
            }
            // Every transaction is read committed and serializable at once
            // (one writer lock, snapshots): isolation settings change nothing.
            ast::Set::SetTransaction { .. } => {}
            other => {
                return Err(ExecError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("{other} is not supported"),
                ));
            }
        }
        Ok(Output::command("SET"))
    }

    fn show(&self, variable: &[ast::Ident]) -> Result<Output> {
        use datafusion::arrow::array::StringArray;
        use datafusion::arrow::datatypes::{Field, Schema};
        let name = variable
            .iter()
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let (schema, columns): (Schema, Vec<datafusion::arrow::array::ArrayRef>) =
            if name.eq_ignore_ascii_case("all") {
                let all = self.settings.all();
                (
                    Schema::new(vec![
                        Field::new("name", DataType::Utf8, false),
                        Field::new("setting", DataType::Utf8, false),
                    ]),
                    vec![
                        Arc::new(StringArray::from_iter_values(all.iter().map(|(n, _)| n))),
                        Arc::new(StringArray::from_iter_values(all.iter().map(|(_, v)| v))),
                    ],
                )
            } else {
                // PostgreSQL's multi-word spellings (SQLAlchemy asks for the isolation
                // level on every new connection).
                let name = match name.to_ascii_lowercase().as_str() {
                    "time zone" => "timezone".to_string(),
                    "transaction isolation level" => "transaction_isolation".to_string(),
                    _ => name,
                };
                let value = self.settings.get(&name)?;
                (
                    Schema::new(vec![Field::new(
                        Settings::column_name(&name),
                        DataType::Utf8,
                        false,
                    )]),
                    vec![Arc::new(StringArray::from(vec![value]))],
                )
            };
        let schema = Arc::new(schema);
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Output::rows(schema, vec![batch]))
    }

    async fn copy(
        &mut self,
        source: ast::CopySource,
        to: bool,
        target: ast::CopyTarget,
        options: &[ast::CopyOption],
        legacy: &[ast::CopyLegacyOption],
    ) -> Result<Output> {
        let format = CopyFormat::from_options(options, legacy)?;
        match (to, target) {
            (false, ast::CopyTarget::Stdin) => {
                let ast::CopySource::Table {
                    table_name,
                    columns,
                } = source
                else {
                    return Err(ExecError::new(
                        sqlstate::SYNTAX_ERROR,
                        "COPY FROM needs a table, not a query",
                    ));
                };
                let name = ddl::object_name(&table_name)?;
                let reader = self.table_schema(&name)?;
                let meta = reader.meta().clone();
                let targets = if columns.is_empty() {
                    (0..meta.columns.len()).collect()
                } else {
                    columns
                        .iter()
                        .map(|c| {
                            meta.column_index(&c.value).ok_or_else(|| {
                                ExecError::new(
                                    sqlstate::UNDEFINED_COLUMN,
                                    format!(
                                        "column \"{}\" of relation \"{}\" does not exist",
                                        c.value,
                                        reader.name()
                                    ),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>>>()?
                };
                Ok(Output::CopyIn(Box::new(CopyIn::new(
                    reader.name().to_string(),
                    meta,
                    targets,
                    format,
                ))))
            }
            (true, ast::CopyTarget::Stdout) if format.binary => Err(ExecError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "COPY TO in binary format is not supported; use text or csv (binary works for COPY FROM)",
            )),
            (true, ast::CopyTarget::Stdout) => {
                let query = match source {
                    ast::CopySource::Query(q) => q,
                    ast::CopySource::Table {
                        table_name,
                        columns,
                    } => {
                        let cols = if columns.is_empty() {
                            "*".to_string()
                        } else {
                            columns
                                .iter()
                                .map(|c| crate::rewrite::quote_ident(&c.value))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        let name = ddl::object_name(&table_name)?;
                        self.table(&name)?;
                        crate::rewrite::parse_query(&format!(
                            "SELECT {cols} FROM {}",
                            crate::rewrite::quote_ident(&name)
                        ))?
                    }
                };
                let (schema, rows) = self.stream_query(ast::Statement::Query(query)).await?;
                let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
                Ok(Output::CopyOut(CopyOut::new(format, names, rows)))
            }
            (false, _) | (true, _) => Err(ExecError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "COPY to or from a file or program is not allowed: use COPY FROM STDIN / TO STDOUT (psql \\copy)",
            )),
        }
    }

    async fn transaction_control(&mut self, s: TxControl) -> Result<Output> {
        match s {
            TxControl::Begin => {
                if self.tx.is_none() {
                    self.tx = Some(Transaction::new());
                    self.savepoints.clear();
                    self.clear_failure();
                }
                Ok(Output::command("BEGIN"))
            }
            TxControl::RollbackTo(name) => self.rollback_to_savepoint(&name),
            TxControl::Commit => {
                let failed = self.in_failed_tx();
                let tx = self.end_transaction();
                self.clear_failure();
                match tx {
                    Some(_) if failed => {
                        self.cursors.end_transaction(false);
                        Ok(Output::command("ROLLBACK"))
                    }
                    Some(tx) => {
                        let committed = self.commit(tx).await;
                        self.cursors.end_transaction(committed.is_ok());
                        committed?;
                        Ok(Output::command("COMMIT"))
                    }
                    None => Ok(Output::command("COMMIT")),
                }
            }
            TxControl::Rollback => {
                self.end_transaction();
                self.clear_failure();
                self.cursors.end_transaction(false);
                Ok(Output::command("ROLLBACK"))
            }
        }
    }

    /// Commits `requests` now, or adds them to the open transaction. The
    /// commit (which waits for its WAL fsync) runs off the async workers.
    pub(crate) async fn submit(&mut self, requests: Vec<Request>) -> Result<u64> {
        match &mut self.tx {
            Some(tx) => {
                // Staged on the transaction's own view at once: in memory, and
                // only this statement's requests.
                self.db.stage(tx, requests)?;
                Ok(0)
            }
            None => Ok(self.commit(Transaction::from(requests)).await?.rows_written),
        }
    }

    /// Commits `tx` and waits, without blocking a thread, for it to be durable.
    /// A small commit of rows is decided right here (memory work and one WAL
    /// write); anything that may take long (many rows, DDL and UPDATE/DELETE,
    /// which write files, a full write buffer) runs on the blocking pool.
    async fn commit(&self, tx: Transaction) -> Result<tidemark_storage::CommitReceipt> {
        const INLINE_ROWS: usize = 10_000;
        let mut rows = 0;
        let small = tx.requests.iter().all(|r| match r {
            Request::Append { batch, .. } => {
                rows += batch.rows();
                true
            }
            _ => false,
        }) && rows <= INLINE_ROWS;
        let pending = if small && !self.db.write_buffer_full() {
            self.db.start_commit(tx)?
        } else {
            let db = self.db.clone();
            run_blocking(move || db.start_commit(tx)).await?
        };
        Ok(pending.durable().await?)
    }

    /// A table as this session sees it, or 42P01.
    pub(crate) fn table(&self, name: &str) -> Result<tidemark_storage::TableReader> {
        let view = self.view()?;
        Self::found(view.table(name), name, &view)
    }

    /// A table for its schema only (what INSERT and COPY need): inside a
    /// transaction, its view as it stands, not rebased on others' newer commits
    /// (which would stage the whole transaction again for every INSERT).
    pub(crate) fn table_schema(&self, name: &str) -> Result<tidemark_storage::TableReader> {
        let view = match &self.tx {
            Some(tx) => self.db.transaction_snapshot(tx, false)?,
            None => self.db.snapshot(),
        };
        Self::found(view.table(name), name, &view)
    }

    /// The table, or 42P01; 42809 when `name` is a view (statements that come
    /// here write to, or read the files of, a table).
    fn found(
        table: Option<tidemark_storage::TableReader>,
        name: &str,
        snapshot: &Snapshot,
    ) -> Result<tidemark_storage::TableReader> {
        table.ok_or_else(|| match snapshot.view(name) {
            Some(v) => ExecError::new(
                sqlstate::WRONG_OBJECT_TYPE,
                format!(
                    "\"{}\" is a view: INSERT, UPDATE, DELETE, COPY FROM, TRUNCATE and ALTER TABLE \
                     work on the tables its query reads",
                    v.name
                ),
            ),
            None => ExecError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            ),
        })
    }

    /// What this session sees: the newest commit, plus its own open transaction's
    /// writes when one is open (see `tidemark_storage::transaction`).
    /// Whether a view's query is being planned (the statement being planned
    /// is inside a view).
    pub(crate) fn in_view(&self) -> bool {
        !self.expanding_views.lock().is_empty()
    }

    /// Whether the statements being run refer to the PostgreSQL catalog.
    pub(crate) fn wants_catalog(&self) -> bool {
        self.wants_catalog
    }

    /// Marks view `name` as being planned until the guard drops (`views.rs`).
    pub(crate) fn expanding_view(&self, name: &str) -> Result<crate::views::Expanding<'_>> {
        crate::views::enter(&self.expanding_views, name)
    }

    pub(crate) fn view(&self) -> Result<tidemark_storage::Snapshot> {
        match &self.tx {
            Some(tx) => Ok(self.db.transaction_snapshot(tx, true)?),
            None => Ok(self.db.snapshot()),
        }
    }

    /// A DataFusion context over `snapshot` (plus `extra`, a statement's own
    /// intermediate table). Plain queries share the session's context, given
    /// this snapshot's tables; catalog queries get one of their own, with this
    /// session's `pg_catalog` installed; `views`: the views the statement
    /// reads, planned for it (`views.rs`).
    fn context_over(
        &self,
        snapshot: &Snapshot,
        extra: Option<(String, Arc<dyn datafusion::catalog::TableProvider>)>,
        views: crate::views::StatementViews,
    ) -> Result<SessionContext> {
        let ctx = if self.wants_catalog {
            self.new_context()
        } else {
            // A copy of the session's state with a catalog list of its own:
            // this statement's tables go there, and go when it is done.
            let mut state = self.base_context().state();
            state.register_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
            SessionContext::new_with_state(state)
        };
        let catalog = MemoryCatalogProvider::new();
        catalog
            .register_schema(
                "public",
                Arc::new(SnapshotSchema {
                    snapshot: snapshot.clone(),
                    scans: self.scans.clone(),
                    extra,
                    views: views.providers,
                }),
            )
            .map_err(ExecError::from)?;
        ctx.register_catalog("tidemark", Arc::new(catalog));
        system::register(&ctx, snapshot.clone());
        if let Some(rows) = views.statuses {
            ctx.register_udtf("views", Arc::new(crate::views::ViewsFunction { rows }));
        }
        if self.wants_catalog {
            if self.catalog.get().is_none() {
                let roles = self.roles.clone().unwrap_or_else(|| {
                    Arc::new(vec![crate::pg_catalog::CatalogRole {
                        name: self.user.clone(),
                        read_only: self.read_only,
                    }])
                });
                let _ = self
                    .catalog
                    .set(crate::pg_catalog::SessionCatalog::new(roles)?);
            }
            if let Some(c) = self.catalog.get() {
                crate::pg_catalog::install(&ctx, c, snapshot)?;
            }
            crate::catalog_types::register(&ctx, snapshot);
            crate::pg_functions::register_current_setting(&ctx, self.settings.clone());
            crate::pg_settings::register(&ctx, &self.settings);
        }
        Ok(ctx)
    }

    /// The session's context: its functions, no tables.
    fn base_context(&self) -> &SessionContext {
        &self
            .context
            .get_or_init(|| QueryContext(self.new_context()))
            .0
    }

    /// A DataFusion context with this session's functions and no tables yet.
    fn new_context(&self) -> SessionContext {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("tidemark", "public")
            .with_create_default_catalog_and_schema(false);
        // A table scan is one stream in designated-timestamp order, and results
        // without ORDER BY keep that order: no splitting of scans and no
        // round-robin shuffles (hash-partitioned aggregation still runs in
        // parallel, and `parallel_aggregate.rs` splits scans under aggregates
        // that do not need the order).
        config.options_mut().optimizer.repartition_file_scans = false;
        // The session time zone is UTC: `now()` and `::timestamptz` are instants
        // (`timestamp with time zone`), as in PostgreSQL.
        config.options_mut().execution.time_zone = Some(crate::types::UTC_OFFSET.into());
        config
            .options_mut()
            .optimizer
            .enable_round_robin_repartition = false;
        // UUID literals and casts are settled before DataFusion's type coercion,
        // which would refuse them (`uuid_values.rs`).
        let mut analyzer_rules: Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> =
            vec![Arc::new(crate::uuid_values::UuidValues)];
        analyzer_rules.extend(datafusion::optimizer::Analyzer::new().rules);
        let builder = datafusion::execution::SessionStateBuilder::new();
        let builder = match &self.runtime {
            Some(runtime) => builder.with_runtime_env(runtime.clone()),
            None => builder,
        };
        let state = builder
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules)
            .with_type_planner(Arc::new(crate::json::JsonTypes))
            .with_query_planner(Arc::new(crate::temporal_join::TemporalJoinPlanner))
            .with_physical_optimizer_rule(Arc::new(crate::parallel_aggregate::ParallelAggregate))
            .with_physical_optimizer_rule(Arc::new(crate::symbol_grouping::SymbolKeyGrouping))
            .with_physical_optimizer_rule(Arc::new(crate::path_order::PathInputOrder))
            .with_physical_optimizer_rule(Arc::new(crate::float_compare::FloatLiteralComparisons))
            .build();
        let mut ctx = SessionContext::new_with_state(state);
        // `->`/`->>` before DataFusion's own planners, which do not take them.
        {
            use datafusion::execution::FunctionRegistry;
            if let Err(e) = ctx.register_expr_planner(Arc::new(crate::json::JsonOperators)) {
                tracing::warn!("the JSON operators are not available: {e}");
            }
        }
        crate::json::register_functions(&ctx);
        crate::rnd::register(&ctx);
        crate::compensated_sum::register(&ctx);
        crate::mode::register(&ctx);
        crate::path_aggregates::register(&ctx);
        crate::activity::register(&ctx, &self.activity());
        ctx.register_udtf(
            "memory_metrics",
            Arc::new(crate::system::MemoryMetrics {
                db: self.db.clone(),
                runtime: self.runtime.clone(),
            }),
        );
        crate::finance::register(&ctx);
        crate::questdb_time::register(&ctx);
        crate::questdb_arrays::register(&ctx);
        crate::array_elem::register(&ctx);
        crate::temporal_join::register_marker(&ctx);
        ctx.add_analyzer_rule(Arc::new(crate::timestamp_text::TimestampLiterals));
        ctx.add_analyzer_rule(Arc::new(crate::pg_casts::PgCasts));
        ctx.register_udtf(
            "backup_status",
            Arc::new(crate::backup::BackupStatusFunction {
                backups: self.backups.clone(),
            }),
        );
        ctx.register_udtf(
            "checkpoint_status",
            Arc::new(crate::checkpoint::CheckpointStatusFunction {
                db: self.db.clone(),
            }),
        );
        crate::pg_catalog::register_session_functions(&ctx, &self.user);
        ctx
    }

    /// Plans and runs a standard statement with DataFusion.
    pub(crate) async fn run_query(
        &self,
        s: ast::Statement,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.run_query_over(s, None).await
    }

    /// Like `run_query`, with one extra in-memory table visible to the statement.
    pub(crate) async fn run_query_over(
        &self,
        s: ast::Statement,
        extra: Option<(&str, RecordBatch)>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let extra = match extra {
            Some((name, batch)) => {
                let table =
                    datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch]])?;
                Some((
                    name.to_string(),
                    Arc::new(table) as Arc<dyn datafusion::catalog::TableProvider>,
                ))
            }
            None => None,
        };
        let df = self.dataframe(s, extra).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let heavy = crate::heavy_planning::is_heavy(df.logical_plan());
        let batches = crate::heavy_planning::plan(heavy, df.collect()).await?;
        Ok((schema, batches))
    }

    /// A standard statement planned by DataFusion over this session's view.
    async fn dataframe(
        &self,
        s: ast::Statement,
        extra: Option<(String, Arc<dyn datafusion::catalog::TableProvider>)>,
    ) -> Result<datafusion::dataframe::DataFrame> {
        let (ctx, plan) = self.plan(s, &self.view()?, extra).await?;
        Ok(ctx.execute_logical_plan(plan).await?)
    }

    async fn query(&self, s: ast::Statement) -> Result<Output> {
        match &s {
            ast::Statement::Query(_) | ast::Statement::Explain { .. } => {}
            _ => {
                return Err(ExecError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("statement not supported: {}", verb(&s)),
                ));
            }
        }
        let explain = matches!(s, ast::Statement::Explain { .. });
        self.scans.take_log();
        if !explain {
            let (schema, rows) = self.stream_query(s).await?;
            return Ok(Output::Rows { schema, rows });
        }
        let (schema, mut batches) = self.run_query(s).await?;
        {
            // Scans are planned (and pruned) during physical planning: show what
            // each opened, as rows of the EXPLAIN output.
            let log = self.scans.take_log();
            if !log.is_empty() && schema.fields().len() == 2 {
                use datafusion::arrow::array::StringArray;
                let kinds = StringArray::from_iter_values(log.iter().map(|_| "tidemark_scan"));
                let lines = StringArray::from_iter_values(log.iter());
                batches.push(RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(kinds), Arc::new(lines)],
                )?);
            }
        }
        Ok(Output::rows(schema, batches))
    }

    /// Plans a query and starts it: its rows stream (the snapshot it reads
    /// stays pinned until the stream is dropped).
    pub(crate) async fn stream_query(&self, s: ast::Statement) -> Result<(SchemaRef, RowStream)> {
        let df = self.dataframe(s, None).await?;
        self.stream_dataframe(df).await
    }

    /// Starts a planned query: its rows stream.
    async fn stream_dataframe(
        &self,
        df: datafusion::dataframe::DataFrame,
    ) -> Result<(SchemaRef, RowStream)> {
        use futures::TryStreamExt;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let heavy = crate::heavy_planning::is_heavy(df.logical_plan());
        let batches = crate::heavy_planning::plan(heavy, df.execute_stream())
            .await?
            .map_err(ExecError::from);
        Ok((schema, RowStream::new(batches, self.stream_failure_flag())))
    }
}

#[derive(Debug, Clone)]
enum TxControl {
    Begin,
    Commit,
    Rollback,
    /// `ROLLBACK TO [SAVEPOINT] name`: allowed in a failed transaction, and ends the failure.
    RollbackTo(ast::Ident),
}

fn transaction_control(s: &Statement) -> Option<TxControl> {
    match s {
        Statement::Standard(s) => match s.as_ref() {
            ast::Statement::StartTransaction { .. } => Some(TxControl::Begin),
            ast::Statement::Commit { .. } => Some(TxControl::Commit),
            ast::Statement::Rollback {
                savepoint: Some(name),
                ..
            } => Some(TxControl::RollbackTo(name.clone())),
            ast::Statement::Rollback { .. } => Some(TxControl::Rollback),
            _ => None,
        },
        _ => None,
    }
}

/// Parses a query string, and says whether it reads PostgreSQL's catalog (then
/// the session installs it, see `pg_catalog`). Statements that mention the catalog
/// are parsed again as `datafusion-pg-catalog` parses clients' catalog queries (it
/// replaces some of them whole), and so is a string Tidemark's parser refuses
/// whose words name the catalog; any other refusal is Tidemark's parser's error.
/// Client queries Tidemark recognises are then replaced by its own
/// (`catalog_replacements`), before parameters are typed or bound.
fn parse(sql: &str) -> Result<(Vec<Statement>, bool)> {
    let (mut statements, wants_catalog) = parse_as_written(sql)?;
    if wants_catalog {
        for s in &mut statements {
            if let Statement::Standard(q) = s
                && let Some(replacement) = crate::catalog_replacements::replacement(q)
            {
                **q = replacement;
            }
        }
    }
    Ok((statements, wants_catalog))
}

/// `parse`, before the replacement of client queries (`catalog_replacements`).
fn parse_as_written(sql: &str) -> Result<(Vec<Statement>, bool)> {
    let client_queries = || {
        crate::pg_catalog::parse_client_queries(sql).map(|queries| {
            queries
                .into_iter()
                .map(|q| Statement::Standard(Box::new(q)))
                .collect()
        })
    };
    match tidemark_parser::parse(sql) {
        Ok(statements) => {
            let wants_catalog = statements.iter().any(
                |s| matches!(s, Statement::Standard(s) if crate::pg_catalog::mentions_catalog(s)),
            );
            // Statements that call current_setting() skip the whole-query
            // replacements: their one entry that does (Grafana's search_path
            // lookup) stands in for current_setting(), which Tidemark has.
            let replaceable = !statements.iter().any(
                |s| matches!(s, Statement::Standard(s) if crate::pg_catalog::calls_current_setting(s)),
            );
            if wants_catalog
                && replaceable
                && let Some(queries) = client_queries()
            {
                return Ok((queries, true));
            }
            Ok((statements, wants_catalog))
        }
        Err(e) => match crate::pg_catalog::words_mention_catalog(sql)
            .then(client_queries)
            .flatten()
        {
            Some(queries) => Ok((queries, true)),
            None => Err(e.into()),
        },
    }
}

/// Runs blocking storage work (a commit waits for its fsync) on the blocking pool.
pub(crate) async fn run_blocking<T: Send + 'static, E: Into<ExecError> + Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ExecError::new(sqlstate::INTERNAL_ERROR, format!("commit task failed: {e}")))?
        .map_err(Into::into)
}

/// Whether a statement changes data or schema (refused to read-only users).
fn writes(s: &Statement) -> bool {
    match s {
        // A read-only user may stop its own statements (`activity.rs`).
        Statement::Sample { .. }
        | Statement::Latest { .. }
        | Statement::CancelQuery { .. }
        | Statement::CompileView { .. } => false,
        Statement::Standard(s) => !matches!(
            s.as_ref(),
            ast::Statement::Query(_)
                | ast::Statement::Explain { .. }
                | ast::Statement::ShowVariable { .. }
                | ast::Statement::Set(_)
                | ast::Statement::Reset(_)
                | ast::Statement::Copy { to: true, .. }
                | ast::Statement::Savepoint { .. }
                | ast::Statement::ReleaseSavepoint { .. }
                | ast::Statement::ShowCreate { .. }
                | ast::Statement::ShowTables { .. }
                | ast::Statement::ShowColumns { .. }
        ),
        _ => true,
    }
}

/// The first words of a statement, for messages.
fn verb(s: &ast::Statement) -> String {
    s.to_string()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A session over a new database in a temporary directory, for unit tests.
#[cfg(test)]
pub(crate) fn test_session() -> (Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = tidemark_storage::Database::open(
        dir.path(),
        tidemark_storage::StorageOptions {
            background_housekeeping: false,
            ..Default::default()
        },
    )
    .expect("open");
    (Session::new(Arc::new(db)), dir)
}
