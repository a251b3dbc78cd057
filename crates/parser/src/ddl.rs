//! Parsing Tidemark's DDL with sqlparser's parser primitives.

use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use crate::statement::{
    AlterTable, ColumnSpec, CreateTable, PartitionUnit, ReindexTarget, SqlType, Statement, TtlSpec,
    TtlUnit,
};

/// A parse failure of ours: a message, where, and the SQLSTATE it deserves.
#[derive(Debug)]
pub(crate) enum DdlError {
    Sql(ParserError),
    At {
        message: String,
        at: Location,
        sqlstate: &'static str,
    },
}

impl From<ParserError> for DdlError {
    fn from(e: ParserError) -> Self {
        DdlError::Sql(e)
    }
}

impl DdlError {
    /// The error as the parser reports it, positioned in `sql`.
    pub(crate) fn into_parse_error(self, sql: &str) -> crate::ParseError {
        match self {
            DdlError::Sql(e) => crate::ParseError::from_parser(e, sql),
            DdlError::At {
                message,
                at,
                sqlstate,
            } => crate::ParseError::at(message, sql, at).with_sqlstate(sqlstate),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, DdlError>;

/// What a time-series table cannot honour (0A000), saying what to use instead.
fn not_supported(message: impl Into<String>, at: &TokenWithSpan) -> DdlError {
    DdlError::At {
        message: message.into(),
        at: at.span.start,
        sqlstate: "0A000",
    }
}

/// Constraints PostgreSQL tables take and Tidemark's do not: 0A000 naming the
/// alternative, where a syntax error would leave the user guessing.
fn refuse_constraint(p: &Parser<'_>) -> Result<()> {
    let t = p.peek_token();
    let Token::Word(w) = &t.token else {
        return Ok(());
    };
    let message = match w.value.to_ascii_uppercase().as_str() {
        "UNIQUE" => {
            "UNIQUE constraints are not supported: a Tidemark table keeps every row it is \
             given, in designated-timestamp order (TIMESTAMP(col)); leave the constraint out, \
             or make rows with equal keys replace each other with a PRIMARY KEY (or DEDUP \
             UPSERT KEYS) that includes the designated timestamp"
        }
        "PRIMARY" => {
            "a PRIMARY KEY is declared in CREATE TABLE, on the columns or as a table \
             constraint, and must include the designated timestamp (it becomes DEDUP UPSERT KEYS)"
        }
        "REFERENCES" | "FOREIGN" => {
            "foreign keys are not supported: Tidemark does not check references between tables; \
             leave the constraint out"
        }
        "CHECK" | "CONSTRAINT" | "EXCLUDE" => {
            "table constraints are not supported: leave the constraint out"
        }
        "GENERATED" => {
            "identity and generated columns are not supported: Tidemark has no sequences; \
             use BIGINT and supply the values"
        }
        "DEFAULT" => "column defaults are not supported: supply the value in each INSERT",
        _ => return Ok(()),
    };
    Err(not_supported(message, &t))
}

pub(crate) fn syntax(message: impl Into<String>, at: TokenWithSpan) -> DdlError {
    DdlError::At {
        message: message.into(),
        at: at.span.start,
        sqlstate: "42601",
    }
}

/// Whether the next tokens are these words (case-insensitive).
pub(crate) fn peek_keywords(p: &Parser<'_>, words: &[&str]) -> bool {
    peek_nth_keywords(p, 0, words)
}

/// Whether the tokens from the `n`th ahead on are these words.
fn peek_nth_keywords(p: &Parser<'_>, n: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(i, w)| match p.peek_nth_token(n + i).token {
            Token::Word(ref x) => x.value.eq_ignore_ascii_case(w),
            _ => false,
        })
}

pub(crate) fn consume_word(p: &mut Parser<'_>, word: &str) -> bool {
    if peek_keywords(p, &[word]) {
        p.next_token();
        true
    } else {
        false
    }
}

fn expect_word(p: &mut Parser<'_>, word: &str) -> Result<()> {
    if consume_word(p, word) {
        Ok(())
    } else {
        let t = p.peek_token();
        Err(syntax(
            format!("syntax error at or near \"{}\": expected {word}", t.token),
            t,
        ))
    }
}

/// A table name: an identifier, a quoted identifier, a string literal (QuestDB
/// allows `'my table'`), optionally qualified by the `public` schema.
pub(crate) fn table_name(p: &mut Parser<'_>) -> Result<String> {
    let t = p.peek_token();
    if let Token::SingleQuotedString(s) = &t.token {
        p.next_token();
        return Ok(s.clone());
    }
    let name = p.parse_object_name(false)?;
    let parts: Vec<String> = name.0.iter().map(|part| part.to_string()).collect();
    let idents: Vec<String> = name
        .0
        .iter()
        .filter_map(|part| part.as_ident().map(normalize))
        .collect();
    match idents.as_slice() {
        [n] => Ok(n.clone()),
        [schema, n] if schema.eq_ignore_ascii_case("public") => Ok(n.clone()),
        _ => Err(DdlError::At {
            message: format!(
                "schema of \"{}\" does not exist (tables live in schema public)",
                parts.join(".")
            ),
            at: t.span.start,
            sqlstate: "3F000",
        }),
    }
}

fn identifier(p: &mut Parser<'_>) -> Result<String> {
    let t = p.peek_token();
    if let Token::SingleQuotedString(s) = &t.token {
        p.next_token();
        return Ok(s.clone());
    }
    Ok(normalize(&p.parse_identifier()?))
}

/// PostgreSQL's rule, which DataFusion applies to queries too: unquoted
/// identifiers fold to lowercase, quoted ones keep their spelling.
pub fn normalize(i: &datafusion_sql::sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

pub(crate) fn parse_create_table(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "CREATE")?;
    expect_word(p, "TABLE")?;
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = table_name(p)?;
    let mut columns = Vec::new();
    let mut primary_key = Vec::new();
    let mut like = None;
    let mut as_query = None;
    if p.parse_keyword(Keyword::AS) {
        if p.consume_token(&Token::LParen) {
            as_query = Some(p.parse_query()?);
            p.expect_token(&Token::RParen)?;
        } else {
            as_query = Some(p.parse_query()?);
        }
    } else if p.peek_token().token == Token::LParen
        && matches!(&p.peek_nth_token(1).token,
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("LIKE"))
    {
        // QuestDB's `CREATE TABLE t (LIKE other)` (a column named like is quoted).
        p.next_token();
        p.next_token();
        like = Some(table_name(p)?);
        p.expect_token(&Token::RParen)?;
    } else {
        p.expect_token(&Token::LParen)?;
        loop {
            match table_primary_key(p)? {
                Some(keys) => {
                    if !primary_key.is_empty() {
                        return Err(multiple_primary_keys(p));
                    }
                    primary_key = keys;
                }
                None => columns.push(column_spec(p)?),
            }
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen)?;
    }
    let mut timestamp = None;
    let mut partition_by = None;
    let mut ttl = None;
    let mut dedup_keys = Vec::new();
    loop {
        if timestamp.is_none() && consume_word(p, "TIMESTAMP") {
            p.expect_token(&Token::LParen)?;
            timestamp = Some(identifier(p)?);
            p.expect_token(&Token::RParen)?;
        } else if partition_by.is_none() && peek_keywords(p, &["PARTITION", "BY"]) {
            p.next_token();
            p.next_token();
            partition_by = Some(partition_unit(p)?);
        } else if ttl.is_none() && consume_word(p, "TTL") {
            ttl = Some(ttl_spec(p)?);
        } else if dedup_keys.is_empty() && consume_word(p, "DEDUP") {
            dedup_keys = upsert_keys(p)?;
        } else if consume_word(p, "BYPASS") {
            expect_word(p, "WAL")?;
        } else if consume_word(p, "WAL") {
            // QuestDB's table kinds: every Tidemark table has a WAL; accepted and ignored.
        } else if p.parse_keyword(Keyword::WITH) {
            // QuestDB's `WITH maxUncommittedRows = n, o3MaxLag = 240s`.
            table_param(p)?;
            while p.consume_token(&Token::Comma) {
                table_param(p)?;
            }
        } else {
            break;
        }
    }
    Ok(Statement::CreateTable(Box::new(CreateTable {
        name,
        if_not_exists,
        columns,
        as_query,
        timestamp,
        partition_by,
        ttl,
        dedup_keys,
        primary_key,
        like,
    })))
}

/// One of QuestDB's table parameters, `name = value`: `maxUncommittedRows`
/// (rows QuestDB buffers before committing) and `o3MaxLag` (how long it holds
/// out-of-order rows). Tidemark commits every statement and merges late rows
/// when they arrive, so both are accepted and have no effect; other names are
/// an error naming them.
fn table_param(p: &mut Parser<'_>) -> Result<()> {
    let at = p.peek_token();
    let name = identifier(p)?;
    if !["maxuncommittedrows", "o3maxlag"].contains(&name.to_ascii_lowercase().as_str()) {
        return Err(syntax(
            format!(
                "unknown table parameter \"{}\": expected maxUncommittedRows or o3MaxLag",
                at.token
            ),
            at,
        ));
    }
    p.expect_token(&Token::Eq)?;
    let value = p.next_token();
    if !matches!(value.token, Token::Number(..)) {
        return Err(syntax(
            format!(
                "syntax error at or near \"{}\": expected a number",
                value.token
            ),
            value,
        ));
    }
    // A duration's unit (`240s`, `500ms`) follows the number.
    if let Token::Word(w) = &p.peek_token().token
        && ["us", "ms", "s", "m", "h", "d"].contains(&w.value.to_ascii_lowercase().as_str())
    {
        p.next_token();
    }
    Ok(())
}

/// `VACUUM [TABLE] [name]`.
pub(crate) fn parse_vacuum(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "VACUUM")?;
    consume_word(p, "TABLE");
    let table = match p.peek_token().token {
        Token::EOF | Token::SemiColon => None,
        _ => Some(table_name(p)?),
    };
    Ok(Statement::Vacuum { table })
}

