//! Bound parameters (`$1`, `$2`, ...) of prepared statements: their types, as
//! the extended query protocol reports them before any value is bound, and
//! their substitution into the statement as typed SQL literals once bound.
//!
//! Types are inferred the way PostgreSQL does it from context: a parameter in
//! `INSERT ... VALUES` takes its target column's type; in a query, the type
//! DataFusion's planner infers (`ts > $1` makes `$1` a TIMESTAMP); in UPDATE
//! and DELETE, the type of the column it is compared with or assigned to.
//! What cannot be inferred is TEXT, as in PostgreSQL.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast;
use tidemark_parser::Statement;

use crate::error::{ExecError, Result, sqlstate};
use crate::rewrite::parse_expr;

/// A parameter value, decoded from the wire by the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// Microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
    /// Days since 1970-01-01.
    Date(i32),
    Bytes(Vec<u8>),
    Uuid([u8; 16]),
    /// Text to be read as a SQL type (`TIMESTAMP '2026-11-21 10:00'`).
    Typed {
        type_name: &'static str,
        text: String,
    },
}

/// The number of parameters a statement uses (the highest `$n`).
pub(crate) fn count(statement: &Statement) -> usize {
    // PREPARE's `$n` are the prepared statement's, bound by a later EXECUTE.
    if let Statement::Standard(s) = statement
        && matches!(s.as_ref(), ast::Statement::Prepare { .. })
    {
        return 0;
    }
    let mut highest = 0;
    for_each_expr(statement, |e| {
        if let Some(n) = placeholder_index(e) {
            highest = highest.max(n);
        }
    });
    highest
}

pub(crate) fn placeholder_index(e: &ast::Expr) -> Option<usize> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Placeholder(p) => p.strip_prefix('$')?.parse::<usize>().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn for_each_expr(statement: &Statement, mut f: impl FnMut(&ast::Expr)) {
    let mut visit = |e: &ast::Expr| {
        f(e);
        ControlFlow::<()>::Continue(())
    };
    let _ = match statement {
        Statement::Standard(s) => ast::visit_expressions(s.as_ref(), &mut visit),
        Statement::Sample { query, .. } | Statement::Latest { query, .. } => {
            ast::visit_expressions(query.as_ref(), &mut visit)
        }
        _ => ControlFlow::Continue(()),
    };
}

/// Replaces `$n` with the n-th value. In `INSERT ... VALUES` rows, values
/// become plain literals (the target column's type converts them, and the rows
/// stay on the literal fast path); elsewhere they become typed literals, so
/// that `price > $1` compares numbers, not text.
pub(crate) fn bind(statement: &mut Statement, values: &[ParamValue]) -> Result<()> {
    let needed = count(statement);
    if values.len() < needed {
        return Err(ExecError::new(
            sqlstate::PROTOCOL_VIOLATION,
            format!(
                "bind message supplies {} parameters, but prepared statement requires {needed}",
                values.len()
            ),
        ));
    }
    if needed == 0 {
        return Ok(());
    }
    let mut error = None;
    let mut substitute = |e: &mut ast::Expr, in_values: bool| {
        if let Some(n) = placeholder_index(e) {
            match values.get(n.wrapping_sub(1)) {
                Some(v) => match literal(v, in_values) {
                    Ok(lit) => *e = lit,
                    Err(err) => error = Some(err),
                },
                None => {
                    error = Some(ExecError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("there is no parameter ${n}"),
                    ))
                }
            }
        }
    };
    match statement {
        Statement::Standard(s) => {
            if let ast::Statement::Insert(insert) = s.as_mut()
                && let Some(source) = &mut insert.source
                && let ast::SetExpr::Values(values) = source.body.as_mut()
            {
                for row in &mut values.rows {
                    for e in row.iter_mut() {
                        substitute(e, true);
                    }
                }
            }
            let _ = ast::visit_expressions_mut(s.as_mut(), |e| {
                substitute(e, false);
                ControlFlow::<()>::Continue(())
            });
        }
        Statement::Sample { query, .. } | Statement::Latest { query, .. } => {
            let _ = ast::visit_expressions_mut(query.as_mut(), |e| {
                substitute(e, false);
                ControlFlow::<()>::Continue(())
            });
        }
        _ => {}
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn string(s: String) -> ast::Expr {
    ast::Expr::value(ast::Value::SingleQuotedString(s))
}

fn escape(s: &str) -> String {
    s.replace('\'', "''")
}

fn literal(v: &ParamValue, in_values: bool) -> Result<ast::Expr> {
    Ok(match v {
        ParamValue::Null => ast::Expr::value(ast::Value::Null),
        ParamValue::Bool(b) => ast::Expr::value(ast::Value::Boolean(*b)),
        ParamValue::Int(i) => ast::Expr::value(ast::Value::Number(i.to_string(), false)),
        ParamValue::Float(f) if f.is_finite() => {
            ast::Expr::value(ast::Value::Number(format!("{f:?}"), false))
        }
        ParamValue::Float(f) => {
            let text = if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            if in_values {
                string(text.to_string())
            } else {
                parse_expr(&format!("CAST('{text}' AS DOUBLE)"))?
            }
        }
        ParamValue::Text(s) => string(s.clone()),
        ParamValue::Timestamp(us) => {
            let text = crate::text::timestamp(*us);
            if in_values {
                string(text)
            } else {
                parse_expr(&format!("TIMESTAMP '{text}'"))?
            }
        }
        ParamValue::Date(d) => {
            let text = crate::text::date(*d as i64);
            if in_values {
                string(text)
            } else {
                parse_expr(&format!("DATE '{text}'"))?
            }
        }
        ParamValue::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            if in_values {
                string(format!("\\x{hex}"))
            } else {
                parse_expr(&format!("decode('{hex}', 'hex')"))?
            }
        }
        ParamValue::Uuid(u) => string(crate::text::uuid(u)),
        ParamValue::Typed { type_name, text } => {
            if in_values {
                string(text.clone())
            } else {
                parse_expr(&format!("{type_name} '{}'", escape(text)))?
            }
        }
    })
}

