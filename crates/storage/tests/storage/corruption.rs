//! Damaged roots: flipped and truncated bytes in every kind of file produce an
//! error that names the file and says what is wrong; nothing panics and nothing
//! is silently dropped.

use std::path::{Path, PathBuf};

use tidemark_storage::*;

use crate::common::*;

/// A closed root with one table `t` (two partitions, symbols, out-of-order
/// history) and, if `crash`, commits that live only in the WAL.
fn build(dir: &Path, crash: bool) {
    let db = open(dir);
    create(&db, trades_def("t"));
    append(&db, "t", trades_batch(&[T0, T0 + 5, T0 + DAY], 0));
    append(&db, "t", trades_batch(&[T0 + 2], 3));
    db.flush().expect("flush");
    if crash {
        append(&db, "t", trades_batch(&[T0 + DAY + 1], 4));
        append(&db, "t", trades_batch(&[T0 + DAY + 2], 5));
        db.simulate_crash();
    } else {
        db.close().expect("close");
    }
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).expect("read");
    let at = at.min(b.len() - 1);
    b[at] ^= 0x20;
    std::fs::write(path, b).expect("write");
}

fn truncate(path: &Path, by: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    let len = f.metadata().expect("meta").len();
    f.set_len(len.saturating_sub(by)).expect("truncate");
}

fn open_err(dir: &Path) -> StorageError {
    Database::open(dir, options()).expect_err("a damaged root must not open")
}

fn assert_names(e: &StorageError, file: &Path, what: &str) {
    let msg = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{msg}");
    assert!(
        msg.contains(&file.display().to_string()),
        "{msg:?} should name {}",
        file.display()
    );
    assert!(msg.contains(what), "{msg:?} should say {what:?}");
}

fn table_dir(dir: &Path) -> PathBuf {
    dir.canonicalize().expect("canon").join("db/t~1")
}

fn wal_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .expect("wal")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    dir.canonicalize()
        .expect("canon")
        .join("wal")
        .join(segs.last().expect("segment").file_name().expect("name"))
}

#[test]
fn metadata_files_flipped_or_truncated() {
    for (file, damage) in [
        ("_txn", "flip"),
        ("_txn", "truncate"),
        ("_meta", "flip"),
        ("_meta", "truncate"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        build(dir.path(), false);
        let p = table_dir(dir.path()).join(file);
        if damage == "flip" {
            flip(&p, 40);
            assert_names(&open_err(dir.path()), &p, "checksum mismatch");
        } else {
            truncate(&p, 5);
            assert_names(&open_err(dir.path()), &p, "bytes, its header says");
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), false);
    let p = dir.path().canonicalize().expect("canon").join("db/_tables");
    flip(&p, 30);
    assert_names(&open_err(dir.path()), &p, "checksum mismatch");
}

#[test]
fn another_major_version_is_refused_naming_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), false);
    let p = dir.path().canonicalize().expect("canon").join("db/_tables");
    let mut b = std::fs::read(&p).expect("read");
    b[8] = 7;
    let n = b.len();
    let crc = crc32c(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&p, b).expect("write");
    let e = open_err(dir.path());
    assert!(
        e.to_string()
            .contains("version 7.x is not supported by this build (it reads 1.x)"),
        "{e}"
    );
}

/// Castagnoli CRC, bit by bit (the test does not trust the crate it checks).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn column_file_damage() {
    // A flipped byte: the open succeeds (checksums are checked on first read),
    // the read fails naming the file.
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), false);
    let p = table_dir(dir.path()).join("2026-11-21.3/price~2.d");
    assert!(p.exists(), "out-of-order merge wrote version 3");
    flip(&p, 9);
    let db = open(dir.path());
    let snap = db.snapshot();
    let t = snap.table("t").expect("t");
    let e = t.read_column(0, "price", 0..1).expect_err("flipped byte");
    assert_names(&e, &p, "checksum mismatch");
    assert!(
        t.read_column(1, "price", 0..1).is_ok(),
        "other partitions stay readable"
    );
    drop((t, snap));
    db.close().expect("close");

    // Shorter than committed: the open refuses.
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), false);
    let p = table_dir(dir.path()).join("2026-11-22/seq~3.d");
    truncate(&p, 3);
    assert_names(&open_err(dir.path()), &p, "file is truncated");

    // A missing partition directory.
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), false);
    let p = table_dir(dir.path()).join("2026-11-22");
    std::fs::remove_dir_all(&p).expect("rm");
    assert_names(&open_err(dir.path()), &p, "partition directory");
}

