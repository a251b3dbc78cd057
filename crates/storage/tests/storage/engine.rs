//! Behaviour of the engine as its callers see it: writes, reads, DDL,
//! transactions, snapshots, housekeeping, the root lock.

use std::sync::Arc;

use tidemark_storage::*;

use crate::common::*;

#[test]
fn in_order_rows_append_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = open(dir.path());
        create(&db, trades_def("trades"));
        append(&db, "trades", trades_batch(&[T0, T0 + 1, T0 + 2], 0));
        append(&db, "trades", trades_batch(&[T0 + 3, T0 + DAY], 3));
        let snap = db.snapshot();
        let t = snap.table("TRADES").expect("case-insensitive lookup");
        assert_eq!(t.row_count(), 5);
        let parts = t.partitions();
        assert_eq!(
            parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["2026-11-21", "2026-11-22"]
        );
        assert_eq!(parts[0].rows, 4);
        db.close().expect("close");
    }
    let db = open(dir.path());
    assert_eq!(column_i64(&db, "trades", "seq"), vec![0, 1, 2, 3, 4]);
    assert_eq!(read_table(&db, "trades")[1], ["S0", "S1", "S2", "S3", "S4"]);
    assert!(
        dir.path().join("db/trades~1/2026-11-21/price~2.d").exists(),
        "layout of design.md"
    );
}

#[test]
fn out_of_order_rows_merge_into_a_new_partition_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    append(&db, "t", trades_batch(&[T0 + 10, T0 + 20, T0 + DAY], 0));
    let before = db.snapshot();
    // Older than the table's newest row: lands inside the first day, between rows.
    let r = append(&db, "t", trades_batch(&[T0 + 15, T0 + 5], 3));
    let seq = r.seq.expect("committed");
    assert_eq!(
        column_i64(&db, "t", "ts"),
        vec![T0 + 5, T0 + 10, T0 + 15, T0 + 20, T0 + DAY]
    );
    assert_eq!(column_i64(&db, "t", "seq"), vec![4, 0, 3, 1, 2]);
    let parts = db.snapshot().table("t").expect("t").parts();
    assert_eq!(parts[0].dir_name, format!("2026-11-21.{seq}"));
    assert_eq!(
        parts[1].dir_name, "2026-11-22",
        "untouched partition keeps its version"
    );
    // The old version is still there for the older snapshot, byte for byte.
    let old = before.table("t").expect("t");
    assert_eq!(old.row_count(), 3);
    let old_dir = dir.path().join("db/t~1/2026-11-21");
    db.run_housekeeping().expect("housekeeping");
    assert!(
        old_dir.exists(),
        "a live snapshot still needs the old version"
    );
    assert_eq!(
        strings(&old.read_column(0, "seq", 0..2).expect("read old")),
        ["0", "1"]
    );
    drop(old);
    drop(before);
    db.run_housekeeping().expect("housekeeping");
    assert!(!old_dir.exists(), "reclaimed once no snapshot needs it");
}

#[test]
fn rows_not_older_than_a_partitions_newest_append_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    append(&db, "t", trades_batch(&[T0 + 10, T0 + DAY], 0));
    // Older than the table's max, but not older than day 1's max: no rewrite.
    append(&db, "t", trades_batch(&[T0 + 10, T0 + 11], 2));
    let parts = db.snapshot().table("t").expect("t").partitions();
    assert_eq!(parts[0].version, 0);
    assert_eq!(parts[0].rows, 3);
    assert_eq!(column_i64(&db, "t", "seq"), vec![0, 2, 3, 1]);
}

