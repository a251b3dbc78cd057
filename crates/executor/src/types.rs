//! Mapping between SQL type names, storage column types and Arrow types.

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use tidemark_parser::{PartitionUnit, SqlType, TtlSpec};
use tidemark_storage::{ColumnType, PartitionBy, Ttl, TtlUnit};

/// Arrow field metadata naming the PostgreSQL type a text column is sent as
/// when it is not plain `text` (`json` from `json_build_object`).
pub const PG_TYPE_METADATA: &str = "tidemark.pg_type";

/// The time zone of TIMESTAMPTZ values in Arrow (and of `now()`): the session
/// time zone, which is always UTC here; the same spelling as DataFusion's `now()`.
pub const UTC_OFFSET: &str = "+00:00";

pub(crate) fn column_type(t: SqlType) -> ColumnType {
    match t {
        SqlType::Boolean => ColumnType::Boolean,
        SqlType::SmallInt => ColumnType::SmallInt,
        SqlType::Int => ColumnType::Int,
        SqlType::BigInt => ColumnType::BigInt,
        SqlType::Real => ColumnType::Real,
        SqlType::Double => ColumnType::Double,
        SqlType::Timestamp => ColumnType::Timestamp,
        SqlType::TimestampTz => ColumnType::TimestampTz,
        SqlType::Date => ColumnType::Date,
        SqlType::Varchar => ColumnType::Varchar,
        SqlType::Symbol => ColumnType::Symbol,
        SqlType::Uuid => ColumnType::Uuid,
        SqlType::Binary => ColumnType::Binary,
        SqlType::Json => ColumnType::Json,
        SqlType::Jsonb => ColumnType::Jsonb,
        SqlType::Decimal { precision, scale } => ColumnType::Decimal { precision, scale },
        SqlType::DoubleArray { dims } => ColumnType::DoubleArray { dims },
        SqlType::TimestampNs => ColumnType::TimestampNs,
    }
}

pub(crate) fn partition_by(u: PartitionUnit) -> PartitionBy {
    match u {
        PartitionUnit::None => PartitionBy::None,
        PartitionUnit::Hour => PartitionBy::Hour,
        PartitionUnit::Day => PartitionBy::Day,
        PartitionUnit::Week => PartitionBy::Week,
        PartitionUnit::Month => PartitionBy::Month,
        PartitionUnit::Year => PartitionBy::Year,
    }
}

/// The storage TTL for `TTL n UNIT` (none for `TTL 0`).
pub(crate) fn ttl(spec: TtlSpec) -> Option<Ttl> {
    use tidemark_parser::TtlUnit as Sql;
    let unit = match spec.unit {
        Sql::Hour => TtlUnit::Hour,
        Sql::Day => TtlUnit::Day,
        Sql::Week => TtlUnit::Week,
        Sql::Month => TtlUnit::Month,
        Sql::Year => TtlUnit::Year,
    };
    (spec.count > 0).then_some(Ttl {
        count: spec.count,
        unit,
    })
}

/// The type of the values inside a list type, however deeply nested (a type that is
/// not a list is its own element type).
pub fn innermost_element(mut t: &DataType) -> &DataType {
    while let DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) = t {
        t = f.data_type();
    }
    t
}

/// How many levels of lists `t` has (0 for a type that is not a list).
pub fn list_depth(mut t: &DataType) -> usize {
    let mut n = 0;
    while let DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) = t {
        n += 1;
        t = f.data_type();
    }
    n
}

/// The Arrow type a column is scanned as. SYMBOL columns are dictionary arrays
/// (keys are the stored symbol keys, values the dictionary).
pub fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::SmallInt => DataType::Int16,
        ColumnType::Int => DataType::Int32,
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Real => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::TimestampTz => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC_OFFSET.into()))
        }
        ColumnType::Date => DataType::Date32,
        ColumnType::Varchar | ColumnType::Json | ColumnType::Jsonb => DataType::Utf8,
        ColumnType::Symbol => {
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        }
        ColumnType::Uuid => DataType::FixedSizeBinary(16),
        ColumnType::Binary => DataType::Binary,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
        ColumnType::DoubleArray { dims } => crate::double_array::arrow_type(dims.into()),
        ColumnType::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, None),
    }
}

/// The type name PostgreSQL would use in a message.
pub(crate) fn pg_name(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Boolean => "boolean",
        ColumnType::SmallInt => "smallint",
        ColumnType::Int => "integer",
        ColumnType::BigInt => "bigint",
        ColumnType::Real => "real",
        ColumnType::Double => "double precision",
        ColumnType::Timestamp => "timestamp without time zone",
        ColumnType::TimestampTz => "timestamp with time zone",
        ColumnType::Date => "date",
        ColumnType::Varchar => "text",
        ColumnType::Symbol => "symbol",
        ColumnType::Uuid => "uuid",
        ColumnType::Binary => "bytea",
        ColumnType::Json => "json",
        ColumnType::Jsonb => "jsonb",
        ColumnType::Decimal { .. } => "numeric",
        ColumnType::DoubleArray { .. } => "double precision[]",
        ColumnType::TimestampNs => "timestamp_ns",
    }
}

/// A table column as an Arrow field: JSON and JSONB are text marked with
/// [`PG_TYPE_METADATA`], so results keep the PostgreSQL type they are sent as.
pub fn column_field(name: &str, t: ColumnType, nullable: bool) -> Field {
    let field = Field::new(name, arrow_type(t), nullable);
    match t {
        ColumnType::Json | ColumnType::Jsonb => {
            field.with_metadata([(PG_TYPE_METADATA.to_string(), pg_name(t).to_string())].into())
        }
        _ => field,
    }
}
