//! `docs/storage-format.md` is complete enough to write a reader: an independent
//! reader written from it alone (`tools/read_root.py`) reads a root this engine
//! wrote — every type, NULLs, added and dropped columns, split parts, symbols
//! and symbol indexes —
//! and finds exactly what the engine's own reader returns.

use std::path::Path;
use std::process::Command;

use tidemark_storage::*;

use crate::common::*;

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// One cell rendered the way the Python reader renders it.
fn cell(c: &Column, t: ColumnType, i: usize) -> String {
    if c.is_null(i) {
        return "null".into();
    }
    match &c.values {
        Values::Boolean(v) => v[i].to_string(),
        Values::SmallInt(v) => v[i].to_string(),
        Values::Int(v) | Values::Date(v) => v[i].to_string(),
        Values::BigInt(v) | Values::Timestamp(v) => v[i].to_string(),
        Values::Real(v) => json_str(&format!("{:08x}", v[i].to_bits())),
        Values::Double(v) => json_str(&format!("{:016x}", v[i].to_bits())),
        Values::Uuid(v) => json_str(&format!("{:032x}", v[i])),
        Values::Decimal(v) => {
            let ColumnType::Decimal { scale, .. } = t else {
                panic!("decimal values in a {t} column")
            };
            json_str(&decimal_text(v[i], scale as u32))
        }
        Values::Varchar(v) | Values::Symbol(v) => json_str(&String::from_utf8_lossy(v.get(i))),
        Values::Binary(v) => json_str(
            &v.get(i)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ),
    }
}