/// QuestDB's `REINDEX TABLE t [COLUMN c] [PARTITION p] [LOCK EXCLUSIVE]` and
/// PostgreSQL's `REINDEX [(options)] {TABLE | INDEX} [CONCURRENTLY] name`. A
/// partition is accepted and the column's whole index rebuilt; no lock is
/// needed (readers keep the index of their snapshot).
pub(crate) fn parse_reindex(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "REINDEX")?;
    // PostgreSQL's options, `(VERBOSE)`, `(CONCURRENTLY)`: nothing to tune here.
    if p.consume_token(&Token::LParen) {
        while !p.consume_token(&Token::RParen) {
            if matches!(p.next_token().token, Token::EOF) {
                return Err(DdlError::Sql(ParserError::ParserError(
                    "REINDEX options end without )".into(),
                )));
            }
        }
    }
    let t = p.peek_token();
    let target = if consume_word(p, "INDEX") {
        consume_word(p, "CONCURRENTLY");
        ReindexTarget::Index(identifier(p)?)
    } else if consume_word(p, "TABLE") {
        consume_word(p, "CONCURRENTLY");
        let table = table_name(p)?;
        let column = if consume_word(p, "COLUMN") {
            Some(identifier(p)?)
        } else {
            None
        };
        if consume_word(p, "PARTITION") {
            p.next_token();
        }
        if consume_word(p, "LOCK") {
            expect_word(p, "EXCLUSIVE")?;
        }
        ReindexTarget::Table { table, column }
    } else {
        return Err(not_supported(
            format!(
                "REINDEX {}: Tidemark's indexes are symbol indexes of tables; rebuild them with \
                 REINDEX TABLE t [COLUMN c] or REINDEX INDEX name",
                t.token
            ),
            &t,
        ));
    };
    Ok(Statement::Reindex(target))
}

