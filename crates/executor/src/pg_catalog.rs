//! What PostgreSQL clients expect to find besides the user's tables:
//! `pg_catalog` (from `datafusion-pg-catalog`: psql `\d`, `\dt`, `\l`, `\dn`,
//! DBeaver and Grafana browse it) and the session functions `version()`,
//! `current_user`, `session_user`, `current_database()`, `current_schema()`.
//!
//! The catalog is installed only into contexts whose SQL mentions it (a
//! `pg_` name, `information_schema`, or one of the catalog's functions):
//! ordinary queries do not pay for building it.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, MemoryCatalogProviderList};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::sql::sqlparser::ast;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use datafusion_pg_catalog::pg_catalog::{self as pgc, PgCatalogStaticTables};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use parking_lot::RwLock;

use tidemark_storage::Snapshot;

use crate::catalog_indexes::{CatalogWithIndexes, IndexOids, indexes_of};
use crate::error::{ExecError, Result, sqlstate};

/// The database name clients see (`current_database()`, `\l`).
pub const DATABASE: &str = "tidemark";

/// Functions of PostgreSQL's catalog that clients call, besides the `pg_*` ones.
const CATALOG_FUNCTIONS: &[&str] = &[
    "format_type",
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "current_schemas",
    "quote_ident",
    "array_upper",
    "array_lower",
    "to_regtype",
    "json_build_object",
    "current_setting",
];

/// Whether the words of `sql` name the PostgreSQL catalog as `mentions_catalog`
/// does, for a query Tidemark's parser refused (so there is no statement to walk):
/// read with PostgreSQL's tokenizer, so a name inside a string literal does not count.
pub(crate) fn words_mention_catalog(sql: &str) -> bool {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return false;
    };
    let mut after_cast = false;
    tokens.iter().any(|t| {
        let hit = match t {
            Token::Word(w) => {
                let word = w.value.to_ascii_lowercase();
                word.starts_with("pg_")
                    || word == "information_schema"
                    || CATALOG_FUNCTIONS.contains(&word.as_str())
                    || (after_cast && word.starts_with("reg"))
            }
            _ => false,
        };
        after_cast = matches!(t, Token::DoubleColon);
        hit
    })
}

