//! `CREATE INDEX` and `DROP INDEX` (PostgreSQL's syntax) for symbol indexes:
//! one SYMBOL column per index, as QuestDB's `ALTER COLUMN c ADD INDEX`.
//! What a symbol index cannot be (several columns, expressions, UNIQUE,
//! partial, another access method) is refused naming why.

use datafusion::sql::sqlparser::ast;
use tidemark_parser::ReindexTarget;
use tidemark_storage::{IndexTarget, Request, Snapshot};

use crate::ddl::object_name;
use crate::error::{ExecError, Result, sqlstate};

fn not_supported(what: impl std::fmt::Display) -> ExecError {
    ExecError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!(
            "{what} is not supported: Tidemark's indexes are symbol indexes, on one SYMBOL \
             column each (time ranges on the designated timestamp are pruned without an index)"
        ),
    )
}

/// `CREATE INDEX [IF NOT EXISTS] [name] ON t [USING btree|hash] (sym)`.
pub(crate) fn create_index(c: &ast::CreateIndex) -> Result<Request> {
    if c.unique {
        return Err(not_supported("CREATE UNIQUE INDEX"));
    }
    if c.predicate.is_some() {
        return Err(not_supported("a partial index (CREATE INDEX ... WHERE)"));
    }
    if !c.include.is_empty() {
        return Err(not_supported("CREATE INDEX ... INCLUDE"));
    }
    // The default access method, and the two whose lookups (equality) a
    // symbol index answers, are accepted: scripts written for PostgreSQL
    // name them.
    match &c.using {
        None | Some(ast::IndexType::BTree) | Some(ast::IndexType::Hash) => {}
        Some(other) => return Err(not_supported(format!("CREATE INDEX ... USING {other}"))),
    }
    let [column] = c.columns.as_slice() else {
        return Err(not_supported(format!(
            "an index on {} columns",
            c.columns.len()
        )));
    };
    let ast::Expr::Identifier(ident) = &column.column.expr else {
        return Err(not_supported(format!(
            "an index on the expression {}",
            column.column.expr
        )));
    };
    let name = match &c.name {
        Some(n) => Some(object_name(n)?),
        None => None,
    };
    Ok(Request::AddIndex {
        table: object_name(&c.table_name)?,
        column: ident.value.clone(),
        name,
        if_not_exists: c.if_not_exists,
    })
}

/// `DROP INDEX [IF EXISTS] name [, ...]`.
pub(crate) fn drop_index(names: &[ast::ObjectName], if_exists: bool) -> Result<Vec<Request>> {
    names
        .iter()
        .map(|n| {
            Ok(Request::DropIndex {
                target: IndexTarget::Name(object_name(n)?),
                if_exists,
            })
        })
        .collect()
}

/// `REINDEX`: each index it names dropped and built again from the column's
/// stored keys, under its own name, in one commit (readers keep the index of
/// their snapshot meanwhile). A table without indexes has nothing to rebuild.
pub(crate) fn reindex(snapshot: &Snapshot, target: ReindexTarget) -> Result<Vec<Request>> {
    let (table, columns) = match target {
        ReindexTarget::Table { table, column } => {
            let t = snapshot.table(&table).ok_or_else(|| {
                ExecError::new(
                    sqlstate::UNDEFINED_TABLE,
                    format!("relation \"{table}\" does not exist"),
                )
            })?;
            let meta = t.meta();
            let indexed: Vec<(String, String)> = meta
                .columns
                .iter()
                .filter(|c| {
                    column
                        .as_ref()
                        .is_none_or(|wanted| c.name.eq_ignore_ascii_case(wanted))
                })
                .filter_map(|c| c.index.as_ref().map(|i| (c.name.clone(), i.name.clone())))
                .collect();
            if let (Some(column), []) = (&column, indexed.as_slice()) {
                return Err(ExecError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("column \"{column}\" of table \"{table}\" has no index"),
                ));
            }
            (t.name().to_string(), indexed)
        }
        ReindexTarget::Index(name) => snapshot
            .tables()
            .iter()
            .find_map(|t| {
                t.meta().columns.iter().find_map(|c| {
                    c.index
                        .as_ref()
                        .filter(|i| i.name.eq_ignore_ascii_case(&name))
                        .map(|i| (t.name().to_string(), vec![(c.name.clone(), i.name.clone())]))
                })
            })
            .ok_or_else(|| {
                ExecError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("index \"{name}\" does not exist"),
                )
            })?,
    };
    Ok(columns
        .into_iter()
        .flat_map(|(column, index)| {
            [
                Request::DropIndex {
                    target: IndexTarget::Column {
                        table: table.clone(),
                        column: column.clone(),
                    },
                    if_exists: false,
                },
                Request::AddIndex {
                    table: table.clone(),
                    column,
                    name: Some(index),
                    if_not_exists: false,
                },
            ]
        })
        .collect())
}
