//! Prepared queries planned once. Parse keeps the query's DataFusion logical
//! plan, placeholders and all; each Execute checks that the tables the plan reads
//! still have the columns it was planned against (else it plans again: a schema
//! change costs a re-plan, never an error), binds the values as typed literals and
//! points the plan's scans at the executing statement's snapshot. What is left
//! per execution is DataFusion's optimizer and physical planner, not the SQL
//! parser, name resolution or the rewrite of the statement as text.
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
use datafusion::logical_expr::LogicalPlan;
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
        Some(PlannedQuery {
            plan,
            tables,
            param_types,
        })
    }

    /// The plan as planned (placeholders unbound).
    pub(crate) fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// The readers of every table the plan reads, in `snapshot`, if each is
    /// still the table the plan was made for, with the same columns (a table
    /// dropped and created again is another table); `None`: the plan is stale.
    pub(crate) fn readers(&self, snapshot: &Snapshot) -> Option<PlanReaders> {
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
    ) -> Option<LogicalPlan> {
        let mut scalars = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let wanted = self
                .param_types
                .get(&format!("${}", i + 1))
                .and_then(|t| t.as_ref());
            scalars.push(scalar(v, wanted)?);
        }
        let bound = self.plan.clone().with_param_values(scalars).ok()?;
        bound
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
                other => Ok(Transformed::no(other)),
            })
            .ok()
            .map(|t| t.data)
    }
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

    /// Optimizes a bound plan, plans it physically and starts it.
    pub(crate) async fn start(
        &mut self,
        plan: &LogicalPlan,
    ) -> datafusion::error::Result<(SchemaRef, SendableRecordBatchStream)> {
        // now() and friends read the statement's start.
        self.state.mark_start_execution();
        let physical = self.state.create_physical_plan(plan).await?;
        let schema = Arc::new(plan.schema().as_arrow().clone());
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
        ParamValue::Uuid(u) => ScalarValue::Utf8(Some(crate::text::uuid(u))),
        // Text to be read as a SQL type: the statement's text says it best.
        ParamValue::Typed { .. } => return None,
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
