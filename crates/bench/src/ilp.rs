//! Ingest over the InfluxDB line protocol: the generated trades as lines
//! (`sym` and `side` tags, `price` and `amount` fields, nanosecond
//! timestamps), sent over one TCP connection and over HTTP in requests of
//! 10,000 lines on one keep-alive connection, as an agent sends them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, UNIX_EPOCH};

use tokio_postgres::Client;

use crate::data::row_with;

type Result<T> = std::result::Result<T, String>;

/// Lines per HTTP request.
pub(crate) const LINES_PER_REQUEST: u64 = 10_000;

/// Row `i` of the trades as a line of `table`.
fn line(table: &str, i: u64) -> String {
    let r = row_with(i, false);
    let ns =
        r.ts.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
    format!(
        "{table},sym={},side={} price={},amount={} {ns}\n",
        r.sym, r.side, r.price, r.amount
    )
}

/// Waits until `table` holds `rows` rows (TCP has no acknowledgement).
async fn wait_for_rows(client: &Client, table: &str, rows: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(row) = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
        {
            let n: i64 = row.get(0);
            if n as u64 == rows {
                return Ok(());
            }
            if n as u64 > rows {
                return Err(format!("{table} holds {n} rows, expected {rows}"));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{table} did not reach {rows} rows"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `rows` lines over one TCP connection; rows/s from the first byte sent
/// until the last row is visible to a query.
pub(crate) async fn over_tcp(port: u16, client: &Client, table: &str, rows: u64) -> Result<f64> {
    let payload: String = (0..rows).map(|i| line(table, i)).collect();
    let started = Instant::now();
    let sent = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("ilp tcp: {e}"))?;
        s.write_all(payload.as_bytes())
            .map_err(|e| format!("ilp tcp send: {e}"))?;
        s.shutdown(std::net::Shutdown::Write)
            .map_err(|e| format!("ilp tcp close: {e}"))
    })
    .await
    .map_err(|e| e.to_string())?;
    sent?;
    wait_for_rows(client, table, rows).await?;
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// `rows` lines over HTTP (`POST /api/v2/write`), `LINES_PER_REQUEST` per
/// request, one keep-alive connection, each request answered 204 before the
/// next is sent; rows/s.
pub(crate) async fn over_http(port: u16, table: &str, rows: u64) -> Result<f64> {
    let bodies: Vec<String> = (0..rows.div_ceil(LINES_PER_REQUEST))
        .map(|r| {
            let from = r * LINES_PER_REQUEST;
            (from..(from + LINES_PER_REQUEST).min(rows))
                .map(|i| line(table, i))
                .collect()
        })
        .collect();
    tokio::task::spawn_blocking(move || -> Result<f64> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("ilp http: {e}"))?;
        let _ = s.set_nodelay(true);
        let mut reader = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
        let mut s = s;
        let started = Instant::now();
        for body in bodies {
            write!(
                s,
                "POST /api/v2/write?bucket=bench HTTP/1.1\r\nHost: bench\r\n\
                 Authorization: Token admin:quest\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .and_then(|()| s.write_all(body.as_bytes()))
            .map_err(|e| format!("ilp http send: {e}"))?;
            expect_no_content(&mut reader)?;
        }
        Ok(rows as f64 / started.elapsed().as_secs_f64())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Reads one response; an error unless it is 204.
fn expect_no_content(reader: &mut BufReader<TcpStream>) -> Result<()> {
    let mut status = String::new();
    reader
        .read_line(&mut status)
        .map_err(|e| format!("ilp http answer: {e}"))?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader
            .read_line(&mut header)
            .map_err(|e| format!("ilp http answer: {e}"))?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("ilp http answer body: {e}"))?;
    if status.split_whitespace().nth(1) != Some("204") {
        return Err(format!(
            "ilp http: {} {}",
            status.trim(),
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}
