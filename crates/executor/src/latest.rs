//! `LATEST ON ts PARTITION BY k`: the query's table is replaced by the rows that
//! are last (by `ts`) in their `k` group among those the WHERE clause keeps:
//!
//! ```sql
//! SELECT <items> FROM (
//!   SELECT <columns> FROM (
//!     SELECT <columns>, row_number() OVER (PARTITION BY k ORDER BY ts DESC) AS rn
//!     FROM t AS <alias> WHERE <condition>) WHERE rn = 1
//! ) AS <alias> [ORDER BY ...] [LIMIT ...]
//! ```
//!
//! Without a WHERE clause the window (a sort of the whole table) is not needed:
//! rows are stored in timestamp order, so reading only the key columns from the
//! newest row backwards finds each key's last row (`newest_per_key`), and the
//! query then runs over those rows alone. So does a WHERE clause on the keys
//! alone (`WHERE sym IN ('a', 'b')`), which then filters those rows.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, new_empty_array};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::sql::sqlparser::ast;
use tidemark_parser::LatestOn;
use tidemark_storage::types::ColumnType;
use tidemark_storage::{Piece, RowSource, TableReader};

use crate::convert::{read_piece_array, symbol_keys, symbol_values};
use crate::ddl::object_name;
use crate::error::{ExecError, Result, sqlstate};
use crate::rewrite::{parse_query, part, quote_ident, with_parts};
use crate::session::{Output, Session};

/// A LATEST ON query rewritten over its table: without a WHERE clause it reads
/// `NEWEST_ROWS`, the newest row of every combination of the `newest_per` key
/// columns; with one, a window keeps each key's last row among those it keeps.
struct Rewritten {
    query: Box<ast::Query>,
    reader: TableReader,
    newest_per: Option<Vec<usize>>,
}

pub(crate) async fn run(
    session: &Session,
    query: Box<ast::Query>,
    latest: LatestOn,
) -> Result<Output> {
    let Rewritten {
        query,
        reader,
        newest_per,
    } = rewrite(session, query, latest, true)?;
    let Some(keys) = newest_per else {
        let (schema, rows) = session.stream_query(ast::Statement::Query(query)).await?;
        return Ok(Output::Rows { schema, rows });
    };
    let rows = newest_per_key(&reader, &keys)?;
    let (schema, batches) = session
        .run_query_over(ast::Statement::Query(query), Some((NEWEST_ROWS, rows)))
        .await?;
    Ok(Output::rows(schema, batches))
}

/// The columns a LATEST ON query returns, planned without reading a row.
pub(crate) async fn describe(
    session: &Session,
    query: Box<ast::Query>,
    latest: LatestOn,
) -> Result<SchemaRef> {
    let Rewritten {
        query,
        reader,
        newest_per,
    } = rewrite(session, query, latest, true)?;
    let newest = newest_per.map(|_| (NEWEST_ROWS, crate::provider::table_schema(&reader)));
    session
        .schema_over(ast::Statement::Query(query), newest)
        .await
}

/// A LATEST ON query as the plain query a view's plan is made of: always
/// the window form, as a plan cannot hold rows found before it runs.
pub(crate) fn rewritten_for_view(
    session: &Session,
    query: Box<ast::Query>,
    latest: LatestOn,
) -> Result<ast::Statement> {
    let Rewritten { query, .. } = rewrite(session, query, latest, false)?;
    Ok(ast::Statement::Query(query))
}

