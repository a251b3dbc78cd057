//! Line protocol over TCP (`ilp.listen`): newline-delimited lines with
//! nanosecond timestamps, no authentication and no answers, as InfluxDB and
//! QuestDB serve it. A connection's lines are committed in batches: when the
//! complete lines received reach `ilp.tcp_batch_kb`, when
//! `ilp.tcp_commit_interval_ms` has passed since the first of them, and when
//! the client closes the connection or the server stops.
//!
//! A bad line is logged and counted, every line before it is committed, and
//! the connection is closed; the bad line and whatever followed it on that
//! connection are not stored.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::lines::{complete_lines, count_lines, line_start, quote, utf8};
use super::{IlpError, Ingest, Precision, Started, Stored};
use crate::metrics::{IlpProtocol, Rejection};

/// How a connection batches its lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    pub(crate) batch_bytes: usize,
    pub(crate) commit_interval: Duration,
}

/// Accepts connections until `stop` turns true, then lets every connection
/// commit what it has and returns once they all have.
pub(crate) async fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    batching: Batching,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let for_connections = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let ingest = ingest.clone();
                    let stop = for_connections.clone();
                    connections.spawn(async move {
                        if let Err(e) = connection(socket, &ingest, batching, stop).await {
                            tracing::warn!(%peer, "line protocol over TCP: {e}; connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("ilp accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Reads one connection's lines and commits them in batches.
async fn connection(
    mut socket: TcpStream,
    ingest: &Ingest,
    batching: Batching,
    mut stop: watch::Receiver<bool>,
) -> Result<(), IlpError> {
    let max_line = ingest.options().max_line_bytes;
    // Bytes received; `complete` of them are whole lines.
    let mut buf: Vec<u8> = Vec::with_capacity(batching.batch_bytes + 64 * 1024);
    let mut complete = 0;
    // Lines of this connection committed so far (for error messages).
    let mut lines_before = 0;
    let mut first_line_at: Option<Instant> = None;
    let mut chunk = vec![0u8; 64 * 1024];
    // The previous batch: committed, maybe not yet durable. The next one is
    // read and parsed while the WAL sync makes it durable.
    let mut in_flight: Option<InFlight<'_>> = None;
    loop {
        let deadline = first_line_at.map(|t| t + batching.commit_interval);
        let read = tokio::select! {
            r = socket.read(&mut chunk) => Some(r),
            _ = sleep_until(deadline) => None,
            _ = stopped(&mut stop) => Some(Ok(0)),
            durable = wait_for(&mut in_flight), if in_flight.is_some() => {
                in_flight = None;
                durable?;
                continue;
            }
        };
        let eof = match read {
            Some(Ok(0)) => true,
            Some(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                false
            }
            Some(Err(e)) => {
                tracing::debug!("ilp connection read failed: {e}");
                true
            }
            None => false,
        };
        complete = if eof {
            buf.len()
        } else {
            complete + complete_lines(&buf[complete..])
        };
        if !eof && buf.len() - complete > max_line {
            let started = start_batch(ingest, &buf[..complete], &mut lines_before).await;
            finish(&mut in_flight).await?;
            in_flight = Some(Box::pin(ingest.finish(IlpProtocol::Tcp, started?)));
            finish(&mut in_flight).await?;
            let shown = String::from_utf8_lossy(&buf[complete..complete + max_line.min(200)]);
            let e = IlpError::Line {
                line: lines_before + 1,
                text: quote(&shown),
                reason: format!(
                    "the line is longer than ilp.max_line_kb allows ({max_line} bytes)"
                ),
                rejection: Rejection::Size,
            };
            ingest
                .metrics
                .ilp_rejected(IlpProtocol::Tcp, Rejection::Size);
            return Err(e);
        }
        if complete > 0 && first_line_at.is_none() {
            first_line_at = Some(Instant::now());
        }
        let due = first_line_at.is_some_and(|t| t.elapsed() >= batching.commit_interval);
        if complete > 0 && (eof || due || complete >= batching.batch_bytes) {
            let started = start_batch(ingest, &buf[..complete], &mut lines_before).await;
            finish(&mut in_flight).await?;
            in_flight = Some(Box::pin(ingest.finish(IlpProtocol::Tcp, started?)));
            buf.drain(..complete);
            complete = 0;
            first_line_at = None;
        }
        if eof {
            return finish(&mut in_flight).await;
        }
    }
}

/// Resolves once the server stops (also when the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Starts the commit of `lines` (whole lines). When one is bad, the lines
/// before it are committed and the error names the bad line's number on the
/// connection.
async fn start_batch(
    ingest: &Ingest,
    lines: &[u8],
    lines_before: &mut usize,
) -> Result<Started, IlpError> {
    match ingest
        .start(IlpProtocol::Tcp, lines, Precision::Nanos)
        .await
    {
        Ok(started) => {
            *lines_before += count_lines(lines);
            Ok(started)
        }
        Err(IlpError::Line {
            line,
            text,
            reason,
            rejection,
        }) => {
            // Keep what came before the bad line.
            let start = line_start(lines, line);
            if start > 0 {
                let kept = utf8(&lines[..start])?;
                let started = ingest.start_commit(kept, Precision::Nanos).await?;
                ingest.finish(IlpProtocol::Tcp, started).await?;
            }
            Err(IlpError::Line {
                line: *lines_before + line,
                text,
                reason,
                rejection,
            })
        }
        Err(e) => Err(e),
    }
}

/// A batch whose commit is decided, becoming durable.
type InFlight<'a> = Pin<Box<dyn Future<Output = Result<Stored, IlpError>> + Send + 'a>>;

/// Waits until the batch in flight, if any, is durable.
async fn finish(in_flight: &mut Option<InFlight<'_>>) -> Result<(), IlpError> {
    match in_flight.take() {
        Some(durable) => durable.await.map(|_| ()),
        None => Ok(()),
    }
}

/// The batch in flight becoming durable; never resolves without one.
async fn wait_for(in_flight: &mut Option<InFlight<'_>>) -> Result<Stored, IlpError> {
    match in_flight {
        Some(durable) => durable.await,
        None => std::future::pending().await,
    }
}
