//! `set_config(name, value, is_local)`: PostgreSQL's function form of `SET`
//! (asyncpg calls it before its type introspection, SQLAlchemy and pool
//! libraries to reset settings). It returns the value it set.
//!
//! A scalar function cannot change the session, so the call is resolved before
//! planning: each `set_config` with constant arguments becomes the text it
//! returns (the value as `SHOW` prints it, checked as `SET` checks it), and the
//! session applies the changes once the statement has been planned (so a
//! `current_setting` of the same statement still reads the old value, as in
//! PostgreSQL). `is_local` is accepted and applies the setting as `SET LOCAL`
//! does in Tidemark: for the rest of the session.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast;

use crate::error::{ExecError, Result, sqlstate};
use crate::settings::Settings;

/// One setting a statement changes, in the order of its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SettingChange {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// Replaces the `set_config` calls of `statement` by the values they set,
/// checked against (a copy of) `settings`; the changes to apply, in order.
pub(crate) fn resolve(
    statement: &mut ast::Statement,
    settings: &Settings,
) -> Result<Vec<SettingChange>> {
    let mut after = settings.clone();
    let mut changes = Vec::new();
    let mut failure = None;
    let _ = ast::visit_expressions_mut(statement, |e| {
        let ast::Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        if !is_set_config(f) {
            return ControlFlow::Continue(());
        }
        match change_of(f).and_then(|change| {
            after.set(&change.name, &change.value)?;
            let shown = after.get(&change.name)?;
            Ok(SettingChange {
                name: change.name,
                value: shown,
            })
        }) {
            Ok(change) => {
                *e = crate::rewrite::string_literal(&change.value);
                changes.push(change);
                ControlFlow::Continue(())
            }
            Err(err) => {
                failure = Some(err);
                ControlFlow::Break(())
            }
        }
    });
    match failure {
        Some(err) => Err(err),
        None => Ok(changes),
    }
}

/// Whether `statement` calls `set_config` (such a statement changes the
/// session each time it runs, so no plan of it is kept).
pub(crate) fn calls_set_config(statement: &ast::Statement) -> bool {
    ast::visit_expressions(statement, |e| match e {
        ast::Expr::Function(f) if is_set_config(f) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn is_set_config(f: &ast::Function) -> bool {
    let parts: Vec<&str> = f
        .name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.as_str())
        .collect();
    match parts.as_slice() {
        [name] | ["pg_catalog", name] => name.eq_ignore_ascii_case("set_config"),
        _ => false,
    }
}

/// The name and value of a call with constant arguments.
fn change_of(f: &ast::Function) -> Result<SettingChange> {
    let Some(args) = crate::rewrite::unnamed_args(f) else {
        return Err(usage());
    };
    let [name, value, is_local] = args.as_slice() else {
        return Err(usage());
    };
    let (Some(name), Some(value)) = (text_constant(name), text_constant(value)) else {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "set_config() takes a constant name and value in Tidemark",
        ));
    };
    if !matches!(
        strip_casts(is_local),
        ast::Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_))
    ) {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "set_config() takes a constant is_local (true or false) in Tidemark",
        ));
    }
    Ok(SettingChange { name, value })
}

fn usage() -> ExecError {
    ExecError::new(
        sqlstate::UNDEFINED_FUNCTION,
        "function set_config takes three arguments: set_config(name text, value text, is_local boolean)",
    )
}

/// A string literal, possibly cast (`'off'::text`).
fn text_constant(e: &ast::Expr) -> Option<String> {
    match strip_casts(e) {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                Some(s.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

fn strip_casts(mut e: &ast::Expr) -> &ast::Expr {
    loop {
        e = match e {
            ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => expr,
            other => return other,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str) -> ast::Statement {
        use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("test SQL parses")
            .pop()
            .expect("one statement")
    }

    #[test]
    fn a_call_becomes_the_value_it_sets_and_reports_the_change() {
        let mut s = statement("SELECT set_config('TimeZone', 'Europe/Paris', false) AS tz");
        let changes = resolve(&mut s, &Settings::default()).expect("resolved");
        assert_eq!(
            changes,
            [SettingChange {
                name: "TimeZone".into(),
                value: "Europe/Paris".into()
            }]
        );
        assert_eq!(s.to_string(), "SELECT 'Europe/Paris' AS tz");
    }

    #[test]
    fn later_calls_see_earlier_ones_and_custom_names_are_accepted() {
        let mut s = statement(
            "SELECT set_config('myapp.x', 'a', false), pg_catalog.set_config('myapp.x', 'b', true)",
        );
        let changes = resolve(&mut s, &Settings::default()).expect("resolved");
        assert_eq!(
            changes.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(s.to_string(), "SELECT 'a', 'b'");
    }

    #[test]
    fn unknown_and_read_only_parameters_are_refused_as_set_refuses_them() {
        let mut s = statement("SELECT current_setting('jit'), set_config('jit', 'off', false)");
        let err = resolve(&mut s, &Settings::default()).expect_err("refused");
        assert_eq!(err.sqlstate, sqlstate::UNDEFINED_OBJECT);
        assert!(err.to_string().contains("\"jit\""), "{err}");
        let mut s = statement("SELECT set_config('server_version', '9', false)");
        let err = resolve(&mut s, &Settings::default()).expect_err("refused");
        assert_eq!(err.sqlstate, sqlstate::CANT_CHANGE_RUNTIME_PARAM);
    }

    #[test]
    fn arguments_must_be_constants() {
        let mut s = statement("SELECT set_config(name, 'x', false) FROM t");
        let err = resolve(&mut s, &Settings::default()).expect_err("refused");
        assert_eq!(err.sqlstate, sqlstate::FEATURE_NOT_SUPPORTED);
        let mut s = statement("SELECT set_config('search_path', 'x')");
        let err = resolve(&mut s, &Settings::default()).expect_err("refused");
        assert_eq!(err.sqlstate, sqlstate::UNDEFINED_FUNCTION);
        assert!(calls_set_config(&s));
        assert!(!calls_set_config(&statement("SELECT current_setting('x')")));
    }
}
