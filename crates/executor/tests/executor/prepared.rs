//! Prepared INSERTs: planned once at Parse, each execution binds its values
//! straight into columns; after DDL the statement still runs (planned again).

use std::sync::Arc;

use tidemark_executor::{Output, ParamValue, Session};

use crate::{rows, text_rows};
use tidemark_storage::{Database, StorageOptions};

#[tokio::test]
async fn a_prepared_insert_binds_values_straight_into_columns() {
    let (mut s, _dir) = crate::session();
    s.execute(
        "CREATE TABLE t (ts TIMESTAMP, sym SYMBOL, price DOUBLE, n BIGINT, note VARCHAR) TIMESTAMP(ts) PARTITION BY DAY",
    )
    .await
    .expect("create");
    let p = s
        .prepare("INSERT INTO t (ts, sym, price, n, note) VALUES ($1, $2, $3, $4, 'fixed'), ($5, $2, $3, NULL, $6)")
        .await
        .expect("prepare");
    assert!(p.is_planned_insert(), "planned at Parse");
    for i in 0..3i64 {
        let out = s
            .execute_prepared(
                &p,
                &[
                    // Binary-format timestamps arrive as microseconds, text ones as text.
                    ParamValue::Timestamp(1_795_219_200_000_000 + i * 1_000_000),
                    ParamValue::Text(format!("S{i}")),
                    ParamValue::Float(1.5 + i as f64),
                    ParamValue::Int(i),
                    ParamValue::Typed {
                        type_name: "TIMESTAMP",
                        text: format!("2026-11-21 00:00:0{i}.5"),
                    },
                    ParamValue::Null,
                ],
            )
            .await
            .expect("execute");
        assert!(
            matches!(&out, Output::Command { tag, .. } if tag == "INSERT 0 2"),
            "{out:?}"
        );
    }
    assert_eq!(
        rows(
            &mut s,
            "SELECT sym, price, n, note FROM t WHERE ts = '2026-11-21 00:00:01.5'"
        )
        .await,
        vec![vec![
            Some("S1".to_string()),
            Some("2.5".to_string()),
            None,
            None
        ]]
    );
    assert_eq!(
        rows(&mut s, "SELECT count(*), count(n), count(note) FROM t").await,
        vec![vec![
            Some("6".to_string()),
            Some("3".to_string()),
            Some("3".to_string())
        ]]
    );
    // A value the column cannot take is the usual error, naming the column.
    let e = s
        .execute_prepared(
            &p,
            &[
                ParamValue::Timestamp(0),
                ParamValue::Text("x".into()),
                ParamValue::Text("not a number".into()),
                ParamValue::Int(1),
                ParamValue::Timestamp(0),
                ParamValue::Null,
            ],
        )
        .await
        .expect_err("bad double");
    assert_eq!(e.sqlstate, "22P02", "{e}");
    // Too few values is a protocol violation.
    let e = s
        .execute_prepared(&p, &[ParamValue::Timestamp(0)])
        .await
        .expect_err("too few");
    assert_eq!(e.sqlstate, "08P01", "{e}");
    // After DDL the same prepared statement goes on working.
    s.execute("ALTER TABLE t ADD COLUMN extra INT")
        .await
        .expect("alter");
    s.execute_prepared(
        &p,
        &[
            ParamValue::Timestamp(1_795_219_300_000_000),
            ParamValue::Text("S9".into()),
            ParamValue::Float(9.0),
            ParamValue::Int(9),
            ParamValue::Timestamp(1_795_219_300_000_001),
            ParamValue::Text("after".into()),
        ],
    )
    .await
    .expect("execute after DDL");
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t WHERE sym = 'S9'").await,
        vec![vec![Some("2".to_string())]]
    );
    // Inside a transaction the rows are the transaction's until COMMIT.
    s.execute("BEGIN").await.expect("begin");
    let p = s
        .prepare("INSERT INTO t (ts, sym) VALUES ($1, $2)")
        .await
        .expect("prepare");
    for i in 0..100i64 {
        s.execute_prepared(
            &p,
            &[
                ParamValue::Timestamp(1_795_219_400_000_000 + i),
                ParamValue::Text("TX".into()),
            ],
        )
        .await
        .expect("execute in transaction");
    }
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t WHERE sym = 'TX'").await,
        vec![vec![Some("100".to_string())]]
    );
    s.execute("ROLLBACK").await.expect("rollback");
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t WHERE sym = 'TX'").await,
        vec![vec![Some("0".to_string())]]
    );
}

