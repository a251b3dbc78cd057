//! ASOF JOIN through the real server, as a driver runs it: prepared with a
//! bound parameter and executed twice (the cached plan holds the join), typed
//! binary results with NULLs for trades without a quote, left rows over
//! several partitions in timestamp order, and an unsupported form's SQLSTATE.

use crate::harness::Server;

#[tokio::test]
async fn asof_join_prepared_with_parameters_returns_typed_rows_in_left_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("root"), &[]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE quotes (ts TIMESTAMP, sym SYMBOL, bid DOUBLE) TIMESTAMP(ts) PARTITION BY DAY; \
             CREATE TABLE trades (ts TIMESTAMP, sym SYMBOL, qty LONG) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO quotes VALUES ('2026-03-01T23:59:00', 'A', 1.5), ('2026-03-02T00:00:30', 'B', 7.0), \
               ('2026-03-03T08:00:00', 'A', 2.5); \
             INSERT INTO trades VALUES ('2026-03-01T12:00:00', 'A', 1), ('2026-03-02T00:00:00', 'A', 2), \
               ('2026-03-02T00:01:00', 'B', 3), ('2026-03-03T09:00:00', 'A', 4), ('2026-03-03T09:30:00', 'B', 5)",
        )
        .await
        .expect("tables and rows");
    let statement = client
        .prepare(
            "SELECT t.qty, q.bid, q.ts FROM trades t ASOF JOIN quotes q ON (sym) \
             WHERE t.sym = $1 AND t.qty >= $2",
        )
        .await
        .expect("prepare");
    let run = |sym: &'static str, min: i64| {
        let client = &client;
        let statement = &statement;
        async move {
            client
                .query(statement, &[&sym, &min])
                .await
                .expect("execute")
                .iter()
                .map(|r| {
                    let ts: Option<std::time::SystemTime> = r.get(2);
                    (r.get::<_, i64>(0), r.get::<_, Option<f64>>(1), ts.is_some())
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        run("A", 0).await,
        [(1, None, false), (2, Some(1.5), true), (4, Some(2.5), true)],
        "A's trades in timestamp order across three partitions, the first without a quote"
    );
    assert_eq!(
        run("B", 4).await,
        [(5, Some(7.0), true)],
        "the same prepared statement with other parameters"
    );

    let e = client
        .query(
            "SELECT * FROM trades t SPLICE JOIN quotes q ON (sym) TOLERANCE 1s",
            &[],
        )
        .await
        .expect_err("SPLICE JOIN takes no TOLERANCE");
    assert_eq!(e.code().map(|c| c.code()), Some("0A000"), "{e:?}");
}

/// `server.query_memory_mb` bounds what queries hold: a temporal join whose
/// right side does not fit fails with 53200 (out of memory), and the server
/// goes on serving, that session included.
#[tokio::test]
async fn a_right_side_past_the_query_memory_limit_is_53200_and_the_server_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &dir.path().join("root"),
        &[("TIDEMARK_SERVER_QUERY_MEMORY_MB", "1")],
    );
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE quotes AS (SELECT timestamp_sequence('2026-03-01', 10000L) ts, \
               rnd_symbol('A', 'B', 'C') sym, rnd_double() bid FROM long_sequence(300000)) \
               TIMESTAMP(ts) PARTITION BY DAY; \
             CREATE TABLE trades (ts TIMESTAMP, sym SYMBOL) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO trades VALUES ('2026-03-01T00:10:00', 'A')",
        )
        .await
        .expect("tables");
    let err = client
        .simple_query("SELECT count(*) FROM trades t ASOF JOIN quotes q ON (sym)")
        .await
        .expect_err("over the limit");
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "53200", "{db:?}");
    let rows = client
        .simple_query("SELECT count(*) FROM quotes")
        .await
        .expect("the session goes on");
    assert!(
        rows.iter().any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("300000"))),
        "{rows:?}"
    );
}
