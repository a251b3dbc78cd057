//! The WAL as a log backup ships it: runs of durable records read from a live
//! database, WAL segments kept until shipped, and point-in-time restore (a
//! checkpoint copy plus shipped records up to a commit time).

use std::collections::BTreeMap;
use std::path::Path;

use tidemark_storage::*;

use crate::common::*;

fn log_options() -> StorageOptions {
    StorageOptions {
        keep_wal_for_log_backup: true,
        // Small segments: runs and the reader cross segment boundaries.
        wal_segment_bytes: 1024,
        ..options()
    }
}

/// Every run the reader has, round-tripped through its stored form.
fn read_all(reader: &mut LogReader, max_bytes: usize) -> Vec<LogRun> {
    let mut runs = Vec::new();
    while let Some(run) = reader.read(max_bytes).expect("read") {
        let name = format!("run {}", run.first_seq());
        runs.push(LogRun::decode(run.bytes().to_vec(), &name).expect("decode"));
    }
    runs
}

/// Copies the files a checkpoint copy needs into `to`.
fn copy_checkpoint(db: &Database, root: &Path, to: &Path) -> u64 {
    let cp = db
        .checkpoint_files()
        .expect("files")
        .expect("in checkpoint");
    for rel in &cp.files {
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(root.join(rel), &target).expect("copy");
    }
    cp.seq
}

/// A copy of `base` restored to its cut, then the shipped records up to
/// `until` (a commit time) replayed: the root's table "a".
fn restore_to(base: &Path, into: &Path, runs: &[LogRun], until: i64) -> Vec<Vec<String>> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(base)
        .arg(into)
        .status()
        .expect("cp");
    assert!(status.success());
    std::fs::write(into.join(RESTORE_TRIGGER), b"").expect("touch");
    let db = Database::open(into, options()).expect("restore the cut");
    let cut = db.open_report().restored.as_ref().expect("restored").seq;
    db.close().expect("close");
    let mut w = LogSegmentWriter::create(into, cut).expect("segment");
    'runs: for run in runs {
        for r in run.records() {
            if r.seq <= cut {
                continue;
            }
            if r.commit_micros.expect("a commit time") > until {
                break 'runs;
            }
            w.append(&r).expect("append");
        }
    }
    w.finish().expect("finish");
    let db = Database::open(into, options()).expect("open with the log");
    let rows = read_table(&db, "a");
    db.close().expect("close");
    rows
}

