//! Built-in backups as operators run them: `BACKUP DATABASE` from a client
//! while writes go on, `backup_status()`, a SIGKILL in the middle and the
//! resume at the next start, an incremental backup, `tidemark backup
//! list|verify`, and `tidemark restore` into a new root that a server then
//! serves — to a `file://` directory and to a real S3-protocol server (moto,
//! from PyPI: the S3 API as AWS's own SDK tests use it, started here on a
//! loopback port; scripts/install-test-deps.sh installs it).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use crate::harness::{
    SeqWriter, Server, assert_gapless_prefix, ca_signed_cert, http, self_signed_cert, tidemark,
};

async fn status_row(client: &tokio_postgres::Client) -> Vec<Option<String>> {
    let sql = "SELECT phase, backup_id, files_total, files_done, files_reused, bytes_total, \
               bytes_done, bytes_uploaded, last_error FROM backup_status()";
    client
        .simple_query(sql)
        .await
        .expect("backup_status()")
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .expect("one row")
}

fn num(row: &[Option<String>], i: usize) -> i64 {
    row[i]
        .as_deref()
        .expect("a value")
        .parse()
        .expect("a number")
}

/// Polls backup_status() until `done` says so (two minutes at most).
async fn wait_status(
    client: &tokio_postgres::Client,
    what: &str,
    done: impl Fn(&[Option<String>]) -> bool,
) -> Vec<Option<String>> {
    for _ in 0..1200 {
        let row = status_row(client).await;
        if done(&row) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting until {what}: {:?}",
        status_row(client).await
    );
}

fn phase_is(p: &'static str) -> impl Fn(&[Option<String>]) -> bool {
    move |row| row[0].as_deref() == Some(p)
}

