//! Checkpoint loop: rounds of CHECKPOINT CREATE -> `cp -a` of the root under write
//! load -> CHECKPOINT RELEASE -> restore the copy on a second server, with DDL
//! before and during checkpoint mode. Every round the copy holds exactly the cut:
//! the same gapless prefix of transactions in both tables they write (between what
//! was acknowledged before CREATE and when it returned), the tables and columns
//! that existed at CREATE and none made after it.
//!
//! `TIDEMARK_CHECKPOINT_LOOP_ROUNDS` sets the rounds (default 3; the full run in
//! docs/reliability.md uses 50).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::harness::{Server, length_from_env, seqs};

/// Transactions writing seq n into both `a` and `b`, n = 0, 1, 2, ...; every 6th
/// row into the previous day. The number acknowledged so far is in `acked`.
fn start_writer(
    client: tokio_postgres::Client,
    acked: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0i64;
        while !stop.load(Ordering::SeqCst) {
            let day = if n % 6 == 5 { 20 } else { 21 };
            let ts = format!("2026-11-{day}T00:00:00.{:06}", n % 1_000_000);
            client
                .batch_execute(&format!(
                    "BEGIN; INSERT INTO a VALUES ('{ts}', {n}); INSERT INTO b VALUES ('{ts}', {n}); COMMIT"
                ))
                .await
                .expect("writer transaction");
            n += 1;
            acked.store(n, Ordering::SeqCst);
        }
    })
}

async fn table_names(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn columns_of(client: &tokio_postgres::Client, table: &str) -> Vec<String> {
    client
        .query(
            &format!(
                "SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position"
            ),
            &[],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_restores_to_exactly_its_cut() {
    let rounds: i64 = length_from_env("TIDEMARK_CHECKPOINT_LOOP_ROUNDS", 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let server = Server::start(&root, &[]);
    let admin = server.client().await;
    admin
        .batch_execute(
            "CREATE TABLE a (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
             CREATE TABLE b (ts TIMESTAMP, seq BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
             CREATE TABLE renamed (ts TIMESTAMP, col_start BIGINT) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("schema");
    let acked = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(server.client().await, acked.clone(), stop.clone());
    let mut cut_sizes = Vec::new();
    for r in 0..rounds {
        // DDL before the cut: a table the copy must have, and one it must not
        // (dropped before CREATE).
        let drop_older = if r >= 2 {
            format!("DROP TABLE IF EXISTS keep_{}", r - 2)
        } else {
            String::new()
        };
        admin
            .batch_execute(&format!(
                "CREATE TABLE keep_{r} (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
                 INSERT INTO keep_{r} VALUES ('2026-11-21T01:00:00', {r}); {drop_older}"
            ))
            .await
            .expect("DDL before the cut");
        tokio::time::sleep(Duration::from_millis(30)).await;
        let before = acked.load(Ordering::SeqCst);
        admin
            .batch_execute("CHECKPOINT CREATE")
            .await
            .expect("CREATE");
        let after = acked.load(Ordering::SeqCst);
        let tables_at_cut = table_names(&admin).await;
        let a_columns_at_cut = columns_of(&admin, "a").await;
        let renamed_at_cut = columns_of(&admin, "renamed").await;
        let renamed_column = renamed_at_cut[1].clone();
        // DDL during the mode, none of which the copy may show.
        admin
            .batch_execute(&format!(
                "CREATE TABLE later_{r} (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY; \
                 INSERT INTO later_{r} VALUES ('2026-11-21T01:00:00', {r}); \
                 DROP TABLE keep_{r}; \
                 ALTER TABLE a ADD COLUMN c_{r} BIGINT; \
                 ALTER TABLE renamed RENAME COLUMN {} TO col_{r}",
                renamed_column
            ))
            .await
            .expect("DDL during checkpoint mode");
        let copy = dir.path().join(format!("copy-{r}"));
        let out = Command::new("cp")
            .arg("-a")
            .arg(&root)
            .arg(&copy)
            .output()
            .expect("cp");
        assert!(
            out.status.success(),
            "round {r}: cp -a: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        admin
            .batch_execute("CHECKPOINT RELEASE")
            .await
            .expect("RELEASE");
        let _ = std::fs::remove_file(copy.join("tidemark.pid"));
        std::fs::write(copy.join("_restore"), b"").expect("touch _restore");

        let restored = Server::start(&copy, &[]);
        let client = restored.client().await;
        let a = seqs(&client, "a").await;
        let b = seqs(&client, "b").await;
        let k = a.len() as i64;
        assert_eq!(a, (0..k).collect::<Vec<_>>(), "round {r}: a gapless prefix");
        assert_eq!(a, b, "round {r}: both tables at the same transaction");
        assert!(
            k >= before && k <= after + 1,
            "round {r}: {k} transactions; {before} acknowledged before CREATE, {after} when it returned"
        );
        assert_eq!(
            table_names(&client).await,
            tables_at_cut,
            "round {r}: the tables of the cut"
        );
        assert_eq!(
            columns_of(&client, "a").await,
            a_columns_at_cut,
            "round {r}: the columns of the cut"
        );
        assert_eq!(
            columns_of(&client, "renamed").await,
            renamed_at_cut,
            "round {r}: the column names of the cut"
        );
        let kept: i64 = client
            .query_one(&format!("SELECT v FROM keep_{r}"), &[])
            .await
            .expect("the table dropped after the cut is back")
            .get(0);
        assert_eq!(kept, r);
        cut_sizes.push(k);
        drop(client);
        drop(restored);
        std::fs::remove_dir_all(&copy).expect("remove the copy");
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    eprintln!("checkpoint loop: {rounds} rounds, transactions at each cut: {cut_sizes:?}");
    assert!(
        cut_sizes.windows(2).all(|w| w[0] < w[1]),
        "the load kept committing between rounds: {cut_sizes:?}"
    );
}
