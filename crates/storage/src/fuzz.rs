//! Entry points for fuzzing the decoders of everything the storage engine reads
//! from disk: the cargo-fuzz targets in `fuzz/` and the mutation test in
//! `tests/storage/decoders.rs` call these with arbitrary bytes. Each decoder must
//! answer with a value or an error naming the file; a panic, a hang or an
//! allocation driven by a length field it has not checked is a bug.

use std::path::{Path, PathBuf};

use crate::checkpoint::Cut;
use crate::registry::Registry;
use crate::table::meta::TableMeta;
use crate::table::symbol::SymbolDict;
use crate::table::txn::TxnState;
use crate::wal::record::decode_ops;

/// A table's `_txn` file.
pub fn txn_file(data: &[u8]) -> bool {
    TxnState::decode(data, Path::new("_txn")).is_ok()
}

/// A table's `_meta` file.
pub fn meta_file(data: &[u8]) -> bool {
    TableMeta::decode(data, Path::new("_meta")).is_ok()
}

/// The `_tables` registry.
pub fn registry_file(data: &[u8]) -> bool {
    Registry::decode(data, Path::new("_tables")).is_ok()
}

/// A checkpoint's `.checkpoint/cut`.
pub fn checkpoint_cut(data: &[u8]) -> bool {
    Cut::decode(data, Path::new(".checkpoint/cut")).is_ok()
}

/// A WAL segment file: the records after its header (framing and checksums),
/// and the operations of each record that passes its checksum.
pub fn wal_segment(data: &[u8]) -> usize {
    let mut pos = crate::wal::SEGMENT_HEADER.min(data.len());
    let mut decoded = 0;
    while let Some((_, payload, next)) = crate::wal::read_record(data, pos) {
        decoded += usize::from(decode_ops(payload, Path::new("wal")).is_ok());
        pos = next;
    }
    decoded
}

/// One WAL record's payload (past the checksum, which random bytes rarely pass).
pub fn wal_ops(data: &[u8]) -> bool {
    decode_ops(data, Path::new("wal")).is_ok()
}

/// A symbol file, with the committed entry count taken from the first two bytes.
pub fn symbol_file(data: &[u8]) -> bool {
    let (count, body) = match data {
        [a, b, rest @ ..] => (u32::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    SymbolDict::parse(PathBuf::from("sym.sym"), body, count).is_ok()
}

/// A part's symbol index file (its first block starting at row 0).
pub fn symbol_index_file(data: &[u8]) -> bool {
    crate::table::symbol_index::parse(data, 0, Path::new("sym~1.2.k")).is_ok()
}
