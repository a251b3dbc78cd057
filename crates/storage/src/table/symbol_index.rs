//! Symbol index: for one SYMBOL column of one part, the rows of each key.
//!
//! The index file (`<stem>.<index seq>.k` in the part directory) is a sequence
//! of blocks, one per append to the part, each covering the rows that append
//! wrote:
//!
//! ```text
//! first_row u64 | rows u32 | key_count u32 |
//! key_count x { key i32 | end u32 }   keys ascending (-1 = NULL); `end`: entries
//!                                     of this key and the keys before it
//! rows x offset u32                   row - first_row, ascending within a key
//! ```
//!
//! Blocks follow one another without gaps: the first starts at the column's
//! top (rows before it are NULL and not stored), each next one where the last
//! ended. Like every column file the index is only appended to; its committed
//! length and CRC are kept in the column's extent in `_txn`.

use std::ops::Range;

use crate::error::{Result, StorageError};
use crate::table::files::Mapped;

const HEADER: usize = 16;
const DIRECTORY_ENTRY: usize = 8;

/// Encodes the index blocks of `keys`, the stored keys of rows
/// `first_row..first_row + keys.len()` (-1 for NULL). Blocks hold at most
/// `u32::MAX` rows.
pub(crate) fn encode(first_row: u64, keys: &[i32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + keys.len() * 4 + 64 * DIRECTORY_ENTRY);
    let mut row = first_row;
    for chunk in keys.chunks(u32::MAX as usize) {
        encode_block(row, chunk, &mut out);
        row += chunk.len() as u64;
    }
    out
}

fn encode_block(first_row: u64, keys: &[i32], out: &mut Vec<u8>) {
    // Each row's slot in key order (row order within a key): a counting sort
    // when keys are dense enough, a stable sort otherwise.
    let order: Vec<u32> = match keys.iter().copied().max() {
        Some(max) if (max as i64) < 4 * keys.len() as i64 + 1024 => counting_order(keys, max),
        _ => {
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            order.sort_by_key(|&i| keys[i as usize]);
            order
        }
    };
    let mut directory: Vec<(i32, u32)> = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        let key = keys[i as usize].max(-1);
        match directory.last_mut() {
            Some((k, end)) if *k == key => *end = n as u32 + 1,
            _ => directory.push((key, n as u32 + 1)),
        }
    }
    out.extend_from_slice(&first_row.to_le_bytes());
    out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    for (key, end) in directory {
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    }
    for i in order {
        out.extend_from_slice(&i.to_le_bytes());
    }
}

/// Row positions ordered by key (NULL, any negative key, first), then by row.
fn counting_order(keys: &[i32], max: i32) -> Vec<u32> {
    // Slot 0 is NULL; key k is slot k + 1.
    let slot = |k: i32| (k.max(-1) + 1) as usize;
    let mut starts = vec![0u32; (max.max(-1) + 3) as usize];
    for &k in keys {
        starts[slot(k) + 1] += 1;
    }
    for s in 1..starts.len() {
        starts[s] += starts[s - 1];
    }
    let mut order = vec![0u32; keys.len()];
    for (i, &k) in keys.iter().enumerate() {
        let at = &mut starts[slot(k)];
        order[*at as usize] = i as u32;
        *at += 1;
    }
    order
}

/// Where one block lies in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    first_row: u64,
    rows: u32,
    keys: usize,
    /// Offset of the key directory.
    directory: usize,
    /// Offset of the row offsets.
    offsets: usize,
}

/// The index of one part's SYMBOL column, over its mapped committed bytes.
#[derive(Debug, Clone)]
pub struct PartIndex {
    data: Mapped,
    blocks: Vec<Block>,
    /// Rows `0..top` of the part are NULL and not stored (nor indexed).
    top: u64,
}