/// QuestDB's `CREATE MATERIALIZED VIEW`: refused by name (its query, a SAMPLE
/// BY, would otherwise fail as a syntax error somewhere inside it).
pub(crate) fn refuse_materialized_view(p: &Parser<'_>) -> Result<Statement> {
    Err(not_supported(
        "CREATE MATERIALIZED VIEW is not supported: run its query (SAMPLE BY ...) directly, \
         or keep its result with CREATE TABLE ... AS (query) and INSERT INTO ... SELECT",
        &p.peek_token(),
    ))
}

/// QuestDB's `CANCEL QUERY id`, `id` a non-negative integer.
pub(crate) fn parse_cancel_query(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "CANCEL")?;
    expect_word(p, "QUERY")?;
    let t = p.next_token();
    match &t.token {
        Token::Number(n, _) => match n.parse::<i64>() {
            Ok(id) => Ok(Statement::CancelQuery { id }),
            Err(_) => Err(DdlError::At {
                message: format!("query id {n} is not a whole number of at most 19 digits"),
                at: t.span.start,
                sqlstate: "22023",
            }),
        },
        _ => Err(DdlError::At {
            message: format!(
                "CANCEL QUERY takes the query_id of a running statement (see \
                 query_activity()), not \"{}\"",
                t.token
            ),
            at: t.span.start,
            sqlstate: "42601",
        }),
    }
}

