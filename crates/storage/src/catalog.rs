//! The set of tables as of one commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::name::name_key;
use crate::registry::{Registry, RegistryEntry};
use crate::table::TableState;

#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    /// The last commit included.
    pub(crate) seq: u64,
    /// The last commit that created, dropped or renamed a table.
    pub(crate) registry_seq: u64,
    pub(crate) next_table_id: u64,
    pub(crate) tables: BTreeMap<u64, Arc<TableState>>,
    names: HashMap<String, u64>,
}

impl Catalog {
    pub(crate) fn table(&self, name: &str) -> Option<&Arc<TableState>> {
        self.names
            .get(&name_key(name))
            .and_then(|id| self.tables.get(id))
    }

    pub(crate) fn insert(&mut self, t: Arc<TableState>) {
        self.names.insert(name_key(&t.name), t.id);
        self.tables.insert(t.id, t);
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<Arc<TableState>> {
        let t = self.tables.remove(&id)?;
        self.names.remove(&name_key(&t.name));
        Some(t)
    }

    pub(crate) fn registry(&self) -> Registry {
        Registry {
            seq: self.seq,
            next_table_id: self.next_table_id,
            tables: self
                .tables
                .values()
                .map(|t| RegistryEntry {
                    id: t.id,
                    name: t.name.clone(),
                    dir: t.dir_name.clone(),
                })
                .collect(),
        }
    }
}
