//! Rewrites of client catalog queries that PostgreSQL runs and DataFusion
//! cannot run as written, applied (after `datafusion-pg-catalog`'s own) only to
//! statements that read the catalog. SQLAlchemy's table reflection (what
//! pandas' `to_sql(if_exists="replace")` and `read_sql_table` do) needs them:
//!
//! - A scalar subquery guarded by `CASE WHEN c THEN (subquery) END`: the guard
//!   moves into the subquery's WHERE (DataFusion cannot run a correlated
//!   subquery inside CASE).
//! - A correlated scalar subquery that is not an aggregate (`(SELECT
//!   pg_get_expr(...) FROM pg_attrdef WHERE adrelid = attrelid ...)`):
//!   DataFusion decorrelates only aggregated ones, so the single value is taken
//!   with `first_value(...)`. PostgreSQL would fail if such a subquery found
//!   two rows; catalog lookups by key find at most one.
//! - `unnest(indkey)`, `generate_subscripts(indkey, 1)` and `conkey[i]` over the catalog's
//!   vector columns (`int2vector`/`oidvector`, which the catalog keeps as
//!   space-separated text): unnested as integer lists.
//! - `ARRAY(subquery)`: the subquery aggregated with `array_agg`.
//! - A function in FROM with an alias: `generate_series(...) AS i` names its
//!   column `i`; a scalar function (`string_to_array(...) s`) yields one row.
//! - `x IN (subquery)` as a CASE condition: `array_has` of the aggregated
//!   subquery (DataFusion runs IN subqueries only in WHERE).
//! - ORDER BY an expression with a subquery (Grafana's table list), which
//!   DataFusion cannot sort by: the keys become columns of an inner query.
//! - `pg_class.reloptions` and `relacl` (and `pg_attribute.attacl`): a NULL text array, as
//!   PostgreSQL has them for a table without storage options or grants; and
//!   `unnest` of them in FROM yields no row.
//! - `pg_policy.polroles` (`oid[]`): a NULL integer array, compared with a
//!   string literal as one (psql's `\dp`); the system column `tableoid`: 0, an
//!   oid no description is filed under (psql's `\dd`, `\dL`).
//! - `pg_settings` reads the session's settings (`pg_settings.rs`),
//!   `pg_stat_activity` the server's connections (`activity.rs`).
//! - `pg_indexes` is qualified with `pg_catalog` (`catalog_indexes.rs` adds it).
//! - `information_schema.columns` becomes a view of DataFusion's with
//!   PostgreSQL's type names (`double precision`, not `Float64`) and `udt_name`;
//!   `information_schema.views` lists the views only, with PostgreSQL's columns.
//! - `pg_table_size`, `pg_relation_size`, `pg_total_relation_size` of a
//!   `pg_class` oid or a table's name: the table's bytes on disk.
//! - `LIKE ... ESCAPE 'c'` with an escape character other than backslash
//!   (SQLAlchemy escapes with `/`): the pattern's escapes become backslashes.
//! - `information_schema._pg_expandarray(indkey)` (pgJDBC's `getPrimaryKeys`,
//!   `getIndexInfo`, `getBestRowIdentifier`): the unnested `{x, n}` rows of
//!   `tidemark_expand_array`, and a record's field `(e).x` as `e['x']`.
//!   Subscripts of `int2vector`/`oidvector` columns (`indoption[k]`, also through
//!   an alias the query gives them) count from 0 as in PostgreSQL.
//! - `typinput = 'pg_catalog.array_in'::regproc` (pgJDBC's type cache): the
//!   catalog keeps `regproc` columns as the function's name, so the name is
//!   compared.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast;

/// The catalog's vector columns, kept as space-separated numbers.
const VECTOR_COLUMNS: &[&str] = &[
    "indkey",
    "indclass",
    "indoption",
    "indcollation",
    "conkey",
    "confkey",
    "conpfeqop",
    "conppeqop",
    "conffeqop",
];

/// The vector columns that are `int2vector`/`oidvector` in PostgreSQL, whose
/// subscripts start at 0 (the others are arrays, from 1).
const ZERO_BASED_VECTOR_COLUMNS: &[&str] = &["indkey", "indclass", "indoption", "indcollation"];

/// `pg_type` columns of type `regproc`, which the catalog keeps as the name of
/// the function.
const REGPROC_COLUMNS: &[&str] = &[
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
];

/// Array columns of `pg_class` and `pg_attribute` that are NULL for every
/// Tidemark table (no storage options, default privileges), some missing from
/// the catalog, some there as text.
const UNSET_COLUMNS: &[&str] = &[
    "reloptions",
    "relacl",
    "attacl",
    // Access privileges of schemas, types and tablespaces (psql's `\dn+`,
    // `\dT+`, `\db+`): the defaults, NULL in PostgreSQL.
    "nspacl",
    "typacl",
    "spcacl",
    // Per-role settings and event trigger tags (psql's `\drds`, `\dy`): none.
    "setconfig",
    "evttags",
];

/// `oid[]` columns of catalogs Tidemark keeps empty (`pg_policy.polroles`):
/// typed as integer arrays, so that psql's `\dp` can plan `oid = ANY (polroles)`.
const UNSET_OID_ARRAY_COLUMNS: &[&str] = &["polroles"];

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "first_value",
    "last_value",
    "json_agg",
];

