//! Result column names as PostgreSQL gives them. DataFusion names an unaliased
//! expression after its text (`Int64(1)`, `avg(trades.price)`, `count(*)`);
//! PostgreSQL names it after the function, column or cast type it is
//! (`?column?`, `avg`, `count`, `int4`), and ORMs, dataframes and tools key on
//! those names (pandas' `read_sql` column labels, SQLAlchemy's result keys).
//!
//! The names are read from the statement's outermost select list, the way
//! PostgreSQL's `FigureColname` reads its parse tree, and replace the names in
//! the result's schema only: the plan keeps DataFusion's own (unique) names,
//! so `SELECT 1, 2` may answer two columns both called `?column?`, as
//! PostgreSQL does.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast;
use tidemark_parser::Statement;

/// PostgreSQL's name for a column it cannot name otherwise.
const UNNAMED: &str = "?column?";

/// The names a statement's result columns take, where PostgreSQL's differ
/// from DataFusion's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnNames {
    /// Names of the select items before the first wildcard (`None`: keep the
    /// planned name: aliases, plain columns).
    leading: Vec<Option<String>>,
    /// Names of the items after the last wildcard, when there is one (the
    /// wildcard's own columns are counted from both ends).
    trailing: Option<Vec<Option<String>>>,
}

impl ColumnNames {
    /// The names for `statement`'s result, or `None` when PostgreSQL would
    /// name every column as DataFusion does (not a SELECT, only aliases).
    pub(crate) fn of(statement: &Statement) -> Option<Self> {
        let query = match statement {
            Statement::Standard(s) => match s.as_ref() {
                ast::Statement::Query(q) => q,
                _ => return None,
            },
            Statement::Sample { query, .. } | Statement::Latest { query, .. } => query,
            _ => return None,
        };
        Self::of_query(query)
    }

    pub(crate) fn of_query(query: &ast::Query) -> Option<Self> {
        let select = leftmost_select(&query.body)?;
        let wildcard = |item: &ast::SelectItem| {
            matches!(
                item,
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..)
            )
        };
        let name = |item: &ast::SelectItem| match item {
            ast::SelectItem::UnnamedExpr(e) => Some(figure(e).0),
            _ => None,
        };
        let items = &select.projection;
        let first_wildcard = items.iter().position(wildcard);
        let names = match first_wildcard {
            None => ColumnNames {
                leading: items.iter().map(name).collect(),
                trailing: None,
            },
            Some(first) => {
                let last = items.iter().rposition(wildcard).unwrap_or(first);
                ColumnNames {
                    leading: items[..first].iter().map(name).collect(),
                    trailing: Some(items[last + 1..].iter().map(name).collect()),
                }
            }
        };
        let renames = names
            .leading
            .iter()
            .chain(names.trailing.iter().flatten())
            .any(Option::is_some);
        renames.then_some(names)
    }

    /// `schema` with these names; unchanged when its column count does not fit
    /// the select list (a rewrite changed the columns).
    pub(crate) fn apply(&self, schema: &SchemaRef) -> SchemaRef {
        let fields = schema.fields();
        let n = fields.len();
        let mut names: Vec<Option<&String>> = vec![None; n];
        match &self.trailing {
            None if self.leading.len() != n => return schema.clone(),
            Some(t) if self.leading.len() + t.len() > n => return schema.clone(),
            _ => {}
        }
        for (slot, name) in names.iter_mut().zip(&self.leading) {
            *slot = name.as_ref();
        }
        if let Some(trailing) = &self.trailing {
            for (slot, name) in names.iter_mut().rev().zip(trailing.iter().rev()) {
                *slot = name.as_ref();
            }
        }
        if names
            .iter()
            .zip(fields.iter())
            .all(|(name, f)| name.is_none_or(|name| name == f.name()))
        {
            return schema.clone();
        }
        let fields: Vec<Field> = fields
            .iter()
            .zip(names)
            .map(|(f, name)| match name {
                Some(name) => f.as_ref().clone().with_name(name.clone()),
                None => f.as_ref().clone(),
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
    }
}

/// The SELECT whose names a query's result takes: a set operation is named
/// by its first branch.
fn leftmost_select(body: &ast::SetExpr) -> Option<&ast::Select> {
    match body {
        ast::SetExpr::Select(s) => Some(s),
        ast::SetExpr::Query(q) => leftmost_select(&q.body),
        ast::SetExpr::SetOperation { left, .. } => leftmost_select(left),
        _ => None,
    }
}

/// How sure a name is (PostgreSQL's "strength"): a cast names its column after
/// its type only when its operand gives no better name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    /// `?column?`
    None,
    /// A keyword-like name (`case`, a cast's type).
    Weak,
    /// A column's or function's name.
    Strong,
}

