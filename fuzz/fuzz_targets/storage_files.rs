//! Every decoder of what the storage engine reads from disk; the first byte picks
//! the decoder, the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark_storage::fuzz;

fuzz_target!(|data: &[u8]| {
    let Some((which, file)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => drop(fuzz::txn_file(file)),
        1 => drop(fuzz::meta_file(file)),
        2 => drop(fuzz::registry_file(file)),
        3 => drop(fuzz::checkpoint_cut(file)),
        4 => drop(fuzz::wal_segment(file)),
        5 => drop(fuzz::wal_ops(file)),
        6 => drop(fuzz::symbol_file(file)),
        _ => drop(fuzz::symbol_index_file(file)),
    }
});