/// The table constraint `[CONSTRAINT name] PRIMARY KEY (a, b, ...)` where a
/// column definition could start; `None` (nothing consumed) otherwise.
fn table_primary_key(p: &mut Parser<'_>) -> Result<Option<Vec<String>>> {
    let named = peek_keywords(p, &["CONSTRAINT"])
        && matches!(p.peek_nth_token(1).token, Token::Word(_))
        && peek_nth_keywords(p, 2, &["PRIMARY", "KEY"]);
    if !named && !peek_keywords(p, &["PRIMARY", "KEY"]) {
        return Ok(None);
    }
    if named {
        p.next_token();
        p.next_token();
    }
    p.next_token();
    p.next_token();
    Ok(Some(identifier_list(p)?))
}

/// PostgreSQL's error for a second PRIMARY KEY.
fn multiple_primary_keys(p: &Parser<'_>) -> DdlError {
    DdlError::At {
        message: "multiple primary keys for a table are not allowed".into(),
        at: p.peek_token().span.start,
        sqlstate: "42P16",
    }
}

/// `UPSERT KEYS (a, b, ...)` after DEDUP (or DEDUP ENABLE).
fn upsert_keys(p: &mut Parser<'_>) -> Result<Vec<String>> {
    expect_word(p, "UPSERT")?;
    expect_word(p, "KEYS")?;
    identifier_list(p)
}

/// `(a, b, ...)`: one or more column names in parentheses.
fn identifier_list(p: &mut Parser<'_>) -> Result<Vec<String>> {
    p.expect_token(&Token::LParen)?;
    let mut names = vec![identifier(p)?];
    while p.consume_token(&Token::Comma) {
        names.push(identifier(p)?);
    }
    p.expect_token(&Token::RParen)?;
    Ok(names)
}

/// `n UNIT` after TTL: `7 DAYS`, `1 MONTH`, or QuestDB's shorthand `2w`,
/// `12h`, `3M` (the tokenizer splits it into the number and the letter).
fn ttl_spec(p: &mut Parser<'_>) -> Result<TtlSpec> {
    let t = p.next_token();
    let Token::Number(text, _) = &t.token else {
        return Err(syntax(
            format!(
                "syntax error at or near \"{}\": expected the number of HOURS, DAYS, WEEKS, \
                 MONTHS or YEARS the table keeps",
                t.token
            ),
            t,
        ));
    };
    let Ok(count) = text.parse::<u32>() else {
        return Err(DdlError::At {
            message: format!("TTL {text} is not a whole number from 0 to {}", u32::MAX),
            at: t.span.start,
            sqlstate: "22023",
        });
    };
    let u = p.next_token();
    let unit = match &u.token {
        Token::Word(w) => ttl_unit(&w.value),
        _ => None,
    };
    match unit {
        Some(unit) => Ok(TtlSpec { count, unit }),
        None => Err(syntax(
            format!(
                "syntax error at or near \"{}\": expected HOURS, DAYS, WEEKS, MONTHS or YEARS \
                 (or h, d, w, M, y)",
                u.token
            ),
            u,
        )),
    }
}

/// `DAY`/`DAYS` in any case, or the shorthand `h`, `d`, `w`, `M` (month;
/// `m` is no unit), `y`.
fn ttl_unit(word: &str) -> Option<TtlUnit> {
    let short = match word {
        "h" | "H" => Some(TtlUnit::Hour),
        "d" | "D" => Some(TtlUnit::Day),
        "w" | "W" => Some(TtlUnit::Week),
        "M" => Some(TtlUnit::Month),
        "y" | "Y" => Some(TtlUnit::Year),
        _ => None,
    };
    let upper = word.to_ascii_uppercase();
    short.or(match upper.strip_suffix('S').unwrap_or(&upper) {
        "HOUR" => Some(TtlUnit::Hour),
        "DAY" => Some(TtlUnit::Day),
        "WEEK" => Some(TtlUnit::Week),
        "MONTH" => Some(TtlUnit::Month),
        "YEAR" => Some(TtlUnit::Year),
        _ => None,
    })
}

