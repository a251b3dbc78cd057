//! DEDUP UPSERT KEYS through every write path a user has: INSERT, COPY and the
//! line protocol, then SIGKILL and a restart (the replay of the WAL must
//! deduplicate exactly as the live commits did).

use std::time::Duration;

use futures::SinkExt;

use crate::harness::{Server, rows_of};

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    rows_of(&client.simple_query(sql).await.expect(sql))
}

fn row(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

/// COPY of 10 sensors x 100 seconds, value `base + second`.
async fn copy_readings(client: &tokio_postgres::Client, base: i64) {
    let sink = client
        .copy_in("COPY readings (ts, sensor, v) FROM STDIN WITH (FORMAT csv)")
        .await
        .expect("COPY");
    futures::pin_mut!(sink);
    let mut data = String::new();
    for second in 0..100 {
        for sensor in 0..10 {
            data.push_str(&format!(
                "2026-11-21T00:01:{:02}.{:06},s{sensor},{}\n",
                second / 2,
                (second % 2) * 500_000,
                base + second
            ));
        }
    }
    sink.send(bytes::Bytes::from(data)).await.expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_through_insert_copy_and_line_protocol_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE readings (ts TIMESTAMP, sensor SYMBOL, v DOUBLE) \
             TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, sensor)",
        )
        .await
        .expect("create");
    copy_readings(&client, 0).await;
    // The same keys again: every row is replaced, none added.
    copy_readings(&client, 1000).await;
    let summary = "SELECT count(*), sum(v), min(v), max(v) FROM readings";
    assert_eq!(
        rows(&client, summary).await,
        vec![row(&["1000", "1049500", "1000", "1099"])]
    );
    // A prepared INSERT replacing one reading, run twice with other values.
    let insert = client
        .prepare("INSERT INTO readings VALUES ($1::timestamp, $2, $3)")
        .await
        .expect("prepare");
    // `$1::timestamp` is described as a timestamp, as PostgreSQL describes it.
    let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_219_260); // 2026-11-21 00:01
    for v in [1.5f64, 2.5] {
        client
            .execute(&insert, &[&at, &"s3", &v])
            .await
            .expect("insert");
    }
    // The line protocol replaces s4's first reading and adds a new sensor.
    let body = "readings,sensor=s4 v=-1 1795219260000000000\n\
                readings,sensor=s99 v=7 1795219260000000000\n";
    let answer = crate::harness::http(
        server.http_port,
        "POST",
        "/api/v2/write?bucket=b&org=o",
        &[("Authorization", "Token admin:quest")],
        body.as_bytes(),
    );
    assert_eq!(answer.code, 204, "{}", answer.body);
    let first_second =
        "SELECT sensor, v FROM readings WHERE ts = '2026-11-21T00:01:00' ORDER BY sensor";
    let expected_first: Vec<Vec<Option<String>>> = (0..10)
        .map(|s| {
            let v = match s {
                3 => "2.5".to_string(),
                4 => "-1".to_string(),
                _ => "1000".to_string(),
            };
            row(&[&format!("s{s}"), &v])
        })
        .chain([row(&["s99", "7"])])
        .collect();
    assert_eq!(rows(&client, first_second).await, expected_first);
    assert_eq!(
        rows(&client, "SELECT count(*) FROM readings").await,
        vec![row(&["1001"])]
    );

    // SIGKILL: what was acknowledged comes back from the WAL, deduplicated.
    server.signal("KILL");
    let _ = server.wait(Duration::from_secs(10));
    let server = Server::start(dir.path(), &[]);
    let client = server.client().await;
    assert_eq!(rows(&client, first_second).await, expected_first);
    assert_eq!(
        rows(&client, "SELECT count(*) FROM readings").await,
        vec![row(&["1001"])]
    );
    // And the keys are still the table's after the restart.
    copy_readings(&client, 5000).await;
    assert_eq!(
        rows(
            &client,
            "SELECT count(*), min(v), max(v) FROM readings WHERE sensor <> 's99'"
        )
        .await,
        vec![row(&["1000", "5000", "5099"])]
    );
    assert_eq!(
        rows(&client, "SHOW CREATE TABLE readings").await,
        vec![row(&[
            "CREATE TABLE \"readings\" (\"ts\" TIMESTAMP, \"sensor\" SYMBOL, \"v\" DOUBLE) \
             TIMESTAMP(\"ts\") PARTITION BY DAY DEDUP UPSERT KEYS(\"ts\", \"sensor\")"
        ])]
    );
}

