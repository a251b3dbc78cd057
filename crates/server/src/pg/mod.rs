//! The PostgreSQL wire protocol front end (pgwire), as a module tree:
//! `auth` (startup, users, limits), `handler` (simple and extended query,
//! COPY, cancel and timeouts), `types` (values on the wire). Each connection
//! gets its own handlers over one executor session.

mod auth;
mod handler;
pub(crate) mod password;
mod portal;
mod results;
mod types;

use std::sync::Arc;
use std::time::Duration;

use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ConnectionManager, NoopHandler, PgWireServerHandlers};
use tidemark_storage::Database;

pub(crate) use auth::{Authenticated, Users};

use crate::metrics::Metrics;

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) db: Arc<Database>,
    pub(crate) backups: Arc<tidemark_backup::Backups>,
    pub(crate) users: Arc<Users>,
    pub(crate) auth_method: String,
    pub(crate) max_connections: usize,
    pub(crate) statement_timeout: Duration,
    /// `server.max_message_mb` in bytes.
    pub(crate) max_message_bytes: usize,
    pub(crate) tls_required: bool,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) manager: Arc<ConnectionManager>,
    /// The query memory pool every session shares (`server.query_memory_mb`).
    pub(crate) query_runtime: Arc<tidemark_executor::RuntimeEnv>,
    /// The configuration, for SHOW PARAMETERS.
    pub(crate) parameters: Arc<Vec<tidemark_executor::ServerParameter>>,
    /// The connections and what they run (`pg_stat_activity`).
    pub(crate) activity: Arc<tidemark_executor::activity::ActivityBoard>,
    /// Gives each connection its own process id (BackendKeyData,
    /// `pg_backend_pid()`): one for the server, as pgwire's handlers would
    /// each count from the same first id.
    pub(crate) pids: Arc<pgwire::api::RandomPidSecretKeyGenerator>,
}

/// One connection's handlers.
pub(crate) struct ConnectionHandlers {
    shared: Arc<Shared>,
    conn: Arc<handler::Connection>,
}

impl ConnectionHandlers {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ConnectionHandlers {
            conn: Arc::new(handler::Connection::new(shared.clone())),
            shared,
        }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.conn.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::new(handler::Extended {
            conn: self.conn.clone(),
        })
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(auth::Startup::new(
            self.shared.clone(),
            self.shared.manager.clone(),
        ))
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.conn.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.shared.manager.clone()))
    }

    fn error_handler(&self) -> Arc<impl pgwire::api::ErrorHandler> {
        Arc::new(NoopHandler)
    }
}
