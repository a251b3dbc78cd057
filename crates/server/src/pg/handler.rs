//! One connection's query handling: the simple query protocol, the extended
//! query protocol (Parse/Bind/Describe/Execute/Close/Sync, portals with row
//! limits), COPY in, statement timeouts and cancellation. What is sent for a
//! result is in `results.rs`, Execute's row streaming in `portal.rs`.
//!
//! Every statement runs in the connection's executor session. The session's
//! own transaction state is what ReadyForQuery reports.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::sink::{Sink, SinkExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_execution_response, send_query_response,
};
use pgwire::api::results::{
    DescribePortalResponse, DescribeResponse, DescribeStatementResponse, FieldFormat, FieldInfo,
    Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, MemPortalStore, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle, PgWireConnectionState, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Parse, ParseComplete, Sync as PgSync,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use tidemark_executor::activity::{CancelHook, ConnectionInfo, Membership, RunningQuery};
use tidemark_executor::copy::CopyIn;
use tidemark_executor::error::sqlstate;
use tidemark_executor::{ExecError, Output, ParamValue, Prepared, Session, Statement, TxStatus};
use tokio::sync::Mutex;

use super::Shared;
use super::results::{
    Failure, command_tag, copy_in, copy_out_response, feed_describe, fields, rows_response,
    send_copy_out, send_notice, send_parameter_statuses,
};
use super::types::{decode_param, format_for, param_type};
use crate::metrics::Outcome;

/// A connection's state, shared by its protocol handlers.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    /// Created at the first statement, once the user is known.
    session: Mutex<Option<Session>>,
    /// A COPY FROM STDIN in progress (or the error that ended it early).
    copy: Mutex<Option<Result<Box<CopyIn>, ExecError>>>,
    /// This connection's place on the board of `pg_stat_activity`, taken
    /// with the session.
    membership: std::sync::OnceLock<Membership>,
}

impl Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

pub(crate) fn error_info(e: &ExecError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".into(), e.sqlstate.to_string(), e.message.clone());
    info.position = e.position.map(|p| p.to_string());
    info
}

pub(super) fn user_error(e: &ExecError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

/// Drops from the protocol's store the statements SQL `DEALLOCATE` removed
/// (taken from the session in the same step as the statement that removed them).
fn drop_statements<C>(client: &C, names: Vec<String>)
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    for name in names {
        client.portal_store().rm_statement(&name);
    }
}

fn status(s: TxStatus) -> TransactionStatus {
    match s {
        TxStatus::Idle => TransactionStatus::Idle,
        TxStatus::InTransaction => TransactionStatus::Transaction,
        TxStatus::Failed => TransactionStatus::Error,
    }
}

