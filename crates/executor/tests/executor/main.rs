//! End-to-end tests of the executor over real storage (one test binary).

mod scan;
mod slt;
