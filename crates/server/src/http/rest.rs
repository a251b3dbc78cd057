//! The REST endpoints QuestDB users script against: `GET /exec?query=...`
//! (one statement; a result as JSON: columns with their types, then the rows,
//! streamed as they are read; `limit=n` or `limit=lo,hi`) and
//! `GET /exp?query=...` (a query's rows as CSV with a header, streamed). The
//! same users as the PostgreSQL side; the read-only user may query only.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, StatusCode};
use tidemark_executor::arrow::array::{Array, ArrayRef, AsArray};
use tidemark_executor::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
};
use tidemark_executor::arrow::record_batch::RecordBatch;
use tidemark_executor::{ExecError, Output};
use tidemark_storage::ColumnType;

use super::{Phase, Reply, Status, auth, json, streamed};

/// An error answer: the statement, the message, its SQLSTATE and position.
fn error(code: StatusCode, query: &str, e: &ExecError) -> Reply {
    json(
        code,
        &serde_json::json!({
            "query": query,
            "error": e.message,
            "sqlstate": e.sqlstate,
            "position": e.position,
        }),
    )
}

fn bad_request(query: &str, sqlstate: &'static str, message: impl Into<String>) -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        query,
        &ExecError::new(sqlstate, message),
    )
}

/// Which rows of a result to send: `limit=n` (the first n) or `limit=lo,hi`
/// (rows lo+1 to hi, as QuestDB reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    skip: u64,
    take: Option<u64>,
}

impl Window {
    fn parse(text: Option<&str>) -> Result<Window, String> {
        let Some(text) = text else {
            return Ok(Window {
                skip: 0,
                take: None,
            });
        };
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("limit \"{text}\" is not n or lo,hi"))
        };
        match text.split_once(',') {
            None => Ok(Window {
                skip: 0,
                take: Some(number(text)?),
            }),
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if hi < lo {
                    return Err(format!("limit \"{text}\": hi is below lo"));
                }
                Ok(Window {
                    skip: lo,
                    take: Some(hi - lo),
                })
            }
        }
    }
}

/// What `/exp` runs: the query as `COPY (...) TO STDOUT` in CSV with a header,
/// so that its CSV is exactly what `COPY` over the PostgreSQL protocol sends.
const EXPORT_PREFIX: &str = "COPY (";
const EXPORT_SUFFIX: &str = ") TO STDOUT WITH (FORMAT csv, HEADER)";

/// Runs the request's one statement for its user (inside `COPY (...) TO
/// STDOUT` when `export`); the output, or the answer to send instead.
async fn run(
    req: Request<Incoming>,
    status: &Status,
    export: bool,
) -> Result<(String, Output, Window), Reply> {
    let (parts, _) = req.into_parts();
    let query = auth::query_pairs(&parts);
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let sql = param("query").unwrap_or_default();
    let Some(db) = status.db.get().filter(|_| status.phase() == Phase::Serving) else {
        return Err(json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "error": "the server is not serving yet (or is stopping)" }),
        ));
    };
    let user = match auth::authenticate(&parts, &query, &status.users).await {
        Ok(u) => u,
        Err(why) => {
            return Err(json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({ "error": why }),
            ));
        }
    };
    if sql.trim().is_empty() {
        return Err(bad_request(
            &sql,
            "42601",
            "the query parameter is missing or empty",
        ));
    }
    let window =
        Window::parse(param("limit").as_deref()).map_err(|why| bad_request(&sql, "22023", why))?;
    let mut session = status.session(db, &user.user, user.read_only);
    let (text, shift) = if export {
        let query = sql.trim_end().trim_end_matches(';');
        match window.take {
            None => (
                format!("{EXPORT_PREFIX}{query}{EXPORT_SUFFIX}"),
                EXPORT_PREFIX.len(),
            ),
            Some(take) => {
                let prefix = format!("{EXPORT_PREFIX}SELECT * FROM (");
                let text = format!(
                    "{prefix}{query}) AS exported LIMIT {take} OFFSET {}{EXPORT_SUFFIX}",
                    window.skip
                );
                (text, prefix.len())
            }
        }
    } else {
        (sql.clone(), 0)
    };
    // Positions are the client's, in its query text.
    let failed = |mut e: ExecError| {
        e.position = e.position.map(|p| p.saturating_sub(shift).max(1));
        error(StatusCode::BAD_REQUEST, &sql, &e)
    };
    let statements = session.parse_script(&text).map_err(failed)?;
    let [statement] = <[_; 1]>::try_from(statements).map_err(|s| {
        bad_request(
            &sql,
            "42601",
            format!("one statement per request, not {}", s.len()),
        )
    })?;
    let output = session.execute_one(statement).await;
    status.session_done(session);
    let output = output.map_err(failed)?;
    Ok((sql, output, window))
}

