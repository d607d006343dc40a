//! Building and running the service: keys, store and migrations, the audit writer, issuers'
//! keys, then the listener. `build` binds before returning, so port 0 gives a real port.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::dev::{Server, ServerHandle, Service, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::{App, HttpServer, web};
use arc_swap::ArcSwap;

use crate::audit::AuditWriter;
use crate::clock::Clock;
use crate::config::Config;
use crate::issuers::Fetcher;
use crate::keys::SigningKeys;
use crate::pre_auth::PreAuthLimiter;
use crate::state::{AppState, Policy};
use crate::store::Store;

/// Pending connections the kernel queues for accept (the std default of 128 drops SYNs under
/// a burst of connections).
const BACKLOG: u32 = 2048;

/// How long one JWKS or discovery request to an identity provider may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Keys(#[from] crate::keys::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Writer(#[from] crate::audit::writer::Error),
    #[error(transparent)]
    Fetcher(#[from] crate::issuers::fetch::Error),
    #[error("cannot listen on {address} ({setting})")]
    Listen {
        address: String,
        setting: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the listener has no address")]
    NoAddress,
    #[error("cannot listen for SIGHUP")]
    Signals(#[source] std::io::Error),
    #[error("no random bytes for the console's session key")]
    Random(#[source] crate::ids::RandomFailed),
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        crate::error::chain(&e)
    }
}

pub struct Application {
    port: u16,
    server: Server,
    admin: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

/// Stops both listeners.
#[derive(Clone)]
pub struct AppHandle {
    public: ServerHandle,
    admin: Option<ServerHandle>,
    state: web::Data<AppState>,
}

impl AppHandle {
    pub async fn stop(&self, graceful: bool) {
        self.state.stopping.store(true, Ordering::SeqCst);
        if let Some(admin) = &self.admin {
            admin.stop(graceful).await;
        }
        self.public.stop(graceful).await;
    }
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, Error> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As `build`, judging requests (token lifetimes, assertion and proof windows, the minted
    /// tokens' `iat`) at the time `clock` tells.
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, Error> {
        crate::install_crypto_provider();
        let keys = SigningKeys::load(&config.signing)?;
        let store = open_store(&config)?;
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let audit = Arc::new(AuditWriter::start(store.clone(), metrics.clone())?);
        crate::audit::retention::spawn(
            store.clone(),
            config.storage.retention,
            metrics.clone(),
            &tokio::runtime::Handle::current(),
        );
        let fetcher = Fetcher::new(FETCH_TIMEOUT, metrics.clone())?;
        let policy = Policy::build(
            &config,
            &keys,
            fetcher.clone(),
            tokio::runtime::Handle::current(),
            None,
        )
        .await;
        policy.issuers.spawn_refreshers();
        policy.client_keys.spawn_refreshers();
        let state = web::Data::new(AppState {
            clock,
            stopping: AtomicBool::new(false),
            metrics,
            config_file: config.file.clone(),
            fetcher,
            server: config.server.clone(),
            admin_token_sha256: config.admin.as_ref().map(|a| a.token_sha256),
            keys,
            policy: ArcSwap::from_pointee(policy),
            audit,
            store,
            condition_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            )),
            pre_auth: Arc::new(PreAuthLimiter::new(config.server.pre_auth_limit)),
        });
        spawn_summaries(state.pre_auth.clone(), state.audit.clone());
        crate::reload::on_sighup(state.clone(), &tokio::runtime::Handle::current())
            .map_err(Error::Signals)?;
        let (port, server) = listen_public(&config, &state)?;
        let admin = match &config.admin {
            None => None,
            Some(admin) => Some(listen_admin(&admin.listen, &config.console, &state)?),
        };
        let app = Self {
            port,
            server,
            admin,
            state,
        };
        stop_on_signals(app.handle());
        Ok(app)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().map(|(port, _)| *port)
    }

    /// Stops the listeners gracefully when called (SIGTERM and Ctrl-C do the same).
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            public: self.server.handle(),
            admin: self.admin.as_ref().map(|(_, s)| s.handle()),
            state: self.state.clone(),
        }
    }

    /// Serves until stopped; requests in flight finish and their records are committed
    /// before this returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = match self.admin {
            None => self.server.await,
            Some((_, admin)) => {
                let (public, admin) = futures_util::future::join(self.server, admin).await;
                public.and(admin)
            }
        };
        commit_summaries(&self.state.pre_auth, &self.state.audit, true).await;
        self.state.audit.close().await;
        tracing::info!("tessera stopped");
        result
    }
}

