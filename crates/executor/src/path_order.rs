//! Rows in time order for the aggregates of `crate::path_aggregates`.
//!
//! Their calls carry `ORDER BY ts`, but DataFusion treats an aggregate's
//! ordering as a wish: it sorts only where that is free, and its own ordered
//! aggregates (`first_value`, `array_agg`) sort inside the accumulator. This
//! rule, run after DataFusion's own, makes the wish a requirement for those
//! aggregates: where an aggregate reading raw rows does not get them in its
//! order, each input stream is sorted, and the streams of a partial aggregate
//! are merged into one, so that its partial result is one run in time. A scan
//! of a table already delivers its rows in designated-timestamp order and is
//! left alone.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, ExecutionPlan, ExecutionPlanProperties, ReplaceChildrenOptions,
};

use crate::path_aggregates::PATH_AGGREGATES;
use crate::scan::StorageScanExec;

#[derive(Debug, Default)]
pub(crate) struct PathInputOrder;

impl PhysicalOptimizerRule for PathInputOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            match ordered_input(aggregate)? {
                Some(input) => Ok(Transformed::yes(Arc::clone(&node).replace_children(
                    vec![input],
                    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                )?)),
                None => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "tidemark_path_input_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan` is a table scan, under operators that keep rows in their
/// order, whose column `column` is the table's designated timestamp: the scan
/// reads rows in that order (it does not declare it to DataFusion).
fn scan_ordered_by(plan: &Arc<dyn ExecutionPlan>, column: usize) -> bool {
    if let Some(scan) = plan.downcast_ref::<StorageScanExec>() {
        return scan.ordered_by(column);
    }
    let [child] = plan.children()[..] else {
        return false;
    };
    let below = if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        projection
            .expr()
            .get(column)
            .and_then(|p| p.expr.downcast_ref::<Column>())
            .map(Column::index)
    } else if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        match filter.projection() {
            Some(kept) => kept.get(column).copied(),
            None => Some(column),
        }
    } else if plan.downcast_ref::<CooperativeExec>().is_some() {
        Some(column)
    } else {
        None
    };
    below.is_some_and(|c| scan_ordered_by(child, c))
}

/// The input `aggregate` needs in place of its own, `None` when its own will do.
fn ordered_input(aggregate: &AggregateExec) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let reads_rows = matches!(
        aggregate.mode(),
        AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
    );
    let ordering = aggregate
        .aggr_expr()
        .iter()
        .find(|a| PATH_AGGREGATES.contains(&a.fun().name()))
        .and_then(|a| LexOrdering::new(a.order_bys().to_vec()));
    let (true, Some(ordering)) = (reads_rows, ordering) else {
        return Ok(None);
    };
    let input = aggregate.input();
    let sort = ordering.first();
    let in_scan_order = ordering.len() == 1
        && !sort.options.descending
        && sort
            .expr
            .downcast_ref::<Column>()
            .is_some_and(|c| scan_ordered_by(input, c.index()));
    if in_scan_order
        || input
            .equivalence_properties()
            .ordering_satisfy(ordering.clone())?
    {
        return Ok(None);
    }
    let sorted: Arc<dyn ExecutionPlan> = Arc::new(
        SortExec::new(ordering.clone(), Arc::clone(input)).with_preserve_partitioning(true),
    );
    // A partial aggregate over several streams would make a run of each, and
    // runs that overlap in time cannot be joined; a single-stage one over
    // streams partitioned by its keys sees every row of a group in one stream.
    let one_stream = *aggregate.mode() == AggregateMode::Partial
        && input.output_partitioning().partition_count() > 1;
    Ok(Some(if one_stream {
        Arc::new(SortPreservingMergeExec::new(ordering, sorted))
    } else {
        sorted
    }))
}
