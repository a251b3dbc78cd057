//! The same work on every system: ingest over the wire with tokio-postgres (COPY,
//! batched INSERT with bound parameters, single-row INSERTs from 16 connections) and
//! the query suite (warm-up, then the median of 5 runs).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::SinkExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use crate::data;

pub(crate) type Result<T> = std::result::Result<T, String>;

fn err(what: &str) -> impl Fn(tokio_postgres::Error) -> String + '_ {
    move |e| match e.as_db_error() {
        Some(db) => format!("{what}: {} ({})", db.message(), db.code().code()),
        None => format!("{what}: {e}"),
    }
}

pub(crate) async fn connect(conninfo: &str) -> Result<Client> {
    let (client, conn) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(err("connect"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// Which server: the DDL differs, the workload does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    Tidemark,
    Postgres,
}

pub(crate) fn create_table(system: System, name: &str) -> String {
    match system {
        System::Tidemark => format!(
            "CREATE TABLE {name} (ts TIMESTAMP, sym SYMBOL, side SYMBOL, price DOUBLE, amount DOUBLE) \
             TIMESTAMP(ts) PARTITION BY DAY"
        ),
        System::Postgres => format!(
            "CREATE TABLE {name} (ts TIMESTAMP, sym TEXT, side TEXT, price DOUBLE PRECISION, \
             amount DOUBLE PRECISION)"
        ),
    }
}

/// COPY the CSV file into `table`, one COPY statement per `per_statement` rows (a
/// COPY is one transaction, and a Tidemark transaction is one WAL record of at most
/// 2 GiB: larger loads are split, on every system alike); rows per second.
pub(crate) async fn copy_in(
    client: &Client,
    table: &str,
    csv: &Path,
    rows: u64,
    per_statement: u64,
) -> Result<f64> {
    let started = Instant::now();
    let sql = format!("COPY {table} FROM STDIN WITH (FORMAT csv)");
    // A plain blocking read, 1 MiB at a time: negligible next to sending it.
    let mut file = std::fs::File::open(csv).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    let mut sink = Box::pin(client.copy_in(&sql).await.map_err(err("COPY"))?);
    let mut in_statement = 0u64;
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            // Send up to the line that completes this statement's share, then start
            // the next COPY with the rest.
            let room = per_statement - in_statement;
            let (take, lines) = match chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .nth(room as usize - 1)
            {
                Some((i, _)) => (i + 1, room),
                None => (
                    chunk.len(),
                    chunk.iter().filter(|b| **b == b'\n').count() as u64,
                ),
            };
            sink.send(bytes::Bytes::copy_from_slice(&chunk[..take]))
                .await
                .map_err(err("COPY data"))?;
            in_statement += lines;
            chunk = &chunk[take..];
            if in_statement == per_statement {
                copied += sink.as_mut().finish().await.map_err(err("COPY end"))?;
                sink = Box::pin(client.copy_in(&sql).await.map_err(err("COPY"))?);
                in_statement = 0;
            }
        }
    }
    copied += sink.as_mut().finish().await.map_err(err("COPY end"))?;
    if copied != rows {
        return Err(format!("COPY loaded {copied} rows, expected {rows}"));
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// COPY of generated rows `rows` (late ones with `late`) in text CSV or in
/// binary format, as one statement; rows per second. The data is generated
/// before the clock starts.
pub(crate) async fn copy_generated(
    client: &Client,
    table: &str,
    rows: std::ops::Range<u64>,
    late: bool,
    binary: bool,
) -> Result<f64> {
    let n = rows.end - rows.start;
    let stream: Vec<u8> = if binary {
        data::binary_copy(rows, late)
    } else {
        rows.map(|i| data::csv_line_with(i, late))
            .collect::<String>()
            .into_bytes()
    };
    let chunks: Vec<bytes::Bytes> = stream
        .chunks(1 << 20)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    drop(stream);
    let format = if binary { "binary" } else { "csv" };
    let started = Instant::now();
    let sink = client
        .copy_in(&format!("COPY {table} FROM STDIN WITH (FORMAT {format})"))
        .await
        .map_err(err("COPY"))?;
    futures::pin_mut!(sink);
    for c in chunks {
        sink.send(c).await.map_err(err("COPY data"))?;
    }
    let copied = sink.as_mut().finish().await.map_err(err("COPY end"))?;
    if copied != n {
        return Err(format!("COPY loaded {copied} rows, expected {n}"));
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Multi-row INSERTs of `batch` rows with bound parameters; rows per second.
pub(crate) async fn batched_insert(
    client: &Client,
    table: &str,
    rows: u64,
    batch: u64,
    late: bool,
) -> Result<f64> {
    let placeholders: Vec<String> = (0..batch)
        .map(|r| {
            let b = r * 5;
            format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            )
        })
        .collect();
    let stmt = client
        .prepare(&format!(
            "INSERT INTO {table} VALUES {}",
            placeholders.join(", ")
        ))
        .await
        .map_err(err("prepare batched INSERT"))?;
    let started = Instant::now();
    let mut i = 0;
    while i + batch <= rows {
        let rs: Vec<data::Row> = (i..i + batch).map(|k| data::row_with(k, late)).collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(rs.len() * 5);
        for r in &rs {
            params.push(&r.ts);
            params.push(&r.sym);
            params.push(&r.side);
            params.push(&r.price);
            params.push(&r.amount);
        }
        client
            .execute(&stmt, &params)
            .await
            .map_err(err("batched INSERT"))?;
        i += batch;
    }
    Ok(i as f64 / started.elapsed().as_secs_f64())
}

/// One writer task: its commits' start and duration.
type Writer = tokio::task::JoinHandle<Result<Vec<(Instant, Duration)>>>;

/// Starts `connections` clients that each commit single rows (row indexes taken
/// from `next`) into `table` until `stop` is set; each returns its commits' start
/// and duration.
async fn single_row_writers(
    conninfo: &str,
    table: &str,
    connections: u64,
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    late: bool,
) -> Result<Vec<Writer>> {
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = connect(conninfo).await?;
        let (next, stop, table) = (next.clone(), stop.clone(), table.to_string());
        tasks.push(tokio::spawn(async move {
            let stmt = client
                .prepare(&format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5)"))
                .await
                .map_err(err("prepare INSERT"))?;
            let mut commits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = data::row_with(next.fetch_add(1, Ordering::Relaxed), late);
                let t = Instant::now();
                client
                    .execute(&stmt, &[&r.ts, &r.sym, &r.side, &r.price, &r.amount])
                    .await
                    .map_err(err("INSERT"))?;
                commits.push((t, t.elapsed()));
            }
            Ok(commits)
        }));
    }
    Ok(tasks)
}

/// Every commit the writers made, once they have stopped.
async fn collect_commits(tasks: Vec<Writer>) -> Result<Vec<(Instant, Duration)>> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// Single-row INSERTs (each its own durable commit) from `connections` connections
/// for `duration`; rows per second and the commit latencies' p50 and p99 (ms).
pub(crate) async fn single_row_inserts(
    conninfo: &str,
    table: &str,
    connections: u64,
    duration: Duration,
    late: bool,
) -> Result<(f64, f64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = single_row_writers(
        conninfo,
        table,
        connections,
        Arc::new(AtomicU64::new(0)),
        stop.clone(),
        late,
    )
    .await?;
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<f64> = collect_commits(tasks)
        .await?
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .collect();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Ok((rate, pct(0.5), pct(0.99)))
}

/// Checkpoint under load: `rounds` times, while 4 connections commit single rows
/// into `table`, Tidemark's `CHECKPOINT CREATE` (PostgreSQL: `pg_backup_start(label,
/// fast => true)`, its nearest equivalent before a file-level copy) is timed, then
/// released. Returns the median CREATE in ms and the stall: the longest commit of
/// the load that overlapped a CREATE.
pub(crate) async fn checkpoint_under_load(
    system: System,
    conninfo: &str,
    table: &str,
    rounds: usize,
) -> Result<(f64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    // Row indexes far from the single-row phase's, so the two never collide.
    let next = Arc::new(AtomicU64::new(1 << 40));
    let load = single_row_writers(conninfo, table, 4, next, stop.clone(), true).await?;
    let admin = connect(conninfo).await?;
    let (create, release) = match system {
        System::Tidemark => ("CHECKPOINT CREATE", "CHECKPOINT RELEASE"),
        System::Postgres => (
            "SELECT pg_backup_start('tidemark-bench', true)",
            "SELECT pg_backup_stop()",
        ),
    };
    let mut creates: Vec<(Instant, Duration)> = Vec::new();
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        admin.simple_query(create).await.map_err(err(create))?;
        creates.push((t, t.elapsed()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        admin.simple_query(release).await.map_err(err(release))?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let commits = collect_commits(load).await?;
    let overlaps = |(a, da): &(Instant, Duration), (b, db): &(Instant, Duration)| {
        *a < *b + *db && *b < *a + *da
    };
    let stall = commits
        .iter()
        .filter(|c| creates.iter().any(|k| overlaps(c, k)))
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .fold(0.0, f64::max);
    let mut ms: Vec<f64> = creates
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok((ms.get(ms.len() / 2).copied().unwrap_or(0.0), stall))
}

/// The query suite: name, Tidemark SQL, PostgreSQL/DuckDB SQL (`{t}` is the table).
pub(crate) const QUERIES: [(&str, &str, &str); 6] = [
    (
        "SAMPLE BY 1h avg price, one symbol, one day",
        "SELECT ts, avg(price) FROM trades WHERE sym = 'S7' AND ts IN '2026-11-21' SAMPLE BY 1h",
        "SELECT date_trunc('hour', ts) AS h, avg(price) FROM {t} WHERE sym = 'S7' \
         AND ts >= '2026-11-21' AND ts < '2026-11-22' GROUP BY h ORDER BY h",
    ),
    (
        "max price per symbol, all data",
        "SELECT sym, max(price) FROM trades GROUP BY sym",
        "SELECT sym, max(price) FROM {t} GROUP BY sym",
    ),
    (
        "last row per symbol",
        "SELECT * FROM trades LATEST ON ts PARTITION BY sym",
        "SELECT DISTINCT ON (sym) * FROM {t} ORDER BY sym, ts DESC",
    ),
    (
        "count with a price filter, all data",
        "SELECT count(*) FROM trades WHERE price > 200",
        "SELECT count(*) FROM {t} WHERE price > 200",
    ),
    (
        "one hour of one symbol",
        "SELECT * FROM trades WHERE sym = 'S7' AND ts >= '2026-11-21T10:00:00' AND ts < '2026-11-21T11:00:00'",
        "SELECT * FROM {t} WHERE sym = 'S7' AND ts >= '2026-11-21 10:00:00' AND ts < '2026-11-21 11:00:00'",
    ),
    (
        "1-minute OHLC, one symbol, one day",
        "SELECT ts, first_value(price ORDER BY ts) AS open, max(price) AS high, min(price) AS low, \
         last_value(price ORDER BY ts) AS close FROM trades WHERE sym = 'S7' AND ts IN '2026-11-21' SAMPLE BY 1m",
        "SELECT date_trunc('minute', ts) AS m, (array_agg(price ORDER BY ts))[1] AS open, max(price), \
         min(price), (array_agg(price ORDER BY ts DESC))[1] AS close FROM {t} WHERE sym = 'S7' \
         AND ts >= '2026-11-21' AND ts < '2026-11-22' GROUP BY m ORDER BY m",
    ),
];

/// The ASOF JOIN phase (Tidemark and DuckDB; PostgreSQL has no ASOF JOIN):
/// name, Tidemark SQL (QuestDB's spelling), DuckDB SQL. Trades without an
/// earlier quote of their symbol keep NULLs on both.
pub(crate) const ASOF_QUERIES: [(&str, &str, &str); 2] = [
    (
        "ASOF JOIN every trade to its symbol's latest quote, aggregated",
        "SELECT count(*), count(q.bid), round(avg(t.price - q.bid), 6) FROM trades t \
         ASOF JOIN quotes q ON (sym)",
        "SELECT count(*), count(q.bid), round(avg(t.price - q.bid), 6) FROM trades t \
         ASOF LEFT JOIN quotes q ON t.sym = q.sym AND t.ts >= q.ts",
    ),
    (
        "ASOF JOIN one symbol's trades in one hour, every row",
        "SELECT t.ts, t.price, q.bid FROM trades t ASOF JOIN quotes q ON (sym) \
         WHERE t.sym = 'S7' AND t.ts IN '2026-11-21T10'",
        "SELECT t.ts, t.price, q.bid FROM trades t ASOF LEFT JOIN quotes q \
         ON t.sym = q.sym AND t.ts >= q.ts WHERE t.sym = 'S7' \
         AND t.ts >= '2026-11-21 10:00:00' AND t.ts < '2026-11-21 11:00:00'",
    ),
];

/// The first row of `sql`'s result as text, columns joined by spaces.
pub(crate) async fn first_row(client: &Client, sql: &str) -> Result<String> {
    let rows = client.simple_query(sql).await.map_err(err(sql))?;
    for m in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            return Ok((0..r.len())
                .map(|i| r.get(i).unwrap_or("NULL").to_string())
                .collect::<Vec<_>>()
                .join(" "));
        }
    }
    Ok(String::new())
}

/// What `sql` answers, in a form two systems' answers can be compared in
/// ([`same_answer`]): each row's fields as text joined by `|` (NULL as
/// `NULL`), the rows sorted.
pub(crate) async fn answer(client: &Client, sql: &str) -> Result<Vec<String>> {
    let messages = client.simple_query(sql).await.map_err(err(sql))?;
    let mut rows: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// Whether two [`answer`]s hold the same rows: every field the same text, or
/// two numbers within a relative 1e-9 of each other (engines add floats in
/// different orders, so a mean can differ in its last digits).
pub(crate) fn same_answer(a: &[String], b: &[String]) -> bool {
    let same_field = |x: &str, y: &str| {
        x == y
            || match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                _ => false,
            }
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            let (x, y): (Vec<&str>, Vec<&str>) = (x.split('|').collect(), y.split('|').collect());
            x.len() == y.len() && x.iter().zip(&y).all(|(x, y)| same_field(x, y))
        })
}