#[test]
fn every_type_and_null_roundtrips_and_nan_is_not_null() {
    let dir = tempfile::tempdir().expect("tempdir");
    let types = ColumnType::ALL;
    {
        let db = open(dir.path());
        let mut columns: Vec<ColumnDef> = types
            .iter()
            .map(|t| ColumnDef::new(format!("c_{}", t.name().to_lowercase()), *t))
            .collect();
        columns.push(ColumnDef::new("ts2", ColumnType::Timestamp));
        create(
            &db,
            TableDef {
                name: "all".into(),
                columns,
                timestamp: Some("ts2".into()),
                partition_by: PartitionBy::Hour,
            },
        );
        let n = 3;
        let nulls = vec![false, true, false];
        let mut batch = Batch::new().with("ts2", Column::timestamps(vec![T0, T0 + 1, T0 + HOUR]));
        for t in types {
            let values = match t {
                ColumnType::Boolean => Values::Boolean(vec![true, false, false]),
                ColumnType::SmallInt => Values::SmallInt(vec![i16::MIN, 0, 0]),
                ColumnType::Int => Values::Int(vec![i32::MIN, 0, 0]),
                ColumnType::BigInt => Values::BigInt(vec![i64::MIN, 0, 0]),
                ColumnType::Real => Values::Real(vec![f32::NAN, 0.0, 0.0]),
                ColumnType::Double => Values::Double(vec![f64::NAN, 0.0, 0.0]),
                ColumnType::Timestamp => Values::Timestamp(vec![i64::MIN, 0, 0]),
                ColumnType::TimestampTz => Values::Timestamp(vec![i64::MAX, 0, 0]),
                ColumnType::TimestampNs => Values::BigInt(vec![i64::MAX - 1, 0, 0]),
                ColumnType::Json | ColumnType::Jsonb => Values::Varchar(VarData::from_slices([
                    &b"{}"[..],
                    b"",
                    "[\"\u{fc}\"]".as_bytes(),
                ])),
                ColumnType::Date => Values::Date(vec![-719_162, 0, 0]),
                ColumnType::Varchar => {
                    Values::Varchar(VarData::from_slices([&b""[..], b"", "ü".as_bytes()]))
                }
                ColumnType::Symbol => Values::Symbol(VarData::from_slices([&b""[..], b"", b"x"])),
                ColumnType::Uuid => Values::Uuid(vec![u128::MAX, 0, 0]),
                ColumnType::Decimal { .. } => Values::Decimal(vec![i128::MIN, 0, -1]),
                ColumnType::Binary | ColumnType::DoubleArray { .. } => {
                    Values::Binary(VarData::from_slices([&[0u8][..], b"", b""]))
                }
            };
            assert_eq!(values.len(), n);
            batch = batch.with(
                format!("c_{}", t.name().to_lowercase()),
                Column::with_nulls(values, nulls.clone()),
            );
        }
        append(&db, "all", batch);
        db.close().expect("close");
    }
    let db = open(dir.path());
    let rows = read_table(&db, "all");
    let expect: Vec<[&str; 3]> = vec![
        ["true", "NULL", "false"],
        ["-32768", "NULL", "0"],
        ["-2147483648", "NULL", "0"],
        ["-9223372036854775808", "NULL", "0"],
        ["NaN", "NULL", "0.0"],
        ["NaN", "NULL", "0.0"],
        ["-9223372036854775808", "NULL", "0"],
        ["-719162", "NULL", "0"],
        ["", "NULL", "ü"],
        ["", "NULL", "x"],
        [
            "ffffffffffffffffffffffffffffffff",
            "NULL",
            "00000000000000000000000000000000",
        ],
        ["[0]", "NULL", "[]"],
        ["9223372036854775807", "NULL", "0"],
        ["{}", "NULL", "[\"ü\"]"],
        ["{}", "NULL", "[\"ü\"]"],
        ["-170141183460469231731687303715884105728", "NULL", "-1"],
    ];
    for (i, e) in expect.iter().enumerate() {
        assert_eq!(rows[i], e.to_vec(), "column {}", types[i]);
    }
}

#[test]
fn a_multi_table_transaction_is_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("a"));
    create(&db, trades_def("b"));
    let ok = Transaction::new()
        .with(Request::Append {
            table: "a".into(),
            batch: trades_batch(&[T0], 0),
        })
        .with(Request::Append {
            table: "b".into(),
            batch: trades_batch(&[T0], 0),
        })
        .with(Request::CreateTable {
            def: trades_def("c"),
            if_not_exists: false,
        });
    db.commit(ok).expect("commit");
    let files_before = count_files(dir.path());
    let bad = Transaction::new()
        .with(Request::Append {
            table: "a".into(),
            batch: trades_batch(&[T0 + 1, T0 - DAY], 1),
        })
        .with(Request::CreateTable {
            def: trades_def("d"),
            if_not_exists: false,
        })
        .with(Request::Append {
            table: "b".into(),
            batch: trades_batch(&[T0 + 1], 1),
        })
        .with(Request::Append {
            table: "nope".into(),
            batch: trades_batch(&[T0 + 1], 1),
        });
    let e = db.commit(bad).expect_err("unknown table");
    assert_eq!(e.kind(), ErrorKind::UndefinedTable);
    assert!(e.to_string().contains("\"nope\""), "{e}");
    assert_eq!(column_i64(&db, "a", "seq"), vec![0]);
    assert_eq!(column_i64(&db, "b", "seq"), vec![0]);
    assert!(db.snapshot().table("d").is_none());
    assert_eq!(
        count_files(dir.path()),
        files_before,
        "a failed commit leaves no files behind"
    );
    // Symbols added by the failed commit are gone too: the next key is 1, not 3.
    append(&db, "a", trades_batch(&[T0 + 2], 5));
    let (dict, _) = db
        .snapshot()
        .table("a")
        .expect("a")
        .symbol_dictionary("sym")
        .expect("dict");
    assert_eq!(
        dict.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ["S0", "S5"]
    );
}

