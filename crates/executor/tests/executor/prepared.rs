//! Prepared INSERTs: planned once at Parse, each execution binds its values
//! straight into columns; after DDL the statement still runs (planned again).

use std::sync::Arc;

use tidemark_executor::{Output, ParamValue, Session};
use tidemark_storage::{Database, StorageOptions};

async fn session() -> (Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        dir.path(),
        StorageOptions {
            background_housekeeping: false,
            ..Default::default()
        },
    )
    .expect("open");
    (Session::new(Arc::new(db)), dir)
}

async fn rows(s: &mut Session, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut out = s
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let Some(Output::Rows { rows, .. }) = out.pop() else {
        panic!("{sql}: {out:?}")
    };
    let batches = rows.collect().await.expect("rows");
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                (0..b.num_columns())
                    .map(|c| {
                        tidemark_executor::text::format_value(b.column(c), r)
                            .ok()
                            .flatten()
                    })
                    .collect()
            })
        })
        .collect()
}

#[tokio::test]
async fn a_prepared_insert_binds_values_straight_into_columns() {
    let (mut s, _dir) = session().await;
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
