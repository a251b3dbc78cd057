//! Prepared queries planned once. Parse keeps the query's DataFusion logical
//! plan, placeholders and all; each Execute checks that the tables the plan reads
//! still have the columns it was planned against (else it plans again: a schema
//! change costs a re-plan, never an error), binds the values as typed literals and
//! points the plan's scans at the executing statement's snapshot. What is left
//! per execution is DataFusion's physical planner, not the SQL parser, name
//! resolution, the rewrite of the statement as text or (mostly) the optimizer.
//!
//! The logical optimizer runs once per combination of the values' types: the plan
//! with its placeholders typed as the bound values are is optimized and kept, and
//! each execution binds its values into that optimized plan. Filters reach the
//! scans with their values either way (partition pruning is unchanged); the
//! optimizer, seeing unbound tables, keeps every filter above the scans too, and
//! binding drops those the bound scan applies exactly. A plan
//! calling a function whose result depends on when or how often it runs (`now()`,
//! `random()`) is optimized at every execution, as the optimizer folds `now()`
//! into the time of the statement it optimizes.
//!
//! A kept plan holds no snapshot: its scans name their tables (`UnboundTable`)
//! until an execution binds them, so a statement a client keeps prepared does not
//! pin old partition versions or buffered rows.
//!
//! Only plans whose every table is a storage table are kept: a table function
//! (`tables()`) or a catalog table holds the data of the snapshot it was planned
//! on, so such queries are planned at every execution, as before.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{Expr, LogicalPlan};
use tidemark_storage::{Snapshot, TableReader};

use crate::params::ParamValue;
use crate::provider::{ScanStats, StorageTable};

/// A query's logical plan with its placeholders, and what it was planned against.
#[derive(Debug)]
pub(crate) struct PlannedQuery {
    plan: LogicalPlan,
    /// Every storage table the plan reads, as it was at planning.
    tables: Vec<PlannedTable>,
    /// The type DataFusion inferred for each placeholder (`$1` -> Int64), if any.
    param_types: HashMap<String, Option<DataType>>,
    /// Whether an optimized plan may serve several executions (see the module comment).
    optimize_once: bool,
    /// The plan optimized for the value types of recent executions.
    optimized: parking_lot::Mutex<Option<Arc<OptimizedPlan>>>,
    /// For a plan that inlined views: the snapshot's `views_version` it was
    /// planned at (a view created, replaced or dropped since makes it stale).
    views_version: Option<u64>,
}

/// A kept plan optimized with its placeholders typed as `types` (`None`: the
/// optimizer refused it with placeholders, so each bound plan is optimized whole).
#[derive(Debug)]
struct OptimizedPlan {
    types: Vec<DataType>,
    plan: Option<LogicalPlan>,
}

/// A kept plan with one execution's values bound and its scans on that
/// execution's snapshot; `optimized` when it came from an optimized plan.
pub(crate) struct BoundPlan {
    pub(crate) plan: LogicalPlan,
    optimized: bool,
}

impl BoundPlan {
    /// The columns it returns.
    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::new(self.plan.schema().as_arrow().clone())
    }
}

#[derive(Debug)]
struct PlannedTable {
    name: String,
    id: u64,
    schema: SchemaRef,
}

/// Where a prepared statement keeps its plan between executions: shared by the
/// statement and every portal bound from it, replaced when a schema change
/// makes it stale.
#[derive(Debug, Default)]
pub(crate) struct PlanSlot(parking_lot::Mutex<Option<Arc<PlannedQuery>>>);

impl PlanSlot {
    pub(crate) fn new(planned: PlannedQuery) -> Self {
        PlanSlot(parking_lot::Mutex::new(Some(Arc::new(planned))))
    }

    pub(crate) fn get(&self) -> Option<Arc<PlannedQuery>> {
        self.0.lock().clone()
    }

    pub(crate) fn set(&self, planned: Option<Arc<PlannedQuery>>) {
        *self.0.lock() = planned;
    }
}

