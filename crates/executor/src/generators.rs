//! QuestDB's row generators and its `LIMIT lo, hi`, rewritten into SQL DataFusion
//! plans (applied to every statement before planning, `Session::adapt`):
//! - `FROM long_sequence(n)`: the rows 1..=n in a BIGINT column `x`, streamed by
//!   DataFusion's `generate_series` (nothing is materialised);
//! - `timestamp_sequence(start, step)`: `start` for the first row, then `step`
//!   microseconds more for each following row (a row number over the result);
//! - `LIMIT lo, hi`: the rows `lo + 1 ..= hi` (QuestDB's bounds, not MySQL's offset
//!   and count); `LIMIT -n`: the last n rows, in order (`last_rows`);
//! - `first(x)`/`last(x)` outside SAMPLE BY: the value of the first/last row by the
//!   table's designated timestamp (`first_value(x ORDER BY ts)`);
//! - `year(ts)`, `month`, `day`, `hour`, `minute`, `second`, `millis`, `micros`,
//!   `day_of_week` (1 Monday .. 7 Sunday), `day_of_week_sunday_first` (1 Sunday),
//!   `week_of_year`, `days_in_month`, `is_leap_year`: `date_part` arithmetic;
//! - `to_timezone(ts, 'Europe/Berlin')` (UTC to that zone's wall clock) and
//!   `to_utc(ts, 'Europe/Berlin')` (the reverse), for a zone written as a literal;
//! - `systimestamp()`, `sysdate()`: `now()`; PostgreSQL's `localtimestamp` and
//!   `localtime`: `now()` as a TIMESTAMP and a TIME; `round_down`, `round_up`,
//!   `round_half_even` (value, scale) and `size_pretty(bytes)`; `now_ns()`,
//!   `systimestamp_ns()`, `to_lowercase`, `to_uppercase`, `length_bytes`,
//!   `is_end_of_month(ts)`; `to_date(text, 'yyyy-MM-dd')` and `to_timestamp(text, 'yyyy-MM-dd HH:mm:ss')`
//!   and `to_str(ts, 'yyyy-MM-dd')` with QuestDB's pattern letters (a pattern
//!   with `%` is chrono's and stays).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, VisitMut, VisitorMut};

use tidemark_storage::Snapshot;

use crate::error::{ExecError, Result, sqlstate};
use crate::rewrite::{parse_expr, parse_query, part, with_parts};

/// Applies the rewrites above to `statement`, reading tables' designated
/// timestamps in `snapshot`.
pub(crate) fn rewrite(statement: &mut ast::Statement, snapshot: &Snapshot) -> Result<()> {
    let mut generators = Generators {
        error: None,
        snapshot,
    };
    let _ = statement.visit(&mut generators);
    if let Some(e) = generators.error {
        return Err(e);
    }
    crate::rewrite::rewrite_expressions(statement, questdb_function)
}

struct Generators<'a> {
    error: Option<ExecError>,
    snapshot: &'a Snapshot,
}