/// DataFusion's `information_schema.columns` with PostgreSQL's type names in
/// `data_type` and a `udt_name` column (it gives Arrow's: `Float64`).
/// JSON, JSONB and UUID columns are named by their table column's type
/// (`catalog_types.rs`), as the Arrow type does not tell them.
const COLUMNS_VIEW: &str = "SELECT table_catalog, table_schema, table_name, column_name, \
     ordinal_position, column_default, is_nullable, \
     tidemark_column_type_name(table_name, column_name, tidemark_sql_type_name(data_type), false) \
     AS data_type, character_maximum_length, \
     character_octet_length, numeric_precision, numeric_precision_radix, numeric_scale, \
     datetime_precision, interval_type, \
     tidemark_column_type_name(table_name, column_name, tidemark_udt_name(data_type), true) \
     AS udt_name, table_catalog AS udt_catalog, 'pg_catalog' AS udt_schema \
     FROM tidemark.information_schema.columns";

/// PostgreSQL's `information_schema.views`: one row per view, with its
/// definition as written. DataFusion's has a `definition` column and a row for
/// every table.
const VIEWS_VIEW: &str = "SELECT 'tidemark' AS table_catalog, 'public' AS table_schema, \
     view_name AS table_name, view_sql AS view_definition, 'NONE' AS check_option, \
     'NO' AS is_updatable, 'NO' AS is_insertable_into, 'NO' AS is_trigger_updatable, \
     'NO' AS is_trigger_deletable, 'NO' AS is_trigger_insertable_into FROM views()";

/// `pg_catalog.pg_attribute` with the type OIDs of JSON, JSONB and UUID columns
/// (which `datafusion-pg-catalog` gives as `text` and `bytea`) and the type
/// modifiers of NUMERIC columns (it gives -1), looked up by relation name
/// (`catalog_types.rs`).
const ATTRIBUTE_VIEW: &str = "SELECT a.attrelid, a.attname, \
     tidemark_attribute_type(c.relname, a.attname, a.atttypid) AS atttypid, a.attstattarget, \
     a.attlen, a.attnum, a.attndims, a.attcacheoff, \
     tidemark_attribute_typmod(c.relname, a.attname, a.atttypmod) AS atttypmod, \
     a.attbyval, a.attalign, \
     a.attstorage, a.attcompression, a.attnotnull, a.atthasdef, a.atthasmissing, \
     a.attidentity, a.attgenerated, a.attisdropped, a.attislocal, a.attinhcount, \
     a.attcollation, a.attacl, a.attoptions, a.attfdwoptions, a.attmissingval \
     FROM tidemark.pg_catalog.pg_attribute a \
     LEFT JOIN tidemark.pg_catalog.pg_class c ON c.oid = a.attrelid";

/// Applies the rewrites above to `statement`.
pub(crate) fn rewrite(statement: &mut ast::Statement) {
    let _ = ast::VisitMut::visit(statement, &mut Relations);
    let vectors = Vectors::of(statement);
    let _ = ast::visit_expressions_mut(statement, |e| {
        rewrite_expr(e, &vectors);
        ControlFlow::<()>::Continue(())
    });
}

/// The names under which a statement reads the catalog's vector columns: the
/// columns themselves and the aliases its select lists give them (pgJDBC's
/// `i.indoption AS I_INDOPTION`, subscripted by an outer query), each with
/// whether its subscripts count from 0.
struct Vectors {
    aliases: Vec<(String, bool)>,
}