impl PlannedQuery {
    /// Keeps `plan` if every table it reads is a storage table (see the module
    /// comment); `None` otherwise. Its scans are unbound on the way.
    pub(crate) fn new(plan: LogicalPlan) -> Option<PlannedQuery> {
        let mut tables = Vec::new();
        let plan = plan
            .transform_up_with_subqueries(|node| match node {
                LogicalPlan::TableScan(mut scan) => {
                    // Any other table: the plan is not kept (the error ends the walk).
                    let (reader, schema) = scanned_table(&scan.source)
                        .ok_or_else(|| DataFusionError::Plan("not a storage table".into()))?;
                    let name = reader.name().to_string();
                    tables.push(PlannedTable {
                        name: name.clone(),
                        id: reader.id(),
                        schema: schema.clone(),
                    });
                    scan.source = provider_as_source(Arc::new(UnboundTable { name, schema }));
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        let param_types = plan.get_parameter_types().ok()?;
        let optimize_once = !matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_))
            && !calls_time_dependent_function(&plan);
        Some(PlannedQuery {
            plan,
            tables,
            param_types,
            optimize_once,
            optimized: parking_lot::Mutex::new(None),
            views_version: None,
        })
    }

    /// The plan inlines views: it is valid only while `views_version` stays.
    pub(crate) fn with_views_version(mut self, views_version: u64) -> Self {
        self.views_version = Some(views_version);
        self
    }

    /// The plan as planned (placeholders unbound).
    pub(crate) fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// The readers of every table the plan reads, in `snapshot`, if each is
    /// still the table the plan was made for, with the same columns (a table
    /// dropped and created again is another table); `None`: the plan is stale.
    pub(crate) fn readers(&self, snapshot: &Snapshot) -> Option<PlanReaders> {
        if self
            .views_version
            .is_some_and(|v| v != snapshot.views_version())
        {
            return None;
        }
        self.tables
            .iter()
            .map(|t| {
                let now = snapshot.table(&t.name)?;
                let same = now.id() == t.id && *crate::provider::table_schema(&now) == *t.schema;
                same.then(|| (t.name.clone(), now))
            })
            .collect::<Option<_>>()
            .map(PlanReaders)
    }

    /// The plan with `values` bound and its scans reading `snapshot`; `None`
    /// when a value cannot be given the placeholder's type as a literal (the
    /// caller then binds the statement's text instead, which reports the
    /// error as it always has).
    pub(crate) fn bind(
        &self,
        values: &[ParamValue],
        readers: &PlanReaders,
        scans: &Arc<ScanStats>,
        runner: &PlanRunner,
    ) -> Option<BoundPlan> {
        let scalars = self.scalars(values)?;
        let optimized = self.optimized_for(&scalars, runner);
        let (plan, optimized) = match optimized.as_ref().and_then(|o| o.plan.as_ref()) {
            Some(plan) => (plan.clone(), true),
            None => (self.plan.clone(), false),
        };
        // Binding rebuilds every node's schema: not worth it with nothing to bind.
        let bound = if scalars.is_empty() && self.param_types.is_empty() {
            plan
        } else {
            plan.with_param_values(scalars).ok()?
        };
        let plan = bound
            .transform_up_with_subqueries(|node| match node {
                LogicalPlan::TableScan(mut scan) => {
                    let name = source_as_provider(&scan.source)
                        .ok()
                        .and_then(|p| p.downcast_ref::<UnboundTable>().map(|t| t.name.clone()));
                    match name.and_then(|n| readers.0.get(&n).cloned()) {
                        Some(reader) => {
                            scan.source = provider_as_source(Arc::new(StorageTable::new(
                                reader,
                                scans.clone(),
                            )));
                            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                        }
                        None => Err(DataFusionError::Plan(format!(
                            "table {} is not in the snapshot",
                            scan.table_name
                        ))),
                    }
                }
                // The optimizer kept every filter above the unbound scan (none
                // is exact there); with the table and the values known, what
                // the scan applies exactly need not be tested again.
                LogicalPlan::Filter(filter) if optimized => without_exact_filters(filter),
                LogicalPlan::Limit(mut limit) => {
                    limit.skip = limit.skip.map(literal_through_casts);
                    limit.fetch = limit.fetch.map(literal_through_casts);
                    Ok(Transformed::yes(LogicalPlan::Limit(limit)))
                }
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        Some(BoundPlan { plan, optimized })
    }

    /// The columns a portal with `values` returns, as [`Self::bind`] would
    /// give them, read off the plan optimized for the values' types without
    /// binding it (drivers describe every portal before they execute it);
    /// `None` when there is no such plan.
    pub(crate) fn bound_schema(
        &self,
        values: &[ParamValue],
        runner: &PlanRunner,
    ) -> Option<SchemaRef> {
        let scalars = self.scalars(values)?;
        let optimized = self.optimized_for(&scalars, runner)?;
        let plan = optimized.plan.as_ref()?;
        Some(Arc::new(plan.schema().as_arrow().clone()))
    }

    /// Each value as a literal of its placeholder's type; `None` when one
    /// cannot be (see [`scalar`]).
    fn scalars(&self, values: &[ParamValue]) -> Option<Vec<ScalarValue>> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let wanted = self
                    .param_types
                    .get(&format!("${}", i + 1))
                    .and_then(|t| t.as_ref());
                scalar(v, wanted)
            })
            .collect()
    }

