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
                exprs.push((
                    Arc::new(SymbolKey {
                        symbol: expr.clone(),
                        dictionaries: dictionaries.clone(),
                        column,
                    }) as Arc<dyn PhysicalExpr>,
                    name.clone(),
                ));
                keyed.push(KeyedGroup {
                    position,
                    dictionaries,
                    column,
                });
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
            Some(k) => Arc::new(SymbolValue {
                key,
                dictionaries: k.dictionaries.clone(),
                column: k.column,
            }) as Arc<dyn PhysicalExpr>,
            None => key,
        };
        (expr, field.name().clone())
    });
    Ok(Arc::new(ProjectionExec::try_new(exprs, grouped)?))
}

/// The `Int32` keys of a SYMBOL column read by a scan.
#[derive(Debug)]
struct SymbolKey {
    symbol: Arc<dyn PhysicalExpr>,
    dictionaries: Arc<SymbolDictionaries>,
    column: usize,
}

/// The SYMBOL values of keys grouped by [`SymbolKey`].
#[derive(Debug)]
struct SymbolValue {
    key: Arc<dyn PhysicalExpr>,
    dictionaries: Arc<SymbolDictionaries>,
    column: usize,
}

impl SymbolKey {
    fn keys(&self, symbols: &dyn Array) -> DfResult<ArrayRef> {
        let dictionary = symbols
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| internal("a SYMBOL group column is not a dictionary array"))?;
        let expected = self.dictionaries.values(self.column).map_err(to_df)?;
        // Keys mean the same in every batch only over the scan's dictionary;
        // anything else would group wrongly, so it is refused, not guessed at.
        if !dictionary.values().to_data().ptr_eq(&expected.to_data()) {
            return Err(internal(
                "a SYMBOL group column does not carry its scan's dictionary",
            ));
        }
        Ok(Arc::new(dictionary.keys().clone()))
    }
}

impl SymbolValue {
    fn values(&self, keys: &dyn Array) -> DfResult<ArrayRef> {
        let keys = keys
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| internal("grouped SYMBOL keys are not Int32"))?;
        let values = self.dictionaries.values(self.column).map_err(to_df)?;
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
            keys.clone(),
            values.clone(),
        )?))
    }
}

fn internal(message: &str) -> DataFusionError {
    DataFusionError::Internal(message.to_string())
}

/// Evaluates `expr` on `batch` and hands its array to `f`.
fn map_array(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
    f: impl FnOnce(&dyn Array) -> DfResult<ArrayRef>,
) -> DfResult<ColumnarValue> {
    let array = expr.evaluate(batch)?.into_array(batch.num_rows())?;
    Ok(ColumnarValue::Array(f(array.as_ref())?))
}

impl PhysicalExpr for SymbolKey {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.symbol.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        map_array(&self.symbol, batch, |a| self.keys(a))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.symbol]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [symbol] =
            <[_; 1]>::try_from(children).map_err(|_| internal("symbol_key takes one argument"))?;
        Ok(Arc::new(SymbolKey {
            symbol,
            dictionaries: self.dictionaries.clone(),
            column: self.column,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "symbol_key({})", self.symbol)
    }
}

impl PhysicalExpr for SymbolValue {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8),
        ))
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.key.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        map_array(&self.key, batch, |a| self.values(a))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.key]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [key] = <[_; 1]>::try_from(children)
            .map_err(|_| internal("symbol_value takes one argument"))?;
        Ok(Arc::new(SymbolValue {
            key,
            dictionaries: self.dictionaries.clone(),
            column: self.column,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "symbol_value({})", self.key)
    }
}

impl fmt::Display for SymbolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_sql(f)
    }
}

impl fmt::Display for SymbolValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_sql(f)
    }
}

// Two expressions are the same when they read the same column of the same
// scan's dictionaries.
impl PartialEq for SymbolKey {
    fn eq(&self, other: &Self) -> bool {
        self.symbol.eq(&other.symbol)
            && Arc::ptr_eq(&self.dictionaries, &other.dictionaries)
            && self.column == other.column
    }
}

impl Eq for SymbolKey {}

impl Hash for SymbolKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.symbol.hash(state);
        Arc::as_ptr(&self.dictionaries).hash(state);
        self.column.hash(state);
    }
}

impl PartialEq for SymbolValue {
    fn eq(&self, other: &Self) -> bool {
        self.key.eq(&other.key)
            && Arc::ptr_eq(&self.dictionaries, &other.dictionaries)
            && self.column == other.column
    }
}

impl Eq for SymbolValue {}

impl Hash for SymbolValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        Arc::as_ptr(&self.dictionaries).hash(state);
        self.column.hash(state);
    }
}
