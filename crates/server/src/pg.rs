//! The PostgreSQL wire protocol front end (pgwire): authentication and the
//! simple query protocol. Each connection gets its own executor session.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream;
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use tidemark_executor::arrow::datatypes::DataType;
use tidemark_executor::text::format_value;
use tidemark_executor::{ExecError, Output, Session};
use tidemark_storage::Database;
use tokio::sync::Mutex;

use crate::config::AuthSection;

const SCRAM_ITERATIONS: usize = 4096;

/// The configured user and what its password hashes to.
#[derive(Debug)]
pub(crate) struct Users {
    user: String,
    password: String,
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl Users {
    pub(crate) fn new(auth: &AuthSection) -> Self {
        let salt: Vec<u8> = std::process::id()
            .to_le_bytes()
            .iter()
            .chain(b"tidemark")
            .copied()
            .collect();
        let salted = gen_salted_password(&auth.password, &salt, SCRAM_ITERATIONS);
        Users {
            user: auth.user.clone(),
            password: auth.password.clone(),
            salt,
            salted,
        }
    }
}

#[derive(Debug)]
struct ScramSource(Arc<Users>);

#[async_trait]
impl AuthSource for ScramSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // An unknown user gets a password nobody can know, so the failure looks the same.
        if login.user() != Some(self.0.user.as_str()) {
            let salted = gen_salted_password(
                &format!("{:?}", std::time::Instant::now()),
                &self.0.salt,
                SCRAM_ITERATIONS,
            );
            return Ok(Password::new(Some(self.0.salt.clone()), salted));
        }
        Ok(Password::new(
            Some(self.0.salt.clone()),
            self.0.salted.clone(),
        ))
    }
}

#[derive(Debug)]
struct CleartextSource(Arc<Users>);

#[async_trait]
impl AuthSource for CleartextSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        if login.user() != Some(self.0.user.as_str()) {
            return Ok(Password::new(
                None,
                format!("{:?}", std::time::Instant::now()).into_bytes(),
            ));
        }
        Ok(Password::new(None, self.0.password.clone().into_bytes()))
    }
}

/// Hands every connection its handlers (and its own session).
#[derive(Debug)]
pub(crate) struct Handlers {
    pub(crate) db: Arc<Database>,
    pub(crate) users: Arc<Users>,
    pub(crate) scram: bool,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(Connection {
            session: Mutex::new(Session::new(self.db.clone())),
        })
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        let params = Arc::new(server_parameters());
        if self.scram {
            let mut scram = ScramAuth::new(Arc::new(ScramSource(self.users.clone())));
            scram.set_iterations(SCRAM_ITERATIONS);
            Arc::new(Startup::Scram(
                SASLAuthStartupHandler::new(params).with_scram(scram),
            ))
        } else {
            Arc::new(Startup::Cleartext(
                CleartextPasswordAuthStartupHandler::new(
                    CleartextSource(self.users.clone()),
                    params,
                ),
            ))
        }
    }
}

fn server_parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = format!("15.0 (Tidemark {})", env!("CARGO_PKG_VERSION"));
    p
}

/// The authentication method chosen in configuration.
enum Startup {
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
    Cleartext(
        CleartextPasswordAuthStartupHandler<CleartextSource, Arc<DefaultServerParameterProvider>>,
    ),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Scram(h) => h.on_startup(client, message).await,
            Startup::Cleartext(h) => h.on_startup(client, message).await,
        }
    }
}

struct Connection {
    session: Mutex<Session>,
}

fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::FixedSizeBinary(16) => Type::UUID,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        _ => Type::VARCHAR,
    }
}

pub(crate) fn error_response(e: &ExecError) -> PgWireError {
    let mut info = ErrorInfo::new(
        "ERROR".to_string(),
        e.sqlstate.to_string(),
        e.message.clone(),
    );
    info.position = e.position.map(|p| p.to_string());
    PgWireError::UserError(Box::new(info))
}

fn response(output: Output) -> PgWireResult<Response> {
    match output {
        Output::Command { tag } => {
            // "INSERT 0 3" -> command "INSERT", oid 0, rows 3; "DELETE 2" -> "DELETE", 2.
            let mut parts = tag.rsplitn(2, ' ');
            let last = parts.next().unwrap_or_default();
            match (last.parse::<usize>(), parts.next()) {
                (Ok(rows), Some(rest)) => match rest.strip_suffix(" 0") {
                    Some(cmd) => Ok(Response::Execution(
                        Tag::new(cmd).with_oid(0).with_rows(rows),
                    )),
                    None => Ok(Response::Execution(Tag::new(rest).with_rows(rows))),
                },
                _ => Ok(Response::Execution(Tag::new(&tag))),
            }
        }
        Output::Rows { schema, batches } => {
            let fields: Vec<FieldInfo> = schema
                .fields()
                .iter()
                .map(|f| {
                    FieldInfo::new(
                        f.name().clone(),
                        None,
                        None,
                        pg_type(f.data_type()),
                        FieldFormat::Text,
                    )
                })
                .collect();
            let fields = Arc::new(fields);
            let mut rows = Vec::new();
            for b in &batches {
                for r in 0..b.num_rows() {
                    let mut encoder = DataRowEncoder::new(fields.clone());
                    for c in b.columns() {
                        let v = format_value(c, r).map_err(|e| error_response(&e))?;
                        encoder.encode_field(&v)?;
                    }
                    rows.push(Ok(encoder.take_row()));
                }
            }
            Ok(Response::Query(QueryResponse::new(
                fields,
                stream::iter(rows),
            )))
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
    {
        let mut session = self.session.lock().await;
        let (outputs, error) = session.execute_script(query).await;
        let mut responses = Vec::with_capacity(outputs.len() + 1);
        for o in outputs {
            responses.push(response(o)?);
        }
        if let Some(e) = error {
            responses.push(Response::Error(Box::new(match error_response(&e) {
                PgWireError::UserError(info) => *info,
                _ => ErrorInfo::new("ERROR".into(), "XX000".into(), e.message),
            })));
        }
        Ok(responses)
    }
}