fn count_files(root: &std::path::Path) -> usize {
    fn walk(p: &std::path::Path, n: &mut usize) {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            *n += 1;
            if e.path().is_dir() {
                walk(&e.path(), n);
            }
        }
    }
    let mut n = 0;
    walk(&root.join("db"), &mut n);
    n
}

#[test]
fn ddl_is_transactional_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = open(dir.path());
        create(&db, trades_def("t"));
        append(
            &db,
            "t",
            trades_batch(&[T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY], 0),
        );
        db.commit(
            Transaction::new()
                .with(Request::AddColumn {
                    table: "t".into(),
                    column: ColumnDef::new("note", ColumnType::Varchar),
                })
                .with(Request::RenameColumn {
                    table: "t".into(),
                    from: "price".into(),
                    to: "px".into(),
                })
                .with(Request::DropColumn {
                    table: "t".into(),
                    column: "sym".into(),
                })
                .with(Request::RenameTable {
                    from: "t".into(),
                    to: "trades".into(),
                }),
        )
        .expect("ddl");
        let batch = Batch::new()
            .with("ts", Column::timestamps(vec![T0 + 3 * DAY + 1]))
            .with("note", Column::varchars(&["hello"]))
            .with("seq", Column::bigints(vec![4]));
        append(&db, "trades", batch);
        db.commit(Transaction::new().with(Request::DropPartitions {
            table: "trades".into(),
            which: PartitionSelector::List(vec![T0 + DAY + 5]),
        }))
        .expect("drop partition by list");
        db.commit(Transaction::new().with(Request::DropPartitions {
            table: "trades".into(),
            which: PartitionSelector::TimeRange {
                from: None,
                to: Some(T0 + 1),
            },
        }))
        .expect("drop partition by range");
        db.close().expect("close");
    }
    let db = open(dir.path());
    let snap = db.snapshot();
    assert!(snap.table("t").is_none());
    let t = snap.table("trades").expect("renamed");
    assert_eq!(
        t.meta()
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["ts", "px", "seq", "note"]
    );
    assert_eq!(
        t.partitions()
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>(),
        ["2026-11-23", "2026-11-24"]
    );
    let rows = read_table(&db, "trades");
    assert_eq!(rows[2], ["2", "3", "4"]);
    assert_eq!(
        rows[3],
        ["NULL", "NULL", "hello"],
        "added column is NULL in older rows"
    );
    // Truncate keeps the table and its schema.
    db.commit(Transaction::new().with(Request::Truncate {
        table: "trades".into(),
    }))
    .expect("truncate");
    assert_eq!(db.snapshot().table("trades").expect("t").row_count(), 0);
    append(
        &db,
        "trades",
        Batch::new()
            .with("ts", Column::timestamps(vec![T0 + 2 * DAY]))
            .with("seq", Column::bigints(vec![9])),
    );
    assert_eq!(column_i64(&db, "trades", "seq"), vec![9]);
}

#[test]
fn ddl_errors_name_the_object_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    let cases: Vec<(Request, ErrorKind, &str)> = vec![
        (
            Request::CreateTable {
                def: trades_def("T"),
                if_not_exists: false,
            },
            ErrorKind::DuplicateObject,
            "\"T\" already exists",
        ),
        (
            Request::DropTable {
                name: "x".into(),
                if_exists: false,
            },
            ErrorKind::UndefinedTable,
            "\"x\" does not exist",
        ),
        (
            Request::AddColumn {
                table: "t".into(),
                column: ColumnDef::new("PRICE", ColumnType::Int),
            },
            ErrorKind::DuplicateObject,
            "\"PRICE\"",
        ),
        (
            Request::DropColumn {
                table: "t".into(),
                column: "ts".into(),
            },
            ErrorKind::InvalidData,
            "designated timestamp",
        ),
        (
            Request::DropColumn {
                table: "t".into(),
                column: "zz".into(),
            },
            ErrorKind::UndefinedColumn,
            "\"zz\" of table \"t\"",
        ),
        (
            Request::RenameColumn {
                table: "t".into(),
                from: "sym".into(),
                to: "seq".into(),
            },
            ErrorKind::DuplicateObject,
            "\"seq\"",
        ),
        (
            Request::DropPartitions {
                table: "t".into(),
                which: PartitionSelector::List(vec![T0]),
            },
            ErrorKind::UndefinedTable,
            "partition 2026-11-21",
        ),
        (
            Request::CreateTable {
                def: TableDef {
                    name: "../evil".into(),
                    ..trades_def("x")
                },
                if_not_exists: false,
            },
            ErrorKind::InvalidName,
            "'/'",
        ),
        (
            Request::CreateTable {
                def: TableDef {
                    timestamp: None,
                    ..trades_def("p")
                },
                if_not_exists: false,
            },
            ErrorKind::InvalidData,
            "PARTITION BY DAY needs a designated timestamp",
        ),
        (
            Request::Append {
                table: "t".into(),
                batch: Batch::new().with("seq", Column::bigints(vec![1])),
            },
            ErrorKind::NotNullViolation,
            "null value in designated timestamp column \"ts\"",
        ),
        (
            Request::Append {
                table: "t".into(),
                batch: Batch::new().with("ts", Column::doubles(vec![1.0])),
            },
            ErrorKind::InvalidData,
            "column \"ts\" is of type TIMESTAMP, but the value is of type DOUBLE",
        ),
    ];
    let seq = db.snapshot().seq();
    for (req, kind, text) in cases {
        let e = db
            .commit(Transaction::new().with(req.clone()))
            .expect_err(&format!("{req:?}"));
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(text), "{e:?} should mention {text}");
    }
    assert_eq!(
        db.snapshot().seq(),
        seq,
        "no failed request committed anything"
    );
    // IF [NOT] EXISTS turn those into no-ops.
    let r = db
        .commit(
            Transaction::new()
                .with(Request::CreateTable {
                    def: trades_def("t"),
                    if_not_exists: true,
                })
                .with(Request::DropTable {
                    name: "x".into(),
                    if_exists: true,
                }),
        )
        .expect("no-op");
    assert_eq!(r.seq, None);
}

