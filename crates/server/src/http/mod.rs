//! The HTTP listener (hyper, HTTP/1.1 with keep-alive): `GET /health` (200
//! when serving, 503 while booting, restoring or stopping), `GET /metrics`
//! (Prometheus text format), the InfluxDB line-protocol endpoints of `write`
//! (`POST /write`, `POST /api/v2/write`, `/ping`, `/ready`), `/query` of
//! `influxql` (the `CREATE DATABASE` InfluxDB v1 writers send), and the REST
//! endpoints of `rest` (`GET /exec`, `GET /exp`) and `import` (`POST /imp`).

mod auth;
mod body;
mod import;
mod influxql;
mod rest;
mod write;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tidemark_executor::RuntimeEnv;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tidemark_storage::Database;
use tokio::net::TcpListener;

use crate::ilp::Ingest;
use crate::metrics::Metrics;
use crate::pg::Users;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Booting = 0,
    Serving = 1,
    Stopping = 2,
    Restoring = 3,
}

/// What the HTTP endpoints serve from.
#[derive(Debug)]
pub(crate) struct Status {
    phase: AtomicU8,
    pub(crate) db: OnceLock<Arc<Database>>,
    pub(crate) ingest: OnceLock<Arc<Ingest>>,
    pub(crate) backups: OnceLock<Arc<tidemark_backup::Backups>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) users: Arc<Users>,
    /// `server.statement_timeout_ms`, for `/exec` and `/exp` queries.
    pub(crate) statement_timeout: Duration,
    /// `ilp.max_request_mb` in bytes: the largest body (after gzip) a write takes.
    pub(crate) max_request_bytes: usize,
    /// The query memory pool every session shares (`server.query_memory_mb`).
    pub(crate) query_runtime: Arc<RuntimeEnv>,
    /// The configuration, for SHOW PARAMETERS.
    pub(crate) parameters: Arc<Vec<tidemark_executor::ServerParameter>>,
    /// Sessions of finished requests, kept for the next request of their
    /// user (see [`Status::session`]).
    idle_sessions: std::sync::Mutex<Vec<tidemark_executor::Session>>,
}

/// Idle sessions kept for `/exec` and `/exp` requests.
const IDLE_SESSIONS: usize = 8;

impl Status {
    pub(crate) fn new(
        parameters: Arc<Vec<tidemark_executor::ServerParameter>>,
        metrics: Arc<Metrics>,
        users: Arc<Users>,
        statement_timeout: Duration,
        max_request_bytes: usize,
        query_runtime: Arc<RuntimeEnv>,
    ) -> Self {
        Status {
            parameters,
            query_runtime,
            statement_timeout,
            phase: AtomicU8::new(Phase::Booting as u8),
            db: OnceLock::new(),
            ingest: OnceLock::new(),
            backups: OnceLock::new(),
            metrics,
            users,
            max_request_bytes,
            idle_sessions: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A session for an HTTP request by `user` (SQL over /exec, /imp): an
    /// idle one of an earlier request of the same user when there is one
    /// (building a session's DataFusion context costs more than a narrow
    /// query, and a reused session keeps the plans of the queries it repeats),
    /// else a new one.
    pub(crate) fn session(
        &self,
        db: &Arc<Database>,
        user: &str,
        read_only: bool,
    ) -> tidemark_executor::Session {
        {
            let mut idle = self.idle_sessions();
            if let Some(i) = idle.iter().position(|s| s.user() == (user, read_only)) {
                return idle.swap_remove(i);
            }
        }
        let mut session = tidemark_executor::Session::for_user(
            db.clone(),
            user,
            read_only,
            self.statement_timeout,
        );
        if let Some(b) = self.backups.get() {
            session.set_backups(b.clone());
        }
        session.set_query_runtime(self.query_runtime.clone());
        session.set_parameters(self.parameters.clone());
        session
    }

    /// Keeps the session of a finished request for the next one, if it is
    /// as a new session would be (no transaction, settings, prepared
    /// statements or cursors left behind by the request) and there is room.
    pub(crate) fn session_done(&self, session: tidemark_executor::Session) {
        if !session.is_pristine() {
            return;
        }
        let mut idle = self.idle_sessions();
        if idle.len() < IDLE_SESSIONS {
            idle.push(session);
        }
    }

    /// The idle sessions (a request that panicked holding the lock left the
    /// list whole: it only pushes and removes).
    fn idle_sessions(&self) -> std::sync::MutexGuard<'_, Vec<tidemark_executor::Session>> {
        self.idle_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Serving,
            2 => Phase::Stopping,
            3 => Phase::Restoring,
            _ => Phase::Booting,
        }
    }
}

