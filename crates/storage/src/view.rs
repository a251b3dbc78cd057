//! Views: a name and the text of the query that defines it. Storage keeps the
//! text opaque (it knows no SQL): the executor parses and plans it whenever a
//! statement reads the view. Views live in the registry (`_tables`, kind 2)
//! beside the tables and share their names, so checkpoint cuts, restore and
//! recovery carry them as they carry table creation and drop.

/// A view as of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewDef {
    /// Shares the numbering of tables (`next_table_id`), so a view and a table
    /// never have the same id.
    pub id: u64,
    pub name: String,
    /// The defining query, as the user wrote it.
    pub definition: String,
    /// The commit that created or last replaced it.
    pub seq: u64,
}

/// How `CREATE VIEW` treats an existing view of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMode {
    /// `CREATE VIEW`: the name must be free.
    Create,
    /// `CREATE VIEW IF NOT EXISTS`: an existing view is kept as it is.
    IfNotExists,
    /// `CREATE OR REPLACE VIEW`: an existing view gets the new definition.
    OrReplace,
    /// `ALTER VIEW ... AS`: the view must exist, and gets the new definition.
    Alter,
}
