//! The walk Tidemark's analyzer rules share (`pg_casts`, `uuid_values`): every
//! expression of a plan and of its subqueries, bottom up, rewritten with the
//! schema it reads, keeping the names of the columns it makes.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};

/// Applies `rewrite` to every expression node of `plan` (subqueries included).
pub(crate) fn rewrite_expressions(
    plan: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|p| {
        // The schema the plan's expressions read (its inputs'; a scan's own).
        let mut schema = DFSchema::empty();
        for input in p.inputs() {
            schema.merge(input.schema());
        }
        if p.inputs().is_empty() {
            schema.merge(p.schema());
        }
        // A rewritten expression must not rename the column it makes.
        let names = NamePreserver::new(&p);
        p.map_expressions(|e| {
            let name = names.save(&e);
            Ok(e.transform_up(|e| rewrite(e, &schema))?
                .update_data(|e| name.restore(e)))
        })
    })
    .map(|t| t.data)
}