#[test]
fn hostile_names_stay_inside_their_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    for name in [
        "..x",
        "a.b",
        "Ünïcödé ✓",
        "select",
        "quote\"d",
        &"n".repeat(127),
        "%2F",
        "CON",
    ] {
        let mut def = trades_def(name);
        def.columns
            .push(ColumnDef::new("cölumn ✓ ..", ColumnType::Varchar));
        create(&db, def);
        append(&db, name, trades_batch(&[T0], 0));
    }
    for e in std::fs::read_dir(dir.path().join("db"))
        .expect("db")
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(
            n == "_tables"
                || n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-%~".contains(&b)),
            "{n}"
        );
    }
    assert_eq!(db.snapshot().table_names().len(), 8);
    // Names differing only in case are the same name.
    let e = db.commit(Transaction::new().with(Request::CreateTable {
        def: trades_def("SELECT"),
        if_not_exists: false,
    }));
    assert_eq!(e.expect_err("duplicate").kind(), ErrorKind::DuplicateObject);
}

#[test]
fn replace_partition_rewrites_rows_for_update_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    append(&db, "t", trades_batch(&[T0, T0 + 1, T0 + DAY], 0));
    db.commit(Transaction::new().with(Request::ReplacePartition {
        table: "t".into(),
        at: T0,
        batch: trades_batch(&[T0 + 1], 10),
    }))
    .expect("replace");
    assert_eq!(column_i64(&db, "t", "seq"), vec![10, 2]);
    db.commit(Transaction::new().with(Request::ReplacePartition {
        table: "t".into(),
        at: T0 + DAY,
        batch: Batch::new(),
    }))
    .expect("delete all rows of a partition");
    assert_eq!(db.snapshot().table("t").expect("t").partitions().len(), 1);
    let e = db
        .commit(Transaction::new().with(Request::ReplacePartition {
            table: "t".into(),
            at: T0,
            batch: trades_batch(&[T0 + DAY], 0),
        }))
        .expect_err("row outside the partition");
    assert!(
        e.to_string()
            .contains("does not belong to partition 2026-11-21"),
        "{e}"
    );
}

#[test]
fn a_second_opener_is_told_who_holds_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _db = open(dir.path());
    let e = Database::open(dir.path(), options()).expect_err("locked");
    assert_eq!(e.kind(), ErrorKind::Locked);
    let msg = e.to_string();
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    assert!(
        msg.contains(
            &dir.path()
                .canonicalize()
                .expect("canon")
                .display()
                .to_string()
        ),
        "{msg}"
    );
}

