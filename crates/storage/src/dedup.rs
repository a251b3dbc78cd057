//! `DEDUP UPSERT KEYS`: rows with equal keys replace one another, the last
//! written winning.
//!
//! The keys always include the designated timestamp, so rows that can be
//! duplicates have equal timestamps and sit next to each other once rows are
//! sorted by it. Dedup is therefore a pass over sorted rows that looks only
//! inside runs of equal timestamps, and it is applied where rows meet in
//! timestamp order: the apply writing buffered rows into the files
//! (`ops::files::write_run`), and readers merging files with buffered rows
//! (`snapshot`). Sorted inputs are stable (older rows first at equal
//! timestamps), so "last" is "newest".

use std::borrow::Borrow;
use std::collections::HashMap;

use crate::batch::{Column, Values};
use crate::table::meta::TableMeta;
use crate::types::ColumnType;

/// One upsert key's values for the rows being deduplicated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyColumn<'a> {
    pub(crate) column: &'a Column,
    /// SYMBOL values as dictionary keys: a negative key is NULL.
    pub(crate) symbol_keys: bool,
}

/// The positions in `meta.columns` of the upsert keys other than the
/// designated timestamp (equal timestamps are what dedup groups by).
pub(crate) fn key_indexes(meta: &TableMeta) -> Vec<usize> {
    let ts = meta.timestamp_index();
    meta.dedup_key_indexes()
        .into_iter()
        .filter(|i| Some(*i) != ts)
        .collect()
}

/// The upsert keys of `meta` other than the designated timestamp, taken from
/// `columns` (one per table column, in `meta` order, SYMBOL as dictionary keys).
pub(crate) fn key_columns<'a, C: Borrow<Column>>(
    meta: &TableMeta,
    columns: &'a [C],
) -> Vec<KeyColumn<'a>> {
    key_indexes(meta)
        .into_iter()
        .filter_map(|i| {
            Some(KeyColumn {
                column: columns.get(i)?.borrow(),
                symbol_keys: meta.columns[i].column_type == ColumnType::Symbol,
            })
        })
        .collect()
}

/// The rows to keep of rows sorted by timestamp `ts`: of rows with equal
/// timestamps and equal `keys` (the upsert keys besides the timestamp), only
/// the last. `None` when every row stays.
pub(crate) fn kept_rows(ts: &[i64], keys: &[KeyColumn<'_>]) -> Option<Vec<u32>> {
    let mut keep: Option<Vec<u32>> = None;
    let mut i = 0;
    while i < ts.len() {
        let j = i + ts[i..].partition_point(|&t| t == ts[i]);
        if j - i == 1 {
            if let Some(k) = keep.as_mut() {
                k.push(i as u32);
            }
            i = j;
            continue;
        }
        let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(j - i);
        for row in i..j {
            let mut bytes = Vec::new();
            for k in keys {
                push_key(k, row, &mut bytes);
            }
            encoded.push(bytes);
        }
        let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(j - i);
        for (n, bytes) in encoded.iter().enumerate() {
            last.insert(bytes.as_slice(), n);
        }
        let survivors = last.len();
        if survivors < j - i && keep.is_none() {
            keep = Some((0..i as u32).collect());
        }
        if let Some(k) = keep.as_mut() {
            k.extend(
                (0..j - i)
                    .filter(|n| last.get(encoded[*n].as_slice()) == Some(n))
                    .map(|n| (i + n) as u32),
            );
        }
        i = j;
    }
    keep
}

/// Appends row `row`'s value to `out` so that two rows' bytes are equal exactly
/// when their values are (NULL equal to NULL, as QuestDB's dedup treats it).
fn push_key(key: &KeyColumn<'_>, row: usize, out: &mut Vec<u8>) {
    let c = key.column;
    let null =
        c.is_null(row) || (key.symbol_keys && matches!(&c.values, Values::Int(v) if v[row] < 0));
    if null {
        out.push(0);
        return;
    }
    out.push(1);
    match &c.values {
        Values::Boolean(v) => out.push(u8::from(v[row])),
        Values::SmallInt(v) => out.extend_from_slice(&v[row].to_le_bytes()),
        Values::Int(v) | Values::Date(v) => out.extend_from_slice(&v[row].to_le_bytes()),
        Values::BigInt(v) | Values::Timestamp(v) => out.extend_from_slice(&v[row].to_le_bytes()),
        Values::Real(v) => out.extend_from_slice(&v[row].to_bits().to_le_bytes()),
        Values::Double(v) => out.extend_from_slice(&v[row].to_bits().to_le_bytes()),
        Values::Uuid(v) => out.extend_from_slice(&v[row].to_le_bytes()),
        Values::Decimal(v) => out.extend_from_slice(&v[row].to_le_bytes()),
        Values::Varchar(d) | Values::Symbol(d) | Values::Binary(d) => {
            let b = d.get(row);
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(column: &Column) -> KeyColumn<'_> {
        KeyColumn {
            column,
            symbol_keys: false,
        }
    }

    #[test]
    fn last_row_of_equal_keys_wins_within_equal_timestamps() {
        let ts = [1, 1, 1, 2, 3, 3];
        let sym = Column::varchars(&["a", "b", "a", "a", "b", "b"]);
        assert_eq!(kept_rows(&ts, &[key(&sym)]), Some(vec![1, 2, 3, 5]));
        // Different timestamps never collide, whatever the keys.
        assert_eq!(kept_rows(&[1, 2, 3], &[key(&sym)]), None);
        // With the timestamp as the only key, the last row of each timestamp stays.
        assert_eq!(kept_rows(&ts, &[]), Some(vec![2, 3, 5]));
    }

    #[test]
    fn nulls_are_equal_to_each_other_and_negative_symbol_keys_are_null() {
        let ts = [5, 5, 5];
        let v = Column::with_nulls(Values::Int(vec![-1, 7, 0]), vec![false, false, true]);
        let as_symbol = KeyColumn {
            column: &v,
            symbol_keys: true,
        };
        assert_eq!(kept_rows(&ts, &[as_symbol]), Some(vec![1, 2]));
        assert_eq!(kept_rows(&ts, &[key(&v)]), None);
    }

    proptest! {
        /// Against a model: the kept rows are, per (timestamp, key), the last one.
        #[test]
        fn keeps_exactly_the_last_row_per_key(
            mut rows in prop::collection::vec((0i64..6, 0i64..3), 0..60)
        ) {
            rows.sort_by_key(|r| r.0);
            let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let k = Column::bigints(rows.iter().map(|r| r.1).collect());
            let kept = kept_rows(&ts, &[key(&k)])
                .unwrap_or_else(|| (0..rows.len() as u32).collect());
            let mut model = std::collections::BTreeMap::new();
            for (i, r) in rows.iter().enumerate() {
                model.insert(*r, i as u32);
            }
            let mut expected: Vec<u32> = model.into_values().collect();
            expected.sort();
            prop_assert_eq!(kept, expected);
        }
    }
}
