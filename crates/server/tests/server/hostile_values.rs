//! Hostile names and values: table and column names with `..`, `/`, quotes,
//! unicode, 2,000 characters and reserved words; values at the limits of their
//! types; values far past `server.max_message_mb`. Every bad one gets a clear
//! error with its SQLSTATE, nothing lands outside the root, the good ones come
//! back exactly (also after a SIGKILL and restart), and a huge value does not
//! blow up the server's memory.

use std::path::Path;

use crate::harness::{Server, proc_status_bytes};

/// `name` as a quoted identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn code(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("a server error, got {e:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// Every path under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn hostile_names_are_stored_safely_or_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let accepted: Vec<String> = vec![
        "a..b".into(),
        "it's".into(),
        "say \"hi\"".into(),
        "日本語".into(),
        "émoji 🚀".into(),
        "select".into(),
        "from".into(),
        "checkpoint".into(),
        "latest".into(),
        "%2e%2e".into(),
        "x~1".into(),
        "_txn".into(),
        "n".repeat(127),
        "日".repeat(42),
    ];
    let refused: Vec<(String, &str)> = vec![
        ("..".into(), "42602"),
        (".".into(), "42602"),
        ("x/y".into(), "42602"),
        ("../../etc".into(), "42602"),
        ("a\\b".into(), "42602"),
        ("n".repeat(2000), "42602"),
        ("n".repeat(128), "42602"),
        (" lead".into(), "42602"),
        ("tab\there".into(), "42602"),
    ];
    let server = Server::start(&root, &[]);
    let client = server.client().await;
    for (i, name) in accepted.iter().enumerate() {
        let t = quoted(name);
        client
            .batch_execute(&format!(
                "CREATE TABLE {t} (ts TIMESTAMP, {t} BIGINT, \"v\" VARCHAR) TIMESTAMP(ts) PARTITION BY DAY; \
                 INSERT INTO {t} VALUES ('2026-11-21T10:00:00', {i}, 'row of {}')",
                name.replace('\'', "''")
            ))
            .await
            .unwrap_or_else(|e| panic!("name {name:?}: {e:?}"));
    }
    // Names compare case-insensitively: a second table differing only in case is a duplicate.
    let e = client
        .batch_execute("CREATE TABLE \"SELECT\" (ts TIMESTAMP) TIMESTAMP(ts)")
        .await
        .expect_err("duplicate by case");
    assert_eq!(code(&e).0, "42P07", "{:?}", code(&e));
    for (name, sqlstate) in &refused {
        let e = client
            .batch_execute(&format!(
                "CREATE TABLE {} (ts TIMESTAMP) TIMESTAMP(ts)",
                quoted(name)
            ))
            .await
            .expect_err("a refused table name");
        let (c, message) = code(&e);
        assert_eq!(&c, sqlstate, "table {name:?}: {message}");
        let shown: String = name.chars().take(20).collect();
        assert!(
            message.contains(&shown) || message.contains(&shown.escape_debug().to_string()),
            "the message names the offending name {name:?}: {message}"
        );
        let e = client
            .batch_execute(&format!(
                "CREATE TABLE ok_table (ts TIMESTAMP, {} INT) TIMESTAMP(ts)",
                quoted(name)
            ))
            .await
            .expect_err("a refused column name");
        assert_eq!(&code(&e).0, sqlstate, "column {name:?}");
    }
    // Nothing was written outside the root, and nothing in it escaped db/.
    let outside: Vec<String> = tree(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("root"))
        .collect();
    assert!(outside.is_empty(), "files outside the root: {outside:?}");

    // Back exactly, also after SIGKILL and a restart.
    drop(client);
    drop(server);
    let server = Server::start(&root, &[]);
    let client = server.client().await;
    for (i, name) in accepted.iter().enumerate() {
        let t = quoted(name);
        let row = client
            .query_one(&format!("SELECT {t}, \"v\" FROM {t}"), &[])
            .await
            .unwrap_or_else(|e| panic!("name {name:?} after restart: {e:?}"));
        assert_eq!(row.get::<_, i64>(0), i as i64, "{name:?}");
        assert_eq!(row.get::<_, String>(1), format!("row of {name}"));
    }
    let listed: Vec<String> = client
        .query("SELECT table_name FROM tables() ORDER BY table_name", &[])
        .await
        .expect("tables()")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected = accepted.clone();
    expected.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(
        listed_sorted, expected,
        "tables() shows every name as typed"
    );
    for name in &accepted {
        client
            .batch_execute(&format!("DROP TABLE {}", quoted(name)))
            .await
            .unwrap_or_else(|e| panic!("drop {name:?}: {e:?}"));
    }
}

