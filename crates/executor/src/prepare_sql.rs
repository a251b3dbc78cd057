//! `PREPARE name [(types)] AS statement`, `EXECUTE name [(values)]` and
//! `DEALLOCATE [PREPARE] name | ALL`, as PostgreSQL has them.
//!
//! Statements prepared with SQL and those prepared through the extended
//! protocol's Parse share one namespace per session, as in PostgreSQL:
//! DEALLOCATE removes either kind, and `DEALLOCATE ALL` (which psycopg sends
//! after DDL once it has prepared statements) removes both. The protocol's
//! statements live in the server's store; the session only knows their names
//! (see [`Session::note_protocol_statement`]) and tells the server which to
//! drop ([`Session::take_deallocated`]).

use std::collections::{HashMap, HashSet};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::ast;

use crate::error::{ExecError, Result, sqlstate};
use crate::params::ParamValue;
use crate::session::{Output, Prepared, Session};

/// The session's prepared statements, by name.
#[derive(Debug, Default)]
pub(crate) struct PreparedStatements {
    /// Prepared with SQL `PREPARE`.
    sql: HashMap<String, Prepared>,
    /// Prepared with the protocol's Parse (named ones only).
    protocol: HashSet<String>,
    /// Protocol statements DEALLOCATE removed, for the server to drop.
    deallocated: Vec<String>,
}

impl PreparedStatements {
    /// Whether the session has no named prepared statement.
    pub(crate) fn is_empty(&self) -> bool {
        self.sql.is_empty() && self.protocol.is_empty()
    }
}

impl Session {
    /// The server prepared statement `name` with a Parse message.
    pub fn note_protocol_statement(&mut self, name: &str) {
        if !name.is_empty() {
            self.prepared_mut().protocol.insert(name.to_string());
        }
    }

    /// The server closed statement `name` (a Close message).
    pub fn forget_protocol_statement(&mut self, name: &str) {
        self.prepared_mut().protocol.remove(name);
    }

    /// The protocol statements DEALLOCATE removed since the last call.
    pub fn take_deallocated(&mut self) -> Vec<String> {
        std::mem::take(&mut self.prepared_mut().deallocated)
    }
}

/// `PREPARE name AS statement` (the statement's text as written).
pub(crate) async fn prepare(
    session: &mut Session,
    name: String,
    statement: &str,
) -> Result<Output> {
    let known = session.prepared_mut();
    if known.sql.contains_key(&name) || known.protocol.contains(&name) {
        return Err(ExecError::new(
            sqlstate::DUPLICATE_PREPARED_STATEMENT,
            format!("prepared statement \"{name}\" already exists"),
        ));
    }
    let prepared = session.prepare(statement).await?;
    session.prepared_mut().sql.insert(name, prepared);
    Ok(Output::command("PREPARE"))
}

/// `EXECUTE name [(values)]`: the statement's own result.
pub(crate) async fn execute(
    session: &mut Session,
    name: Option<ast::ObjectName>,
    parameters: Vec<ast::Expr>,
) -> Result<Output> {
    let name = name.map(|n| n.to_string()).unwrap_or_default();
    let Some(prepared) = session.prepared_mut().sql.get(&name).cloned() else {
        return Err(ExecError::new(
            sqlstate::INVALID_SQL_STATEMENT_NAME,
            format!("prepared statement \"{name}\" does not exist"),
        ));
    };
    let expected = prepared.param_types.len();
    if parameters.len() != expected {
        return Err(ExecError::new(
            sqlstate::SYNTAX_ERROR,
            format!(
                "wrong number of parameters for prepared statement \"{name}\": expected {expected}, got {}",
                parameters.len()
            ),
        ));
    }
    let values = parameters
        .iter()
        .map(param_value)
        .collect::<Result<Vec<_>>>()?;
    Box::pin(session.execute_prepared(&prepared, &values)).await
}

/// The columns `EXECUTE name (values)` returns (`None`: it returns no rows);
/// values that are not literals (a driver's `$1`) are described as NULL.
pub(crate) async fn describe(
    session: &mut Session,
    name: Option<&ast::ObjectName>,
    parameters: &[ast::Expr],
) -> Result<Option<SchemaRef>> {
    let name = name.map(|n| n.to_string()).unwrap_or_default();
    let Some(prepared) = session.prepared_mut().sql.get(&name).cloned() else {
        return Ok(None);
    };
    let values: Vec<ParamValue> = parameters
        .iter()
        .map(|e| param_value(e).unwrap_or(ParamValue::Null))
        .collect();
    Box::pin(session.describe(&prepared, Some(&values))).await
}

/// `DEALLOCATE [PREPARE] name | ALL`.
pub(crate) fn deallocate(session: &mut Session, name: ast::Ident) -> Result<Output> {
    let known = session.prepared_mut();
    if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
        known.sql.clear();
        let all: Vec<String> = known.protocol.drain().collect();
        known.deallocated.extend(all);
        return Ok(Output::command("DEALLOCATE ALL"));
    }
    let name = name.value;
    if known.sql.remove(&name).is_none() {
        if !known.protocol.remove(&name) {
            return Err(ExecError::new(
                sqlstate::INVALID_SQL_STATEMENT_NAME,
                format!("prepared statement \"{name}\" does not exist"),
            ));
        }
        known.deallocated.push(name);
    }
    Ok(Output::command("DEALLOCATE"))
}

/// A value of `EXECUTE`'s list: a literal, as its text (typed by the
/// statement's parameter), or NULL.
fn param_value(e: &ast::Expr) -> Result<ParamValue> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Null => Ok(ParamValue::Null),
            ast::Value::Boolean(b) => Ok(ParamValue::Bool(*b)),
            ast::Value::Number(n, _) => Ok(number(n)),
            ast::Value::SingleQuotedString(s) => Ok(ParamValue::Text(s.clone())),
            other => Err(not_literal(other)),
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => Ok(number(&format!("-{n}"))),
                _ => Err(not_literal(e)),
            },
            _ => Err(not_literal(e)),
        },
        other => Err(not_literal(other)),
    }
}

/// A numeric literal as the number it is (the statement's parameter type
/// converts it further, as PostgreSQL coerces EXECUTE's values).
fn number(n: &str) -> ParamValue {
    if let Ok(i) = n.parse::<i64>() {
        ParamValue::Int(i)
    } else if let Ok(f) = n.parse::<f64>() {
        ParamValue::Float(f)
    } else {
        ParamValue::Text(n.to_string())
    }
}

fn not_literal(e: &impl std::fmt::Display) -> ExecError {
    ExecError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("EXECUTE takes literal values only, not {e}"),
    )
}
