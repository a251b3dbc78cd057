//! InfluxDB v1's `/query`, as far as writing clients use it: Telegraf's
//! `influxdb` output and the v1 client libraries send `CREATE DATABASE` before
//! they write. Tidemark has no databases (every `db` writes to the same
//! tables), so that statement succeeds and changes nothing. Any other InfluxQL
//! is refused with a 400 that says to query with SQL instead.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::{Reply, Status, auth, json};

/// What a `/query` statement is, for a server that only ingests line protocol.
#[derive(Debug, PartialEq, Eq)]
enum Statement {
    /// `CREATE DATABASE <name> [WITH ...]`: accepted, nothing to do.
    CreateDatabase,
    /// Anything else, quoted for the error.
    Unsupported(String),
}

/// The statements of `q`, separated by `;`.
fn statements(q: &str) -> Vec<Statement> {
    q.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut words = s.split_whitespace();
            let create = words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("CREATE"));
            let database = words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("DATABASE"));
            if create && database && words.next().is_some() {
                Statement::CreateDatabase
            } else {
                Statement::Unsupported(s.to_string())
            }
        })
        .collect()
}

/// InfluxDB's error shape for `/query`.
fn error(code: StatusCode, message: &str) -> Reply {
    json(code, &serde_json::json!({ "error": message }))
}

/// `GET` or `POST /query`; `q` in the query string or a form body.
pub(super) async fn query(req: Request<Incoming>, status: &Status) -> Reply {
    let (parts, body) = req.into_parts();
    let mut params = auth::query_pairs(&parts);
    if parts.method == hyper::Method::POST {
        match super::body::read_body(&parts, body, status.max_request_bytes).await {
            Ok(form) => params.extend(form_urlencoded::parse(&form).into_owned()),
            Err((code, why)) => return error(code, &why),
        }
    }
    let user = match auth::authenticate(&parts, &params, &status.users).await {
        Ok(u) => u,
        Err(why) => return error(StatusCode::UNAUTHORIZED, &why),
    };
    let Some((_, q)) = params.iter().find(|(k, _)| k == "q") else {
        return error(StatusCode::BAD_REQUEST, "missing required parameter \"q\"");
    };
    let statements = statements(q);
    if let Some(Statement::Unsupported(s)) = statements
        .iter()
        .find(|s| matches!(s, Statement::Unsupported(_)))
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "InfluxQL is not supported (\"{}\"): Tidemark answers only CREATE DATABASE here; query with SQL over GET /exec or the PostgreSQL protocol",
                crate::ilp::lines::quote(s)
            ),
        );
    }
    if user.read_only {
        return error(
            StatusCode::FORBIDDEN,
            &format!(
                "user \"{}\" is read-only and may not create databases",
                user.user
            ),
        );
    }
    let results: Vec<_> = (0..statements.len())
        .map(|i| serde_json::json!({ "statement_id": i }))
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "results": results }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_database_is_accepted_and_other_influxql_is_not() {
        assert_eq!(
            statements("CREATE DATABASE \"telegraf\""),
            [Statement::CreateDatabase]
        );
        assert_eq!(
            statements("create database db with duration 1d; CREATE DATABASE x;"),
            [Statement::CreateDatabase, Statement::CreateDatabase]
        );
        assert_eq!(
            statements("CREATE DATABASE"),
            [Statement::Unsupported("CREATE DATABASE".into())]
        );
        assert_eq!(
            statements("SELECT * FROM cpu"),
            [Statement::Unsupported("SELECT * FROM cpu".into())]
        );
        assert_eq!(
            statements("DROP DATABASE db"),
            [Statement::Unsupported("DROP DATABASE db".into())]
        );
    }
}
