//! `BACKUP DATABASE` (start or resume the built-in backup) and `BACKUP ABORT`,
//! as QuestDB spells them.

use datafusion_sql::sqlparser::parser::Parser;

use crate::ddl::{Result, consume_word, syntax};
use crate::statement::{BackupAction, Statement};

pub(crate) fn parse_backup(p: &mut Parser<'_>) -> Result<Statement> {
    p.next_token(); // BACKUP
    let action = if consume_word(p, "DATABASE") {
        BackupAction::Database
    } else if consume_word(p, "ABORT") {
        BackupAction::Abort
    } else {
        let t = p.peek_token();
        return Err(syntax(
            format!(
                "syntax error at or near \"{}\": expected DATABASE or ABORT after BACKUP \
                 (a backup always holds every table)",
                t.token
            ),
            t,
        ));
    };
    Ok(Statement::Backup(action))
}
