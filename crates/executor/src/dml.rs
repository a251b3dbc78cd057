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
use crate::rewrite::quote_ident;
use crate::session::{Output, Session};

fn table_of(session: &Session, name: &ast::ObjectName) -> Result<TableReader> {
    session.table(&object_name(name)?)
}

/// (partition start, `[from, to)` filter on the designated timestamp, rows) per partition.
fn partitions(reader: &TableReader) -> Vec<(i64, String, u64)> {
    let ts = reader.meta().timestamp_name().map(quote_ident);
    let mut out: Vec<(i64, String, u64)> = Vec::new();
    for p in reader.partitions() {
        match out.last_mut() {
            Some(last) if last.0 == p.start => last.2 += p.rows,
            _ => {
                let range = match (&ts, p.start) {
                    (Some(ts), start) if start != i64::MIN => format!(
                        "{ts} >= to_timestamp_micros({start}) AND {ts} < to_timestamp_micros({})",
                        p.end
                    ),
                    _ => "TRUE".to_string(),
                };
                out.push((p.start, range, p.rows));
            }
        }
    }
    out
}

async fn select(session: &Session, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(session.run_sql(sql).await?.1)
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
    let cond = d
        .selection
        .map(|e| e.to_string())
        .unwrap_or_else(|| "TRUE".into());
    let mut requests = Vec::new();
    let mut deleted = 0u64;
    for (start, range, rows) in partitions(&reader) {
        let sql = format!(
            "SELECT * FROM {} WHERE {range} AND NOT coalesce(({cond}), false)",
            quote_ident(reader.name())
        );
        let kept = select(session, &sql).await?;
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
        assigned[i] = Some(a.value.to_string());
    }
    let cond = u
        .selection
        .map(|e| e.to_string())
        .unwrap_or_else(|| "TRUE".into());
    let hit = format!("coalesce(({cond}), false)");
    let select_list: Vec<String> = meta
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
    let mut requests = Vec::new();
    let mut updated = 0u64;
    for (start, range, _) in partitions(&reader) {
        let sql = format!(
            "SELECT {}, {hit} AS \"__tidemark_hit\" FROM {} WHERE {range}",
            select_list.join(", "),
            quote_ident(reader.name())
        );
        let batches = select(session, &sql).await?;
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
