//! `POST /imp`: loads CSV into a table, as QuestDB's import does. The body is
//! the CSV itself or `multipart/form-data` with a `data` part (the CSV; its
//! file name names the table when `name=` is not given) and an optional
//! `schema` part. The first line is the header. A table that does not exist
//! is created: column types come from `schema` (`[{"name": "...", "type":
//! "..."}]`, QuestDB's shape) where given, else from the first rows; the
//! designated timestamp is `timestamp=<column>`, partitioned by
//! `partitionBy=` (NONE without a designated timestamp, DAY with one). The
//! rows are loaded with `COPY ... FROM STDIN (FORMAT csv, HEADER)`, and the
//! table's creation and its rows are one transaction: all of it or nothing.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use tidemark_executor::{ExecError, Output, Session};

use super::{Phase, Reply, Status, auth, json};

/// Rows read to guess the types of columns the schema leaves out.
const SAMPLE_ROWS: usize = 1000;

fn error(code: StatusCode, message: &str, sqlstate: Option<&str>) -> Reply {
    json(
        code,
        &serde_json::json!({ "status": "ERROR", "error": message, "sqlstate": sqlstate }),
    )
}

fn bad(message: impl AsRef<str>) -> Reply {
    error(StatusCode::BAD_REQUEST, message.as_ref(), None)
}

/// What the request carries.
struct Upload {
    csv: Bytes,
    schema: Option<String>,
    file_name: Option<String>,
}

pub(super) async fn import(req: Request<Incoming>, status: &Status) -> Reply {
    let Some(db) = status.db.get().filter(|_| status.phase() == Phase::Serving) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is not serving yet (or is stopping)",
            None,
        );
    };
    let (parts, body) = req.into_parts();
    let query = auth::query_pairs(&parts);
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let user = match auth::authenticate(&parts, &query, &status.users).await {
        Ok(u) => u,
        Err(why) => return error(StatusCode::UNAUTHORIZED, &why, None),
    };
    if user.read_only {
        return error(
            StatusCode::FORBIDDEN,
            &format!("user \"{}\" is read-only and may not import", user.user),
            Some("42501"),
        );
    }
    let raw = match super::body::read_body(&parts, body, status.max_request_bytes).await {
        Ok(b) => Bytes::from(b),
        Err((code, why)) => return error(code, &why, None),
    };
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let upload = match upload(raw, &content_type).await {
        Ok(u) => u,
        Err(why) => return bad(why),
    };
    let name = param("name")
        .or_else(|| upload.file_name.clone())
        .filter(|n| !n.trim().is_empty());
    let Some(table) = name else {
        return bad("name the table: name=<table> (or send the CSV as a file part named data)");
    };
    let schema = match upload.schema.as_deref().or(param("schema").as_deref()) {
        None => Vec::new(),
        Some(text) => match serde_json::from_str::<Vec<SchemaColumn>>(text) {
            Ok(s) => s,
            Err(e) => {
                return bad(format!(
                    "schema is not [{{\"name\": ..., \"type\": ...}}, ...]: {e}"
                ));
            }
        },
    };
    let partition_by = param("partitionBy");
    if let Some(p) = partition_by.as_deref()
        && crate::ilp::parse_partition_by(p).is_none()
    {
        return bad(format!(
            "partitionBy \"{p}\" is not one of NONE, HOUR, DAY, WEEK, MONTH, YEAR"
        ));
    }
    let plan = match Plan::new(&upload.csv, &schema) {
        Ok(p) => p,
        Err(why) => return bad(why),
    };
    let mut session = status.session(db, &user.user, user.read_only);
    let exists = db.snapshot().table(&table).is_some();
    let loaded = load(
        &mut session,
        &table,
        &plan,
        exists,
        param("timestamp").as_deref(),
        partition_by.as_deref(),
        &upload.csv,
    )
    .await;
    match loaded {
        Ok(rows) => json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "OK",
                "location": table,
                "rowsImported": rows,
                "rowsRejected": 0,
                "header": true,
                "created": !exists,
                "columns": plan.columns.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.message, Some(e.sqlstate)),
    }
}