fn partition_unit(p: &mut Parser<'_>) -> Result<PartitionUnit> {
    let t = p.next_token();
    let unit = match &t.token {
        Token::Word(w) => match w.value.to_ascii_uppercase().as_str() {
            "NONE" => Some(PartitionUnit::None),
            "HOUR" => Some(PartitionUnit::Hour),
            "DAY" => Some(PartitionUnit::Day),
            "WEEK" => Some(PartitionUnit::Week),
            "MONTH" => Some(PartitionUnit::Month),
            "YEAR" => Some(PartitionUnit::Year),
            _ => None,
        },
        _ => None,
    };
    unit.ok_or_else(|| {
        syntax(
            format!(
                "syntax error at or near \"{}\": expected NONE, HOUR, DAY, WEEK, MONTH or YEAR",
                t.token
            ),
            t,
        )
    })
}

fn column_spec(p: &mut Parser<'_>) -> Result<ColumnSpec> {
    // A table constraint (`PRIMARY KEY (a)`, `CONSTRAINT c ...`) where a column goes.
    let opens_constraint = match (&p.peek_token().token, &p.peek_nth_token(1).token) {
        (Token::Word(w), next) => match w.value.to_ascii_uppercase().as_str() {
            "PRIMARY" | "FOREIGN" => {
                matches!(next, Token::Word(k) if k.value.eq_ignore_ascii_case("KEY"))
            }
            "UNIQUE" | "CHECK" | "EXCLUDE" => matches!(next, Token::LParen),
            "CONSTRAINT" => true,
            _ => false,
        },
        _ => false,
    };
    if opens_constraint {
        refuse_constraint(p)?;
    }
    let name = normalize(&p.parse_identifier()?);
    let data_type = sql_type(p)?;
    let mut not_null = false;
    let mut primary_key = false;
    let mut indexed = false;
    loop {
        if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            not_null = true;
        } else if !primary_key && peek_keywords(p, &["PRIMARY", "KEY"]) {
            p.next_token();
            p.next_token();
            primary_key = true;
        } else if p.parse_keyword(Keyword::NULL) {
            not_null = false;
        } else if consume_word(p, "CAPACITY") {
            // QuestDB symbol options: accepted, no effect (dictionaries grow as needed).
            p.parse_literal_uint()?;
        } else if consume_word(p, "CACHE") || consume_word(p, "NOCACHE") {
            // QuestDB symbol options: accepted, no effect.
        } else if consume_word(p, "INDEX") {
            // QuestDB's `SYMBOL INDEX [CAPACITY n]`: a symbol index (the
            // capacity, a block size there, has no meaning here).
            indexed = true;
        } else {
            refuse_constraint(p)?;
            break;
        }
    }
    Ok(ColumnSpec {
        name,
        data_type,
        not_null,
        primary_key,
        indexed,
    })
}

