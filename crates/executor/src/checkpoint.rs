//! `CHECKPOINT CREATE | RELEASE`, plain `CHECKPOINT`, and the
//! `checkpoint_status()` table function.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use tidemark_parser::CheckpointAction;
use tidemark_storage::{Database, Released};

use crate::error::Result;
use crate::session::{Output, Session, run_blocking};

pub(crate) async fn run(session: &mut Session, action: CheckpointAction) -> Result<Output> {
    let db = session.database().clone();
    // CREATE and RELEASE go through the backups' arbiter: neither the operator
    // nor a backup ends the other's checkpoint.
    let backups = session.backups().clone();
    match action {
        CheckpointAction::Flush => {
            // As in PostgreSQL: everything committed goes to the data files (here:
            // the write buffer is applied), and they are made durable.
            run_blocking(move || db.apply_buffer().and_then(|_| db.flush())).await?;
            Ok(Output::command("CHECKPOINT"))
        }
        CheckpointAction::Create => {
            run_blocking(move || backups.checkpoints().create()).await?;
            Ok(Output::command("CHECKPOINT CREATE"))
        }
        CheckpointAction::Release => {
            let notice = match run_blocking(move || backups.checkpoints().release()).await? {
                Released::Ended { .. } => None,
                Released::NoCheckpoint => Some("there is no checkpoint to release".to_string()),
            };
            Ok(Output::Command {
                tag: "CHECKPOINT RELEASE".into(),
                notice,
            })
        }
    }
}

/// A time as a TIMESTAMP column's microseconds since 1970 (status functions).
pub(crate) fn unix_micros(t: Option<SystemTime>) -> Option<i64> {
    t.map(|t| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    })
}

/// A one-row BIGINT column from a count (saturating).
pub(crate) fn one_int(v: u64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![i64::try_from(v).unwrap_or(i64::MAX)]))
}

/// `checkpoint_status()`: one row, read when the query is planned.
#[derive(Debug)]
pub(crate) struct CheckpointStatusFunction {
    pub(crate) db: Arc<Database>,
}

impl TableFunctionImpl for CheckpointStatusFunction {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("checkpoint_status() takes no arguments");
        }
        let status = self.db.checkpoint_status();
        let schema = Arc::new(Schema::new(vec![
            Field::new("in_progress", DataType::Boolean, false),
            Field::new(
                "started_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("tables", DataType::Int32, false),
            Field::new("held_bytes", DataType::Int64, false),
            Field::new("free_bytes", DataType::Int64, false),
            Field::new("phase", DataType::Utf8, false),
            Field::new("reclaim_pending_paths", DataType::Int64, false),
            Field::new("reclaim_pending_bytes", DataType::Int64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![status.in_progress])),
            Arc::new(TimestampMicrosecondArray::from(vec![unix_micros(
                status.started_at,
            )])),
            Arc::new(Int32Array::from(vec![
                i32::try_from(status.tables).unwrap_or(i32::MAX),
            ])),
            one_int(status.held_bytes),
            one_int(status.free_bytes),
            Arc::new(StringArray::from(vec![status.phase.as_str()])),
            one_int(status.reclaim_pending_paths),
            one_int(status.reclaim_pending_bytes),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
