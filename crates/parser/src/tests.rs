use crate::*;

fn one(sql: &str) -> Statement {
    let mut v = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e} at {:?}", e.position));
    assert_eq!(v.len(), 1, "{sql}");
    v.remove(0)
}

#[test]
fn create_table_with_timestamp_and_partitioning() {
    let s = one(
        "CREATE TABLE IF NOT EXISTS trades (ts TIMESTAMP, sym SYMBOL CAPACITY 256 NOCACHE, \
         price DOUBLE PRECISION NOT NULL, qty int4, note character varying(20), flag bool, \
         small int2, d date, id uuid, raw bytea, l LONG, s STRING, f FLOAT, tz timestamp with time zone, \
         tz2 timestamptz(3), naive timestamp(6) without time zone, j json, jb JSONB) \
         TIMESTAMP(ts) PARTITION BY DAY;",
    );
    let Statement::CreateTable(c) = s else {
        panic!("{s:?}")
    };
    assert_eq!(c.name, "trades");
    assert!(c.if_not_exists);
    assert_eq!(c.timestamp.as_deref(), Some("ts"));
    assert_eq!(c.partition_by, Some(PartitionUnit::Day));
    let types: Vec<SqlType> = c.columns.iter().map(|c| c.data_type).collect();
    use SqlType::*;
    assert_eq!(
        types,
        [
            Timestamp,
            Symbol,
            Double,
            Int,
            Varchar,
            Boolean,
            SmallInt,
            Date,
            Uuid,
            Binary,
            BigInt,
            Varchar,
            Real,
            TimestampTz,
            TimestampTz,
            Timestamp,
            Json,
            Jsonb
        ]
    );
    assert!(c.columns[2].not_null && !c.columns[0].not_null);
}

#[test]
fn unquoted_names_fold_to_lowercase_quoted_keep_their_case() {
    let Statement::CreateTable(c) = one(r#"CREATE TABLE Trades ("Price" DOUBLE, Qty INT)"#) else {
        panic!()
    };
    assert_eq!(c.name, "trades");
    assert_eq!(c.columns[0].name, "Price");
    assert_eq!(c.columns[1].name, "qty");
}

#[test]
fn create_table_as_select() {
    let Statement::CreateTable(c) =
        one("create table t2 as (select * from t where x > 1) timestamp(ts) partition by hour")
    else {
        panic!()
    };
    assert!(c.columns.is_empty());
    assert!(c.as_query.is_some());
    assert_eq!(c.partition_by, Some(PartitionUnit::Hour));
}

#[test]
fn ddl_statements() {
    assert_eq!(
        one("DROP TABLE IF EXISTS a, b"),
        Statement::DropTable {
            names: vec!["a".into(), "b".into()],
            if_exists: true
        }
    );
    assert_eq!(
        one("TRUNCATE TABLE a"),
        Statement::Truncate {
            names: vec!["a".into()]
        }
    );
    assert_eq!(
        one("RENAME TABLE 'old name' TO new_name"),
        Statement::RenameTable {
            from: "old name".into(),
            to: "new_name".into()
        }
    );
    assert_eq!(
        one("ALTER TABLE t RENAME COLUMN a TO b"),
        Statement::AlterTable {
            table: "t".into(),
            op: Box::new(AlterTable::RenameColumn {
                from: "a".into(),
                to: "b".into()
            })
        }
    );
    assert_eq!(
        one("ALTER TABLE t RENAME TO u"),
        Statement::AlterTable {
            table: "t".into(),
            op: Box::new(AlterTable::RenameTo { to: "u".into() })
        }
    );
    assert_eq!(
        one("ALTER TABLE t DROP PARTITION LIST '2026-11-20', '2026-11-21'"),
        Statement::AlterTable {
            table: "t".into(),
            op: Box::new(AlterTable::DropPartitionList {
                names: vec!["2026-11-20".into(), "2026-11-21".into()]
            })
        }
    );
    assert!(matches!(
        one("ALTER TABLE t DROP PARTITION WHERE ts < '2026-11-01'"),
        Statement::AlterTable { op, .. } if matches!(*op, AlterTable::DropPartitionWhere { .. })
    ));
    assert!(matches!(
        one("ALTER TABLE public.t ADD COLUMN IF NOT EXISTS x SYMBOL"),
        Statement::AlterTable { op, .. } if matches!(*op, AlterTable::AddColumn { if_not_exists: true, .. })
    ));
    assert!(
        matches!(one("ALTER TABLE t DROP COLUMN x"), Statement::AlterTable { op, .. } if matches!(*op, AlterTable::DropColumn { .. }))
    );
}

