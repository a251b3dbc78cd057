//! End-to-end tests of the executor over real storage (one test binary).

mod prepared;
mod scan;
mod settings;
mod slt;
