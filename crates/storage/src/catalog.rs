//! The set of tables as of one commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::name::name_key;
use crate::registry::{Registry, RegistryEntry};
use crate::table::TableState;
use crate::view::ViewDef;

#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    /// The last commit included.
    pub(crate) seq: u64,
    /// Counts every change of the state, commits and applies of the write buffer
    /// alike (an apply changes the files but not `seq`): snapshots pin versions,
    /// and garbage is kept until no pinned version can see it.
    pub(crate) version: u64,
    /// The last commit that created, dropped or renamed a table.
    pub(crate) registry_seq: u64,
    pub(crate) next_table_id: u64,
    pub(crate) tables: BTreeMap<u64, Arc<TableState>>,
    /// Shared between versions (every commit clones the catalog; only table
    /// DDL changes the names).
    names: Arc<HashMap<String, u64>>,
    /// The views, by name key; their names are distinct from the tables'.
    views: Arc<BTreeMap<String, Arc<ViewDef>>>,
}

impl Catalog {
    pub(crate) fn table(&self, name: &str) -> Option<&Arc<TableState>> {
        self.names
            .get(&name_key(name))
            .and_then(|id| self.tables.get(id))
    }

    pub(crate) fn insert(&mut self, t: Arc<TableState>) {
        Arc::make_mut(&mut self.names).insert(name_key(&t.name), t.id);
        self.tables.insert(t.id, t);
    }

    /// Adds `t`, created by commit `seq`.
    pub(crate) fn add_created(&mut self, t: TableState, seq: u64) {
        self.next_table_id = self.next_table_id.max(t.id + 1);
        self.registry_seq = seq;
        self.insert(Arc::new(t));
    }

    pub(crate) fn view(&self, name: &str) -> Option<&Arc<ViewDef>> {
        self.views.get(&name_key(name))
    }

    pub(crate) fn views(&self) -> impl Iterator<Item = &Arc<ViewDef>> {
        self.views.values()
    }

    /// Adds or replaces view `v`, changed by commit `seq`.
    pub(crate) fn put_view(&mut self, v: ViewDef, seq: u64) {
        self.next_table_id = self.next_table_id.max(v.id + 1);
        self.registry_seq = seq;
        Arc::make_mut(&mut self.views).insert(name_key(&v.name), Arc::new(v));
    }

    /// Removes the view with id `id`, dropped by commit `seq`.
    pub(crate) fn remove_view(&mut self, id: u64, seq: u64) -> Option<Arc<ViewDef>> {
        let key = self
            .views
            .iter()
            .find(|(_, v)| v.id == id)
            .map(|(k, _)| k.clone())?;
        self.registry_seq = seq;
        Arc::make_mut(&mut self.views).remove(&key)
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<Arc<TableState>> {
        let t = self.tables.remove(&id)?;
        Arc::make_mut(&mut self.names).remove(&name_key(&t.name));
        Some(t)
    }

    /// The newest commit that is wholly in the column files: every commit up to
    /// it, in every table. Commits after it have rows in the write buffer (or
    /// touched no table still buffered): recovery replays the WAL from here.
    pub(crate) fn applied_seq(&self) -> u64 {
        self.tables
            .values()
            .filter_map(|t| t.buffer.min_seq())
            .map(|s| s.saturating_sub(1))
            .min()
            .unwrap_or(self.seq)
            .min(self.seq)
    }

    /// Rows and bytes in the write buffer, over all tables.
    pub(crate) fn buffered_rows(&self) -> u64 {
        self.tables.values().map(|t| t.buffer.rows()).sum()
    }

    /// The tables with buffered rows.
    pub(crate) fn buffered_table_ids(&self) -> Vec<u64> {
        self.tables
            .values()
            .filter(|t| !t.buffer.is_empty())
            .map(|t| t.id)
            .collect()
    }

    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.tables.values().map(|t| t.buffer.bytes()).sum()
    }

    /// The registry as `_tables` records it: the tables of this state, and as
    /// its `seq` the applied commit (see [`Catalog::applied_seq`]). Every table
    /// creation, drop and rename is at or before it, since such commits move
    /// all buffered rows to the files first.
    pub(crate) fn registry(&self) -> Registry {
        Registry {
            seq: self.applied_seq(),
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
            views: self.views.values().map(|v| (**v).clone()).collect(),
        }
    }
}