impl VisitorMut for Generators<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        if let ast::SetExpr::Select(select) = query.body.as_mut()
            && let Err(e) = first_last(select, self.snapshot)
        {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut ast::TableFactor) -> ControlFlow<()> {
        match long_sequence(factor) {
            Ok(Some(replaced)) => *factor = replaced,
            Ok(None) => {}
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        if let Err(e) = questdb_limit(query, self.snapshot) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// QuestDB's `round_down(x, scale)` (toward zero), `round_up(x, scale)` (away
/// from zero) and `round_half_even(x, scale)` as DOUBLE arithmetic, `part(0)`
/// the value and `part(1)` the scale (negative: digits left of the point).
fn rounding_skeleton(name: &ast::ObjectName) -> Option<String> {
    // `{s}` stands for the scaled value, `{u}` for the scale's power of ten.
    let template = if is_function(name, "round_down") {
        "trunc({s}) / {u}"
    } else if is_function(name, "round_up") {
        "signum({s}) * ceil(abs({s})) / {u}"
    } else if is_function(name, "round_half_even") {
        "CASE WHEN abs({s} - trunc({s})) = 0.5 THEN 2 * round({s} / 2) ELSE round({s}) END / {u}"
    } else {
        return None;
    };
    let scaled = format!("(CAST({} AS DOUBLE) * power(10, {}))", part(0), part(1));
    let unscale = format!("power(10, {})", part(1));
    Some(template.replace("{s}", &scaled).replace("{u}", &unscale))
}

/// QuestDB's `size_pretty(bytes)`: the size in the largest binary unit it
/// reaches, with one decimal (`390.7 KiB`).
fn size_pretty_skeleton() -> String {
    let n = format!("CAST({} AS DOUBLE)", part(0));
    let mut cases = format!(
        "CASE WHEN abs({n}) < 1024 THEN concat(CAST({} AS BIGINT), ' B')",
        part(0)
    );
    for (i, unit) in ["KiB", "MiB", "GiB", "TiB", "PiB"].iter().enumerate() {
        let exponent = i + 1;
        cases.push_str(&format!(
            " WHEN abs({n}) < power(1024, {}) THEN concat(round({n} / power(1024, {exponent}), 1), ' {unit}')",
            exponent + 1
        ));
    }
    cases.push_str(&format!(
        " ELSE concat(round({n} / power(1024, 6), 1), ' EiB') END"
    ));
    cases
}

fn is_function(name: &ast::ObjectName, wanted: &str) -> bool {
    name.0.len() == 1
        && name.0[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case(wanted))
}

fn unnamed_args(args: &[ast::FunctionArg], function: &str) -> Result<Vec<ast::Expr>> {
    args.iter()
        .map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e.clone()),
            _ => Err(ExecError::new(
                sqlstate::SYNTAX_ERROR,
                format!("{function} takes positional arguments only"),
            )),
        })
        .collect()
}

/// `long_sequence(n) [alias]` as a derived table of `generate_series(1, n)`.
fn long_sequence(factor: &ast::TableFactor) -> Result<Option<ast::TableFactor>> {
    let ast::TableFactor::Table {
        name,
        alias,
        args: Some(args),
        ..
    } = factor
    else {
        return Ok(None);
    };
    if !is_function(name, "long_sequence") {
        return Ok(None);
    }
    let args = unnamed_args(&args.args, "long_sequence")?;
    let [count] = args.as_slice() else {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "long_sequence takes one argument, the row count (got {}); seeded \
                 (reproducible) random values are not supported",
                args.len()
            ),
        ));
    };
    let skeleton = parse_query(&format!(
        "SELECT * FROM (SELECT value AS x FROM generate_series(1, {})) AS long_sequence",
        part(0)
    ))?;
    let ast::SetExpr::Select(select) = *with_parts(skeleton, &[count]).body else {
        return Err(internal());
    };
    let Some(mut derived) = select.from.into_iter().next().map(|t| t.relation) else {
        return Err(internal());
    };
    if let (ast::TableFactor::Derived { alias: a, .. }, Some(given)) = (&mut derived, alias) {
        *a = Some(given.clone());
    }
    Ok(Some(derived))
}

/// `first(x)`/`last(x)` in a SELECT over one table, ordered by its designated
/// timestamp (by the rows' order when it has none, or the FROM is not one table).
fn first_last(select: &mut ast::Select, snapshot: &Snapshot) -> Result<()> {
    let ts = match select.from.as_slice() {
        [
            ast::TableWithJoins {
                relation:
                    ast::TableFactor::Table {
                        name, args: None, ..
                    },
                joins,
            },
        ] if joins.is_empty() => crate::ddl::object_name(name)
            .ok()
            .and_then(|n| snapshot.table(&n))
            .and_then(|t| t.meta().timestamp_name().map(crate::rewrite::quote_ident))
            .unwrap_or_default(),
        _ => String::new(),
    };
    for item in &mut select.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                crate::sample::rewrite_first_last(e, &ts)?
            }
            _ => {}
        }
    }
    if let Some(having) = &mut select.having {
        crate::sample::rewrite_first_last(having, &ts)?;
    }
    Ok(())
}

