//! SQL cursors: `DECLARE name [NO SCROLL] CURSOR [WITH | WITHOUT HOLD] FOR
//! query`, `FETCH`, `MOVE`, `CLOSE name | ALL`.
//!
//! A cursor is the query's row stream, kept in the session: each FETCH reads
//! as many rows as it asks for (psycopg's named cursors and psql's
//! FETCH_COUNT read results too large for memory this way), so memory holds
//! the rows of one FETCH, whatever the result's size. Cursors only go
//! forward. A cursor without HOLD closes when its transaction ends; one WITH
//! HOLD outlives COMMIT (it keeps reading the snapshot it was declared on).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use futures::StreamExt;
use tidemark_parser::{FetchCount, Statement};

use crate::error::{ExecError, Result, sqlstate};
use crate::session::{Output, Session};
use crate::stream::RowStream;

struct Cursor {
    schema: SchemaRef,
    /// `None` once the stream has ended. In a mutex only to make the session
    /// `Sync` (it is reached through `&mut` alone, never locked).
    rows: Option<Mutex<RowStream>>,
    /// What the last FETCH read of a batch and did not return.
    pending: Option<RecordBatch>,
    hold: bool,
    /// Declared in the transaction still open (ROLLBACK closes it, HOLD or not).
    in_transaction: bool,
}

/// The session's open cursors, by name.
#[derive(Default)]
pub(crate) struct Cursors {
    open: HashMap<String, Cursor>,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.open.keys()).finish()
    }
}

impl Cursors {
    /// Whether no cursor is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The row description of cursor `name` (Describe of the portal of that name).
    pub(crate) fn schema(&self, name: &str) -> Option<SchemaRef> {
        self.open.get(name).map(|c| c.schema.clone())
    }

    /// The transaction ended: cursors without HOLD close; after a rollback,
    /// so do those declared in it.
    pub(crate) fn end_transaction(&mut self, committed: bool) {
        self.open
            .retain(|_, c| c.hold && (committed || !c.in_transaction));
        for c in self.open.values_mut() {
            c.in_transaction = false;
        }
    }
}

fn not_supported(what: &str) -> ExecError {
    ExecError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("{what} is not supported"),
    )
}

pub(crate) async fn declare(session: &mut Session, mut stmts: Vec<ast::Declare>) -> Result<Output> {
    let (Some(d), true) = (stmts.pop(), stmts.is_empty()) else {
        return Err(not_supported("DECLARE of several names"));
    };
    let (Some(ast::DeclareType::Cursor), Some(mut query), [name]) =
        (&d.declare_type, d.for_query, d.names.as_slice())
    else {
        return Err(not_supported(
            "DECLARE of anything but a cursor FOR a query",
        ));
    };
    if d.binary == Some(true) {
        return Err(not_supported("a BINARY cursor"));
    }
    if d.scroll == Some(true) {
        return Err(not_supported("a SCROLL cursor (cursors only go forward)"));
    }
    let name = tidemark_parser::normalize_ident(name);
    let hold = d.hold == Some(true);
    let in_transaction = session.in_transaction();
    if !hold && !in_transaction {
        return Err(ExecError::new(
            sqlstate::NO_ACTIVE_SQL_TRANSACTION,
            "DECLARE CURSOR can only be used in transaction blocks",
        ));
    }
    if session.cursors().open.contains_key(&name) {
        return Err(ExecError::new(
            sqlstate::DUPLICATE_CURSOR,
            format!("cursor \"{name}\" already exists"),
        ));
    }
    let names = crate::column_names::name_query_columns(&mut query)?;
    let (schema, rows) = session.stream_query(ast::Statement::Query(query)).await?;
    let schema = match names {
        Some(names) => names.apply(&schema),
        None => schema,
    };
    session.cursors().open.insert(
        name,
        Cursor {
            schema,
            rows: Some(Mutex::new(rows)),
            pending: None,
            hold,
            in_transaction,
        },
    );
    Ok(Output::command("DECLARE CURSOR"))
}

/// How far a FETCH or MOVE goes on the cursor or portal it names: rows to
/// pass over, then rows to return or count. Cursors only go forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Motion {
    /// The name, as PostgreSQL folds it.
    pub cursor: String,
    pub skip: u64,
    /// `None`: to the end.
    pub take: Option<u64>,
    /// MOVE: count the rows instead of returning them.
    pub move_only: bool,
}

