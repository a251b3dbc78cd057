//! DDL statements to storage requests.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::sql::sqlparser::ast;
use tidemark_parser::{AlterTable, CreateTable, PartitionUnit};
use tidemark_storage::{
    Batch, ColumnDef, ColumnType, IndexTarget, PartitionBy, PartitionSelector, Request, TableDef,
    Ttl,
};

use crate::convert::array_to_column;
use crate::error::{ExecError, Result, sqlstate};
use crate::partition_query::{PartitionQuery, partitions};
use crate::rewrite::part;
use crate::session::Session;
use crate::types::{column_type, partition_by, ttl};
use tidemark_storage::name::same_name;

/// A table name from an object name (`t` or `public.t`), quoted parts as written,
/// unquoted folded to lowercase.
pub(crate) fn object_name(n: &ast::ObjectName) -> Result<String> {
    let idents: Vec<String> =
        n.0.iter()
            .filter_map(|p| p.as_ident())
            .map(|i| {
                if i.quote_style.is_some() {
                    i.value.clone()
                } else {
                    i.value.to_lowercase()
                }
            })
            .collect();
    match idents.as_slice() {
        [t] => Ok(t.clone()),
        [s, t] if s.eq_ignore_ascii_case("public") => Ok(t.clone()),
        _ => Err(ExecError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("relation \"{n}\" does not exist"),
        )),
    }
}

pub(crate) async fn create_table(
    session: &Session,
    c: CreateTable,
) -> Result<(Vec<Request>, String)> {
    if let Some(source) = &c.like {
        return create_like(session, &c, source);
    }
    if c.timestamp.is_none() && c.partition_by.is_some_and(|p| p != PartitionUnit::None) {
        return Err(ExecError::new(
            sqlstate::INVALID_TABLE_DEFINITION,
            format!(
                "table \"{}\": PARTITION BY needs a designated timestamp: add TIMESTAMP(column)",
                c.name
            ),
        ));
    }
    let c = designate_primary_key_timestamp(c)?;
    let upsert_keys = upsert_keys_of(&c)?;
    let (mut columns, rows) = match c.as_query {
        Some(q) => {
            let (schema, batches) = session.run_query(ast::Statement::Query(q)).await?;
            let mut columns = Vec::new();
            for f in schema.fields() {
                let designated = c
                    .timestamp
                    .as_deref()
                    .is_some_and(|ts| ts.eq_ignore_ascii_case(f.name()));
                columns.push(ColumnDef::new(
                    f.name().clone(),
                    column_type_of(f.data_type(), f.name(), designated)?,
                ));
            }
            let mut batch_requests = Vec::new();
            let mut n = 0;
            for b in batches.iter().filter(|b| b.num_rows() > 0) {
                let mut batch = Batch::new();
                for (k, def) in columns.iter().enumerate() {
                    batch = batch.with(
                        def.name.clone(),
                        array_to_column(b.column(k), def.column_type, &def.name)?,
                    );
                }
                n += b.num_rows();
                batch_requests.push(batch);
            }
            (columns, Some((batch_requests, n)))
        }
        None => (
            c.columns
                .iter()
                .map(|s| ColumnDef {
                    name: s.name.clone(),
                    column_type: column_type(s.data_type),
                    not_null: s.not_null,
                    indexed: s.indexed,
                })
                .collect(),
            None,
        ),
    };
    if let Some(ts) = &c.timestamp {
        let col = columns
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(ts))
            .ok_or_else(|| {
                ExecError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!(
                        "designated timestamp column \"{ts}\" is not a column of table \"{}\"",
                        c.name
                    ),
                )
            })?;
        if let Some(problem) = col.column_type.designated_timestamp_problem(ts) {
            return Err(ExecError::new(sqlstate::INVALID_TABLE_DEFINITION, problem));
        }
    }
    let by = c
        .partition_by
        .map(partition_by)
        .unwrap_or(PartitionBy::None);
    let table_ttl = c.ttl.and_then(ttl);
    check_ttl(&c.name, table_ttl, by)?;
    let names: Vec<&str> = columns.iter().map(|d| d.name.as_str()).collect();
    check_upsert_keys(&c.name, &upsert_keys, &names, c.timestamp.as_deref())?;
    // Key columns are NOT NULL, as a PRIMARY KEY's are in PostgreSQL.
    if c.dedup_keys.is_empty() {
        for d in &mut columns {
            if upsert_keys.iter().any(|k| same_name(k, &d.name)) {
                d.not_null = true;
            }
        }
    }
    // CREATE TABLE IF NOT EXISTS leaves a table that exists as it is, TTL too.
    let creates = !(c.if_not_exists && session.table(&c.name).is_ok());
    let def = TableDef {
        name: c.name.clone(),
        columns,
        timestamp: c.timestamp,
        partition_by: by,
    };
    let mut requests = vec![Request::CreateTable {
        def,
        if_not_exists: c.if_not_exists,
    }];
    if creates {
        requests.extend(table_settings(&c.name, table_ttl, upsert_keys));
    }
    match rows {
        Some((batches, n)) => {
            requests.extend(batches.into_iter().map(|batch| Request::Append {
                table: c.name.clone(),
                batch,
            }));
            Ok((requests, format!("SELECT {n}")))
        }
        None => Ok((requests, "CREATE TABLE".into())),
    }
}