#[test]
fn concurrent_committers_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(open(dir.path()));
    for w in 0..8 {
        create(&db, trades_def(&format!("t{w}")));
    }
    let before = db.stats().wal_fsyncs;
    let threads: Vec<_> = (0..8)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    append(&db, &format!("t{w}"), trades_batch(&[T0 + i], i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let fsyncs = db.stats().wal_fsyncs - before;
    assert!(
        fsyncs < 400,
        "400 commits took {fsyncs} fsyncs: group commit is not sharing"
    );
    for w in 0..8 {
        assert_eq!(
            column_i64(&db, &format!("t{w}"), "seq"),
            (0..50).collect::<Vec<_>>()
        );
    }
}

#[test]
fn snapshots_are_stable_while_writers_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    append(&db, "t", trades_batch(&[T0, T0 + 1], 0));
    let snap = db.snapshot();
    append(&db, "t", trades_batch(&[T0 + 2], 2));
    db.commit(Transaction::new().with(Request::DropTable {
        name: "t".into(),
        if_exists: false,
    }))
    .expect("drop");
    db.run_housekeeping().expect("housekeeping");
    let t = snap.table("t").expect("still in the snapshot");
    assert_eq!(t.row_count(), 2);
    assert_eq!(
        strings(&t.read_column(0, "seq", 0..2).expect("read")),
        ["0", "1"]
    );
    let chunk = t.column_chunk(0, "ts").expect("mmap");
    assert_eq!(
        chunk.data.len(),
        16,
        "fixed-width data is handed out zero-copy"
    );
    drop(snap);
    db.run_housekeeping().expect("housekeeping");
    assert!(
        dir.path().join("db/t~1").exists(),
        "a table reader pins its snapshot"
    );
    assert_eq!(
        strings(&t.read_column(0, "seq", 0..2).expect("read")),
        ["0", "1"]
    );
    drop((t, chunk));
    db.run_housekeeping().expect("housekeeping");
    assert!(
        !dir.path().join("db/t~1").exists(),
        "dropped table's files reclaimed"
    );
}

#[test]
fn timestamp_row_range_uses_the_sorted_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    let ts: Vec<i64> = (0..1000).map(|i| T0 + i * 10).collect();
    append(&db, "t", trades_batch(&ts, 0));
    let snap = db.snapshot();
    let t = snap.table("t").expect("t");
    assert_eq!(
        t.timestamp_row_range(0, T0 + 95, T0 + 200).expect("range"),
        10..20
    );
    assert_eq!(t.timestamp_row_range(0, T0 - 5, T0).expect("range"), 0..0);
    assert_eq!(
        t.timestamp_row_range(0, T0 + 20_000, T0 + 30_000)
            .expect("range"),
        1000..1000
    );
}

#[test]
fn paused_housekeeping_deletes_nothing_not_even_the_wal_until_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        dir.path(),
        StorageOptions {
            wal_segment_bytes: 1024,
            ..options()
        },
    )
    .expect("open");
    create(&db, trades_def("t"));
    db.pause_housekeeping();
    for i in 0..40 {
        append(
            &db,
            "t",
            trades_batch(&[T0 + i * 100, T0 + i * 100 + 1, T0 - DAY + 40 - i], i * 3),
        );
    }
    let segments = db.wal_segments();
    assert!(segments > 3, "small segments rotate ({segments})");
    let garbage = db.pending_garbage();
    assert!(!garbage.is_empty() && garbage.iter().all(|p| p.exists()));
    db.run_housekeeping().expect("housekeeping");
    // Paused (checkpoint mode): no file under the root may vanish under a copy,
    // not even WAL segments that no cut needs.
    assert_eq!(db.wal_segments(), segments, "paused: WAL kept");
    assert!(
        garbage.iter().all(|p| p.exists()),
        "paused: old versions kept"
    );
    db.resume_housekeeping();
    db.run_housekeeping().expect("housekeeping");
    assert_eq!(db.wal_segments(), 1, "resumed: WAL recycled");
    assert!(garbage.iter().all(|p| !p.exists()));
    assert_eq!(column_i64(&db, "t", "seq").len(), 120);
}

#[test]
fn async_and_nosync_modes_commit_and_reopen() {
    for mode in [CommitMode::Async, CommitMode::NoSync] {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Database::open(
                dir.path(),
                StorageOptions {
                    commit_mode: mode,
                    ..Default::default()
                },
            )
            .expect("open");
            create(&db, trades_def("t"));
            for i in 0..20 {
                append(&db, "t", trades_batch(&[T0 + i], i));
            }
            assert_eq!(
                column_i64(&db, "t", "seq").len(),
                20,
                "{mode:?}: visible at once"
            );
            if mode == CommitMode::Async {
                let target = db.snapshot().seq();
                wait_until(
                    || db.durable_wal_seq() >= target,
                    "the background WAL sync catches up",
                );
            }
        }
        let db = open(dir.path());
        assert_eq!(
            column_i64(&db, "t", "seq"),
            (0..20).collect::<Vec<_>>(),
            "{mode:?}"
        );
    }
}

#[test]
fn background_housekeeping_flushes_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        dir.path(),
        StorageOptions {
            housekeeping_interval: std::time::Duration::from_millis(20),
            ..Default::default()
        },
    )
    .expect("open");
    create(&db, trades_def("t"));
    let seq = append(&db, "t", trades_batch(&[T0], 0)).seq.expect("seq");
    wait_until(
        || db.stats().durable_seq >= seq,
        "housekeeping flushes the table files",
    );
    assert!(dir.path().join("db/t~1/_txn").exists());
}