/// An unscaled decimal as text with `scale` fractional digits (`-1.2300`).
fn decimal_text(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

fn engine_view(db: &Database) -> Vec<String> {
    let snap = db.snapshot();
    snap.tables()
        .iter()
        .map(|t| {
            let cols = t.read_all().expect("read");
            let names: Vec<String> = t
                .meta()
                .columns
                .iter()
                .map(|c| {
                    format!(
                        "[{},{}]",
                        json_str(&c.name),
                        json_str(&c.column_type.to_string())
                    )
                })
                .collect();
            let rows: Vec<String> = (0..t.row_count() as usize)
                .map(|r| {
                    format!(
                        "[{}]",
                        cols.iter()
                            .zip(&t.meta().columns)
                            .map(|(c, m)| cell(c, m.column_type, r))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                })
                .collect();
            format!(
                "{{\"table\":{},\"columns\":[{}],\"rows\":[{}]}}",
                json_str(t.name()),
                names.join(","),
                rows.join(",")
            )
        })
        .chain(snap.views().into_iter().map(|v| {
            format!(
                "{{\"view\":{},\"definition\":{}}}",
                json_str(&v.name),
                json_str(&v.definition)
            )
        }))
        .collect()
}

#[test]
fn an_independent_reader_written_from_the_docs_reads_what_the_engine_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        dir.path(),
        StorageOptions {
            split_min_rows: 4,
            ..options()
        },
    )
    .expect("open");
    let mut columns: Vec<ColumnDef> = ColumnType::ALL
        .iter()
        .map(|t| ColumnDef {
            // The SYMBOL column's index is checked by the reader too.
            indexed: *t == ColumnType::Symbol,
            ..ColumnDef::new(format!("c {}", t.name().to_lowercase()), *t)
        })
        .collect();
    columns.push(ColumnDef::new("ts", ColumnType::Timestamp));
    create(
        &db,
        TableDef {
            name: "Every Type ✓".into(),
            columns,
            timestamp: Some("ts".into()),
            partition_by: PartitionBy::Day,
        },
    );
    let batch = |ts: Vec<i64>, k: i64| {
        let n = ts.len();
        let nulls: Vec<bool> = (0..n).map(|i| (i as i64 + k) % 3 == 0).collect();
        let strs: Vec<String> = (0..n).map(|i| format!("v{}\"ü", i as i64 + k)).collect();
        let mut b = Batch::new().with("ts", Column::timestamps(ts));
        for t in ColumnType::ALL {
            let i = |f: &dyn Fn(usize) -> i64| (0..n).map(f).collect::<Vec<i64>>();
            let values = match t {
                ColumnType::Boolean => Values::Boolean((0..n).map(|i| i % 2 == 0).collect()),
                ColumnType::SmallInt => {
                    Values::SmallInt(i(&|x| x as i64 - 3).iter().map(|&x| x as i16).collect())
                }
                ColumnType::Int => Values::Int(
                    i(&|x| x as i64 * 1000 + k)
                        .iter()
                        .map(|&x| x as i32)
                        .collect(),
                ),
                ColumnType::BigInt => Values::BigInt(i(&|x| i64::MIN + x as i64)),
                ColumnType::Real => Values::Real((0..n).map(|x| x as f32 / 3.0).collect()),
                ColumnType::Double => Values::Double(
                    (0..n)
                        .map(|x| if x == 1 { f64::NAN } else { x as f64 * 1e-7 })
                        .collect(),
                ),
                ColumnType::Timestamp => Values::Timestamp(i(&|x| x as i64 - 5)),
                ColumnType::TimestampTz => Values::Timestamp(i(&|x| x as i64 * 1_000_000 + k)),
                ColumnType::TimestampNs => Values::BigInt(i(&|x| x as i64 * 1_000_000_007 + k)),
                ColumnType::Date => {
                    Values::Date(i(&|x| x as i64 * 400).iter().map(|&x| x as i32).collect())
                }
                ColumnType::Varchar | ColumnType::Json | ColumnType::Jsonb => {
                    Values::Varchar(VarData::from_slices(strs.iter().map(|s| s.as_bytes())))
                }
                ColumnType::Symbol => Values::Symbol(VarData::from_slices(
                    strs.iter().map(|s| &s.as_bytes()[..2]),
                )),
                ColumnType::Uuid => Values::Uuid((0..n).map(|x| (x as u128) << 100 | 7).collect()),
                ColumnType::Decimal { .. } => Values::Decimal(
                    (0..n)
                        .map(|x| (x as i128 - 2) * 98_765_432_109_876_543_210 + k as i128)
                        .collect(),
                ),
                ColumnType::Binary | ColumnType::DoubleArray { .. } => {
                    Values::Binary(VarData::from_slices(strs.iter().map(|s| s.as_bytes())))
                }
            };
            b = b.with(
                format!("c {}", t.name().to_lowercase()),
                Column::with_nulls(values, nulls.clone()),
            );
        }
        b
    };
    let table = "Every Type ✓";
    let commit = |r: Request| {
        db.commit(Transaction::new().with(r)).expect("commit");
    };
    commit(Request::Append {
        table: table.into(),
        batch: batch((0..12).map(|i| T0 + i * 1000).collect(), 0),
    });
    commit(Request::AddColumn {
        table: table.into(),
        column: ColumnDef::new("late", ColumnType::Double),
    });
    // Late rows: split the part (head kept read-only), plus a second day.
    commit(Request::Append {
        table: table.into(),
        batch: batch(vec![T0 + 9500, T0 + 6500, T0 + DAY], 1),
    });
    commit(Request::DropColumn {
        table: table.into(),
        column: "c int".into(),
    });
    commit(Request::RenameColumn {
        table: table.into(),
        from: "c varchar".into(),
        to: "renamed".into(),
    });
    create(&db, indexed(trades_def("trades")));
    append(&db, "trades", trades_batch(&[T0, T0 + 1], 0));
    commit(Request::CreateView {
        name: "Hourly ✓".into(),
        definition: "SELECT ts, avg(price) AS \"средняя\" FROM trades SAMPLE BY 1h".into(),
        mode: ViewMode::Create,
    });
    let parts = db.snapshot().table(table).expect("t").parts();
    assert!(parts.len() >= 3, "the root has split parts: {parts:?}");
    let expected = engine_view(&db);
    db.close().expect("close");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/read_root.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
}