impl Vectors {
    fn of(statement: &ast::Statement) -> Vectors {
        struct Aliases(Vec<(String, bool)>);
        impl ast::Visitor for Aliases {
            type Break = ();
            fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
                if let ast::SetExpr::Select(select) = query.body.as_ref() {
                    for item in &select.projection {
                        if let ast::SelectItem::ExprWithAlias { expr, alias } = item
                            && let Some(zero_based) = Vectors::column_zero_based(expr)
                        {
                            self.0.push((alias.value.to_ascii_lowercase(), zero_based));
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut aliases = Aliases(Vec::new());
        let _ = ast::Visit::visit(statement, &mut aliases);
        Vectors { aliases: aliases.0 }
    }

    /// Whether `e` names one of the catalog's vector columns, and if so whether
    /// it is a 0-based one.
    fn column_zero_based(e: &ast::Expr) -> Option<bool> {
        let name = last_name(e)?;
        VECTOR_COLUMNS
            .contains(&name.as_str())
            .then(|| ZERO_BASED_VECTOR_COLUMNS.contains(&name.as_str()))
    }

    /// Like `column_zero_based`, for a column or an alias of one.
    fn zero_based(&self, e: &ast::Expr) -> Option<bool> {
        Self::column_zero_based(e).or_else(|| {
            let name = last_name(e)?;
            self.aliases
                .iter()
                .find(|(alias, _)| *alias == name)
                .map(|(_, zero_based)| *zero_based)
        })
    }
}

/// The last part of a (compound) identifier, lowercased.
fn last_name(e: &ast::Expr) -> Option<String> {
    let last = match e {
        ast::Expr::Identifier(i) => i,
        ast::Expr::CompoundIdentifier(parts) => parts.last()?,
        _ => return None,
    };
    Some(last.value.to_ascii_lowercase())
}

/// The rewrites of relations and whole queries: `information_schema.columns` by
/// `COLUMNS_VIEW`, `information_schema.views` by `VIEWS_VIEW`, and `pg_settings` by the session's settings (`pg_settings.rs`),
/// keeping their aliases; functions in FROM; ORDER BY keys holding subqueries.
struct Relations;

impl ast::VisitorMut for Relations {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<Self::Break> {
        if let Some(ordered) = order_by_subquery_outside(query) {
            *query = ordered;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(
        &mut self,
        factor: &mut ast::TableFactor,
    ) -> ControlFlow<Self::Break> {
        let ast::TableFactor::Table {
            name, alias, args, ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        if let Some(args) = args {
            if let Some(replacement) = function_in_from(name, args, alias) {
                *factor = replacement;
            }
            return ControlFlow::Continue(());
        }
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase())
            .collect();
        // `pg_indexes` (catalog_indexes.rs) is not among the names the
        // catalog crate finds on the search path: qualify it.
        if parts == ["pg_indexes"] {
            name.0.insert(
                0,
                ast::ObjectNamePart::Identifier(ast::Ident::new("pg_catalog")),
            );
            return ControlFlow::Continue(());
        }
        let (view, default_alias) = match parts.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["information_schema", "columns"] => (COLUMNS_VIEW.to_string(), "columns"),
            ["information_schema", "views"] => (VIEWS_VIEW.to_string(), "views"),
            ["pg_catalog", "pg_attribute"] | ["pg_attribute"] => {
                (ATTRIBUTE_VIEW.to_string(), "pg_attribute")
            }
            ["pg_catalog", "pg_settings"] | ["pg_settings"] => (
                format!("SELECT * FROM {}()", crate::pg_settings::FUNCTION),
                "pg_settings",
            ),
            ["pg_catalog", "pg_stat_activity"] | ["pg_stat_activity"] => (
                format!("SELECT * FROM {}()", crate::activity::PG_STAT_ACTIVITY),
                "pg_stat_activity",
            ),
            _ => return ControlFlow::Continue(()),
        };
        let Ok(subquery) = crate::rewrite::parse_query(&view) else {
            // Constants that parse: never taken.
            return ControlFlow::Continue(());
        };
        let alias = alias.take().unwrap_or_else(|| ast::TableAlias {
            explicit: true,
            name: ast::Ident::new(default_alias),
            columns: vec![],
            at: None,
        });
        *factor = ast::TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

/// `SELECT a, b FROM ... ORDER BY CASE WHEN x IN (subquery) ... END, 1` (Grafana's
/// table list), which DataFusion cannot sort by, as
/// `SELECT c0 AS a, c1 AS b FROM (SELECT a AS c0, b AS c1, CASE ... END AS o0
/// FROM ...) ORDER BY o0, 1`: the sort keys become columns of an inner query.
fn order_by_subquery_outside(query: &ast::Query) -> Option<ast::Query> {
    let order = query.order_by.as_ref()?;
    let ast::OrderByKind::Expressions(keys) = &order.kind else {
        return None;
    };
    if !keys.iter().any(|k| contains_subquery(&k.expr)) {
        return None;
    }
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let ungrouped = matches!(&select.group_by, ast::GroupByExpr::Expressions(v, _) if v.is_empty());
    if select.distinct.is_some() || !ungrouped {
        return None;
    }
    let mut inner = select.as_ref().clone();
    let mut outer_columns = Vec::new();
    for (i, item) in inner.projection.iter_mut().enumerate() {
        let column = format!("__tidemark_col_{i}");
        let (expr, name) = match item {
            ast::SelectItem::UnnamedExpr(e) => (e.clone(), None),
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                (expr.clone(), Some(alias.to_string()))
            }
            _ => return None,
        };
        outer_columns.push(match name {
            Some(alias) => format!("{column} AS {alias}"),
            None => column.clone(),
        });
        *item = ast::SelectItem::ExprWithAlias {
            expr,
            alias: ast::Ident::new(column),
        };
    }
    let mut outer_keys = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let mut key = key.clone();
        let positional =
            matches!(&key.expr, ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)));
        if !positional {
            let column = format!("__tidemark_order_{k}");
            inner.projection.push(ast::SelectItem::ExprWithAlias {
                expr: key.expr.clone(),
                alias: ast::Ident::new(column.clone()),
            });
            key.expr = ast::Expr::Identifier(ast::Ident::new(column));
        }
        outer_keys.push(key);
    }
    let text = format!(
        "SELECT {} FROM ({inner}) AS __tidemark_ordered",
        outer_columns.join(", ")
    );
    let mut outer = *crate::rewrite::parse_query(&text).ok()?;
    outer.with = query.with.clone();
    outer.order_by = Some(ast::OrderBy {
        kind: ast::OrderByKind::Expressions(outer_keys),
        interpolate: None,
    });
    outer.limit_clause = query.limit_clause.clone();
    outer.fetch = query.fetch.clone();
    Some(outer)
}

fn contains_subquery(e: &ast::Expr) -> bool {
    ast::visit_expressions(e, |x| match x {
        ast::Expr::Subquery(_) | ast::Expr::InSubquery { .. } | ast::Expr::Exists { .. } => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Scalar functions that clients call in FROM, as PostgreSQL allows (one row).
const SCALAR_FUNCTIONS_IN_FROM: &[&str] =
    &["string_to_array", "current_setting", "current_schemas"];

/// A function in FROM with an alias, read as PostgreSQL reads it (Grafana's
/// table list: `FROM generate_series(...) AS i, string_to_array(...) s`): the
/// alias names the single column too (`i`, not DataFusion's `value`), and a
/// scalar function yields one row.
fn function_in_from(
    name: &ast::ObjectName,
    args: &ast::TableFunctionArgs,
    alias: &mut Option<ast::TableAlias>,
) -> Option<ast::TableFactor> {
    let alias = alias.as_mut().filter(|a| a.columns.is_empty())?;
    let function = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    // `unnest(tc.reloptions) x` (psql's `\d+`): the column is NULL for every
    // Tidemark table, so the function yields no row.
    if function == "unnest"
        && let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))] = args.args.as_slice()
        && names_unset_column(arg)
    {
        let empty = format!("SELECT CAST(NULL AS TEXT) AS {} WHERE false", alias.name);
        let subquery = crate::rewrite::parse_query(&empty).ok()?;
        return Some(ast::TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias.clone()),
            sample: None,
        });
    }
    if function == "generate_series" {
        alias.columns.push(ast::TableAliasColumnDef::from_name(
            alias.name.value.clone(),
        ));
        return None;
    }
    if !SCALAR_FUNCTIONS_IN_FROM.contains(&function.as_str()) {
        return None;
    }
    let call = format!(
        "SELECT {name}({}) AS {}",
        args.args
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        alias.name
    );
    let subquery = crate::rewrite::parse_query(&call).ok()?;
    Some(ast::TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(alias.clone()),
        sample: None,
    })
}

