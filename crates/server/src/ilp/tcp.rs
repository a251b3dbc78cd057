//! Line protocol over TCP (`ilp.listen`): newline-delimited lines with
//! nanosecond timestamps, no authentication and no answers, as InfluxDB and
//! QuestDB serve it. A connection's lines are committed in batches: when the
//! complete lines received reach `ilp.tcp_batch_kb`, when
//! `ilp.tcp_commit_interval_ms` has passed since the first of them, and when
//! the client closes the connection or the server stops.
//!
//! Each batch is parsed and committed by a task of its own, so that a
//! connection reads its next lines on one core while the previous batch is
//! parsed on the other and the one before it is made durable; batches of one
//! connection still commit in order.
//!
//! A bad line is logged and counted, every line before it is committed, and
//! the connection is closed; the bad line and whatever followed it on that
//! connection are not stored.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::lines::{complete_lines, count_lines, line_start, quote, utf8};
use super::{IlpError, Ingest, Precision, Started};
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
    ingest: &Arc<Ingest>,
    batching: Batching,
    mut stop: watch::Receiver<bool>,
) -> Result<(), IlpError> {
    let max_line = ingest.options().max_line_bytes;
    // Bytes received; `complete` of them are whole lines.
    let mut buf: Vec<u8> = Vec::with_capacity(batching.batch_bytes + 64 * 1024);
    let mut complete = 0;
    // Lines of this connection before `buf` (for error messages).
    let mut lines_before = 0;
    let mut first_line_at: Option<Instant> = None;
    let mut chunk = vec![0u8; 64 * 1024];
    // Batches handed off, oldest first: being parsed, committed or made
    // durable while the connection reads the next one.
    let mut in_flight = InFlight::default();
    loop {
        let deadline = first_line_at.map(|t| t + batching.commit_interval);
        let read = tokio::select! {
            r = socket.read(&mut chunk) => Some(r),
            _ = sleep_until(deadline) => None,
            _ = stopped(&mut stop) => Some(Ok(0)),
            done = in_flight.oldest_done(), if !in_flight.is_empty() => {
                done?;
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
        let too_long = !eof && buf.len() - complete > max_line;
        if complete > 0 && first_line_at.is_none() {
            first_line_at = Some(Instant::now());
        }
        let due = first_line_at.is_some_and(|t| t.elapsed() >= batching.commit_interval);
        if complete > 0 && (eof || due || too_long || complete >= batching.batch_bytes) {
            let rest = buf.split_off(complete);
            let lines = std::mem::replace(&mut buf, rest);
            let count = count_lines(&lines);
            in_flight.spawn(ingest.clone(), lines, lines_before).await?;
            lines_before += count;
            complete = 0;
            first_line_at = None;
        }
        if too_long {
            in_flight.finish().await?;
            let shown = String::from_utf8_lossy(&buf[..max_line.min(200)]);
            ingest
                .metrics
                .ilp_rejected(IlpProtocol::Tcp, Rejection::Size);
            return Err(IlpError::Line {
                line: lines_before + 1,
                text: quote(&shown),
                reason: format!(
                    "the line is longer than ilp.max_line_kb allows ({max_line} bytes)"
                ),
                rejection: Rejection::Size,
            });
        }
        if eof {
            return in_flight.finish().await;
        }
    }
}

/// How many batches of a connection may be parsed, committed or made durable
/// at once: one parsing while the one before it is made durable, and the
/// connection reading the next.
const MAX_IN_FLIGHT: usize = 2;

/// A connection's batches of whole lines, each parsed and committed by a task
/// of its own, committing in the order they were read.
#[derive(Debug, Default)]
struct InFlight {
    /// Each ends once its batch is durable, or with why it was not stored.
    tasks: VecDeque<JoinHandle<Result<(), IlpError>>>,
    /// `true` once the newest batch's commit is decided; the next batch
    /// commits only after it (and not at all on `false`).
    newest_committed: Option<oneshot::Receiver<bool>>,
}

impl InFlight {
    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Hands `lines` to a task of its own; first waits for the oldest batch
    /// when `MAX_IN_FLIGHT` are in flight. `lines_before`: the lines of the
    /// connection before these.
    async fn spawn(
        &mut self,
        ingest: Arc<Ingest>,
        lines: Vec<u8>,
        lines_before: usize,
    ) -> Result<(), IlpError> {
        let (decided, committed) = oneshot::channel();
        let mut after = self.newest_committed.replace(committed);
        self.tasks.push_back(tokio::spawn(async move {
            let started = start_batch(&ingest, &lines, lines_before, &mut after).await;
            let _ = decided.send(started.is_ok());
            ingest.finish(IlpProtocol::Tcp, started?).await.map(|_| ())
        }));
        while self.tasks.len() > MAX_IN_FLIGHT {
            self.oldest_done().await?;
        }
        Ok(())
    }

    /// Waits for the oldest batch; never resolves when there is none.
    async fn oldest_done(&mut self) -> Result<(), IlpError> {
        let Some(oldest) = self.tasks.front_mut() else {
            return std::future::pending().await;
        };
        let outcome = oldest.await.map_err(|_| IlpError::Stopping);
        self.tasks.pop_front();
        outcome?
    }

    /// Waits until every batch is durable; the first failure is the error.
    async fn finish(&mut self) -> Result<(), IlpError> {
        while !self.tasks.is_empty() {
            self.oldest_done().await?;
        }
        Ok(())
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

/// Starts the commit of `lines` (whole lines) after the commit `after`. When
/// a line is bad, the lines before it are committed and the error names the
/// bad line's number on the connection.
async fn start_batch(
    ingest: &Ingest,
    lines: &[u8],
    lines_before: usize,
    after: &mut Option<oneshot::Receiver<bool>>,
) -> Result<Started, IlpError> {
    match ingest
        .start(IlpProtocol::Tcp, lines, Precision::Nanos, after)
        .await
    {
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
                let started = ingest.start_commit(kept, Precision::Nanos, after).await?;
                ingest.finish(IlpProtocol::Tcp, started).await?;
            }
            Err(IlpError::Line {
                line: lines_before + line,
                text,
                reason,
                rejection,
            })
        }
        other => other,
    }
}
