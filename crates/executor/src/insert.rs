//! `INSERT`: rows from VALUES or a query into a table's write buffer.
//!
//! Three ways in, one conversion (`convert::array_to_column`) for all:
//! - literal `VALUES` rows become Arrow arrays directly (`values.rs`);
//! - anything else is planned and run by DataFusion;
//! - a *prepared* `INSERT ... VALUES ($1, $2, ...)` is planned once, when the
//!   client parses it ([`PreparedInsert`]): its table, target columns and the
//!   place of each parameter. Each execution then turns the bound values
//!   straight into columns, with no SQL text made or parsed.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, FixedSizeBinaryArray, Float64Array,
    Int64Array, NullArray, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use tidemark_storage::{
    Batch, Column, ColumnType, Request, TableMeta, TableReader, Values, VarData,
};

use crate::convert::array_to_column;
use crate::ddl;
use crate::error::{ExecError, Result, sqlstate};
use crate::params::{ParamValue, placeholder_index};
use crate::session::{Output, Session};
use crate::values::{literal_param, literal_rows};

/// Runs `INSERT INTO t [(columns)] VALUES ... | query`.
pub(crate) async fn run(session: &mut Session, insert: ast::Insert) -> Result<Output> {
    let table = target_table(&insert)?;
    let reader = session.table_schema(&table)?;
    let meta = reader.meta().clone();
    check_clauses(&insert, &table, &meta)?;
    let source = insert
        .source
        .ok_or_else(|| ExecError::new(sqlstate::SYNTAX_ERROR, "INSERT needs VALUES or a query"))?;
    let width = match source.body.as_ref() {
        ast::SetExpr::Values(v) => v.rows.first().map(|row| row.len()),
        _ => None,
    };
    let targets = target_columns(&reader, &insert.columns, width)?;
    // Literal VALUES skip query planning; anything else is planned by DataFusion.
    let exact: Vec<bool> = targets
        .iter()
        .map(|&i| matches!(meta.columns[i].column_type, ColumnType::Decimal { .. }))
        .collect();
    let batches = match literal_rows(&source, &exact) {
        Some(arrays) => vec![record_batch(arrays)?],
        None => {
            let mut source = source;
            name_select_items(&mut source);
            session.run_query(ast::Statement::Query(source)).await?.1
        }
    };
    let mut rows = 0u64;
    let mut requests = Vec::new();
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        if b.num_columns() != targets.len() {
            let what = if b.num_columns() > targets.len() {
                "more"
            } else {
                "fewer"
            };
            return Err(ExecError::new(
                sqlstate::SYNTAX_ERROR,
                format!("INSERT has {what} expressions than target columns"),
            ));
        }
        rows += b.num_rows() as u64;
        requests.push(Request::Append {
            table: reader.name().to_string(),
            batch: to_batch(&meta, &targets, b.columns())?,
        });
    }
    session.submit(requests).await?;
    Ok(Output::command(format!("INSERT 0 {rows}")))
}

/// A table's columns from arrays, one per target column (by index into `meta`).
fn to_batch(meta: &TableMeta, targets: &[usize], arrays: &[ArrayRef]) -> Result<Batch> {
    let mut batch = Batch::new();
    for (array, &i) in arrays.iter().zip(targets) {
        let c = &meta.columns[i];
        batch = batch.with(
            c.name.clone(),
            array_to_column(array, c.column_type, &c.name)?,
        );
    }
    Ok(batch)
}

fn record_batch(arrays: Vec<ArrayRef>) -> Result<RecordBatch> {
    let fields: Vec<Field> = arrays
        .iter()
        .enumerate()
        .map(|(i, a)| Field::new(format!("column{}", i + 1), a.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

fn target_table(insert: &ast::Insert) -> Result<String> {
    match &insert.table {
        ast::TableObject::TableName(n) => ddl::object_name(n),
        other => Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("INSERT INTO {other} is not supported"),
        )),
    }
}

/// The columns an INSERT writes, as indexes into the table's columns. Without
/// a column list, as in PostgreSQL, VALUES rows of `width` values fill the
/// leading columns and the rest are NULL (a writer that predates ADD COLUMN
/// goes on); a query fills them all.
fn target_columns(
    reader: &TableReader,
    columns: &[ast::ObjectName],
    width: Option<usize>,
) -> Result<Vec<usize>> {
    let meta = reader.meta();
    if columns.is_empty() {
        let width = width.unwrap_or(meta.columns.len());
        return Ok((0..meta.columns.len().min(width.max(1))).collect());
    }
    columns
        .iter()
        .map(|c| {
            let name = insert_column_name(c);
            meta.column_index(&name).ok_or_else(|| {
                ExecError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        reader.name()
                    ),
                )
            })
        })
        .collect()
}