    /// The plan optimized for values of these scalars' types, kept for the next
    /// executions (a refusal of the optimizer is kept too, so it is not asked
    /// again); `None` when the plan may not be kept optimized.
    fn optimized_for(
        &self,
        scalars: &[ScalarValue],
        runner: &PlanRunner,
    ) -> Option<Arc<OptimizedPlan>> {
        if !self.optimize_once {
            return None;
        }
        let types: Vec<DataType> = scalars.iter().map(ScalarValue::data_type).collect();
        let mut kept = self.optimized.lock();
        if let Some(o) = kept.as_ref()
            && o.types == types
        {
            return Some(o.clone());
        }
        let plan = with_placeholder_types(&self.plan, &types)
            .and_then(|typed| runner.state.optimize(&typed))
            .ok();
        let optimized = Arc::new(OptimizedPlan { types, plan });
        *kept = Some(optimized.clone());
        Some(optimized)
    }
}

/// `filter` without the conditions its input, a bound storage scan, applies
/// exactly ([`crate::provider::filter_pushdown`]: timestamp ranges and SYMBOL
/// values); only conditions the scan was given are dropped.
fn without_exact_filters(
    filter: datafusion::logical_expr::Filter,
) -> datafusion::error::Result<Transformed<LogicalPlan>> {
    use datafusion::logical_expr::TableProviderFilterPushDown;
    use datafusion::logical_expr::utils::{conjunction, split_conjunction};
    let LogicalPlan::TableScan(scan) = filter.input.as_ref() else {
        return Ok(Transformed::no(LogicalPlan::Filter(filter)));
    };
    let Some(reader) = scanned_table(&scan.source).map(|(reader, _)| reader) else {
        return Ok(Transformed::no(LogicalPlan::Filter(filter)));
    };
    let conditions = split_conjunction(&filter.predicate);
    let exact = crate::provider::filter_pushdown(&conditions, Some(&reader));
    let kept: Vec<Expr> = conditions
        .iter()
        .zip(exact)
        .filter(|(c, e)| *e != TableProviderFilterPushDown::Exact || !scan.filters.contains(c))
        .map(|(c, _)| (*c).clone())
        .collect();
    if kept.len() == conditions.len() {
        return Ok(Transformed::no(LogicalPlan::Filter(filter)));
    }
    Ok(Transformed::yes(match conjunction(kept) {
        Some(predicate) => LogicalPlan::Filter(datafusion::logical_expr::Filter::try_new(
            predicate,
            filter.input,
        )?),
        None => Arc::unwrap_or_clone(filter.input),
    }))
}