/// Settings a client may pass in its startup packet (besides `options`).
const STARTUP_SETTINGS: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
];

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Connection {
            shared,
            session: Mutex::new(None),
            copy: Mutex::new(None),
            membership: std::sync::OnceLock::new(),
        }
    }

    /// The session, created on first use for the logged-in user with the
    /// settings of the startup packet.
    async fn session<C: ClientInfo>(
        &self,
        client: &C,
    ) -> PgWireResult<tokio::sync::MutexGuard<'_, Option<Session>>> {
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            let meta = client.metadata();
            let user = meta.get("user").cloned().unwrap_or_default();
            let mut session = Session::for_user(
                self.shared.db.clone(),
                &user,
                self.shared.users.is_read_only(&user),
                self.shared.statement_timeout,
            );
            session.set_roles(Arc::new(self.shared.users.catalog_roles()));
            session.set_backups(self.shared.backups.clone());
            session.set_query_runtime(self.shared.query_runtime.clone());
            session.set_parameters(self.shared.parameters.clone());
            self.join_activity(client, &mut session, &user);
            for key in STARTUP_SETTINGS {
                if let Some(v) = meta.get(*key) {
                    session
                        .set_startup_option(key, v)
                        .map_err(|e| user_error(&e))?;
                }
            }
            // `options=-c name=value -c ...` (libpq's PGOPTIONS).
            if let Some(options) = meta.get("options") {
                let mut words = options.split_whitespace();
                while let Some(w) = words.next() {
                    let setting = match w {
                        "-c" => words.next(),
                        w => w.strip_prefix("-c").or_else(|| w.strip_prefix("--")),
                    };
                    if let Some((k, v)) = setting.and_then(|s| s.split_once('=')) {
                        session
                            .set_startup_option(&k.replace('-', "_"), v)
                            .map_err(|e| user_error(&e))?;
                    }
                }
            }
            *guard = Some(session);
        }
        Ok(guard)
    }

    /// Lists this connection on the server's activity board, with a cancel
    /// that works as the client's CancelRequest does.
    fn join_activity<C: ClientInfo>(&self, client: &C, session: &mut Session, user: &str) {
        let pid = client.pid_and_secret_key().0;
        let handle = client.session_extensions().get::<Arc<ConnectionHandle>>();
        let cancel: CancelHook = Arc::new(move || {
            if let (Some(handle), Ok(runtime)) =
                (handle.clone(), tokio::runtime::Handle::try_current())
            {
                runtime.spawn(async move { handle.cancel().await });
            }
        });
        let meta = client.metadata();
        let info = ConnectionInfo {
            user: user.to_string(),
            database: meta.get("database").cloned().unwrap_or_default(),
            application: meta.get("application_name").cloned().unwrap_or_default(),
            client: Some(client.socket_addr()),
        };
        let membership = self.shared.activity.join(pid, info, cancel);
        let _ = self.membership.set(membership);
        session.set_activity(self.shared.activity.clone(), pid);
    }

    /// Runs `work` on the session under the statement timeout, stopping it
    /// when the client sends a CancelRequest (unless `pgwire_cancels`: pgwire
    /// itself listens for the cancel of an Execute).
    async fn run<C, T, F>(&self, client: &C, work: F) -> PgWireResult<Result<T, ExecError>>
    where
        C: ClientInfo,
        F: for<'s> FnOnce(&'s mut Session) -> futures::future::BoxFuture<'s, Result<T, ExecError>>,
    {
        self.run_with(client, true, work).await
    }

    async fn run_with<C, T, F>(
        &self,
        client: &C,
        listen_for_cancel: bool,
        work: F,
    ) -> PgWireResult<Result<T, ExecError>>
    where
        C: ClientInfo,
        F: for<'s> FnOnce(&'s mut Session) -> futures::future::BoxFuture<'s, Result<T, ExecError>>,
    {
        Ok(self
            .run_stoppable(client, listen_for_cancel, None, work)
            .await?
            .0)
    }

    /// [`Connection::run_with`], also returning what stops the statement, for
    /// the rows it streams after `work` returns. A `query` is shown running
    /// (`pg_stat_activity`) until the returned `Stop` is dropped.
    async fn run_stoppable<C, T, F>(
        &self,
        client: &C,
        listen_for_cancel: bool,
        query: Option<&Arc<str>>,
        work: F,
    ) -> PgWireResult<(Result<T, ExecError>, Stop)>
    where
        C: ClientInfo,
        F: for<'s> FnOnce(&'s mut Session) -> futures::future::BoxFuture<'s, Result<T, ExecError>>,
    {
        let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) if listen_for_cancel => Some(handle.start_query().await),
            _ => None,
        };
        let mut guard = self.session(client).await?;
        let Some(session) = guard.as_mut() else {
            let e = ExecError::new(sqlstate::INTERNAL_ERROR, "no session");
            return Ok((Err(e), Stop::default()));
        };
        let running = query.map(|q| {
            self.shared
                .activity
                .start(client.pid_and_secret_key().0, Arc::clone(q))
        });
        let mut stop = Stop {
            cancel,
            deadline: session
                .statement_timeout()
                .map(|t| tokio::time::Instant::now() + t),
            _running: running,
        };
        let result = tokio::select! {
            r = work(session) => r,
            e = stop.wait() => Err(e),
        };
        Ok((result, stop))
    }

    /// Runs a simple-query script statement by statement, sending each one's
    /// result (rows as they are produced) before the next one runs. Returns
    /// the error that stopped the script, to send before ReadyForQuery.
    async fn run_simple<C>(&self, client: &mut C, sql: String) -> PgWireResult<Option<ExecError>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Err(e) = self.within_limit(sql.len(), "a statement") {
            return Ok(Some(e));
        }
        // What pg_stat_activity shows while the script's statements run.
        let script: Arc<str> = Arc::from(sql.as_str());
        let parsed = self
            .run(client, |s| Box::pin(async move { s.parse_script(&sql) }))
            .await?;
        let statements = match parsed {
            Ok(statements) => statements,
            Err(e) => return Ok(Some(e)),
        };
        for statement in statements {
            if let Some(moved) = self.move_portal(client, &statement).await? {
                match moved {
                    Ok(()) => continue,
                    Err(e) => return Ok(Some(e)),
                }
            }
            let (result, stop) = self
                .run_stoppable(client, true, Some(&script), |s| {
                    Box::pin(async move {
                        let output = s.execute_one(statement).await?;
                        Ok((output, s.take_deallocated()))
                    })
                })
                .await?;
            let output = match result {
                Ok((output, deallocated)) => {
                    drop_statements(client, deallocated);
                    output
                }
                Err(e) => return Ok(Some(e)),
            };
            let sent = match output {
                Output::Rows { schema, rows } => {
                    let failure = Failure::default();
                    let rows = rows.with_stop(stop.wait_owned());
                    let response = rows_response(&schema, rows, &Format::UnifiedText, &failure);
                    failure.outcome(send_query_response(client, response, true).await)?
                }
                Output::Command { tag, notice } => {
                    self.shared.metrics.command(&tag);
                    send_notice(client, notice).await?;
                    send_execution_response(client, command_tag(&tag)).await?;
                    Ok(())
                }
                Output::CopyOut(c) => {
                    match send_copy_out(client, c.with_stop(stop.wait_owned())).await? {
                        Ok(rows) => {
                            let tag = Tag::new("COPY").with_rows(rows);
                            client
                                .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                                .await?;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Output::CopyIn(c) => {
                    pgwire::api::copy::send_copy_in_response(client, copy_in(&c)).await?;
                    *self.copy.lock().await = Some(Ok(c));
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    Ok(())
                }
            };
            if let Err(e) = sent {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// A FETCH or MOVE of a script that names a portal of the extended
    /// protocol rather than a SQL cursor (`Session::portal_motion`): moves
    /// that portal. `None` for any other statement.
    async fn move_portal<C>(
        &self,
        client: &mut C,
        statement: &Statement,
    ) -> PgWireResult<Option<Result<(), ExecError>>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Every other statement goes on without a look at the session.
        if !matches!(statement, Statement::Fetch { .. }) {
            return Ok(None);
        }
        // pgwire's simple-query handler is generic over the store's statement
        // type; the store of our connections always holds `Prepared`.
        let Some(store) = client
            .portal_store()
            .as_any()
            .downcast_ref::<MemPortalStore<Prepared>>()
        else {
            return Ok(None);
        };
        let portal_of = |name: &str| match store.get_portal(name) {
            Some(Entry::Value(portal)) => Some(portal),
            _ => None,
        };
        let motion = self
            .run(client, |s| {
                let motion = s.portal_motion(statement, |name| portal_of(name).is_some());
                Box::pin(async move { Ok(motion) })
            })
            .await?;
        let motion = match motion {
            Ok(Some(Ok(motion))) => motion,
            Ok(Some(Err(e))) | Err(e) => return Ok(Some(Err(e))),
            Ok(None) => return Ok(None),
        };
        let Some(portal) = portal_of(&motion.cursor) else {
            return Ok(None);
        };
        Ok(Some(
            super::portal::fetch(self, client, portal, motion).await?,
        ))
    }

    /// Runs a bound portal (Execute, or a FETCH/MOVE naming it): its rows
    /// as a stream, encoded in the portal's result formats, whose statement
    /// errors `failure` records; a command's notice is sent here.
    pub(super) async fn run_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        failure: &Failure,
    ) -> PgWireResult<Result<Response, ExecError>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if portal.statement.statement.is_empty() {
            return Ok(Ok(Response::EmptyQuery));
        }
        let started = Instant::now();
        for (i, p) in portal.parameters.iter().enumerate() {
            let len = p.as_ref().map_or(0, |b| b.len());
            if let Err(e) = self.within_limit_with(len, || format!("parameter ${}", i + 1)) {
                return Ok(Err(e));
            }
        }
        let values = match decode_params(portal) {
            Ok(values) => values,
            Err(e) => return Ok(Err(e)),
        };
        // The stored statement is shared, not its `Prepared` cloned (whose
        // parameter types are a Vec as long as the statement's parameters).
        let stored = Arc::clone(&portal.statement);
        let (result, stop) = self
            .run_stoppable(client, true, Some(portal.statement.statement.sql()), |s| {
                Box::pin(async move {
                    let output = s.execute_prepared(&stored.statement, &values).await?;
                    Ok((output, s.take_deallocated()))
                })
            })
            .await?;
        self.record(result.as_ref().map(|_| ()), started);
        let (output, deallocated) = match result {
            Ok(done) => done,
            Err(e) => return Ok(Err(e)),
        };
        drop_statements(client, deallocated);
        // The rows are sent by the caller (pg/portal.rs): the stream carries
        // the cancel listener and the timeout.
        Ok(Ok(match output {
            Output::Rows { schema, rows } => Response::Query(rows_response(
                &schema,
                rows.with_stop(stop.wait_owned()),
                &portal.result_column_format,
                failure,
            )),
            Output::Command { tag, notice } => {
                self.shared.metrics.command(&tag);
                send_notice(client, notice).await?;
                Response::Execution(command_tag(&tag))
            }
            Output::CopyOut(c) => {
                match send_copy_out(client, c.with_stop(stop.wait_owned())).await? {
                    Ok(rows) => Response::Execution(Tag::new("COPY").with_rows(rows)),
                    Err(e) => return Ok(Err(e)),
                }
            }
            Output::CopyIn(c) => {
                let response = copy_in(&c);
                *self.copy.lock().await = Some(Ok(c));
                Response::CopyIn(response)
            }
        }))
    }

    /// Refuses `what` of `len` bytes over `server.max_message_mb` (54000).
    fn within_limit(&self, len: usize, what: &str) -> Result<(), ExecError> {
        self.within_limit_with(len, || what.to_string())
    }

    /// [`Connection::within_limit`], naming `what` only when it is refused.
    fn within_limit_with(&self, len: usize, what: impl Fn() -> String) -> Result<(), ExecError> {
        let max = self.shared.max_message_bytes;
        if len <= max {
            return Ok(());
        }
        let what = what();
        Err(ExecError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "{what} of {len} bytes exceeds server.max_message_mb ({} MiB)",
                max >> 20
            ),
        ))
    }

    async fn tx_status(&self) -> TransactionStatus {
        match self.session.lock().await.as_ref() {
            Some(s) => status(s.tx_status()),
            None => TransactionStatus::Idle,
        }
    }

    /// ReadyForQuery with the session's transaction state, after a
    /// ParameterStatus for each reported setting changed since the last one
    /// (SET, RESET, `set_config`), as PostgreSQL sends them.
    async fn send_ready_for_query<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (tx, reports) = match self.session.lock().await.as_mut() {
            Some(s) => (status(s.tx_status()), s.take_changed_reports()),
            None => (TransactionStatus::Idle, Vec::new()),
        };
        self.shared.activity.set_in_transaction(
            client.pid_and_secret_key().0,
            !matches!(tx, TransactionStatus::Idle),
        );
        send_parameter_statuses(client, reports).await?;
        client.set_transaction_status(tx);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(tx)))
            .await?;
        Ok(())
    }

    fn record(&self, outcome: Result<(), &ExecError>, started: Instant) {
        let o = match outcome {
            Ok(()) => Outcome::Ok,
            Err(e) if e.sqlstate == sqlstate::QUERY_CANCELED => Outcome::Canceled,
            Err(_) => Outcome::Error,
        };
        self.shared.metrics.query(o, started.elapsed());
    }
}

