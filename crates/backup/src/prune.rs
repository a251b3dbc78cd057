//! Retention: `tidemark backup prune --before <time>` and `[backup]
//! retention_days` remove what no restore to a time at or after the limit
//! needs.
//!
//! What stays: every backup whose cut is at or after the limit, and the newest
//! one before it (a restore to the limit itself starts there); every object a
//! kept manifest names, wherever it lies (an incremental backup refers to its
//! bases' objects); the log runs after the oldest kept cut. A removed backup's
//! manifest goes first, so a prune that stops half-way leaves no backup that
//! looks complete but is not; running it again finishes it.

use std::collections::HashSet;

use object_store::ObjectStoreExt;

use crate::destination::Destination;
use crate::error::{BackupError, Result};
use crate::log::list_runs;
use crate::manifest::{manifest_key, remove_backup_objects};
use crate::restore::list;

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneSummary {
    pub backups_removed: Vec<String>,
    /// Backup objects removed (manifests included) and their bytes.
    pub objects_removed: usize,
    pub bytes_removed: u64,
    pub log_runs_removed: usize,
    /// The oldest backup kept (None: there is no backup).
    pub oldest_kept: Option<String>,
}

/// Removes the backups and log runs that only restores to times before
/// `before` need.
pub async fn prune(
    dest: &Destination,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<PruneSummary> {
    let (manifests, _) = list(dest).await?;
    let mut summary = PruneSummary::default();
    // The newest backup at or before the limit, or the oldest after it.
    let keep_from = manifests
        .iter()
        .rposition(|m| m.cut_time().is_some_and(|t| t <= before))
        .unwrap_or(0);
    let (old, kept) = manifests.split_at(keep_from);
    let Some(oldest_kept) = kept.first() else {
        return Ok(summary);
    };
    summary.oldest_kept = Some(oldest_kept.id.clone());
    let mut needed = HashSet::new();
    for p in kept
        .iter()
        .flat_map(|m| m.files.iter())
        .flat_map(|f| &f.parts)
    {
        needed.insert(dest.object(&p.object)?.to_string());
    }
    for m in old {
        if let Some(size) = delete(dest, &manifest_key(&m.id)).await? {
            summary.objects_removed += 1;
            summary.bytes_removed += size;
        }
        let (removed, bytes) = remove_backup_objects(dest, &m.id, &needed).await?;
        summary.objects_removed += removed;
        summary.bytes_removed += bytes;
        tracing::info!(backup = %m.id, "prune: backup removed");
        summary.backups_removed.push(m.id.clone());
    }
    for (_, last, key) in list_runs(dest).await? {
        if last <= oldest_kept.cut_seq && delete(dest, &key).await?.is_some() {
            summary.log_runs_removed += 1;
        }
    }
    Ok(summary)
}

/// Deletes the object at `key`; its size, or None when it was not there.
async fn delete(dest: &Destination, key: &str) -> Result<Option<u64>> {
    let object = dest.object(key)?;
    let size = match dest.store().head(&object).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(BackupError::store(dest.describe(key), e)),
    };
    match dest.store().delete(&object).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(Some(size)),
        Err(e) => Err(BackupError::store(dest.describe(key), e)),
    }
}