impl Motion {
    fn new(cursor: &str, count: FetchCount, move_only: bool) -> Result<Motion> {
        let (skip, take) = match count {
            FetchCount::Rows(n) => (0, Some(n)),
            FetchCount::All => (0, None),
            FetchCount::Relative(n) if n > 0 => (n - 1, Some(1)),
            FetchCount::Relative(_) => return Err(not_supported("FETCH RELATIVE 0")),
            FetchCount::Unsupported(w) => {
                return Err(ExecError::new(
                    sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("cursor can only scan forward ({w} goes back or to a position)"),
                ));
            }
        };
        Ok(Motion {
            cursor: cursor.to_string(),
            skip,
            take,
            move_only,
        })
    }
}

/// The motion of a FETCH or MOVE naming no SQL cursor of the session but a
/// name `is_portal` knows: PostgreSQL keeps cursors and the extended
/// protocol's portals in one namespace, and asyncpg's `cursor.forward(n)`
/// sends `MOVE FORWARD n <portal>` for the portal it bound.
pub(crate) fn portal_motion(
    cursors: &Cursors,
    statement: &Statement,
    is_portal: impl Fn(&str) -> bool,
) -> Option<Result<Motion>> {
    match statement {
        Statement::Fetch {
            cursor,
            count,
            move_only,
        } if !cursors.open.contains_key(cursor) && is_portal(cursor) => {
            Some(Motion::new(cursor, *count, *move_only))
        }
        _ => None,
    }
}

/// `FETCH` (rows) or `MOVE` (their count) on cursor `name`.
pub(crate) async fn fetch(
    session: &mut Session,
    name: &str,
    count: FetchCount,
    move_only: bool,
) -> Result<Output> {
    let Some(cursor) = session.cursors().open.get_mut(name) else {
        return Err(ExecError::new(
            sqlstate::INVALID_CURSOR_NAME,
            format!("cursor \"{name}\" does not exist"),
        ));
    };
    let Motion { skip, take, .. } = Motion::new(name, count, move_only)?;
    read(cursor, skip, false).await?;
    let schema = cursor.schema.clone();
    match take {
        // The rest of the result streams out: the cursor is at its end after.
        None if !move_only => {
            let pending = cursor.pending.take().map(Ok);
            let rest = cursor
                .rows
                .take()
                .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
            let rows = futures::stream::iter(pending).chain(futures::stream::iter(rest).flatten());
            Ok(Output::Rows {
                schema,
                rows: RowStream::new(rows, None).fetched(),
            })
        }
        _ => {
            let n = take.unwrap_or(u64::MAX);
            if move_only {
                let moved = read(cursor, n, false).await?.1;
                return Ok(Output::command(format!("MOVE {moved}")));
            }
            let (batches, _) = read(cursor, n, true).await?;
            Ok(Output::Rows {
                schema,
                rows: RowStream::from_batches(batches).fetched(),
            })
        }
    }
}

/// Reads up to `n` rows of the cursor: the batches (when `keep`) and the count.
async fn read(cursor: &mut Cursor, n: u64, keep: bool) -> Result<(Vec<RecordBatch>, u64)> {
    let mut out = Vec::new();
    let mut got = 0u64;
    while got < n {
        let batch = match cursor.pending.take() {
            Some(b) => b,
            None => match cursor.rows.as_mut() {
                Some(rows) => match rows
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .next()
                    .await
                {
                    Some(b) => b?,
                    None => {
                        cursor.rows = None;
                        break;
                    }
                },
                None => break,
            },
        };
        let rows = batch.num_rows() as u64;
        let want = n - got;
        let used = if rows > want {
            let at = want as usize;
            cursor.pending = Some(batch.slice(at, batch.num_rows() - at));
            batch.slice(0, at)
        } else {
            batch
        };
        got += used.num_rows() as u64;
        if keep {
            out.push(used);
        }
    }
    Ok((out, got))
}

pub(crate) fn close(session: &mut Session, cursor: ast::CloseCursor) -> Result<Output> {
    match cursor {
        ast::CloseCursor::All => session.cursors().open.clear(),
        ast::CloseCursor::Specific { name } => {
            let name = tidemark_parser::normalize_ident(&name);
            if session.cursors().open.remove(&name).is_none() {
                return Err(ExecError::new(
                    sqlstate::INVALID_CURSOR_NAME,
                    format!("cursor \"{name}\" does not exist"),
                ));
            }
        }
    }
    Ok(Output::command("CLOSE CURSOR"))
}
