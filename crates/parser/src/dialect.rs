//! The SQL dialect: PostgreSQL's, except that `SAMPLE` and `LATEST` never start
//! a table alias, so that `FROM t SAMPLE BY 1h` leaves Tidemark's clauses to us.

use datafusion_sql::sqlparser::dialect::{Dialect, PostgreSqlDialect};
use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::Token;

#[derive(Debug, Default)]
pub struct TidemarkDialect {
    pg: PostgreSqlDialect,
}

impl Dialect for TidemarkDialect {
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
