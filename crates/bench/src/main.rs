//! `tidemark-bench`: Tidemark, PostgreSQL 15 and DuckDB side by side in one run on
//! this machine — the same generated data, the same ingest over the wire with the
//! same Rust client, the same queries — printed as one table of absolute figures and
//! ratios, and written into docs/benchmarks.md with `--write-docs`.
//!
//! ```sh
//! cargo build --release -p tidemark-server && cargo build --release -p tidemark-bench
//! target/release/tidemark-bench --write-docs            # 10 million rows
//! target/release/tidemark-bench --rows 100000000        # the 100 million variant
//! ```

mod data;
mod ilp;
mod report;
mod servers;
mod symbol_index;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::servers::{PeakSampler, Postgres, Tidemark, rss_of};
use crate::workload::{QUERIES, System, connect, time_query};

#[derive(Debug, Parser)]
#[command(
    name = "tidemark-bench",
    about = "Tidemark vs PostgreSQL vs DuckDB, one run"
)]
struct Args {
    /// Rows loaded by COPY (and queried).
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// Rows written by the batched INSERT phase (1,000 per statement).
    #[arg(long, default_value_t = 1_000_000)]
    insert_rows: u64,
    /// Rows per COPY statement (each is one transaction; the 100M-row load is ten).
    #[arg(long, default_value_t = 10_000_000)]
    copy_rows_per_statement: u64,
    /// Seconds of single-row INSERTs from 16 connections.
    #[arg(long, default_value_t = 20)]
    single_row_seconds: u64,
    /// Rows of each generated COPY variant: text in order, text with 10% late
    /// rows, binary in order (one statement each, into fresh tables).
    #[arg(long, default_value_t = 2_000_000)]
    copy_variant_rows: u64,
    /// The tidemark binary (default: the release build next to this one).
    #[arg(long)]
    tidemark: Option<PathBuf>,
    /// Write the table into docs/benchmarks.md.
    #[arg(long)]
    write_docs: bool,
    /// Run only these systems (for profiling one): tidemark, postgres, duckdb.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tidemark,postgres,duckdb"
    )]
    systems: Vec<String>,
    /// Run only these phases (for profiling one): copy, variants, insert, single,
    /// checkpoint, ilp (line protocol, Tidemark only), upsert (COPY into a table
    /// keyed on (ts, sym), then the same rows again), queries, prepared, asof
    /// (ASOF JOIN of the trades to a tenth as many quotes, Tidemark and DuckDB),
    /// index (a symbol index on Tidemark: its ingest and build cost, queries
    /// by symbol before and after; PostgreSQL with a B-tree on (sym, ts)).
    /// The COPY phase always loads the table the queries, the prepared lookups
    /// and the ASOF JOIN read.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "copy,variants,insert,single,checkpoint,ilp,upsert,queries,prepared,asof,index"
    )]
    phases: Vec<String>,
    /// Executions of each prepared statement in the prepared phase.
    #[arg(long, default_value_t = 5_000)]
    prepared_runs: usize,
}

