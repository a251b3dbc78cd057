//! Prepared statements: Parse (`Session::prepare`, with parameter types
//! inferred), Describe and Execute, and the plans kept between executions
//! (`plan_cache`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast;
use tidemark_parser::Statement;
use tidemark_storage::Snapshot;

use super::{Output, Session, parse};
use crate::column_names::ColumnNames;
use crate::ddl;
use crate::error::{ExecError, Result, sqlstate};
use crate::params::{self, ParamValue};
use crate::plan_cache::{BoundPlan, PlanReaders, PlanRunner, PlanSlot, PlannedQuery};
use crate::stream::RowStream;

/// A statement parsed once and executed any number of times with bound
/// parameters (the extended query protocol's prepared statement).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Shared: the protocol layer clones a prepared statement into every portal.
    statement: Option<Arc<Statement>>,
    wants_catalog: bool,
    /// An INSERT of parameters planned once, here (see `insert::PreparedInsert`).
    insert: Option<Arc<crate::insert::PreparedInsert>>,
    /// A query's plan, kept between executions (see `plan_cache`).
    plan: Option<Arc<PlanSlot>>,
    /// Inferred parameter types (`None`: unknown, sent as TEXT).
    pub param_types: Vec<Option<DataType>>,
    /// Its result columns' names, where PostgreSQL's differ from the plan's.
    names: Option<Arc<ColumnNames>>,
    /// The text it was parsed from (`pg_stat_activity` shows it).
    sql: Arc<str>,
}

impl Prepared {
    /// The statement's text, as the client sent it.
    pub fn sql(&self) -> &Arc<str> {
        &self.sql
    }

    /// The statement as planned (`None`: an empty query string).
    pub(crate) fn statement(&self) -> Option<&Statement> {
        self.statement.as_deref()
    }

    /// The plan kept for this query, if any.
    #[cfg(test)]
    pub(crate) fn kept_plan(&self) -> Option<Arc<PlannedQuery>> {
        self.plan.as_ref()?.get()
    }

    /// An empty query string.
    pub fn is_empty(&self) -> bool {
        self.statement.is_none()
    }

    /// Whether it is an INSERT planned at Parse, whose executions bind values
    /// straight into columns.
    pub fn is_planned_insert(&self) -> bool {
        self.insert.is_some()
    }

    /// Whether it is a query whose plan is kept from one execution to the next.
    pub fn is_planned_query(&self) -> bool {
        self.plan.is_some()
    }

    /// Whether executing it returns rows (and so Describe answers a row description).
    pub fn returns_rows(&self) -> bool {
        match self.statement.as_deref() {
            Some(Statement::Sample { .. } | Statement::Latest { .. }) => true,
            Some(Statement::Fetch { move_only, .. }) => !move_only,
            Some(Statement::Standard(s)) => matches!(
                s.as_ref(),
                ast::Statement::Query(_)
                    | ast::Statement::Explain { .. }
                    | ast::Statement::ShowVariable { .. }
                    | ast::Statement::ShowTables { .. }
                    | ast::Statement::ShowColumns { .. }
                    | ast::Statement::ShowCreate { .. }
                    // Whether it does depends on the statement it names (see describe).
                    | ast::Statement::Execute { .. }
            ),
            _ => false,
        }
    }
}

