//! Scans: partition pruning on the designated timestamp, row ranges, projection,
//! and rows still in the write buffer merged with the files in timestamp order.
//! The apply runs only on plain `CHECKPOINT` here, so what is buffered is known.

use tidemark_executor::arrow::array::{Array, Int64Array};
use tidemark_executor::{Output, Session};

async fn count(s: &mut Session, sql: &str) -> i64 {
    let mut out = s
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    match out.pop() {
        Some(Output::Rows { rows, .. }) => rows.collect().await.expect("rows")[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("count is BIGINT")
            .value(0),
        other => panic!("{sql}: {other:?}"),
    }
}

#[tokio::test]
async fn a_filter_on_the_designated_timestamp_opens_only_matching_partitions() {
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE t (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .expect("create");
    // Ten days, 24 rows a day (one per hour).
    let values: Vec<String> = (0..240)
        .map(|h| format!("('2026-11-{:02}T{:02}:00:00', {h})", 11 + h / 24, h % 24))
        .collect();
    s.execute(&format!("INSERT INTO t VALUES {}", values.join(",")))
        .await
        .expect("insert");
    // Buffered rows are filtered like any others, but no file part is opened.
    assert_eq!(
        count(
            &mut s,
            "SELECT count(*) FROM t WHERE ts >= '2026-11-15' AND ts < '2026-11-16'"
        )
        .await,
        24
    );
    assert_eq!(s.scan_stats(), (0, 0));
    s.execute("CHECKPOINT").await.expect("checkpoint");
    let cases = [
        (
            "SELECT count(*) FROM t WHERE ts >= '2026-11-15' AND ts < '2026-11-16'",
            24,
            1,
        ),
        (
            "SELECT count(*) FROM t WHERE ts BETWEEN '2026-11-15T10:00:00' AND '2026-11-15T12:00:00'",
            3,
            1,
        ),
        (
            "SELECT count(*) FROM t WHERE ts > '2026-11-19T22:00:00'",
            25,
            2,
        ),
        (
            "SELECT count(*) FROM t WHERE ts = '2026-11-12T05:00:00'",
            1,
            1,
        ),
        ("SELECT count(*) FROM t WHERE v >= 0", 240, 10),
        ("SELECT count(*) FROM t WHERE ts < '2026-11-01'", 0, 0),
        ("SELECT count(*) FROM t WHERE ts IN '2026-11-15'", 24, 1),
        (
            "SELECT count(*) FROM t WHERE ts IN '2026-11-15T22:00;3h'",
            4,
            2,
        ),
        // A repeating interval opens the partitions between its first and last range.
        (
            "SELECT count(*) FROM t WHERE ts IN '2026-11-15T22:00;1h;1d;2'",
            4,
            2,
        ),
    ];
    for (sql, rows, parts) in cases {
        let (scanned_before, _) = s.scan_stats();
        assert_eq!(count(&mut s, sql).await, rows, "{sql}");
        let (scanned_after, _) = s.scan_stats();
        assert_eq!(
            scanned_after - scanned_before,
            parts,
            "partitions opened by {sql}"
        );
    }
}

#[tokio::test]
async fn projected_fixed_width_columns_are_not_copied() {
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE t (ts TIMESTAMP, v BIGINT, w VARCHAR) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .expect("create");
    s.execute(
        "INSERT INTO t VALUES ('2026-11-21T01:00:00', 7, 'x'), ('2026-11-21T02:00:00', 8, 'y')",
    )
    .await
    .expect("insert");
    s.execute("CHECKPOINT").await.expect("checkpoint");
    let mut out = s.execute("SELECT v FROM t").await.expect("select");
    let Some(Output::Rows { rows, schema }) = out.pop() else {
        panic!("{out:?}")
    };
    let batches = rows.collect().await.expect("rows");
    assert_eq!(schema.fields().len(), 1);
    let v = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("BIGINT");
    assert_eq!(v.values().to_vec(), vec![7, 8]);
    // The values buffer is the column file itself: its address lies in a mapping
    // of `db/t~1/2026-11-21/v~1.d` in this process's memory map.
    let addr = v.values().inner().as_ptr() as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let mapping = maps
        .lines()
        .find(|l| {
            let range = l.split_whitespace().next().unwrap_or("");
            let (a, b) = range.split_once('-').unwrap_or(("0", "0"));
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap_or(0),
                usize::from_str_radix(b, 16).unwrap_or(0),
            );
            (a..b).contains(&addr)
        })
        .expect("the buffer lies in some mapping");
    assert!(
        mapping.ends_with("/2026-11-21/v~1.d"),
        "buffer is not the mapped column file: {mapping}"
    );
    assert_eq!(v.null_count(), 0);
}

#[tokio::test]
async fn rows_come_back_in_timestamp_order_across_many_batches() {
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE t (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY HOUR")
        .await
        .expect("create");
    // 200,000 rows over several partitions: several 64k-row batches per scan.
    s.execute(
        "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 40000), value * 10 FROM generate_series(0, 199999)",
    )
    .await
    .expect("insert");
    check_order(&mut s, 200_000).await;
    s.execute("CHECKPOINT").await.expect("checkpoint");
    check_order(&mut s, 200_000).await;
    // Late rows, buffered, fall between rows in the files (v keeps the order:
    // v = 10 * position, a late row gets the odd value between its neighbours).
    s.execute(
        "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 40000 + 20000), value * 10 + 5 FROM generate_series(0, 199999, 997)",
    )
    .await
    .expect("late rows");
    check_order(&mut s, 200_201).await;
    s.execute("CHECKPOINT").await.expect("checkpoint");
    check_order(&mut s, 200_201).await;
}

async fn check_order(s: &mut Session, rows: usize) {
    for sql in [
        "SELECT * FROM t",
        "SELECT v FROM t WHERE v % 3 = 0",
        "SELECT ts, v * 2 AS w FROM t WHERE ts > '2026-11-21T00:10:00'",
    ] {
        let mut out = s.execute(sql).await.expect("select");
        let Some(Output::Rows { rows: stream, .. }) = out.pop() else {
            panic!()
        };
        let batches = stream.collect().await.expect("rows");
        let col = if sql.contains("SELECT v") { 0 } else { 1 };
        let values: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(col)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("i64")
                    .values()
                    .to_vec()
            })
            .collect();
        assert!(values.len() > 60_000, "{sql}");
        if sql == "SELECT * FROM t" {
            assert_eq!(values.len(), rows, "{sql}");
        }
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "{sql}: rows are not in timestamp order"
        );
    }
}