impl PartIndex {
    /// Parses the blocks of `data` and checks that they cover rows
    /// `top..rows` without gaps. `None` when they do not reach `rows` (an
    /// index still being built in a transaction's own view): scans then read
    /// the keys instead.
    pub(crate) fn open(
        data: Mapped,
        top: u64,
        rows: u64,
        path_hint: &std::path::Path,
    ) -> Result<Option<PartIndex>> {
        let (blocks, covered) = parse(data.as_slice(), top, path_hint)?;
        if covered < rows {
            return Ok(None);
        }
        Ok(Some(PartIndex { data, blocks, top }))
    }

    /// Rows `0..top` of the part are NULL without being indexed.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The rows in `range` (part row numbers) whose key is one of `keys`,
    /// ascending.
    pub fn rows_with(&self, keys: &[i32], range: Range<usize>) -> Vec<usize> {
        let bytes = self.data.as_slice();
        let mut out = Vec::new();
        for b in self.blocks_in(&range) {
            for &key in keys {
                let Some(entries) = find(bytes, b, key) else {
                    continue;
                };
                let within = self.within(b, entries, &range);
                // Offsets are ascending in a sound file; a damaged one (that
                // passed its CRC) still never yields a row outside `range`.
                out.extend(
                    within
                        .map(|i| b.first_row as usize + offset(bytes, b, i) as usize)
                        .filter(|r| range.contains(r)),
                );
            }
        }
        if keys.len() > 1 {
            out.sort_unstable();
        }
        out
    }

    /// Visits blocks from the newest back: for every key with a row in
    /// `range`, `visit(key, newest row of that key in the block)`; stops when
    /// `visit` returns `false`. A key may be visited again for older blocks.
    pub fn newest_rows(&self, range: Range<usize>, mut visit: impl FnMut(i32, usize) -> bool) {
        let bytes = self.data.as_slice();
        for b in self.blocks_in(&range).iter().rev() {
            for i in 0..b.keys {
                let start = if i == 0 { 0 } else { entry(bytes, b, i - 1).1 };
                let (key, end) = entry(bytes, b, i);
                let mut within = self.within(b, start as usize..end as usize, &range);
                let newest = within
                    .next_back()
                    .map(|last| b.first_row as usize + offset(bytes, b, last) as usize)
                    .filter(|r| range.contains(r));
                if let Some(row) = newest
                    && !visit(key, row)
                {
                    return;
                }
            }
        }
    }

    /// The blocks holding rows of `range` (blocks are in row order).
    fn blocks_in(&self, range: &Range<usize>) -> &[Block] {
        let (lo, hi) = (range.start as u64, range.end as u64);
        let from = self
            .blocks
            .partition_point(|b| b.first_row + u64::from(b.rows) <= lo);
        let to = self.blocks.partition_point(|b| b.first_row < hi);
        &self.blocks[from..to.max(from)]
    }

    /// The entries `entries` of block `b` whose rows lie in `range`.
    fn within(&self, b: &Block, entries: Range<usize>, range: &Range<usize>) -> Range<usize> {
        let bytes = self.data.as_slice();
        let row = |i: usize| b.first_row as usize + offset(bytes, b, i) as usize;
        let len = entries.len();
        let from = entries.start + partition_point(len, |j| row(entries.start + j) < range.start);
        let to = entries.start + partition_point(len, |j| row(entries.start + j) < range.end);
        from..to.max(from)
    }
}