impl Session {
    /// Parses one statement for the extended query protocol and infers the
    /// types of its parameters.
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared> {
        let (mut statements, wants_catalog) = parse(sql)?;
        if statements.len() > 1 {
            return Err(ExecError::new(
                sqlstate::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let Some(mut statement) = statements.pop() else {
            return Ok(Prepared {
                statement: None,
                wants_catalog,
                insert: None,
                plan: None,
                param_types: vec![],
                names: None,
                sql: Arc::from(sql),
            });
        };
        self.wants_catalog = wants_catalog;
        let names = crate::column_names::name_columns(&mut statement)?.map(Arc::new);
        let statement = self.sample_as_query(statement).await;
        let planned = self.plan_query(&statement).await;
        let param_types = self.infer_param_types(&statement, planned.as_ref()).await;
        let insert = match &statement {
            Statement::Standard(s) => crate::insert::PreparedInsert::plan(s, self).map(Arc::new),
            _ => None,
        };
        // Catalog queries read tables made for the statement, and a
        // `set_config` call changes the session: planned each time.
        let changes_settings =
            matches!(&statement, Statement::Standard(s) if crate::set_config::calls_set_config(s));
        let keep = match &statement {
            Statement::Standard(s) => crate::views::keep_plan(s, &self.view()?),
            _ => crate::views::KeepPlan::Always,
        };
        let plan = planned
            .filter(|_| !wants_catalog && !changes_settings)
            .and_then(|plan| kept(plan, keep))
            .map(|p| Arc::new(PlanSlot::new(p)));
        Ok(Prepared {
            names,
            statement: Some(Arc::new(statement)),
            wants_catalog,
            insert,
            plan,
            param_types,
            sql: Arc::from(sql),
        })
    }

    /// The columns a prepared statement returns (`None`: it returns no rows).
    /// With `params`, the statement is described as bound; without, parameters
    /// are NULL. Nothing is run: queries, SAMPLE BY and LATEST ON are planned
    /// (SHOW, which reads a setting or the snapshot, answers with its columns).
    pub async fn describe(
        &mut self,
        prepared: &Prepared,
        params: Option<&[ParamValue]>,
    ) -> Result<Option<SchemaRef>> {
        let schema = self.describe_planned(prepared, params).await?;
        Ok(match (schema, &prepared.names) {
            (Some(schema), Some(names)) => Some(names.apply(&schema)),
            (schema, _) => schema,
        })
    }

    /// The columns as planned, named as DataFusion names them.
    async fn describe_planned(
        &mut self,
        prepared: &Prepared,
        params: Option<&[ParamValue]>,
    ) -> Result<Option<SchemaRef>> {
        if !prepared.returns_rows() {
            return Ok(None);
        }
        let Some(statement) = prepared.statement.as_deref() else {
            return Ok(None);
        };
        self.wants_catalog = prepared.wants_catalog;
        match statement {
            Statement::Fetch { cursor, .. } => return Ok(self.cursors.schema(cursor)),
            Statement::Standard(s) => match s.as_ref() {
                ast::Statement::Execute {
                    name, parameters, ..
                } => {
                    return crate::prepare_sql::describe(self, name.as_ref(), parameters).await;
                }
                // SHOW reads a setting or the snapshot: answered, not planned.
                ast::Statement::ShowVariable { .. }
                | ast::Statement::ShowTables { .. }
                | ast::Statement::ShowColumns { .. }
                | ast::Statement::ShowCreate { .. } => {
                    return Ok(match self.execute_statement(statement.clone()).await? {
                        Output::Rows { schema, .. } => Some(schema),
                        _ => None,
                    });
                }
                _ => {}
            },
            _ => {}
        }
        if matches!(statement, Statement::Standard(_)) {
            match params {
                None => {
                    if let Some((planned, _)) = self.current_plan(prepared, &self.view()?).await? {
                        return Ok(Some(Arc::new(planned.plan().schema().as_arrow().clone())));
                    }
                }
                // A portal of a kept plan: the columns of the plan with the
                // portal's values bound, as its Execute will run it (drivers
                // describe every portal they execute, so this must not plan
                // the statement again).
                Some(values) => {
                    if let Some(schema) = self.kept_plan_schema(prepared, values).await? {
                        return Ok(Some(schema));
                    }
                }
            }
        }
        // Bound as text: a standard statement's placeholders stay open when no
        // values are given; SAMPLE BY and LATEST ON take NULLs.
        let mut statement = statement.clone();
        match params {
            Some(values) => params::bind(&mut statement, values)?,
            None if !matches!(statement, Statement::Standard(_)) => {
                let nulls = vec![ParamValue::Null; params::count(&statement)];
                params::bind(&mut statement, &nulls)?;
            }
            None => {}
        }
        Ok(match statement {
            Statement::Standard(s) => Some(self.plan_schema(*s).await?),
            Statement::Sample { query, sample } => {
                Some(crate::sample::describe(self, query, sample).await?)
            }
            Statement::Latest { query, latest } => {
                Some(crate::latest::describe(self, query, latest).await?)
            }
            _ => None,
        })
    }

    /// Runs a prepared statement with its parameters bound.
    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        values: &[ParamValue],
    ) -> Result<Output> {
        let Some(planned) = &prepared.statement else {
            return Ok(Output::command(""));
        };
        self.wants_catalog = prepared.wants_catalog;
        // The planned paths bind by position and would miss an absent value.
        self.abort_tx_on_error(params::supplied(values, prepared.param_types.len()))?;
        if let Some(insert) = &prepared.insert {
            let result = match self.may_run(planned) {
                Ok(()) => insert.execute(self, values).await,
                Err(e) => Err(e),
            };
            if let Some(output) = self.abort_tx_on_error(result)? {
                return Ok(output);
            }
        }
        if prepared.plan.is_some() {
            let result = match self.may_run(planned) {
                Ok(()) => self.execute_planned(prepared, values).await,
                Err(e) => Err(e),
            };
            if let Some(output) = self.abort_tx_on_error(result)? {
                return Ok(output);
            }
        }
        let mut statement = Statement::clone(planned);
        let result = match params::bind(&mut statement, values) {
            Ok(()) => self.execute_statement(statement).await,
            Err(e) => Err(e),
        };
        self.abort_tx_on_error(result)
    }

    /// A prepared query's plan, valid for `view`, with the readers of its
    /// tables there: the kept plan, or a new one when a table it reads has
    /// changed its columns since. `None`: the statement keeps no plan (see
    /// `plan_cache`).
    async fn current_plan(
        &self,
        prepared: &Prepared,
        view: &Snapshot,
    ) -> Result<Option<(Arc<PlannedQuery>, PlanReaders)>> {
        let (Some(slot), Some(Statement::Standard(s))) =
            (&prepared.plan, prepared.statement.as_deref())
        else {
            return Ok(None);
        };
        if let Some(planned) = slot.get()
            && let Some(readers) = planned.readers(view)
        {
            return Ok(Some((planned, readers)));
        }
        let (_, plan) = self.plan(s.as_ref().clone(), view, None).await?;
        let planned = kept(plan, crate::views::keep_plan(s, view)).map(Arc::new);
        slot.set(planned.clone());
        Ok(planned.and_then(|p| {
            let readers = p.readers(view)?;
            Some((p, readers))
        }))
    }

    /// The session's runner of kept plans, made on first use; the caller puts
    /// it back in `plan_runner` when done.
    fn take_plan_runner(&mut self) -> PlanRunner {
        self.plan_runner
            .take()
            .unwrap_or_else(|| PlanRunner::new(self.base_context()))
    }

    /// A prepared query's kept plan with `values` bound and its scans on this
    /// statement's snapshot; `None` when it has no kept plan or a value cannot
    /// be bound to it (the statement's text is bound instead).
    async fn bind_kept_plan(
        &mut self,
        prepared: &Prepared,
        values: &[ParamValue],
    ) -> Result<Option<BoundPlan>> {
        let view = self.view()?;
        let Some((planned, readers)) = self.current_plan(prepared, &view).await? else {
            return Ok(None);
        };
        let runner = self.take_plan_runner();
        let bound = planned.bind(values, &readers, &self.scans, &runner);
        self.plan_runner = Some(runner);
        Ok(bound)
    }

    /// The columns of a prepared query's kept plan with `values` bound; `None`
    /// as [`Self::bind_kept_plan`] gives it.
    async fn kept_plan_schema(
        &mut self,
        prepared: &Prepared,
        values: &[ParamValue],
    ) -> Result<Option<SchemaRef>> {
        let view = self.view()?;
        let Some((planned, readers)) = self.current_plan(prepared, &view).await? else {
            return Ok(None);
        };
        let runner = self.take_plan_runner();
        // No plan optimized for these types (the optimizer refused it, or the
        // plan reads the clock): the columns of the plan bound as Execute binds it.
        let schema = planned.bound_schema(values, &runner).or_else(|| {
            planned
                .bind(values, &readers, &self.scans, &runner)
                .map(|bound| bound.schema())
        });
        self.plan_runner = Some(runner);
        Ok(schema)
    }

    /// The logical plan [`Self::bind_kept_plan`] makes, for tests.
    #[cfg(test)]
    pub(crate) async fn bound_kept_plan(
        &mut self,
        prepared: &Prepared,
        values: &[ParamValue],
    ) -> Result<Option<datafusion::logical_expr::LogicalPlan>> {
        Ok(self
            .bind_kept_plan(prepared, values)
            .await?
            .map(|bound| bound.plan))
    }

    /// Runs a prepared query from its kept plan; `None` when a value cannot be
    /// bound to the plan, and the statement's text must be bound instead.
    async fn execute_planned(
        &mut self,
        prepared: &Prepared,
        values: &[ParamValue],
    ) -> Result<Option<Output>> {
        let Some(plan) = self.bind_kept_plan(prepared, values).await? else {
            return Ok(None);
        };
        self.scans.take_log();
        let mut runner = self.take_plan_runner();
        let started = runner.start(&plan).await;
        self.plan_runner = Some(runner);
        use futures::TryStreamExt;
        let (schema, batches) = started?;
        let rows = RowStream::new(batches.map_err(ExecError::from), self.stream_failure_flag());
        Ok(Some(
            Output::Rows { schema, rows }
                .named(prepared.names.as_deref())
                .in_time_zone(self.display_zone()),
        ))
    }

    /// A query's logical plan over this session's view, placeholders unbound
    /// (`None`: not a query, or it does not plan).
    async fn plan_query(&self, statement: &Statement) -> Option<LogicalPlan> {
        let Statement::Standard(s) = statement else {
            return None;
        };
        if !matches!(s.as_ref(), ast::Statement::Query(_)) {
            return None;
        }
        let view = self.view().ok()?;
        let (_, plan) = self.plan(s.as_ref().clone(), &view, None).await.ok()?;
        Some(plan)
    }

    /// A SAMPLE BY statement as the grouped query it runs as, so that it is
    /// planned once like any query (before, Describe and Execute each rewrote
    /// and planned it). Not for FILL (a step after the query) or ALIGN TO FIRST
    /// OBSERVATION (the buckets depend on the rows), nor when the rewrite fails
    /// now (the statement then fails at Execute as before).
    async fn sample_as_query(&self, statement: Statement) -> Statement {
        let Statement::Sample { query, sample } = &statement else {
            return statement;
        };
        let fills = sample.fill.iter().any(|f| f != "NONE");
        if fills || sample.align == tidemark_parser::Align::FirstObservation {
            return statement;
        }
        match crate::sample::grouped_query(self, query.clone(), sample.clone()).await {
            Ok(grouped) => Statement::Standard(Box::new(grouped)),
            Err(_) => statement,
        }
    }

    /// The types of a statement's parameters; `plan` is its plan if it is a query.
    async fn infer_param_types(
        &self,
        statement: &Statement,
        plan: Option<&LogicalPlan>,
    ) -> Vec<Option<DataType>> {
        let n = params::count(statement);
        if n == 0 {
            return vec![];
        }
        let mut found: std::collections::HashMap<usize, DataType> = Default::default();
        // Queries: what DataFusion's planner infers.
        if let Some(plan) = plan
            && let Ok(types) = plan.get_parameter_types()
        {
            for (name, t) in types {
                if let (Some(i), Some(t)) = (name.strip_prefix('$').and_then(|i| i.parse().ok()), t)
                {
                    found.insert(i, t);
                }
            }
        }
        // Everything else (and what the planner left open): the columns the
        // parameters meet.
        if found.len() < n
            && let Ok(view) = self.view()
        {
            let mut columns = std::collections::HashMap::new();
            let mut insert_targets = Vec::new();
            for name in referenced_tables(statement) {
                if let Some(t) = view.table(&name) {
                    for c in &t.meta().columns {
                        columns.insert(c.name.to_lowercase(), value_type(c.column_type));
                    }
                    if let Statement::Standard(s) = statement
                        && let ast::Statement::Insert(i) = s.as_ref()
                    {
                        insert_targets = if i.columns.is_empty() {
                            t.meta()
                                .columns
                                .iter()
                                .map(|c| value_type(c.column_type))
                                .collect()
                        } else {
                            i.columns
                                .iter()
                                .map(|c| {
                                    t.meta()
                                        .column_index(&crate::insert::insert_column_name(c))
                                        .map(|k| value_type(t.meta().columns[k].column_type))
                                        .unwrap_or(DataType::Utf8)
                                })
                                .collect()
                        };
                    }
                }
            }
            for (i, t) in params::infer_from_columns(statement, &columns, &insert_targets) {
                found.entry(i).or_insert(t);
            }
        }
        (1..=n).map(|i| found.remove(&i)).collect()
    }
}

/// The tables a statement names (for parameter type inference).
fn referenced_tables(s: &Statement) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |n: &ast::ObjectName| {
        if let Ok(name) = ddl::object_name(n) {
            names.push(name);
        }
        std::ops::ControlFlow::<()>::Continue(())
    };
    match s {
        Statement::Standard(s) => {
            if let ast::Statement::Insert(i) = s.as_ref()
                && let ast::TableObject::TableName(n) = &i.table
            {
                let _ = add(n);
            }
            let _ = ast::visit_relations(s.as_ref(), &mut add);
        }
        Statement::Sample { query, .. } | Statement::Latest { query, .. } => {
            let _ = ast::visit_relations(query.as_ref(), &mut add);
        }
        _ => {}
    }
    names
}

/// The Arrow type of a column's values as clients bind them (SYMBOL is text).
fn value_type(t: tidemark_storage::ColumnType) -> DataType {
    match t {
        tidemark_storage::ColumnType::Symbol => DataType::Utf8,
        other => crate::types::arrow_type(other),
    }
}

/// `plan` as a kept plan, as far as the views it reads allow (`views.rs`).
fn kept(
    plan: datafusion::logical_expr::LogicalPlan,
    keep: crate::views::KeepPlan,
) -> Option<PlannedQuery> {
    use crate::views::KeepPlan;
    match keep {
        KeepPlan::Always => PlannedQuery::new(plan),
        KeepPlan::WhileViewsAre(version) => {
            PlannedQuery::new(plan).map(|p| p.with_views_version(version))
        }
        KeepPlan::Never => None,
    }
}
