//! Hot reload (SPEC §2): on SIGHUP the configuration file is read and checked in full, then
//! the issuers, clients and rules are swapped in at once. A bad file is logged and changes
//! nothing. Requests in flight finish under the policy they took at their start, and issuers
//! whose settings did not change keep their cached keys.

use std::sync::Arc;

use actix_web::web;

use crate::state::{AppState, Policy};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Files(#[from] crate::state::FilesError),
}

/// Reads the configuration file again and swaps in its policy, or says why it did not.
pub async fn reload(state: &AppState) -> Result<(), Error> {
    let config = crate::config::load(&state.config_file)?;
    crate::state::check_files(&config)?;
    if config.server != state.server {
        tracing::warn!(
            "changes to [server] take effect at the next restart; issuers, clients and rules are reloaded"
        );
    }
    let previous = state.policy.load_full();
    let policy = Policy::build(
        &config,
        &state.keys,
        state.fetcher.clone(),
        tokio::runtime::Handle::current(),
        Some(&previous),
    )
    .await;
    policy.issuers.spawn_refreshers();
    policy.client_keys.spawn_refreshers();
    state.policy.store(Arc::new(policy));
    Ok(())
}

/// Reloads on every SIGHUP for as long as the runtime runs.
#[cfg(unix)]
pub fn on_sighup(
    state: web::Data<AppState>,
    runtime: &tokio::runtime::Handle,
) -> Result<(), std::io::Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let _guard = runtime.enter();
    let mut hangups = signal(SignalKind::hangup())?;
    runtime.spawn(async move {
        while hangups.recv().await.is_some() {
            let reloaded = reload(&state).await;
            state.metrics.reload(reloaded.is_ok());
            match reloaded {
                Ok(()) => tracing::info!(file = %state.config_file.display(), "configuration reloaded"),
                Err(e) => tracing::error!(error = %crate::error::chain(&e), "configuration reload refused; the previous configuration keeps serving"),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
pub fn on_sighup(
    _state: web::Data<AppState>,
    _runtime: &tokio::runtime::Handle,
) -> Result<(), std::io::Error> {
    Ok(())
}
