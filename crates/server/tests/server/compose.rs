//! `docker/docker-compose.yml` run with podman-compose (PyPI), its one-shot `backup`
//! service included, and the Docker blocks of docs/backup-guide.md ("Docker volume":
//! backup of the compose volume, restore into a new volume) run as printed, with
//! `docker` being podman. Each backup is restored and checked to be exactly a
//! prefix of the acknowledged commits, and the restored server to keep the password.
//!
//! What differs from a Docker host, and only that (docs/deployment.md says the same):
//! - containers here use host networking only, so an override file puts both
//!   services on the host network, the server on loopback ports chosen at run time,
//!   and the name `tidemark` on 127.0.0.1 for the backup job; the guide's `docker`
//!   is a script that runs podman with `--network=host` and turns `-p` into those
//!   listen addresses;
//! - `postgres:15-bookworm` cannot be pulled: the backup job runs in a local Debian
//!   image with psql 15 (what it uses of the postgres image: bash, psql, cp, date);
//! - podman-compose does not wait for `service_healthy` where podman has no systemd
//!   to schedule health checks, so the test runs the image's health check until it
//!   passes, as the engine would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::backup_guide::procedure;
use crate::container::{
    Podman, build_image, chown_to_image_user, connect_as_when_ready, free_port, psql_as, repo,
    serial,
};
use crate::harness::{SeqWriter, assert_gapless_prefix};

/// The password in the compose file's secret (not the default `quest`).
const PASSWORD: &str = "compose-secret-7";

/// The local stand-in for `postgres:15-bookworm` in the backup service.
const PSQL_IMAGE: &str = "localhost/tidemark-e2e-psql:15";

