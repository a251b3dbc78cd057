//! TTL as a user sees it: partitions older than the TTL behind the newest
//! row disappear on their own, stay gone after kill -9, and are kept while a
//! checkpoint is held (the copy keeps its cut) until CHECKPOINT RELEASE.

use std::time::Duration;

use crate::harness::Server;

const ENV: [(&str, &str); 1] = [("TIDEMARK_STORAGE_HOUSEKEEPING_INTERVAL_MS", "100")];

/// The first column of `sql`'s rows.
async fn first_column<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn partitions(client: &tokio_postgres::Client) -> Vec<String> {
    first_column(
        client,
        "SELECT name FROM table_partitions('m') ORDER BY name",
    )
    .await
}

async fn wait_for_partitions(client: &tokio_postgres::Client, want: &[&str]) {
    for _ in 0..200 {
        if partitions(client).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(partitions(client).await, want, "after 10 s");
}

#[tokio::test]
async fn ttl_drops_old_partitions_by_itself_keeps_them_in_checkpoint_mode_and_after_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let server = Server::start(&root, &ENV);
    let client = server.client().await;
    // 2026-11-21 .. 2026-11-25, at noon.
    client
        .batch_execute(
            "CREATE TABLE m (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY TTL 2 DAYS; \
             INSERT INTO m SELECT to_timestamp_micros(1795262400000000 + value * 86400000000), value \
             FROM generate_series(0, 4)",
        )
        .await
        .expect("table and rows");
    // Two days behind 11-25T12:00: the 21st and 22nd have ended by then.
    wait_for_partitions(&client, &["2026-11-23", "2026-11-24", "2026-11-25"]).await;
    assert!(
        server
            .wait_for_log("TTL: dropped partitions", Duration::from_secs(5))
            .is_some(),
        "the drop is logged"
    );

    client
        .batch_execute("CHECKPOINT CREATE")
        .await
        .expect("checkpoint");
    client
        .batch_execute("INSERT INTO m VALUES ('2026-11-27T12:00:00', 6)")
        .await
        .expect("newer row");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        partitions(&client).await,
        ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"],
        "nothing is dropped while the checkpoint is held"
    );
    client
        .batch_execute("CHECKPOINT RELEASE")
        .await
        .expect("release");
    wait_for_partitions(&client, &["2026-11-25", "2026-11-27"]).await;

    drop(client);
    drop(server); // SIGKILL
    let server = Server::start(&root, &ENV);
    let client = server.client().await;
    assert_eq!(partitions(&client).await, ["2026-11-25", "2026-11-27"]);
    let rows: Vec<i64> = first_column(&client, "SELECT v FROM m ORDER BY ts").await;
    assert_eq!(rows, [4, 6]);
    let ttl: String = client
        .query_one("SHOW CREATE TABLE m", &[])
        .await
        .expect("show")
        .get(0);
    assert!(ttl.ends_with("TTL 2 DAYS"), "{ttl}");
    // The SHOW statements answer drivers' extended protocol too (Describe
    // gives the columns the rows have).
    let tables: Vec<String> = first_column(&client, "SHOW TABLES").await;
    assert_eq!(tables, ["m"]);
    let columns = client
        .query("SHOW COLUMNS FROM m", &[])
        .await
        .expect("columns");
    assert_eq!(columns.len(), 2);
    assert_eq!(columns[0].get::<_, String>(0), "ts");
}