/// A literal under casts as the literal of the outer cast's type. LIMIT and
/// OFFSET given as cast parameters (`LIMIT $1::INTEGER`, as SQLAlchemy writes
/// them) hold such casts once bound; the physical planner takes only a literal
/// there, and a kept plan is not optimized again (which would fold them).
fn literal_through_casts(e: Box<Expr>) -> Box<Expr> {
    let Expr::Cast(Cast { expr, field }) = *e else {
        return e;
    };
    let inner = literal_through_casts(expr);
    if let Expr::Literal(value, meta) = inner.as_ref()
        && let Ok(cast) = value.cast_to(field.data_type())
    {
        return Box::new(Expr::Literal(cast, meta.clone()));
    }
    Box::new(Expr::Cast(Cast { expr: inner, field }))
}

/// `plan` with every placeholder `$n` typed as `types[n - 1]`, keeping the names
/// its expressions had (later nodes refer to them).
fn with_placeholder_types(
    plan: &LogicalPlan,
    types: &[DataType],
) -> datafusion::error::Result<LogicalPlan> {
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::expr_rewriter::NamePreserver;
    use datafusion::logical_expr::{Expr, expr::Placeholder};
    Ok(plan
        .clone()
        .transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                let typed = e.transform_up(|e| match e {
                    // A placeholder the planner typed keeps its field: the
                    // bound value was cast to it.
                    Expr::Placeholder(Placeholder { id, field: None }) => {
                        let field = id
                            .strip_prefix('$')
                            .and_then(|n| n.parse::<usize>().ok())
                            .and_then(|n| types.get(n.checked_sub(1)?))
                            .map(|t| Arc::new(Field::new("", t.clone(), true)));
                        Ok(Transformed::yes(Expr::Placeholder(Placeholder {
                            id,
                            field,
                        })))
                    }
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(typed.update_data(|e| name.restore(e)))
            })?
            .map_data(|node| node.recompute_schema())
        })?
        .data)
}

/// Whether the plan calls a scalar function that is not immutable: its value
/// depends on when (`now()`) or how often (`random()`) it is called.
fn calls_time_dependent_function(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr, Volatility};
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|x| {
                if let Expr::ScalarFunction(f) = x
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// The tables a kept plan reads, as one execution's snapshot has them.
#[derive(Debug)]
pub(crate) struct PlanReaders(HashMap<String, TableReader>);

/// What runs kept plans: a copy of the session context's state and its task
/// context, made once. `SessionContext::execute_logical_plan` would copy both
/// (several hundred function registrations each) on every execution.
pub(crate) struct PlanRunner {
    state: SessionState,
    task: Arc<TaskContext>,
}

impl std::fmt::Debug for PlanRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanRunner")
    }
}

impl PlanRunner {
    /// `context` must hold no tables: a bound plan's scans carry their own.
    pub(crate) fn new(context: &SessionContext) -> Self {
        let state = context.state();
        let task = Arc::new(TaskContext::from(&state));
        PlanRunner { state, task }
    }

    /// Optimizes a bound plan (unless it came optimized), plans it physically
    /// and starts it.
    pub(crate) async fn start(
        &mut self,
        bound: &BoundPlan,
    ) -> datafusion::error::Result<(SchemaRef, SendableRecordBatchStream)> {
        // now() and friends read the statement's start.
        self.state.mark_start_execution();
        let plan = &bound.plan;
        let heavy = crate::heavy_planning::is_heavy(plan);
        let physical = if bound.optimized {
            let planner = self.state.query_planner().clone();
            crate::heavy_planning::plan(heavy, planner.create_physical_plan(plan, &self.state))
                .await?
        } else {
            crate::heavy_planning::plan(heavy, self.state.create_physical_plan(plan)).await?
        };
        let schema = bound.schema();
        let stream = datafusion::physical_plan::execute_stream(physical, self.task.clone())?;
        Ok((schema, stream))
    }
}

/// The storage table a scan reads, with its columns, if it is one.
fn scanned_table(
    source: &Arc<dyn datafusion::logical_expr::TableSource>,
) -> Option<(TableReader, SchemaRef)> {
    let provider = source_as_provider(source).ok()?;
    let table = provider.downcast_ref::<StorageTable>()?;
    Some((table.reader().clone(), table.schema()))
}

