//! The extended query protocol, binary format, COPY, cancellation and
//! timeouts, connection limits, users and HTTP, with tokio-postgres and psql.

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use tokio_postgres::NoTls;

use crate::harness::{Server, self_signed_cert};

fn assert_code(e: &tokio_postgres::Error, expected: &str) {
    let c = code(e);
    assert!(c.starts_with(expected), "expected {expected}, got {c}");
}

async fn connect_as(
    s: &Server,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let conninfo = format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=tidemark",
        s.port
    );
    let (client, conn) = tokio_postgres::connect(&conninfo, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

fn code(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.code().code(), db.message()),
        None => format!("no SQLSTATE: {e}"),
    }
}

/// A prepared SAMPLE BY statement (planned once, as its grouped query) takes
/// parameters, names its columns as written, and sees rows committed after
/// Parse; one with FILL still runs (rewritten at each execution), also when its
/// select list leaves the buckets out.
#[tokio::test]
async fn prepared_sample_by_takes_parameters_and_sees_new_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let client = connect_as(&server, "admin", "quest")
        .await
        .expect("connect");
    client
        .batch_execute(
            "CREATE TABLE s (ts TIMESTAMP, sym SYMBOL, qty BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO s VALUES ('2026-11-21T09:10:00Z', 'A', 1), \
             ('2026-11-21T09:50:00Z', 'A', 2), ('2026-11-21T10:05:00Z', 'B', 4)",
        )
        .await
        .expect("load");
    let hourly = client
        .prepare("SELECT ts, sum(qty) AS total FROM s WHERE sym = $1 SAMPLE BY 1h")
        .await
        .expect("prepare");
    assert_eq!(hourly.params(), &[tokio_postgres::types::Type::TEXT]);
    let names: Vec<&str> = hourly.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["ts", "total"]);
    let totals = |rows: Vec<tokio_postgres::Row>| -> Vec<i64> {
        rows.iter().map(|r| r.get::<_, i64>(1)).collect()
    };
    let rows = client.query(&hourly, &[&"A"]).await.expect("A");
    assert_eq!(totals(rows), [3]);
    client
        .batch_execute("INSERT INTO s VALUES ('2026-11-21T10:30:00Z', 'A', 8)")
        .await
        .expect("insert");
    let rows = client.query(&hourly, &[&"A"]).await.expect("A again");
    assert_eq!(totals(rows), [3, 8]);
    let rows = client.query(&hourly, &[&"B"]).await.expect("B");
    assert_eq!(totals(rows), [4]);
    let filled = client
        .prepare("SELECT ts, sum(qty) FROM s WHERE sym = $1 SAMPLE BY 30m FILL(0)")
        .await
        .expect("prepare FILL");
    let rows = client.query(&filled, &[&"A"]).await.expect("FILL");
    assert_eq!(totals(rows), [1, 2, 0, 8]);
    // Filled by buckets the select list does not show: described and sent
    // without the bucket column, in bucket order.
    let unshown = client
        .prepare("SELECT sum(qty) AS total FROM s WHERE sym = $1 SAMPLE BY 30m FILL(0)")
        .await
        .expect("prepare FILL without the buckets");
    let names: Vec<&str> = unshown.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["total"]);
    let rows = client
        .query(&unshown, &[&"A"])
        .await
        .expect("FILL, no buckets");
    let sums: Vec<i64> = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
    assert_eq!(sums, [1, 2, 0, 8]);
}

