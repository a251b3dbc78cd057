//! Queries a statement runs over one table partition by partition (UPDATE,
//! DELETE, ALTER TABLE DROP PARTITION WHERE): planned once, with each
//! partition's bounds on the designated timestamp bound as values.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast;
use tidemark_storage::TableReader;

use crate::error::Result;
use crate::rewrite::{parse_query, quote_ident, with_parts};
use crate::session::Session;

/// (partition start, end, rows) per partition: the partition is the rows with
/// the designated timestamp in `[start, end)`.
pub(crate) fn partitions(reader: &TableReader) -> Vec<(i64, i64, u64)> {
    let mut out: Vec<(i64, i64, u64)> = Vec::new();
    for p in reader.partitions() {
        match out.last_mut() {
            Some(last) if last.0 == p.start => last.2 += p.rows,
            _ => out.push((p.start, p.end, p.rows)),
        }
    }
    out
}

/// A query over one table that a statement runs partition by partition:
/// planned once, each partition's bounds bound to `$1` and `$2`.
pub(crate) struct PartitionQuery {
    ctx: SessionContext,
    plan: LogicalPlan,
    /// Whether the table has a designated timestamp to bound (else it is one
    /// partition, read whole).
    ranged: bool,
    /// The unit of the designated timestamp (and of the partition bounds):
    /// microseconds, or nanoseconds for a TIMESTAMP_NS.
    unit: TimeUnit,
    /// The time zone of the designated timestamp's Arrow type (TIMESTAMPTZ):
    /// the bounds are given in it, as converting extreme plain bounds would
    /// overflow.
    zone: Option<Arc<str>>,
}

impl PartitionQuery {
    /// `SELECT {select_list} FROM table WHERE <partition> AND {condition}`, where
    /// the skeleton's `part(n)` identifiers stand for `parts[n]` (the user's
    /// expressions, put in as they were parsed).
    pub(crate) async fn plan(
        session: &Session,
        reader: &TableReader,
        select_list: &str,
        condition: &str,
        parts: &[&ast::Expr],
    ) -> Result<Self> {
        let ts = reader.meta().timestamp_name().map(quote_ident);
        let (unit, zone) = match reader.meta().timestamp_type().map(crate::types::arrow_type) {
            Some(DataType::Timestamp(unit, zone)) => (unit, zone),
            _ => (TimeUnit::Microsecond, None),
        };
        let range = match &ts {
            Some(ts) => format!("{ts} >= $1 AND {ts} < $2"),
            None => "TRUE".to_string(),
        };
        let sql = format!(
            "SELECT {select_list} FROM {} WHERE {range} AND {condition}",
            quote_ident(reader.name())
        );
        let query = with_parts(parse_query(&sql)?, parts);
        let (ctx, plan) = session
            .plan(ast::Statement::Query(query), &session.view()?, None)
            .await?;
        Ok(PartitionQuery {
            ctx,
            plan,
            ranged: ts.is_some(),
            unit,
            zone,
        })
    }

    /// The query's rows in the partition `[start, end)`.
    pub(crate) async fn rows(&self, start: i64, end: i64) -> Result<Vec<RecordBatch>> {
        let at = |t: i64| match self.unit {
            TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(t), self.zone.clone()),
            _ => ScalarValue::TimestampMicrosecond(Some(t), self.zone.clone()),
        };
        let plan = if self.ranged {
            self.plan
                .clone()
                .with_param_values(vec![at(start), at(end)])?
        } else {
            self.plan.clone()
        };
        Ok(self.ctx.execute_logical_plan(plan).await?.collect().await?)
    }
}
