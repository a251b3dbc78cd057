//! `SAMPLE BY`: the query becomes a GROUP BY on a time bucket of the designated
//! timestamp. The designated timestamp in the select list is replaced by its
//! bucket, every other non-aggregate item becomes a grouping key, and QuestDB's
//! `first(x)`/`last(x)` become `first_value`/`last_value` ordered by time:
//!
//! ```sql
//! SELECT ts, sym, avg(price) FROM t WHERE ... SAMPLE BY 15m
//! -- runs as
//! SELECT date_bin(INTERVAL '15 minutes', ts, <origin>) AS ts, sym, avg(price) FROM t WHERE ...
//! GROUP BY date_bin(...), sym ORDER BY date_bin(...)
//! ```
//!
//! Buckets align to the calendar (multiples of the interval from 1970-01-01, weeks
//! from Monday 1970-01-05, months and years from their first day), shifted by
//! `WITH OFFSET`; `ALIGN TO FIRST OBSERVATION` starts them at the first row kept.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::sql::sqlparser::ast;
use tidemark_parser::{Align, SampleBy, SampleUnit};
use tidemark_storage::ColumnType;

use crate::ddl::object_name;
use crate::error::{ExecError, Result, sqlstate};
use crate::fill::{Fill, Step, fill};
use crate::rewrite::{parse_expr, parse_query, part, quote_ident, string_literal, with_parts};
use crate::session::{Output, Session};

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "ksum",
    "nsum",
    "avg",
    "mean",
    "min",
    "max",
    "first_value",
    "last_value",
    "first",
    "last",
    "first_not_null",
    "last_not_null",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var",
    "var_pop",
    "var_samp",
    "var_population",
    "var_sample",
    "variance",
    "median",
    "approx_distinct",
    "approx_median",
    "approx_percentile_cont",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "bit_and",
    "bit_or",
    "bit_xor",
    "corr",
    "covar",
    "covar_pop",
    "covar_samp",
    "nth_value",
    "regr_slope",
    "regr_intercept",
    "regr_count",
    "regr_r2",
    "grouping",
];

fn unsupported(what: &str) -> ExecError {
    ExecError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("SAMPLE BY {what} is not supported yet"),
    )
}