/// QuestDB's scalar functions written in DataFusion's terms (see the module docs).
fn questdb_function(e: &ast::Expr) -> Result<Option<ast::Expr>> {
    let ast::Expr::Function(f) = e else {
        return Ok(None);
    };
    let args = match &f.args {
        ast::FunctionArguments::List(list) => list.args.as_slice(),
        _ => &[],
    };
    if is_function(&f.name, "timestamp_sequence") {
        return timestamp_sequence(&unnamed_args(args, "timestamp_sequence")?).map(Some);
    }
    if (is_function(&f.name, "systimestamp") || is_function(&f.name, "sysdate")) && args.is_empty()
    {
        return parse_expr("now()").map(Some);
    }
    if let Some(rounding) = rounding_skeleton(&f.name)
        && let [value, scale] = unnamed_args(args, &f.name.to_string())?.as_slice()
    {
        return Ok(Some(with_parts(parse_expr(&rounding)?, &[value, scale])));
    }
    if is_function(&f.name, "size_pretty")
        && let [bytes] = unnamed_args(args, "size_pretty")?.as_slice()
    {
        return Ok(Some(with_parts(
            parse_expr(&size_pretty_skeleton())?,
            &[bytes],
        )));
    }
    // PostgreSQL's LOCALTIMESTAMP and LOCALTIME: the transaction's instant as
    // a TIMESTAMP / TIME (queries run in UTC).
    if is_function(&f.name, "localtimestamp") && args.is_empty() {
        return parse_expr("arrow_cast(now(), 'Timestamp(Microsecond, None)')").map(Some);
    }
    if is_function(&f.name, "localtime") && args.is_empty() {
        return parse_expr("CAST(now() AS TIME)").map(Some);
    }
    // Other names QuestDB gives functions DataFusion has.
    if let Some(sql) = [
        ("now_ns", "arrow_cast(now(), 'Timestamp(Nanosecond, None)')"),
        (
            "systimestamp_ns",
            "arrow_cast(now(), 'Timestamp(Nanosecond, None)')",
        ),
    ]
    .into_iter()
    .find_map(|(name, sql)| (is_function(&f.name, name) && args.is_empty()).then_some(sql))
    {
        return parse_expr(sql).map(Some);
    }
    if let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(value))] = args
        && let Some(template) = [
            ("to_lowercase", "lower({})"),
            ("to_uppercase", "upper({})"),
            ("length_bytes", "octet_length({})"),
            (
                "is_end_of_month",
                "date_trunc('day', {x}) = date_trunc('month', {x}) + INTERVAL '1 month' - INTERVAL '1 day'",
            ),
        ]
        .into_iter()
        .find_map(|(name, template)| is_function(&f.name, name).then_some(template))
    {
        let sql = template
            .replace("{x}", &format!("({})", part(0)))
            .replace("{}", &part(0));
        return Ok(Some(with_parts(parse_expr(&sql)?, &[value])));
    }
    // QuestDB's to_date(text, pattern) reads its pattern letters, as
    // to_timestamp does, and gives the day.
    let to_date = is_function(&f.name, "to_date");
    if (is_function(&f.name, "to_timestamp") || to_date)
        && let Some((value, p)) = value_and_text(args)
        && !p.contains('%')
    {
        let mut chrono = chrono_pattern(p);
        // chrono needs a month and a day; QuestDB takes the first of each
        // (`to_timestamp('2024', 'yyyy')` is 2024-01-01).
        let mut defaults = String::new();
        if !["%m", "%b", "%B", "%j"].iter().any(|m| chrono.contains(m)) {
            chrono.push_str("~%m");
            defaults.push_str("~01");
        }
        if !["%d", "%e", "%j"].iter().any(|d| chrono.contains(d)) {
            chrono.push_str("~%d");
            defaults.push_str("~01");
        }
        let value = if defaults.is_empty() {
            value.clone()
        } else {
            with_parts(
                parse_expr(&format!("concat({}, {})", part(0), part(1)))?,
                &[value, &crate::rewrite::string_literal(&defaults)],
            )
        };
        // QuestDB's `Z` reads an offset or the letter Z (UTC); chrono's `%z`
        // takes only an offset, so such a pattern is tried with a literal Z too.
        let mut formats = vec![chrono.clone()];
        if chrono.contains("%z") {
            formats.push(chrono.replace("%z", "Z"));
        }
        let format_parts: Vec<String> = (1..=formats.len()).map(part).collect();
        let parsed = format!(
            "arrow_cast(to_timestamp({}, {}), 'Timestamp(Microsecond, None)')",
            part(0),
            format_parts.join(", ")
        );
        let skeleton = parse_expr(&if to_date {
            format!("CAST({parsed} AS DATE)")
        } else {
            parsed
        })?;
        let formats: Vec<ast::Expr> = formats
            .iter()
            .map(|f| crate::rewrite::string_literal(f))
            .collect();
        let mut parts = vec![&value];
        parts.extend(formats.iter());
        return Ok(Some(with_parts(skeleton, &parts)));
    }
    if let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(value))] = args
        && let Some(template) = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .filter(|_| f.name.0.len() == 1 && f.over.is_none())
            .and_then(|i| date_part_template(&i.value.to_ascii_lowercase()))
    {
        let skeleton = parse_expr(&template.replace("{ts}", &format!("({})", part(0))))?;
        return Ok(Some(with_parts(skeleton, &[value])));
    }
    let zone_function = is_function(&f.name, "to_timezone") || is_function(&f.name, "to_utc");
    if zone_function && let Some((value, zone)) = value_and_text(args) {
        // The zone goes into an Arrow type name: it must be one Arrow knows (an
        // IANA name or an offset), which also keeps quotes out.
        if zone
            .parse::<datafusion::arrow::array::timezone::Tz>()
            .is_err()
        {
            return Err(ExecError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("time zone \"{zone}\" not recognized"),
            ));
        }
        let in_zone = format!("'Timestamp(Microsecond, Some(\"{zone}\"))'");
        let sql = if is_function(&f.name, "to_timezone") {
            format!(
                "to_local_time(arrow_cast(arrow_cast({}, 'Timestamp(Microsecond, Some(\"UTC\"))'), {in_zone}))",
                part(0)
            )
        } else {
            format!(
                "arrow_cast(arrow_cast({}, {in_zone}), 'Timestamp(Microsecond, None)')",
                part(0)
            )
        };
        return Ok(Some(with_parts(parse_expr(&sql)?, &[value])));
    }
    if is_function(&f.name, "to_str")
        && let Some((value, p)) = value_and_text(args)
    {
        let skeleton = parse_expr(&format!("to_char({}, {})", part(0), part(1)))?;
        // Timestamps are UTC: QuestDB's `Z` writes the letter Z.
        let chrono = if p.contains('%') {
            p.to_string()
        } else {
            chrono_pattern(p).replace("%z", "Z")
        };
        let chrono = crate::rewrite::string_literal(&chrono);
        return Ok(Some(with_parts(skeleton, &[value, &chrono])));
    }
    Ok(None)
}