#[test]
fn standard_sql_passes_through_and_statements_split() {
    let v = parse("BEGIN; INSERT INTO t VALUES (1, 'a'); SELECT count(*) FROM t; COMMIT;")
        .expect("parse");
    assert_eq!(v.len(), 4);
    assert!(v.iter().all(|s| matches!(s, Statement::Standard(_))));
    assert!(parse("  ;; ").expect("empty").is_empty());
}

#[test]
fn errors_carry_position_and_sqlstate() {
    let e = parse("CREATE TABLE t (a INT, b FOO)").expect_err("unknown type");
    assert_eq!(e.sqlstate, "42704");
    assert_eq!(e.message, "type \"FOO\" does not exist");
    assert_eq!(e.position, Some(26));
    let e = parse("SELEC 1").expect_err("syntax");
    assert_eq!(e.sqlstate, "42601");
    assert!(e.message.contains("SELEC"), "{e}");
    assert_eq!(e.position, Some(1));
    let e = parse("CREATE TABLE t (ts TIMESTAMP) TIMESTAMP(ts) PARTITION BY FORTNIGHT")
        .expect_err("unit");
    assert!(
        e.message.contains("FORTNIGHT") && e.message.contains("expected NONE, HOUR"),
        "{e}"
    );
    assert_eq!(e.position, Some(58));
    let e = parse("SELECT 1 2").expect_err("trailing");
    assert_eq!(e.position, Some(10));
    let e = parse("SELECT 'unterminated").expect_err("tokenizer");
    assert_eq!(e.sqlstate, "42601");
    let e = parse("DROP TABLE other.t").expect_err("schema");
    assert_eq!(e.sqlstate, "3F000");
}

#[test]
fn sample_by_is_cut_out_of_the_query() {
    let v = parse(
        "SELECT ts, sym, avg(price) FROM t WHERE sym = 'A' SAMPLE BY 15m FROM '2026-11-21' TO '2026-11-22' \
         FILL(NULL, 0) ALIGN TO CALENDAR TIME ZONE 'UTC' WITH OFFSET '-01:30' ORDER BY ts LIMIT 3",
    )
    .expect("parse");
    let [Statement::Sample { query, sample }] = v.as_slice() else {
        panic!("{v:?}")
    };
    assert_eq!(
        query.to_string(),
        "SELECT ts, sym, avg(price) FROM t WHERE sym = 'A' ORDER BY ts LIMIT 3"
    );
    assert_eq!(
        sample,
        &SampleBy {
            every: 15,
            unit: SampleUnit::Minute,
            from: Some("2026-11-21".into()),
            to: Some("2026-11-22".into()),
            fill: vec!["NULL".into(), "0".into()],
            align: Align::Calendar {
                time_zone: Some("UTC".into()),
                offset_minutes: -90
            },
        }
    );
    let v = parse("SELECT count(*) FROM t SAMPLE BY 1M ALIGN TO FIRST OBSERVATION").expect("parse");
    let [Statement::Sample { sample, .. }] = v.as_slice() else {
        panic!()
    };
    assert_eq!(
        (sample.every, sample.unit, sample.align.clone()),
        (1, SampleUnit::Month, Align::FirstObservation)
    );
    for bad in [
        "SELECT * FROM t SAMPLE BY 1x",
        "SELECT * FROM t SAMPLE BY h",
        "SELECT * FROM t SAMPLE BY 0h",
        "SELECT * FROM t SAMPLE BY 1h FILL(PREV",
        "SELECT * FROM t SAMPLE BY 1h ALIGN TO NOWHERE",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.sqlstate, "42601", "{bad}: {e}");
        assert!(e.position.is_some(), "{bad}: {e}");
    }
    assert!(
        parse("SELECT * FROM t AS sample").is_ok(),
        "an explicit AS alias named sample still works"
    );
}

