//! Runs every `tests/slt/*.slt` file in-process against a fresh database.
//! (The server's tests run the same files over the PostgreSQL protocol.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tidemark_executor::text::format_result_value;
use tidemark_executor::{ExecError, Output, Session};
use tidemark_storage::{Database, StorageOptions};

struct Tidemark {
    session: Session,
    _dir: Arc<tempfile::TempDir>,
}

#[async_trait]
impl AsyncDB for Tidemark {
    type Error = ExecError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, ExecError> {
        let outputs = self.session.execute(sql).await?;
        match outputs.into_iter().last() {
            Some(Output::Rows { schema, rows }) => {
                let batches = rows.collect().await?;
                let mut rows = Vec::new();
                for b in &batches {
                    for r in 0..b.num_rows() {
                        let row = b
                            .columns()
                            .iter()
                            .map(|c| {
                                format_result_value(c, r).map(|v| match v {
                                    None => "NULL".to_string(),
                                    Some(s) if s.is_empty() => "(empty)".to_string(),
                                    Some(s) => s,
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        rows.push(row);
                    }
                }
                Ok(DBOutput::Rows {
                    types: vec![DefaultColumnType::Any; schema.fields().len()],
                    rows,
                })
            }
            Some(Output::Command { tag, .. }) => {
                let count = tag
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok(DBOutput::StatementComplete(count))
            }
            None => Ok(DBOutput::StatementComplete(0)),
            // COPY needs a client that sends or takes the data: the wire tests cover it.
            Some(Output::CopyIn(_) | Output::CopyOut(_)) => Err(ExecError::new(
                "0A000",
                format!("COPY is not supported in .slt files: {sql}"),
            )),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "tidemark"
    }

    fn error_sql_state(err: &ExecError) -> Option<String> {
        Some(err.sqlstate.to_string())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    run_slt_files(false).await;
}

/// The same files with every query of a simple-query script run from a kept
/// plan from its first execution on (a session otherwise keeps the plan of a
/// text it runs a second time): each answer must be the one planning anew gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files_through_kept_plans() {
    run_slt_files(true).await;
}

async fn run_slt_files(kept_plans: bool) {
    let files = slt_files();
    assert!(files.len() >= 5, "expected the slt suite, found {files:?}");
    let mut failures = Vec::new();
    for file in files {
        let mut runner = Runner::new(|| async {
            let dir =
                Arc::new(tempfile::tempdir().map_err(|e| ExecError::new("58030", e.to_string()))?);
            let options = StorageOptions {
                background_housekeeping: false,
                ..Default::default()
            };
            let db = Database::open(dir.path(), options).map_err(ExecError::from)?;
            let mut session = Session::new(Arc::new(db));
            if kept_plans {
                session.keep_simple_plans_at_first_sight();
            }
            Ok(Tidemark { session, _dir: dir })
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