/// A NULL array of `element`s: what a column no Tidemark relation sets reads as.
fn null_array(element: ast::DataType) -> ast::Expr {
    ast::Expr::Cast {
        kind: ast::CastKind::Cast,
        expr: Box::new(ast::Expr::Value(ast::Value::Null.with_empty_span())),
        data_type: ast::DataType::Array(ast::ArrayElemTypeDef::SquareBracket(
            Box::new(element),
            None,
        )),
        array: false,
        format: None,
    }
}

/// Whether `e` is the NULL integer array an unset `oid[]` column became.
fn is_null_int_array(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Cast { expr, data_type: ast::DataType::Array(
            ast::ArrayElemTypeDef::SquareBracket(element, None)), .. }
        if matches!(expr.as_ref(), ast::Expr::Value(v) if v.value == ast::Value::Null)
            && **element == ast::DataType::Int(None))
}

fn rewrite_expr(e: &mut ast::Expr, vectors: &Vectors) {
    // `polroles <> '{0}'` (psql's `\dp`), the column already read as a NULL
    // array (children are rewritten first): the literal is compared as one too,
    // and the comparison is NULL as it is in PostgreSQL for a NULL column.
    if let ast::Expr::BinaryOp { left, right, .. } = e
        && is_null_int_array(left)
        && matches!(right.as_ref(), ast::Expr::Value(v) if matches!(v.value, ast::Value::SingleQuotedString(_)))
    {
        **right = null_array(ast::DataType::Int(None));
        return;
    }
    if let Some(name) = column_name(e) {
        let replacement = match name.as_str() {
            // The system column `tableoid` (psql's `\dd`, `\dL` join descriptions
            // on it), which the catalog does not have: no object has a
            // description here, so any oid finds none; PostgreSQL's catalogs
            // have oids above 0.
            "tableoid" => Some(ast::Expr::Value(
                ast::Value::Number("0".into(), false).with_empty_span(),
            )),
            n if UNSET_OID_ARRAY_COLUMNS.contains(&n) => Some(null_array(ast::DataType::Int(None))),
            // A NULL array, as the arrays PostgreSQL has there (`text[]`,
            // `aclitem[]`): psql's `\dp` passes `relacl` to `array_to_string`.
            n if UNSET_COLUMNS.contains(&n) => Some(null_array(ast::DataType::Text)),
            _ => None,
        };
        if let Some(replacement) = replacement {
            *e = replacement;
            return;
        }
    }
    match e {
        ast::Expr::Subquery(q) => aggregate_scalar_subquery(q),
        ast::Expr::Case { conditions, .. } => {
            for when in conditions.iter_mut() {
                if let Some(membership) = membership_as_array(&when.condition) {
                    when.condition = membership;
                }
            }
            if let Some(subquery) = guarded_subquery(e) {
                *e = subquery;
            }
        }
        // `(e).x`, a field of a record: DataFusion reads a struct's field as `e['x']`.
        ast::Expr::CompoundFieldAccess { root, access_chain }
            if !matches!(
                root.as_ref(),
                ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_)
            ) =>
        {
            for access in access_chain.iter_mut() {
                if let ast::AccessExpr::Dot(ast::Expr::Identifier(field)) = access {
                    let name = if field.quote_style.is_some() {
                        field.value.clone()
                    } else {
                        field.value.to_ascii_lowercase()
                    };
                    *access = ast::AccessExpr::Subscript(ast::Subscript::Index {
                        index: ast::Expr::Value(
                            ast::Value::SingleQuotedString(name).with_empty_span(),
                        ),
                    });
                }
            }
        }
        // `c.conkey[i]`: a subscript of a vector column reads it as an integer list.
        ast::Expr::CompoundFieldAccess { root, access_chain } => {
            // The name is the root and the dotted parts before the first subscript.
            let dots = access_chain
                .iter()
                .take_while(|a| matches!(a, ast::AccessExpr::Dot(ast::Expr::Identifier(_))))
                .count();
            let mut parts: Vec<ast::Ident> = match root.as_ref() {
                ast::Expr::Identifier(i) => vec![i.clone()],
                ast::Expr::CompoundIdentifier(p) => p.clone(),
                _ => return,
            };
            parts.extend(access_chain[..dots].iter().filter_map(|a| match a {
                ast::AccessExpr::Dot(ast::Expr::Identifier(i)) => Some(i.clone()),
                _ => None,
            }));
            let name = ast::Expr::CompoundIdentifier(parts);
            if dots == access_chain.len() {
                return;
            }
            let Some(zero_based) = vectors.zero_based(&name) else {
                return;
            };
            let Ok(list) =
                crate::rewrite::parse_expr(&format!("CAST(string_to_array({name}, ' ') AS INT[])"))
            else {
                return;
            };
            **root = list;
            access_chain.drain(..dots);
            // `indoption[0]` is the first element; DataFusion's lists count from 1.
            if zero_based
                && let Some(ast::AccessExpr::Subscript(ast::Subscript::Index { index })) =
                    access_chain.first_mut()
                && let Ok(shifted) = crate::rewrite::parse_expr(&format!("({index}) + 1"))
            {
                *index = shifted;
            }
        }
        // `typinput = 'pg_catalog.array_in'::regproc`: the function's name.
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq | ast::BinaryOperator::NotEq,
            right,
        } => {
            let regproc_column =
                |e: &ast::Expr| last_name(e).is_some_and(|n| REGPROC_COLUMNS.contains(&n.as_str()));
            let (column, other) = if regproc_column(left) {
                (left, right)
            } else {
                (right, left)
            };
            if regproc_column(column)
                && let Some(name) = regproc_literal(other)
            {
                **other = ast::Expr::Value(ast::Value::SingleQuotedString(name).with_empty_span());
            }
        }
        ast::Expr::Function(f) if array_of_subquery(f).is_some() => {
            if let Some(subquery) = array_of_subquery(f) {
                *e = subquery;
            }
        }
        ast::Expr::Function(f) if view_definition_of(f).is_some() => {
            if let Some(call) = view_definition_of(f) {
                *e = call;
            }
        }
        ast::Expr::Function(f) if relation_size_of(f).is_some() => {
            if let Some(call) = relation_size_of(f) {
                *e = call;
            }
        }
        ast::Expr::Function(f) => {
            let Some(name) = function_name(f) else { return };
            let Some(vector) = single_vector_argument(f) else {
                return;
            };
            let replacement = match name.as_str() {
                "_pg_expandarray" => {
                    format!("unnest({}({vector}))", crate::pg_functions::EXPAND_ARRAY)
                }
                "unnest" => format!("unnest(CAST(string_to_array({vector}, ' ') AS INT[]))"),
                "generate_subscripts" => format!(
                    "unnest(range(1, CAST(array_length(string_to_array({vector}, ' '), 1) AS BIGINT) + 1))"
                ),
                _ => return,
            };
            if let Ok(new) = crate::rewrite::parse_expr(&replacement) {
                *e = new;
            }
        }
        ast::Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | ast::Expr::ILike {
            pattern,
            escape_char,
            ..
        } => {
            let Some(ast::Value::SingleQuotedString(escape)) =
                escape_char.as_ref().map(|v| v.value.clone())
            else {
                return;
            };
            if escape == "\\" || escape.chars().count() != 1 {
                return;
            }
            // `\` in the pattern was a plain character: double it first.
            let text = format!(
                "replace(replace({pattern}, '\\', '\\\\'), {}, '\\')",
                crate::rewrite::string_literal(&escape)
            );
            if let Ok(new) = crate::rewrite::parse_expr(&text) {
                **pattern = new;
                *escape_char = None;
            }
        }
        _ => {}
    }
}