#[test]
fn latest_on_is_cut_out_of_the_query() {
    let v = parse("SELECT 1; SELECT * FROM t WHERE x > 1 LATEST ON ts PARTITION BY Sym, \"Side\" ORDER BY ts LIMIT 5; SELECT 2").expect("parse");
    assert_eq!(v.len(), 3);
    let Statement::Latest { query, latest } = &v[1] else {
        panic!("{:?}", v[1])
    };
    assert_eq!(
        latest,
        &LatestOn {
            timestamp: Some("ts".into()),
            partition_by: vec!["sym".into(), "Side".into()]
        }
    );
    let Statement::Latest { latest, .. } = one("SELECT * FROM t LATEST BY sym, side LIMIT 3")
    else {
        panic!("LATEST BY")
    };
    assert_eq!(
        latest,
        LatestOn {
            timestamp: None,
            partition_by: vec!["sym".into(), "side".into()]
        }
    );
    assert_eq!(
        query.to_string(),
        "SELECT * FROM t WHERE x > 1 ORDER BY ts LIMIT 5"
    );
    // Inside parentheses it is not this statement's clause.
    assert!(parse("SELECT * FROM (SELECT * FROM t LATEST ON ts PARTITION BY s) AS x").is_err());
    let e = parse("SELECT * FROM t LATEST ON ts PARTITION sym").expect_err("missing BY");
    assert!(e.message.contains("PARTITION BY"), "{e}");
}

#[test]
fn checkpoint_statements_and_their_legacy_spellings() {
    use crate::CheckpointAction::{Create, Flush, Release};
    for (sql, action) in [
        ("CHECKPOINT", Flush),
        ("checkpoint;", Flush),
        ("CHECKPOINT CREATE", Create),
        ("checkpoint release;", Release),
        ("SNAPSHOT PREPARE", Create),
        ("snapshot complete", Release),
    ] {
        let v = parse(sql).expect("parse");
        assert_eq!(v, vec![Statement::Checkpoint(action)], "{sql}");
    }
    let v = parse("CHECKPOINT CREATE; SELECT 1").expect("parse");
    assert_eq!(v.len(), 2);
    for (sql, says) in [
        (
            "CHECKPOINT PREPARE",
            "expected CREATE or RELEASE after CHECKPOINT",
        ),
        ("SNAPSHOT", "expected PREPARE or COMPLETE after SNAPSHOT"),
        (
            "SNAPSHOT CREATE",
            "expected PREPARE or COMPLETE after SNAPSHOT",
        ),
        ("CHECKPOINT CREATE now", "near \"now\""),
    ] {
        let e = parse(sql).expect_err("must fail");
        assert_eq!(e.sqlstate, "42601", "{sql}");
        assert!(e.message.contains(says), "{sql}: {e}");
    }
}

#[test]
fn backup_statements() {
    use crate::BackupAction::{Abort, Database};
    for (sql, action) in [
        ("BACKUP DATABASE", Database),
        ("backup database;", Database),
        ("BACKUP ABORT", Abort),
    ] {
        assert_eq!(
            parse(sql).expect("parse"),
            vec![Statement::Backup(action)],
            "{sql}"
        );
    }
    for sql in ["BACKUP", "BACKUP TABLE t", "BACKUP DATABASE now"] {
        let e = parse(sql).expect_err("must fail");
        assert_eq!(e.sqlstate, "42601", "{sql}");
    }
    let e = parse("BACKUP TABLE t").expect_err("must fail");
    assert!(e.message.contains("expected DATABASE or ABORT"), "{e}");
}

#[test]
fn fetch_and_move_in_postgresqls_forms() {
    let fetch = |sql: &str| match one(sql) {
        Statement::Fetch {
            cursor,
            count,
            move_only,
        } => (cursor, count, move_only),
        s => panic!("{sql}: {s:?}"),
    };
    use FetchCount::*;
    assert_eq!(fetch("FETCH c"), ("c".into(), Rows(1), false));
    assert_eq!(fetch("FETCH NEXT FROM C"), ("c".into(), Rows(1), false));
    assert_eq!(fetch("fetch 25 in c"), ("c".into(), Rows(25), false));
    assert_eq!(
        fetch("FETCH FORWARD 100 FROM \"Named\""),
        ("Named".into(), Rows(100), false)
    );
    assert_eq!(fetch("FETCH FORWARD ALL FROM c"), ("c".into(), All, false));
    assert_eq!(fetch("FETCH ALL c"), ("c".into(), All, false));
    assert_eq!(
        fetch("FETCH RELATIVE 3 FROM c"),
        ("c".into(), Relative(3), false)
    );
    assert_eq!(fetch("MOVE 5 FROM c"), ("c".into(), Rows(5), true));
    assert_eq!(
        fetch("FETCH BACKWARD 2 FROM c"),
        ("c".into(), Unsupported("BACKWARD"), false)
    );
    assert_eq!(
        fetch("FETCH PRIOR FROM c"),
        ("c".into(), Unsupported("PRIOR"), false)
    );
    for bad in [
        "FETCH",
        "FETCH 5 FROM",
        "FETCH RELATIVE FROM c",
        "FETCH -1 FROM c",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.sqlstate, "42601", "{bad}: {e}");
    }
}

