//! Checkpoint mode and restore at the storage level: the cut, what housekeeping
//! keeps during the mode, the mode surviving a restart, and restoring a copy.

use std::path::Path;

use tidemark_storage::*;

use crate::common::*;

fn table_names(db: &Database) -> Vec<String> {
    let mut names: Vec<String> = db
        .snapshot()
        .tables()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_copy_taken_in_checkpoint_mode_restores_exactly_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = open(&root);
    for t in ["a", "b", "c"] {
        create(&db, trades_def(t));
    }
    append(&db, "a", trades_batch(&[T0, T0 + 10, T0 + DAY], 0));
    // One commit across two tables.
    db.commit(
        Transaction::new()
            .with(Request::Append {
                table: "a".into(),
                batch: trades_batch(&[T0 + DAY + 1], 3),
            })
            .with(Request::Append {
                table: "b".into(),
                batch: trades_batch(&[T0], 3),
            }),
    )
    .expect("commit");
    append(&db, "c", trades_batch(&[T0, T0 + 1], 0));
    let cut_a = read_table(&db, "a");
    let cut_b = read_table(&db, "b");
    let cut_c = read_table(&db, "c");

    let seq = db.checkpoint_create().expect("create");
    let status = db.checkpoint_status();
    assert!(status.in_progress && status.tables == 3, "{status:?}");
    assert_eq!(status.seq, Some(seq));
    let err = db.checkpoint_create().expect_err("only one checkpoint");
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.to_string().contains("CHECKPOINT RELEASE"), "{err}");

    // After the cut: appends, an out-of-order row into an older partition, DDL.
    append(&db, "a", trades_batch(&[T0 + 2 * DAY], 4));
    append(&db, "a", trades_batch(&[T0 + 5], 5));
    db.commit(Transaction::new().with(Request::DropTable {
        name: "b".into(),
        if_exists: false,
    }))
    .expect("drop");
    db.commit(Transaction::new().with(Request::Truncate { table: "c".into() }))
        .expect("truncate");
    db.commit(Transaction::new().with(Request::AddColumn {
        table: "a".into(),
        column: ColumnDef::new("late", ColumnType::Double),
    }))
    .expect("add column");
    create(&db, trades_def("d"));
    append(&db, "d", trades_batch(&[T0], 0));
    db.run_housekeeping().expect("housekeeping");
    assert!(
        !db.pending_garbage().is_empty(),
        "superseded files are held, not deleted"
    );
    for p in db.pending_garbage() {
        assert!(
            p.exists(),
            "{} was deleted during checkpoint mode",
            p.display()
        );
    }
    assert!(db.checkpoint_status().held_bytes > 0);

    // Copy while in the mode, then rewind the copy.
    let copy = dir.path().join("copy");
    copy_root(&root, &copy);
    touch_restore(&copy);
    let restored = open(&copy);
    let report = restored.open_report().clone();
    assert_eq!(report.restored.as_ref().map(|r| r.tables), Some(3));
    assert!(!report.in_checkpoint);
    assert!(!copy.join(RESTORE_TRIGGER).exists());
    assert!(!copy.join(".checkpoint").exists());
    assert_eq!(table_names(&restored), ["a", "b", "c"]);
    assert_eq!(read_table(&restored, "a"), cut_a);
    assert_eq!(read_table(&restored, "b"), cut_b);
    assert_eq!(read_table(&restored, "c"), cut_c);
    // The restored copy takes writes, and they survive a reopen.
    append(&restored, "b", trades_batch(&[T0 + 7], 9));
    restored.close().expect("close");
    let reopened = open(&copy);
    assert_eq!(column_i64(&reopened, "b", "seq"), vec![3, 9]);
    drop(reopened);

    // The original is still in checkpoint mode after a restart, and holds the files.
    db.close().expect("close");
    let db = open(&root);
    assert!(db.open_report().in_checkpoint);
    assert!(db.checkpoint_status().in_progress);
    let held = db.pending_garbage();
    assert!(
        !held.is_empty(),
        "recovery handed the cut's files to housekeeping"
    );
    db.run_housekeeping().expect("housekeeping");
    assert!(held.iter().all(|p| p.exists()));
    assert_eq!(table_names(&db), ["a", "c", "d"]);
    // RELEASE lets housekeeping reclaim them; a second RELEASE finds nothing.
    assert!(matches!(
        db.checkpoint_release().expect("release"),
        Released::Ended { .. }
    ));
    db.run_housekeeping().expect("housekeeping");
    assert!(held.iter().all(|p| !p.exists()), "held files reclaimed");
    assert_eq!(
        db.checkpoint_release().expect("release"),
        Released::NoCheckpoint
    );
    assert!(!root.join(".checkpoint").exists());
}

