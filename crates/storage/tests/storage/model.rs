//! Model-based property test: random sequences of appends (in order and out of
//! order), DDL, housekeeping and reopens, checked after every step against a
//! plain in-memory model of what the tables must contain. The second table has
//! upsert keys (ts, sym): a row replaces the stored row of equal keys.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tidemark_storage::*;

use crate::common::*;

const TABLES: [&str; 2] = ["alpha", "beta"];

#[derive(Debug, Clone)]
enum Step {
    /// Rows: (hours after T0 - 2 days, symbol index or NULL, value).
    Append {
        table: usize,
        rows: Vec<(i64, Option<u8>, i64)>,
    },
    /// One transaction appending to both tables.
    AppendBoth {
        rows: Vec<(i64, Option<u8>, i64)>,
    },
    AddColumn {
        table: usize,
        varchar: bool,
    },
    /// Rows and then a new column, in one transaction.
    AppendThenAddColumn {
        table: usize,
        rows: Vec<(i64, Option<u8>, i64)>,
    },
    DropColumn {
        table: usize,
        pick: usize,
    },
    RenameColumn {
        table: usize,
        pick: usize,
    },
    Truncate {
        table: usize,
    },
    DropPartition {
        table: usize,
        day: i64,
    },
    RenameTableAndBack {
        table: usize,
    },
    DropAndRecreate {
        table: usize,
    },
    Housekeeping,
    /// Move the write buffer into the column files.
    Apply,
    /// An open transaction appends rows and reads its own view, then commits or rolls back.
    Transaction {
        table: usize,
        rows: Vec<(i64, Option<u8>, i64)>,
        commit: bool,
    },
    /// CHECKPOINT CREATE, more rows and an apply during the mode, a copy of the
    /// root, RELEASE; the copy restored must hold exactly the rows at the cut.
    CheckpointCopy {
        rows: Vec<(i64, Option<u8>, i64)>,
    },
    Reopen,
    /// Drop without the final flush, as SIGKILL would: reopening must replay the WAL.
    Crash,
}

fn rows() -> impl Strategy<Value = Vec<(i64, Option<u8>, i64)>> {
    prop::collection::vec((0i64..120, prop::option::of(0u8..5), -1000i64..1000), 1..12)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0usize..2, rows()).prop_map(|(table, rows)| Step::Append { table, rows }),
        2 => rows().prop_map(|rows| Step::AppendBoth { rows }),
        1 => (0usize..2, any::<bool>()).prop_map(|(table, varchar)| Step::AddColumn { table, varchar }),
        1 => (0usize..2, rows()).prop_map(|(table, rows)| Step::AppendThenAddColumn { table, rows }),
        1 => (0usize..2, 0usize..4).prop_map(|(table, pick)| Step::DropColumn { table, pick }),
        1 => (0usize..2, 0usize..4).prop_map(|(table, pick)| Step::RenameColumn { table, pick }),
        1 => (0usize..2).prop_map(|table| Step::Truncate { table }),
        1 => (0usize..2, 0i64..5).prop_map(|(table, day)| Step::DropPartition { table, day }),
        1 => (0usize..2).prop_map(|table| Step::RenameTableAndBack { table }),
        1 => (0usize..2).prop_map(|table| Step::DropAndRecreate { table }),
        1 => Just(Step::Housekeeping),
        2 => Just(Step::Apply),
        1 => (0usize..2, rows(), any::<bool>()).prop_map(|(table, rows, commit)| Step::Transaction { table, rows, commit }),
        1 => rows().prop_map(|rows| Step::CheckpointCopy { rows }),
        2 => Just(Step::Reopen),
        2 => Just(Step::Crash),
    ]
}

/// A model column: name, whether it is VARCHAR (else DOUBLE) for added columns.
#[derive(Debug, Clone)]
struct ModelTable {
    /// Extra columns after ts, sym, v: (name, is_varchar).
    extra: Vec<(String, bool)>,
    /// Rows: ts, sym, v, extras (as display strings, "NULL" for NULL).
    rows: Vec<Vec<String>>,
    next_col: usize,
    /// DEDUP UPSERT KEYS (ts, sym).
    dedup: bool,
}

