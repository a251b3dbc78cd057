//! The SQL parser with Tidemark's extensions (SAMPLE BY, LATEST ON, interval
//! literals, CHECKPOINT, CREATE TABLE ... TIMESTAMP/PARTITION BY) on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let _ = tidemark_parser::parse(sql);
    }
});