#[tokio::test]
async fn bound_parameters_and_binary_results_for_every_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let client = connect_as(&server, "admin", "quest")
        .await
        .expect("connect");
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, b BOOLEAN, s SMALLINT, i INT, l BIGINT, r REAL, \
             d DOUBLE, v VARCHAR, sym SYMBOL, bin BYTEA) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create");
    let insert = client
        .prepare("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .await
        .expect("prepare infers every parameter's type from the columns");
    let ts = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
    let n = client
        .execute(
            &insert,
            &[
                &ts,
                &true,
                &-7i16,
                &i32::MIN,
                &i64::MAX,
                &1.5f32,
                &f64::NAN,
                &"héllo 'quoted'",
                &"AAPL",
                &vec![0u8, 1, 255],
            ],
        )
        .await
        .expect("insert with binary parameters");
    assert_eq!(n, 1);
    let nulls: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &(ts + Duration::from_secs(1)),
        &None::<bool>,
        &None::<i16>,
        &None::<i32>,
        &None::<i64>,
        &None::<f32>,
        &None::<f64>,
        &None::<String>,
        &None::<String>,
        &None::<Vec<u8>>,
    ];
    client.execute(&insert, &nulls).await.expect("insert NULLs");

    // Results in binary format (tokio-postgres asks for binary).
    let rows = client
        .query(
            "SELECT ts, b, s, i, l, r, d, v, sym, bin FROM t WHERE ts >= $1 ORDER BY ts",
            &[&ts],
        )
        .await
        .expect("select");
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.get::<_, SystemTime>(0), ts);
    assert!(r.get::<_, bool>(1));
    assert_eq!(r.get::<_, i16>(2), -7);
    assert_eq!(r.get::<_, i32>(3), i32::MIN);
    assert_eq!(r.get::<_, i64>(4), i64::MAX);
    assert_eq!(r.get::<_, f32>(5), 1.5);
    assert!(r.get::<_, f64>(6).is_nan());
    assert_eq!(r.get::<_, &str>(7), "héllo 'quoted'");
    assert_eq!(r.get::<_, &str>(8), "AAPL");
    assert_eq!(r.get::<_, Vec<u8>>(9), vec![0u8, 1, 255]);
    let r = &rows[1];
    for i in 1..10 {
        let v: Option<String> = match i {
            7 | 8 => r.get(i),
            _ => None,
        };
        assert!(v.is_none(), "column {i} is NULL");
    }
    assert_eq!(r.get::<_, Option<i64>>(4), None);
    assert_eq!(r.get::<_, Option<Vec<u8>>>(9), None);

    // A prepared statement keeps working after ALTER TABLE adds a column.
    let select = client
        .prepare("SELECT count(*) FROM t WHERE i = $1 OR $2 < d")
        .await
        .expect("prepare");
    client
        .batch_execute("ALTER TABLE t ADD COLUMN extra INT")
        .await
        .expect("alter");
    let row = client
        .query_one(&select, &[&i32::MIN, &0.5f64])
        .await
        .expect("reuse");
    assert_eq!(row.get::<_, i64>(0), 1);

    // LIMIT and OFFSET as cast parameters over a table, as SQLAlchemy's
    // `.limit(n)` with psycopg sends them (`$1::INTEGER`): the kept plan holds
    // casts of the bound values there.
    client
        .batch_execute(
            "CREATE TABLE pages (ts TIMESTAMP, x BIGINT) TIMESTAMP(ts); \
             INSERT INTO pages SELECT timestamp_sequence('2026-01-01', 1000000), x \
             FROM long_sequence(10)",
        )
        .await
        .expect("a table of ten rows");
    let page = client
        .prepare("SELECT x FROM pages ORDER BY ts LIMIT $1::INTEGER OFFSET $2::INTEGER")
        .await
        .expect("prepare a page");
    for (limit, offset, first) in [(2i32, 3i32, 4i64), (3, 0, 1), (1, 9, 10)] {
        let rows = client
            .query(&page, &[&limit, &offset])
            .await
            .expect("a page");
        let got: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let want: Vec<i64> = (first..first + i64::from(limit)).collect();
        assert_eq!(got, want, "LIMIT {limit} OFFSET {offset}");
    }

    // Errors keep their SQLSTATE in the extended protocol.
    let e = client
        .query("SELECT * FROM missing WHERE x = $1", &[&1i32])
        .await
        .expect_err("must fail");
    assert_code(&e, "42P01");
    let e = client
        .execute(
            &insert,
            &[
                &ts,
                &"nope",
                &1i16,
                &1i32,
                &1i64,
                &1f32,
                &1f64,
                &"",
                &"",
                &vec![0u8],
            ],
        )
        .await
        .expect_err("must fail");
    assert!(e.to_string().contains("error serializing"), "{e}");
}