/// The blocks of an index file whose first block starts at row `top`, and
/// the row after the last one they cover. Checks the structure (sizes, key
/// order, contiguous rows), not each row offset: offsets are read with bounds
/// checks.
pub(crate) fn parse(
    bytes: &[u8],
    top: u64,
    path_hint: &std::path::Path,
) -> Result<(Vec<Block>, u64)> {
    let damaged = |what: &str| StorageError::corrupted(path_hint, format!("symbol index: {what}"));
    let mut blocks = Vec::new();
    let mut at = 0usize;
    let mut next_row = top;
    while at < bytes.len() {
        let header = bytes
            .get(at..at + HEADER)
            .ok_or_else(|| damaged("a block header is cut short"))?;
        let word = |o: usize| -> [u8; 4] { header[o..o + 4].try_into().unwrap_or_default() };
        let first_row = u64::from_le_bytes(header[0..8].try_into().unwrap_or_default());
        let block_rows = u32::from_le_bytes(word(8));
        let keys = u32::from_le_bytes(word(12)) as usize;
        if first_row != next_row {
            return Err(damaged(&format!(
                "a block starts at row {first_row}, not {next_row}"
            )));
        }
        let directory = at + HEADER;
        let offsets = keys
            .checked_mul(DIRECTORY_ENTRY)
            .and_then(|d| directory.checked_add(d))
            .ok_or_else(|| damaged("a key directory is too long"))?;
        let end = (block_rows as usize)
            .checked_mul(4)
            .and_then(|o| offsets.checked_add(o))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| damaged("a block is cut short"))?;
        let block = Block {
            first_row,
            rows: block_rows,
            keys,
            directory,
            offsets,
        };
        let mut last: Option<(i32, u32)> = None;
        for i in 0..keys {
            let (key, key_end) = entry(bytes, &block, i);
            if last.is_some_and(|(k, e)| k >= key || e >= key_end) {
                return Err(damaged("keys are out of order"));
            }
            last = Some((key, key_end));
        }
        if last.map_or(0, |(_, e)| e) != block_rows {
            return Err(damaged("a block's keys do not account for its rows"));
        }
        blocks.push(block);
        next_row = first_row
            .checked_add(u64::from(block_rows))
            .ok_or_else(|| damaged("row numbers overflow"))?;
        at = end;
    }
    Ok((blocks, next_row))
}

fn entry(bytes: &[u8], b: &Block, i: usize) -> (i32, u32) {
    let at = b.directory + i * DIRECTORY_ENTRY;
    let word = |o: usize| {
        bytes
            .get(o..o + 4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4])
    };
    (
        i32::from_le_bytes(word(at)),
        u32::from_le_bytes(word(at + 4)),
    )
}

