//! Results stream: a full-table SELECT, a COPY TO and cursor reads (SQL's, and
//! psycopg's named cursor) of a table far larger than the memory bound leave the
//! server's memory where it was; a statement
//! timeout, a cancel and an error stop a result mid-way, and an error mid-way
//! inside a transaction aborts it.
//!
//! `TIDEMARK_STREAM_ROWS` sets the table's size (default 600,000 rows of about
//! 100 bytes of text each: a result of about 60 MB, which the server used to
//! hold twice over before the first row left).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};

use crate::harness::{Server, length_from_env, proc_status_bytes};

/// How much the server's anonymous memory (heap and stacks; the mapped column
/// files are page cache) may grow while a large result streams.
const GROWTH_LIMIT: u64 = 48 << 20;

const NOTE: &str = "a note long enough that every row of the result carries some weight";

async fn load(client: &tokio_postgres::Client, rows: usize) {
    client
        .batch_execute(
            "CREATE TABLE big (ts TIMESTAMP, sym SYMBOL, v BIGINT, note VARCHAR) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create");
    // A COPY is one transaction, one WAL record of at most 2 GiB: a large
    // table comes in several.
    const ROWS_PER_COPY: usize = 5_000_000;
    for first in (0..rows).step_by(ROWS_PER_COPY) {
        let last = rows.min(first + ROWS_PER_COPY);
        let sink = client
            .copy_in("COPY big FROM STDIN")
            .await
            .expect("copy in");
        futures::pin_mut!(sink);
        let mut chunk = String::new();
        for i in first..last {
            let (s, us) = (i / 1000, i % 1000 * 1000);
            chunk.push_str(&format!(
                "{} {:02}:{:02}:{:02}.{us:06}\tS{}\t{i}\t{NOTE}\n",
                day(s / 86_400),
                s / 3600 % 24,
                s / 60 % 60,
                s % 60,
                i % 100
            ));
            if chunk.len() > 1 << 20 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut chunk)))
                    .await
                    .expect("send");
            }
        }
        sink.send(bytes::Bytes::from(chunk)).await.expect("send");
        assert_eq!(sink.finish().await.expect("finish"), (last - first) as u64);
    }
    client
        .batch_execute("CHECKPOINT")
        .await
        .expect("checkpoint");
}

/// The date `n` days after 2026-11-21 (a thousand rows a second fill a day
/// every 86.4 million rows; the table stays within November and December).
fn day(n: usize) -> String {
    let day_of_year = 325 + n; // 2026-11-21 is day 325 (1-based)
    let (month, day) = if day_of_year <= 334 {
        (11, day_of_year - 304)
    } else {
        (12, day_of_year - 334)
    };
    format!("2026-{month:02}-{day:02}")
}