/// A table in a kept plan: its name and columns, no data. Executions replace
/// it with a `StorageTable` over their snapshot before anything is scanned.
#[derive(Debug)]
struct UnboundTable {
    name: String,
    schema: SchemaRef,
}

#[async_trait::async_trait]
impl TableProvider for UnboundTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::Base
    }

    /// As the storage table answers, so that an optimized kept plan's filters
    /// reach the scans the execution binds; none is exact here, because the
    /// unbound table does not know which column is the designated timestamp.
    fn supports_filters_pushdown(
        &self,
        filters: &[&datafusion::logical_expr::Expr],
    ) -> datafusion::error::Result<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        Ok(crate::provider::filter_pushdown(filters, None))
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        Err(DataFusionError::Internal(format!(
            "table {} of a kept plan was not bound to a snapshot",
            self.name
        )))
    }
}

/// A bound value as a literal of the placeholder's type (its own type when
/// the planner left the placeholder untyped).
fn scalar(v: &ParamValue, wanted: Option<&DataType>) -> Option<ScalarValue> {
    let own = match v {
        ParamValue::Null => {
            return match wanted {
                Some(t) => ScalarValue::try_from(t).ok(),
                None => Some(ScalarValue::Null),
            };
        }
        ParamValue::Bool(b) => ScalarValue::Boolean(Some(*b)),
        ParamValue::Int(i) => ScalarValue::Int64(Some(*i)),
        ParamValue::Float(f) => ScalarValue::Float64(Some(*f)),
        ParamValue::Text(s) => ScalarValue::Utf8(Some(s.clone())),
        ParamValue::Timestamp(us) => ScalarValue::TimestampMicrosecond(Some(*us), None),
        ParamValue::Date(d) => ScalarValue::Date32(Some(*d)),
        ParamValue::Bytes(b) => ScalarValue::Binary(Some(b.clone())),
        ParamValue::Uuid(u) if wanted == Some(&crate::uuid_values::UUID) => {
            ScalarValue::FixedSizeBinary(16, Some(u.to_vec()))
        }
        ParamValue::Uuid(u) => ScalarValue::Utf8(Some(crate::text::uuid(u))),
        ParamValue::Typed { type_name, text } => return typed_scalar(type_name, text, wanted),
        // Arrays: the statement's text says it best.
        ParamValue::Array { .. } => return None,
    };
    match wanted {
        None => Some(own),
        Some(t) if own.data_type() == *t => Some(own),
        // A fraction is not rounded into an integer placeholder: the text
        // path compares it as the number it is.
        Some(t) if own.data_type().is_floating() && t.is_integer() => None,
        Some(t) => own.cast_to(t).ok(),
    }
}

