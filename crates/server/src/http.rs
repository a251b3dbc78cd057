//! The HTTP endpoint: `GET /health` (200 when serving, 503 while booting,
//! restoring or stopping) and `GET /metrics` (Prometheus text format).
//! A deliberately small HTTP/1.1 responder: one request per connection.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tidemark_storage::Database;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Booting = 0,
    Serving = 1,
    Stopping = 2,
    Restoring = 3,
}

/// What the HTTP endpoint reports on.
#[derive(Debug, Default)]
pub(crate) struct Status {
    phase: AtomicU8,
    pub(crate) db: OnceLock<Arc<Database>>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Status {
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

/// Serves until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, status: Arc<Status>) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let status = status.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), answer(socket, &status))
                        .await;
                });
            }
            Err(e) => {
                tracing::warn!("http accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(mut socket: TcpStream, status: &Status) -> std::io::Result<()> {
    // Read the request head (up to 8 KiB); only the request line matters.
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (code, body, content_type) = match (method, path) {
        ("GET" | "HEAD", "/health") => match status.phase() {
            Phase::Serving => (200, "ok\n".to_string(), "text/plain"),
            Phase::Booting => (503, "booting\n".to_string(), "text/plain"),
            Phase::Stopping => (503, "stopping\n".to_string(), "text/plain"),
            Phase::Restoring => (503, "restoring\n".to_string(), "text/plain"),
        },
        ("GET" | "HEAD", "/metrics") => (
            200,
            status.metrics.render(status.db.get().map(|d| d.as_ref())),
            "text/plain; version=0.0.4",
        ),
        ("GET" | "HEAD", _) => (
            404,
            "not found: try /health or /metrics\n".into(),
            "text/plain",
        ),
        _ => (405, "method not allowed\n".into(), "text/plain"),
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    socket.write_all(&response).await?;
    socket.shutdown().await
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
    if response.starts_with("HTTP/1.1 200") {
        Ok(body)
    } else {
        Err(format!("{addr}/health: {body}"))
    }
}
