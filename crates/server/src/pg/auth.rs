//! Authentication: SCRAM-SHA-256 (default), md5 or cleartext; the configured
//! user and an optional read-only user; the connection limit and mandatory
//! TLS, both checked when the startup packet arrives.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::auth::md5pass::{Md5PasswordAuthStartupHandler, hash_md5_password};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::{ClientInfo, ConnectionManager};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::Shared;
use super::password::{Credential, SCRAM_ITERATIONS, ScramKeys, constant_time_eq};
use crate::config::AuthSection;

/// A user who may log in.
#[derive(Debug)]
struct User {
    name: String,
    credential: Credential,
    /// What SCRAM checks against, derived once at start.
    scram: ScramKeys,
    read_only: bool,
}

/// The users from configuration.
#[derive(Debug)]
pub(crate) struct Users {
    users: Vec<User>,
    /// Passwords that matched a user's SCRAM verifier: checking one costs
    /// thousands of hash rounds, too much for every HTTP request.
    verified: std::sync::Mutex<Vec<(String, String)>>,
}

/// Who an HTTP request's credentials name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticated {
    pub(crate) user: String,
    pub(crate) read_only: bool,
}

impl Users {
    /// The configured users; an error names the key whose password cannot be used
    /// with the configured method.
    pub(crate) fn new(auth: &AuthSection) -> Result<Self, String> {
        let salt: Vec<u8> = rand_bytes(16);
        let mut users = vec![("auth.password", &auth.user, &auth.password, false)];
        if !auth.readonly_user.is_empty() {
            users.push((
                "auth.readonly_password",
                &auth.readonly_user,
                &auth.readonly_password,
                true,
            ));
        }
        let users = users
            .into_iter()
            .map(|(key, name, password, read_only)| {
                let credential = Credential::parse(password)
                    .map_err(|e| format!("{key}: not a usable SCRAM verifier: {e}"))?;
                if auth.method == "md5" && matches!(credential, Credential::Verifier(_)) {
                    return Err(format!(
                        "{key} is a SCRAM verifier, which auth.method = \"md5\" cannot check: \
                         use scram-sha-256 or give the password itself"
                    ));
                }
                Ok(User {
                    scram: credential.scram_keys(&salt),
                    name: name.clone(),
                    credential,
                    read_only,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Users {
            users,
            verified: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Checks a user name and password presented in clear (HTTP Basic, a
    /// token, `u`/`p`), against the same users as the PostgreSQL side. May take
    /// milliseconds (a SCRAM verifier is checked by hashing): call it off the
    /// async threads.
    pub(crate) fn check_password(&self, name: &str, password: &str) -> Option<Authenticated> {
        let user = self.find(Some(name))?;
        let known = |v: &Vec<(String, String)>| {
            v.iter()
                .any(|(n, p)| n == name && constant_time_eq(p.as_bytes(), password.as_bytes()))
        };
        let ok = match &user.credential {
            Credential::Clear(_) => user.credential.matches(password),
            Credential::Verifier(_) => {
                let cached = self.verified.lock().map(|v| known(&v)).unwrap_or(false);
                cached || {
                    let ok = user.credential.matches(password);
                    if ok && let Ok(mut v) = self.verified.lock() {
                        // Bounded: one entry per user is all a correct client needs.
                        v.retain(|(n, _)| n != name);
                        v.push((name.to_string(), password.to_string()));
                    }
                    ok
                }
            }
        };
        ok.then(|| Authenticated {
            user: user.name.clone(),
            read_only: user.read_only,
        })
    }

    fn find(&self, name: Option<&str>) -> Option<&User> {
        self.users.iter().find(|u| Some(u.name.as_str()) == name)
    }

    /// The users, as the catalog's roles (`pg_roles`, psql's `\du`).
    pub(crate) fn catalog_roles(&self) -> Vec<tidemark_executor::pg_catalog::CatalogRole> {
        self.users
            .iter()
            .map(|u| tidemark_executor::pg_catalog::CatalogRole {
                name: u.name.clone(),
                read_only: u.read_only,
            })
            .collect()
    }

    /// Whether `name` is the read-only user.
    pub(crate) fn is_read_only(&self, name: &str) -> bool {
        self.find(Some(name)).is_some_and(|u| u.read_only)
    }
}

/// Random bytes for salts (an unknown user gets a random secret too, so that
/// a failed login looks the same whether or not the user exists).
fn rand_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

#[derive(Debug)]
struct ScramSource(Arc<Users>);

#[async_trait]
impl AuthSource for ScramSource {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        // Not called: `get_scram_secret` answers for SCRAM.
        Ok(Password::new(Some(rand_bytes(16)), rand_bytes(32)))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let secret = match self.0.find(login.user()) {
            Some(u) => u.scram.secret(),
            // An unknown user goes through the same exchange and fails at the proof.
            None => ScramSecret::SaltedPassword {
                salt: rand_bytes(16),
                salted_password: rand_bytes(32),
            },
        };
        Ok((secret, None))
    }
}

#[derive(Debug)]
struct Md5Source(Arc<Users>);

#[async_trait]
impl AuthSource for Md5Source {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let salt = rand_bytes(4);
        let user = login.user().unwrap_or_default();
        let hash = match self.0.find(login.user()).map(|u| &u.credential) {
            Some(Credential::Clear(password)) => hash_md5_password(user, password, &salt),
            // Verifiers are refused with md5 at start; unknown users never match.
            Some(Credential::Verifier(_)) | None => format!("{:?}", rand_bytes(16)),
        };
        Ok(Password::new(Some(salt), hash.into_bytes()))
    }
}

#[derive(Debug)]
struct CleartextSource(Arc<Users>);

#[async_trait]
impl AuthSource for CleartextSource {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        // Not called: `verify_password` checks the presented password itself.
        Ok(Password::new(None, rand_bytes(24)))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<()>> {
        let presented = String::from_utf8_lossy(presented);
        match self.0.find(login.user()) {
            Some(u) if u.credential.matches(&presented) => Ok(None),
            _ => Err(PgWireError::InvalidPassword(
                login.user().unwrap_or_default().to_owned(),
            )),
        }
    }
}

fn server_parameters() -> Arc<DefaultServerParameterProvider> {
    let mut p = DefaultServerParameterProvider::default();
    // As `SHOW TimeZone` says (and later ParameterStatus messages report).
    p.time_zone = "UTC".to_string();
    p.server_version = format!(
        "{} (Tidemark {})",
        tidemark_executor::PG_SERVER_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    Arc::new(p)
}

/// The authentication method chosen in configuration.
enum Method {
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
    Md5(Md5PasswordAuthStartupHandler<Md5Source, DefaultServerParameterProvider>),
    Cleartext(
        CleartextPasswordAuthStartupHandler<CleartextSource, Arc<DefaultServerParameterProvider>>,
    ),
}

/// Checks the connection limit and TLS, then authenticates.
pub(crate) struct Startup {
    method: Method,
    shared: Arc<Shared>,
}

impl Startup {
    pub(crate) fn new(shared: Arc<Shared>, manager: Arc<ConnectionManager>) -> Self {
        let params = server_parameters();
        let users = shared.users.clone();
        let method = match shared.auth_method.as_str() {
            "md5" => Method::Md5(
                Md5PasswordAuthStartupHandler::new(Arc::new(Md5Source(users)), params)
                    .with_connection_manager(manager)
                    .with_pid_secret_key_generator(shared.pids.clone()),
            ),
            "cleartext" => Method::Cleartext(
                CleartextPasswordAuthStartupHandler::new(CleartextSource(users), params)
                    .with_connection_manager(manager)
                    .with_pid_secret_key_generator(shared.pids.clone()),
            ),
            _ => {
                let mut scram = ScramAuth::new(Arc::new(ScramSource(users)));
                scram.set_iterations(SCRAM_ITERATIONS);
                Method::Scram(
                    SASLAuthStartupHandler::new(params)
                        .with_scram(scram)
                        .with_connection_manager(manager)
                        .with_pid_secret_key_generator(shared.pids.clone()),
                )
            }
        };
        Startup { method, shared }
    }
}

fn fatal(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message.into(),
    )))
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + futures::Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            if self.shared.tls_required && !client.is_secure() {
                return Err(fatal(
                    "28000",
                    "this server requires SSL: connect with sslmode=require",
                ));
            }
            // Accepted and not yet closed, this one included.
            let open = self.shared.metrics.connections_open.load(Ordering::Relaxed);
            if open > self.shared.max_connections as u64 {
                return Err(fatal("53300", "sorry, too many clients already"));
            }
            if !startup.parameters.contains_key("user") {
                return Err(fatal(
                    "28000",
                    "no PostgreSQL user name specified in startup packet",
                ));
            }
        }
        let result = match &self.method {
            Method::Scram(h) => h.on_startup(client, message).await,
            Method::Md5(h) => h.on_startup(client, message).await,
            Method::Cleartext(h) => h.on_startup(client, message).await,
        };
        result.map_err(|e| match e {
            // SCRAM names the user of its own messages, which libpq leaves empty
            // (the user is in the startup packet): name the one who logged in.
            PgWireError::InvalidPassword(user) if user.is_empty() => PgWireError::InvalidPassword(
                client
                    .metadata()
                    .get(pgwire::api::METADATA_USER)
                    .cloned()
                    .unwrap_or_default(),
            ),
            e => e,
        })
    }
}
