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
//!
//! DataFusion refuses a select list whose items it would name alike (`SELECT
//! ts::text, ts`, `SELECT *, ts`, `SELECT 1, 1`, `SELECT a AS x, b AS x`: a cast
//! takes its operand's name), where PostgreSQL answers columns of the same name.
//! `name_columns` gives such items unique internal aliases before planning and
//! the names PostgreSQL gives them to the result.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast;
use tidemark_parser::Statement;

use crate::error::{ExecError, Result, sqlstate};

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
        let names = Self::of_select(leftmost_select(&query.body)?);
        names.renames().then_some(names)
    }

    /// Whether any column is named otherwise than DataFusion would.
    fn renames(&self) -> bool {
        self.leading
            .iter()
            .chain(self.trailing.iter().flatten())
            .any(Option::is_some)
    }

    /// The name of the select item at `index` is `name` (an item between two
    /// wildcards cannot be named: its position in the result is not known here).
    fn set(&mut self, index: usize, name: String, items: &[ast::SelectItem]) {
        if index < self.leading.len() {
            self.leading[index] = Some(name);
        } else if let Some(trailing) = &mut self.trailing {
            let from_end = items.len() - index;
            if let Some(slot) = trailing.len().checked_sub(from_end) {
                trailing[slot] = Some(name);
            }
        }
    }

    fn of_select(select: &ast::Select) -> Self {
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
        match first_wildcard {
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
        }
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

/// The names of `statement`'s result columns (as `ColumnNames::of`), after
/// giving the select items DataFusion would name alike unique aliases, in
/// every branch of the outermost query (SAMPLE BY and LATEST ON rewrite their
/// select lists and are left as they are). An ORDER BY naming such an item
/// names its alias; one naming two of them is ambiguous, as in PostgreSQL.
pub(crate) fn name_columns(statement: &mut Statement) -> Result<Option<ColumnNames>> {
    match statement {
        Statement::Standard(s) => match s.as_mut() {
            ast::Statement::Query(q) => name_query_columns(q),
            _ => Ok(None),
        },
        other => Ok(ColumnNames::of(other)),
    }
}

/// `name_columns` for a query (a cursor's).
pub(crate) fn name_query_columns(query: &mut ast::Query) -> Result<Option<ColumnNames>> {
    let Some(select) = leftmost_select(&query.body) else {
        return Ok(None);
    };
    let mut names = ColumnNames::of_select(select);
    // Bare names ORDER BY sorts by: a cast of such a column in the list would
    // share its name with the column DataFusion adds to sort by.
    let order_names: Vec<String> = match query.order_by.as_ref().map(|o| &o.kind) {
        Some(ast::OrderByKind::Expressions(keys)) => keys
            .iter()
            .filter_map(|k| match &k.expr {
                ast::Expr::Identifier(i) => Some(tidemark_parser::normalize_ident(i)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut leftmost: Option<Vec<Renamed>> = None;
    for_each_select(&mut query.body, &mut |select| {
        let sorted_by: &[String] = if leftmost.is_none() {
            &order_names
        } else {
            &[]
        };
        let renamed = alias_alike_items(&mut select.projection, sorted_by);
        if leftmost.is_none() {
            for r in &renamed {
                names.set(r.index, r.name.clone(), &select.projection);
            }
            leftmost = Some(renamed);
        }
    });
    let renamed = leftmost.unwrap_or_default();
    if let Some(order_by) = &mut query.order_by
        && let ast::OrderByKind::Expressions(keys) = &mut order_by.kind
    {
        for key in keys {
            let ast::Expr::Identifier(ident) = &key.expr else {
                continue;
            };
            // ORDER BY a name sorts by the output column of that name (as in
            // PostgreSQL), ambiguous when two different items carry it.
            let name = tidemark_parser::normalize_ident(ident);
            let mut named = renamed.iter().filter(|r| r.name == name);
            if let Some(first) = named.next() {
                if named.any(|other| other.expr != first.expr) {
                    return Err(ExecError::new(
                        sqlstate::AMBIGUOUS_COLUMN,
                        format!("ORDER BY \"{name}\" is ambiguous"),
                    ));
                }
                key.expr = ast::Expr::Identifier(first.alias.clone());
            }
        }
    }
    Ok(names.renames().then_some(names))
}

/// A select item given an internal alias: where it is, the name its column
/// takes, its expression and the internal alias.
struct Renamed {
    index: usize,
    name: String,
    expr: ast::Expr,
    alias: ast::Ident,
}

/// Calls `f` on every SELECT of a set operation, the leftmost first.
fn for_each_select(body: &mut ast::SetExpr, f: &mut dyn FnMut(&mut ast::Select)) {
    match body {
        ast::SetExpr::Select(s) => f(s),
        ast::SetExpr::Query(q) => for_each_select(&mut q.body, f),
        ast::SetExpr::SetOperation { left, right, .. } => {
            for_each_select(left, f);
            for_each_select(right, f);
        }
        _ => {}
    }
}

/// Gives the items DataFusion would name alike an internal alias each.
/// Alike: the same expression once casts are set aside (DataFusion names
/// `CAST(x AS T)` `x`), the same column, or the same alias; next to a
/// wildcard, every column and alias (the wildcard may hold a column of that
/// name, which DataFusion refuses beside an unqualified one); and a cast of a
/// column `sorted_by` names.
fn alias_alike_items(items: &mut [ast::SelectItem], sorted_by: &[String]) -> Vec<Renamed> {
    let wildcard = |item: &ast::SelectItem| {
        matches!(
            item,
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..)
        )
    };
    let wildcards = items.iter().position(wildcard).map(|first| {
        let last = items.iter().rposition(wildcard).unwrap_or(first);
        first..=last
    });
    let keys: Vec<Option<(String, bool)>> = items
        .iter()
        .map(|item| match item {
            ast::SelectItem::UnnamedExpr(e) => Some(planned_name(e)),
            ast::SelectItem::ExprWithAlias { alias, .. } => {
                Some((tidemark_parser::normalize_ident(alias), true))
            }
            _ => None,
        })
        .collect();
    let mut renamed = Vec::new();
    for (index, item) in items.iter_mut().enumerate() {
        let Some((key, column_like)) = &keys[index] else {
            continue;
        };
        // Between two wildcards an item's place in the result is not known.
        if wildcards.as_ref().is_some_and(|w| w.contains(&index)) {
            continue;
        }
        let alike = keys
            .iter()
            .enumerate()
            .any(|(other, k)| other != index && k.as_ref().is_some_and(|(k, _)| k == key));
        let cast_of_sorted = *column_like
            && matches!(item, ast::SelectItem::UnnamedExpr(e) if !is_column(e))
            && sorted_by.contains(key);
        if !(alike || cast_of_sorted || (wildcards.is_some() && *column_like)) {
            continue;
        }
        let alias = ast::Ident::with_quote('"', format!("?tidemark column {index}?"));
        let (expr, name) =
            match std::mem::replace(item, ast::SelectItem::Wildcard(Default::default())) {
                ast::SelectItem::UnnamedExpr(e) => {
                    let name = figure(&e).0;
                    (e, name)
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    (expr, tidemark_parser::normalize_ident(&alias))
                }
                other => {
                    *item = other;
                    continue;
                }
            };
        *item = ast::SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: alias.clone(),
        };
        renamed.push(Renamed {
            index,
            name,
            expr,
            alias,
        });
    }
    renamed
}

fn is_column(e: &ast::Expr) -> bool {
    matches!(
        e,
        ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_)
    )
}

/// About the name DataFusion gives an unaliased item, and whether it is a
/// column's: casts and parentheses set aside, a column by its last name part.
/// Parameters count as one another (`$1::text, $2::varchar` bound to one value
/// are the same expression to DataFusion).
fn planned_name(e: &ast::Expr) -> (String, bool) {
    use ast::Expr;
    match e {
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => planned_name(inner),
        Expr::Identifier(i) => (tidemark_parser::normalize_ident(i), true),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => (tidemark_parser::normalize_ident(i), true),
            None => (String::new(), false),
        },
        other => (any_parameter(&other.to_string().to_lowercase()), false),
    }
}

/// `text` with each parameter (`$1`, `$12`) written `$`.
fn any_parameter(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' {
            while chars.next_if(char::is_ascii_digit).is_some() {}
        }
    }
    out
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
        // `bids[1]`, `grid[1][2]`, `bids[2:3]`: named after the array, as in PostgreSQL.
        Expr::CompoundFieldAccess { root, access_chain }
            if access_chain
                .iter()
                .all(|a| matches!(a, ast::AccessExpr::Subscript(_))) =>
        {
            figure(root)
        }
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
        // PostgreSQL reads TRUE and FALSE as casts of text to bool.
        Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_)) => weak("bool"),
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
                "SELECT true, false, NULL, true::int",
                &["a", "b", "c", "d"],
                &["bool", "bool", "?column?", "int4"],
            ),
            (
                "SELECT current_user, CURRENT_TIMESTAMP",
                &["a", "b"],
                &["current_user", "current_timestamp"],
            ),
        ] {
            assert_eq!(names(sql, planned), expected, "{sql}");
        }
    }

    /// Items that differ only in their parameters get internal aliases: bound
    /// to one value, DataFusion would name them alike and refuse the list.
    #[test]
    fn items_that_differ_only_in_parameters_are_told_apart() {
        let mut q = crate::rewrite::parse_query("SELECT $1::text, $2::varchar, $3 + 1, $4 + 1, x")
            .expect("parses");
        name_query_columns(&mut q).expect("names");
        let sql = q.to_string();
        for i in 0..4 {
            assert!(
                sql.contains(&format!("AS \"?tidemark column {i}?\"")),
                "{sql}"
            );
        }
        assert!(!sql.contains("column 4?"), "{sql}");
    }

    /// A rewrite that changed the number of columns leaves the planned names.
    #[test]
    fn a_select_list_that_does_not_fit_the_result_renames_nothing() {
        assert_eq!(names("SELECT 1, 2", &["a"]), ["a"]);
        assert_eq!(names("SELECT 1, *, 2", &["a"]), ["a"]);
    }
}