/// A timestamp or date sent as text (as drivers send them) for a placeholder
/// of that type, read as the statement's text would read it (`TIMESTAMP
/// '...'`: Arrow's cast, seconds completed as `timestamp_text` does). Other
/// types, and text the cast refuses (`infinity`, `epoch`, BC dates), take the
/// text path, which answers or reports them as it always has.
fn typed_scalar(type_name: &str, text: &str, wanted: Option<&DataType>) -> Option<ScalarValue> {
    let wanted = wanted?;
    let fits = matches!(
        (type_name, wanted),
        ("TIMESTAMP", DataType::Timestamp(_, None)) | ("DATE", DataType::Date32)
    );
    if !fits {
        return None;
    }
    let text = crate::timestamp_text::completed(text).unwrap_or_else(|| text.to_string());
    ScalarValue::Utf8(Some(text)).cast_to(wanted).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Output, Session};

    async fn run(s: &mut Session, p: &crate::session::Prepared, v: ParamValue) -> Vec<String> {
        let out = s.execute_prepared(p, &[v]).await.expect("execute");
        let Output::Rows { rows, .. } = out else {
            panic!("{out:?}")
        };
        let batches = rows.collect().await.expect("rows");
        batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).map(move |r| {
                    crate::text::format_value(b.column(0), r)
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                })
            })
            .collect()
    }

    /// The optimized plan kept for the statement, if the optimizer made one.
    fn kept(p: &crate::session::Prepared) -> Option<Arc<OptimizedPlan>> {
        let kept = p.kept_plan().expect("a kept plan").optimized.lock().clone();
        kept.filter(|o| o.plan.is_some())
    }

    /// The optimizer runs once per value types: later executions bind into the
    /// optimized plan, still read their own values, and still prune partitions.
    #[tokio::test]
    async fn a_kept_plan_is_optimized_once_per_value_types() {
        let (mut s, _dir) = crate::session::test_session();
        s.execute(
            "CREATE TABLE q (ts TIMESTAMP, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO q VALUES ('2026-11-21 10:00:00', 1.5), ('2026-11-22 10:00:00', 2.5),
                                  ('2026-11-23 10:00:00', 3.5);
             CHECKPOINT",
        )
        .await
        .expect("setup");
        let lookup = s
            .prepare("SELECT price FROM q WHERE ts = $1")
            .await
            .expect("prepare");
        assert!(
            kept(&lookup).is_none(),
            "nothing optimized before an execution"
        );
        let day = |d: i64| ParamValue::Timestamp(1_795_255_200_000_000 + d * 86_400_000_000);
        let (scanned, _) = s.scan_stats();
        assert_eq!(run(&mut s, &lookup, day(0)).await, vec!["1.5"]);
        let first = kept(&lookup).expect("optimized at the first execution");
        assert_eq!(run(&mut s, &lookup, day(1)).await, vec!["2.5"]);
        assert_eq!(run(&mut s, &lookup, day(2)).await, vec!["3.5"]);
        let later = kept(&lookup).expect("still kept");
        assert!(Arc::ptr_eq(&first, &later), "optimized once for one type");
        assert_eq!(s.scan_stats().0 - scanned, 3, "one partition per lookup");

        // Values of another type are optimized for again, and answer as theirs.
        let echo = s.prepare("SELECT $1").await.expect("prepare");
        assert_eq!(run(&mut s, &echo, ParamValue::Int(5)).await, vec!["5"]);
        assert_eq!(kept(&echo).expect("optimized").types, vec![DataType::Int64]);
        assert_eq!(
            run(&mut s, &echo, ParamValue::Text("x".into())).await,
            vec!["x"]
        );
        assert_eq!(kept(&echo).expect("optimized").types, vec![DataType::Utf8]);

        // Describing a portal (drivers do before each Execute) binds the kept
        // plan: the columns have the bound value's type, and the Execute that
        // follows finds the plan optimized.
        let portal = s.prepare("SELECT $1 AS v").await.expect("prepare");
        let described = s
            .describe(&portal, Some(&[ParamValue::Float(2.5)]))
            .await
            .expect("describe")
            .expect("rows");
        assert_eq!(described.field(0).data_type(), &DataType::Float64);
        assert_eq!(described.field(0).name(), "v");
        assert_eq!(
            kept(&portal).expect("optimized by the describe").types,
            vec![DataType::Float64]
        );
        assert_eq!(
            run(&mut s, &portal, ParamValue::Float(2.5)).await,
            vec!["2.5"]
        );

        // A plan reading the clock is optimized at every execution.
        let clock = s
            .prepare("SELECT count(*) FROM q WHERE ts < now() AND price > $1")
            .await
            .expect("prepare");
        assert_eq!(run(&mut s, &clock, ParamValue::Float(2.0)).await, vec!["2"]);
        assert!(
            kept(&clock).is_none(),
            "now() is not folded into a kept plan"
        );
    }

    /// Timestamps sent as text (psycopg, JDBC and pgbench send them so) bind
    /// into the kept plan instead of the statement's text, and read as the
    /// text would; text the cast refuses still takes the text path.
    #[tokio::test]
    async fn timestamps_sent_as_text_bind_into_the_kept_plan() {
        let (mut s, _dir) = crate::session::test_session();
        s.execute(
            "CREATE TABLE q (ts TIMESTAMP, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO q VALUES ('2026-11-21 10:00:00', 1.5), ('2026-11-22 10:00:00', 2.5);
             CHECKPOINT",
        )
        .await
        .expect("setup");
        let lookup = s
            .prepare("SELECT price FROM q WHERE ts >= $1 ORDER BY ts")
            .await
            .expect("prepare");
        let text = |t: &str| ParamValue::Typed {
            type_name: "TIMESTAMP",
            text: t.into(),
        };
        assert_eq!(
            run(&mut s, &lookup, text("2026-11-22 09:59")).await,
            vec!["2.5"]
        );
        assert_eq!(
            kept(&lookup)
                .expect("optimized for the bound timestamp")
                .types,
            vec![DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Microsecond,
                None
            )]
        );
        // An offset is read as the instant it names (09:30 UTC).
        assert_eq!(
            run(&mut s, &lookup, text("2026-11-22T11:30:00+02:00")).await,
            vec!["2.5"]
        );
        assert_eq!(
            run(&mut s, &lookup, text("2026-11-22T12:30:00+02:00")).await,
            Vec::<String>::new()
        );
        assert_eq!(
            run(&mut s, &lookup, text("2026-11-21")).await,
            vec!["1.5", "2.5"]
        );
        let bad = s
            .execute_prepared(&lookup, &[text("not a time")])
            .await
            .expect_err("bad text");
        assert!(bad.message.contains("not a time"), "{}", bad.message);
    }

    /// A kept plan's filters stay above its unbound scans; once bound, the
    /// ones the storage scan applies exactly (timestamp ranges, SYMBOL values)
    /// are not tested again row by row, and the others still are.
    #[tokio::test]
    async fn bound_plans_drop_the_filters_their_scans_apply_exactly() {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        let (mut s, _dir) = crate::session::test_session();
        s.execute(
            "CREATE TABLE q (ts TIMESTAMP, sym SYMBOL, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO q VALUES ('2026-11-21 10:00:00', 'a', 1.5), ('2026-11-21 11:00:00', 'b', 2.5),
                                  ('2026-11-21 12:00:00', 'a', 3.5);
             CHECKPOINT",
        )
        .await
        .expect("setup");
        fn filters(plan: &LogicalPlan) -> Vec<String> {
            let mut found = Vec::new();
            let _ = plan.apply(|node| {
                if let LogicalPlan::Filter(f) = node {
                    found.push(f.predicate.to_string());
                }
                Ok(TreeNodeRecursion::Continue)
            });
            found
        }
        let values = [
            ParamValue::Text("a".into()),
            ParamValue::Timestamp(1_795_255_200_000_000),
            ParamValue::Float(2.0),
        ];
        let exact = s
            .prepare("SELECT price FROM q WHERE sym = $1 AND ts >= $2")
            .await
            .expect("prepare");
        let out = s
            .execute_prepared(&exact, &values[..2])
            .await
            .expect("execute");
        let Output::Rows { rows, .. } = out else {
            panic!("{out:?}")
        };
        let batches = rows.collect().await.expect("rows");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        let plan = s
            .bound_kept_plan(&exact, &values[..2])
            .await
            .expect("bind")
            .expect("kept");
        assert_eq!(filters(&plan), Vec::<String>::new());
        let both = s
            .prepare("SELECT price FROM q WHERE sym = $1 AND ts >= $2 AND price > $3")
            .await
            .expect("prepare");
        let out = s.execute_prepared(&both, &values).await.expect("execute");
        let Output::Rows { rows, .. } = out else {
            panic!("{out:?}")
        };
        let batches = rows.collect().await.expect("rows");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        let plan = s
            .bound_kept_plan(&both, &values)
            .await
            .expect("bind")
            .expect("kept");
        let left = filters(&plan);
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left[0].contains("price") && !left[0].contains("sym"),
            "{left:?}"
        );
    }
}