/// The rows of a prepared statement's execution, as text.
async fn prepared_rows(
    s: &mut Session,
    p: &tidemark_executor::Prepared,
    values: &[ParamValue],
) -> Vec<Vec<Option<String>>> {
    let out = s.execute_prepared(p, values).await.expect("execute");
    let Output::Rows { rows, .. } = out else {
        panic!("{out:?}")
    };
    text_rows(&rows.collect().await.expect("rows"))
}

fn text(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test]
async fn a_prepared_query_keeps_its_plan_and_reads_each_executions_snapshot() {
    let (mut s, _dir) = crate::session();
    s.execute(
        "CREATE TABLE q (ts TIMESTAMP, sym SYMBOL, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO q VALUES ('2026-11-21 10:00:00', 'A', 1.5), ('2026-11-22 10:00:00', 'B', 2.5)",
    )
    .await
    .expect("setup");
    let p = s
        .prepare("SELECT sym, price FROM q WHERE ts = $1")
        .await
        .expect("prepare");
    assert!(p.is_planned_query(), "planned at Parse");
    let day2 = ParamValue::Timestamp(1_795_341_600_000_000);
    assert_eq!(
        prepared_rows(&mut s, &p, std::slice::from_ref(&day2)).await,
        vec![vec![text("B"), text("2.5")]]
    );
    // Text is read as the timestamp the planner expects.
    assert_eq!(
        prepared_rows(
            &mut s,
            &p,
            &[ParamValue::Text("2026-11-21 10:00:00".into())]
        )
        .await,
        vec![vec![text("A"), text("1.5")]]
    );
    // A commit after Parse is seen by the next execution, and by the
    // session's own open transaction.
    s.execute("INSERT INTO q VALUES ('2026-11-22 10:00:00', 'C', 3.5)")
        .await
        .expect("insert");
    assert_eq!(
        prepared_rows(&mut s, &p, std::slice::from_ref(&day2))
            .await
            .len(),
        2
    );
    s.execute("BEGIN; INSERT INTO q VALUES ('2026-11-22 10:00:00', 'D', 4.5)")
        .await
        .expect("insert in tx");
    assert_eq!(
        prepared_rows(&mut s, &p, std::slice::from_ref(&day2))
            .await
            .len(),
        3
    );
    s.execute("ROLLBACK").await.expect("rollback");
    assert_eq!(
        prepared_rows(&mut s, &p, std::slice::from_ref(&day2))
            .await
            .len(),
        2
    );
    // A value the placeholder's type cannot take is the error it always was.
    let err = s
        .execute_prepared(&p, &[ParamValue::Text("not a time".into())])
        .await
        .expect_err("a bad timestamp");
    assert!(err.to_string().contains("not a time"), "{err}");
}

#[tokio::test]
async fn a_prepared_query_is_planned_again_after_its_table_changes() {
    let (mut s, _dir) = crate::session();
    s.execute(
        "CREATE TABLE r (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO r VALUES ('2026-11-21 10:00:00', 1)",
    )
    .await
    .expect("setup");
    let p = s
        .prepare("SELECT * FROM r WHERE v >= $1")
        .await
        .expect("prepare");
    assert_eq!(
        prepared_rows(&mut s, &p, &[ParamValue::Int(1)]).await,
        vec![vec![text("2026-11-21 10:00:00"), text("1")]]
    );
    // A new column: `*` now has three.
    s.execute("ALTER TABLE r ADD COLUMN note VARCHAR")
        .await
        .expect("alter");
    assert_eq!(
        prepared_rows(&mut s, &p, &[ParamValue::Int(1)]).await,
        vec![vec![text("2026-11-21 10:00:00"), text("1"), None]]
    );
    // The same name, another table.
    s.execute(
        "DROP TABLE r; CREATE TABLE r (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO r VALUES ('2026-11-23 10:00:00', 7)",
    )
    .await
    .expect("recreate");
    assert_eq!(
        prepared_rows(&mut s, &p, &[ParamValue::Int(1)]).await,
        vec![vec![text("2026-11-23 10:00:00"), text("7")]]
    );
    // A fraction is compared as the number it is, not rounded to the column's type.
    assert!(
        prepared_rows(&mut s, &p, &[ParamValue::Float(7.5)])
            .await
            .is_empty()
    );
    // Gone: the error says which relation.
    s.execute("DROP TABLE r").await.expect("drop");
    let err = s
        .execute_prepared(&p, &[ParamValue::Int(1)])
        .await
        .expect_err("dropped");
    assert_eq!(err.sqlstate, "42P01", "{err}");
}

