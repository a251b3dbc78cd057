//! Execute of the extended query protocol with rows streamed to the client.
//!
//! pgwire's default Execute gathers every row of an unlimited fetch in memory
//! before sending the first; this one sends rows as the portal's stream
//! produces them, and keeps the stream in the portal when Execute asks for at
//! most `max_rows` (PortalSuspended; the next Execute goes on from there).
//! Cancel and the statement timeout are the handler's: the portal's stream
//! carries them.

use std::fmt::Debug;
use std::ops::DerefMut;
use std::sync::Arc;

use futures::sink::{Sink, SinkExt};
use futures::stream::StreamExt;
use pgwire::api::portal::{Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, send_execution_response};
use pgwire::api::results::{Response, Tag};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, copy};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::RowDescription;
use pgwire::messages::extendedquery::{Execute, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;
use tidemark_executor::error::sqlstate;
use tidemark_executor::{ExecError, Motion, Prepared};

use super::handler::Connection;
use super::results::Failure;

pub(super) async fn execute<H, C>(handler: &H, client: &mut C, message: Execute) -> PgWireResult<()>
where
    H: ExtendedQueryHandler,
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = H::Statement>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
        return Err(PgWireError::NotReadyForQuery);
    }
    client.set_state(PgWireConnectionState::QueryInProgress);
    let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
    // 0 (or a negative count, which PostgreSQL treats alike): no limit.
    let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
    let portal = match client.portal_store().get_portal(name) {
        Some(Entry::Value(portal)) => portal,
        Some(Entry::Empty) => {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
            client.set_state(PgWireConnectionState::ReadyForQuery);
            return Ok(());
        }
        None => return Err(PgWireError::PortalNotFound(name.to_owned())),
    };
    let state = portal.state();
    let mut state = state.lock().await;
    if matches!(*state, PortalExecutionState::Initial) {
        match handler.do_query(client, portal.as_ref(), max_rows).await? {
            Response::Query(rows) => *state = PortalExecutionState::Suspended(rows),
            other => {
                *state = PortalExecutionState::Finished;
                send_other(client, other).await?;
                if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
                    client.set_state(PgWireConnectionState::ReadyForQuery);
                }
                return Ok(());
            }
        }
    }
    let (tag, sent, suspended) = match state.deref_mut() {
        PortalExecutionState::Suspended(response) => {
            let tag = response.command_tag().to_owned();
            let rows = response.data_rows();
            let mut sent = 0;
            let mut suspended = true;
            while max_rows == 0 || sent < max_rows {
                match rows.next().await {
                    Some(Ok(row)) => {
                        client.feed(PgWireBackendMessage::DataRow(row)).await?;
                        sent += 1;
                    }
                    Some(Err(e)) => {
                        *state = PortalExecutionState::Finished;
                        return Err(e);
                    }
                    None => {
                        suspended = false;
                        break;
                    }
                }
            }
            (tag, sent, suspended)
        }
        // Executed to its end already: no more rows.
        _ => ("SELECT".to_string(), 0, false),
    };
    if suspended {
        client
            .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
            .await?;
    } else {
        *state = PortalExecutionState::Finished;
        let tag = Tag::new(&tag).with_rows(sent);
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
    }
    client.set_state(PgWireConnectionState::ReadyForQuery);
    Ok(())
}

/// What a statement without a row stream answers.
async fn send_other<C>(client: &mut C, response: Response) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match response {
        Response::Query(_) => Ok(()),
        Response::EmptyQuery => Ok(client
            .feed(PgWireBackendMessage::EmptyQueryResponse(
                EmptyQueryResponse::new(),
            ))
            .await?),
        Response::Execution(tag)
        | Response::TransactionStart(tag)
        | Response::TransactionEnd(tag) => send_execution_response(client, tag).await,
        Response::Error(e) => Err(PgWireError::UserError(e)),
        Response::CopyIn(r) => {
            client.set_state(PgWireConnectionState::CopyInProgress(true));
            copy::send_copy_in_response(client, r).await
        }
        Response::CopyOut(r) => copy::send_copy_out_response(client, r).await,
        Response::CopyBoth(r) => {
            client.set_state(PgWireConnectionState::CopyInProgress(true));
            copy::send_copy_both_response(client, r).await
        }
    }
}

/// FETCH or MOVE in a simple query on portal `portal` of the extended
/// protocol (see `Connection::move_portal`). A portal only bound is run
/// first; rows come from its stream as Execute would send them (in its
/// result formats, after its row description), and the portal stays where
/// the motion left it for later Executes. Returns the statement's error, to
/// send before ReadyForQuery.
pub(super) async fn fetch<C>(
    conn: &Connection,
    client: &mut C,
    portal: Arc<Portal<Prepared>>,
    motion: Motion,
) -> PgWireResult<Result<(), ExecError>>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let command = if motion.move_only { "MOVE" } else { "FETCH" };
    let no_rows = || {
        ExecError::new(
            sqlstate::INVALID_CURSOR_STATE,
            format!("portal \"{}\" does not return rows", motion.cursor),
        )
    };
    if !portal.statement.statement.returns_rows() {
        return Ok(Err(no_rows()));
    }
    let failure = Failure::default();
    let state = portal.state();
    let mut state = state.lock().await;
    if matches!(*state, PortalExecutionState::Initial) {
        match conn.run_portal(client, &portal, &failure).await? {
            Ok(Response::Query(rows)) => *state = PortalExecutionState::Suspended(rows),
            Ok(_) => {
                *state = PortalExecutionState::Finished;
                return Ok(Err(no_rows()));
            }
            Err(e) => {
                *state = PortalExecutionState::Finished;
                return Ok(Err(e));
            }
        }
    }
    // Executed to its end by Execute: nothing is left (and its columns are
    // no longer at hand, so FETCH sends none).
    let PortalExecutionState::Suspended(response) = state.deref_mut() else {
        let tag = Tag::new(command).with_rows(0);
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
        return Ok(Ok(()));
    };
    if !motion.move_only {
        let fields = response.row_schema();
        let description = RowDescription::new(fields.iter().map(Into::into).collect());
        client
            .feed(PgWireBackendMessage::RowDescription(description))
            .await?;
    }
    let rows = response.data_rows();
    let mut passed = 0u64;
    let mut taken = 0u64;
    let mut ended = false;
    while passed < motion.skip || motion.take.is_none_or(|n| taken < n) {
        match rows.next().await {
            Some(Ok(_)) if passed < motion.skip => passed += 1,
            Some(Ok(row)) => {
                if !motion.move_only {
                    client.feed(PgWireBackendMessage::DataRow(row)).await?;
                }
                taken += 1;
            }
            Some(Err(e)) => {
                *state = PortalExecutionState::Finished;
                return failure.outcome(Err(e));
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    if ended {
        // Polled again by a later FETCH or Execute, it yields nothing.
        *rows = Box::pin(futures::stream::empty());
    }
    let tag = Tag::new(command).with_rows(taken as usize);
    client
        .feed(PgWireBackendMessage::CommandComplete(tag.into()))
        .await?;
    Ok(Ok(()))
}