fn offset(bytes: &[u8], b: &Block, i: usize) -> u32 {
    let at = b.offsets + i * 4;
    bytes
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The entries of `key` in block `b` (binary search of its directory).
fn find(bytes: &[u8], b: &Block, key: i32) -> Option<Range<usize>> {
    let i = partition_point(b.keys, |i| entry(bytes, b, i).0 < key);
    if i >= b.keys || entry(bytes, b, i).0 != key {
        return None;
    }
    let start = if i == 0 { 0 } else { entry(bytes, b, i - 1).1 };
    Some(start as usize..entry(bytes, b, i).1 as usize)
}

/// The first `i` in `0..len` for which `before(i)` is false (`before` true
/// then false).
fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::files::MappedFiles;
    use proptest::prelude::*;

    /// Maps `bytes` as a committed index file.
    fn mapped(bytes: &[u8]) -> (tempfile::TempDir, Mapped) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sym~1.7.k");
        std::fs::write(&path, bytes).expect("write");
        let files = MappedFiles::new(4);
        let m = files
            .map(&path, bytes.len() as u64, crc32c::crc32c(bytes))
            .expect("map");
        (dir, m)
    }

    /// The index of appends `runs` (each a list of keys) after `top` NULL rows.
    fn index(top: u64, runs: &[Vec<i32>]) -> (tempfile::TempDir, Option<PartIndex>) {
        let mut bytes = Vec::new();
        let mut row = top;
        for run in runs {
            bytes.extend(encode(row, run));
            row += run.len() as u64;
        }
        let (dir, m) = mapped(&bytes);
        let index = PartIndex::open(m, top, row, Path::new("sym~1.7.k")).expect("open");
        (dir, index)
    }

    use std::path::Path;

    #[test]
    fn rows_of_keys_come_back_in_row_order_across_blocks() {
        let (_d, ix) = index(2, &[vec![3, -1, 3, 0], vec![0, 3, 5]]);
        let ix = ix.expect("covers every row");
        assert_eq!(ix.rows_with(&[3], 0..9), vec![2, 4, 7]);
        assert_eq!(ix.rows_with(&[0, 5], 0..9), vec![5, 6, 8]);
        assert_eq!(ix.rows_with(&[3], 3..7), vec![4]);
        assert_eq!(ix.rows_with(&[-1], 0..9), vec![3]);
        assert!(ix.rows_with(&[9], 0..9).is_empty());
        // A block of NULLs only.
        let (_d, ix) = index(0, &[vec![-1, -1]]);
        let ix = ix.expect("covers every row");
        assert_eq!(ix.rows_with(&[-1], 0..2), vec![0, 1]);
    }

    #[test]
    fn newest_rows_walk_blocks_from_the_newest() {
        let (_d, ix) = index(0, &[vec![1, 2, 1], vec![2, 2]]);
        let ix = ix.expect("covers every row");
        let mut seen = Vec::new();
        ix.newest_rows(0..5, |k, r| {
            seen.push((k, r));
            true
        });
        assert_eq!(seen, vec![(2, 4), (1, 2), (2, 1)]);
        let mut first = Vec::new();
        ix.newest_rows(0..4, |k, r| {
            first.push((k, r));
            false
        });
        assert_eq!(first, vec![(2, 3)]);
    }

    #[test]
    fn an_index_short_of_the_rows_is_not_used_and_damage_is_reported() {
        let bytes = encode(0, &[1, 2, 3]);
        let (_d, m) = mapped(&bytes);
        let p = Path::new("x.k");
        assert!(PartIndex::open(m.clone(), 0, 4, p).expect("open").is_none());
        let e = PartIndex::open(m, 1, 3, p).expect_err("gap");
        assert!(e.to_string().contains("starts at row 0, not 1"), "{e}");
        let (_d, cut) = mapped(&bytes[..bytes.len() - 2]);
        assert!(PartIndex::open(cut, 0, 3, p).is_err());
        let mut unordered = bytes.clone();
        unordered[16..20].copy_from_slice(&7i32.to_le_bytes());
        let (_d, m) = mapped(&unordered);
        let e = PartIndex::open(m, 0, 3, p).expect_err("order");
        assert!(e.to_string().contains("out of order"), "{e}");
    }

    proptest! {
        /// Whatever the appends, the index finds exactly the rows a scan of
        /// the keys finds, and each key's newest row.
        #[test]
        fn the_index_agrees_with_the_keys(
            top in 0u64..5,
            runs in prop::collection::vec(prop::collection::vec(-1i32..40, 0..60), 1..5),
            wanted in prop::collection::vec(-1i32..45, 1..4),
            from in 0usize..50,
            len in 0usize..300,
        ) {
            let mut keys: Vec<i32> = vec![-1; top as usize];
            for r in &runs {
                keys.extend(r);
            }
            let (_d, ix) = index(top, &runs);
            let ix = ix.expect("covers every row");
            let end = (from + len).min(keys.len());
            let range = from.min(end)..end;
            let mut wanted = wanted;
            wanted.sort_unstable();
            wanted.dedup();
            let expected: Vec<usize> = range
                .clone()
                .filter(|&r| r as u64 >= top && wanted.contains(&keys[r]))
                .collect();
            prop_assert_eq!(ix.rows_with(&wanted, range.clone()), expected);
            let mut newest = std::collections::BTreeMap::new();
            ix.newest_rows(range.clone(), |k, r| {
                newest.entry(k).or_insert(r);
                true
            });
            let mut expected = std::collections::BTreeMap::new();
            for r in range.clone().rev().filter(|&r| r as u64 >= top) {
                expected.entry(keys[r]).or_insert(r);
            }
            prop_assert_eq!(newest, expected);
        }
    }
}
