//! Checkpoint mode under churn, as an operator's snapshot script meets it:
//! rounds of CHECKPOINT CREATE -> `rsync -a` of the root -> CHECKPOINT RELEASE
//! while two writers commit two-table transactions with a third of their rows
//! out of order, another connection runs UPDATE, DELETE and DROP PARTITION,
//! another runs DDL, and a monitor polls `checkpoint_status()` and `/metrics`.
//! Housekeeping is slowed (`reclaim_paths_per_second`) so that every CREATE
//! meets the reclaim of what the previous mode held. Asserted:
//! - every copy restores exactly its cut (both tables of each writer at the same
//!   gapless prefix, between what was acknowledged before CREATE and after);
//! - rsync never meets a vanished file (exit 0, never 24), including the round
//!   where the server is SIGKILLed and restarted inside the mode while rsync runs;
//! - no status poll takes a second; CREATE takes milliseconds (bounded at 5 s here);
//! - SIGTERM after all that ends the process within 5 seconds.
//!
//! `TIDEMARK_CHECKPOINT_CHURN_ROUNDS` sets the rounds (default 3, one of which
//! kills the server); the figures in docs/benchmarks.md come from a longer run.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Server, length_from_env, seqs};

const WRITERS: usize = 2;
const ENV: &[(&str, &str)] = &[
    ("TIDEMARK_STORAGE_APPLY_INTERVAL_MS", "50"),
    ("TIDEMARK_STORAGE_HOUSEKEEPING_INTERVAL_MS", "200"),
    ("TIDEMARK_STORAGE_RECLAIM_PATHS_PER_SECOND", "100"),
];

/// Writer `w` commits n = start, start+1, ... into `a{w}` and `b{w}` in one
/// transaction each, every third row into the previous day; stops at `stop` or
/// at the first error (the server was killed). `acked[w]` is the count so far.
fn start_writer(
    client: tokio_postgres::Client,
    w: usize,
    start: i64,
    acked: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = start;
        while !stop.load(Ordering::SeqCst) {
            let day = if n % 3 == 2 { 20 } else { 21 };
            let ts = format!("2026-11-{day}T00:00:00.{:06}", n % 1_000_000);
            let sql = format!(
                "BEGIN; INSERT INTO a{w} VALUES ('{ts}', {n}); INSERT INTO b{w} VALUES ('{ts}', {n}); COMMIT"
            );
            if client.batch_execute(&sql).await.is_err() {
                return;
            }
            n += 1;
            acked.store(n, Ordering::SeqCst);
        }
    })
}

/// UPDATE, DELETE, DROP PARTITION and refills on `c`, and CREATE/DROP TABLE, in a
/// loop; stops at `stop` or at a connection error.
fn start_churn(
    client: tokio_postgres::Client,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let day = 10 + i % 8;
            let sql = format!(
                "INSERT INTO c VALUES ('2026-11-{day}T01:00:00', {i}), ('2026-11-{day}T02:00:00', {i}); \
                 UPDATE c SET v = v + 1 WHERE ts >= '2026-11-{day}' AND ts < '2026-11-{}'; \
                 DELETE FROM c WHERE v % 5 = 0; \
                 ALTER TABLE c DROP PARTITION LIST '2026-11-{:02}'; \
                 CREATE TABLE ddl_{i} (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
                 INSERT INTO ddl_{i} VALUES ('2026-11-21T00:00:00', {i}); \
                 DROP TABLE IF EXISTS ddl_{}",
                day + 1,
                10 + (i + 4) % 8,
                i.wrapping_sub(1)
            );
            match client.batch_execute(&sql).await {
                Ok(()) => {}
                // A partition already dropped is an ordinary answer here.
                Err(e) if e.code().is_some_and(|c| c.code() == "42P01") => {}
                Err(_) => return,
            }
            i += 1;
        }
    })
}