#[tokio::test]
async fn an_idle_session_and_a_kept_plan_pin_no_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(
        Database::open(
            dir.path(),
            StorageOptions {
                background_housekeeping: false,
                ..Default::default()
            },
        )
        .expect("open"),
    );
    let mut s = Session::new(db.clone());
    s.execute(
        "CREATE TABLE g (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO g VALUES ('2026-11-21 10:00:00', 1)",
    )
    .await
    .expect("setup");
    // A query read to the end, and a prepared query kept by its client.
    assert_eq!(rows(&mut s, "SELECT * FROM g").await.len(), 1);
    let p = s
        .prepare("SELECT * FROM g WHERE v = $1")
        .await
        .expect("prepare");
    assert_eq!(
        prepared_rows(&mut s, &p, &[ParamValue::Int(1)]).await.len(),
        1
    );
    // Another session drops the table: with `s` idle, nothing holds its files.
    Session::new(db.clone())
        .execute("DROP TABLE g")
        .await
        .expect("drop");
    db.run_housekeeping().expect("housekeeping");
    let left: Vec<String> = std::fs::read_dir(dir.path().join("db"))
        .expect("db dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("g~"))
        .collect();
    assert!(
        left.is_empty(),
        "files of the dropped table still pinned: {left:?}"
    );
    let err = s
        .execute_prepared(&p, &[ParamValue::Int(1)])
        .await
        .expect_err("dropped");
    assert_eq!(err.sqlstate, "42P01", "{err}");
}

