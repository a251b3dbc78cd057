//! The local record of a backup under way, in `<root>/.backup/`: what lets a
//! backup interrupted by a crash, a kill or a destination error resume with
//! the same checkpoint cut and upload only what is not there yet.
//!
//! - `state`: the backup's id, cut and phase, replaced atomically;
//! - `uploaded`: one JSON line per file whose object is complete, appended and
//!   fsynced after each upload. A line cut short by a crash is ignored (its
//!   file is uploaded again).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BackupError, Result};
use crate::manifest::FileEntry;

pub(crate) const STATE_DIR: &str = ".backup";
const STATE_FILE: &str = "state";
const UPLOADED_FILE: &str = "uploaded";
const STATE_TMP_FILE: &str = "state.tmp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// The checkpoint is held; files are being uploaded.
    Uploading,
    /// Every file is uploaded and the checkpoint released; the manifest is next.
    Uploaded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackupState {
    pub(crate) id: String,
    pub(crate) cut_seq: u64,
    pub(crate) cut_at: String,
    pub(crate) base: Option<String>,
    /// The destination the backup goes to: a resume elsewhere starts afresh.
    pub(crate) destination: String,
    pub(crate) phase: Phase,
}

pub(crate) fn state_dir(root: &Path) -> PathBuf {
    root.join(STATE_DIR)
}

impl BackupState {
    pub(crate) fn load(root: &Path) -> Result<Option<BackupState>> {
        let path = state_dir(root).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BackupError::io(&path, e)),
        };
        match serde_json::from_slice(&data) {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                // Written atomically, so only tampering gets here: a backup
                // nobody can resume is started afresh rather than blocking all.
                tracing::warn!(
                    "{} cannot be read ({e}): the unfinished backup it describes is abandoned",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    pub(crate) fn save(&self, root: &Path) -> Result<()> {
        let dir = state_dir(root);
        fs::create_dir_all(&dir).map_err(|e| BackupError::io(&dir, e))?;
        let data = serde_json::to_vec(self)
            .map_err(|e| BackupError::Refused(format!("cannot encode the backup state: {e}")))?;
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(STATE_TMP_FILE);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&dir)?.sync_all()
        };
        write().map_err(|e| BackupError::io(&path, e))
    }

    /// Forgets the backup (done or aborted): its own files only. The log
    /// backup keeps its position in the same directory, written while backups
    /// run, so the directory stays while that is there.
    pub(crate) fn remove(root: &Path) -> Result<()> {
        let dir = state_dir(root);
        for name in [STATE_FILE, UPLOADED_FILE, STATE_TMP_FILE] {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackupError::io(&path, e)),
            }
        }
        // Gone when nothing else is in it (no log backup).
        let _ = fs::remove_dir(&dir);
        Ok(())
    }
}

/// The `uploaded` log: files whose objects are complete.
#[derive(Debug)]
pub(crate) struct UploadLog {
    path: PathBuf,
    file: File,
}

impl UploadLog {
    /// Opens the log of the backup in `.backup/`, returning what it holds.
    pub(crate) fn open(root: &Path) -> Result<(UploadLog, HashMap<String, FileEntry>)> {
        let dir = state_dir(root);
        fs::create_dir_all(&dir).map_err(|e| BackupError::io(&dir, e))?;
        let path = dir.join(UPLOADED_FILE);
        let mut entries = HashMap::new();
        match fs::read(&path) {
            Ok(data) => {
                for line in data.split(|b| *b == b'\n') {
                    if let Ok(e) = serde_json::from_slice::<FileEntry>(line) {
                        entries.insert(e.path.clone(), e);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io(&path, e)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| BackupError::io(&path, e))?;
        Ok((UploadLog { path, file }, entries))
    }

    /// Records `entry` durably. A torn previous line is ended first so this
    /// one parses.
    pub(crate) fn record(&mut self, entry: &FileEntry) -> Result<()> {
        let mut line = b"\n".to_vec();
        serde_json::to_writer(&mut line, entry)
            .map_err(|e| BackupError::Refused(format!("cannot encode an upload record: {e}")))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| BackupError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> FileEntry {
        FileEntry::whole(path, 3, 9, 5, format!("backups/x/data/{path}"))
    }

    #[test]
    fn the_upload_log_survives_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut log, seen) = UploadLog::open(dir.path()).expect("opens");
            assert!(seen.is_empty());
            log.record(&entry("db/a")).expect("records");
        }
        // A crash in the middle of the next line.
        let path = state_dir(dir.path()).join(UPLOADED_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"path\":\"db/b\",\"si").expect("write");
        drop(f);
        let (mut log, seen) = UploadLog::open(dir.path()).expect("reopens");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen.get("db/a"), Some(&entry("db/a")));
        log.record(&entry("db/c"))
            .expect("records after the torn line");
        let (_, seen) = UploadLog::open(dir.path()).expect("reopens");
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.contains_key("db/c"));
    }

    #[test]
    fn state_round_trips_and_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(BackupState::load(dir.path()).expect("loads"), None);
        let s = BackupState {
            id: "b1".into(),
            cut_seq: 7,
            cut_at: "2026-12-04T00:00:00Z".into(),
            base: Some("b0".into()),
            destination: "file:///x".into(),
            phase: Phase::Uploading,
        };
        s.save(dir.path()).expect("saves");
        assert_eq!(BackupState::load(dir.path()).expect("loads"), Some(s));
        BackupState::remove(dir.path()).expect("removes");
        assert_eq!(BackupState::load(dir.path()).expect("loads"), None);
    }
}
