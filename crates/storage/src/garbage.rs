//! Garbage: paths that no commit refers to any more, waiting to be reclaimed.
//!
//! Each item remembers the state version that retired it (housekeeping deletes
//! it only once nothing older can be read) and, once housekeeping has measured
//! it, its size, so that status and metrics report what is held without
//! walking the tree themselves. Pauses nest: checkpoint mode pauses reclaiming
//! until RELEASE, each `pause` needing its `resume`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::fsutil;

#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The state version that made the path unreachable.
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    /// Bytes under the path, once measured.
    bytes: Option<u64>,
}

/// How much garbage waits, as far as housekeeping has measured it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Backlog {
    pub(crate) paths: u64,
    pub(crate) bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Garbage {
    items: Mutex<Vec<Item>>,
    pauses: AtomicUsize,
}

impl Garbage {
    pub(crate) fn add(&self, seq: u64, paths: impl IntoIterator<Item = PathBuf>) {
        self.items.lock().extend(paths.into_iter().map(|path| Item {
            seq,
            path,
            bytes: None,
        }));
    }

    /// Returns items taken by [`Garbage::take_reclaimable`] but not deleted.
    pub(crate) fn put_back(&self, items: impl IntoIterator<Item = Item>) {
        self.items.lock().extend(items);
    }

    /// Takes the items retired at or before version `limit`.
    pub(crate) fn take_reclaimable(&self, limit: u64) -> Vec<Item> {
        let mut g = self.items.lock();
        let (ready, keep): (Vec<_>, Vec<_>) = g.drain(..).partition(|i| i.seq <= limit);
        *g = keep;
        ready
    }

    /// The paths retired up to version `version`: nothing from it on refers to them.
    pub(crate) fn retired_by(&self, version: u64) -> HashSet<PathBuf> {
        self.items
            .lock()
            .iter()
            .filter(|i| i.seq <= version)
            .map(|i| i.path.clone())
            .collect()
    }

    pub(crate) fn pending(&self) -> Vec<PathBuf> {
        self.items.lock().iter().map(|i| i.path.clone()).collect()
    }

    /// Measures the size of up to `max` items not measured yet (outside the
    /// lock: commits add garbage meanwhile).
    pub(crate) fn measure(&self, max: usize) {
        let todo: Vec<PathBuf> = self
            .items
            .lock()
            .iter()
            .filter(|i| i.bytes.is_none())
            .take(max)
            .map(|i| i.path.clone())
            .collect();
        if todo.is_empty() {
            return;
        }
        let sizes: HashMap<PathBuf, u64> = todo
            .into_iter()
            .map(|p| {
                let n = fsutil::disk_usage(&p);
                (p, n)
            })
            .collect();
        for i in self.items.lock().iter_mut() {
            if i.bytes.is_none()
                && let Some(n) = sizes.get(&i.path)
            {
                i.bytes = Some(*n);
            }
        }
    }

    pub(crate) fn backlog(&self) -> Backlog {
        let g = self.items.lock();
        Backlog {
            paths: g.len() as u64,
            bytes: g.iter().filter_map(|i| i.bytes).sum(),
        }
    }

    pub(crate) fn pause(&self) -> usize {
        self.pauses.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn resume(&self) -> usize {
        let mut cur = self.pauses.load(Ordering::SeqCst);
        loop {
            let next = cur.saturating_sub(1);
            match self
                .pauses
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(c) => cur = c,
            }
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.pauses.load(Ordering::SeqCst) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_nest_and_reclaim_respects_the_limit() {
        let g = Garbage::default();
        assert_eq!(g.pause(), 1);
        assert_eq!(g.pause(), 2);
        assert_eq!(g.resume(), 1);
        assert!(g.is_paused());
        assert_eq!(g.resume(), 0);
        assert_eq!(g.resume(), 0);
        assert!(!g.is_paused());
        g.add(5, [PathBuf::from("a")]);
        g.add(9, [PathBuf::from("b")]);
        let taken = g.take_reclaimable(7);
        assert_eq!(
            taken.iter().map(|i| i.path.clone()).collect::<Vec<_>>(),
            vec![PathBuf::from("a")]
        );
        assert_eq!(g.pending(), vec![PathBuf::from("b")]);
        g.put_back(taken);
        assert_eq!(g.backlog().paths, 2);
        assert_eq!(
            g.take_reclaimable(7).len(),
            1,
            "a put-back item keeps its version"
        );
    }

    #[test]
    fn measured_sizes_make_the_backlog() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("p");
        std::fs::create_dir(&part).expect("mkdir");
        std::fs::write(part.join("a.d"), [0u8; 100]).expect("write");
        std::fs::write(part.join("b.d"), [0u8; 28]).expect("write");
        let g = Garbage::default();
        g.add(1, [part]);
        assert_eq!(
            g.backlog(),
            Backlog { paths: 1, bytes: 0 },
            "not measured yet"
        );
        g.measure(10);
        assert_eq!(
            g.backlog(),
            Backlog {
                paths: 1,
                bytes: 128
            }
        );
    }
}