/// The CSV and the schema from a multipart body, or the body itself as CSV.
async fn upload(raw: Bytes, content_type: &str) -> Result<Upload, String> {
    if !content_type.starts_with("multipart/form-data") {
        return Ok(Upload {
            csv: raw,
            schema: None,
            file_name: None,
        });
    }
    let boundary = multer::parse_boundary(content_type).map_err(|e| format!("multipart: {e}"))?;
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(raw) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut upload = Upload {
        csv: Bytes::new(),
        schema: None,
        file_name: None,
    };
    let mut has_data = false;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| format!("multipart: {e}"))?
    {
        match field.name() {
            Some("data") => {
                upload.file_name = field.file_name().map(|f| {
                    // `trades.csv` -> `trades`, as QuestDB names the table.
                    f.rsplit('/')
                        .next()
                        .unwrap_or(f)
                        .trim_end_matches(".csv")
                        .to_string()
                });
                upload.csv = field.bytes().await.map_err(|e| format!("multipart: {e}"))?;
                has_data = true;
            }
            Some("schema") => {
                upload.schema = Some(field.text().await.map_err(|e| format!("multipart: {e}"))?);
            }
            other => {
                return Err(format!(
                    "multipart part {:?} is not data or schema",
                    other.unwrap_or("")
                ));
            }
        }
    }
    if !has_data {
        return Err("multipart body without a data part (the CSV)".into());
    }
    Ok(upload)
}

#[derive(Debug, serde::Deserialize)]
struct SchemaColumn {
    name: String,
    #[serde(rename = "type")]
    column_type: String,
}

/// The header's columns and the type of each.
#[derive(Debug)]
struct Plan {
    columns: Vec<(String, String)>,
}

impl Plan {
    fn new(csv: &[u8], schema: &[SchemaColumn]) -> Result<Plan, String> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| format!("the CSV header cannot be read: {e}"))?
            .iter()
            .map(str::to_string)
            .collect();
        if header.is_empty() || header.iter().all(String::is_empty) {
            return Err("the CSV has no header line (the first line names the columns)".into());
        }
        let mut guesses = vec![Guess::Nothing; header.len()];
        for record in reader.records().take(SAMPLE_ROWS) {
            let record = record.map_err(|e| format!("CSV: {e}"))?;
            for (g, value) in guesses.iter_mut().zip(record.iter()) {
                *g = g.with(value);
            }
        }
        for s in schema {
            if !header.iter().any(|h| h.eq_ignore_ascii_case(&s.name)) {
                return Err(format!(
                    "schema names column \"{}\", which the header lacks",
                    s.name
                ));
            }
            // A type name is words (DOUBLE PRECISION), nothing that could end the statement.
            if s.column_type.trim().is_empty()
                || !s
                    .column_type
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_')
            {
                return Err(format!(
                    "schema gives column \"{}\" the type \"{}\", which is not a type name",
                    s.name, s.column_type
                ));
            }
        }
        let columns = header
            .into_iter()
            .zip(guesses)
            .map(|(name, guess)| {
                let declared = schema
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(&name))
                    .map(|s| s.column_type.to_uppercase());
                let t = declared.unwrap_or_else(|| guess.type_name().to_string());
                (name, t)
            })
            .collect();
        Ok(Plan { columns })
    }
}

/// What a column's sampled values could all be, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guess {
    Nothing,
    Boolean,
    BigInt,
    Double,
    Date,
    Timestamp,
    Varchar,
}

impl Guess {
    /// The narrowest guess that also holds `value` (an empty value is NULL).
    fn with(self, value: &str) -> Guess {
        let v = value.trim();
        if v.is_empty() {
            return self;
        }
        let fits = |g: Guess| match g {
            Guess::Nothing => false,
            Guess::Boolean => matches!(v.to_ascii_lowercase().as_str(), "true" | "false"),
            Guess::BigInt => v.parse::<i64>().is_ok(),
            Guess::Double => v.parse::<f64>().is_ok(),
            Guess::Date => looks_like_date(v) && v.len() == 10,
            Guess::Timestamp => {
                looks_like_date(v) && v.len() > 10 && matches!(v.as_bytes()[10], b' ' | b'T')
            }
            Guess::Varchar => true,
        };
        // Numbers widen from BIGINT to DOUBLE; anything else that differs is text.
        let candidates: &[Guess] = match self {
            Guess::Nothing => &[
                Guess::Boolean,
                Guess::BigInt,
                Guess::Double,
                Guess::Date,
                Guess::Timestamp,
            ],
            Guess::BigInt => &[Guess::BigInt, Guess::Double],
            other => std::slice::from_ref(match other {
                Guess::Boolean => &Guess::Boolean,
                Guess::Double => &Guess::Double,
                Guess::Date => &Guess::Date,
                Guess::Timestamp => &Guess::Timestamp,
                _ => &Guess::Varchar,
            }),
        };
        candidates
            .iter()
            .copied()
            .find(|g| fits(*g))
            .unwrap_or(Guess::Varchar)
    }