/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until the task is dropped, which also drops every open connection.
pub(crate) async fn serve(listener: TcpListener, status: Arc<Status>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    let _ = socket.set_nodelay(true);
                    let status = status.clone();
                    connections.spawn(connection(socket, status));
                }
                Err(e) => {
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One HTTP/1.1 connection, with keep-alive.
async fn connection(socket: tokio::net::TcpStream, status: Arc<Status>) {
    let service = hyper::service::service_fn(move |req| {
        let status = status.clone();
        async move { Ok::<_, Infallible>(route(req, &status).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(socket), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("http connection ended: {e}");
    }
}

/// A response body: whole, or streamed (query results); a streamed body that
/// fails mid-way aborts the connection, so the client sees a truncated answer
/// rather than a short one.
pub(crate) type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
pub(crate) type Reply = Response<Body>;

fn whole(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response with `body` as `content_type`.
pub(crate) fn reply(code: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    streamed(code, content_type, whole(body.into()))
}

/// A response whose body is sent as it is produced.
pub(crate) fn streamed(code: StatusCode, content_type: &'static str, body: Body) -> Reply {
    let mut r = Response::new(body);
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(code: StatusCode, body: impl Into<Bytes>) -> Reply {
    reply(code, "text/plain; charset=utf-8", body)
}

pub(crate) fn json(code: StatusCode, body: &serde_json::Value) -> Reply {
    reply(code, "application/json", body.to_string())
}

async fn route(req: Request<Incoming>, status: &Status) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut response = match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/health") => health(&req, status),
        (&Method::GET | &Method::HEAD, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            status.metrics.render(
                status.db.get().map(|d| d.as_ref()),
                status.backups.get().map(|b| b.as_ref()),
            ),
        ),
        (&Method::GET | &Method::HEAD, "/ping" | "/ready") => write::ping(&path, status),
        (&Method::POST, "/write" | "/api/v2/write") => write::write(req, status).await,
        (&Method::GET | &Method::POST, "/query") => influxql::query(req, status).await,
        (&Method::GET, "/exec") => rest::exec(req, status).await,
        (&Method::GET, "/exp") => rest::exp(req, status).await,
        (&Method::POST, "/imp") => import::import(req, status).await,
        (_, "/write" | "/api/v2/write") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: line protocol is written with POST\n",
        ),
        (&Method::GET | &Method::HEAD, _) => text(
            StatusCode::NOT_FOUND,
            "not found: try /health, /metrics, /ping, /exec, /exp, /query, or POST /write, /api/v2/write, /imp\n",
        ),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    };
    if method == Method::HEAD {
        *response.body_mut() = whole(Bytes::new());
    }
    response
}

/// `/health`: text for load balancers and `tidemark health`; InfluxDB's JSON
/// shape when the client asks for JSON (the InfluxDB v2 clients' `health()`).
fn health(req: &Request<Incoming>, status: &Status) -> Reply {
    let (code, word) = match status.phase() {
        Phase::Serving => (StatusCode::OK, "ok"),
        Phase::Booting => (StatusCode::SERVICE_UNAVAILABLE, "booting"),
        Phase::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
        Phase::Restoring => (StatusCode::SERVICE_UNAVAILABLE, "restoring"),
    };
    let wants_json = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        json(
            code,
            &serde_json::json!({
                "name": "tidemark",
                "message": word,
                "status": if code == StatusCode::OK { "pass" } else { "fail" },
                "version": env!("CARGO_PKG_VERSION"),
                "checks": [],
            }),
        )
    } else {
        text(code, format!("{word}\n"))
    }
}

/// `tidemark health`: asks the server at `listen` (server.http_listen; a wildcard
/// address means this host) for `/health`. Ok with the body when it answers 200.
pub(crate) fn probe(listen: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| format!("server.http_listen \"{listen}\": {e}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = Duration::from_secs(5);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut response = String::new();
    s.read_to_string(&mut response)
        .map_err(|e| format!("{addr}: {e}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .trim()
        .to_string();
    if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
        Ok(body)
    } else {
        Err(format!("{addr}/health: {body}"))
    }
}