/// A type name as PostgreSQL or QuestDB spell it.
fn sql_type(p: &mut Parser<'_>) -> Result<SqlType> {
    let t = p.next_token();
    let Token::Word(w) = &t.token else {
        return Err(syntax(
            format!(
                "syntax error at or near \"{}\": expected a type name",
                t.token
            ),
            t,
        ));
    };
    let word = w.value.to_ascii_lowercase();
    // An optional "(n)" or "(p, s)" after the name (length, precision): no effect here.
    let skip_args = |p: &mut Parser<'_>| -> Result<Option<u64>> {
        if p.consume_token(&Token::LParen) {
            let n = p.parse_literal_uint()?;
            while p.consume_token(&Token::Comma) {
                p.parse_literal_uint()?;
            }
            p.expect_token(&Token::RParen)?;
            return Ok(Some(n));
        }
        Ok(None)
    };
    let ty = match word.as_str() {
        "boolean" | "bool" => SqlType::Boolean,
        "smallint" | "int2" | "short" => SqlType::SmallInt,
        // QuestDB's BYTE: no one-byte integer here, the next size up.
        "byte" => SqlType::SmallInt,
        "int" | "integer" | "int4" => SqlType::Int,
        "bigint" | "int8" | "long" => SqlType::BigInt,
        "real" | "float4" => SqlType::Real,
        // QuestDB's FLOAT is 32 bits; PostgreSQL's FLOAT(p) follows its precision.
        "float" => match skip_args(p)? {
            Some(bits) if bits > 24 => SqlType::Double,
            _ => SqlType::Real,
        },
        "double" => {
            consume_word(p, "PRECISION");
            SqlType::Double
        }
        "float8" => SqlType::Double,
        "timestamptz" => {
            skip_args(p)?;
            SqlType::TimestampTz
        }
        "timestamp" => {
            skip_args(p)?;
            let with_zone = consume_word(p, "WITH");
            if with_zone || consume_word(p, "WITHOUT") {
                expect_word(p, "TIME")?;
                expect_word(p, "ZONE")?;
            }
            if with_zone {
                SqlType::TimestampTz
            } else {
                SqlType::Timestamp
            }
        }
        "timestamp_ns" => SqlType::TimestampNs,
        "date" => SqlType::Date,
        "varchar" | "text" | "string" | "char" | "bpchar" => {
            skip_args(p)?;
            SqlType::Varchar
        }
        "character" => {
            consume_word(p, "VARYING");
            skip_args(p)?;
            SqlType::Varchar
        }
        // QuestDB's IPv4 (a 32-bit address): kept as its text, so that its
        // tables and equality lookups work; no address arithmetic or subnets.
        "ipv4" => SqlType::Varchar,
        "symbol" => SqlType::Symbol,
        "uuid" => SqlType::Uuid,
        "binary" | "bytea" | "varbinary" => SqlType::Binary,
        "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8" => {
            return Err(not_supported(
                format!(
                    "type \"{}\" is not supported: Tidemark has no sequences; use BIGINT and \
                     supply the values (rows are identified by the designated timestamp)",
                    word
                ),
                &t,
            ));
        }
        "numeric" | "decimal" => numeric_args(p, &word)?,
        "json" => SqlType::Json,
        "jsonb" => SqlType::Jsonb,
        _ => {
            return Err(DdlError::At {
                message: format!("type \"{}\" does not exist", w.value),
                at: t.span.start,
                sqlstate: "42704",
            });
        }
    };
    array_of(p, ty, &t)
}

/// `ty` followed by `[]` pairs: an array type. Only `DOUBLE[]` (QuestDB's array
/// type) is a column type, with at most six dimensions as in PostgreSQL.
fn array_of(p: &mut Parser<'_>, ty: SqlType, at: &TokenWithSpan) -> Result<SqlType> {
    let mut dims: u8 = 0;
    while p.consume_token(&Token::LBracket) {
        // PostgreSQL accepts (and ignores) a length: `DOUBLE[3]`.
        if !p.consume_token(&Token::RBracket) {
            p.parse_literal_uint()?;
            p.expect_token(&Token::RBracket)?;
        }
        dims = dims.saturating_add(1);
    }
    if dims == 0 {
        return Ok(ty);
    }
    if ty != SqlType::Double {
        return Err(not_supported(
            "array columns are DOUBLE[] only (QuestDB's array type); \
             store other lists as separate columns or as JSON"
                .to_string(),
            at,
        ));
    }
    if dims > SqlType::MAX_ARRAY_DIMS {
        return Err(DdlError::At {
            message: format!(
                "number of array dimensions ({dims}) exceeds the maximum allowed ({})",
                SqlType::MAX_ARRAY_DIMS
            ),
            at: at.span.start,
            sqlstate: "54000",
        });
    }
    Ok(SqlType::DoubleArray { dims })
}

