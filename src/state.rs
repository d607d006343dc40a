//! What the handlers share. The policy (issuers, clients, rules) sits behind an `ArcSwap`: a
//! request takes one snapshot and finishes under it, whatever is swapped in meanwhile.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::audit::AuditWriter;
use crate::audit::revocation::When;
use crate::clients::Clients;
use crate::config::{Config, KeySource, ServerConfig, SigningConfig};
use crate::issuers::{Fetcher, Issuers};
use crate::keys::SigningKeys;
use crate::rules::RuleSet;
use crate::store::Store;

/// Why a file the configuration names cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(transparent)]
    SigningKeys(#[from] crate::keys::Error),
    #[error("{}: issuer \"{issuer}\"", path.display())]
    Read {
        path: PathBuf,
        issuer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Jwks { path: PathBuf, reason: String },
    #[error("{}: issuer \"{issuer}\": the JWKS holds no usable key", path.display())]
    NoUsableKey { path: PathBuf, issuer: String },
}

impl From<FilesError> for String {
    fn from(e: FilesError) -> Self {
        crate::error::chain(&e)
    }
}

/// What `check`, `serve` and a reload validate beyond the file itself: the signing keys and
/// JWKS files it names.
pub fn check_files(config: &Config) -> Result<SigningKeys, FilesError> {
    let keys = SigningKeys::load(&config.signing)?;
    for issuer in &config.issuers {
        if let KeySource::File(file) = &issuer.keys {
            let bytes = std::fs::read(file).map_err(|source| FilesError::Read {
                path: file.clone(),
                issuer: issuer.id.clone(),
                source,
            })?;
            let profile = crate::issuers::jwks::Profile::of_issuer(&issuer.issuer);
            let usable = crate::issuers::jwks::parse(&bytes, profile)
                .map_err(|reason| FilesError::Jwks {
                    path: file.clone(),
                    reason,
                })?
                .keys;
            if usable.is_empty() {
                return Err(FilesError::NoUsableKey {
                    path: file.clone(),
                    issuer: issuer.id.clone(),
                });
            }
        }
    }
    Ok(keys)
}

pub struct Policy {
    pub issuers: Issuers,
    /// The keys of `private_key_jwt` clients, each client the issuer of its assertions.
    pub client_keys: Issuers,
    /// Ids of the issuer entries that stand for this server (re-exchange of minted tokens).
    pub local_issuers: Vec<String>,
    pub clients: Clients,
    pub rules: RuleSet,
    pub signing: SigningConfig,
    /// This server as its trust domain's Transaction Token Service, when configured.
    pub txn: Option<crate::tokens::txn::TxnService>,
    /// `server.issuer`: the one `aud` a grant presented with `jwt-bearer` may name.
    pub server_issuer: String,
    /// The configuration this policy was built from (for dry runs of the console).
    pub config: Arc<Config>,
}

impl Policy {
    /// The policy of `config`; issuers unchanged since `previous` keep their keys.
    pub async fn build(
        config: &Config,
        keys: &SigningKeys,
        fetcher: Fetcher,
        runtime: tokio::runtime::Handle,
        previous: Option<&Policy>,
    ) -> Self {
        let client_key_configs =
            crate::clients::assertion::key_configs(&config.clients, &config.server);
        let client_keys = Issuers::rebuild(
            &client_key_configs,
            keys,
            fetcher.clone(),
            runtime.clone(),
            previous.map(|p| &p.client_keys),
        )
        .await;
        Self {
            client_keys,
            issuers: Issuers::rebuild(
                &config.issuers,
                keys,
                fetcher,
                runtime,
                previous.map(|p| &p.issuers),
            )
            .await,
            local_issuers: config
                .issuers
                .iter()
                .filter(|i| i.keys == KeySource::Local)
                .map(|i| i.id.clone())
                .collect(),
            clients: Clients::new(&config.clients),
            rules: RuleSet::new(config.rules.clone()),
            signing: config.signing.clone(),
            server_issuer: config.server.issuer.clone(),
            config: Arc::new(config.clone()),
            txn: config
                .transaction_tokens
                .clone()
                .map(|c| crate::tokens::txn::TxnService {
                    config: c,
                    issuer: config.server.issuer.clone(),
                    keys: keys.clone(),
                    max_assertion_lifetime: config.server.max_assertion_lifetime,
                }),
        }
    }

    /// The lifetimes rules' grants are cut to.
    pub fn limits(&self) -> crate::config::Limits<'_> {
        crate::config::Limits {
            signing: &self.signing,
            txn: self.txn.as_ref().map(|t| &t.config),
        }
    }
}

impl Policy {
    /// A revocation's bounds in time (see `revocation::When`). What it names upstream is kept
    /// as long as a token of that issuer (of any issuer when `None`) issued until now can still
    /// be accepted: `max_age` plus twice the `leeway` (an `iat` may lie a leeway ahead).
    pub fn revocation_bounds(&self, issuer_id: Option<&str>, now: i64) -> When {
        let secs = |d: std::time::Duration| d.as_secs() as i64;
        let max_ttl = secs(self.signing.max_ttl);
        let accepted_for = self
            .issuers
            .iter()
            .filter(|i| issuer_id.is_none_or(|id| i.config.id == id))
            .map(|i| {
                secs(i.config.max_age.unwrap_or(self.signing.max_ttl)) + 2 * secs(i.config.leeway)
            })
            .max()
            .unwrap_or(max_ttl);
        let leeway = self
            .issuers
            .iter()
            .map(|i| secs(i.config.leeway))
            .max()
            .unwrap_or(0);
        let live_after = now.saturating_sub(leeway);
        When {
            now,
            sticky_until: now.saturating_add(accepted_for),
            live_after,
            // A record's time is its request's arrival, up to a body timeout before its token's
            // `iat`; and `max_ttl` may have been longer before a reload. A day at least, and a
            // minute more, cover both for any usual setting.
            minted_since: live_after.saturating_sub(max_ttl.max(86_400) + 60),
            walk_revoked: true,
        }
    }

    /// The id of an issuer named by its id or its `iss` URL.
    pub fn issuer_id(&self, named: &str) -> Option<String> {
        self.issuers
            .get(named)
            .or_else(|| self.issuers.iter().find(|i| i.config.id == named))
            .map(|i| i.config.id.clone())
    }
}

pub struct AppState {
    /// The time requests are judged at: the system's, or a fixed one in tests.
    pub clock: crate::clock::Clock,
    /// Set when shutdown begins: responses then close their connection, so keep-alive clients
    /// move on instead of holding the old process until its shutdown timeout.
    pub stopping: std::sync::atomic::AtomicBool,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub server: ServerConfig,
    /// The configuration file, read again on reload.
    pub config_file: std::path::PathBuf,
    pub fetcher: Fetcher,
    /// SHA-256 of the admin bearer token, when the admin listener is configured.
    pub admin_token_sha256: Option<[u8; 32]>,
    pub keys: SigningKeys,
    pub policy: ArcSwap<Policy>,
    pub audit: Arc<AuditWriter>,
    pub store: Store,
    /// Rule choices with conditions running at once, at most one per core: an evaluation that
    /// runs long holds its slot until it ends, so such evaluations never take more than the
    /// cores, and never the threads the store calls need.
    pub condition_slots: Arc<tokio::sync::Semaphore>,
    /// Requests refused before client authentication, limited per remote address.
    pub pre_auth: Arc<crate::pre_auth::PreAuthLimiter>,
}