#[tokio::test]
async fn values_at_the_limits_of_their_types_come_back_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("root"), &[]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE lim (ts TIMESTAMP, s SMALLINT, i INT, b BIGINT, r REAL, d DOUBLE, \
             v VARCHAR, u UUID, dt DATE, ok BOOLEAN) TIMESTAMP(ts) PARTITION BY YEAR; \
             INSERT INTO lim VALUES ('0001-01-01 00:00:00', -32768, -2147483648, -9223372036854775808, \
               -3.4028235e38, -1.7976931348623157e308, '', '00000000-0000-0000-0000-000000000000', '0001-01-01', false); \
             INSERT INTO lim VALUES ('9999-12-31 23:59:59.999999', 32767, 2147483647, 9223372036854775807, \
               3.4028235e38, 1.7976931348623157e308, 'quote '' backslash \\ tab \t é 日本 🚀', \
               'ffffffff-ffff-ffff-ffff-ffffffffffff', '9999-12-31', true); \
             INSERT INTO lim (ts, d, r) VALUES ('2026-11-21', 'NaN', 'Infinity'), ('2026-11-21 00:00:01', '-Infinity', 5e-324)",
        )
        .await
        .expect("values at the limits");
    let text = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .simple_query(sql)
                .await
                .expect(sql)
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect::<Vec<_>>()
                            .join("|"),
                    ),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        text("SELECT ts, s, i, b, r, d, v, u, dt, ok FROM lim ORDER BY ts").await,
        [
            "0001-01-01 00:00:00|-32768|-2147483648|-9223372036854775808|-3.4028235e+38|-1.7976931348623157e+308||00000000-0000-0000-0000-000000000000|0001-01-01|f",
            "2026-11-21 00:00:00|NULL|NULL|NULL|Infinity|NaN|NULL|NULL|NULL|NULL",
            "2026-11-21 00:00:01|NULL|NULL|NULL|0|-Infinity|NULL|NULL|NULL|NULL",
            "9999-12-31 23:59:59.999999|32767|2147483647|9223372036854775807|3.4028235e+38|1.7976931348623157e+308|quote ' backslash \\ tab \t é 日本 🚀|ffffffff-ffff-ffff-ffff-ffffffffffff|9999-12-31|t",
        ]
    );
    // One past each limit: 22003, naming the column.
    for (column, value) in [
        ("s", "32768"),
        ("s", "-32769"),
        ("i", "2147483648"),
        ("b", "9223372036854775808"),
    ] {
        let e = client
            .batch_execute(&format!(
                "INSERT INTO lim (ts, {column}) VALUES ('2026-11-22', {value})"
            ))
            .await
            .expect_err("out of range");
        let (c, message) = code(&e);
        assert_eq!(c, "22003", "{column} = {value}: {message}");
        assert!(message.contains(&format!("\"{column}\"")), "{message}");
    }
    // A NUL inside text cannot travel in a query string; as a bound parameter it is
    // refused (PostgreSQL: 22021) or stored and returned exactly, never a crash.
    match client
        .execute(
            "INSERT INTO lim (ts, v) VALUES ('2026-11-22', $1)",
            &[&"nul \u{0} inside"],
        )
        .await
    {
        Err(e) => assert_eq!(code(&e).0, "22021", "{:?}", code(&e)),
        Ok(_) => {
            let v: String = client
                .query_one("SELECT v FROM lim WHERE ts = '2026-11-22'", &[])
                .await
                .expect("read back")
                .get(0);
            assert_eq!(v, "nul \u{0} inside");
            client
                .batch_execute("DELETE FROM lim WHERE ts = '2026-11-22'")
                .await
                .expect("delete");
        }
    }
    let rows = text("SELECT count(*) FROM lim").await;
    assert_eq!(rows, ["4"], "no failed statement left a row");
}

#[tokio::test]
async fn a_huge_value_gets_a_clear_error_without_a_memory_blow_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &dir.path().join("root"),
        &[("TIDEMARK_SERVER_MAX_MESSAGE_MB", "16")],
    );
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE big (ts TIMESTAMP, v VARCHAR, b BYTEA) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .expect("create");
    let huge = "x".repeat(100 << 20);
    // As a literal in a simple query.
    let e = client
        .batch_execute(&format!(
            "INSERT INTO big (ts, v) VALUES ('2026-11-21', '{huge}')"
        ))
        .await
        .expect_err("too large");
    let (c, message) = code(&e);
    assert_eq!(c, "54000", "{message}");
    assert!(message.contains("max_message_mb"), "{message}");
    // As a bound parameter.
    let e = client
        .execute(
            "INSERT INTO big (ts, v) VALUES ('2026-11-21', $1)",
            &[&huge.as_str()],
        )
        .await
        .expect_err("too large");
    assert_eq!(code(&e).0, "54000", "{:?}", code(&e));
    // As one COPY row.
    let sink = client
        .copy_in("COPY big (ts, v) FROM STDIN")
        .await
        .expect("COPY");
    futures::pin_mut!(sink);
    use futures::SinkExt;
    let mut row = String::from("2026-11-21 00:00:00\t");
    row.push_str(&huge);
    let sent = async {
        for chunk in row.as_bytes().chunks(1 << 20) {
            sink.send(bytes::Bytes::copy_from_slice(chunk)).await?;
        }
        sink.finish().await
    }
    .await;
    let e = sent.expect_err("too large");
    assert_eq!(code(&e).0, "54000", "{:?}", code(&e));
    drop(row);
    drop(huge);
    // The server stays up and takes values under the limit.
    let fine = "y".repeat(8 << 20);
    client
        .execute(
            "INSERT INTO big (ts, v) VALUES ('2026-11-21', $1)",
            &[&fine.as_str()],
        )
        .await
        .expect("8 MiB is under the limit");
    let len: i32 = client
        .query_one("SELECT length(v) FROM big", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(len, 8 << 20);
    let peak = proc_status_bytes(server.child.id(), "VmHWM");
    assert!(
        peak < 700 << 20,
        "peak RSS {} MiB for 100 MiB values that were refused",
        peak >> 20
    );
}