/// Runs `sql` once to warm up, then 5 times; the median in milliseconds and the row count.
pub(crate) async fn time_query(client: &Client, sql: &str) -> Result<(f64, usize)> {
    let rows = client.simple_query(sql).await.map_err(err(sql))?;
    let count = rows
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        client.simple_query(sql).await.map_err(err(sql))?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[2], count))
}

/// Latency of prepared one-row statements, as a driver runs them: each is
/// prepared once, then executed `runs` times (Bind, Execute, Sync: one round
/// trip each). Two statements: `SELECT $1` (the protocol and executor alone)
/// and a lookup of one row of `trades` by its timestamp (PostgreSQL: its B-tree
/// on `ts`). Returns (p50, p99) in microseconds for each.
pub(crate) async fn prepared_latency(
    client: &Client,
    rows: u64,
    runs: usize,
) -> Result<((f64, f64), (f64, f64))> {
    let select = client
        .prepare("SELECT $1")
        .await
        .map_err(err("prepare SELECT $1"))?;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + runs / 10 {
        let value = i.to_string();
        let t = Instant::now();
        let got = client
            .query(&select, &[&value])
            .await
            .map_err(err("SELECT $1"))?;
        let elapsed = t.elapsed();
        let echoed: Option<&str> = got.first().and_then(|r| r.try_get(0).ok());
        if echoed != Some(value.as_str()) {
            return Err(format!("SELECT $1 returned {echoed:?}, not {value}"));
        }
        // The first tenth warms up.
        if i >= runs / 10 {
            times.push(elapsed);
        }
    }
    let select_latency = percentiles(&mut times);

    let lookup_sql = "SELECT * FROM trades WHERE ts = $1";
    let lookup = client.prepare(lookup_sql).await.map_err(err(lookup_sql))?;
    times.clear();
    for i in 0..runs + runs / 10 {
        // Spread over the whole table, so no two lookups read the same rows.
        let row = data::row_with((i as u64).wrapping_mul(7_919) % rows.max(1), false);
        let t = Instant::now();
        let got = client
            .query(&lookup, &[&row.ts])
            .await
            .map_err(err(lookup_sql))?;
        let elapsed = t.elapsed();
        if got.len() != 1 {
            return Err(format!("{lookup_sql} returned {} rows, not 1", got.len()));
        }
        if i >= runs / 10 {
            times.push(elapsed);
        }
    }
    Ok((select_latency, percentiles(&mut times)))
}