/// Upserts under SIGKILL: writers keep replacing the rows of a fixed set of
/// keys with ever larger values (late rows among them, so the apply merges
/// into older partitions), and the server is killed at random moments. After
/// every restart each key is there exactly once, with at least the value last
/// acknowledged for it (a larger one only if a write in flight landed); while
/// writing, readers never see a key twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_keep_one_row_per_key_across_sigkills() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use parking_lot::Mutex;
    use rand::Rng;

    const KEYS: i64 = 60;
    let kills: usize = crate::harness::length_from_env("TIDEMARK_DEDUP_KILLS", 3);
    let dir = tempfile::tempdir().expect("tempdir");
    // Applies often, so kills land during merges too.
    let env = [("TIDEMARK_STORAGE_APPLY_INTERVAL_MS", "20")];
    {
        let server = Server::start(dir.path(), &env);
        server
            .client()
            .await
            .batch_execute(
                "CREATE TABLE up (ts TIMESTAMP, k INT, v BIGINT) TIMESTAMP(ts) \
                 PARTITION BY HOUR DEDUP UPSERT KEYS(ts, k)",
            )
            .await
            .expect("create");
    }
    // Key n: timestamp n minutes into the day (an hour partition per 60 keys).
    let key_sql = |n: i64, v: i64| {
        format!(
            "('2026-11-21T{:02}:{:02}:00', {}, {v})",
            n / 60 % 24,
            n % 60,
            n % 7
        )
    };
    let acked: Arc<Mutex<BTreeMap<i64, i64>>> = Arc::default();
    let mut next_value = 1i64;
    for round in 0..kills {
        let server = Server::start(dir.path(), &env);
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..2i64 {
            let client = server.client().await;
            let (acked, stop) = (acked.clone(), stop.clone());
            let base = next_value + w * 1_000_000;
            writers.push(tokio::spawn(async move {
                let mut v = base;
                while !stop.load(Ordering::SeqCst) {
                    // A few keys per statement, writer w on keys of its parity
                    // (so acknowledged values per key only grow).
                    let keys: Vec<i64> = (0..3)
                        .map(|_| 2 * rand::rng().random_range(0..KEYS / 2) + w)
                        .collect();
                    let values: Vec<String> = keys.iter().map(|k| key_sql(*k, v)).collect();
                    let sql = format!("INSERT INTO up VALUES {}", values.join(", "));
                    if client.batch_execute(&sql).await.is_err() {
                        return;
                    }
                    let mut a = acked.lock();
                    for k in keys {
                        a.insert(k, v);
                    }
                    v += 1;
                }
            }));
        }
        // Meanwhile readers must never see a key twice (rows still buffered
        // meet rows in the files in the scan).
        let reader = {
            let client = server.client().await;
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut checks = 0;
                while !stop.load(Ordering::SeqCst) {
                    let Ok(got) = client
                        .simple_query("SELECT count(*), count(DISTINCT ts) FROM up")
                        .await
                    else {
                        break;
                    };
                    for m in got {
                        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                            assert_eq!(r.get(0), r.get(1), "a key is there twice while writing");
                            checks += 1;
                        }
                    }
                }
                checks
            })
        };
        let wait = rand::rng().random_range(200..900);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.signal("KILL");
        let _ = server.wait(Duration::from_secs(10));
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            let _ = w.await;
        }
        let checks = reader.await.expect("reader");
        assert!(checks > 0, "round {round}: the reader checked nothing");
        next_value += 10_000_000;

        let server = Server::start(dir.path(), &env);
        let client = server.client().await;
        let got = rows(&client, "SELECT ts, k, v FROM up").await;
        let mut seen: BTreeMap<i64, i64> = BTreeMap::new();
        for r in &got {
            let ts = r[0].clone().unwrap_or_default();
            // 2026-11-21 HH:MM:00 -> key HH * 60 + MM.
            let n = ts[11..13].parse::<i64>().unwrap_or(-1) * 60
                + ts[14..16].parse::<i64>().unwrap_or(-1);
            let v: i64 = r[2].as_deref().and_then(|v| v.parse().ok()).unwrap_or(-1);
            assert!(
                seen.insert(n, v).is_none(),
                "round {round}: key {n} ({ts}) appears twice after the restart"
            );
        }
        for (k, v) in acked.lock().iter() {
            let now = seen.get(k).copied();
            assert!(
                now.is_some_and(|n| n >= *v),
                "round {round}: key {k} acknowledged with {v}, found {now:?}"
            );
        }
        drop(client);
        drop(server);
    }
    assert!(!acked.lock().is_empty(), "no upsert was acknowledged");
}
