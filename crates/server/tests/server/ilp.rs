//! InfluxDB line protocol over HTTP and TCP, as agents and client libraries
//! send it: the InfluxDB client packages (v1 and v2), raw HTTP requests and raw
//! sockets, and SIGKILL while a stream of requests is acknowledged.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::harness::{Server, rows_of};

const READONLY: [(&str, &str); 2] = [
    ("TIDEMARK_AUTH_READONLY_USER", "reader"),
    ("TIDEMARK_AUTH_READONLY_PASSWORD", "look"),
];

/// A POST; the status code and the body.
fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let answer = crate::harness::http(port, "POST", path, headers, body);
    (answer.code, answer.body)
}

const ADMIN: (&str, &str) = ("Authorization", "Token admin:quest");

fn write(port: u16, body: &str) -> (u16, String) {
    post(
        port,
        "/api/v2/write?bucket=b&org=o",
        &[ADMIN],
        body.as_bytes(),
    )
}

async fn query(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    rows_of(&client.simple_query(sql).await.expect(sql))
}

/// Polls `sql` until it returns `want` (TCP lines have no acknowledgement);
/// what it returned last.
async fn eventually(
    client: &tokio_postgres::Client,
    sql: &str,
    want: &[Vec<Option<String>>],
) -> Vec<Vec<Option<String>>> {
    let mut got = Vec::new();
    for _ in 0..200 {
        if let Ok(rows) = client.simple_query(sql).await {
            got = rows_of(&rows);
            if got == want {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    got
}

fn some(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

#[test]
fn influxdb_client_libraries_write_and_are_refused_as_influxdb_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &READONLY);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/drivers/python");
    let out = Command::new("python3")
        .current_dir(&script)
        .arg("influx_check.py")
        .args([
            "127.0.0.1",
            &server.http_port.to_string(),
            &server.port.to_string(),
        ])
        .args(["admin", "quest", "reader", "look"])
        .output()
        .expect("python3 (scripts/install-test-deps.sh installs the clients)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("influx clients ok"),
        "run scripts/install-test-deps.sh if a module is missing\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_one_transaction_with_the_schema_taken_from_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEMARK_ILP_MAX_REQUEST_MB", "1"),
            ("TIDEMARK_ILP_MAX_LINE_KB", "4"),
        ],
    );
    let http = server.http_port;
    let client = server.client().await;

    // Escaping in measurement, tag and field names and values; every field type.
    let lines = [
        r#"my\ room,site\,name=north\=1,kind=a\ b temp=21.5,count=3i,big=7u,ok=true,note="say \"hi\", \\o/" 1700000000000000000"#,
        r#"my\ room,site\,name=south temp=-1e3,ok=F 1700000001000000000"#,
    ]
    .join("\n");
    assert_eq!(write(http, &lines), (204, String::new()));
    assert_eq!(
        query(
            &client,
            r#"SELECT "site,name", kind, temp, count, big, ok, note, timestamp FROM "my room" ORDER BY timestamp"#
        )
        .await,
        vec![
            some(&["north=1", "a b", "21.5", "3", "7", "t", r#"say "hi", \o/"#, "2023-11-14 22:13:20"]),
            vec![
                Some("south".into()),
                None,
                Some("-1000".into()),
                None,
                None,
                Some("f".into()),
                None,
                Some("2023-11-14 22:13:21".into()),
            ],
        ]
    );
    // Tags are SYMBOL columns; the designated timestamp is `timestamp`.
    let types = query(
        &client,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'my room' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(types.len(), 8, "{types:?}");

    // A new field adds a column; rows before it read NULL there.
    assert_eq!(
        write(
            http,
            r#"my\ room,site\,name=east temp=1,humidity=40i 1700000002000000000"#
        )
        .0,
        204
    );
    assert_eq!(
        query(
            &client,
            r#"SELECT count(humidity), count(*) FROM "my room""#
        )
        .await,
        vec![some(&["1", "3"])]
    );

    // A bad line in the middle: 400 naming it, nothing of the request stored,
    // not even the new table its first line would have created.
    let (code, body) = write(
        http,
        "fresh v=1 1700000000000000000\nmy\\ room temp=\"warm\" 1700000003000000000\nfresh v=2",
    );
    assert_eq!(code, 400, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["code"], "invalid");
    assert_eq!(answer["line"], 2);
    assert_eq!(
        answer["text"],
        r#"my\ room temp="warm" 1700000003000000000"#
    );
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("temp") && message.contains("DOUBLE"),
        "{message}"
    );
    assert_eq!(
        query(&client, r#"SELECT count(*) FROM "my room""#).await,
        vec![some(&["3"])]
    );
    let tables = query(
        &client,
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'fresh'",
    )
    .await;
    assert_eq!(tables, vec![some(&["0"])]);

    // A string into a JSON column must be a document, as from SQL.
    client
        .batch_execute("CREATE TABLE docs (timestamp TIMESTAMP, doc JSONB) TIMESTAMP(timestamp)")
        .await
        .expect("create docs");
    assert_eq!(
        write(http, r#"docs doc="{\"a\": [1, 2]}" 1700000000000000000"#).0,
        204
    );
    let (code, body) = write(http, r#"docs doc="not json" 1700000001000000000"#);
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("type jsonb") && body.contains("doc"),
        "{body}"
    );
    assert_eq!(
        query(&client, "SELECT doc -> 'a' ->> 1 FROM docs").await,
        vec![some(&["2"])]
    );

    // Numbers into a NUMERIC column round to its scale; one too wide is refused.
    client
        .batch_execute(
            "CREATE TABLE fills (timestamp TIMESTAMP, price NUMERIC(6,2)) TIMESTAMP(timestamp)",
        )
        .await
        .expect("create fills");
    assert_eq!(
        write(
            http,
            "fills price=12.345 1700000000000000000\nfills price=7i 1700000001000000000"
        )
        .0,
        204
    );
    let (code, body) = write(http, "fills price=123456.0 1700000002000000000");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("123456") && body.contains("price") && body.contains("DECIMAL(6,2)"),
        "{body}"
    );
    assert_eq!(
        query(&client, "SELECT price FROM fills ORDER BY timestamp").await,
        vec![some(&["12.35"]), some(&["7.00"])]
    );

    // Syntax errors name the line too.
    let (code, body) = write(http, "cpu v=1\ncpu v=1.2.3\n");
    assert_eq!(code, 400);
    assert!(body.contains("\"line\":2"), "{body}");

    // Unsigned beyond BIGINT, a timestamp out of range: per-line errors.
    let (code, body) = write(http, "nums v=18446744073709551615u");
    assert_eq!(code, 400);
    assert!(body.contains("out of range"), "{body}");
    let (code, body) = post(
        http,
        "/write?db=x&precision=h",
        &[ADMIN],
        b"nums v=1i 9223372036854775807",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("out of range"), "{body}");

    // Precision, and lines without a timestamp get the server's time.
    assert_eq!(
        post(
            http,
            "/write?db=x&precision=ms",
            &[ADMIN],
            b"prec v=1i 1700000000123\nprec v=2i"
        )
        .0,
        204
    );
    let got = query(
        &client,
        "SELECT v, timestamp, timestamp > now() - INTERVAL '1 minute' FROM prec ORDER BY v",
    )
    .await;
    assert_eq!(got[0], some(&["1", "2023-11-14 22:13:20.123", "f"]));
    assert_eq!(got[1][2].as_deref(), Some("t"), "{got:?}");

    // A column created with SQL takes line-protocol values of a compatible type.
    client
        .batch_execute("CREATE TABLE sqlmade (at TIMESTAMP, dev SYMBOL, n INT, r REAL) TIMESTAMP(at) PARTITION BY DAY")
        .await
        .expect("create");
    assert_eq!(
        write(http, "sqlmade,dev=d1 n=5i,r=1.5 1700000000000000000").0,
        204
    );
    assert_eq!(
        query(&client, "SELECT dev, n, r, at FROM sqlmade").await,
        vec![some(&["d1", "5", "1.5", "2023-11-14 22:13:20"])]
    );
    let (code, body) = write(http, "sqlmade n=5000000000i");
    assert_eq!(code, 400);
    assert!(body.contains("out of range for column \\\"n\\\""), "{body}");
    let (code, body) = write(http, "sqlmade at=1i");
    assert_eq!(code, 400);
    assert!(body.contains("designated timestamp"), "{body}");

    // Limits: 413 for a body over ilp.max_request_mb (also once gunzipped), a
    // clear error for a line over ilp.max_line_kb.
    let big = "big v=1i\n".repeat(200_000);
    let (code, body) = write(http, &big);
    assert_eq!(code, 413, "{body}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(big.as_bytes()).expect("gzip");
    let gz = gz.finish().expect("gzip");
    assert!(gz.len() < 1 << 20);
    let (code, _) = post(
        http,
        "/api/v2/write?bucket=b",
        &[ADMIN, ("Content-Encoding", "gzip")],
        &gz,
    );
    assert_eq!(code, 413);
    let long = format!("big s=\"{}\"", "x".repeat(5000));
    let (code, body) = write(http, &long);
    assert_eq!(code, 400);
    assert!(body.contains("ilp.max_line_kb"), "{body}");
    let (code, _) = post(
        http,
        "/api/v2/write?bucket=b",
        &[ADMIN, ("Content-Encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(code, 400);

    // Credentials: none, wrong, and the read-only user (whose password is not configured here).
    assert_eq!(post(http, "/write", &[], b"x v=1").0, 401);
    assert_eq!(
        post(
            http,
            "/write",
            &[("Authorization", "Token admin:wrong")],
            b"x v=1"
        )
        .0,
        401
    );
    assert_eq!(post(http, "/write?u=admin&p=quest", &[], b"uq v=1").0, 204);

    // What /metrics counts.
    let (_, metrics) = crate::protocol::http_get(http, "/metrics");
    for expected in [
        "tidemark_ilp_rows_total{protocol=\"http\"} 10",
        "tidemark_ilp_rejected_total{protocol=\"http\",reason=\"schema\"} 7",
        "tidemark_ilp_rejected_total{protocol=\"http\",reason=\"parse\"} 2",
        "tidemark_ilp_rejected_total{protocol=\"http\",reason=\"size\"} 3",
        "tidemark_ilp_rejected_total{protocol=\"http\",reason=\"auth\"} 2",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }

    // An integer field fills a TIMESTAMP_NS column with nanoseconds; text does not.
    query(
        &client,
        "CREATE TABLE nano_fills (timestamp TIMESTAMP, exch TIMESTAMP_NS) TIMESTAMP(timestamp)",
    )
    .await;
    assert_eq!(
        write(
            http,
            "nano_fills exch=1700000000123456789i 1700000000000000000"
        ),
        (204, String::new())
    );
    assert_eq!(
        query(&client, "SELECT exch::text FROM nano_fills").await,
        vec![some(&["2023-11-14 22:13:20.123456789"])]
    );
    let (code, body) = write(http, "nano_fills exch=\"2023-11-14\" 1700000000000000000");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("TIMESTAMP_NS"), "{body}");

    // A TIMESTAMP_NS designated timestamp keeps a line's nanoseconds, in any
    // precision; a line without a time gets the server's.
    query(
        &client,
        "CREATE TABLE nano_ticks (ts TIMESTAMP_NS, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY",
    )
    .await;
    assert_eq!(
        write(
            http,
            "nano_ticks v=2 1700000000123456789\nnano_ticks v=1 1700000000123456788"
        ),
        (204, String::new())
    );
    assert_eq!(
        post(
            http,
            "/write?db=x&precision=us",
            &[ADMIN],
            b"nano_ticks v=3 1700000001000001\nnano_ticks v=4"
        )
        .0,
        204
    );
    assert_eq!(
        query(
            &client,
            "SELECT v, ts::text, ts > now() - INTERVAL '1 minute' FROM nano_ticks ORDER BY ts"
        )
        .await,
        vec![
            some(&["1", "2023-11-14 22:13:20.123456788", "f"]),
            some(&["2", "2023-11-14 22:13:20.123456789", "f"]),
            some(&["3", "2023-11-14 22:13:21.000001", "f"]),
            query(&client, "SELECT 4, max(ts)::text, true FROM nano_ticks")
                .await
                .remove(0),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_commit_in_batches_and_a_bad_line_closes_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[("TIDEMARK_ILP_TCP_BATCH_KB", "64")]);
    let client = server.client().await;

    // 20,000 lines over one connection, some in the same write as others, a
    // final line without a newline; all there once the client closes.
    let mut s = TcpStream::connect(("127.0.0.1", server.ilp_port)).expect("ilp connect");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "ticks,dev=d{} seq={i}i,note=\"line\\nbreak\" {}\n",
            i % 7,
            1_700_000_000_000_000_000i64 + i * 1_000
        ));
    }
    text.push_str("ticks,dev=last seq=20000i 1700000000020000000");
    for chunk in text.as_bytes().chunks(4096) {
        s.write_all(chunk).expect("send");
    }
    drop(s);
    let want = vec![some(&["20001", "20001", "20000"])];
    let sql = "SELECT count(*), count(DISTINCT seq), max(seq) FROM ticks";
    assert_eq!(eventually(&client, sql, &want).await, want);

    // Lines without a close are committed by ilp.tcp_commit_interval_ms.
    let mut open = TcpStream::connect(("127.0.0.1", server.ilp_port)).expect("ilp connect");
    open.write_all(b"waiting v=1i 1700000000000000000\n")
        .expect("send");
    let want = vec![some(&["1"])];
    assert_eq!(
        eventually(&client, "SELECT count(*) FROM waiting", &want).await,
        want,
        "a line on an open connection is committed"
    );

    // A bad line: the lines before it are kept, the connection is closed, the
    // rest is not stored, and /metrics counts it.
    let mut s = TcpStream::connect(("127.0.0.1", server.ilp_port)).expect("ilp connect");
    s.write_all(b"partial v=1i 1\npartial v=2i 2\npartial v=\"three\" 3\npartial v=4i 4\n")
        .expect("send");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut rest = Vec::new();
    let read = s.read_to_end(&mut rest);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the server closes the connection: {read:?}"
    );
    assert_eq!(
        query(&client, "SELECT v FROM partial ORDER BY v").await,
        vec![some(&["1"]), some(&["2"])]
    );
    drop(open);
    let (_, metrics) = crate::protocol::http_get(server.http_port, "/metrics");
    assert!(
        metrics.contains("tidemark_ilp_rejected_total{protocol=\"tcp\",reason=\"schema\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tidemark_ilp_rows_total{protocol=\"tcp\"} 20004"),
        "{metrics}"
    );

    // A bad line in an early batch: batches after it, parsed while it was
    // committed, are not stored either.
    let mut s = TcpStream::connect(("127.0.0.1", server.ilp_port)).expect("ilp connect");
    let mut text = String::new();
    for i in 0..12_000 {
        if i == 2_000 {
            text.push_str("later v=oops\n");
        }
        text.push_str(&format!(
            "later v={i}i {}\n",
            1_700_000_000_000_000_000i64 + i
        ));
    }
    // The server closes the connection while the rest is still being sent.
    let _ = s.write_all(text.as_bytes());
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let want = vec![some(&["2000", "1999"])];
    let sql = "SELECT count(*), max(v) FROM later";
    assert_eq!(eventually(&client, sql, &want).await, want);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        query(&client, sql).await,
        want,
        "nothing after the bad line"
    );

    // SIGTERM commits what an open connection has sent.
    let mut s = TcpStream::connect(("127.0.0.1", server.ilp_port)).expect("ilp connect");
    s.write_all(b"at_stop v=1i 1700000000000000000\n")
        .expect("send");
    std::thread::sleep(Duration::from_millis(10));
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let server = Server::start(dir.path(), &[]);
    let client = server.client().await;
    assert_eq!(
        query(&client, "SELECT count(*) FROM at_stop").await,
        vec![some(&["1"])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_http_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let http = server.http_port;
    // Writers send requests of 1,000 lines, each request a batch id; the ids
    // answered 204 must be whole after the kill, and no batch may be partial.
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (acked, stop, next) = (acked.clone(), stop.clone(), next.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let batch = next.fetch_add(1, Ordering::SeqCst);
                    let mut body = String::new();
                    for i in 0..1000u64 {
                        body.push_str(&format!(
                            "stream,w=b{} batch={batch}i,i={i}i {}\n",
                            batch % 5,
                            1_700_000_000_000_000_000u64 + batch * 1_000_000 + i * 1_000
                        ));
                    }
                    let (code, _) = write(http, &body);
                    if code == 204 {
                        acked.lock().expect("acked").push(batch);
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().expect("acked").len() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal("KILL");
    let _ = server.wait(Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(
        acked.len() >= 20,
        "only {} requests acknowledged",
        acked.len()
    );

    let server = Server::start(dir.path(), &[]);
    let client = server.client().await;
    let per_batch = query(&client, "SELECT batch, count(*) FROM stream GROUP BY batch").await;
    let counts: std::collections::HashMap<u64, u64> = per_batch
        .iter()
        .map(|r| {
            let n = |i: usize| r[i].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            (n(0), n(1))
        })
        .collect();
    for (batch, n) in &counts {
        assert_eq!(*n, 1000, "batch {batch} is partial");
    }
    for batch in &acked {
        assert_eq!(
            counts.get(batch),
            Some(&1000),
            "acknowledged batch {batch} is missing"
        );
    }
}
