//! SQL savepoints inside an open transaction: `SAVEPOINT name`, `RELEASE
//! [SAVEPOINT] name`, `ROLLBACK TO [SAVEPOINT] name`. ORMs and drivers use them
//! for nested transactions (SQLAlchemy's `begin_nested()`, psycopg's nested
//! `transaction()` blocks, Django's `atomic`). A savepoint remembers how many
//! requests the transaction held and its staged view; rolling back to it drops
//! the later requests and restores that view, and ends a failure as PostgreSQL
//! does, so the transaction can go on.

use datafusion::sql::sqlparser::ast;

use super::{Output, Session};
use crate::error::{ExecError, Result, sqlstate};

impl Session {
    /// `SAVEPOINT name`; a name used again hides the earlier one until released.
    pub(super) fn savepoint(&mut self, name: ast::Ident) -> Result<Output> {
        let Some(tx) = &self.tx else {
            return Err(outside_transaction("SAVEPOINT"));
        };
        let mark = tx.savepoint();
        self.savepoints
            .push((tidemark_parser::normalize_ident(&name), mark));
        Ok(Output::command("SAVEPOINT"))
    }

    /// `RELEASE [SAVEPOINT] name`: forgets the savepoint and every later one;
    /// their writes stay in the transaction.
    pub(super) fn release_savepoint(&mut self, name: &ast::Ident) -> Result<Output> {
        if self.tx.is_none() {
            return Err(outside_transaction("RELEASE SAVEPOINT"));
        }
        let at = self.find_savepoint(name)?;
        self.savepoints.truncate(at);
        Ok(Output::command("RELEASE"))
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: undoes the writes since the savepoint,
    /// which stays defined, and clears a failed transaction's error state.
    pub(super) fn rollback_to_savepoint(&mut self, name: &ast::Ident) -> Result<Output> {
        if self.tx.is_none() {
            return Err(outside_transaction("ROLLBACK TO SAVEPOINT"));
        }
        let at = self.find_savepoint(name)?;
        self.savepoints.truncate(at + 1);
        if let (Some(tx), Some((_, mark))) = (self.tx.as_mut(), self.savepoints.last()) {
            tx.rollback_to(mark);
        }
        self.clear_failure();
        Ok(Output::command("ROLLBACK"))
    }

    /// The newest savepoint of that name (3B001 when there is none).
    fn find_savepoint(&self, name: &ast::Ident) -> Result<usize> {
        let wanted = tidemark_parser::normalize_ident(name);
        self.savepoints
            .iter()
            .rposition(|(n, _)| *n == wanted)
            .ok_or_else(|| {
                ExecError::new(
                    sqlstate::INVALID_SAVEPOINT_SPECIFICATION,
                    format!("savepoint \"{wanted}\" does not exist"),
                )
            })
    }
}

fn outside_transaction(what: &str) -> ExecError {
    ExecError::new(
        sqlstate::NO_ACTIVE_SQL_TRANSACTION,
        format!("{what} can only be used in transaction blocks"),
    )
}
