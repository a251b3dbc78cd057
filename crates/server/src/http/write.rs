//! The InfluxDB write API: `POST /write` (v1: `db`, `precision`, `u`/`p`) and
//! `POST /api/v2/write` (v2: `bucket`, `org`, `precision`), with gzip bodies,
//! and `/ping`, `/ready` as clients probe them. One request is one
//! transaction: 204 when all of its lines are durable, otherwise an error in
//! InfluxDB's JSON shape and nothing of the request stored.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use tidemark_storage::ErrorKind;

use super::{Phase, Reply, Status, auth, json};
use crate::ilp::{IlpError, Precision};
use crate::metrics::{IlpProtocol, Rejection};

/// The InfluxDB version clients are told (the 1.8 API is what is served).
const INFLUX_VERSION: &str = "1.8.10";

/// InfluxDB's error shape: `code` and `message`, plus `line` and `text` for a
/// bad line (`error` repeats the message for v1 clients, which read that key).
fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    json(
        status,
        &serde_json::json!({ "code": code, "message": message, "error": message }),
    )
}

/// `/ping` (v1 clients, Telegraf: 204) and `/ready` (v2 clients: 200 JSON).
pub(super) fn ping(path: &str, status: &Status) -> Reply {
    if status.phase() != Phase::Serving {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is not serving yet (or is stopping)",
        );
    }
    let mut r = if path == "/ready" {
        json(StatusCode::OK, &serde_json::json!({ "status": "ready" }))
    } else {
        super::reply(StatusCode::NO_CONTENT, "text/plain", Bytes::new())
    };
    r.headers_mut().insert(
        "X-Influxdb-Version",
        HeaderValue::from_static(INFLUX_VERSION),
    );
    r.headers_mut()
        .insert("X-Influxdb-Build", HeaderValue::from_static("OSS"));
    r
}

pub(super) async fn write(req: Request<Incoming>, status: &Status) -> Reply {
    let Some(ingest) = status
        .ingest
        .get()
        .filter(|_| status.phase() == Phase::Serving)
    else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is not serving yet (or is stopping)",
        );
    };
    let (parts, body) = req.into_parts();
    let query = auth::query_pairs(&parts);
    let reject = |status_code, code, message: &str, why| {
        status.metrics.ilp_rejected(IlpProtocol::Http, why);
        error(status_code, code, message)
    };

    // Who is writing: the PostgreSQL side's users; the read-only one may not.
    let user = match auth::authenticate(&parts, &query, &status.users).await {
        Ok(u) => u,
        Err(why) => {
            return reject(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &why,
                Rejection::Auth,
            );
        }
    };
    if user.read_only {
        return reject(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("user \"{}\" is read-only and may not write", user.user),
            Rejection::Auth,
        );
    }

    let precision = query
        .iter()
        .find(|(k, _)| k == "precision")
        .map_or(Ok(Precision::Nanos), |(_, v)| Precision::parse(v));
    let precision = match precision {
        Ok(p) => p,
        Err(why) => return reject(StatusCode::BAD_REQUEST, "invalid", &why, Rejection::Parse),
    };

    let body = match super::body::read_body(&parts, body, status.max_request_bytes).await {
        Ok(b) => b,
        Err((code, why)) => {
            let (kind, why_counted) = if code == StatusCode::PAYLOAD_TOO_LARGE {
                ("request too large", Rejection::Size)
            } else {
                ("invalid", Rejection::Parse)
            };
            return reject(code, kind, &why, why_counted);
        }
    };
    match ingest.write(IlpProtocol::Http, &body, precision).await {
        Ok(_) => super::reply(StatusCode::NO_CONTENT, "text/plain", Bytes::new()),
        Err(e) => line_error(&e),
    }
}

/// The answer to a write that was not stored.
fn line_error(e: &IlpError) -> Reply {
    match e {
        IlpError::Line {
            line, text, reason, ..
        } => {
            let message = format!("line {line}: {reason}");
            json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({
                    "code": "invalid",
                    "message": message,
                    "error": message,
                    "line": line,
                    "text": text,
                }),
            )
        }
        IlpError::Storage(s) => {
            let (code, kind) = match s.kind() {
                _ if e.is_client_error() => (StatusCode::BAD_REQUEST, "invalid"),
                ErrorKind::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "internal error"),
                ErrorKind::InvalidState => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            };
            error(code, kind, &s.to_string())
        }
        // HTTP writes follow no earlier write, so are never abandoned.
        IlpError::Stopping | IlpError::Abandoned => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        ),
    }
}