/// Names the unnamed expressions of an INSERT's SELECT list. INSERT matches
/// them to columns by position, so `SELECT ts, 'x', 'x'` is fine in PostgreSQL;
/// DataFusion would refuse the two equal (hence equally named) expressions.
fn name_select_items(source: &mut ast::Query) {
    if let ast::SetExpr::Select(select) = source.body.as_mut() {
        for (i, item) in select.projection.iter_mut().enumerate() {
            if let ast::SelectItem::UnnamedExpr(expr) = item {
                *item = ast::SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias: ast::Ident::new(format!("__tidemark_insert_{}", i + 1)),
                };
            }
        }
    }
}

/// A target column of INSERT as written (`"Price"` keeps its case).
pub(crate) fn insert_column_name(c: &ast::ObjectName) -> String {
    let name = c.to_string();
    if name.starts_with('"') {
        name.trim_matches('"').to_string()
    } else {
        name
    }
}

/// One value of a prepared INSERT's VALUES rows.
#[derive(Debug, Clone)]
enum Slot {
    /// `$n` (0-based index into the bound values).
    Param(usize),
    /// A literal written in the statement.
    Value(ParamValue),
}

/// An `INSERT ... VALUES` of parameters and literals, planned at Parse.
#[derive(Debug, Clone)]
pub(crate) struct PreparedInsert {
    table: String,
    /// Target column names, as the table spelled them when prepared.
    columns: Vec<String>,
    /// The table's schema when prepared: an execution after DDL plans again.
    meta_seq: u64,
    rows: Vec<Vec<Slot>>,
}

impl PreparedInsert {
    /// The plan for `statement`, if it is an INSERT of VALUES rows made only of
    /// parameters and literals into an existing table (anything else takes the
    /// ordinary path at each execution).
    pub(crate) fn plan(statement: &ast::Statement, session: &Session) -> Option<PreparedInsert> {
        let ast::Statement::Insert(insert) = statement else {
            return None;
        };
        let source = insert.source.as_ref()?;
        if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
            return None;
        }
        let ast::SetExpr::Values(values) = source.body.as_ref() else {
            return None;
        };
        if insert.on.is_some() || insert.returning.is_some() {
            return None;
        }
        let reader = session.table_schema(&target_table(insert).ok()?).ok()?;
        let width = values.rows.first().map(|r| r.len());
        let targets = target_columns(&reader, &insert.columns, width).ok()?;
        let rows = values
            .rows
            .iter()
            .map(|row| {
                if row.len() != targets.len() {
                    return None; // the ordinary path reports the mismatch
                }
                row.iter()
                    .map(|e| match placeholder_index(e) {
                        Some(n) if n >= 1 => Some(Slot::Param(n - 1)),
                        Some(_) => None,
                        None => literal_param(e).map(Slot::Value),
                    })
                    .collect::<Option<Vec<Slot>>>()
            })
            .collect::<Option<Vec<_>>>()?;
        let meta = reader.meta();
        Some(PreparedInsert {
            table: reader.name().to_string(),
            columns: targets
                .iter()
                .map(|&i| meta.columns[i].name.clone())
                .collect(),
            meta_seq: meta.seq,
            rows,
        })
    }

    /// Runs the insert with `values` bound; `None` when the table changed since
    /// it was prepared (the caller then takes the ordinary path).
    pub(crate) async fn execute(
        &self,
        session: &mut Session,
        values: &[ParamValue],
    ) -> Result<Option<Output>> {
        let Ok(reader) = session.table_schema(&self.table) else {
            return Ok(None);
        };
        if reader.meta().seq != self.meta_seq {
            return Ok(None);
        }
        let meta = reader.meta();
        let targets: Vec<usize> = self
            .columns
            .iter()
            .map(|c| meta.column_index(c))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ExecError::new(
                    sqlstate::INTERNAL_ERROR,
                    "a prepared INSERT lost a column its schema still has",
                )
            })?;
        let mut batch = Batch::new();
        for (k, &target) in targets.iter().enumerate() {
            let column: Vec<&ParamValue> = self
                .rows
                .iter()
                .map(|row| match &row[k] {
                    Slot::Value(v) => Ok(v),
                    Slot::Param(i) => values.get(*i).ok_or_else(|| {
                        ExecError::new(
                            sqlstate::PROTOCOL_VIOLATION,
                            format!(
                                "bind message supplies {} parameters, but prepared statement requires more",
                                values.len()
                            ),
                        )
                    }),
                })
                .collect::<Result<_>>()?;
            let c = &meta.columns[target];
            // Values of the kind the column stores (what drivers send for a
            // parameter typed after its column) go straight in; anything else
            // converts as a literal would.
            let values = match direct_column(&column, c.column_type) {
                Some(values) => values,
                None => array_to_column(&param_array(&column), c.column_type, &c.name)?,
            };
            batch = batch.with(c.name.clone(), values);
        }
        let rows = self.rows.len();
        session
            .submit(vec![Request::Append {
                table: reader.name().to_string(),
                batch,
            }])
            .await?;
        Ok(Some(Output::command(format!("INSERT 0 {rows}"))))
    }
}