/// Whether a parsed statement refers to the PostgreSQL catalog: a `pg_*` or
/// `information_schema` relation, a catalog function, or a cast to a `reg*`
/// type (`'t'::regclass`). Names in string literals do not count.
pub(crate) fn mentions_catalog(statement: &ast::Statement) -> bool {
    use std::ops::ControlFlow;
    let catalog_name = |part: &str| {
        let part = part.to_ascii_lowercase();
        part.starts_with("pg_") || part == "information_schema"
    };
    let relations = ast::visit_relations(statement, |name| {
        if name
            .0
            .iter()
            .any(|p| p.as_ident().is_some_and(|i| catalog_name(&i.value)))
        {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if relations.is_break() {
        return true;
    }
    ast::visit_expressions(statement, |e| {
        let hit = match e {
            // `pg_catalog.version()`: a qualifier names the catalog too.
            ast::Expr::Function(f) => f.name.0.iter().filter_map(|p| p.as_ident()).any(|i| {
                let name = i.value.to_ascii_lowercase();
                name.starts_with("pg_") || CATALOG_FUNCTIONS.contains(&name.as_str())
            }),
            ast::Expr::Cast { data_type, .. } => data_type
                .to_string()
                .to_ascii_lowercase()
                .starts_with("reg"),
            _ => false,
        };
        if hit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// Whether `statement` calls `current_setting(...)`.
pub(crate) fn calls_current_setting(statement: &ast::Statement) -> bool {
    ast::visit_expressions(statement, |e| match e {
        ast::Expr::Function(f)
            if f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("current_setting")) =>
        {
            std::ops::ControlFlow::Break(())
        }
        _ => std::ops::ControlFlow::Continue(()),
    })
    .is_break()
}

fn static_tables() -> Result<Arc<PgCatalogStaticTables>> {
    static TABLES: OnceLock<std::result::Result<Arc<PgCatalogStaticTables>, String>> =
        OnceLock::new();
    TABLES
        .get_or_init(|| {
            PgCatalogStaticTables::try_new()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| ExecError::new(sqlstate::INTERNAL_ERROR, format!("pg_catalog: {e}")))
}

/// The catalogs of the statement being planned. A session keeps one
/// `pg_catalog` provider (so that the OIDs it hands out stay the same from
/// one statement to the next, as psql's `\d t` needs) and points it at each
/// statement's snapshot through this list.
#[derive(Debug)]
pub(crate) struct CurrentCatalogs {
    inner: RwLock<Arc<dyn CatalogProviderList>>,
}

impl CatalogProviderList for CurrentCatalogs {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.read().register_catalog(name, catalog)
    }
    fn catalog_names(&self) -> Vec<String> {
        self.inner.read().catalog_names()
    }
    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.read().catalog(name)
    }
}

/// A user the server lets in, as `pg_roles` (psql's `\du`, DBeaver) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRole {
    pub name: String,
    /// The read-only user: no superuser, no CREATE.
    pub read_only: bool,
}

/// The configured users, as the catalog's roles.
#[derive(Debug, Clone)]
pub(crate) struct ConfiguredRoles(Arc<Vec<CatalogRole>>);

#[async_trait::async_trait]
impl PgCatalogContextProvider for ConfiguredRoles {
    async fn roles(&self) -> Vec<String> {
        self.0.iter().map(|r| r.name.clone()).collect()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        self.0.iter().find(|r| r.name == name).map(|r| Role {
            name: r.name.clone(),
            is_superuser: !r.read_only,
            can_login: true,
            can_create_db: false,
            can_create_role: false,
            can_create_user: false,
            can_replication: false,
            grants: Vec::new(),
            inherited_roles: Vec::new(),
        })
    }
}

pub(crate) type Provider =
    pgc::PgCatalogSchemaProvider<Arc<dyn CatalogProviderList>, ConfiguredRoles>;

/// One session's `pg_catalog`.
#[derive(Debug)]
pub(crate) struct SessionCatalog {
    current: Arc<CurrentCatalogs>,
    provider: Arc<CatalogWithIndexes>,
    index_oids: IndexOids,
    /// Who owns every table: the configured (not read-only) user.
    owner: String,
}

impl SessionCatalog {
    pub(crate) fn new(roles: Arc<Vec<CatalogRole>>) -> Result<Self> {
        let current = Arc::new(CurrentCatalogs {
            inner: RwLock::new(Arc::new(MemoryCatalogProviderList::new())),
        });
        let list: Arc<dyn CatalogProviderList> = current.clone();
        let owner = roles
            .iter()
            .find(|r| !r.read_only)
            .or(roles.first())
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let provider =
            pgc::PgCatalogSchemaProvider::try_new(list, static_tables()?, ConfiguredRoles(roles))?;
        Ok(SessionCatalog {
            current,
            provider: Arc::new(CatalogWithIndexes::new(Arc::new(provider))),
            index_oids: IndexOids::default(),
            owner,
        })
    }
}

/// Adds `pg_catalog` and the catalog's functions to `ctx` (whose default
/// catalog is [`DATABASE`]), showing the indexes of `snapshot`'s tables.
pub(crate) fn install(
    ctx: &SessionContext,
    session: &SessionCatalog,
    snapshot: &Snapshot,
) -> Result<()> {
    *session.current.inner.write() = ctx.state().catalog_list().clone();
    let indexes = Arc::new(indexes_of(snapshot, &session.index_oids));
    session.provider.set_indexes(indexes.clone());
    session.provider.set_views(
        snapshot
            .views()
            .into_iter()
            .map(|v| (v.name, v.definition))
            .collect(),
        &session.owner,
    );
    crate::views::register_definition_function(ctx, snapshot);
    let catalog = ctx.catalog(DATABASE).ok_or_else(|| {
        ExecError::new(sqlstate::INTERNAL_ERROR, "the tidemark catalog is missing")
    })?;
    catalog.register_schema("pg_catalog", session.provider.clone())?;
    use pgc::*;
    for f in [
        create_current_schemas_udf(),
        owner_name_udf(&session.owner),
        has_privilege_udf::create_has_privilege_udf("has_table_privilege"),
        has_privilege_udf::create_has_privilege_udf("has_schema_privilege"),
        has_privilege_udf::create_has_privilege_udf("has_database_privilege"),
        has_privilege_udf::create_has_privilege_udf("has_any_column_privilege"),
        create_pg_table_is_visible(),
        crate::pg_functions::format_type_udf(format_type::create_format_type_udf()),
        pg_get_expr_udf::create_pg_get_expr_udf(),
        create_pg_get_partkeydef_udf(),
        create_pg_relation_is_publishable_udf(),
        create_pg_get_statisticsobjdef_columns_udf(),
        create_pg_encoding_to_char_udf(),
        create_pg_relation_size_udf(),
        create_pg_total_relation_size_udf(),
        create_pg_stat_get_numscans(),
        create_pg_get_partition_ancestors_udf(),
        quote_ident_udf::create_quote_ident_udf(),
        quote_ident_udf::create_parse_ident_udf(),
        array_bounds_udf::create_array_upper_udf(),
        array_bounds_udf::create_array_lower_udf(),
    ] {
        ctx.register_udf(f);
    }
    crate::pg_functions::register(ctx);
    crate::catalog_indexes::register_functions(ctx, &indexes);
    ctx.register_udtf("pg_get_keywords", static_tables()?.pg_get_keywords.clone());
    {
        use datafusion::execution::session_state::SessionStateBuilder;
        let state = ctx.state_ref();
        let existing = state.read().clone();
        *state.write() = SessionStateBuilder::new_from_existing(existing)
            .with_type_planner(Arc::new(crate::json::JsonTypesThen(Arc::new(
                oid_type_planner::PgOidTypePlanner,
            ))))
            .build();
    }
    generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(ctx);
    Ok(())
}

/// `pg_get_userbyid(oid)`: the configured user that owns every table (every role
/// and every `relowner` has OID 0 in datafusion-pg-catalog), where the catalog's
/// own function says `postgres` (psql's `\dt` "Owner", `\l`).
fn owner_name_udf(owner: &str) -> ScalarUDF {
    let owner = owner.to_string();
    create_udf(
        "pg_get_userbyid",
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let args = ColumnarValue::values_to_arrays(args)?;
            let names: StringArray = (0..args[0].len())
                .map(|i| (!args[0].is_null(i)).then_some(owner.as_str()))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(names) as ArrayRef))
        }),
    )
}

