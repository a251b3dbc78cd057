//! Starts and stops the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) http_port: u16,
    /// Line protocol over TCP (0 when the test turned it off).
    pub(crate) ilp_port: u16,
    /// The log lines up to serving (recovery's progress, to explain a slow start).
    pub(crate) startup_log: Vec<String>,
    /// Log lines after startup.
    log: mpsc::Receiver<String>,
}

/// `tidemark` with none of the caller's `TIDEMARK_*` variables (test knobs such
/// as TIDEMARK_CRASH_TRIALS would otherwise be refused as unknown configuration).
/// `TIDEMARK_TEST_SERVER_BIN` runs the suites against another build (the
/// full-length reliability runs use the release binary).
pub(crate) fn tidemark() -> Command {
    let bin = std::env::var_os("TIDEMARK_TEST_SERVER_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tidemark").into());
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TIDEMARK_")) {
        cmd.env_remove(k);
    }
    cmd
}

/// Runs `tidemark serve` on `root` expecting it to refuse to start; its
/// stderr. A server still running after a minute is killed and fails the
/// test rather than hanging it.
pub(crate) fn refused_start(root: &Path) -> String {
    let limit = Duration::from_secs(60);
    let mut child = tidemark()
        .args(["serve", "--root"])
        .arg(root)
        .args(["--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--ilp-listen", ""])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tidemark");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "tidemark serve still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the server started: {stderr}");
    stderr
}

impl Server {
    /// Starts `tidemark serve` on `root`, on a free loopback port, and waits until it serves.
    pub(crate) fn start(root: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = tidemark();
        cmd.args(["serve", "--root"])
            .arg(root)
            .args(["--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(["--ilp-listen", "127.0.0.1:0"])
            .env("TIDEMARK_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tidemark");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let port_in = |line: &str| -> Option<u16> {
            line.split("addr=")
                .nth(1)
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
        };
        let mut http_port = 0;
        let mut ilp_port = 0;
        let mut startup_log = Vec::new();
        loop {
            let Ok(line) =
                rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            else {
                let _ = child.kill();
                let status = child.wait();
                panic!("tidemark did not start serving (exit: {status:?})");
            };
            startup_log.push(line.clone());
            if line.contains("serving HTTP") {
                http_port = port_in(&line).expect("http port in the log line");
            }
            if line.contains("serving line protocol over TCP") {
                ilp_port = port_in(&line).expect("ilp port in the log line");
            }
            if line.contains("serving the PostgreSQL protocol") {
                let port = port_in(&line).expect("port in the log line");
                return Server {
                    child,
                    port,
                    http_port,
                    ilp_port,
                    startup_log,
                    log: rx,
                };
            }
        }
    }

    /// Waits up to `limit` for a log line containing `needle`; the line.
    /// Lines logged before "serving the PostgreSQL protocol" count too: work
    /// the server starts on its own (a resumed backup) may log before it.
    pub(crate) fn wait_for_log(&self, needle: &str, limit: Duration) -> Option<String> {
        if let Some(line) = self.startup_log.iter().find(|l| l.contains(needle)) {
            return Some(line.clone());
        }
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    pub(crate) fn conninfo(&self, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=admin password={password} dbname=tidemark",
            self.port
        )
    }

    /// A tokio-postgres client logged in as admin (its connection runs on a task).
    pub(crate) async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) =
            tokio_postgres::connect(&self.conninfo("quest"), tokio_postgres::NoTls)
                .await
                .expect("connect");
        tokio::spawn(conn);
        client
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to end; its exit status.
    pub(crate) fn wait(mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tidemark did not stop within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A size in bytes from `/proc/<pid>/status` (`field` is e.g. `VmHWM` or `RssAnon`);
/// 0 when the process or the field is gone.
pub(crate) fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| {
                    l.strip_prefix(field)
                        .is_some_and(|rest| rest.starts_with(':'))
                })
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A suite's length from the environment variable `name` (a count or seconds),
/// `default` when it is unset or not a number.
pub(crate) fn length_from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A self-signed certificate and its key, written into `dir` by openssl; their paths.
pub(crate) fn self_signed_cert(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &key,
        "-out",
        &cert,
    ]);
    (cert, key)
}