/// The optional `(precision [, scale])` after NUMERIC/DECIMAL, checked as PostgreSQL
/// checks it (22023), and against the 38 digits Tidemark stores (0A000).
fn numeric_args(p: &mut Parser<'_>, word: &str) -> Result<SqlType> {
    if !p.consume_token(&Token::LParen) {
        return Ok(SqlType::DEFAULT_NUMERIC);
    }
    let number = |p: &mut Parser<'_>| -> Result<(u64, TokenWithSpan)> {
        let at = p.peek_token();
        if at.token == Token::Minus {
            return Err(not_supported(
                format!("a negative {} scale is not supported", word.to_uppercase()),
                &at,
            ));
        }
        Ok((p.parse_literal_uint()?, at))
    };
    let (precision, at) = number(p)?;
    let scale = if p.consume_token(&Token::Comma) {
        Some(number(p)?)
    } else {
        None
    };
    p.expect_token(&Token::RParen)?;
    let name = word.to_uppercase();
    if precision == 0 || precision > 1000 {
        return Err(DdlError::At {
            message: format!("{name} precision {precision} must be between 1 and 1000"),
            at: at.span.start,
            sqlstate: "22023",
        });
    }
    if precision > u64::from(SqlType::MAX_NUMERIC_PRECISION) {
        return Err(not_supported(
            format!(
                "{name} precision {precision} is not supported: Tidemark stores at most {} \
                 digits; use DOUBLE PRECISION for wider values",
                SqlType::MAX_NUMERIC_PRECISION
            ),
            &at,
        ));
    }
    let scale = match scale {
        None => 0,
        Some((s, at)) if s > precision => {
            return Err(DdlError::At {
                message: format!("{name} scale {s} must be between 0 and precision {precision}"),
                at: at.span.start,
                sqlstate: "22023",
            });
        }
        Some((s, _)) => s,
    };
    Ok(SqlType::Decimal {
        precision: precision as u8,
        scale: scale as u8,
    })
}

pub(crate) fn parse_drop_table(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "DROP")?;
    expect_word(p, "TABLE")?;
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let mut names = vec![table_name(p)?];
    while p.consume_token(&Token::Comma) {
        names.push(table_name(p)?);
    }
    Ok(Statement::DropTable { names, if_exists })
}

pub(crate) fn parse_truncate(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "TRUNCATE")?;
    consume_word(p, "TABLE");
    let mut names = vec![table_name(p)?];
    while p.consume_token(&Token::Comma) {
        names.push(table_name(p)?);
    }
    Ok(Statement::Truncate { names })
}

pub(crate) fn parse_rename_table(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "RENAME")?;
    expect_word(p, "TABLE")?;
    let from = table_name(p)?;
    expect_word(p, "TO")?;
    let to = table_name(p)?;
    Ok(Statement::RenameTable { from, to })
}