/// The storage type for a query result column (CREATE TABLE AS); `designated`
/// when the new table's designated timestamp is this column.
fn column_type_of(t: &DataType, name: &str, designated: bool) -> Result<ColumnType> {
    Ok(match t {
        DataType::Boolean => ColumnType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => ColumnType::SmallInt,
        DataType::Int32 | DataType::UInt16 => ColumnType::Int,
        DataType::Int64 | DataType::UInt32 => ColumnType::BigInt,
        DataType::Float16 | DataType::Float32 => ColumnType::Real,
        // A decimal keeps its precision and scale where a DECIMAL column can hold
        // them (a negative scale, or more than 38 digits, becomes DOUBLE).
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s)
            if u8::try_from(*s)
                .ok()
                .and_then(|s| ColumnType::decimal(*p, s))
                .is_some() =>
        {
            ColumnType::Decimal {
                precision: *p,
                scale: *s as u8,
            }
        }
        DataType::Float64
        | DataType::UInt64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => ColumnType::Double,
        // Nanoseconds (a TIMESTAMP_NS column) stay nanoseconds, except in the
        // designated timestamp, which counts microseconds.
        DataType::Timestamp(TimeUnit::Nanosecond, None) if !designated => ColumnType::TimestampNs,
        DataType::Timestamp(_, None) => ColumnType::Timestamp,
        DataType::Timestamp(_, Some(_)) => ColumnType::TimestampTz,
        DataType::Date32 | DataType::Date64 => ColumnType::Date,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            ColumnType::Varchar
        }
        DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8) => ColumnType::Symbol,
        DataType::FixedSizeBinary(16) => ColumnType::Uuid,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => ColumnType::Binary,
        // A list of numbers (of lists of numbers, ...) is a DOUBLE[] column.
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
            if crate::types::innermost_element(t).is_numeric() =>
        {
            u8::try_from(crate::types::list_depth(t))
                .ok()
                .and_then(ColumnType::double_array)
                .ok_or_else(|| {
                    ExecError::new(
                        sqlstate::PROGRAM_LIMIT_EXCEEDED,
                        format!("column \"{name}\" would be an array of more than 6 dimensions"),
                    )
                })?
        }
        other => {
            return Err(ExecError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("column \"{name}\" would be of type {other}, which a table cannot store"),
            ));
        }
    })
}

/// Refuses a TTL the table's partitions cannot hold (whole partitions are
/// dropped, so the TTL is a whole number of them), with 42P16 (storage
/// refuses it too, as a bad value).
fn check_ttl(table: &str, ttl: Option<Ttl>, by: PartitionBy) -> Result<()> {
    match ttl.and_then(|t| t.misfit(by)) {
        Some(why) => Err(ExecError::new(
            sqlstate::INVALID_TABLE_DEFINITION,
            format!("table \"{table}\": {why}"),
        )),
        None => Ok(()),
    }
}

