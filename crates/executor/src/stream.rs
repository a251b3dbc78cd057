//! Results as streams: the rows of a query reach the client as the scan
//! produces them, so a full-table SELECT or COPY TO holds a few batches in
//! memory whatever the table's size.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};

use crate::error::{ExecError, Result};

type Batches = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// The batches of one statement's result. A stream that fails or is stopped
/// (cancel, statement timeout) inside a transaction aborts the transaction, as
/// an error of the statement itself would.
pub struct RowStream {
    batches: Batches,
    stop: Option<BoxFuture<'static, ExecError>>,
    /// The session's flag, set on failure (only for streams of a transaction).
    failed: Option<Arc<AtomicBool>>,
    done: bool,
    /// The command tag's word for the rows (`SELECT n`, `FETCH n`).
    verb: &'static str,
}

impl RowStream {
    /// Rows already in memory (small results: settings, system tables).
    pub fn from_batches(batches: Vec<RecordBatch>) -> Self {
        Self::new(
            futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
            None,
        )
    }

    pub(crate) fn new(
        batches: impl Stream<Item = Result<RecordBatch>> + Send + 'static,
        failed: Option<Arc<AtomicBool>>,
    ) -> Self {
        RowStream {
            batches: Box::pin(batches),
            stop: None,
            failed,
            done: false,
            verb: "SELECT",
        }
    }

    /// The same rows, each batch passed through `f` as it arrives.
    pub(crate) fn map_batches(
        mut self,
        f: impl Fn(RecordBatch) -> Result<RecordBatch> + Send + 'static,
    ) -> Self {
        self.batches = self.batches.map(move |b| b.and_then(&f)).boxed();
        self
    }

    /// The rows are a cursor's: their command tag is `FETCH n`.
    pub(crate) fn fetched(mut self) -> Self {
        self.verb = "FETCH";
        self
    }

    /// The word of the command tag that ends these rows: `SELECT` or `FETCH`.
    pub fn verb(&self) -> &'static str {
        self.verb
    }

    /// Ends the stream with the error `stop` resolves to, if it resolves first
    /// (the client's cancel request, the statement timeout).
    pub fn with_stop(mut self, stop: impl Future<Output = ExecError> + Send + 'static) -> Self {
        self.stop = Some(stop.boxed());
        self
    }

    /// The same rows, read into memory now.
    pub(crate) async fn into_memory(self) -> Result<RowStream> {
        let verb = self.verb;
        let mut rows = RowStream::from_batches(self.collect().await?);
        rows.verb = verb;
        Ok(rows)
    }

    /// Every batch (tests, and callers that need the whole result).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(b) = self.next().await {
            out.push(b?);
        }
        Ok(out)
    }

    fn fail(&mut self, e: ExecError) -> Poll<Option<Result<RecordBatch>>> {
        self.done = true;
        if let Some(flag) = &self.failed {
            flag.store(true, Ordering::SeqCst);
        }
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for RowStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(stop) = self.stop.as_mut()
            && let Poll::Ready(e) = stop.poll_unpin(cx)
        {
            return self.fail(e);
        }
        match self.batches.poll_next_unpin(cx) {
            Poll::Ready(Some(Err(e))) => self.fail(e),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl fmt::Debug for RowStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::sqlstate;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn batch(v: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![v]))]).expect("batch")
    }

    #[tokio::test]
    async fn an_error_mid_stream_ends_it_and_marks_the_transaction_failed() {
        let flag = Arc::new(AtomicBool::new(false));
        let items = vec![
            Ok(batch(1)),
            Err(ExecError::new(
                sqlstate::DIVISION_BY_ZERO,
                "division by zero",
            )),
            Ok(batch(3)),
        ];
        let mut s = RowStream::new(futures::stream::iter(items), Some(flag.clone()));
        assert!(s.next().await.is_some_and(|b| b.is_ok()));
        assert!(!flag.load(Ordering::SeqCst));
        let e = s.next().await.and_then(|b| b.err()).expect("the error");
        assert_eq!(e.sqlstate, sqlstate::DIVISION_BY_ZERO);
        assert!(flag.load(Ordering::SeqCst));
        assert!(s.next().await.is_none(), "nothing after the error");
    }

    #[tokio::test]
    async fn a_stop_ends_a_stream_that_would_never_finish() {
        let flag = Arc::new(AtomicBool::new(false));
        let endless = futures::stream::repeat_with(|| Ok(batch(7))).then(|b| async {
            tokio::task::yield_now().await;
            b
        });
        let s = RowStream::new(endless, Some(flag.clone())).with_stop(async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            ExecError::new(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to statement timeout",
            )
        });
        let e = s.collect().await.expect_err("stopped");
        assert_eq!(e.sqlstate, sqlstate::QUERY_CANCELED);
        assert!(flag.load(Ordering::SeqCst));
    }
}
