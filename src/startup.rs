//! Building and running the service: keys, store and migrations, the audit writer, issuers'
//! keys, then the listener. `build` binds before returning, so port 0 gives a real port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use arc_swap::ArcSwap;

use crate::audit::AuditWriter;
use crate::config::{Config, KeySource};
use crate::issuers::Fetcher;
use crate::keys::SigningKeys;
use crate::state::{AppState, Policy};
use crate::store::Store;

/// How long one JWKS or discovery request to an identity provider may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What `check`, `serve` and a reload validate beyond the file itself: the signing keys and
/// JWKS files it names.
pub fn check_files(config: &Config) -> Result<SigningKeys, String> {
    let keys = SigningKeys::load(&config.signing)?;
    for issuer in &config.issuers {
        if let KeySource::File(file) = &issuer.keys {
            let bytes = std::fs::read(file)
                .map_err(|e| format!("{}: issuer \"{}\": {e}", file.display(), issuer.id))?;
            let (usable, _) = crate::issuers::jwks::parse(&bytes)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            if usable.is_empty() {
                return Err(format!(
                    "{}: issuer \"{}\": the JWKS holds no usable key",
                    file.display(),
                    issuer.id
                ));
            }
        }
    }
    Ok(keys)
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
}

impl AppHandle {
    pub async fn stop(&self, graceful: bool) {
        if let Some(admin) = &self.admin {
            admin.stop(graceful).await;
        }
        self.public.stop(graceful).await;
    }
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, String> {
        crate::install_crypto_provider();
        let keys = SigningKeys::load(&config.signing)?;
        let store = Store::open(&config.storage.url)?;
        let applied = store.migrate()?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        let audit = Arc::new(AuditWriter::start(store.clone())?);
        crate::audit::retention::spawn(
            store.clone(),
            config.storage.retention,
            &tokio::runtime::Handle::current(),
        );
        let fetcher = Fetcher::new(FETCH_TIMEOUT)?;
        let policy = Policy::build(
            &config,
            &keys,
            fetcher.clone(),
            tokio::runtime::Handle::current(),
            None,
        )
        .await;
        policy.issuers.spawn_refreshers();
        let listener = TcpListener::bind(&config.server.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let state = web::Data::new(AppState {
            config_file: config.file.clone(),
            fetcher,
            server: config.server.clone(),
            admin_token_sha256: config.admin.as_ref().map(|a| a.token_sha256),
            keys,
            policy: ArcSwap::from_pointee(policy),
            audit,
            store,
        });
        crate::reload::on_sighup(state.clone(), &tokio::runtime::Handle::current())?;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .configure(crate::http::routes)
        })
        .listen(listener)
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?
        .shutdown_timeout(30)
        .run();
        tracing::info!(listen = %config.server.listen, port, issuer = %config.server.issuer, "tessera is listening");
        let admin = match &config.admin {
            None => None,
            Some(admin) => {
                let listener = TcpListener::bind(&admin.listen).map_err(|e| {
                    format!("cannot listen on {} (admin.listen): {e}", admin.listen)
                })?;
                let admin_port = listener.local_addr().map_err(|e| e.to_string())?.port();
                let admin_state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(admin_state.clone())
                        .configure(crate::http::admin::routes)
                })
                .workers(1)
                .listen(listener)
                .map_err(|e| format!("cannot listen on {} (admin.listen): {e}", admin.listen))?
                .shutdown_timeout(30)
                .run();
                tracing::info!(listen = %admin.listen, port = admin_port, "admin API is listening");
                Some((admin_port, server))
            }
        };
        Ok(Self {
            port,
            server,
            admin,
            state,
        })
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
        self.state.audit.close().await;
        tracing::info!("tessera stopped");
        result
    }
}