#[tokio::test]
async fn each_execution_of_a_kept_plan_has_its_own_statement_time() {
    let (mut s, _dir) = crate::session();
    let clock = s.prepare("SELECT now()").await.expect("prepare");
    assert!(clock.is_planned_query(), "planned at Parse");
    let first = prepared_rows(&mut s, &clock, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = prepared_rows(&mut s, &clock, &[]).await;
    assert!(first[0][0].is_some(), "{first:?}");
    // Text of the same format and width: later sorts after.
    assert!(
        second > first,
        "now() is each execution's start: {first:?} then {second:?}"
    );
}

/// Describe answers the columns of SAMPLE BY and LATEST ON statements without
/// running them: no partition is read (running them reads some), and the
/// columns are those the execution returns.
#[tokio::test]
async fn describe_plans_sample_by_and_latest_on_without_reading_rows() {
    let (mut s, _dir) = crate::session();
    s.execute(
        "CREATE TABLE d (ts TIMESTAMP, sym SYMBOL, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO d VALUES ('2026-11-21 10:00:00', 'A', 1.5), ('2026-11-22 10:30:00', 'B', 2.5);
         CHECKPOINT",
    )
    .await
    .expect("setup (rows written to column files, where scans are counted)");
    for (sql, columns) in [
        (
            "SELECT ts, sym, avg(price) AS p FROM d WHERE price > $1 SAMPLE BY 1h ALIGN TO FIRST OBSERVATION",
            vec!["ts", "sym", "p"],
        ),
        (
            "SELECT ts, max(price) FROM d WHERE price > $1 SAMPLE BY 1h FROM '2026-11-21' TO '2026-11-23' FILL(PREV)",
            vec!["ts", "max"],
        ),
        (
            "SELECT sym, price FROM d WHERE price > $1 LATEST ON ts PARTITION BY sym",
            vec!["sym", "price"],
        ),
        (
            "SELECT * FROM d LATEST ON ts PARTITION BY sym",
            vec!["ts", "sym", "price"],
        ),
    ] {
        let p = s
            .prepare(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let before = s.scan_stats();
        let described = s
            .describe(&p, None)
            .await
            .unwrap_or_else(|e| panic!("describe {sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql} returns rows"));
        assert_eq!(s.scan_stats(), before, "describe read partitions: {sql}");
        let names: Vec<&str> = described
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, columns, "{sql}");
        let values = vec![ParamValue::Text("0".into()); usize::from(sql.contains("$1"))];
        let out = s
            .execute_prepared(&p, &values)
            .await
            .unwrap_or_else(|e| panic!("execute {sql}: {e}"));
        let Output::Rows { schema, rows } = out else {
            panic!("{sql}: {out:?}")
        };
        assert!(!rows.collect().await.expect("rows").is_empty(), "{sql}");
        let ran: Vec<(&str, _)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        let described: Vec<(&str, _)> = described
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        assert_eq!(ran, described, "{sql}");
        if sql.contains("WHERE") {
            assert!(
                s.scan_stats().0 > before.0,
                "running {sql} reads partitions"
            );
        }
    }
}

/// A query whose text merely contains a catalog name (in a string) is an
/// ordinary query: its plan is kept like any other.
#[tokio::test]
async fn a_catalog_name_in_a_string_does_not_make_a_catalog_query() {
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE n (ts TIMESTAMP, name VARCHAR) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .expect("create");
    let p = s
        .prepare("SELECT count(*) FROM n WHERE name <> 'pg_class' AND ts > $1")
        .await
        .expect("prepare");
    assert!(p.is_planned_query(), "kept like any query");
    let catalog = s
        .prepare("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = $1")
        .await
        .expect("prepare a catalog query");
    assert!(
        !catalog.is_planned_query(),
        "catalog tables are made per snapshot: planned at each execution"
    );
}

/// Select lists whose items DataFusion would name alike (a cast takes its
/// operand's name; a wildcard holds the column) run, simple and prepared, and
/// answer PostgreSQL's names, duplicates included, with the values in place.
#[tokio::test]
async fn select_items_of_the_same_name_run_as_in_postgres() {
    let (mut s, _dir) = crate::session();
    s.execute(
        "CREATE TABLE d (ts TIMESTAMP, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO d VALUES ('2026-11-21 10:00:00', 1.5)",
    )
    .await
    .expect("setup");
    for (sql, columns, values) in [
        (
            "SELECT price::text, price FROM d",
            vec!["price", "price"],
            vec!["1.5", "1.5"],
        ),
        (
            "SELECT *, price FROM d",
            vec!["ts", "price", "price"],
            vec!["2026-11-21 10:00:00", "1.5", "1.5"],
        ),
        ("SELECT 1, 1", vec!["?column?", "?column?"], vec!["1", "1"]),
        (
            "SELECT count(*), count(*) FROM d",
            vec!["count", "count"],
            vec!["1", "1"],
        ),
        (
            "SELECT price AS x, price * 2 AS x FROM d",
            vec!["x", "x"],
            vec!["1.5", "3"],
        ),
        (
            "SELECT price AS ts, * FROM d ORDER BY ts",
            vec!["ts", "ts", "price"],
            vec!["1.5", "2026-11-21 10:00:00", "1.5"],
        ),
        (
            "SELECT 1, 1 UNION ALL SELECT 2, 2 ORDER BY 1",
            vec!["?column?", "?column?"],
            vec!["1", "1"],
        ),
    ] {
        let out = s
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .pop()
            .expect("one output");
        let Output::Rows { schema, rows } = out else {
            panic!("{sql}: {out:?}")
        };
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, columns, "{sql}");
        let got = text_rows(&rows.collect().await.expect("rows"));
        let values: Vec<Option<String>> = values.iter().map(|v| Some(v.to_string())).collect();
        assert_eq!(got[0], values, "{sql}");

        let p = s
            .prepare(sql)
            .await
            .unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
        let described = s
            .describe(&p, None)
            .await
            .unwrap_or_else(|e| panic!("describe {sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql} returns rows"));
        let names: Vec<&str> = described
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, columns, "described: {sql}");
        let prepared = prepared_rows(&mut s, &p, &[]).await;
        assert_eq!(prepared, got, "prepared: {sql}");
    }
}