impl ModelTable {
    fn new(table: usize) -> Self {
        ModelTable {
            extra: Vec::new(),
            rows: Vec::new(),
            next_col: 0,
            dedup: table == 1,
        }
    }
    fn column_names(&self) -> Vec<String> {
        let mut v = vec!["ts".to_string(), "sym".into(), "v".into()];
        v.extend(self.extra.iter().map(|(n, _)| n.clone()));
        v
    }
}

fn base_ts(h: i64) -> i64 {
    T0 - 2 * DAY + h * HOUR / 2
}

fn def(name: &str) -> TableDef {
    TableDef {
        name: name.into(),
        columns: vec![
            ColumnDef::new("ts", ColumnType::Timestamp),
            ColumnDef::new("sym", ColumnType::Symbol),
            ColumnDef::new("v", ColumnType::BigInt),
        ],
        timestamp: Some("ts".into()),
        partition_by: PartitionBy::Day,
    }
}

/// The requests creating table `table` as the model has it.
fn create_requests(table: usize) -> Vec<Request> {
    let name = TABLES[table];
    let mut requests = vec![Request::CreateTable {
        def: def(name),
        if_not_exists: false,
    }];
    if table == 1 {
        requests.push(Request::SetDedup {
            table: name.into(),
            keys: vec!["ts".into(), "sym".into()],
        });
    }
    requests
}

fn batch(rows: &[(i64, Option<u8>, i64)]) -> Batch {
    let syms: Vec<String> = rows
        .iter()
        .map(|r| r.1.map(|s| format!("s{s}")).unwrap_or_default())
        .collect();
    let nulls: Vec<bool> = rows.iter().map(|r| r.1.is_none()).collect();
    let mut sym = Column::symbols(&syms);
    sym = Column::with_nulls(sym.values, nulls);
    Batch::new()
        .with(
            "ts",
            Column::timestamps(rows.iter().map(|r| base_ts(r.0)).collect()),
        )
        .with("sym", sym)
        .with("v", Column::bigints(rows.iter().map(|r| r.2).collect()))
}

fn model_append(m: &mut ModelTable, rows: &[(i64, Option<u8>, i64)]) {
    for r in rows {
        let mut row = vec![
            base_ts(r.0).to_string(),
            r.1.map(|s| format!("s{s}"))
                .unwrap_or_else(|| "NULL".into()),
            r.2.to_string(),
        ];
        row.extend(m.extra.iter().map(|_| "NULL".to_string()));
        if m.dedup {
            m.rows.retain(|r| r[..2] != row[..2]);
        }
        m.rows.push(row);
    }
    // Stable: equal timestamps keep commit order, then batch order.
    m.rows
        .sort_by_key(|r| r[0].parse::<i64>().unwrap_or_default());
}

fn check(db: &Database, model: &BTreeMap<usize, ModelTable>) -> Result<(), TestCaseError> {
    check_snapshot(&db.snapshot(), model)
}

fn check_snapshot(
    snap: &Snapshot,
    model: &BTreeMap<usize, ModelTable>,
) -> Result<(), TestCaseError> {
    for (i, name) in TABLES.iter().enumerate() {
        let Some(m) = model.get(&i) else {
            prop_assert!(snap.table(name).is_none(), "{name} should not exist");
            continue;
        };
        let t = snap
            .table(name)
            .ok_or_else(|| TestCaseError::fail(format!("{name} missing")))?;
        let names: Vec<String> = t.meta().columns.iter().map(|c| c.name.clone()).collect();
        prop_assert_eq!(&names, &m.column_names());
        let cols = t
            .read_all()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: Vec<Vec<String>> = (0..t.row_count() as usize)
            .map(|r| cols.iter().map(|c| strings(c)[r].clone()).collect())
            .collect();
        prop_assert_eq!(&got, &m.rows, "table {}", name);
    }
    Ok(())
}