#[test]
fn late_rows_split_a_large_partition_instead_of_copying_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        dir.path(),
        StorageOptions {
            split_min_rows: 100,
            ..options()
        },
    )
    .expect("open");
    create(&db, trades_def("t"));
    let ts: Vec<i64> = (0..1000).map(|i| T0 + i * 1000).collect();
    append(&db, "t", trades_batch(&ts, 0));
    let head = dir.path().join("db/t~1/2026-11-21/price~2.d");
    let head_bytes = std::fs::read(&head).expect("read");
    // Late rows falling among the last 10 rows: only the tail is rewritten.
    let seq = append(&db, "t", trades_batch(&[T0 + 995_500, T0 + 991_500], 1000))
        .seq
        .expect("seq");
    let parts = db.snapshot().table("t").expect("t").parts();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(
        (parts[0].dir_name.as_str(), parts[0].rows),
        ("2026-11-21", 992)
    );
    assert_eq!(
        (parts[1].dir_name.clone(), parts[1].rows),
        (format!("2026-11-21.{seq}"), 10)
    );
    assert!(
        parts.iter().all(|p| p.name == "2026-11-21"),
        "parts share their partition's name"
    );
    assert_eq!(
        std::fs::read(&head).expect("read"),
        head_bytes,
        "the head part's bytes are untouched"
    );
    let tail_bytes = std::fs::metadata(
        dir.path()
            .join(format!("db/t~1/{}/price~2.d", parts[1].dir_name)),
    )
    .expect("tail")
    .len();
    assert_eq!(tail_bytes, 10 * 8, "only the tail was copied");
    let expect_seq: Vec<i64> = (0..992)
        .chain([1001])
        .chain(992..996)
        .chain([1000])
        .chain(996..1000)
        .collect();
    assert_eq!(column_i64(&db, "t", "seq"), expect_seq);
    // New rows after the tail append to the tail part; rows into the head (read-only) go to a new merge.
    append(&db, "t", trades_batch(&[T0 + 2_000_000], 1002));
    append(&db, "t", trades_batch(&[T0 + 500], 1003));
    db.run_housekeeping().expect("housekeeping");
    db.close().expect("close");
    let db = open(dir.path());
    let seqs = column_i64(&db, "t", "seq");
    assert_eq!(seqs.len(), 1004);
    assert_eq!(&seqs[..3], &[0, 1003, 1]);
    assert_eq!(*seqs.last().expect("last"), 1002);
    let ts = column_i64(&db, "t", "ts");
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn rows_a_little_late_rewrite_only_what_they_overtake_and_parts_stay_few() {
    // Concurrent writers commit single rows slightly out of order: each late row
    // must cost a rewrite of the few rows it overtakes, not of the whole tail part,
    // and the small parts this leaves must not pile up.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    let mut expected = Vec::new();
    let mut rewritten = 0;
    for i in 0..3000i64 {
        // Every other row lands up to 8 rows before the newest.
        let ts = T0 + i * 1000 - if i % 2 == 1 { (i % 9) * 1000 + 500 } else { 0 };
        expected.push(ts);
        let seq = append(&db, "t", trades_batch(&[ts], i)).seq.expect("seq");
        // Rows of the part this commit wrote, if it wrote one: what it rewrote.
        let parts = db.snapshot().table("t").expect("t").parts();
        rewritten += parts
            .iter()
            .filter(|p| p.dir_name.ends_with(&format!(".{seq}")))
            .map(|p| p.rows)
            .sum::<u64>();
    }
    let parts = db.snapshot().table("t").expect("t").parts();
    assert!(parts.len() <= 16, "{} parts: {parts:?}", parts.len());
    expected.sort();
    assert_eq!(column_i64(&db, "t", "ts"), expected);
    db.run_housekeeping().expect("housekeeping");
    db.close().expect("close");
    let db = open(dir.path());
    assert_eq!(column_i64(&db, "t", "ts"), expected, "after reopening");
    // Rewriting the whole tail part each time would copy about 750 rows per commit.
    let per_commit = rewritten / 3000;
    assert!(per_commit < 40, "{per_commit} rows rewritten per commit");
}

