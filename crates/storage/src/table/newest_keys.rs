//! The newest row of each key of a SYMBOL column's part file, kept in memory.
//!
//! `LATEST ON ts PARTITION BY sym` without a symbol index had to read a part's
//! keys backwards until every key was found, and then on to the first row to
//! prove that no row is NULL: every key of the table, each time. The newest
//! row of every key in a part (and of NULL) is a few bytes per key, and a
//! part's key file only grows (invariant 1 of docs/architecture.md), so the
//! answer for its first `n` rows stays true and is extended by reading only
//! the rows appended since. The summaries live beside the kept file mappings
//! (`files.rs`) and are forgotten with them when a part is retired; they are
//! never written to disk (the first LATEST ON after a start reads the keys
//! once).

use std::sync::Arc;

/// Keys at or above this are not summarized (the summary is a slot per key,
/// so a column with millions of distinct values is read the old way).
pub(crate) const MAX_SUMMARIZED_KEY: i32 = 1 << 20;

/// The most key slots all summaries together hold (8 bytes each: 32 MiB).
pub(crate) const MAX_SUMMARY_SLOTS: usize = 4 << 20;

/// The newest row of each key among a key file's first `rows` stored rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewestPerKey {
    /// Stored rows summarized.
    rows: usize,
    /// Per key, its newest stored row plus one (0: the key is not there).
    newest: Vec<u64>,
    /// The newest NULL (a negative key) plus one (0: none).
    newest_null: u64,
}

impl NewestPerKey {
    /// Stored rows this summary covers.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Key slots held (what counts against [`MAX_SUMMARY_SLOTS`]).
    pub(crate) fn slots(&self) -> usize {
        self.newest.len()
    }

    /// This summary extended by `appended`, the stored keys (little-endian
    /// `i32`, as in the key file) of the rows that follow the ones it covers;
    /// `None` when a key is too large to summarize.
    pub(crate) fn extended(&self, appended: &[u8]) -> Option<NewestPerKey> {
        let keys = || {
            appended
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let top = keys().max().unwrap_or(-1);
        if top >= MAX_SUMMARIZED_KEY {
            return None;
        }
        let mut next = self.clone();
        if top >= 0 && top as usize >= next.newest.len() {
            next.newest.resize(top as usize + 1, 0);
        }
        for (i, key) in keys().enumerate() {
            let row = (self.rows + i) as u64 + 1;
            match usize::try_from(key) {
                Ok(k) => next.newest[k] = row,
                Err(_) => next.newest_null = row,
            }
        }
        next.rows += appended.len() / 4;
        Some(next)
    }
}

/// The newest row of each key in one part, in the part's row numbers: the
/// summary of its stored keys, and the rows before the column's top, which
/// are NULL.
#[derive(Debug, Clone)]
pub struct PartNewestRows {
    pub(crate) summary: Arc<NewestPerKey>,
    /// Rows `0..top` of the part are NULL and not stored.
    pub(crate) top: usize,
}

impl PartNewestRows {
    /// The part's rows this answer covers (`0..rows`).
    pub fn rows(&self) -> usize {
        self.top + self.summary.rows
    }

    /// Calls `f(key, row)` for every key present (`None` for NULL) with its
    /// newest row, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(Option<u32>, usize)) {
        for (key, &newest) in self.summary.newest.iter().enumerate() {
            if newest > 0 {
                f(Some(key as u32), self.top + newest as usize - 1);
            }
        }
        if self.summary.newest_null > 0 {
            f(None, self.top + self.summary.newest_null as usize - 1);
        } else if self.top > 0 {
            f(None, self.top - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stored(keys: &[i32]) -> Vec<u8> {
        keys.iter().flat_map(|k| k.to_le_bytes()).collect()
    }

    fn answer(rows: &PartNewestRows) -> Vec<(Option<u32>, usize)> {
        let mut out = Vec::new();
        rows.for_each(|k, r| out.push((k, r)));
        out.sort_unstable();
        out
    }

    /// The newest row of each key by a plain backwards walk.
    fn walked(top: usize, keys: &[i32]) -> Vec<(Option<u32>, usize)> {
        let mut out: Vec<(Option<u32>, usize)> = Vec::new();
        let all = std::iter::repeat_n(-1, top).chain(keys.iter().copied());
        for (row, key) in all.enumerate() {
            let key = u32::try_from(key).ok();
            out.retain(|(k, _)| *k != key);
            out.push((key, row));
        }
        out.sort_unstable();
        out
    }

    proptest! {
        /// Built in any number of appends, the summary answers what a walk of
        /// every row finds.
        #[test]
        fn appends_in_steps_match_a_full_walk(
            keys in proptest::collection::vec(-1i32..40, 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..5),
            top in 0usize..4,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(keys.len())).collect();
            cuts.push(keys.len());
            cuts.sort_unstable();
            let mut summary = NewestPerKey::default();
            for cut in cuts {
                let appended = stored(&keys[summary.rows()..cut]);
                summary = summary.extended(&appended).expect("small keys");
            }
            let rows = PartNewestRows { summary: Arc::new(summary), top };
            prop_assert_eq!(rows.rows(), top + keys.len());
            prop_assert_eq!(answer(&rows), walked(top, &keys));
        }
    }

    #[test]
    fn a_key_too_large_is_not_summarized() {
        assert!(
            NewestPerKey::default()
                .extended(&stored(&[1, MAX_SUMMARIZED_KEY]))
                .is_none()
        );
        assert!(
            NewestPerKey::default()
                .extended(&stored(&[MAX_SUMMARIZED_KEY - 1]))
                .is_some()
        );
    }
}
