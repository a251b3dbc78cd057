//! `db/_tables`: the table registry (name, id, directory, kind).
//!
//! Body: `seq u64` (the commit this registry is as of) | `next_table_id u64` |
//! `count u32` then per entry: `id u64 | name str | dir str | kind u8`; kind 1 is a
//! table, kind 2 a view (its `dir` empty), followed by `definition str | seq u64`.
//! Framed with magic `TMTABLES`. Replaced atomically.

use std::path::Path;

use crate::codec::{Decoder, Encoder, frame, unframe};
use crate::error::{Result, StorageError};
use crate::view::ViewDef;

pub(crate) const REGISTRY_MAGIC: &[u8; 8] = b"TMTABLES";
const KIND_TABLE: u8 = 1;
const KIND_VIEW: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryEntry {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// Directory name under `db/`. Fixed at creation: a rename changes `name` only.
    pub(crate) dir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Registry {
    pub(crate) seq: u64,
    pub(crate) next_table_id: u64,
    pub(crate) tables: Vec<RegistryEntry>,
    pub(crate) views: Vec<ViewDef>,
}

impl Registry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u64(self.seq);
        e.u64(self.next_table_id);
        e.u32((self.tables.len() + self.views.len()) as u32);
        for t in &self.tables {
            e.u64(t.id);
            e.str(&t.name);
            e.str(&t.dir);
            e.u8(KIND_TABLE);
        }
        for v in &self.views {
            e.u64(v.id);
            e.str(&v.name);
            e.str("");
            e.u8(KIND_VIEW);
            e.str(&v.definition);
            e.u64(v.seq);
        }
        frame(REGISTRY_MAGIC, &e.into_inner())
    }

    pub(crate) fn decode(data: &[u8], path: &Path) -> Result<Self> {
        let body = unframe(REGISTRY_MAGIC, data, path)?;
        let mut d = Decoder::new(body, path);
        let seq = d.u64()?;
        let next_table_id = d.u64()?;
        let n = d.count(17)?;
        let mut tables = Vec::with_capacity(n);
        let mut views = Vec::new();
        for _ in 0..n {
            let id = d.u64()?;
            let name = d.str()?.to_string();
            let dir = d.str()?.to_string();
            let kind = d.u8()?;
            if kind == KIND_VIEW {
                let definition = d.str()?.to_string();
                let seq = d.u64()?;
                views.push(ViewDef {
                    id,
                    name,
                    definition,
                    seq,
                });
                continue;
            }
            if kind != KIND_TABLE {
                return Err(d.error(format!("unknown table kind {kind}")));
            }
            if dir.is_empty() || dir.contains('/') || dir.starts_with('.') {
                return Err(StorageError::corrupted(
                    path,
                    format!("unsafe table directory name {dir:?}"),
                ));
            }
            tables.push(RegistryEntry { id, name, dir });
        }
        d.finish()?;
        Ok(Registry {
            seq,
            next_table_id,
            tables,
            views,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_roundtrip_keeps_views_and_refuses_unsafe_dirs() {
        let r = Registry {
            seq: 5,
            next_table_id: 3,
            tables: vec![RegistryEntry {
                id: 2,
                name: "Trades".into(),
                dir: "trades~2".into(),
            }],
            views: vec![ViewDef {
                id: 3,
                name: "Hourly".into(),
                definition: "SELECT ts, avg(price) FROM trades SAMPLE BY 1h".into(),
                seq: 4,
            }],
        };
        let p = Path::new("_tables");
        assert_eq!(Registry::decode(&r.encode(), p).expect("roundtrip"), r);
        let mut bad = r.clone();
        bad.tables[0].dir = "../etc".into();
        assert!(Registry::decode(&bad.encode(), p).is_err());
    }
}
