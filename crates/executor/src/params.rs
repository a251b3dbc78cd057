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
    /// An array (`= ANY($1)`): its elements (NULL, values, or the sub-arrays of a
    /// multi-dimensional array) and the SQL name of its element type (`BIGINT`).
    Array {
        element_type: &'static str,
        items: Vec<ParamValue>,
    },
}

/// Reads PostgreSQL's text form of an array (`{1,2,NULL}`, `{{a,b},{"c d",e}}`) into
/// an [`ParamValue::Array`] of text elements (which the element type then parses, as
/// it would literals). The error says what is malformed.
pub fn parse_array_text(
    text: &str,
    element_type: &'static str,
) -> std::result::Result<ParamValue, String> {
    let mut chars = text.trim_start().chars().peekable();
    match chars.next() {
        Some('{') => {}
        Some('[') => return Err("array dimension decorations are not supported".into()),
        _ => {
            return Err(format!(
                "malformed array literal \"{text}\": it must start with \"{{\""
            ));
        }
    }
    let value = read_array_items(&mut chars, element_type, text)?;
    if chars.any(|c| !c.is_whitespace()) {
        return Err(format!(
            "malformed array literal \"{text}\": junk after closing right brace"
        ));
    }
    Ok(value)
}

/// The items of one `{...}` whose `{` has been read, through its `}`.
fn read_array_items(
    chars: &mut std::iter::Peekable<std::str::Chars>,
    element_type: &'static str,
    text: &str,
) -> std::result::Result<ParamValue, String> {
    let malformed = |what: &str| format!("malformed array literal \"{text}\": {what}");
    let mut items = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if items.is_empty() && chars.next_if_eq(&'}').is_some() {
            return Ok(ParamValue::Array {
                element_type,
                items,
            });
        }
        match chars.peek() {
            Some('{') => {
                chars.next();
                items.push(read_array_items(chars, element_type, text)?);
            }
            Some('"') => {
                chars.next();
                let mut item = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => item.push(
                            chars
                                .next()
                                .ok_or_else(|| malformed("unexpected end of input"))?,
                        ),
                        Some(c) => item.push(c),
                        None => return Err(malformed("unexpected end of input")),
                    }
                }
                items.push(ParamValue::Text(item));
            }
            Some(_) => {
                let mut item = String::new();
                let mut escaped = false;
                while let Some(c) = chars.next_if(|c| *c != ',' && *c != '}') {
                    match c {
                        '\\' => {
                            item.push(
                                chars
                                    .next()
                                    .ok_or_else(|| malformed("unexpected end of input"))?,
                            );
                            escaped = true;
                        }
                        '{' | '"' => {
                            return Err(malformed(&format!("unexpected \"{c}\" character")));
                        }
                        c => item.push(c),
                    }
                }
                let item = item.trim_end();
                if item.is_empty() {
                    return Err(malformed("empty element"));
                }
                items.push(if !escaped && item.eq_ignore_ascii_case("NULL") {
                    ParamValue::Null
                } else {
                    ParamValue::Text(item.to_string())
                });
            }
            None => return Err(malformed("unexpected end of input")),
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            Some(',') => {}
            Some('}') => {
                return Ok(ParamValue::Array {
                    element_type,
                    items,
                });
            }
            Some(c) => return Err(malformed(&format!("unexpected \"{c}\" character"))),
            None => return Err(malformed("unexpected end of input")),
        }
    }
}

/// `ARRAY[...]` of an array value's items (nested for sub-arrays) and its number of
/// dimensions.
fn array_constructor(items: &[ParamValue]) -> Result<(String, usize)> {
    let mut parts = Vec::with_capacity(items.len());
    let mut depth = 1;
    for item in items {
        match item {
            ParamValue::Array { items, .. } => {
                let (sql, inner) = array_constructor(items)?;
                depth = depth.max(inner + 1);
                parts.push(sql);
            }
            item => parts.push(literal(item, false)?.to_string()),
        }
    }
    Ok((format!("ARRAY[{}]", parts.join(", ")), depth))
}

