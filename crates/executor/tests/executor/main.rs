//! End-to-end tests of the executor over real storage (one test binary).

mod prepared;
mod scan;
mod settings;
mod slt;

/// A session over a fresh database (housekeeping off); the directory lives as
/// long as the returned guard.
pub(crate) fn session() -> (tidemark_executor::Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = tidemark_storage::Database::open(
        dir.path(),
        tidemark_storage::StorageOptions {
            background_housekeeping: false,
            ..Default::default()
        },
    )
    .expect("open");
    (
        tidemark_executor::Session::new(std::sync::Arc::new(db)),
        dir,
    )
}