#[tokio::test]
async fn transactions_portals_and_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let mut client = connect_as(&server, "admin", "quest")
        .await
        .expect("connect");
    client
        .batch_execute(
            "CREATE TABLE m (ts TIMESTAMP, sym SYMBOL, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create");

    // COPY FROM STDIN (CSV with a header) and COPY TO STDOUT.
    let sink = client
        .copy_in("COPY m FROM STDIN WITH (FORMAT csv, HEADER)")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    let mut data = String::from("ts,sym,v\n");
    for k in 0..1000 {
        data.push_str(&format!(
            "2026-11-21T00:{:02}:{:02},\"S,{}\",{}\n",
            k / 60 % 60,
            k % 60,
            k % 3,
            k
        ));
    }
    // Split mid-row: rows may straddle CopyData messages.
    let (a, b) = data.split_at(data.len() / 2 + 3);
    sink.send(bytes::Bytes::from(a.to_string()))
        .await
        .expect("send");
    sink.send(bytes::Bytes::from(b.to_string()))
        .await
        .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 1000);
    let out = client
        .copy_out("COPY (SELECT sym, v FROM m WHERE v < 2) TO STDOUT")
        .await
        .expect("copy out");
    futures::pin_mut!(out);
    let mut text = Vec::new();
    while let Some(chunk) = out.next().await {
        text.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(String::from_utf8(text).expect("utf8"), "S,0\t0\nS,1\t1\n");
    // A bad row rejects the whole COPY with 22P04 and names the line.
    let sink = client.copy_in("COPY m FROM STDIN").await.expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"2026-11-22T00:00:00\tX\t1\n2026-11-22T00:00:01\tY\n",
    ))
    .await
    .expect("send");
    let e = sink.finish().await.expect_err("must fail");
    assert_code(&e, "22P04");
    assert!(code(&e).contains("line 2"), "{}", code(&e));
    let count: i64 = client
        .query_one("SELECT count(*) FROM m", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1000, "nothing of the failed COPY is kept");

    // COPY FROM STDIN in binary format, as drivers' binary copy writers send it.
    let sink = client
        .copy_in("COPY m (ts, sym, v) FROM STDIN (FORMAT binary)")
        .await
        .expect("binary copy in");
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(
        sink,
        &[
            tokio_postgres::types::Type::TIMESTAMP,
            tokio_postgres::types::Type::TEXT,
            tokio_postgres::types::Type::FLOAT8,
        ],
    );
    futures::pin_mut!(writer);
    let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_392_000); // 2026-11-23
    for k in 0..500u64 {
        let at = day + Duration::from_millis(k * 10);
        let sym = (k % 2 == 0).then(|| format!("B{}", k % 5));
        writer
            .as_mut()
            .write(&[&at, &sym, &(k as f64 * 0.5)])
            .await
            .expect("write row");
    }
    assert_eq!(writer.finish().await.expect("finish"), 500);
    let row = client
        .query_one(
            "SELECT count(*), count(sym), sum(v), min(ts) FROM m WHERE ts >= '2026-11-23'",
            &[],
        )
        .await
        .expect("read back");
    assert_eq!(row.get::<_, i64>(0), 500);
    assert_eq!(row.get::<_, i64>(1), 250);
    assert_eq!(
        row.get::<_, f64>(2),
        (0..500).map(|k| k as f64 * 0.5).sum::<f64>()
    );
    assert_eq!(row.get::<_, SystemTime>(3), day);
    // QuestDB's `IN interval($1, $2)` with bound timestamps: both bounds in.
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM m WHERE ts IN interval($1, $2)",
            &[&day, &(day + Duration::from_millis(990))],
        )
        .await
        .expect("IN interval($1, $2)")
        .get(0);
    assert_eq!(n, 100);
    // A binary stream that is cut off commits nothing.
    let sink = client
        .copy_in("COPY m FROM STDIN (FORMAT binary)")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0\0\x03\0\0",
    ))
    .await
    .expect("send");
    let e = sink.finish().await.expect_err("cut off");
    assert_code(&e, "22P04");
    let e = client
        .batch_execute("COPY m TO STDOUT (FORMAT binary)")
        .await
        .expect_err("binary COPY TO");
    assert_code(&e, "0A000");
    let count: i64 = client
        .query_one("SELECT count(*) FROM m", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1500);

    // A transaction through the extended protocol, and a portal read in pieces.
    let tx = client.transaction().await.expect("begin");
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_237_200);
    tx.execute("INSERT INTO m VALUES ($1, $2, $3)", &[&at, &"T", &9.0f64])
        .await
        .expect("insert in tx");
    let portal = tx
        .bind("SELECT v FROM m ORDER BY ts", &[])
        .await
        .expect("bind portal");
    let first = tx.query_portal(&portal, 300).await.expect("first rows");
    let rest = tx.query_portal(&portal, 0).await.expect("the rest");
    assert_eq!((first.len(), rest.len()), (300, 1201));
    tx.rollback().await.expect("rollback");
    let count: i64 = client
        .query_one("SELECT count(*) FROM m", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1500);

    // DEALLOCATE ALL removes the statements prepared by Parse too (psycopg
    // sends it after DDL), as well as those of SQL PREPARE.
    let count_rows = client
        .prepare("SELECT count(*) FROM m")
        .await
        .expect("prepare");
    let again = client
        .prepare("SELECT count(*) FROM m WHERE v > $1")
        .await
        .expect("prepare");
    assert_eq!(
        client
            .query_one(&count_rows, &[])
            .await
            .expect("run")
            .get::<_, i64>(0),
        1500
    );
    client
        .batch_execute("PREPARE by_sql AS SELECT 1")
        .await
        .expect("SQL PREPARE");
    assert_eq!(
        client
            .query_one(&again, &[&0.0f64])
            .await
            .expect("run")
            .get::<_, i64>(0),
        1498
    );
    client
        .batch_execute("DEALLOCATE ALL")
        .await
        .expect("deallocate all");
    let zero = 0.0f64;
    let one_param: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&zero];
    for statement in [&count_rows, &again] {
        let e = client
            .query(statement, &one_param[..statement.params().len()])
            .await
            .expect_err("deallocated by ALL");
        assert_code(&e, "26000");
    }
    let e = client
        .batch_execute("EXECUTE by_sql")
        .await
        .expect_err("deallocated by ALL");
    assert_code(&e, "26000");
}