/// `GET /exec`.
pub(super) async fn exec(req: Request<Incoming>, status: &Status) -> Reply {
    let (sql, output, window) = match run(req, status, false).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    match output {
        Output::Rows { schema, rows } => {
            let columns: Vec<serde_json::Value> = schema
                .fields()
                .iter()
                .map(|f| serde_json::json!({ "name": f.name(), "type": type_name(f.data_type()) }))
                .collect();
            let head = format!(
                "{{\"query\":{},\"columns\":{},\"dataset\":[",
                serde_json::Value::String(sql),
                serde_json::Value::Array(columns)
            );
            let body = json_rows(head, rows, window);
            streamed(StatusCode::OK, "application/json", body)
        }
        Output::Command { tag, .. } => json(
            StatusCode::OK,
            &serde_json::json!({ "query": sql, "command": tag }),
        ),
        Output::CopyIn(_) | Output::CopyOut(_) => bad_request(
            &sql,
            "0A000",
            "COPY is not available through /exec: use /exp for CSV out, or the PostgreSQL protocol",
        ),
    }
}

/// `GET /exp`: the query's rows as `COPY (...) TO STDOUT WITH (FORMAT csv,
/// HEADER)` writes them (`limit` becomes LIMIT and OFFSET around the query).
pub(super) async fn exp(req: Request<Incoming>, status: &Status) -> Reply {
    let (sql, output, _) = match run(req, status, true).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let Output::CopyOut(copy) = output else {
        return bad_request(
            &sql,
            "42601",
            "/exp exports the rows of a query (SELECT ...)",
        );
    };
    let lines = copy.lines().map(|line| line.map(Bytes::from));
    streamed(StatusCode::OK, "text/csv; charset=utf-8", to_body(lines))
}

/// The batches of `rows` cut to `window` (a batch may be sliced).
fn windowed(
    rows: tidemark_executor::RowStream,
    window: Window,
) -> impl Stream<Item = Result<RecordBatch, ExecError>> + Send {
    let mut skip = window.skip;
    let mut left = window.take;
    rows.take_while(move |_| {
        let more = left != Some(0);
        std::future::ready(more)
    })
    .map(move |batch| {
        let batch = batch?;
        let n = batch.num_rows() as u64;
        let from = skip.min(n);
        skip -= from;
        let len = left.map_or(n - from, |l| l.min(n - from));
        if let Some(l) = left.as_mut() {
            *l -= len;
        }
        Ok(batch.slice(from as usize, len as usize))
    })
}

/// The JSON document of `/exec`: `head`, the rows as arrays, then the count.
fn json_rows(head: String, rows: tidemark_executor::RowStream, window: Window) -> super::Body {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let rows = windowed(rows, window).map(move |batch| -> Result<Bytes, ExecError> {
        let batch = batch?;
        let mut out = Vec::new();
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|c| json_value(c, row))
                .collect::<Result<Vec<_>, _>>()?;
            if counter.fetch_add(1, Ordering::Relaxed) > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &values)
                .map_err(|e| ExecError::new("XX000", e.to_string()))?;
        }
        Ok(Bytes::from(out))
    });
    // The count is known once the rows are sent: it closes the document.
    let tail = futures::stream::once(async move {
        Ok(Bytes::from(format!(
            "],\"count\":{}}}",
            count.load(Ordering::Relaxed)
        )))
    });
    to_body(
        futures::stream::iter([Ok(Bytes::from(head))])
            .chain(rows)
            .chain(tail),
    )
}

/// A value as JSON: numbers and booleans as such, NULL as null, anything else
/// as PostgreSQL's text for it.
fn json_value(array: &ArrayRef, row: usize) -> Result<serde_json::Value, ExecError> {
    use serde_json::Value;
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let float = |v: f64| {
        serde_json::Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number)
    };
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => Value::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Value::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        _ => tidemark_executor::text::format_value(array, row)?.map_or(Value::Null, Value::String),
    })
}

/// A result column's type as Tidemark's SQL names it.
fn type_name(t: &DataType) -> String {
    if let DataType::Decimal128(p, s) = t
        && let Some(decimal) = u8::try_from(*s)
            .ok()
            .and_then(|s| ColumnType::decimal(*p, s))
    {
        return decimal.to_string();
    }
    ColumnType::ALL
        .iter()
        .find(|c| tidemark_executor::types::arrow_type(**c) == *t)
        .map_or_else(|| t.to_string().to_uppercase(), |c| c.name().to_string())
}

fn to_body(stream: impl Stream<Item = Result<Bytes, ExecError>> + Send + 'static) -> super::Body {
    StreamBody::new(stream.map(|chunk| {
        chunk
            .map(Frame::data)
            .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
    }))
    .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_questdb_reads_them() {
        assert_eq!(
            Window::parse(None),
            Ok(Window {
                skip: 0,
                take: None
            })
        );
        assert_eq!(
            Window::parse(Some("10")),
            Ok(Window {
                skip: 0,
                take: Some(10)
            })
        );
        assert_eq!(
            Window::parse(Some("10,25")),
            Ok(Window {
                skip: 10,
                take: Some(15)
            })
        );
        assert!(Window::parse(Some("x")).is_err());
        assert!(Window::parse(Some("5,1")).is_err());
    }
}
