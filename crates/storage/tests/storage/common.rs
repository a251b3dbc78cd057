//! Helpers shared by the storage tests.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tidemark_storage::*;

pub(crate) const DAY: i64 = 86_400_000_000;
pub(crate) const HOUR: i64 = 3_600_000_000;
/// 2026-11-21T00:00:00Z in microseconds.
pub(crate) const T0: i64 = 1_795_219_200_000_000;

/// Housekeeping and the apply are driven by hand in these tests.
pub(crate) fn options() -> StorageOptions {
    StorageOptions {
        background_housekeeping: false,
        background_apply: false,
        ..Default::default()
    }
}

pub(crate) fn open(root: &Path) -> Database {
    Database::open(root, options()).expect("open")
}

pub(crate) fn trades_def(name: &str) -> TableDef {
    TableDef {
        name: name.into(),
        columns: vec![
            ColumnDef::new("ts", ColumnType::Timestamp),
            ColumnDef::new("sym", ColumnType::Symbol),
            ColumnDef::new("price", ColumnType::Double),
            ColumnDef::new("seq", ColumnType::BigInt),
        ],
        timestamp: Some("ts".into()),
        partition_by: PartitionBy::Day,
    }
}

/// `def` with its `sym` column indexed.
pub(crate) fn indexed(mut def: TableDef) -> TableDef {
    for c in &mut def.columns {
        c.indexed = c.name == "sym";
    }
    def
}

/// Asserts that every part's index of `column` finds exactly the rows of
/// each key that the stored keys hold, and each key's newest row.
pub(crate) fn assert_index_matches_keys(db: &Database, table: &str, column: &str) {
    let snap = db.snapshot();
    let t = snap.table(table).expect("table exists");
    for (part, info) in t.parts().iter().enumerate() {
        let index = t
            .symbol_index(part, column)
            .expect("index readable")
            .unwrap_or_else(|| panic!("part {} of {table} has a whole index", info.dir_name));
        let chunk = t.column_chunk(part, column).expect("keys");
        let mut keys: Vec<i32> = vec![-1; chunk.top];
        keys.extend(
            chunk
                .data
                .as_slice()
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        keys.truncate(chunk.rows);
        assert_eq!(keys.len(), chunk.rows);
        let mut distinct: Vec<i32> = keys.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let mut newest = std::collections::BTreeMap::new();
        index.newest_rows(0..chunk.rows, |k, r| {
            newest.entry(k).or_insert(r);
            true
        });
        for k in distinct {
            let rows: Vec<usize> = (index.top() as usize..keys.len())
                .filter(|&r| keys[r] == k)
                .collect();
            assert_eq!(
                index.rows_with(&[k], 0..chunk.rows),
                rows,
                "key {k} in part {}",
                info.dir_name
            );
            assert_eq!(newest.get(&k).copied(), rows.last().copied(), "newest {k}");
        }
    }
}

pub(crate) fn create(db: &Database, def: TableDef) {
    db.commit(Transaction::new().with(Request::CreateTable {
        def,
        if_not_exists: false,
    }))
    .expect("create");
}

pub(crate) fn trades_batch(ts: &[i64], seq0: i64) -> Batch {
    let syms: Vec<String> = (0..ts.len())
        .map(|i| format!("S{}", (seq0 + i as i64) % 7))
        .collect();
    Batch::new()
        .with("ts", Column::timestamps(ts.to_vec()))
        .with("sym", Column::symbols(&syms))
        .with(
            "price",
            Column::doubles(
                (0..ts.len())
                    .map(|i| (seq0 + i as i64) as f64 * 0.5)
                    .collect(),
            ),
        )
        .with(
            "seq",
            Column::bigints((0..ts.len() as i64).map(|i| seq0 + i).collect()),
        )
}

/// Commits rows and moves them to the column files at once (the tests of the
/// file layout see each commit's effect on the files).
pub(crate) fn append(db: &Database, table: &str, batch: Batch) -> CommitReceipt {
    let r = append_buffered(db, table, batch);
    db.apply_buffer().expect("apply");
    r
}

/// Commits rows, which stay in the write buffer until an apply.
pub(crate) fn append_buffered(db: &Database, table: &str, batch: Batch) -> CommitReceipt {
    db.commit(Transaction::new().with(Request::Append {
        table: table.into(),
        batch,
    }))
    .expect("append")
}

/// A column's values as display strings (NULL as "NULL"), for comparisons.
pub(crate) fn strings(c: &Column) -> Vec<String> {
    (0..c.len())
        .map(|i| {
            if c.is_null(i) {
                return "NULL".to_string();
            }
            match &c.values {
                Values::Boolean(v) => v[i].to_string(),
                Values::SmallInt(v) => v[i].to_string(),
                Values::Int(v) | Values::Date(v) => v[i].to_string(),
                Values::BigInt(v) | Values::Timestamp(v) => v[i].to_string(),
                Values::Real(v) => format!("{:?}", v[i]),
                Values::Double(v) => format!("{:?}", v[i]),
                Values::Uuid(v) => format!("{:032x}", v[i]),
                Values::Decimal(v) => v[i].to_string(),
                Values::Varchar(v) | Values::Symbol(v) => {
                    String::from_utf8_lossy(v.get(i)).into_owned()
                }
                Values::Binary(v) => format!("{:?}", v.get(i)),
            }
        })
        .collect()
}

/// All rows of `table` as strings, one Vec per column, from a fresh snapshot.
pub(crate) fn read_table(db: &Database, table: &str) -> Vec<Vec<String>> {
    let snap = db.snapshot();
    let t = snap.table(table).expect("table exists");
    t.read_all().expect("read").iter().map(strings).collect()
}

pub(crate) fn column_i64(db: &Database, table: &str, column: &str) -> Vec<i64> {
    let snap = db.snapshot();
    let t = snap.table(table).expect("table exists");
    let i = t.meta().column_index(column).expect("column");
    match &t.read_all().expect("read")[i].values {
        Values::BigInt(v) | Values::Timestamp(v) => v.clone(),
        other => panic!("not an i64 column: {other:?}"),
    }
}

/// `cp -a` of a root (the copy an operator takes in checkpoint mode).
pub(crate) fn copy_root(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

/// The operator's `touch <root>/_restore`.
pub(crate) fn touch_restore(root: &Path) {
    std::fs::write(root.join(RESTORE_TRIGGER), b"").expect("touch _restore");
}

pub(crate) fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting until {what}");
}