#[tokio::test]
async fn explain_and_explain_analyze_show_partitions_scanned() {
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE t (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .expect("create");
    s.execute("INSERT INTO t VALUES ('2026-11-20T01:00:00', 1), ('2026-11-21T01:00:00', 2), ('2026-11-22T01:00:00', 3)")
        .await
        .expect("insert");
    s.execute("CHECKPOINT").await.expect("checkpoint");
    for explain in ["EXPLAIN", "EXPLAIN ANALYZE"] {
        let mut out = s
            .execute(&format!(
                "{explain} SELECT v FROM t WHERE ts >= '2026-11-21' AND ts < '2026-11-22'"
            ))
            .await
            .expect("explain");
        let Some(Output::Rows { rows, .. }) = out.pop() else {
            panic!()
        };
        let batches = rows.collect().await.expect("rows");
        let text: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows())
                    .map(|r| {
                        tidemark_executor::text::format_value(b.column(1), r)
                            .ok()
                            .flatten()
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            text.iter()
                .any(|l| l.contains("table=t: partitions scanned 1 of 3, rows 1 (0 buffered)")),
            "{explain}: {text:#?}"
        );
    }
}

/// A TIMESTAMP_NS designated timestamp prunes by nanoseconds: each form of
/// range reads only the partitions (and rows) it covers, and the rows a
/// nanosecond outside it are not returned.
#[tokio::test]
async fn nanosecond_designated_timestamp_ranges_prune_partitions() {
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE n (ts TIMESTAMP_NS, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .expect("create");
    s.execute(
        "INSERT INTO n VALUES ('2026-11-20T23:59:59.999999999', 1), ('2026-11-21T00:00:00.000000001', 2), \
         ('2026-11-21T23:59:59.999999999', 3), ('2026-11-22T00:00:00', 4)",
    )
    .await
    .expect("insert");
    s.execute("CHECKPOINT").await.expect("checkpoint");
    for (filter, want) in [
        ("ts >= '2026-11-21' AND ts < '2026-11-22'", "5"),
        (
            "ts > '2026-11-21T00:00:00.000000001' AND ts < '2026-11-22'",
            "3",
        ),
        ("ts IN '2026-11-21'", "5"),
        (
            "ts BETWEEN '2026-11-21T00:00:00.000000001' AND '2026-11-21T23:59:59.999999999'",
            "5",
        ),
        ("ts = '2026-11-21T23:59:59.999999999'", "3"),
    ] {
        let before = s.scan_stats();
        let got = crate::rows(&mut s, &format!("SELECT sum(v) FROM n WHERE {filter}")).await;
        let after = s.scan_stats();
        assert_eq!(got, vec![vec![Some(want.to_string())]], "{filter}");
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (1, 2),
            "{filter}: one partition scanned, two pruned"
        );
    }
}

#[tokio::test]
async fn planning_reads_no_data_and_damage_surfaces_as_a_named_error() {
    let (mut s, dir) = crate::session();
    s.execute("CREATE TABLE t (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .expect("create");
    s.execute("INSERT INTO t VALUES ('2026-11-21T01:00:00', 7), ('2026-11-21T02:00:00', 8)")
        .await
        .expect("insert");
    s.execute("CHECKPOINT").await.expect("checkpoint");
    let file = dir.path().join("db/t~1/2026-11-21/v~1.d");
    let mut bytes = std::fs::read(&file).expect("column file");
    bytes[3] ^= 0x10;
    std::fs::write(&file, bytes).expect("damage");
    s.execute("EXPLAIN SELECT v FROM t")
        .await
        .expect("EXPLAIN plans without reading rows");
    let e = s
        .execute("SELECT v FROM t")
        .await
        .expect_err("damaged data must not be returned");
    assert_eq!(e.sqlstate, "XX001", "{e}");
    assert!(
        e.message.contains("v~1.d") && e.message.contains("checksum"),
        "{e}"
    );
    // The timestamp column is intact and still readable.
    s.execute("SELECT ts FROM t")
        .await
        .expect("undamaged columns stay readable");
}

/// The rows of `sql`'s result as text (NULL spelled out).
async fn text_rows(s: &mut Session, sql: &str) -> Vec<Vec<String>> {
    crate::rows(s, sql)
        .await
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

/// The partition count EXPLAIN shows for the scan of `sql`.
async fn scan_partitions(s: &mut Session, sql: &str) -> usize {
    let plan = text_rows(s, &format!("EXPLAIN {sql}")).await;
    let line = plan
        .iter()
        .flatten()
        .flat_map(|cell| cell.lines())
        .find(|l| l.contains("StorageScanExec"))
        .unwrap_or_else(|| panic!("{sql}: no scan in {plan:#?}"))
        .to_string();
    line.split("partitions=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: {line}"))
}

#[tokio::test]
async fn order_insensitive_aggregates_scan_on_every_core_and_agree() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE t (ts TIMESTAMP, k BIGINT, v BIGINT) TIMESTAMP(ts) PARTITION BY HOUR")
        .await
        .expect("create");
    // 300,000 rows over several partitions, v = 1..300000, k = v % 3.
    s.execute(
        "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 40000), value % 3, value FROM generate_series(1, 300000)",
    )
    .await
    .expect("insert");
    s.execute("CHECKPOINT").await.expect("checkpoint");
    // 1,000 late rows, each just before a stored one, stay buffered and are
    // read with the files.
    s.execute(
        "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 12000000 - 1), 7, 1 FROM generate_series(1, 1000)",
    )
    .await
    .expect("late rows");
    let totals = "SELECT count(*), sum(v), min(v), max(v) FROM t WHERE v > 0";
    let per_key = "SELECT k, count(*), sum(v), max(v) FROM t GROUP BY k ORDER BY k";
    let expected_split = cores.min(301_000 / (128 * 1024));
    assert!(
        expected_split >= 2 || cores < 2,
        "the table is large enough to split"
    );
    assert_eq!(scan_partitions(&mut s, totals).await, expected_split.max(1));
    assert_eq!(
        scan_partitions(&mut s, per_key).await,
        expected_split.max(1)
    );
    assert_eq!(
        text_rows(&mut s, totals).await,
        vec![vec!["301000", "45000151000", "1", "300000"]]
    );
    assert_eq!(
        text_rows(&mut s, per_key).await,
        vec![
            vec!["0", "100000", "15000150000", "300000"],
            vec!["1", "100000", "14999950000", "299998"],
            vec!["2", "100000", "15000050000", "299999"],
            vec!["7", "1000", "1000", "1"],
        ]
    );
    // What depends on the order of rows keeps the single ordered stream: the
    // first rows of a bare scan, and QuestDB's first/last.
    let head = "SELECT v FROM t LIMIT 3";
    assert_eq!(scan_partitions(&mut s, head).await, 1);
    assert_eq!(
        text_rows(&mut s, head).await,
        vec![vec!["1"], vec!["2"], vec!["3"]]
    );
    let ends = "SELECT first(v), last(v) FROM t";
    assert_eq!(scan_partitions(&mut s, ends).await, 1);
    assert_eq!(text_rows(&mut s, ends).await, vec![vec!["1", "300000"]]);
}

#[tokio::test]
async fn timestamp_ranges_are_cut_by_the_scan_alone_and_keep_their_edges() {
    let (mut s, _dir) = crate::session();
    s.execute("CREATE TABLE t (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .expect("create");
    s.execute(
        "INSERT INTO t VALUES ('2026-11-21T00:00:00', 1), ('2026-11-21T10:00:00', 2), ('2026-11-21T11:00:00', 3), ('2026-11-22T00:00:00', 4)",
    )
    .await
    .expect("insert");
    s.execute("CHECKPOINT").await.expect("checkpoint");
    // Buffered rows on the edges too.
    s.execute("INSERT INTO t VALUES ('2026-11-21T10:00:00', 20), ('2026-11-21T10:59:59.999999', 29), ('2026-11-21T11:00:00', 30)")
        .await
        .expect("late rows");
    let cases: [(&str, Vec<&str>); 5] = [
        (
            "ts >= '2026-11-21T10:00:00' AND ts < '2026-11-21T11:00:00'",
            vec!["2", "20", "29"],
        ),
        (
            "ts > '2026-11-21T10:00:00' AND ts <= '2026-11-21T11:00:00'",
            vec!["29", "3", "30"],
        ),
        ("ts = '2026-11-21T11:00:00'", vec!["3", "30"]),
        (
            "ts BETWEEN '2026-11-21T10:59:59.999999' AND '2026-11-21T11:00:00'",
            vec!["29", "3", "30"],
        ),
        ("'2026-11-22' <= ts", vec!["4"]),
    ];
    for (condition, expected) in cases {
        let sql = format!("SELECT v FROM t WHERE {condition}");
        let got: Vec<String> = text_rows(&mut s, &sql)
            .await
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(got, expected, "{sql}");
        let plan = text_rows(&mut s, &format!("EXPLAIN {sql}")).await;
        assert!(
            !plan
                .iter()
                .flatten()
                .any(|cell| cell.contains("FilterExec")),
            "{sql}: the scan's range is exact, no row filter is needed: {plan:#?}"
        );
    }
    // A condition the range cannot express still filters rows.
    let sql = "SELECT v FROM t WHERE ts <> '2026-11-21T10:00:00' AND ts < '2026-11-21T11:00:00'";
    let got: Vec<String> = text_rows(&mut s, sql).await.into_iter().flatten().collect();
    assert_eq!(got, vec!["1", "29"], "{sql}");
}

#[tokio::test]
async fn grouping_by_a_symbol_column_groups_its_keys_and_answers_its_values() {
    let (mut s, _dir) = crate::buffered_session();
    crate::execute(&mut s, "CREATE TABLE t (ts TIMESTAMP, sym SYMBOL, k BIGINT, v BIGINT) TIMESTAMP(ts) PARTITION BY HOUR").await;
    // 300,000 rows: v = 1..300000, sym = 'S' || v % 3 except NULL where
    // v % 5 = 0, k = v % 2.
    crate::execute(&mut s, "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 40000), CASE WHEN value % 5 = 0 THEN NULL ELSE 'S' || (value % 3) END, value % 2, value FROM generate_series(1, 300000)").await;
    crate::execute(&mut s, "CHECKPOINT").await;
    // Late rows, still buffered: a symbol only they carry, and a known one.
    crate::execute(&mut s, "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 12000000 - 1), CASE WHEN value % 2 = 0 THEN 'late' ELSE 'S1' END, 0, 1 FROM generate_series(1, 1000)").await;
    // Expected answers, computed here row by row.
    let mut expected: std::collections::BTreeMap<(String, i64), (i64, i64, i64)> =
        Default::default();
    let mut add = |sym: Option<String>, k: i64, v: i64| {
        let e = expected
            .entry((sym.unwrap_or_else(|| "NULL".into()), k))
            .or_default();
        *e = (e.0 + 1, e.1 + v, e.2.max(v));
    };
    for v in 1..=300_000i64 {
        add((v % 5 != 0).then(|| format!("S{}", v % 3)), v % 2, v);
    }
    for value in 1..=1000 {
        add(
            Some(if value % 2 == 0 { "late" } else { "S1" }.into()),
            0,
            1,
        );
    }
    let mut per_sym: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    for ((sym, _), (n, sum, max)) in &expected {
        let e = per_sym.entry(sym.clone()).or_default();
        *e = (e.0 + n, e.1 + sum, e.2.max(*max));
    }
    let as_rows = |m: Vec<(Vec<String>, (i64, i64, i64))>| -> Vec<Vec<String>> {
        m.into_iter()
            .map(|(mut key, (n, sum, max))| {
                key.extend([n.to_string(), sum.to_string(), max.to_string()]);
                key
            })
            .collect()
    };
    let mut want_per_sym = as_rows(per_sym.into_iter().map(|(s, t)| (vec![s], t)).collect());
    // NULL sorts last in ascending order, as in PostgreSQL.
    want_per_sym.rotate_left(1);
    let by_sym = "SELECT sym, count(*), sum(v), max(v) FROM t GROUP BY sym ORDER BY sym";
    assert_eq!(text_rows(&mut s, by_sym).await, want_per_sym);
    let plan = text_rows(&mut s, &format!("EXPLAIN {by_sym}")).await;
    assert!(
        plan.iter().flatten().any(|c| c.contains("symbol_key(sym")),
        "the group column is the SYMBOL key: {plan:#?}"
    );
    assert!(
        plan.iter().flatten().any(|c| c.contains("(1000 buffered)")),
        "the late rows are read from the write buffer: {plan:#?}"
    );
    assert!(
        !plan.iter().flatten().any(|c| c.contains("FilterExec")),
        "the scan's key test is exact: DataFusion does not test the strings again: {plan:#?}"
    );
    let plan = text_rows(&mut s, "EXPLAIN SELECT v FROM t WHERE sym = 'S1' OR v = 7").await;
    assert!(
        plan.iter().flatten().any(|c| c.contains("FilterExec")),
        "a filter the scan cannot test stays with DataFusion: {plan:#?}"
    );

    let mut want_pairs = as_rows(
        expected
            .iter()
            .map(|((sym, k), t)| (vec![sym.clone(), k.to_string()], *t))
            .collect(),
    );
    want_pairs.rotate_left(2);
    let by_pair = "SELECT sym, k, count(*), sum(v), max(v) FROM t GROUP BY sym, k ORDER BY sym, k";
    assert_eq!(text_rows(&mut s, by_pair).await, want_pairs);

    // The values above the aggregate are SYMBOL values again: string functions,
    // comparisons and the PostgreSQL type see no difference.
    assert_eq!(
        text_rows(
            &mut s,
            "SELECT upper(sym), count(*) FROM t WHERE sym >= 'S2' GROUP BY sym HAVING sym <> 'late'"
        )
        .await,
        vec![vec!["S2".to_string(), "80000".to_string()]]
    );
    // An order-sensitive aggregate groups by key on its single stream too.
    assert_eq!(
        text_rows(
            &mut s,
            "SELECT sym, first(v), last(v) FROM t WHERE sym IS NOT NULL GROUP BY sym ORDER BY sym"
        )
        .await,
        vec![
            vec!["S0", "3", "299997"],
            vec!["S1", "1", "299998"],
            vec!["S2", "2", "299999"],
            vec!["late", "1", "1"],
        ]
    );
    // ROLLUP keeps DataFusion's own grouping.
    assert_eq!(
        text_rows(
            &mut s,
            "SELECT sym, count(*) FROM t WHERE sym IN ('S0', 'late') GROUP BY ROLLUP(sym) ORDER BY sym"
        )
        .await,
        vec![
            vec!["S0", "80000"],
            vec!["late", "500"],
            vec!["NULL", "80500"],
        ]
    );
}

#[tokio::test]
async fn symbol_equality_filters_skip_other_symbols_in_the_scan() {
    let (mut s, _dir) = crate::buffered_session();
    crate::execute(
        &mut s,
        "CREATE TABLE t (ts TIMESTAMP, sym SYMBOL, v BIGINT) TIMESTAMP(ts) PARTITION BY HOUR",
    )
    .await;
    // 200,000 rows over several partitions: sym = 'S' || v % 4, NULL where v % 7 = 0.
    crate::execute(&mut s, "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 40000), CASE WHEN value % 7 = 0 THEN NULL ELSE 'S' || (value % 4) END, value FROM generate_series(1, 200000)").await;
    // A SYMBOL column added later: NULL in every row stored before it.
    crate::execute(&mut s, "ALTER TABLE t ADD COLUMN tag SYMBOL").await;
    crate::execute(&mut s, "CHECKPOINT").await;
    // Buffered late rows: one symbol only they carry, one known, and tags.
    crate::execute(&mut s, "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 8000000 - 1), CASE WHEN value % 2 = 0 THEN 'late' ELSE 'S1' END, 1, 'x' FROM generate_series(1, 1000)").await;
    let stored = |keep: &dyn Fn(i64) -> bool| -> (i64, i64) {
        (1..=200_000i64)
            .filter(|&v| keep(v))
            .fold((0, 0), |(n, sum), v| (n + 1, sum + v))
    };
    let (n1, sum1) = stored(&|v| v % 7 != 0 && v % 4 == 1);
    let (n0, sum0) = stored(&|v| v % 7 != 0 && v % 4 == 0);
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "sym = 'S1'",
            vec![(n1 + 500).to_string(), (sum1 + 500).to_string()],
        ),
        (
            "'S1' = sym",
            vec![(n1 + 500).to_string(), (sum1 + 500).to_string()],
        ),
        (
            "sym IN ('S0', 'late', 'nowhere')",
            vec![(n0 + 500).to_string(), (sum0 + 500).to_string()],
        ),
        // More values than are compared one by one: a lookup per row.
        ("sym IN ('S0', 'S1', 'S2', 'S3', 'late', 'nowhere')", {
            let (n, sum) = stored(&|v| v % 7 != 0);
            vec![(n + 1000).to_string(), (sum + 1000).to_string()]
        }),
        ("sym = 'late' AND v = 1", vec!["500".into(), "500".into()]),
        ("sym = 'nowhere'", vec!["0".into(), "NULL".into()]),
        ("tag = 'x'", vec!["1000".into(), "1000".into()]),
        ("sym = 'S1' AND tag = 'x'", vec!["500".into(), "500".into()]),
        // Not a key filter: applied by DataFusion alone, same answers.
        (
            "sym = 'S1' OR v = 7",
            vec![(n1 + 501).to_string(), (sum1 + 507).to_string()],
        ),
        ("sym IS NULL", {
            let (n, sum) = stored(&|v| v % 7 == 0);
            vec![n.to_string(), sum.to_string()]
        }),
    ];
    for (condition, expected) in &cases {
        let sql = format!("SELECT count(*), sum(v) FROM t WHERE {condition}");
        assert_eq!(
            text_rows(&mut s, &sql).await,
            vec![expected.clone()],
            "{sql}"
        );
    }
    let plan = text_rows(&mut s, "EXPLAIN SELECT v FROM t WHERE sym IN ('S0', 'S1')").await;
    assert!(
        plan.iter()
            .flatten()
            .any(|c| c.contains("symbol filter: sym IN (2 values)\n")),
        "the scan tests the keys itself: {plan:#?}"
    );
    assert!(
        plan.iter().flatten().any(|c| c.contains("(1000 buffered)")),
        "the late rows are read from the write buffer: {plan:#?}"
    );
    // The same answers from symbol indexes: built over the stored rows (the
    // buffered ones are applied first), then with late rows merged into
    // parts whose index is rewritten with them.
    crate::execute(&mut s, "CREATE INDEX ON t (sym)").await;
    crate::execute(&mut s, "ALTER TABLE t ALTER COLUMN tag ADD INDEX").await;
    let plan = text_rows(&mut s, "EXPLAIN SELECT v FROM t WHERE sym IN ('S0', 'S1')").await;
    assert!(
        plan.iter()
            .flatten()
            .any(|c| c.contains("symbol filter: sym IN (2 values) by index")),
        "the scan reads the index: {plan:#?}"
    );
    for round in ["indexed", "indexed, more late rows"] {
        for (condition, expected) in &cases {
            let sql = format!("SELECT count(*), sum(v) FROM t WHERE {condition}");
            assert_eq!(
                text_rows(&mut s, &sql).await,
                vec![expected.clone()],
                "{round}: {sql}"
            );
        }
        // Late rows of a symbol no case counts, then applied: every part
        // they land in is rewritten, its index with it.
        crate::execute(&mut s, "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 4000000 + 1), 'other', 0, 'y' FROM generate_series(1, 2000)").await;
        crate::execute(&mut s, "CHECKPOINT").await;
    }
    // Rows come back whole and in timestamp order.
    assert_eq!(
        text_rows(
            &mut s,
            "SELECT sym, v FROM t WHERE sym = 'late' AND ts < to_timestamp_micros(1795219200000000 + 40000000)"
        )
        .await,
        vec![
            vec!["late", "1"],
            vec!["late", "1"],
        ]
    );
}