/// The column of `values` for a column of type `t` when every value is of the
/// kind the column stores (NULLs aside); `None` when any needs converting.
fn direct_column(values: &[&ParamValue], t: ColumnType) -> Option<Column> {
    let nulls: Vec<bool> = values
        .iter()
        .map(|v| matches!(v, ParamValue::Null))
        .collect();
    macro_rules! fixed {
        ($variant:ident, $default:expr, |$v:ident| $convert:expr) => {{
            let out = values
                .iter()
                .map(|v| match v {
                    ParamValue::Null => Some($default),
                    $v => $convert,
                })
                .collect::<Option<Vec<_>>>()?;
            Values::$variant(out)
        }};
    }
    let text = |symbol: bool| -> Option<Values> {
        let mut out = VarData::default();
        for v in values {
            match v {
                ParamValue::Null => out.push(b""),
                ParamValue::Text(s) => out.push(s.as_bytes()),
                _ => return None,
            }
        }
        Some(if symbol {
            Values::Symbol(out)
        } else {
            Values::Varchar(out)
        })
    };
    let values = match t {
        ColumnType::Boolean => fixed!(Boolean, false, |v| match v {
            ParamValue::Bool(b) => Some(*b),
            _ => None,
        }),
        ColumnType::SmallInt => fixed!(SmallInt, 0, |v| match v {
            ParamValue::Int(i) => i16::try_from(*i).ok(),
            _ => None,
        }),
        ColumnType::Int => fixed!(Int, 0, |v| match v {
            ParamValue::Int(i) => i32::try_from(*i).ok(),
            _ => None,
        }),
        ColumnType::BigInt => fixed!(BigInt, 0, |v| match v {
            ParamValue::Int(i) => Some(*i),
            _ => None,
        }),
        ColumnType::Real => fixed!(Real, 0.0, |v| match v {
            ParamValue::Float(f) => Some(*f as f32),
            _ => None,
        }),
        ColumnType::Double => fixed!(Double, 0.0, |v| match v {
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }),
        ColumnType::Timestamp | ColumnType::TimestampTz => fixed!(Timestamp, 0, |v| match v {
            ParamValue::Timestamp(us) => Some(*us),
            _ => None,
        }),
        ColumnType::TimestampNs => fixed!(BigInt, 0, |v| match v {
            ParamValue::Timestamp(us) => us.checked_mul(1_000),
            _ => None,
        }),
        ColumnType::Date => fixed!(Date, 0, |v| match v {
            ParamValue::Date(d) => Some(*d),
            _ => None,
        }),
        ColumnType::Uuid => fixed!(Uuid, 0, |v| match v {
            ParamValue::Uuid(u) => Some(u128::from_be_bytes(*u)),
            _ => None,
        }),
        // An integer that fits goes in exactly; anything else (and the error for
        // an integer that does not fit) takes the general path.
        ColumnType::Decimal { precision, scale } => fixed!(Decimal, 0, |v| match v {
            ParamValue::Int(i) => crate::numeric::rescale(i128::from(*i), 0, precision, scale).ok(),
            _ => None,
        }),
        ColumnType::Varchar => text(false)?,
        ColumnType::Symbol => text(true)?,
        // Documents are checked on the way in, arrays shaped: the general path does that.
        ColumnType::Json | ColumnType::Jsonb | ColumnType::DoubleArray { .. } => return None,
        ColumnType::Binary => {
            let mut out = VarData::default();
            for v in values {
                match v {
                    ParamValue::Null => out.push(b""),
                    ParamValue::Bytes(b) => out.push(b),
                    _ => return None,
                }
            }
            Values::Binary(out)
        }
    };
    Some(Column::with_nulls(values, nulls))
}

