//! Views: `CREATE [OR REPLACE] VIEW`, `ALTER VIEW ... AS`, `DROP VIEW`,
//! `COMPILE VIEW` and QuestDB's `views()`.
//!
//! Storage keeps a view's query as the text the user wrote. A statement that
//! names a view plans that text again, through the same steps as a query typed
//! by hand (SAMPLE BY and LATEST ON rewrites, QuestDB's functions, interval
//! literals, TICK variables read now), and DataFusion sees the result as a
//! `ViewTable`: its plan is inlined into the statement's, so filters and
//! projections reach the tables underneath. A view therefore always reads the
//! tables as they are, columns added since included; a view whose tables or
//! columns went away fails when used (and `views()` says why), as in QuestDB.
//! A view that refers to itself, directly or through others, is refused (42P17).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast;
use tidemark_parser::{Statement, ViewMode};
use tidemark_storage::name::name_key;
use tidemark_storage::{Request, Snapshot, ViewDef};

use crate::error::{ExecError, Result, sqlstate};
use crate::session::{Output, Session};

/// Views nested deeper than this are refused (a chain this long is a mistake).
const MAX_DEPTH: usize = 32;

/// The views a statement reads, planned for it, and (when it calls `views()`)
/// each view's status.
#[derive(Default)]
pub(crate) struct StatementViews {
    /// By name key.
    pub(crate) providers: HashMap<String, Arc<dyn TableProvider>>,
    /// `views()` rows: each view and why it does not plan (None: valid).
    pub(crate) statuses: Option<Vec<ViewStatus>>,
}

/// `CREATE [OR REPLACE] VIEW` and `ALTER VIEW ... AS`: the query must plan
/// now (a view over a missing table is refused), then the view is committed.
pub(crate) async fn create(
    session: &mut Session,
    name: String,
    definition: String,
    mode: ViewMode,
) -> Result<Output> {
    let tag = if mode == ViewMode::Alter {
        "ALTER VIEW"
    } else {
        "CREATE VIEW"
    };
    let snapshot = session.view()?;
    let exists = snapshot.view(&name).is_some();
    // A table of that name is refused by the commit (42P07).
    if !(mode == ViewMode::IfNotExists && exists) {
        // Planned as if it were already the view `name`, so a query that reads
        // `name` itself (now, or through another view) is caught here.
        let _expanding = session.expanding_view(&name)?;
        plan_definition(session, &definition, &snapshot).await?;
    }
    let mode = match mode {
        ViewMode::Create => tidemark_storage::ViewMode::Create,
        ViewMode::IfNotExists => tidemark_storage::ViewMode::IfNotExists,
        ViewMode::OrReplace => tidemark_storage::ViewMode::OrReplace,
        ViewMode::Alter => tidemark_storage::ViewMode::Alter,
    };
    session
        .submit(vec![Request::CreateView {
            name,
            definition,
            mode,
        }])
        .await?;
    Ok(Output::command(tag))
}

