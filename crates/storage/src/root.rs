//! The root directory's layout and the one-server-per-root lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{IoContext, Result, StorageError};

pub(crate) const DB_DIR: &str = "db";
pub(crate) const WAL_DIR: &str = "wal";
pub(crate) const LOCK_FILE: &str = "tidemark.lock";
pub(crate) const PID_FILE: &str = "tidemark.pid";
pub(crate) const REGISTRY_FILE: &str = "_tables";

/// An opened root: its paths, and the exclusive lock held for as long as this lives.
#[derive(Debug)]
pub(crate) struct Root {
    pub(crate) path: PathBuf,
    pub(crate) db: PathBuf,
    pub(crate) wal: PathBuf,
    _lock: Flock<File>,
}

impl Root {
    /// Creates the layout if needed and takes the lock. A second opener gets
    /// [`StorageError::Locked`] with the holder's pid.
    pub(crate) fn open(path: &Path) -> Result<Root> {
        fs::create_dir_all(path).at(path)?;
        let path = path.canonicalize().at(path)?;
        let lock_path = path.join(LOCK_FILE);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        let lock = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ =
                    File::open(path.join(PID_FILE)).and_then(|mut f| f.read_to_string(&mut pid));
                let pid = pid.trim();
                return Err(StorageError::Locked {
                    root: path.clone(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                });
            }
            Err((_, e)) => return Err(StorageError::io(&lock_path, e.into())),
        };
        let pid_path = path.join(PID_FILE);
        let mut pf = File::create(&pid_path).at(&pid_path)?;
        writeln!(pf, "{}", std::process::id()).at(&pid_path)?;
        let db = path.join(DB_DIR);
        let wal = path.join(WAL_DIR);
        fs::create_dir_all(&db).at(&db)?;
        fs::create_dir_all(&wal).at(&wal)?;
        Ok(Root {
            path,
            db,
            wal,
            _lock: lock,
        })
    }

    pub(crate) fn registry_path(&self) -> PathBuf {
        self.db.join(REGISTRY_FILE)
    }
}