/// One column of bound values as the narrowest Arrow array that holds them as
/// the client sent them; text (and a mix of kinds) as text, which the column's
/// type then parses, as it would a literal.
fn param_array(values: &[&ParamValue]) -> ArrayRef {
    let all =
        |f: fn(&ParamValue) -> bool| values.iter().all(|v| matches!(v, ParamValue::Null) || f(v));
    macro_rules! typed {
        ($array:ty, $variant:ident, $map:expr) => {
            Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        ParamValue::$variant(x) => Some($map(x)),
                        _ => None,
                    })
                    .collect::<$array>(),
            )
        };
    }
    if values.iter().all(|v| matches!(v, ParamValue::Null)) {
        return Arc::new(NullArray::new(values.len()));
    }
    if all(|v| matches!(v, ParamValue::Int(_))) {
        return typed!(Int64Array, Int, |x: &i64| *x);
    }
    if all(|v| matches!(v, ParamValue::Float(_))) {
        return typed!(Float64Array, Float, |x: &f64| *x);
    }
    if all(|v| matches!(v, ParamValue::Bool(_))) {
        return typed!(BooleanArray, Bool, |x: &bool| *x);
    }
    if all(|v| matches!(v, ParamValue::Timestamp(_))) {
        return typed!(TimestampMicrosecondArray, Timestamp, |x: &i64| *x);
    }
    if all(|v| matches!(v, ParamValue::Date(_))) {
        return typed!(Date32Array, Date, |x: &i32| *x);
    }
    if all(|v| matches!(v, ParamValue::Bytes(_))) {
        return Arc::new(
            values
                .iter()
                .map(|v| match v {
                    ParamValue::Bytes(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect::<BinaryArray>(),
        );
    }
    if all(|v| matches!(v, ParamValue::Uuid(_)))
        && let Ok(a) = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            values.iter().map(|v| match v {
                ParamValue::Uuid(u) => Some(*u),
                _ => None,
            }),
            16,
        )
    {
        return Arc::new(a);
    }
    Arc::new(
        values
            .iter()
            .map(|v| param_text(v))
            .collect::<StringArray>(),
    )
}

/// Refuses what an INSERT asks that Tidemark would otherwise silently not do
/// (0A000, naming what works instead). `RETURNING` has no rows to return here.
/// `ON CONFLICT`: rows with equal upsert keys replace each other, last write
/// winning, so only the clause that asks exactly that is accepted, `ON
/// CONFLICT [(keys)] DO UPDATE SET c = EXCLUDED.c` for every other column (what
/// ORMs' upserts write), and `DO NOTHING` only where nothing can conflict (a
/// table without upsert keys).
fn check_clauses(
    insert: &ast::Insert,
    table: &str,
    meta: &tidemark_storage::TableMeta,
) -> Result<()> {
    let refuse = |what: String| Err(ExecError::new(sqlstate::FEATURE_NOT_SUPPORTED, what));
    if insert.returning.is_some() {
        return refuse(
            "INSERT ... RETURNING is not supported: read the rows back by their timestamp \
             after inserting"
                .into(),
        );
    }
    let on = match &insert.on {
        None => return Ok(()),
        Some(ast::OnInsert::OnConflict(on)) => on,
        Some(_) => {
            return refuse("ON DUPLICATE KEY UPDATE is not supported: use upsert keys".into());
        }
    };
    let in_order: Vec<&str> = meta
        .dedup_key_indexes()
        .into_iter()
        .map(|i| meta.columns[i].name.as_str())
        .collect();
    let keys: BTreeSet<String> = in_order.iter().map(|k| k.to_lowercase()).collect();
    let listed = format!("({})", in_order.join(", "));
    if let Some(ast::ConflictTarget::Columns(target)) = &on.conflict_target {
        let target: BTreeSet<String> = target
            .iter()
            .map(|c| tidemark_parser::normalize_ident(c).to_lowercase())
            .collect();
        if keys.is_empty() || target != keys {
            return refuse(format!(
                "ON CONFLICT ({}) names no upsert keys of table \"{table}\" (its keys: \
                 {}): declare them with DEDUP UPSERT KEYS or PRIMARY KEY",
                Vec::from_iter(target).join(", "),
                if keys.is_empty() {
                    "none"
                } else {
                    listed.as_str()
                }
            ));
        }
    }
    match &on.action {
        ast::OnConflictAction::DoNothing if keys.is_empty() => Ok(()),
        ast::OnConflictAction::DoNothing => refuse(format!(
            "ON CONFLICT DO NOTHING cannot keep the stored row: rows with equal upsert \
             keys {listed} replace each other, the last write winning; write ON CONFLICT \
             {listed} DO UPDATE SET col = EXCLUDED.col for every other column, or leave \
             the clause out"
        )),
        ast::OnConflictAction::DoUpdate(update) => {
            // The columns the assignments replace, when each is `c = EXCLUDED.c`.
            let replaced: Option<BTreeSet<String>> =
                update.assignments.iter().map(excluded_column).collect();
            let whole_row = replaced.is_some_and(|replaced| {
                meta.columns
                    .iter()
                    .map(|c| c.name.to_lowercase())
                    .filter(|c| !keys.contains(c))
                    .all(|c| replaced.contains(&c))
            });
            if keys.is_empty() || update.selection.is_some() || !whole_row {
                return refuse(format!(
                    "ON CONFLICT DO UPDATE is supported only as the replacement of the \
                     whole row on upsert keys {listed}: SET col = EXCLUDED.col for every \
                     other column, without WHERE"
                ));
            }
            Ok(())
        }
    }
}

/// The column `c` (lowercase) of an assignment `c = EXCLUDED.c`.
fn excluded_column(a: &ast::Assignment) -> Option<String> {
    let ast::AssignmentTarget::ColumnName(target) = &a.target else {
        return None;
    };
    let column = target.0.last()?.as_ident()?;
    let ast::Expr::CompoundIdentifier(parts) = &a.value else {
        return None;
    };
    match parts.as_slice() {
        [excluded, value]
            if excluded.value.eq_ignore_ascii_case("excluded")
                && value.value.eq_ignore_ascii_case(&column.value) =>
        {
            Some(column.value.to_lowercase())
        }
        _ => None,
    }
}

/// A bound value as PostgreSQL would print it (NULL as `None`).
fn param_text(v: &ParamValue) -> Option<String> {
    Some(match v {
        ParamValue::Null => return None,
        ParamValue::Bool(b) => b.to_string(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) if f.is_nan() => "NaN".into(),
        ParamValue::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
        }
        ParamValue::Float(f) => format!("{f:?}"),
        ParamValue::Text(s) => s.clone(),
        ParamValue::Typed { text, .. } => text.clone(),
        ParamValue::Timestamp(us) => crate::text::timestamp(*us),
        ParamValue::Date(d) => crate::text::date(*d as i64),
        ParamValue::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("\\x{hex}")
        }
        ParamValue::Uuid(u) => crate::text::uuid(u),
        ParamValue::Array { items, .. } => {
            let mut out = String::from("{");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match (item, param_text(item)) {
                    (ParamValue::Array { .. }, Some(inner)) => out.push_str(&inner),
                    (_, Some(text)) => crate::text::push_array_element(&text, &mut out),
                    (_, None) => out.push_str("NULL"),
                }
            }
            out.push('}');
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    #[test]
    fn values_of_the_column_kind_go_straight_in() {
        let (a, b, n) = (
            ParamValue::Int(7),
            ParamValue::Int(70_000),
            ParamValue::Null,
        );
        let c = direct_column(&[&a, &n], ColumnType::Int).expect("direct");
        assert_eq!(c.values, Values::Int(vec![7, 0]));
        assert!(c.is_null(1) && !c.is_null(0));
        assert!(
            direct_column(&[&b], ColumnType::SmallInt).is_none(),
            "out of range converts (and fails) the ordinary way"
        );
        let t = ParamValue::Text("x".into());
        assert!(direct_column(&[&t], ColumnType::Double).is_none());
        assert_eq!(
            direct_column(&[&t, &n], ColumnType::Symbol)
                .expect("direct")
                .values,
            Values::Symbol(VarData::from_slices([&b"x"[..], b""]))
        );
    }

    #[test]
    fn bound_values_keep_their_kind_and_mixes_become_text() {
        let i = ParamValue::Int(7);
        let f = ParamValue::Float(f64::NAN);
        let n = ParamValue::Null;
        let t = ParamValue::Typed {
            type_name: "TIMESTAMP",
            text: "2026-11-21 10:00:00".into(),
        };
        assert_eq!(param_array(&[&i, &n]).data_type(), &DataType::Int64);
        assert_eq!(param_array(&[&n, &n]).data_type(), &DataType::Null);
        assert_eq!(param_array(&[&f]).data_type(), &DataType::Float64);
        assert_eq!(param_array(&[&t, &n]).data_type(), &DataType::Utf8);
        let mixed = param_array(&[&i, &f]);
        let mixed = mixed.as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!((mixed.value(0), mixed.value(1)), ("7", "NaN"));
    }
}