/// Builds the psql image once per podman storage (it is kept between runs).
fn build_psql_image(podman: &Podman, work: &Path) {
    if podman
        .run(&["image", "exists", PSQL_IMAGE])
        .status
        .success()
    {
        return;
    }
    let dir = work.join("psql-image");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM docker.io/library/debian:bookworm-slim\n\
         RUN apt-get update -qq \\\n \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client-15 \\\n \
         && rm -rf /var/lib/apt/lists/*\n",
    )
    .expect("write Dockerfile");
    podman.ok(&[
        "build",
        "-q",
        "--network=host",
        "-t",
        PSQL_IMAGE,
        &dir.display().to_string(),
    ]);
}

/// podman-compose on a copy of `docker/` (the compose file as it is in the
/// repository, the secret file, the override), under its own project name.
struct Compose {
    /// podman's environment (scripts/container-env.sh).
    env: Vec<(String, String)>,
    dir: PathBuf,
    project: String,
}

impl Compose {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("COMPOSE_PROJECT_NAME", &self.project);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command("podman-compose")
            .args(["-f", "docker-compose.yml", "-f", "e2e-override.yml"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("podman-compose cannot run ({e}): scripts/install-test-deps.sh installs it")
            })
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "podman-compose {args:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

impl Drop for Compose {
    /// The project's containers and its volume go.
    fn drop(&mut self) {
        let _ = self.run(&["--profile", "backup", "down", "-v", "-t", "10"]);
    }
}

/// Runs the image's HEALTHCHECK until it passes (a minute at most).
fn wait_healthy(podman: &Podman, container: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if podman
            .run(&["healthcheck", "run", container])
            .status
            .success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{container} never became healthy:\n{}",
            podman.logs(container)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `docker` for the guide's blocks: podman, every `run` on the host network with
/// the server's listen addresses on this test's ports (for the `tidemark` image;
/// a `cp` container ignores them), published ports (`-p`) dropped.
fn docker_shim(bin: &Path, pg_port: u16, http_port: u16) {
    std::fs::create_dir_all(bin).expect("mkdir");
    let script = format!(
        r#"#!/usr/bin/env bash
set -euo pipefail
if [ "${{1:-}}" = run ]; then
    shift
    args=(run --network=host
        -e TIDEMARK_SERVER_PG_LISTEN=127.0.0.1:{pg_port}
        -e TIDEMARK_SERVER_HTTP_LISTEN=127.0.0.1:{http_port})
    while [ $# -gt 0 ]; do
        case "$1" in
            -p|--publish) shift 2 ;;
            *) args+=("$1"); shift ;;
        esac
    done
    exec podman "${{args[@]}}"
fi
exec podman "$@"
"#
    );
    let path = bin.join("docker");
    std::fs::write(&path, script).expect("write docker");
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status()
        .expect("chmod");
    assert!(status.success());
}

/// Runs a guide block in `cwd` with `docker` from `bin`; its stdout.
fn run_guide_block(
    name: &str,
    podman: &Podman,
    cwd: &Path,
    bin: &Path,
    env: &[(&str, String)],
) -> String {
    let script = cwd.join(format!("{name}.sh"));
    std::fs::write(&script, procedure(name)).expect("write script");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(cwd)
        .env("PATH", path)
        .envs(podman.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the guide's {name} block failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A backup written while the writer runs is a gapless prefix of its rows
/// between `before` and `after`: checked on a container started on it.
async fn assert_backup_restores(
    podman: &mut Podman,
    backup: &Path,
    name: &str,
    before: i64,
    after: i64,
) {
    std::fs::write(backup.join("_restore"), b"").expect("touch _restore");
    chown_to_image_user(backup);
    let port = free_port();
    podman.start(name, backup, port, free_port());
    let client = connect_as_when_ready(port, "quest").await;
    assert_gapless_prefix(&client, before, after).await;
    let logs = podman.logs(name);
    assert!(logs.contains("restore done"), "{logs}");
}

/// The one directory under `dir` (a backup named by its time).
fn only_entry(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_file_and_the_guides_docker_blocks_back_up_and_restore() {
    let _serial = serial().await;
    let mut podman = Podman::new();
    let work = tempfile::tempdir().expect("tempdir");
    build_image(&podman, work.path());
    build_psql_image(&podman, work.path());

    // docker/ as a user has it: the compose file from the repository, the secret.
    let docker_dir = work.path().join("docker");
    std::fs::create_dir_all(&docker_dir).expect("mkdir");
    std::fs::copy(
        repo().join("docker/docker-compose.yml"),
        docker_dir.join("docker-compose.yml"),
    )
    .expect("cp compose file");
    std::fs::write(
        docker_dir.join("tidemark_password.txt"),
        format!("{PASSWORD}\n"),
    )
    .expect("secret");
    let (port, http_port) = (free_port(), free_port());
    std::fs::write(
        docker_dir.join("e2e-override.yml"),
        format!(
            r#"services:
  tidemark:
    image: localhost/tidemark:e2e
    network_mode: host
    ports: !reset []
    environment:
      TIDEMARK_SERVER_PG_LISTEN: "127.0.0.1:{port}"
      TIDEMARK_SERVER_HTTP_LISTEN: "127.0.0.1:{http_port}"
  backup:
    image: {PSQL_IMAGE}
    network_mode: host
    extra_hosts:
      - "tidemark:127.0.0.1"
    environment:
      PGPORT: "{port}"
"#
        ),
    )
    .expect("override");
    let compose = Compose {
        env: podman.env.clone(),
        dir: docker_dir.clone(),
        project: format!("tidemark-e2e-{}", std::process::id()),
    };

    // docker compose up -d tidemark: healthy, and the secret is the password.
    compose.ok(&["up", "-d", "tidemark"]);
    let container = compose
        .command("podman")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", compose.project),
            "--filter",
            "label=com.docker.compose.service=tidemark",
        ])
        .output()
        .expect("podman ps");
    let container = String::from_utf8_lossy(&container.stdout)
        .trim()
        .to_string();
    assert!(
        !container.is_empty(),
        "the compose project runs no tidemark"
    );
    wait_healthy(&podman, &container);
    let client = connect_as_when_ready(port, PASSWORD).await;
    let refused = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=admin password=quest dbname=tidemark"),
        tokio_postgres::NoTls,
    )
    .await;
    assert!(refused.is_err(), "the default password is refused");
    client
        .batch_execute(
            "CREATE TABLE ticks (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create table");

    // The compose file's one-shot backup service, under write load.
    let writer = SeqWriter::start(connect_as_when_ready(port, PASSWORD).await);
    writer.wait_for(50).await;
    let before = writer.acked();
    let out = tokio::task::block_in_place(|| {
        compose.ok(&["--profile", "backup", "run", "--rm", "backup"])
    });
    let after = writer.acked();
    assert!(out.contains("backup in /backups/"), "{out}");
    assert_eq!(
        psql_as(
            port,
            PASSWORD,
            "SELECT in_progress FROM checkpoint_status()"
        ),
        "f",
        "the backup job released the checkpoint"
    );
    let compose_backup = only_entry(&docker_dir.join("backups"));

    // The guide's "Docker volume" backup block, run by hand from the host.
    let bin = work.path().join("bin");
    let restored_port = free_port();
    docker_shim(&bin, restored_port, free_port());
    writer.wait_for(after + 50).await;
    let before2 = writer.acked();
    let out = tokio::task::block_in_place(|| {
        run_guide_block(
            "backup-docker",
            &podman,
            work.path(),
            &bin,
            &[
                ("PGPORT", port.to_string()),
                ("COMPOSE_PROJECT_NAME", compose.project.clone()),
            ],
        )
    });
    let after2 = writer.acked();
    writer.finish().await;
    let guide_backup = PathBuf::from(out.trim().lines().last().unwrap_or_default());
    assert!(
        guide_backup.starts_with(work.path().join("backups")),
        "the block prints the backup's directory: {out}"
    );

    // The guide's restore block: a new volume, a container keeping the secret,
    // from the image as the guide names it.
    podman.ok(&["tag", "tidemark:e2e", "tidemark:latest"]);
    let _ = podman.run(&["rm", "-f", "tidemark-restored"]);
    let _ = podman.run(&["volume", "rm", "-f", "tidemark-restored"]);
    podman.containers.push("tidemark-restored".to_string());
    podman.volumes.push("tidemark-restored".to_string());
    tokio::task::block_in_place(|| {
        run_guide_block(
            "restore-docker",
            &podman,
            work.path(),
            &bin,
            &[("BACKUP", guide_backup.display().to_string())],
        )
    });
    let restored = connect_as_when_ready(restored_port, PASSWORD).await;
    assert_gapless_prefix(&restored, before2, after2).await;
    let refused = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={restored_port} user=admin password=quest dbname=tidemark"),
        tokio_postgres::NoTls,
    )
    .await;
    assert!(
        refused.is_err(),
        "the restored server keeps the secret's password"
    );
    drop(restored);
    podman.ok(&["stop", "-t", "10", "tidemark-restored"]);

    // The compose job's backup restores too.
    let name = format!("{}-restored", compose.project);
    assert_backup_restores(&mut podman, &compose_backup, &name, before, after).await;
    drop(client);
}