/// `DROP VIEW [IF EXISTS] a, b`: one commit. Views that read a dropped one
/// fail when used, until it is created again.
pub(crate) async fn drop(
    session: &mut Session,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<Output> {
    let requests = names
        .iter()
        .map(|n| {
            Ok(Request::DropView {
                name: crate::ddl::object_name(n)?,
                if_exists,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    session.submit(requests).await?;
    Ok(Output::command("DROP VIEW"))
}

/// QuestDB's `COMPILE VIEW v`: plans the view's query, failing as a query of
/// the view would.
pub(crate) async fn compile(session: &Session, name: &str) -> Result<Output> {
    let snapshot = session.view()?;
    let view = snapshot.view(name).ok_or_else(|| not_found(name))?;
    plan_view(session, &view, &snapshot).await?;
    Ok(Output::command("COMPILE VIEW"))
}

/// `SHOW CREATE VIEW v`: one row, `ddl`, the statement that makes the view.
pub(crate) fn show_create(snapshot: &Snapshot, name: &ast::ObjectName) -> Result<Output> {
    let name = crate::ddl::object_name(name)?;
    let view = snapshot.view(&name).ok_or_else(|| not_found(&name))?;
    let ddl = format!(
        "CREATE VIEW {} AS ({})",
        crate::rewrite::quote_ident(&view.name),
        view.definition
    );
    let schema = Arc::new(Schema::new(vec![Field::new("ddl", DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec![ddl])) as ArrayRef],
    )?;
    Ok(Output::rows(schema, vec![batch]))
}

fn not_found(name: &str) -> ExecError {
    ExecError::new(
        sqlstate::UNDEFINED_TABLE,
        format!("view \"{name}\" does not exist"),
    )
}

/// Plans the views statement `s` reads (and, for a statement that reads the
/// PostgreSQL catalog or calls `views()`, every view, so `\dv`, `\d v` and
/// `views()` see them). Inside a view's query only the views it names are
/// planned: the catalog's list is the outer statement's business (planning
/// every view inside every view would take factorial time).
pub(crate) async fn for_statement(
    session: &Session,
    s: &ast::Statement,
    snapshot: &Snapshot,
) -> Result<StatementViews> {
    let mut out = StatementViews::default();
    if !snapshot.has_views() {
        return Ok(out);
    }
    let top_level = !session.in_view();
    let with_catalog = top_level && session.wants_catalog();
    let mut named: Vec<String> = Vec::new();
    // `information_schema.views` is answered from `views()` (catalog_rewrite.rs).
    let mut names_schema_views = false;
    let _ = ast::visit_relations(s, |n: &ast::ObjectName| {
        if let Ok(name) = crate::ddl::object_name(n) {
            named.push(name_key(&name));
        }
        let parts: Vec<&str> =
            n.0.iter()
                .filter_map(|p| p.as_ident())
                .map(|i| i.value.as_str())
                .collect();
        names_schema_views |= matches!(parts.as_slice(), [schema, "views" | "VIEWS"] if schema.eq_ignore_ascii_case("information_schema"));
        std::ops::ControlFlow::<()>::Continue(())
    });
    let calls_views = top_level
        && (names_schema_views
            || (named.iter().any(|n| n == "views") && snapshot.view("views").is_none()));
    let mut statuses = Vec::new();
    for view in snapshot.views() {
        let key = name_key(&view.name);
        let direct = named.contains(&key);
        if !(direct || with_catalog || calls_views) {
            continue;
        }
        match plan_view(session, &view, snapshot).await {
            Ok(plan) => {
                if calls_views {
                    statuses.push((view.clone(), None));
                }
                out.providers.insert(
                    key,
                    Arc::new(ViewTable::new(plan, Some(view.definition.clone()))),
                );
            }
            Err(e) if direct => {
                return Err(ExecError::new(
                    e.sqlstate,
                    format!("view \"{}\": {}", view.name, e.message),
                ));
            }
            Err(e) => {
                if calls_views {
                    statuses.push((view.clone(), Some(e.message)));
                }
            }
        }
    }
    if calls_views {
        out.statuses = Some(statuses);
    }
    Ok(out)
}

/// How a prepared statement may keep its plan (`plan_cache.rs`) over the
/// views it reads: DataFusion inlines a view's plan, so a kept plan is valid
/// only while no view changes (`Some(version)` to check), and never when a
/// view's query holds a TICK variable (`$today`), read when it is parsed
/// (`None`: plan at every execution).
pub(crate) enum KeepPlan {
    Always,
    WhileViewsAre(u64),
    Never,
}

pub(crate) fn keep_plan(s: &ast::Statement, snapshot: &Snapshot) -> KeepPlan {
    if !read_by(s, snapshot) {
        return KeepPlan::Always;
    }
    if snapshot.views().iter().any(|v| v.definition.contains('$')) {
        return KeepPlan::Never;
    }
    KeepPlan::WhileViewsAre(snapshot.views_version())
}

/// Whether statement `s` names a view of `snapshot`.
fn read_by(s: &ast::Statement, snapshot: &Snapshot) -> bool {
    snapshot.has_views()
        && ast::visit_relations(s, |n: &ast::ObjectName| match crate::ddl::object_name(n) {
            Ok(name) if snapshot.view(&name).is_some() => std::ops::ControlFlow::Break(()),
            _ => std::ops::ControlFlow::Continue(()),
        })
        .is_break()
}

/// Plans view `view`'s query over `snapshot`.
async fn plan_view(session: &Session, view: &ViewDef, snapshot: &Snapshot) -> Result<LogicalPlan> {
    let _expanding = session.expanding_view(&view.name)?;
    plan_definition(session, &view.definition, snapshot).await
}

/// A view's query as a logical plan: the steps a typed query goes through.
/// Boxed: planning a view plans the views it reads.
fn plan_definition<'a>(
    session: &'a Session,
    definition: &'a str,
    snapshot: &'a Snapshot,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<LogicalPlan>> + Send + 'a>> {
    Box::pin(async move {
        let mut statements = tidemark_parser::parse(definition)?;
        let query = match (statements.pop(), statements.is_empty()) {
            (Some(Statement::Standard(s)), true) if matches!(*s, ast::Statement::Query(_)) => *s,
            (Some(Statement::Sample { query, sample }), true) => {
                crate::sample::grouped_query(session, query, sample).await?
            }
            (Some(Statement::Latest { query, latest }), true) => {
                crate::latest::rewritten_for_view(session, query, latest)?
            }
            _ => {
                return Err(ExecError::new(
                    sqlstate::INVALID_OBJECT_DEFINITION,
                    "a view is defined by one query (SELECT ...)",
                ));
            }
        };
        let (_, plan) = session.plan(query, snapshot, None).await?;
        Ok(plan)
    })
}

/// Checks that view `name` may be expanded now: not inside its own
/// expansion, and not too deep. The returned guard ends the expansion.
pub(crate) fn enter<'a>(
    stack: &'a parking_lot::Mutex<Vec<String>>,
    name: &str,
) -> Result<Expanding<'a>> {
    let mut names = stack.lock();
    if let Some(at) = names.iter().position(|n| name_key(n) == name_key(name)) {
        let mut chain: Vec<&str> = names[at..].iter().map(String::as_str).collect();
        chain.push(name);
        return Err(ExecError::new(
            sqlstate::INVALID_OBJECT_DEFINITION,
            format!(
                "infinite recursion detected in view \"{name}\": {}",
                chain.join(" -> ")
            ),
        ));
    }
    if names.len() >= MAX_DEPTH {
        return Err(ExecError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            format!("views are nested more than {MAX_DEPTH} deep (at view \"{name}\")"),
        ));
    }
    names.push(name.to_string());
    Ok(Expanding { stack })
}

/// Ends a view's expansion when dropped (see [`enter`]).
pub(crate) struct Expanding<'a> {
    stack: &'a parking_lot::Mutex<Vec<String>>,
}

impl Drop for Expanding<'_> {
    fn drop(&mut self) {
        self.stack.lock().pop();
    }
}