pub(crate) fn is_aggregate(e: &ast::Expr) -> bool {
    ast::visit_expressions(e, |x| match x {
        ast::Expr::Function(f)
            if f.over.is_none() && {
                let name = f.name.to_string().to_lowercase();
                AGGREGATES.contains(&name.as_str())
                    || crate::questdb_functions::QUESTDB_AGGREGATES.contains(&name.as_str())
                    // Of one array; of several it is the row form.
                    || (crate::array_elem::is_element_wise(&name) && one_argument(f))
            } =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn one_argument(f: &ast::Function) -> bool {
    matches!(&f.args, ast::FunctionArguments::List(l) if l.args.len() == 1)
}

fn is_column(e: &ast::Expr, name: &str) -> bool {
    let matches = |i: &ast::Ident| {
        if i.quote_style.is_some() {
            i.value == name
        } else {
            i.value.eq_ignore_ascii_case(name)
        }
    };
    match e {
        ast::Expr::Identifier(i) => matches(i),
        ast::Expr::CompoundIdentifier(parts) => parts.last().is_some_and(matches),
        _ => false,
    }
}

/// `first(x)` / `last(x)` -> `first_value(x ORDER BY ts)` / `last_value(x ORDER BY ts)`,
/// and `first_not_null(x)` / `last_not_null(x)` the same `IGNORE NULLS` (`x` put in
/// as parsed; `ts` a quoted identifier, or empty for the rows' own order);
/// QuestDB's `isOrdered(x)` -> `is_ordered(x, ts ORDER BY ts)`
/// (`crate::path_aggregates`), which needs a `ts`.
pub(crate) fn rewrite_first_last(e: &mut ast::Expr, ts: &str) -> Result<()> {
    let mut failure = None;
    let _ = ast::visit_expressions_mut(e, |x| {
        if let ast::Expr::Function(f) = x
            && f.over.is_none()
        {
            let name = f.name.to_string().to_lowercase();
            let (base, ignore_nulls) = match name.strip_suffix("_not_null") {
                Some(base) => (base, " IGNORE NULLS"),
                None => (name.as_str(), ""),
            };
            let order = if ts.is_empty() {
                String::new()
            } else {
                format!(" ORDER BY {ts}")
            };
            let skeleton = match base {
                "first" | "last" => format!("{base}_value({}{order}){ignore_nulls}", part(0)),
                "isordered" if ts.is_empty() => {
                    failure = Some(ExecError::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        "isOrdered() reads the rows of one table in the order of its designated \
                         timestamp; this FROM is not one table with one",
                    ));
                    return ControlFlow::Break(());
                }
                "isordered" => format!("is_ordered({}, {ts}{order})", part(0)),
                _ => return ControlFlow::Continue(()),
            };
            let args: Vec<&ast::Expr> = match &f.args {
                ast::FunctionArguments::List(l) => l
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let [arg] = args.as_slice() else {
                failure = Some(ExecError::new(
                    sqlstate::UNDEFINED_FUNCTION,
                    format!(
                        "function {name}() takes one column or expression, got {}",
                        f.args
                    ),
                ));
                return ControlFlow::Break(());
            };
            match parse_expr(&skeleton) {
                Ok(new) => *x = with_parts(new, &[arg]),
                Err(e) => failure = Some(e),
            }
        }
        ControlFlow::Continue(())
    });
    failure.map_or(Ok(()), Err)
}

/// Whether the rewrite is for running the query or only for describing its columns.
/// A description reads no rows: the values only data can give (the first
/// observation, the FILL range) take placeholders that do not change the columns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Run,
    Describe,
}

/// A SAMPLE BY query as a grouped query, and the gaps to fill in its result.
struct Grouped {
    query: Box<ast::Query>,
    fill: Option<FillGaps>,
}

/// FILL: the grouped query runs without its ORDER BY and LIMIT; the gaps are
/// filled, and then the rows are ordered and limited.
struct FillGaps {
    ts_col: usize,
    /// The bucket column is not in the user's select list: it was added at
    /// the end of the grouped query to fill by, and is left out of the result.
    bucket_hidden: bool,
    key_cols: Vec<usize>,
    per_aggregate: Vec<(usize, Fill)>,
    step: Step,
    range: (Option<i64>, Option<i64>),
    user_order: Option<ast::OrderBy>,
    user_limit: Option<ast::LimitClause>,
}

pub(crate) async fn run(
    session: &Session,
    query: Box<ast::Query>,
    sample: SampleBy,
) -> Result<Output> {
    let Grouped { query, fill: gaps } = group(session, query, sample, Purpose::Run).await?;
    let Some(gaps) = gaps else {
        let (schema, rows) = session.stream_query(ast::Statement::Query(query)).await?;
        return Ok(Output::Rows { schema, rows });
    };
    let (schema, batches) = session.run_query(ast::Statement::Query(query)).await?;
    let filled = fill(
        &schema,
        &batches,
        gaps.ts_col,
        &gaps.key_cols,
        &gaps.per_aggregate,
        gaps.step,
        gaps.range,
    )?;
    // Without an ORDER BY the rows come in bucket order: `fill` gives them so,
    // which is all there is to go by once a hidden bucket column is left out.
    let (filled, default_order) = if gaps.bucket_hidden {
        let shown = all_but_last(filled.num_columns());
        (filled.project(&shown)?, None)
    } else {
        let order = parse_query(&format!(
            "SELECT 1 ORDER BY {}",
            quote_ident(schema.field(gaps.ts_col).name())
        ))?
        .order_by;
        (filled, order)
    };
    let mut outer = parse_query("SELECT * FROM \"__tidemark_fill\"")?;
    outer.order_by = gaps.user_order.or(default_order);
    outer.limit_clause = gaps.user_limit;
    let (schema, batches) = session
        .run_query_over(
            ast::Statement::Query(outer),
            Some(("__tidemark_fill", filled)),
        )
        .await?;
    Ok(Output::rows(schema, batches))
}

/// The name of the bucket column added to fill by when the select list has none.
const HIDDEN_BUCKET: &str = "__tidemark_bucket";

/// The positions of `columns` columns but the last, the hidden bucket column.
fn all_but_last(columns: usize) -> Vec<usize> {
    (0..columns.saturating_sub(1)).collect()
}

/// A SAMPLE BY query as the plain query a view's plan (or a prepared
/// statement's kept plan) is made of. FILL needs a step after the query
/// runs, which such a plan cannot hold.
pub(crate) async fn grouped_query(
    session: &Session,
    query: Box<ast::Query>,
    sample: SampleBy,
) -> Result<ast::Statement> {
    let Grouped { query, fill } = group(session, query, sample, Purpose::Run).await?;
    if fill.is_some() {
        return Err(ExecError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "SAMPLE BY ... FILL in a view is not supported: define the view without FILL, \
             or run the query with FILL directly",
        ));
    }
    Ok(ast::Statement::Query(query))
}

/// The columns a SAMPLE BY query returns, planned without reading a row (filling
/// gaps keeps the grouped query's columns, less a hidden bucket column).
pub(crate) async fn describe(
    session: &Session,
    query: Box<ast::Query>,
    sample: SampleBy,
) -> Result<SchemaRef> {
    let grouped = group(session, query, sample, Purpose::Describe).await?;
    let schema = session
        .schema_over(ast::Statement::Query(grouped.query), None)
        .await?;
    match grouped.fill {
        Some(gaps) if gaps.bucket_hidden => Ok(Arc::new(
            schema.project(&all_but_last(schema.fields().len()))?,
        )),
        _ => Ok(schema),
    }
}

/// What SAMPLE BY samples: the FROM clause as SQL, the timestamp column that
/// makes the buckets, and whether it is a TIMESTAMPTZ.
struct Sampled {
    from_sql: String,
    ts_name: String,
    zoned: bool,
    /// A TIMESTAMP_NS column: bucketed as microseconds (every bucket starts
    /// on a whole microsecond, and the buckets are TIMESTAMPs).
    nanos: bool,
}

/// The relation SAMPLE BY reads: a table, by its designated timestamp, or a
/// subquery, by the column QuestDB's dynamic timestamp names (`(query)
/// timestamp(ts)`, also after a table) or else by its one timestamp column.
async fn sampled(session: &Session, relation: &mut ast::TableFactor) -> Result<Sampled> {
    match relation {
        ast::TableFactor::Table { name, alias, .. } => {
            let designated = crate::dynamic_timestamp::take(alias);
            let table = object_name(name)?;
            let from_sql = match alias {
                Some(a) => format!("{} AS {}", quote_ident(&table), quote_ident(&a.name.value)),
                None => quote_ident(&table),
            };
            let reader = session.table(&table)?;
            let meta = reader.meta();
            let column = match &designated {
                Some(d) => Some(meta.column_index(&d.value).ok_or_else(|| {
                    ExecError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!(
                            "column \"{}\" of relation \"{}\" does not exist",
                            d.value,
                            reader.name()
                        ),
                    )
                })?),
                None => meta.timestamp_index(),
            };
            let column = column.map(|i| &meta.columns[i]).ok_or_else(|| {
                ExecError::new(
                    sqlstate::INVALID_TABLE_DEFINITION,
                    format!(
                        "SAMPLE BY needs a designated timestamp, and table \"{}\" has none \
                         (name one: FROM {} timestamp(<column>))",
                        reader.name(),
                        reader.name()
                    ),
                )
            })?;
            let nanos = column.column_type == ColumnType::TimestampNs;
            if !column.column_type.is_timestamp() && !nanos {
                return Err(not_a_timestamp(&column.name));
            }
            Ok(Sampled {
                from_sql,
                ts_name: column.name.clone(),
                zoned: column.column_type == ColumnType::TimestampTz,
                nanos,
            })
        }
        ast::TableFactor::Derived {
            subquery, alias, ..
        } => {
            let designated = crate::dynamic_timestamp::take(alias);
            let schema = session
                .schema_over(ast::Statement::Query(subquery.clone()), None)
                .await?;
            let is_ts = |t: &DataType| matches!(t, DataType::Timestamp(..));
            let field = match &designated {
                Some(d) => {
                    let f = schema
                        .fields()
                        .iter()
                        .find(|f| match d.quote_style {
                            Some(_) => f.name() == &d.value,
                            None => f.name().eq_ignore_ascii_case(&d.value),
                        })
                        .ok_or_else(|| {
                            ExecError::new(
                                sqlstate::UNDEFINED_COLUMN,
                                format!("column \"{}\" does not exist in the subquery", d.value),
                            )
                        })?;
                    if !is_ts(f.data_type()) {
                        return Err(not_a_timestamp(f.name()));
                    }
                    f
                }
                None => {
                    let mut ts = schema.fields().iter().filter(|f| is_ts(f.data_type()));
                    match (ts.next(), ts.next()) {
                        (Some(f), None) => f,
                        _ => {
                            return Err(ExecError::new(
                                sqlstate::INVALID_TABLE_DEFINITION,
                                "SAMPLE BY over a subquery needs its timestamp column: the \
                                 subquery has none or several; name it with \
                                 (subquery) timestamp(<column>)",
                            ));
                        }
                    }
                }
            };
            let alias = alias
                .as_ref()
                .map_or("__tidemark_sampled".to_string(), |a| a.name.value.clone());
            Ok(Sampled {
                from_sql: format!("({subquery}) AS {}", quote_ident(&alias)),
                ts_name: field.name().clone(),
                zoned: matches!(field.data_type(), DataType::Timestamp(_, Some(_))),
                nanos: matches!(
                    field.data_type(),
                    DataType::Timestamp(TimeUnit::Nanosecond, None)
                ),
            })
        }
        _ => Err(unsupported("over a table function")),
    }
}

