//! The PostgreSQL protocol with real clients: tokio-postgres and psql.

use std::time::Duration;

use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::harness::Server;

async fn connect(
    s: &Server,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(&s.conninfo(password), NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// A query whose planning takes many seconds: each CTE reads the one before
/// twice, so the plan the optimizer walks has 2^15 branches.
fn long_planning_query() -> String {
    let mut sql = "WITH a0 AS (SELECT 1 AS x)".to_string();
    for i in 1..=15 {
        sql.push_str(&format!(
            ", a{i} AS (SELECT * FROM a{p} UNION ALL SELECT * FROM a{p})",
            p = i - 1
        ));
    }
    sql.push_str(" SELECT count(*) FROM a15");
    sql
}

/// A statement that takes long to plan (CPU work that cannot be interrupted)
/// does not hold up other clients, and SIGTERM still stops the server within
/// its deadline with everything committed kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_planning_neither_stalls_other_clients_nor_a_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let client = connect(&server, "quest").await.expect("connect");
    client
        .simple_query(
            "CREATE TABLE kept (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO kept VALUES ('2026-11-21T10:00:00', 7)",
        )
        .await
        .expect("setup");
    let busy = connect(&server, "quest").await.expect("connect");
    let planning = tokio::spawn(async move { busy.simple_query(&long_planning_query()).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !planning.is_finished(),
        "the query plans for longer than this test waits"
    );
    let asked = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(20), client.simple_query("SELECT 1"))
        .await
        .expect("SELECT 1 answered")
        .expect("SELECT 1");
    assert_eq!(rows(&answer), vec![vec![Some("1".to_string())]]);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "SELECT 1 waited {:?} for another client's planning",
        asked.elapsed()
    );
    assert!(
        !planning.is_finished(),
        "still planning when the stop comes"
    );
    let stopping = std::time::Instant::now();
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(40));
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "stopped {:?} after SIGTERM",
        stopping.elapsed()
    );
    let server = Server::start(dir.path(), &[]);
    let client = connect(&server, "quest").await.expect("reconnect");
    assert_eq!(
        rows(
            &client
                .simple_query("SELECT v FROM kept")
                .await
                .expect("select")
        ),
        vec![vec![Some("7".to_string())]]
    );
}

#[tokio::test]
async fn simple_queries_errors_auth_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let client = connect(&server, "quest")
        .await
        .expect("SCRAM login with the default password");
    let out = client
        .simple_query(
            "CREATE TABLE trades (ts TIMESTAMP, sym SYMBOL, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO trades VALUES ('2026-11-21T10:00:00', 'AAPL', 101.5), ('2026-11-20T09:00:00', 'MSFT', NULL); \
             SELECT ts, sym, price FROM trades",
        )
        .await
        .expect("script");
    assert_eq!(
        rows(&out),
        vec![
            vec![
                Some("2026-11-20 09:00:00".into()),
                Some("MSFT".into()),
                None
            ],
            vec![
                Some("2026-11-21 10:00:00".into()),
                Some("AAPL".into()),
                Some("101.5".into())
            ],
        ]
    );
    assert!(
        out.iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(2))),
        "INSERT 0 2"
    );
    // Errors carry the SQLSTATE and the position; the connection goes on.
    let e = client
        .simple_query("SELECT * FROM nope")
        .await
        .expect_err("unknown table");
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42P01");
    assert!(db.message().contains("\"nope\""), "{}", db.message());
    let e = client.simple_query("SELECT 1 +").await.expect_err("syntax");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42601"));
    assert_eq!(
        rows(
            &client
                .simple_query("SELECT count(*) FROM trades")
                .await
                .expect("alive")
        ),
        vec![vec![Some("2".into())]]
    );
    // A wrong password is refused.
    let e = connect(&server, "wrong").await.expect_err("wrong password");
    assert!(
        e.as_db_error().is_some_and(|d| d.code().code() == "28P01"),
        "{e:?}"
    );

    // psql, as users run it.
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "admin",
            "-d",
            "tidemark",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
        ])
        .arg("SELECT sym FROM trades LATEST ON ts PARTITION BY sym ORDER BY sym")
        .env("PGPASSWORD", "quest")
        .output()
        .expect("psql (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "AAPL\nMSFT\n");
    drop(client);

    // SIGTERM: a clean stop, exit 0; the data is there after a restart.
    server.signal("TERM");
    assert!(
        server.wait(Duration::from_secs(10)).success(),
        "clean exit on SIGTERM"
    );
    let server = Server::start(dir.path(), &[]);
    let client = connect(&server, "quest").await.expect("reconnect");
    client
        .simple_query("INSERT INTO trades VALUES ('2026-11-22T00:00:00', 'X', 1)")
        .await
        .expect("insert");
    drop(client);
    // SIGKILL right after an acknowledged commit: it survives.
    server.signal("KILL");
    let _ = server.wait(Duration::from_secs(10));
    let server = Server::start(dir.path(), &[]);
    let client = connect(&server, "quest")
        .await
        .expect("reconnect after SIGKILL");
    assert_eq!(
        rows(
            &client
                .simple_query("SELECT count(*) FROM trades")
                .await
                .expect("count")
        ),
        vec![vec![Some("3".into())]]
    );
}

