//! Planning that takes long without stalling the server. DataFusion's
//! optimizer and physical planner are CPU work with no await in it. On a tokio
//! worker, a plan of thousands of nodes (a CTE read many times over, a UNION
//! of thousands of branches: seconds to minutes of planning) would hold the
//! worker, and with it the runtime's I/O driver and timers, for as long as it
//! takes: every other connection, even `SELECT 1`, would wait. Such plans are
//! planned under `block_in_place`, which hands the worker's queue to another
//! thread meanwhile. Small plans (nearly all) are planned in place: the
//! hand-off costs a thread wake-up per statement.

use std::future::Future;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

/// Plans with more nodes than this (counted as a tree: a CTE read twice counts
/// twice, as the optimizer visits it twice) are planned off the worker.
const HEAVY_PLAN_NODES: usize = 512;

/// Whether optimizing and planning `plan` may take long enough to stall a worker.
pub(crate) fn is_heavy(plan: &LogicalPlan) -> bool {
    let mut nodes = 0usize;
    let _ = plan.apply_with_subqueries(|_| {
        nodes += 1;
        Ok(if nodes > HEAVY_PLAN_NODES {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    nodes > HEAVY_PLAN_NODES
}

/// Runs `planning` (of a plan `heavy` says is large) where it does not hold up
/// the runtime: under `block_in_place` on a multi-threaded runtime, awaited in
/// place otherwise (a single-threaded runtime has no other thread to hand over to).
pub(crate) async fn plan<F: Future>(heavy: bool, planning: F) -> F::Output {
    if heavy
        && let Ok(handle) = tokio::runtime::Handle::try_current()
        && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return tokio::task::block_in_place(|| handle.block_on(planning));
    }
    planning.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::LogicalPlanBuilder;

    #[test]
    fn a_union_of_many_branches_is_heavy_and_a_small_query_is_not() {
        let one = || LogicalPlanBuilder::empty(true);
        let small = one().build().expect("plan");
        assert!(!is_heavy(&small));
        let mut union = one();
        for _ in 0..HEAVY_PLAN_NODES {
            union = union.union(one().build().expect("plan")).expect("union");
        }
        assert!(is_heavy(&union.build().expect("plan")));
    }

    /// On a multi-threaded runtime with one worker, a heavy planning step does
    /// not keep another task from running meanwhile.
    #[test]
    fn heavy_planning_leaves_the_runtime_to_other_tasks() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let planning = tokio::spawn(plan(true, async move {
                let (tx, rx) = std::sync::mpsc::channel();
                tokio::spawn(async move {
                    let _ = tx.send(());
                });
                // Stands for CPU-bound planning: waits for the other task
                // without yielding to the runtime.
                rx.recv_timeout(std::time::Duration::from_secs(5)).is_ok()
            }));
            assert!(
                planning.await.expect("planning task"),
                "the other task ran while planning held its thread"
            );
        });
    }
}