/// (p50, p99) in microseconds.
fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    if times.is_empty() {
        return (0.0, 0.0);
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// Upserts: the generated rows `rows` loaded by COPY into a table keyed on
/// (ts, sym) — Tidemark's `DEDUP UPSERT KEYS(ts, sym)`, PostgreSQL's `PRIMARY
/// KEY (ts, sym)` — then the same rows again, each replacing the stored one:
/// on Tidemark one more COPY, on PostgreSQL COPY into an unlogged staging table
/// and `INSERT ... ON CONFLICT DO UPDATE` (its bulk upsert). Rows per second of
/// the first load and of the second; the table must hold each row once.
pub(crate) async fn upsert_load(
    client: &Client,
    system: System,
    table: &str,
    rows: std::ops::Range<u64>,
) -> Result<(f64, f64)> {
    let n = rows.end - rows.start;
    let create = match system {
        System::Tidemark => format!(
            "CREATE TABLE {table} (ts TIMESTAMP, sym SYMBOL, side SYMBOL, price DOUBLE, \
             amount DOUBLE) TIMESTAMP(ts) PARTITION BY DAY DEDUP UPSERT KEYS(ts, sym)"
        ),
        System::Postgres => format!(
            "CREATE TABLE {table} (ts TIMESTAMP, sym TEXT, side TEXT, price DOUBLE PRECISION, \
             amount DOUBLE PRECISION, PRIMARY KEY (ts, sym))"
        ),
    };
    client.batch_execute(&create).await.map_err(err("CREATE"))?;
    let first = copy_generated(client, table, rows.clone(), false, false).await?;
    let again = match system {
        System::Tidemark => copy_generated(client, table, rows, false, false).await?,
        System::Postgres => {
            let stage = format!("{table}_stage");
            client
                .batch_execute(&format!(
                    "CREATE UNLOGGED TABLE {stage} (LIKE {table} INCLUDING DEFAULTS)"
                ))
                .await
                .map_err(err("CREATE staging"))?;
            let started = Instant::now();
            copy_generated(client, &stage, rows, false, false).await?;
            client
                .batch_execute(&format!(
                    "INSERT INTO {table} SELECT * FROM {stage} ON CONFLICT (ts, sym) DO UPDATE \
                     SET side = EXCLUDED.side, price = EXCLUDED.price, amount = EXCLUDED.amount"
                ))
                .await
                .map_err(err("INSERT ... ON CONFLICT"))?;
            n as f64 / started.elapsed().as_secs_f64()
        }
    };
    let count = first_row(client, &format!("SELECT count(*) FROM {table}")).await?;
    if count != n.to_string() {
        return Err(format!(
            "{system:?}: {table} holds {count} rows after the upserts, expected {n}"
        ));
    }
    Ok((first, again))
}

#[cfg(test)]
mod tests {
    use super::same_answer;

    fn rows(rows: &[&str]) -> Vec<String> {
        rows.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn answers_agree_on_text_and_on_numbers_a_rounding_apart() {
        let ours = rows(&["S1|100.00000000000001", "S2|NULL"]);
        assert!(same_answer(&ours, &rows(&["S1|100", "S2|NULL"])));
        assert!(!same_answer(&ours, &rows(&["S1|100.001", "S2|NULL"])));
        assert!(!same_answer(&ours, &rows(&["S1|100"])));
        assert!(!same_answer(&ours, &rows(&["S1|100", "S2|0"])));
        assert!(!same_answer(&rows(&["S1|a"]), &rows(&["S1|a|b"])));
    }
}
