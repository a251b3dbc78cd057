//! The cp and rsync procedures of `docs/backup-guide.md`, extracted from the Markdown
//! and run exactly as printed against a server under write load; then the guide's
//! restore procedure, and a server on the restored root. The guide cannot rot.

use std::path::Path;
use std::process::Command;
use tokio_postgres::NoTls;

use crate::harness::{SeqWriter, Server, assert_gapless_prefix};

/// The bash block that follows `<!-- procedure: NAME -->` in the guide (also
/// the Docker blocks `compose.rs` runs).
pub(crate) fn procedure(name: &str) -> String {
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
    assert_gapless_prefix(&c, bounds.0, bounds.1).await;
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
    let writer = SeqWriter::start(connect(server.port).await);
    writer.wait_for(30).await;
    let backups = dir.path().join("backups");

    // cp, while the writer goes on.
    let before = writer.acked();
    let (ok, stdout) = tokio::task::block_in_place(|| {
        run(
            "backup-cp",
            &server,
            &[("TIDEMARK_ROOT", &root), ("BACKUP_DIR", &backups)],
        )
    });
    let after = writer.acked();
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
    writer.wait_for(after + 30).await;
    let rsync_before = writer.acked();
    let (ok, stdout) = tokio::task::block_in_place(|| {
        run(
            "backup-rsync",
            &server,
            &[("TIDEMARK_ROOT", &root), ("BACKUP_DIR", &backups)],
        )
    });
    let rsync_after = writer.acked();
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
    writer.finish().await;

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
