//! A backup's manifest and the layout of a destination.
//!
//! ```text
//! <destination>/backups/<id>/manifest      written last: the backup is complete once it exists
//! <destination>/backups/<id>/data/<path>   files uploaded by this backup (<path> relative to the root)
//! ```
//!
//! The manifest lists every file of the backup's checkpoint cut with its size
//! and CRC-32C and the object that holds it: one of its own `data/` objects, or
//! an earlier backup's object when the file had not changed (an incremental
//! backup uploads only new and grown files). It is JSON followed by a line
//! `crc32c <hex>` over the JSON bytes, so a damaged or cut-off manifest is
//! refused rather than half-read.

use std::collections::HashSet;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::destination::Destination;
use crate::error::{BackupError, Result};

pub(crate) const BACKUPS_DIR: &str = "backups";
const MANIFEST: &str = "manifest";
/// Bumped when a manifest written by this version cannot be read by older ones
/// (2: a file is a list of parts; format 1 manifests are still read).
pub const FORMAT_VERSION: u32 = 2;

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredFileEntry")]
pub struct FileEntry {
    /// Relative to the root, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Of the whole file.
    pub crc32c: u32,
    /// The local file's modification time when it was read (nanoseconds since
    /// 1970): with the size, how the next backup knows the file is unchanged.
    pub mtime_ns: u64,
    /// BLAKE3 of the whole file (hex): how the next backup knows that a grown
    /// file still begins with these bytes. (Not the CRC: a file that ends with
    /// its own CRC-32C has the same CRC-32C whatever it holds.) Absent in
    /// backups of Tidemark before manifest format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// The objects holding the bytes, in order: one for a file uploaded whole;
    /// for a file that grew since the base backup, the base's parts and then
    /// one with the bytes appended since.
    pub parts: Vec<Part>,
}

/// One object holding a stretch of a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Relative to the destination.
    pub object: String,
    pub size: u64,
    pub crc32c: u32,
}

/// A file entry as stored: format 1 named one `object` for the whole file.
#[derive(Deserialize)]
struct StoredFileEntry {
    path: String,
    size: u64,
    crc32c: u32,
    mtime_ns: u64,
    #[serde(default)]
    blake3: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
}

impl From<StoredFileEntry> for FileEntry {
    fn from(e: StoredFileEntry) -> Self {
        let mut parts = e.parts;
        if let (true, Some(object)) = (parts.is_empty(), e.object) {
            parts.push(Part {
                object,
                size: e.size,
                crc32c: e.crc32c,
            });
        }
        FileEntry {
            path: e.path,
            size: e.size,
            crc32c: e.crc32c,
            mtime_ns: e.mtime_ns,
            blake3: e.blake3,
            parts,
        }
    }
}

impl FileEntry {
    /// A file held whole by `object`.
    pub fn whole(path: &str, size: u64, crc32c: u32, mtime_ns: u64, object: String) -> Self {
        FileEntry {
            path: path.to_string(),
            size,
            crc32c,
            mtime_ns,
            blake3: None,
            parts: vec![Part {
                object,
                size,
                crc32c,
            }],
        }
    }

    /// Bytes held by objects under `prefix` (e.g. those one backup uploaded).
    pub fn bytes_under(&self, prefix: &str) -> u64 {
        self.parts
            .iter()
            .filter(|p| p.object.starts_with(prefix))
            .map(|p| p.size)
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub server_version: String,
    /// When the checkpoint cut was taken (RFC 3339, UTC).
    pub cut_at: String,
    /// The commit the cut is at.
    pub cut_seq: u64,
    /// The backup whose objects unchanged files refer to (None: a full backup).
    pub base: Option<String>,
    pub completed_at: String,
    /// Bytes of all files of the cut.
    pub total_bytes: u64,
    /// Bytes this backup uploaded (the rest are earlier backups' objects).
    pub uploaded_bytes: u64,
    pub files: Vec<FileEntry>,
}

pub(crate) fn manifest_key(id: &str) -> String {
    format!("{BACKUPS_DIR}/{id}/{MANIFEST}")
}

/// The object holding what backup `id` uploaded of `path`: the whole file, or
/// the bytes appended to it since the base backup.
pub(crate) fn data_key(id: &str, path: &str) -> String {
    format!("{}{path}", data_prefix(id))
}

/// Where backup `id`'s uploads are.
pub(crate) fn data_prefix(id: &str) -> String {
    format!("{BACKUPS_DIR}/{id}/data/")
}

impl Manifest {
    /// When the cut was taken (None if `cut_at` does not parse).
    pub fn cut_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.cut_at)
            .ok()
            .map(|t| t.to_utc())
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self)
            .map_err(|e| BackupError::Refused(format!("cannot encode the manifest: {e}")))?;
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(format!("\ncrc32c {crc:08x}\n").as_bytes());
        Ok(out)
    }

    pub(crate) fn decode(data: &[u8], object: &str) -> Result<Manifest> {
        let corrupt = |reason: String| BackupError::Corrupt {
            object: object.to_string(),
            reason,
        };
        let text = std::str::from_utf8(data).map_err(|_| corrupt("not UTF-8".into()))?;
        let (json, trailer) = text
            .trim_end_matches('\n')
            .rsplit_once('\n')
            .ok_or_else(|| corrupt("no checksum line".into()))?;
        let expected = trailer
            .strip_prefix("crc32c ")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| corrupt(format!("bad checksum line {trailer:?}")))?;
        let actual = crc32c::crc32c(json.as_bytes());
        if actual != expected {
            return Err(corrupt(format!(
                "checksum {actual:08x} does not match the recorded {expected:08x}"
            )));
        }
        let m: Manifest = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
        if m.format > FORMAT_VERSION {
            return Err(BackupError::Refused(format!(
                "{object} has manifest format {}; this server reads up to {FORMAT_VERSION} \
                 (written by Tidemark {}): use that version or newer",
                m.format, m.server_version
            )));
        }
        Ok(m)
    }
}

