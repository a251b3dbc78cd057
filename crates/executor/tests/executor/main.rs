//! End-to-end tests of the executor over real storage (one test binary).

mod prepared;
mod scan;
mod settings;
mod slt;

/// A session over a fresh database (housekeeping off); the directory lives as
/// long as the returned guard.
pub(crate) fn session() -> (tidemark_executor::Session, tempfile::TempDir) {
    session_with(tidemark_storage::StorageOptions {
        background_housekeeping: false,
        ..Default::default()
    })
}

/// A session whose inserted rows stay in the write buffer until `CHECKPOINT`
/// (no background apply), so scans read files and buffered rows together.
pub(crate) fn buffered_session() -> (tidemark_executor::Session, tempfile::TempDir) {
    session_with(tidemark_storage::StorageOptions {
        background_housekeeping: false,
        background_apply: false,
        ..Default::default()
    })
}

fn session_with(
    options: tidemark_storage::StorageOptions,
) -> (tidemark_executor::Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = tidemark_storage::Database::open(dir.path(), options).expect("open");
    (
        tidemark_executor::Session::new(std::sync::Arc::new(db)),
        dir,
    )
}

/// A result's values as text, row by row.
pub(crate) fn text_rows(
    batches: &[tidemark_executor::arrow::record_batch::RecordBatch],
) -> Vec<Vec<Option<String>>> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                (0..b.num_columns())
                    .map(|c| {
                        tidemark_executor::text::format_value(b.column(c), r)
                            .ok()
                            .flatten()
                    })
                    .collect()
            })
        })
        .collect()
}

/// Runs `sql`, failing the test with its error.
pub(crate) async fn execute(s: &mut tidemark_executor::Session, sql: &str) {
    s.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub(crate) async fn rows(
    s: &mut tidemark_executor::Session,
    sql: &str,
) -> Vec<Vec<Option<String>>> {
    let mut out = s
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let Some(tidemark_executor::Output::Rows { rows, .. }) = out.pop() else {
        panic!("{sql}: {out:?}")
    };
    text_rows(&rows.collect().await.expect("rows"))
}