#[test]
fn a_transaction_sees_its_own_writes_and_writes_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        dir.path(),
        StorageOptions {
            split_min_rows: 2,
            ..options()
        },
    )
    .expect("open");
    create(&db, trades_def("t"));
    append(&db, "t", trades_batch(&[T0, T0 + 10, T0 + 20, T0 + DAY], 0));
    db.run_housekeeping().expect("housekeeping");
    let files_before = walk(&dir.path().join("db"));
    let mut tx = Transaction::new();
    db.stage(
        &mut tx,
        vec![Request::Append {
            table: "t".into(),
            batch: trades_batch(&[T0 + 15, T0 + 30, T0 + DAY + 1], 100),
        }],
    )
    .expect("stage rows");
    db.stage(
        &mut tx,
        vec![
            Request::CreateTable {
                def: trades_def("n"),
                if_not_exists: false,
            },
            Request::Append {
                table: "n".into(),
                batch: trades_batch(&[T0], 7),
            },
            Request::AddColumn {
                table: "t".into(),
                column: ColumnDef::new("tag", ColumnType::Symbol),
            },
        ],
    )
    .expect("stage DDL");
    // A request that cannot be staged is refused and leaves the transaction as it was.
    let e = db
        .stage(
            &mut tx,
            vec![Request::Append {
                table: "missing".into(),
                batch: trades_batch(&[T0], 0),
            }],
        )
        .expect_err("unknown table");
    assert_eq!(e.kind(), ErrorKind::UndefinedTable);
    assert_eq!(tx.requests.len(), 4);
    let view = db.transaction_snapshot(&tx, false).expect("view");
    let t = view.table("t").expect("t");
    let seq: Vec<String> = strings(&t.read_all().expect("read")[3]);
    assert_eq!(
        seq,
        ["0", "1", "100", "2", "101", "3", "102"],
        "own writes, merged in timestamp order"
    );
    assert_eq!(
        strings(&t.read_all().expect("read")[4]),
        ["NULL"; 7],
        "the added column reads NULL"
    );
    assert_eq!(
        strings(
            &view
                .table("n")
                .expect("new table")
                .read_all()
                .expect("read")[3]
        ),
        ["7"]
    );
    assert_eq!(
        column_i64(&db, "t", "seq"),
        vec![0, 1, 2, 3],
        "others see only committed rows"
    );
    assert!(db.snapshot().table("n").is_none());
    // A commit while the view lives does not disturb it, nor it the commit; a
    // fresh view sees the commit too.
    append(&db, "t", trades_batch(&[T0 + DAY + 5], 4));
    assert_eq!(strings(&t.read_all().expect("read")[3]).len(), 7);
    assert_eq!(column_i64(&db, "t", "seq"), vec![0, 1, 2, 3, 4]);
    let fresh = db.transaction_snapshot(&tx, true).expect("fresh view");
    assert_eq!(fresh.table("t").expect("t").row_count(), 8);
    drop((t, view, fresh));
    // Staging wrote nothing: the files are exactly those the commits wrote.
    db.run_housekeeping().expect("housekeeping");
    let after: Vec<std::path::PathBuf> = walk(&dir.path().join("db"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for (path, bytes) in &files_before {
        // Table states are replaced whole by flushes; column and symbol files grow.
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        {
            continue;
        }
        let now = std::fs::read(path).expect("still there");
        assert_eq!(
            &now[..bytes.len()],
            &bytes[..],
            "{} changed",
            path.display()
        );
    }
    assert!(
        !after.iter().any(|p| p.to_string_lossy().contains("n~")),
        "the transaction's new table exists in memory only: {after:?}"
    );
    db.commit(tx).expect("the transaction itself commits");
    assert_eq!(
        column_i64(&db, "t", "seq"),
        vec![0, 1, 100, 2, 101, 3, 102, 4]
    );
    assert_eq!(column_i64(&db, "n", "seq"), vec![7]);
}

fn walk(p: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).expect("read_dir").flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path(), std::fs::read(e.path()).expect("read")));
        }
    }
    out
}