/// Polls `checkpoint_status()` and `/metrics` every 50 ms; the slowest poll
/// of each, in microseconds, goes to `slowest`.
fn start_monitor(
    client: tokio_postgres::Client,
    http_port: u16,
    slowest: Arc<[AtomicU64; 2]>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let t = Instant::now();
            if client
                .query_one("SELECT phase FROM checkpoint_status()", &[])
                .await
                .is_err()
            {
                return;
            }
            slowest[0].fetch_max(t.elapsed().as_micros() as u64, Ordering::SeqCst);
            let t = Instant::now();
            let body = tokio::task::spawn_blocking(move || metrics(http_port))
                .await
                .ok()
                .flatten();
            if body.is_none() {
                return;
            }
            slowest[1].fetch_max(t.elapsed().as_micros() as u64, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

fn metrics(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The load and the monitor on one server.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(
        server: &Server,
        acked: &[Arc<AtomicI64>],
        slowest: &Arc<[AtomicU64; 2]>,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (w, a) in acked.iter().enumerate() {
            let start = a.load(Ordering::SeqCst);
            tasks.push(start_writer(
                server.client().await,
                w,
                start,
                a.clone(),
                stop.clone(),
            ));
        }
        tasks.push(start_churn(server.client().await, stop.clone()));
        tasks.push(start_monitor(
            server.client().await,
            server.http_port,
            slowest.clone(),
            stop.clone(),
        ));
        Load { stop, tasks }
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("load task");
        }
    }
}

/// `rsync -a from/ to/`, started (it runs while the test goes on).
fn rsync(from: &Path, to: &Path, bwlimit_kb: Option<u32>) -> std::process::Child {
    let mut cmd = Command::new("rsync");
    cmd.arg("-a");
    if let Some(kb) = bwlimit_kb {
        cmd.arg(format!("--bwlimit={kb}"));
    }
    cmd.arg(format!("{}/", from.display()))
        .arg(to)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rsync (installed by scripts/install-test-deps.sh)")
}

fn assert_rsync_clean(child: std::process::Child, round: i64) {
    let out = child.wait_with_output().expect("rsync");
    assert!(
        out.status.success(),
        "round {round}: rsync exited {:?} (24: files vanished under the copy): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restores `copy` and checks every writer's tables against the acknowledged
/// counts before and after CREATE.
async fn check_copy(copy: &Path, before: &[i64], after: &[i64], round: i64) {
    let _ = std::fs::remove_file(copy.join("tidemark.pid"));
    std::fs::write(copy.join("_restore"), b"").expect("touch _restore");
    let restored = Server::start(copy, &[]);
    let client = restored.client().await;
    for w in 0..WRITERS {
        let a = seqs(&client, &format!("a{w}")).await;
        let b = seqs(&client, &format!("b{w}")).await;
        let k = a.len() as i64;
        assert_eq!(
            a,
            (0..k).collect::<Vec<_>>(),
            "round {round}: a{w} is a gapless prefix"
        );
        assert_eq!(a, b, "round {round}: a{w} and b{w} at the same transaction");
        assert!(
            k >= before[w] && k <= after[w] + 1,
            "round {round}: writer {w} has {k} transactions in the copy; {} acknowledged before CREATE, {} after",
            before[w],
            after[w]
        );
    }
    client
        .query_one("SELECT count(*) FROM c", &[])
        .await
        .expect("the churned table is in the copy");
}

fn du_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => du_bytes(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}

fn counts(acked: &[Arc<AtomicI64>]) -> Vec<i64> {
    acked.iter().map(|a| a.load(Ordering::SeqCst)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_rounds_under_churn_copy_exactly_and_never_block() {
    let rounds: i64 = length_from_env("TIDEMARK_CHECKPOINT_CHURN_ROUNDS", 3).max(2);
    let kill_round = rounds / 2;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let mut server = Server::start(&root, ENV);
    let admin = server.client().await;
    let mut schema =
        String::from("CREATE TABLE c (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY;");
    for w in 0..WRITERS {
        schema += &format!(
            "CREATE TABLE a{w} (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
             CREATE TABLE b{w} (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY;"
        );
    }
    admin.batch_execute(&schema).await.expect("schema");
    drop(admin);
    let acked: Vec<Arc<AtomicI64>> = (0..WRITERS).map(|_| Arc::new(AtomicI64::new(0))).collect();
    let slowest = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut load = Load::start(&server, &acked, &slowest).await;
    let create_times = Arc::new(Mutex::new(Vec::new()));
    for r in 0..rounds {
        // Let the load build garbage for the next mode to meet.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let admin = server.client().await;
        let before = counts(&acked);
        let t = Instant::now();
        admin
            .batch_execute("CHECKPOINT CREATE")
            .await
            .expect("CREATE");
        let took = t.elapsed();
        create_times.lock().expect("lock").push(took);
        let after = counts(&acked);
        // The goal (under a second at worst) is measured on the release build
        // by bench/checkpoint_churn_bench.py; here, a debug build sharing two
        // cores with the rest of the suite, only a bound far below the seconds
        // CREATE took while it waited for housekeeping.
        assert!(
            took < Duration::from_secs(5),
            "round {r}: CREATE took {took:?}"
        );
        let copy = dir.path().join(format!("copy-{r}"));
        if r == kill_round {
            // An rsync slowed to take about three seconds, the server killed
            // and restarted under it.
            let kb = (du_bytes(&root) / 1024 / 3).max(64) as u32;
            let mut copying = rsync(&root, &copy, Some(kb));
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                copying.try_wait().expect("rsync").is_none(),
                "round {r}: the kill must fall inside the copy"
            );
            drop(admin);
            server.signal("KILL");
            load.finish().await;
            drop(server);
            server = Server::start(&root, ENV);
            // Each writer resumes after what the restarted server holds (a
            // transaction in flight at the kill may or may not have committed).
            let client = server.client().await;
            for (w, a) in acked.iter().enumerate() {
                a.store(
                    seqs(&client, &format!("a{w}")).await.len() as i64,
                    Ordering::SeqCst,
                );
            }
            load = Load::start(&server, &acked, &slowest).await;
            let status = client
                .query_one("SELECT in_progress, phase FROM checkpoint_status()", &[])
                .await
                .expect("status");
            assert!(
                status.get::<_, bool>(0),
                "round {r}: the mode survives the kill"
            );
            assert_eq!(status.get::<_, String>(1), "in_progress");
            assert_rsync_clean(copying, r);
            client
                .batch_execute("CHECKPOINT RELEASE")
                .await
                .expect("RELEASE");
        } else {
            // A copy that takes a while: the mode holds what the load retires.
            tokio::time::sleep(Duration::from_millis(2000)).await;
            assert_rsync_clean(rsync(&root, &copy, None), r);
            let held: i64 = admin
                .query_one("SELECT reclaim_pending_paths FROM checkpoint_status()", &[])
                .await
                .expect("status")
                .get(0);
            eprintln!("round {r}: {held} paths held by the mode");
            admin
                .batch_execute("CHECKPOINT RELEASE")
                .await
                .expect("RELEASE");
        }
        check_copy(&copy, &before, &after, r).await;
        std::fs::remove_dir_all(&copy).expect("remove the copy");
    }
    load.finish().await;
    let admin = server.client().await;
    let backlog: i64 = admin
        .query_one("SELECT reclaim_pending_paths FROM checkpoint_status()", &[])
        .await
        .expect("status")
        .get(0);
    drop(admin);
    let t = Instant::now();
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(30));
    let stop_took = t.elapsed();
    let times = create_times.lock().expect("lock").clone();
    let status_ms = slowest[0].load(Ordering::SeqCst) as f64 / 1000.0;
    let metrics_ms = slowest[1].load(Ordering::SeqCst) as f64 / 1000.0;
    eprintln!(
        "checkpoint churn: {rounds} rounds; CREATE took {times:?}; slowest checkpoint_status() {status_ms:.1} ms, /metrics {metrics_ms:.1} ms; SIGTERM with {backlog} paths to reclaim took {stop_took:?}"
    );
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert!(
        stop_took < Duration::from_secs(5),
        "SIGTERM took {stop_took:?}"
    );
    assert!(
        status_ms < 1000.0,
        "a checkpoint_status() poll took {status_ms} ms"
    );
    assert!(metrics_ms < 1000.0, "a /metrics poll took {metrics_ms} ms");
}
