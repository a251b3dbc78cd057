//! `CHECKPOINT CREATE | RELEASE`, and QuestDB's older spellings
//! `SNAPSHOT PREPARE | COMPLETE`, which scripts written for it still send; plain
//! `CHECKPOINT` is PostgreSQL's: write everything committed to the data files.

use datafusion_sql::sqlparser::parser::Parser;

use crate::ddl::{Result, consume_word, syntax};
use crate::statement::{CheckpointAction, Statement};

pub(crate) fn parse_checkpoint(p: &mut Parser<'_>) -> Result<Statement> {
    let first = p.next_token().token.to_string().to_ascii_uppercase();
    let (create, release) = if first == "SNAPSHOT" {
        ("PREPARE", "COMPLETE")
    } else {
        ("CREATE", "RELEASE")
    };
    use datafusion_sql::sqlparser::tokenizer::Token;
    let ends = matches!(p.peek_token().token, Token::EOF | Token::SemiColon);
    let action = if first == "CHECKPOINT" && ends {
        CheckpointAction::Flush
    } else if consume_word(p, create) {
        CheckpointAction::Create
    } else if consume_word(p, release) {
        CheckpointAction::Release
    } else {
        let t = p.peek_token();
        return Err(syntax(
            format!(
                "syntax error at or near \"{}\": expected {create} or {release} after {first}",
                t.token
            ),
            t,
        ));
    };
    Ok(Statement::Checkpoint(action))
}
