//! Disk full: the root on a small tmpfs (mounted by the test; CI runs as root).
//! Writes past the limit fail with SQLSTATE 53100 and a clear message, reads keep
//! working, the server stays up, writes resume once space is freed, and a restart
//! after SIGKILL finds every acknowledged row and nothing else. The same holds in
//! checkpoint mode, and a restore that finds the disk full refuses with the
//! reason, keeps `_restore`, and succeeds once space is freed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Server, refused_start};

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Fails the test, saying why, where mounting is not possible (not root,
    /// or no mount permission in this container): it is not passed unrun.
    fn mount(megabytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs here ({}); the disk-full tests need root",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ballast(&self) -> PathBuf {
        self.path().join("ballast")
    }

    /// Fills the disk with a ballast file, leaving about `leave` bytes free.
    fn fill_leaving(&self, leave: u64) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.ballast())
            .expect("ballast");
        let chunk = vec![0xA5u8; 1 << 16];
        loop {
            let free = nix::sys::statvfs::statvfs(self.path()).expect("statvfs");
            let free = free.blocks_available() as u64 * free.fragment_size() as u64;
            if free <= leave {
                break;
            }
            let n = chunk.len().min((free - leave) as usize).max(4096);
            if f.write_all(&chunk[..n]).is_err() {
                break;
            }
        }
    }

    fn free_ballast(&self) {
        std::fs::remove_file(self.ballast()).expect("remove ballast");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

const ENV: [(&str, &str); 2] = [
    ("TIDEMARK_STORAGE_WAL_SEGMENT_MB", "1"),
    ("TIDEMARK_STORAGE_HOUSEKEEPING_INTERVAL_MS", "100"),
];

/// Inserts batches of 200 rows of 1 KiB until one fails; the rows acknowledged
/// (seq 0..n) and the error.
async fn insert_until_full(
    client: &tokio_postgres::Client,
    from: i64,
) -> (i64, tokio_postgres::Error) {
    let mut next = from;
    loop {
        let sql = format!(
            "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 1000), value, \
             's' || (value % 5000)::varchar, repeat('x', 1024) FROM generate_series({next}, {})",
            next + 199
        );
        match client.batch_execute(&sql).await {
            Ok(()) => next += 200,
            Err(e) => return (next, e),
        }
        assert!(next < 10_000_000, "the disk never filled");
    }
}

fn assert_disk_full(e: &tokio_postgres::Error) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("a server error, got {e}"));
    assert_eq!(db.code().code(), "53100", "{}", db.message());
    assert!(
        db.message().contains("No space left") || db.message().contains("disk"),
        "the message says why: {}",
        db.message()
    );
}

async fn count(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("reads work")
        .get(0)
}

/// Writes resume once space is freed (housekeeping retries its flush).
async fn insert_after_freeing(client: &tokio_postgres::Client, from: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sql = format!(
            "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 1000), value, \
             'after' AS sym, 'after' AS pad FROM generate_series({from}, {})",
            from + 9
        );
        match client.batch_execute(&sql).await {
            Ok(()) => return from + 10,
            Err(e) if Instant::now() < deadline => {
                assert_disk_full(&e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("writes did not resume after space was freed: {e:?}"),
        }
    }
}

/// The whole scenario on one root; `checkpoint` runs it in checkpoint mode.
async fn fill_free_and_restart(disk: &SmallDisk, checkpoint: bool) {
    let root = disk.path().join("root");
    let server = Server::start(&root, &ENV);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, seq BIGINT, sym SYMBOL, pad VARCHAR) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create");
    if checkpoint {
        client
            .batch_execute("CHECKPOINT CREATE")
            .await
            .expect("checkpoint");
    }
    disk.fill_leaving(6 << 20);
    let (mut acked, e) = insert_until_full(&client, 0).await;
    assert_disk_full(&e);
    assert!(acked > 0, "some rows fitted before the disk filled");
    // The server stays up: reads work, and further writes fail the same way
    // (a little may fit again as housekeeping recycles WAL segments).
    assert_eq!(count(&client).await, acked);
    for _ in 0..3 {
        let (n, e) = insert_until_full(&client, acked).await;
        assert_disk_full(&e);
        acked = n;
    }
    assert_eq!(count(&client).await, acked);
    let fresh = server.client().await;
    assert_eq!(count(&fresh).await, acked, "new connections are served");
    disk.free_ballast();
    let acked = insert_after_freeing(&client, acked).await;
    assert_eq!(count(&client).await, acked);
    if checkpoint {
        let in_progress: bool = client
            .query_one("SELECT in_progress FROM checkpoint_status()", &[])
            .await
            .expect("status")
            .get(0);
        assert!(in_progress, "the checkpoint survived the full disk");
    }
    // SIGKILL, restart: every acknowledged row, nothing else, no corruption.
    drop(server);
    let server = Server::start(&root, &ENV);
    let client = server.client().await;
    let rows = client
        .query("SELECT seq FROM t ORDER BY seq", &[])
        .await
        .expect("select");
    let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(seqs, (0..acked).collect::<Vec<_>>(), "after restart");
    if checkpoint {
        client
            .batch_execute("CHECKPOINT RELEASE")
            .await
            .expect("release");
    }
}

#[tokio::test]
async fn a_full_disk_fails_writes_with_53100_and_they_resume_when_space_is_freed() {
    let disk = SmallDisk::mount(48);
    fill_free_and_restart(&disk, false).await;
}

#[tokio::test]
async fn a_full_disk_in_checkpoint_mode() {
    let disk = SmallDisk::mount(48);
    fill_free_and_restart(&disk, true).await;
}

#[tokio::test]
async fn a_restore_that_finds_the_disk_full_refuses_and_succeeds_once_space_is_freed() {
    let disk = SmallDisk::mount(16);
    let root = disk.path().join("root");
    let server = Server::start(&root, &ENV);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, seq BIGINT, sym SYMBOL, pad VARCHAR) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 1000), value, 'a', 'x' \
             FROM generate_series(0, 999); \
             CHECKPOINT CREATE; \
             INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 1000), value, 'late', 'x' \
             FROM generate_series(1000, 1099)",
        )
        .await
        .expect("rows, the cut, rows after it");
    // The root as a snapshot would hold it: in checkpoint mode, the server killed.
    drop(client);
    drop(server);
    std::fs::write(root.join("_restore"), b"").expect("touch _restore");
    disk.fill_leaving(0);
    // Restore on a full disk must refuse.
    let stderr = refused_start(&root);
    assert!(
        stderr.contains("No space left"),
        "the reason is printed: {stderr}"
    );
    assert!(
        root.join("_restore").exists(),
        "_restore is kept for the next attempt"
    );
    disk.free_ballast();
    let server = Server::start(&root, &ENV);
    let client = server.client().await;
    assert_eq!(count(&client).await, 1000, "back at the cut");
    assert!(!root.join("_restore").exists());
}
