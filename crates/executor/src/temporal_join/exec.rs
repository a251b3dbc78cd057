//! `TemporalJoinExec`: the right side is read once into memory (under the
//! session's memory limit, like a hash join's build side) and indexed by key,
//! each key's rows in timestamp order; left batches then stream through, each
//! row finding its match by binary search. Output keeps the left side's order
//! and partitions; memory is the right side, never the left.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt32Builder};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result as DfResult, exec_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::{QueryPlanner, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    ExecutionPlanProperties, Partitioning, PlanProperties, ReplaceChildrenOptions,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::{StreamExt, TryStreamExt};

use super::index::{SideIndex, evaluate, key_validity, latest, micros};
use super::logical::{Kind, TemporalJoin, describe};

/// Tidemark's query planner: DataFusion's, plus the temporal join.
#[derive(Debug)]
pub(crate) struct TemporalJoinPlanner;

#[async_trait]
impl QueryPlanner for TemporalJoinPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(TemporalJoinExtension)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

struct TemporalJoinExtension;

#[async_trait]
impl ExtensionPlanner for TemporalJoinExtension {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(join) = node.as_any().downcast_ref::<TemporalJoin>() else {
            return Ok(None);
        };
        let ([left_logical, right_logical], [left, right]) = (logical_inputs, physical_inputs)
        else {
            return exec_err!("TemporalJoin takes two inputs");
        };
        let physical = |exprs: &[datafusion::logical_expr::Expr], input: &LogicalPlan| {
            exprs
                .iter()
                .map(|e| planner.create_physical_expr(e, input.schema(), session, planning_ctx))
                .collect::<DfResult<Vec<_>>>()
        };
        let left_keys = physical(&join.left_keys, left_logical)?;
        let right_keys = physical(&join.right_keys, right_logical)?;
        let [left_ts] = physical(std::slice::from_ref(&join.left_ts), left_logical)?
            .try_into()
            .map_err(|_| DataFusionError::Internal("left timestamp".into()))?;
        let [right_ts] = physical(std::slice::from_ref(&join.right_ts), right_logical)?
            .try_into()
            .map_err(|_| DataFusionError::Internal("right timestamp".into()))?;
        Ok(Some(Arc::new(TemporalJoinExec::new(
            left.clone(),
            right.clone(),
            Probe {
                left_keys,
                right_keys,
                left_ts,
                right_ts,
                kind: join.kind,
                tolerance: join.tolerance,
                keep_unmatched: join.keep_unmatched,
            },
        )?)))
    }
}

/// What a left row is matched by.
#[derive(Debug, Clone)]
struct Probe {
    left_keys: Vec<Arc<dyn PhysicalExpr>>,
    right_keys: Vec<Arc<dyn PhysicalExpr>>,
    left_ts: Arc<dyn PhysicalExpr>,
    right_ts: Arc<dyn PhysicalExpr>,
    kind: Kind,
    tolerance: Option<i64>,
    keep_unmatched: bool,
}

#[derive(Debug)]
pub(crate) struct TemporalJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    probe: Arc<Probe>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// The indexed right side, built by whichever left partition asks first.
    build: Arc<tokio::sync::OnceCell<Arc<SideIndex>>>,
}

impl TemporalJoinExec {
    fn new(
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        probe: Probe,
    ) -> DfResult<Self> {
        // SPLICE JOIN has right rows without a left row too.
        let splice = probe.kind == Kind::Splice;
        let mut fields: Vec<Field> = left
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(f.is_nullable() || splice))
            .collect();
        fields.extend(
            right
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true)),
        );
        let schema = Arc::new(Schema::new(fields));
        // Left columns keep their positions, so the left order still holds
        // (SPLICE JOIN's output is one stream in timestamp order of both sides).
        let orderings = match left.output_ordering() {
            Some(o) if !splice => vec![o.iter().cloned().collect::<Vec<_>>()],
            _ => Vec::new(),
        };
        let partitions = if splice {
            1
        } else {
            left.output_partitioning().partition_count()
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(schema.clone(), orderings),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(TemporalJoinExec {
            left,
            right,
            probe: Arc::new(probe),
            schema,
            properties: Arc::new(properties),
            build: Arc::new(tokio::sync::OnceCell::new()),
        })
    }
}

impl DisplayAs for TemporalJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let p = &self.probe;
        write!(f, "TemporalJoinExec: ")?;
        describe(
            f,
            p.kind,
            (&p.left_ts, &p.right_ts),
            (&p.left_keys, &p.right_keys),
            p.tolerance,
            p.keep_unmatched,
        )
    }
}

