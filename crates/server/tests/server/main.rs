//! End-to-end tests: the real `tidemark` binary on a temp root, real clients.

mod harness;
mod protocol;
mod wire;
