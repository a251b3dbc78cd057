//! The symbol index phase: what an index on `trades.sym` costs Tidemark at
//! ingest (COPY plus the apply that writes the index, against the same rows
//! into a table without one), what building it over the loaded table costs,
//! and what it gains on queries that filter by symbol, before and after, with
//! PostgreSQL's B-tree on `(sym, ts)` answering the same queries.

use std::path::Path;
use std::time::Instant;

use tokio_postgres::Client;

use crate::workload::{Result, System, answer, copy_generated, create_table, time_query};

/// Name, Tidemark SQL, PostgreSQL SQL.
pub(crate) const INDEX_QUERIES: [(&str, &str, &str); 5] = [
    (
        "count and mean price of one symbol, all data",
        "SELECT count(*), avg(price) FROM trades WHERE sym = 'S7'",
        "SELECT count(*), avg(price) FROM trades WHERE sym = 'S7'",
    ),
    (
        "three symbols, all data, per symbol",
        "SELECT sym, count(*), max(price) FROM trades WHERE sym IN ('S7', 'S42', 'S199') GROUP BY sym",
        "SELECT sym, count(*), max(price) FROM trades WHERE sym IN ('S7', 'S42', 'S199') GROUP BY sym",
    ),
    (
        "last row per symbol",
        "SELECT * FROM trades LATEST ON ts PARTITION BY sym",
        "SELECT DISTINCT ON (sym) * FROM trades ORDER BY sym, ts DESC",
    ),
    (
        "one hour of one symbol",
        "SELECT * FROM trades WHERE sym = 'S7' AND ts >= '2026-11-21T10:00:00' AND ts < '2026-11-21T11:00:00'",
        "SELECT * FROM trades WHERE sym = 'S7' AND ts >= '2026-11-21 10:00:00' AND ts < '2026-11-21 11:00:00'",
    ),
    (
        "SAMPLE BY 1h avg price, one symbol, one day",
        "SELECT ts, avg(price) FROM trades WHERE sym = 'S7' AND ts IN '2026-11-21' SAMPLE BY 1h",
        "SELECT date_trunc('hour', ts) AS h, avg(price) FROM trades WHERE sym = 'S7' \
         AND ts >= '2026-11-21' AND ts < '2026-11-22' GROUP BY h ORDER BY h",
    ),
];

#[derive(Debug, Default, Clone)]
pub(crate) struct IndexFigures {
    /// COPY of the same generated rows, then CHECKPOINT (the apply that writes
    /// the column files, and the index): rows per second without and with it.
    pub(crate) copy_plain_rows_s: f64,
    pub(crate) copy_indexed_rows_s: f64,
    /// `CREATE INDEX ON trades (sym)` over the loaded table.
    pub(crate) build_ms: f64,
    /// Bytes of the index files of `trades`, and of its `sym` key files.
    pub(crate) index_bytes: u64,
    pub(crate) key_bytes: u64,
    pub(crate) before_ms: Vec<(f64, usize)>,
    pub(crate) after_ms: Vec<(f64, usize)>,
    /// Each query's answer without and with the index (PostgreSQL's in `after`).
    pub(crate) before_answers: Vec<Vec<String>>,
    pub(crate) after_answers: Vec<Vec<String>>,
}

async fn copy_and_apply(client: &Client, table: &str, rows: u64) -> Result<f64> {
    let started = Instant::now();
    copy_generated(client, table, 0..rows, false, false).await?;
    client
        .batch_execute("CHECKPOINT")
        .await
        .map_err(|e| format!("CHECKPOINT: {e}"))?;
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Each query's (median ms, rows) and its [`answer`].
async fn run_queries(
    client: &Client,
    postgres: bool,
) -> Result<(Vec<(f64, usize)>, Vec<Vec<String>>)> {
    let (mut times, mut answers) = (Vec::new(), Vec::new());
    for (_, tidemark_sql, postgres_sql) in INDEX_QUERIES {
        let sql = if postgres { postgres_sql } else { tidemark_sql };
        times.push(time_query(client, sql).await?);
        answers.push(answer(client, sql).await?);
    }
    Ok((times, answers))
}

/// Sizes of the files under `dir` whose names end with `suffix` and contain `part`.
fn bytes_of(dir: &Path, part: &str, suffix: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                bytes_of(&path, part, suffix)
            } else if name.contains(part) && name.ends_with(suffix) {
                e.metadata().map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .sum()
}

/// The phase on Tidemark, whose `trades` table is loaded and not indexed;
/// `root` is the server's root directory.
pub(crate) async fn tidemark(client: &Client, root: &Path, rows: u64) -> Result<IndexFigures> {
    let mut f = IndexFigures::default();
    client
        .batch_execute(&create_table(System::Tidemark, "trades_plain"))
        .await
        .map_err(|e| format!("trades_plain: {e}"))?;
    client
        .batch_execute(
            "CREATE TABLE trades_indexed (ts TIMESTAMP, sym SYMBOL INDEX, side SYMBOL, \
             price DOUBLE, amount DOUBLE) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .map_err(|e| format!("trades_indexed: {e}"))?;
    f.copy_plain_rows_s = copy_and_apply(client, "trades_plain", rows).await?;
    f.copy_indexed_rows_s = copy_and_apply(client, "trades_indexed", rows).await?;
    client
        .batch_execute("DROP TABLE trades_plain; DROP TABLE trades_indexed")
        .await
        .map_err(|e| format!("DROP: {e}"))?;
    (f.before_ms, f.before_answers) = run_queries(client, false).await?;
    let started = Instant::now();
    client
        .batch_execute("CREATE INDEX ON trades (sym)")
        .await
        .map_err(|e| format!("CREATE INDEX: {e}"))?;
    f.build_ms = started.elapsed().as_secs_f64() * 1000.0;
    (f.after_ms, f.after_answers) = run_queries(client, false).await?;
    let table_dir = std::fs::read_dir(root.join("db"))
        .map_err(|e| format!("{}: {e}", root.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("trades~"))
        })
        .ok_or("no trades directory under the Tidemark root")?;
    f.index_bytes = bytes_of(&table_dir, "sym~", ".k");
    f.key_bytes = bytes_of(&table_dir, "sym~", ".d");
    Ok(f)
}

/// The same queries on PostgreSQL after `CREATE INDEX ON trades (sym, ts)`.
pub(crate) async fn postgres(client: &Client) -> Result<(Vec<(f64, usize)>, Vec<Vec<String>>)> {
    for sql in ["CREATE INDEX ON trades (sym, ts)", "ANALYZE trades"] {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    run_queries(client, true).await
}
