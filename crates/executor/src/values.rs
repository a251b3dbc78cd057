//! The fast path for `INSERT ... VALUES` with literal values: the rows become
//! Arrow arrays directly, without planning a query, and then take the same type
//! conversion as every other INSERT (`convert::array_to_column`).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, StringArray,
};
use datafusion::sql::sqlparser::ast;

/// A literal as written.
enum Lit {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
}

fn literal(e: &ast::Expr) -> Option<Lit> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Null => Some(Lit::Null),
            ast::Value::Boolean(b) => Some(Lit::Bool(*b)),
            ast::Value::Number(n, _) => Some(Lit::Number(n.clone())),
            ast::Value::SingleQuotedString(s) => Some(Lit::Text(s.clone())),
            _ => None,
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            Lit::Number(n) => Some(Lit::Number(format!("-{n}"))),
            _ => None,
        },
        _ => None,
    }
}

/// A literal as a bound value would carry it (numbers that are not integers
/// stay text, so the target column parses them exactly); `None` for anything
/// that is not a plain literal.
pub(crate) fn literal_param(e: &ast::Expr) -> Option<crate::params::ParamValue> {
    use crate::params::ParamValue;
    Some(match literal(e)? {
        Lit::Null => ParamValue::Null,
        Lit::Bool(b) => ParamValue::Bool(b),
        Lit::Number(n) => match n.parse::<i64>() {
            Ok(i) => ParamValue::Int(i),
            Err(_) => ParamValue::Text(n),
        },
        Lit::Text(s) => ParamValue::Text(s),
    })
}

/// One Arrow array per column for `VALUES (...), (...)` made only of literals;
/// `None` when anything else appears (the caller plans the query instead).
/// `exact[c]` says column `c` keeps numbers as written (text), for a NUMERIC
/// target that must not see them through a binary float.
pub(crate) fn literal_rows(source: &ast::Query, exact: &[bool]) -> Option<Vec<ArrayRef>> {
    let columns = exact.len();
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
        return None;
    }
    let ast::SetExpr::Values(values) = source.body.as_ref() else {
        return None;
    };
    if values.rows.iter().any(|r| r.len() != columns) {
        return None; // the planned path reports the count mismatch
    }
    let mut out = Vec::with_capacity(columns);
    for c in 0..columns {
        let lits: Vec<Lit> = values
            .rows
            .iter()
            .map(|r| literal(&r[c]))
            .collect::<Option<_>>()?;
        out.push(column(&lits, exact[c]));
    }
    Some(out)
}

/// The narrowest Arrow array that holds a column of literals as written
/// (with `exact`, fractions stay text).
fn column(lits: &[Lit], exact: bool) -> ArrayRef {
    let all = |f: fn(&Lit) -> bool| lits.iter().all(|l| matches!(l, Lit::Null) || f(l));
    if lits.iter().all(|l| matches!(l, Lit::Null)) {
        return Arc::new(NullArray::new(lits.len()));
    }
    if all(|l| matches!(l, Lit::Bool(_))) {
        return Arc::new(
            lits.iter()
                .map(|l| if let Lit::Bool(b) = l { Some(*b) } else { None })
                .collect::<BooleanArray>(),
        );
    }
    if all(|l| matches!(l, Lit::Number(n) if n.parse::<i64>().is_ok())) {
        return Arc::new(
            lits.iter()
                .map(|l| {
                    if let Lit::Number(n) = l {
                        n.parse::<i64>().ok()
                    } else {
                        None
                    }
                })
                .collect::<Int64Array>(),
        );
    }
    if !exact && all(|l| matches!(l, Lit::Number(n) if n.parse::<f64>().is_ok())) {
        return Arc::new(
            lits.iter()
                .map(|l| {
                    if let Lit::Number(n) = l {
                        n.parse::<f64>().ok()
                    } else {
                        None
                    }
                })
                .collect::<Float64Array>(),
        );
    }
    Arc::new(
        lits.iter()
            .map(|l| match l {
                Lit::Null => None,
                Lit::Bool(b) => Some(b.to_string()),
                Lit::Number(n) | Lit::Text(n) => Some(n.clone()),
            })
            .collect::<StringArray>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    fn source(sql: &str) -> Box<ast::Query> {
        match tidemark_parser::parse(sql).ok().and_then(|mut v| v.pop()) {
            Some(tidemark_parser::Statement::Standard(s)) => match *s {
                ast::Statement::Insert(i) => i.source.expect("VALUES"),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn literal_values_skip_planning_and_keep_their_kind() {
        let q =
            source("INSERT INTO t VALUES (1, -2.5, 'x', true, NULL), (2, 3, NULL, false, NULL)");
        let arrays = literal_rows(&q, &[false; 5]).expect("all literals");
        let types: Vec<DataType> = arrays.iter().map(|a| a.data_type().clone()).collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8,
                DataType::Boolean,
                DataType::Null
            ]
        );
        assert!(
            literal_rows(&source("INSERT INTO t VALUES (1 + 1)"), &[false]).is_none(),
            "expressions are planned"
        );
        assert!(
            literal_rows(&source("INSERT INTO t SELECT 1"), &[false]).is_none(),
            "queries are planned"
        );
        assert!(
            literal_rows(&source("INSERT INTO t VALUES (1, 2)"), &[false]).is_none(),
            "count mismatch is reported by the planner"
        );
        let exact = literal_rows(&source("INSERT INTO t VALUES (12.345, 7)"), &[true, true])
            .expect("all literals");
        assert_eq!(
            exact[0].data_type(),
            &DataType::Utf8,
            "a fraction stays as written"
        );
        assert_eq!(exact[1].data_type(), &DataType::Int64);
    }
}