#[tokio::test]
async fn timeouts_cancel_limits_users_and_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEMARK_SERVER_MAX_CONNECTIONS", "3"),
            ("TIDEMARK_AUTH_METHOD", "md5"),
            ("TIDEMARK_AUTH_READONLY_USER", "reader"),
            ("TIDEMARK_AUTH_READONLY_PASSWORD", "r3ad"),
        ],
    );
    let client = connect_as(&server, "admin", "quest")
        .await
        .expect("md5 login");
    let slow = "SELECT count(*) FROM generate_series(1, 5000000000) a";

    // SHOW PARAMETERS (QuestDB's): every configuration key, its value in force
    // and where it came from; a secret is never shown.
    let rows = client
        .query("SHOW PARAMETERS", &[])
        .await
        .expect("show parameters");
    let parameter = |path: &str| {
        let row = rows
            .iter()
            .find(|r| r.get::<_, String>("property_path") == path)
            .unwrap_or_else(|| panic!("{path} in SHOW PARAMETERS"));
        (
            row.get::<_, String>("env_var_name"),
            row.get::<_, Option<String>>("value"),
            row.get::<_, String>("value_source"),
            row.get::<_, bool>("sensitive"),
        )
    };
    assert_eq!(
        parameter("server.max_connections"),
        (
            "TIDEMARK_SERVER_MAX_CONNECTIONS".into(),
            Some("3".into()),
            "env".into(),
            false
        )
    );
    assert_eq!(
        parameter("auth.readonly_password"),
        (
            "TIDEMARK_AUTH_READONLY_PASSWORD".into(),
            Some("****".into()),
            "env".into(),
            true
        )
    );
    assert_eq!(
        parameter("storage.apply_interval_ms"),
        (
            "TIDEMARK_STORAGE_APPLY_INTERVAL_MS".into(),
            Some("500".into()),
            "default".into(),
            false
        )
    );
    assert_eq!(parameter("server.pg_listen").2, "command line");
    assert!(
        rows.iter().all(|r| !r
            .get::<_, Option<String>>("value")
            .is_some_and(|v| v.contains("r3ad"))),
        "a password shown"
    );

    // statement_timeout ends a long query with 57014; the session goes on.
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .expect("set");
    let started = std::time::Instant::now();
    let e = client.simple_query(slow).await.expect_err("must fail");
    assert_code(&e, "57014");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    client
        .batch_execute("RESET statement_timeout")
        .await
        .expect("reset");
    let v: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(v, "0");

    // A CancelRequest stops a running query.
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    let e = client.simple_query(slow).await.expect_err("must fail");
    assert_code(&e, "57014");
    canceller.await.expect("join").expect("cancel request");
    assert_eq!(
        client
            .simple_query("SELECT 1")
            .await
            .expect("still serving")
            .len(),
        3
    );

    // The read-only user reads, and is refused writes with 42501.
    client
        .batch_execute("CREATE TABLE r (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY; INSERT INTO r VALUES (now(), 1)")
        .await
        .expect("setup");
    let reader = connect_as(&server, "reader", "r3ad")
        .await
        .expect("reader login");
    let n: i64 = reader
        .query_one("SELECT count(*) FROM r", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(n, 1);
    let who: String = reader
        .query_one("SELECT current_user", &[])
        .await
        .expect("who")
        .get(0);
    assert_eq!(who, "reader");
    let e = reader
        .batch_execute("INSERT INTO r VALUES (now(), 2)")
        .await
        .expect_err("must fail");
    assert_code(&e, "42501");
    assert!(code(&e).contains("reader"), "{}", code(&e));
    let e = reader
        .batch_execute("DROP TABLE r")
        .await
        .expect_err("must fail");
    assert_code(&e, "42501");
    let e = connect_as(&server, "reader", "wrong")
        .await
        .expect_err("must fail");
    assert_code(&e, "28P01");

    // Past max_connections (3 open here), a new connection gets 53300. The
    // refused login's connection closes on the server a moment after the
    // client sees the error: wait until only the two sessions are counted.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !http_get(server.http_port, "/metrics")
        .1
        .contains("\ntidemark_connections 2\n")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the refused connection stays counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let third = connect_as(&server, "admin", "quest").await.expect("third");
    let e = connect_as(&server, "admin", "quest")
        .await
        .expect_err("must fail");
    assert_code(&e, "53300");
    drop(third);

    // HTTP: /health and /metrics.
    let (status, body) = http_get(server.http_port, "/health");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "ok\n")
    );
    let (_, metrics) = http_get(server.http_port, "/metrics");
    for name in [
        "tidemark_connections ",
        "tidemark_queries_total{outcome=\"canceled\"} 2",
        "tidemark_query_duration_seconds_bucket",
        "tidemark_rows_written_total 1",
        "tidemark_wal_fsync_seconds_total",
        "tidemark_disk_bytes",
    ] {
        assert!(metrics.contains(name), "{name} in\n{metrics}");
    }
    let (status, _) = http_get(server.http_port, "/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

/// `pg_stat_activity` and QuestDB's `query_activity()` list the connections
/// and what they run; `CANCEL QUERY id`, `cancel_query(id)` and
/// `pg_cancel_backend(pid)` stop another connection's statement with 57014,
/// as its own CancelRequest would; a read-only user cannot stop another
/// user's statement.
#[tokio::test]
async fn activity_lists_connections_and_cancels_their_statements() {
    const SLOW: &str = "SELECT count(*) FROM long_sequence(5000000000)";
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEMARK_AUTH_READONLY_USER", "reader"),
            ("TIDEMARK_AUTH_READONLY_PASSWORD", "r3ad"),
        ],
    );
    let runner = std::sync::Arc::new(connect_as(&server, "admin", "quest").await.expect("runner"));
    let watcher = connect_as(&server, "admin", "quest")
        .await
        .expect("watcher");
    let reader = connect_as(&server, "reader", "r3ad").await.expect("reader");
    let (runner_pid, watcher_pid) = (backend_pid(&runner).await, backend_pid(&watcher).await);
    assert_ne!(runner_pid, watcher_pid, "each connection has its own pid");
    let start_slow = || {
        let runner = runner.clone();
        tokio::spawn(async move { runner.simple_query(SLOW).await })
    };

    // CANCEL QUERY with the id query_activity() shows.
    let slow = start_slow();
    let (id, shown_pid) = running(&watcher, SLOW).await;
    assert_eq!(shown_pid, runner_pid);
    let rows = watcher
        .query(
            "SELECT pid, usename, state, query FROM pg_stat_activity ORDER BY pid",
            &[],
        )
        .await
        .expect("pg_stat_activity");
    let listed: Vec<(i32, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        listed.contains(&(runner_pid, "admin".into(), "active".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(watcher_pid, "admin".into(), "active".into())),
        "{listed:?}"
    );
    // The read-only user may not stop the admin's statement.
    let refused: bool = reader
        .query_one("SELECT cancel_query($1::BIGINT)", &[&id])
        .await
        .expect("cancel_query")
        .get(0);
    assert!(!refused);
    let e = reader
        .batch_execute(&format!("CANCEL QUERY {id}"))
        .await
        .expect_err("not the reader's");
    assert_code(&e, "42704");
    watcher
        .batch_execute(&format!("CANCEL QUERY {id}"))
        .await
        .expect("cancel query");
    let e = slow.await.expect("join").expect_err("cancelled");
    assert_code(&e, "57014");
    // Done: idle, its text still shown; its id cancels nothing any more.
    let state: String = watcher
        .query_one(
            "SELECT state FROM pg_stat_activity WHERE pid = $1 AND query = $2",
            &[&runner_pid, &SLOW],
        )
        .await
        .expect("idle row")
        .get(0);
    assert_eq!(state, "idle");
    let e = watcher
        .batch_execute(&format!("CANCEL QUERY {id}"))
        .await
        .expect_err("nothing runs");
    assert_code(&e, "42704");

    // cancel_query() over query_activity(), and pg_cancel_backend(pid).
    for cancel in [
        "SELECT cancel_query(query_id) FROM query_activity() WHERE query = $1",
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
    ] {
        let slow = start_slow();
        running(&watcher, SLOW).await;
        let done: bool = watcher
            .query_one(cancel, &[&SLOW])
            .await
            .expect(cancel)
            .get(0);
        assert!(done, "{cancel}");
        let e = slow.await.expect("join").expect_err("cancelled");
        assert_code(&e, "57014");
    }
    // The connection goes on; a connection that ends leaves the list.
    assert_eq!(backend_pid(&runner).await, runner_pid);
    drop(reader);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = watcher
            .query_one("SELECT count(*) FROM pg_stat_activity", &[])
            .await
            .expect("count")
            .get(0);
        if n == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} connections listed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pg_backend_pid")
        .get(0)
}

