//! TTL: partitions older than a table's TTL behind its newest row are
//! dropped, by a commit that recovery replays; never in checkpoint mode; the
//! TTL itself is kept across restarts and refused where it cannot apply.

use tidemark_storage::*;

use crate::common::*;

fn partition_names(db: &Database, table: &str) -> Vec<String> {
    let snap = db.snapshot();
    let t = snap.table(table).expect("table");
    t.partitions().into_iter().map(|p| p.name).collect()
}

fn set_ttl(db: &Database, table: &str, ttl: Option<Ttl>) -> Result<CommitReceipt> {
    db.commit(Transaction::new().with(Request::SetTtl {
        table: table.into(),
        ttl,
    }))
}

fn days(count: u32) -> Option<Ttl> {
    Some(Ttl {
        count,
        unit: TtlUnit::Day,
    })
}

#[test]
fn partitions_past_the_ttl_are_dropped_and_stay_dropped_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    // Five days of rows, the newest at noon of the fifth (2026-11-25T12:00).
    let ts: Vec<i64> = (0..5).map(|d| T0 + d * DAY + 12 * HOUR).collect();
    append(&db, "t", trades_batch(&ts, 0));
    assert_eq!(db.drop_expired_partitions().expect("no ttl"), 0);
    set_ttl(&db, "t", days(2)).expect("ttl");
    assert_eq!(db.snapshot().table("t").expect("t").meta().ttl, days(2));
    // Two days behind 11-25T12:00 is 11-23T12:00: the 21st and 22nd end by
    // then; the 23rd does not.
    assert_eq!(db.drop_expired_partitions().expect("drop"), 2);
    assert_eq!(
        partition_names(&db, "t"),
        ["2026-11-23", "2026-11-24", "2026-11-25"]
    );
    assert_eq!(db.drop_expired_partitions().expect("again"), 0);
    // Rows still in the write buffer count as the newest.
    append_buffered(&db, "t", trades_batch(&[T0 + 6 * DAY], 5));
    assert_eq!(db.drop_expired_partitions().expect("buffered newest"), 2);
    assert_eq!(partition_names(&db, "t"), ["2026-11-25", "2026-11-27"]);
    drop(db);
    // The drops are commits in the WAL: recovery replays them.
    let db = open(dir.path());
    assert_eq!(partition_names(&db, "t"), ["2026-11-25", "2026-11-27"]);
    assert_eq!(column_i64(&db, "t", "seq"), vec![4, 5]);
    assert_eq!(db.snapshot().table("t").expect("t").meta().ttl, days(2));
    db.flush().expect("flush");
    db.close().expect("close");
    // And from the table files (`_meta` holds the TTL).
    let db = open(dir.path());
    assert_eq!(db.snapshot().table("t").expect("t").meta().ttl, days(2));
    set_ttl(&db, "t", None).expect("no ttl");
    append(&db, "t", trades_batch(&[T0 + 30 * DAY], 6));
    assert_eq!(db.drop_expired_partitions().expect("ttl removed"), 0);
    assert_eq!(partition_names(&db, "t").len(), 3);
}

#[test]
fn the_wall_clock_caps_the_reference_so_a_future_row_drops_nothing_early() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    // Yesterday, and a row a hundred years ahead.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64;
    append(&db, "t", trades_batch(&[now - DAY, now + 36_500 * DAY], 0));
    set_ttl(&db, "t", days(3)).expect("ttl");
    assert_eq!(db.drop_expired_partitions().expect("drop"), 0);
    assert_eq!(partition_names(&db, "t").len(), 2);
}

#[test]
fn nothing_is_dropped_in_checkpoint_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    let ts: Vec<i64> = (0..4).map(|d| T0 + d * DAY).collect();
    append(&db, "t", trades_batch(&ts, 0));
    db.checkpoint_create().expect("checkpoint");
    set_ttl(&db, "t", days(1)).expect("ttl in checkpoint mode");
    assert_eq!(db.drop_expired_partitions().expect("held"), 0);
    assert_eq!(partition_names(&db, "t").len(), 4);
    db.checkpoint_release().expect("release");
    assert_eq!(db.drop_expired_partitions().expect("released"), 2);
    assert_eq!(partition_names(&db, "t"), ["2026-11-23", "2026-11-24"]);
}

#[test]
fn a_ttl_is_refused_where_partitions_cannot_hold_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, trades_def("t"));
    let mut flat = trades_def("flat");
    flat.partition_by = PartitionBy::None;
    create(&db, flat);
    let err = set_ttl(&db, "flat", days(1)).expect_err("unpartitioned");
    assert!(err.to_string().contains("PARTITION BY"), "{err}");
    let hours = |count| {
        Some(Ttl {
            count,
            unit: TtlUnit::Hour,
        })
    };
    let err = set_ttl(&db, "t", hours(36)).expect_err("36 hours by day");
    assert!(
        err.to_string()
            .contains("TTL 36 HOURS is not a whole number of the table's DAY partitions"),
        "{err}"
    );
    set_ttl(&db, "t", hours(48)).expect("48 hours is two days");
    let err = set_ttl(&db, "nope", days(1)).expect_err("no table");
    assert!(matches!(err, StorageError::TableNotFound(_)), "{err}");
}
