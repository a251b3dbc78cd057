//! Views at the storage level: kept in the registry beside the tables, sharing
//! their names, carried by WAL replay, reopen, checkpoint cuts and restore.

use tidemark_storage::*;

use crate::common::*;

fn put_view(db: &Database, name: &str, definition: &str, mode: ViewMode) -> Result<CommitReceipt> {
    db.commit(Transaction::new().with(Request::CreateView {
        name: name.into(),
        definition: definition.into(),
        mode,
    }))
}

fn drop_view(db: &Database, name: &str, if_exists: bool) -> Result<CommitReceipt> {
    db.commit(Transaction::new().with(Request::DropView {
        name: name.into(),
        if_exists,
    }))
}

/// (name, definition) of every view, by name.
fn views(db: &Database) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = db
        .snapshot()
        .views()
        .into_iter()
        .map(|v| (v.name, v.definition))
        .collect();
    v.sort();
    v
}

fn pair(name: &str, definition: &str) -> (String, String) {
    (name.to_string(), definition.to_string())
}

#[test]
fn views_share_names_with_tables_and_follow_their_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir.path().join("root"));
    create(&db, trades_def("trades"));
    put_view(&db, "Hourly", "SELECT 1", ViewMode::Create).expect("create");
    let err = put_view(&db, "hourly", "SELECT 2", ViewMode::Create).expect_err("exists");
    assert_eq!(err.kind(), ErrorKind::DuplicateObject, "{err}");
    put_view(&db, "HOURLY", "SELECT 2", ViewMode::IfNotExists).expect("if not exists");
    assert_eq!(views(&db), [pair("Hourly", "SELECT 1")]);
    put_view(&db, "hourly", "SELECT 3", ViewMode::OrReplace).expect("replace");
    assert_eq!(
        views(&db),
        [pair("Hourly", "SELECT 3")],
        "the name stays as first written"
    );
    put_view(&db, "hourly", "SELECT 4", ViewMode::Alter).expect("alter");
    assert_eq!(views(&db), [pair("Hourly", "SELECT 4")]);
    let err = put_view(&db, "nope", "SELECT 1", ViewMode::Alter).expect_err("alter a missing view");
    assert_eq!(err.kind(), ErrorKind::UndefinedTable, "{err}");

    // One namespace: a view cannot take a table's name, nor a table a view's.
    let err = put_view(&db, "TRADES", "SELECT 1", ViewMode::OrReplace).expect_err("a table's name");
    assert_eq!(err.kind(), ErrorKind::DuplicateObject, "{err}");
    let err = db
        .commit(Transaction::new().with(Request::CreateTable {
            def: trades_def("hourly"),
            if_not_exists: false,
        }))
        .expect_err("a view's name");
    assert_eq!(err.kind(), ErrorKind::DuplicateObject, "{err}");
    let err = db
        .commit(Transaction::new().with(Request::RenameTable {
            from: "trades".into(),
            to: "hourly".into(),
        }))
        .expect_err("rename onto a view");
    assert_eq!(err.kind(), ErrorKind::DuplicateObject, "{err}");
    // The wrong DROP names the right one.
    let err = db
        .commit(Transaction::new().with(Request::DropTable {
            name: "hourly".into(),
            if_exists: true,
        }))
        .expect_err("DROP TABLE of a view");
    assert_eq!(err.kind(), ErrorKind::WrongObjectType, "{err}");
    assert!(err.to_string().contains("DROP VIEW"), "{err}");
    let err = drop_view(&db, "trades", true).expect_err("DROP VIEW of a table");
    assert_eq!(err.kind(), ErrorKind::WrongObjectType, "{err}");
    assert!(err.to_string().contains("DROP TABLE"), "{err}");

    drop_view(&db, "hourly", false).expect("drop");
    drop_view(&db, "hourly", true).expect("drop if exists");
    let err = drop_view(&db, "hourly", false).expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::UndefinedTable, "{err}");
    assert!(views(&db).is_empty());
    // The name is free again, for a table too.
    create(&db, trades_def("hourly"));
}

#[test]
fn views_survive_replay_reopen_and_restore_to_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = open(&root);
    create(&db, trades_def("trades"));
    put_view(&db, "a", "SELECT ts FROM trades", ViewMode::Create).expect("a");
    put_view(&db, "b", "SELECT price FROM trades", ViewMode::Create).expect("b");
    put_view(&db, "a", "SELECT sym FROM trades", ViewMode::OrReplace).expect("replace a");
    let before = vec![
        pair("a", "SELECT sym FROM trades"),
        pair("b", "SELECT price FROM trades"),
    ];

    // A copy of the running root has the views in its WAL only: replay finds them.
    let replayed = dir.path().join("replayed");
    copy_root(&root, &replayed);
    assert_eq!(views(&open(&replayed)), before);

    // Flushed into the registry, they survive a clean reopen.
    db.run_housekeeping().expect("flush");
    db.close().expect("close");
    let db = open(&root);
    assert_eq!(views(&db), before);

    // A checkpoint's cut holds the views of its moment.
    db.checkpoint_create().expect("create");
    drop_view(&db, "b", false).expect("drop b");
    put_view(&db, "a", "SELECT 1", ViewMode::Alter).expect("alter a");
    put_view(&db, "c", "SELECT 2", ViewMode::Create).expect("create c");
    db.run_housekeeping().expect("flush");
    let copy = dir.path().join("copy");
    copy_root(&root, &copy);
    touch_restore(&copy);
    let restored = open(&copy);
    assert_eq!(views(&restored), before);
    // The restored copy's own changes stick.
    put_view(&restored, "d", "SELECT 3", ViewMode::Create).expect("create d");
    restored.close().expect("close");
    assert_eq!(views(&open(&copy)).len(), 3);
    assert_eq!(
        views(&db),
        [pair("a", "SELECT 1"), pair("c", "SELECT 2")],
        "the original goes on"
    );
}