/// QuestDB's `CREATE TABLE t (LIKE source)`: a new, empty table with the
/// source's columns, designated timestamp, partitioning, TTL and upsert keys.
fn create_like(session: &Session, c: &CreateTable, source: &str) -> Result<(Vec<Request>, String)> {
    if c.timestamp.is_some()
        || c.partition_by.is_some()
        || c.ttl.is_some()
        || !c.dedup_keys.is_empty()
    {
        return Err(ExecError::new(
            sqlstate::SYNTAX_ERROR,
            format!(
                "CREATE TABLE {} (LIKE {source}) copies the definition whole: \
                 leave out TIMESTAMP, PARTITION BY, TTL and DEDUP",
                c.name
            ),
        ));
    }
    let reader = session.table(source)?;
    let meta = reader.meta();
    let def = TableDef {
        name: c.name.clone(),
        columns: meta
            .columns
            .iter()
            .map(|col| ColumnDef {
                name: col.name.clone(),
                column_type: col.column_type,
                not_null: col.not_null,
                indexed: col.index.is_some(),
            })
            .collect(),
        timestamp: meta.timestamp_name().map(str::to_string),
        partition_by: meta.partition_by,
    };
    let creates = !(c.if_not_exists && session.table(&c.name).is_ok());
    let mut requests = vec![Request::CreateTable {
        def,
        if_not_exists: c.if_not_exists,
    }];
    if creates {
        let keys = meta
            .dedup_key_indexes()
            .into_iter()
            .map(|i| meta.columns[i].name.clone())
            .collect();
        requests.extend(table_settings(&c.name, meta.ttl, keys));
    }
    Ok((requests, "CREATE TABLE".into()))
}

/// The requests that give a table created in the same commit its TTL and
/// upsert keys (none for those it does not have).
fn table_settings(table: &str, ttl: Option<Ttl>, upsert_keys: Vec<String>) -> Vec<Request> {
    let mut requests = Vec::new();
    if ttl.is_some() {
        requests.push(Request::SetTtl {
            table: table.to_string(),
            ttl,
        });
    }
    if !upsert_keys.is_empty() {
        requests.push(Request::SetDedup {
            table: table.to_string(),
            keys: upsert_keys,
        });
    }
    requests
}

/// A table declared without `TIMESTAMP(col)` whose PRIMARY KEY holds exactly
/// one column that can be the designated timestamp (an ORM's `id TIMESTAMP
/// PRIMARY KEY`, `PRIMARY KEY (ts, sensor)`) gets that column as its designated
/// timestamp, so the key becomes the table's upsert keys rather than refused.
fn designate_primary_key_timestamp(mut c: CreateTable) -> Result<CreateTable> {
    if c.timestamp.is_some() || c.as_query.is_some() {
        return Ok(c);
    }
    let key = primary_key_of(&c)?;
    let mut candidates = c.columns.iter().filter(|s| {
        key.iter().any(|k| same_name(k, &s.name))
            && column_type(s.data_type)
                .designated_timestamp_problem(&s.name)
                .is_none()
    });
    if let (Some(only), None) = (candidates.next(), candidates.next()) {
        c.timestamp = Some(only.name.clone());
    }
    Ok(c)
}

/// The PRIMARY KEY as declared, on the columns or as a table constraint
/// (empty when there is none); 42P16 for more than one.
fn primary_key_of(c: &CreateTable) -> Result<Vec<String>> {
    let on_columns: Vec<String> = c
        .columns
        .iter()
        .filter(|s| s.primary_key)
        .map(|s| s.name.clone())
        .collect();
    if on_columns.len() > 1 || (!on_columns.is_empty() && !c.primary_key.is_empty()) {
        return Err(ExecError::new(
            sqlstate::INVALID_TABLE_DEFINITION,
            format!(
                "multiple primary keys for table \"{}\" are not allowed",
                c.name
            ),
        ));
    }
    Ok(if on_columns.is_empty() {
        c.primary_key.clone()
    } else {
        on_columns
    })
}