#[test]
fn ttl_on_create_and_alter_in_words_or_questdb_shorthand() {
    let ttl_of = |sql: &str| match one(sql) {
        Statement::CreateTable(c) => c.ttl,
        Statement::AlterTable { op, .. } => match *op {
            AlterTable::SetTtl { ttl } => Some(ttl),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let spec = |count, unit| Some(TtlSpec { count, unit });
    assert_eq!(
        ttl_of("CREATE TABLE t (ts TIMESTAMP) TIMESTAMP(ts) PARTITION BY DAY TTL 7 DAYS WAL"),
        spec(7, TtlUnit::Day)
    );
    assert_eq!(
        ttl_of("CREATE TABLE t (ts TIMESTAMP) TTL 1 month TIMESTAMP(ts) PARTITION BY DAY"),
        spec(1, TtlUnit::Month)
    );
    assert_eq!(ttl_of("CREATE TABLE t (ts TIMESTAMP)"), None);
    assert_eq!(ttl_of("ALTER TABLE t SET TTL 2w"), spec(2, TtlUnit::Week));
    assert_eq!(ttl_of("ALTER TABLE t SET TTL 12h"), spec(12, TtlUnit::Hour));
    assert_eq!(ttl_of("ALTER TABLE t SET TTL 3M"), spec(3, TtlUnit::Month));
    assert_eq!(
        ttl_of("ALTER TABLE t SET TTL 1 YEAR"),
        spec(1, TtlUnit::Year)
    );
    assert_eq!(
        ttl_of("alter table t set ttl 0 hours"),
        spec(0, TtlUnit::Hour)
    );
    let e = parse("ALTER TABLE t SET TTL 3m").expect_err("minutes");
    assert_eq!(e.sqlstate, "42601");
    assert!(
        e.message.contains("\"m\"") && e.message.contains("expected HOURS"),
        "{e}"
    );
    assert_eq!(e.position, Some(24));
    let e = parse("ALTER TABLE t SET TTL forever").expect_err("no number");
    assert!(e.message.contains("forever"), "{e}");
    let e = parse("ALTER TABLE t SET TTL 99999999999 DAYS").expect_err("too many");
    assert_eq!(e.sqlstate, "22023");
    assert!(e.message.contains("99999999999"), "{e}");
}

/// The join operator and the SQL text of a query's first join.
fn first_join(sql: &str) -> String {
    let Statement::Standard(s) = one(sql) else {
        panic!("{sql}: not standard")
    };
    let sqlparser::ast::Statement::Query(q) = *s else {
        panic!("{sql}: not a query")
    };
    let sqlparser::ast::SetExpr::Select(select) = *q.body else {
        panic!("{sql}: not a select")
    };
    select.from[0].joins[0].to_string()
}

#[test]
fn temporal_joins_become_asof_joins_with_a_marker() {
    assert_eq!(
        first_join(
            "SELECT * FROM trades t ASOF JOIN quotes q ON (sym) TOLERANCE 10s WHERE t.x > 1"
        ),
        "ASOF JOIN quotes q MATCH_CONDITION (__tidemark_temporal_join('asof', 10000000, '')) ON (sym)"
    );
    assert_eq!(
        first_join("SELECT * FROM trades LT JOIN quotes"),
        "ASOF JOIN quotes MATCH_CONDITION (__tidemark_temporal_join('lt', NULL, ''))"
    );
    // A subquery may hold its own temporal join; TOLERANCE with a spaced unit.
    assert_eq!(
        first_join(
            "SELECT * FROM a SPLICE JOIN (SELECT * FROM b LT JOIN c ON (k)) AS s ON (k) TOLERANCE 2 h"
        ),
        "ASOF JOIN (SELECT * FROM b ASOF JOIN c MATCH_CONDITION (__tidemark_temporal_join('lt', NULL, '')) \
         ON (k)) AS s MATCH_CONDITION (__tidemark_temporal_join('splice', 7200000000, '')) ON (k)"
    );
    // DuckDB's ASOF LEFT JOIN is marked as written outer.
    assert_eq!(
        first_join("SELECT * FROM t ASOF LEFT JOIN q ON t.k = q.k AND t.ts >= q.ts"),
        "ASOF JOIN q MATCH_CONDITION (__tidemark_temporal_join('asof', NULL, 'left')) ON t.k = q.k AND t.ts >= q.ts"
    );
    // Snowflake's own spelling is left as written.
    assert_eq!(
        first_join("SELECT * FROM t ASOF JOIN q MATCH_CONDITION (t.ts >= q.ts) ON t.k = q.k"),
        "ASOF JOIN q MATCH_CONDITION (t.ts >= q.ts) ON t.k = q.k"
    );
    // `lt` as a column name is no join.
    assert!(parse("SELECT lt FROM t WHERE lt > 1").is_ok());
}

#[test]
fn a_bad_tolerance_names_what_it_found() {
    for (sql, found) in [
        ("SELECT * FROM t ASOF JOIN q ON (k) TOLERANCE 3M", "3M"),
        ("SELECT * FROM t ASOF JOIN q ON (k) TOLERANCE 0s", "0s"),
        ("SELECT * FROM t ASOF JOIN q ON (k) TOLERANCE soon", "soon"),
    ] {
        let e = parse(sql).expect_err(sql);
        assert_eq!(e.sqlstate, "42601", "{sql}");
        assert!(
            e.message.contains(&format!("found \"{found}\"")),
            "{sql}: {}",
            e.message
        );
        assert!(e.position.is_some(), "{sql}");
    }
}

#[test]
fn dedup_upsert_keys_on_create_and_alter() {
    let keys_of = |sql: &str| match one(sql) {
        Statement::CreateTable(c) => c.dedup_keys,
        Statement::AlterTable { op, .. } => match *op {
            AlterTable::SetDedup { keys } => keys,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(
        keys_of(
            "CREATE TABLE t (ts TIMESTAMP, sym SYMBOL) TIMESTAMP(ts) PARTITION BY DAY WAL \
             DEDUP UPSERT KEYS(ts, \"Sym\")"
        ),
        vec!["ts".to_string(), "Sym".into()]
    );
    assert!(keys_of("CREATE TABLE t (ts TIMESTAMP)").is_empty());
    assert_eq!(
        keys_of("alter table t dedup enable upsert keys (ts)"),
        vec!["ts".to_string()]
    );
    assert!(keys_of("ALTER TABLE t DEDUP DISABLE").is_empty());
    for bad in [
        "ALTER TABLE t DEDUP ENABLE KEYS(ts)",
        "ALTER TABLE t DEDUP ENABLE UPSERT KEYS()",
        "ALTER TABLE t DEDUP",
        "CREATE TABLE t (ts TIMESTAMP) TIMESTAMP(ts) DEDUP UPSERT KEYS(ts",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.sqlstate, "42601", "{bad}: {e}");
    }
}

#[test]
fn primary_keys_on_columns_or_as_a_table_constraint() {
    let Statement::CreateTable(c) = one(
        "CREATE TABLE t (ts TIMESTAMP, id INT, CONSTRAINT t_pk PRIMARY KEY (ts, id)) TIMESTAMP(ts)",
    ) else {
        panic!("not CREATE TABLE")
    };
    assert_eq!(c.primary_key, vec!["ts".to_string(), "id".into()]);
    assert_eq!(c.columns.len(), 2);
    let Statement::CreateTable(c) =
        one("CREATE TABLE t (ts TIMESTAMP PRIMARY KEY NOT NULL, v INT)")
    else {
        panic!("not CREATE TABLE")
    };
    assert!(c.columns[0].primary_key && c.columns[0].not_null);
    assert!(!c.columns[1].primary_key);
    let e = parse("CREATE TABLE t (ts TIMESTAMP, PRIMARY KEY (ts), PRIMARY KEY (ts))")
        .expect_err("two");
    assert_eq!(e.sqlstate, "42P16", "{e}");
    let e = parse("CREATE TABLE t (ts TIMESTAMP, UNIQUE (ts))").expect_err("unique");
    assert_eq!(e.sqlstate, "0A000", "{e}");
}

#[test]
fn in_today_yesterday_tomorrow_become_a_range_on_now() {
    let Statement::Standard(s) = one("SELECT * FROM t WHERE ts IN yesterday() AND x IN (1, 2)")
    else {
        panic!("standard")
    };
    let text = s.to_string();
    assert!(
        text.contains(
            "ts BETWEEN (CAST(date_trunc('day', now()) AS TIMESTAMP) + INTERVAL '-1 day')"
        ),
        "{text}"
    );
    assert!(text.contains("x IN (1, 2)"), "{text}");
    // QuestDB's zone argument: that zone's day.
    let Statement::Standard(s) = one("SELECT * FROM t WHERE ts IN today('Europe/London')") else {
        panic!("standard")
    };
    let text = s.to_string();
    assert!(
        text.contains("ts BETWEEN to_utc((date_trunc('day', to_timezone(now(), 'Europe/London'))"),
        "{text}"
    );
    // QuestDB's interval(lo, hi): both bounds included, any expressions.
    let Statement::Standard(s) =
        one("SELECT * FROM t WHERE ts IN interval($1, dateadd('d', 1, $2)) AND x IN (1)")
    else {
        panic!("standard")
    };
    let text = s.to_string();
    assert!(
        text.contains("ts BETWEEN ($1) AND (dateadd('d', 1, $2)) AND x IN (1)"),
        "{text}"
    );
    assert!(parse("SELECT * FROM t WHERE ts IN interval('2024-01-01')").is_err());
    // Other arguments, or another function, are not rewritten.
    assert!(parse("SELECT * FROM t WHERE ts IN today(1)").is_err());
    assert!(parse("SELECT * FROM t WHERE ts IN today('UTC', 'x')").is_err());
}

#[test]
fn alter_column_add_and_drop_index_parse() {
    for (sql, expected) in [
        (
            "ALTER TABLE t ALTER COLUMN sym ADD INDEX",
            AlterTable::AddIndex {
                column: "sym".into(),
            },
        ),
        (
            "alter table t alter column \"Sym\" add index capacity 256",
            AlterTable::AddIndex {
                column: "Sym".into(),
            },
        ),
        (
            "ALTER TABLE t ALTER COLUMN sym DROP INDEX",
            AlterTable::DropIndex {
                column: "sym".into(),
            },
        ),
    ] {
        let Statement::AlterTable { table, op } = one(sql) else {
            panic!("{sql}: not ALTER TABLE")
        };
        assert_eq!(table, "t");
        assert_eq!(*op, expected, "{sql}");
    }
    let Statement::CreateTable(c) = one(
        "CREATE TABLE t (ts TIMESTAMP, s SYMBOL CAPACITY 64 CACHE INDEX CAPACITY 128, v SYMBOL)",
    ) else {
        panic!("not CREATE TABLE")
    };
    let indexed: Vec<bool> = c.columns.iter().map(|c| c.indexed).collect();
    assert_eq!(indexed, vec![false, true, false]);
}

#[test]
fn alter_column_is_named_as_not_supported() {
    for sql in [
        "ALTER TABLE t ALTER COLUMN v TYPE BIGINT",
        "ALTER TABLE t ALTER COLUMN v SET NOT NULL",
    ] {
        let e = parse(sql).expect_err(sql);
        assert_eq!(e.sqlstate, "0A000", "{sql}: {e}");
        assert!(e.message.contains("ALTER COLUMN"), "{e}");
    }
}

#[test]
fn create_table_like_names_the_source() {
    let Statement::CreateTable(c) = one("CREATE TABLE IF NOT EXISTS t2 (LIKE \"Trades\")") else {
        panic!("not CREATE TABLE")
    };
    assert_eq!(c.like.as_deref(), Some("Trades"));
    assert!(c.if_not_exists && c.columns.is_empty());
    // A column named like is still a column.
    let Statement::CreateTable(c) = one("CREATE TABLE t (\"like\" INT)") else {
        panic!("not CREATE TABLE")
    };
    assert_eq!(c.like, None);
    assert_eq!(c.columns.len(), 1);
}

#[test]
fn drop_all_tables_is_its_own_statement() {
    assert_eq!(one("drop all tables"), Statement::DropAllTables);
    assert_eq!(one("CANCEL QUERY 29"), Statement::CancelQuery { id: 29 });
    assert_eq!(
        one("REINDEX TABLE trades COLUMN sym PARTITION '2024-01-01' LOCK EXCLUSIVE"),
        Statement::Reindex(ReindexTarget::Table {
            table: "trades".into(),
            column: Some("sym".into())
        })
    );
    assert_eq!(
        one("REINDEX (VERBOSE) INDEX CONCURRENTLY by_sym"),
        Statement::Reindex(ReindexTarget::Index("by_sym".into()))
    );
    assert!(parse("REINDEX DATABASE tidemark").is_err());
    for refused in [
        "CREATE MATERIALIZED VIEW mv AS (SELECT ts, avg(v) FROM t SAMPLE BY 1h) PARTITION BY DAY",
        "ALTER TABLE t SUSPEND WAL",
    ] {
        let e = parse(refused).expect_err(refused);
        assert_eq!(e.sqlstate, "0A000", "{refused}: {e:?}");
    }
    assert!(parse("CANCEL QUERY -1").is_err());
    assert!(parse("CANCEL QUERY x").is_err());
    assert!(matches!(
        one("DROP TABLE all_x"),
        Statement::DropTable { .. }
    ));
}

#[test]
fn double_array_columns_and_questdb_subscripts() {
    let Statement::CreateTable(c) =
        one("CREATE TABLE b (ts TIMESTAMP, bids DOUBLE[], grid double precision[][], v float8[3])")
    else {
        panic!("a CREATE TABLE")
    };
    let types: Vec<SqlType> = c.columns.iter().map(|c| c.data_type).collect();
    assert_eq!(
        types,
        [
            SqlType::Timestamp,
            SqlType::DoubleArray { dims: 1 },
            SqlType::DoubleArray { dims: 2 },
            SqlType::DoubleArray { dims: 1 }
        ]
    );
    let e = parse("CREATE TABLE b (ts TIMESTAMP, x INT[])").expect_err("INT[] is refused");
    assert_eq!(e.sqlstate, "0A000");
    // arr[i, j] is arr[i][j]; array constructors keep their commas.
    let shown = |sql: &str| match one(sql) {
        Statement::Standard(s) => s.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        shown("SELECT g[2, 1], g[1, 2:3], ARRAY[1, 2], ARRAY[[1, 2], [3, 4]][1, 2] FROM t"),
        shown("SELECT g[2][1], g[1][2:3], ARRAY[1, 2], ARRAY[[1, 2], [3, 4]][1][2] FROM t")
    );
    let e = parse("SELECT g[1:2, 1] FROM t").expect_err("a slice before an index");
    assert_eq!(e.sqlstate, "0A000");
    assert_eq!(e.position, Some(13));
}

/// Statements that once took exponential time in sqlparser's backtracking
/// (found by fuzzing): each is refused at once. The time bound is a thousand
/// times what they take now; the old cost was hours.
#[test]
fn nested_calls_with_a_mistake_inside_fail_at_once() {
    let nested = |open: &str, close: &str, depth: usize| {
        format!("SELECT {}a .x[{}", open.repeat(depth), close.repeat(depth))
    };
    for sql in [
        nested("f(", ")", 40),
        nested("CAST(", " AS INT)", 40),
        nested("ARRAY[", "]", 40),
        nested("NOT (", ")", 40),
        nested("POSITION(", ")", 6),
        nested("SUBSTRING(", ")", 6),
        include_str!(
            "../../../fuzz/regressions/sql_parser/nested-calls-with-a-mistake-parse-in-exponential-time"
        )
        .to_string(),
    ] {
        let started = std::time::Instant::now();
        assert!(parse(&sql).is_err(), "{sql}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{sql}: {:?}",
            started.elapsed()
        );
    }
    // Past six nested calls with special syntax, 54001 names them.
    let e = parse(&nested("POSITION(", ")", 7)).expect_err("too deep");
    assert_eq!(e.sqlstate, "54001", "{e}");
    assert!(e.message.contains("more than 6 nested calls"), "{e}");
    // Ordinary nesting, named arguments and those words as names still parse.
    one(&format!("SELECT {}1{}", "abs(".repeat(20), ")".repeat(20)));
    one("SELECT make_interval(days => 1), position('a' IN substring('abc' FROM 2))");
    one("SELECT position, interval FROM t WHERE position > 1");
    one("SELECT CAST(CAST(x AS INT) AS TEXT), ARRAY[ARRAY[1]], NOT (NOT x)");
}

#[test]
fn views_keep_their_query_text_as_written() {
    let view = |sql: &str| match one(sql) {
        Statement::CreateView {
            name,
            definition,
            mode,
        } => (name, definition, mode),
        other => panic!("{sql}: {other:?}"),
    };
    // QuestDB's form: the parentheses are not part of the query; SAMPLE BY and
    // a TICK variable stay as written (read when the view is queried).
    assert_eq!(
        view(
            "CREATE VIEW Hourly AS (\n  SELECT ts, avg(price) FROM trades\n  WHERE ts IN '$today' SAMPLE BY 1h\n);"
        ),
        (
            "hourly".to_string(),
            "SELECT ts, avg(price) FROM trades\n  WHERE ts IN '$today' SAMPLE BY 1h".to_string(),
            ViewMode::Create
        )
    );
    assert_eq!(
        view("create or replace view \"Last\" as select * from t latest on ts partition by s"),
        (
            "Last".to_string(),
            "select * from t latest on ts partition by s".to_string(),
            ViewMode::OrReplace
        )
    );
    assert_eq!(
        view("CREATE VIEW IF NOT EXISTS public.v AS (SELECT 1) UNION (SELECT 2)").1,
        "(SELECT 1) UNION (SELECT 2)",
        "only parentheses around the whole query are dropped"
    );
    assert_eq!(
        view("ALTER VIEW v AS (SELECT 'é' AS x)").1,
        "SELECT 'é' AS x"
    );
    assert_eq!(view("ALTER VIEW v AS (SELECT 2)").2, ViewMode::Alter);
    assert_eq!(
        one("COMPILE VIEW v"),
        Statement::CompileView { name: "v".into() }
    );
    // The statements around a view parse as before.
    let all = parse("SELECT 1; CREATE VIEW v AS SELECT ts FROM t SAMPLE BY 1d; SELECT 2")
        .expect("script");
    assert_eq!(all.len(), 3);
    assert!(matches!(all[1], Statement::CreateView { .. }));

    // A definition that is no query, or does not parse, is refused at once,
    // the error's position in the whole statement.
    let e = parse("CREATE VIEW v AS (SELECT a b c d FROM t)").expect_err("bad query");
    assert_eq!(e.sqlstate, "42601");
    assert!(e.position.is_some_and(|p| p > 18), "{e:?}");
    for bad in [
        "CREATE VIEW v AS (INSERT INTO t VALUES (1))",
        "CREATE VIEW v AS",
        "CREATE VIEW v AS ()",
        "CREATE VIEW v SELECT 1",
        "CREATE OR REPLACE VIEW IF NOT EXISTS v AS SELECT 1",
        "COMPILE VIEW v extra",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.sqlstate, "42601", "{bad}: {e:?}");
    }
    let e = parse("CREATE VIEW v (a, b) AS SELECT 1, 2").expect_err("column list");
    assert_eq!(e.sqlstate, "0A000");
    // Materialized views are still refused by name.
    let e = parse("CREATE MATERIALIZED VIEW mv AS (SELECT 1)").expect_err("materialized");
    assert_eq!(e.sqlstate, "0A000");
}

#[test]
fn prepare_keeps_its_statement_as_written() {
    let all = parse("PREPARE q (TEXT) AS SELECT avg(v) FROM t WHERE s = $1 SAMPLE BY 1h;")
        .expect("parses");
    assert_eq!(
        all,
        vec![Statement::Prepare {
            name: "q".into(),
            statement: "SELECT avg(v) FROM t WHERE s = $1 SAMPLE BY 1h".into(),
        }]
    );
    for bad in [
        "PREPARE q AS SELECT (1 FROM p",
        "PREPARE q AS",
        "PREPARE q (NOT_A TYPE) AS SELECT 1",
        "PREPARE q AS PREPARE r AS SELECT 1",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.sqlstate, "42601", "{bad}: {e:?}");
    }
}