/// Waits until `query` shows running in `query_activity()`: its query id and
/// the pid of its connection.
async fn running(watcher: &tokio_postgres::Client, query: &str) -> (i64, i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = watcher
            .query(
                "SELECT query_id, pid FROM query_activity() WHERE query = $1 AND state = 'active'",
                &[&query],
            )
            .await
            .expect("query_activity");
        if let Some(row) = rows.first() {
            return (row.get(0), row.get(1));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{query} never showed running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("http connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

#[test]
fn psql_describes_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let out = std::process::Command::new("psql")
        .arg(server.conninfo("quest"))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(
            "CREATE TABLE quotes (ts TIMESTAMP, sym SYMBOL, bid DOUBLE, amount NUMERIC(10,2), \
             units NUMERIC(5,0)) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .args([
            "-c",
            "\\dt",
            "-c",
            "\\d quotes",
            "-c",
            "\\dn",
            "-c",
            "\\l",
            "-c",
            "\\df",
        ])
        .args(["-c", "\\du", "-c", "\\db", "-c", "\\do"])
        // Privileges, object descriptions, languages.
        .args(["-c", "\\dp", "-c", "\\dd", "-c", "\\dL"])
        .args([
            "-c", "\\l+", "-c", "\\dn+", "-c", "\\db+", "-c", "\\dy", "-c", "\\drds",
        ])
        // A primary key (upsert keys) and a symbol index: \d lists them, \di too.
        .args([
            "-c",
            "CREATE TABLE keyed (ts TIMESTAMP, id BIGINT, sym SYMBOL INDEX, \
             PRIMARY KEY (ts, id)) TIMESTAMP(ts)",
            "-c",
            "\\d keyed",
            "-c",
            "\\di",
        ])
        .args([
            "-c",
            "INSERT INTO quotes VALUES ('2026-11-21T10:00:00', 'A', 1.5, 2.5)",
        ])
        .args(["-c", "CHECKPOINT", "-c", "\\d+ quotes", "-c", "\\dt+"])
        .args([
            "-c",
            "SELECT CASE WHEN pg_total_relation_size('quotes') > 0 \
             AND pg_relation_size('quotes'::regclass) = pg_table_size('quotes') \
             THEN 'sizes-ok' ELSE 'sizes-wrong' END",
        ])
        // A view: \dv lists it, \d+ shows its columns and its query.
        .args([
            "-c",
            "CREATE VIEW hourly_bids AS (SELECT ts, sym, avg(bid) AS avg_bid FROM quotes SAMPLE BY 1h)",
            "-c",
            "\\dv",
            "-c",
            "\\d+ hourly_bids",
        ])
        .output();
    let stdout = psql_stdout(out);
    // \d+: the extra columns; \dt+: the table's size on disk, never "0 bytes".
    assert!(
        stdout.contains(" Stats target | Description"),
        "\\d+ quotes in\n{stdout}"
    );
    let sized = stdout
        .lines()
        .find(|l| l.contains("quotes") && l.contains("permanent"));
    assert!(
        sized.is_some_and(
            |l| (l.contains(" bytes") || l.contains(" kB")) && !l.contains("| 0 bytes")
        ),
        "\\dt+ gives the table's size in\n{stdout}"
    );
    assert!(stdout.contains("sizes-ok"), "relation sizes in\n{stdout}");
    for expected in [
        "public | quotes | table",
        "Table \"public.quotes\"",
        " ts     | timestamp without time zone",
        " bid    | double precision",
        " amount | numeric(10,2)",
        " units  | numeric(5,0)",
        "List of schemas",
        "tidemark",
        "List of functions",
        "List of roles",
        // \db: the default tablespaces, located in the root; \do: no operators.
        " pg_default | admin | ",
        "List of operators",
        // \dp: a table with default privileges (none listed), no policies.
        "Access privileges",
        " public | quotes | table |                   |                   | ",
        "Object descriptions",
        "List of languages",
        // \l+ and \db+: the bytes of every table; \dn+: default privileges.
        "List of databases",
        "List of tablespaces",
        "List of event triggers",
        // "Member of" is an empty array, as PostgreSQL prints it.
        " admin     | Superuser  | {}",
        "Indexes:",
        "    \"keyed_pkey\" PRIMARY KEY, btree (ts, id)",
        "    \"keyed_sym_idx\" hash (sym)",
        "List of relations",
        " public | keyed_sym_idx | index | admin | keyed",
        " public | hourly_bids | view | admin",
        "View \"public.hourly_bids\"",
        " avg_bid | double precision",
        "View definition:",
        "SELECT ts, sym, avg(bid) AS avg_bid FROM quotes SAMPLE BY 1h",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
}

/// A psql script with `\copy ... from stdin`: the rows follow the command and end
/// at `\.`, which psql sends on to the server; the script then goes on.
#[test]
fn psql_copies_rows_inline_in_a_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let script = dir.path().join("load.sql");
    std::fs::write(
        &script,
        "CREATE TABLE fills (ts TIMESTAMP, price NUMERIC(8,3)) TIMESTAMP(ts);\n\
         \\copy fills from stdin\n\
         2026-11-21 10:00:00\t12.3456\n\
         2026-11-21 10:00:01\t\\N\n\
         \\.\n\
         SELECT 'sum=' || sum(price) FROM fills;\n",
    )
    .expect("script");
    let out = std::process::Command::new("psql")
        .arg(server.conninfo("quest"))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&script)
        .output();
    let stdout = psql_stdout(out);
    assert!(stdout.contains("sum=12.346"), "{stdout}");
}