/// QuestDB's `views()`: `view_name`, `view_sql`, `view_status` (`valid` or
/// `invalid`) and `invalidation_reason`, by name.
#[derive(Debug)]
pub(crate) struct ViewsFunction {
    pub(crate) rows: Vec<ViewStatus>,
}

/// A view, and why it does not plan (None: it does).
pub(crate) type ViewStatus = (ViewDef, Option<String>);

impl TableFunctionImpl for ViewsFunction {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return datafusion::common::plan_err!("views() takes no arguments");
        }
        let mut rows: Vec<&ViewStatus> = self.rows.iter().collect();
        rows.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let schema = Arc::new(Schema::new(vec![
            Field::new("view_name", DataType::Utf8, false),
            Field::new("view_sql", DataType::Utf8, false),
            Field::new("view_status", DataType::Utf8, false),
            Field::new("invalidation_reason", DataType::Utf8, true),
        ]));
        let text = |f: &dyn Fn(&ViewStatus) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(
                rows.iter().map(|r| f(r)).collect::<Vec<Option<String>>>(),
            ))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                text(&|r| Some(r.0.name.clone())),
                text(&|r| Some(r.0.definition.clone())),
                text(&|r| Some(if r.1.is_none() { "valid" } else { "invalid" }.to_string())),
                text(&|r| r.1.clone()),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// Whether `name` is a view (and not a table) in the session's snapshot.
fn is_view(session: &Session, name: &str) -> Result<bool> {
    let snapshot = session.view()?;
    Ok(snapshot.table(name).is_none() && snapshot.view(name).is_some())
}

/// Replaces a view named in FROM by `(SELECT * FROM view) AS view`, for the
/// rewrites (SAMPLE BY) that look at the relation itself; a table or anything
/// else stays.
pub(crate) fn as_subquery(session: &Session, relation: &mut ast::TableFactor) -> Result<()> {
    let ast::TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = relation
    else {
        return Ok(());
    };
    let view = crate::ddl::object_name(name)?;
    if !is_view(session, &view)? {
        return Ok(());
    }
    let subquery = crate::rewrite::parse_query(&format!(
        "SELECT * FROM {}",
        crate::rewrite::quote_ident(&view)
    ))?;
    let alias = alias.take().unwrap_or_else(|| ast::TableAlias {
        explicit: true,
        name: ast::Ident::with_quote('"', view),
        columns: Vec::new(),
        at: None,
    });
    *relation = ast::TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(alias),
        sample: None,
    };
    Ok(())
}

/// `tidemark_view_definition(name)`: a view's query (NULL for a name that is
/// no view), what `pg_get_viewdef` becomes (`catalog_rewrite.rs`: psql's
/// `\d+ v` shows it as "View definition").
pub(crate) fn register_definition_function(
    ctx: &datafusion::execution::context::SessionContext,
    snapshot: &Snapshot,
) {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let definitions: HashMap<String, String> = snapshot
        .views()
        .into_iter()
        .map(|v| (name_key(&v.name), v.definition))
        .collect();
    ctx.register_udf(create_udf(
        "tidemark_view_definition",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let args = ColumnarValue::values_to_arrays(args)?;
            let names = datafusion::common::cast::as_string_array(&args[0])?;
            let out: StringArray = names
                .iter()
                .map(|n| n.and_then(|n| definitions.get(&name_key(n)).cloned()))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
}