#[test]
fn symbol_file_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), false);
    let p = table_dir(dir.path()).join("sym~1.sym");
    flip(&p, 21);
    assert_names(&open_err(dir.path()), &p, "checksum mismatch in entry 0");
}

#[test]
fn wal_torn_tail_is_cut_and_mid_log_damage_refused() {
    // Torn tail: the last record (never durable in the table files) is cut,
    // whether the zeros written ahead of it reached the disk or not.
    for keep_zeros in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        build(dir.path(), true);
        let seg = wal_segment(dir.path());
        let mut bytes = std::fs::read(&seg).expect("read");
        let end = bytes.iter().rposition(|&b| b != 0).expect("records") + 1;
        assert!(
            end < bytes.len(),
            "the open segment has zeros written ahead"
        );
        if keep_zeros {
            bytes[end - 3..end].fill(0);
        } else {
            bytes.truncate(end - 3);
        }
        std::fs::write(&seg, &bytes).expect("write");
        let db = open(dir.path());
        assert_eq!(
            column_i64(&db, "t", "seq"),
            vec![0, 3, 1, 2, 4],
            "commit 5's record was torn, the rest replayed (zeros kept: {keep_zeros})"
        );
        db.close().expect("close");
    }

    // A flipped byte in a record that has valid records after it.
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), true);
    let seg = wal_segment(dir.path());
    flip(&seg, 60);
    assert_names(&open_err(dir.path()), &seg, "valid records follow");
    // Nothing was changed by the refused open: fix the byte and it opens with everything.
    flip(&seg, 60);
    let db = open(dir.path());
    assert_eq!(column_i64(&db, "t", "seq"), vec![0, 3, 1, 2, 4, 5]);
}

#[test]
fn uncommitted_tails_and_orphans_are_removed_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), false);
    let t = table_dir(dir.path());
    // What a crash mid-commit leaves: bytes past the committed length, a partition
    // version no _txn refers to, a temp file, a table directory no registry lists.
    let col = t.join("2026-11-22/seq~3.d");
    let len = std::fs::metadata(&col).expect("meta").len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&col)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&[7; 24])
        })
        .expect("append garbage");
    std::fs::create_dir(t.join("2026-11-22.99")).expect("orphan version");
    std::fs::write(t.join("_txn.tmp"), b"half").expect("tmp");
    std::fs::create_dir(dir.path().join("db/ghost~9")).expect("orphan table");
    let db = open(dir.path());
    assert_eq!(std::fs::metadata(&col).expect("meta").len(), len);
    assert!(
        !t.join("_txn.tmp").exists(),
        "a stray file is removed at once"
    );
    assert_eq!(column_i64(&db, "t", "seq"), vec![0, 3, 1, 2]);
    assert!(db.open_report().cut_bytes >= 24 && db.open_report().removed_paths >= 1);
    // Directories (possibly many files) are left to housekeeping, so the open
    // does not wait for them.
    let pending = db.pending_garbage();
    for orphan in [t.join("2026-11-22.99"), dir.path().join("db/ghost~9")] {
        assert!(
            pending.contains(&orphan),
            "{} not handed to housekeeping",
            orphan.display()
        );
    }
    db.run_housekeeping().expect("housekeeping");
    assert!(!t.join("2026-11-22.99").exists());
    assert!(!dir.path().join("db/ghost~9").exists());
    assert_eq!(db.checkpoint_status().reclaim_pending_paths, 0);
}
