//! Backups of a storage engine to a `file://` destination, restored into new
//! roots and compared table by table; incremental uploads, resume after a
//! destination error, abort, and damaged objects.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tidemark_backup::restore;
use tidemark_backup::restore::RestoreTarget;
use tidemark_backup::{BackupError, BackupOptions, BackupPhase, Backups, Destination, S3Options};
use tidemark_storage::*;

const T0: i64 = 1_795_219_200_000_000;
const DAY: i64 = 86_400_000_000;

fn open(root: &Path) -> Arc<Database> {
    Arc::new(Database::open(root, StorageOptions::default()).expect("open"))
}

/// A database whose WAL waits for the log backup.
fn open_for_log_backup(root: &Path, options: StorageOptions) -> Arc<Database> {
    let options = StorageOptions {
        keep_wal_for_log_backup: true,
        ..options
    };
    Arc::new(Database::open(root, options).expect("open"))
}

fn create(db: &Database, name: &str) {
    db.commit(Transaction::new().with(Request::CreateTable {
        def: TableDef {
            name: name.into(),
            columns: vec![
                ColumnDef::new("ts", ColumnType::Timestamp),
                ColumnDef::new("sym", ColumnType::Symbol),
                ColumnDef::new("v", ColumnType::BigInt),
            ],
            timestamp: Some("ts".into()),
            partition_by: PartitionBy::Day,
        },
        if_not_exists: false,
    }))
    .expect("create");
}

fn append(db: &Database, table: &str, ts: &[i64], v0: i64) {
    let syms: Vec<String> = (0..ts.len()).map(|i| format!("S{}", i % 3)).collect();
    let batch = Batch::new()
        .with("ts", Column::timestamps(ts.to_vec()))
        .with("sym", Column::symbols(&syms))
        .with(
            "v",
            Column::bigints((0..ts.len() as i64).map(|i| v0 + i).collect()),
        );
    db.commit(Transaction::new().with(Request::Append {
        table: table.into(),
        batch,
    }))
    .expect("append");
}

