//! TTL: housekeeping drops the partitions of a table with a TTL
//! (`TTL 7 DAYS`) once all of a partition's time range is older than the TTL
//! behind the table's reference time, as QuestDB does.
//!
//! The reference time is the table's newest row, capped by the wall clock: a
//! single row stamped far in the future must not empty the table. A partition
//! `[start, end)` goes when `end <= reference - TTL`. The drop is an ordinary
//! commit (a `DropPartitions` op in the WAL), so recovery, replicas of the
//! root and backups see it like an `ALTER TABLE ... DROP PARTITION`; it is
//! never made while a checkpoint holds the table files.

use std::sync::Arc;

use crate::db::{Inner, Transaction};
use crate::error::{Result, StorageError};
use crate::ops::{PartitionSelector, Request};
use crate::table::TableState;
use crate::types::Ttl;

impl Inner {
    /// Drops every partition past its table's TTL; returns how many went.
    /// `now_micros` is the wall clock (a parameter so tests can move it).
    pub(crate) fn drop_expired_partitions(self: &Arc<Self>, now_micros: i64) -> Result<usize> {
        let mut dropped = 0;
        let catalog = self.group.published();
        for table in catalog.tables.values() {
            if self.status.holds_table_files() {
                // Checkpoint mode: the copy's cut must keep what it had; the
                // next round after RELEASE drops.
                return Ok(dropped);
            }
            let Some((ttl, starts)) = expired_partitions(table, now_micros) else {
                continue;
            };
            let names: Vec<String> = starts
                .iter()
                .map(|&s| table.meta.partitioning().name(s))
                .collect();
            let mut tx = Transaction::new();
            tx.push(Request::DropPartitions {
                table: table.name.clone(),
                which: PartitionSelector::List(starts),
            });
            match self.start_commit(tx).and_then(|pending| pending.wait()) {
                Ok(_) => {
                    tracing::info!(
                        table = %table.name,
                        %ttl,
                        partitions = ?names,
                        "TTL: dropped partitions older than the table keeps"
                    );
                    dropped += names.len();
                }
                // Dropped, renamed or its partitions dropped meanwhile: the
                // next round looks again.
                Err(StorageError::TableNotFound(_) | StorageError::PartitionNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(dropped)
    }
}

/// `table`'s TTL and the starts of its partitions past it, if it has a TTL
/// and any.
fn expired_partitions(table: &TableState, now_micros: i64) -> Option<(Ttl, Vec<i64>)> {
    let ttl = table.meta.ttl?;
    let partitioning = table.meta.partitioning();
    let starts = table.partition_starts();
    let newest = starts
        .iter()
        .filter_map(|&s| table.partition_bounds(s).map(|(_, max)| max))
        .max()?;
    let newest_micros = newest.div_euclid(partitioning.per_micro);
    let cutoff = partitioning.from_micros(ttl.before(newest_micros.min(now_micros)));
    let expired: Vec<i64> = starts
        .into_iter()
        .filter(|&s| partitioning.end(s) <= cutoff)
        .collect();
    (!expired.is_empty()).then_some((ttl, expired))
}
