//! Load: 64 connections, mixed reads and writes, for a while. No statement may
//! fail, the server's memory must not keep growing after the warm-up, and the
//! latencies (p50, p99, max) are printed.
//!
//! `TIDEMARK_LOAD_SECONDS` sets the length (default 6; the full run in
//! docs/reliability.md uses 300).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Server, length_from_env, proc_status_bytes};

const CONNECTIONS: usize = 64;

/// Anonymous resident memory (heap and stacks): file pages the server maps grow with
/// the data and are the page cache's, not a leak.
fn rss_bytes(pid: u32) -> u64 {
    proc_status_bytes(pid, "RssAnon")
}

/// One client's statements, by its number: writers insert single rows and small
/// batches, readers run the time-series queries users run most.
async fn client_loop(
    id: usize,
    client: tokio_postgres::Client,
    next: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
) -> Vec<f64> {
    let mut latencies = Vec::new();
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let sql = match (id % 4, round % 3) {
            (0, _) | (1, 0) => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                format!(
                    "INSERT INTO load VALUES (to_timestamp_micros(1795219200000000 + {n} * 1000), 's{}', {n}, {}.5)",
                    n % 50,
                    n % 1000
                )
            }
            (1, _) => {
                let n = next.fetch_add(10, Ordering::Relaxed);
                format!(
                    "INSERT INTO load SELECT to_timestamp_micros(1795219200000000 + value * 1000), 's' || (value % 50)::varchar, value, 1.5 \
                     FROM generate_series({n}, {})",
                    n + 9
                )
            }
            (2, 0) => "SELECT sym, count(*), avg(price) FROM load GROUP BY sym".to_string(),
            (2, _) => "SELECT * FROM load LATEST ON ts PARTITION BY sym".to_string(),
            (_, 0) => "SELECT ts, avg(price) FROM load WHERE sym = 's7' SAMPLE BY 1m".to_string(),
            _ => "SELECT count(*) FROM load WHERE price > 500".to_string(),
        };
        let started = Instant::now();
        if let Err(e) = client.simple_query(&sql).await {
            panic!("client {id}: {sql}: {e:?}");
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_connections_of_mixed_load_without_errors_or_memory_growth() {
    let seconds: u64 = length_from_env("TIDEMARK_LOAD_SECONDS", 6);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("root"), &[]);
    let conninfo = server.conninfo("quest");
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        clients.push(client);
    }
    clients[0]
        .batch_execute(
            "CREATE TABLE load (ts TIMESTAMP, sym SYMBOL, n BIGINT, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create");
    let next = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(id, c)| tokio::spawn(client_loop(id, c, next.clone(), stop.clone())))
        .collect();
    // Memory after a warm-up of a fifth of the run, then its peak over the rest.
    let pid = server.child.id();
    let warm_up = Duration::from_secs(seconds.div_ceil(5));
    tokio::time::sleep(warm_up).await;
    let after_warm_up = rss_bytes(pid);
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds) - warm_up;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push(rss_bytes(pid));
    }
    stop.store(true, Ordering::SeqCst);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client task"));
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    // Growth: the last third of the run against the warm-up level.
    let tail = &samples[samples.len() * 2 / 3..];
    let late = tail.iter().copied().max().unwrap_or(after_warm_up);
    eprintln!(
        "load: {CONNECTIONS} connections, {seconds} s, {} statements ({:.0}/s), latency p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; \
         anonymous RSS after warm-up {} MiB, peak in the last third {} MiB; rows written {}",
        latencies.len(),
        latencies.len() as f64 / seconds as f64,
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1],
        after_warm_up >> 20,
        late >> 20,
        next.load(Ordering::Relaxed)
    );
    assert!(latencies.len() > CONNECTIONS, "every client got answers");
    assert!(
        late < after_warm_up * 2 + (64 << 20),
        "memory kept growing: {} MiB after warm-up, {} MiB at the end",
        after_warm_up >> 20,
        late >> 20
    );
}
