//! QuestDB's type names in casts (`x::long`, `CAST(x AS SHORT)`), which
//! PostgreSQL's grammar reads as unknown custom types. Table columns spell them
//! through the parser's own type list (`tidemark_parser` DDL); this is the cast side.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::sql::sqlparser::ast;

/// The Arrow field a cast to QuestDB's type `sql_type` makes, for the names
/// PostgreSQL lacks: LONG, SHORT, BYTE (no one-byte integer here: SMALLINT),
/// STRING and SYMBOL (text), TIMESTAMP_NS (a timestamp with nanoseconds),
/// IPV4 (text, as IPv4 columns are kept).
pub(crate) fn plan_cast_type(sql_type: &ast::DataType) -> Option<FieldRef> {
    let ast::DataType::Custom(name, args) = sql_type else {
        return None;
    };
    if !args.is_empty() {
        return None;
    }
    let [part] = name.0.as_slice() else {
        return None;
    };
    let t = match part.as_ident()?.value.to_ascii_lowercase().as_str() {
        "long" => DataType::Int64,
        "short" | "byte" => DataType::Int16,
        "string" | "symbol" | "ipv4" => DataType::Utf8,
        "timestamp_ns" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        _ => return None,
    };
    Some(Arc::new(Field::new("", t, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast_type(sql: &str) -> ast::DataType {
        match crate::rewrite::parse_expr(sql).expect(sql) {
            ast::Expr::Cast { data_type, .. } => data_type,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn questdb_type_names_plan_as_arrow_types() {
        let t = |sql| plan_cast_type(&cast_type(sql)).map(|f| f.data_type().clone());
        assert_eq!(t("x::long"), Some(DataType::Int64));
        assert_eq!(t("CAST(x AS LONG)"), Some(DataType::Int64));
        assert_eq!(t("x::short"), Some(DataType::Int16));
        assert_eq!(t("x::symbol"), Some(DataType::Utf8));
        assert_eq!(t("'10.0.0.1'::ipv4"), Some(DataType::Utf8));
        assert_eq!(
            t("x::timestamp_ns"),
            Some(DataType::Timestamp(TimeUnit::Nanosecond, None))
        );
        assert_eq!(t("x::bigint"), None);
        assert_eq!(t("x::nope"), None);
    }
}