/// The table's upsert keys: `DEDUP UPSERT KEYS`, or a PRIMARY KEY (on the
/// columns or as a table constraint) that includes the designated timestamp.
/// A PRIMARY KEY without it is refused (0A000): a time-series table keeps every
/// row, and only rows of one timestamp can replace one another.
fn upsert_keys_of(c: &CreateTable) -> Result<Vec<String>> {
    let primary_key = primary_key_of(c)?;
    if primary_key.is_empty() {
        return Ok(c.dedup_keys.clone());
    }
    let listed = format!("PRIMARY KEY ({})", primary_key.join(", "));
    let has_timestamp = c
        .timestamp
        .as_deref()
        .is_some_and(|ts| primary_key.iter().any(|k| same_name(k, ts)));
    if !has_timestamp {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "{listed} of table \"{}\" does not include the designated timestamp: a Tidemark \
                 table keeps every row, in designated-timestamp order (TIMESTAMP(col)); a \
                 primary key that includes that column makes rows with equal keys replace \
                 each other (DEDUP UPSERT KEYS), otherwise leave it out",
                c.name
            ),
        ));
    }
    let same = |a: &[String], b: &[String]| a.iter().all(|k| b.iter().any(|x| same_name(k, x)));
    let differ = !same(&c.dedup_keys, &primary_key) || !same(&primary_key, &c.dedup_keys);
    if !c.dedup_keys.is_empty() && differ {
        return Err(ExecError::new(
            sqlstate::INVALID_TABLE_DEFINITION,
            format!(
                "{listed} and DEDUP UPSERT KEYS ({}) of table \"{}\" differ: give one of them",
                c.dedup_keys.join(", "),
                c.name
            ),
        ));
    }
    Ok(primary_key)
}

/// Refuses upsert keys that are not columns (42703) or lack the designated
/// timestamp (42P16): rows can only replace rows of the same timestamp.
fn check_upsert_keys(
    table: &str,
    keys: &[String],
    columns: &[&str],
    timestamp: Option<&str>,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    if let Some(k) = keys
        .iter()
        .find(|k| !columns.iter().any(|c| same_name(c, k)))
    {
        return Err(ExecError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("upsert key \"{k}\" is not a column of table \"{table}\""),
        ));
    }
    match timestamp {
        None => Err(ExecError::new(
            sqlstate::INVALID_TABLE_DEFINITION,
            format!(
                "table \"{table}\" has no designated timestamp: DEDUP UPSERT KEYS needs one \
                 (TIMESTAMP(col)), and it must be among the keys"
            ),
        )),
        Some(ts) if !keys.iter().any(|k| same_name(k, ts)) => Err(ExecError::new(
            sqlstate::INVALID_TABLE_DEFINITION,
            format!(
                "the upsert keys of table \"{table}\" must include its designated timestamp \"{ts}\""
            ),
        )),
        Some(_) => Ok(()),
    }
}