/// Every table's rows, as debug strings, sorted by table name.
fn contents(db: &Database) -> Vec<(String, Vec<String>)> {
    let snap = db.snapshot();
    let mut out: Vec<(String, Vec<String>)> = snap
        .tables()
        .iter()
        .map(|t| {
            let cols = t.read_all().expect("read");
            (
                t.name().to_string(),
                cols.iter().map(|c| format!("{:?}", c.values)).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

fn destination(dir: &Path) -> (Destination, String) {
    let url = format!("file://{}", dir.display());
    (
        Destination::open(&url, &S3Options::default()).expect("destination"),
        url,
    )
}

/// The backups of `db` to `dest`, with the log backup running.
fn with_log_backup(db: &Arc<Database>, dest: &Destination, interval: Duration) -> Backups {
    let backups = Backups::new(
        db.clone(),
        Some(dest.clone()),
        BackupOptions {
            log_flush_interval: Some(interval),
            ..Default::default()
        },
    );
    backups.start_log_backup();
    backups
}

async fn wait_for_end(b: &Backups) -> tidemark_backup::BackupStatus {
    for _ in 0..600 {
        let s = b.status();
        if matches!(
            s.phase,
            BackupPhase::Done | BackupPhase::Failed | BackupPhase::Aborted
        ) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the backup did not end: {:?}", b.status());
}

async fn restore_into(
    dest: &Destination,
    root: &Path,
    id: Option<&str>,
) -> Vec<(String, Vec<String>)> {
    let target = id.map_or(RestoreTarget::Newest, |id| RestoreTarget::Backup(id.into()));
    restore::restore(dest, root, &target, 4)
        .await
        .expect("restore");
    let db = open(root);
    let c = contents(&db);
    assert!(
        !db.open_report().in_checkpoint,
        "a restored root is not in checkpoint mode"
    );
    c
}

/// Where two `contents` differ, briefly (large tables print unreadably).
fn first_difference(got: &[(String, Vec<String>)], expected: &[(String, Vec<String>)]) -> String {
    for ((t, got), (_, want)) in got.iter().zip(expected) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if g != w {
                let at = g.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count();
                let from = at.saturating_sub(40);
                return format!(
                    "table {t} column {i} differs at character {at}: got ...{}... expected ...{}...",
                    &g[from..(at + 60).min(g.len())],
                    &w[from..(at + 60).min(w.len())]
                );
            }
        }
    }
    format!("{} tables vs {}", got.len(), expected.len())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_and_incremental_backups_restore_to_their_cuts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (dest, _) = destination(&dir.path().join("dest"));
    let db = open(&root);
    create(&db, "a");
    create(&db, "b");
    append(&db, "a", &[T0, T0 + 1, T0 + DAY], 0);
    append(&db, "b", &[T0 + 5], 10);
    db.apply_buffer().expect("apply");
    append(&db, "a", &[T0 + DAY + 9], 20); // in the write buffer at the cut
    let first_state = contents(&db);
    let backups = Backups::new(db.clone(), Some(dest.clone()), BackupOptions::default());

    let started = backups.start().await.expect("start");
    assert!(!started.resumed);
    // Writes go on during the backup; they are not in it.
    append(&db, "a", &[T0 + 2 * DAY], 30);
    let s = wait_for_end(&backups).await;
    assert_eq!(s.phase, BackupPhase::Done, "{s:?}");
    assert_eq!(s.files_done, s.files_total);
    assert_eq!(s.files_reused, 0, "a first backup is full");
    assert!(
        !db.checkpoint_status().in_progress,
        "the backup released its checkpoint"
    );
    assert!(!root.join(".backup").exists(), "the local state is gone");

    // An incremental backup after more writes: only new and grown files go up.
    db.apply_buffer().expect("apply");
    append(&db, "b", &[T0 + 3 * DAY], 40);
    db.apply_buffer().expect("apply");
    let second_state = contents(&db);
    let second = backups.start().await.expect("second");
    let s = wait_for_end(&backups).await;
    assert_eq!(s.phase, BackupPhase::Done, "{s:?}");
    assert_eq!(s.base.as_deref(), Some(started.id.as_str()));
    assert!(s.files_reused > 0, "unchanged files are referenced: {s:?}");
    assert!(s.bytes_uploaded < s.bytes_total, "{s:?}");
    let uploaded_objects = files_under(
        &dir.path()
            .join("dest/backups")
            .join(&second.id)
            .join("data"),
    );
    assert_eq!(
        uploaded_objects.len() as u64,
        s.files_total - s.files_reused,
        "{uploaded_objects:?}"
    );

    let (list, incomplete) = restore::list(&dest).await.expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(incomplete, 0);
    assert_eq!(list[1].base.as_deref(), Some(started.id.as_str()));
    restore::verify(&dest, None).await.expect("verify");

    // Each backup restores to exactly its own cut.
    let r1 = restore_into(&dest, &dir.path().join("r1"), Some(&started.id)).await;
    assert_eq!(r1, first_state);
    let r2 = restore_into(&dest, &dir.path().join("r2"), None).await;
    assert_eq!(r2, second_state);

    // A root that is not empty is refused.
    let err = restore::restore(&dest, &root, &RestoreTarget::Newest, 2)
        .await
        .expect_err("non-empty root");
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_keeps_its_checkpoint_and_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let dest_dir = dir.path().join("dest");
    let (dest, _) = destination(&dest_dir);
    let db = open(&root);
    create(&db, "a");
    append(&db, "a", &[T0, T0 + DAY], 0);
    db.apply_buffer().expect("apply");
    append(&db, "a", &[T0 + 3], 5);
    let state = contents(&db);
    // One file at a time, slowly: the WAL (uploaded last) meets the obstacle below.
    let options = BackupOptions {
        concurrency: 1,
        max_bytes_per_second: 2_000,
        ..Default::default()
    };
    let backups = Backups::new(db.clone(), Some(dest.clone()), options);
    let started = backups.start().await.expect("start");
    let blocker = dest_dir.join("backups").join(&started.id).join("data/wal");
    std::fs::create_dir_all(blocker.parent().expect("parent")).expect("mkdir");
    std::fs::write(&blocker, b"in the way").expect("blocker");

    let s = wait_for_end(&backups).await;
    assert_eq!(s.phase, BackupPhase::Failed, "{s:?}");
    assert!(
        s.last_error.as_deref().is_some_and(|e| e.contains("wal")),
        "{s:?}"
    );
    assert!(s.files_done > 0 && s.files_done < s.files_total, "{s:?}");
    let first_run_bytes = s.bytes_uploaded;
    // The checkpoint stays held for the resume, and the operator cannot release it.
    assert!(db.checkpoint_status().in_progress);
    let err = backups
        .checkpoints()
        .release()
        .expect_err("held by the backup");
    assert!(matches!(err, BackupError::CheckpointHeld { .. }), "{err}");
    assert!(
        restore::list(&dest).await.expect("list").0.is_empty(),
        "no manifest yet"
    );

    std::fs::remove_file(&blocker).expect("rm blocker");
    let resumed = backups.start().await.expect("resume");
    assert!(resumed.resumed);
    assert_eq!(resumed.id, started.id);
    let s = wait_for_end(&backups).await;
    assert_eq!(s.phase, BackupPhase::Done, "{s:?}");
    assert!(
        s.bytes_uploaded + first_run_bytes >= s.bytes_total && s.bytes_uploaded < s.bytes_total,
        "the resume uploaded only what was missing: {s:?}, first run {first_run_bytes}"
    );
    assert!(!db.checkpoint_status().in_progress);
    let r = restore_into(&dest, &dir.path().join("r"), None).await;
    assert_eq!(r, state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_releases_the_checkpoint_and_removes_the_uploads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let dest_dir = dir.path().join("dest");
    let (dest, _) = destination(&dest_dir);
    let db = open(&root);
    create(&db, "a");
    append(&db, "a", &[T0, T0 + DAY], 0);
    let options = BackupOptions {
        concurrency: 1,
        max_bytes_per_second: 500,
        ..Default::default()
    };
    let backups = Backups::new(db.clone(), Some(dest.clone()), options);
    let started = backups.start().await.expect("start");
    let err = backups.start().await.expect_err("one at a time");
    assert!(matches!(err, BackupError::AlreadyRunning { .. }), "{err}");
    let err = backups.checkpoints().create().expect_err("checkpoint held");
    assert!(matches!(err, BackupError::CheckpointHeld { .. }), "{err}");

    assert_eq!(
        backups.abort().await.expect("abort"),
        Some(started.id.clone())
    );
    assert_eq!(backups.status().phase, BackupPhase::Aborted);
    assert!(!db.checkpoint_status().in_progress);
    assert!(!root.join(".backup").exists());
    assert!(files_under(&dest_dir.join("backups").join(&started.id)).is_empty());
    assert_eq!(backups.abort().await.expect("again"), None);
    // The operator's checkpoint works again.
    backups.checkpoints().create().expect("create");
    let err = backups.start().await.expect_err("operator's checkpoint");
    assert!(
        matches!(err, BackupError::CheckpointInProgress { .. }),
        "{err}"
    );
    backups.checkpoints().release().expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_object_is_refused_by_verify_and_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let dest_dir = dir.path().join("dest");
    let (dest, _) = destination(&dest_dir);
    let db = open(&root);
    create(&db, "a");
    append(&db, "a", &[T0, T0 + 1], 0);
    db.apply_buffer().expect("apply");
    let backups = Backups::new(db.clone(), Some(dest.clone()), BackupOptions::default());
    let started = backups.start().await.expect("start");
    assert_eq!(wait_for_end(&backups).await.phase, BackupPhase::Done);

    let victim = files_under(&dest_dir.join("backups").join(&started.id).join("data"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("/v~2.d"))
        .expect("a column file");
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[0] ^= 0x40;
    std::fs::write(&victim, &bytes).expect("damage");

    let err = restore::verify(&dest, None).await.expect_err("damaged");
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("v~2.d"), "names the object: {err}");
    let err = restore::restore(&dest, &dir.path().join("r"), &RestoreTarget::Newest, 2)
        .await
        .expect_err("restore refuses");
    assert!(err.to_string().contains("v~2.d"), "{err}");

    let err = restore::restore(
        &dest,
        &dir.path().join("r2"),
        &RestoreTarget::Backup("nope".into()),
        2,
    )
    .await
    .expect_err("unknown backup");
    assert!(matches!(err, BackupError::NotFound(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_backup_restores_any_time_after_a_backup_and_refuses_a_gap_or_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (dest, _) = destination(&dir.path().join("dest"));
    let db = open_for_log_backup(
        &root,
        StorageOptions {
            wal_segment_bytes: 4096,
            housekeeping_interval: Duration::from_millis(50),
            ..Default::default()
        },
    );
    create(&db, "a");
    append(&db, "a", &[T0, T0 + 1], 0);
    let backups = with_log_backup(&db, &dest, Duration::from_millis(200));
    backups.start().await.expect("backup");
    assert_eq!(wait_for_end(&backups).await.phase, BackupPhase::Done);

    // Commits after the backup; after each, a time and what it shows.
    let mut points = Vec::new();
    for i in 0..30 {
        append(&db, "a", &[T0 + 10 + i], 100 + i);
        if i % 4 == 0 {
            db.apply_buffer().expect("apply");
        }
        if i == 12 {
            create(&db, "b");
            append(&db, "b", &[T0 + DAY], 7);
        }
        points.push((chrono::Utc::now(), contents(&db)));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let newest = db.stats().visible_seq;
    for _ in 0..200 {
        if backups.log_status().archived_seq >= newest {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = backups.log_status();
    assert!(log.enabled && log.archived_seq >= newest, "{log:?}");
    assert!(log.last_error.is_none(), "{log:?}");
    assert!(log.objects_uploaded > 1, "{log:?}");
    backups.stop().await;

    for (n, i) in [0usize, 11, 12, 29].into_iter().enumerate() {
        let (t, expected) = &points[i];
        let into = dir.path().join(format!("pitr{n}"));
        let s = restore::restore(&dest, &into, &RestoreTarget::Time(*t), 2)
            .await
            .expect("point-in-time restore");
        let log = s.log.expect("the log was replayed");
        assert!(log.commits > 0, "{log:?}");
        assert_eq!(&contents(&open(&into)), expected, "restored to point {i}");
    }
    // A copy restored to an earlier time is another history: with the same
    // destination its log backup is refused, and stays refused after its own
    // commits pass the end of the log (shipping them would splice the two).
    let copy_root = dir.path().join("pitr1");
    let runs_before = files_under(&dir.path().join("dest/log")).len();
    for round in 0..2 {
        let copy = open_for_log_backup(&copy_root, StorageOptions::default());
        let copy_backups = with_log_backup(&copy, &dest, Duration::from_millis(200));
        let mut status = copy_backups.log_status();
        for _ in 0..100 {
            if status.last_error.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            status = copy_backups.log_status();
        }
        assert!(!status.enabled, "round {round}: {status:?}");
        let why = status.last_error.unwrap_or_default();
        assert!(
            why.contains("another database's log"),
            "round {round}: {why}"
        );
        if round == 0 {
            for i in 0..40 {
                append(&copy, "a", &[T0 + 1000 + i], 1000 + i);
            }
            assert!(
                copy.stats().visible_seq > newest,
                "the copy is now past the log"
            );
        }
        copy_backups.stop().await;
    }
    assert_eq!(
        files_under(&dir.path().join("dest/log")).len(),
        runs_before,
        "the copy shipped nothing"
    );

    // Before the first backup there is nothing to start from.
    let err = restore::restore(
        &dest,
        &dir.path().join("early"),
        &RestoreTarget::Time(points[0].0 - chrono::Duration::hours(1)),
        2,
    )
    .await
    .expect_err("no backup that early");
    assert!(err.to_string().contains("no backup"), "{err}");

    // A damaged run stops the restore, naming it; so does a missing one.
    let mut runs: Vec<PathBuf> = files_under(&dir.path().join("dest/log"));
    runs.sort();
    assert!(runs.len() > 2, "{runs:?}");
    let victim = &runs[runs.len() / 2];
    let mut bytes = std::fs::read(victim).expect("read");
    let at = bytes.len() - 2;
    bytes[at] ^= 1;
    std::fs::write(victim, &bytes).expect("write");
    let name = victim.file_name().and_then(|n| n.to_str()).expect("name");
    let err = restore::restore(
        &dest,
        &dir.path().join("damaged"),
        &RestoreTarget::Time(points[29].0),
        2,
    )
    .await
    .expect_err("damaged");
    assert!(
        matches!(err, BackupError::Corrupt { .. }) && err.to_string().contains(name),
        "{err}"
    );
    std::fs::remove_file(victim).expect("remove");
    let err = restore::restore(
        &dest,
        &dir.path().join("gap"),
        &RestoreTarget::Time(points[29].0),
        2,
    )
    .await
    .expect_err("gap");
    assert!(err.to_string().contains("misses commits"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_what_restores_before_the_limit_need() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (dest, _) = destination(&dir.path().join("dest"));
    let db = open_for_log_backup(&root, StorageOptions::default());
    create(&db, "a");
    create(&db, "cold"); // never written again: every backup refers to the first's objects
    append(&db, "cold", &[T0], 1);
    append(&db, "a", &[T0 + 1], 0);
    db.apply_buffer().expect("apply");
    let backups = with_log_backup(&db, &dest, Duration::from_millis(50));
    let mut ids = Vec::new();
    let mut limit = None;
    for round in 0..3i64 {
        ids.push(backups.start().await.expect("backup").id);
        let end = wait_for_end(&backups).await;
        assert_eq!(end.phase, BackupPhase::Done, "{end:?}");
        append(&db, "a", &[T0 + DAY * (round + 1)], 10 * round);
        db.apply_buffer().expect("apply");
        if round == 1 {
            // Between the second and third backups: what a restore to here shows.
            tokio::time::sleep(Duration::from_millis(5)).await;
            limit = Some((chrono::Utc::now(), contents(&db)));
            tokio::time::sleep(Duration::from_millis(5)).await;
            append(&db, "a", &[T0 + 2 * DAY + 5], 99);
        }
    }
    let newest = db.stats().visible_seq;
    for _ in 0..200 {
        if backups.log_status().archived_seq >= newest {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    backups.stop().await;
    let (limit, at_limit) = limit.expect("limit");
    let runs_before = files_under(&dir.path().join("dest/log")).len();

    let s = tidemark_backup::prune::prune(&dest, limit)
        .await
        .expect("prune");
    assert_eq!(s.backups_removed, vec![ids[0].clone()], "{s:?}");
    assert_eq!(s.oldest_kept.as_deref(), Some(ids[1].as_str()));
    assert!(s.objects_removed > 1 && s.bytes_removed > 0, "{s:?}");
    assert!(s.log_runs_removed > 0, "{s:?}");
    assert_eq!(
        files_under(&dir.path().join("dest/log")).len(),
        runs_before - s.log_runs_removed
    );
    // The first backup's objects that later ones refer to are still there.
    assert!(
        !files_under(&dir.path().join("dest/backups").join(&ids[0])).is_empty(),
        "the cold table's objects stay"
    );
    let (list, _) = restore::list(&dest).await.expect("list");
    assert_eq!(
        list.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        ids[1..].to_vec()
    );
    for id in &ids[1..] {
        restore::verify(&dest, Some(id))
            .await
            .expect("kept backups are whole");
    }
    // A restore to the limit still works; one before the oldest kept backup does not.
    let into = dir.path().join("at_limit");
    restore::restore(&dest, &into, &RestoreTarget::Time(limit), 2)
        .await
        .expect("restore to the limit");
    assert_eq!(contents(&open(&into)), at_limit);
    let err = restore::restore(
        &dest,
        &dir.path().join("too_early"),
        &RestoreTarget::Backup(ids[0].clone()),
        2,
    )
    .await
    .expect_err("pruned");
    assert!(err.to_string().contains(&ids[0]), "{err}");
    // Pruning again removes nothing more.
    let again = tidemark_backup::prune::prune(&dest, limit)
        .await
        .expect("prune again");
    assert!(
        again.backups_removed.is_empty() && again.log_runs_removed == 0,
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_file_uploads_only_its_appended_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let dest_dir = dir.path().join("dest");
    let (dest, _) = destination(&dest_dir);
    let db = open(&root);
    create(&db, "a");
    let first: Vec<i64> = (0..20_000).map(|i| T0 + i).collect();
    append(&db, "a", &first, 0);
    db.apply_buffer().expect("apply");
    let first_state = contents(&db);
    let backups = Backups::new(db.clone(), Some(dest.clone()), BackupOptions::default());
    let one = backups.start().await.expect("start");
    assert_eq!(wait_for_end(&backups).await.phase, BackupPhase::Done);

    // 1% more rows, appended to the same day partition: its column files grow.
    let more: Vec<i64> = (20_000..20_200).map(|i| T0 + i).collect();
    append(&db, "a", &more, 20_000);
    db.apply_buffer().expect("apply");
    let second_state = contents(&db);
    let two = backups.start().await.expect("second");
    let s = wait_for_end(&backups).await;
    assert_eq!(s.phase, BackupPhase::Done, "{s:?}");
    let (list, _) = restore::list(&dest).await.expect("list");
    let manifest = list.iter().find(|m| m.id == two.id).expect("manifest");
    let column = manifest
        .files
        .iter()
        .find(|f| f.path.ends_with("/v~2.d"))
        .expect("the v column");
    assert_eq!(column.parts.len(), 2, "{column:?}");
    assert!(column.parts[0].object.contains(&one.id), "{column:?}");
    assert!(column.parts[1].object.contains(&two.id), "{column:?}");
    assert_eq!(column.parts[1].size, 200 * 8, "only the appended values");
    assert!(
        s.bytes_uploaded * 20 < s.bytes_total,
        "an incremental backup after 1% more rows uploads about 1%: {s:?}"
    );

    restore::verify(&dest, None).await.expect("verify");
    for m in &list {
        for f in &m.files {
            eprintln!(
                "DBG {} {} {} {:?}",
                m.id,
                f.path,
                f.size,
                f.parts
                    .iter()
                    .map(|p| (&p.object, p.size))
                    .collect::<Vec<_>>()
            );
        }
    }
    let r2 = restore_into(&dest, &dir.path().join("r2"), Some(&two.id)).await;
    assert!(
        r2 == second_state,
        "{}",
        first_difference(&r2, &second_state)
    );
    let r1 = restore_into(&dest, &dir.path().join("r1"), Some(&one.id)).await;
    assert!(r1 == first_state, "{}", first_difference(&r1, &first_state));

    // Pruning the older backup keeps the objects the newer one is made of.
    let pruned = tidemark_backup::prune::prune(&dest, chrono::Utc::now())
        .await
        .expect("prune");
    assert_eq!(pruned.backups_removed, vec![one.id.clone()]);
    restore::verify(&dest, Some(&two.id))
        .await
        .expect("the kept backup is whole");

    // The older backup's part is part of the newer backup: damage to it is
    // found there too, naming that object.
    let base_part = dest_dir.join(&column.parts[0].object);
    let mut bytes = std::fs::read(&base_part).expect("read");
    bytes[8] ^= 0x01;
    std::fs::write(&base_part, &bytes).expect("damage");
    let err = restore::verify(&dest, Some(&two.id))
        .await
        .expect_err("damaged");
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&column.parts[0].object),
        "names the base's object: {err}"
    );
}
