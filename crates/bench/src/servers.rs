//! The servers under test: the release `tidemark` and a PostgreSQL 15 made for the
//! run (initdb on a temp directory, a free loopback port, run as the `postgres` user).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn wait_for_port(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{what} did not start listening on {port}"))
}

pub(crate) struct Tidemark {
    child: Child,
    pub(crate) port: u16,
    pub(crate) http_port: u16,
    /// Line protocol over TCP.
    pub(crate) ilp_port: u16,
}

impl Tidemark {
    pub(crate) fn start(binary: &Path, root: &Path) -> Result<Tidemark, String> {
        let (port, http_port, ilp_port) = (free_port()?, free_port()?, free_port()?);
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--root"])
            .arg(root)
            .args(["--pg-listen", &format!("127.0.0.1:{port}")])
            .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
            .args(["--ilp-listen", &format!("127.0.0.1:{ilp_port}")])
            .env("TIDEMARK_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TIDEMARK_")) {
            cmd.env_remove(k);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        wait_for_port(port, "tidemark")?;
        Ok(Tidemark {
            child,
            port,
            http_port,
            ilp_port,
        })
    }

    pub(crate) fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=admin password=quest dbname=tidemark",
            self.port
        )
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tidemark {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

pub(crate) struct Postgres {
    dir: PathBuf,
    pub(crate) port: u16,
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")]);
    c
}

impl Postgres {
    /// initdb + start, with its durable default (`synchronous_commit = on`).
    pub(crate) fn start(base: &Path) -> Result<Postgres, String> {
        let dir = base.join("pg");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(base)
            .status()
            .map_err(|e| e.to_string())?;
        if !chown.success() {
            return Err("chown to postgres failed (the benchmark runs as root)".into());
        }
        let port = free_port()?;
        let init = as_postgres("initdb")
            .arg("-D")
            .arg(&dir)
            .args(["-A", "trust", "-U", "bench"])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("initdb: {e}"))?;
        if !init.success() {
            return Err("initdb failed".into());
        }
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             synchronous_commit = on\nmax_wal_size = 4GB\nshared_buffers = 1GB\nmax_connections = 40\n",
            dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .map_err(|e| e.to_string())?;
        let started = as_postgres("pg_ctl")
            .arg("-D")
            .arg(&dir)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !started.success() {
            return Err("PostgreSQL did not start".into());
        }
        wait_for_port(port, "postgres")?;
        Ok(Postgres { dir, port })
    }

    pub(crate) fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=bench dbname=postgres",
            self.port
        )
    }

    /// The postmaster and its backends' summed resident memory now.
    pub(crate) fn rss_bytes(&self) -> u64 {
        let Ok(pid) = std::fs::read_to_string(self.dir.join("postmaster.pid")) else {
            return 0;
        };
        let Some(pid) = pid
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return 0;
        };
        let mut total = rss_of(pid);
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            total += children
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .map(rss_of)
                .sum::<u64>();
        }
        total
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

/// VmRSS of a process, in bytes (0 when it cannot be read).
pub(crate) fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Samples a memory figure every 50 ms until dropped; the peak.
pub(crate) struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakSampler {
    pub(crate) fn start(sample: impl Fn() -> u64 + Send + 'static) -> PeakSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(sample(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        PeakSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    pub(crate) fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}