/// The number of parameters a statement uses (the highest `$n`).
pub(crate) fn count(statement: &Statement) -> usize {
    // PREPARE's `$n` are the prepared statement's, bound by a later EXECUTE.
    if let Statement::Prepare { .. } = statement {
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

/// Calls `f` with each LIMIT and OFFSET expression of the statement's queries.
fn for_each_limit(statement: &Statement, f: impl FnMut(&ast::Expr)) {
    struct Limits<F>(F);
    impl<F: FnMut(&ast::Expr)> ast::Visitor for Limits<F> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
            match &query.limit_clause {
                Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
                    limit.iter().for_each(&mut self.0);
                    offset.iter().for_each(|o| (self.0)(&o.value));
                }
                Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                    (self.0)(offset);
                    (self.0)(limit);
                }
                None => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut limits = Limits(f);
    let _ = match statement {
        Statement::Standard(s) => ast::Visit::visit(s.as_ref(), &mut limits),
        Statement::Sample { query, .. } | Statement::Latest { query, .. } => {
            ast::Visit::visit(query.as_ref(), &mut limits)
        }
        _ => ControlFlow::Continue(()),
    };
}

/// 08P01 when fewer `values` are bound than the statement's `needed`
/// parameters, as PostgreSQL refuses such a Bind.
pub(crate) fn supplied(values: &[ParamValue], needed: usize) -> Result<()> {
    if values.len() < needed {
        return Err(ExecError::new(
            sqlstate::PROTOCOL_VIOLATION,
            format!(
                "bind message supplies {} parameters, but prepared statement requires {needed}",
                values.len()
            ),
        ));
    }
    Ok(())
}

/// Replaces `$n` with the n-th value. In `INSERT ... VALUES` rows, values
/// become plain literals (the target column's type converts them, and the rows
/// stay on the literal fast path); elsewhere they become typed literals, so
/// that `price > $1` compares numbers, not text.
pub(crate) fn bind(statement: &mut Statement, values: &[ParamValue]) -> Result<()> {
    let needed = count(statement);
    supplied(values, needed)?;
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
            } else if let Some(scale) = (*type_name == "NUMERIC")
                .then(|| decimal_scale(text))
                .flatten()
            {
                // A bare NUMERIC is numeric(38,10) here; a bound value keeps
                // its own scale, as PostgreSQL's numeric does (`$1::text` of
                // 1.25 is `1.25`).
                parse_expr(&format!("CAST('{}' AS NUMERIC(38, {scale}))", escape(text)))?
            } else {
                parse_expr(&format!("{type_name} '{}'", escape(text)))?
            }
        }
        // Cast as a whole: text elements parse as the element type, and an empty
        // array still has it.
        ParamValue::Array {
            element_type,
            items,
        } => {
            let (constructor, depth) = array_constructor(items)?;
            parse_expr(&format!(
                "CAST({constructor} AS {element_type}{})",
                "[]".repeat(depth)
            ))?
        }
    })
}

/// The Arrow type of a SQL type name a parameter is cast to (`$1::bigint`,
/// `$1::uuid`, `$1::text[][]`), whose PostgreSQL type the server describes;
/// `None` for types this does not know (the parameter is then text).
fn sql_param_type(t: &ast::DataType) -> Option<DataType> {
    use ast::DataType as Sql;
    Some(match t {
        Sql::Array(
            ast::ArrayElemTypeDef::SquareBracket(element, _)
            | ast::ArrayElemTypeDef::AngleBracket(element)
            | ast::ArrayElemTypeDef::Parenthesis(element),
        ) => DataType::new_list(sql_param_type(element)?, true),
        Sql::Bool | Sql::Boolean => DataType::Boolean,
        Sql::SmallInt(_) | Sql::Int2(_) => DataType::Int16,
        Sql::Int(_) | Sql::Integer(_) | Sql::Int4(_) => DataType::Int32,
        Sql::BigInt(_) | Sql::Int8(_) => DataType::Int64,
        Sql::Real | Sql::Float4 => DataType::Float32,
        Sql::Double(_) | Sql::DoublePrecision | Sql::Float8 => DataType::Float64,
        Sql::Text | Sql::Varchar(_) | Sql::String(_) => DataType::Utf8,
        Sql::Timestamp(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => {
            DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Microsecond,
                Some(crate::types::UTC_OFFSET.into()),
            )
        }
        Sql::Timestamp(..) => {
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
        }
        Sql::Date => DataType::Date32,
        Sql::Interval { .. } => {
            DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
        }
        Sql::Uuid => DataType::FixedSizeBinary(16),
        Sql::Bytea => DataType::Binary,
        Sql::Numeric(_) | Sql::Decimal(_) => DataType::Decimal128(38, 10),
        // Object identifiers are unsigned 32-bit numbers; the server describes
        // a UInt32 parameter as `oid` (asyncpg's introspection takes `$1::oid[]`).
        Sql::Custom(name, modifiers)
            if modifiers.is_empty() && name.to_string().eq_ignore_ascii_case("oid") =>
        {
            DataType::UInt32
        }
        _ => return None,
    })
}

/// The number of fractional digits of a plain decimal number (`-12.50` has
/// 2); `None` for anything else (an exponent, NaN) or beyond 38.
fn decimal_scale(text: &str) -> Option<usize> {
    let digits = text.trim().trim_start_matches(['+', '-']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !(whole.is_empty() && fraction.is_empty())
        && whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit());
    (plain && fraction.len() <= 38).then_some(fraction.len())
}