/// Samples the server's anonymous RSS every 10 ms until dropped; the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(proc_status_bytes(pid, "RssAnon"), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        RssSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("sampler");
        }
        self.peak.load(Ordering::SeqCst)
    }
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// Reads the whole table slowly (a pause every 1,000 rows) until the result
/// fails; the rows read and the error. With `cancel`, the cancel request is
/// sent once 1,000 rows are in.
async fn read_slowly_until_error(
    client: &tokio_postgres::Client,
    cancel: Option<&tokio_postgres::CancelToken>,
) -> (usize, tokio_postgres::Error) {
    let stream = client
        .simple_query_raw("SELECT * FROM big")
        .await
        .expect("select");
    futures::pin_mut!(stream);
    let mut read = 0usize;
    loop {
        match stream.next().await {
            Some(Ok(_)) => {
                read += 1;
                if read == 1000
                    && let Some(token) = cancel
                {
                    token
                        .cancel_query(tokio_postgres::NoTls)
                        .await
                        .expect("cancel");
                }
                if read.is_multiple_of(1000) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Some(Err(e)) => return (read, e),
            None => panic!("the read finished before it was stopped ({read} rows)"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_stream_in_bounded_memory_and_stop_mid_way() {
    let rows: usize = length_from_env("TIDEMARK_STREAM_ROWS", 600_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("root"), &[]);
    let pid = server.child.id();
    let server_port = server.port.to_string();
    let client = server.client().await;
    load(&client, rows).await;

    // A warm-up read, so that the allocator's steady state is the baseline.
    client
        .simple_query("SELECT * FROM big LIMIT 10000")
        .await
        .expect("warm-up");
    let baseline = proc_status_bytes(pid, "RssAnon");

    // The whole table through the simple protocol (psql's way).
    let sampler = RssSampler::start(pid);
    let stream = client
        .simple_query_raw("SELECT * FROM big")
        .await
        .expect("select");
    futures::pin_mut!(stream);
    let (mut seen, mut last_v) = (0usize, -1i64);
    while let Some(message) = stream.next().await {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message.expect("row") {
            let v: i64 = row.get(2).and_then(|v| v.parse().ok()).expect("v");
            assert_eq!(v, last_v + 1, "rows in timestamp order, none missing");
            last_v = v;
            seen += 1;
        }
    }
    assert_eq!(seen, rows);
    let select_peak = sampler.finish();

    // The same rows through the extended protocol, and through COPY TO STDOUT.
    let sampler = RssSampler::start(pid);
    let params: [&str; 0] = [];
    let stream = client
        .query_raw("SELECT ts, sym, v, note FROM big", params)
        .await
        .expect("query");
    futures::pin_mut!(stream);
    let mut extended = 0usize;
    while let Some(row) = stream.next().await {
        row.expect("row");
        extended += 1;
    }
    assert_eq!(extended, rows);
    let out = client
        .copy_out("COPY big TO STDOUT")
        .await
        .expect("copy out");
    futures::pin_mut!(out);
    let mut lines = 0usize;
    while let Some(chunk) = out.next().await {
        lines += chunk
            .expect("chunk")
            .iter()
            .filter(|b| **b == b'\n')
            .count();
    }
    assert_eq!(lines, rows);
    // And through a cursor, 10,000 rows a FETCH (psycopg's named cursors).
    client
        .batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT * FROM big")
        .await
        .expect("declare");
    let mut fetched = 0usize;
    loop {
        let got = client
            .simple_query("FETCH FORWARD 10000 FROM c")
            .await
            .expect("fetch")
            .iter()
            .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
            .count();
        if got == 0 {
            break;
        }
        fetched += got;
    }
    assert_eq!(fetched, rows);
    client
        .batch_execute("CLOSE c; COMMIT")
        .await
        .expect("close");
    // And as an application reads it: psycopg's named cursor.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/drivers/python/stream_cursor.py");
    let psycopg = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args([
                "127.0.0.1",
                &server_port,
                "admin",
                "quest",
                &rows.to_string(),
            ])
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs (scripts/install-test-deps.sh installs psycopg)");
    assert!(
        psycopg.status.success(),
        "psycopg named cursor: {}{}",
        String::from_utf8_lossy(&psycopg.stdout),
        String::from_utf8_lossy(&psycopg.stderr)
    );
    let other_peak = sampler.finish();
    eprintln!(
        "streaming {rows} rows: anonymous RSS {} MiB before, peak {} MiB (SELECT), {} MiB (extended, COPY TO, cursors)",
        baseline >> 20,
        select_peak >> 20,
        other_peak >> 20
    );
    for (what, peak) in [
        ("SELECT", select_peak),
        ("extended, COPY TO and cursors", other_peak),
    ] {
        assert!(
            peak < baseline + GROWTH_LIMIT,
            "{what}: the server's memory grew from {} MiB to {} MiB while the result streamed",
            baseline >> 20,
            peak >> 20
        );
    }

    // A statement timeout stops a result the client reads slowly, mid-way.
    client
        .batch_execute("SET statement_timeout = 300")
        .await
        .expect("set");
    let (read, error) = read_slowly_until_error(&client, None).await;
    assert_eq!(code(&error), "57014", "{error}");
    assert!(read > 0 && read < rows, "stopped mid-way ({read} rows)");
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .expect("reset");

    // A cancel request does the same.
    let token = client.cancel_token();
    let (read, error) = read_slowly_until_error(&client, Some(&token)).await;
    assert_eq!(code(&error), "57014", "{error}");
    assert!(read < rows, "stopped mid-way ({read} rows)");

    // An error half-way through a result, inside a transaction, aborts it:
    // rows first, then the error, then 25P02 until ROLLBACK.
    let half = rows as i64 / 2;
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .batch_execute("INSERT INTO big VALUES ('2026-11-22', 'X', -1, 'in the transaction')")
        .await
        .expect("insert");
    let stream = client
        .simple_query_raw(&format!("SELECT v, 1 / (v - {half}) FROM big"))
        .await
        .expect("select");
    futures::pin_mut!(stream);
    let mut read = 0usize;
    let error = loop {
        match stream.next().await {
            Some(Ok(tokio_postgres::SimpleQueryMessage::Row(_))) => read += 1,
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("no division by zero"),
        }
    };
    assert_eq!(code(&error), "22012", "{error}");
    assert!(read > 0, "rows before the error were sent");
    let e = client
        .batch_execute("SELECT 1")
        .await
        .expect_err("the transaction is aborted");
    assert_eq!(code(&e), "25P02", "{e}");
    let end = client.simple_query("COMMIT").await.expect("commit");
    assert!(
        end.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(_))),
        "{end:?}"
    );
    let count = client
        .query_one("SELECT count(*) FROM big WHERE v = -1", &[])
        .await
        .expect("count");
    assert_eq!(
        count.get::<_, i64>(0),
        0,
        "the aborted transaction's row is gone"
    );
}
