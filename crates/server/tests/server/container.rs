//! The container image from `docker/Dockerfile`, built and run with podman (there is
//! no Docker engine here; `scripts/container-env.sh` prepares podman and a local
//! Debian base). The runtime stage gets the binary under test (`--target
//! runtime-prebuilt`): the builder stage needs the `rust` image, which cannot be
//! pulled here. Where no container tool works, the test fails saying why.
//!
//! The helpers here are shared with `compose.rs` (the compose file and the backup
//! guide's Docker blocks); the two tests take turns (`serial`), as both use the
//! image tag and podman's storage.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

use crate::harness::{SeqWriter, assert_gapless_prefix};

/// The container tests one at a time: they share the image tag, and two image
/// builds or server containers at once would mostly measure this 2-core machine.
/// (An async lock: each test holds it across its awaits, and tokio's lock is not
/// poisoned by a test that failed holding it.)
pub(crate) async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `podman` with the environment `scripts/container-env.sh` prints, or why not.
pub(crate) fn podman_env() -> Result<Vec<(String, String)>, String> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/container-env.sh"))
        .output()
        .map_err(|e| format!("cannot run scripts/container-env.sh: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

pub(crate) struct Podman {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) containers: Vec<String>,
    /// Named volumes the test made, removed with the containers.
    pub(crate) volumes: Vec<String>,
}

impl Podman {
    /// Podman prepared by `scripts/container-env.sh`; a machine where no container
    /// tool works fails the test, saying why: it is not passed unrun.
    pub(crate) fn new() -> Podman {
        let env = podman_env().unwrap_or_else(|why| panic!("no container tool works here: {why}"));
        Podman {
            env,
            containers: Vec::new(),
            volumes: Vec::new(),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("podman")
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A container's log (the server logs to stderr), both streams.
    pub(crate) fn logs(&self, name: &str) -> String {
        let out = self.run(&["logs", name]);
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    }

    /// Starts the image on `volume` with the PostgreSQL protocol on `port`.
    pub(crate) fn start(&mut self, name: &str, volume: &Path, port: u16, http_port: u16) {
        let _ = self.run(&["rm", "-f", name]);
        self.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network=host",
            "-e",
            &format!("TIDEMARK_SERVER_PG_LISTEN=127.0.0.1:{port}"),
            "-e",
            &format!("TIDEMARK_SERVER_HTTP_LISTEN=127.0.0.1:{http_port}"),
            "-v",
            &format!("{}:/var/lib/tidemark", volume.display()),
            "tidemark:e2e",
        ]);
        self.containers.push(name.to_string());
    }
}

impl Drop for Podman {
    /// Removes the test's containers and image, so that runs do not pile up layers.
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.run(&["rm", "-f", c]);
        }
        for v in &self.volumes {
            let _ = self.run(&["volume", "rm", "-f", v]);
        }
        let _ = self.run(&["rmi", "-f", "tidemark:e2e"]);
        let _ = self.run(&["rmi", "-f", "tidemark:latest"]);
        let _ = self.run(&["image", "prune", "-f"]);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn connect_when_ready(port: u16) -> tokio_postgres::Client {
    connect_as_when_ready(port, "quest").await
}

/// A client of the server on `port` as admin with `password`, once it serves.
pub(crate) async fn connect_as_when_ready(port: u16, password: &str) -> tokio_postgres::Client {
    let conninfo =
        format!("host=127.0.0.1 port={port} user=admin password={password} dbname=tidemark");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match tokio_postgres::connect(&conninfo, NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                return client;
            }
            Err(e) if Instant::now() > deadline => panic!("the container never served: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// psql on the host against the container; its trimmed stdout.
fn psql(port: u16, sql: &str) -> String {
    psql_as(port, "quest", sql)
}

/// psql as admin with `password`; its trimmed stdout.
pub(crate) fn psql_as(port: u16, password: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user=admin password={password} dbname=tidemark"
        ))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(crate) fn chown_to_image_user(path: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg("10001:10001")
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success());
}

/// Builds `tidemark:e2e` from the repository's Dockerfile (target
/// `runtime-prebuilt`) with the binary under test, in a build context under `work`.
pub(crate) fn build_image(podman: &Podman, work: &Path) {
    // The build context: the Dockerfile as it is in the repository, the default
    // configuration, and the binary under test.
    let ctx = work.join("ctx");
    std::fs::create_dir_all(ctx.join("docker/prebuilt")).expect("mkdir");
    std::fs::create_dir_all(ctx.join("conf")).expect("mkdir");
    std::fs::copy(
        repo().join("docker/Dockerfile"),
        ctx.join("docker/Dockerfile"),
    )
    .expect("cp");
    std::fs::copy(
        repo().join("conf/server.toml"),
        ctx.join("conf/server.toml"),
    )
    .expect("cp");
    // Without its debug info (a debug build carries about 1 GB of it; the release
    // binary has none). TIDEMARK_TEST_SERVER_BIN puts another build in the image.
    let source = std::env::var_os("TIDEMARK_TEST_SERVER_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_tidemark")),
        PathBuf::from,
    );
    let binary = ctx.join("docker/prebuilt/tidemark");
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(&source, &binary).expect("cp binary");
    }
    let context = ctx.display().to_string();
    let dockerfile = ctx.join("docker/Dockerfile").display().to_string();
    podman.ok(&[
        "build",
        "-q",
        "--format",
        "docker",
        "--network=host",
        "--target",
        "runtime-prebuilt",
        "-t",
        "tidemark:e2e",
        "-f",
        &dockerfile,
        &context,
    ]);
    let size = podman.ok(&["image", "inspect", "tidemark:e2e", "--format", "{{.Size}}"]);
    eprintln!("image tidemark:e2e: {size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_serves_checkpoints_and_restores_a_copied_volume() {
    let _serial = serial().await;
    let mut podman = Podman::new();
    let dir = tempfile::tempdir().expect("tempdir");
    build_image(&podman, dir.path());
    let user = podman.ok(&[
        "image",
        "inspect",
        "tidemark:e2e",
        "--format",
        "{{.Config.User}}",
    ]);
    assert_eq!(user, "tidemark", "the server runs as a non-root user");

    let volume = dir.path().join("volume");
    std::fs::create_dir_all(&volume).expect("mkdir");
    chown_to_image_user(&volume);
    let (port, http_port) = (free_port(), free_port());
    let name = format!("tidemark-e2e-{}", std::process::id());
    podman.start(&name, &volume, port, http_port);
    // Only to wait until it serves: an idle connection left open would make the
    // stop below wait out the grace the server gives running statements (5 s).
    drop(connect_when_ready(port).await);
    assert_eq!(
        podman.ok(&["healthcheck", "run", &name]),
        "",
        "the HEALTHCHECK (tidemark health) passes"
    );
    psql(
        port,
        "CREATE TABLE ticks (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY",
    );

    let writer = SeqWriter::start(connect_when_ready(port).await);
    writer.wait_for(50).await;
    let before = writer.acked();
    tokio::task::block_in_place(|| psql(port, "CHECKPOINT CREATE"));
    let after = writer.acked();
    let copy = dir.path().join("copy");
    let out = Command::new("cp")
        .arg("-a")
        .arg(&volume)
        .arg(&copy)
        .output()
        .expect("cp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.lines().all(|l| l.contains("No such file")),
        "{stderr}"
    );
    assert_eq!(
        psql(port, "SELECT in_progress FROM checkpoint_status()"),
        "t"
    );
    tokio::task::block_in_place(|| psql(port, "CHECKPOINT RELEASE"));
    writer.finish().await;

    // docker stop: SIGTERM, a clean exit well within the 10 s grace.
    let started = Instant::now();
    podman.ok(&["stop", "-t", "10", &name]);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "stop took {:?}",
        started.elapsed()
    );
    let code = podman.ok(&["inspect", &name, "--format", "{{.State.ExitCode}}"]);
    assert_eq!(code, "0", "clean shutdown on SIGTERM");

    // A second container on the copy, with _restore: exactly the cut.
    std::fs::write(copy.join("_restore"), b"").expect("touch");
    chown_to_image_user(&copy);
    let (port2, http2) = (free_port(), free_port());
    let restored = format!("{name}-restored");
    podman.start(&restored, &copy, port2, http2);
    let c2 = connect_when_ready(port2).await;
    assert_gapless_prefix(&c2, before, after).await;
    let logs = podman.logs(&restored);
    assert!(logs.contains("restore done"), "{logs}");

    // A restore that cannot work: the container exits non-zero, the reason in its logs.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("_restore"), b"").expect("touch");
    chown_to_image_user(&broken);
    let failed = format!("{name}-failed");
    podman.start(&failed, &broken, free_port(), free_port());
    let code = podman.ok(&["wait", &failed]);
    assert_ne!(code, "0", "a failed restore exits non-zero");
    let logs = podman.logs(&failed);
    assert!(logs.contains("no checkpoint"), "{logs}");

    // A bind mount of a host directory the image's user may not write (root's, as
    // a freshly made host directory is): the container stops at once, naming the
    // uid it runs as and the chown that fixes it.
    let root_owned = dir.path().join("root-owned");
    std::fs::create_dir_all(&root_owned).expect("mkdir");
    let denied = format!("{name}-denied");
    podman.start(&denied, &root_owned, free_port(), free_port());
    let code = podman.ok(&["wait", &denied]);
    assert_ne!(code, "0", "an unwritable root stops the server");
    let logs = podman.logs(&denied);
    assert!(
        logs.contains("runs as uid 10001") && logs.contains("chown -R 10001:10001"),
        "{logs}"
    );
}