#[tokio::test]
async fn latest_on_a_symbol_finds_an_old_null_and_stops_without_one() {
    let (mut s, _dir) = crate::buffered_session();
    crate::execute(
        &mut s,
        "CREATE TABLE t (ts TIMESTAMP, sym SYMBOL, v BIGINT) TIMESTAMP(ts) PARTITION BY HOUR",
    )
    .await;
    // 20,000 rows a second apart (six partitions); the only NULL symbol is v = 100.
    crate::execute(&mut s, "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 1000000), CASE WHEN value = 100 THEN NULL ELSE 'S' || (value % 5) END, value FROM generate_series(1, 20000)").await;
    // A SYMBOL column added later is NULL in every row stored before it.
    crate::execute(&mut s, "ALTER TABLE t ADD COLUMN tag SYMBOL").await;
    crate::execute(&mut s, "CHECKPOINT").await;
    crate::execute(
        &mut s,
        "CREATE TABLE u (ts TIMESTAMP, sym SYMBOL, v BIGINT) TIMESTAMP(ts) PARTITION BY HOUR",
    )
    .await;
    crate::execute(&mut s, "INSERT INTO u SELECT to_timestamp_micros(1795219200000000 + value * 1000000), 'S' || (value % 3), value FROM generate_series(1, 10000)").await;
    // First the keys are read, then symbol indexes: the same rows. Each round
    // adds newer rows that stay buffered (read as before), up to `last`.
    for (round, last) in [("keys", 20010), ("indexes", 20012)] {
        if round == "indexes" {
            crate::execute(&mut s, "CREATE INDEX ON t (sym)").await;
            crate::execute(&mut s, "CREATE INDEX ON t (tag)").await;
            crate::execute(&mut s, "CREATE INDEX ON u (sym)").await;
        }
        let from = last - if round == "keys" { 9 } else { 1 };
        crate::execute(&mut s, &format!("INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 1000000), 'S1', value, 'x' FROM generate_series({from}, {last})")).await;
        let last = last.to_string();
        assert_eq!(
            text_rows(
                &mut s,
                "SELECT sym, v FROM t LATEST ON ts PARTITION BY sym ORDER BY v"
            )
            .await,
            vec![
                vec!["NULL", "100"],
                vec!["S2", "19997"],
                vec!["S3", "19998"],
                vec!["S4", "19999"],
                vec!["S0", "20000"],
                vec!["S1", last.as_str()],
            ],
            "{round}"
        );
        // A column added later: its index starts at the part's top, the
        // NULLs before it are the column's.
        assert_eq!(
            text_rows(
                &mut s,
                "SELECT tag, v FROM t LATEST ON ts PARTITION BY tag ORDER BY v"
            )
            .await,
            vec![vec!["NULL", "20000"], vec!["x", last.as_str()]],
            "{round}"
        );
        // Without any NULL the walk reads the whole table (or every index
        // block) and answers the values.
        assert_eq!(
            text_rows(
                &mut s,
                "SELECT sym, v FROM u LATEST ON ts PARTITION BY sym ORDER BY v"
            )
            .await,
            vec![vec!["S2", "9998"], vec!["S0", "9999"], vec!["S1", "10000"]],
            "{round}"
        );
    }
}
