//! The cp and rsync procedures of `docs/backup-guide.md`, extracted from the Markdown
//! and run exactly as printed against a server under write load; then the guide's
//! restore procedure, and a server on the restored root. The guide cannot rot.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::harness::Server;

/// The bash block that follows `<!-- procedure: NAME -->` in the guide.
fn procedure(name: &str) -> String {
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/backup-guide.md"),
    )
    .expect("docs/backup-guide.md");
    let marker = format!("<!-- procedure: {name} -->");
    let after = guide
        .split_once(&marker)
        .unwrap_or_else(|| panic!("the guide has no {marker}"))
        .1;
    let body = after
        .split_once("```bash\n")
        .expect("a bash block after the marker")
        .1;
    body.split_once("```")
        .expect("the block ends")
        .0
        .to_string()
}

/// Runs a procedure with the connection and paths in the environment; its stdout
/// and whether it succeeded.
fn run(name: &str, server: &Server, env: &[(&str, &Path)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join(format!("{name}.sh"));
    std::fs::write(&script, procedure(name)).expect("write script");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", server.port.to_string())
        .env("PGUSER", "admin")
        .env("PGPASSWORD", "quest")
        .env("PGDATABASE", "tidemark");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        eprintln!(
            "{name} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (out.status.success(), stdout)
}

async fn connect(port: u16) -> tokio_postgres::Client {
    let conninfo = format!("host=127.0.0.1 port={port} user=admin password=quest dbname=tidemark");
    let (client, conn) = tokio_postgres::connect(&conninfo, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

async fn in_checkpoint(c: &tokio_postgres::Client) -> bool {
    c.query_one("SELECT in_progress FROM checkpoint_status()", &[])
        .await
        .expect("status")
        .get(0)
}

/// Restores `backup` with the guide's procedure and checks the restored server holds a
/// gapless prefix of the writer's rows within the bounds seen around the backup.
async fn restore_and_check(server: &Server, backup: &Path, target: &Path, bounds: (i64, i64)) {
    let (ok, _) = run(
        "restore-copy",
        server,
        &[("BACKUP", backup), ("RESTORE_ROOT", target)],
    );
    assert!(ok, "the restore procedure failed");
    assert!(target.join("_restore").exists());
    let restored = Server::start(target, &[]);
    let c = connect(restored.port).await;
    let rows = c
        .query("SELECT seq FROM ticks ORDER BY seq", &[])
        .await
        .expect("select");
    let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let n = seqs.len() as i64;
    assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "a gapless prefix");
    assert!(
        n >= bounds.0 && n <= bounds.1 + 1,
        "{n} rows; {} acknowledged before the backup, {} after it",
        bounds.0,
        bounds.1
    );
    assert!(!in_checkpoint(&c).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_guide_procedures_work_as_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let server = Server::start(&root, &[]);
    let admin = connect(server.port).await;
    admin
        .batch_execute(
            "CREATE TABLE ticks (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create");
    let acked = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, port) = (acked.clone(), stop.clone(), server.port);
        tokio::spawn(async move {
            let c = connect(port).await;
            let mut seq = 0i64;
            while !stop.load(Ordering::SeqCst) {
                let day = if seq % 7 == 6 { 20 } else { 21 }; // some rows out of order
                c.batch_execute(&format!(
                    "INSERT INTO ticks VALUES ('2026-11-{day}T00:00:00.{seq:06}', {seq})"
                ))
                .await
                .expect("insert");
                seq += 1;
                acked.store(seq, Ordering::SeqCst);
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let backups = dir.path().join("backups");

    // cp, while the writer goes on.
    let before = acked.load(Ordering::SeqCst);
    let (ok, stdout) = tokio::task::block_in_place(|| {
        run(
            "backup-cp",
            &server,
            &[("TIDEMARK_ROOT", &root), ("BACKUP_DIR", &backups)],
        )
    });
    let after = acked.load(Ordering::SeqCst);
    assert!(ok, "the cp procedure failed");
    assert!(
        !in_checkpoint(&admin).await,
        "the procedure released the checkpoint"
    );
    let cp_backup = stdout.lines().last().expect("the backup path").to_string();

    // rsync twice: a full mirror, then an incremental run; restore the second.
    let (ok, _) = tokio::task::block_in_place(|| {
        run(
            "backup-rsync",
            &server,
            &[("TIDEMARK_ROOT", &root), ("BACKUP_DIR", &backups)],
        )
    });
    assert!(ok, "the first rsync run failed");
    while acked.load(Ordering::SeqCst) < after + 30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rsync_before = acked.load(Ordering::SeqCst);
    let (ok, stdout) = tokio::task::block_in_place(|| {
        run(
            "backup-rsync",
            &server,
            &[("TIDEMARK_ROOT", &root), ("BACKUP_DIR", &backups)],
        )
    });
    let rsync_after = acked.load(Ordering::SeqCst);
    assert!(ok, "the incremental rsync run failed");
    let rsync_backup = stdout.lines().last().expect("the mirror path").to_string();

    // A copy that fails still releases the checkpoint (the trap).
    let (ok, _) = tokio::task::block_in_place(|| {
        run(
            "backup-cp",
            &server,
            &[
                ("TIDEMARK_ROOT", &dir.path().join("no-such-root")),
                ("BACKUP_DIR", &backups),
            ],
        )
    });
    assert!(!ok, "copying a missing root must fail");
    assert!(
        !in_checkpoint(&admin).await,
        "RELEASE ran although the copy failed"
    );
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");

    restore_and_check(
        &server,
        Path::new(&cp_backup),
        &dir.path().join("restored-cp"),
        (before, after),
    )
    .await;
    restore_and_check(
        &server,
        Path::new(&rsync_backup),
        &dir.path().join("restored-rsync"),
        (rsync_before, rsync_after),
    )
    .await;
    // The restore procedure refuses to overwrite.
    let (ok, _) = run(
        "restore-copy",
        &server,
        &[
            ("BACKUP", Path::new(&cp_backup)),
            ("RESTORE_ROOT", &dir.path().join("restored-cp")),
        ],
    );
    assert!(!ok, "restoring over an existing directory must be refused");
}
