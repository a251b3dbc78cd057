//! Append throughput of the storage engine, against the disk's own sequential
//! write bandwidth measured by `dd` in the same run.
//!
//! ```text
//! cargo bench -p tidemark-storage --bench append            # 10 million rows per scenario
//! TIDEMARK_BENCH_ROWS=1000000 cargo bench -p tidemark-storage --bench append
//! ```
//!
//! Rows: `ts TIMESTAMP, sym SYMBOL (100 values), a..d DOUBLE`, 100 ms apart,
//! partitioned by DAY. "Raw row bytes" is the row at its natural width:
//! 8 (ts) + 4 (symbol key) + 4 x 8 (doubles) = 44 bytes. Bytes written come from
//! `/proc/self/io` (`write_bytes`: what reached the block layer, WAL and table
//! files together) and include the final flush. Every scenario runs in `sync`
//! commit mode: a commit returns after its WAL record is fsynced.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_storage::*;

const RAW_ROW_BYTES: f64 = 44.0;
const T0: i64 = 1_795_219_200_000_000;
const STEP: i64 = 100_000; // 100 ms

struct Scenario {
    batch: usize,
    out_of_order: bool,
    writers: usize,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary
    // without it, and then a small smoke run checks that the benchmark still works.
    let measuring = std::env::args().any(|a| a == "--bench");
    let default_rows = if measuring { 10_000_000 } else { 20_000 };
    let rows: usize = std::env::var("TIDEMARK_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_rows);
    if !measuring {
        println!("smoke run of {rows} rows: figures come from `cargo bench`, not `cargo test`");
    }
    let base = std::env::var("TIDEMARK_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let dd = dd_bandwidth(&base);
    println!(
        "disk: {} (dd, 512 MiB, conv=fdatasync): {:.0} MB/s",
        base.display(),
        dd / 1e6
    );
    println!("rows per scenario: {rows}; raw row = {RAW_ROW_BYTES} bytes; commit mode sync");
    println!();
    println!(
        "| batch | order | writers | rows/s | MB/s written | bytes written/row | write amplification | share of dd bandwidth |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let scenarios = [
        Scenario {
            batch: 1_000,
            out_of_order: false,
            writers: 1,
        },
        Scenario {
            batch: 10_000,
            out_of_order: false,
            writers: 1,
        },
        Scenario {
            batch: 10_000,
            out_of_order: true,
            writers: 1,
        },
        Scenario {
            batch: 1_000,
            out_of_order: false,
            writers: 4,
        },
        Scenario {
            batch: 10_000,
            out_of_order: false,
            writers: 4,
        },
        Scenario {
            batch: 10_000,
            out_of_order: true,
            writers: 4,
        },
        Scenario {
            batch: 1_000,
            out_of_order: false,
            writers: 16,
        },
        Scenario {
            batch: 10_000,
            out_of_order: false,
            writers: 16,
        },
    ];
    for s in scenarios {
        let dir = tempfile::tempdir_in(&base).expect("bench dir");
        let (elapsed, written) = run(dir.path(), rows, &s);
        let rps = rows as f64 / elapsed.as_secs_f64();
        let bpr = written as f64 / rows as f64;
        let mbps = written as f64 / elapsed.as_secs_f64() / 1e6;
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.2}x | {:.0}% |",
            s.batch,
            if s.out_of_order {
                "10% out of order"
            } else {
                "in order"
            },
            s.writers,
            rps,
            mbps,
            bpr,
            bpr / RAW_ROW_BYTES,
            100.0 * mbps * 1e6 / dd
        );
    }
}

fn table(name: &str) -> TableDef {
    let mut columns = vec![
        ColumnDef::new("ts", ColumnType::Timestamp),
        ColumnDef::new("sym", ColumnType::Symbol),
    ];
    for c in ["a", "b", "c", "d"] {
        columns.push(ColumnDef::new(c, ColumnType::Double));
    }
    TableDef {
        name: name.into(),
        columns,
        timestamp: Some("ts".into()),
        partition_by: PartitionBy::Day,
    }
}

/// The batches one writer commits: rows `first..first+n`, every tenth row late by
/// up to a minute when `out_of_order` (older than rows already committed).
fn batches(first: usize, n: usize, batch: usize, out_of_order: bool) -> Vec<Batch> {
    let syms: Vec<String> = (0..100).map(|i| format!("SYM{i:03}")).collect();
    (first..first + n)
        .step_by(batch)
        .map(|start| {
            let end = (start + batch).min(first + n);
            let ts: Vec<i64> = (start..end)
                .map(|i| {
                    let t = T0 + i as i64 * STEP;
                    if out_of_order && i % 10 == 0 {
                        t - (i as i64 % 600 + 1) * STEP
                    } else {
                        t
                    }
                })
                .collect();
            let sym: Vec<&str> = (start..end).map(|i| syms[i % 100].as_str()).collect();
            let d =
                |k: usize| Column::doubles((start..end).map(|i| (i * k) as f64 * 0.01).collect());
            Batch::new()
                .with("ts", Column::timestamps(ts))
                .with("sym", Column::symbols(&sym))
                .with("a", d(1))
                .with("b", d(2))
                .with("c", d(3))
                .with("d", d(4))
        })
        .collect()
}

fn run(root: &Path, rows: usize, s: &Scenario) -> (Duration, u64) {
    let db = Arc::new(Database::open(root, StorageOptions::default()).expect("open"));
    let per_writer = rows / s.writers;
    let mut work = Vec::new();
    for w in 0..s.writers {
        let name = format!("trades{w}");
        db.commit(Transaction::new().with(Request::CreateTable {
            def: table(&name),
            if_not_exists: false,
        }))
        .expect("create");
        work.push((
            name,
            batches(w * per_writer, per_writer, s.batch, s.out_of_order),
        ));
    }
    let before = write_bytes();
    let started = Instant::now();
    let threads: Vec<_> = work
        .into_iter()
        .map(|(name, batches)| {
            let db = db.clone();
            std::thread::spawn(move || {
                for batch in batches {
                    db.commit(Transaction::new().with(Request::Append {
                        table: name.clone(),
                        batch,
                    }))
                    .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let elapsed = started.elapsed();
    db.flush().expect("flush");
    let written = write_bytes() - before;
    drop(db);
    (elapsed, written)
}

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("write_bytes: ")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Sequential write bandwidth of the disk under `dir`, in bytes per second.
fn dd_bandwidth(dir: &Path) -> f64 {
    let file = dir.join(format!("tidemark-dd-{}.tmp", std::process::id()));
    let started = Instant::now();
    let status = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", file.display()),
            "bs=1M",
            "count=512",
            "conv=fdatasync",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    match status {
        Ok(s) if s.success() => 512.0 * 1024.0 * 1024.0 / secs,
        _ => f64::NAN,
    }
}
