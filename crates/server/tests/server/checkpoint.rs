//! CHECKPOINT CREATE -> copy the root (cp -a, rsync -a) while writes go on ->
//! CHECKPOINT RELEASE -> `_restore` on the copy -> a server on the copy holds exactly
//! the cut. Also: the mode survives a restart, restore's failure paths, housekeeping
//! held during the mode, and the statements from psql and drivers.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::harness::{Server, refused_start, tidemark};

const WRITERS: i64 = 2;

async fn column(client: &tokio_postgres::Client, sql: &str) -> Vec<Option<String>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    column(client, sql).await[0]
        .as_deref()
        .expect("a count")
        .parse()
        .expect("a number")
}

/// Each writer commits `(writer, seq)` into t1 and t2 in one transaction, seq 0, 1,
/// 2, ... one after the other; every 5th row goes into an older partition (an
/// out-of-order write that rewrites it). `acked[w]` is the number acknowledged.
async fn writer(server_port: u16, w: i64, acked: Arc<AtomicI64>, stop: Arc<AtomicBool>) {
    let conninfo =
        format!("host=127.0.0.1 port={server_port} user=admin password=quest dbname=tidemark");
    let (client, conn) = tokio_postgres::connect(&conninfo, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let mut seq = 0i64;
    while !stop.load(Ordering::SeqCst) {
        let day = if seq % 5 == 4 { 20 } else { 21 };
        let ts = format!(
            "2026-11-{day}T10:{:02}:{:02}.{w}{seq:05}",
            (seq / 60) % 60,
            seq % 60
        );
        let sql = format!(
            "BEGIN; INSERT INTO t1 VALUES ('{ts}', {w}, {seq}); \
             INSERT INTO t2 VALUES ('{ts}', {w}, {seq}); COMMIT"
        );
        client.batch_execute(&sql).await.expect("commit");
        seq += 1;
        acked.store(seq, Ordering::SeqCst);
    }
}

/// Waits up to a minute for `done` (a writer that failed never gets there).
async fn wait_for(done: impl Fn() -> bool, what: &str) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Copies `from` to `to` with `tool` while the server writes on. A file that
/// vanishes during the copy (a renamed temporary, a recycled WAL segment) is
/// expected and reported by both tools; anything else fails the test.
fn copy_root(tool: &str, from: &Path, to: &Path) {
    let out = match tool {
        "cp" => Command::new("cp").arg("-a").arg(from).arg(to).output(),
        _ => Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", from.display()))
            .arg(format!("{}/", to.display()))
            .output(),
    }
    .expect("copy tool (scripts/install-test-deps.sh installs rsync)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let only_vanished = stderr.lines().all(|l| {
        l.contains("No such file or directory")
            || l.contains("vanished")
            || l.contains("some files vanished")
    });
    assert!(
        out.status.success() || only_vanished,
        "{tool} failed: {stderr}"
    );
}