impl ExecutionPlan for TemporalJoinExec {
    fn name(&self) -> &'static str {
        "TemporalJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        let left = if self.probe.kind == Kind::Splice {
            Distribution::SinglePartition
        } else {
            Distribution::UnspecifiedDistribution
        };
        vec![left, Distribution::SinglePartition]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![self.probe.kind != Kind::Splice, false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        let p = &self.probe;
        for e in p
            .left_keys
            .iter()
            .chain(&p.right_keys)
            .chain([&p.left_ts, &p.right_ts])
        {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [left, right]: [Arc<dyn ExecutionPlan>; 2] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("TemporalJoinExec takes two inputs".into()))?;
        Ok(Arc::new(TemporalJoinExec::new(
            left,
            right,
            self.probe.as_ref().clone(),
        )?))
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let right = self.right.clone();
        let probe = self.probe.clone();
        let schema = self.schema.clone();
        let out_schema = schema.clone();
        if probe.kind == Kind::Splice {
            let left = self.left.clone();
            let stream = futures::stream::once(async move {
                let batches = splice(left, right, &probe, context, &out_schema).await?;
                Ok::<_, DataFusionError>(futures::stream::iter(batches))
            })
            .try_flatten();
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)));
        }
        let left = self.left.execute(partition, context.clone())?;
        let cell = self.build.clone();
        let stream = futures::stream::once(async move {
            let build = cell
                .get_or_try_init(|| async {
                    SideIndex::read(right, &probe.right_keys, &probe.right_ts, context)
                        .await
                        .map(Arc::new)
                })
                .await?
                .clone();
            Ok::<_, DataFusionError>(left.map(move |batch| probe.join(&build, batch?, &out_schema)))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

impl Probe {
    /// The right row (index into the build side) that a left row at `ts` meets
    /// among one key's rows.
    fn find(&self, group: &[(i64, u32)], ts: i64) -> Option<u32> {
        let (t, row) = latest(group, ts, self.kind == Kind::Lt)?;
        match self.tolerance {
            Some(tolerance) if ts.saturating_sub(t) > tolerance => None,
            _ => Some(row),
        }
    }

    /// One left batch with its matches.
    fn join(
        &self,
        build: &SideIndex,
        batch: RecordBatch,
        schema: &SchemaRef,
    ) -> DfResult<RecordBatch> {
        let n = batch.num_rows();
        let ts = micros(self.left_ts.evaluate(&batch)?.into_array(n)?)?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let keys = evaluate(&self.left_keys, &batch)?;
        let valid = key_validity(&keys);
        let rows = match &build.converter {
            Some(c) => Some(c.convert_columns(&keys)?),
            None => None,
        };
        let no_key: &[u8] = &[];
        let mut matches = UInt32Builder::with_capacity(n);
        let mut kept = Vec::new();
        for i in 0..n {
            let found = if ts.is_null(i) || valid.as_ref().is_some_and(|v| v.is_null(i)) {
                None
            } else {
                let key = rows.as_ref().map_or(no_key, |r| r.row(i).data());
                build
                    .by_key
                    .get(key)
                    .and_then(|group| self.find(group, ts.value(i)))
            };
            if self.keep_unmatched {
                matches.append_option(found);
            } else if let Some(row) = found {
                matches.append_value(row);
                kept.push(i as u32);
            }
        }
        let matches = matches.finish();
        let mut columns: Vec<ArrayRef> = if self.keep_unmatched {
            batch.columns().to_vec()
        } else {
            let kept = UInt32Array::from(kept);
            batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &kept, None))
                .collect::<Result<_, _>>()?
        };
        for c in build.rows.columns() {
            columns.push(take(c.as_ref(), &matches, None)?);
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Rows of SPLICE JOIN output per batch.
const SPLICE_BATCH_ROWS: usize = 8192;

/// SPLICE JOIN: every row of both sides in timestamp order (left before right
/// at equal timestamps, then input order), each with the latest row of equal
/// keys of the other side at or before it. Both sides are read into memory.
async fn splice(
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    probe: &Probe,
    context: Arc<TaskContext>,
    schema: &SchemaRef,
) -> DfResult<Vec<DfResult<RecordBatch>>> {
    let l = SideIndex::read(left, &probe.left_keys, &probe.left_ts, context.clone()).await?;
    let r = SideIndex::read(right, &probe.right_keys, &probe.right_ts, context).await?;
    // (timestamp, side (0 left, 1 right), the row, its partner on the other side).
    let mut events: Vec<(Option<i64>, u8, u32, Option<u32>)> =
        Vec::with_capacity(l.rows.num_rows() + r.rows.num_rows());
    for (side, own, other) in [(0, &l, &r), (1, &r, &l)] {
        for (key, group) in &own.by_key {
            let other = other.by_key.get(key);
            for &(ts, row) in group {
                let partner = other.and_then(|g| latest(g, ts, false)).map(|(_, row)| row);
                events.push((Some(ts), side, row, partner));
            }
        }
        events.extend(own.unindexed.iter().map(|&(ts, row)| (ts, side, row, None)));
    }
    events.sort_unstable_by_key(|&(ts, side, row, _)| (ts, side, row));
    Ok(events
        .chunks(SPLICE_BATCH_ROWS)
        .map(|chunk| {
            let (left_rows, right_rows): (Vec<Option<u32>>, Vec<Option<u32>>) = chunk
                .iter()
                .map(|&(_, side, row, partner)| {
                    if side == 0 {
                        (Some(row), partner)
                    } else {
                        (partner, Some(row))
                    }
                })
                .unzip();
            let (left_rows, right_rows) =
                (UInt32Array::from(left_rows), UInt32Array::from(right_rows));
            let mut columns = Vec::with_capacity(schema.fields().len());
            for c in l.rows.columns() {
                columns.push(take(c.as_ref(), &left_rows, None)?);
            }
            for c in r.rows.columns() {
                columns.push(take(c.as_ref(), &right_rows, None)?);
            }
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect())
}