/// Reads the manifest of backup `id`.
pub async fn read_manifest(dest: &Destination, id: &str) -> Result<Manifest> {
    let key = manifest_key(id);
    let object = dest.object(&key)?;
    let data = match dest.store().get(&object).await {
        Ok(r) => r
            .bytes()
            .await
            .map_err(|e| BackupError::store(dest.describe(&key), e))?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(BackupError::NotFound(format!(
                "there is no complete backup {id} at {}",
                dest.url()
            )));
        }
        Err(e) => return Err(BackupError::store(dest.describe(&key), e)),
    };
    Manifest::decode(&data, &dest.describe(&key))
}

/// The ids of the backups under `dest` that have a manifest (complete ones),
/// oldest first, and the number of incomplete ones (an upload under way or
/// abandoned).
pub async fn backup_ids(dest: &Destination) -> Result<(Vec<String>, usize)> {
    let prefix = dest.object(BACKUPS_DIR)?;
    let listing = dest
        .store()
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|e| BackupError::store(dest.describe(BACKUPS_DIR), e))?;
    let mut complete = Vec::new();
    let mut incomplete = 0;
    for dir in listing.common_prefixes {
        let Some(id) = dir.filename().map(str::to_string) else {
            continue;
        };
        let manifest = dest.object(&manifest_key(&id))?;
        match dest.store().head(&manifest).await {
            Ok(_) => complete.push(id),
            Err(object_store::Error::NotFound { .. }) => incomplete += 1,
            Err(e) => return Err(BackupError::store(dest.describe(&manifest_key(&id)), e)),
        }
    }
    complete.sort();
    Ok((complete, incomplete))
}

/// The newest complete backup, if any.
pub async fn latest(dest: &Destination) -> Result<Option<Manifest>> {
    match backup_ids(dest).await?.0.last() {
        Some(id) => read_manifest(dest, id).await.map(Some),
        None => Ok(None),
    }
}

/// Removes the objects under `backups/<id>/` that `keep` does not name (an
/// aborted backup's uploads: all of them; a pruned one's: those no kept
/// backup refers to). Returns how many were removed and their bytes.
pub(crate) async fn remove_backup_objects(
    dest: &Destination,
    id: &str,
    keep: &HashSet<String>,
) -> Result<(usize, u64)> {
    let key = format!("{BACKUPS_DIR}/{id}");
    let prefix = dest.object(&key)?;
    let objects: Vec<_> = dest
        .store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| BackupError::store(dest.describe(&key), e))?;
    let (mut removed, mut bytes) = (0, 0);
    for o in objects {
        if keep.contains(o.location.as_ref()) {
            continue;
        }
        match dest.store().delete(&o.location).await {
            Ok(()) => {
                removed += 1;
                bytes += o.size;
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(BackupError::store(&o.location, e)),
        }
    }
    Ok((removed, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT_VERSION,
            id: "20261204T101500Z-42".into(),
            server_version: "0.1.0".into(),
            cut_at: "2026-12-04T10:15:00Z".into(),
            cut_seq: 42,
            base: None,
            completed_at: "2026-12-04T10:15:03Z".into(),
            total_bytes: 10,
            uploaded_bytes: 10,
            files: vec![FileEntry::whole(
                "db/t~1/_meta",
                10,
                7,
                1,
                data_key("20261204T101500Z-42", "db/t~1/_meta"),
            )],
        }
    }

    #[test]
    fn manifest_round_trips_and_any_damage_is_refused() {
        let m = sample();
        let bytes = m.encode().expect("encodes");
        assert_eq!(Manifest::decode(&bytes, "m").expect("decodes"), m);
        for i in 0..bytes.len() - 1 {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(
                Manifest::decode(&bad, "m").is_err(),
                "flipping a bit of byte {i} went unnoticed"
            );
        }
        assert!(Manifest::decode(&bytes[..bytes.len() / 2], "m").is_err());
    }

    #[test]
    fn format_1_entries_read_as_one_part() {
        let v1 =
            r#"{"path":"db/a","size":3,"crc32c":9,"mtime_ns":5,"object":"backups/x/data/db/a"}"#;
        let e: FileEntry = serde_json::from_str(v1).expect("parses");
        assert_eq!(
            e,
            FileEntry::whole("db/a", 3, 9, 5, "backups/x/data/db/a".into())
        );
        let again: FileEntry =
            serde_json::from_str(&serde_json::to_string(&e).expect("encodes")).expect("parses");
        assert_eq!(again, e);
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let mut m = sample();
        m.format = FORMAT_VERSION + 1;
        let err =
            Manifest::decode(&m.encode().expect("encodes"), "x/manifest").expect_err("refused");
        assert!(err.to_string().contains("manifest format"), "{err}");
    }
}