/// The function name of `'schema.name'::regproc` (`name`), which is how the
/// catalog shows a `regproc` value. `datafusion-pg-catalog`'s parser has
/// already made the cast a lookup of the function's oid, `(SELECT oid FROM
/// pg_catalog.pg_proc WHERE proname = 'schema.name')`; both forms are read.
fn regproc_literal(e: &ast::Expr) -> Option<String> {
    let name = match e {
        ast::Expr::Cast {
            expr, data_type, ..
        } => {
            let type_name = data_type.to_string().to_ascii_lowercase();
            if type_name != "regproc" && type_name != "pg_catalog.regproc" {
                return None;
            }
            string_literal(expr)?
        }
        ast::Expr::Subquery(query) => {
            let ast::SetExpr::Select(select) = query.body.as_ref() else {
                return None;
            };
            let [from] = select.from.as_slice() else {
                return None;
            };
            let ast::TableFactor::Table { name: table, .. } = &from.relation else {
                return None;
            };
            let reads_pg_proc = table
                .0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|t| t.value.eq_ignore_ascii_case("pg_proc"));
            let Some(ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            }) = &select.selection
            else {
                return None;
            };
            if !reads_pg_proc || last_name(left).as_deref() != Some("proname") {
                return None;
            }
            string_literal(right)?
        }
        _ => return None,
    };
    Some(name.rsplit('.').next().unwrap_or(name).to_string())
}

fn string_literal(e: &ast::Expr) -> Option<&str> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// The first argument of a call of 1 to `max_args` plain arguments, without
/// the casts and parentheses around it (`'t'::regclass`, `('16390'::oid)`).
fn first_argument_uncast(f: &ast::Function, max_args: usize) -> Option<&ast::Expr> {
    let ast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.args.len() > max_args {
        return None;
    }
    let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(first)) = list.args.first()? else {
        return None;
    };
    let mut arg = first;
    while let ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) = arg {
        arg = expr;
    }
    Some(arg)
}

