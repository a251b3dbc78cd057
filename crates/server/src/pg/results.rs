//! What the server sends for a statement's result: row descriptions, data
//! rows encoded batch by batch from the executor's stream, COPY TO data,
//! command tags and notices.

use std::fmt::Debug;
use std::sync::Arc;

use futures::sink::{Sink, SinkExt};
use futures::{StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, DescribeResponse, FieldInfo, QueryResponse, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::data::{DataRow, NoData, ParameterDescription, RowDescription};
use pgwire::messages::startup::ParameterStatus;
use tidemark_executor::arrow::datatypes::SchemaRef;
use tidemark_executor::copy::CopyIn;
use tidemark_executor::{CopyOut, ExecError, RowStream};

use super::handler::user_error;
use super::types::{RowEncoder, field_type, format_for};

pub(super) fn fields(schema: &SchemaRef, formats: &Format) -> Arc<Vec<FieldInfo>> {
    Arc::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                FieldInfo::new(
                    f.name().clone(),
                    None,
                    None,
                    field_type(f),
                    format_for(formats, i),
                )
            })
            .collect(),
    )
}

pub(super) fn rows_response(
    schema: &SchemaRef,
    rows: RowStream,
    formats: &Format,
    failure: &Failure,
) -> QueryResponse {
    let fields = fields(schema, formats);
    let formats = formats.clone();
    let jsonb = super::types::jsonb_columns(schema);
    let failure = failure.clone();
    let verb = rows.verb();
    // One batch's rows are encoded at a time: memory holds a batch or two,
    // whatever the size of the result.
    let data = rows.flat_map(move |batch| {
        let encoded: Vec<PgWireResult<DataRow>> = match batch {
            Ok(b) => {
                let mut encoder = RowEncoder::new(b.columns(), &formats, &jsonb, b.num_rows());
                (0..b.num_rows())
                    .map(|r| encoder.row(r).map_err(|e| failure.record(e)))
                    .collect()
            }
            Err(e) => vec![Err(failure.record(e))],
        };
        stream::iter(encoded)
    });
    let mut response = QueryResponse::new(fields, data);
    response.set_command_tag(verb);
    response
}

/// A Describe's answer (ParameterDescription for a statement, then
/// RowDescription or NoData), queued: like PostgreSQL, the replies to Parse,
/// Bind and Describe wait for Sync or Flush, so a pipelined statement costs
/// the client one read.
pub(super) async fn feed_describe<C, D>(client: &mut C, response: &D) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    D: DescribeResponse,
{
    if let Some(types) = response.parameters() {
        let oids = types.iter().map(|t| t.oid()).collect();
        client
            .feed(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(oids),
            ))
            .await?;
    }
    if response.is_no_data() {
        client
            .feed(PgWireBackendMessage::NoData(NoData::new()))
            .await?;
    } else {
        let fields = response.fields().iter().map(Into::into).collect();
        client
            .feed(PgWireBackendMessage::RowDescription(RowDescription::new(
                fields,
            )))
            .await?;
    }
    Ok(())
}

/// The statement error that ended a result stream, told apart from a failure
/// to write to the client (which ends the connection instead).
#[derive(Clone, Default)]
pub(super) struct Failure(Arc<std::sync::Mutex<Option<ExecError>>>);

impl Failure {
    pub(super) fn record(&self, e: ExecError) -> PgWireError {
        let error = user_error(&e);
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
        error
    }

    /// What sending the rows came to: the statement's error, or the
    /// connection's.
    pub(super) fn outcome(&self, sent: PgWireResult<()>) -> PgWireResult<Result<(), ExecError>> {
        match sent {
            Ok(()) => Ok(Ok(())),
            Err(e) => match self.0.lock().ok().and_then(|mut slot| slot.take()) {
                Some(statement_error) => Ok(Err(statement_error)),
                None => Err(e),
            },
        }
    }
}

/// A command tag as PostgreSQL sends it: "INSERT 0 3" is command "INSERT",
/// oid 0, 3 rows.
pub(super) fn command_tag(tag: &str) -> Tag {
    let mut parts = tag.rsplitn(2, ' ');
    let last = parts.next().unwrap_or_default();
    match (last.parse::<usize>(), parts.next()) {
        (Ok(rows), Some(rest)) => match rest.strip_suffix(" 0") {
            Some(cmd) => Tag::new(cmd).with_oid(0).with_rows(rows),
            None => Tag::new(rest).with_rows(rows),
        },
        _ => Tag::new(tag),
    }
}

/// Sends a `COPY ... TO STDOUT` as its lines are encoded: CopyOutResponse,
/// CopyData, CopyDone. Returns the rows sent, or the error that ended the
/// copy (sent by the caller as an ErrorResponse, which ends copy-out mode, as
/// PostgreSQL does).
pub(super) async fn send_copy_out<C>(
    client: &mut C,
    copy: CopyOut,
) -> PgWireResult<Result<usize, ExecError>>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let columns = copy.columns;
    let response = CopyOutResponse::new(0, columns as i16, vec![0; columns]);
    client
        .feed(PgWireBackendMessage::CopyOutResponse(response))
        .await?;
    let mut lines = std::pin::pin!(copy.lines());
    let mut rows = 0;
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                rows += 1;
                let data = CopyData::new(bytes::Bytes::from(line));
                client.feed(PgWireBackendMessage::CopyData(data)).await?;
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(Ok(rows))
}

/// A COPY TO as pgwire sends it (only the unused default path: on an error
/// pgwire sends CopyFail, which PostgreSQL clients do not expect from a server).
pub(super) fn copy_out_response(copy: CopyOut) -> CopyResponse {
    let columns = copy.columns;
    let data = copy.lines().map(|line| {
        line.map(|l| CopyData::new(bytes::Bytes::from(l)))
            .map_err(|e| user_error(&e))
    });
    CopyResponse::new(0, columns, data)
}

pub(super) fn copy_in(c: &CopyIn) -> CopyResponse {
    CopyResponse::new(c.format.wire_format(), c.columns(), stream::empty())
}

/// ParameterStatus for each reported setting a statement changed (`SET
/// TimeZone`, `SET client_encoding`, `set_config(...)`), sent before
/// ReadyForQuery as PostgreSQL 15 sends them: drivers decode by these values.
pub(super) async fn send_parameter_statuses<C>(
    client: &mut C,
    reports: Vec<(String, String)>,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in reports {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name, value,
            )))
            .await?;
    }
    Ok(())
}

/// Sends a NOTICE (SQLSTATE 00000) before a command's completion.
pub(super) async fn send_notice<C>(client: &mut C, notice: Option<String>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if let Some(message) = notice {
        let info = ErrorInfo::new("NOTICE".into(), "00000".into(), message);
        client
            .feed(PgWireBackendMessage::NoticeResponse(info.into()))
            .await?;
    }
    Ok(())
}
