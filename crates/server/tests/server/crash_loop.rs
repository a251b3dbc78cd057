//! Crash loop: the real server SIGKILLed at random moments under mixed load —
//! multi-table transactions with out-of-order rows, UPDATE and DELETE, DDL, and
//! CHECKPOINT CREATE/RELEASE — and restarted each time. After every restart:
//! every acknowledged commit is there, nothing partial is (the two tables of a
//! transaction agree), a statement in flight at the kill is either wholly there
//! or wholly absent, and the server serves at once.
//!
//! `TIDEMARK_CRASH_LOOP_KILLS` sets the number of kills (default 4; the full run
//! in docs/reliability.md uses 200).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;

use crate::harness::{Server, length_from_env};

/// What the clients were told, and what they sent without hearing back.
#[derive(Debug, Default)]
struct Model {
    /// Ledger transactions acknowledged (seq numbers in both `a` and `b`).
    ledger_acked: Vec<i64>,
    /// The ledger transaction in flight at the kill, if any.
    ledger_in_flight: Option<i64>,
    /// Rows of `c` by key: the acknowledged value (`None`: deleted or never
    /// inserted) and the value a statement in flight would leave.
    c_rows: BTreeMap<i64, (Option<i64>, Option<Option<i64>>)>,
    /// DDL tables by number: acknowledged existence, and the in-flight change.
    ddl_tables: BTreeMap<i64, (bool, Option<bool>)>,
    /// Views `dv_i` over the DDL tables, the same way.
    ddl_views: BTreeMap<i64, (bool, Option<bool>)>,
    next_ledger: i64,
    next_c: i64,
    next_ddl: i64,
}

fn ts(n: i64) -> String {
    // Mostly forward through the day, every 5th row into the previous day.
    let day = if n % 5 == 4 { 20 } else { 21 };
    format!(
        "2026-11-{day}T{:02}:{:02}:{:02}.{:06}",
        n / 3600 % 24,
        n / 60 % 60,
        n % 60,
        n % 1_000_000
    )
}

/// BEGIN; INSERT INTO a; INSERT INTO b; COMMIT — until an error (the kill).
async fn ledger(client: tokio_postgres::Client, model: Arc<Mutex<Model>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let n = {
            let mut m = model.lock();
            let n = m.next_ledger;
            m.next_ledger += 1;
            m.ledger_in_flight = Some(n);
            n
        };
        let sql = format!(
            "BEGIN; INSERT INTO a VALUES ('{t}', {n}); INSERT INTO b VALUES ('{t}', {n}, 'row {n}', ARRAY[{n}, {n}.5]); COMMIT",
            t = ts(n)
        );
        if client.batch_execute(&sql).await.is_err() {
            return;
        }
        let mut m = model.lock();
        m.ledger_acked.push(n);
        m.ledger_in_flight = None;
    }
}

/// INSERT a key, UPDATE it, DELETE an older one: each autocommit.
async fn churn(client: tokio_postgres::Client, model: Arc<Mutex<Model>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let k = {
            let mut m = model.lock();
            m.next_c += 1;
            m.next_c
        };
        let steps = [
            (
                k,
                Some(0),
                format!("INSERT INTO c VALUES ('{}', {k}, 0)", ts(k)),
            ),
            (k, Some(1), format!("UPDATE c SET v = 1 WHERE k = {k}")),
            (k - 2, None, format!("DELETE FROM c WHERE k = {}", k - 2)),
        ];
        for (key, value, sql) in steps {
            model.lock().c_rows.entry(key).or_insert((None, None)).1 = Some(value);
            if client.batch_execute(&sql).await.is_err() {
                return;
            }
            let mut m = model.lock();
            let row = m.c_rows.entry(key).or_insert((None, None));
            *row = (value, None);
        }
    }
}