#[test]
fn restore_refuses_without_a_checkpoint_or_with_a_damaged_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = open(&root);
    create(&db, trades_def("a"));
    append(&db, "a", trades_batch(&[T0], 0));
    db.close().expect("close");

    touch_restore(&root);
    let err = Database::open(&root, options()).expect_err("no checkpoint");
    assert!(err.to_string().contains("no checkpoint"), "{err}");
    assert!(root.join(RESTORE_TRIGGER).exists(), "_restore stays");

    std::fs::remove_file(root.join(RESTORE_TRIGGER)).expect("rm");
    let db = open(&root);
    db.checkpoint_create().expect("create");
    append(&db, "a", trades_batch(&[T0 + 1], 1));
    db.close().expect("close");
    let cut = root.join(".checkpoint/cut");
    let mut bytes = std::fs::read(&cut).expect("read cut");
    let good = bytes.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&cut, &bytes).expect("damage");
    touch_restore(&root);
    let err = Database::open(&root, options()).expect_err("damaged cut");
    assert!(
        err.to_string().contains("checksum") && err.to_string().contains("cut"),
        "{err}"
    );
    assert!(root.join(RESTORE_TRIGGER).exists());

    // A cut from another storage-format major version names both versions.
    let mut other = good.clone();
    other[8] = 9;
    std::fs::write(&cut, &other).expect("version");
    let err = Database::open(&root, options()).expect_err("other version");
    assert!(
        err.to_string().contains("version 9") && err.to_string().contains("1.x"),
        "{err}"
    );

    // Repaired, the restore goes through and is idempotent if rerun.
    std::fs::write(&cut, &good).expect("repair");
    let db = open(&root);
    assert_eq!(column_i64(&db, "a", "seq"), vec![0]);
}

#[test]
fn a_restore_interrupted_after_marking_itself_done_is_finished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = open(&root);
    create(&db, trades_def("a"));
    append(&db, "a", trades_batch(&[T0], 0));
    db.checkpoint_create().expect("create");
    append(&db, "a", trades_batch(&[T0 + 1], 1));
    db.close().expect("close");
    // The state a restore leaves when killed between writing `.checkpoint/restored`
    // and removing `_restore`.
    std::fs::write(root.join(".checkpoint/restored"), b"").expect("marker");
    touch_restore(&root);
    let db = open(&root);
    assert!(db.open_report().restored.is_some());
    assert!(!db.open_report().in_checkpoint);
    assert_eq!(column_i64(&db, "a", "seq"), vec![0]);
    assert!(!root.join(RESTORE_TRIGGER).exists() && !root.join(".checkpoint").exists());
}