async fn cut_survives_a_copy_with(tool: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let server = Server::start(&root, &[]);
    let admin = server.client().await;
    admin
        .batch_execute(
            "CREATE TABLE t1 (ts TIMESTAMP, w BIGINT, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY;
             CREATE TABLE t2 (ts TIMESTAMP, w BIGINT, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY;
             CREATE TABLE dropped (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY;
             CREATE TABLE truncated (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO dropped VALUES ('2026-11-20T01:00:00', 1), ('2026-11-21T01:00:00', 2);
             INSERT INTO truncated VALUES ('2026-11-21T01:00:00', 3);
             CREATE VIEW kept AS (SELECT w, count(*) AS n FROM t1 GROUP BY w);
             CREATE VIEW replaced AS (SELECT 1 AS version);",
        )
        .await
        .expect("setup");

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Vec<Arc<AtomicI64>> = (0..WRITERS).map(|_| Arc::new(AtomicI64::new(0))).collect();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(writer(
                server.port,
                w,
                acked[w as usize].clone(),
                stop.clone(),
            ))
        })
        .collect();
    wait_for(
        || acked.iter().all(|a| a.load(Ordering::SeqCst) >= 20),
        "writers start",
    )
    .await;
    let acked_before: Vec<i64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    admin
        .batch_execute("CHECKPOINT CREATE")
        .await
        .expect("checkpoint");
    let acked_after: Vec<i64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    // DDL during the mode, while the writers go on.
    admin
        .batch_execute(
            "DROP TABLE dropped; TRUNCATE TABLE truncated;
             ALTER TABLE t1 ADD COLUMN extra DOUBLE;
             CREATE TABLE later (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO later VALUES ('2026-11-21T02:00:00', 9);
             DROP VIEW kept; CREATE OR REPLACE VIEW replaced AS (SELECT 2 AS version);
             CREATE VIEW later_view AS (SELECT * FROM later);",
        )
        .await
        .expect("DDL during checkpoint mode");
    wait_for(
        || {
            acked
                .iter()
                .zip(&acked_after)
                .all(|(a, b)| a.load(Ordering::SeqCst) >= b + 10)
        },
        "writers go on after the DDL",
    )
    .await;
    let copy = dir.path().join("copy");
    copy_root(tool, &root, &copy);
    admin
        .batch_execute("CHECKPOINT RELEASE")
        .await
        .expect("release");
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("writer");
    }
    drop(server);

    std::fs::write(copy.join("_restore"), b"").expect("touch _restore");
    let restored = Server::start(&copy, &[]);
    assert!(!copy.join("_restore").exists() && !copy.join(".checkpoint").exists());
    let c = restored.client().await;
    // The same gapless prefix of every writer's sequence in both tables: the
    // multi-table commits are wholly in or out of the cut.
    for w in 0..WRITERS {
        let mut prefix = None;
        for t in ["t1", "t2"] {
            let seqs: Vec<i64> = column(
                &c,
                &format!("SELECT seq FROM {t} WHERE w = {w} ORDER BY seq"),
            )
            .await
            .into_iter()
            .map(|v| v.expect("seq").parse().expect("number"))
            .collect();
            let n = seqs.len() as i64;
            assert_eq!(
                seqs,
                (0..n).collect::<Vec<_>>(),
                "{t}, writer {w}: not a gapless prefix"
            );
            assert!(
                n >= acked_before[w as usize] && n <= acked_after[w as usize] + 1,
                "{t}, writer {w}: {n} rows; {} acknowledged before CREATE, {} when it returned",
                acked_before[w as usize],
                acked_after[w as usize]
            );
            assert_eq!(
                *prefix.get_or_insert(n),
                n,
                "t1 and t2 disagree for writer {w}"
            );
        }
    }
    assert_eq!(
        count(&c, "SELECT count(*) FROM dropped").await,
        2,
        "dropped table back"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM truncated").await,
        1,
        "truncated rows back"
    );
    let err = c
        .simple_query("SELECT extra FROM t1")
        .await
        .expect_err("the column added after the cut is gone");
    assert_eq!(err.code().map(|s| s.code()), Some("42703"));
    let err = c
        .simple_query("SELECT * FROM later")
        .await
        .expect_err("the table created after the cut is gone");
    assert_eq!(err.code().map(|s| s.code()), Some("42P01"));
    // Views as at the cut: the dropped one back, the replaced one as it was,
    // the one created after the cut gone.
    assert_eq!(
        count(&c, "SELECT count(*) FROM kept").await,
        WRITERS,
        "dropped view back"
    );
    assert_eq!(count(&c, "SELECT version FROM replaced").await, 1);
    let err = c
        .simple_query("SELECT * FROM later_view")
        .await
        .expect_err("the view created after the cut is gone");
    assert_eq!(err.code().map(|s| s.code()), Some("42P01"));
    // The restored server takes writes.
    c.batch_execute("INSERT INTO t1 VALUES ('2026-11-22T00:00:00', 99, 0)")
        .await
        .expect("write after restore");
    assert_eq!(count(&c, "SELECT count(*) FROM t1 WHERE w = 99").await, 1);
    assert_eq!(
        column(&c, "SELECT in_progress FROM checkpoint_status()").await,
        vec![Some("f".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_survives_cp_a_while_writing() {
    cut_survives_a_copy_with("cp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_survives_rsync_a_while_writing() {
    cut_survives_a_copy_with("rsync").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_mode_survives_restart_and_holds_old_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("TIDEMARK_STORAGE_HOUSEKEEPING_INTERVAL_MS", "50"),
        ("TIDEMARK_STORAGE_APPLY_INTERVAL_MS", "50"),
    ];
    let server = Server::start(dir.path(), &env);
    let c = server.client().await;
    // Plain CHECKPOINT puts the first rows in the files: the cut refers to them.
    c.batch_execute(
        "CREATE TABLE t (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO t VALUES ('2026-11-21T10:00:00', 1), ('2026-11-21T11:00:00', 2);
         CHECKPOINT;
         CHECKPOINT CREATE;
         INSERT INTO t VALUES ('2026-11-21T09:00:00', 0);",
    )
    .await
    .expect("setup");
    // The out-of-order row rewrote the day: the cut's version must stay on disk.
    let day = |name: &str| {
        let table = std::fs::read_dir(dir.path().join("db"))
            .expect("db")
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("t~"))
            .expect("table dir")
            .path();
        table.join(name)
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        day("2026-11-21").exists(),
        "the cut's partition version is held"
    );
    let err = c
        .batch_execute("CHECKPOINT CREATE")
        .await
        .expect_err("one checkpoint at a time");
    assert_eq!(err.code().map(|s| s.code()), Some("55000"));
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(
        message.contains("since") || message.contains("created"),
        "{message}"
    );
    assert!(message.contains("CHECKPOINT RELEASE"), "{message}");

    // Restart: still in checkpoint mode, the old version still held.
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(20)).success());
    let server = Server::start(dir.path(), &env);
    let c = server.client().await;
    assert_eq!(
        column(&c, "SELECT in_progress FROM checkpoint_status()").await,
        vec![Some("t".to_string())]
    );
    // The late row, replayed from the WAL, is applied again: the day is rewritten
    // again, and its old version held again.
    let mut held = 0;
    for _ in 0..100 {
        held = count(&c, "SELECT held_bytes FROM checkpoint_status()").await;
        if held > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held > 0, "held_bytes {held}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(day("2026-11-21").exists(), "still held after the restart");
    assert_eq!(count(&c, "SELECT count(*) FROM t").await, 3);
    let metrics = crate::protocol::http_get(server.http_port, "/metrics").1;
    assert!(
        metrics.contains("tidemark_checkpoint_in_progress 1"),
        "{metrics}"
    );

    // RELEASE: housekeeping reclaims the old version soon after.
    c.batch_execute("CHECKPOINT RELEASE")
        .await
        .expect("release");
    let mut gone = false;
    for _ in 0..100 {
        if !day("2026-11-21").exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gone,
        "the old partition version was reclaimed after RELEASE"
    );
    assert_eq!(count(&c, "SELECT count(*) FROM t").await, 3);
    assert_eq!(
        column(&c, "SELECT in_progress FROM checkpoint_status()").await,
        vec![Some("f".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_free_space_during_checkpoint_mode_is_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A threshold no disk here reaches (1 EiB): the warning must come.
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEMARK_STORAGE_HOUSEKEEPING_INTERVAL_MS", "50"),
            (
                "TIDEMARK_STORAGE_CHECKPOINT_FREE_SPACE_WARN_MB",
                "1099511627776",
            ),
        ],
    );
    let c = server.client().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server
            .wait_for_log("free space is running low", Duration::from_millis(200))
            .is_none(),
        "no warning outside checkpoint mode"
    );
    c.batch_execute("CHECKPOINT CREATE").await.expect("create");
    let line = server.wait_for_log("free space is running low", Duration::from_secs(10));
    assert!(line.is_some_and(|l| l.contains("WARN") && l.contains("CHECKPOINT RELEASE")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_failures_are_reported_and_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let server = Server::start(&root, &[]);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE t (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO t VALUES ('2026-11-21T10:00:00', 1);",
    )
    .await
    .expect("setup");

    // A copy without checkpoint mode, with _restore: refused, saying why.
    let plain = dir.path().join("plain");
    copy_root("cp", &root, &plain);
    std::fs::write(plain.join("_restore"), b"").expect("touch");
    let err = refused_start(&plain);
    assert!(err.contains("no checkpoint"), "{err}");
    assert!(
        plain.join("_restore").exists(),
        "_restore stays for the next attempt"
    );

    c.batch_execute("CHECKPOINT CREATE; INSERT INTO t VALUES ('2026-11-21T11:00:00', 2)")
        .await
        .expect("checkpoint");
    let copy = dir.path().join("copy");
    copy_root("cp", &root, &copy);
    c.batch_execute("CHECKPOINT RELEASE")
        .await
        .expect("release");
    std::fs::write(copy.join("_restore"), b"").expect("touch");
    let cut = copy.join(".checkpoint/cut");
    let good = std::fs::read(&cut).expect("cut");

    // A damaged cut is caught by its checksum; the file is named.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(&cut, &bad).expect("damage");
    let err = refused_start(&copy);
    assert!(
        err.contains("checksum") && err.contains(".checkpoint/cut"),
        "{err}"
    );
    assert!(copy.join("_restore").exists());

    // A cut written by another storage-format major version: both versions named.
    let mut other = good.clone();
    other[8] = 7;
    std::fs::write(&cut, &other).expect("version");
    let err = refused_start(&copy);
    assert!(err.contains("version 7") && err.contains("1.x"), "{err}");

    // Restored, the copy holds the cut: one row.
    std::fs::write(&cut, &good).expect("repair");
    let restored = Server::start(&copy, &[]);
    let rc = restored.client().await;
    assert_eq!(count(&rc, "SELECT count(*) FROM t").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_half_way_is_finished_by_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let server = Server::start(&root, &[]);
    let c = server.client().await;
    let mut setup = String::new();
    for i in 0..60 {
        setup.push_str(&format!(
            "CREATE TABLE t{i} (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO t{i} VALUES ('2026-11-21T10:00:00', {i});"
        ));
    }
    c.batch_execute(&setup).await.expect("setup");
    c.batch_execute("CHECKPOINT CREATE")
        .await
        .expect("checkpoint");
    let mut after = String::new();
    for i in 0..60 {
        after.push_str(&format!(
            "INSERT INTO t{i} VALUES ('2026-11-21T11:00:00', -1);"
        ));
    }
    c.batch_execute(&after).await.expect("after the cut");
    let copy = dir.path().join("copy");
    copy_root("cp", &root, &copy);
    drop(server);
    std::fs::write(copy.join("_restore"), b"").expect("touch");

    // SIGKILL the restoring server at increasing moments (some land mid-restore,
    // some after it); whatever state each kill leaves, the next start finishes.
    for delay_ms in [1u64, 3, 6, 10, 20, 40] {
        let mut child = tidemark()
            .args(["serve", "--root"])
            .arg(&copy)
            .args(["--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        if !copy.join("_restore").exists() {
            break;
        }
    }
    let restored = Server::start(&copy, &[]);
    let rc = restored.client().await;
    for i in 0..60 {
        assert_eq!(
            column(&rc, &format!("SELECT v FROM t{i}")).await,
            vec![Some(i.to_string())],
            "t{i} holds exactly the cut"
        );
    }
}

#[test]
fn checkpoint_statements_over_psql_and_the_read_only_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEMARK_AUTH_READONLY_USER", "reader"),
            ("TIDEMARK_AUTH_READONLY_PASSWORD", "r3ad"),
        ],
    );
    let psql = |user: &str, password: &str, sql: &str| {
        Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user={user} password={password} dbname=tidemark",
                server.port
            ))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql")
    };
    let out = psql("admin", "quest", "CHECKPOINT CREATE");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = psql(
        "admin",
        "quest",
        "SELECT in_progress, started_at IS NOT NULL, tables FROM checkpoint_status()",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t|t|0");
    let out = psql("reader", "r3ad", "CHECKPOINT RELEASE");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read-only"), "{err}");
    let out = psql(
        "reader",
        "r3ad",
        "SELECT in_progress FROM checkpoint_status()",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "t",
        "readers may look"
    );
    // The legacy spelling, and RELEASE without a checkpoint: success with a NOTICE.
    let out = psql("admin", "quest", "SNAPSHOT COMPLETE");
    assert!(out.status.success());
    let out = psql("admin", "quest", "CHECKPOINT RELEASE");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NOTICE") && err.contains("no checkpoint"),
        "{err}"
    );
    let out = psql(
        "admin",
        "quest",
        "SELECT in_progress, started_at IS NULL, held_bytes FROM checkpoint_status()",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "f|t|0");
}

/// A symbol index through the real server: SIGKILL with indexed rows only in
/// the WAL, recovery, then a copy taken in checkpoint mode restored with the
/// index of its cut while the original dropped it.
#[tokio::test(flavor = "multi_thread")]
async fn a_symbol_index_survives_sigkill_and_restores_with_its_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let count = "SELECT count(*) FROM t WHERE sym = 'S7'";
    let explain = "EXPLAIN SELECT price FROM t WHERE sym = 'S7'";
    let indexed = "SELECT indexed FROM table_columns('t') WHERE \"column\" = 'sym'";
    {
        let server = Server::start(&root, &[]);
        let client = server.client().await;
        client
            .batch_execute(
                "CREATE TABLE t (ts TIMESTAMP, sym SYMBOL INDEX, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY; \
                 INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 1000000), \
                 'S' || (value % 13)::varchar, value FROM generate_series(0, 199999); \
                 CHECKPOINT",
            )
            .await
            .expect("load");
        // Late and new rows, acknowledged, then SIGKILL before any apply
        // could be trusted to have run.
        client
            .batch_execute(
                "INSERT INTO t SELECT to_timestamp_micros(1795219200000000 + value * 7000000 + 1), 'S7', -1 \
                 FROM generate_series(0, 999)",
            )
            .await
            .expect("late rows");
        server.signal("KILL");
        server.wait(Duration::from_secs(10));
    }
    let expected = (200_000 / 13 + 1 + 1000).to_string();
    let server = Server::start(&root, &[]);
    let client = server.client().await;
    assert_eq!(column(&client, count).await, vec![Some(expected.clone())]);
    client.batch_execute("CHECKPOINT").await.expect("apply");
    assert_eq!(column(&client, count).await, vec![Some(expected.clone())]);
    let plan = explained(&client, explain).await;
    assert!(
        plan.contains("symbol filter: sym IN (1 values) by index"),
        "{plan}"
    );
    // Checkpoint mode: rows and DROP INDEX after the cut; a copy restores the cut.
    client
        .batch_execute("CHECKPOINT CREATE")
        .await
        .expect("create");
    client
        .batch_execute(
            "INSERT INTO t VALUES ('2026-11-21T00:00:00.5', 'S7', 0); DROP INDEX t_sym_idx; CHECKPOINT",
        )
        .await
        .expect("after the cut");
    let copy = dir.path().join("copy");
    copy_root("cp", &root, &copy);
    client
        .batch_execute("CHECKPOINT RELEASE")
        .await
        .expect("release");
    assert_eq!(column(&client, indexed).await, vec![Some("f".into())]);
    drop(server);
    std::fs::write(copy.join("_restore"), b"").expect("touch _restore");
    let restored = Server::start(&copy, &[]);
    let client = restored.client().await;
    assert_eq!(column(&client, indexed).await, vec![Some("t".into())]);
    assert_eq!(column(&client, count).await, vec![Some(expected)]);
    let plan = explained(&client, explain).await;
    assert!(plan.contains("by index"), "{plan}");
}

/// Every cell of `sql`'s result (an EXPLAIN), joined.
async fn explained(client: &tokio_postgres::Client, sql: &str) -> String {
    let messages = client.simple_query(sql).await.expect("explain");
    crate::harness::rows_of(&messages)
        .into_iter()
        .flatten()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}
