//! Where backups go: a local directory (`file:///path`) or an S3-compatible
//! bucket (`s3://bucket/prefix`), both through `object_store`.
//!
//! Objects are written whole or not at all: `object_store` stages a local file
//! and renames it, and an S3 upload (single or multipart) exists only once it
//! is completed. So an object that is there is complete; whether it holds the
//! right bytes is what the manifest's sizes and checksums tell.
//!
//! Durable: an S3 PUT is stored once it returns; a local directory's object is
//! only in the page cache then (`object_store` does not fsync), so
//! `Destination::sync_object` fsyncs the file and its directory before the
//! backup counts it as uploaded (a power cut of the backup disk does not leave
//! a manifest naming lost objects, nor a shipped log run that is not there).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use crate::error::{BackupError, Result};
use crate::job::{blocking, fsync};

/// S3 settings of the `[backup]` section. Empty strings leave a setting to the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT`, ...), as the AWS tools read it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// For S3-compatible servers (MinIO, ...): `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow `http://` endpoints (S3-compatible servers on a private network).
    pub allow_http: bool,
    /// `https://bucket.host/key` instead of `https://host/bucket/key`.
    pub virtual_hosted_style: bool,
}

impl std::fmt::Debug for S3Options {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .finish_non_exhaustive()
    }
}

/// An opened destination: the store and the prefix every object goes under.
#[derive(Debug, Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    /// The directory of a `file://` destination.
    local_dir: Option<PathBuf>,
}

/// How long one request to the destination is retried (with back-off) before
/// the backup reports the error; the next `BACKUP DATABASE` resumes it.
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);

impl Destination {
    /// Checks `url`'s form without touching the destination (configuration).
    pub fn check_url(url: &str) -> std::result::Result<(), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        match parsed.scheme() {
            "file" => parsed
                .to_file_path()
                .map(|_| ())
                .map_err(|_| format!("{url:?}: a file URL needs an absolute path: file:///dir")),
            "s3" if parsed.host_str().is_some_and(|b| !b.is_empty()) => Ok(()),
            "s3" => Err(format!(
                "{url:?}: an S3 URL names a bucket: s3://bucket/prefix"
            )),
            other => Err(format!(
                "{url:?}: scheme {other}:// is not supported (file:// and s3:// are)"
            )),
        }
    }

    /// Opens `url` (`file:///absolute/dir` or `s3://bucket[/prefix]`). A local
    /// directory is created if missing.
    pub fn open(url: &str, s3: &S3Options) -> Result<Destination> {
        let bad = |reason: String| BackupError::BadDestination {
            url: url.to_string(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let mut local_dir = None;
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|_| bad("a file URL needs an absolute path: file:///dir".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(e.to_string()))?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(e.to_string()))?;
                local_dir = Some(dir);
                (Arc::new(fs), String::new())
            }
            "s3" => {
                let bucket = parsed
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| bad("an S3 URL names a bucket: s3://bucket/prefix".into()))?;
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_allow_http(s3.allow_http)
                    .with_virtual_hosted_style_request(s3.virtual_hosted_style)
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig::default(),
                        max_retries: 10,
                        retry_timeout: RETRY_TIMEOUT,
                    });
                if !s3.endpoint.is_empty() {
                    b = b.with_endpoint(&s3.endpoint);
                }
                if !s3.region.is_empty() {
                    b = b.with_region(&s3.region);
                }
                if !s3.access_key_id.is_empty() {
                    b = b.with_access_key_id(&s3.access_key_id);
                }
                if !s3.secret_access_key.is_empty() {
                    b = b.with_secret_access_key(&s3.secret_access_key);
                }
                let store = b.build().map_err(|e| bad(e.to_string()))?;
                (Arc::new(store), parsed.path().trim_matches('/').to_string())
            }
            other => {
                return Err(bad(format!(
                    "scheme {other}:// is not supported (file:// and s3:// are)"
                )));
            }
        };
        let prefix = ObjectPath::parse(&prefix).map_err(|e| bad(e.to_string()))?;
        Ok(Destination {
            store,
            prefix,
            url: url.to_string(),
            local_dir,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object at `key` (a `/`-separated path below the destination's prefix).
    pub(crate) fn object(&self, key: &str) -> Result<ObjectPath> {
        let rel = ObjectPath::parse(key).map_err(|e| BackupError::BadDestination {
            url: self.url.clone(),
            reason: format!("{key} cannot be an object name: {e}"),
        })?;
        Ok(if self.prefix.as_ref().is_empty() {
            rel
        } else {
            ObjectPath::from_iter(self.prefix.parts().chain(rel.parts()))
        })
    }

    /// Makes the object at `key` durable: in a local directory, fsyncs its file
    /// and the directory that names it; nothing to do in S3.
    pub(crate) async fn sync_object(&self, key: &str) -> Result<()> {
        let Some(dir) = &self.local_dir else {
            return Ok(());
        };
        let file = dir.join(key);
        blocking(move || {
            fsync(&file)?;
            file.parent().map_or(Ok(()), fsync)
        })
        .await
    }

    /// A key as the destination shows it (for messages): `url/key`.
    pub(crate) fn describe(&self, key: &str) -> String {
        format!("{}/{}", self.url.trim_end_matches('/'), key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn a_local_object_is_synced_where_object_store_wrote_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}", dir.path().display());
        let dest = Destination::open(&url, &S3Options::default()).expect("opens");
        let key = "backups/20261205T063457.153Z/data/db/a~1/2026-11-21/v~2.d";
        dest.store()
            .put(&dest.object(key).expect("key"), b"bytes".to_vec().into())
            .await
            .expect("put");
        dest.sync_object(key).await.expect("synced");
        // It syncs the file itself: one that is not there is an error, naming it.
        let err = dest
            .sync_object("backups/x/data/missing")
            .await
            .expect_err("no such file");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
