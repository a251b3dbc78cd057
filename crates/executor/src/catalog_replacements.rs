//! Client catalog queries that no rewrite makes runnable on DataFusion,
//! recognised by their shape and replaced whole by a query of Tidemark's that
//! returns the same rows from Tidemark's catalog.
//!
//! - **asyncpg's type introspection** (`typeinfo_tree`): before it can decode a
//!   result or encode a parameter of a type outside its core set (`int8[]`,
//!   `numeric[]`, ...), asyncpg asks for the type, its element, range, base and
//!   attribute types with a recursive query whose per-type values come from
//!   correlated subqueries inside CASE (one of them a recursive CTE), which
//!   DataFusion cannot decorrelate. The replacement computes the same columns
//!   with joins: the attributes of composite types through an aggregated join of
//!   `pg_attribute`, and a domain's base type as its `typbasetype` (the catalog's
//!   only domains are over base types, and users cannot create domains);
//!   `x::regtype::text` is `format_type(x, NULL)` (`-` for 0), which prints the
//!   same names. OID columns are cast to `INT UNSIGNED`, which the server sends
//!   as `oid` and `oid[]`: asyncpg decodes those without introspecting them.

use datafusion::sql::sqlparser::ast;

use crate::rewrite::parse_query;

/// The columns of asyncpg's `typeinfo_tree` CTE, which identify its query.
const TYPEINFO_TREE_COLUMNS: &[&str] = &[
    "oid",
    "ns",
    "name",
    "kind",
    "basetype",
    "elemtype",
    "elemdelim",
    "range_subtype",
    "attrtypoids",
    "attrnames",
    "depth",
];

/// Tidemark's query for asyncpg's type introspection: the types whose OIDs are
/// `$1` (depth 0), and the types they refer to (depth 1, 2, ...), deepest first.
const TYPE_INTROSPECTION: &str = "
WITH RECURSIVE typeinfo AS (
    SELECT CAST(t.oid AS INT UNSIGNED) AS oid, ns.nspname AS ns, t.typname AS name, t.typtype AS kind,
           CASE WHEN t.typtype = 'd' THEN CAST(t.typbasetype AS INT UNSIGNED) END AS basetype,
           CAST(t.typelem AS INT UNSIGNED) AS elemtype, elem_t.typdelim AS elemdelim,
           CAST(COALESCE(range_t.rngsubtype, multirange_t.rngsubtype) AS INT UNSIGNED)
               AS range_subtype,
           attrs.attrtypoids AS attrtypoids, attrs.attrnames AS attrnames
    FROM pg_catalog.pg_type AS t
    INNER JOIN pg_catalog.pg_namespace ns ON ns.oid = t.typnamespace
    LEFT JOIN pg_catalog.pg_type elem_t
        ON (t.typlen = -1 AND t.typelem != 0 AND t.typelem = elem_t.oid)
    LEFT JOIN pg_catalog.pg_range range_t ON t.oid = range_t.rngtypid
    LEFT JOIN pg_catalog.pg_range multirange_t ON t.oid = multirange_t.rngmultitypid
    LEFT JOIN (
        SELECT c.reltype AS reltype,
               array_agg(CAST(ia.atttypid AS INT UNSIGNED) ORDER BY ia.attnum) AS attrtypoids,
               array_agg(ia.attname::text ORDER BY ia.attnum) AS attrnames
        FROM pg_catalog.pg_attribute ia
        INNER JOIN pg_catalog.pg_class c ON ia.attrelid = c.oid
        WHERE ia.attnum > 0 AND NOT ia.attisdropped
        GROUP BY c.reltype
    ) attrs ON (t.typtype = 'c' AND attrs.reltype = t.oid)
),
typeinfo_tree(oid, ns, name, kind, basetype, elemtype, elemdelim, range_subtype,
              attrtypoids, attrnames, depth) AS (
    SELECT ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim,
           ti.range_subtype, ti.attrtypoids, ti.attrnames, 0
    FROM typeinfo AS ti
    WHERE ti.oid = any($1::oid[])
    UNION ALL
    SELECT ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim,
           ti.range_subtype, ti.attrtypoids, ti.attrnames, tt.depth + 1
    FROM typeinfo ti, typeinfo_tree tt
    WHERE (tt.elemtype IS NOT NULL AND ti.oid = tt.elemtype)
       OR (tt.attrtypoids IS NOT NULL AND ti.oid = any(tt.attrtypoids))
       OR (tt.range_subtype IS NOT NULL AND ti.oid = tt.range_subtype)
       OR (tt.basetype IS NOT NULL AND ti.oid = tt.basetype)
)
SELECT DISTINCT *,
    CASE WHEN basetype = 0 THEN '-' ELSE format_type(basetype, NULL) END AS basetype_name,
    CASE WHEN elemtype = 0 THEN '-' ELSE format_type(elemtype, NULL) END AS elemtype_name,
    CASE WHEN range_subtype = 0 THEN '-' ELSE format_type(range_subtype, NULL) END
        AS range_subtype_name
FROM typeinfo_tree
ORDER BY depth DESC";

/// Tidemark's query for a client query it recognises, or `None`.
pub(crate) fn replacement(statement: &ast::Statement) -> Option<ast::Statement> {
    if is_type_introspection(statement) {
        // The text is ours and parses; a failure would be a bug, and then the
        // client's query runs (and fails) as it is.
        match parse_query(TYPE_INTROSPECTION) {
            Ok(q) => return Some(ast::Statement::Query(q)),
            Err(e) => tracing::error!(error = %e, "asyncpg type introspection replacement"),
        }
    }
    None
}

/// asyncpg's introspection: a recursive query over a CTE named `typeinfo_tree`
/// with its eleven columns, taking one parameter (the OIDs).
fn is_type_introspection(statement: &ast::Statement) -> bool {
    let ast::Statement::Query(q) = statement else {
        return false;
    };
    let Some(with) = &q.with else {
        return false;
    };
    with.recursive
        && with.cte_tables.iter().any(|cte| {
            cte.alias.name.value.eq_ignore_ascii_case("typeinfo_tree")
                && cte.alias.columns.len() == TYPEINFO_TREE_COLUMNS.len()
                && cte
                    .alias
                    .columns
                    .iter()
                    .zip(TYPEINFO_TREE_COLUMNS)
                    .all(|(c, name)| c.name.value.eq_ignore_ascii_case(name))
        })
        && highest_placeholder(statement) == 1
}

fn highest_placeholder(statement: &ast::Statement) -> usize {
    let mut highest = 0;
    let _ = ast::visit_expressions(statement, |e| {
        if let Some(n) = crate::params::placeholder_index(e) {
            highest = highest.max(n);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    highest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str) -> ast::Statement {
        ast::Statement::Query(parse_query(sql).expect("test SQL parses"))
    }

    #[test]
    fn the_replacement_parses_and_is_recognised_as_what_it_replaces() {
        let replaced = statement(TYPE_INTROSPECTION);
        assert!(is_type_introspection(&replaced));
        assert!(replacement(&replaced).is_some());
    }

    #[test]
    fn other_recursive_queries_are_left_alone() {
        let other = statement(
            "WITH RECURSIVE typeinfo_tree(oid, depth) AS (SELECT $1, 0 UNION ALL \
             SELECT oid, depth + 1 FROM typeinfo_tree WHERE depth < 3) SELECT * FROM typeinfo_tree",
        );
        assert!(replacement(&other).is_none());
        assert!(replacement(&statement("SELECT 1")).is_none());
    }
}