pub(crate) async fn alter_table(
    session: &Session,
    table: String,
    op: AlterTable,
) -> Result<Vec<Request>> {
    let reader = session.table(&table)?;
    Ok(match op {
        AlterTable::AddColumn {
            columns,
            if_not_exists,
        } => {
            let mut requests = Vec::with_capacity(columns.len());
            for column in columns {
                if column.primary_key {
                    return Err(ExecError::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        format!(
                            "a PRIMARY KEY cannot be added with ADD COLUMN: use ALTER TABLE \
                             {table} DEDUP ENABLE UPSERT KEYS(<timestamp>, {})",
                            column.name
                        ),
                    ));
                }
                if if_not_exists && reader.meta().column_index(&column.name).is_some() {
                    continue;
                }
                requests.push(Request::AddColumn {
                    table: table.clone(),
                    column: ColumnDef {
                        name: column.name,
                        column_type: column_type(column.data_type),
                        not_null: column.not_null,
                        indexed: column.indexed,
                    },
                });
            }
            requests
        }
        AlterTable::DropColumn { name, if_exists } => {
            let meta = reader.meta();
            let Some(i) = meta.column_index(&name) else {
                if if_exists {
                    return Ok(Vec::new());
                }
                return Ok(vec![Request::DropColumn {
                    table,
                    column: name,
                }]);
            };
            if meta.dedup_keys.contains(&meta.columns[i].id) {
                return Err(ExecError::new(
                    sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!(
                        "cannot drop column \"{}\": it is an upsert key of table \"{table}\" \
                         (ALTER TABLE {table} DEDUP DISABLE first, or enable dedup without it)",
                        meta.columns[i].name
                    ),
                ));
            }
            vec![Request::DropColumn {
                table,
                column: name,
            }]
        }
        AlterTable::AddIndex { column } => vec![Request::AddIndex {
            table,
            column,
            name: None,
            if_not_exists: false,
        }],
        AlterTable::DropIndex { column } => vec![Request::DropIndex {
            target: IndexTarget::Column { table, column },
            if_exists: false,
        }],
        AlterTable::RenameColumn { from, to } => vec![Request::RenameColumn { table, from, to }],
        AlterTable::RenameTo { to } => vec![Request::RenameTable { from: table, to }],
        // The table exists (read above); the setting has no meaning here.
        AlterTable::Accepted => Vec::new(),
        AlterTable::SetTtl { ttl: spec } => {
            let t = ttl(spec);
            check_ttl(&table, t, reader.meta().partition_by)?;
            vec![Request::SetTtl { table, ttl: t }]
        }
        AlterTable::SetDedup { keys } => {
            let meta = reader.meta();
            let names: Vec<&str> = meta.columns.iter().map(|c| c.name.as_str()).collect();
            check_upsert_keys(&table, &keys, &names, meta.timestamp_name())?;
            vec![Request::SetDedup { table, keys }]
        }
        AlterTable::DropPartitionList { names } => {
            let partitioning = reader.meta().partitioning();
            let starts = names
                .iter()
                .map(|n| partition_timestamp(n).map(|us| partitioning.from_micros(us)))
                .collect::<Result<Vec<_>>>()?;
            vec![Request::DropPartitions {
                table,
                which: PartitionSelector::List(starts),
            }]
        }
        AlterTable::DropPartitionWhere { condition } => {
            if reader.meta().timestamp_name().is_none() {
                return Err(ExecError::new(
                    sqlstate::INVALID_TABLE_DEFINITION,
                    format!(
                        "table \"{table}\" has no designated timestamp, so no partitions to drop"
                    ),
                ));
            }
            // A partition goes when every row in it satisfies the condition.
            let query = PartitionQuery::plan(
                session,
                &reader,
                "count(*)",
                &format!("NOT coalesce(({}), false)", part(0)),
                &[&condition],
            )
            .await?;
            let mut starts = Vec::new();
            for (start, end, _) in partitions(&reader) {
                let batches = query.rows(start, end).await?;
                let remaining = batches
                    .first()
                    .and_then(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::Int64Array>()
                            .map(|a| a.value(0))
                    })
                    .unwrap_or(0);
                if remaining == 0 {
                    starts.push(start);
                }
            }
            if starts.is_empty() {
                return Ok(Vec::new());
            }
            vec![Request::DropPartitions {
                table,
                which: PartitionSelector::List(starts),
            }]
        }
    })
}

/// A timestamp inside the partition a name like `2026-11-21`, `2026-11`, `2026`,
/// `2026-11-21T10` (or any full timestamp) names: the start of that interval.
pub(crate) fn partition_timestamp(name: &str) -> Result<i64> {
    let s = name.trim();
    match tidemark_parser::interval_bounds(s) {
        Ok((start, _)) if !s.contains(';') => Ok(start),
        _ => Err(ExecError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!(
                "invalid partition name \"{name}\": expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH"
            ),
        )),
    }
}
