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

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{IlpError, Ingest, Precision};
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
    loop {
        let deadline = first_line_at.map(|t| t + batching.commit_interval);
        let read = tokio::select! {
            r = socket.read(&mut chunk) => Some(r),
            _ = sleep_until(deadline) => None,
            _ = stopped(&mut stop) => Some(Ok(0)),
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
            commit(ingest, &buf[..complete], &mut lines_before).await?;
            let shown = String::from_utf8_lossy(&buf[complete..complete + max_line.min(200)]);
            let e = IlpError::Line {
                line: lines_before + 1,
                text: super::lines::quote(&shown),
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
            commit(ingest, &buf[..complete], &mut lines_before).await?;
            buf.drain(..complete);
            complete = 0;
            first_line_at = None;
        }
        if eof {
            return Ok(());
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

/// How many leading bytes of `data` are whole lines (up to and including the
/// last newline that ends a line; a newline inside a quoted string does not).
fn complete_lines(data: &[u8]) -> usize {
    // Only the bytes up to the last newline can hold whole lines, and they are
    // text unless a line is bad (which the commit reports).
    let Some(last_newline) = data.iter().rposition(|&b| b == b'\n') else {
        return 0;
    };
    let Ok(text) = std::str::from_utf8(&data[..=last_newline]) else {
        return last_newline + 1;
    };
    let mut pieces = influxdb_line_protocol::split_lines(text);
    let mut end = 0;
    let mut pos = 0;
    // Every piece but the last was ended by a line-ending newline.
    let mut previous = pieces.next();
    for piece in pieces {
        if let Some(p) = previous {
            pos += p.len() + 1;
            end = pos;
        }
        previous = Some(piece);
    }
    end
}

/// Commits `lines` (whole lines). When one is bad, the lines before it are
/// committed and the error names the bad line's number on the connection.
async fn commit(ingest: &Ingest, lines: &[u8], lines_before: &mut usize) -> Result<(), IlpError> {
    if lines.is_empty() {
        return Ok(());
    }
    let count = lines.iter().filter(|&&b| b == b'\n').count();
    match ingest
        .write(IlpProtocol::Tcp, lines, Precision::Nanos)
        .await
    {
        Ok(_) => {
            *lines_before += count;
            Ok(())
        }
        Err(IlpError::Line {
            line,
            text,
            reason,
            rejection,
        }) => {
            // Keep what came before the bad line: find where that line starts.
            let start = nth_line_start(lines, line);
            if start > 0 {
                let kept = super::lines::utf8(&lines[..start])?;
                let stored = ingest.write_inner(kept, Precision::Nanos).await?;
                ingest
                    .metrics
                    .ilp_stored(IlpProtocol::Tcp, stored.lines, stored.rows);
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

/// The byte offset where line `number` (1-based, as `lines::parse_body`
/// numbers them) starts.
fn nth_line_start(data: &[u8], number: usize) -> usize {
    let Ok(text) = std::str::from_utf8(data) else {
        // Not text: the error was UTF-8 on line `number`; count raw newlines.
        return data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(number.saturating_sub(2))
            .map_or(0, |(i, _)| if number > 1 { i + 1 } else { 0 });
    };
    influxdb_line_protocol::split_lines(text)
        .take(number.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        .min(data.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_end_at_a_newline_outside_quotes() {
        assert_eq!(complete_lines(b"a x=1\nb x=2"), 6);
        assert_eq!(complete_lines(b"a x=1\nb x=2\n"), 12);
        assert_eq!(complete_lines(b"a x=\"one\ntwo\"\n"), 14);
        assert_eq!(complete_lines(b"a x=1\nb x=\"one\ntwo"), 6);
        assert_eq!(complete_lines(b"no newline"), 0);
    }

    #[test]
    fn line_starts_follow_the_parsers_numbering() {
        let data = b"a x=1\nb x=2\nc x=3\n";
        assert_eq!(nth_line_start(data, 1), 0);
        assert_eq!(nth_line_start(data, 2), 6);
        assert_eq!(nth_line_start(data, 3), 12);
    }
}