/// Summary records of refusals before authentication are committed as their minutes end.
fn spawn_summaries(limiter: Arc<PreAuthLimiter>, audit: Arc<AuditWriter>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            commit_summaries(&limiter, &audit, false).await;
        }
    });
}

async fn commit_summaries(limiter: &PreAuthLimiter, audit: &AuditWriter, everything: bool) {
    for record in limiter.summaries(crate::clock::now().micros(), everything) {
        tracing::info!(
            remote_addr = record.remote_addr.as_deref().unwrap_or("-"),
            requests = record.count,
            "requests refused before client authentication, summarised"
        );
        if let Err(e) = audit.commit(record).await {
            crate::telemetry::repeated::error(
                "summary record not recorded",
                &crate::error::chain(&e),
            );
        }
    }
}

/// After shutdown begins, every response closes its connection.
fn close_when_stopping<S>(
    req: ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
    S::Future: 'static,
{
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = service.call(req);
    async move {
        let mut response = response.await?;
        if state.is_some_and(|s| s.stopping.load(Ordering::Relaxed)) {
            response
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        Ok(response)
    }
}

/// SIGTERM and Ctrl-C stop the listeners gracefully: no new connections, requests in flight
/// finish, their records are committed.
fn stop_on_signals(handle: AppHandle) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = terminate => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: finishing requests in flight");
        handle.stop(true).await;
    });
}

/// The store, its schema current and its audit queries under their budget.
fn open_store(config: &Config) -> Result<Store, Error> {
    let store =
        Store::open(&config.storage.url)?.with_audit_budget(config.storage.audit_query_budget);
    let applied = store.prepare_for_serving()?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    if !store.returns_free_space()? {
        tracing::warn!(
            "space freed by retention stays in the SQLite file (it was made before \
             incremental vacuum): run `tessera migrate` once, with the service stopped, to \
             convert it"
        );
    }
    Ok(store)
}

/// The public listener (`server.listen`): its port and its server.
fn listen_public(config: &Config, state: &web::Data<AppState>) -> Result<(u16, Server), Error> {
    let app_state = state.clone();
    let listening = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap_fn(close_when_stopping)
            .configure(crate::http::routes)
    })
    .disable_signals()
    .backlog(BACKLOG)
    .client_request_timeout(config.server.request_header_timeout)
    .keep_alive(config.server.keep_alive)
    .max_connections(config.server.max_connections)
    .bind(&config.server.listen)
    .map_err(|source| Error::Listen {
        address: config.server.listen.clone(),
        setting: "server.listen",
        source,
    })?;
    let port = bound_port(listening.addrs())?;
    let server = listening.shutdown_timeout(30).run();
    tracing::info!(listen = %config.server.listen, port, issuer = %config.server.issuer, "tessera is listening");
    Ok((port, server))
}

/// The admin listener (`admin.listen`), one worker: its port and its server.
fn listen_admin(
    listen: &str,
    console: &crate::config::ConsoleConfig,
    state: &web::Data<AppState>,
) -> Result<(u16, Server), Error> {
    let admin_state = state.clone();
    let session_key = web::Data::new(
        crate::console::SessionKey::random(console.secure()).map_err(Error::Random)?,
    );
    let sign_in = web::Data::new(crate::console::SignInConfig::new(console));
    let verification = web::Data::new(crate::console::Verification::default());
    let sign_in_failures = web::Data::new(crate::console::SignInFailures::default());
    let listening = HttpServer::new(move || {
        App::new()
            .app_data(admin_state.clone())
            .app_data(session_key.clone())
            .app_data(verification.clone())
            .app_data(sign_in_failures.clone())
            .app_data(sign_in.clone())
            // The console's forms: a pasted token or claims for "try it" at most.
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .configure(crate::http::admin::routes)
            .configure(crate::console::routes)
    })
    .workers(1)
    .disable_signals()
    .bind(listen)
    .map_err(|source| Error::Listen {
        address: listen.to_string(),
        setting: "admin.listen",
        source,
    })?;
    let port = bound_port(listening.addrs())?;
    let server = listening.shutdown_timeout(30).run();
    tracing::info!(listen = %listen, port, "admin API is listening");
    Ok((port, server))
}

/// The port a listener actually got (the configuration may say 0).
fn bound_port(addrs: Vec<std::net::SocketAddr>) -> Result<u16, Error> {
    addrs.first().map(|a| a.port()).ok_or(Error::NoAddress)
}