/// `pg_get_viewdef(c.oid [, pretty])` as `tidemark_view_definition` of the
/// view's name (`c.relname`), and of an oid written out (psql's `\d+ v` sends
/// `pg_get_viewdef('16390'::oid, true)`) as that lookup in `pg_class`.
fn view_definition_of(f: &ast::Function) -> Option<ast::Expr> {
    if function_name(f)?.as_str() != "pg_get_viewdef" {
        return None;
    }
    let sql = match first_argument_uncast(f, 2)? {
        ast::Expr::CompoundIdentifier(parts)
            if parts.len() == 2 && parts[1].value.eq_ignore_ascii_case("oid") =>
        {
            format!("tidemark_view_definition({}.relname)", parts[0])
        }
        ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case("oid") => {
            "tidemark_view_definition(relname)".to_string()
        }
        ast::Expr::Value(v) => {
            let oid: i64 = match &v.value {
                ast::Value::Number(n, _) => n.parse().ok()?,
                ast::Value::SingleQuotedString(s) => match s.parse() {
                    Ok(n) => n,
                    // `pg_get_viewdef('name')`.
                    Err(_) => {
                        return crate::rewrite::parse_expr(&format!(
                            "tidemark_view_definition({v})"
                        ))
                        .ok();
                    }
                },
                _ => return None,
            };
            format!(
                "(SELECT tidemark_view_definition(relname) FROM pg_catalog.pg_class WHERE oid = {oid})"
            )
        }
        _ => return None,
    };
    crate::rewrite::parse_expr(&sql).ok()
}

/// `pg_table_size(c.oid)` (psql's `\dt+`), `pg_relation_size('t')`,
/// `pg_total_relation_size('t'::regclass)` as `tidemark_relation_size` of the
/// table's name (`c.relname` for a `pg_class` row's oid): the bytes on disk.
/// Tidemark has no indexes or TOAST, so the three are the same.
fn relation_size_of(f: &ast::Function) -> Option<ast::Expr> {
    let name = function_name(f)?;
    if !matches!(
        name.as_str(),
        "pg_table_size" | "pg_relation_size" | "pg_total_relation_size"
    ) {
        return None;
    }
    let relation = match first_argument_uncast(f, 1)? {
        ast::Expr::CompoundIdentifier(parts)
            if parts.len() == 2 && parts[1].value.eq_ignore_ascii_case("oid") =>
        {
            format!("{}.relname", parts[0])
        }
        ast::Expr::Value(v) if matches!(v.value, ast::Value::SingleQuotedString(_)) => {
            v.to_string()
        }
        // `'t'::regclass`, which datafusion-pg-catalog has made a lookup of
        // `c.oid` in pg_class (taken with `first_value` above): the same
        // lookup of `c.relname`.
        ast::Expr::Subquery(q) => {
            let mut q = q.clone();
            let ast::SetExpr::Select(select) = q.body.as_mut() else {
                return None;
            };
            let [ast::SelectItem::UnnamedExpr(item)] = select.projection.as_mut_slice() else {
                return None;
            };
            let looked_up = match item {
                ast::Expr::Function(f) if function_name(f).as_deref() == Some("first_value") => {
                    match &mut f.args {
                        ast::FunctionArguments::List(list) => match list.args.as_mut_slice() {
                            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))] => arg,
                            _ => return None,
                        },
                        _ => return None,
                    }
                }
                other => other,
            };
            let ast::Expr::CompoundIdentifier(parts) = looked_up else {
                return None;
            };
            let [_, column] = parts.as_mut_slice() else {
                return None;
            };
            if !column.value.eq_ignore_ascii_case("oid") {
                return None;
            }
            *column = ast::Ident::new("relname");
            format!("({q})")
        }
        _ => return None,
    };
    crate::rewrite::parse_expr(&format!(
        "{}(CAST({relation} AS TEXT))",
        crate::system::RELATION_SIZE
    ))
    .ok()
}

/// `ARRAY(SELECT x FROM ...)` (psql's `\du`, `\d+`) as `coalesce((SELECT
/// array_agg(x) FROM ...), make_array())`, which DataFusion plans (an empty
/// array where no row comes, as PostgreSQL's `{}`); the subquery's ORDER BY is
/// dropped.
fn array_of_subquery(f: &ast::Function) -> Option<ast::Expr> {
    if function_name(f).as_deref() != Some("array") {
        return None;
    }
    let ast::FunctionArguments::Subquery(q) = &f.args else {
        return None;
    };
    let mut q = q.clone();
    q.order_by = None;
    let ast::SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    let [item] = select.projection.as_mut_slice() else {
        return None;
    };
    let (ast::SelectItem::UnnamedExpr(expr) | ast::SelectItem::ExprWithAlias { expr, .. }) = item
    else {
        return None;
    };
    *expr = crate::rewrite::parse_expr(&format!("array_agg({expr})")).ok()?;
    crate::rewrite::parse_expr(&format!("coalesce(({q}), make_array())")).ok()
}

/// `x [NOT] IN (SELECT y FROM ...)` as a CASE condition (Grafana's table list),
/// which DataFusion runs only in WHERE, as `[NOT] array_has((SELECT
/// array_agg(y) FROM ...), x)`.
fn membership_as_array(condition: &ast::Expr) -> Option<ast::Expr> {
    let ast::Expr::InSubquery {
        expr,
        subquery,
        negated,
    } = condition
    else {
        return None;
    };
    let mut q = subquery.clone();
    let ast::SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    let [item] = select.projection.as_mut_slice() else {
        return None;
    };
    let (ast::SelectItem::UnnamedExpr(value) | ast::SelectItem::ExprWithAlias { expr: value, .. }) =
        item
    else {
        return None;
    };
    *value = crate::rewrite::parse_expr(&format!("array_agg({value})")).ok()?;
    let not = if *negated { "NOT " } else { "" };
    crate::rewrite::parse_expr(&format!("{not}array_has(({q}), {expr})")).ok()
}