fn compatibility_parser() -> &'static PostgresCompatibilityParser {
    static PARSER: OnceLock<PostgresCompatibilityParser> = OnceLock::new();
    PARSER.get_or_init(PostgresCompatibilityParser::new)
}

/// Rewrites what clients write against the catalog into what DataFusion
/// plans (`pg_catalog.` qualifiers on functions, `::regclass` casts, ...).
pub(crate) fn rewrite(mut statement: ast::Statement) -> ast::Statement {
    // Ours first: `datafusion-pg-catalog`'s rules then see the subqueries
    // ours brought out of CASE expressions.
    crate::catalog_rewrite::rewrite(&mut statement);
    compatibility_parser().rewrite(statement)
}

/// A catalog query from a client tool (psql's `\d t`, DBeaver, Grafana),
/// parsed with the replacements `datafusion-pg-catalog` knows for queries
/// DataFusion cannot run as written. `None` unless `sql` is only queries.
pub(crate) fn parse_client_queries(sql: &str) -> Option<Vec<ast::Statement>> {
    let statements = compatibility_parser().parse(sql).ok()?;
    statements
        .iter()
        .all(|s| matches!(s, ast::Statement::Query(_)))
        .then_some(statements)
}

/// SQL's parameterless session functions (`SELECT current_user`) parse as
/// column names; they become calls of the functions registered below.
pub(crate) fn call_session_functions(statement: &mut ast::Statement) {
    const NAMES: [&str; 6] = [
        "current_user",
        "session_user",
        "user",
        "current_role",
        "current_catalog",
        "current_schema",
    ];
    let _ = ast::visit_expressions_mut(statement, |e| {
        if let ast::Expr::Identifier(i) = e
            && i.quote_style.is_none()
            && let Some(name) = NAMES.iter().find(|n| i.value.eq_ignore_ascii_case(n))
            && let Ok(call) = crate::rewrite::parse_expr(&format!("\"{name}\"()"))
        {
            *e = call;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

fn constant(name: &str, value: String) -> ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| {
            let array: ArrayRef = Arc::new(StringArray::from(vec![value.clone()]));
            Ok(ColumnarValue::Array(array))
        }),
    )
}

/// The session functions every context has.
pub(crate) fn register_session_functions(ctx: &SessionContext, user: &str) {
    ctx.register_udf(constant(
        "version",
        format!(
            "PostgreSQL {} (Tidemark {}) on {}-linux, 64-bit",
            crate::PG_SERVER_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        ),
    ));
    // A Tidemark server is never a standby replaying another's log (tools ask
    // before offering writes).
    ctx.register_udf(create_udf(
        "pg_is_in_recovery",
        vec![],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::Boolean(Some(false)),
            ))
        }),
    ));
    // QuestDB's `build()`, in the form its own answer takes.
    ctx.register_udf(constant(
        "build",
        format!(
            "Build Information: Tidemark {}, {}-linux",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        ),
    ));
    for name in ["current_user", "session_user", "user", "current_role"] {
        ctx.register_udf(constant(name, user.to_string()));
    }
    ctx.register_udf(constant("current_database", DATABASE.to_string()));
    ctx.register_udf(constant("current_catalog", DATABASE.to_string()));
    ctx.register_udf(constant("current_schema", "public".to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str) -> ast::Statement {
        match tidemark_parser::parse(sql).expect("parses").pop() {
            Some(tidemark_parser::Statement::Standard(s)) => *s,
            other => panic!("{sql}: {other:?}"),
        }
    }

    /// The catalog is named by relations, functions and reg* casts; a string
    /// that merely contains such a name is data.
    #[test]
    fn the_catalog_is_found_in_statements_not_in_strings() {
        for (sql, mentions) in [
            ("SELECT * FROM pg_catalog.pg_class", true),
            ("SELECT relname FROM pg_class WHERE oid > 0", true),
            ("SELECT * FROM information_schema.columns", true),
            ("SELECT format_type(23, NULL)", true),
            ("SELECT pg_catalog.version()", true),
            ("SELECT 'quotes'::regclass", true),
            (
                "SELECT x FROM t WHERE x IN (SELECT 1 FROM pg_catalog.pg_namespace)",
                true,
            ),
            ("SELECT * FROM t WHERE name = 'pg_class'", false),
            (
                "INSERT INTO t VALUES ('information_schema', 'x::regclass')",
                false,
            ),
            ("SELECT count(*) FROM trades", false),
        ] {
            assert_eq!(mentions_catalog(&statement(sql)), mentions, "{sql}");
            assert_eq!(words_mention_catalog(sql), mentions, "words of {sql}");
        }
    }
}