/// The arguments of a call `f(value, 'text')`: the value and the literal text
/// (`to_timestamp`, `to_str`, `to_timezone` take their pattern or zone so).
fn value_and_text(args: &[ast::FunctionArg]) -> Option<(&ast::Expr, &str)> {
    let [
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(value)),
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Value(text))),
    ] = args
    else {
        return None;
    };
    match &text.value {
        ast::Value::SingleQuotedString(t) => Some((value, t)),
        _ => None,
    }
}

/// QuestDB's date-part function `name` in DataFusion's terms, `{ts}` standing
/// for the argument (INT results, as QuestDB's).
fn date_part_template(name: &str) -> Option<&'static str> {
    Some(match name {
        "year" => "CAST(date_part('year', {ts}) AS INT)",
        "month" => "CAST(date_part('month', {ts}) AS INT)",
        "day" => "CAST(date_part('day', {ts}) AS INT)",
        "hour" => "CAST(date_part('hour', {ts}) AS INT)",
        "minute" => "CAST(date_part('minute', {ts}) AS INT)",
        "second" => "CAST(floor(date_part('second', {ts})) AS INT)",
        // Within the second and within the millisecond.
        "millis" => "CAST(date_part('millisecond', {ts}) AS INT) % 1000",
        "micros" => "CAST(date_part('microsecond', {ts}) AS INT) % 1000",
        "day_of_week" => "(CAST(date_part('dow', {ts}) AS INT) + 6) % 7 + 1",
        "day_of_week_sunday_first" => "CAST(date_part('dow', {ts}) AS INT) + 1",
        "week_of_year" => "CAST(date_part('week', {ts}) AS INT)",
        "days_in_month" => {
            "CAST(date_part('day', date_trunc('month', {ts}) + INTERVAL '1 month' - INTERVAL '1 day') AS INT)"
        }
        "is_leap_year" => {
            "(CAST(date_part('year', {ts}) AS INT) % 4 = 0 AND (CAST(date_part('year', {ts}) AS INT) % 100 <> 0 OR CAST(date_part('year', {ts}) AS INT) % 400 = 0))"
        }
        _ => return None,
    })
}