fn not_a_timestamp(column: &str) -> ExecError {
    ExecError::new(
        sqlstate::DATATYPE_MISMATCH,
        format!("SAMPLE BY needs a TIMESTAMP column, and \"{column}\" is not one"),
    )
}

/// Rewrites a SAMPLE BY query as a GROUP BY on the time bucket (see the module doc).
async fn group(
    session: &Session,
    mut query: Box<ast::Query>,
    sample: SampleBy,
    purpose: Purpose,
) -> Result<Grouped> {
    let fills: Vec<Fill> = if sample.fill.iter().all(|f| f == "NONE") {
        Vec::new()
    } else {
        sample
            .fill
            .iter()
            .map(|f| Fill::parse(f))
            .collect::<Result<_>>()?
    };
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return Err(unsupported("on a set operation"));
    };
    let [ast::TableWithJoins { relation, joins }] = select.from.as_mut_slice() else {
        return Err(unsupported("over several tables"));
    };
    if !joins.is_empty() {
        return Err(unsupported("with joins"));
    }
    // A view is sampled as the subquery it stands for.
    crate::views::as_subquery(session, relation)?;
    let Sampled {
        from_sql,
        ts_name,
        zoned,
        nanos,
    } = sampled(session, relation).await?;
    if !matches!(&select.group_by, ast::GroupByExpr::Expressions(v, _) if v.is_empty()) {
        return Err(ExecError::new(
            sqlstate::SYNTAX_ERROR,
            "SAMPLE BY groups by time and by the other selected columns: remove GROUP BY",
        ));
    }
    let ts = quote_ident(&ts_name);
    let (offset, time_zone) = match &sample.align {
        Align::Calendar {
            time_zone,
            offset_minutes,
        } => (*offset_minutes, time_zone.clone()),
        Align::FirstObservation => (0, None),
    };
    let time_zone = time_zone.filter(|tz| !tz.eq_ignore_ascii_case("UTC"));
    if let Some(tz) = &time_zone
        && (tz.contains('\'') || tz.contains('"'))
    {
        return Err(ExecError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("time zone \"{tz}\" is not valid"),
        ));
    }
    // FROM/TO bound the rows; with FILL they also bound the buckets produced.
    if let (Some(from), Some(to)) = (&sample.from, &sample.to) {
        let range = with_parts(
            parse_expr(&format!(
                "{ts} >= CAST({} AS TIMESTAMP) AND {ts} < CAST({} AS TIMESTAMP)",
                part(0),
                part(1)
            ))?,
            &[&string_literal(from), &string_literal(to)],
        );
        select.selection = Some(match select.selection.take() {
            Some(c) => with_parts(
                parse_expr(&format!("({}) AND ({})", part(0), part(1)))?,
                &[&c, &range],
            ),
            None => range,
        });
    }
    let origin = match sample.align {
        Align::FirstObservation if purpose == Purpose::Describe => 0,
        Align::FirstObservation => {
            let parts: Vec<&ast::Expr> = select.selection.iter().collect();
            let condition = match parts.first() {
                Some(_) => format!(" WHERE {}", part(0)),
                None => String::new(),
            };
            let query = parse_query(&format!("SELECT min({ts}) FROM {from_sql}{condition}"))?;
            first_timestamp(session, with_parts(query, &parts))
                .await?
                .unwrap_or(0)
        }
        Align::Calendar { .. } => {
            let monday = if sample.unit == SampleUnit::Week {
                4 * 86_400_000_000
            } else {
                0
            };
            monday + offset * 60_000_000
        }
    };
    let n = sample.every;
    let step = match sample.unit {
        SampleUnit::Micro => Step::Micros(n),
        SampleUnit::Milli => Step::Micros(n * 1_000),
        SampleUnit::Second => Step::Micros(n * 1_000_000),
        SampleUnit::Minute => Step::Micros(n * 60_000_000),
        SampleUnit::Hour => Step::Micros(n * 3_600_000_000),
        SampleUnit::Day => Step::Micros(n * 86_400_000_000),
        SampleUnit::Week => Step::Micros(n * 7 * 86_400_000_000),
        SampleUnit::Month => Step::Months(n),
        SampleUnit::Year => Step::Months(12 * n),
    };
    let template = bucket_template(&sample, offset, origin)?;
    // With a time zone, buckets follow the local wall clock (a local day is 23 or
    // 25 hours across a DST change) and their starts are reported in UTC.
    // Buckets are of the designated column's type: a TIMESTAMPTZ column gives
    // instants (the template itself computes plain timestamps of UTC).
    let bucket_type = if zoned {
        format!("Timestamp(µs, \"{}\")", crate::types::UTC_OFFSET)
    } else {
        "Timestamp(µs)".to_string()
    };
    let bucket_of = |x: &str| match &time_zone {
        None if zoned => format!(
            "arrow_cast({}, '{bucket_type}')",
            template.replace("{ts}", x)
        ),
        None => template.replace("{ts}", x),
        Some(tz) => {
            let local = format!(
                "to_local_time(arrow_cast(arrow_cast({x}, 'Timestamp(µs, \"UTC\")'), 'Timestamp(µs, \"{tz}\")'))"
            );
            let bucket = template.replace("{ts}", &local);
            format!("arrow_cast(arrow_cast({bucket}, 'Timestamp(µs, \"{tz}\")'), '{bucket_type}')")
        }
    };
    let bucket_sql = if nanos {
        bucket_of(&format!("arrow_cast({ts}, 'Timestamp(µs)')"))
    } else {
        bucket_of(&ts)
    };
    let bucket = parse_expr(&bucket_sql)?;
    let mut group_by = vec![bucket.clone()];
    let (mut ts_col, mut key_cols, mut agg_cols) = (None, Vec::new(), Vec::new());
    for (i, item) in select.projection.iter_mut().enumerate() {
        let (expr, alias) = match item {
            ast::SelectItem::UnnamedExpr(e) => (e, None),
            ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
            _ => {
                return Err(unsupported(
                    "with * in the select list: name the columns and aggregates",
                ));
            }
        };
        if is_column(expr, &ts_name) {
            *item = ast::SelectItem::ExprWithAlias {
                expr: bucket.clone(),
                alias: alias.unwrap_or_else(|| ast::Ident::with_quote('"', ts_name.clone())),
            };
            ts_col = Some(i);
            continue;
        }
        rewrite_first_last(expr, &ts)?;
        if is_aggregate(expr) {
            agg_cols.push(i);
        } else {
            group_by.push(expr.clone());
            key_cols.push(i);
        }
    }
    select.group_by = ast::GroupByExpr::Expressions(group_by, Vec::new());
    if fills.is_empty() {
        if query.order_by.is_none() {
            query.order_by = parse_query(&format!("SELECT 1 ORDER BY {bucket_sql}"))?.order_by;
        }
        return Ok(Grouped { query, fill: None });
    }
    if let Some(tz) = &time_zone {
        return Err(unsupported(&format!("FILL with TIME ZONE '{tz}'")));
    }
    // QuestDB fills by the buckets whether or not the select list shows them.
    let bucket_hidden = ts_col.is_none();
    let ts_col = match ts_col {
        Some(i) => i,
        None => {
            select.projection.push(ast::SelectItem::ExprWithAlias {
                expr: bucket.clone(),
                alias: ast::Ident::with_quote('"', HIDDEN_BUCKET),
            });
            select.projection.len() - 1
        }
    };
    let per_aggregate: Vec<(usize, Fill)> = match fills.len() {
        1 => agg_cols.iter().map(|&c| (c, fills[0].clone())).collect(),
        k if k == agg_cols.len() => agg_cols.iter().copied().zip(fills).collect(),
        k => {
            return Err(ExecError::new(
                sqlstate::SYNTAX_ERROR,
                format!(
                    "FILL has {k} values for {} aggregates: give one, or one per aggregate",
                    agg_cols.len()
                ),
            ));
        }
    };
    let range = match (&sample.from, &sample.to, purpose) {
        (Some(from), Some(to), Purpose::Run) => {
            let at = |sql: &str, value: &str| -> Result<Box<ast::Query>> {
                Ok(with_parts(parse_query(sql)?, &[&string_literal(value)]))
            };
            let cast = format!("CAST({} AS TIMESTAMP)", part(0));
            (
                first_timestamp(session, at(&format!("SELECT {}", bucket_of(&cast)), from)?)
                    .await?,
                first_timestamp(session, at(&format!("SELECT {cast}"), to)?).await?,
            )
        }
        _ => (None, None),
    };
    let user_order = query.order_by.take();
    let user_limit = query.limit_clause.take();
    Ok(Grouped {
        query,
        fill: Some(FillGaps {
            ts_col,
            bucket_hidden,
            key_cols,
            per_aggregate,
            step,
            range,
            user_order,
            user_limit,
        }),
    })
}

