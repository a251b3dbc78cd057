//! GROUP BY on SYMBOL columns by their keys.
//!
//! A SYMBOL column is read as a dictionary array: an `Int32` key per row into
//! the column's strings. DataFusion groups a dictionary column through its
//! generic row encoding, which re-encodes every row's string; on
//! `max(price) ... GROUP BY sym` that was about 70% of the query. Every SYMBOL
//! array one scan yields shares that scan's dictionary (`scan.rs`), so the key
//! alone identifies the value: this rule, run after DataFusion's own, groups
//! such a column by its `Int32` key (DataFusion's fast primitive hash table) and
//! turns the keys of the (few) result rows back into the same dictionary
//! values above the final aggregate. Results and their types are unchanged.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, DictionaryArray};
use datafusion::arrow::datatypes::{DataType, Int32Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};

use crate::provider::to_df;
use crate::scan::{StorageScanExec, SymbolDictionaries};

#[derive(Debug, Default)]
pub(crate) struct SymbolKeyGrouping;

impl PhysicalOptimizerRule for SymbolKeyGrouping {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let rewritten = match node.downcast_ref::<AggregateExec>() {
                Some(aggregate) => match aggregate.mode() {
                    AggregateMode::Single | AggregateMode::SinglePartitioned => {
                        group_single_stage(aggregate)?
                    }
                    AggregateMode::Final | AggregateMode::FinalPartitioned => {
                        group_two_stages(aggregate)?
                    }
                    // A partial aggregate is rewritten with its final one.
                    AggregateMode::Partial | AggregateMode::PartialReduce => None,
                },
                None => None,
            };
            Ok(match rewritten {
                Some(p) => Transformed::new(p, true, TreeNodeRecursion::Jump),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "tidemark_symbol_key_grouping"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A SYMBOL group column: its position among the group columns, and the
/// dictionary (scan column `column` of `dictionaries`) its keys index.
struct KeyedGroup {
    position: usize,
    dictionaries: Arc<SymbolDictionaries>,
    column: usize,
}

/// `aggregate` grouping its SYMBOL columns by key, under a projection that
/// turns the keys back into values; `None` when no group column is a SYMBOL
/// column straight from a scan.
fn group_single_stage(aggregate: &AggregateExec) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some((by_key, keyed)) = keyed_group_by(aggregate)? else {
        return Ok(None);
    };
    let grouped = rebuild(aggregate, by_key, aggregate.input().clone())?;
    Ok(Some(decoded(grouped, &keyed)?))
}

/// The same for a final aggregate: its partial aggregate (below the exchanges
/// DataFusion placed between them) groups by key, the final one merges by key,
/// and a projection above turns the keys back into values.
fn group_two_stages(last: &AggregateExec) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    // The exchanges between the two stages, top down.
    let mut exchanges: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    let mut below = last.input().clone();
    let partial = loop {
        if let Some(a) = below.downcast_ref::<AggregateExec>() {
            if *a.mode() != AggregateMode::Partial {
                return Ok(None);
            }
            break a;
        }
        let passes_rows = below.downcast_ref::<RepartitionExec>().is_some()
            || below.downcast_ref::<CoalescePartitionsExec>().is_some()
            || below.downcast_ref::<CooperativeExec>().is_some();
        let [child] = below.children()[..] else {
            return Ok(None);
        };
        if !passes_rows {
            return Ok(None);
        }
        let child = child.clone();
        exchanges.push(below);
        below = child;
    };
    let Some((by_key, keyed)) = keyed_group_by(partial)? else {
        return Ok(None);
    };
    let mut merged = rebuild(partial, by_key, partial.input().clone())?;
    for exchange in exchanges.into_iter().rev() {
        merged = exchange.replace_children(
            vec![merged],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
    }
    let grouped = rebuild(last, last.group_expr().clone(), merged)?;
    Ok(Some(decoded(grouped, &keyed)?))
}

/// `aggregate`'s grouping with every SYMBOL column straight from a scan
/// replaced by its key, and those columns; `None` when there is none (or the
/// grouping is a GROUPING SETS/CUBE/ROLLUP, left as it is).
fn keyed_group_by(
    aggregate: &AggregateExec,
) -> DfResult<Option<(PhysicalGroupBy, Vec<KeyedGroup>)>> {
    let group_by = aggregate.group_expr();
    if !group_by.is_single() {
        return Ok(None);
    }
    let mut keyed = Vec::new();
    let mut exprs = Vec::with_capacity(group_by.expr().len());
    for (position, (expr, name)) in group_by.expr().iter().enumerate() {
        let source = expr
            .downcast_ref::<Column>()
            .and_then(|c| symbol_source(aggregate.input(), c.index()));
        match source {
            Some((dictionaries, column)) => {
                let source = KeyedGroup {
                    position,
                    dictionaries,
                    column,
                };
                exprs.push((
                    SymbolKeyExpr::over(expr.clone(), Direction::ToKey, &source),
                    name.clone(),
                ));
                keyed.push(source);
            }
            None => exprs.push((expr.clone(), name.clone())),
        }
    }
    if keyed.is_empty() {
        return Ok(None);
    }
    Ok(Some((PhysicalGroupBy::new_single(exprs), keyed)))
}

/// The SYMBOL column of a table scan that column `index` of `plan`'s output
/// is, unchanged, through filters, projections and exchanges.
fn symbol_source(
    plan: &Arc<dyn ExecutionPlan>,
    index: usize,
) -> Option<(Arc<SymbolDictionaries>, usize)> {
    if let Some(scan) = plan.downcast_ref::<StorageScanExec>() {
        let symbol = matches!(
            plan.schema().fields().get(index)?.data_type(),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8
        );
        return symbol.then(|| (scan.dictionaries().clone(), index));
    }
    let [child] = plan.children()[..] else {
        return None;
    };
    let index = if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        p.expr().get(index)?.expr.downcast_ref::<Column>()?.index()
    } else if let Some(f) = plan.downcast_ref::<FilterExec>() {
        match f.projection() {
            Some(projection) => *projection.get(index)?,
            None => index,
        }
    } else if plan.downcast_ref::<CooperativeExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some()
        || plan.downcast_ref::<RepartitionExec>().is_some()
    {
        index
    } else {
        return None;
    };
    symbol_source(child, index)
}

/// `aggregate` with grouping `group_by` over `input`, otherwise as it was.
fn rebuild(
    aggregate: &AggregateExec,
    group_by: PhysicalGroupBy,
    input: Arc<dyn ExecutionPlan>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    Ok(Arc::new(
        AggregateExec::try_new(
            *aggregate.mode(),
            group_by,
            aggregate.aggr_expr().to_vec(),
            aggregate.filter_expr().to_vec(),
            input,
            aggregate.input_schema(),
        )?
        .with_limit_options(aggregate.limit_options()),
    ))
}

/// `grouped`'s output with the keys of the `keyed` group columns turned back
/// into their SYMBOL values.
fn decoded(
    grouped: Arc<dyn ExecutionPlan>,
    keyed: &[KeyedGroup],
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = grouped.schema();
    let exprs = schema.fields().iter().enumerate().map(|(i, field)| {
        let key = Arc::new(Column::new(field.name(), i)) as Arc<dyn PhysicalExpr>;
        let expr = match keyed.iter().find(|k| k.position == i) {
            Some(k) => SymbolKeyExpr::over(key, Direction::ToValue, k),
            None => key,
        };
        (expr, field.name().clone())
    });
    Ok(Arc::new(ProjectionExec::try_new(exprs, grouped)?))
}

/// Which way a [`SymbolKeyExpr`] converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    /// A SYMBOL column read by the scan to its `Int32` keys.
    ToKey,
    /// Grouped keys back to SYMBOL values (the same dictionary array type).
    ToValue,
}