/// A QuestDB date pattern (`yyyy-MM-ddTHH:mm:ss.SSSUUU`), or PostgreSQL's
/// (`YYYY-MM-DD HH24:MI:SS`), as a chrono format.
fn chrono_pattern(pattern: &str) -> String {
    const LETTERS: [(&str, &str); 29] = [
        // PostgreSQL's template patterns, which do not clash with QuestDB's.
        ("YYYY", "%Y"),
        ("DD", "%d"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("MS", "%3f"),
        ("US", "%6f"),
        // Fractions after a point: chrono's `%.6f` takes the point with them.
        (".SSSUUU", "%.6f"),
        (".SSS", "%.3f"),
        ("yyyy", "%Y"),
        ("yy", "%y"),
        ("MMMM", "%B"),
        ("MMM", "%b"),
        ("MM", "%m"),
        ("M", "%m"),
        ("dd", "%d"),
        ("d", "%d"),
        ("HH", "%H"),
        ("H", "%H"),
        ("hh", "%I"),
        ("mm", "%M"),
        ("ss", "%S"),
        ("SSSUUU", "%6f"),
        ("SSS", "%3f"),
        ("EEEE", "%A"),
        ("E", "%a"),
        ("a", "%p"),
        ("Z", "%z"),
    ];
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            // A quoted literal: 'T'.
            let body = &rest[1..];
            let (literal, after) = match body.find('\'') {
                Some(i) => (&body[..i], &body[i + 1..]),
                None => (body, ""),
            };
            out.push_str(literal);
            rest = after;
            continue;
        }
        // The longest pattern that starts here (`SSS` before `SS`, `HH24` before `HH`).
        if let Some((from, to)) = LETTERS
            .iter()
            .filter(|(from, _)| rest.starts_with(from))
            .max_by_key(|(from, _)| from.len())
        {
            out.push_str(to);
            rest = &rest[from.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `timestamp_sequence(start, step)` as the start plus `step` microseconds per row
/// before this one. A numeric start is microseconds since the epoch.
fn timestamp_sequence(args: &[ast::Expr]) -> Result<ast::Expr> {
    let [start, step] = args else {
        return Err(arguments());
    };
    let numeric_start =
        matches!(start, ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)));
    let start_micros = if numeric_start {
        format!("CAST({} AS BIGINT)", part(0))
    } else {
        format!(
            "CAST(arrow_cast({}, 'Timestamp(Microsecond, None)') AS BIGINT)",
            part(0)
        )
    };
    let skeleton = parse_expr(&format!(
        "arrow_cast(to_timestamp_micros({start_micros} + (row_number() OVER () - 1) * \
         CAST({} AS BIGINT)), 'Timestamp(Microsecond, None)')",
        part(1)
    ))?;
    Ok(with_parts(skeleton, &[start, step]))
}

fn arguments() -> ExecError {
    ExecError::new(
        sqlstate::UNDEFINED_FUNCTION,
        "timestamp_sequence takes two arguments: the first timestamp and the step in \
         microseconds",
    )
}

fn internal() -> ExecError {
    ExecError::new(
        sqlstate::INTERNAL_ERROR,
        "the long_sequence rewrite produced no table",
    )
}

/// An integer literal (with its sign), if `e` is one.
fn integer(e: &ast::Expr) -> Option<i64> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => integer(expr).and_then(i64::checked_neg),
        _ => None,
    }
}

