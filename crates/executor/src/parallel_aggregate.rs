//! Aggregates over a table scan on every core.
//!
//! A scan is planned as one stream in designated-timestamp order, because
//! results without ORDER BY keep that order (`LIMIT 10` is the first ten rows).
//! An aggregate whose answer does not depend on the order of its input rows
//! (count, sum, min, max, avg, ...) does not need it: this rule, run after
//! DataFusion's own, cuts the scan under such an aggregate into one stretch of
//! rows per core, runs the partial aggregate on each, and merges the partial
//! states, so the scan, the filters and the partial aggregation run in
//! parallel. Aggregates that read rows in order (QuestDB's `first`/`last`,
//! anything with an ORDER BY) keep the single ordered stream.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};

use crate::scan::StorageScanExec;

/// Aggregate functions whose result is the same whatever order the rows
/// arrive in, and whose partial states merge.
const ORDER_INSENSITIVE: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "mean",
    "bool_and",
    "bool_or",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var",
    "var_pop",
    "var_samp",
    "approx_distinct",
];

#[derive(Debug, Default)]
pub(crate) struct ParallelAggregate;

impl PhysicalOptimizerRule for ParallelAggregate {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let cores = config.execution.target_partitions;
        if cores < 2 {
            return Ok(plan);
        }
        plan.transform_down(|node| {
            let parallel = match node.downcast_ref::<AggregateExec>() {
                Some(aggregate) => parallel(aggregate, cores)?,
                None => None,
            };
            Ok(match parallel {
                // The new subtree is final: do not visit the aggregate it holds.
                Some(p) => Transformed::new(p, true, TreeNodeRecursion::Jump),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "tidemark_parallel_aggregate"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `aggregate` (partial or single-stage) over a scan split `cores` ways, or
/// `None` where that would change its answer or gain nothing.
fn parallel(aggregate: &AggregateExec, cores: usize) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let mode = aggregate.mode();
    if !matches!(mode, AggregateMode::Partial | AggregateMode::Single)
        || !aggregate.aggr_expr().iter().all(|a| order_insensitive(a))
    {
        return Ok(None);
    }
    let Some(input) = split_scan(aggregate.input(), cores)? else {
        return Ok(None);
    };
    let partial = AggregateExec::try_new(
        AggregateMode::Partial,
        aggregate.group_expr().clone(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        input,
        aggregate.input_schema(),
    )?;
    if *mode == AggregateMode::Partial {
        let partial = partial.with_limit_options(aggregate.limit_options());
        return Ok(Some(Arc::new(CoalescePartitionsExec::new(Arc::new(
            partial,
        )))));
    }
    let merged = Arc::new(CoalescePartitionsExec::new(Arc::new(partial)));
    let last = AggregateExec::try_new(
        AggregateMode::Final,
        aggregate.group_expr().as_final(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        merged,
        aggregate.input_schema(),
    )?
    .with_limit_options(aggregate.limit_options());
    Ok(Some(Arc::new(last)))
}

fn order_insensitive(aggregate: &AggregateFunctionExpr) -> bool {
    aggregate.order_bys().is_empty() && ORDER_INSENSITIVE.contains(&aggregate.fun().name())
}

/// `plan` with the table scan at its bottom split `cores` ways, when `plan` is
/// a scan under row-at-a-time operators (filters, projections, the yield
/// points DataFusion adds) that take no
/// row limit; `None` otherwise.
fn split_scan(
    plan: &Arc<dyn ExecutionPlan>,
    cores: usize,
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    if plan.fetch().is_some() {
        return Ok(None);
    }
    if let Some(scan) = plan.downcast_ref::<StorageScanExec>() {
        return Ok(scan
            .split(cores)
            .map(|s| Arc::new(s) as Arc<dyn ExecutionPlan>));
    }
    let row_at_a_time = plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<ProjectionExec>().is_some()
        || plan.downcast_ref::<CooperativeExec>().is_some();
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    if !row_at_a_time {
        return Ok(None);
    }
    match split_scan(child, cores)? {
        Some(split) => Ok(Some(plan.clone().replace_children(
            vec![split],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?)),
        None => Ok(None),
    }
}