#[tokio::test]
async fn cleartext_auth_and_configuration_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEMARK_AUTH_METHOD", "cleartext"),
            ("TIDEMARK_AUTH_PASSWORD", "s3cret"),
        ],
    );
    let client = connect(&server, "s3cret").await.expect("cleartext login");
    assert_eq!(
        rows(&client.simple_query("SELECT 1 + 1").await.expect("query")),
        vec![vec![Some("2".into())]]
    );
    assert!(
        connect(&server, "quest").await.is_err(),
        "the old password no longer works"
    );
    // A bad configuration value stops the server with a message naming the key.
    let out = crate::harness::tidemark()
        .args(["serve", "--root"])
        .arg(dir.path().join("other"))
        .env("TIDEMARK_STORAGE_COMMIT_MODE", "sometimes")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storage.commit_mode") && err.contains("sometimes"),
        "{err}"
    );
    // A second server on the same root is refused, naming the holder.
    let out = crate::harness::tidemark()
        .args(["serve", "--root"])
        .arg(dir.path())
        .args(["--pg-listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&server.child.id().to_string()), "{err}");
}

/// `tidemark hash-password` for `password`.
fn verifier_of(password: &str) -> String {
    use std::io::Write;
    let mut child = crate::harness::tidemark()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// Logs in as admin with any password (a connection string would need quoting).
async fn login(
    s: &Server,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(s.port)
        .user("admin")
        .password(password)
        .dbname("tidemark")
        .connect(NoTls)
        .await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test]
async fn password_verifiers_in_configuration() {
    let verifier = verifier_of("n0t in the config");
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    assert!(!verifier.contains("n0t"));
    let dir = tempfile::tempdir().expect("tempdir");
    for method in ["scram-sha-256", "cleartext"] {
        let server = Server::start(
            &dir.path().join(method),
            &[
                ("TIDEMARK_AUTH_METHOD", method),
                ("TIDEMARK_AUTH_PASSWORD", &verifier),
            ],
        );
        let client = login(&server, "n0t in the config")
            .await
            .unwrap_or_else(|e| panic!("{method} login with a verifier: {e}"));
        assert_eq!(
            rows(&client.simple_query("SELECT 1").await.expect("query")),
            vec![vec![Some("1".into())]]
        );
        let err = login(&server, "wrong").await.expect_err("must fail");
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("28P01"),
            "{method}: {err}"
        );
        // The verifier itself is not a password.
        let err = login(&server, &verifier).await.expect_err("must fail");
        assert_eq!(err.code().map(|c| c.code()), Some("28P01"));
    }
    // md5 cannot check a verifier, and a damaged verifier is refused: both at start,
    // naming the key.
    for (method, password, says) in [
        ("md5", verifier.as_str(), "md5"),
        (
            "scram-sha-256",
            "SCRAM-SHA-256$4096:AAAA$AAAA",
            "auth.password",
        ),
    ] {
        let out = crate::harness::tidemark()
            .args(["serve", "--root"])
            .arg(dir.path().join("refused"))
            .args(["--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .env("TIDEMARK_AUTH_METHOD", method)
            .env("TIDEMARK_AUTH_PASSWORD", password)
            .output()
            .expect("run");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("auth.password") && err.contains(says), "{err}");
    }
}

/// A query a connection repeats runs from the plan it keeps for the text, and
/// still answers as planned anew after another connection changed the table
/// or view it reads: new rows, a new column, a dropped and remade table, a
/// replaced view.
#[tokio::test]
async fn a_repeated_simple_query_sees_what_other_connections_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let a = connect(&server, "quest").await.expect("connect a");
    let b = connect(&server, "quest").await.expect("connect b");
    b.simple_query(
        "CREATE TABLE m (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY; \
         INSERT INTO m VALUES ('2026-01-01T10:00:00', 1); \
         CREATE VIEW big AS (SELECT v FROM m WHERE v > 0)",
    )
    .await
    .expect("setup");
    let on_a = &a;
    let query =
        move |sql: &'static str| async move { rows(&on_a.simple_query(sql).await.expect(sql)) };
    let s = |v: &str| Some(v.to_string());
    let all = "SELECT * FROM m ORDER BY ts";
    for _ in 0..3 {
        assert_eq!(
            query(all).await,
            vec![vec![s("2026-01-01 10:00:00"), s("1")]]
        );
    }
    b.simple_query(
        "ALTER TABLE m ADD COLUMN note VARCHAR; \
         INSERT INTO m VALUES ('2026-01-01T11:00:00', 2, 'late')",
    )
    .await
    .expect("alter and insert");
    assert_eq!(
        query(all).await,
        vec![
            vec![s("2026-01-01 10:00:00"), s("1"), None],
            vec![s("2026-01-01 11:00:00"), s("2"), s("late")],
        ]
    );
    let view = "SELECT count(*) FROM big";
    for _ in 0..3 {
        assert_eq!(query(view).await, vec![vec![s("2")]]);
    }
    b.simple_query("CREATE OR REPLACE VIEW big AS (SELECT v FROM m WHERE v > 1)")
        .await
        .expect("replace view");
    assert_eq!(query(view).await, vec![vec![s("1")]]);
    b.simple_query("DROP VIEW big; DROP TABLE m")
        .await
        .expect("drop");
    let e = a.simple_query(all).await.expect_err("dropped");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42P01"));
    b.simple_query(
        "CREATE TABLE m (ts TIMESTAMP, label VARCHAR) TIMESTAMP(ts) PARTITION BY DAY; \
         INSERT INTO m VALUES ('2026-02-01T00:00:00', 'new')",
    )
    .await
    .expect("remake");
    assert_eq!(
        query(all).await,
        vec![vec![s("2026-02-01 00:00:00"), s("new")]]
    );
}