impl Args {
    fn runs(&self, system: &str) -> bool {
        self.systems.iter().any(|s| s == system)
    }
    fn does(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
    /// Whether the trades table is loaded (and, on PostgreSQL, indexed) to be read.
    fn reads(&self) -> bool {
        self.does("queries") || self.does("prepared") || self.does("asof") || self.does("index")
    }
}

/// Everything measured on one system.
#[derive(Debug, Default, Clone)]
pub(crate) struct Figures {
    pub(crate) copy_rows_s: f64,
    /// Generated COPY variants: text in order, text with late rows, binary.
    pub(crate) copy_text_rows_s: f64,
    pub(crate) copy_late_rows_s: f64,
    pub(crate) copy_binary_rows_s: f64,
    pub(crate) insert_rows_s: f64,
    pub(crate) insert_late_rows_s: f64,
    pub(crate) single_rows_s: f64,
    pub(crate) single_p50_ms: f64,
    pub(crate) single_p99_ms: f64,
    pub(crate) single_late_rows_s: f64,
    pub(crate) single_late_p99_ms: f64,
    pub(crate) queries_ms: Vec<(f64, usize)>,
    /// Each query's [`workload::answer`] (PostgreSQL: on its B-tree table).
    pub(crate) queries_answers: Vec<Vec<String>>,
    /// The ASOF JOIN phase: (median ms, rows) per query, and the first query's answer.
    pub(crate) asof_ms: Vec<(f64, usize)>,
    pub(crate) asof_answer: String,
    /// Prepared `SELECT $1` and one-row lookup: (p50, p99) in microseconds.
    pub(crate) prepared_select_us: (f64, f64),
    pub(crate) prepared_lookup_us: (f64, f64),
    /// Line protocol (`copy_variant_rows` rows each): one TCP connection, and
    /// HTTP requests of 10,000 lines.
    pub(crate) ilp_tcp_rows_s: f64,
    pub(crate) ilp_http_rows_s: f64,
    /// COPY (`copy_variant_rows` rows) into a table keyed on (ts, sym), then the
    /// same rows again, each replacing one (`workload::upsert_load`).
    pub(crate) upsert_first_rows_s: f64,
    pub(crate) upsert_again_rows_s: f64,
    pub(crate) checkpoint_create_ms: f64,
    pub(crate) checkpoint_stall_ms: f64,
    pub(crate) rss_ingest: u64,
    pub(crate) rss_queries: u64,
    /// The symbol index phase (Tidemark's figures; PostgreSQL's queries in
    /// `index.after_ms`).
    pub(crate) index: symbol_index::IndexFigures,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tidemark-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidemark-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let tidemark_bin = match args.tidemark.clone() {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("tidemark"),
    };
    let base = std::env::temp_dir().join(format!("tidemark-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
    let result = run_in(&args, &tidemark_bin, &base).await;
    let _ = std::fs::remove_dir_all(&base);
    result
}

async fn run_in(
    args: &Args,
    tidemark_bin: &std::path::Path,
    base: &std::path::Path,
) -> Result<(), String> {
    let csv = base.join("trades.csv");
    if args.does("copy") || args.reads() {
        eprintln!("generating {} rows into {}", args.rows, csv.display());
        data::write_csv(&csv, args.rows).map_err(|e| e.to_string())?;
    }
    let quotes_csv = base.join("quotes.csv");
    if args.does("asof") {
        data::write_quotes_csv(&quotes_csv, args.rows / 10).map_err(|e| e.to_string())?;
    }

    let mut tidemark = Figures::default();
    if args.runs("tidemark") {
        let tm = Tidemark::start(tidemark_bin, &base.join("tidemark"))?;
        let tm_pid = tm.pid();
        eprintln!("Tidemark: ingest (pid {tm_pid})");
        let ingest_peak = PeakSampler::start(move || rss_of(tm_pid));
        tidemark = ingest(System::Tidemark, &tm.conninfo(), &csv, args).await?;
        if args.does("ilp") {
            eprintln!("Tidemark: line protocol over TCP and HTTP");
            let client = connect(&tm.conninfo()).await?;
            let rows = args.copy_variant_rows;
            tidemark.ilp_tcp_rows_s =
                ilp::over_tcp(tm.ilp_port, &client, "trades_ilp_tcp", rows).await?;
            tidemark.ilp_http_rows_s =
                ilp::over_http(tm.http_port, "trades_ilp_http", rows).await?;
        }
        tidemark.rss_ingest = ingest_peak.finish();
        if args.does("queries") {
            eprintln!("Tidemark: queries");
            let query_peak = PeakSampler::start(move || rss_of(tm_pid));
            let client = connect(&tm.conninfo()).await?;
            for (_, sql, _) in QUERIES {
                tidemark.queries_ms.push(time_query(&client, sql).await?);
                tidemark
                    .queries_answers
                    .push(workload::answer(&client, sql).await?);
            }
            tidemark.rss_queries = query_peak.finish();
        }
        if args.does("asof") {
            eprintln!("Tidemark: ASOF JOIN");
            let client = connect(&tm.conninfo()).await?;
            client
                .batch_execute(
                    "CREATE TABLE quotes (ts TIMESTAMP, sym SYMBOL, bid DOUBLE) \
                     TIMESTAMP(ts) PARTITION BY DAY",
                )
                .await
                .map_err(|e| format!("quotes: {e}"))?;
            let quote_rows = args.rows / 10;
            workload::copy_in(
                &client,
                "quotes",
                &quotes_csv,
                quote_rows,
                quote_rows.max(1),
            )
            .await?;
            for (_, sql, _) in workload::ASOF_QUERIES {
                tidemark.asof_ms.push(time_query(&client, sql).await?);
            }
            tidemark.asof_answer =
                workload::first_row(&client, workload::ASOF_QUERIES[0].1).await?;
        }
        if args.does("prepared") {
            eprintln!("Tidemark: prepared statements");
            let client = connect(&tm.conninfo()).await?;
            (tidemark.prepared_select_us, tidemark.prepared_lookup_us) =
                workload::prepared_latency(&client, args.rows, args.prepared_runs).await?;
        }
        // Last: it indexes the table the phases above read unindexed.
        if args.does("index") {
            eprintln!("Tidemark: symbol index");
            let client = connect(&tm.conninfo()).await?;
            tidemark.index =
                symbol_index::tidemark(&client, &base.join("tidemark"), args.copy_variant_rows)
                    .await?;
        }
    }

    let mut postgres = Figures::default();
    let mut brin = Figures::default();
    if args.runs("postgres") {
        let pg = std::sync::Arc::new(Postgres::start(base)?);
        eprintln!("PostgreSQL: ingest");
        let sampler_pg = pg.clone();
        let ingest_peak = PeakSampler::start(move || sampler_pg.rss_bytes());
        postgres = ingest(System::Postgres, &pg.conninfo(), &csv, args).await?;
        postgres.rss_ingest = ingest_peak.finish();
        if args.reads() {
            let client = connect(&pg.conninfo()).await?;
            eprintln!("PostgreSQL: indexes (B-tree on trades, BRIN on a copy)");
            // One statement at a time: VACUUM refuses to run inside the implicit
            // transaction of a multi-statement query.
            for sql in [
                "CREATE INDEX ON trades (ts)",
                "CREATE TABLE trades_brin AS SELECT * FROM trades",
                "CREATE INDEX ON trades_brin USING brin (ts)",
                "VACUUM ANALYZE trades",
                "VACUUM ANALYZE trades_brin",
            ] {
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| format!("{sql}: {e:?}"))?;
            }
            if args.does("queries") {
                eprintln!("PostgreSQL: queries");
                let sampler_pg = pg.clone();
                let query_peak = PeakSampler::start(move || sampler_pg.rss_bytes());
                for (_, _, sql) in QUERIES {
                    let sql_btree = sql.replace("{t}", "trades");
                    postgres
                        .queries_ms
                        .push(time_query(&client, &sql_btree).await?);
                    postgres
                        .queries_answers
                        .push(workload::answer(&client, &sql_btree).await?);
                    brin.queries_ms
                        .push(time_query(&client, &sql.replace("{t}", "trades_brin")).await?);
                }
                postgres.rss_queries = query_peak.finish();
            }
            if args.does("prepared") {
                eprintln!("PostgreSQL: prepared statements");
                (postgres.prepared_select_us, postgres.prepared_lookup_us) =
                    workload::prepared_latency(&client, args.rows, args.prepared_runs).await?;
            }
            if args.does("index") {
                eprintln!("PostgreSQL: B-tree on (sym, ts)");
                (postgres.index.after_ms, postgres.index.after_answers) =
                    symbol_index::postgres(&client).await?;
            }
        }
    }

    let duck = if args.runs("duckdb") && (args.does("queries") || args.does("asof")) {
        eprintln!("DuckDB: load and queries");
        duckdb(&csv, args.does("asof").then_some(quotes_csv.as_path()))?
    } else {
        Duck::default()
    };
    let table = report::render(args, &tidemark, &postgres, &brin, &duck);
    println!("{table}");
    if args.write_docs {
        report::write_docs(&table, args.rows)?;
    }
    Ok(())
}

/// COPY, batched INSERT and single-row INSERTs into fresh tables, in order and
/// with 10% of rows late by up to a minute.
async fn ingest(
    system: System,
    conninfo: &str,
    csv: &std::path::Path,
    args: &Args,
) -> Result<Figures, String> {
    let client = connect(conninfo).await?;
    for t in [
        "trades",
        "trades_copy_text",
        "trades_copy_late",
        "trades_copy_bin",
        "trades_ins",
        "trades_ins_late",
        "trades_one",
        "trades_one_late",
    ] {
        client
            .batch_execute(&workload::create_table(system, t))
            .await
            .map_err(|e| format!("{t}: {e}"))?;
    }
    let mut f = Figures::default();
    if args.does("copy") || args.reads() {
        eprintln!("{system:?}: COPY");
        f.copy_rows_s = workload::copy_in(
            &client,
            "trades",
            csv,
            args.rows,
            args.copy_rows_per_statement.max(1),
        )
        .await?;
    }
    if args.does("variants") {
        let variant = 0..args.copy_variant_rows;
        eprintln!("{system:?}: COPY variants");
        f.copy_text_rows_s =
            workload::copy_generated(&client, "trades_copy_text", variant.clone(), false, false)
                .await?;
        f.copy_late_rows_s =
            workload::copy_generated(&client, "trades_copy_late", variant.clone(), true, false)
                .await?;
        f.copy_binary_rows_s =
            workload::copy_generated(&client, "trades_copy_bin", variant, false, true).await?;
    }
    if args.does("insert") {
        eprintln!("{system:?}: batched INSERT");
        f.insert_rows_s =
            workload::batched_insert(&client, "trades_ins", args.insert_rows, 1000, false).await?;
        f.insert_late_rows_s =
            workload::batched_insert(&client, "trades_ins_late", args.insert_rows, 1000, true)
                .await?;
    }
    if args.does("single") {
        eprintln!("{system:?}: single-row INSERTs");
        let seconds = Duration::from_secs(args.single_row_seconds);
        (f.single_rows_s, f.single_p50_ms, f.single_p99_ms) =
            workload::single_row_inserts(conninfo, "trades_one", 16, seconds, false).await?;
        let (rate, _, p99) =
            workload::single_row_inserts(conninfo, "trades_one_late", 16, seconds, true).await?;
        (f.single_late_rows_s, f.single_late_p99_ms) = (rate, p99);
    }
    if args.does("upsert") {
        eprintln!("{system:?}: upserts");
        (f.upsert_first_rows_s, f.upsert_again_rows_s) =
            workload::upsert_load(&client, system, "trades_upsert", 0..args.copy_variant_rows)
                .await?;
    }
    if args.does("checkpoint") {
        eprintln!("{system:?}: checkpoint under load");
        (f.checkpoint_create_ms, f.checkpoint_stall_ms) =
            workload::checkpoint_under_load(system, conninfo, "trades_one", 5).await?;
    }
    Ok(f)
}

/// DuckDB's load time, peak RSS and query medians from bench/duckdb_queries.py.
#[derive(Default)]
pub(crate) struct Duck {
    pub(crate) load_s: f64,
    pub(crate) rss: u64,
    pub(crate) queries_ms: Vec<(f64, usize)>,
    /// The ASOF JOIN phase, as in `Figures`.
    pub(crate) asof_ms: Vec<(f64, usize)>,
    pub(crate) asof_answer: String,
}

/// DuckDB runs the query suite on the trades CSV and, given the quotes CSV,
/// the ASOF JOIN suite too.
fn duckdb(csv: &std::path::Path, quotes: Option<&std::path::Path>) -> Result<Duck, String> {
    use std::io::Write;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/duckdb_queries.py");
    let queries: Vec<String> = QUERIES
        .iter()
        .map(|(name, _, sql)| {
            format!(
                "[{}, {}]",
                json_string(name),
                json_string(&sql.replace("{t}", "trades"))
            )
        })
        .collect();
    let asof: Vec<String> = match quotes {
        Some(_) => workload::ASOF_QUERIES
            .iter()
            .map(|(name, _, sql)| format!("[{}, {}]", json_string(name), json_string(sql)))
            .collect(),
        None => Vec::new(),
    };
    let input = format!(
        "{{\"csv\": {}, \"queries\": [{}], \"quotes_csv\": {}, \"asof\": [{}]}}",
        json_string(&csv.display().to_string()),
        queries.join(", "),
        quotes.map_or("null".to_string(), |q| json_string(
            &q.display().to_string()
        )),
        asof.join(", ")
    );
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 {}: {e}", script.display()))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err("DuckDB run failed (pip install duckdb?)".into());
    }
    report::parse_duck(&String::from_utf8_lossy(&out.stdout))
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
