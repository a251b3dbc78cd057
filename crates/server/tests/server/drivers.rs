//! Real client drivers, each a small program under `tests/drivers/` that creates a
//! table, inserts every type with bound parameters, reads it back and checks an
//! error's SQLSTATE. `scripts/install-test-deps.sh` installs the drivers.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Server, self_signed_cert};

fn drivers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/drivers")
}

/// Runs one driver program against `server`; panics with its output when it fails.
fn run(server: &Server, program: &str, mut cmd: Command, sslmode: &str) {
    let out = cmd
        .args([
            "127.0.0.1",
            &server.port.to_string(),
            "admin",
            "quest",
            sslmode,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} did not start ({e}); run scripts/install-test-deps.sh")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} (sslmode={sslmode}) failed; run scripts/install-test-deps.sh if a \
         module is missing\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" ok"), "{program}: {stdout}");
}

fn all_drivers(server: &Server, sslmode: &str) {
    let dir = drivers_dir();
    for script in [
        "psycopg_check.py",
        "asyncpg_check.py",
        "sqlalchemy_check.py",
    ] {
        let mut cmd = Command::new("python3");
        cmd.current_dir(dir.join("python")).arg(script);
        run(server, script, cmd, sslmode);
    }
    let mut cmd = Command::new("java");
    cmd.current_dir(dir.join("java")).args([
        "-cp",
        "/usr/share/java/postgresql.jar",
        "DriverCheck.java",
    ]);
    run(server, "pgJDBC", cmd, sslmode);
    let mut cmd = Command::new("node");
    cmd.current_dir(dir.join("node")).arg("check.js");
    run(server, "node-postgres", cmd, sslmode);
}

#[test]
fn drivers_bind_every_type_and_read_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    all_drivers(&server, "disable");
}

#[test]
fn drivers_connect_with_mandatory_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed_cert(dir.path());
    let server = Server::start(
        &dir.path().join("root"),
        &[
            ("TIDEMARK_TLS_REQUIRED", "true"),
            ("TIDEMARK_TLS_CERT_FILE", &cert),
            ("TIDEMARK_TLS_KEY_FILE", &key),
        ],
    );
    all_drivers(&server, "require");
}