/// What psql printed, once it has run and succeeded (its output on failure).
fn psql_stdout(out: std::io::Result<std::process::Output>) -> String {
    let out = out.expect("psql runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// psql in a C locale (a minimal container, cron) asks for `client_encoding=SQL_ASCII`
/// (it derives the encoding from the locale when it runs on a terminal, so it runs
/// under `script` here); PostgreSQL accepts it and passes bytes through, and so does
/// Tidemark.
#[test]
fn psql_in_the_c_locale_connects_with_sql_ascii() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let psql = format!(
        "psql '{}' -X -A -t -P pager=off -v ON_ERROR_STOP=1 -c 'SHOW client_encoding' \
         -c \"CREATE TABLE notes (ts TIMESTAMP, note VARCHAR) TIMESTAMP(ts) PARTITION BY DAY\" \
         -c \"INSERT INTO notes VALUES ('2026-11-21T00:00:00', 'plain ascii')\" \
         -c 'SELECT note FROM notes'",
        server.conninfo("quest")
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &psql, "/dev/null"])
        .env_remove("PGCLIENTENCODING")
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .output()
        .expect("script (util-linux) running psql on a terminal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.first(), Some(&"SQL_ASCII"), "{stdout}");
    assert!(lines.contains(&"plain ascii"), "{stdout}");
}

#[test]
fn tls_with_psql_and_mandatory_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed_cert(dir.path());
    let root = dir.path().join("root");
    let server = Server::start(
        &root,
        &[
            ("TIDEMARK_TLS_REQUIRED", "true"),
            ("TIDEMARK_TLS_CERT_FILE", &cert),
            ("TIDEMARK_TLS_KEY_FILE", &key),
        ],
    );
    let psql = |sslmode: &str| {
        std::process::Command::new("psql")
            .arg(format!("{} sslmode={sslmode}", server.conninfo("quest")))
            .args(["-X", "-At", "-c", "SELECT 'on'"])
            .output()
            .expect("psql")
    };
    let out = psql("require");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "on");
    let out = psql("disable");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("requires SSL"), "{stderr}");
}