/// Runs openssl with `args`, asserting that it succeeds.
fn openssl(args: &[&str]) {
    let made = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (scripts/install-test-deps.sh installs it)");
    assert!(
        made.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// A test CA and a server certificate it signed for `localhost` and 127.0.0.1
/// (what `sslmode=verify-full` checks), written into `dir` by openssl; the
/// paths of the CA's certificate, the server's certificate and its key.
pub(crate) fn ca_signed_cert(dir: &Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    let (ca, ca_key, csr, ext) = (
        path("ca.pem"),
        path("ca.key"),
        path("server.csr"),
        path("ext"),
    );
    let (cert, key) = (path("server.pem"), path("server.key"));
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("write ext");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    (ca, cert, key)
}

/// A client that commits `ticks` rows with seq 0, 1, 2, ... one after the other, so
/// that what a copy holds can be checked as "a gapless prefix between what was
/// acknowledged before and after the cut". Every 7th row goes into the previous day
/// (an out-of-order write).
pub(crate) struct SeqWriter {
    acked: std::sync::Arc<std::sync::atomic::AtomicI64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl SeqWriter {
    /// Starts writing into `ticks (ts TIMESTAMP, seq BIGINT)` through `client`.
    pub(crate) fn start(client: tokio_postgres::Client) -> SeqWriter {
        use std::sync::atomic::Ordering;
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = {
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seq = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    let day = if seq % 7 == 6 { 20 } else { 21 };
                    client
                        .batch_execute(&format!(
                            "INSERT INTO ticks VALUES ('2026-11-{day}T00:00:00.{seq:06}', {seq})"
                        ))
                        .await
                        .expect("insert");
                    seq += 1;
                    acked.store(seq, Ordering::SeqCst);
                }
            })
        };
        SeqWriter { acked, stop, task }
    }

    /// Rows acknowledged so far.
    pub(crate) fn acked(&self) -> i64 {
        self.acked.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until at least `n` rows are acknowledged (a minute at most).
    pub(crate) async fn wait_for(&self, n: i64) {
        for _ in 0..6000 {
            if self.acked() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the writer did not reach {n} rows");
    }

    pub(crate) async fn finish(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.task.await.expect("writer");
    }
}

/// The `ticks` rows on a server as seq numbers, asserted to be a gapless prefix
/// 0..n with `before <= n <= after + 1`; n.
pub(crate) async fn assert_gapless_prefix(
    client: &tokio_postgres::Client,
    before: i64,
    after: i64,
) -> i64 {
    let rows = client
        .query("SELECT seq FROM ticks ORDER BY seq", &[])
        .await
        .expect("select");
    let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let n = seqs.len() as i64;
    assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "a gapless prefix");
    assert!(
        n >= before && n <= after + 1,
        "{n} rows; {before} acknowledged before the cut, {after} when it was taken"
    );
    n
}

/// The `seq` column of `table`, in order.
pub(crate) async fn seqs(client: &tokio_postgres::Client, table: &str) -> Vec<i64> {
    client
        .query(&format!("SELECT seq FROM {table} ORDER BY seq"), &[])
        .await
        .unwrap_or_else(|e| panic!("{table}: {e:?}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// An HTTP answer: status code, the head's lines, the body (de-chunked).
pub(crate) struct HttpAnswer {
    pub(crate) code: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl HttpAnswer {
    /// The value of header `name` (case-insensitive), or "".
    pub(crate) fn header(&self, name: &str) -> String {
        self.head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`). A
/// connection that cannot be made or is cut before an answer reads as code 0
/// (the server was killed); the server may answer before the whole body is sent.
pub(crate) fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpAnswer {
    use std::io::{Read, Write};
    let failed = || HttpAnswer {
        code: 0,
        head: String::new(),
        body: String::new(),
    };
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return failed();
    };
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if s.write_all(head.as_bytes()).is_err() {
        return failed();
    }
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return failed();
    };
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    HttpAnswer {
        code,
        head: head.to_string(),
        body: if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    }
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n + 2 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// The rows of a simple query's answer, as text.
pub(crate) fn rows_of(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}