#[test]
fn shipped_records_restore_a_checkpoint_copy_to_any_commit_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = Database::open(&root, log_options()).expect("open");
    create(&db, trades_def("a"));
    append_buffered(&db, "a", trades_batch(&[T0, T0 + 1], 0));

    db.checkpoint_create().expect("checkpoint");
    let base = dir.path().join("base");
    copy_checkpoint(&db, &root, &base);
    db.checkpoint_release().expect("release");

    // After the cut: commits a few milliseconds apart, what each leaves.
    let mut after: BTreeMap<u64, Vec<Vec<String>>> = BTreeMap::new();
    for i in 0..40 {
        let r = append_buffered(&db, "a", trades_batch(&[T0 + 10 + i], 100 + i));
        if i % 7 == 3 {
            db.apply_buffer().expect("apply");
        }
        after.insert(r.seq.expect("a commit"), read_table(&db, "a"));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let newest = *after.keys().last().expect("commits");

    // The reader gives every commit once, in order, runs of bounded size
    // across segment boundaries.
    assert!(db.wal_segments() > 4, "{} segments", db.wal_segments());
    let mut reader = db.log_reader(0);
    let runs = read_all(&mut reader, 700);
    assert!(runs.len() > 3, "{} runs", runs.len());
    let seqs: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.records().map(|x| x.seq).collect::<Vec<_>>())
        .collect();
    assert_eq!(seqs, (1..=newest).collect::<Vec<_>>());
    let times: Vec<i64> = runs
        .iter()
        .flat_map(|r| {
            r.records()
                .map(|x| x.commit_micros.expect("time"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(reader.next_seq(), newest + 1);
    assert!(reader.read(700).expect("read").is_none(), "nothing new");
    let r = append_buffered(&db, "a", trades_batch(&[T0 + 99], 999));
    let more = read_all(&mut reader, 700);
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].first_seq(), newest + 1);
    assert_eq!(more[0].last_seq(), r.seq.expect("seq"));

    // Segments are recycled only once shipped.
    db.apply_buffer().expect("apply");
    let segments = db.wal_segments();
    db.run_housekeeping().expect("housekeeping");
    assert_eq!(db.wal_segments(), segments, "nothing shipped yet");
    db.set_log_archived(newest + 1);
    db.run_housekeeping().expect("housekeeping");
    assert!(
        db.wal_segments() < segments,
        "shipped segments are recycled"
    );
    db.close().expect("close");

    // Restored to the time of a commit: exactly the commits up to it.
    let time_of: BTreeMap<u64, i64> = seqs.iter().copied().zip(times.iter().copied()).collect();
    for (n, seq) in [newest - 35, newest - 17, newest - 1, newest]
        .into_iter()
        .enumerate()
    {
        let until = time_of[&seq];
        // Commits sharing the time of `seq` are in too.
        let last = *time_of
            .iter()
            .rev()
            .find(|(_, t)| **t <= until)
            .map(|(s, _)| s)
            .expect("a commit");
        let got = restore_to(&base, &dir.path().join(format!("pitr{n}")), &runs, until);
        assert_eq!(got, after[&last], "restored to commit {last}");
    }
}

#[test]
fn a_damaged_run_is_refused_naming_it_and_a_recycled_wal_is_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let db = Database::open(
        &root,
        StorageOptions {
            wal_segment_bytes: 1024,
            ..options()
        },
    )
    .expect("open");
    create(&db, trades_def("a"));
    for i in 0..20 {
        append(&db, "a", trades_batch(&[T0 + i], i));
    }
    let run = db
        .log_reader(0)
        .read(1 << 20)
        .expect("read")
        .expect("a run");
    let mut bytes = run.bytes().to_vec();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    let err = LogRun::decode(bytes, "log/00000000000000000001").expect_err("damaged");
    assert!(
        err.to_string().contains("log/00000000000000000001")
            && err.to_string().contains("checksum"),
        "{err}"
    );
    let err = LogRun::decode(run.bytes()[..run.bytes().len() - 5].to_vec(), "short")
        .expect_err("truncated");
    assert!(err.to_string().contains("short"), "{err}");

    // Without a log backup the WAL is recycled: a reader that wants it is told.
    db.run_housekeeping().expect("housekeeping");
    let mut reader = db.log_reader(0);
    let err = reader.read(1 << 20).expect_err("recycled");
    assert!(
        matches!(err, StorageError::LogGap { wanted: 1, .. }),
        "{err}"
    );
    let oldest = reader.skip_to_oldest().expect("skip");
    assert!(oldest > 1);
    let runs = read_all(&mut reader, 1 << 20);
    assert_eq!(runs.first().map(LogRun::first_seq), Some(oldest));
    db.close().expect("close");
}

#[test]
fn a_reader_keeps_up_with_concurrent_commits_without_a_false_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = std::sync::Arc::new(
        Database::open(
            dir.path().join("root"),
            StorageOptions {
                wal_segment_bytes: 64 << 10,
                ..log_options()
            },
        )
        .expect("open"),
    );
    create(&db, trades_def("a"));
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..3000 {
                append_buffered(&db, "a", trades_batch(&[T0 + i], i));
            }
        })
    };
    // Reading while records are being written: a buffer that caught a record
    // half-written must not end the segment early or skip a commit.
    let mut reader = db.log_reader(0);
    let mut next = 1;
    while !writer.is_finished() || reader.has_more() {
        match reader.read(4096).expect("read while writing") {
            Some(run) => {
                assert_eq!(run.first_seq(), next);
                next = run.last_seq() + 1;
            }
            None => std::thread::yield_now(),
        }
    }
    writer.join().expect("writer");
    assert_eq!(next, db.stats().visible_seq + 1);
}