/// Every path under `root`, except the WAL's (whose torn tail recovery may cut,
/// never remove).
fn all_paths(root: &Path) -> Vec<std::path::PathBuf> {
    fn walk(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            let path = e.path();
            out.push(path.clone());
            if path.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

/// Out-of-order rows for `table`, applied to the files at once: each round
/// rewrites a partition's tail into a new version and retires the old one.
fn churn(db: &Database, table: &str, rounds: i64) {
    for i in 0..rounds {
        append(
            db,
            table,
            trades_batch(&[T0 + 1000 + i, T0 + 10 + i], 100 + 2 * i),
        );
        db.apply_buffer().expect("apply");
    }
}

#[test]
fn a_restart_in_checkpoint_mode_deletes_nothing_under_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = open(&root);
    for t in ["a", "b"] {
        create(&db, trades_def(t));
        append(&db, t, trades_batch(&[T0, T0 + 100_000, T0 + DAY], 0));
    }
    db.checkpoint_create().expect("create");
    // During the mode: late rows rewrite partitions, a table is dropped and
    // another created, a column added; then the process dies.
    churn(&db, "a", 5);
    db.commit(Transaction::new().with(Request::DropTable {
        name: "b".into(),
        if_exists: false,
    }))
    .expect("drop");
    create(&db, trades_def("c"));
    append(&db, "c", trades_batch(&[T0 + 3], 0));
    db.commit(Transaction::new().with(Request::AddColumn {
        table: "a".into(),
        column: ColumnDef::new("late", ColumnType::Double),
    }))
    .expect("add column");
    churn(&db, "a", 2);
    let a_rows = read_table(&db, "a");
    let before = all_paths(&root);
    db.simulate_crash();

    let db = open(&root);
    assert!(db.open_report().in_checkpoint);
    let missing: Vec<_> = before.iter().filter(|p| !p.exists()).collect();
    assert!(
        missing.is_empty(),
        "recovery in checkpoint mode deleted {missing:?}"
    );
    assert_eq!(
        read_table(&db, "a"),
        a_rows,
        "replay gave back every commit"
    );
    assert_eq!(table_names(&db), ["a", "c"]);
    db.run_housekeeping().expect("housekeeping");
    let missing: Vec<_> = before.iter().filter(|p| !p.exists()).collect();
    assert!(
        missing.is_empty(),
        "housekeeping in checkpoint mode deleted {missing:?}"
    );

    // After RELEASE what nobody needs goes; the data stays.
    db.checkpoint_release().expect("release");
    db.run_housekeeping().expect("housekeeping");
    assert_eq!(db.checkpoint_status().reclaim_pending_paths, 0);
    assert!(
        before.iter().any(|p| !p.exists()),
        "garbage reclaimed after RELEASE"
    );
    assert_eq!(read_table(&db, "a"), a_rows);
    db.close().expect("close");
    let db = open(&root);
    assert_eq!(read_table(&db, "a"), a_rows);
    assert_eq!(table_names(&db), ["a", "c"]);
}

#[test]
fn create_and_status_do_not_wait_for_a_long_reclaim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    // Reclaiming slowed to 200 unlinks a second, so the backlog below takes
    // seconds to delete.
    let options = StorageOptions {
        reclaim_paths_per_second: 200,
        ..options()
    };
    let db = std::sync::Arc::new(Database::open(&root, options).expect("open"));
    create(&db, trades_def("a"));
    append(&db, "a", trades_batch(&[T0, T0 + 100_000], 0));
    db.checkpoint_create().expect("create");
    churn(&db, "a", 300);
    // Measured in the mode (where housekeeping deletes nothing).
    db.run_housekeeping().expect("measure");
    db.checkpoint_release().expect("release");
    let backlog = db.checkpoint_status();
    assert!(backlog.reclaim_pending_paths >= 300, "{backlog:?}");
    assert_eq!(backlog.phase, CheckpointPhase::Reclaiming);

    let reclaimer = {
        let db = db.clone();
        std::thread::spawn(move || db.run_housekeeping().expect("housekeeping"))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = db.checkpoint_status();
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
    assert_eq!(status.phase, CheckpointPhase::Reclaiming, "{status:?}");
    let started = std::time::Instant::now();
    db.checkpoint_create().expect("create during the reclaim");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(1),
        "CREATE waited {took:?} for housekeeping"
    );
    // The reclaim stops at the pause; what it had not deleted stays held.
    reclaimer.join().expect("reclaimer");
    let held = db.pending_garbage();
    assert!(
        !held.is_empty(),
        "the reclaim was interrupted, not finished"
    );
    let status = db.checkpoint_status();
    assert_eq!(status.phase, CheckpointPhase::InProgress);
    assert!(
        status.reclaim_pending_paths > 0 && status.held_bytes > 0,
        "{status:?}"
    );
    db.run_housekeeping().expect("housekeeping in the mode");
    assert!(
        held.iter().all(|p| p.exists()),
        "nothing deleted during the mode"
    );
    db.checkpoint_release().expect("release");
    let unlimited = {
        // The rest goes after RELEASE.
        db.run_housekeeping().expect("housekeeping");
        db.checkpoint_status()
    };
    assert!(unlimited.reclaim_pending_paths < status.reclaim_pending_paths);
}

#[test]
fn a_copy_of_only_the_checkpoint_files_restores_to_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = open(&root);
    for t in ["a", "b"] {
        create(&db, trades_def(t));
        append(&db, t, trades_batch(&[T0, T0 + 100_000, T0 + DAY], 0));
    }
    // Old partition versions become garbage (housekeeping is manual here), and
    // the last rows stay in the write buffer: the cut needs the WAL for them.
    churn(&db, "a", 3);
    append_buffered(&db, "b", trades_batch(&[T0 + 5], 50));
    let expected_a = read_table(&db, "a");
    let expected_b = read_table(&db, "b");
    assert!(
        db.checkpoint_files().expect("files").is_none(),
        "no checkpoint yet"
    );

    let seq = db.checkpoint_create().expect("create");
    append(&db, "a", trades_batch(&[T0 + 7], 200));
    db.commit(Transaction::new().with(Request::DropTable {
        name: "b".into(),
        if_exists: false,
    }))
    .expect("drop after the cut");

    let cp = db
        .checkpoint_files()
        .expect("files")
        .expect("in checkpoint");
    assert_eq!(cp.seq, seq);
    let names: Vec<String> = cp.files.iter().map(|p| p.display().to_string()).collect();
    assert!(names.contains(&".checkpoint/cut".to_string()), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("wal/")), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.contains("tidemark.lock") && !n.contains("tidemark.pid"))
    );
    // Only what the cut refers to: fewer files than the root holds.
    let all_files = all_paths(&root).into_iter().filter(|p| p.is_file()).count();
    assert!(
        cp.files.len() < all_files,
        "{} of {all_files}",
        cp.files.len()
    );

    let copy = dir.path().join("copy");
    for rel in &cp.files {
        let to = copy.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(root.join(rel), &to).expect("copy");
    }
    db.close().expect("close");
    touch_restore(&copy);
    let restored = open(&copy);
    assert_eq!(
        restored.open_report().restored.as_ref().map(|r| r.seq),
        Some(seq)
    );
    assert_eq!(
        table_names(&restored),
        vec!["a".to_string(), "b".to_string()]
    );
    assert_eq!(read_table(&restored, "a"), expected_a);
    assert_eq!(read_table(&restored, "b"), expected_b);
}