/// The bucket expression, with `{ts}` standing for the timestamp.
fn bucket_template(sample: &SampleBy, offset: i64, origin: i64) -> Result<String> {
    let n = sample.every;
    let ts = "{ts}";
    Ok(match sample.unit {
        SampleUnit::Month | SampleUnit::Year if matches!(sample.align, Align::FirstObservation) => {
            return Err(unsupported(
                "by months or years aligned to the first observation",
            ));
        }
        SampleUnit::Month | SampleUnit::Year => {
            // Buckets of n months counted from January of year 0: 3M gives quarters,
            // 1y calendar years.
            let months = if sample.unit == SampleUnit::Month {
                n
            } else {
                12 * n
            };
            let shifted = if offset == 0 {
                ts.to_string()
            } else {
                format!("({ts} - INTERVAL '{offset} minutes')")
            };
            let index = format!(
                "(CAST(date_part('year', {shifted}) AS BIGINT) * 12 + CAST(date_part('month', {shifted}) AS BIGINT) - 1)"
            );
            let start = format!("({index} - {index} % {months})");
            let bucket = format!(
                "CAST(make_date(CAST({start} / 12 AS INT), CAST({start} % 12 + 1 AS INT), 1) AS TIMESTAMP)"
            );
            if offset == 0 {
                bucket
            } else {
                format!("({bucket} + INTERVAL '{offset} minutes')")
            }
        }
        unit => {
            let (count, name) = match unit {
                SampleUnit::Micro => (n, "microseconds"),
                SampleUnit::Milli => (n, "milliseconds"),
                SampleUnit::Second => (n, "seconds"),
                SampleUnit::Minute => (n, "minutes"),
                SampleUnit::Hour => (n, "hours"),
                SampleUnit::Day => (n, "days"),
                _ => (n * 7, "days"),
            };
            // The origin is a plain timestamp (`to_timestamp_micros` would give an
            // instant of the session time zone and make every bucket one).
            format!(
                "date_bin(INTERVAL '{count} {name}', {ts}, arrow_cast({origin}, 'Timestamp(µs)'))"
            )
        }
    })
}

/// The first value of a one-row, one-column timestamp query, in microseconds.
async fn first_timestamp(session: &Session, query: Box<ast::Query>) -> Result<Option<i64>> {
    let (_, batches) = session.run_query(ast::Statement::Query(query)).await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let a = cast(
        b.column(0),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let a = a
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| ExecError::new(sqlstate::INTERNAL_ERROR, "min(ts) is not a timestamp"))?;
    Ok((!a.is_null(0)).then(|| a.value(0)))
}
