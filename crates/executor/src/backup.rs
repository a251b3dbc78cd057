//! `BACKUP DATABASE`, `BACKUP ABORT` and the `backup_status()` table function
//! (the backups themselves are `tidemark-backup`'s).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use tidemark_backup::Backups;
use tidemark_parser::BackupAction;

use crate::checkpoint::{one_int, unix_micros};
use crate::error::Result;
use crate::session::{Output, Session};

/// `BACKUP DATABASE` answers at once with the backup's id (and whether an
/// unfinished one was resumed); the upload runs in the background, and
/// `backup_status()` follows it. `BACKUP ABORT` answers once it has stopped.
pub(crate) async fn run(session: &mut Session, action: BackupAction) -> Result<Output> {
    let backups = session.backups().clone();
    match action {
        BackupAction::Database => {
            let started = backups.start().await?;
            let notice = Some(if started.resumed {
                format!(
                    "backup {} resumed: files already uploaded are not sent again; \
                     backup_status() follows it",
                    started.id
                )
            } else {
                format!("backup {} started: backup_status() follows it", started.id)
            });
            Ok(Output::Command {
                tag: "BACKUP DATABASE".into(),
                notice,
            })
        }
        BackupAction::Abort => {
            let notice = match backups.abort().await? {
                Some(id) => format!(
                    "backup {id} aborted: its checkpoint is released and its uploads removed"
                ),
                None => "there is no backup to abort".to_string(),
            };
            Ok(Output::Command {
                tag: "BACKUP ABORT".into(),
                notice: Some(notice),
            })
        }
    }
}

/// `backup_status()`: one row, read when the query is planned.
#[derive(Debug)]
pub(crate) struct BackupStatusFunction {
    pub(crate) backups: Arc<Backups>,
}

fn text(v: Option<&str>) -> ArrayRef {
    Arc::new(StringArray::from(vec![v]))
}

impl TableFunctionImpl for BackupStatusFunction {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("backup_status() takes no arguments");
        }
        let s = self.backups.status();
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, None);
        let schema = Arc::new(Schema::new(vec![
            Field::new("phase", DataType::Utf8, false),
            Field::new("backup_id", DataType::Utf8, true),
            Field::new("destination", DataType::Utf8, true),
            Field::new("base", DataType::Utf8, true),
            Field::new("started_at", ts(), true),
            Field::new("finished_at", ts(), true),
            Field::new("files_total", DataType::Int64, false),
            Field::new("files_done", DataType::Int64, false),
            Field::new("files_reused", DataType::Int64, false),
            Field::new("bytes_total", DataType::Int64, false),
            Field::new("bytes_done", DataType::Int64, false),
            Field::new("bytes_uploaded", DataType::Int64, false),
            Field::new("last_error", DataType::Utf8, true),
            Field::new("log_backup", DataType::Utf8, false),
            Field::new("log_archived_seq", DataType::Int64, false),
            Field::new("log_archived_at", ts(), true),
            Field::new("log_lag_ms", DataType::Int64, false),
            Field::new("log_last_error", DataType::Utf8, true),
        ]));
        let log = self.backups.log_status();
        let log_state = match (log.enabled, &log.last_error) {
            (true, None) => "running",
            (true, Some(_)) => "retrying",
            (false, Some(_)) => "failed",
            (false, None) => "off",
        };
        let columns: Vec<ArrayRef> = vec![
            text(Some(s.phase.as_str())),
            text(s.backup_id.as_deref()),
            text(s.destination.as_deref()),
            text(s.base.as_deref()),
            Arc::new(TimestampMicrosecondArray::from(vec![unix_micros(
                s.started_at,
            )])),
            Arc::new(TimestampMicrosecondArray::from(vec![unix_micros(
                s.finished_at,
            )])),
            one_int(s.files_total),
            one_int(s.files_done),
            one_int(s.files_reused),
            one_int(s.bytes_total),
            one_int(s.bytes_done),
            one_int(s.bytes_uploaded),
            text(s.last_error.as_deref()),
            text(Some(log_state)),
            one_int(log.archived_seq),
            Arc::new(TimestampMicrosecondArray::from(vec![unix_micros(
                log.archived_commit_at,
            )])),
            one_int(u64::try_from(log.lag.as_millis()).unwrap_or(u64::MAX)),
            text(log.last_error.as_deref()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
