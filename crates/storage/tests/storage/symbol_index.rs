//! Symbol indexes: kept on every write path (appends, late rows merged into
//! new parts and kept prefixes, new columns), built by ADD INDEX over stored
//! rows, dropped as garbage, recovered and restored like every column file.

use std::path::Path;

use tidemark_storage::*;

use crate::common::*;

fn add_index(table: &str, column: &str, name: Option<&str>) -> Request {
    Request::AddIndex {
        table: table.into(),
        column: column.into(),
        name: name.map(String::from),
        if_not_exists: false,
    }
}

fn drop_index(name: &str) -> Request {
    Request::DropIndex {
        target: IndexTarget::Name(name.into()),
        if_exists: false,
    }
}

fn index_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for table in std::fs::read_dir(root.join("db")).expect("db").flatten() {
        if !table.path().is_dir() {
            continue;
        }
        for part in std::fs::read_dir(table.path()).expect("table").flatten() {
            if !part.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(part.path()).expect("part").flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".k") {
                    out.push(format!("{}/{name}", part.file_name().to_string_lossy()));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_index_follows_appends_late_rows_and_kept_prefixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        dir.path(),
        StorageOptions {
            split_min_rows: 4,
            ..options()
        },
    )
    .expect("open");
    create(&db, indexed(trades_def("t")));
    let ts: Vec<i64> = (0..40).map(|i| T0 + i * HOUR).collect();
    append(&db, "t", trades_batch(&ts, 0));
    assert_index_matches_keys(&db, "t", "sym");
    // In order: appended in place, one more block.
    append(
        &db,
        "t",
        trades_batch(&[T0 + 41 * HOUR, T0 + 42 * HOUR], 40),
    );
    assert_index_matches_keys(&db, "t", "sym");
    // Late rows: the day's tail is rewritten as a new part, its head kept as
    // a prefix of the old directory (whose index covers more rows).
    append(&db, "t", trades_batch(&[T0 + 20 * HOUR + 1, T0 + 3], 42));
    assert_index_matches_keys(&db, "t", "sym");
    // A second SYMBOL column, indexed from its creation, added with rows
    // stored before it (its top).
    let mut venue = ColumnDef::new("venue", ColumnType::Symbol);
    venue.indexed = true;
    db.commit(Transaction::new().with(Request::AddColumn {
        table: "t".into(),
        column: venue,
    }))
    .expect("add column");
    let batch = trades_batch(&[T0 + 43 * HOUR, T0 + 44 * HOUR], 44).with(
        "venue",
        Column::symbols(&["X".to_string(), "Y".to_string()]),
    );
    append(&db, "t", batch);
    assert_index_matches_keys(&db, "t", "venue");
    let before = read_table(&db, "t");
    db.close().expect("close");

    // Recovery checks and keeps the index files.
    let db = open(dir.path());
    assert_eq!(read_table(&db, "t"), before);
    assert_index_matches_keys(&db, "t", "sym");
    assert_index_matches_keys(&db, "t", "venue");
    let snap = db.snapshot();
    let t = snap.table("t").expect("t");
    let names: Vec<Option<String>> = t
        .meta()
        .columns
        .iter()
        .map(|c| c.index.as_ref().map(|i| i.name.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            None,
            Some("t_sym_idx".into()),
            None,
            None,
            Some("t_venue_idx".into())
        ]
    );
    db.close().expect("close");
}

