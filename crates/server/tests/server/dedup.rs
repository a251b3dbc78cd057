//! DEDUP UPSERT KEYS through every write path a user has: INSERT, COPY and the
//! line protocol, then SIGKILL and a restart (the replay of the WAL must
//! deduplicate exactly as the live commits did).

use std::time::Duration;

use futures::SinkExt;

use crate::harness::Server;

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .expect(sql)
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
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
    for v in [1.5f64, 2.5] {
        client
            .execute(&insert, &[&"2026-11-21 00:01:00", &"s3", &v])
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
