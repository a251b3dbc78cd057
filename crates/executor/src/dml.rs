//! UPDATE and DELETE: copy-on-write of the partitions they touch.
//!
//! For each partition, DataFusion computes the partition's new rows (those that
//! stay, or every row with the assignments applied where the condition holds);
//! a partition whose rows change is replaced whole by a new version in one
//! storage request, and all requests of the statement commit together.

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use tidemark_storage::{Batch, Request, TableReader};

use crate::convert::array_to_column;
use crate::ddl::object_name;
use crate::error::{ExecError, Result, sqlstate};
use crate::partition_query::{PartitionQuery, partitions};
use crate::rewrite::{part, quote_ident};
use crate::session::{Output, Session};

fn table_of(session: &Session, name: &ast::ObjectName) -> Result<TableReader> {
    session.table(&object_name(name)?)
}

/// A storage batch from query batches, one output column per table column.
fn to_batch(reader: &TableReader, batches: &[RecordBatch]) -> Result<Batch> {
    let mut out: Option<Batch> = None;
    for b in batches {
        let mut batch = Batch::new();
        for (i, c) in reader.meta().columns.iter().enumerate() {
            batch = batch.with(
                c.name.clone(),
                array_to_column(b.column(i), c.column_type, &c.name)?,
            );
        }
        out = Some(match out {
            None => batch,
            Some(mut acc) => {
                for ((_, a), (_, c)) in acc.columns.iter_mut().zip(batch.columns) {
                    a.extend(&c)?;
                }
                acc
            }
        });
    }
    Ok(out.unwrap_or_default())
}

pub(crate) async fn delete(session: &mut Session, d: ast::Delete) -> Result<Output> {
    let tables = match &d.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    let [
        ast::TableWithJoins {
            relation: ast::TableFactor::Table { name, .. },
            joins,
        },
    ] = tables.as_slice()
    else {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "DELETE from more than one table is not supported",
        ));
    };
    if !joins.is_empty() || d.using.is_some() || d.returning.is_some() || d.limit.is_some() {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "DELETE with USING, RETURNING or LIMIT is not supported",
        ));
    }
    let reader = table_of(session, name)?;
    // The rows that stay: those the condition does not hold for.
    let (condition, parts) = match &d.selection {
        Some(cond) => (format!("NOT coalesce(({}), false)", part(0)), vec![cond]),
        None => ("FALSE".to_string(), Vec::new()),
    };
    let query = PartitionQuery::plan(session, &reader, "*", &condition, &parts).await?;
    let mut requests = Vec::new();
    let mut deleted = 0u64;
    for (start, end, rows) in partitions(&reader) {
        let kept = query.rows(start, end).await?;
        let kept_rows: u64 = kept.iter().map(|b| b.num_rows() as u64).sum();
        if kept_rows == rows {
            continue;
        }
        deleted += rows - kept_rows;
        requests.push(Request::ReplacePartition {
            table: reader.name().to_string(),
            at: start,
            batch: to_batch(&reader, &kept)?,
        });
    }
    session.submit(requests).await?;
    Ok(Output::command(format!("DELETE {deleted}")))
}

pub(crate) async fn update(session: &mut Session, u: ast::Update) -> Result<Output> {
    let ast::TableWithJoins {
        relation: ast::TableFactor::Table { name, .. },
        joins,
    } = &u.table
    else {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "UPDATE of this kind of relation is not supported",
        ));
    };
    if !joins.is_empty() || u.from.is_some() || u.returning.is_some() || u.limit.is_some() {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "UPDATE with FROM, RETURNING or LIMIT is not supported",
        ));
    }
    let reader = table_of(session, name)?;
    let meta = reader.meta().clone();
    // The user's expressions, named in the query by `part(n)`: the condition
    // first, then the assigned values.
    let mut parts: Vec<&ast::Expr> = Vec::new();
    let hit = match &u.selection {
        Some(cond) => {
            parts.push(cond);
            format!("coalesce(({}), false)", part(0))
        }
        None => "TRUE".to_string(),
    };
    let mut assigned: Vec<Option<String>> = vec![None; meta.columns.len()];
    for a in &u.assignments {
        let ast::AssignmentTarget::ColumnName(target) = &a.target else {
            return Err(ExecError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "UPDATE of a column tuple is not supported",
            ));
        };
        let col = object_name(target).map_err(|_| {
            ExecError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!(
                    "column \"{target}\" of relation \"{}\" does not exist",
                    reader.name()
                ),
            )
        })?;
        let i = meta.column_index(&col).ok_or_else(|| {
            ExecError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!(
                    "column \"{col}\" of relation \"{}\" does not exist",
                    reader.name()
                ),
            )
        })?;
        if Some(meta.columns[i].id) == meta.timestamp_column {
            return Err(ExecError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("the designated timestamp column \"{col}\" cannot be updated"),
            ));
        }
        assigned[i] = Some(part(parts.len()));
        parts.push(&a.value);
    }
    let mut select_list: Vec<String> = meta
        .columns
        .iter()
        .zip(&assigned)
        .map(|(c, a)| match a {
            Some(expr) => format!(
                "CASE WHEN {hit} THEN ({expr}) ELSE {q} END AS {q}",
                q = quote_ident(&c.name)
            ),
            None => quote_ident(&c.name),
        })
        .collect();
    select_list.push(format!("{hit} AS \"__tidemark_hit\""));
    let query =
        PartitionQuery::plan(session, &reader, &select_list.join(", "), "TRUE", &parts).await?;
    let mut requests = Vec::new();
    let mut updated = 0u64;
    for (start, end, _) in partitions(&reader) {
        let batches = query.rows(start, end).await?;
        let hits: u64 = batches
            .iter()
            .map(|b| {
                b.column(b.num_columns() - 1)
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .map_or(0, |h| h.true_count() as u64)
            })
            .sum();
        if hits == 0 {
            continue;
        }
        updated += hits;
        requests.push(Request::ReplacePartition {
            table: reader.name().to_string(),
            at: start,
            batch: to_batch(&reader, &batches)?,
        });
    }
    session.submit(requests).await?;
    Ok(Output::command(format!("UPDATE {updated}")))
}