/// QuestDB's `LIMIT lo, hi` (rows lo+1 through hi) and `LIMIT -n` (the last n).
fn questdb_limit(query: &mut ast::Query, snapshot: &Snapshot) -> Result<()> {
    let Some(clause) = &query.limit_clause else {
        return Ok(());
    };
    match clause {
        ast::LimitClause::OffsetCommaLimit { offset, limit } => {
            let (lo, hi) = (offset.clone(), limit.clone());
            if integer(&lo).is_some_and(|v| v < 0) || integer(&hi).is_some_and(|v| v < 0) {
                return Err(ExecError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "LIMIT lo, hi with negative bounds is not supported; use LIMIT -n for the \
                     last n rows",
                ));
            }
            // The row count is hi - lo, never below zero.
            let count = with_parts(
                parse_expr(&format!("greatest({} - {}, 0)", part(1), part(0)))?,
                &[&lo, &hi],
            );
            query.limit_clause = Some(ast::LimitClause::LimitOffset {
                limit: Some(count),
                offset: Some(ast::Offset {
                    value: lo,
                    rows: ast::OffsetRows::None,
                }),
                limit_by: Vec::new(),
            });
        }
        ast::LimitClause::LimitOffset {
            limit: Some(limit),
            offset: None,
            ..
        } if integer(limit).is_some_and(|v| v < 0) => {
            let n = integer(limit).map_or(0, |v| v.unsigned_abs());
            last_rows(query, n, snapshot)?;
        }
        _ => {}
    }
    Ok(())
}

/// `query` limited to its last `n` rows in its own order (its ORDER BY, or for
/// a plain SELECT over one table the table's designated timestamp): the first
/// n in the reverse order (a top-n sort, n rows in memory), put back in order
/// by keys carried as hidden columns. Works for joins, GROUP BY and aggregates
/// with an ORDER BY (keys may name output aliases or positions); DISTINCT and
/// set operations are refused with the spelling to use instead.
fn last_rows(query: &mut ast::Query, n: u64, snapshot: &Snapshot) -> Result<()> {
    let refuse = || {
        ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "LIMIT -{n} (the last rows) needs an order: an ORDER BY, or a plain SELECT over \
                 one table with a designated timestamp (and no DISTINCT); for this query use \
                 ORDER BY ... DESC LIMIT {n}"
            ),
        )
    };
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return Err(refuse());
    };
    if select.distinct.is_some() {
        return Err(refuse());
    }
    // The order the rows are counted in.
    let keys: Vec<ast::OrderByExpr> = match query.order_by.as_ref().map(|o| &o.kind) {
        Some(ast::OrderByKind::Expressions(list)) if !list.is_empty() => list
            .iter()
            .map(|key| {
                let expr = output_expr(&select.projection, &key.expr).ok_or_else(refuse)?;
                Ok(ast::OrderByExpr {
                    expr,
                    ..key.clone()
                })
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(refuse()),
        None => vec![ast::OrderByExpr {
            expr: ast::Expr::Identifier(ast::Ident::with_quote(
                '"',
                default_order(select, snapshot).ok_or_else(refuse)?,
            )),
            options: ast::OrderByOptions {
                asc: None,
                nulls_first: None,
            },
            with_fill: None,
        }],
    };
    let key_name = |i: usize| format!("__tidemark_last_key_{i}");
    let mut inner = query.clone();
    inner.order_by = None;
    inner.limit_clause = None;
    let ast::SetExpr::Select(inner_select) = inner.body.as_mut() else {
        return Err(refuse());
    };
    let mut reversed = Vec::with_capacity(keys.len());
    let mut outer_order = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        inner_select
            .projection
            .push(ast::SelectItem::ExprWithAlias {
                expr: key.expr.clone(),
                alias: ast::Ident::new(key_name(i)),
            });
        let asc = key.options.asc.unwrap_or(true);
        // PostgreSQL's default: NULLs last ascending, first descending.
        let nulls_first = key.options.nulls_first.unwrap_or(!asc);
        let direction = |asc: bool, nulls_first: bool| {
            format!(
                "{} NULLS {}",
                if asc { "ASC" } else { "DESC" },
                if nulls_first { "FIRST" } else { "LAST" }
            )
        };
        reversed.push(format!("{} {}", part(i), direction(!asc, !nulls_first)));
        outer_order.push(format!("{} {}", key_name(i), direction(asc, nulls_first)));
    }
    // The reversed order over the user's key expressions, then the first n.
    let key_exprs: Vec<&ast::Expr> = keys.iter().map(|k| &k.expr).collect();
    let skeleton = parse_query(&format!(
        "SELECT 1 ORDER BY {} LIMIT {n}",
        reversed.join(", ")
    ))?;
    let skeleton = with_parts(*skeleton, &key_exprs);
    inner.order_by = skeleton.order_by;
    inner.limit_clause = skeleton.limit_clause;
    let mut outer = *parse_query(&format!(
        "SELECT * FROM (SELECT 1) AS __tidemark_last ORDER BY {}",
        outer_order.join(", ")
    ))?;
    let ast::SetExpr::Select(outer_select) = outer.body.as_mut() else {
        return Err(refuse());
    };
    outer_select.projection = vec![ast::SelectItem::Wildcard(ast::WildcardAdditionalOptions {
        opt_exclude: Some(ast::ExcludeSelectItem::Multiple(
            (0..keys.len())
                .map(|i| ast::ObjectName::from(vec![ast::Ident::new(key_name(i))]))
                .collect(),
        )),
        ..Default::default()
    })];
    match outer_select.from.first_mut().map(|t| &mut t.relation) {
        Some(ast::TableFactor::Derived { subquery, .. }) => **subquery = inner,
        _ => return Err(refuse()),
    }
    *query = outer;
    Ok(())
}

