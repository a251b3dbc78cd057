//! Housekeeping: reclaiming what no commit, reader or checkpoint needs any more.
//!
//! Superseded partition versions, dropped tables and dropped columns' files
//! become *garbage* at the commit that made them unreachable. A garbage item
//! retired by commit `R` is deleted only when
//! - the durable table files on disk are at `R` or later (recovery starts from
//!   them and must find what they reference),
//! - readers can only start snapshots at `R` or later (the published state), and
//! - no live snapshot is older than `R`,
//!
//! and never while housekeeping is paused (checkpoint mode pauses it; pauses
//! nest, each `pause` needing its `resume`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

#[derive(Debug, Default)]
pub(crate) struct Garbage {
    items: Mutex<Vec<(u64, PathBuf)>>,
    pauses: AtomicUsize,
}

impl Garbage {
    pub(crate) fn add(&self, seq: u64, paths: impl IntoIterator<Item = PathBuf>) {
        self.items
            .lock()
            .extend(paths.into_iter().map(|p| (seq, p)));
    }

    /// Takes the items retired at or before `limit`.
    pub(crate) fn take_reclaimable(&self, limit: u64) -> Vec<PathBuf> {
        let mut g = self.items.lock();
        let (ready, keep): (Vec<_>, Vec<_>) = g.drain(..).partition(|(s, _)| *s <= limit);
        *g = keep;
        ready.into_iter().map(|(_, p)| p).collect()
    }

    /// The paths retired by commits up to `seq`: nothing from `seq` on refers to them.
    pub(crate) fn retired_by(&self, seq: u64) -> std::collections::HashSet<PathBuf> {
        self.items
            .lock()
            .iter()
            .filter(|(s, _)| *s <= seq)
            .map(|(_, p)| p.clone())
            .collect()
    }

    pub(crate) fn pending(&self) -> Vec<PathBuf> {
        self.items.lock().iter().map(|(_, p)| p.clone()).collect()
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
        assert_eq!(g.take_reclaimable(7), vec![PathBuf::from("a")]);
        assert_eq!(g.pending(), vec![PathBuf::from("b")]);
    }
}
