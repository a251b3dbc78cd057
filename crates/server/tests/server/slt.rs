//! Runs every `tests/slt/*.slt` file over the PostgreSQL protocol (simple query, text
//! results, as psql does), each file against a fresh server. The executor's tests run
//! the same files in-process; running them here too proves the wire adds nothing and
//! loses nothing: same values, same row counts, same SQLSTATEs.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::harness::Server;

/// The server's error as a user sees it: tokio-postgres prints only "db error".
#[derive(Debug)]
struct WireError(tokio_postgres::Error);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for WireError {}

struct OverTheWire {
    client: tokio_postgres::Client,
}

#[async_trait]
impl AsyncDB for OverTheWire {
    type Error = WireError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        let messages = self.client.simple_query(sql).await.map_err(WireError)?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut count = None;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(desc) => columns = Some(desc.len()),
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(s) => s.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = Some(n),
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(count.unwrap_or(0)),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "tidemark"
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.0.code().map(|c| c.code().to_string())
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn sqllogictest_files_over_the_wire() {
    let files = slt_files();
    assert!(files.len() >= 5, "expected the slt suite, found {files:?}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut failures = Vec::new();
    for file in files {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(dir.path(), &[]);
        let conninfo = server.conninfo("quest");
        let result = rt.block_on(async {
            let mut runner = Runner::new(|| {
                let conninfo = conninfo.clone();
                async move {
                    let (client, connection) = tokio_postgres::connect(&conninfo, NoTls)
                        .await
                        .map_err(WireError)?;
                    tokio::spawn(connection);
                    Ok(OverTheWire { client })
                }
            });
            runner.run_file_async(&file).await
        });
        if let Err(e) = result {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
