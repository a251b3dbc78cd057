//! Crash tests: a child process commits multi-table transactions in a loop and
//! prints each acknowledged commit; the parent SIGKILLs it at a random moment,
//! reopens the root, and checks that every acknowledged commit is there, whole,
//! and nothing partial is visible. `TIDEMARK_CRASH_TRIALS` sets the number of
//! kills (default 20).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tidemark_storage::*;

use crate::common::*;

const CHILD_ROOT_ENV: &str = "TIDEMARK_CRASH_CHILD_ROOT";

/// Timestamp of commit `n`'s rows: mostly moving forward through several days,
/// every fifth commit out of order into an older partition.
fn ts_for(n: i64) -> i64 {
    if n % 5 == 0 {
        T0 + (n % 48) * HOUR + n
    } else {
        T0 + n * 60_000_000
    }
}

fn child_options() -> StorageOptions {
    StorageOptions {
        housekeeping_interval: Duration::from_millis(3),
        // Applies all the time, so kills land before, during and after them.
        apply_interval: Duration::from_millis(5),
        wal_segment_bytes: 16 << 10,
        split_min_rows: 3,
        ..Default::default()
    }
}

/// The writer, run as a child process by `acknowledged_commits_survive_sigkill`.
#[test]
#[ignore = "runs only as the child process of the crash test"]
fn writer_child() {
    let Ok(root) = std::env::var(CHILD_ROOT_ENV) else {
        return;
    };
    let db = Database::open(&root, child_options()).expect("child open");
    let mut setup = Transaction::new();
    for t in ["a", "b", "c"] {
        // Table a's symbols are indexed: the index is written with every apply.
        let def = if t == "a" {
            indexed(trades_def(t))
        } else {
            trades_def(t)
        };
        setup.push(Request::CreateTable {
            def,
            if_not_exists: true,
        });
    }
    db.commit(setup).expect("setup");
    let mut n = column_i64(&db, "a", "seq").into_iter().max().unwrap_or(0) + 1;
    loop {
        let mut tx = Transaction::new();
        tx.push(Request::Append {
            table: "a".into(),
            batch: trades_batch(&[ts_for(n)], n),
        });
        tx.push(Request::Append {
            table: "b".into(),
            batch: trades_batch(&[ts_for(n), ts_for(n) + 1], n),
        });
        if n % 7 == 0 {
            tx.push(Request::AddColumn {
                table: "b".into(),
                column: ColumnDef::new(format!("x{n}"), ColumnType::Int),
            });
        }
        if n % 11 == 0 {
            tx.push(Request::Truncate { table: "c".into() });
        }
        if n % 13 == 0 {
            // The index is rebuilt (new files) in the same commit as rows.
            tx.push(Request::DropIndex {
                target: IndexTarget::Column {
                    table: "a".into(),
                    column: "sym".into(),
                },
                if_exists: false,
            });
            tx.push(Request::AddIndex {
                table: "a".into(),
                column: "sym".into(),
                name: None,
                if_not_exists: false,
            });
        }
        tx.push(Request::Append {
            table: "c".into(),
            batch: trades_batch(&[ts_for(n)], n),
        });
        db.commit(tx).expect("child commit");
        println!("ack {n}");
        n += 1;
    }
}

fn check_root(root: &Path, last_ack: i64) -> i64 {
    let db = Database::open(root, options()).expect("reopen after SIGKILL");
    let a = column_i64(&db, "a", "seq");
    let k = a.len() as i64;
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=k).collect::<Vec<_>>(),
        "table a holds a gapless prefix of commits"
    );
    assert!(
        k >= last_ack,
        "commit {last_ack} was acknowledged but only {k} survived"
    );
    let mut b = column_i64(&db, "b", "seq");
    b.sort_unstable();
    let expect_b: Vec<i64> = (1..=k).flat_map(|n| [n, n + 1]).collect::<Vec<_>>();
    let mut expect_b = expect_b;
    expect_b.sort_unstable();
    assert_eq!(b, expect_b, "table b has exactly the commits table a has");
    let snap = db.snapshot();
    let b_cols = snap.table("b").expect("b").meta().columns.len();
    assert_eq!(
        b_cols as i64,
        4 + k / 7,
        "ADD COLUMN committed with its rows, no more, no less"
    );
    let c = column_i64(&db, "c", "seq");
    let since = (k / 11) * 11;
    let mut c_sorted = c.clone();
    c_sorted.sort_unstable();
    assert_eq!(
        c_sorted,
        (since.max(1)..=k).collect::<Vec<_>>(),
        "TRUNCATE and appends to c are atomic"
    );
    // The index of every part as recovery left it, and after the replayed
    // rows are applied.
    assert_index_matches_keys(&db, "a", "sym");
    db.apply_buffer().expect("apply");
    assert_index_matches_keys(&db, "a", "sym");
    // Rows come back in timestamp order.
    let ts = column_i64(&db, "a", "ts");
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    db.close().expect("close");
    k
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let trials: usize = std::env::var("TIDEMARK_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = rand::rng();
    let mut total_acks = 0;
    let mut last_k = 0;
    for trial in 0..trials {
        let mut child = Command::new(&exe)
            .args([
                "crash::writer_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ROOT_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let last_ack = Arc::new(Mutex::new(0i64));
        let stdout = child.stdout.take().expect("stdout");
        let reader = {
            let last_ack = last_ack.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(n) = line
                        .strip_prefix("ack ")
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        *last_ack.lock().expect("lock") = n;
                    }
                }
            })
        };
        // Let it get going (opening replays the previous run's WAL), then kill at a random moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while *last_ack.lock().expect("lock") <= last_k && std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("trial {trial}: child exited early with {status}: {err}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL");
        child.wait().expect("wait");
        reader.join().expect("reader");
        let acked = *last_ack.lock().expect("lock");
        let k = check_root(dir.path(), acked);
        total_acks += acked - last_k;
        last_k = k;
    }
    assert!(
        total_acks > trials as i64,
        "the child made progress ({total_acks} commits in {trials} trials)"
    );
}