/// Converts between a scan's SYMBOL column and its keys, over the scan's own
/// dictionary (scan column `column` of `dictionaries`).
#[derive(Debug)]
struct SymbolKeyExpr {
    input: Arc<dyn PhysicalExpr>,
    direction: Direction,
    dictionaries: Arc<SymbolDictionaries>,
    column: usize,
}

impl SymbolKeyExpr {
    /// `input` converted `direction` over the dictionary of `source`.
    fn over(
        input: Arc<dyn PhysicalExpr>,
        direction: Direction,
        source: &KeyedGroup,
    ) -> Arc<dyn PhysicalExpr> {
        Arc::new(SymbolKeyExpr {
            input,
            direction,
            dictionaries: source.dictionaries.clone(),
            column: source.column,
        })
    }

    fn convert(&self, input: &dyn Array) -> DfResult<ArrayRef> {
        let values = self.dictionaries.values(self.column).map_err(to_df)?;
        match self.direction {
            Direction::ToKey => {
                let dictionary = input
                    .as_dictionary_opt::<Int32Type>()
                    .ok_or_else(|| internal("a SYMBOL group column is not a dictionary array"))?;
                // Keys mean the same in every batch only over the scan's
                // dictionary; anything else would group wrongly, so it is
                // refused, not guessed at.
                if !dictionary.values().to_data().ptr_eq(&values.to_data()) {
                    return Err(internal(
                        "a SYMBOL group column does not carry its scan's dictionary",
                    ));
                }
                Ok(Arc::new(dictionary.keys().clone()))
            }
            Direction::ToValue => {
                let keys = input
                    .as_primitive_opt::<Int32Type>()
                    .ok_or_else(|| internal("grouped SYMBOL keys are not Int32"))?;
                Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
                    keys.clone(),
                    values.clone(),
                )?))
            }
        }
    }
}

fn internal(message: &str) -> DataFusionError {
    DataFusionError::Internal(message.to_string())
}

impl PhysicalExpr for SymbolKeyExpr {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(match self.direction {
            Direction::ToKey => DataType::Int32,
            Direction::ToValue => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
        })
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.input.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        let input = self.input.evaluate(batch)?.into_array(batch.num_rows())?;
        Ok(ColumnarValue::Array(self.convert(input.as_ref())?))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| internal("a SYMBOL key conversion takes one argument"))?;
        Ok(Arc::new(SymbolKeyExpr {
            input,
            direction: self.direction,
            dictionaries: self.dictionaries.clone(),
            column: self.column,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direction {
            Direction::ToKey => write!(f, "symbol_key({})", self.input),
            Direction::ToValue => write!(f, "symbol_value({})", self.input),
        }
    }
}

impl fmt::Display for SymbolKeyExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_sql(f)
    }
}

// Two conversions are the same when they convert the same input the same way
// over the same scan's dictionary.
impl PartialEq for SymbolKeyExpr {
    fn eq(&self, other: &Self) -> bool {
        self.input.eq(&other.input)
            && self.direction == other.direction
            && Arc::ptr_eq(&self.dictionaries, &other.dictionaries)
            && self.column == other.column
    }
}

impl Eq for SymbolKeyExpr {}

impl Hash for SymbolKeyExpr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.direction.hash(state);
        Arc::as_ptr(&self.dictionaries).hash(state);
        self.column.hash(state);
    }
}