/// CREATE TABLE d_i, INSERT, ALTER ADD COLUMN, CREATE VIEW dv_i over it,
/// DROP VIEW dv_(i-2), DROP TABLE d_(i-2).
async fn ddl(client: tokio_postgres::Client, model: Arc<Mutex<Model>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let i = {
            let mut m = model.lock();
            m.next_ddl += 1;
            m.next_ddl
        };
        let steps = [
            (
                false,
                i,
                true,
                format!(
                    "CREATE TABLE d_{i} (ts TIMESTAMP, x BIGINT) TIMESTAMP(ts) PARTITION BY DAY"
                ),
            ),
            (
                false,
                i,
                true,
                format!("INSERT INTO d_{i} VALUES ('{}', {i})", ts(i)),
            ),
            (
                false,
                i,
                true,
                format!("ALTER TABLE d_{i} ADD COLUMN y VARCHAR"),
            ),
            (
                true,
                i,
                true,
                format!("CREATE VIEW dv_{i} AS (SELECT x, y FROM d_{i} WHERE x > 0)"),
            ),
            (
                true,
                i - 2,
                false,
                format!("DROP VIEW IF EXISTS dv_{}", i - 2),
            ),
            (
                false,
                i - 2,
                false,
                format!("DROP TABLE IF EXISTS d_{}", i - 2),
            ),
        ];
        for (view, n, exists, sql) in steps {
            objects(&mut model.lock(), view)
                .entry(n)
                .or_insert((false, None))
                .1 = Some(exists);
            if client.batch_execute(&sql).await.is_err() {
                return;
            }
            *objects(&mut model.lock(), view)
                .entry(n)
                .or_insert((false, None)) = (exists, None);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The DDL views' or tables' entries of the model.
fn objects(m: &mut Model, view: bool) -> &mut BTreeMap<i64, (bool, Option<bool>)> {
    if view {
        &mut m.ddl_views
    } else {
        &mut m.ddl_tables
    }
}

/// CHECKPOINT CREATE, a moment, CHECKPOINT RELEASE.
/// CHECKPOINT CREATE / RELEASE in a loop. A checkpoint left in progress by a
/// kill is released (as a backup script starting over would) in rounds where
/// `release_leftover` is set; in the others it stays held across restarts.
async fn checkpoints(
    client: tokio_postgres::Client,
    stop: Arc<AtomicBool>,
    release_leftover: bool,
) {
    while !stop.load(Ordering::SeqCst) {
        match client.batch_execute("CHECKPOINT CREATE").await {
            Ok(()) => {}
            Err(e) if e.as_db_error().is_some() && release_leftover => {
                if client.batch_execute("CHECKPOINT RELEASE").await.is_err() {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        if client.batch_execute("CHECKPOINT RELEASE").await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn column(client: &tokio_postgres::Client, sql: &str) -> Vec<i64> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Checks the restarted server against the model, then folds what was in flight
/// into it (as it turned out to be), so the next round starts from the truth.
async fn check(client: &tokio_postgres::Client, model: &Mutex<Model>, kill: usize) {
    let a = column(client, "SELECT seq FROM a ORDER BY seq").await;
    let b = column(client, "SELECT seq FROM b ORDER BY seq").await;
    assert_eq!(
        a, b,
        "kill {kill}: both tables of every transaction, or neither"
    );
    // Variable-size values (text, DOUBLE[]) come back whole with their row.
    let torn = column(
        client,
        "SELECT count(*) FROM b WHERE (note IS DISTINCT FROM ('row ' || seq)) \
         OR depth IS NULL OR cardinality(depth) <> 2 OR depth[1] <> seq OR depth[2] <> seq + 0.5",
    )
    .await;
    assert_eq!(torn, [0], "kill {kill}: rows of b with torn values");
    {
        let mut m = model.lock();
        let mut expected = m.ledger_acked.clone();
        if let Some(n) = m.ledger_in_flight.take()
            && a.binary_search(&n).is_ok()
        {
            expected.push(n);
            m.ledger_acked.push(n);
        }
        expected.sort_unstable();
        assert_eq!(
            a, expected,
            "kill {kill}: every acknowledged transaction, nothing else"
        );
    }

    let rows = client
        .query("SELECT k, v FROM c ORDER BY k", &[])
        .await
        .expect("select c");
    let actual: BTreeMap<i64, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(actual.len(), rows.len(), "kill {kill}: no key twice in c");
    {
        let mut m = model.lock();
        for (k, (acked, in_flight)) in m.c_rows.iter_mut() {
            let got = actual.get(k).copied();
            let allowed = [Some(*acked), *in_flight];
            assert!(
                allowed.contains(&Some(got)),
                "kill {kill}: c key {k} is {got:?}; acknowledged {acked:?}, in flight {in_flight:?}"
            );
            *acked = got;
            *in_flight = None;
        }
        for k in actual.keys() {
            assert!(
                m.c_rows.contains_key(k),
                "kill {kill}: c key {k} was never written"
            );
        }
    }

    let tables = column(
        client,
        "SELECT CAST(substr(table_name, 3) AS BIGINT) FROM information_schema.tables \
         WHERE table_name LIKE 'd\\_%' ORDER BY 1",
    )
    .await;
    // Every view listed plans: its table was dropped only after it.
    let views = column(
        client,
        "SELECT CAST(substr(view_name, 4) AS BIGINT) FROM views() \
         WHERE view_name LIKE 'dv\\_%' AND view_status = 'valid' ORDER BY 1",
    )
    .await;
    let all_views = column(client, "SELECT count(*) FROM views()").await;
    assert_eq!(
        all_views,
        [views.len() as i64],
        "kill {kill}: every view is valid"
    );
    let mut m = model.lock();
    for (kind, listed, view) in [("table d_", &tables, false), ("view dv_", &views, true)] {
        for (i, (acked, in_flight)) in objects(&mut m, view).iter_mut() {
            let exists = listed.binary_search(i).is_ok();
            assert!(
                exists == *acked || Some(exists) == *in_flight,
                "kill {kill}: {kind}{i} exists: {exists}; acknowledged {acked}, in flight {in_flight:?}"
            );
            *acked = exists;
            *in_flight = None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_sigkill_under_mixed_load() {
    let kills: usize = length_from_env("TIDEMARK_CRASH_LOOP_KILLS", 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let env = [("TIDEMARK_STORAGE_HOUSEKEEPING_INTERVAL_MS", "20")];
    let model = Arc::new(Mutex::new(Model::default()));
    let mut rng = rand::rng();
    let mut slowest_start = Duration::ZERO;
    let mut server = Server::start(&root, &env);
    {
        let client = server.client().await;
        client
            .batch_execute(
                "CREATE TABLE a (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
                 CREATE TABLE b (ts TIMESTAMP, seq BIGINT, note VARCHAR, depth DOUBLE[]) TIMESTAMP(ts) PARTITION BY DAY; \
                 CREATE TABLE c (ts TIMESTAMP, k BIGINT, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY",
            )
            .await
            .expect("schema");
    }
    for kill in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let clients = futures::future::join_all((0..4).map(|_| server.client())).await;
        let mut clients = clients.into_iter();
        let mut next = || clients.next().expect("client");
        tasks.push(tokio::spawn(ledger(next(), model.clone(), stop.clone())));
        tasks.push(tokio::spawn(churn(next(), model.clone(), stop.clone())));
        tasks.push(tokio::spawn(ddl(next(), model.clone(), stop.clone())));
        tasks.push(tokio::spawn(checkpoints(
            next(),
            stop.clone(),
            kill % 2 == 1,
        )));
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
        drop(server); // SIGKILL
        for t in tasks {
            t.await.expect("load task");
        }
        let started = Instant::now();
        server = Server::start(&root, &env);
        let took = started.elapsed();
        if took > Duration::from_secs(2) {
            eprintln!(
                "restart {kill} took {took:?}:\n{}",
                server.startup_log.join("\n")
            );
        }
        slowest_start = slowest_start.max(took);
        // Serves at once: the client panics if it cannot connect.
        let client = server.client().await;
        check(&client, &model, kill).await;
        stop.store(true, Ordering::SeqCst);
    }
    let m = model.lock();
    eprintln!(
        "crash loop: {kills} kills, {} ledger transactions, {} keys churned, {} DDL rounds; slowest restart {:?}",
        m.ledger_acked.len(),
        m.c_rows.len(),
        m.next_ddl,
        slowest_start
    );
    assert!(
        m.ledger_acked.len() > kills,
        "the load made progress between kills"
    );
    assert!(
        slowest_start < Duration::from_secs(10),
        "a restart took {slowest_start:?}"
    );
}