#[test]
fn add_index_builds_over_stored_rows_and_drop_index_leaves_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    let ts: Vec<i64> = (0..30).map(|i| T0 + i * 2 * HOUR).collect();
    append(&db, "t", trades_batch(&ts, 0));
    // Rows still in the write buffer are applied before the index is built.
    append_buffered(&db, "t", trades_batch(&[T0 + 61 * HOUR], 30));
    db.commit(Transaction::new().with(add_index("t", "sym", Some("by_sym"))))
        .expect("add index");
    assert_index_matches_keys(&db, "t", "sym");
    assert_eq!(
        index_files(dir.path()).len(),
        3,
        "{:?}",
        index_files(dir.path())
    );
    // Rows after the index extend it.
    append(&db, "t", trades_batch(&[T0 + 62 * HOUR, T0 + 5], 31));
    assert_index_matches_keys(&db, "t", "sym");

    // What a client can get wrong.
    let err = |r: Request| db.commit(Transaction::new().with(r)).expect_err("refused");
    let e = err(add_index("t", "price", None));
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(
        e.to_string().contains("only SYMBOL columns can be indexed"),
        "{e}"
    );
    let e = err(add_index("t", "sym", None));
    assert!(
        e.to_string().contains("already indexed (index \"by_sym\")"),
        "{e}"
    );
    create(&db, trades_def("u"));
    let e = err(add_index("u", "sym", Some("BY_SYM")));
    assert_eq!(e.kind(), ErrorKind::DuplicateObject);
    assert_eq!(e.to_string(), "index \"BY_SYM\" already exists");
    let e = err(add_index("u", "nope", None));
    assert_eq!(e.kind(), ErrorKind::UndefinedColumn);
    let e = err(drop_index("nope"));
    assert_eq!(e.kind(), ErrorKind::UndefinedObject);
    assert_eq!(e.to_string(), "index \"nope\" does not exist");
    db.commit(Transaction::new().with(Request::DropIndex {
        target: IndexTarget::Name("nope".into()),
        if_exists: true,
    }))
    .expect("IF EXISTS");

    // DROP INDEX: the files stay until housekeeping reclaims them.
    let files = index_files(dir.path());
    db.commit(Transaction::new().with(drop_index("By_Sym")))
        .expect("drop");
    let snap = db.snapshot();
    let t = snap.table("t").expect("t");
    assert!(t.symbol_index(0, "sym").expect("read").is_none());
    drop(snap);
    assert_eq!(index_files(dir.path()), files);
    db.run_housekeeping().expect("housekeeping");
    assert!(
        index_files(dir.path()).is_empty(),
        "{:?}",
        index_files(dir.path())
    );
    // A new index has new files; reopening keeps it.
    db.commit(Transaction::new().with(add_index("t", "sym", None)))
        .expect("add again");
    assert_index_matches_keys(&db, "t", "sym");
    db.close().expect("close");
    let db = open(dir.path());
    assert_index_matches_keys(&db, "t", "sym");
    db.close().expect("close");
}

#[test]
fn a_copy_in_checkpoint_mode_restores_the_index_of_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = open(&root);
    create(&db, indexed(trades_def("t")));
    let ts: Vec<i64> = (0..20).map(|i| T0 + i * HOUR).collect();
    append(&db, "t", trades_batch(&ts, 0));
    let cut = read_table(&db, "t");
    db.checkpoint_create().expect("checkpoint");
    // After the cut: the index grows past its committed length, then is
    // dropped and built again under a new name.
    append(&db, "t", trades_batch(&[T0 + 21 * HOUR], 20));
    db.commit(Transaction::new().with(drop_index("t_sym_idx")))
        .expect("drop");
    db.commit(Transaction::new().with(add_index("t", "sym", Some("again"))))
        .expect("add");
    db.run_housekeeping()
        .expect("housekeeping keeps what the cut needs");
    let copy = dir.path().join("copy");
    copy_root(&root, &copy);
    db.checkpoint_release().expect("release");
    db.close().expect("close");
    touch_restore(&copy);
    let restored = open(&copy);
    assert_eq!(read_table(&restored, "t"), cut);
    assert_index_matches_keys(&restored, "t", "sym");
    let snap = restored.snapshot();
    let meta = snap.table("t").expect("t").meta().clone();
    assert_eq!(
        meta.columns[1].index.as_ref().map(|i| i.name.as_str()),
        Some("t_sym_idx")
    );
    drop(snap);
    restored.run_housekeeping().expect("housekeeping");
    assert_eq!(index_files(&copy).len(), 1, "{:?}", index_files(&copy));
    restored.close().expect("close");
}