/// PostgreSQL's name for an unaliased select item.
fn figure(e: &ast::Expr) -> (String, Strength) {
    use ast::Expr;
    let strong = |s: &str| (s.to_string(), Strength::Strong);
    let weak = |s: &str| (s.to_string(), Strength::Weak);
    match e {
        Expr::Identifier(i) => (tidemark_parser::normalize_ident(i), Strength::Strong),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => (tidemark_parser::normalize_ident(i), Strength::Strong),
            None => (UNNAMED.into(), Strength::None),
        },
        Expr::Function(f) => match f.name.0.last().and_then(|p| p.as_ident()) {
            Some(i) => (tidemark_parser::normalize_ident(i), Strength::Strong),
            None => (UNNAMED.into(), Strength::None),
        },
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        Expr::Cast {
            expr, data_type, ..
        } => {
            let inner = figure(expr);
            if inner.1 == Strength::Strong {
                inner
            } else {
                (type_name(data_type), Strength::Weak)
            }
        }
        Expr::TypedString(t) => (type_name(&t.data_type), Strength::Weak),
        Expr::Interval(_) => weak("interval"),
        Expr::Case { .. } => weak("case"),
        Expr::Exists { .. } => strong("exists"),
        Expr::Array(_) => strong("array"),
        Expr::Tuple(_) => strong("row"),
        Expr::Subquery(q) => match leftmost_select(&q.body).and_then(|s| s.projection.first()) {
            Some(ast::SelectItem::ExprWithAlias { alias, .. }) => {
                (tidemark_parser::normalize_ident(alias), Strength::Strong)
            }
            Some(ast::SelectItem::UnnamedExpr(inner)) => figure(inner),
            _ => (UNNAMED.into(), Strength::None),
        },
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        Expr::Extract { .. } => strong("extract"),
        Expr::Position { .. } => strong("position"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Trim { .. } => strong("btrim"),
        Expr::Overlay { .. } => strong("overlay"),
        Expr::AtTimeZone { .. } => strong("timezone"),
        _ => (UNNAMED.into(), Strength::None),
    }
}

/// PostgreSQL's internal name of a type (what `SELECT 1::int` is named after).
fn type_name(t: &ast::DataType) -> String {
    let text = t.to_string().to_lowercase();
    let base = text.split('(').next().unwrap_or(&text).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "double" | "float8" | "float" => "float8",
        "boolean" | "bool" => "bool",
        "varchar" | "character varying" => "varchar",
        "char" | "character" => "bpchar",
        "decimal" | "numeric" => "numeric",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    fn names(sql: &str, planned: &[&str]) -> Vec<String> {
        let statement = tidemark_parser::parse(sql)
            .expect("parses")
            .pop()
            .expect("one statement");
        let schema = Arc::new(Schema::new(
            planned
                .iter()
                .map(|n| Field::new(*n, DataType::Int64, true))
                .collect::<Vec<_>>(),
        ));
        let renamed = match ColumnNames::of(&statement) {
            Some(names) => names.apply(&schema),
            None => schema,
        };
        renamed.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// The names PostgreSQL 15 gives these select lists (checked against psql).
    #[test]
    fn unaliased_columns_are_named_as_postgresql_names_them() {
        for (sql, planned, expected) in [
            ("SELECT 1", &["Int64(1)"][..], &["?column?"][..]),
            (
                "SELECT 1, 2",
                &["Int64(1)", "Int64(2)"],
                &["?column?", "?column?"],
            ),
            (
                "SELECT avg(price), count(*), max(t.price) FROM t",
                &["avg(t.price)", "count(*)", "max(t.price)"],
                &["avg", "count", "max"],
            ),
            (
                "SELECT 1::int, x::text, CAST(y AS BIGINT), 'a'::varchar(3) FROM t",
                &["a", "b", "c", "d"],
                &["int4", "x", "y", "varchar"],
            ),
            ("SELECT now()::date", &["a"], &["now"]),
            (
                "SELECT price * 2, -price, price IS NULL FROM t",
                &["a", "b", "c"],
                &["?column?", "?column?", "?column?"],
            ),
            (
                "SELECT CASE WHEN x THEN 1 END, (x), \"Mixed\", Upper(s) FROM t",
                &["a", "b", "c", "d"],
                &["case", "x", "Mixed", "upper"],
            ),
            ("SELECT TIMESTAMP '2026-01-01'", &["a"], &["timestamp"]),
            (
                "SELECT count(*) AS n, sum(x) total FROM t",
                &["n", "total"],
                &["n", "total"],
            ),
            (
                "SELECT 1 + 1, * , count(*) FROM t",
                &["a", "x", "y", "c"],
                &["?column?", "x", "y", "count"],
            ),
            (
                "SELECT (SELECT max(x) FROM t), EXISTS (SELECT 1)",
                &["a", "b"],
                &["max", "exists"],
            ),
            ("SELECT 1 UNION ALL SELECT 2", &["Int64(1)"], &["?column?"]),
            (
                "SELECT current_user, CURRENT_TIMESTAMP",
                &["a", "b"],
                &["current_user", "current_timestamp"],
            ),
        ] {
            assert_eq!(names(sql, planned), expected, "{sql}");
        }
    }

    /// A rewrite that changed the number of columns leaves the planned names.
    #[test]
    fn a_select_list_that_does_not_fit_the_result_renames_nothing() {
        assert_eq!(names("SELECT 1, 2", &["a"]), ["a"]);
        assert_eq!(names("SELECT 1, *, 2", &["a"]), ["a"]);
    }
}
