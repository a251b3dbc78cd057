//! The REST endpoints `/exec` (JSON) and `/exp` (CSV), as scripts call them
//! with curl-like requests.

use crate::harness::{Server, http};

/// A GET of `path` with `query` parameters (form-encoded here) and optional
/// credentials; the status code, the Content-Type and the body.
fn get(
    port: u16,
    path: &str,
    params: &[(&str, &str)],
    auth: Option<&str>,
) -> (u16, String, String) {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    let answer = http(port, "GET", &format!("{path}?{query}"), &headers, b"");
    (answer.code, answer.header("content-type"), answer.body)
}

/// A POST of `body` as `content_type`, as admin; the status code and the body.
fn post(port: u16, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let headers = [
        ("Authorization", ADMIN.unwrap_or_default()),
        ("Content-Type", content_type),
    ];
    let answer = http(port, "POST", path, &headers, body);
    (answer.code, answer.body)
}

/// `query` through `path` fails with 42601 at `position` (1-based, in `query`).
fn syntax_error_at(port: u16, path: &str, query: &str, position: u64) {
    let (code, _, body) = get(port, path, &[("query", query)], ADMIN);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (code, v["sqlstate"].as_str(), v["position"].as_u64()),
        (400, Some("42601"), Some(position)),
        "{body}"
    );
}

const ADMIN: Option<&str> = Some("Basic YWRtaW46cXVlc3Q="); // admin:quest
/// The read-only user `start_with_reader` configures.
const READER: Option<&str> = Some("Basic cmVhZGVyOmxvb2s="); // reader:look

