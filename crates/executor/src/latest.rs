//! `LATEST ON ts PARTITION BY k`: the query's table is replaced by the rows that
//! are last (by `ts`) in their `k` group among those the WHERE clause keeps:
//!
//! ```sql
//! SELECT <items> FROM (
//!   SELECT <columns> FROM (
//!     SELECT <columns>, row_number() OVER (PARTITION BY k ORDER BY ts DESC) AS rn
//!     FROM t AS <alias> WHERE <condition>) WHERE rn = 1
//! ) AS <alias> [ORDER BY ...] [LIMIT ...]
//! ```

use datafusion::sql::sqlparser::ast;
use tidemark_parser::LatestOn;

use crate::ddl::object_name;
use crate::error::{ExecError, Result, sqlstate};
use crate::rewrite::{parse_query, quote_ident};
use crate::session::{Output, Session};

pub(crate) async fn run(
    session: &Session,
    mut query: Box<ast::Query>,
    latest: LatestOn,
) -> Result<Output> {
    let unsupported = |what: &str| {
        ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("LATEST ON {what} is not supported"),
        )
    };
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return Err(unsupported("on a set operation"));
    };
    let [ast::TableWithJoins { relation, joins }] = select.from.as_mut_slice() else {
        return Err(unsupported("over several tables"));
    };
    if !joins.is_empty() {
        return Err(unsupported("with joins"));
    }
    let ast::TableFactor::Table { name, alias, .. } = relation else {
        return Err(unsupported("over a subquery"));
    };
    let table = object_name(name)?;
    let reader = session.table(&table)?;
    let meta = reader.meta();
    let column = |c: &str| {
        meta.column_index(c)
            .map(|i| quote_ident(&meta.columns[i].name))
            .ok_or_else(|| {
                ExecError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!(
                        "column \"{c}\" of relation \"{}\" does not exist",
                        reader.name()
                    ),
                )
            })
    };
    let ts = column(&latest.timestamp)?;
    let keys = latest
        .partition_by
        .iter()
        .map(|k| column(k))
        .collect::<Result<Vec<_>>>()?;
    let columns: Vec<String> = meta.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let alias_name = alias
        .as_ref()
        .map(|a| a.name.value.clone())
        .unwrap_or_else(|| reader.name().to_string());
    let condition = select
        .selection
        .take()
        .map(|c| format!(" WHERE {c}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {cols} FROM (SELECT {cols}, row_number() OVER (PARTITION BY {keys} ORDER BY {ts} DESC) AS \"__tidemark_rn\" \
         FROM {table} AS {alias}{condition}) AS \"__tidemark_latest\" WHERE \"__tidemark_rn\" = 1",
        cols = columns.join(", "),
        keys = keys.join(", "),
        table = quote_ident(reader.name()),
        alias = quote_ident(&alias_name),
    );
    let inner = parse_query(&sql)?;
    *relation = ast::TableFactor::Derived {
        lateral: false,
        subquery: inner,
        alias: Some(ast::TableAlias {
            explicit: true,
            name: ast::Ident::with_quote('"', alias_name),
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    };
    let (schema, batches) = session.run_query(ast::Statement::Query(query)).await?;
    Ok(Output::Rows { schema, batches })
}
