//! The SQL dialect: PostgreSQL's, except that `SAMPLE` and `LATEST` never start
//! a table alias, so that `FROM t SAMPLE BY 1h` leaves Tidemark's clauses to us.
//!
//! Everything else is forwarded to sqlparser's PostgreSQL dialect, and the
//! dialect reports itself as PostgreSQL, so that the parser's PostgreSQL-only
//! syntax (`OPERATOR(pg_catalog.~)` in psql's `\d`, `::` casts, ...) applies.

use datafusion_sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::Token;

#[derive(Debug, Default)]
pub struct TidemarkDialect {
    pg: PostgreSqlDialect,
}

impl Dialect for TidemarkDialect {
    fn dialect(&self) -> std::any::TypeId {
        std::any::TypeId::of::<PostgreSqlDialect>()
    }
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.pg.identifier_quote_style(identifier)
    }
    fn supports_unicode_string_literal(&self) -> bool {
        self.pg.supports_unicode_string_literal()
    }
    /// When the expression a keyword starts fails to parse, sqlparser tries the
    /// word again as a name (`interval` as a column); for PostgreSQL's reserved
    /// words that start expressions that second try can never succeed, and it
    /// re-parses everything inside, twice per level of nesting (`CAST(CAST(...`
    /// with a mistake inside: seconds at 20 levels; found by fuzzing).
    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        matches!(
            kw,
            Keyword::CAST
                | Keyword::TRY_CAST
                | Keyword::SAFE_CAST
                | Keyword::ARRAY
                | Keyword::NOT
                | Keyword::CASE
        ) || self.pg.is_reserved_for_identifier(kw)
    }
    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.pg.is_custom_operator_part(ch)
    }
    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.pg.get_next_precedence(parser)
    }
    fn prec_value(&self, prec: Precedence) -> u8 {
        self.pg.prec_value(prec)
    }
    fn allow_extract_custom(&self) -> bool {
        self.pg.allow_extract_custom()
    }
    fn allow_extract_single_quotes(&self) -> bool {
        self.pg.allow_extract_single_quotes()
    }
    fn supports_create_index_with_clause(&self) -> bool {
        self.pg.supports_create_index_with_clause()
    }
    fn supports_explain_with_utility_options(&self) -> bool {
        self.pg.supports_explain_with_utility_options()
    }
    fn supports_listen_notify(&self) -> bool {
        self.pg.supports_listen_notify()
    }
    /// QuestDB's `LIMIT lo, hi` (the executor gives it QuestDB's meaning).
    fn supports_limit_comma(&self) -> bool {
        true
    }
    fn supports_factorial_operator(&self) -> bool {
        self.pg.supports_factorial_operator()
    }
    fn supports_bitwise_shift_operators(&self) -> bool {
        self.pg.supports_bitwise_shift_operators()
    }
    fn supports_comment_on(&self) -> bool {
        self.pg.supports_comment_on()
    }
    fn supports_load_extension(&self) -> bool {
        self.pg.supports_load_extension()
    }
    fn supports_named_fn_args_with_colon_operator(&self) -> bool {
        self.pg.supports_named_fn_args_with_colon_operator()
    }
    /// PostgreSQL names a function's arguments with identifiers (`f(x => 1)`).
    /// sqlparser's PostgreSQL dialect reads any expression as a name, which
    /// parses every argument twice: a statement of nested calls with a mistake
    /// inside took twice as long per level (30 levels: hours; found by fuzzing).
    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        false
    }
    fn supports_empty_projections(&self) -> bool {
        self.pg.supports_empty_projections()
    }
    fn supports_nested_comments(&self) -> bool {
        self.pg.supports_nested_comments()
    }
    fn supports_string_escape_constant(&self) -> bool {
        self.pg.supports_string_escape_constant()
    }
    fn supports_numeric_literal_underscores(&self) -> bool {
        self.pg.supports_numeric_literal_underscores()
    }
    fn supports_array_typedef_with_brackets(&self) -> bool {
        self.pg.supports_array_typedef_with_brackets()
    }
    fn supports_geometric_types(&self) -> bool {
        self.pg.supports_geometric_types()
    }
    fn supports_set_names(&self) -> bool {
        self.pg.supports_set_names()
    }
    fn supports_alter_column_type_using(&self) -> bool {
        self.pg.supports_alter_column_type_using()
    }
    fn supports_notnull_operator(&self) -> bool {
        self.pg.supports_notnull_operator()
    }
    fn supports_interval_options(&self) -> bool {
        self.pg.supports_interval_options()
    }
    fn supports_insert_table_alias(&self) -> bool {
        self.pg.supports_insert_table_alias()
    }
    fn supports_create_table_like_parenthesized(&self) -> bool {
        self.pg.supports_create_table_like_parenthesized()
    }
    fn supports_select_wildcard_with_alias(&self) -> bool {
        self.pg.supports_select_wildcard_with_alias()
    }
    fn supports_comma_separated_trim(&self) -> bool {
        self.pg.supports_comma_separated_trim()
    }
    fn supports_xml_expressions(&self) -> bool {
        self.pg.supports_xml_expressions()
    }
    fn supports_comment_optimizer_hint(&self) -> bool {
        self.pg.supports_comment_optimizer_hint()
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        self.pg.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.pg.is_identifier_part(ch)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.pg.is_delimited_identifier_start(ch)
    }
    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }
    fn supports_group_by_expr(&self) -> bool {
        true
    }
    fn is_table_factor_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser) -> bool {
        if explicit {
            return true;
        }
        // The candidate alias was just consumed: step back to look at it.
        parser.prev_token();
        let candidate = parser.next_token();
        let starts_clause = match &candidate.token {
            Token::Word(w) => {
                w.value.eq_ignore_ascii_case("LATEST") || w.value.eq_ignore_ascii_case("SAMPLE")
            }
            _ => false,
        };
        !starts_clause && self.pg.is_table_factor_alias(explicit, kw, parser)
    }
}
