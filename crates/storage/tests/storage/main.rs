//! End-to-end tests of the storage engine: one test binary, one module per area.

mod apply_faults;
mod checkpoint;
mod common;
mod corruption;
mod crash;
mod decoders;
mod engine;
mod format_doc;
mod log_backup;
mod model;
mod symbol_index;
mod ttl;
mod views;