    fn type_name(self) -> &'static str {
        match self {
            Guess::Boolean => "BOOLEAN",
            Guess::BigInt => "BIGINT",
            Guess::Double => "DOUBLE",
            Guess::Date => "DATE",
            Guess::Timestamp => "TIMESTAMP",
            Guess::Nothing | Guess::Varchar => "VARCHAR",
        }
    }
}

/// `YYYY-MM-DD` at the start of `v`.
fn looks_like_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// A name as a quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the table when it does not exist and copies the rows in, as one
/// transaction; the rows loaded.
async fn load(
    session: &mut Session,
    table: &str,
    plan: &Plan,
    exists: bool,
    timestamp: Option<&str>,
    partition_by: Option<&str>,
    csv: &[u8],
) -> Result<u64, ExecError> {
    let mut sql = Vec::new();
    if !exists {
        let columns: Vec<String> = plan
            .columns
            .iter()
            .map(|(name, t)| {
                // The designated timestamp is a TIMESTAMP whatever the sample looked like.
                let t = match timestamp {
                    Some(ts) if ts.eq_ignore_ascii_case(name) => "TIMESTAMP",
                    _ => t.as_str(),
                };
                format!("{} {t}", ident(name))
            })
            .collect();
        let mut create = format!("CREATE TABLE {} ({})", ident(table), columns.join(", "));
        if let Some(ts) = timestamp {
            create.push_str(&format!(
                " TIMESTAMP({}) PARTITION BY {}",
                ident(ts),
                partition_by.unwrap_or("DAY")
            ));
        } else if let Some(p) = partition_by {
            create.push_str(&format!(" PARTITION BY {p}"));
        }
        sql.push(create);
    }
    let names: Vec<String> = plan.columns.iter().map(|(n, _)| ident(n)).collect();
    session.execute("BEGIN").await?;
    let result = async {
        for statement in &sql {
            session.execute(statement).await?;
        }
        let copy = format!(
            "COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER)",
            ident(table),
            names.join(", ")
        );
        let mut outputs = session.execute(&copy).await?;
        let Some(Output::CopyIn(mut copy)) = outputs.pop() else {
            return Err(ExecError::new("XX000", "COPY did not start"));
        };
        copy.feed(csv)?;
        let rows = session.finish_copy(*copy).await?;
        session.execute("COMMIT").await?;
        Ok(rows)
    }
    .await;
    if result.is_err() {
        let _ = session.execute("ROLLBACK").await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> &'static str {
        values
            .iter()
            .fold(Guess::Nothing, |g, v| g.with(v))
            .type_name()
    }

    #[test]
    fn types_are_guessed_from_the_values() {
        assert_eq!(guess(&["1", "", "-3"]), "BIGINT");
        assert_eq!(guess(&["1", "2.5"]), "DOUBLE");
        assert_eq!(guess(&["true", "FALSE"]), "BOOLEAN");
        assert_eq!(
            guess(&["2026-11-21 10:00:00", "2026-11-21T10:00:01.5"]),
            "TIMESTAMP"
        );
        assert_eq!(guess(&["2026-11-21"]), "DATE");
        assert_eq!(guess(&["1", "x"]), "VARCHAR");
        assert_eq!(guess(&["", ""]), "VARCHAR");
    }

    #[test]
    fn the_header_and_schema_make_the_columns() {
        let csv = b"ts,sym,price,qty\n2026-11-21 10:00:00,AAPL,1.5,3\n";
        let schema = [SchemaColumn {
            name: "sym".into(),
            column_type: "symbol".into(),
        }];
        let plan = Plan::new(csv, &schema).expect("plan");
        assert_eq!(
            plan.columns,
            [
                ("ts".to_string(), "TIMESTAMP".to_string()),
                ("sym".into(), "SYMBOL".into()),
                ("price".into(), "DOUBLE".into()),
                ("qty".into(), "BIGINT".into()),
            ]
        );
        let bad = [SchemaColumn {
            name: "nope".into(),
            column_type: "INT".into(),
        }];
        assert!(Plan::new(csv, &bad).is_err());
        let injected = [SchemaColumn {
            name: "sym".into(),
            column_type: "INT); DROP TABLE t; --".into(),
        }];
        assert!(Plan::new(csv, &injected).is_err());
    }
}