/// Runs `tidemark <args>` with `env`; stdout, after asserting success.
fn cli(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = tidemark();
    cmd.args(args).env("TIDEMARK_LOG_LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tidemark");
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn load(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE ticks (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY;
             CREATE TABLE bulk (ts TIMESTAMP, s SYMBOL, v DOUBLE, n NUMERIC(12,2)) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO bulk SELECT ts, 's' || (x % 50), x * 0.5, x / 4.0
               FROM (SELECT x, timestamp_sequence('2026-11-01', 10000000) ts FROM long_sequence(200000)) q;
             CHECKPOINT;",
        )
        .await
        .expect("load");
}

async fn bulk_digest(client: &tokio_postgres::Client) -> String {
    let rows = client
        .query(
            "SELECT count(*)::text || '/' || sum(v)::text || '/' || sum(n)::text || '/' || \
             count(DISTINCT s)::text FROM bulk",
            &[],
        )
        .await
        .expect("digest");
    rows[0].get(0)
}

/// A backup started while a writer commits `ticks` rows.
struct Started {
    /// The `bulk` table as it is in the backup.
    digest: String,
    writer: SeqWriter,
    /// Rows acknowledged before BACKUP DATABASE was sent and when it returned.
    before: i64,
    after: i64,
}

/// Loads the tables, starts the writer, then BACKUP DATABASE.
async fn backup_under_writes(server: &Server, admin: &tokio_postgres::Client) -> Started {
    load(admin).await;
    let digest = bulk_digest(admin).await;
    let writer = SeqWriter::start(server.client().await);
    writer.wait_for(20).await;
    let before = writer.acked();
    admin
        .batch_execute("BACKUP DATABASE")
        .await
        .expect("backup");
    let after = writer.acked();
    Started {
        digest,
        writer,
        before,
        after,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_writes_survives_sigkill_resumes_and_restores_to_its_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let dest = format!("file://{}", dir.path().join("dest").display());
    // Slow enough to be killed in the middle: about 6 MB at 1.5 MiB/s.
    let env = [
        ("TIDEMARK_BACKUP_DESTINATION", dest.as_str()),
        ("TIDEMARK_BACKUP_MAX_MB_PER_SECOND", "1.5"),
        ("TIDEMARK_BACKUP_CONCURRENCY", "2"),
    ];
    let server = Server::start(&root, &env);
    let admin = server.client().await;
    let Started {
        digest,
        writer,
        before,
        after,
    } = backup_under_writes(&server, &admin).await;
    let row = status_row(&admin).await;
    let id = row[1].clone().expect("an id");
    // The checkpoint is the backup's: the operator cannot release it, nor start another.
    let err = admin
        .batch_execute("CHECKPOINT RELEASE")
        .await
        .expect_err("held by the backup");
    assert_eq!(err.code().map(|c| c.code()), Some("55000"), "{err:?}");
    assert!(
        err.to_string().contains("holds the checkpoint")
            || format!("{err:?}").contains("holds the checkpoint"),
        "{err:?}"
    );
    let err = admin
        .batch_execute("BACKUP DATABASE")
        .await
        .expect_err("one at a time");
    assert_eq!(err.code().map(|c| c.code()), Some("55000"), "{err:?}");

    // Some files complete (the small table files go first, the WAL last), and
    // less than half of the bytes.
    let row = wait_status(&admin, "part of the files are uploaded", |r| {
        num(r, 3) >= 3 && num(r, 6) < num(r, 5) / 2
    })
    .await;
    assert!(num(&row, 6) > 0, "{row:?}");
    writer.finish().await;
    // Killed in the middle of the upload.
    drop(server);

    let server = Server::start(&root, &env);
    assert!(
        server
            .wait_for_log("resuming the backup", Duration::from_secs(10))
            .is_some(),
        "the interrupted backup resumes by itself"
    );
    let admin = server.client().await;
    let row = wait_status(&admin, "the resumed backup is done", phase_is("done")).await;
    assert_eq!(
        row[1].as_deref(),
        Some(id.as_str()),
        "the same backup, resumed"
    );
    assert!(
        num(&row, 7) < num(&row, 5),
        "the resume sent only what was missing: {row:?}"
    );
    let cp = admin
        .simple_query("SELECT in_progress FROM checkpoint_status()")
        .await
        .expect("status");
    assert!(
        matches!(&cp[1], SimpleQueryMessage::Row(r) if r.get(0) == Some("f")),
        "the checkpoint is released"
    );

    // An incremental backup after more writes uploads only new and grown files;
    // this one as a cron job takes it: `tidemark backup --server` returns when it is done.
    admin
        .batch_execute("INSERT INTO bulk VALUES ('2026-12-01T00:00:00', 'new', 1, 1); CHECKPOINT")
        .await
        .expect("more writes");
    let address = format!("127.0.0.1:{}", server.port);
    let said = cli(
        &["backup", "--server", &address],
        &[("PGUSER", "admin"), ("PGPASSWORD", "quest")],
    );
    assert!(said.contains(" done in "), "{said}");
    let row = status_row(&admin).await;
    assert_eq!(row[0].as_deref(), Some("done"), "{row:?}");
    assert!(said.contains(row[1].as_deref().expect("an id")), "{said}");
    assert!(num(&row, 4) > 0, "unchanged files are reused: {row:?}");
    assert!(num(&row, 7) * 4 < num(&row, 5), "a small upload: {row:?}");
    let digest2 = bulk_digest(&admin).await;
    drop(server);

    let list = cli(&["backup", "list", "--from", &dest], &[]);
    assert_eq!(list.lines().count(), 3, "a header and two backups:\n{list}");
    assert!(list.contains(&id), "{list}");
    let verified = cli(&["backup", "verify", "--from", &dest, "--backup", &id], &[]);
    assert!(verified.contains("every object matches"), "{verified}");

    // Each backup restores to its own cut, as a root a server serves.
    let copy = dir.path().join("copy");
    let said = cli(
        &[
            "restore",
            "--from",
            &dest,
            "--root",
            &copy.display().to_string(),
            "--backup",
            &id,
        ],
        &[],
    );
    assert!(said.contains(&id), "{said}");
    let restored = Server::start(&copy, &[]);
    let c = restored.client().await;
    assert_gapless_prefix(&c, before, after).await;
    assert_eq!(bulk_digest(&c).await, digest);
    drop(restored);
    let copy2 = dir.path().join("copy2");
    cli(
        &[
            "restore",
            "--from",
            &dest,
            "--root",
            &copy2.display().to_string(),
        ],
        &[],
    );
    let restored = Server::start(&copy2, &[]);
    assert_eq!(bulk_digest(&restored.client().await).await, digest2);
    drop(restored);

    // Retention: pruning before now keeps the newest backup only, whole.
    let now = chrono::Utc::now().to_rfc3339();
    let pruned = cli(&["backup", "prune", "--from", &dest, "--before", &now], &[]);
    assert!(pruned.contains("removed 1 backup(s)"), "{pruned}");
    let list = cli(&["backup", "list", "--from", &dest], &[]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(!list.lines().any(|l| l.starts_with(&id)), "{list}");
    let verified = cli(&["backup", "verify", "--from", &dest], &[]);
    assert!(verified.contains("every object matches"), "{verified}");
    let out = tidemark()
        .args(["backup", "prune", "--from", &dest, "--before", "yesterday"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--before \"yesterday\""));

    // A root that is not empty is refused, naming it.
    let out = tidemark()
        .args(["restore", "--from", &dest, "--root"])
        .arg(&root)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tidemark_backup_server_exits_non_zero_when_the_backup_does_not_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest_dir = dir.path().join("dest");
    let dest = format!("file://{}", dest_dir.display());
    // Slow, so that the backup can be aborted while the command waits for it.
    let server = Server::start(
        &dir.path().join("root"),
        &[
            ("TIDEMARK_BACKUP_DESTINATION", dest.as_str()),
            ("TIDEMARK_BACKUP_MAX_MB_PER_SECOND", "0.5"),
        ],
    );
    let admin = server.client().await;
    admin
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO t SELECT timestamp_sequence('2026-11-01', 1000000), x * 1.0
               FROM long_sequence(300000);
             CHECKPOINT",
        )
        .await
        .expect("load");
    let address = format!("127.0.0.1:{}", server.port);
    let command = |args: &[&str], password: &str| {
        let mut cmd = tidemark();
        cmd.args(args)
            .env("TIDEMARK_LOG_LEVEL", "warn")
            .env("PGUSER", "admin")
            .env("PGPASSWORD", password)
            .env_remove("PGSSLMODE")
            .env_remove("PGSSLROOTCERT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let outcome = |child: Child| {
        let out = child.wait_with_output().expect("wait for tidemark");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // BACKUP ABORT while the command waits: exit 1, saying so.
    let waiting = command(&["backup", "--server", &address], "quest")
        .spawn()
        .expect("run tidemark");
    wait_status(&admin, "the backup uploads", |r| {
        r[0].as_deref() == Some("uploading") && num(r, 6) > 0
    })
    .await;
    admin.batch_execute("BACKUP ABORT").await.expect("abort");
    let (code, stdout, stderr) = outcome(waiting);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("started on"), "{stdout}");
    assert!(stderr.contains("was aborted"), "{stderr}");

    // A backup that cannot be asked for: exit 2, with the server's error
    // (here the destination became a file), a refused login, a bad address.
    std::fs::remove_dir_all(&dest_dir).expect("remove the destination");
    std::fs::write(&dest_dir, b"not a directory").expect("write");
    let run = |args: &[&str], password: &str| {
        outcome(command(args, password).spawn().expect("run tidemark"))
    };
    let (code, _, stderr) = run(&["backup", "--server", &address], "quest");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("58030"), "{stderr}");
    assert!(
        stderr.contains("dest"),
        "the error names the path: {stderr}"
    );
    let (code, _, stderr) = run(&["backup", "--server", &address], "wrong");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("28P01"), "{stderr}");
    assert!(
        stderr.contains("user \"admin\""),
        "names the user: {stderr}"
    );
    let (code, _, stderr) = run(&["backup", "--server", "localhost"], "quest");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("expected host:port"), "{stderr}");
    // This server has no TLS: sslmode require refuses to go on without it.
    let (code, _, stderr) = run(
        &["backup", "--server", &address, "--sslmode", "require"],
        "quest",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
    drop(server);
    let (code, _, stderr) = run(&["backup", "--server", &address], "quest");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot log in"), "{stderr}");
}

#[test]
fn tidemark_backup_server_uses_tls_as_its_sslmode_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = ca_signed_cert(dir.path());
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).expect("mkdir");
    let (other_ca, _) = self_signed_cert(&other_dir);
    let dest = format!("file://{}", dir.path().join("dest").display());
    let server = Server::start(
        &dir.path().join("root"),
        &[
            ("TIDEMARK_TLS_REQUIRED", "true"),
            ("TIDEMARK_TLS_CERT_FILE", cert.as_str()),
            ("TIDEMARK_TLS_KEY_FILE", key.as_str()),
            ("TIDEMARK_BACKUP_DESTINATION", dest.as_str()),
        ],
    );
    let backup = |host: &str, args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = tidemark();
        cmd.args(["backup", "--server", &format!("{host}:{}", server.port)])
            .args(args)
            .env("TIDEMARK_LOG_LEVEL", "warn")
            .env("PGUSER", "admin")
            .env("PGPASSWORD", "quest")
            .env_remove("PGSSLMODE")
            .env_remove("PGSSLROOTCERT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run tidemark");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // By default (prefer, as libpq) it takes the TLS the server asks for.
    let (code, stdout, stderr) = backup("127.0.0.1", &[], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(" done in "), "{stdout}");
    // verify-full: the certificate chains to the given CA and names the host.
    let (code, stdout, stderr) = backup(
        "localhost",
        &["--sslmode", "verify-full", "--sslrootcert", &ca],
        &[],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let (code, stdout, stderr) = backup(
        "127.0.0.1",
        &[],
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca.as_str())],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let listed = cli(&["backup", "list", "--from", &dest], &[]);
    assert_eq!(
        listed.lines().count(),
        1 + 3,
        "a header and three backups: {listed}"
    );

    // Refusals: exit 2, saying why.
    let (code, _, stderr) = backup("127.0.0.1", &["--sslmode", "disable"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("28000") && stderr.contains("requires SSL"),
        "{stderr}"
    );
    let (code, _, stderr) = backup(
        "localhost",
        &[],
        &[
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", other_ca.as_str()),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    let (code, _, stderr) = backup("localhost", &["--sslmode", "verify-full"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("needs --sslrootcert"), "{stderr}");
    let (code, _, stderr) = backup("localhost", &[], &[("PGSSLMODE", "verify-ca")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("PGSSLMODE=\"verify-ca\""), "{stderr}");
}

/// moto's S3 server on a free loopback port.
struct S3Server {
    child: Child,
}

impl S3Server {
    fn start(port: u16) -> S3Server {
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (scripts/install-test-deps.sh installs moto[server])");
        let s = S3Server { child };
        for _ in 0..300 {
            if http(port, "PUT", "/backups", &[], b"").code == 200 {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not start on port {port}");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The [backup] S3 settings for moto at `endpoint`.
fn s3_settings(endpoint: &str) -> [(&'static str, &str); 5] {
    [
        ("TIDEMARK_BACKUP_S3_ENDPOINT", endpoint),
        ("TIDEMARK_BACKUP_S3_ALLOW_HTTP", "true"),
        ("TIDEMARK_BACKUP_S3_REGION", "us-east-1"),
        ("TIDEMARK_BACKUP_S3_ACCESS_KEY_ID", "test"),
        ("TIDEMARK_BACKUP_S3_SECRET_ACCESS_KEY", "test"),
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_to_s3_completes_across_an_s3_outage_and_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let port = free_port();
    let s3 = S3Server::start(port);
    let endpoint = format!("http://127.0.0.1:{port}");
    let s3_env = s3_settings(&endpoint);
    let dest = "s3://backups/tidemark";
    let mut env = s3_env.to_vec();
    env.push(("TIDEMARK_BACKUP_DESTINATION", dest));
    env.push(("TIDEMARK_BACKUP_MAX_MB_PER_SECOND", "2"));
    let server = Server::start(&root, &env);
    let admin = server.client().await;
    let Started {
        digest,
        writer,
        before,
        after,
    } = backup_under_writes(&server, &admin).await;
    wait_status(&admin, "part of the files are uploaded", |r| num(r, 6) > 0).await;

    // The S3 server goes away mid-backup and comes back empty: the backup
    // fails or stalls, and BACKUP DATABASE resumes it to the end.
    drop(s3);
    std::thread::sleep(Duration::from_millis(500));
    let _s3 = S3Server::start(port);
    let mut resumed = 0;
    let row = loop {
        let row = wait_status(&admin, "the backup ends", |r| {
            matches!(r[0].as_deref(), Some("done" | "failed"))
        })
        .await;
        if row[0].as_deref() == Some("done") {
            break row;
        }
        assert!(row[8].is_some(), "a failed backup says why: {row:?}");
        resumed += 1;
        assert!(resumed <= 3, "the backup does not complete: {row:?}");
        admin
            .batch_execute("BACKUP DATABASE")
            .await
            .expect("resume");
    };
    assert_eq!(num(&row, 3), num(&row, 2), "every file: {row:?}");
    writer.finish().await;
    drop(server);

    let copy = dir.path().join("copy");
    let said = cli(
        &[
            "restore",
            "--from",
            dest,
            "--root",
            &copy.display().to_string(),
        ],
        &s3_env,
    );
    assert!(said.contains("restored backup"), "{said}");
    let restored = Server::start(&copy, &[]);
    let c = restored.client().await;
    assert_gapless_prefix(&c, before, after).await;
    assert_eq!(bulk_digest(&c).await, digest);
    let verified = cli(&["backup", "verify", "--from", dest], &s3_env);
    assert!(verified.contains("every object matches"), "{verified}");
}

/// A TCP relay to the S3 server that the test can cut (a network outage:
/// open connections are dropped, new ones refused) and restore, the S3
/// server keeping its objects meanwhile.
struct Relay {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: u16) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = {
            let (up, connections) = (up.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is reset
                    }
                    let relay = tokio::spawn(async move {
                        if let Ok(mut outbound) =
                            tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                        {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().expect("lock").push(relay);
                }
            })
        };
        Relay {
            port,
            up,
            connections,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.connections.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The log backup's columns of backup_status(): state, archived seq, the
/// archived commit's time, lag in ms, last error.
async fn log_row(client: &tokio_postgres::Client) -> Vec<Option<String>> {
    let sql = "SELECT log_backup, log_archived_seq, log_archived_at, log_lag_ms, log_last_error \
               FROM backup_status()";
    match &client.simple_query(sql).await.expect("backup_status()")[1] {
        SimpleQueryMessage::Row(r) => (0..r.len()).map(|i| r.get(i).map(str::to_string)).collect(),
        other => panic!("{other:?}"),
    }
}

/// Waits until the log backup has shipped a commit made after `t` (and so
/// every commit before it).
async fn wait_shipped(client: &tokio_postgres::Client, t: chrono::DateTime<chrono::Utc>) {
    let sql = format!(
        "SELECT log_archived_at >= '{}'::timestamp FROM backup_status()",
        t.format("%Y-%m-%dT%H:%M:%S%.6f")
    );
    for _ in 0..600 {
        if let SimpleQueryMessage::Row(r) = &client.simple_query(&sql).await.expect("status")[1]
            && r.get(0) == Some("t")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the log backup did not catch up: {:?}",
        log_row(client).await
    );
}

/// A row inserted in a commit of its own: the time just before it was sent,
/// the time just after (a point between it and the next commit), the row.
type Point = (
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    i64,
);

/// Inserts rows `from..=to` into `t`, one commit each.
async fn insert_points(
    client: &tokio_postgres::Client,
    from: i64,
    to: i64,
    points: &mut Vec<Point>,
) {
    for i in from..=to {
        let before = chrono::Utc::now();
        let started = std::time::Instant::now();
        client
            .batch_execute(&format!("INSERT INTO t VALUES (now(), {i})"))
            .await
            .expect("insert");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a commit waited {:?}: the log backup must not hold commits up",
            started.elapsed()
        );
        points.push((before, chrono::Utc::now(), i));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_backup_ships_every_commit_across_an_s3_outage_and_sigkill_and_restores_to_points_in_time()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let s3_port = free_port();
    let _s3 = S3Server::start(s3_port);
    let relay = Relay::start(s3_port).await;
    let endpoint = format!("http://127.0.0.1:{}", relay.port);
    let s3_env = s3_settings(&endpoint);
    let dest = "s3://backups/pitr";
    let mut env = s3_env.to_vec();
    env.extend([
        ("TIDEMARK_BACKUP_DESTINATION", dest),
        ("TIDEMARK_BACKUP_LOG_BACKUP", "true"),
        ("TIDEMARK_BACKUP_LOG_FLUSH_INTERVAL_MS", "200"),
        // Small WAL segments, recycled often: they must wait until shipped.
        ("TIDEMARK_STORAGE_WAL_SEGMENT_MB", "1"),
        ("TIDEMARK_STORAGE_HOUSEKEEPING_INTERVAL_MS", "100"),
    ]);
    let server = Server::start(&root, &env);
    let admin = server.client().await;
    admin
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO t VALUES (now(), 0); BACKUP DATABASE",
        )
        .await
        .expect("backup");
    wait_status(&admin, "the backup is done", phase_is("done")).await;
    let mut points = Vec::new();
    insert_points(&admin, 1, 20, &mut points).await;
    wait_shipped(&admin, points[19].0).await;
    assert_eq!(log_row(&admin).await[0].as_deref(), Some("running"));

    // The S3 server is out of reach: commits go on, the log falls behind.
    relay.cut();
    insert_points(&admin, 21, 40, &mut points).await;
    let mut row = log_row(&admin).await;
    for _ in 0..300 {
        if row[0].as_deref() == Some("retrying") && num(&row, 3) > 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        row = log_row(&admin).await;
    }
    assert_eq!(row[0].as_deref(), Some("retrying"), "{row:?}");
    assert!(num(&row, 3) > 300, "the lag shows: {row:?}");
    assert!(row[4].is_some(), "the error shows: {row:?}");
    // Back: the log catches up by itself.
    relay.restore();
    wait_shipped(&admin, points[39].0).await;

    // Killed with commits not shipped yet (the S3 server out of reach again):
    // the restart ships them.
    relay.cut();
    insert_points(&admin, 41, 50, &mut points).await;
    drop(server);
    relay.restore();
    let server = Server::start(&root, &env);
    let admin = server.client().await;
    wait_shipped(&admin, points[49].0).await;
    insert_points(&admin, 51, 55, &mut points).await;
    wait_shipped(&admin, points[54].0).await;
    drop(server);

    // Each point restores exactly the commits up to it.
    for (n, i) in [4usize, 29, 44, 49, 54].into_iter().enumerate() {
        let (_, at, last) = points[i];
        let copy = dir.path().join(format!("pitr{n}"));
        let said = cli(
            &[
                "restore",
                "--from",
                dest,
                "--root",
                &copy.display().to_string(),
                "--to-time",
                &at.to_rfc3339(),
            ],
            &s3_env,
        );
        assert!(said.contains("replayed"), "{said}");
        let restored = Server::start(&copy, &[]);
        let rows = restored
            .client()
            .await
            .query("SELECT count(*), max(seq) FROM t", &[])
            .await
            .expect("count");
        let (count, max): (i64, i64) = (rows[0].get(0), rows[0].get(1));
        assert_eq!(
            (count, max),
            (last + 1, last),
            "restored to {at} (row {last})"
        );
    }
}