/// Whether `e` names a catalog column the catalog does not have and that is
/// NULL for every Tidemark relation (`pg_class.reloptions`, `pg_class.relacl`).
fn names_unset_column(e: &ast::Expr) -> bool {
    column_name(e).is_some_and(|n| UNSET_COLUMNS.contains(&n.as_str()))
}

/// The (lower-case) column an identifier names, qualified or not.
fn column_name(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// `CASE WHEN c THEN (SELECT x FROM f WHERE w) [ELSE NULL] END` as the
/// equivalent `(SELECT x FROM f WHERE c AND w)`: DataFusion decorrelates a
/// scalar subquery in a projection, not one inside a CASE branch.
fn guarded_subquery(e: &ast::Expr) -> Option<ast::Expr> {
    let ast::Expr::Case {
        operand: None,
        conditions,
        else_result,
        ..
    } = e
    else {
        return None;
    };
    let null_else = match else_result.as_deref() {
        None => true,
        Some(ast::Expr::Value(v)) => v.value == ast::Value::Null,
        Some(_) => false,
    };
    let [when] = conditions.as_slice() else {
        return None;
    };
    let ast::Expr::Subquery(q) = &when.result else {
        return None;
    };
    if !null_else {
        return None;
    }
    let mut q = q.clone();
    let ast::SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    let guard = ast::Expr::Nested(Box::new(when.condition.clone()));
    select.selection = Some(match select.selection.take() {
        Some(w) => ast::Expr::BinaryOp {
            left: Box::new(guard),
            op: ast::BinaryOperator::And,
            right: Box::new(ast::Expr::Nested(Box::new(w))),
        },
        None => guard,
    });
    Some(ast::Expr::Subquery(q))
}

/// `(SELECT x FROM ...)` → `(SELECT first_value(x) FROM ...)` when the
/// subquery is a plain one-column SELECT without aggregation.
fn aggregate_scalar_subquery(q: &mut ast::Query) {
    let ast::SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let grouped = !matches!(&select.group_by, ast::GroupByExpr::Expressions(v, _) if v.is_empty());
    if grouped || select.projection.len() != 1 || select.having.is_some() {
        return;
    }
    let expr = match &mut select.projection[0] {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return,
    };
    if contains_aggregate(expr) {
        return;
    }
    let text = format!("first_value({expr})");
    if let Ok(new) = crate::rewrite::parse_expr(&text) {
        *expr = new;
    }
}

fn contains_aggregate(e: &ast::Expr) -> bool {
    ast::visit_expressions(e, |x| match x {
        ast::Expr::Function(f)
            if function_name(f).is_some_and(|n| AGGREGATES.contains(&n.as_str())) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn function_name(f: &ast::Function) -> Option<String> {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
}

/// The vector column a call's first argument names (`pg_index.indkey`).
fn single_vector_argument(f: &ast::Function) -> Option<String> {
    let ast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))) = list.args.first() else {
        return None;
    };
    vector_column(arg)
}

/// `arg` as text when it names one of the catalog's vector columns.
fn vector_column(arg: &ast::Expr) -> Option<String> {
    Vectors::column_zero_based(arg).map(|_| arg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut s = match tidemark_parser::parse(sql).expect("parses").pop() {
            Some(tidemark_parser::Statement::Standard(s)) => *s,
            other => panic!("{other:?}"),
        };
        rewrite(&mut s);
        s.to_string()
    }

    #[test]
    fn relation_sizes_and_storage_options_of_psql_describe() {
        assert_eq!(
            rewritten("SELECT pg_table_size(c.oid), pg_relation_size('t') FROM pg_class c"),
            "SELECT tidemark_relation_size(CAST(c.relname AS TEXT)), \
             tidemark_relation_size(CAST('t' AS TEXT)) FROM pg_class c"
        );
        assert_eq!(
            rewritten(
                "SELECT array(SELECT 'toast.' || x FROM pg_catalog.unnest(tc.reloptions) x) \
                 FROM pg_class tc"
            ),
            "SELECT coalesce((SELECT array_agg('toast.' || x) FROM \
             (SELECT CAST(NULL AS TEXT) AS x WHERE false) x), make_array()) FROM pg_class tc"
        );
    }

    #[test]
    fn client_catalog_queries_become_what_datafusion_plans() {
        assert_eq!(
            rewritten("SELECT (SELECT typname FROM pg_type WHERE oid = a.atttypid) FROM attrs a"),
            "SELECT (SELECT first_value(typname) FROM pg_type WHERE oid = a.atttypid) FROM attrs a"
        );
        // pg_attribute is read through the view that knows JSON and UUID columns,
        // under the query's alias.
        let attributes = rewritten("SELECT a.atttypid FROM pg_catalog.pg_attribute a");
        assert!(
            attributes.starts_with("SELECT a.atttypid FROM (SELECT a.attrelid")
                && attributes.contains("tidemark_attribute_type(c.relname, a.attname, a.atttypid)")
                && attributes.ends_with(") a"),
            "{attributes}"
        );
        // Already aggregated: unchanged.
        assert_eq!(
            rewritten("SELECT (SELECT max(x) FROM t WHERE t.a = u.a) FROM u"),
            "SELECT (SELECT max(x) FROM t WHERE t.a = u.a) FROM u"
        );
        assert_eq!(
            rewritten("SELECT unnest(i.indkey), generate_subscripts(i.indkey, 1) FROM pg_index i"),
            "SELECT unnest(CAST(string_to_array(i.indkey, ' ') AS INT[])), \
             unnest(range(1, CAST(array_length(string_to_array(i.indkey, ' '), 1) AS BIGINT) + 1)) FROM pg_index i"
        );
        assert_eq!(
            rewritten("SELECT 1 WHERE n NOT LIKE 'pg/_' || '%' ESCAPE '/'"),
            "SELECT 1 WHERE n NOT LIKE replace(replace('pg/_' || '%', '\\', '\\\\'), '/', '\\')"
        );
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN a.h THEN (SELECT d FROM x WHERE x.i = a.i) ELSE NULL END FROM a"
            ),
            "SELECT (SELECT first_value(d) FROM x WHERE (a.h) AND (x.i = a.i)) FROM a"
        );
        let view =
            rewritten("SELECT data_type FROM information_schema.columns WHERE table_name = 't'");
        assert!(
            view.starts_with("SELECT data_type FROM (SELECT table_catalog")
                && view.contains("tidemark_sql_type_name(data_type), false) AS data_type")
                && view.ends_with(
                    "FROM tidemark.information_schema.columns) AS columns WHERE table_name = 't'"
                ),
            "{view}"
        );
        assert!(
            rewritten("SELECT c.udt_name FROM information_schema.columns c")
                .ends_with("FROM tidemark.information_schema.columns) c"),
        );
        assert_eq!(
            rewritten("SELECT c.relname, c.reloptions FROM pg_class c"),
            "SELECT c.relname, CAST(NULL AS TEXT[]) FROM pg_class c"
        );
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT b.x FROM b WHERE b.k = a.k ORDER BY 1) AS m FROM a"),
            "SELECT coalesce((SELECT array_agg(b.x) FROM b WHERE b.k = a.k), make_array()) AS m FROM a"
        );
        assert_eq!(
            rewritten("SELECT s[i] FROM generate_series(1, 2) AS i, string_to_array('a,b', ',') s"),
            "SELECT s[i] FROM generate_series(1, 2) AS i (i), (SELECT string_to_array('a,b', ',') AS s) s"
        );
        assert_eq!(
            rewritten(
                "SELECT a AS x, b FROM t ORDER BY CASE WHEN a IN (SELECT 1) THEN 0 ELSE 1 END, 1 LIMIT 5"
            ),
            "SELECT __tidemark_col_0 AS x, __tidemark_col_1 FROM (SELECT a AS __tidemark_col_0, \
             b AS __tidemark_col_1, CASE WHEN array_has((SELECT array_agg(1)), a) THEN 0 ELSE 1 END \
             AS __tidemark_order_0 FROM t) AS __tidemark_ordered ORDER BY __tidemark_order_0, 1 LIMIT 5"
        );
        assert_eq!(
            rewritten("SELECT c.conkey[1] FROM pg_constraint c"),
            "SELECT CAST(string_to_array(c.conkey, ' ') AS INT[])[1] FROM pg_constraint c"
        );
        // pgJDBC's getPrimaryKeys: the rows of _pg_expandarray and their fields.
        assert_eq!(
            rewritten(
                "SELECT r.a FROM (SELECT (information_schema._pg_expandarray(i.indkey)).n AS s, \
                 information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS a \
                 FROM pg_index i, attrs a) r WHERE r.a = (r.KEYS).x"
            ),
            "SELECT r.a FROM (SELECT (unnest(tidemark_expand_array(i.indkey)))['n'] AS s, \
             unnest(tidemark_expand_array(i.indkey)) AS KEYS, a.attnum AS a \
             FROM pg_index i, attrs a) r WHERE r.a = (r.KEYS)['x']"
        );
        // pgJDBC's getIndexInfo: an int2vector counts from 0, also through an alias.
        assert_eq!(
            rewritten(
                "SELECT t.I_OPT[t.pos - 1] & 1, c.conkey[1] FROM \
                 (SELECT i.indoption AS I_OPT, 1 AS pos FROM pg_index i) t, pg_constraint c"
            ),
            "SELECT CAST(string_to_array(t.I_OPT, ' ') AS INT[])[(t.pos - 1) + 1] & 1, \
             CAST(string_to_array(c.conkey, ' ') AS INT[])[1] FROM \
             (SELECT i.indoption AS I_OPT, 1 AS pos FROM pg_index i) t, pg_constraint c"
        );
        // pgJDBC's type cache: a regproc column holds the function's name.
        assert_eq!(
            rewritten(
                "SELECT typinput = 'pg_catalog.array_in'::regproc AS is_array FROM pg_type \
                 WHERE 'boolin'::regproc <> typinput"
            ),
            "SELECT typinput = 'array_in' AS is_array FROM pg_type WHERE 'boolin' <> typinput"
        );
        // ... also once `datafusion-pg-catalog`'s parser made the cast an oid lookup.
        assert_eq!(
            rewritten(
                "SELECT typinput = (SELECT oid FROM pg_catalog.pg_proc \
                 WHERE proname = 'pg_catalog.array_in') FROM pg_type"
            ),
            "SELECT typinput = 'array_in' FROM pg_type"
        );
        // Unnest of anything else is left alone.
        assert_eq!(
            rewritten("SELECT unnest(ARRAY[1, 2])"),
            "SELECT unnest(ARRAY[1, 2])"
        );
    }
}