fn run(steps: Vec<Step>, split_min_rows: u64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    // Small thresholds: 2 makes nearly every out-of-order merge split its head;
    // larger ones make merges rewrite small heads and take small neighbours along.
    let opts = StorageOptions {
        split_min_rows,
        ..options()
    };
    let open = |p: &std::path::Path| Database::open(p, opts.clone()).expect("open");
    let mut db = Some(open(dir.path()));
    let mut model: BTreeMap<usize, ModelTable> = BTreeMap::new();
    for i in 0..TABLES.len() {
        let mut tx = Transaction::new();
        for r in create_requests(i) {
            tx.push(r);
        }
        db.as_ref()
            .expect("db")
            .commit(tx)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        model.insert(i, ModelTable::new(i));
    }
    for step in steps {
        let d = db.as_ref().expect("db");
        match &step {
            Step::Append { table, rows } => {
                d.commit(Transaction::new().with(Request::Append {
                    table: TABLES[*table].into(),
                    batch: batch(rows),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                model_append(model.get_mut(table).expect("model"), rows);
            }
            Step::AppendBoth { rows } => {
                let mut tx = Transaction::new();
                for t in TABLES {
                    tx.push(Request::Append {
                        table: t.into(),
                        batch: batch(rows),
                    });
                }
                d.commit(tx)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                for m in model.values_mut() {
                    model_append(m, rows);
                }
            }
            Step::AddColumn { table, varchar } => {
                let m = model.get_mut(table).expect("model");
                let name = format!("c{}", m.next_col);
                m.next_col += 1;
                let t = if *varchar {
                    ColumnType::Varchar
                } else {
                    ColumnType::Double
                };
                d.commit(Transaction::new().with(Request::AddColumn {
                    table: TABLES[*table].into(),
                    column: ColumnDef::new(name.clone(), t),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.extra.push((name, *varchar));
                for r in &mut m.rows {
                    r.push("NULL".into());
                }
            }
            Step::AppendThenAddColumn { table, rows } => {
                let m = model.get_mut(table).expect("model");
                let name = format!("c{}", m.next_col);
                m.next_col += 1;
                d.commit(
                    Transaction::new()
                        .with(Request::Append {
                            table: TABLES[*table].into(),
                            batch: batch(rows),
                        })
                        .with(Request::AddColumn {
                            table: TABLES[*table].into(),
                            column: ColumnDef::new(name.clone(), ColumnType::Int),
                        }),
                )
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                model_append(m, rows);
                m.extra.push((name, false));
                for r in &mut m.rows {
                    r.push("NULL".into());
                }
            }
            Step::DropColumn { table, pick } => {
                let m = model.get_mut(table).expect("model");
                if m.extra.is_empty() {
                    continue;
                }
                let k = pick % m.extra.len();
                d.commit(Transaction::new().with(Request::DropColumn {
                    table: TABLES[*table].into(),
                    column: m.extra[k].0.clone(),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.extra.remove(k);
                for r in &mut m.rows {
                    r.remove(3 + k);
                }
            }
            Step::RenameColumn { table, pick } => {
                let m = model.get_mut(table).expect("model");
                if m.extra.is_empty() {
                    continue;
                }
                let k = pick % m.extra.len();
                let to = format!("r{}", m.next_col);
                m.next_col += 1;
                d.commit(Transaction::new().with(Request::RenameColumn {
                    table: TABLES[*table].into(),
                    from: m.extra[k].0.clone(),
                    to: to.clone(),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.extra[k].0 = to;
            }
            Step::Truncate { table } => {
                d.commit(Transaction::new().with(Request::Truncate {
                    table: TABLES[*table].into(),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.get_mut(table).expect("model").rows.clear();
            }
            Step::DropPartition { table, day } => {
                let at = T0 - 2 * DAY + day * DAY;
                let m = model.get_mut(table).expect("model");
                let in_day = |r: &Vec<String>| {
                    let ts = r[0].parse::<i64>().unwrap_or_default();
                    ts >= at && ts < at + DAY
                };
                let exists = m.rows.iter().any(in_day);
                let r = d.commit(Transaction::new().with(Request::DropPartitions {
                    table: TABLES[*table].into(),
                    which: PartitionSelector::List(vec![at]),
                }));
                prop_assert_eq!(
                    r.is_ok(),
                    exists,
                    "drop partition {} of {}: {:?}",
                    day,
                    TABLES[*table],
                    r
                );
                m.rows.retain(|r| !in_day(r));
            }
            Step::RenameTableAndBack { table } => {
                let name = TABLES[*table];
                let tmp = format!("{name}_tmp");
                d.commit(Transaction::new().with(Request::RenameTable {
                    from: name.into(),
                    to: tmp.clone(),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(d.snapshot().table(name).is_none());
                d.commit(Transaction::new().with(Request::RenameTable {
                    from: tmp,
                    to: name.into(),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Step::DropAndRecreate { table } => {
                let name = TABLES[*table];
                let mut tx = Transaction::new().with(Request::DropTable {
                    name: name.into(),
                    if_exists: false,
                });
                for r in create_requests(*table) {
                    tx.push(r);
                }
                d.commit(tx)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.insert(*table, ModelTable::new(*table));
            }
            Step::Housekeeping => {
                d.run_housekeeping()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Step::Apply => {
                d.apply_buffer()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Step::Transaction {
                table,
                rows,
                commit,
            } => {
                let mut tx = Transaction::new();
                d.stage(
                    &mut tx,
                    vec![Request::Append {
                        table: TABLES[*table].into(),
                        batch: batch(rows),
                    }],
                )
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut seen = model.clone();
                model_append(seen.get_mut(table).expect("model"), rows);
                let view = d
                    .transaction_snapshot(&tx, true)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_snapshot(&view, &seen)
                    .map_err(|e| TestCaseError::fail(format!("transaction view: {e}")))?;
                check(d, &model).map_err(|e| TestCaseError::fail(format!("others: {e}")))?;
                if *commit {
                    d.commit(tx)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    model = seen;
                }
            }
            Step::CheckpointCopy { rows } => {
                d.checkpoint_create()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let at_cut = model.clone();
                d.commit(Transaction::new().with(Request::Append {
                    table: TABLES[0].into(),
                    batch: batch(rows),
                }))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                model_append(model.get_mut(&0).expect("model"), rows);
                d.apply_buffer()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let copy = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
                copy_dir(dir.path(), copy.path());
                d.checkpoint_release()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                std::fs::write(copy.path().join(RESTORE_TRIGGER), b"")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let restored = open(copy.path());
                check(&restored, &at_cut)
                    .map_err(|e| TestCaseError::fail(format!("restored copy: {e}")))?;
                restored.simulate_crash();
                let again = open(copy.path());
                check(&again, &at_cut)
                    .map_err(|e| TestCaseError::fail(format!("restored copy, reopened: {e}")))?;
            }
            Step::Crash => {
                db.take().expect("db").simulate_crash();
                db = Some(open(dir.path()));
            }
            Step::Reopen => {
                db.take()
                    .expect("db")
                    .close()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                db = Some(open(dir.path()));
            }
        }
        check(db.as_ref().expect("db"), &model)
            .map_err(|e| TestCaseError::fail(format!("after {step:?}: {e}")))?;
    }
    Ok(())
}

/// `cp -a` of a root (the lock file included, as a copy tool would).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("TIDEMARK_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn storage_matches_the_model(
        steps in prop::collection::vec(step(), 1..30),
        split_min_rows in prop_oneof![Just(2u64), Just(5), Just(40)],
    ) {
        run(steps, split_min_rows)?;
    }
}