/// What stops a running statement, its streamed rows included: the client's
/// CancelRequest, the statement timeout.
#[derive(Default)]
struct Stop {
    cancel: Option<futures::channel::oneshot::Receiver<()>>,
    deadline: Option<tokio::time::Instant>,
    /// The statement's entry in `pg_stat_activity`, done when this is dropped
    /// (after the last row is sent).
    _running: Option<RunningQuery>,
}

impl Stop {
    /// Resolves to the error to report once the statement must stop.
    async fn wait(&mut self) -> ExecError {
        let deadline = self.deadline;
        let canceled = async {
            match self.cancel.as_mut() {
                Some(rx) => {
                    if rx.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let expired = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = canceled => ExecError::new(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to user request",
            ),
            _ = expired => ExecError::new(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to statement timeout",
            ),
        }
    }

    async fn wait_owned(mut self) -> ExecError {
        self.wait().await
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let sql = query.query;
        if sql.chars().all(|c| c == ';' || c.is_whitespace()) {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        } else {
            let started = Instant::now();
            let error = self.run_simple(client, sql).await?;
            self.record(error.as_ref().map_or(Ok(()), Err), started);
            if let Some(e) = error {
                client
                    .feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                    .await?;
            }
        }
        if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            let tx = self.tx_status().await;
            client.set_transaction_status(tx);
        } else {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            self.send_ready_for_query(client).await?;
        }
        Ok(())
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Only reached if pgwire's default on_query were used; ours answers
        // itself, streaming. Here results are read whole.
        let sql = query.to_string();
        let (outputs, error) = self
            .run(client, |s| {
                Box::pin(async move { Ok(s.execute_script(&sql).await) })
            })
            .await?
            .unwrap_or_else(|e| (vec![], Some(e)));
        let mut out: Vec<Response> = outputs
            .into_iter()
            .map(|o| match o {
                Output::Rows { schema, rows } => Response::Query(rows_response(
                    &schema,
                    rows,
                    &Format::UnifiedText,
                    &Failure::default(),
                )),
                Output::Command { tag, .. } => Response::Execution(command_tag(&tag)),
                Output::CopyOut(c) => Response::CopyOut(copy_out_response(c)),
                Output::CopyIn(c) => Response::CopyIn(copy_in(&c)),
            })
            .collect();
        if let Some(e) = error {
            out.push(Response::Error(Box::new(error_info(&e))));
        }
        Ok(out)
    }
}

/// Parses statements for the extended protocol in the connection's session
/// (parameter types are inferred against the tables as they are now).
pub(crate) struct Parser {
    conn: Arc<Connection>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.conn
            .within_limit(sql.len(), "a statement")
            .map_err(|e| user_error(&e))?;
        let sql = sql.to_string();
        match self
            .conn
            .run(client, |s| Box::pin(async move { s.prepare(&sql).await }))
            .await?
        {
            Ok(p) if p.is_empty() => Ok(None),
            Ok(p) => Ok(Some(p)),
            Err(e) => Err(user_error(&e)),
        }
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_types
            .iter()
            .map(|t| param_type(t.as_ref()))
            .collect())
    }

    fn get_result_schema(
        &self,
        _stmt: &Prepared,
        _column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        // Described by the handler itself, against the current schema.
        Ok(vec![])
    }
}