/// Parameter types from the columns they meet in the statement: the target
/// column of an INSERT VALUES position or an UPDATE assignment, or the column a
/// comparison, BETWEEN or IN puts them against. `columns` maps column names
/// (lowercase) of the tables in the statement to their types.
pub(crate) fn infer_from_columns(
    statement: &Statement,
    columns: &HashMap<String, DataType>,
    insert_targets: &[DataType],
) -> HashMap<usize, DataType> {
    let mut types = HashMap::new();
    let column_type = |e: &ast::Expr| -> Option<DataType> {
        let name = match e {
            ast::Expr::Identifier(i) => &i.value,
            ast::Expr::CompoundIdentifier(parts) => &parts.last()?.value,
            _ => return None,
        };
        columns
            .get(&name.to_lowercase())
            .or_else(|| columns.get(name))
            .cloned()
    };
    if let Statement::Standard(s) = statement {
        match s.as_ref() {
            ast::Statement::Insert(insert) => {
                if let Some(source) = &insert.source
                    && let ast::SetExpr::Values(values) = source.body.as_ref()
                {
                    for row in &values.rows {
                        for (k, e) in row.iter().enumerate() {
                            if let (Some(n), Some(t)) =
                                (placeholder_index(e), insert_targets.get(k))
                            {
                                types.entry(n).or_insert_with(|| t.clone());
                            }
                        }
                    }
                }
            }
            ast::Statement::Update(u) => {
                for a in &u.assignments {
                    if let ast::AssignmentTarget::ColumnName(name) = &a.target
                        && let Some(n) = placeholder_index(&a.value)
                        && let Some(last) = name.0.last().and_then(|p| p.as_ident())
                        && let Some(t) = columns.get(&last.value.to_lowercase())
                    {
                        types.entry(n).or_insert_with(|| t.clone());
                    }
                }
            }
            _ => {}
        }
    }
    for_each_expr(statement, |e| {
        let pairs: Vec<(&ast::Expr, &ast::Expr)> = match e {
            ast::Expr::BinaryOp { left, right, .. } => {
                vec![
                    (left.as_ref(), right.as_ref()),
                    (right.as_ref(), left.as_ref()),
                ]
            }
            ast::Expr::Between {
                expr, low, high, ..
            } => vec![
                (low.as_ref(), expr.as_ref()),
                (high.as_ref(), expr.as_ref()),
            ],
            ast::Expr::InList { expr, list, .. } => {
                list.iter().map(|l| (l, expr.as_ref())).collect()
            }
            _ => vec![],
        };
        for (p, c) in pairs {
            if let (Some(n), Some(t)) = (placeholder_index(p), column_type(c)) {
                types.entry(n).or_insert(t);
            }
        }
    });
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Statement {
        tidemark_parser::parse(sql)
            .expect("test value")
            .pop()
            .expect("test value")
    }

    #[test]
    fn counts_and_binds_placeholders() {
        let mut s = parse("SELECT * FROM t WHERE a > $2 AND b = $1");
        assert_eq!(count(&s), 2);
        bind(
            &mut s,
            &[
                ParamValue::Text("x'y".into()),
                ParamValue::Timestamp(1_500_000),
            ],
        )
        .expect("test value");
        let Statement::Standard(q) = &s else { panic!() };
        assert_eq!(
            q.to_string(),
            "SELECT * FROM t WHERE a > TIMESTAMP '1970-01-01 00:00:01.5' AND b = 'x''y'"
        );
    }

    #[test]
    fn insert_values_get_plain_literals() {
        let mut s = parse("INSERT INTO t VALUES ($1, $2, $3, $4)");
        bind(
            &mut s,
            &[
                ParamValue::Timestamp(0),
                ParamValue::Float(f64::NAN),
                ParamValue::Bytes(vec![1, 255]),
                ParamValue::Null,
            ],
        )
        .expect("test value");
        let Statement::Standard(q) = &s else { panic!() };
        assert_eq!(
            q.to_string(),
            "INSERT INTO t VALUES ('1970-01-01 00:00:00', 'NaN', '\\x01ff', NULL)"
        );
    }

    #[test]
    fn too_few_values_is_a_protocol_error() {
        let mut s = parse("SELECT $1 + $2");
        let e = bind(&mut s, &[ParamValue::Int(1)]).expect_err("must fail");
        assert_eq!(e.sqlstate, "08P01");
    }

    #[test]
    fn infers_from_columns_and_insert_targets() {
        let columns: HashMap<String, DataType> = [
            ("price".to_string(), DataType::Float64),
            ("sym".to_string(), DataType::Utf8),
        ]
        .into();
        let s = parse("UPDATE t SET price = $1 WHERE sym IN ($2, 'x') AND $3 < price");
        let t = infer_from_columns(&s, &columns, &[]);
        assert_eq!(t.get(&1), Some(&DataType::Float64));
        assert_eq!(t.get(&2), Some(&DataType::Utf8));
        assert_eq!(t.get(&3), Some(&DataType::Float64));
        let s = parse("INSERT INTO t VALUES ($1, $2)");
        let t = infer_from_columns(&s, &columns, &[DataType::Int64, DataType::Boolean]);
        assert_eq!(t.get(&2), Some(&DataType::Boolean));
    }
}