/// A server with the read-only user `reader` (password `look`) besides admin.
fn start_with_reader(dir: &std::path::Path) -> Server {
    Server::start(
        dir,
        &[
            ("TIDEMARK_AUTH_READONLY_USER", "reader"),
            ("TIDEMARK_AUTH_READONLY_PASSWORD", "look"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_answers_json_and_exp_streams_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with_reader(dir.path());
    let http = server.http_port;
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, sym SYMBOL, price DOUBLE, n INT, note VARCHAR) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO t VALUES ('2026-11-21T10:00:00', 'AAPL', 101.5, 1, 'a, \"quoted\" note'),
                                  ('2026-11-21T10:00:01', 'MSFT', 402.25, NULL, NULL),
                                  ('2026-11-21T10:00:02', 'AAPL', 102, 3, '')",
        )
        .await
        .expect("setup");

    // /exec: columns with types, rows as JSON values, the count.
    let (code, ctype, body) = get(
        http,
        "/exec",
        &[("query", "SELECT * FROM t ORDER BY ts")],
        ADMIN,
    );
    assert_eq!((code, ctype.as_str()), (200, "application/json"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        v["columns"],
        serde_json::json!([
            {"name": "ts", "type": "TIMESTAMP"}, {"name": "sym", "type": "SYMBOL"},
            {"name": "price", "type": "DOUBLE"}, {"name": "n", "type": "INT"},
            {"name": "note", "type": "VARCHAR"}
        ])
    );
    assert_eq!(
        v["dataset"][1],
        serde_json::json!(["2026-11-21 10:00:01", "MSFT", 402.25, null, null])
    );
    assert_eq!(v["count"], 3);

    // limit=n and limit=lo,hi.
    let (_, _, body) = get(
        http,
        "/exec",
        &[("query", "SELECT n FROM t ORDER BY ts"), ("limit", "1,3")],
        ADMIN,
    );
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (v["dataset"].clone(), v["count"].clone()),
        (serde_json::json!([[null], [3]]), serde_json::json!(2))
    );

    // Errors carry the SQLSTATE and, for syntax errors, the position.
    let (code, _, body) = get(http, "/exec", &[("query", "SELECT nope FROM t")], ADMIN);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (code, v["sqlstate"].as_str()),
        (400, Some("42703")),
        "{body}"
    );
    assert!(
        v["error"].as_str().unwrap_or_default().contains("nope"),
        "{body}"
    );
    syntax_error_at(http, "/exec", "SELECT 1 FROM t WHER sym", 22);
    let (code, _, _) = get(http, "/exec", &[("query", "SELECT 1; SELECT 2")], ADMIN);
    assert_eq!(code, 400);

    // DDL and DML answer their command tag.
    let (code, _, body) = get(
        http,
        "/exec",
        &[(
            "query",
            "INSERT INTO t (ts, sym) VALUES ('2026-11-21T11:00:00', 'IBM')",
        )],
        ADMIN,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("INSERT 0 1"), "{body}");

    // The read-only user queries but may not write; no credentials: 401.
    let reader = READER;
    assert_eq!(
        get(
            http,
            "/exec",
            &[("query", "SELECT count(*) FROM t")],
            reader
        )
        .0,
        200
    );
    let (code, _, body) = get(http, "/exec", &[("query", "DROP TABLE t")], reader);
    assert_eq!(code, 400);
    assert!(body.contains("42501"), "{body}");
    assert_eq!(get(http, "/exec", &[("query", "SELECT 1")], None).0, 401);

    // /exp: CSV as COPY writes it, with a header; limit; errors before any row.
    let (code, ctype, body) = get(
        http,
        "/exp",
        &[("query", "SELECT ts, sym, n, note FROM t ORDER BY ts;")],
        ADMIN,
    );
    assert_eq!(
        (code, ctype.as_str()),
        (200, "text/csv; charset=utf-8"),
        "{body}"
    );
    assert_eq!(
        body,
        "ts,sym,n,note\n\
         2026-11-21 10:00:00,AAPL,1,\"a, \"\"quoted\"\" note\"\n\
         2026-11-21 10:00:01,MSFT,,\n\
         2026-11-21 10:00:02,AAPL,3,\"\"\n\
         2026-11-21 11:00:00,IBM,,\n"
    );
    let (_, _, body) = get(
        http,
        "/exp",
        &[("query", "SELECT sym FROM t ORDER BY ts"), ("limit", "1,2")],
        ADMIN,
    );
    assert_eq!(body, "sym\nMSFT\n");
    let (code, _, body) = get(http, "/exp", &[("query", "SELECT nope FROM t")], ADMIN);
    assert_eq!(code, 400);
    assert!(body.contains("42703"), "{body}");
    // A position is the client's, not the wrapping COPY's.
    syntax_error_at(http, "/exp", "SELECT 1 FROM t WHER sym", 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imp_creates_tables_from_csv_in_one_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let http = server.http_port;
    let client = server.client().await;
    let csv = "ts,sym,price,qty,note\n\
               2026-11-21 10:00:00,AAPL,1.5,3,\"a, b\"\n\
               2026-11-21 10:00:01,MSFT,2,,\n";

    // multipart as `curl -F schema=... -F data=@trades.csv` sends it: the file
    // names the table, the schema types one column, the rest are guessed.
    let boundary = "XBOUNDARYX";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"schema\"\r\n\r\n\
         [{{\"name\":\"sym\",\"type\":\"SYMBOL\"}}]\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"trades.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let (code, body) = post(
        http,
        "/imp?timestamp=ts&partitionBy=DAY",
        &format!("multipart/form-data; boundary={boundary}"),
        multipart.as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (v["status"].as_str(), v["rowsImported"].as_u64()),
        (Some("OK"), Some(2))
    );
    let rows = client
        .query("SELECT sym, price, qty, note FROM trades ORDER BY ts", &[])
        .await
        .expect("select");
    let got: Vec<(String, f64, Option<i64>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        [
            ("AAPL".to_string(), 1.5, Some(3), Some("a, b".to_string())),
            ("MSFT".to_string(), 2.0, None, None)
        ]
    );
    let designated = client
        .query_one(
            "SELECT designated_timestamp FROM tables() WHERE table_name = 'trades'",
            &[],
        )
        .await
        .map(|r| r.get::<_, Option<String>>(0));
    assert_eq!(designated.ok().flatten().as_deref(), Some("ts"));

    // A plain CSV body into the existing table appends.
    let (code, body) = post(http, "/imp?name=trades", "text/csv", csv.as_bytes());
    assert_eq!(code, 200, "{body}");
    let n: i64 = client
        .query_one("SELECT count(*) FROM trades", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 4);

    // A bad value: nothing stored, not even the table the import would create.
    let (code, body) = post(
        http,
        "/imp?name=fresh&timestamp=ts",
        "text/csv",
        b"ts,v\n2026-11-21 10:00:00,1\nnot a time,2\n",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("22P02") || body.contains("22007"), "{body}");
    let e = client
        .query("SELECT * FROM fresh", &[])
        .await
        .expect_err("no table");
    assert_eq!(e.code().map(|c| c.code()), Some("42P01"));

    // A schema that is not a type, a partitionBy that is not a unit, no name.
    let (code, _) = post(
        http,
        "/imp?name=x&schema=%5B%7B%22name%22%3A%22ts%22%2C%22type%22%3A%22INT%29%3B%20DROP%20TABLE%20trades%22%7D%5D",
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(code, 400);
    assert_eq!(
        post(
            http,
            "/imp?name=x&partitionBy=DECADE",
            "text/csv",
            csv.as_bytes()
        )
        .0,
        400
    );
    assert_eq!(post(http, "/imp", "text/csv", csv.as_bytes()).0, 400);
    let n: i64 = client
        .query_one("SELECT count(*) FROM trades", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 4);
}

/// Requests reuse the sessions of earlier ones (and the plans those keep), but
/// no state a request leaves behind reaches the next: a setting, an open
/// transaction, a prepared statement, another user's rights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_requests_share_no_session_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with_reader(dir.path());
    let http = server.http_port;
    let reader = READER;
    let exec = |sql: &str, auth: Option<&str>| {
        let (code, _, body) = get(http, "/exec", &[("query", sql)], auth);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        (code, v)
    };
    let (code, v) = exec(
        "CREATE TABLE r (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY",
        ADMIN,
    );
    assert_eq!(code, 200, "{v}");
    let count = "SELECT count(*) FROM r";
    for expected in [0, 0, 0] {
        let (code, v) = exec(count, ADMIN);
        assert_eq!(
            (code, v["dataset"][0][0].as_i64()),
            (200, Some(expected)),
            "{v}"
        );
    }
    // A query repeated across requests sees rows committed between them.
    let client = server.client().await;
    client
        .batch_execute("INSERT INTO r VALUES ('2026-01-01', 1)")
        .await
        .expect("insert");
    assert_eq!(exec(count, ADMIN).1["dataset"][0][0].as_i64(), Some(1));

    assert_eq!(exec("SET TimeZone = 'Europe/Paris'", ADMIN).0, 200);
    let (_, v) = exec("SHOW timezone", ADMIN);
    assert_eq!(v["dataset"][0][0].as_str(), Some("UTC"), "{v}");

    assert_eq!(exec("BEGIN", ADMIN).0, 200);
    assert_eq!(exec("INSERT INTO r VALUES ('2026-01-02', 2)", ADMIN).0, 200);
    let committed = client
        .query_one("SELECT count(*) FROM r", &[])
        .await
        .expect("count");
    assert_eq!(
        committed.get::<_, i64>(0),
        2,
        "the INSERT committed on its own"
    );

    assert_eq!(exec("PREPARE p AS SELECT 1", ADMIN).0, 200);
    let (code, v) = exec("EXECUTE p", ADMIN);
    assert_eq!((code, v["sqlstate"].as_str()), (400, Some("26000")), "{v}");

    // The read-only user never gets the admin's session, nor the other way.
    let (code, v) = exec("INSERT INTO r VALUES ('2026-01-03', 3)", reader);
    assert_eq!((code, v["sqlstate"].as_str()), (400, Some("42501")), "{v}");
    assert_eq!(exec(count, reader).1["dataset"][0][0].as_i64(), Some(2));
    assert_eq!(exec("INSERT INTO r VALUES ('2026-01-03', 3)", ADMIN).0, 200);
}
