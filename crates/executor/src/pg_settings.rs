//! `pg_catalog.pg_settings` as PostgreSQL shows it: one row per setting of
//! this session (what `SHOW ALL` lists), plus the server's fixed limits that
//! drivers read from it (pgJDBC's `DatabaseMetaData` asks for
//! `max_index_keys`). `datafusion-pg-catalog`'s own table is empty; catalog
//! queries read this one instead (see `catalog_rewrite`), made from the
//! session's settings as the statement starts.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{Result as DfResult, plan_err};
use datafusion::datasource::MemTable;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::Expr;

use crate::settings::Settings;

/// The table function catalog queries of `pg_settings` read.
pub(crate) const FUNCTION: &str = "tidemark_pg_settings";

/// Server limits PostgreSQL reports in `pg_settings` that are not session settings.
const FIXED: &[(&str, &str)] = &[
    ("max_index_keys", "32"),
    ("max_function_args", "100"),
    ("block_size", "8192"),
];

/// Registers [`FUNCTION`] in `ctx` over a copy of `settings`.
pub(crate) fn register(ctx: &SessionContext, settings: &Settings) {
    let mut rows = settings.all();
    rows.extend(FIXED.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    ctx.register_udtf(FUNCTION, Arc::new(SettingsTable { rows }));
}

#[derive(Debug)]
struct SettingsTable {
    rows: Vec<(String, String)>,
}

impl TableFunctionImpl for SettingsTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("{FUNCTION}() takes no arguments");
        }
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Arc::new(Schema::new(vec![
            text("name"),
            text("setting"),
            text("unit"),
            text("category"),
            text("short_desc"),
            text("context"),
            text("vartype"),
            text("source"),
            text("boot_val"),
            text("reset_val"),
            Field::new("pending_restart", DataType::Boolean, true),
        ]));
        let n = self.rows.len();
        let names = StringArray::from_iter_values(self.rows.iter().map(|(k, _)| k));
        let values = StringArray::from_iter_values(self.rows.iter().map(|(_, v)| v));
        let nulls = || Arc::new(StringArray::new_null(n)) as ArrayRef;
        let constant = |s: &str| Arc::new(StringArray::from(vec![s; n])) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(names),
            Arc::new(values.clone()),
            nulls(),
            nulls(),
            nulls(),
            constant("user"),
            constant("string"),
            constant("session"),
            nulls(),
            Arc::new(values),
            Arc::new(BooleanArray::from(vec![false; n])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_and_server_limits_are_rows() {
        let ctx = SessionContext::new();
        let mut settings = Settings::default();
        settings
            .set("application_name", "dbeaver")
            .expect("settable");
        register(&ctx, &settings);
        let batches = ctx
            .sql("SELECT setting FROM tidemark_pg_settings() WHERE name IN ('application_name', 'max_index_keys') ORDER BY name")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let column = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text");
        assert_eq!(
            column.iter().flatten().collect::<Vec<_>>(),
            ["dbeaver", "32"]
        );
    }
}