#[test]
fn a_full_write_buffer_slows_writers_down_and_holds_its_limit() {
    // A buffer of 64 KiB, applied only when full (the apply thread's interval is
    // an hour): writers must wait for the apply rather than grow the buffer.
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = 64 << 10;
    let db = Arc::new(
        Database::open(
            dir.path(),
            StorageOptions {
                write_buffer_bytes: limit,
                apply_interval: std::time::Duration::from_secs(3600),
                background_apply: true,
                ..options()
            },
        )
        .expect("open"),
    );
    create(&db, trades_def("t"));
    let highest = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..4i64)
        .map(|w| {
            let (db, highest) = (db.clone(), highest.clone());
            std::thread::spawn(move || {
                for i in 0..200i64 {
                    let n = w * 1000 + i;
                    let ts: Vec<i64> = (0..20).map(|k| T0 + n * 100 + k).collect();
                    append_buffered(&db, "t", trades_batch(&ts, n * 20));
                    highest.fetch_max(
                        db.stats().buffered_bytes,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let stats = db.stats();
    assert!(stats.applies > 0, "the buffer filled up and was applied");
    // The limit holds up to the commits admitted before it was reached (one per writer).
    let highest = highest.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        highest < 2 * limit,
        "the buffer grew to {highest} bytes over a limit of {limit}"
    );
    assert_eq!(
        db.snapshot().table("t").expect("t").row_count(),
        4 * 200 * 20
    );
    // Without the apply thread, a writer that meets a full buffer applies it itself.
    drop(db);
    let db = Database::open(
        dir.path(),
        StorageOptions {
            write_buffer_bytes: limit,
            ..options()
        },
    )
    .expect("reopen");
    for i in 0..100i64 {
        let ts: Vec<i64> = (0..20).map(|k| T0 + DAY + i * 100 + k).collect();
        append_buffered(&db, "t", trades_batch(&ts, 100_000 + i * 20));
        assert!(db.stats().buffered_bytes < 2 * limit);
    }
    assert_eq!(
        db.snapshot().table("t").expect("t").row_count(),
        4 * 200 * 20 + 2000
    );
}

/// `trades_def` with a TIMESTAMP_NS designated timestamp.
fn nanosecond_trades_def(name: &str) -> TableDef {
    let mut def = trades_def(name);
    def.columns[0].column_type = ColumnType::TimestampNs;
    def
}

/// `trades_batch` with nanosecond timestamps.
fn nanosecond_batch(ts_nanos: &[i64], seq0: i64) -> Batch {
    let seq: Vec<i64> = (0..ts_nanos.len() as i64).map(|i| seq0 + i).collect();
    let syms: Vec<String> = seq.iter().map(|s| format!("S{s}")).collect();
    Batch::new()
        .with("ts", Column::new(Values::BigInt(ts_nanos.to_vec())))
        .with("sym", Column::symbols(&syms))
        .with("seq", Column::bigints(seq))
}

#[test]
fn a_nanosecond_designated_timestamp_partitions_orders_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day_ns = DAY * 1_000;
    let t0 = T0 * 1_000;
    {
        let db = open(dir.path());
        create(&db, nanosecond_trades_def("t"));
        // The last nanosecond of the first day, and the two first of the next.
        append(
            &db,
            "t",
            nanosecond_batch(&[t0 + day_ns + 2, t0 + day_ns - 1], 0),
        );
        // A row late by one nanosecond is merged in; one stays buffered.
        append(&db, "t", nanosecond_batch(&[t0 + day_ns + 1], 2));
        append_buffered(&db, "t", nanosecond_batch(&[t0 + day_ns], 3));
        let snap = db.snapshot();
        let t = snap.table("t").expect("t");
        let parts = t.partitions();
        assert_eq!(
            parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["2026-11-21", "2026-11-22"],
            "partitions cut at midnight, counted in nanoseconds"
        );
        assert_eq!((parts[0].start, parts[0].end), (t0, t0 + day_ns));
        assert_eq!(
            (parts[1].min_ts, parts[1].max_ts),
            (t0 + day_ns, t0 + day_ns + 2)
        );
        // A range in nanoseconds keeps exactly the rows within it.
        let plan = t.scan(t0 + day_ns, t0 + day_ns + 2).expect("scan");
        assert_eq!(plan.rows(), 2);
        db.close().expect("close");
    }
    let db = open(dir.path());
    assert_eq!(
        column_i64(&db, "t", "ts"),
        [
            t0 + day_ns - 1,
            t0 + day_ns,
            t0 + day_ns + 1,
            t0 + day_ns + 2
        ]
    );
    assert_eq!(column_i64(&db, "t", "seq"), [1, 3, 2, 0]);
    // Partitions are named and dropped by a time in the table's unit.
    db.commit(Transaction::new().with(Request::DropPartitions {
        table: "t".into(),
        which: PartitionSelector::List(vec![t0 + 5]),
    }))
    .expect("drop the first day");
    assert_eq!(column_i64(&db, "t", "seq"), [3, 2, 0]);
    // A partition is replaced only by rows of its own nanosecond range.
    let replace = |ts: i64| {
        db.commit(Transaction::new().with(Request::ReplacePartition {
            table: "t".into(),
            at: t0 + day_ns,
            batch: nanosecond_batch(&[ts], 9),
        }))
    };
    assert!(replace(t0 + day_ns - 1).is_err(), "a row of the day before");
    replace(t0 + day_ns + 7).expect("a row of the day");
    assert_eq!(column_i64(&db, "t", "ts"), [t0 + day_ns + 7]);
}

#[test]
fn a_ttl_on_a_nanosecond_table_counts_in_nanoseconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, nanosecond_trades_def("t"));
    let day_ns = DAY * 1_000;
    let ts: Vec<i64> = (0..5).map(|d| T0 * 1_000 + d * day_ns + 1).collect();
    append(&db, "t", nanosecond_batch(&ts, 0));
    db.commit(Transaction::new().with(Request::SetTtl {
        table: "t".into(),
        ttl: Some(Ttl {
            count: 2,
            unit: TtlUnit::Day,
        }),
    }))
    .expect("ttl");
    // Two days behind the newest row (the 25th, just after midnight): the
    // 21st and 22nd end by then, the 23rd does not.
    assert_eq!(db.drop_expired_partitions().expect("drop"), 2);
    assert_eq!(column_i64(&db, "t", "seq"), [2, 3, 4]);
}