/// The expression an ORDER BY key stands for in the SELECT list: an output
/// alias or a position is replaced by what it names (the key is projected
/// again, as a hidden column, beside it). None for a position past the list
/// or on a `*`.
fn output_expr(projection: &[ast::SelectItem], key: &ast::Expr) -> Option<ast::Expr> {
    if let Some(position) = integer(key) {
        return match usize::try_from(position)
            .ok()?
            .checked_sub(1)
            .map(|i| projection.get(i))?
        {
            Some(
                ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. },
            ) => Some(e.clone()),
            _ => None,
        };
    }
    if let ast::Expr::Identifier(ident) = key {
        let aliased = projection.iter().find_map(|item| match item {
            ast::SelectItem::ExprWithAlias { expr, alias }
                if tidemark_parser::normalize_ident(alias)
                    == tidemark_parser::normalize_ident(ident) =>
            {
                Some(expr.clone())
            }
            _ => None,
        });
        if aliased.is_some() {
            return aliased;
        }
    }
    Some(key.clone())
}

/// The designated timestamp of a plain SELECT over one table (no GROUP BY,
/// aggregates or joins): the order `LIMIT -n` counts in without an ORDER BY.
fn default_order(select: &ast::Select, snapshot: &Snapshot) -> Option<String> {
    let grouped = match &select.group_by {
        ast::GroupByExpr::Expressions(e, _) => !e.is_empty(),
        ast::GroupByExpr::All(_) => true,
    };
    let aggregated = select.projection.iter().any(|item| match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
            crate::sample::is_aggregate(e)
        }
        _ => false,
    });
    if grouped || aggregated || select.having.is_some() {
        return None;
    }
    let [
        ast::TableWithJoins {
            relation: ast::TableFactor::Table {
                name, args: None, ..
            },
            joins,
        },
    ] = select.from.as_slice()
    else {
        return None;
    };
    if !joins.is_empty() {
        return None;
    }
    let table = snapshot.table(&crate::ddl::object_name(name).ok()?)?;
    table.meta().timestamp_name().map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn questdb_patterns_become_chrono_formats() {
        assert_eq!(
            super::chrono_pattern("yyyy-MM-dd'T'HH:mm:ss.SSSUUUZ"),
            "%Y-%m-%dT%H:%M:%S%.6f%z"
        );
        assert_eq!(
            super::chrono_pattern("dd/MM/yy hh:mm a"),
            "%d/%m/%y %I:%M %p"
        );
        assert_eq!(super::chrono_pattern("yyyy 'at' HH"), "%Y at %H");
        // PostgreSQL's spelling works too.
        assert_eq!(
            super::chrono_pattern("YYYY-MM-DD HH24:MI:SS"),
            "%Y-%m-%d %H:%M:%S"
        );
    }
}