/// Rewrites the query over its table (see the module doc); `newest_rows`:
/// whether a query without WHERE may read `NEWEST_ROWS`.
fn rewrite(
    session: &Session,
    mut query: Box<ast::Query>,
    latest: LatestOn,
    newest_rows: bool,
) -> Result<Rewritten> {
    let unsupported = |what: &str| {
        ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("LATEST ON {what} is not supported"),
        )
    };
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return Err(unsupported("on a set operation"));
    };
    let [ast::TableWithJoins { relation, joins }] = select.from.as_mut_slice() else {
        return Err(unsupported("over several tables"));
    };
    if !joins.is_empty() {
        return Err(unsupported("with joins"));
    }
    let ast::TableFactor::Table { name, alias, .. } = relation else {
        return Err(unsupported("over a subquery"));
    };
    let table = object_name(name)?;
    let reader = session.table(&table).map_err(|e| {
        if e.sqlstate == sqlstate::WRONG_OBJECT_TYPE {
            // `Session::table` says so of a view.
            unsupported(
                "over a view (put LATEST ON into the view's query, or select from the table)",
            )
        } else {
            e
        }
    })?;
    let meta = reader.meta();
    let column = |c: &str| {
        meta.column_index(c)
            .map(|i| quote_ident(&meta.columns[i].name))
            .ok_or_else(|| {
                ExecError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!(
                        "column \"{c}\" of relation \"{}\" does not exist",
                        reader.name()
                    ),
                )
            })
    };
    let ts = match &latest.timestamp {
        Some(ts) => column(ts)?,
        None => meta.timestamp_name().map(quote_ident).ok_or_else(|| {
            ExecError::new(
                sqlstate::INVALID_TABLE_DEFINITION,
                format!(
                    "LATEST BY needs a designated timestamp, and table \"{}\" has none: \
                     write LATEST ON <timestamp column> PARTITION BY ...",
                    reader.name()
                ),
            )
        })?,
    };
    let keys = latest
        .partition_by
        .iter()
        .map(|k| column(k))
        .collect::<Result<Vec<_>>>()?;
    let columns: Vec<String> = meta.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let alias_name = alias
        .as_ref()
        .map(|a| a.name.value.clone())
        .unwrap_or_else(|| reader.name().to_string());
    let key_columns: Vec<usize> = latest
        .partition_by
        .iter()
        .filter_map(|k| meta.column_index(k))
        .collect();
    // A condition on the keys alone (`WHERE sym = 'S7'`) stays on the query
    // over the newest rows (see `reads_only_keys`).
    let newest_then_filter = select
        .selection
        .as_ref()
        .is_none_or(|c| reads_only_keys(c, &reader, &key_columns, &alias_name));
    // Rows are stored in designated-timestamp order: newest by another
    // timestamp column needs the window.
    let by_designated = latest.timestamp.as_ref().is_none_or(|named| {
        let named = meta.column_index(named);
        named.is_some() && named == meta.timestamp_name().and_then(|d| meta.column_index(d))
    });
    if newest_rows && newest_then_filter && by_designated {
        *relation = ast::TableFactor::Table {
            name: ast::ObjectName::from(vec![ast::Ident::with_quote('"', NEWEST_ROWS)]),
            alias: Some(ast::TableAlias {
                explicit: true,
                name: ast::Ident::with_quote('"', alias_name),
                columns: Vec::new(),
                at: None,
            }),
            args: None,
            with_hints: Vec::new(),
            version: None,
            with_ordinality: false,
            partitions: Vec::new(),
            json_path: None,
            sample: None,
            index_hints: Vec::new(),
        };
        return Ok(Rewritten {
            query,
            reader,
            newest_per: Some(key_columns),
        });
    }
    // The user's condition goes into the query as parsed, named by `part(0)`.
    let selection = select.selection.take();
    let parts: Vec<&ast::Expr> = selection.iter().collect();
    let condition = match selection {
        Some(_) => format!(" WHERE {}", part(0)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {cols} FROM (SELECT {cols}, row_number() OVER (PARTITION BY {keys} ORDER BY {ts} DESC) AS \"__tidemark_rn\" \
         FROM {table} AS {alias}{condition}) AS \"__tidemark_latest\" WHERE \"__tidemark_rn\" = 1",
        cols = columns.join(", "),
        keys = keys.join(", "),
        table = quote_ident(reader.name()),
        alias = quote_ident(&alias_name),
    );
    let inner = with_parts(parse_query(&sql)?, &parts);
    *relation = ast::TableFactor::Derived {
        lateral: false,
        subquery: inner,
        alias: Some(ast::TableAlias {
            explicit: true,
            name: ast::Ident::with_quote('"', alias_name),
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    };
    Ok(Rewritten {
        query,
        reader,
        newest_per: None,
    })
}

/// Whether `condition` reads nothing but the key columns (`alias.key` or
/// `key`) and constants: no other column, function call or subquery. Its value
/// is then the same for every row of a key, so keeping the rows it keeps and
/// then each key's newest row keeps what keeping each key's newest row and
/// then the rows it keeps does, and the newest rows can be found without the
/// window over every kept row.
fn reads_only_keys(
    condition: &ast::Expr,
    reader: &TableReader,
    keys: &[usize],
    alias: &str,
) -> bool {
    use std::ops::ControlFlow;
    let meta = reader.meta();
    let is_key = |name: &ast::Ident| {
        meta.column_index(&name.value)
            .is_some_and(|i| keys.contains(&i))
    };
    ast::visit_expressions(condition, |e| {
        let fine = match e {
            ast::Expr::Identifier(name) => is_key(name),
            ast::Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [table, column] => table.value.eq_ignore_ascii_case(alias) && is_key(column),
                _ => false,
            },
            ast::Expr::Function(_)
            | ast::Expr::Subquery(_)
            | ast::Expr::InSubquery { .. }
            | ast::Expr::Exists { .. } => false,
            _ => true,
        };
        if fine {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })
    .is_continue()
}

/// The name under which the statement sees the rows `newest_per_key` found.
const NEWEST_ROWS: &str = "__tidemark_latest";

/// Rows read per step while walking a piece backwards.
const STEP_ROWS: usize = 64 * 1024;

/// The last row of every distinct `keys` combination (NULL is a key like any
/// other), in timestamp order. Reads only the key columns, from the newest row
/// backwards; a single SYMBOL key stops early (`newest_per_symbol`).
fn newest_per_key(reader: &TableReader, keys: &[usize]) -> Result<RecordBatch> {
    let meta = reader.meta();
    let schema = crate::provider::table_schema(reader);
    let names: Vec<&str> = keys
        .iter()
        .map(|&k| meta.columns[k].name.as_str())
        .collect();
    let dictionaries: Vec<Option<ArrayRef>> = keys
        .iter()
        .map(|&k| match meta.columns[k].column_type {
            ColumnType::Symbol => symbol_values(reader, &meta.columns[k].name).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    // The table's rows in timestamp order (files and buffered rows), walked
    // from the newest piece backwards.
    let pieces = reader.scan(i64::MIN, i64::MAX)?.pieces;
    let mut picks = match (keys, dictionaries.as_slice()) {
        ([_], [Some(d)]) => newest_per_symbol(reader, &pieces, names[0], d.len())?,
        _ => newest_per_row_key(reader, &pieces, &names, &dictionaries, &schema, keys)?,
    };
    picks.sort_unstable();
    let columns = schema
        .fields()
        .iter()
        .zip(&meta.columns)
        .map(|(field, column)| {
            let dictionary = match column.column_type {
                ColumnType::Symbol => Some(symbol_values(reader, &column.name)?),
                _ => None,
            };
            let picked = picks
                .iter()
                .map(|&(index, row)| {
                    let one = Piece {
                        source: pieces[index].source,
                        rows: row..row + 1,
                    };
                    read_piece_array(reader, &one, &column.name, dictionary.as_ref())
                })
                .collect::<Result<Vec<_>>>()?;
            if picked.is_empty() {
                return Ok(new_empty_array(field.data_type()));
            }
            let refs: Vec<&dyn Array> = picked.iter().map(|a| a.as_ref()).collect();
            Ok(concat(&refs)?)
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Rows searched at a time for the newest NULL once every value of a SYMBOL
/// key has been found.
const NULL_SEARCH_ROWS: usize = 4096;

/// The newest row of each of the `values` values of SYMBOL column `name`, and
/// of NULL, as (piece, row) picks. Reads a part's symbol index when it has
/// one, else the part's newest row per key that storage keeps in memory (it
/// reads only the keys appended since the last time), else (a buffered run,
/// or a part an older snapshot sees shorter) its keys from the newest row
/// backwards; stops when every value and NULL has been found. Once only NULL
/// is missing, blocks of keys without a NULL are skipped whole.
fn newest_per_symbol(
    reader: &TableReader,
    pieces: &[Piece],
    name: &str,
    values: usize,
) -> Result<Vec<(usize, usize)>> {
    // Slot `values` stands for NULL.
    let mut seen = vec![false; values + 1];
    let mut missing = values + 1;
    let mut picks = Vec::new();
    for (index, piece) in pieces.iter().enumerate().rev() {
        if let RowSource::Part(part) = piece.source
            && let Some(symbol_index) = reader.symbol_index(part, name)?
        {
            // Each key's newest row per index block, newest block first:
            // nothing but the index is read.
            symbol_index.newest_rows(piece.rows.clone(), |key, row| {
                let slot = usize::try_from(key).map_or(values, |k| k.min(values));
                if !seen[slot] {
                    seen[slot] = true;
                    missing -= 1;
                    picks.push((index, row));
                }
                missing > 0
            });
            // Rows before the column's top are NULL, older than every indexed row.
            let nulls_end = (symbol_index.top() as usize).min(piece.rows.end);
            if missing > 0 && !seen[values] && nulls_end > piece.rows.start {
                seen[values] = true;
                missing -= 1;
                picks.push((index, nulls_end - 1));
            }
            if missing == 0 {
                return Ok(picks);
            }
            continue;
        }
        if let RowSource::Part(part) = piece.source
            && let Some(newest) = reader.newest_rows_per_key(part, name)?
            && newest.rows() == piece.rows.end
        {
            // The part's newest row of each key, kept in memory: only rows
            // appended since the last LATEST ON are read.
            newest.for_each(|key, row| {
                let slot = key.map_or(values, |k| (k as usize).min(values));
                if row >= piece.rows.start && !seen[slot] {
                    seen[slot] = true;
                    missing -= 1;
                    picks.push((index, row));
                }
            });
            if missing == 0 {
                return Ok(picks);
            }
            continue;
        }
        let keys = symbol_keys(reader, piece, name)?;
        let mut end = keys.len();
        while end > 0 {
            if missing == 1 && !seen[values] {
                let start = end.saturating_sub(NULL_SEARCH_ROWS);
                let block = &keys[start..end];
                // A minimum over the block vectorizes; a NULL key is -1.
                if block.iter().copied().min().is_some_and(|k| k >= 0) {
                    end = start;
                    continue;
                }
                if let Some(at) = block.iter().rposition(|&k| k < 0) {
                    picks.push((index, piece.rows.start + start + at));
                }
                return Ok(picks);
            }
            end -= 1;
            let slot = usize::try_from(keys[end]).map_or(values, |k| k.min(values));
            if !seen[slot] {
                seen[slot] = true;
                missing -= 1;
                picks.push((index, piece.rows.start + end));
                if missing == 0 {
                    return Ok(picks);
                }
            }
        }
    }
    Ok(picks)
}

/// The newest row of each distinct combination of the key columns `names`
/// (any types), as (piece, row) picks: every row is read, from the newest
/// backwards, a step at a time.
fn newest_per_row_key(
    reader: &TableReader,
    pieces: &[Piece],
    names: &[&str],
    dictionaries: &[Option<ArrayRef>],
    schema: &SchemaRef,
    keys: &[usize],
) -> Result<Vec<(usize, usize)>> {
    let converter = RowConverter::new(
        keys.iter()
            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
            .collect(),
    )?;
    let mut seen_rows: HashSet<Vec<u8>> = HashSet::new();
    let mut picks = Vec::new();
    for (index, piece) in pieces.iter().enumerate().rev() {
        let mut end = piece.rows.end;
        while end > piece.rows.start {
            let start = end.saturating_sub(STEP_ROWS).max(piece.rows.start);
            let step = Piece {
                source: piece.source,
                rows: start..end,
            };
            let arrays = names
                .iter()
                .zip(dictionaries)
                .map(|(n, d)| read_piece_array(reader, &step, n, d.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            let rows = converter.convert_columns(&arrays)?;
            for i in (0..rows.num_rows()).rev() {
                if seen_rows.insert(rows.row(i).as_ref().to_vec()) {
                    picks.push((index, start + i));
                }
            }
            end = start;
        }
    }
    Ok(picks)
}
