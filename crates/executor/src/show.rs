//! The SHOW statements QuestDB users run: `SHOW TABLES`, `SHOW COLUMNS FROM t`
//! (the rows of `table_columns('t')`), `SHOW PARTITIONS FROM t` (those of
//! `table_partitions('t')`) and `SHOW CREATE TABLE t` (the DDL that makes the
//! table again, in Tidemark's SQL), answered from the session's snapshot, and
//! `SHOW PARAMETERS` (the server's configuration, as the server gave it).

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use tidemark_storage::{PartitionBy, Snapshot, TableMeta};

use crate::error::{ExecError, Result, sqlstate};
use crate::rewrite::quote_ident;
use crate::session::Output;

/// The output of `statement` if it is one of the SHOW statements above.
pub(crate) fn run(statement: &ast::Statement, snapshot: &Snapshot) -> Option<Result<Output>> {
    Some(match statement {
        ast::Statement::ShowTables { .. } => tables(snapshot),
        ast::Statement::ShowColumns { show_options, .. } => {
            match show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.as_ref())
            {
                Some(name) => columns(snapshot, name),
                None => Err(ExecError::new(
                    sqlstate::SYNTAX_ERROR,
                    "SHOW COLUMNS needs a table: SHOW COLUMNS FROM t",
                )),
            }
        }
        ast::Statement::ShowCreate {
            obj_type: ast::ShowCreateObject::Table,
            obj_name,
        } => create_table(snapshot, obj_name),
        _ => return None,
    })
}

/// QuestDB's `SHOW PARTITIONS FROM t` (which the grammar reads as SHOW of a
/// setting named `partitions from t`): the rows of `table_partitions('t')`.
pub(crate) fn partitions(variable: &[ast::Ident], snapshot: &Snapshot) -> Option<Result<Output>> {
    let [first, from, name @ ..] = variable else {
        return None;
    };
    if !first.value.eq_ignore_ascii_case("partitions") || !from.value.eq_ignore_ascii_case("from") {
        return None;
    }
    let name = ast::ObjectName::from(name.to_vec());
    Some(table(snapshot, &name).and_then(|t| {
        let batch = crate::system::partitions_batch(&t)?;
        Ok(Output::rows(batch.schema(), vec![batch]))
    }))
}

/// One key of the server's configuration as `SHOW PARAMETERS` lists it, with
/// QuestDB's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerParameter {
    /// `section.key`, as in `conf/server.toml`.
    pub property_path: String,
    /// The environment variable that overrides it (`TIDEMARK_<SECTION>_<KEY>`).
    pub env_var_name: String,
    /// The value in force; `None` when unset. A secret's value is never shown.
    pub value: Option<String>,
    /// Where the value came from: `default`, `conf`, `env` or `command line`.
    pub value_source: &'static str,
    /// A password or secret key (a value set is shown as `****`).
    pub sensitive: bool,
}

/// `SHOW PARAMETERS`: the server's configuration, one row a key (none for a
/// session the server did not give its configuration, as in embedded use).
pub(crate) fn parameters(
    variable: &[ast::Ident],
    parameters: &[ServerParameter],
) -> Option<Result<Output>> {
    let [word] = variable else {
        return None;
    };
    if !word.value.eq_ignore_ascii_case("parameters") {
        return None;
    }
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let schema = Arc::new(Schema::new(vec![
        text("property_path", false),
        text("env_var_name", false),
        text("value", true),
        text("value_source", false),
        Field::new("sensitive", DataType::Boolean, false),
        // QuestDB's column: no key is reloaded while the server runs.
        Field::new("reloadable", DataType::Boolean, false),
    ]));
    let value = |p: &ServerParameter| {
        if p.sensitive && p.value.as_deref().is_some_and(|v| !v.is_empty()) {
            Some("****".to_string())
        } else {
            p.value.clone()
        }
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                parameters.iter().map(|p| p.property_path.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                parameters.iter().map(|p| p.env_var_name.as_str()),
            )),
            Arc::new(parameters.iter().map(value).collect::<StringArray>()),
            Arc::new(StringArray::from_iter_values(
                parameters.iter().map(|p| p.value_source),
            )),
            Arc::new(BooleanArray::from_iter(
                parameters.iter().map(|p| Some(p.sensitive)),
            )),
            Arc::new(BooleanArray::from(vec![false; parameters.len()])),
        ],
    );
    Some(
        batch
            .map(|b| Output::rows(schema, vec![b]))
            .map_err(Into::into),
    )
}

fn one_text_column(name: &str, values: Vec<String>) -> Result<Output> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from_iter_values(values))],
    )?;
    Ok(Output::rows(schema, vec![batch]))
}

fn tables(snapshot: &Snapshot) -> Result<Output> {
    let mut names: Vec<String> = snapshot
        .tables()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    names.sort();
    one_text_column("table_name", names)
}

fn table(snapshot: &Snapshot, name: &ast::ObjectName) -> Result<tidemark_storage::TableReader> {
    let name = crate::ddl::object_name(name)?;
    snapshot.table(&name).ok_or_else(|| {
        ExecError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )
    })
}

fn columns(snapshot: &Snapshot, name: &ast::ObjectName) -> Result<Output> {
    let batch = crate::system::columns_batch(&table(snapshot, name)?)?;
    Ok(Output::rows(batch.schema(), vec![batch]))
}

fn create_table(snapshot: &Snapshot, name: &ast::ObjectName) -> Result<Output> {
    let table = table(snapshot, name)?;
    one_text_column("ddl", vec![ddl(table.name(), table.meta())])
}

/// The CREATE TABLE statement for a table of this name and schema.
pub(crate) fn ddl(name: &str, meta: &TableMeta) -> String {
    let designated = meta.timestamp_column;
    let columns: Vec<String> = meta
        .columns
        .iter()
        .map(|c| {
            // The designated timestamp is NOT NULL implicitly.
            let not_null = if c.not_null && designated != Some(c.id) {
                " NOT NULL"
            } else {
                ""
            };
            // QuestDB's spelling of a symbol index (its name is not part of it).
            let index = if c.index.is_some() { " INDEX" } else { "" };
            format!(
                "{} {}{index}{not_null}",
                quote_ident(&c.name),
                c.column_type
            )
        })
        .collect();
    let mut out = format!(
        "CREATE TABLE {} ({})",
        quote_ident(name),
        columns.join(", ")
    );
    if let Some(ts) = meta.timestamp_name() {
        out.push_str(&format!(" TIMESTAMP({})", quote_ident(ts)));
        if meta.partition_by != PartitionBy::None {
            out.push_str(&format!(" PARTITION BY {}", meta.partition_by.name()));
        }
    }
    if let Some(ttl) = meta.ttl {
        out.push_str(&format!(" TTL {ttl}"));
    }
    if !meta.dedup_keys.is_empty() {
        let keys: Vec<String> = meta
            .dedup_key_indexes()
            .into_iter()
            .map(|i| quote_ident(&meta.columns[i].name))
            .collect();
        out.push_str(&format!(" DEDUP UPSERT KEYS({})", keys.join(", ")));
    }
    out
}
