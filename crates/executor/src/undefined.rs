//! When DataFusion cannot plan a statement: whether the statement names a
//! relation or a function that does not exist. That is then the error the
//! client gets, in PostgreSQL's words and with its SQLSTATE (42P01, 42883),
//! found by looking the names up where DataFusion looks them up rather than by
//! reading the words of DataFusion's message.

use std::ops::ControlFlow;

use datafusion::execution::context::SessionState;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast;

use crate::error::{ExecError, sqlstate};

/// The first relation, then the first function, that `statement` names and
/// `state` does not have; `None` when everything it names exists.
pub(crate) fn first_undefined(
    state: &SessionState,
    statement: ast::Statement,
) -> Option<ExecError> {
    let statement = DfStatement::Statement(Box::new(statement));
    undefined_relation(state, &statement).or_else(|| undefined_function(state, &statement))
}

fn undefined_relation(state: &SessionState, statement: &DfStatement) -> Option<ExecError> {
    let references = state.resolve_table_references(statement).ok()?;
    let missing = references.into_iter().find(|r| {
        // `FROM tables()`: a table function is named like a relation.
        let table_function =
            r.schema().is_none() && state.table_functions().contains_key(r.table());
        let exists = state
            .schema_for_ref(r.clone())
            .is_ok_and(|schema| schema.table_exist(r.table()));
        !table_function && !exists
    })?;
    Some(ExecError::new(
        sqlstate::UNDEFINED_TABLE,
        format!("relation \"{missing}\" does not exist"),
    ))
}

fn undefined_function(state: &SessionState, statement: &DfStatement) -> Option<ExecError> {
    let DfStatement::Statement(s) = statement else {
        return None;
    };
    let mut missing = None;
    let _ = ast::visit_expressions(s.as_ref(), |e| {
        if let ast::Expr::Function(f) = e {
            let name = function_name(&f.name);
            if !is_function(state, &name) {
                missing = Some(name);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    let name = missing?;
    Some(ExecError::new(
        sqlstate::UNDEFINED_FUNCTION,
        format!("function {name} does not exist"),
    ))
}

/// The name DataFusion's planner looks a function up by: an unquoted name in
/// lower case, a qualified one as written.
fn function_name(name: &ast::ObjectName) -> String {
    match name.0.as_slice() {
        [ast::ObjectNamePart::Identifier(i)] if i.quote_style.is_none() => i.value.to_lowercase(),
        [ast::ObjectNamePart::Identifier(i)] => i.value.clone(),
        _ => name.to_string(),
    }
}

/// Whether the planner knows `name`: a registered function of any kind, or
/// one of the few its SQL planner builds itself.
fn is_function(state: &SessionState, name: &str) -> bool {
    state.scalar_functions().contains_key(name)
        || state.aggregate_functions().contains_key(name)
        || state.window_functions().contains_key(name)
        || state.higher_order_functions().contains_key(name)
        || matches!(name, "unnest" | "unnest_outer" | "map" | "make_map")
}
