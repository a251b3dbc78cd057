//! The PostgreSQL types of table columns where the Arrow type does not tell
//! them: JSON and JSONB columns are Arrow text, UUID columns 16-byte binary,
//! which `datafusion-pg-catalog` lists as `text` and `bytea`, and `DOUBLE[]`
//! columns lists, which it lists as `text`. Catalog queries
//! read `pg_attribute` and `information_schema.columns` through views
//! (`catalog_rewrite.rs`) that ask the functions here, which look the column up
//! in the statement's snapshot:
//! - `tidemark_attribute_type(relname, attname, atttypid)`: the type OID;
//! - `tidemark_column_type_name(table, column, fallback, udt)`: the SQL name
//!   (`udt` false) or internal name (`udt` true), `fallback` otherwise;
//! - `tidemark_attribute_typmod(relname, attname, atttypmod)`: the type modifier,
//!   which says a NUMERIC column's precision and scale (`format_type`, JDBC's
//!   column size and decimal digits read it).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use tidemark_storage::{ColumnType, Snapshot};

/// `(oid, SQL name, udt name)` of the types the Arrow type does not tell.
fn marked_type(t: ColumnType) -> Option<(i32, &'static str, &'static str)> {
    match t {
        ColumnType::Json => Some((114, "json", "json")),
        ColumnType::Jsonb => Some((3802, "jsonb", "jsonb")),
        ColumnType::Uuid => Some((2950, "uuid", "uuid")),
        // `double precision[]`, however many dimensions (PostgreSQL's array
        // types do not count them); information_schema says ARRAY.
        ColumnType::DoubleArray { .. } => Some((1022, "ARRAY", "_float8")),
        _ => None,
    }
}

fn column_type(snapshot: &Snapshot, table: &str, column: &str) -> Option<ColumnType> {
    let reader = snapshot.table(table)?;
    let meta = reader.meta();
    meta.column_index(column)
        .map(|i| meta.columns[i].column_type)
}

/// The type of the table column named in row `i` of `tables` and `columns`.
fn type_at(
    snapshot: &Snapshot,
    tables: &StringArray,
    columns: &StringArray,
    i: usize,
) -> Option<ColumnType> {
    if tables.is_null(i) || columns.is_null(i) {
        return None;
    }
    column_type(snapshot, tables.value(i), columns.value(i))
}

/// PostgreSQL's `atttypmod` of a NUMERIC(precision, scale) column.
fn numeric_typmod(t: ColumnType) -> Option<i32> {
    match t {
        ColumnType::Decimal { precision, scale } => {
            Some(((i32::from(precision) << 16) | i32::from(scale)) + 4)
        }
        _ => None,
    }
}

/// `name(relname, attname, fallback)`: `value` of the named column's type, or
/// `fallback` where it has none (or names no table column).
fn int_of_column(
    name: &'static str,
    snapshot: &Snapshot,
    value: fn(ColumnType) -> Option<i32>,
) -> datafusion::logical_expr::ScalarUDF {
    let view = snapshot.clone();
    create_udf(
        name,
        vec![DataType::Utf8, DataType::Utf8, DataType::Int32],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let args = ColumnarValue::values_to_arrays(args)?;
            let (tables, columns) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
            let fallback = args[2].as_primitive::<Int32Type>();
            let values: Int32Array = (0..fallback.len())
                .map(|i| {
                    type_at(&view, tables, columns, i)
                        .and_then(value)
                        .or_else(|| (!fallback.is_null(i)).then(|| fallback.value(i)))
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(values)))
        }),
    )
}

/// Registers the functions above in a catalog query's context over `snapshot`.
pub(crate) fn register(ctx: &SessionContext, snapshot: &Snapshot) {
    ctx.register_udf(int_of_column(
        "tidemark_attribute_typmod",
        snapshot,
        numeric_typmod,
    ));
    ctx.register_udf(int_of_column("tidemark_attribute_type", snapshot, |t| {
        marked_type(t).map(|(oid, _, _)| oid)
    }));
    let view = snapshot.clone();
    ctx.register_udf(create_udf(
        "tidemark_column_type_name",
        vec![
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Boolean,
        ],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let args = ColumnarValue::values_to_arrays(args)?;
            let (tables, columns) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
            let fallback = args[2].as_string::<i32>();
            let udt = args[3].as_boolean();
            let names: StringArray = (0..fallback.len())
                .map(
                    |i| match type_at(&view, tables, columns, i).and_then(marked_type) {
                        Some((_, sql, udt_name)) => Some(if udt.value(i) { udt_name } else { sql }),
                        None => (!fallback.is_null(i)).then(|| fallback.value(i)),
                    },
                )
                .collect();
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    ));
}
