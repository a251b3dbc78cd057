//! Every decoder of what the engine reads from disk (`_txn`, `_meta`, `_tables`,
//! the checkpoint cut, WAL segments and records, symbol files and indexes) fed real files
//! with random damage — flipped bytes, cuts, inserted bytes — and plain random
//! bytes: each must answer with a value or an error, never panic. This is the
//! short run of the fuzz targets in `fuzz/` (same entry points,
//! `tidemark_storage::fuzz`), small enough for every `cargo test`.
//! `TIDEMARK_DECODER_CASES` sets the cases per decoder (default 300).

use std::path::Path;

use proptest::prelude::*;
use tidemark_storage::fuzz;

use crate::common::*;

type Sample = (&'static str, Vec<u8>, fn(&[u8]) -> bool);

/// Real files (made once) from a root with SYMBOL columns, late rows and a
/// checkpoint: (name, bytes, decoder).
fn samples() -> &'static [Sample] {
    static SAMPLES: std::sync::OnceLock<Vec<Sample>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(make_samples)
}

fn make_samples() -> Vec<Sample> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    create(&db, indexed(trades_def("t")));
    let ts: Vec<i64> = (0..50).map(|i| T0 + i * 1000).collect();
    append(&db, "t", trades_batch(&ts, 0));
    append(&db, "t", trades_batch(&[T0 + 500, T0 - DAY], 50));
    db.checkpoint_create().expect("checkpoint");
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let table = dir.path().join("db/t~1");
    let wal = std::fs::read_dir(dir.path().join("wal"))
        .expect("wal dir")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("a WAL segment");
    let sym = std::fs::read_dir(&table)
        .expect("table dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sym"))
        .expect("a symbol file");
    let index = std::fs::read_dir(table.join("2026-11-21"))
        .expect("partition dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "k"))
        .expect("a symbol index file");
    let mut symbols = 3u16.to_le_bytes().to_vec();
    symbols.extend(read(&sym));
    let samples: Vec<Sample> = vec![
        ("_txn", read(&table.join("_txn")), fuzz::txn_file),
        ("_meta", read(&table.join("_meta")), fuzz::meta_file),
        (
            "_tables",
            read(&dir.path().join("db/_tables")),
            fuzz::registry_file,
        ),
        (
            "cut",
            read(&dir.path().join(".checkpoint/cut")),
            fuzz::checkpoint_cut,
        ),
        ("symbols", symbols, fuzz::symbol_file),
        ("symbol index", read(&index), fuzz::symbol_index_file),
        ("wal", read(&wal), |d| fuzz::wal_segment(d) > 0),
    ];
    db.close().expect("close");
    samples
}

#[test]
fn the_fuzz_entry_points_accept_real_files() {
    for (name, bytes, decode) in samples() {
        assert!(decode(bytes), "{name}: a real file decodes");
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, xor: u8 },
    Cut { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Damage::Flip { at, xor }),
            any::<usize>().prop_map(|at| Damage::Cut { at }),
            (any::<usize>(), prop::collection::vec(any::<u8>(), 1..9))
                .prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
        ],
        1..6,
    )
}

fn apply(mut data: Vec<u8>, damage: &[Damage]) -> Vec<u8> {
    for d in damage {
        let n = data.len().max(1);
        match d {
            Damage::Flip { at, xor } => {
                if let Some(b) = data.get_mut(at % n) {
                    *b ^= xor;
                }
            }
            Damage::Cut { at } => data.truncate(at % n),
            Damage::Insert { at, bytes } => {
                let at = at % n;
                let at = at.min(data.len());
                data.splice(at..at, bytes.iter().copied());
            }
        }
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("TIDEMARK_DECODER_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_files_are_errors_not_panics(which in 0usize..6, damage in damage()) {
        let (_, bytes, decode) = &samples()[which];
        decode(&apply(bytes.clone(), &damage));
    }

    #[test]
    fn random_bytes_are_errors_not_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz::txn_file(&bytes);
        fuzz::meta_file(&bytes);
        fuzz::registry_file(&bytes);
        fuzz::checkpoint_cut(&bytes);
        fuzz::wal_segment(&bytes);
        fuzz::wal_ops(&bytes);
        fuzz::symbol_file(&bytes);
    }
}