pub(crate) fn parse_alter_table(p: &mut Parser<'_>) -> Result<Statement> {
    expect_word(p, "ALTER")?;
    expect_word(p, "TABLE")?;
    let table = table_name(p)?;
    if peek_keywords(p, &["ALTER", "COLUMN"]) {
        // QuestDB's ALTER COLUMN c ADD INDEX / DROP INDEX; its SYMBOL CAPACITY /
        // CACHE and PostgreSQL's ALTER COLUMN c TYPE / SET ...: named, not a
        // syntax error.
        let at = p.peek_token();
        p.next_token();
        p.next_token();
        let column = identifier(p)?;
        let op = if peek_keywords(p, &["ADD", "INDEX"]) {
            Some(AlterTable::AddIndex {
                column: column.clone(),
            })
        } else if peek_keywords(p, &["DROP", "INDEX"]) {
            Some(AlterTable::DropIndex {
                column: column.clone(),
            })
        } else {
            None
        };
        let Some(op) = op else {
            return Err(not_supported(
                format!(
                    "ALTER TABLE {table} ALTER COLUMN {column} is not supported: add a column \
                     of the type wanted, fill it with UPDATE, and drop the old one"
                ),
                &at,
            ));
        };
        p.next_token();
        p.next_token();
        // QuestDB's `ADD INDEX CAPACITY n`: a block size there, no meaning here.
        if matches!(op, AlterTable::AddIndex { .. }) && consume_word(p, "CAPACITY") {
            p.parse_literal_uint()?;
        }
        return Ok(Statement::AlterTable {
            table,
            op: Box::new(op),
        });
    }
    let op = if consume_word(p, "ADD") {
        consume_word(p, "COLUMN");
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let mut columns = vec![column_spec(p)?];
        while p.consume_token(&Token::Comma) {
            // PostgreSQL repeats the action: `, ADD [COLUMN] b T`.
            if consume_word(p, "ADD") {
                consume_word(p, "COLUMN");
            }
            columns.push(column_spec(p)?);
        }
        AlterTable::AddColumn {
            columns,
            if_not_exists,
        }
    } else if peek_keywords(p, &["DROP", "PARTITION"]) {
        p.next_token();
        p.next_token();
        if consume_word(p, "LIST") {
            let mut names = vec![p.parse_literal_string()?];
            while p.consume_token(&Token::Comma) {
                names.push(p.parse_literal_string()?);
            }
            AlterTable::DropPartitionList { names }
        } else if p.parse_keyword(Keyword::WHERE) {
            AlterTable::DropPartitionWhere {
                condition: Box::new(p.parse_expr()?),
            }
        } else {
            let t = p.peek_token();
            return Err(syntax(
                format!(
                    "syntax error at or near \"{}\": expected LIST or WHERE",
                    t.token
                ),
                t,
            ));
        }
    } else if consume_word(p, "DEDUP") {
        if consume_word(p, "DISABLE") {
            AlterTable::SetDedup { keys: Vec::new() }
        } else {
            expect_word(p, "ENABLE")?;
            AlterTable::SetDedup {
                keys: upsert_keys(p)?,
            }
        }
    } else if peek_keywords(p, &["SET", "TTL"]) {
        p.next_token();
        p.next_token();
        AlterTable::SetTtl { ttl: ttl_spec(p)? }
    } else if peek_keywords(p, &["SET", "PARAM"]) {
        p.next_token();
        p.next_token();
        table_param(p)?;
        AlterTable::Accepted
    } else if peek_keywords(p, &["SET", "TYPE"]) {
        p.next_token();
        p.next_token();
        consume_word(p, "BYPASS");
        expect_word(p, "WAL")?;
        AlterTable::Accepted
    } else if peek_keywords(p, &["RESUME", "WAL"]) {
        // A table never suspends here (a failed apply is retried).
        p.next_token();
        p.next_token();
        if consume_word(p, "FROM") {
            if !consume_word(p, "TXN") {
                expect_word(p, "TRANSACTION")?;
            }
            p.parse_literal_uint()?;
        }
        AlterTable::Accepted
    } else if peek_keywords(p, &["SUSPEND", "WAL"]) {
        let at = p.peek_token();
        return Err(not_supported(
            "ALTER TABLE ... SUSPEND WAL is not supported: tables share one write-ahead log \
             that never suspends (a failed apply is retried); wal_tables() shows its state",
            &at,
        ));
    } else if peek_keywords(p, &["SQUASH", "PARTITIONS"]) {
        let at = p.peek_token();
        return Err(not_supported(
            "ALTER TABLE ... SQUASH PARTITIONS is not supported",
            &at,
        ));
    } else if ["DETACH", "ATTACH", "CONVERT"]
        .iter()
        .any(|verb| peek_keywords(p, &[verb, "PARTITION"]))
    {
        let at = p.peek_token();
        return Err(not_supported(
            format!(
                "ALTER TABLE ... {} PARTITION is not supported: partitions cannot be taken out \
                 of a table or put in as files; use DROP PARTITION, or CHECKPOINT CREATE and \
                 copy the root",
                at.token.to_string().to_uppercase()
            ),
            &at,
        ));
    } else if consume_word(p, "DROP") {
        consume_word(p, "COLUMN");
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        AlterTable::DropColumn {
            name: identifier(p)?,
            if_exists,
        }
    } else if peek_keywords(p, &["RENAME", "COLUMN"]) {
        p.next_token();
        p.next_token();
        let from = identifier(p)?;
        expect_word(p, "TO")?;
        AlterTable::RenameColumn {
            from,
            to: identifier(p)?,
        }
    } else if peek_keywords(p, &["RENAME", "TO"]) {
        p.next_token();
        p.next_token();
        AlterTable::RenameTo { to: table_name(p)? }
    } else {
        let t = p.peek_token();
        return Err(syntax(
            format!(
                "syntax error at or near \"{}\": expected ADD, DROP, RENAME, SET TTL, SET PARAM or DEDUP",
                t.token
            ),
            t,
        ));
    };
    Ok(Statement::AlterTable {
        table,
        op: Box::new(op),
    })
}