/// `e` without the parentheses around it.
fn unnested(mut e: &ast::Expr) -> &ast::Expr {
    while let ast::Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// Parameter types from the columns they meet in the statement: the target
/// column of an INSERT VALUES position or an UPDATE assignment, or the column a
/// comparison, BETWEEN or IN puts them against (an array of it for `= ANY($n)`). `columns` maps column names
/// (lowercase) of the tables in the statement to their types. A `LIMIT` or
/// `OFFSET` parameter is a BIGINT, as PostgreSQL types it (node-postgres sends
/// `LIMIT $1` untyped).
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
    for_each_limit(statement, |e| {
        if let Some(n) = placeholder_index(e) {
            types.entry(n).or_insert(DataType::Int64);
        }
    });
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
        // `$1::bigint`, `$1::uuid`, `$1::bigint[]`: the type it is cast to
        // (DataFusion's planner infers nothing from a cast).
        if let ast::Expr::Cast {
            expr, data_type, ..
        } = e
            && let Some(n) = placeholder_index(expr)
            && let Some(t) = sql_param_type(data_type)
        {
            types.entry(n).or_insert(t);
        }
        // `col = ANY($1)`: an array of the column's type.
        if let ast::Expr::AnyOp { left, right, .. } | ast::Expr::AllOp { left, right, .. } = e
            && let (Some(n), Some(t)) = (placeholder_index(unnested(right)), column_type(left))
        {
            types
                .entry(n)
                .or_insert_with(|| DataType::new_list(t, true));
        }
    });
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decimal_keeps_the_scale_it_was_written_with() {
        for (text, scale) in [
            ("1.25", Some(2)),
            ("-0.500", Some(3)),
            ("+100", Some(0)),
            (".5", Some(1)),
            ("1E+3", None),
            ("NaN", None),
            ("", None),
            ("-", None),
        ] {
            assert_eq!(decimal_scale(text), scale, "{text}");
        }
    }

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
    fn arrays_read_postgres_text_and_bind_as_casts() {
        let text = |s: &str| ParamValue::Text(s.into());
        let array = |items| ParamValue::Array {
            element_type: "BIGINT",
            items,
        };
        assert_eq!(
            parse_array_text(r#" { 1 , NULL,"NULL" ,"a \"b\"", c\,d } "#, "BIGINT"),
            Ok(array(vec![
                text("1"),
                ParamValue::Null,
                text("NULL"),
                text("a \"b\""),
                text("c,d")
            ]))
        );
        assert_eq!(
            parse_array_text("{{1,2},{3,4}}", "BIGINT"),
            Ok(array(vec![
                array(vec![text("1"), text("2")]),
                array(vec![text("3"), text("4")])
            ]))
        );
        assert_eq!(parse_array_text("{}", "BIGINT"), Ok(array(vec![])));
        for bad in ["1,2", "{1,2", "{1,,2}", "{1}x", "[1:2]={1,2}", "{\"a}"] {
            assert!(parse_array_text(bad, "BIGINT").is_err(), "{bad}");
        }

        let mut s = parse("SELECT * FROM t WHERE id = ANY($1) OR id = ANY($2)");
        bind(
            &mut s,
            &[
                parse_array_text("{1,NULL}", "BIGINT").expect("valid"),
                parse_array_text("{{1},{2}}", "BIGINT").expect("valid"),
            ],
        )
        .expect("test value");
        let Statement::Standard(q) = &s else { panic!() };
        assert_eq!(
            q.to_string(),
            "SELECT * FROM t WHERE id = ANY(CAST(ARRAY['1', NULL] AS BIGINT[])) \
             OR id = ANY(CAST(ARRAY[ARRAY['1'], ARRAY['2']] AS BIGINT[][]))"
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
        let s = parse(
            "SELECT * FROM t WHERE sym = ANY($1) AND price <> ALL(($2)) OR $3::int[][] IS NULL",
        );
        let t = infer_from_columns(&s, &columns, &[]);
        assert_eq!(
            t.get(&3),
            Some(&DataType::new_list(
                DataType::new_list(DataType::Int32, true),
                true
            ))
        );
        assert_eq!(t.get(&1), Some(&DataType::new_list(DataType::Utf8, true)));
        assert_eq!(
            t.get(&2),
            Some(&DataType::new_list(DataType::Float64, true))
        );
        let s = parse("INSERT INTO t VALUES ($1, $2)");
        let t = infer_from_columns(&s, &columns, &[DataType::Int64, DataType::Boolean]);
        assert_eq!(t.get(&2), Some(&DataType::Boolean));
        // A cast types its parameter, as PostgreSQL describes it (asyncpg encodes by it).
        let s = parse("SELECT $1::bigint, $2::uuid, $3::timestamptz, $4::numeric(5,2), $5::json");
        let t = infer_from_columns(&s, &columns, &[]);
        assert_eq!(t.get(&1), Some(&DataType::Int64));
        assert_eq!(t.get(&2), Some(&DataType::FixedSizeBinary(16)));
        assert!(
            matches!(t.get(&3), Some(DataType::Timestamp(_, Some(_)))),
            "{t:?}"
        );
        assert_eq!(t.get(&4), Some(&DataType::Decimal128(38, 10)));
        assert_eq!(t.get(&5), None);
    }
}