/// Parameter types: what the client declared in Parse, else what was inferred.
fn parameter_types(stmt: &StoredStatement<Prepared>) -> Vec<Type> {
    let n = stmt
        .parameter_types
        .len()
        .max(stmt.statement.param_types.len());
    (0..n).map(|i| parameter_type(stmt, i)).collect()
}

/// The type of parameter `i` (0-based): declared in Parse, else inferred, else TEXT.
fn parameter_type(stmt: &StoredStatement<Prepared>, i: usize) -> Type {
    stmt.parameter_types
        .get(i)
        .and_then(|t| t.as_ref())
        .filter(|t| **t != Type::UNKNOWN)
        .cloned()
        .unwrap_or_else(|| param_type(stmt.statement.param_types.get(i).and_then(|t| t.as_ref())))
}

fn decode_params(portal: &Portal<Prepared>) -> Result<Vec<ParamValue>, ExecError> {
    portal
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let t = parameter_type(&portal.statement, i);
            let binary = matches!(format_for(&portal.parameter_format, i), FieldFormat::Binary);
            decode_param(i + 1, &t, p.as_deref(), binary)
        })
        .collect()
}

/// The extended query protocol handler: a thin wrapper so that the parser
/// and the handlers share the connection.
pub(crate) struct Extended {
    pub(crate) conn: Arc<Connection>,
}

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::new(Parser {
            conn: self.conn.clone(),
        })
    }

    /// Describe of a statement or portal, and for a portal the store does not
    /// have, the SQL cursor of that name (psycopg describes its named cursors
    /// so). The answer is queued until Sync or Flush, like PostgreSQL's.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(Entry::Value(statement)) => {
                    let response = self.do_describe_statement(client, &statement).await?;
                    feed_describe(client, &response).await
                }
                Some(Entry::Empty) => {
                    feed_describe(client, &DescribeStatementResponse::no_data()).await
                }
                None => Err(PgWireError::StatementNotFound(name.to_owned())),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) => {
                    let response = self.do_describe_portal(client, &portal).await?;
                    feed_describe(client, &response).await
                }
                Some(Entry::Empty) => {
                    feed_describe(client, &DescribePortalResponse::no_data()).await
                }
                None => {
                    let schema = match self.conn.session.lock().await.as_ref() {
                        Some(session) => session.cursor_schema(name),
                        None => None,
                    };
                    let Some(schema) = schema else {
                        return Err(PgWireError::PortalNotFound(name.to_owned()));
                    };
                    let fields = fields(&schema, &Format::UnifiedText).as_ref().clone();
                    feed_describe(client, &DescribePortalResponse::new(fields)).await
                }
            },
            other => Err(PgWireError::InvalidTargetType(other)),
        }
    }

    /// pgwire's Bind, with BindComplete queued until Sync or Flush (pgwire
    /// flushes it at once: a second write, and a second wake-up of the
    /// client, for every pipelined Bind/Execute/Sync).
    async fn on_bind<C>(&self, client: &mut C, mut message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message
            .statement_name
            .as_deref()
            .unwrap_or(pgwire::api::DEFAULT_NAME);
        let portal_name = message
            .portal_name
            .as_deref()
            .unwrap_or(pgwire::api::DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                // `Portal::try_new` clones the parameters: the portal takes the
                // Bind's own instead (a 5,000-value INSERT spent a tenth of its
                // time counting references to them).
                let parameters = std::mem::take(&mut message.parameters);
                let mut portal = Portal::try_new(&message, statement)?;
                portal.parameters = parameters;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "ERROR".to_owned(),
                        sqlstate::PROTOCOL_VIOLATION.to_owned(),
                        format!(
                            "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires 0",
                            message.parameters.len()
                        ),
                    ))));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's Parse, and the statement's name noted in the session (SQL
    /// `DEALLOCATE` shares the namespace).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.clone().unwrap_or_default();
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client
                .portal_store()
                .put_empty_statement(message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME)),
        }
        if let Some(session) = self.conn.session(client).await?.as_mut() {
            session.note_protocol_statement(&name);
        }
        // Queued until Sync or Flush, like every reply to Parse/Bind/Describe.
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                client.portal_store().rm_statement(name);
                if let Some(session) = self.conn.session(client).await?.as_mut() {
                    session.forget_protocol_statement(name);
                }
            }
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        client
            .feed(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_execute<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Execute,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = super::portal::execute(self, client, message).await;
        let tx = self.conn.tx_status().await;
        client.set_transaction_status(tx);
        result
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(pgwire::api::DEFAULT_NAME);
        self.conn.send_ready_for_query(client).await?;
        client.flush().await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = target.statement.clone();
        let schema = self
            .conn
            .run(client, |s| {
                Box::pin(async move { s.describe(&prepared, None).await })
            })
            .await?
            .map_err(|e| user_error(&e))?;
        let fields = match schema {
            Some(schema) => fields(&schema, &Format::UnifiedText).as_ref().clone(),
            None => vec![],
        };
        Ok(DescribeStatementResponse::new(
            parameter_types(target),
            fields,
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !portal.statement.statement.returns_rows() {
            return Ok(DescribePortalResponse::no_data());
        }
        for (i, p) in portal.parameters.iter().enumerate() {
            let len = p.as_ref().map_or(0, |b| b.len());
            self.conn
                .within_limit_with(len, || format!("parameter ${}", i + 1))
                .map_err(|e| user_error(&e))?;
        }
        let values = decode_params(portal).map_err(|e| user_error(&e))?;
        let stored = Arc::clone(&portal.statement);
        let schema = self
            .conn
            .run(client, |s| {
                Box::pin(async move { s.describe(&stored.statement, Some(&values)).await })
            })
            .await?
            .map_err(|e| user_error(&e))?;
        Ok(match schema {
            Some(schema) => DescribePortalResponse::new(
                fields(&schema, &portal.result_column_format)
                    .as_ref()
                    .clone(),
            ),
            None => DescribePortalResponse::no_data(),
        })
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.conn
            .run_portal(client, portal, &Failure::default())
            .await?
            .map_err(|e| user_error(&e))
    }
}

#[async_trait]
impl pgwire::api::copy::CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A bad row ends the copy; the error is reported at CopyDone, as
        // PostgreSQL does, and the rest of the data is discarded.
        let mut copy = self.copy.lock().await;
        if let Some(Ok(c)) = copy.as_mut() {
            // The row still being assembled after this message is what may grow
            // without bound (a message may carry many whole rows).
            let fed = c
                .feed(&copy_data.data)
                .and_then(|_| self.within_limit(c.pending_bytes(), "a COPY row"));
            if let Err(e) = fed {
                *copy = Some(Err(e));
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let started = Instant::now();
        let copy = self.copy.lock().await.take();
        let result = match copy {
            Some(Ok(c)) => {
                let mut guard = self.session(client).await?;
                match guard.as_mut() {
                    Some(s) => s.finish_copy(*c).await,
                    None => Err(ExecError::new(sqlstate::INTERNAL_ERROR, "no session")),
                }
            }
            Some(Err(e)) => Err(e),
            None => Err(ExecError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "CopyDone without a COPY in progress",
            )),
        };
        self.record(result.as_ref().map(|_| ()), started);
        let tx = self.tx_status().await;
        client.set_transaction_status(tx);
        let rows = result.map_err(|e| user_error(&e))?;
        let tag = format!("COPY {rows}");
        self.shared.metrics.command(&tag);
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.copy.lock().await.take();
        let tx = self.tx_status().await;
        client.set_transaction_status(tx);
        user_error(&ExecError::new(
            sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}
