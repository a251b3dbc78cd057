//! Merging sorted runs of rows by the designated timestamp.
//!
//! The write buffer holds rows as several sorted runs per partition, next to the
//! sorted parts in the column files. Readers and the background apply both need
//! them as one sorted sequence: [`merge_order`] says which rows of which source
//! come next, in stretches as long as possible, so long in-order stretches are
//! copied (or handed to Arrow) whole instead of row by row.

use std::ops::Range;

use crate::batch::Column;
use crate::error::Result;

/// The order in which to read `sources`, each sorted ascending, so that the rows
/// come out sorted: a list of (source, rows) stretches. Equal timestamps keep
/// source order (a lower source index first), which makes the merge stable
/// when sources are listed oldest first.
pub fn merge_order(sources: &[&[i64]]) -> Vec<(usize, Range<usize>)> {
    let mut pos = vec![0usize; sources.len()];
    let mut out = Vec::new();
    loop {
        // The source whose next row comes first (ties: the lower index).
        let mut best: Option<usize> = None;
        for (i, s) in sources.iter().enumerate() {
            if pos[i] < s.len() && best.is_none_or(|b| s[pos[i]] < sources[b][pos[b]]) {
                best = Some(i);
            }
        }
        let Some(s) = best else {
            return out;
        };
        let rows = sources[s];
        // How far `s` may run before another source's next row must come first.
        let mut end = rows.len();
        for (t, other) in sources.iter().enumerate() {
            if t == s || pos[t] >= other.len() {
                continue;
            }
            let head = other[pos[t]];
            let limit = if s < t {
                pos[s] + rows[pos[s]..].partition_point(|&x| x <= head)
            } else {
                pos[s] + rows[pos[s]..].partition_point(|&x| x < head)
            };
            end = end.min(limit);
        }
        // `s` holds the smallest head, so at least one row goes.
        let end = end.max(pos[s] + 1);
        out.push((s, pos[s]..end));
        pos[s] = end;
    }
}

/// The rows of `sources` in `order` (see [`merge_order`]) as one column per
/// input column: `sources[i][c]` is column `c` of source `i`.
pub(crate) fn gather(
    sources: &[Vec<&Column>],
    order: &[(usize, Range<usize>)],
) -> Result<Vec<Column>> {
    let Some(first) = sources.first() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Column> = first.iter().map(|c| c.empty_like()).collect();
    for (s, rows) in order {
        for (c, column) in out.iter_mut().enumerate() {
            column.extend_range(sources[*s][c], rows.clone())?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flatten(sources: &[&[i64]], order: &[(usize, Range<usize>)]) -> Vec<(i64, usize)> {
        order
            .iter()
            .flat_map(|(s, r)| r.clone().map(move |i| (sources[*s][i], *s)))
            .collect()
    }

    #[test]
    fn long_stretches_stay_whole() {
        let a: &[i64] = &[1, 2, 3, 10, 11];
        let b: &[i64] = &[4, 5, 10];
        let order = merge_order(&[a, b]);
        assert_eq!(
            order,
            vec![(0, 0..3), (1, 0..2), (0, 3..4), (1, 2..3), (0, 4..5)]
        );
        assert_eq!(merge_order(&[a]), vec![(0, 0..5)]);
        assert!(merge_order(&[]).is_empty());
        assert_eq!(merge_order(&[&[], a]), vec![(1, 0..5)]);
    }

    proptest! {
        #[test]
        fn merges_sorted_and_stable(mut runs in prop::collection::vec(prop::collection::vec(0i64..20, 0..30), 0..6)) {
            for r in &mut runs {
                r.sort();
            }
            let sources: Vec<&[i64]> = runs.iter().map(|r| r.as_slice()).collect();
            let order = merge_order(&sources);
            let merged = flatten(&sources, &order);
            let mut expected: Vec<(i64, usize)> = runs
                .iter()
                .enumerate()
                .flat_map(|(s, r)| r.iter().map(move |&t| (t, s)))
                .collect();
            // Stable by timestamp, sources in index order: exactly a sort by (ts, source).
            expected.sort();
            prop_assert_eq!(merged, expected);
            prop_assert!(order.iter().all(|(_, r)| !r.is_empty()));
        }
    }
}
