//! `TemporalJoinExec`: the right side is read once into memory (under the
//! session's memory limit, like a hash join's build side) and indexed by key,
//! each key's rows in timestamp order; left batches then stream through, each
//! row finding its match by binary search. Output keeps the left side's order
//! and partitions; memory is the right side, never the left.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt32Builder};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::{cast, concat_batches, take};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, HashMap, Result as DfResult, exec_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::{QueryPlanner, TaskContext};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
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

use super::logical::{Kind, TemporalJoin};

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
    build: Arc<tokio::sync::OnceCell<Arc<BuildSide>>>,
}

impl TemporalJoinExec {
    fn new(
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        probe: Probe,
    ) -> DfResult<Self> {
        let mut fields: Vec<Field> = left
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(
            right
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true)),
        );
        let schema = Arc::new(Schema::new(fields));
        // Left columns keep their positions, so the left order still holds.
        let orderings = left
            .output_ordering()
            .map(|o| vec![o.iter().cloned().collect::<Vec<_>>()])
            .unwrap_or_default();
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(schema.clone(), orderings),
            Partitioning::UnknownPartitioning(left.output_partitioning().partition_count()),
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
        let kind = match p.kind {
            Kind::Asof => "ASOF",
            Kind::Lt => "LT",
        };
        write!(
            f,
            "TemporalJoinExec: {kind} {} <- {}",
            p.left_ts, p.right_ts
        )?;
        for (l, r) in p.left_keys.iter().zip(&p.right_keys) {
            write!(f, ", {l} = {r}")?;
        }
        if let Some(t) = p.tolerance {
            write!(f, ", tolerance {t}us")?;
        }
        Ok(())
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
        vec![
            Distribution::UnspecifiedDistribution,
            Distribution::SinglePartition,
        ]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true, false]
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
        let left = self.left.execute(partition, context.clone())?;
        let right = self.right.clone();
        let cell = self.build.clone();
        let probe = self.probe.clone();
        let schema = self.schema.clone();
        let out_schema = schema.clone();
        let stream = futures::stream::once(async move {
            let build = cell
                .get_or_try_init(|| BuildSide::read(right, probe.clone(), context))
                .await?
                .clone();
            Ok::<_, DataFusionError>(left.map(move |batch| probe.join(&build, batch?, &out_schema)))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// The right side, indexed: for each key, its rows' (timestamp, row) in
/// timestamp order (input order among equal timestamps).
#[derive(Debug)]
struct BuildSide {
    rows: RecordBatch,
    by_key: HashMap<Box<[u8]>, Vec<(i64, u32)>>,
    converter: Option<RowConverter>,
    _reservation: MemoryReservation,
}

/// `array` as microseconds since the epoch.
fn micros(array: ArrayRef) -> DfResult<ArrayRef> {
    Ok(cast(
        &array,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?)
}

fn evaluate(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> DfResult<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
        .collect()
}

/// Rows whose keys are all non-null (a NULL key matches nothing).
fn key_validity(keys: &[ArrayRef]) -> Option<NullBuffer> {
    keys.iter().fold(None, |acc, k| {
        NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref())
    })
}

impl BuildSide {
    async fn read(
        right: Arc<dyn ExecutionPlan>,
        probe: Arc<Probe>,
        context: Arc<TaskContext>,
    ) -> DfResult<Arc<BuildSide>> {
        let reservation =
            MemoryConsumer::new("TemporalJoin right side").register(context.memory_pool());
        let schema = right.schema();
        let mut stream = right.execute(0, context)?;
        let mut batches = Vec::new();
        let mut by_key: HashMap<Box<[u8]>, Vec<(i64, u32)>> = HashMap::new();
        let mut converter = None;
        let mut row_count: usize = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            reservation.try_grow(batch.get_array_memory_size() + batch.num_rows() * 16)?;
            let ts = micros(
                probe
                    .right_ts
                    .evaluate(&batch)?
                    .into_array(batch.num_rows())?,
            )?;
            let ts = ts.as_primitive::<TimestampMicrosecondType>();
            let keys = evaluate(&probe.right_keys, &batch)?;
            let valid = key_validity(&keys);
            let rows = if keys.is_empty() {
                None
            } else {
                let converter = match &mut converter {
                    Some(c) => c,
                    None => converter.insert(RowConverter::new(
                        keys.iter()
                            .map(|k| SortField::new(k.data_type().clone()))
                            .collect(),
                    )?),
                };
                Some(converter.convert_columns(&keys)?)
            };
            for i in 0..batch.num_rows() {
                if ts.is_null(i) || valid.as_ref().is_some_and(|v| v.is_null(i)) {
                    continue;
                }
                let row = u32::try_from(row_count + i).map_err(|_| {
                    DataFusionError::ResourcesExhausted(
                        "a temporal join's right side holds more than 4 billion rows".into(),
                    )
                })?;
                let key: &[u8] = rows.as_ref().map_or(&[], |r| r.row(i).data());
                match by_key.get_mut(key) {
                    Some(group) => group.push((ts.value(i), row)),
                    None => {
                        reservation.try_grow(key.len() + 64)?;
                        by_key.insert(key.into(), vec![(ts.value(i), row)]);
                    }
                }
            }
            row_count += batch.num_rows();
            batches.push(batch);
        }
        // Usually already in order (a table scans in timestamp order): the
        // stable sort then only checks it.
        for group in by_key.values_mut() {
            group.sort_by_key(|(ts, _)| *ts);
        }
        let rows = concat_batches(&schema, &batches)?;
        drop(batches);
        // The left side's keys are converted with a converter of the same types.
        let converter = match converter {
            Some(c) => Some(c),
            None if probe.left_keys.is_empty() => None,
            None => Some(RowConverter::new(
                probe
                    .right_keys
                    .iter()
                    .map(|k| k.data_type(&schema).map(SortField::new))
                    .collect::<DfResult<Vec<_>>>()?,
            )?),
        };
        Ok(Arc::new(BuildSide {
            rows,
            by_key,
            converter,
            _reservation: reservation,
        }))
    }
}

impl Probe {
    /// The right row (index into the build side) that a left row at `ts` meets
    /// among one key's rows.
    fn find(&self, group: &[(i64, u32)], ts: i64) -> Option<u32> {
        let end = match self.kind {
            Kind::Asof => group.partition_point(|(t, _)| *t <= ts),
            Kind::Lt => group.partition_point(|(t, _)| *t < ts),
        };
        let (t, row) = *group.get(end.checked_sub(1)?)?;
        match self.tolerance {
            Some(tolerance) if ts.saturating_sub(t) > tolerance => None,
            _ => Some(row),
        }
    }

    /// One left batch with its matches.
    fn join(
        &self,
        build: &BuildSide,
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
