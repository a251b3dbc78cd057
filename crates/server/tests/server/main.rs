//! End-to-end tests: the real `tidemark` binary on a temp root, real clients.

mod backup;
mod backup_guide;
mod checkpoint;
mod checkpoint_churn;
mod checkpoint_loop;
mod compose;
mod container;
mod crash_loop;
mod dedup;
mod disk_full;
mod drivers;
mod harness;
mod hostile;
mod hostile_values;
mod ilp;
mod load;
mod protocol;
mod rest;
mod slt;
mod streaming;
mod temporal_join;
mod ttl;
mod wire;
